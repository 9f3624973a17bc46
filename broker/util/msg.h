/* An application message, stored once and shared by reference between the
 * retained store, every session queue and every output buffer that holds
 * it (DESIGN.md, the hot path: no payload copy per subscriber).
 *
 * The message owns one allocation: the struct followed by topic, the
 * forwardable v5 property block and the payload. Properties that belong to
 * one hop (topic alias, subscription identifiers, message expiry, which is
 * kept as an absolute deadline instead) are not in the block.
 */
#ifndef IMQTT_MSG_H
#define IMQTT_MSG_H

#include "packet.h"

typedef struct msg {
    uint32_t refs;
    uint8_t qos; /* as published */
    bool retain; /* as published */
    uint16_t topic_len;
    uint32_t props_len; /* encoded block incl. its length prefix */
    uint32_t payload_len;
    uint64_t expiry_at; /* uv_now() ms deadline; 0: never expires */
    uint64_t id;        /* broker-wide sequence, for logs and the store;
                           continues across restarts */
    uint64_t store_gen; /* store batch that last recorded it; 0: none */
    uint64_t serial;    /* unique per allocation in the process, never
                           0: a key for caches of its encoded form */
    /* The decoded block, views into data[]: msg_no_props when the
     * message has none (most: 3.1.1 publishers, the IM presence records),
     * else a mqtt_props after the payload. Not embedded: its 264 bytes
     * were most of a small retained message. */
    const mqtt_props *props;
    uint8_t data[]; /* topic | property block | payload [| mqtt_props] */
} msg;

/* The empty property set every message without properties points to. */
extern const mqtt_props msg_no_props;

/* New message with refs = 1. `props` (may be NULL) is the publisher's
 * decoded properties; only the forwardable ones are kept. User properties
 * come from props->user[0..user_count) when props->user is set (a rewritten
 * list), else from the decoded block props->raw. Returns NULL on
 * allocation failure. */
msg *msg_new(mqtt_str topic, const mqtt_props *props, mqtt_bytes payload,
             uint8_t qos, bool retain, uint64_t expiry_at, uint64_t id);

/* A message rebuilt from the store: `props_block` is the encoded v5
 * property block as msg_new kept it (length prefix included, or empty).
 * Returns NULL on allocation failure or a block that does not decode. */
msg *msg_new_encoded(mqtt_str topic, mqtt_bytes props_block, mqtt_bytes payload,
                     uint8_t qos, bool retain, uint64_t expiry_at, uint64_t id);

/* The forwardable property block of m (length prefix included). */
static inline mqtt_bytes msg_props_block(const msg *m)
{
    return (mqtt_bytes){m->data + m->topic_len, m->props_len};
}

static inline msg *msg_ref(msg *m)
{
    m->refs++;
    return m;
}

void msg_unref(msg *m);

/* Free the calling thread's cache of released message blocks (at exit, so
 * leak checkers see a clean heap). */
void msg_cache_free(void);

/* A block of `size` bytes from the message cache (NULL on ENOMEM), given
 * back with the same size; for other small objects with the life of a
 * delivery (session.c's out entries). Under the loop lock. */
void *msg_block_alloc(size_t size);
void msg_block_free(void *p, size_t size);

static inline mqtt_str msg_topic(const msg *m)
{
    return (mqtt_str){m->data, m->topic_len};
}

static inline mqtt_bytes msg_payload(const msg *m)
{
    return (mqtt_bytes){m->data + m->topic_len + m->props_len, m->payload_len};
}

/* Whether m has expired at time now (uv_now ms). */
static inline bool msg_expired(const msg *m, uint64_t now)
{
    return m->expiry_at != 0 && now >= m->expiry_at;
}

/* Seconds of expiry left at `now`, rounded up (for Message Expiry
 * Interval on delivery). Only meaningful when expiry_at != 0. */
uint32_t msg_expiry_left(const msg *m, uint64_t now);

#endif
