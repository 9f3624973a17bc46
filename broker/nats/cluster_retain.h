/* Retained messages cluster-wide (docs/cluster.md, "Retained messages"):
 * the KV bucket cluster.retained_bucket holds one key per retained topic,
 * its value the message in the envelope of cluster_env.h; every node
 * watches the bucket and keeps its retained index (and its store) equal
 * to it, so a new subscriber on any node gets the same answer.
 *
 * - A retained PUBLISH on this node is retained locally at once (as on a
 *   single node) and queued for the bucket: put, or delete for an empty
 *   payload (the cluster_hooks on_retain hook).
 * - Every change in the bucket, this node's own included, is applied in
 *   the bucket's order, so concurrent writers on different nodes end
 *   with every node holding the bucket's last value.
 *
 * Threads: the bucket is written by the "kv writer" thread and watched by
 * the "kv watcher" thread, both on a NATS connection of their own (the
 * KV calls block for JetStream's answers, which the loop's connection
 * could not read while the loop waits). They meet the loop only through
 * two queues under `lock`: writes from the loop, changes to the loop
 * (drained by a uv_async_t on the main loop, under the loop lock). */
#ifndef IMQTT_CLUSTER_RETAIN_H
#define IMQTT_CLUSTER_RETAIN_H

#include <stdint.h>

#include "config_cluster.h"
#include "server.h"

typedef struct cluster_retain cluster_retain;

/* Start both threads (on the main loop, before it runs). cc is borrowed
 * for the object's life. NULL on ENOMEM or a thread that cannot start
 * (logged; retained messages then stay per node). */
cluster_retain *cluster_retain_start(server *srv, const cluster_config *cc);

/* Queue retained message m (borrowed) for the bucket; called by the
 * route hooks under the loop lock on any loop. */
void cluster_retain_put(cluster_retain *cr, struct msg *m);

/* Stop the threads and join them (a server stop hook; at most about the
 * JetStream request timeout, 2 s), close the async handle. */
void cluster_retain_stop(cluster_retain *cr);
void cluster_retain_free(cluster_retain *cr);

typedef struct cluster_retain_stats {
    uint64_t written; /* puts and deletes the bucket acknowledged */
    uint64_t failed;  /* refused or timed out (logged) */
    uint64_t dropped; /* writes dropped: queue full */
    uint64_t applied; /* changes from the bucket applied locally */
    uint64_t invalid; /* values that did not decode */
    uint32_t ready;   /* 1 once the bucket is open and watched */
} cluster_retain_stats;

void cluster_retain_get_stats(cluster_retain *cr, cluster_retain_stats *out);

#endif
