#include "session.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "errors.h"
#include "log.h"
#include "loop_lock.h"
#include "persist.h"
#include "reason.h"
#include "route.h"
#include "topic.h"

static void on_timer_closed_locked(uv_handle_t *h)
{
    free(h->data); /* the session */
    free(h);
}

static void on_timer_closed(uv_handle_t *h)
{
    loop_lock();
    on_timer_closed_locked(h);
    loop_unlock();
}

/* The session's timer, made on first use: an idle online session has
 * none (152 bytes saved per connection). */
static uv_timer_t *session_timer(session *s)
{
    if (!s->timer) {
        s->timer = malloc(sizeof(*s->timer));
        if (!s->timer)
            return NULL;
        uv_timer_init(s->srv->loop, s->timer);
        s->timer->data = s;
    }
    return s->timer;
}

acl_identity session_identity(const session *s)
{
    /* IM sessions: %u is the user and %d the device, from the validated
     * client id, so no identity can carry a wildcard into a rule. */
    if (s->im) {
        acl_identity who = {mqtt_str_from(s->client_id, s->client_id_len)};
        s->srv->policy->identity_parts(s->im, &who.username, &who.device);
        return who;
    }
    return (acl_identity){
        mqtt_str_from(s->client_id, s->client_id_len),
        {(const uint8_t *)s->username, s->username ? s->username_len : 0},
        {NULL, 0}};
}

bool session_may_receive(const session *s, mqtt_str topic)
{
    return s->srv->policy->may_receive(s, topic);
}

int session_set_username(session *s, mqtt_str username, bool present)
{
    char *copy = NULL;
    /* A user name that starts the client id (an IM device's "user" of
     * "user@device") is a view into the id: no 32-byte chunk of its own.
     * It is only ever used with username_len. */
    bool in_id = present && s->client_id && username.len <= s->client_id_len &&
                 (username.len == 0 ||
                  memcmp(s->client_id, username.ptr, username.len) == 0);
    if (in_id) {
        copy = s->client_id;
    } else if (present) {
        copy = malloc(username.len + 1);
        if (!copy)
            return IMQTT_ENOMEM;
        memcpy(copy, username.ptr, username.len);
        copy[username.len] = '\0';
    }
    if (!s->username_in_id)
        free(s->username);
    s->username = copy;
    s->username_in_id = in_id;
    s->username_len = (uint16_t)username.len;
    return 0;
}

session *session_find(server *srv, mqtt_str client_id)
{
    return hmap_get(&srv->sessions, client_id);
}

