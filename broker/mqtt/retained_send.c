/* Retained messages of a SUBSCRIBE, in slices (retained_send.h). */
#include "retained_send.h"

#include <stdlib.h>

#include "log.h"
#include "loop_lock.h"
#include "session.h"

/* Ticks while a backlog has room; while every backlog waits for its
 * client, only every RETAINED_WAIT_MS. */
#define RETAINED_WAIT_MS 20

typedef struct retained_item {
    msg *m; /* holds a reference */
    uint32_t sub_id;
    uint8_t qos;
} retained_item;

struct retained_backlog {
    retained_item *items;
    uint32_t n, cap, next;
    conn *c;                /* holds a reference while listed */
    retained_backlog *link; /* the pacer's list */
};

struct retained_pacer {
    uv_timer_t timer;
    server *srv;
    retained_backlog *head;
    bool running;
};

static bool has_room(const conn *c, uint8_t qos)
{
    const server *srv = c->srv;
    if (c->state != CONN_ACTIVE || !c->sess)
        return false;
    if (conn_unwritten(c) > srv->cfg.output_buffer / 2)
        return false;
    if (qos == 0)
        return true;
    const session *s = c->sess;
    uint64_t queued = s->queue.count + s->disk_count;
    return queued == 0 || queued < srv->cfg.max_queued_messages / 2;
}

static void deliver(conn *c, msg *m, uint8_t qos, uint32_t sub_id)
{
    if (msg_expired(m, server_now(c->srv)))
        return;
    uint8_t q = m->qos < qos ? m->qos : qos;
    /* Retained messages go out with RETAIN set [MQTT-3.3.1-8]. */
    session_deliver(c->sess, m, q, true, sub_id ? &sub_id : NULL,
                    sub_id ? 1 : 0, NULL);
}

static void backlog_free(retained_backlog *b)
{
    for (uint32_t i = b->next; i < b->n; i++)
        msg_unref(b->items[i].m);
    free(b->items);
    conn_unref(b->c);
    free(b);
}

/* Send up to RETAINED_SLICE of b; returns how many. */
static uint32_t send_slice(retained_backlog *b)
{
    uint32_t sent = 0;
    while (b->next < b->n && sent < RETAINED_SLICE &&
           has_room(b->c, b->items[b->next].qos)) {
        retained_item *it = &b->items[b->next++];
        deliver(b->c, it->m, it->qos, it->sub_id);
        msg_unref(it->m);
        sent++;
    }
    return sent;
}

static void on_tick(uv_timer_t *h);

static void schedule(retained_pacer *p, uint64_t ms)
{
    if (!server_on_main(p->srv)) {
        /* Its timer is the main loop's: run_main_queue starts it there. */
        p->srv->pacer_wanted = true;
        worker_wake(&p->srv->workers[0]);
        return;
    }
    uv_timer_start(&p->timer, on_tick, ms, 0);
}

void retained_pacer_kick(server *srv)
{
    if (srv->retained_pacer && srv->retained_pacer->head)
        schedule(srv->retained_pacer, 0);
}

static void on_tick_locked(uv_timer_t *h)
{
    retained_pacer *p = h->data;
    bool progress = false;
    for (retained_backlog **pp = &p->head; *pp;) {
        retained_backlog *b = *pp;
        if (b->c->state == CONN_ACTIVE && conn_retained(b->c) == b &&
            send_slice(b) > 0)
            progress = true;
        bool done = b->next == b->n || b->c->state != CONN_ACTIVE ||
                    conn_retained(b->c) != b;
        if (done) {
            *pp = b->link;
            if (conn_retained(b->c) == b)
                b->c->extra->retained = NULL;
            backlog_free(b);
            continue;
        }
        pp = &b->link;
    }
    if (p->head)
        schedule(p, progress ? 0 : RETAINED_WAIT_MS);
}

static void on_tick(uv_timer_t *h)
{
    loop_lock();
    on_tick_locked(h);
    loop_unlock();
}

retained_pacer *retained_pacer_start(server *srv)
{
    retained_pacer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->srv = srv;
    uv_timer_init(srv->loop, &p->timer);
    p->timer.data = p;
    srv->retained_pacer = p;
    return p;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void retained_pacer_stop(retained_pacer *p)
{
    if (!p)
        return;
    while (p->head) {
        retained_backlog *b = p->head;
        p->head = b->link;
        if (conn_retained(b->c) == b)
            b->c->extra->retained = NULL;
        backlog_free(b);
    }
    p->srv->retained_pacer = NULL;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}

typedef struct match_ctx {
    conn *c;
    uint8_t qos;
    uint32_t sub_id;
    uint32_t sent; /* sent at once */
    bool nomem;
} match_ctx;

static retained_backlog *backlog_of(conn *c)
{
    retained_pacer *p = c->srv->retained_pacer;
    if (conn_retained(c))
        return conn_retained(c);
    conn_extra *x = conn_extra_get(c);
    if (!x)
        return NULL;
    retained_backlog *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->c = c;
    conn_ref(c);
    b->link = p->head;
    p->head = b;
    x->retained = b;
    schedule(p, 0);
    return b;
}

static void on_match(void *arg, mqtt_str topic, void *value)
{
    (void)topic;
    match_ctx *x = arg;
    conn *c = x->c;
    msg *m = value;
    /* In order: once a backlog exists, everything goes behind it. */
    if (!conn_retained(c) && x->sent < RETAINED_SLICE && has_room(c, x->qos)) {
        x->sent++;
        deliver(c, m, x->qos, x->sub_id);
        return;
    }
    if (!c->srv->retained_pacer || x->nomem) {
        deliver(c, m, x->qos, x->sub_id); /* the old way: all at once */
        return;
    }
    retained_backlog *b = backlog_of(c);
    if (b && b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        retained_item *v = realloc(b->items, cap * sizeof(*v));
        if (v) {
            b->items = v;
            b->cap = cap;
        }
    }
    if (!b || b->n == b->cap) {
        x->nomem = true;
        log_warn("%s: out of memory for retained messages: sending at once",
                 c->sess->client_id);
        deliver(c, m, x->qos, x->sub_id);
        return;
    }
    b->items[b->n++] = (retained_item){msg_ref(m), x->sub_id, x->qos};
}

void retained_send(conn *c, mqtt_str filter, uint8_t qos, uint32_t sub_id)
{
    match_ctx x = {c, qos, sub_id, 0, false};
    retain_index_match(c->srv->retain, filter, on_match, &x);
}
