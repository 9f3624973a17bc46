/* The server: one libuv loop that owns every connection, session, the
 * subscription index and the retained messages (DESIGN.md, Threads). */
#ifndef IMQTT_SERVER_H
#define IMQTT_SERVER_H

#include <uv.h>

#include "config.h"
#include "metrics.h"
#include "hmap.h"
#include "retain_index.h"
#include "store.h"
#include "sub_index.h"
#include "wheel.h"

typedef struct conn conn;
typedef struct session session;

typedef struct server_stats {
    uint64_t msgs_received;
    uint64_t msgs_sent;
    uint64_t msgs_dropped; /* queue full, too large, expired, slow reader */
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t conns_total;
} server_stats;

typedef struct listener {
    uv_tcp_t tcp;
    struct server *srv;
    struct tls_server *tls; /* owned reference; TLS and WSS listeners */
    const listener_config *cfg; /* borrowed from srv->cfg */
    uint32_t nconns;       /* open (not closing) connections */
    uint32_t conns_alive;  /* allocated, including closing ones */
} listener;

typedef struct server {
    uv_loop_t *loop;
    imqtt_config cfg; /* owned */
    store *store;     /* owned */

    listener *listeners;
    uint32_t nlisteners;

    hmap sessions;        /* client id -> session (key owned by session) */
    sub_index *subs;      /* owned */
    retain_index *retain; /* owned; values are msg* holding a reference */

    conn *conns;          /* every open connection (intrusive list) */
    conn *flush_head;     /* connections with output to write */
    conn *ack_head;       /* connections with acks waiting for a commit */
    uint32_t nconns;       /* open (not closing) connections */
    uint32_t conns_alive;  /* allocated, including closing ones */

    uv_prepare_t flush_handle;
    uv_async_t store_async; /* the store thread's "batches committed" */
    /* Commits in flight, oldest first (the store runs done callbacks in
     * commit order): the acks each releases and when it started, for the
     * commit latency histogram. Owned ring, grown when full. */
    struct commit_slot {
        conn *batch;
        uint64_t start_ns;
    } *commits;
    uint32_t commits_cap, commits_head, commits_n;
    /* Store batches whose commit failed (ascending): an ack is judged by
     * its own batch, not by the callback that happens to release it. */
    uint64_t *failed_gens;
    uint32_t nfailed, failed_cap;
    session *wait_head;     /* sessions waiting for a commit (persist.c) */
    session **wake;         /* scratch for persist_wake */
    uint32_t wake_cap;
    uint64_t next_sid;      /* last session id given out */
    bool loading;           /* persist_load: do not record what is read */
    uv_signal_t sig_term, sig_int;
    uv_timer_t shutdown_timer;
    wheel wheel; /* the connections' deadlines (wheel.h) */

    uint8_t *readbuf;     /* shared by all reads; lent during read_cb */
    bool readbuf_lent;
    uv_buf_t *iov;        /* scratch for vectored writes */
    unsigned iov_cap;

    uint64_t next_msg_id;
    uint32_t route_gen;   /* generation stamp for de-duplicating matches */
    struct route_scratch *route; /* owned, reused by every publish */
    struct im_state *im;  /* owned: presence records (im.c) */

    server_stats stats;
    metrics_counters metrics; /* refusals and failures (metrics.h) */
    struct ops_state *ops;    /* owned: SIGHUP, $SYS, metrics (ops.c) */
    struct cluster_link *cluster; /* owned by main; NULL: single node */
    const char *config_path;  /* borrowed from main; NULL: no file */
    bool stopping;
    int exit_code;
} server;

/* Build the server from cfg (ownership of cfg moves into the server even on
 * failure) and start listening. Returns 0 or a negative error. */
int server_init(server *srv, uv_loop_t *loop, imqtt_config *cfg);

/* Run until SIGTERM/SIGINT; then closes everything and returns the exit
 * code. */
int server_run(server *srv);

/* Free what server_init built (after the loop has stopped). */
void server_free(server *srv);

/* Free every session (srv->stopping set: the store keeps them). */
void server_end_sessions(server *srv);

/* The outcome of store batch `gen` (already completed): 0 or the error
 * its commit reported. */
int server_batch_status(const server *srv, uint64_t gen);

/* Mark c for the end-of-iteration flush. */
void server_want_flush(server *srv, conn *c);

/* Monotonic ms of the loop iteration. */
static inline uint64_t server_now(const server *srv)
{
    return uv_now(srv->loop);
}

#endif