session *session_new(server *srv, mqtt_str client_id)
{
    session *s =
        calloc(1, offsetof(session, client_id_buf) + client_id.len + 1);
    if (!s)
        return NULL;
    s->client_id = s->client_id_buf;
    memcpy(s->client_id, client_id.ptr, client_id.len);
    s->client_id[client_id.len] = '\0';
    s->client_id_len = (uint16_t)client_id.len;
    s->srv = srv;
    s->next_pid = 1;
    if (hmap_put(&srv->sessions,
                 (mqtt_bytes){(uint8_t *)s->client_id, client_id.len}, s,
                 NULL) < 0) {
        free(s);
        return NULL;
    }
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

/* Entries come from the message cache: with several loops an entry is
 * made on the publisher's loop and freed on the subscriber's. */
static void entry_free(out_entry *e)
{
    msg_unref(e->m);
    msg_block_free(e, sizeof(*e) + e->nsub_ids * sizeof(uint32_t));
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

/* The window's entries by packet id (util/pid_map.h): an acknowledgement
 * finds its entry and a new id is checked free in O(1) whatever the
 * window. With a window of 10,000 a scan per new id was 84 % of the
 * broker's instructions. If the map cannot grow (ENOMEM) the entry stays
 * out of it and pids_partial sends lookups to the list as well, until the
 * window is empty again. */
static out_entry *scan_by_pid(const entry_list *l, uint16_t pid)
{
    for (out_entry *e = l->head; e; e = e->next)
        if (e->pid == pid)
            return e;
    return NULL;
}

static out_entry *inflight_by_pid(const session *s, uint16_t pid)
{
    out_entry *e = pid_map_get(&s->pids, pid);
    if (!e && s->pids_partial)
        e = scan_by_pid(&s->inflight, pid);
    return e;
}

static void inflight_add(session *s, out_entry *e)
{
    if (pid_map_put(&s->pids, e->pid, e) < 0)
        s->pids_partial = true;
    list_append(&s->inflight, e);
    if (e->m)
        s->inflight_bytes += e->m->payload_len;
}

static void inflight_remove(session *s, out_entry *e)
{
    list_unlink(&s->inflight, e);
    pid_map_remove(&s->pids, e->pid);
    if (e->m)
        s->inflight_bytes -= e->m->payload_len;
    if (s->inflight.count == 0) {
        pid_map_clear(&s->pids);
        s->pids_partial = false;
    }
}

msg *session_inflight_msg(const session *s, uint16_t pid, uint8_t qos)
{
    out_entry *e = inflight_by_pid(s, pid);
    return e && e->qos == qos && e->state == ENTRY_SENT ? e->m : NULL;
}

static bool pid_in_flight(const session *s, uint16_t pid)
{
    return inflight_by_pid(s, pid) != NULL;
}

static uint16_t alloc_pid(session *s)
{
    /* At most one full turn of the id space. */
    for (uint32_t tries = 0; tries < 65535; tries++) {
        uint16_t pid = s->next_pid++;
        if (s->next_pid == 0)
            s->next_pid = 1;
        if (!pid_in_flight(s, pid))
            return pid;
    }
    return 0;
}

/* The packet id of a persistent session's entry follows from its seq, so
 * that an entry sent just before a kill -9, whose SENT state was not yet
 * committed, goes out again after the restart with the same id: the
 * client's QoS 2 duplicate detection (by id) then still holds. Only an id
 * still in use by a much older stuck entry falls back to allocation. */
static uint16_t stored_pid(session *s, uint64_t seq)
{
    uint16_t pid = (uint16_t)((seq - 1) % 65535 + 1);
    return pid_in_flight(s, pid) ? alloc_pid(s) : pid;
}

/* ---- sending ------------------------------------------------------------ */

bool session_window_open(const session *s)
{
    if (!s->conn || s->conn->state != CONN_ACTIVE ||
        s->inflight.count >= s->conn->client_receive_max)
        return false;
    uint64_t max = s->srv->cfg.max_inflight_bytes;
    return max == 0 || s->inflight_bytes < max || s->inflight.count == 0;
}

static bool online(const session *s)
{
    return s->conn && s->conn->state == CONN_ACTIVE;
}

/* Write e to the client. Returns false when the message must be dropped for
 * this client: too large for its maximum packet size, or no longer allowed.
 * Rights are checked when a message is sent, not only when it was queued:
 * a reconnect may come with fewer of them (BAD_INPUTS row 13). */
static bool send_entry(session *s, out_entry *e)
{
    if (!session_may_receive(s, msg_topic(e->m)))
        return false;
    int rc = conn_send_publish(s->conn, e->m, e->qos, e->pid, e->dup, e->retain,
                               e->sub_ids, e->nsub_ids);
    e->dup = true;
    return rc != IMQTT_ETOOLARGE;
}

static void drop(session *s, enum metric_id cause, const char *why,
                 const msg *m)
{
    metrics_drop(s->srv, cause);
    log_debug("dropped message %llu for %s: %s", (unsigned long long)m->id,
              s->client_id, why);
}

/* send_entry refused m: say why (checked again on this rare path only). */
static void drop_unsent(session *s, const msg *m)
{
    if (!session_may_receive(s, msg_topic(m)))
        drop(s, METRIC_DROP_NOT_AUTHORIZED, "not authorized for the topic", m);
    else
        drop(s, METRIC_DROP_TOO_LARGE,
             "larger than the client's maximum packet size", m);
}

static void queued_bytes_sub(session *s, uint64_t n)
{
    /* Saturating: entries queued before a restart were not counted. */
    s->queued_bytes = s->queued_bytes > n ? s->queued_bytes - n : 0;
}

/* max_queued_bytes (max_stored_bytes for a persistent session): payload
 * waiting beyond the window. True (and m dropped, counted, logged) when m
 * would take s past it. */
static bool queue_bytes_full(session *s, const msg *m)
{
    uint64_t max = persist_on(s) ? s->srv->cfg.max_stored_bytes
                                 : s->srv->cfg.max_queued_bytes;
    if (!max || s->queued_bytes + m->payload_len <= max)
        return false;
    metrics_drop(s->srv, METRIC_DROP_QUEUE_BYTES);
    log_warn("queue of %s full (%llu bytes): dropped message %llu",
             s->client_id, (unsigned long long)s->queued_bytes,
             (unsigned long long)m->id);
    session_overflowed(s);
    return true;
}

void session_pump(session *s)
{
    if (persist_on(s)) {
        persist_pump(s);
        return;
    }
    uint64_t now = server_now(s->srv);
    while (s->queue.head && session_window_open(s)) {
        out_entry *e = s->queue.head;
        list_unlink(&s->queue, e);
        queued_bytes_sub(s, e->m->payload_len);
        if (msg_expired(e->m, now)) {
            drop(s, METRIC_DROP_EXPIRED, "expired", e->m);
            entry_free(e);
            continue;
        }
        e->pid = alloc_pid(s);
        e->state = ENTRY_SENT;
        inflight_add(s, e);
        if (!send_entry(s, e)) {
            inflight_remove(s, e);
            drop_unsent(s, e->m);
            entry_free(e);
        }
    }
}

static out_entry *entry_new(msg *m, uint8_t qos, bool retain,
                            const uint32_t *sub_ids, uint32_t nsub_ids,
                            sub_group *group)
{
    out_entry *e = msg_block_alloc(sizeof(*e) + nsub_ids * sizeof(uint32_t));
    if (!e)
        return NULL;
    *e = (out_entry){.m = m ? msg_ref(m) : NULL,
                     .qos = qos,
                     .state = ENTRY_QUEUED,
                     .retain = retain,
                     .group = group,
                     .nsub_ids = nsub_ids};
    if (nsub_ids)
        memcpy(e->sub_ids, sub_ids, nsub_ids * sizeof(uint32_t));
    return e;
}

/* A persistent session: every entry is recorded; what cannot be sent now
 * lives only in the store and is read back as the window drains. Returns
 * whether m was taken (sent or queued), not dropped. */
static bool deliver_stored(session *s, msg *m, uint8_t qos, bool retain,
                           const uint32_t *sub_ids, uint32_t nsub_ids,
                           sub_group *group)
{
    server *srv = s->srv;
    bool room = session_window_open(s);
    /* QoS 2 goes out only once its entry is committed, so a kill -9 can
     * never make us deliver it twice (DESIGN.md invariants): it takes the
     * way through the store even when the window has room. */
    bool direct = room && s->disk_next == s->next_seq && qos == 1;
    /* The queue is on disk: its bound is sized for the disk
     * (max_stored_messages), not for RAM. */
    if (!direct && !s->marker_now &&
        s->disk_count >= srv->cfg.max_stored_messages) {
        metrics_drop(srv, METRIC_DROP_QUEUE_FULL);
        log_warn("queue of %s full (%llu messages): dropped message %llu",
                 s->client_id, (unsigned long long)s->disk_count,
                 (unsigned long long)m->id);
        session_overflowed(s);
        return false;
    }
    if (!direct && !s->marker_now && queue_bytes_full(s, m))
        return false;
    out_entry *e = entry_new(m, qos, retain, sub_ids, nsub_ids, group);
    if (!e) {
        drop(s, METRIC_DROP_NO_MEMORY, "out of memory", m);
        return false;
    }
    e->seq = s->next_seq++;
    if (!direct) {
        persist_entry(s, e, true);
        entry_free(e);
        s->disk_count++;
        s->queued_bytes += m->payload_len;
        if (room)
            persist_pump(s);
        return true;
    }
    s->disk_next = s->next_seq;
    e->pid = stored_pid(s, e->seq);
    e->state = ENTRY_SENT;
    persist_entry(s, e, true);
    inflight_add(s, e);
    if (!send_entry(s, e)) {
        inflight_remove(s, e);
        store_del_entry(srv->store, s->sid, e->seq);
        drop_unsent(s, e->m);
        entry_free(e);
        return false;
    }
    return true;
}

void session_admit_stored(session *s, uint64_t seq, const store_entry *de,
                          msg *m)
{
    server *srv = s->srv;
    if (m && de->state == STORE_ENTRY_QUEUED)
        queued_bytes_sub(s, m->payload_len);
    if (m && msg_expired(m, server_now(srv))) {
        drop(s, METRIC_DROP_EXPIRED, "expired", m);
        store_del_entry(srv->store, s->sid, seq);
        return;
    }
    uint32_t ids[64];
    uint32_t nids = de->nsub_ids < 64 ? de->nsub_ids : 64;
    for (uint32_t i = 0; i < nids; i++)
        ids[i] = store_entry_sub_id(de, i);
    out_entry *e = entry_new(m, de->qos, de->retain, ids, nids, NULL);
    if (!e)
        persist_fatal(IMQTT_ENOMEM, "reading a queue");
    e->seq = seq;
    if (de->state == STORE_ENTRY_QUEUED) {
        e->pid = stored_pid(s, seq);
        e->state = ENTRY_SENT;
        persist_entry(s, e, false);
    } else {
        /* Sent before the restart or the reconnect: same id, DUP set
         * [MQTT-4.4.0-1]. */
        e->pid = de->pid;
        e->dup = true;
        e->state = de->state == STORE_ENTRY_PUBREC ? ENTRY_PUBREL : ENTRY_SENT;
    }
    inflight_add(s, e);
    if (e->state == ENTRY_PUBREL) {
        mqtt_packet p = {.type = MQTT_PUBREL};
        p.u.ack.packet_id = e->pid;
        conn_send(s->conn, &p);
    } else if (!send_entry(s, e)) {
        inflight_remove(s, e);
        store_del_entry(srv->store, s->sid, seq);
        drop_unsent(s, e->m);
        entry_free(e);
    }
}

void session_deliver(session *s, msg *m, uint8_t qos, bool retain,
                     const uint32_t *sub_ids, uint32_t nsub_ids,
                     sub_group *group)
{
    server *srv = s->srv;
    /* Room again after an overflow: the device hears how much it missed
     * before what comes next (it catches up from history). */
    if (s->missed && s->im && session_queue_has_room(s))
        srv->policy->overflow(s);
    if (msg_expired(m, server_now(srv))) {
        drop(s, METRIC_DROP_EXPIRED, "expired", m);
        return;
    }
    if (!session_may_receive(s, msg_topic(m))) {
        drop(s, METRIC_DROP_NOT_AUTHORIZED, "not authorized for the topic", m);
        return;
    }
    if (qos == 0) {
        /* QoS 0 is not queued for offline sessions (as Mosquitto), and is
         * dropped rather than buffered for a reader that has fallen
         * behind: the memory bound wins over best effort. */
        if (!online(s)) {
            drop(s, METRIC_DROP_OFFLINE_QOS0, "QoS 0 for an offline session",
                 m);
            return;
        }
        if (conn_output_full(s->conn)) {
            drop(s, METRIC_DROP_SLOW_READER, "slow reader", m);
            return;
        }
        if (conn_send_publish(s->conn, m, 0, 0, false, retain, sub_ids,
                              nsub_ids) == IMQTT_ETOOLARGE)
            drop(s, METRIC_DROP_TOO_LARGE,
                 "larger than the client's maximum packet size", m);
        return;
    }
    /* Offline push: the policy hears of what waits for an offline
     * session (not of the broker's own markers). */
    bool tell = !online(s) && !s->marker_now && srv->policy->queued_offline;
    if (persist_on(s)) {
        if (deliver_stored(s, m, qos, retain, sub_ids, nsub_ids, group) && tell)
            srv->policy->queued_offline(s, m);
        return;
    }
    /* max_queued_messages bounds what waits beyond the window; for an
     * offline session that is everything it has not been sent. */
    bool direct = !s->queue.head && session_window_open(s);
    if (!direct && !s->marker_now &&
        s->queue.count >= srv->cfg.max_queued_messages) {
        metrics_drop(srv, METRIC_DROP_QUEUE_FULL);
        log_warn("queue of %s full (%u messages): dropped message %llu",
                 s->client_id, s->queue.count, (unsigned long long)m->id);
        session_overflowed(s);
        return;
    }
    if (!direct && !s->marker_now && queue_bytes_full(s, m))
        return;
    out_entry *e = entry_new(m, qos, retain, sub_ids, nsub_ids, group);
    if (!e) {
        drop(s, METRIC_DROP_NO_MEMORY, "out of memory", m);
        return;
    }
    list_append(&s->queue, e);
    s->queued_bytes += m->payload_len;
    session_pump(s);
    if (tell)
        srv->policy->queued_offline(s, m);
}

/* ---- acknowledgements from the client ----------------------------------- */

static void complete(session *s, out_entry *e)
{
    if (persist_on(s))
        store_del_entry(s->srv->store, s->sid, e->seq);
    inflight_remove(s, e);
    entry_free(e);
    session_pump(s);
}

int session_on_puback(session *s, uint16_t pid)
{
    out_entry *e = inflight_by_pid(s, pid);
    if (!e || e->qos != 1)
        return 0; /* unknown ids are ignored, as the spec allows */
    complete(s, e);
    return 0;
}

int session_on_pubrec(session *s, uint16_t pid, uint8_t reason)
{
    out_entry *e = inflight_by_pid(s, pid);
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
        s->inflight_bytes -= e->m->payload_len;
        msg_unref(e->m); /* delivered: only the id is left to release */
        e->m = NULL;
        if (persist_on(s))
            persist_entry(s, e, false);
    }
    /* PUBREL tells the client to forget the id, after which a resent
     * PUBLISH would be new to it: send it only once the PUBREC state is
     * durable, or a kill -9 could make us deliver the message twice. */
    if (persist_on(s))
        return conn_send_after_commit(s->conn, MQTT_PUBREL, pid, 0);
    mqtt_packet p = {.type = MQTT_PUBREL};
    p.u.ack.packet_id = pid;
    return conn_send(s->conn, &p);
}

int session_on_pubcomp(session *s, uint16_t pid)
{
    out_entry *e = inflight_by_pid(s, pid);
    if (e && e->state == ENTRY_PUBREL)
        complete(s, e);
    return 0;
}

/* ---- wills, expiry, end ----------------------------------------------------
 */

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
    if (persist_on(s) && !s->srv->stopping)
        persist_session(s); /* without the will: it is sent only once */
    session *from = NULL;
    if (s->im) {
        /* An IM device's will is one of its publications: checked,
         * stamped, synced and logged like a PUBLISH (BAD_INPUTS row 22);
         * `from` also keeps it from the device's own subscriptions. */
        bool as_device = false;
        msg *n = s->srv->policy->will_publish(s, w, &as_device);
        msg_unref(w);
        if (!n)
            return;
        w = n;
        from = as_device ? s : NULL;
    }
    route_message(s->srv, w, from);
    msg_unref(w);
}

