/* MQTT 5 properties: identifiers, types, which packet may carry which, and
 * a decoded form that points into the input.
 *
 * Decoding validates the whole property block once (known id, right type,
 * allowed in this packet, no forbidden duplicates, UTF-8 where required) and
 * fills the scalar fields. Properties that may repeat (user property,
 * subscription identifier in PUBLISH) are counted and re-read from `raw` with
 * the iterators below, so decoding allocates nothing.
 */
#ifndef IMQTT_PROPS_H
#define IMQTT_PROPS_H

#include "mqtt_types.h"

enum mqtt_prop_id {
    MQTT_PROP_PAYLOAD_FORMAT = 0x01,
    MQTT_PROP_MESSAGE_EXPIRY = 0x02,
    MQTT_PROP_CONTENT_TYPE = 0x03,
    MQTT_PROP_RESPONSE_TOPIC = 0x08,
    MQTT_PROP_CORRELATION_DATA = 0x09,
    MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
    MQTT_PROP_SESSION_EXPIRY = 0x11,
    MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
    MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
    MQTT_PROP_AUTH_METHOD = 0x15,
    MQTT_PROP_AUTH_DATA = 0x16,
    MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
    MQTT_PROP_WILL_DELAY = 0x18,
    MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
    MQTT_PROP_RESPONSE_INFO = 0x1A,
    MQTT_PROP_SERVER_REFERENCE = 0x1C,
    MQTT_PROP_REASON_STRING = 0x1F,
    MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
    MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
    MQTT_PROP_TOPIC_ALIAS = 0x23,
    MQTT_PROP_MAXIMUM_QOS = 0x24,
    MQTT_PROP_RETAIN_AVAILABLE = 0x25,
    MQTT_PROP_USER = 0x26,
    MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
    MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
    MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
    MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

enum mqtt_prop_type {
    MQTT_PT_NONE = 0, /* not a property identifier */
    MQTT_PT_BYTE,
    MQTT_PT_U16,
    MQTT_PT_U32,
    MQTT_PT_VARINT,
    MQTT_PT_STRING,
    MQTT_PT_BINARY,
    MQTT_PT_PAIR, /* UTF-8 string pair */
};

/* Where a property may appear: one bit per packet type (1 << type), plus a
 * pseudo-type for the will properties inside CONNECT. */
#define MQTT_PROPS_IN_WILL 16

/* Type of a property id, MQTT_PT_NONE if the id is unknown. */
enum mqtt_prop_type mqtt_prop_type_of(uint32_t id);
/* Whether property id may appear in packet type (or MQTT_PROPS_IN_WILL). */
bool mqtt_prop_allowed(uint32_t id, int packet_type);
/* Name of a property for logs ("Session Expiry Interval"). */
const char *mqtt_prop_name(uint32_t id);

typedef struct mqtt_user_prop {
    mqtt_str key;
    mqtt_str value;
} mqtt_user_prop;

/* The properties of one packet. `present` has bit (1 << id) for every
 * scalar property found (ids are all below 64). All views point into the
 * decoded input (decode) or into caller memory (encode). */
typedef struct mqtt_props {
    uint64_t present;

    uint8_t payload_format;         /* 0x01 */
    uint32_t message_expiry;        /* 0x02 */
    mqtt_str content_type;          /* 0x03 */
    mqtt_str response_topic;        /* 0x08 */
    mqtt_bytes correlation_data;    /* 0x09 */
    uint32_t subscription_id;       /* 0x0B: SUBSCRIBE's one identifier */
    uint32_t session_expiry;        /* 0x11 */
    mqtt_str assigned_client_id;    /* 0x12 */
    uint16_t server_keep_alive;     /* 0x13 */
    mqtt_str auth_method;           /* 0x15 */
    mqtt_bytes auth_data;           /* 0x16 */
    uint8_t request_problem_info;   /* 0x17 */
    uint32_t will_delay;            /* 0x18 */
    uint8_t request_response_info;  /* 0x19 */
    mqtt_str response_info;         /* 0x1A */
    mqtt_str server_reference;      /* 0x1C */
    mqtt_str reason_string;         /* 0x1F */
    uint16_t receive_maximum;       /* 0x21 */
    uint16_t topic_alias_maximum;   /* 0x22 */
    uint16_t topic_alias;           /* 0x23 */
    uint8_t maximum_qos;            /* 0x24 */
    uint8_t retain_available;       /* 0x25 */
    uint32_t maximum_packet_size;   /* 0x27 */
    uint8_t wildcard_sub_available; /* 0x28 */
    uint8_t sub_id_available;       /* 0x29 */
    uint8_t shared_sub_available;   /* 0x2A */

    /* Decode: how many user properties / subscription ids `raw` holds.
     * Encode: user properties written are `user[0..user_count)` followed by
     * those copied from `user_from`; subscription ids are
     * `sub_ids[0..sub_id_count)` (a PUBLISH to a subscriber). */
    uint32_t user_count;
    uint32_t sub_id_count;

    /* Decode: the whole property block (without its length prefix).
     * Encode: ignored. */
    mqtt_bytes raw;

    /* Encode only (borrowed for the duration of the encode call). */
    const mqtt_user_prop *user;
    mqtt_bytes user_from; /* a decoded block whose user properties are
                             copied, in order, after `user` */
    const uint32_t *sub_ids;
} mqtt_props;

static inline bool mqtt_props_has(const mqtt_props *p, uint32_t id)
{
    return (p->present >> id) & 1u;
}

static inline void mqtt_props_set(mqtt_props *p, uint32_t id)
{
    p->present |= (uint64_t)1 << id;
}

/* Iterate over repeated properties of a decoded block. *pos starts at 0.
 * Returns 1 and fills *out while there is one more, 0 at the end. The block
 * was validated when it was decoded, so there is no error case. */
int mqtt_props_next_user(mqtt_bytes raw, uint32_t *pos, mqtt_user_prop *out);
int mqtt_props_next_sub_id(mqtt_bytes raw, uint32_t *pos, uint32_t *out);

/* Decode and validate a property block (length prefix included) at
 * buf[0..len) for packet_type (or MQTT_PROPS_IN_WILL). Returns bytes
 * consumed (> 0), or a negative IMQTT_E*: MALFORMED/VARINT (truncated),
 * PROPID, PROPDUP, PROPPKT, PROPVAL, UTF8. `out` is fully overwritten. */
int mqtt_props_decode(const uint8_t *buf, size_t len, int packet_type,
                      mqtt_props *out);

/* Size of the encoded property block, length prefix included. */
size_t mqtt_props_size(const mqtt_props *p);

/* Encode the block (length prefix included) into buf[0..cap). Returns bytes
 * written or IMQTT_ENOSPACE (IMQTT_EINVAL for a string over 65,535 bytes or
 * a subscription id over 268,435,455). Only properties in `present` (and
 * the user / sub_ids arrays) are written, in ascending id order. The
 * `user` / `sub_ids` arrays are used only when non-NULL, so a decoded block
 * (counts set, arrays NULL) re-encodes its user properties only through
 * `user_from` and its first subscription id through `subscription_id`. */
int mqtt_props_encode(const mqtt_props *p, uint8_t *buf, size_t cap);

#endif
