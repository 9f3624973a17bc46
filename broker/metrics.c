/* Prometheus text format 0.0.4 rendering of the broker's counters. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "server.h"

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
    for (const conn *c = srv->conns; c; c = c->next)
        pending += c->out.pending + c->bytes_in_flight;

    one(&b, "imqtt_connections", "gauge", "Open MQTT connections", srv->nconns);
    one(&b, "imqtt_connections_total", "counter",
        "Connections accepted since start", st->conns_total);
    one(&b, "imqtt_sessions", "gauge", "Sessions (online and offline)",
        srv->sessions.count);
    one(&b, "imqtt_messages_received_total", "counter",
        "PUBLISH packets received from clients", st->msgs_received);
    one(&b, "imqtt_messages_sent_total", "counter",
        "PUBLISH packets sent to clients", st->msgs_sent);
    one(&b, "imqtt_messages_dropped_total", "counter",
        "Messages dropped (queue full, too large, expired, slow reader)",
        st->msgs_dropped);
    one(&b, "imqtt_bytes_received_total", "counter",
        "Bytes read from client sockets", st->bytes_received);
    one(&b, "imqtt_bytes_sent_total", "counter",
        "Bytes written to client sockets", st->bytes_sent);
    one(&b, "imqtt_retained_messages", "gauge", "Retained messages",
        retain_index_count(srv->retain));
    one(&b, "imqtt_subscriptions", "gauge", "Subscriptions",
        sub_index_count(srv->subs));
    one(&b, "imqtt_output_pending_bytes", "gauge",
        "Bytes queued for writing to clients, all connections", pending);
    one(&b, "imqtt_store_size_bytes", "gauge", "Size of the LMDB data file",
        store_file_size(srv->store));
    one(&b, "imqtt_store_commits_total", "counter", "Store batch commits",
        store_commit_count(srv->store));

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
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
