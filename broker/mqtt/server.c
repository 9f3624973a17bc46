#include "server.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_guard.h"
#include "cluster_hooks.h"
#include "conn.h"
#include "conn_log.h"
#include "errors.h"
#include "log.h"
#include "loop_lock.h"
#include "msg.h"
#include "persist.h"
#include "rate_limits.h"
#include "reason.h"
#include "retain_limits.h"
#include "retained_send.h"
#include "route.h"
#include "session.h"
#include "store_guard.h"
#include "transport.h"

#define LISTEN_BACKLOG 1024
/* Walking a store of a few GiB from the page cache takes seconds; one that
 * takes minutes is looping on a bad page. */
#define STORE_GUARD_TIMEOUT_MS 120000
#define SHUTDOWN_POLL_MS       20
#define SHUTDOWN_MAX_MS        3000

static _Thread_local worker *current_worker;

static void worker_close_handles(worker *w);

worker *worker_current(void)
{
    return current_worker;
}

void worker_enter(worker *w)
{
    current_worker = w;
}

void worker_wake(worker *w)
{
    /* (Under the loop lock, as worker_close_handles: never after it.) */
    if (!w->inbox_closed)
        uv_async_send(&w->inbox.async);
}

void worker_want_flush(worker *w, conn *c)
{
    if (c->in_flush_list)
        return;
    c->in_flush_list = true;
    conn_ref(c);
    c->flush_next = w->flush_head;
    w->flush_head = c;
    if (w != current_worker)
        worker_wake(w);
}

bool worker_cluster_pause(worker *w, conn *c)
{
    if (w->ncluster_paused == w->cluster_paused_cap) {
        uint32_t cap = w->cluster_paused_cap ? w->cluster_paused_cap * 2 : 16;
        conn **v = realloc(w->cluster_paused, cap * sizeof(*v));
        if (!v)
            return false;
        w->cluster_paused = v;
        w->cluster_paused_cap = cap;
    }
    conn_ref(c);
    w->cluster_paused[w->ncluster_paused++] = c;
    return true;
}

/* The stream answered more: the connections paused for it read again
 * once it is no longer busy (conn_pressure_drain decides). */
static void resume_cluster_paused(worker *w)
{
    const cluster_hooks *ch = w->srv->cluster_hooks;
    if (!w->ncluster_paused || (ch && ch->durable_busy(ch->arg)))
        return;
    uint32_t n = w->ncluster_paused;
    w->ncluster_paused = 0;
    for (uint32_t i = 0; i < n; i++) {
        conn *c = w->cluster_paused[i];
        conn_pressure_drain(c);
        conn_unref(c);
    }
}

void server_cluster_acked(server *srv)
{
    for (uint32_t i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        w->cluster_wanted = true;
        if (w != current_worker)
            worker_wake(w);
    }
}

int server_on_stopping(server *srv, void (*fn)(server *srv, void *arg),
                       void *arg)
{
    if (srv->nstop_hooks == SERVER_STOP_HOOKS)
        return IMQTT_ENOMEM;
    srv->stop_hooks[srv->nstop_hooks++] = (struct server_hook){fn, arg};
    return 0;
}

uint32_t server_nconns(const server *srv)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < srv->nworkers; i++)
        n += srv->workers[i].nconns;
    return n;
}

static uint32_t conns_alive(const server *srv)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < srv->nworkers; i++)
        n += srv->workers[i].conns_alive;
    return n;
}

static void release_batch(conn *c, int status)
{
    while (c) {
        conn *next = c->ack_next;
        c->in_ack_list = false;
        c->ack_next = NULL;
        conn_release_acks(c, status);
        conn_unref(c);
        c = next;
    }
}

void worker_wait_commit(worker *w, commit_waiter *cw)
{
    cw->gen = store_batch_gen(w->srv->store);
    cw->next = w->wait_head;
    w->wait_head = cw;
}

/* Like conn_release_acks: a waiter whose batch has not committed yet (it
 * was listed while an earlier batch was in flight) waits for its own. */
static void release_waiters(worker *w, commit_waiter *cw)
{
    uint64_t done = store_done_gen(w->srv->store);
    while (cw) {
        commit_waiter *next = cw->next;
        cw->next = NULL;
        if (cw->gen > done) {
            cw->next = w->wait_head;
            w->wait_head = cw;
        } else {
            /* The waiter's own batch decides, as for acks. */
            cw->done(cw, server_batch_status(w->srv, cw->gen));
        }
        cw = next;
    }
}

