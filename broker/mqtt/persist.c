#include "persist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "errors.h"
#include "log.h"

uint64_t persist_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t persist_to_wall(const server *srv, uint64_t mono)
{
    if (mono == 0)
        return 0;
    uint64_t now = server_now(srv), wall = persist_wall_ms();
    return mono >= now ? wall + (mono - now) : wall - (now - mono);
}

uint64_t persist_from_wall(const server *srv, uint64_t wall)
{
    if (wall == 0)
        return 0;
    uint64_t now = server_now(srv), w = persist_wall_ms();
    uint64_t mono = wall >= w ? now + (wall - w) : now - (w - wall);
    return mono ? mono : 1; /* 0 would mean "never expires" */
}

_Noreturn void persist_fatal(int err, const char *what)
{
    log_error("store: %s: %s; exiting without acknowledging anything more",
              what, imqtt_strerror(err));
    _exit(70);
}

static void check(int rc, const char *what)
{
    /* Recording copies into the batch; only ENOMEM can fail, and a batch
     * missing a record would acknowledge what is not stored. */
    if (rc < 0)
        persist_fatal(rc, what);
}

static store_msg to_store_msg(const server *srv, const msg *m)
{
    return (store_msg){
        m->qos,       m->retain,          persist_to_wall(srv, m->expiry_at),
        msg_topic(m), msg_props_block(m), msg_payload(m)};
}

void persist_msg(server *srv, msg *m)
{
    store *st = srv->store;
    if (!store_durable(st) || m->store_gen == store_batch_gen(st))
        return;
    store_msg sm = to_store_msg(srv, m);
    check(store_put_msg(st, m->id, &sm), "recording a message");
    m->store_gen = store_batch_gen(st);
}

void persist_session(session *s)
{
    server *srv = s->srv;
    if (!store_durable(srv->store))
        return;
    if (!s->sid) {
        if (s->expiry == 0)
            return; /* ends with its connection: nothing to keep */
        s->sid = ++srv->next_sid;
        s->next_seq = s->disk_next = 1;
    }
    store_session ss = {
        .client_id = mqtt_str_from(s->client_id, s->client_id_len),
        .sid = s->sid,
        .version = s->version ? s->version : MQTT_V311,
        .expiry = s->expiry,
        .disconnect_ms = s->conn ? 0 : s->disconnect_wall,
        .has_username = s->username != NULL,
        .username = {(const uint8_t *)s->username,
                     s->username ? s->username_len : 0},
        .has_will = s->will != NULL,
        .will_delay = s->will_delay,
        .will_expiry = s->will_expiry,
    };
    if (s->will)
        ss.will = to_store_msg(srv, s->will);
    check(store_put_session(srv->store, &ss), "recording a session");
}

void persist_retained(server *srv, msg *m)
{
    if (!store_durable(srv->store) || !m->retain)
        return;
    if (m->payload_len == 0) {
        check(store_del_retained(srv->store, msg_topic(m)),
              "clearing a retained message");
        return;
    }
    persist_msg(srv, m);
    check(store_put_retained(srv->store, msg_topic(m), m->id),
          "recording a retained message");
}

void persist_entry(session *s, const out_entry *e, bool created)
{
    server *srv = s->srv;
    if (e->m)
        persist_msg(srv, e->m);
    store_entry se = {
        .msg_id = e->m ? e->m->id : 0,
        .state = e->state == ENTRY_PUBREL ? STORE_ENTRY_PUBREC
                 : e->state == ENTRY_SENT ? STORE_ENTRY_SENT
                                          : STORE_ENTRY_QUEUED,
        .qos = e->qos,
        .dup = e->dup,
        .retain = e->retain,
        .pid = e->pid,
        .nsub_ids = e->nsub_ids,
        .sub_ids = e->sub_ids,
    };
    check(store_put_entry(srv->store, s->sid, e->seq, &se, created),
          "recording a queue entry");
    s->put_gen = store_batch_gen(srv->store);
}

/* ---- draining a queue from the store ------------------------------------ */

static int on_stored_entry(void *arg, uint64_t seq, const store_entry *de,
                           const store_msg *sm)
{
    session *s = arg;
    server *srv = s->srv;
    if (!session_window_open(s))
        return 1; /* went offline, or the window filled: stop here */
    msg *m = NULL;
    if (sm) {
        uint64_t exp = persist_from_wall(srv, sm->expiry_ms);
        m = msg_new_encoded(sm->topic, sm->props, sm->payload, sm->qos,
                            sm->retain, exp, de->msg_id);
        if (!m)
            persist_fatal(IMQTT_ECORRUPT, "a stored message does not decode");
    }
    s->disk_next = seq + 1;
    if (s->disk_count)
        s->disk_count--;
    session_admit_stored(s, seq, de, m);
    msg_unref(m);
    return 0;
}

static void wait_commit(session *s)
{
    if (s->waiting)
        return;
    server *srv = s->srv;
    s->waiting = true;
    s->wait_prev = NULL;
    s->wait_next = srv->wait_head;
    if (srv->wait_head)
        srv->wait_head->wait_prev = s;
    srv->wait_head = s;
}

void persist_unwait(session *s)
{
    if (!s->waiting)
        return;
    if (s->wait_prev)
        s->wait_prev->wait_next = s->wait_next;
    else
        s->srv->wait_head = s->wait_next;
    if (s->wait_next)
        s->wait_next->wait_prev = s->wait_prev;
    s->waiting = false;
    s->wait_prev = s->wait_next = NULL;
}

bool persist_pump(session *s)
{
    server *srv = s->srv;
    while (session_window_open(s) && s->disk_next < s->next_seq) {
        uint32_t room = s->conn->client_receive_max - s->inflight.count;
        int n = store_read_queue(srv->store, s->sid, s->disk_next, room,
                                 on_stored_entry, s);
        if (n < 0)
            persist_fatal(n, "reading a queue");
        if (n > 0)
            continue;
        if (!s->conn || s->conn->state != CONN_ACTIVE)
            break;
        if (store_done_gen(srv->store) >= s->put_gen) {
            /* Everything recorded for s is committed and nothing is left:
             * the rest were dropped with a failed batch. */
            s->disk_next = s->next_seq;
            s->disk_count = 0;
            s->queued_bytes = 0;
            break;
        }
        wait_commit(s);
        return false;
    }
    return true;
}

void persist_wake(server *srv)
{
    /* Sessions stay allocated until their timer's close callback, so the
     * pointers collected here stay valid while pumping ends some. */
    uint32_t n = 0;
    for (session *s = srv->wait_head; s; s = s->wait_next)
        n++;
    if (n == 0)
        return;
    if (n > srv->wake_cap) {
        session **p = realloc(srv->wake, n * sizeof(*p));
        if (!p)
            return; /* retried after the next commit */
        srv->wake = p;
        srv->wake_cap = n;
    }
    n = 0;
    while (srv->wait_head) {
        session *s = srv->wait_head;
        persist_unwait(s);
        srv->wake[n++] = s;
    }
    for (uint32_t i = 0; i < n; i++)
        if (srv->wake[i]->client_id)
            session_pump(srv->wake[i]);
}
