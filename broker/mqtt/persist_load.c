/* Start-up: rebuild sessions, subscriptions, QoS 2 ids, queue bounds and
 * retained messages from the store. Queued messages stay in the store;
 * only each queue's bounds are read (RAM does not grow with queues). */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "persist.h"
#include "retain_limits.h"

typedef struct load_ctx {
    server *srv;
    hmap by_sid; /* the bytes of sid (host order) -> session */
    uint64_t now_wall;
    uint32_t sessions, subs, entries, retained, dropped;
} load_ctx;

static session *by_sid(load_ctx *x, uint64_t sid)
{
    return hmap_get(&x->by_sid,
                    (mqtt_bytes){(const uint8_t *)&sid, sizeof(sid)});
}

static int on_session(void *arg, const store_session *ss)
{
    load_ctx *x = arg;
    server *srv = x->srv;
    session *s = session_new(srv, ss->client_id);
    if (!s)
        return IMQTT_ENOMEM;
    s->sid = ss->sid;
    s->next_seq = s->disk_next = 1;
    s->version = ss->version;
    s->expiry = ss->expiry;
    /* A session that was connected when the broker stopped lost its
     * connection then; start counting now. */
    s->disconnect_wall = ss->disconnect_ms ? ss->disconnect_ms : x->now_wall;
    if (session_set_username(s, ss->username, ss->has_username) < 0)
        return IMQTT_ENOMEM;
    if (ss->has_will) {
        const store_msg *w = &ss->will;
        msg *m = msg_new_encoded(w->topic, w->props, w->payload, w->qos,
                                 w->retain, 0, 0);
        if (!m)
            return IMQTT_ECORRUPT;
        session_set_will(s, m, ss->will_delay);
        s->will_expiry = ss->will_expiry;
    }
    x->sessions++;
    return hmap_put(&x->by_sid,
                    (mqtt_bytes){(const uint8_t *)&s->sid, sizeof(s->sid)}, s,
                    NULL);
}

static int on_sub(void *arg, const store_sub *sub)
{
    load_ctx *x = arg;
    session *s = by_sid(x, sub->sid);
    if (!s) {
        x->dropped++;
        return 0; /* left behind by a session deleted in the same batch */
    }
    mqtt_sub_opts o = {sub->opts & 3, (sub->opts >> 2) & 1,
                       (sub->opts >> 3) & 1, (sub->opts >> 4) & 3};
    bool existed;
    x->subs++;
    /* session_subscribe does not record it again while srv->loading. */
    int rc = session_subscribe(s, sub->filter, &o, sub->sub_id, &existed);
    if (rc == IMQTT_EFILTER) {
        /* Accepted by an older version, refused now (a nested $share):
         * the client is told 0x8F when it subscribes again. */
        log_warn("store: subscription %.*s of %s dropped: not a valid filter",
                 (int)sub->filter.len, (const char *)sub->filter.ptr,
                 s->client_id);
        (void)store_del_sub(s->srv->store, s->sid, sub->filter);
        x->subs--;
        return 0;
    }
    return rc;
}

static int on_qos2(void *arg, uint64_t sid, uint16_t pid)
{
    load_ctx *x = arg;
    session *s = by_sid(x, sid);
    return s ? session_qos2_load(s, pid) : 0;
}

static int on_queue(void *arg, uint64_t sid, uint64_t first, uint64_t last,
                    uint64_t count)
{
    load_ctx *x = arg;
    session *s = by_sid(x, sid);
    if (!s) {
        x->dropped += (uint32_t)count;
        return 0;
    }
    s->disk_next = first;
    s->next_seq = last + 1;
    s->disk_count = count;
    x->entries += (uint32_t)count;
    return 0;
}

static int on_retained(void *arg, uint64_t id, const store_msg *sm)
{
    load_ctx *x = arg;
    server *srv = x->srv;
    if (sm->expiry_ms && sm->expiry_ms <= x->now_wall) {
        /* Expired while we were down: purge it. */
        store_del_retained(srv->store, sm->topic);
        return 0;
    }
    msg *m = msg_new_encoded(sm->topic, sm->props, sm->payload, sm->qos, true,
                             persist_from_wall(srv, sm->expiry_ms), id);
    if (!m)
        return IMQTT_ECORRUPT;
    int rc = retain_set(srv, m, NULL);
    msg_unref(m); /* the index holds its own reference */
    if (rc < 0)
        return IMQTT_ENOMEM;
    x->retained++;
    return 0;
}

int persist_load(server *srv)
{
    if (!store_durable(srv->store))
        return 0;
    load_ctx x = {.srv = srv, .now_wall = persist_wall_ms()};
    store_visitor v = {&x, on_session, on_sub, on_qos2, on_queue, on_retained};
    uint64_t max_msg = 0, max_sid = 0, purged = 0;
    int prc = store_purge_expired(srv->store, x.now_wall, &purged);
    if (prc < 0) {
        log_error("store: cannot purge expired messages in %s: %s",
                  srv->cfg.store_dir, imqtt_strerror(prc));
        return prc;
    }
    if (purged)
        log_info("store: purged %llu queued messages that expired while "
                 "the broker was down",
                 (unsigned long long)purged);
    srv->loading = true;
    int rc = store_load(srv->store, &v, &max_msg, &max_sid);
    srv->loading = false;
    hmap_free(&x.by_sid);
    if (rc < 0) {
        log_error("store: cannot load %s: %s", srv->cfg.store_dir,
                  imqtt_strerror(rc));
        return rc;
    }
    srv->next_msg_id = max_msg;
    srv->next_sid = max_sid;
    /* Timers and wills: collect first, since ending a session changes the
     * map being walked. */
    uint32_t pos = 0, n = 0;
    session *s;
    session **all = malloc((srv->sessions.count + 1) * sizeof(*all));
    if (!all)
        return IMQTT_ENOMEM;
    while ((s = hmap_next(&srv->sessions, &pos)))
        all[n++] = s;
    for (uint32_t i = 0; i < n; i++) {
        s = all[i];
        if (s->will)
            s->will->id = ++srv->next_msg_id;
        uint64_t elapsed = x.now_wall > s->disconnect_wall
                               ? x.now_wall - s->disconnect_wall
                               : 0;
        persist_session(s); /* records the disconnect time if it was not */
        session_resume_offline(s, elapsed);
    }
    free(all);
    log_info("store: %s (%s): %u sessions, %u subscriptions, %u queued "
             "messages, %u retained",
             srv->cfg.store_dir, store_durability_name(store_level(srv->store)),
             x.sessions, x.subs, x.entries, x.retained);
    if (x.dropped)
        log_warn("store: %u records without a session ignored", x.dropped);
    return 0;
}
