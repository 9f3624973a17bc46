#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "errors.h"
#include "log.h"
#include "reason.h"
#include "route.h"
#include "topic.h"

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

acl_identity session_identity(const session *s)
{
    return (acl_identity){
        mqtt_str_from(s->client_id, s->client_id_len),
        {(const uint8_t *)s->username, s->username ? s->username_len : 0}};
}

bool session_may_receive(const session *s, mqtt_str topic)
{
    const acl *a = s->srv->cfg.acl;
    if (acl_rule_count(a) == 0)
        return true; /* the default decides alike for every topic */
    acl_identity who = session_identity(s);
    return acl_check(a, &who, ACL_SUBSCRIBE, topic);
}

int session_set_username(session *s, mqtt_str username, bool present)
{
    char *copy = NULL;
    if (present) {
        copy = malloc(username.len + 1);
        if (!copy)
            return IMQTT_ENOMEM;
        memcpy(copy, username.ptr, username.len);
        copy[username.len] = '\0';
    }
    free(s->username);
    s->username = copy;
    s->username_len = (uint16_t)username.len;
    return 0;
}

session *session_find(server *srv, mqtt_str client_id)
{
    return hmap_get(&srv->sessions, client_id);
}

session *session_new(server *srv, mqtt_str client_id)
{
    session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->client_id = malloc(client_id.len + 1);
    if (!s->client_id) {
        free(s);
        return NULL;
    }
    memcpy(s->client_id, client_id.ptr, client_id.len);
    s->client_id[client_id.len] = '\0';
    s->client_id_len = (uint16_t)client_id.len;
    s->srv = srv;
    s->next_pid = 1;
    if (hmap_put(&srv->sessions,
                 (mqtt_bytes){(uint8_t *)s->client_id, client_id.len}, s,
                 NULL) < 0) {
        free(s->client_id);
        free(s);
        return NULL;
    }
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = s;
    return s;
}

/* ---- entry lists -------------------------------------------------------- */

static void list_append(entry_list *l, out_entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->count++;
}

static void list_unlink(entry_list *l, out_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    l->count--;
}

static void entry_free(out_entry *e)
{
    msg_unref(e->m);
    free(e);
}

