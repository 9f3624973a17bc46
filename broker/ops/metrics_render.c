/* Prometheus text format 0.0.4 rendering of the broker's counters. */
#include "metrics_render.h"

#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_durable.h"
#include "cluster_link.h"
#include "cluster_nodes.h"
#include "cluster_retain.h"
#include "cluster_route.h"
#include "conn.h"
#include "im_push.h"
#include "metrics_process.h"
#include "retain_limits.h"
#include "server.h"
#include "session.h"

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

__attribute__((format(printf, 2, 3))) static void
sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void one(sbuf *b, const char *name, const char *type, const char *help,
                uint64_t v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
              type, name, (unsigned long long)v);
}

static void by_qos(sbuf *b, const char *name, const char *help,
                   const uint64_t v[3])
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int q = 0; q < 3; q++)
        sb_printf(b, "%s{qos=\"%d\"} %llu\n", name, q,
                  (unsigned long long)v[q]);
}

static void commit_histogram(sbuf *b, const metrics_histogram *h)
{
    static const char *const bounds[] = {
#define X(v) #v,
        METRICS_COMMIT_BUCKETS
#undef X
    };
    const char *n = "imqtt_store_commit_seconds";
    sb_printf(b,
              "# HELP %s Store commit latency, from store_commit to its done "
              "callback\n# TYPE %s histogram\n",
              n, n);
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_COMMIT_NBUCKETS; i++) {
        cum += h->bucket[i];
        sb_printf(b, "%s_bucket{le=\"%s\"} %llu\n", n, bounds[i],
                  (unsigned long long)cum);
    }
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", n,
              (unsigned long long)h->count, n, (double)h->sum_ns / 1e9, n,
              (unsigned long long)h->count);
}

/* Messages waiting beyond the window, over all sessions and the largest
 * one: walked at scrape time so that queueing pays nothing for it. For a
 * persistent session the waiting entries are those only in the store. */
static void queue_depths(sbuf *b, server *srv)
{
    uint64_t total = 0, max = 0, bytes = 0;
    uint32_t pos = 0;
    const session *s;
    while ((s = hmap_next(&srv->sessions, &pos))) {
        uint64_t n = s->queue.count + s->disk_count;
        total += n;
        bytes += s->queued_bytes;
        if (n > max)
            max = n;
    }
    one(b, "imqtt_queued_messages", "gauge",
        "Messages queued beyond the inflight window, all sessions", total);
    one(b, "imqtt_queued_messages_max", "gauge",
        "Messages queued beyond the inflight window, largest session", max);
    one(b, "imqtt_queued_bytes", "gauge",
        "Payload bytes queued beyond the inflight window, all sessions", bytes);
}

/* Offline push (docs/im.md): only when im.push is configured. */
static void push_metrics(sbuf *b, const server *srv)
{
    im_push_stats ps;
    if (!im_push_stats_get(srv, &ps))
        return;
    one(b, "imqtt_push_events_total", "counter",
        "Offline-push events emitted (one per user, or per device)", ps.events);
    if (!ps.webhook)
        return;
    const webhook_stats *w = &ps.wh;
    one(b, "imqtt_push_webhook_posted_total", "counter",
        "Push events in webhook POSTs answered 2xx", w->posted);
    one(b, "imqtt_push_webhook_failed_total", "counter",
        "Webhook POST attempts that failed (connection, timeout, HTTP status)",
        w->failed);
    one(b, "imqtt_push_webhook_retried_total", "counter",
        "Webhook POST attempts that were retries", w->retried);
    static const char *const causes[] = {"queue_full", "retries", "rejected"};
    const uint64_t dropped[] = {w->dropped_full, w->dropped_retries,
                                w->dropped_4xx};
    sb_printf(b, "# HELP imqtt_push_webhook_dropped_total Push events never "
                 "posted, by cause\n"
                 "# TYPE imqtt_push_webhook_dropped_total counter\n");
    for (int i = 0; i < 3; i++)
        sb_printf(b, "imqtt_push_webhook_dropped_total{cause=\"%s\"} %llu\n",
                  causes[i], (unsigned long long)dropped[i]);
    one(b, "imqtt_push_webhook_queued", "gauge",
        "Push events waiting for a webhook POST", w->queued);
    one(b, "imqtt_push_webhook_in_flight", "gauge",
        "Push events in webhook POSTs not answered yet (retries included)",
        w->in_flight);
}

