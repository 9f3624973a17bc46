/* The IM conversation log (docs/im.md, Message identity and History):
 * every message of a conversation gets the next id of that conversation's
 * log and is kept for history pages.
 *
 * This is the ONE interface the rest of the broker uses for it, so that a
 * cluster can put the log in the JetStream stream it keeps anyway; the
 * single-node implementation (im_log.c) keeps it in the LMDB store
 * (store/store_imlog.h). Loop thread only.
 *
 * Conversations: "d/{a}/{b}" for the direct messages between users a and
 * b (a <= b bytewise, so both sides share one log; a note to self is
 * "d/{a}/{a}"), "g/{group}" for a group chat.
 *
 * Ids: unique and increasing per conversation across restarts and kill
 * -9: within one run of the broker they follow each other (+1); a
 * restart continues above anything an earlier run may have handed out,
 * committed or not (the store counts its start-ups, and run n starts its
 * ids at (n - 1) * 2^32). They stay below 2^53, exact in JavaScript.
 */
#ifndef IMQTT_IM_LOG_H
#define IMQTT_IM_LOG_H

#include "identity.h"
#include "server.h"

/* "d/" + 64 + "/" + 64 */
#define IM_CONV_MAX (2 + 2 * IM_ID_PART_MAX + 1)

typedef struct im_log_entry {
    uint64_t id;    /* set by im_log_append */
    uint64_t ts;    /* broker wall clock, ms */
    mqtt_str from;  /* user@device */
    mqtt_str topic; /* as published */
    mqtt_bytes payload;
} im_log_entry;

/* The conversation of a message user publishes on topic (p2p/talk/{peer}
 * or g/talk/{group}) into buf; returns its length, 0 for other topics. */
size_t im_log_conv_of(mqtt_str user, mqtt_str topic, char buf[IM_CONV_MAX]);
/* The same from the parts: a user and a peer, or a group. */
size_t im_log_conv_peer(mqtt_str user, mqtt_str peer, char buf[IM_CONV_MAX]);
size_t im_log_conv_group(mqtt_str group, char buf[IM_CONV_MAX]);

/* Give e the next id of conv and, when history is kept, record it (into
 * the open store batch: durable with its commit). Returns 1 when recorded
 * (the acknowledgement must wait for the commit), 0 when only an id was
 * given, or a negative IMQTT_E* (no id was given). */
int im_log_append(server *srv, mqtt_str conv, im_log_entry *e);

/* A page of conv, ascending: forward, the first `limit` after id `from`;
 * backward, the last `limit` before `from` (0: the newest). cb returns 0
 * to go on, 1 when the page is full (*more is then true), or a negative
 * error; views valid during the call. *more: messages are left beyond the
 * page in its direction. Returns how many cb took or a negative IMQTT_E*
 * (IMQTT_ENOTSUP: this broker keeps no history). */
typedef int (*im_log_cb)(void *arg, const im_log_entry *e);
int im_log_page(server *srv, mqtt_str conv, bool forward, uint64_t from,
                uint32_t limit, im_log_cb cb, void *arg, bool *more);

/* Free the log's RAM state (the next id of each conversation seen). */
void im_log_free(server *srv);

#endif
