/* Live routing across nodes on core NATS (docs/cluster.md, "Live
 * routing"): the cluster_hooks of mqtt/ in cluster mode.
 *
 * - Subscriptions: every local filter is counted; the first subscriber
 *   subscribes the node on NATS to the filter's subject pattern (two for
 *   "x/#"), the last one's removal unsubscribes. A shared subscription
 *   "$share/g/f" subscribes f's subjects in the NATS queue group named
 *   after the whole filter, so NATS gives each message to one node of the
 *   group, which gives it to one of its members.
 * - Publishing: every message routed locally (its topic, and the sender's
 *   inbox for an IM sync copy) is published on the route topic's subject
 *   with an envelope: QoS, retain as published, the forwardable v5
 *   properties (IM stamps included), the expiry left, the origin node and
 *   client id, and the node's sequence.
 * - Receiving: a message of this node's own is dropped (unless it came
 *   through a queue group: shared groups are served only through NATS); a
 *   second copy of one message (overlapping subscriptions) is dropped by
 *   its sequence; the rest is routed to local sessions only.
 *
 * Everything runs under the loop lock: the hooks on whichever loop routes
 * or subscribes, the receiving side on the main loop (the link's sink). */
#ifndef IMQTT_CLUSTER_ROUTE_H
#define IMQTT_CLUSTER_ROUTE_H

#include <stdint.h>

#include "cluster_link.h"
#include "server.h"

typedef struct cluster_route cluster_route;

/* Install the hooks on srv (srv->cluster_hooks) and subscribe the node to
 * the filters its sessions already hold (loaded from the store). l and cc
 * are borrowed for the route's life. Returns NULL on ENOMEM (the node then
 * stays a single node, logged). On the main loop, before it runs. */
cluster_route *cluster_route_start(server *srv, cluster_link *l,
                                   const cluster_config *cc);

/* Remove the hooks and every NATS subscription (a server stop hook, before
 * the link stops). */
void cluster_route_stop(cluster_route *r);
void cluster_route_free(cluster_route *r);

typedef struct cluster_route_stats {
    uint64_t published;      /* messages sent to NATS */
    uint64_t publish_failed; /* refused by libnats (too large, no buffer) */
    uint64_t received;       /* messages routed from other nodes */
    uint64_t duplicates;     /* second copies dropped by sequence */
    uint64_t own;            /* own messages coming back, dropped */
    uint64_t invalid;        /* envelopes that did not decode */
    uint32_t subjects;       /* NATS subscriptions held */
} cluster_route_stats;

/* The retained bucket (cluster_retain.h) the route owns, or NULL. */
struct cluster_retain *cluster_route_retain(cluster_route *r);
/* The durable path (cluster_durable.h) the route owns, or NULL. */
struct cluster_durable *cluster_route_durable(cluster_route *r);

void cluster_route_get_stats(const cluster_route *r, cluster_route_stats *out);

#endif
