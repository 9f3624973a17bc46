/* A worker: what one libuv loop owns. Its connections and everything they
 * write through — the read buffer lent to one read at a time, the
 * vectored-write scratch, the flush and ack lists run once per iteration,
 * the timing wheel of the connections' deadlines, the router's scratch,
 * the store commits its acks wait for — live here and are touched by that
 * loop's thread only. (Scratch that code without a worker at hand needs,
 * the TLS record buffers and the message cache, is _Thread_local: one per
 * loop thread as well.) What the process shares (sessions, the subscription
 * and retained indexes, the store, the config) is in struct server.
 *
 * A loop is to the process what a node is to the cluster (CLUSTER.md):
 * work for another loop goes through its mailbox (mailbox.h), never
 * through its handles. The server runs `threads` workers: worker 0 on the
 * main loop, the others each on a thread of its own.
 *
 * With several workers (docs/architecture.md, "Threads") everything here
 * except the handles and the read buffer may be changed by another loop's
 * thread holding the loop lock (loop_lock.h) — a delivery appends to a
 * connection's output and puts it on its worker's flush list — and what
 * needs the handles (writing, closing, starting a timer) is left to the
 * owner, woken by worker_wake.
 */
#ifndef IMQTT_WORKER_H
#define IMQTT_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mailbox.h"
#include "outbuf.h"
#include "wheel.h"

typedef struct conn conn;
struct server;
struct route_scratch;

/* Something other than a connection that waits for the store batch open
 * now to commit (the HTTP API's answers: ops/api.c). `done` runs on the
 * worker's loop once that batch has committed, with 0 or the error its
 * commit reported (IMQTT_ESTOREFULL). The waiter is owned by the caller,
 * which keeps it alive until done has run. */
typedef struct commit_waiter {
    struct commit_waiter *next; /* the worker's list; set by mqtt/ */
    uint64_t gen;               /* the batch waited for; set by mqtt/ */
    void (*done)(struct commit_waiter *cw, int status);
} commit_waiter;

/* Size of the read buffer the worker lends to one read at a time. */
#define READBUF_SIZE 65536

typedef struct worker {
    uv_loop_t *loop;    /* the loop this worker runs on: borrowed (worker
                           0, the main loop) or owned (the others) */
    struct server *srv; /* the process-wide part */
    uint32_t id;        /* index in srv->workers */
    uv_thread_t thread; /* workers 1..n-1: the thread running `loop` */
    /* Wakes the loop (worker_wake) and brings it adopted sockets from
     * worker 0's accept; its callback also sees stop_wanted. */
    mailbox inbox;
    mailbox_item stop_item; /* posted by the main loop at the end */
    bool inbox_closed;      /* under the loop lock: no more wake-ups */

    conn *conns;           /* every open connection (intrusive list) */
    conn *flush_head;      /* connections with output to write */
    conn *ack_head;        /* connections with acks waiting for a commit */
    conn *cluster_head;    /* connections whose acks wait only for the
                              cluster's durable log (cluster_hooks.h) */
    bool cluster_wanted;   /* the log acknowledged more: release them */
    conn **cluster_paused; /* owned array; each holds a ref: connections
                              whose input waits for the stream */
    uint32_t ncluster_paused, cluster_paused_cap;
    commit_waiter *wait_head; /* other waiters for the open batch (borrowed
                                 until their done runs) */
    uint32_t nconns;          /* open (not closing) connections */
    uint32_t conns_alive;     /* allocated, including closing ones */

    uv_prepare_t flush_handle;
    uv_async_t store_async; /* worker 0 only: the store thread's "batches
                               committed" (the callbacks of every
                               worker's commits run there) */
    /* Commits in flight, oldest first (the store runs done callbacks in
     * commit order): the acks each releases and when it started, for the
     * commit latency histogram. Owned ring, grown when full. */
    struct commit_slot {
        conn *batch;
        commit_waiter *waiters;
        uint64_t start_ns;
    } * commits;
    uint32_t commits_cap, commits_head, commits_n;

    wheel wheel; /* the connections' deadlines (wheel.h) */

    uint8_t *readbuf; /* owned, READBUF_SIZE; lent during read_cb */
    bool readbuf_lent;
    uv_buf_t *iov; /* owned scratch for vectored writes */
    unsigned iov_cap;
    /* Several loops: the outputs this flush writes outside the loop lock
     * (server.c: on_prepare), each holding a connection reference. */
    struct taken_write {
        conn *c;
        outbuf ob;
        int written;
    } * taken;
    uint32_t taken_cap;

    struct route_scratch *route; /* owned, reused by every publish */
} worker;

/* Mark c for the end-of-iteration flush of its worker w (c->w), waking
 * w's loop when it is another thread's. */
void worker_want_flush(worker *w, conn *c);

/* cw->done runs once the store batch open now has committed (at once
 * when the store keeps nothing: durability none, after this iteration's
 * commit step). cw is borrowed until then. Call on w's own loop thread,
 * under the loop lock; done runs on the main loop (where every commit's
 * callback runs), under the lock. */
void worker_wait_commit(worker *w, commit_waiter *cw);

/* Make w's loop run an iteration soon (any thread): its prepare flushes
 * and does what was left to it. */
void worker_wake(worker *w);

/* Keep c (a ref) until the cluster's stream is no longer busy, then drain
 * its input pause (conn_pressure.c). False on ENOMEM: not paused. */
bool worker_cluster_pause(worker *w, conn *c);

/* The worker whose loop runs on the calling thread (set by worker_enter),
 * for code reached without a connection: the router, wills, $SYS. */
worker *worker_current(void);

/* The calling thread runs w's loop from now on. */
void worker_enter(worker *w);

/* Monotonic ms of the calling thread's loop iteration (w is only
 * documentation: another loop's clock belongs to its thread). */
static inline uint64_t worker_now(const worker *w)
{
    (void)w;
    return uv_now(worker_current()->loop);
}

#endif
