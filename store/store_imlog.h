/* The IM conversation log in the store (schema 2; docs/store.md): one
 * ordered log per conversation, the broker's ids as keys, retention by
 * count, bytes and age applied in the transaction that appends.
 *
 * Appends go into the current batch like every other record (no-op for
 * STORE_NONE); reads are short read transactions on the loop thread and
 * see committed batches only. The broker reaches this through
 * broker/im_log.h, never directly, so another backend can replace it.
 */
#ifndef IMQTT_STORE_IMLOG_H
#define IMQTT_STORE_IMLOG_H

#include "store.h"

/* Conversation keys are 1..STORE_IMLOG_CONV_MAX bytes. */
#define STORE_IMLOG_CONV_MAX 255u

typedef struct store_imlog_rec {
    uint64_t id;
    uint64_t ts;    /* wall-clock ms of the broker */
    mqtt_str from;  /* user@device, at most 255 bytes */
    mqtt_str topic; /* as published */
    mqtt_bytes payload;
} store_imlog_rec;

/* Retention of a conversation; 0 means no limit of that kind. The newest
 * message is always kept. */
typedef struct store_imlog_limits {
    uint64_t max_age_ms;
    uint64_t max_bytes; /* keys and records as stored */
    uint64_t max_count;
} store_imlog_limits;

/* Start-ups of this store including this one (1 for a new store; 0 for
 * STORE_NONE). */
uint64_t store_boot(const store *s);

/* Record r under (conv, r->id); the views are copied. The store thread
 * then deletes the oldest messages of conv that the limits no longer
 * allow, in the same transaction. Returns 0, IMQTT_EINVAL (conv or from
 * too long) or IMQTT_ENOMEM. */
int store_imlog_append(store *s, mqtt_str conv, const store_imlog_rec *r,
                       const store_imlog_limits *lim);

/* The highest id ever committed in conv (kept when retention deleted the
 * messages), 0 if none. Returns 0 or a negative IMQTT_E*. */
int store_imlog_last(store *s, mqtt_str conv, uint64_t *last);

/* A page of conv in ascending id order: forward, the first `limit` ids
 * greater than `from`; backward, the last `limit` ids smaller than `from`
 * (0: no bound). cb returns 0 to go on, 1 to stop here (the page is full:
 * *more is set), or a negative error; its views are valid during the call.
 * *more says whether messages are left beyond the page in its direction.
 * Returns how many cb took, or a negative IMQTT_E*. */
typedef int (*store_imlog_cb)(void *arg, const store_imlog_rec *r);
int store_imlog_page(store *s, mqtt_str conv, bool forward, uint64_t from,
                     uint32_t limit, store_imlog_cb cb, void *arg, bool *more);

/* Decode a log record (value of the imlog database) with its id. Returns
 * 0 or IMQTT_ECORRUPT. For tests and the checker. */
int store_imlog_decode(const uint8_t *p, size_t n, uint64_t id,
                       store_imlog_rec *r);

#endif