/* Failures come only in store-full episodes, during which new QoS 1/2
 * publications are refused before they reach a batch, so the list stays
 * short; past FAILED_GENS_MAX the older half is dropped (their acks were
 * released long before). */
#define FAILED_GENS_MAX 4096

static void remember_failure(server *srv, uint64_t gen)
{
    if (srv->nfailed == FAILED_GENS_MAX) {
        memmove(srv->failed_gens, srv->failed_gens + FAILED_GENS_MAX / 2,
                (FAILED_GENS_MAX / 2) * sizeof(uint64_t));
        srv->nfailed = FAILED_GENS_MAX / 2;
    }
    if (srv->nfailed == srv->failed_cap) {
        uint32_t cap = srv->failed_cap ? srv->failed_cap * 2 : 16;
        uint64_t *v = realloc(srv->failed_gens, cap * sizeof(*v));
        if (!v)
            return;
        srv->failed_gens = v;
        srv->failed_cap = cap;
    }
    srv->failed_gens[srv->nfailed++] = gen;
}

int server_batch_status(const server *srv, uint64_t gen)
{
    uint32_t lo = 0, hi = srv->nfailed;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (srv->failed_gens[mid] < gen)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < srv->nfailed && srv->failed_gens[lo] == gen ? IMQTT_ESTOREFULL
                                                            : 0;
}

static void on_committed(void *arg, int status)
{
    worker *w = arg;
    if (status < 0)
        remember_failure(w->srv, store_done_gen(w->srv->store));
    struct commit_slot *sl = &w->commits[w->commits_head];
    w->commits_head = (w->commits_head + 1) % w->commits_cap;
    w->commits_n--;
    metrics_commit_observe(&w->srv->metrics.commit, uv_hrtime() - sl->start_ns);
    release_batch(sl->batch, status);
    release_waiters(w, sl->waiters);
}

/* Room for one more commit in flight; false on ENOMEM. */
static bool commits_reserve(worker *w)
{
    if (w->commits_n < w->commits_cap)
        return true;
    uint32_t cap = w->commits_cap ? w->commits_cap * 2 : 8;
    struct commit_slot *v = malloc(cap * sizeof(*v));
    if (!v)
        return false;
    for (uint32_t i = 0; i < w->commits_n; i++)
        v[i] = w->commits[(w->commits_head + i) % w->commits_cap];
    free(w->commits);
    w->commits = v;
    w->commits_cap = cap;
    w->commits_head = 0;
    return true;
}

/* What other loops left to the main loop: session timers (will delay,
 * expiry) and the retained pacer live on it. */
static void run_main_queue(server *srv)
{
    if (srv->timers_queued)
        session_timers_apply(srv);
    if (srv->pacer_wanted) {
        srv->pacer_wanted = false;
        retained_pacer_kick(srv);
    }
}

/* Room for one more taken write; false on ENOMEM (then it is written
 * under the lock). */
static bool taken_reserve(worker *w, uint32_t n)
{
    if (n < w->taken_cap)
        return true;
    uint32_t cap = w->taken_cap ? w->taken_cap * 2 : 64;
    struct taken_write *v = realloc(w->taken, cap * sizeof(*v));
    if (!v)
        return false;
    w->taken = v;
    w->taken_cap = cap;
    return true;
}

/* Once per loop iteration, before it blocks: commit what this iteration
 * recorded, release the acks that waited for it, then write every
 * connection's output in one go (STYLE.md: Redis' pending write queue).
 * With several loops the writes of plain TCP connections happen outside
 * the loop lock (conn.c: conn_take_output). */