static void arm_timer(session *s);

static void on_timer_locked(uv_timer_t *t)
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

static void on_timer(uv_timer_t *t)
{
    loop_lock();
    on_timer_locked(t);
    loop_unlock();
}

/* Leave s's timer to the main loop (worker_wake: its prepare applies). */
static void queue_timer(session *s)
{
    server *srv = s->srv;
    if (!s->timer_queued) {
        s->timer_queued = true;
        s->timer_next = srv->timers_queued;
        srv->timers_queued = s;
    }
    worker_wake(&srv->workers[0]);
}

static void end_timer(session *s);

void session_timers_apply(server *srv)
{
    while (srv->timers_queued) {
        session *s = srv->timers_queued;
        srv->timers_queued = s->timer_next;
        s->timer_next = NULL;
        s->timer_queued = false;
        if (s->timer_end)
            end_timer(s);
        else
            arm_timer(s);
    }
}

static void arm_timer(session *s)
{
    if (!server_on_main(s->srv) || s->timer_queued) {
        queue_timer(s);
        return;
    }
    uint64_t next = 0;
    if (s->will_at)
        next = s->will_at;
    if (s->expire_at && (!next || s->expire_at < next))
        next = s->expire_at;
    if (!next) {
        if (s->timer)
            uv_timer_stop(s->timer);
        return;
    }
    uv_timer_t *t = session_timer(s);
    if (!t) {
        log_warn("session %s: no memory for its timer: will and expiry "
                 "wait for the next event",
                 s->client_id);
        return;
    }
    uint64_t now = server_now(s->srv);
    uv_timer_start(t, on_timer, next > now ? next - now : 0, 0);
}

