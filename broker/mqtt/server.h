/* The server: what the process shares — config, store, policy, sessions,
 * the subscription and retained indexes, counters. What one loop owns (its
 * connections and their buffers, flush and ack lists, timing wheel) is a
 * worker (worker.h); docs/architecture.md has who owns what. */
#ifndef IMQTT_SERVER_H
#define IMQTT_SERVER_H

#include <uv.h>

#include "config.h"
#include "hmap.h"
#include "metrics.h"
#include "policy.h"
#include "retain_index.h"
#include "store.h"
#include "sub_index.h"
#include "wheel.h"
#include "worker.h"

typedef struct conn conn;
typedef struct session session;
typedef struct retain_quota retain_quota;

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
    worker *w;                  /* the worker its connections go to */
    struct tls_server *tls;     /* owned reference; TLS and WSS listeners */
    const listener_config *cfg; /* borrowed from srv->cfg */
    uint32_t nconns;            /* open (not closing) connections */
    uint32_t conns_alive;       /* allocated, including closing ones */
} listener;

#define SERVER_STOP_HOOKS 4

typedef struct server {
    uv_loop_t *loop;      /* the main loop: signals, shutdown, ops, timers */
    imqtt_config cfg;     /* owned */
    store *store;         /* owned */
    const policy *policy; /* borrowed (static): im_policy() */

    listener *listeners;
    uint32_t nlisteners;

    hmap sessions;        /* client id -> session (key owned by session) */
    sub_index *subs;      /* owned */
    retain_index *retain; /* owned; values are msg* holding a reference */
    struct retained_pacer *retained_pacer; /* owned by ops: SUBSCRIBEs'
                                              retained backlogs
                                              (retained_send.h) */
    struct retain_quota *retain_quota;     /* owned; its accounting, set up at
                                              the first retained message
                                              (retain_limits.c) */

    worker *workers; /* owned [nworkers]: one per loop; workers[0] runs on
                        `loop` */
    uint32_t nworkers;
    uint32_t next_worker; /* round robin of accepted connections */
    uint32_t route_gen;   /* generation stamp for de-duplicating matches
                             (one router at a time: the loop lock) */
    /* Left to the main loop by other loops (server_on_main): sessions
     * whose timer must be set again or closed (session.c), and a kick of
     * the retained pacer. */
    session *timers_queued;
    bool pacer_wanted;

    /* Store batches whose commit failed (ascending), whichever loop's
     * commit carried them: an ack is judged by its own batch, not by the
     * callback that happens to release it, nor by the loop it is on. */
    uint64_t *failed_gens;
    uint32_t nfailed, failed_cap;
    session *wait_head; /* sessions waiting for a commit (persist.c) */
    session **wake;     /* scratch for persist_wake */
    uint32_t wake_cap;
    uint64_t next_sid; /* last session id given out */
    bool loading;      /* persist_load: do not record what is read */
    uv_signal_t sig_term, sig_int;
    uv_timer_t shutdown_timer;
    uint64_t shutdown_waited; /* ms since the shutdown began */

    uint64_t next_msg_id;
    uint32_t next_client_id;        /* counter in assigned client ids */
    struct reload_retired *retired; /* owned: config objects replaced by
                                       SIGHUP, freed at exit (reload.c) */
    struct im_state *im; /* owned by the policy: presence records (im.c) */
    struct im_log_state *im_log; /* owned by the policy: conversation ids
                                    (im_log.c) */
    struct im_push *im_push;     /* owned by the policy: offline push
                                    events and webhook (im_push.c) */
    struct im_bans *bans;        /* owned by the policy: bans and token
                                    revocations (im_ban.c) */
    hmap conn_rate_addrs;        /* address -> rate bucket (rate_limits.c) */
    struct auth_guard *guard;    /* owned: credential cache, failure limit */

    server_stats stats;
    metrics_counters metrics; /* refusals and failures (metrics.h) */
    struct ops_state *ops;    /* owned by ops/: SIGHUP, $SYS, metrics */
    /* Run when the server starts to stop, in order: the layers above
     * mqtt/ close their handles (ops/, the cluster link). */
    struct server_hook {
        void (*fn)(struct server *srv, void *arg);
        void *arg;
    } stop_hooks[SERVER_STOP_HOOKS];
    uint32_t nstop_hooks;
    struct cluster_link *cluster; /* owned by main; NULL: single node */
    /* Installed by main in cluster mode (cluster_hooks.h), owned by
     * nats/cluster_route.c; NULL: single node, and again once the cluster
     * link stops. Read and written under the loop lock. */
    const struct cluster_hooks *cluster_hooks;
    struct cluster_route *cluster_route; /* owned by main (nats/): live
                                            routing; NULL: single node */
    struct cluster_nodes *cluster_nodes; /* owned by main (nats/): nodes
                                            seen; NULL: single node */
    const char *config_path;             /* borrowed from main; NULL: no file */
    bool stopping;
    int exit_code;
} server;

/* Build the server from cfg (ownership of cfg moves into the server even on
 * failure) with the rules of `pol` (borrowed for the server's life), and
 * start listening. Returns 0 or a negative error. */
int server_init(server *srv, uv_loop_t *loop, imqtt_config *cfg,
                const policy *pol);

/* Run until SIGTERM/SIGINT; then closes everything and returns the exit
 * code. */
int server_run(server *srv);

/* Free what server_init built (after the loop has stopped). */
void server_free(server *srv);

/* Free every session (srv->stopping set: the store keeps them). */
void server_end_sessions(server *srv);

/* The cluster's durable log acknowledged (or refused) more publications:
 * every loop releases the acks that waited for them (cluster_hooks.h).
 * Under the loop lock, on any loop. */
void server_cluster_acked(server *srv);

/* Run fn(srv, arg) when the server starts to stop (SIGTERM/SIGINT), before
 * the connections are told. Returns 0, or IMQTT_ENOMEM when
 * SERVER_STOP_HOOKS are taken. */
int server_on_stopping(server *srv, void (*fn)(server *srv, void *arg),
                       void *arg);

/* The outcome of store batch `gen` (already completed): 0 or the error
 * its commit reported. */
int server_batch_status(const server *srv, uint64_t gen);

/* Open connections on every worker. */
uint32_t server_nconns(const server *srv);

/* Monotonic ms of the calling thread's loop iteration (every loop reads
 * the same monotonic clock; each caches it once per iteration). */
static inline uint64_t server_now(const server *srv)
{
    (void)srv;
    return uv_now(worker_current()->loop);
}

/* Whether the calling thread runs worker 0, the main loop: the session
 * timers, the retained pacer and ops live there. */
static inline bool server_on_main(const server *srv)
{
    return worker_current() == &srv->workers[0];
}

#endif