static void on_prepare(uv_prepare_t *h)
{
    worker *w = h->data;
    store *st = w->srv->store;
    bool unlocked_writes = loop_lock_enabled();
    loop_lock();
    if (w->id == 0)
        run_main_queue(w->srv);
    /* Every loop runs the commits that completed (the store thread wakes
     * only the main loop): acks then go out from the loop that owns
     * their connections without a wake-up of their own. */
    if (w->srv->nworkers > 1 && store_poll(st) > 0)
        persist_wake(w->srv);
    if (w->cluster_wanted) {
        /* (Each is listed again, for the store or the cluster, if some of
         * its acks still wait.) */
        w->cluster_wanted = false;
        conn *waiting = w->cluster_head;
        w->cluster_head = NULL;
        release_batch(waiting, 0);
        resume_cluster_paused(w);
    }
    if ((w->ack_head || w->wait_head || store_pending(st)) &&
        commits_reserve(w)) {
        /* (Without room, the batch waits for the next iteration.) */
        conn *batch = w->ack_head;
        commit_waiter *waiters = w->wait_head;
        w->ack_head = NULL;
        w->wait_head = NULL;
        uint32_t tail = (w->commits_head + w->commits_n) % w->commits_cap;
        w->commits[tail] = (struct commit_slot){batch, waiters, uv_hrtime()};
        w->commits_n++;
        /* With store.durability none the callback runs inside. */
        int rc = store_commit(st, on_committed, w);
        if (rc < 0) {
            w->commits_n--; /* not started: no callback will pop it */
            release_batch(batch, rc);
            release_waiters(w, waiters);
        }
    }
    uint32_t ntaken = 0;
    while (w->flush_head) {
        conn *c = w->flush_head;
        w->flush_head = c->flush_next;
        c->flush_next = NULL;
        c->in_flush_list = false;
        if (!conn_owner_work(c)) {
            conn_unref(c);
            continue;
        }
        if (unlocked_writes && taken_reserve(w, ntaken) &&
            conn_take_output(c, &w->taken[ntaken].ob)) {
            w->taken[ntaken++].c = c; /* keeps the flush list's reference */
            continue;
        }
        conn_flush(c);
        conn_unref(c);
    }
    if (ntaken) {
        loop_unlock();
        for (uint32_t i = 0; i < ntaken; i++)
            w->taken[i].written =
                conn_write_taken(w->taken[i].c, &w->taken[i].ob);
        loop_lock();
        for (uint32_t i = 0; i < ntaken; i++) {
            conn *c = w->taken[i].c;
            if (conn_settle_taken(c, &w->taken[i].ob, w->taken[i].written))
                worker_want_flush(w, c);
            conn_unref(c);
        }
        /* Output that came during the writes: the next iteration writes
         * it, without waiting in poll. */
        if (w->flush_head)
            uv_async_send(&w->inbox.async);
    }
    wheel_sync(&w->wheel);
    loop_unlock();
}

/* The store thread committed batches: run their callbacks here, on the
 * loop thread, then let sessions read what became readable. */
static void on_store_async_locked(uv_async_t *h)
{
    worker *w = h->data;
    if (store_poll(w->srv->store) > 0)
        persist_wake(w->srv);
}

static void on_store_async(uv_async_t *h)
{
    loop_lock();
    on_store_async_locked(h);
    loop_unlock();
}

static void store_notify(void *arg)
{
    uv_async_send(arg);
}

static bool store_idle(const server *srv)
{
    return !store_pending(srv->store) &&
           store_done_gen(srv->store) + 1 >= store_batch_gen(srv->store);
}

/* A socket accepted on the main loop for another worker. */
typedef struct handoff {
    mailbox_item item; /* first */
    listener *lst;
    uv_os_sock_t fd; /* owned until conn_adopt_on takes it */
} handoff;

static void on_accept_tmp_closed(uv_handle_t *h)
{
    free(h);
}

/* Accept on the main loop and give the socket (a duplicate of the
 * accepted descriptor: libuv's handle closes its own) to worker w through
 * its mailbox. */
static void hand_off(listener *lst, worker *w)
{
    uv_tcp_t *tmp = malloc(sizeof(*tmp));
    handoff *ho = malloc(sizeof(*ho));
    if (!tmp || !ho || uv_tcp_init(lst->w->loop, tmp) < 0) {
        free(tmp);
        free(ho);
        log_warn("accept: no memory for a connection");
        return; /* the socket stays queued until the next accept */
    }
    uv_os_fd_t fd0 = -1;
    int fd = -1;
    if (uv_accept((uv_stream_t *)&lst->tcp, (uv_stream_t *)tmp) == 0 &&
        uv_fileno((uv_handle_t *)tmp, &fd0) == 0)
        fd = fcntl(fd0, F_DUPFD_CLOEXEC, 0);
    uv_close((uv_handle_t *)tmp, on_accept_tmp_closed);
    if (fd < 0) {
        free(ho);
        return;
    }
    ho->lst = lst;
    ho->fd = fd;
    if (mailbox_post(&w->inbox, &ho->item) < 0) {
        log_warn("accept: loop %u is not taking connections", w->id);
        close(fd);
        free(ho);
    }
}

