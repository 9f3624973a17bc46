/* On-disk record layouts of the LMDB store (docs/store.md has the tables).
 *
 * Every record is an explicit byte layout, big-endian throughout (keys must
 * be big-endian so that LMDB's memcmp order is numeric order; values use
 * the same order so one set of helpers serves both). Nothing is a struct
 * dump: a record written on one machine reads on any other.
 *
 * Decoders never allocate: the views they return point into the input
 * (for records read from LMDB, valid until the read transaction ends).
 * They return 0 or IMQTT_ECORRUPT for a record that does not parse.
 */
#ifndef IMQTT_STORE_RECORD_H
#define IMQTT_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_types.h"

/* The schema this build writes and the newest it can read. */
#define STORE_SCHEMA_VERSION 2u
/* The first byte of every value record: its layout version. */
#define STORE_REC_VERSION 1u

/* Queue entry states (the broker's entry_state has the same values). */
enum store_entry_state {
    STORE_ENTRY_QUEUED = 0,
    STORE_ENTRY_SENT = 1,
    STORE_ENTRY_PUBREC = 2,
};

typedef struct store_msg {
    uint8_t qos;
    bool retain;
    uint64_t expiry_ms; /* absolute wall-clock ms since the epoch; 0: none */
    mqtt_str topic;
    mqtt_bytes props; /* encoded v5 property block incl. its length prefix */
    mqtt_bytes payload;
} store_msg;

typedef struct store_entry {
    uint64_t msg_id; /* 0 once PUBREC is received (no message needed) */
    uint8_t state;   /* enum store_entry_state */
    uint8_t qos;
    bool dup;
    bool retain;
    uint16_t pid;
    uint32_t nsub_ids;
    const uint32_t *sub_ids;   /* encode: borrowed array of nsub_ids */
    const uint8_t *sub_ids_be; /* decode: view, 4 bytes each */
} store_entry;

typedef struct store_session {
    mqtt_str client_id;     /* the key of the record */
    uint64_t sid;           /* prefix of the session's subs, queue, qos2 keys */
    uint8_t version;        /* MQTT protocol level */
    uint32_t expiry;        /* Session Expiry Interval, seconds */
    uint64_t disconnect_ms; /* wall clock of the disconnect; 0: connected */
    bool has_username;
    mqtt_str username;
    bool has_will;
    uint32_t will_delay;
    uint32_t will_expiry;
    store_msg will;
} store_session;

typedef struct store_sub {
    uint64_t sid;
    mqtt_str filter;
    uint8_t opts; /* v5 subscription options byte */
    uint32_t sub_id;
} store_sub;

/* Big-endian primitives. */
static inline void store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void store_be32(uint8_t *p, uint32_t v)
{
    store_be16(p, (uint16_t)(v >> 16));
    store_be16(p + 2, (uint16_t)v);
}
static inline void store_be64(uint8_t *p, uint64_t v)
{
    store_be32(p, (uint32_t)(v >> 32));
    store_be32(p + 4, (uint32_t)v);
}
static inline uint16_t store_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t store_get32(const uint8_t *p)
{
    return ((uint32_t)store_get16(p) << 16) | store_get16(p + 2);
}
static inline uint64_t store_get64(const uint8_t *p)
{
    return ((uint64_t)store_get32(p) << 32) | store_get32(p + 4);
}

/* Message record: size, encode into out[size], decode. */
size_t store_msg_size(const store_msg *m);
void store_msg_encode(const store_msg *m, uint8_t *out);
int store_msg_decode(const uint8_t *p, size_t n, store_msg *m);

/* Queue entry record. */
size_t store_entry_size(const store_entry *e);
void store_entry_encode(const store_entry *e, uint8_t *out);
int store_entry_decode(const uint8_t *p, size_t n, store_entry *e);
uint32_t store_entry_sub_id(const store_entry *e, uint32_t i);

/* Session record (the client id is the key, not part of the value). */
size_t store_session_size(const store_session *s);
void store_session_encode(const store_session *s, uint8_t *out);
int store_session_decode(const uint8_t *p, size_t n, store_session *s);

/* Keys: [sid u64][seq u64] for queue entries, [sid][pid u16] for QoS 2
 * ids, [sid][filter] for subscriptions. */
#define STORE_QKEY_LEN  16
#define STORE_Q2KEY_LEN 10
void store_qkey(uint8_t out[STORE_QKEY_LEN], uint64_t sid, uint64_t seq);
void store_q2key(uint8_t out[STORE_Q2KEY_LEN], uint64_t sid, uint16_t pid);

/* Subscription value: [ver][opts][sub_id u32]. */
#define STORE_SUBVAL_LEN 6
void store_subval(uint8_t out[STORE_SUBVAL_LEN], uint8_t opts, uint32_t id);
int store_subval_decode(const uint8_t *p, size_t n, uint8_t *opts,
                        uint32_t *id);

/* Retained value: [ver][msg_id u64]. Reference count: [u32]. */
#define STORE_RETVAL_LEN 9
void store_retval(uint8_t out[STORE_RETVAL_LEN], uint64_t msg_id);
int store_retval_decode(const uint8_t *p, size_t n, uint64_t *msg_id);

#endif
