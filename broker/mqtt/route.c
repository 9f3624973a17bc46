#include "route.h"

#include <stdlib.h>
#include <string.h>

#include "cluster_hooks.h"
#include "conn.h"
#include "errors.h"
#include "persist.h"
#include "retain_limits.h"
#include "session.h"

/* One session matched by the current publish. Subscription ids of
 * overlapping subscriptions are chained through the ids array so that a
 * match costs no allocation once the scratch has grown. */
typedef struct route_match {
    session *s;
    uint8_t qos;
    bool retain;
    uint32_t nids;
    uint32_t id_head; /* index + 1 into ids; 0: none */
} route_match;

typedef struct route_id {
    uint32_t id;
    uint32_t next; /* index + 1; 0: end */
} route_id;

typedef struct route_scratch {
    route_match *m;
    uint32_t n, cap;
    route_id *ids;
    uint32_t nids, ids_cap;
    uint32_t *gather;
    uint32_t gather_cap;
} route_scratch;

typedef struct route_ctx {
    server *srv;
    worker *w;
    route_scratch *rs;
    msg *m;
    session *from;
    uint32_t delivered;
    bool oom;
    /* Cluster mode (cluster_hooks.h). groups: shared groups are served
     * here (a single node; or the one group a NATS queue delivery was
     * for: gname/gfilter); else only through NATS queue groups. plain:
     * non-shared subscriptions are served. origin: the publisher's client
     * id on another node (No Local), empty otherwise. */
    bool groups, plain;
    mqtt_str gname, gfilter, origin;
} route_ctx;