static void on_inbox(mailbox_item *item, void *arg)
{
    worker *w = arg;
    if (item == &w->stop_item) {
        worker_close_handles(w);
        return;
    }
    handoff *ho = (handoff *)item;
    if (w->srv->stopping)
        close(ho->fd);
    else
        (void)conn_adopt_on(ho->lst, w, ho->fd);
    free(ho);
}

static void drop_inbox(mailbox_item *item, void *arg)
{
    worker *w = arg;
    if (item == &w->stop_item)
        return;
    handoff *ho = (handoff *)item;
    close(ho->fd);
    free(ho);
}

static void on_connection_locked(uv_stream_t *server_stream, int status)
{
    listener *lst = server_stream->data;
    server *srv = lst->srv;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    if (srv->stopping)
        return;
    /* Round robin: connections are long-lived and alike, and an even
     * spread needs no knowledge of their load. */
    worker *w = &srv->workers[srv->next_worker++ % srv->nworkers];
    if (w == lst->w)
        conn_accept(lst);
    else
        hand_off(lst, w);
}

static void on_connection(uv_stream_t *server_stream, int status)
{
    loop_lock();
    on_connection_locked(server_stream, status);
    loop_unlock();
}

static int start_listener(server *srv, listener *lst)
{
    (void)srv;
    const listener_config *lc = lst->cfg;
    struct sockaddr_storage addr;
    int rc = strchr(lc->bind, ':')
                 ? uv_ip6_addr(lc->bind, lc->port, (struct sockaddr_in6 *)&addr)
                 : uv_ip4_addr(lc->bind, lc->port, (struct sockaddr_in *)&addr);
    if (rc == 0)
        rc = uv_tcp_init(lst->w->loop, &lst->tcp);
    lst->tcp.data = lst;
    if (rc == 0)
        rc = uv_tcp_bind(&lst->tcp, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&lst->tcp, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        log_error("listen on %s: %s", log_hostport(lc->bind, lc->port),
                  uv_strerror(rc));
        return rc;
    }
    log_info("listening on %s", log_hostport(lc->bind, lc->port));
    return 0;
}

void server_end_sessions(server *srv)
{
    uint32_t pos = 0;
    session *s;
    while ((pos = 0, s = hmap_next(&srv->sessions, &pos)))
        session_end(s);
}

