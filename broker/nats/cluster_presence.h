/* IM presence across nodes (docs/cluster.md, "Presence across nodes").
 *
 * Each node tells the others, on "<prefix>.presence", which devices of a
 * user are online on it, whenever that changes ("1 <node> <epoch> <user>
 * <device>..."), and its whole table again when another node comes up
 * (cluster_nodes.h). Each node keeps what it heard per (user, node); the
 * IM layer asks for a user's remote devices when it builds the user's
 * presence message, and is told to build it again when they change. A
 * node that is gone has its devices dropped from every user.
 *
 * The presence message itself (p2p/presence/{user}) is then routed on
 * each node to its own subscribers only: every node publishes the same
 * merged view, so routing it across would deliver it once per node.
 *
 * Threads: everything here runs under the loop lock (the IM calls on the
 * loop that connects or disconnects a device, the NATS side on the main
 * loop through cluster_nodes). */
#ifndef IMQTT_CLUSTER_PRESENCE_H
#define IMQTT_CLUSTER_PRESENCE_H

#include <stdint.h>

#include "cluster_nodes.h"
#include "mqtt_types.h"
#include "server.h"

typedef struct cluster_presence cluster_presence;

/* The merged view of `user` changed (remote devices came or went):
 * publish it again. main passes im_presence_refresh. */
typedef void (*cluster_presence_changed)(server *srv, mqtt_str user);

/* Subscribe the presence subject through n and watch n's nodes. All
 * pointers are borrowed for the module's life. NULL on ENOMEM or when
 * the subscription fails (logged: presence then stays per node). */
cluster_presence *cluster_presence_start(server *srv, cluster_nodes *n,
                                         cluster_link *l,
                                         const cluster_config *cc,
                                         cluster_presence_changed changed);
/* Stop watching the nodes (a server stop hook, before cluster_nodes_stop,
 * which unsubscribes). */
void cluster_presence_stop(cluster_presence *cp);
void cluster_presence_free(cluster_presence *cp);

/* The IM layer's side (the signatures of im.h's im_presence_peer; arg is
 * the cluster_presence):
 *
 * the devices of `user` online on this node are now devices[0..n)
 * (borrowed for the call; n == 0: none): tell the other nodes. */
void cluster_presence_local(void *arg, mqtt_str user, const mqtt_str *devices,
                            uint32_t n);
/* Call add(ctx, device) for every device of `user` online on another
 * node (device borrowed for the call; add may not call back here). */
void cluster_presence_remote(void *arg, mqtt_str user,
                             void (*add)(void *ctx, mqtt_str device),
                             void *ctx);

#endif
