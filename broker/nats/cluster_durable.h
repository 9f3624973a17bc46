/* The durable path (docs/cluster.md): QoS 1/2 messages go to the
 * cluster's stream (cluster_stream.h) with js_PublishMsgAsync, many in
 * flight, and each PUBLISH's PUBACK / PUBREC waits until the stream has
 * acknowledged the publications it caused (cluster_hooks.h: durable_*).
 *
 * Publications are numbered 1, 2, ... in the order the node issues them
 * (under the loop lock); `done` is the highest number up to which every
 * one has been answered. Answers arrive on a libnats thread, are queued
 * and applied on the main loop, which then calls server_cluster_acked().
 * A publication still unanswered after DURABLE_RESEND_MS is sent again
 * (same id); one the stream refuses, or that is not answered within
 * DURABLE_ACK_WAIT_MS of being sent, fails: the PUBLISH that caused it is
 * refused (0x97; 3.1.1: the connection is closed), never acknowledged. */
#ifndef IMQTT_CLUSTER_DURABLE_H
#define IMQTT_CLUSTER_DURABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster_link.h"
#include "server.h"

/* Publications in flight at most; a PUBLISH that would pass it is
 * refused (durable_ready false). A power of two. */
#define DURABLE_WINDOW 65536
/* In flight past this, connections that publish are not read until the
 * stream has caught up (durable_busy; back-pressure long before the
 * window refuses anything). */
#define DURABLE_PAUSE_AT 2048
/* How long the stream may take to answer: a leader election of an R3
 * stream takes about 5 s here (docs/cluster.md). */
#define DURABLE_ACK_WAIT_MS 10000
/* When the stream has answered nothing for this long while publications
 * are in flight, they are all sent again with the same message ids (the
 * stream drops a second copy it already has): what was sent to a stream
 * leader that died is answered by the next one instead of timing out. */
#define DURABLE_RESEND_MS 2000
/* "No responders" (no stream leader during an election) is not a refusal:
 * the publication is sent again this often until its deadline. */
#define DURABLE_RETRY_MS 250

typedef struct cluster_durable cluster_durable;

typedef struct cluster_durable_stats {
    uint64_t published; /* handed to libnats */
    uint64_t acked;     /* answered by the stream */
    uint64_t failed;    /* refused, timed out, or not sent */
    uint64_t resent;    /* sent again after DURABLE_RESEND_MS */
    uint64_t inflight;  /* issued and not answered yet */
} cluster_durable_stats;

/* On the main loop before it runs; srv, l and cc borrowed for its life;
 * `epoch` is distinct per process (the route's), so that message ids
 * never repeat within the stream's duplicate window across a restart.
 * NULL on ENOMEM or when libnats refuses a JetStream context (logged). */
cluster_durable *cluster_durable_start(server *srv, cluster_link *l,
                                       const cluster_config *cc,
                                       uint64_t epoch);

/* Send one message to the stream: `live` is its live subject (it starts
 * with cc->subject_prefix), data[0..len) the envelope. Numbers it (the
 * new durable_mark) whatever happens; a publication libnats does not take
 * fails at once. Under the loop lock. */
void cluster_durable_publish(cluster_durable *d, const char *live,
                             const void *data, int len);

bool cluster_durable_ready(cluster_durable *d);
bool cluster_durable_busy(const cluster_durable *d);
uint64_t cluster_durable_mark(const cluster_durable *d);
int cluster_durable_status(const cluster_durable *d, uint64_t lo, uint64_t hi);

/* The NATS connection was lost: what is in flight fails now rather than
 * after DURABLE_ACK_WAIT_MS (the answers went with the connection; a
 * resend by libnats after the reconnection is answered to nobody). The
 * stream may still hold some of them: refused, they are delivered at
 * least once, as a client's resend would be anyway. On the loop. */
void cluster_durable_fail_inflight(cluster_durable *d);

/* Fail what is still in flight (the node stops: nothing more will be
 * answered) and stop taking answers. On the main loop. */
void cluster_durable_stop(cluster_durable *d);
void cluster_durable_free(cluster_durable *d);

void cluster_durable_get_stats(const cluster_durable *d,
                               cluster_durable_stats *out);

#endif