static void on_shutdown_poll_locked(uv_timer_t *t)
{
    server *srv = t->data;
    srv->shutdown_waited += SHUTDOWN_POLL_MS;
    /* Wait for the connections, then for the store to commit what their
     * ends recorded (disconnect times, wills). */
    if ((conns_alive(srv) > 0 || !store_idle(srv)) &&
        srv->shutdown_waited < SHUTDOWN_MAX_MS)
        return;
    uv_timer_stop(t);
    /* Every connection is gone: free the sessions (their timers close),
     * then the server's own handles; uv_run then returns. */
    server_end_sessions(srv);
    /* What another loop left to this one since its last prepare (a
     * session ended there: its timer's close frees it) is done now: this
     * timer runs before the prepare, which is closed below. */
    session_timers_apply(srv);
    /* The other loops close their own handles; server_run joins them. */
    for (uint32_t i = 1; i < srv->nworkers; i++)
        if (mailbox_post(&srv->workers[i].inbox, &srv->workers[i].stop_item) <
            0)
            log_error("loop %u did not take its stop", i);
    worker_close_handles(&srv->workers[0]);
    uv_close((uv_handle_t *)&srv->workers[0].store_async, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_shutdown_poll(uv_timer_t *t)
{
    loop_lock();
    on_shutdown_poll_locked(t);
    loop_unlock();
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* On w's own loop, at the end: its handles close and its uv_run returns.
 * Connections still open (the shutdown gave up waiting) are cut. */
static void worker_close_handles(worker *w)
{
    uv_close((uv_handle_t *)&w->flush_handle, NULL);
    wheel_close(&w->wheel);
    w->inbox_closed = true;
    mailbox_close(&w->inbox, drop_inbox, NULL);
    if (w->id > 0)
        uv_walk(w->loop, close_leftover, NULL);
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void server_stop(server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    log_info("shutting down: %u connections", server_nconns(srv));
    for (uint32_t i = 0; i < srv->nstop_hooks; i++)
        srv->stop_hooks[i].fn(srv, srv->stop_hooks[i].arg);
    for (uint32_t i = 0; i < srv->nlisteners; i++)
        if (!uv_is_closing((uv_handle_t *)&srv->listeners[i].tcp))
            uv_close((uv_handle_t *)&srv->listeners[i].tcp, on_listener_closed);
    for (uint32_t i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        while (w->conns) {
            conn *c = w->conns;
            /* Our decision, not a lost connection: no will [MQTT-3.1.2-8]. */
            c->disconnect_normal = true;
            conn_disconnect(c, MQTT_RC_SERVER_SHUTTING_DOWN);
        }
    }
    uv_timer_start(&srv->shutdown_timer, on_shutdown_poll, SHUTDOWN_POLL_MS,
                   SHUTDOWN_POLL_MS);
}

static void on_signal_locked(uv_signal_t *h, int signum)
{
    server *srv = h->data;
    log_info("signal %d received", signum);
    server_stop(srv);
}

static void on_signal(uv_signal_t *h, int signum)
{
    loop_lock();
    on_signal_locked(h, signum);
    loop_unlock();
}

/* Mailbox bound: sockets waiting for a loop (a connection storm). */
#define WORKER_INBOX_MAX 65536

/* Worker i's loop (made here but for worker 0's, the main loop), its
 * read buffer and handles; made on the main thread before any other
 * thread runs, so the loops' threads start with them in place. */
static int worker_init(server *srv, worker *w, uint32_t i)
{
    w->id = i;
    w->srv = srv;
    if (i > 0) {
        w->loop = malloc(sizeof(*w->loop));
        if (!w->loop)
            return IMQTT_ENOMEM;
        if (uv_loop_init(w->loop) < 0) {
            free(w->loop);
            w->loop = NULL;
            return IMQTT_ENOMEM;
        }
    }
    w->readbuf = malloc(READBUF_SIZE);
    if (!w->readbuf)
        return IMQTT_ENOMEM;
    int rc = mailbox_init(&w->inbox, w->loop, WORKER_INBOX_MAX, on_inbox, w);
    if (rc < 0)
        return rc;
    uv_prepare_init(w->loop, &w->flush_handle);
    w->flush_handle.data = w;
    uv_prepare_start(&w->flush_handle, on_prepare);
    wheel_init(&w->wheel, w->loop, conn_on_deadline);
    if (srv->nworkers > 1)
        wheel_defer_start(&w->wheel);
    return 0;
}

int server_init(server *srv, uv_loop_t *loop, imqtt_config *cfg,
                const policy *pol)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->policy = pol;
    srv->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    log_set_level(srv->cfg.log_level);

    uint32_t n = srv->cfg.threads;
    if (n == 0)
        n = uv_available_parallelism();
    if (n > CONFIG_THREADS_MAX)
        n = CONFIG_THREADS_MAX;
    srv->workers = calloc(n, sizeof(worker));
    if (!srv->workers)
        return IMQTT_ENOMEM;
    srv->nworkers = n;
    worker *w = &srv->workers[0];
    w->loop = loop;
    w->srv = srv;
    worker_enter(w);
    uv_async_init(loop, &w->store_async, on_store_async);
    w->store_async.data = w;
    store_options so = {
        .durability = srv->cfg.store_durability,
        .dir = srv->cfg.store_dir,
        .map_size = srv->cfg.store_map_size,
        .max_size = srv->cfg.store_max_size,
        .sync_interval_ms = srv->cfg.store_sync_interval_ms,
        .notify = store_notify,
        .notify_arg = &w->store_async,
    };
    int rc = 0;
    /* Refuse a store another broker holds before walking it in the
     * guard: store_open's lock decides, this only answers at once. */
    long holder = srv->cfg.store_durability != STORE_NONE
                      ? store_lock_holder(srv->cfg.store_dir)
                      : 0;
    if (holder > 0)
        log_error("store %s is in use by another imqtt process (PID %ld, "
                  "lock %s/" STORE_LOCK_FILE "); refusing to open it twice",
                  srv->cfg.store_dir, holder, srv->cfg.store_dir);
    else if (holder < 0)
        log_error(
            "store %s is in use by another process (lock %s/" STORE_LOCK_FILE
            "); refusing to open it twice",
            srv->cfg.store_dir, srv->cfg.store_dir);
    if (holder != 0)
        return IMQTT_ELOCKED;
    if (srv->cfg.store_durability != STORE_NONE)
        rc = store_guard_verify(srv->cfg.store_dir, STORE_GUARD_TIMEOUT_MS);
    if (rc < 0)
        return rc;
    rc = store_open(&so, &srv->store);
    if (rc < 0) {
        log_error("store %s: %s", srv->cfg.store_dir, imqtt_strerror(rc));
        return rc;
    }
    srv->subs = sub_index_new();
    srv->retain = retain_index_new();
    srv->listeners = calloc(srv->cfg.listener_count, sizeof(listener));
    if (!srv->subs || !srv->retain || !srv->listeners)
        return IMQTT_ENOMEM;
    for (uint32_t i = 0; i < srv->nworkers; i++) {
        rc = worker_init(srv, &srv->workers[i], i);
        if (rc < 0)
            return rc;
    }
    rc = persist_load(srv);
    if (rc < 0)
        return rc;
    /* Nobody is online yet, whatever presence the store kept. */
    srv->policy->on_start(srv);

    uv_timer_init(loop, &srv->shutdown_timer);
    srv->shutdown_timer.data = srv;
    uv_signal_init(loop, &srv->sig_term);
    uv_signal_init(loop, &srv->sig_int);
    srv->sig_term.data = srv->sig_int.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);

    for (uint32_t i = 0; i < srv->cfg.listener_count; i++) {
        listener *lst = &srv->listeners[i];
        lst->srv = srv;
        lst->w = w;
        lst->cfg = &srv->cfg.listeners[i];
        srv->nlisteners++;
        rc = transport_listener_start(lst);
        if (rc == 0)
            rc = start_listener(srv, lst);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void worker_main(void *arg)
{
    worker *w = arg;
    worker_enter(w);
    uv_run(w->loop, UV_RUN_DEFAULT);
}

int server_run(server *srv)
{
    /* The other loops start only now: until here the main thread set
     * everything up alone, without the lock. */
    if (srv->nworkers > 1) {
        loop_lock_enable();
        for (uint32_t i = 1; i < srv->nworkers; i++) {
            worker *w = &srv->workers[i];
            if (uv_thread_create(&w->thread, worker_main, w) < 0) {
                log_error("loop thread %u: cannot start; running %u", i, i);
                srv->nworkers = i; /* no connection was given to it yet */
                break;
            }
        }
    }
    log_info("%u loop thread%s", srv->nworkers, srv->nworkers > 1 ? "s" : "");
    uv_run(srv->loop, UV_RUN_DEFAULT);
    for (uint32_t i = 1; i < srv->nworkers; i++)
        uv_thread_join(&srv->workers[i].thread);
    return srv->exit_code;
}

static void free_retained(void *value)
{
    msg_unref(value);
}

void server_free(server *srv)
{
    rate_limits_free(srv);
    auth_guard_free(srv);
    if (srv->policy)
        srv->policy->on_free(srv);
    if (srv->retain)
        retain_index_free(srv->retain, free_retained);
    retain_limits_free(srv);
    if (srv->subs)
        sub_index_free(srv->subs);
    hmap_free(&srv->sessions);
    if (srv->store)
        store_close(srv->store);
    for (uint32_t i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        route_scratch_free(w);
        free(w->commits); /* after store_close, which may run callbacks */
        free(w->readbuf);
        free(w->iov);
        free(w->taken);
        free(w->cluster_paused); /* emptied when the cluster stopped */
    }
    for (uint32_t i = 0; i < srv->nworkers; i++)
        if (worker_current() == &srv->workers[i])
            worker_enter(NULL);
    for (uint32_t i = 1; i < srv->nworkers; i++) {
        uv_loop_t *l = srv->workers[i].loop;
        if (!l)
            continue;
        /* Closed by its thread; after a failed start, here. */
        uv_walk(l, close_leftover, NULL);
        uv_run(l, UV_RUN_NOWAIT);
        uv_loop_close(l);
        free(l);
    }
    free(srv->workers);
    free(srv->failed_gens);
    free(srv->wake);
    for (uint32_t i = 0; srv->listeners && i < srv->nlisteners; i++)
        transport_listener_free(&srv->listeners[i]);
    free(srv->listeners);
    config_free(&srv->cfg);
}
