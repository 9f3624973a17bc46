/* The narrow way mqtt/ reaches cluster mode (docs/cluster.md): a table of
 * hooks that main installs (srv->cluster_hooks) when the config has a
 * `cluster` section, filled by nats/cluster_route.c. A single node leaves
 * srv->cluster_hooks NULL and pays one NULL check per routed message and
 * per new or removed subscription.
 *
 * Every hook runs under the loop lock on whichever loop thread routes or
 * subscribes; none may block or route. */
#ifndef IMQTT_CLUSTER_HOOKS_H
#define IMQTT_CLUSTER_HOOKS_H

#include "mqtt_types.h"

struct msg;
struct session;

typedef struct cluster_hooks {
    void *arg; /* the hooks' state, owned by whoever installed them */
    /* m (borrowed) has just been routed locally on `route_topic` (its own
     * topic, or the sender's inbox for an IM sync copy) as a publication
     * of `from` (NULL: the broker's own, a will): send it to the other
     * nodes. Never called for a message that came from another node. */
    void (*on_route)(void *arg, struct msg *m, mqtt_str route_topic,
                     const struct session *from);
    /* A session's subscription to `filter` (as subscribed, $share prefix
     * included) was added / removed; not called when a subscription's
     * options are only updated. The hooks count them per filter: the
     * first one subscribes on NATS, the last one's removal unsubscribes. */
    /* m (borrowed), published here with the retain flag, has just been
     * retained locally (or cleared, for an empty payload): make it the
     * cluster's retained message of its topic. */
    void (*on_retain)(void *arg, struct msg *m);
    void (*on_sub_added)(void *arg, mqtt_str filter);
    void (*on_sub_removed)(void *arg, mqtt_str filter);

    /* The durable path (docs/cluster.md): on_route sends a QoS 1/2
     * message to the cluster's stream and numbers the publication.
     * durable_ready: whether a QoS 1/2 PUBLISH can be taken now (NATS
     * connected, room in flight); when not, it is refused (0x97, 3.1.1:
     * closed) before it is routed. durable_mark: the number of the last
     * publication issued; a PUBLISH's own are (mark before routing, mark
     * after]. durable_status: 1 when the stream has every publication of
     * (lo, hi], 0 while some are in flight, IMQTT_ECLUSTER when one was
     * refused or timed out. When the stream acknowledges more, the
     * cluster side calls server_cluster_acked() on the main loop. */
    bool (*durable_ready)(void *arg);
    /* Enough in flight that publishers should wait: a connection that
     * published is not read until it is not (conn_pressure.c). */
    bool (*durable_busy)(void *arg);
    uint64_t (*durable_mark)(void *arg);
    int (*durable_status)(void *arg, uint64_t lo, uint64_t hi);
} cluster_hooks;

#endif
