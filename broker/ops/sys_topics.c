/* $SYS/broker/... (see sys_topics.h). */
#include "sys_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_link.h"
#include "cluster_nodes.h"
#include "log.h"
#include "loop_lock.h"
#include "msg.h"
#include "retain_limits.h"
#include "route.h"

#ifndef IMQTT_VERSION
#error "IMQTT_VERSION comes from project(VERSION) in CMakeLists.txt"
#endif

/* Load averages as Mosquitto computes them: per-minute rates, smoothed
 * over 1, 5 and 15 minutes. */
enum {
    LOAD_MSG_RX,
    LOAD_MSG_TX,
    LOAD_BYTES_RX,
    LOAD_BYTES_TX,
    LOAD_CONN,
    LOAD_N
};
static const char *const load_names[LOAD_N] = {
    "messages/received", "messages/sent", "bytes/received", "bytes/sent",
    "connections"};
static const double load_minutes[3] = {1, 5, 15};

struct sys_topics {
    uv_timer_t timer;
    server *srv;
    uint64_t start_ms, last_ms;
    uint64_t last[LOAD_N];
    double load[LOAD_N][3];
};

static uint64_t counter(const server *srv, int i)
{
    const server_stats *s = &srv->stats;
    switch (i) {
    case LOAD_MSG_RX:
        return s->msgs_received;
    case LOAD_MSG_TX:
        return s->msgs_sent;
    case LOAD_BYTES_RX:
        return s->bytes_received;
    case LOAD_BYTES_TX:
        return s->bytes_sent;
    default:
        return s->conns_total;
    }
}

/* Retain and deliver, without counting it as a received message and
 * without writing it to the store. */
static void publish(server *srv, const char *topic, const char *value)
{
    mqtt_str t = mqtt_str_from(topic, strlen(topic));
    msg *cur = retain_index_get(srv->retain, t);
    if (cur && cur->payload_len == strlen(value) &&
        memcmp(msg_payload(cur).ptr, value, cur->payload_len) == 0)
        return; /* unchanged: Mosquitto does not resend either */
    msg *m = msg_new(
        t, NULL, (mqtt_bytes){(const uint8_t *)value, (uint32_t)strlen(value)},
        0, true, 0, ++srv->next_msg_id);
    if (!m)
        return;
    retain_set(srv, m, NULL);
    route_publish(srv, m, NULL);
    msg_unref(m);
}

static void publish_u64(server *srv, const char *topic, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    publish(srv, topic, buf);
}

static void update(sys_topics *st)
{
    server *srv = st->srv;
    uint64_t now = server_now(srv);
    double dt = (double)(now - st->last_ms) / 1000.0;
    char topic[96], val[48];
    for (int i = 0; i < LOAD_N; i++) {
        uint64_t v = counter(srv, i);
        double per_min = dt > 0 ? (double)(v - st->last[i]) * 60.0 / dt : 0;
        st->last[i] = v;
        for (int k = 0; k < 3; k++) {
            /* 1 - e^-x ~ x for a period much shorter than the window;
             * capped for a late timer. */
            double a = dt / (60.0 * load_minutes[k]);
            if (a > 1.0)
                a = 1.0;
            st->load[i][k] += a * (per_min - st->load[i][k]);
            snprintf(topic, sizeof(topic), "$SYS/broker/load/%s/%gmin",
                     load_names[i], load_minutes[k]);
            snprintf(val, sizeof(val), "%.2f", st->load[i][k]);
            publish(srv, topic, val);
        }
    }
    st->last_ms = now;
    const server_stats *s = &srv->stats;
    publish(srv, "$SYS/broker/version", "imqtt " IMQTT_VERSION);
    snprintf(val, sizeof(val), "%llu seconds",
             (unsigned long long)((now - st->start_ms) / 1000));
    publish(srv, "$SYS/broker/uptime", val);
    uint32_t sessions = srv->sessions.count;
    uint32_t nconns = server_nconns(srv);
    publish_u64(srv, "$SYS/broker/clients/connected", nconns);
    publish_u64(srv, "$SYS/broker/clients/total",
                sessions > nconns ? sessions : nconns);
    publish_u64(srv, "$SYS/broker/clients/disconnected",
                sessions > nconns ? sessions - nconns : 0);
    publish_u64(srv, "$SYS/broker/messages/received", s->msgs_received);
    publish_u64(srv, "$SYS/broker/messages/sent", s->msgs_sent);
    publish_u64(srv, "$SYS/broker/publish/messages/dropped", s->msgs_dropped);
    publish_u64(srv, "$SYS/broker/bytes/received", s->bytes_received);
    publish_u64(srv, "$SYS/broker/bytes/sent", s->bytes_sent);
    publish_u64(srv, "$SYS/broker/subscriptions/count",
                sub_index_count(srv->subs));
    /* Messages in LMDB (each once); 0 with store.durability none. */
    publish_u64(srv, "$SYS/broker/store/messages/count",
                store_message_count(srv->store));
    publish_u64(srv, "$SYS/broker/retained messages/count",
                retain_index_count(srv->retain));
    /* cluster mode: this node's view of the cluster (docs/cluster.md) */
    if (srv->cluster)
        publish_u64(srv, "$SYS/broker/cluster/nats_connected",
                    cluster_link_connected(srv->cluster));
    if (srv->cluster_nodes)
        publish_u64(srv, "$SYS/broker/cluster/nodes",
                    cluster_nodes_seen(srv->cluster_nodes));
}

static void on_timer_locked(uv_timer_t *t)
{
    update(t->data);
}

static void on_timer(uv_timer_t *t)
{
    loop_lock();
    on_timer_locked(t);
    loop_unlock();
}

sys_topics *sys_topics_start(server *srv)
{
    sys_topics *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->srv = srv;
    st->start_ms = st->last_ms = server_now(srv);
    uv_timer_init(srv->loop, &st->timer);
    st->timer.data = st;
    sys_topics_set_interval(st, srv->cfg.sys_interval);
    return st;
}

void sys_topics_set_interval(sys_topics *st, uint32_t seconds)
{
    if (!st)
        return;
    uv_timer_stop(&st->timer);
    if (seconds == 0)
        return;
    /* The first values right away: a monitor need not wait a period. */
    uv_timer_start(&st->timer, on_timer, 0, (uint64_t)seconds * 1000);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void sys_topics_stop(sys_topics *st)
{
    if (st && !uv_is_closing((uv_handle_t *)&st->timer))
        uv_close((uv_handle_t *)&st->timer, on_closed);
}