void session_connection_lost(session *s, bool send_will)
{
    s->conn = NULL;
    s->disconnect_wall = persist_wall_ms();
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
    if (persist_on(s))
        persist_session(s);
    arm_timer(s);
}

void session_resume_offline(session *s, uint64_t elapsed_ms)
{
    uint64_t now = server_now(s->srv);
    if (s->expiry == 0) {
        session_end(s);
        return;
    }
    if (s->will) {
        uint32_t delay = s->will_delay < s->expiry ? s->will_delay : s->expiry;
        uint64_t left = (uint64_t)delay * 1000;
        left = left > elapsed_ms ? left - elapsed_ms : 0;
        s->will_at = now + left + 1; /* 0 would mean "no will pending" */
    }
    if (s->expiry != UINT32_MAX) {
        uint64_t left = (uint64_t)s->expiry * 1000;
        left = left > elapsed_ms ? left - elapsed_ms : 0;
        s->expire_at = now + left + 1;
    }
    arm_timer(s);
}

/* The session outlives its connections from now on: record it and move
 * what it holds into the store. */
static void start_persisting(session *s)
{
    persist_session(s);
    if (!persist_on(s))
        return;
    session_subs_persist(s);
    for (out_entry *e = s->inflight.head; e; e = e->next) {
        e->seq = s->next_seq++;
        persist_entry(s, e, true);
    }
    s->disk_next = s->next_seq;
    while (s->queue.head) {
        out_entry *e = s->queue.head;
        list_unlink(&s->queue, e);
        e->seq = s->next_seq++;
        persist_entry(s, e, true);
        s->disk_count++;
        entry_free(e);
    }
}