static void list_clear(entry_list *l)
{
    out_entry *e = l->head;
    while (e) {
        out_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    memset(l, 0, sizeof(*l));
}

static out_entry *entry_by_pid(entry_list *l, uint16_t pid)
{
    for (out_entry *e = l->head; e; e = e->next)
        if (e->pid == pid)
            return e;
    return NULL;
}

static uint16_t alloc_pid(session *s)
{
    /* The window is small, so a scan of what is in flight is cheaper than
     * any map; at most one full turn of the id space. */
    for (uint32_t tries = 0; tries < 65535; tries++) {
        uint16_t pid = s->next_pid++;
        if (s->next_pid == 0)
            s->next_pid = 1;
        if (!entry_by_pid(&s->inflight, pid))
            return pid;
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

static uint32_t window(const session *s)
{
    return s->conn ? s->conn->client_receive_max : 0;
}

static bool online(const session *s)
{
    return s->conn && s->conn->state == CONN_ACTIVE;
}

/* Write e to the client. Returns false when the message must be dropped for
 * this client (too large for its maximum packet size). */
static bool send_entry(session *s, out_entry *e)
{
    int rc = conn_send_publish(s->conn, e->m, e->qos, e->pid, e->dup,
                               e->retain, e->sub_ids, e->nsub_ids);
    e->dup = true;
    return rc != IMQTT_ETOOLARGE;
}

static void drop(session *s, const char *why, const msg *m)
{
    s->srv->stats.msgs_dropped++;
    log_debug("dropped message %llu for %s: %s", (unsigned long long)m->id,
              s->client_id, why);
}

void session_pump(session *s)
{
    uint64_t now = server_now(s->srv);
    while (online(s) && s->queue.head && s->inflight.count < window(s)) {
        out_entry *e = s->queue.head;
        list_unlink(&s->queue, e);
        if (msg_expired(e->m, now)) {
            drop(s, "expired", e->m);
            entry_free(e);
            continue;
        }
        e->pid = alloc_pid(s);
        e->state = ENTRY_SENT;
        list_append(&s->inflight, e);
        if (!send_entry(s, e)) {
            list_unlink(&s->inflight, e);
            drop(s, "larger than the client's maximum packet size", e->m);
            entry_free(e);
        }
    }
}

void session_deliver(session *s, msg *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, uint32_t nsub_ids,
                     sub_group *group)
{
    server *srv = s->srv;
    if (msg_expired(m, server_now(srv))) {
        drop(s, "expired", m);
        return;
    }
    if (!session_may_receive(s, msg_topic(m))) {
        drop(s, "not authorized for the topic", m);
        return;
    }
    if (qos == 0) {
        /* QoS 0 is not queued for offline sessions (as Mosquitto), and is
         * dropped rather than buffered for a reader that has fallen
         * behind: the memory bound wins over best effort. */
        if (!online(s)) {
            drop(s, "QoS 0 for an offline session", m);
            return;
        }
        if (conn_output_full(s->conn)) {
            drop(s, "slow reader", m);
            return;
        }
        conn_send_publish(s->conn, m, 0, 0, false, retain, sub_ids, nsub_ids);
        return;
    }
    /* max_queued_messages bounds what waits beyond the window; for an
     * offline session that is everything it has not been sent. */
    bool direct = online(s) && !s->queue.head && s->inflight.count < window(s);
    if (!direct && s->queue.count >= srv->cfg.max_queued_messages) {
        srv->stats.msgs_dropped++;
        log_warn("queue of %s full (%u messages): dropped message %llu",
                 s->client_id, s->queue.count, (unsigned long long)m->id);
        return;
    }
    out_entry *e = malloc(sizeof(*e) + nsub_ids * sizeof(uint32_t));
    if (!e) {
        drop(s, "out of memory", m);
        return;
    }
    *e = (out_entry){.m = msg_ref(m),
                     .qos = qos,
                     .state = ENTRY_QUEUED,
                     .retain = retain,
                     .group = group,
                     .nsub_ids = nsub_ids};
    if (nsub_ids)
        memcpy(e->sub_ids, sub_ids, nsub_ids * sizeof(uint32_t));
    list_append(&s->queue, e);
    session_pump(s);
}

/* ---- acknowledgements from the client ----------------------------------- */

static void complete(session *s, out_entry *e)
{
    list_unlink(&s->inflight, e);
    entry_free(e);
    session_pump(s);
}

int session_on_puback(session *s, uint16_t pid)
{
    out_entry *e = entry_by_pid(&s->inflight, pid);
    if (!e || e->qos != 1)
        return 0; /* unknown ids are ignored, as the spec allows */
    complete(s, e);
    return 0;
}

int session_on_pubrec(session *s, uint16_t pid, uint8_t reason)
{
    out_entry *e = entry_by_pid(&s->inflight, pid);
    if (!e || e->qos != 2) {
        mqtt_packet p = {.type = MQTT_PUBREL};
        p.u.ack.packet_id = pid;
        p.u.ack.reason = MQTT_RC_PACKET_ID_NOT_FOUND;
        return conn_send(s->conn, &p);
    }
    if (reason >= 0x80) {
        /* The receiver refused it: the flow ends here [MQTT-4.3.3]. */
        complete(s, e);
        return 0;
    }
    if (e->state == ENTRY_SENT) {
        e->state = ENTRY_PUBREL;
        msg_unref(e->m); /* delivered: only the id is left to release */
        e->m = NULL;
    }
    mqtt_packet p = {.type = MQTT_PUBREL};
    p.u.ack.packet_id = pid;
    return conn_send(s->conn, &p);
}

int session_on_pubcomp(session *s, uint16_t pid)
{
    out_entry *e = entry_by_pid(&s->inflight, pid);
    if (e && e->state == ENTRY_PUBREL)
        complete(s, e);
    return 0;
}

/* ---- incoming QoS 2 ids -------------------------------------------------- */

bool session_qos2_has(const session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->nqos2_in; i++)
        if (s->qos2_in[i] == pid)
            return true;
    return false;
}

int session_qos2_add(session *s, uint16_t pid)
{
    if (s->nqos2_in == s->qos2_cap) {
        uint32_t cap = s->qos2_cap ? s->qos2_cap * 2 : 8;
        uint16_t *p = realloc(s->qos2_in, cap * sizeof(*p));
        if (!p)
            return IMQTT_ENOMEM;
        s->qos2_in = p;
        s->qos2_cap = cap;
    }
    s->qos2_in[s->nqos2_in++] = pid;
    return 0;
}

bool session_qos2_remove(session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->nqos2_in; i++) {
        if (s->qos2_in[i] == pid) {
            s->qos2_in[i] = s->qos2_in[--s->nqos2_in];
            return true;
        }
    }
    return false;
}

/* ---- subscriptions -------------------------------------------------------- */

int session_subscribe(session *s, mqtt_str filter, const mqtt_sub_opts *o,
                      uint32_t sub_id, bool *existed)
{
    int rc = sub_index_add(s->srv->subs, filter, s, o, sub_id);
    if (rc < 0)
        return rc;
    *existed = rc == 0;
    for (sess_sub *ss = s->subs; ss; ss = ss->next) {
        if (ss->len == filter.len &&
            memcmp(ss->filter, filter.ptr, filter.len) == 0) {
            ss->opts = *o;
            ss->sub_id = sub_id;
            return 0;
        }
    }
    sess_sub *ss = malloc(sizeof(*ss) + filter.len + 1);
    if (!ss) {
        sub_index_remove(s->srv->subs, filter, s);
        return IMQTT_ENOMEM;
    }
    ss->opts = *o;
    ss->sub_id = sub_id;
    ss->len = (uint16_t)filter.len;
    memcpy(ss->filter, filter.ptr, filter.len);
    ss->filter[filter.len] = '\0';
    ss->next = s->subs;
    s->subs = ss;
    s->nsubs++;
    return 0;
}

static void forget_groups(session *s)
{
    /* A group may be freed when its last member leaves; entries must not
     * keep pointing at it. */
    for (out_entry *e = s->inflight.head; e; e = e->next)
        e->group = NULL;
    for (out_entry *e = s->queue.head; e; e = e->next)
        e->group = NULL;
}

int session_unsubscribe(session *s, mqtt_str filter)
{
    int rc = sub_index_remove(s->srv->subs, filter, s);
    for (sess_sub **pp = &s->subs; *pp; pp = &(*pp)->next) {
        sess_sub *ss = *pp;
        if (ss->len == filter.len &&
            memcmp(ss->filter, filter.ptr, filter.len) == 0) {
            *pp = ss->next;
            free(ss);
            s->nsubs--;
            break;
        }
    }
    mqtt_str group, inner;
    if (rc > 0 && mqtt_share_parse(filter, &group, &inner) == 1)
        forget_groups(s);
    return rc;
}

/* ---- wills, expiry, end ---------------------------------------------------- */

void session_set_will(session *s, msg *will, uint32_t delay)
{
    msg_unref(s->will);
    s->will = will;
    s->will_delay = delay;
    s->will_at = 0;
}

void session_publish_will(session *s)
{
    msg *w = s->will;
    if (!w)
        return;
    s->will = NULL;
    s->will_at = 0;
    if (s->will_expiry)
        w->expiry_at = server_now(s->srv) + (uint64_t)s->will_expiry * 1000;
    log_debug("publishing the will of %s", s->client_id);
    route_message(s->srv, w, NULL);
    msg_unref(w);
}

static void arm_timer(session *s);

static void on_timer(uv_timer_t *t)
{
    session *s = t->data;
    uint64_t now = server_now(s->srv);
    if (s->will_at && now >= s->will_at)
        session_publish_will(s);
    if (s->expire_at && now >= s->expire_at) {
        log_info("session %s expired", s->client_id);
        session_end(s);
        return;
    }
    arm_timer(s);
}

static void arm_timer(session *s)
{
    uint64_t next = 0;
    if (s->will_at)
        next = s->will_at;
    if (s->expire_at && (!next || s->expire_at < next))
        next = s->expire_at;
    if (!next) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = server_now(s->srv);
    uv_timer_start(&s->timer, on_timer, next > now ? next - now : 0, 0);
}

void session_connection_lost(session *s, bool send_will)
{
    s->conn = NULL;
    uint64_t now = server_now(s->srv);
    if (!send_will)
        session_set_will(s, NULL, 0);
    if (s->expiry == 0) {
        session_end(s);
        return;
    }
    if (s->will) {
        /* Sent at the end of the will delay or of the session, whichever
         * comes first [MQTT-3.1.3-9]. */
        uint32_t delay = s->will_delay < s->expiry ? s->will_delay : s->expiry;
        if (delay == 0)
            session_publish_will(s);
        else
            s->will_at = now + (uint64_t)delay * 1000;
    }
    if (s->expiry != UINT32_MAX)
        s->expire_at = now + (uint64_t)s->expiry * 1000;
    arm_timer(s);
}

void session_attach(session *s, conn *c)
{
    s->conn = c;
    s->version = c->version;
    s->will_at = 0;
    s->expire_at = 0;
    uv_timer_stop(&s->timer);
    /* Resend what the previous connection left unacknowledged, in order,
     * with DUP set [MQTT-4.4.0-1]. */
    for (out_entry *e = s->inflight.head; e;) {
        out_entry *next = e->next;
        if (e->state == ENTRY_PUBREL) {
            mqtt_packet p = {.type = MQTT_PUBREL};
            p.u.ack.packet_id = e->pid;
            conn_send(c, &p);
        } else if (!send_entry(s, e)) {
            list_unlink(&s->inflight, e);
            entry_free(e);
        }
        e = next;
    }
    session_pump(s);
}

/* Hand the shared-subscription messages of a leaving member to another
 * member of the same group [MQTT-4.8.2-6]. */
static void hand_over_shared(session *s, entry_list *l)
{
    for (out_entry *e = l->head; e; e = e->next) {
        sub_group *g = e->group;
        if (!g || !e->m)
            continue;
        for (uint32_t i = 0; i < g->count; i++) {
            uint32_t k = (g->next + i) % g->count;
            session *other = g->members[k].owner;
            if (other == s)
                continue;
            g->next = (k + 1) % g->count;
            session_deliver(other, e->m, e->qos, e->retain, e->sub_ids,
                            e->nsub_ids, g);
            break;
        }
    }
}

void session_end(session *s)
{
    server *srv = s->srv;
    /* At shutdown sessions are only freed: no will, nothing to hand on. */
    if (!srv->stopping) {
        if (s->will_at || (s->will && !s->conn))
            session_publish_will(s);
        hand_over_shared(s, &s->inflight);
        hand_over_shared(s, &s->queue);
    }
    session_set_will(s, NULL, 0);
    while (s->subs) {
        sess_sub *ss = s->subs;
        s->subs = ss->next;
        sub_index_remove(srv->subs, (mqtt_str){(uint8_t *)ss->filter, ss->len},
                         s);
        free(ss);
    }
    list_clear(&s->inflight);
    list_clear(&s->queue);
    free(s->qos2_in);
    hmap_remove(&srv->sessions,
                (mqtt_bytes){(uint8_t *)s->client_id, s->client_id_len});
    free(s->client_id);
    s->client_id = NULL;
    free(s->username);
    s->username = NULL;
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
