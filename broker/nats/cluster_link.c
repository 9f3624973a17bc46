/* The node's NATS connection on the loop (cluster_link.h). */
#include "cluster_link.h"
#include "cluster_nats.h"

#include <nats/nats.h>

#include "log.h"
#include "loop_lock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages waiting for the loop. A full queue holds libnats's delivery
 * thread until the loop has drained some (back-pressure: libnats then
 * buffers per subscription, up to its pending limits), because durable
 * messages (QoS 1/2, already acknowledged to their publisher) arrive here
 * too and must not be dropped by the node that is to deliver them. */
#define LINK_QUEUE_CAP 4096

struct cluster_link {
    uv_loop_t *loop;
    const cluster_config *cc; /* borrowed */
    natsConnection *nc;
    natsSubscription *inbox;
    char inbox_subject[128];
    uv_async_t async; /* wakes the loop: messages or a state change */

    /* Messages that are not for the inbox go to the sink (cluster_route.c),
     * on the loop under the loop lock; NULL: dropped. */
    cluster_link_sink sink;
    void *sink_arg;
    cluster_link_lost_cb lost; /* on the loop, under the loop lock */
    void *lost_arg;
    /* Offered every message first (cluster_nodes.c: heartbeats, presence);
     * on the loop under the loop lock; NULL: none. */
    cluster_link_ctl ctl;
    void *ctl_arg;

    uv_mutex_t lock;    /* guards the queue, `closing` and `events` */
    uv_cond_t not_full; /* signalled by the loop when it drains */
    struct queued {
        natsMsg *m;  /* owned by the queue until drained */
        int64_t sid; /* the subscription it arrived on */
    } queue[LINK_QUEUE_CAP];
    uint32_t head, count;
    bool closing;
    unsigned events; /* EV_* seen by library threads, logged by the loop */

    atomic_bool connected;
    atomic_uint_least64_t reconnects, waits, slow;
};

enum { EV_CONNECTED = 1, EV_DISCONNECTED = 2, EV_RECONNECTED = 4 };

static void post(cluster_link *l, unsigned ev, natsMsg *m, int64_t sid)
{
    uv_mutex_lock(&l->lock);
    if (l->closing) {
        uv_mutex_unlock(&l->lock);
        natsMsg_Destroy(m);
        return;
    }
    l->events |= ev;
    if (m) {
        if (l->count == LINK_QUEUE_CAP) {
            atomic_fetch_add(&l->waits, 1);
            uv_async_send(&l->async);
            while (l->count == LINK_QUEUE_CAP && !l->closing)
                uv_cond_wait(&l->not_full, &l->lock);
        }
        if (l->closing) {
            uv_mutex_unlock(&l->lock);
            natsMsg_Destroy(m);
            return;
        }
        l->queue[(l->head + l->count) % LINK_QUEUE_CAP] =
            (struct queued){m, sid};
        l->count++;
    }
    uv_async_send(&l->async); /* under the lock: the handle is open */
    uv_mutex_unlock(&l->lock);
}

/* ---- libnats threads ---------------------------------------------------- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                   void *arg)
{
    (void)nc;
    post(arg, 0, m, natsSubscription_GetID(sub));
}

void cluster_link_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                         void *link)
{
    on_msg(nc, sub, m, link);
}

static void on_connected(natsConnection *nc, void *arg)
{
    (void)nc;
    cluster_link *l = arg;
    atomic_store(&l->connected, true);
    post(l, EV_CONNECTED, NULL, 0);
}

static void on_disconnected(natsConnection *nc, void *arg)
{
    (void)nc;
    cluster_link *l = arg;
    atomic_store(&l->connected, false);
    post(l, EV_DISCONNECTED, NULL, 0);
}

/* libnats dropped messages of a subscription whose pending buffer was
 * full (65,536 messages or 64 MB by default): this node fell that far
 * behind. Counted; what was dropped is not repaired (docs/cluster.md). */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                     void *arg)
{
    (void)nc;
    (void)sub;
    if (err == NATS_SLOW_CONSUMER)
        atomic_fetch_add(&((cluster_link *)arg)->slow, 1);
}

static void on_reconnected(natsConnection *nc, void *arg)
{
    (void)nc;
    cluster_link *l = arg;
    atomic_fetch_add(&l->reconnects, 1);
    atomic_store(&l->connected, true);
    post(l, EV_RECONNECTED, NULL, 0);
}

/* ---- the loop ----------------------------------------------------------- */

static void handle(cluster_link *l, natsMsg *m, int64_t sid)
{
    if (l->inbox && sid == natsSubscription_GetID(l->inbox)) {
        const char *reply = natsMsg_GetReply(m);
        if (reply && *reply)
            natsConnection_PublishString(l->nc, reply, l->cc->node);
        natsMsg_Destroy(m);
        return;
    }
    if (l->ctl && l->ctl(l->ctl_arg, m, sid))
        return;
    if (l->sink)
        l->sink(l->sink_arg, m, sid);
    else
        natsMsg_Destroy(m);
}

