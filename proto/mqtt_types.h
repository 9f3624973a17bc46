/* Basic MQTT wire types shared by every proto header. */
#ifndef IMQTT_MQTT_TYPES_H
#define IMQTT_MQTT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol levels as carried in CONNECT. */
enum mqtt_version {
    MQTT_V31 = 3,  /* MQTT 3.1, protocol name "MQIsdp" */
    MQTT_V311 = 4, /* MQTT 3.1.1, protocol name "MQTT" */
    MQTT_V5 = 5,   /* MQTT 5.0, protocol name "MQTT" */
};

enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
    MQTT_AUTH = 15, /* MQTT 5 only */
};

/* A view of bytes owned by someone else (usually the input buffer the
 * packet was decoded from). Valid only as long as that buffer is. For
 * strings, the bytes are UTF-8 and NOT NUL-terminated. */
typedef struct mqtt_bytes {
    const uint8_t *ptr;
    uint32_t len;
} mqtt_bytes;

typedef mqtt_bytes mqtt_str;

#define MQTT_STR_LIT(s) ((mqtt_str){(const uint8_t *)(s), sizeof(s) - 1})

static inline mqtt_str mqtt_str_from(const char *s, size_t len)
{
    return (mqtt_str){(const uint8_t *)s, (uint32_t)len};
}

/* The largest remaining length a variable byte integer can carry. */
#define MQTT_MAX_REMAINING 268435455u

/* Name of a packet type for logs ("CONNECT"), "?" for unknown. */
const char *mqtt_type_name(int type);

#endif