static const struct {
    const char *name, *label, *help;
} defs[METRIC_COUNT_] = {
#define METRIC_DEF(id, m, label, help) {m, label, help},
    METRICS_MAP(METRIC_DEF)
#undef METRIC_DEF
};

char *metrics_render(server *srv, size_t *len)
{
    sbuf b = {malloc(4096), 0, 4096, false};
    if (!b.p)
        return NULL;
    const server_stats *st = &srv->stats;
    uint64_t pending = 0;
    for (uint32_t i = 0; i < srv->nworkers; i++)
        for (const conn *c = srv->workers[i].conns; c; c = c->next)
            pending += c->out.pending + c->bytes_in_flight;

    one(&b, "imqtt_connections", "gauge", "Open MQTT connections",
        server_nconns(srv));
    one(&b, "imqtt_connections_total", "counter",
        "Connections accepted since start", st->conns_total);
    sb_printf(&b, "# HELP imqtt_loop_connections Open MQTT connections per "
                  "loop thread (threads)\n"
                  "# TYPE imqtt_loop_connections gauge\n");
    for (uint32_t i = 0; i < srv->nworkers; i++)
        sb_printf(&b, "imqtt_loop_connections{loop=\"%u\"} %u\n", i,
                  srv->workers[i].nconns);
    one(&b, "imqtt_sessions", "gauge", "Sessions (online and offline)",
        srv->sessions.count);
    by_qos(&b, "imqtt_messages_received_total",
           "PUBLISH packets received from clients, by QoS",
           srv->metrics.received_qos);
    by_qos(&b, "imqtt_messages_sent_total",
           "PUBLISH packets sent to clients, by QoS", srv->metrics.sent_qos);
    one(&b, "imqtt_bytes_received_total", "counter",
        "Bytes read from client sockets", st->bytes_received);
    one(&b, "imqtt_bytes_sent_total", "counter",
        "Bytes written to client sockets", st->bytes_sent);
    one(&b, "imqtt_retained_messages", "gauge", "Retained messages",
        retain_index_count(srv->retain));
    one(&b, "imqtt_retained_bytes", "gauge",
        "Topic and payload bytes of the retained messages", retain_bytes(srv));
    one(&b, "imqtt_subscriptions", "gauge", "Subscriptions",
        sub_index_count(srv->subs));
    one(&b, "imqtt_output_pending_bytes", "gauge",
        "Bytes queued for writing to clients, all connections", pending);
    one(&b, "imqtt_store_size_bytes", "gauge", "Size of the LMDB data file",
        store_file_size(srv->store));
    one(&b, "imqtt_store_commits_total", "counter", "Store batch commits",
        store_commit_count(srv->store));
    one(&b, "imqtt_store_messages", "gauge",
        "Messages in the store (0 without one)",
        store_message_count(srv->store));
    commit_histogram(&b, &srv->metrics.commit);
    queue_depths(&b, srv);
    push_metrics(&b, srv);
    if (srv->cluster) {
        one(&b, "imqtt_cluster_nats_connected", "gauge",
            "1 while the node's NATS connection is up (cluster mode)",
            cluster_link_connected(srv->cluster));
        one(&b, "imqtt_cluster_nats_reconnects_total", "counter",
            "NATS reconnections since start",
            cluster_link_reconnects(srv->cluster));
        one(&b, "imqtt_cluster_queue_waits_total", "counter",
            "Times NATS delivery waited because the loop's queue was full",
            cluster_link_waits(srv->cluster));
        one(&b, "imqtt_cluster_slow_consumer_total", "counter",
            "Messages batches libnats dropped: a subscription's pending "
            "buffer was full (the node fell behind)",
            cluster_link_slow(srv->cluster));
    }
    if (srv->cluster_nodes)
        one(&b, "imqtt_cluster_nodes_seen", "gauge",
            "nodes heard within the last 3 heartbeats, this one included "
            "(cluster mode)",
            cluster_nodes_seen(srv->cluster_nodes));
    if (srv->cluster_route) {
        cluster_route_stats rs;
        cluster_route_get_stats(srv->cluster_route, &rs);
        one(&b, "imqtt_cluster_published_total", "counter",
            "Messages this node sent to the other nodes over NATS",
            rs.published);
        one(&b, "imqtt_cluster_publish_failed_total", "counter",
            "Messages NATS refused (too large, no subject, no buffer)",
            rs.publish_failed);
        one(&b, "imqtt_cluster_received_total", "counter",
            "Messages from other nodes routed to local sessions", rs.received);
        one(&b, "imqtt_cluster_duplicates_total", "counter",
            "Second copies of one message (overlapping NATS subscriptions) "
            "dropped",
            rs.duplicates);
        one(&b, "imqtt_cluster_own_total", "counter",
            "This node's own messages coming back from NATS, dropped", rs.own);
        one(&b, "imqtt_cluster_invalid_total", "counter",
            "NATS messages on the node's subjects that did not decode",
            rs.invalid);
        one(&b, "imqtt_cluster_subjects", "gauge",
            "NATS subscriptions the node holds for its local filters",
            rs.subjects);
        cluster_durable *cd = cluster_route_durable(srv->cluster_route);
        if (cd) {
            cluster_durable_stats ds;
            cluster_durable_get_stats(cd, &ds);
            one(&b, "imqtt_cluster_stream_published_total", "counter",
                "QoS 1/2 publications sent to the cluster's stream",
                ds.published);
            one(&b, "imqtt_cluster_stream_acked_total", "counter",
                "Publications the stream acknowledged", ds.acked);
            one(&b, "imqtt_cluster_stream_failed_total", "counter",
                "Publications the stream refused or did not answer in time "
                "(their PUBLISHes were refused)",
                ds.failed);
            one(&b, "imqtt_cluster_stream_resent_total", "counter",
                "Publications sent to the stream again (same id) after 2 s "
                "without an answer",
                ds.resent);
            one(&b, "imqtt_cluster_stream_inflight", "gauge",
                "Publications waiting for the stream's answer", ds.inflight);
        }
        cluster_retain *cr = cluster_route_retain(srv->cluster_route);
        if (cr) {
            cluster_retain_stats ks;
            cluster_retain_get_stats(cr, &ks);
            one(&b, "imqtt_cluster_retained_ready", "gauge",
                "1 once the retained KV bucket is open and read", ks.ready);
            one(&b, "imqtt_cluster_retained_written_total", "counter",
                "Retained sets and clears the KV bucket took", ks.written);
            one(&b, "imqtt_cluster_retained_failed_total", "counter",
                "Retained writes the KV bucket did not take", ks.failed);
            one(&b, "imqtt_cluster_retained_dropped_total", "counter",
                "Retained writes dropped: the queue to the bucket was full",
                ks.dropped);
            one(&b, "imqtt_cluster_retained_applied_total", "counter",
                "Changes of the KV bucket applied to the local retained index",
                ks.applied);
            one(&b, "imqtt_cluster_retained_invalid_total", "counter",
                "KV bucket values that did not decode", ks.invalid);
        }
    }

    /* Counters sharing a name are one metric family with a cause label:
     * HELP and TYPE once, before the first. */
    for (int i = 0; i < METRIC_COUNT_; i++) {
        bool first = i == 0 || strcmp(defs[i - 1].name, defs[i].name) != 0;
        if (first)
            sb_printf(&b, "# HELP %s %s\n# TYPE %s counter\n", defs[i].name,
                      defs[i].help, defs[i].name);
        if (defs[i].label[0])
            sb_printf(&b, "%s{cause=\"%s\"} %llu\n", defs[i].name,
                      defs[i].label, (unsigned long long)srv->metrics.v[i]);
        else
            sb_printf(&b, "%s %llu\n", defs[i].name,
                      (unsigned long long)srv->metrics.v[i]);
    }
    char proc[4096];
    size_t plen = metrics_process_text(proc, sizeof(proc));
    sb_printf(&b, "%.*s", (int)plen, proc);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
