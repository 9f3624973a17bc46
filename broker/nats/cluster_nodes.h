/* Which nodes of the cluster are alive (docs/cluster.md, "Nodes seen"):
 * the node's control plane on its NATS connection.
 *
 * Every node publishes a heartbeat on "<prefix>.node.<node>.hb" once per
 * CLUSTER_HB_MS, carrying its name, its epoch (its start time in
 * milliseconds, with random low bits: a restarted node has a larger one)
 * and its start time, and listens to everyone's ("<prefix>.node.*.hb").
 * A node not heard for CLUSTER_HB_MISSES intervals is gone; a node heard
 * with a larger epoch than before has restarted (gone, then up again).
 * At a clean stop the node says goodbye, so the others drop it at once.
 *
 * The same module carries the node's other control subjects (presence,
 * cluster_presence.h): whoever needs one subscribes through it and gets
 * its messages on the loop, in the connection's order.
 *
 * Threads: everything here runs on the main loop under the loop lock
 * (the timer, the link's ctl callback); libnats's threads only fill the
 * link's queue. cluster_nodes_seen may be read from any thread. */
#ifndef IMQTT_CLUSTER_NODES_H
#define IMQTT_CLUSTER_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster_link.h"
#include "mqtt_types.h"
#include "server.h"

#define CLUSTER_HB_MS     1000u /* heartbeat interval */
#define CLUSTER_HB_MISSES 3u    /* intervals unheard before a node is gone */

typedef struct cluster_nodes cluster_nodes;

enum cluster_node_event {
    CLUSTER_NODE_UP,  /* first heard, heard again, or restarted */
    CLUSTER_NODE_GONE /* not heard for CLUSTER_HB_MISSES intervals, said
                         goodbye, or replaced by its restart */
};

/* Told of every change of another node's state, on the loop under the
 * loop lock; `name` is borrowed for the call. A restart is GONE for the
 * old process, then UP for the new one. */
typedef void (*cluster_nodes_watch)(void *arg, enum cluster_node_event ev,
                                    mqtt_str name);

/* A control subject's messages, on the loop under the loop lock; the
 * handler owns m (natsMsg_Destroy). */
typedef void (*cluster_nodes_handler)(void *arg, natsMsg *m);

/* Subscribe the heartbeats on l, take the link's ctl callback and start
 * the timer on srv's main loop (the first heartbeat at once). l, cc and
 * srv are borrowed for the module's life. NULL on ENOMEM (logged). */
cluster_nodes *cluster_nodes_start(server *srv, cluster_link *l,
                                   const cluster_config *cc);

/* Say goodbye, unsubscribe everything and close the timer (a server stop
 * hook, before the link stops). */
void cluster_nodes_stop(cluster_nodes *n);
/* After the loop has ended (the timer's handle is closed). */
void cluster_nodes_free(cluster_nodes *n);

/* At most one watcher (cluster_presence.c); fn NULL removes it. */
void cluster_nodes_set_watch(cluster_nodes *n, cluster_nodes_watch fn,
                             void *arg);

/* Subscribe `subject` on the link; its messages go to fn. At most
 * CLUSTER_NODES_SUBS of them; unsubscribed by cluster_nodes_stop. Returns
 * 0 or a negative IMQTT_* error (logged). */
#define CLUSTER_NODES_SUBS 2
int cluster_nodes_subscribe(cluster_nodes *n, const char *subject,
                            cluster_nodes_handler fn, void *arg);

/* Something other than a heartbeat came from node `name` with `epoch`
 * (a presence message): counts as hearing it. Returns false when it is
 * this node or an older process of that node (a stale message to drop). */
bool cluster_nodes_heard(cluster_nodes *n, mqtt_str name, uint64_t epoch);

/* Nodes alive, this one included. Any thread. */
uint32_t cluster_nodes_seen(const cluster_nodes *n);
/* This process's epoch. */
uint64_t cluster_nodes_epoch(const cluster_nodes *n);

#endif