static bool same(mqtt_str a, mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool grow(void **p, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 64;
    void *np = realloc(*p, ncap * elem);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

static void add_id(route_ctx *ctx, route_match *rm, uint32_t id)
{
    route_scratch *rs = ctx->rs;
    if (rs->nids == rs->ids_cap &&
        !grow((void **)&rs->ids, &rs->ids_cap, sizeof(*rs->ids))) {
        ctx->oom = true;
        return;
    }
    rs->ids[rs->nids] = (route_id){id, rm->id_head};
    rm->id_head = ++rs->nids;
    rm->nids++;
}

static void on_entry(void *arg, const sub_entry *e)
{
    route_ctx *ctx = arg;
    session *s = e->owner;
    if (!ctx->plain)
        return;
    if (e->opts.no_local &&
        (s == ctx->from ||
         (ctx->origin.len &&
          same(ctx->origin,
               (mqtt_str){(const uint8_t *)s->client_id, s->client_id_len}))))
        return;
    uint8_t qos = e->opts.qos < ctx->m->qos ? e->opts.qos : ctx->m->qos;
    bool retain = e->opts.retain_as_published && ctx->m->retain;
    route_scratch *rs = ctx->rs;
    route_match *rm;
    if (s->route_gen == ctx->srv->route_gen) {
        rm = &rs->m[s->route_slot];
        if (qos > rm->qos)
            rm->qos = qos;
        rm->retain = rm->retain || retain;
    } else {
        if (rs->n == rs->cap &&
            !grow((void **)&rs->m, &rs->cap, sizeof(*rs->m))) {
            ctx->oom = true;
            return;
        }
        s->route_gen = ctx->srv->route_gen;
        s->route_slot = rs->n;
        rm = &rs->m[rs->n++];
        *rm = (route_match){s, qos, retain, 0, 0};
    }
    if (e->sub_id)
        add_id(ctx, rm, e->sub_id);
}

static bool member_ready(const session *s)
{
    if (!s->conn || s->conn->state != CONN_ACTIVE)
        return false;
    return s->queue.count == 0 && session_window_open(s);
}

/* Round robin, preferring a member that can take the message now
 * [MQTT-4.8.2]: each message goes to exactly one member of the group. */
static void on_group(void *arg, sub_group *g)
{
    route_ctx *ctx = arg;
    if (g->count == 0 || !ctx->groups)
        return;
    if (ctx->gname.len &&
        (!same(ctx->gname, g->name) || !same(ctx->gfilter, g->filter)))
        return;
    uint32_t pick = g->next % g->count;
    for (uint32_t i = 0; i < g->count; i++) {
        uint32_t k = (g->next + i) % g->count;
        if (member_ready(g->members[k].owner)) {
            pick = k;
            break;
        }
    }
    g->next = (pick + 1) % g->count;
    const sub_entry *e = &g->members[pick];
    uint8_t qos = e->opts.qos < ctx->m->qos ? e->opts.qos : ctx->m->qos;
    bool retain = e->opts.retain_as_published && ctx->m->retain;
    uint32_t id = e->sub_id;
    session_deliver(e->owner, ctx->m, qos, retain, id ? &id : NULL, id ? 1 : 0,
                    qos ? g : NULL);
    ctx->delivered++;
}

uint32_t route_publish(server *srv, msg *m, session *from)
{
    return route_publish_as(srv, m, msg_topic(m), from);
}

static uint32_t route_local(server *srv, msg *m, mqtt_str topic, session *from,
                            const route_remote *r, bool here);

uint32_t route_publish_as(server *srv, msg *m, mqtt_str topic, session *from)
{
    uint32_t n = route_local(srv, m, topic, from, NULL, false);
    const cluster_hooks *h = srv->cluster_hooks;
    if (h)
        h->on_route(h->arg, m, topic, from);
    return n;
}

uint32_t route_publish_remote(server *srv, msg *m, mqtt_str topic,
                              const route_remote *r)
{
    return route_local(srv, m, topic, NULL, r, false);
}

/* here: m is for this node's sessions only (route_message_here), shared
 * groups included. */
static uint32_t route_local(server *srv, msg *m, mqtt_str topic, session *from,
                            const route_remote *r, bool here)
{
    /* The scratch of the worker whose thread routes. */
    worker *w = worker_current();
    if (!w->route) {
        w->route = calloc(1, sizeof(*w->route));
        if (!w->route)
            return 0;
    }
    route_scratch *rs = w->route;
    rs->n = rs->nids = 0;
    if (++srv->route_gen == 0)
        srv->route_gen = 1;
    route_ctx ctx = {srv,  w,         rs,        m,
                     from, 0,         false,     !srv->cluster_hooks || here,
                     true, {NULL, 0}, {NULL, 0}, {NULL, 0}};
    if (r) {
        ctx.origin = r->origin;
        ctx.gname = r->group;
        ctx.gfilter = r->group_filter;
        ctx.groups = r->group.len > 0;
        ctx.plain = r->group.len == 0;
    }
    sub_visitor v = {on_entry, on_group, &ctx};
    sub_index_match(srv->subs, topic, &v);

    for (uint32_t i = 0; i < rs->n; i++) {
        route_match *rm = &rs->m[i];
        if (rm->nids > rs->gather_cap) {
            uint32_t *g = realloc(rs->gather, rm->nids * sizeof(*g));
            if (!g)
                continue;
            rs->gather = g;
            rs->gather_cap = rm->nids;
        }
        /* The chain is newest first; deliver ids in subscription order. */
        uint32_t k = rm->nids;
        for (uint32_t at = rm->id_head; at; at = rs->ids[at - 1].next)
            rs->gather[--k] = rs->ids[at - 1].id;
        session_deliver(rm->s, m, rm->qos, rm->retain, rs->gather, rm->nids,
                        NULL);
        ctx.delivered++;
    }
    return ctx.delivered;
}

void route_scratch_free(worker *w)
{
    msg_cache_free();
    route_scratch *rs = w->route;
    if (!rs)
        return;
    free(rs->m);
    free(rs->ids);
    free(rs->gather);
    free(rs);
    w->route = NULL;
}

uint32_t route_message(server *srv, msg *m, session *from)
{
    persist_retained(srv, m); /* no-op unless m->retain */
    if (m->retain && retain_set(srv, m, from) == 0) {
        const cluster_hooks *h = srv->cluster_hooks;
        if (h)
            h->on_retain(h->arg, m);
    }
    srv->stats.msgs_received++;
    uint32_t n = route_publish(srv, m, from);
    srv->policy->sync(srv, m, from);
    return n;
}

uint32_t route_message_here(server *srv, msg *m)
{
    persist_retained(srv, m); /* no-op unless m->retain */
    if (m->retain && retain_set(srv, m, NULL) == 0) {
        const cluster_hooks *h = srv->cluster_hooks;
        if (h)
            h->on_retain(h->arg, m);
    }
    srv->stats.msgs_received++;
    return route_local(srv, m, msg_topic(m), NULL, NULL, true);
}
