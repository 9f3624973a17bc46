/* What a session has been told to remember besides its messages: the
 * incoming QoS 2 ids awaiting PUBREL and the subscriptions, each kept in
 * memory, in the subscription index and, for persistent sessions, in the
 * store. The message queues are in session.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_hooks.h"
#include "errors.h"
#include "persist.h"
#include "session.h"
#include "topic.h"

/* ---- incoming QoS 2 ids -------------------------------------------------- */

/* The ids live in a pid_map (values unused): a client may hold as many in
 * flight as our Receive Maximum, and each PUBLISH and PUBREL looks one up. */
#define QOS2_PRESENT ((void *)1)

bool session_qos2_has(const session *s, uint16_t pid)
{
    return pid_map_has(&s->qos2_in, pid);
}

int session_qos2_add(session *s, uint16_t pid)
{
    int rc = session_qos2_load(s, pid);
    if (rc == 0 && persist_on(s))
        rc = store_put_qos2(s->srv->store, s->sid, pid);
    return rc;
}

int session_qos2_load(session *s, uint16_t pid)
{
    if (pid_map_has(&s->qos2_in, pid))
        return 0;
    return pid_map_put(&s->qos2_in, pid, QOS2_PRESENT);
}

bool session_qos2_remove(session *s, uint16_t pid)
{
    if (!pid_map_remove(&s->qos2_in, pid))
        return false;
    if (persist_on(s))
        store_del_qos2(s->srv->store, s->sid, pid);
    return true;
}

/* ---- subscriptions --------------------------------------------------------
 */

static uint8_t opts_byte(const mqtt_sub_opts *o)
{
    return (uint8_t)(o->qos | (o->no_local << 2) |
                     (o->retain_as_published << 3) | (o->retain_handling << 4));
}

static void persist_sub(session *s, mqtt_str filter, const mqtt_sub_opts *o,
                        uint32_t sub_id)
{
    if (store_put_sub(s->srv->store, s->sid, filter, opts_byte(o), sub_id) < 0)
        persist_fatal(IMQTT_ENOMEM, "recording a subscription");
}

/* Below this many subscriptions the list is searched (no map memory for
 * the sessions of an IM app, which hold one or two). */
#define SESS_SUBS_LINEAR 16

static sess_sub *find_sub(const session *s, mqtt_str filter)
{
    if (s->sub_map)
        return hmap_get(s->sub_map, filter);
    for (sess_sub *ss = s->subs; ss; ss = ss->next)
        if (ss->len == filter.len &&
            memcmp(ss->filter, filter.ptr, filter.len) == 0)
            return ss;
    return NULL;
}

bool session_has_sub(const session *s, mqtt_str filter)
{
    return find_sub(s, filter) != NULL;
}

static mqtt_str sub_key(const sess_sub *ss)
{
    return (mqtt_str){(const uint8_t *)ss->filter, ss->len};
}

static void drop_map(session *s)
{
    if (!s->sub_map)
        return;
    hmap_free(s->sub_map);
    free(s->sub_map);
    s->sub_map = NULL;
}

/* Index ss (already in the list) in the map, building the map when the
 * list reaches SESS_SUBS_LINEAR. Without memory for it the session keeps
 * searching its list: slower, still correct. */
static void map_add(session *s, sess_sub *ss)
{
    if (s->sub_map) {
        if (hmap_put(s->sub_map, sub_key(ss), ss, NULL) < 0)
            drop_map(s);
        return;
    }
    if (s->nsubs < SESS_SUBS_LINEAR || !(s->sub_map = calloc(1, sizeof(hmap))))
        return;
    for (sess_sub *e = s->subs; e; e = e->next) {
        if (hmap_put(s->sub_map, sub_key(e), e, NULL) < 0) {
            drop_map(s);
            return;
        }
    }
}

/* The index, and cluster mode's count of local subscriptions per filter
 * (cluster_hooks.h): one NULL check on a single node. */
static int idx_add(session *s, mqtt_str filter, const mqtt_sub_opts *o,
                   uint32_t sub_id)
{
    int rc = sub_index_add(s->srv->subs, filter, s, o, sub_id);
    const cluster_hooks *h = s->srv->cluster_hooks;
    if (rc == 1 && h)
        h->on_sub_added(h->arg, filter);
    return rc;
}

static int idx_remove(session *s, mqtt_str filter)
{
    int rc = sub_index_remove(s->srv->subs, filter, s);
    const cluster_hooks *h = s->srv->cluster_hooks;
    if (rc == 1 && h)
        h->on_sub_removed(h->arg, filter);
    return rc;
}

int session_subscribe(session *s, mqtt_str filter, const mqtt_sub_opts *o,
                      uint32_t sub_id, bool *existed)
{
    int rc = idx_add(s, filter, o, sub_id);
    if (rc < 0)
        return rc;
    *existed = rc == 0;
    if (persist_on(s) && !s->srv->loading)
        persist_sub(s, filter, o, sub_id);
    /* The index knows whether the session held it: only a replacement
     * looks for its entry. */
    sess_sub *ss = rc == 0 ? find_sub(s, filter) : NULL;
    if (ss) {
        ss->opts = *o;
        ss->sub_id = sub_id;
        return 0;
    }
    /* From the offset of filter, without a NUL (it is always used with
     * len): "p2p/talk/u1234" takes a 48-byte chunk, not 64. */
    ss = malloc(offsetof(sess_sub, filter) + filter.len);
    if (!ss) {
        idx_remove(s, filter);
        return IMQTT_ENOMEM;
    }
    ss->opts = *o;
    ss->sub_id = sub_id;
    ss->len = (uint16_t)filter.len;
    memcpy(ss->filter, filter.ptr, filter.len);
    ss->prev = NULL;
    ss->next = s->subs;
    if (s->subs)
        s->subs->prev = ss;
    s->subs = ss;
    s->nsubs++;
    map_add(s, ss);
    return 0;
}

static void unlink_sub(session *s, sess_sub *ss)
{
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        s->subs = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    s->nsubs--;
}

void session_subs_clear(session *s)
{
    drop_map(s);
    while (s->subs) {
        sess_sub *ss = s->subs;
        s->subs = ss->next;
        idx_remove(s, sub_key(ss));
        free(ss);
    }
    s->nsubs = 0;
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
    int rc = idx_remove(s, filter);
    if (rc > 0 && persist_on(s))
        store_del_sub(s->srv->store, s->sid, filter);
    sess_sub *ss = find_sub(s, filter);
    if (ss) {
        if (s->sub_map)
            hmap_remove(s->sub_map, filter);
        unlink_sub(s, ss);
        free(ss);
        /* Back to the list when few are left: the map's slots (sized for
         * the most the session ever held) are given back. */
        if (s->nsubs < SESS_SUBS_LINEAR / 2)
            drop_map(s);
    }
    mqtt_str group, inner;
    if (rc > 0 && mqtt_share_parse(filter, &group, &inner) == 1)
        forget_groups(s);
    return rc;
}

void session_subs_persist(session *s)
{
    for (sess_sub *ss = s->subs; ss; ss = ss->next)
        persist_sub(s, (mqtt_str){(uint8_t *)ss->filter, ss->len}, &ss->opts,
                    ss->sub_id);
    uint32_t pos = 0;
    uint16_t pid;
    while ((pid = pid_map_next(&s->qos2_in, &pos, NULL)) != 0)
        store_put_qos2(s->srv->store, s->sid, pid);
}
