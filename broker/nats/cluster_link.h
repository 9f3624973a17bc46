/* The node's NATS connection, serving the broker's main loop (cluster
 * mode, docs/cluster.md). libnats does its socket I/O and runs message and
 * state callbacks on its own threads; those are handed to the loop through
 * a bounded queue and a uv_async_t, so nothing of the broker is touched
 * off the loop.
 *
 * What travels on it today: the node's inbox, "<prefix>.node.<node>.ping"
 * (answered with the node's name: which nodes are alive), and the
 * connection state for /metrics and the log. It reconnects forever with
 * the single node's service going on meanwhile. */
#ifndef IMQTT_CLUSTER_LINK_H
#define IMQTT_CLUSTER_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config_cluster.h"

typedef struct cluster_link cluster_link;

/* libnats's types (nats/nats.h), kept out of this header's includers. */
typedef struct __natsConnection natsConnection;
typedef struct __natsSubscription natsSubscription;
typedef struct __natsMsg natsMsg;

/* Where messages other than the inbox's go: called on the loop under the
 * loop lock with the message (the sink owns it: natsMsg_Destroy) and the
 * id of the subscription it arrived on. */
typedef void (*cluster_link_sink)(void *arg, natsMsg *m, int64_t sid);
void cluster_link_set_sink(cluster_link *l, cluster_link_sink fn, void *arg);

/* Called on the loop under the loop lock when the connection to NATS was
 * lost (once per loss, before the reconnection); NULL: nobody. */
typedef void (*cluster_link_lost_cb)(void *arg);
void cluster_link_on_lost(cluster_link *l, cluster_link_lost_cb fn, void *arg);
/* Offered each message before the sink, on the loop under the loop lock:
 * returns true when the message was its own (it then owns it), false to
 * pass it on. The node's control plane (cluster_nodes.h) uses it. */
typedef bool (*cluster_link_ctl)(void *arg, natsMsg *m, int64_t sid);
void cluster_link_set_ctl(cluster_link *l, cluster_link_ctl fn, void *arg);

/* The message handler to subscribe with (libnats's natsMsgHandler, the
 * link as its closure): it queues the message for the loop, which hands
 * it to the sink. */
void cluster_link_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                         void *link);

/* The connection (borrowed: valid until cluster_link_release). libnats
 * allows publishing and subscribing on it from any thread. */
natsConnection *cluster_link_conn(cluster_link *l);
/* Whether cluster_link_stop has run. */
bool cluster_link_closing(cluster_link *l);

/* Connect cc's servers on `loop` (call on the loop's thread, before or
 * while it runs). The connection retries in the background when no server
 * answers yet. Returns the link (owned by the caller: cluster_link_free)
 * or NULL on ENOMEM / a libnats option error (logged). cc is borrowed for
 * the link's life. */
cluster_link *cluster_link_start(uv_loop_t *loop, const cluster_config *cc);

/* Close the NATS connection and the link's handle (on the loop thread,
 * when the server stops); the loop can then end. */
void cluster_link_stop(cluster_link *l);

/* After the loop has ended: destroy the libnats objects (release), then
 * let libnats's threads end (cluster_nats_shutdown), and only then free
 * the link, since a library thread may still call into it until then. */
void cluster_link_release(cluster_link *l);
void cluster_link_free(cluster_link *l);

bool cluster_link_connected(const cluster_link *l);
uint64_t cluster_link_reconnects(const cluster_link *l);
/* Times libnats's delivery thread waited for the loop's queue (full). */
uint64_t cluster_link_waits(const cluster_link *l);
/* Slow-consumer drops libnats reported (a subscription's pending limit). */
uint64_t cluster_link_slow(const cluster_link *l);

#endif
