/* Offline push (docs/im.md, "Offline push"): when a chat message is queued
 * for a user none of whose devices is online (or, in per-device mode, for
 * each offline device), the broker emits an event on $events/push/{user},
 * readable only by the identities of im.push.subscribers, and, when
 * im.push.webhook is configured, POSTs it to the webhook in batches.
 *
 * Deliveries happen inside the router, which may not be entered again, so
 * the events of one loop iteration are collected and published from a
 * uv_idle_t on the main loop right after. Loop thread only.
 */
#ifndef IMQTT_IM_PUSH_H
#define IMQTT_IM_PUSH_H

#include "server.h"
#include "session.h"
#include "webhook.h"

#define IM_PUSH_PREFIX   "$events/push/"
#define IM_EVENTS_PREFIX "$events/"

/* At start-up (after the store is loaded): set up the state hung off
 * srv->im_push and the webhook client when im.push is configured. */
void im_push_start(server *srv);

/* Free it (after the loop has stopped, or after a failed start-up). */
void im_push_free(server *srv);

/* Policy hook: m (QoS 1 or 2) has just been queued for IM session s, which
 * is offline. Borrowed: a reference is taken when an event is due. */
void im_push_queued(session *s, msg *m);

/* Whether user is one of im.push.subscribers (the backends that may read
 * $events/push/#). */
bool im_push_is_subscriber(const server *srv, mqtt_str user);

/* Access to $events/...: nobody publishes there (the broker only), and only
 * push backends subscribe, to filters under $events/push/. Returns true
 * when topic is under $events/ (then *allow is the decision). */
bool im_push_access(bool backend, bool subscribe, mqtt_str topic, bool *allow);

typedef struct im_push_stats {
    uint64_t events; /* emitted (one per user, or per device) */
    bool webhook;    /* a webhook is configured: wh is filled */
    webhook_stats wh;
} im_push_stats;

/* The counters for /metrics; false when im.push is not configured. */
bool im_push_stats_get(const server *srv, im_push_stats *out);

#endif