static void on_async_locked(uv_async_t *h)
{
    cluster_link *l = h->data;
    struct queued batch[256];
    for (;;) {
        uv_mutex_lock(&l->lock);
        unsigned ev = l->events;
        l->events = 0;
        uint32_t n = 0;
        while (l->count > 0 && n < 256) {
            batch[n++] = l->queue[l->head];
            l->head = (l->head + 1) % LINK_QUEUE_CAP;
            l->count--;
        }
        if (n)
            uv_cond_signal(&l->not_full); /* one delivery thread */
        uv_mutex_unlock(&l->lock);
        if (ev) {
            char url[256] = "?";
            natsConnection_GetConnectedUrl(l->nc, url, sizeof url);
            if (ev & EV_DISCONNECTED) {
                log_warn("cluster: NATS connection lost; reconnecting "
                         "(local clients are still served)");
                if (l->lost)
                    l->lost(l->lost_arg);
            }
            if (ev & (EV_CONNECTED | EV_RECONNECTED))
                log_info("cluster: NATS connected to %s", url);
        }
        for (uint32_t i = 0; i < n; i++)
            handle(l, batch[i].m, batch[i].sid);
        if (n < 256)
            return;
    }
}

static void on_async(uv_async_t *h)
{
    loop_lock();
    on_async_locked(h);
    loop_unlock();
}

cluster_link *cluster_link_start(uv_loop_t *loop, const cluster_config *cc)
{
    cluster_link *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->loop = loop;
    l->cc = cc;
    snprintf(l->inbox_subject, sizeof l->inbox_subject, "%s.node.%s.ping",
             cc->subject_prefix, cc->node);
    if (uv_cond_init(&l->not_full) != 0) {
        free(l);
        return NULL;
    }
    if (uv_mutex_init(&l->lock) != 0) {
        uv_cond_destroy(&l->not_full);
        free(l);
        return NULL;
    }
    uv_async_init(loop, &l->async, on_async);
    l->async.data = l;

    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = cluster_nats_options(o, cc);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* forever */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 500);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, l);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, l);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, l);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, l);
    /* One delivery thread for every subscription: messages reach the
     * queue in the order the connection read them, whichever subscription
     * they matched, so one publisher's order survives overlapping
     * subscriptions (cluster_route.c drops the second copy by sequence). */
    if (s == NATS_OK)
        s = nats_SetMessageDeliveryPoolSize(1);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    /* No natsOptions_SetEventLoop: libnats's libuv adapter keeps polling
     * the socket after libnats has closed it from its reconnect or flusher
     * thread (libuv forbids closing a polled fd; ThreadSanitizer reports
     * the race, and a reused fd number could be polled for the wrong
     * socket). libnats reads on its own thread instead; what it delivers
     * reaches the loop through the queue above either way. */
    if (s == NATS_OK) {
        s = natsConnection_Connect(&l->nc, o);
        if (s == NATS_OK) {
            atomic_store(&l->connected, true);
            post(l, EV_CONNECTED, NULL, 0);
        } else if (s == NATS_NOT_YET_CONNECTED) {
            s = NATS_OK; /* retrying in the background */
        }
    }
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&l->inbox, l->nc, l->inbox_subject, on_msg,
                                     l);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        log_error("cluster: NATS connection: %s", natsStatus_GetText(s));
        cluster_link_stop(l);
        return l; /* stopped; main frees it after the loop */
    }
    return l;
}

void cluster_link_stop(cluster_link *l)
{
    if (!l)
        return;
    uv_mutex_lock(&l->lock);
    bool was = l->closing;
    l->closing = true;
    uv_cond_broadcast(&l->not_full);
    uv_mutex_unlock(&l->lock);
    if (was)
        return;
    if (l->inbox)
        natsSubscription_Unsubscribe(l->inbox);
    if (l->nc)
        natsConnection_Close(l->nc); /* detaches from the loop */
    atomic_store(&l->connected, false);
    uv_close((uv_handle_t *)&l->async, NULL);
}

void cluster_link_release(cluster_link *l)
{
    if (!l)
        return;
    /* what arrived before `closing` and was not drained; later arrivals
     * are destroyed by post() itself */
    uv_mutex_lock(&l->lock);
    for (uint32_t i = 0; i < l->count; i++)
        natsMsg_Destroy(l->queue[(l->head + i) % LINK_QUEUE_CAP].m);
    l->count = 0;
    uv_mutex_unlock(&l->lock);
    natsSubscription_Destroy(l->inbox);
    natsConnection_Destroy(l->nc);
    l->inbox = NULL;
    l->nc = NULL;
}

void cluster_link_free(cluster_link *l)
{
    if (!l)
        return;
    uv_mutex_destroy(&l->lock);
    uv_cond_destroy(&l->not_full);
    free(l);
}

void cluster_link_set_sink(cluster_link *l, cluster_link_sink fn, void *arg)
{
    l->sink = fn;
    l->sink_arg = arg;
}

void cluster_link_on_lost(cluster_link *l, cluster_link_lost_cb fn, void *arg)
{
    l->lost = fn;
    l->lost_arg = arg;
}

void cluster_link_set_ctl(cluster_link *l, cluster_link_ctl fn, void *arg)
{
    l->ctl = fn;
    l->ctl_arg = arg;
}

natsConnection *cluster_link_conn(cluster_link *l)
{
    return l->nc;
}

bool cluster_link_closing(cluster_link *l)
{
    uv_mutex_lock(&l->lock);
    bool c = l->closing;
    uv_mutex_unlock(&l->lock);
    return c;
}

bool cluster_link_connected(const cluster_link *l)
{
    return atomic_load(&((cluster_link *)l)->connected);
}

uint64_t cluster_link_reconnects(const cluster_link *l)
{
    return atomic_load(&((cluster_link *)l)->reconnects);
}

uint64_t cluster_link_slow(const cluster_link *l)
{
    return atomic_load(&((cluster_link *)l)->slow);
}

uint64_t cluster_link_waits(const cluster_link *l)
{
    return atomic_load(&((cluster_link *)l)->waits);
}
