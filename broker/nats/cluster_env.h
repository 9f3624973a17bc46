/* The envelope a message crosses nodes in: the payload of a routed NATS
 * message (cluster_route.c) and the value of a retained message in the KV
 * bucket (cluster_retain.c). Pure: no allocation but the caller's buffer.
 *
 * Layout, big-endian:
 *   u8 version (1) | u8 flags: qos in bits 0-1, retain as published bit 2
 *   u16 node length | node | u64 epoch | u64 sequence
 *   u32 expiry left in ms when encoded (0: none)
 *   u16 topic length | topic          (the message's topic)
 *   u16 route length | route topic    (0: the message's topic; else the
 *                                      topic whose subscriptions it is
 *                                      for: an IM sync copy's inbox)
 *   u16 client id length | client id  (the publisher's, for No Local;
 *                                      0: the broker's own message)
 *   u32 property block length | the forwardable v5 property block
 *   payload (the rest)
 * The epoch is random per process: a restarted node's sequence starts
 * again without its messages being taken for duplicates. */
#ifndef IMQTT_CLUSTER_ENV_H
#define IMQTT_CLUSTER_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_types.h"

typedef struct cluster_env {
    uint8_t qos;
    bool retain;
    mqtt_str node;
    uint64_t epoch, seq;
    uint32_t expiry_ms;
    mqtt_str topic, route, cid;
    mqtt_bytes props, payload;
} cluster_env;

/* Encode e into *buf (grown with realloc as needed; the caller owns it
 * and its capacity *cap). Returns the length or IMQTT_ENOMEM. */
int cluster_env_encode(const cluster_env *e, uint8_t **buf, size_t *cap);

/* Decode p[0..n): views into p. Returns 0, or IMQTT_EMALFORMED for a
 * truncated envelope, an unknown version or QoS 3, IMQTT_ETOPIC for a
 * topic or route that is not a valid topic name. */
int cluster_env_decode(const uint8_t *p, size_t n, cluster_env *e);

#endif