void session_attach(session *s, conn *c)
{
    s->conn = c;
    s->version = c->version;
    s->will_at = 0;
    s->expire_at = 0;
    s->disconnect_wall = 0;
    arm_timer(s); /* nothing due online: stops it */
    if (persist_on(s))
        persist_session(s);
    else if (store_durable(s->srv->store))
        start_persisting(s);
    /* Resend what the previous connection left unacknowledged, in order,
     * with DUP set [MQTT-4.4.0-1]. */
    for (out_entry *e = s->inflight.head; e;) {
        out_entry *next = e->next;
        if (e->state == ENTRY_PUBREL) {
            mqtt_packet p = {.type = MQTT_PUBREL};
            p.u.ack.packet_id = e->pid;
            conn_send(c, &p);
        } else if (!send_entry(s, e)) {
            inflight_remove(s, e);
            drop_unsent(s, e->m);
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
    persist_unwait(s);
    /* At shutdown the store keeps the session for the next start. */
    if (persist_on(s) && !srv->stopping)
        store_del_session(
            srv->store, mqtt_str_from(s->client_id, s->client_id_len), s->sid);
    s->sid = 0; /* nothing below is recorded */
    session_subs_clear(s);
    list_clear(&s->inflight);
    s->inflight_bytes = 0;
    pid_map_clear(&s->pids);
    s->pids_partial = false;
    list_clear(&s->queue);
    s->queued_bytes = 0;
    pid_map_clear(&s->qos2_in);
    if (srv->policy->on_session_end)
        srv->policy->on_session_end(s);
    hmap_remove(&srv->sessions,
                (mqtt_bytes){(uint8_t *)s->client_id, s->client_id_len});
    s->client_id = NULL;
    if (!s->username_in_id)
        free(s->username);
    s->username = NULL;
    s->username_in_id = false;
    s->srv->policy->identity_free(s->im);
    s->im = NULL;
    /* The memory goes in the timer's close callback, one loop iteration
     * later: callers holding the pointer (persist_wake) rely on that, so a
     * session that never needed its timer makes one now. Without memory
     * for it the session is kept (leaked) rather than freed under them. */
    s->timer_end = true;
    if (!server_on_main(srv) || s->timer_queued)
        queue_timer(s); /* (a queued session is freed only from the queue) */
    else
        end_timer(s);
}

static void end_timer(session *s)
{
    uv_timer_t *t = session_timer(s);
    if (!t) {
        log_warn("session end: no memory, %zu bytes kept", sizeof(*s));
        return;
    }
    uv_close((uv_handle_t *)t, on_timer_closed);
}
