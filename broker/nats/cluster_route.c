/* Live routing across nodes on core NATS (cluster_route.h). */
#include <nats/nats.h>

#include "cluster_route.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_durable.h"
#include "cluster_env.h"
#include "cluster_hooks.h"
#include "cluster_retain.h"
#include "errors.h"
#include "hmap.h"
#include "log.h"
#include "msg.h"
#include "route.h"
#include "session.h"
#include "subject.h"
#include "topic.h"

/* The envelope is cluster_env.h.
 *
 * Threads: everything here is touched under the loop lock — the hooks by
 * whichever loop routes or subscribes, on_nats on the main loop (the
 * link's sink). libnats's own threads see only the link's queue; the
 * subscriptions' closure is the link, never a filt, so a message still
 * queued for a filter that has gone finds no sid in by_sid and is
 * dropped. */

/* A subject longer than this is not subscribed or published: nats-server
 * refuses a protocol line over its max_control_line (4 KB by default). */
#define SUBJECT_MAX 3900

typedef struct filt filt;

/* One NATS subscription of a filter; `sid` is its key in by_sid. */
typedef struct fsub {
    int64_t sid;
    natsSubscription *sub; /* owned; unsubscribed and destroyed by the
                              loop thread that removes the last local
                              subscriber (libnats allows any thread) */
    filt *f;               /* borrowed: the filt this is inside of */
} fsub;

/* A filter that local sessions subscribe to; the key in `filters` is
 * text[0..len). */
struct filt {
    uint32_t refs; /* local subscriptions to it */
    uint32_t nsubs;
    fsub subs[2]; /* the pattern, and the parent of "x/#" */
    bool shared;
    mqtt_str group, inner; /* views into text when shared */
    uint16_t len;
    char text[];
};

/* The last sequence seen from one node (process): the key is name. One
 * per node name ever seen, freed with the route. */
/* Durable sequences remembered below the highest seen (fresh_durable). */
#define DUP_WINDOW 1024

typedef struct origin {
    uint64_t epoch;
    uint64_t last[2]; /* core NATS, and the stream's republications */
    uint64_t seen[DUP_WINDOW / 64]; /* durable: bit (seq % DUP_WINDOW) */
    uint16_t len;
    char name[];
} origin;

struct cluster_route {
    server *srv;              /* borrowed */
    cluster_link *link;       /* borrowed */
    const cluster_config *cc; /* borrowed */
    cluster_hooks hooks;
    bool stopped;
    size_t node_len;
    uint64_t epoch;
    uint64_t seq[2]; /* the last sent on core NATS / through the stream */
    hmap filters;    /* filter text -> filt*, owned */
    hmap by_sid;     /* 8 bytes of sid -> fsub* (borrowed: inside its filt;
                        the key is fsub.sid) */
    hmap origins;    /* node name -> origin*, owned */
    uint8_t *buf;    /* owned: the envelope being built (one router at a
                        time: the loop lock) */
    size_t buf_cap;
    char *subj; /* owned: subject scratch, SUBJECT_MAX + 1 */
    cluster_route_stats st;
    cluster_retain *retain;   /* owned: the retained bucket; NULL: none */
    cluster_durable *durable; /* owned: the durable path; NULL: QoS 1/2
                                 publications are refused */
};

static bool str_eq(mqtt_str a, mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---- subscriptions ------------------------------------------------------ */

static void subscribe_one(cluster_route *r, filt *f, const char *queue)
{
    natsSubscription *sub = NULL;
    natsConnection *nc = cluster_link_conn(r->link);
    natsStatus s =
        queue ? natsConnection_QueueSubscribe(&sub, nc, r->subj, queue,
                                              cluster_link_on_msg, r->link)
              : natsConnection_Subscribe(&sub, nc, r->subj, cluster_link_on_msg,
                                         r->link);
    if (s != NATS_OK) {
        log_warn("cluster: cannot subscribe to %s: %s", r->subj,
                 natsStatus_GetText(s));
        return;
    }
    fsub *fs = &f->subs[f->nsubs];
    fs->sid = natsSubscription_GetID(sub);
    fs->sub = sub;
    fs->f = f;
    if (hmap_put(&r->by_sid, (mqtt_bytes){(const uint8_t *)&fs->sid, 8}, fs,
                 NULL) < 0) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        return;
    }
    f->nsubs++;
    r->st.subjects++;
}

static void subscribe(cluster_route *r, filt *f)
{
    mqtt_str text = {(const uint8_t *)f->text, f->len};
    mqtt_str inner = text;
    if (f->shared)
        inner = f->inner;
    size_t parent = 0;
    int n = cluster_filter_to_subject(r->cc->subject_prefix, inner, r->subj,
                                      SUBJECT_MAX + 1, &parent);
    if (n < 0) {
        log_warn("cluster: filter %.*s has no NATS subject (%s): not routed "
                 "from other nodes",
                 (int)f->len, f->text, imqtt_strerror(n));
        return;
    }
    char queue[SUBJECT_MAX + 1];
    const char *q = NULL;
    if (f->shared) {
        /* the whole filter names the queue: "$share/g/a" and "$share/g/b"
         * are two shared subscriptions, each gets every message once */
        int qn = cluster_token_encode(text.ptr, text.len, queue, sizeof queue);
        if (qn < 0) {
            log_warn("cluster: shared filter %.*s too long for a NATS queue",
                     (int)f->len, f->text);
            return;
        }
        q = queue;
    }
    subscribe_one(r, f, q);
    if (parent) {
        r->subj[parent] = '\0';
        subscribe_one(r, f, q);
    }
}

static void unsubscribe(cluster_route *r, filt *f)
{
    for (uint32_t i = 0; i < f->nsubs; i++) {
        fsub *fs = &f->subs[i];
        hmap_remove(&r->by_sid, (mqtt_bytes){(const uint8_t *)&fs->sid, 8});
        natsSubscription_Unsubscribe(fs->sub);
        natsSubscription_Destroy(fs->sub);
        r->st.subjects--;
    }
    f->nsubs = 0;
}

static void on_sub_added(void *arg, mqtt_str filter)
{
    cluster_route *r = arg;
    filt *f = hmap_get(&r->filters, filter);
    if (f) {
        f->refs++;
        return;
    }
    f = calloc(1, sizeof(*f) + filter.len + 1);
    if (!f) {
        log_warn("cluster: out of memory: filter not routed from other nodes");
        return;
    }
    f->refs = 1;
    f->len = (uint16_t)filter.len;
    memcpy(f->text, filter.ptr, filter.len);
    mqtt_str text = {(const uint8_t *)f->text, f->len};
    f->shared = mqtt_share_parse(text, &f->group, &f->inner) == 1;
    if (hmap_put(&r->filters, text, f, NULL) < 0) {
        free(f);
        return;
    }
    subscribe(r, f);
}

static void on_sub_removed(void *arg, mqtt_str filter)
{
    cluster_route *r = arg;
    filt *f = hmap_get(&r->filters, filter);
    if (!f || --f->refs > 0)
        return;
    hmap_remove(&r->filters, filter);
    unsubscribe(r, f);
    free(f);
}

/* ---- publishing --------------------------------------------------------- */

static bool is_sys(mqtt_str t)
{
    return t.len >= 5 && memcmp(t.ptr, "$SYS/", 5) == 0;
}

static void on_route(void *arg, msg *m, mqtt_str route_topic,
                     const session *from)
{
    cluster_route *r = arg;
    if (is_sys(route_topic))
        return; /* each node's own figures */
    uint32_t expiry = 0;
    if (m->expiry_at) {
        uint64_t now = server_now(r->srv);
        if (now >= m->expiry_at)
            return;
        uint64_t left = m->expiry_at - now;
        expiry = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    }
    int n = cluster_topic_to_subject(r->cc->subject_prefix, route_topic,
                                     r->subj, SUBJECT_MAX + 1);
    if (n < 0) {
        r->st.publish_failed++;
        return;
    }
    mqtt_str topic = msg_topic(m);
    cluster_env e = {
        .qos = m->qos,
        .retain = m->retain,
        .node = {(const uint8_t *)r->cc->node, (uint32_t)r->node_len},
        .epoch = r->epoch,
        .expiry_ms = expiry,
        .topic = topic,
        .route = str_eq(topic, route_topic) ? (mqtt_str){NULL, 0} : route_topic,
        .props = msg_props_block(m),
        .payload = msg_payload(m),
    };
    if (from)
        e.cid =
            (mqtt_str){(const uint8_t *)from->client_id, from->client_id_len};
    /* QoS 1/2 through the stream, which republishes it on the live
     * subject; QoS 0 never touches it (docs/cluster.md). The two paths
     * are numbered apart: each keeps its own order, not one across both. */
    bool durable = m->qos > 0 && r->durable;
    e.seq = ++r->seq[durable];
    int len = cluster_env_encode(&e, &r->buf, &r->buf_cap);
    if (len < 0) {
        r->st.publish_failed++;
        return;
    }
    if (durable) {
        cluster_durable_publish(r->durable, r->subj, r->buf, len);
        r->st.published++;
        return;
    }
    natsStatus s = natsConnection_Publish(cluster_link_conn(r->link), r->subj,
                                          r->buf, len);
    if (s == NATS_OK)
        r->st.published++;
    else
        r->st.publish_failed++;
}

static void on_retain(void *arg, msg *m)
{
    cluster_route *r = arg;
    if (r->retain && !is_sys(msg_topic(m)))
        cluster_retain_put(r->retain, m);
}

static void link_lost(void *arg)
{
    cluster_route *r = arg;
    if (r->durable)
        cluster_durable_fail_inflight(r->durable);
}

static bool durable_ready(void *arg)
{
    cluster_route *r = arg;
    return r->durable && cluster_durable_ready(r->durable);
}

static bool durable_busy(void *arg)
{
    cluster_route *r = arg;
    return r->durable && cluster_durable_busy(r->durable);
}

static uint64_t durable_mark(void *arg)
{
    cluster_route *r = arg;
    return r->durable ? cluster_durable_mark(r->durable) : 0;
}

static int durable_status(void *arg, uint64_t lo, uint64_t hi)
{
    cluster_route *r = arg;
    return r->durable ? cluster_durable_status(r->durable, lo, hi)
                      : IMQTT_ECLUSTER;
}

/* ---- receiving ---------------------------------------------------------- */

/* Whether (node, epoch, seq) is new. Core NATS: sequences of one process
 * only grow and one connection keeps them in order, so anything not above
 * the last one seen is a second copy. The durable path: copies can come
 * out of order (a live copy sent again after a stream leader died,
 * cluster_durable.c), so the last DUP_WINDOW sequences below the highest
 * are remembered one bit each. */
static void seen_set(origin *o, uint64_t seq)
{
    o->seen[(seq % DUP_WINDOW) / 64] |= 1ull << (seq % 64);
}

static bool fresh_durable(origin *o, uint64_t seq)
{
    uint64_t last = o->last[1];
    if (seq > last) {
        /* the ones it skips may still come: clear their bits */
        uint64_t skip = seq - last < DUP_WINDOW ? seq - last : DUP_WINDOW;
        for (uint64_t s = seq - skip + 1; s <= seq; s++)
            o->seen[(s % DUP_WINDOW) / 64] &= ~(1ull << (s % 64));
        seen_set(o, seq);
        o->last[1] = seq;
        return true;
    }
    if (last - seq >= DUP_WINDOW)
        return false; /* too old to tell: taken as seen */
    uint64_t bit = 1ull << (seq % 64);
    uint64_t *w = &o->seen[(seq % DUP_WINDOW) / 64];
    if (*w & bit)
        return false;
    *w |= bit;
    return true;
}

static void origin_reset(origin *o, uint64_t epoch, uint64_t seq, bool durable)
{
    o->epoch = epoch;
    o->last[0] = o->last[1] = 0;
    memset(o->seen, 0, sizeof o->seen);
    o->last[durable] = seq;
    if (durable)
        seen_set(o, seq);
}

static bool fresh(cluster_route *r, mqtt_str node, uint64_t epoch, uint64_t seq,
                  bool durable)
{
    origin *o = hmap_get(&r->origins, node);
    if (!o) {
        o = malloc(sizeof(*o) + node.len);
        if (!o)
            return true;
        o->len = (uint16_t)node.len;
        memcpy(o->name, node.ptr, node.len);
        origin_reset(o, epoch, seq, durable);
        if (hmap_put(&r->origins,
                     (mqtt_bytes){(const uint8_t *)o->name, o->len}, o,
                     NULL) < 0)
            free(o);
        return true;
    }
    if (o->epoch != epoch) { /* the node restarted */
        origin_reset(o, epoch, seq, durable);
        return true;
    }
    if (durable)
        return fresh_durable(o, seq);
    if (seq <= o->last[0])
        return false;
    o->last[0] = seq;
    return true;
}

static void on_nats(void *arg, natsMsg *nm, int64_t sid)
{
    cluster_route *r = arg;
    fsub *fs = hmap_get(&r->by_sid, (mqtt_bytes){(const uint8_t *)&sid, 8});
    if (!fs || r->stopped) {
        natsMsg_Destroy(nm); /* unsubscribed meanwhile */
        return;
    }
    cluster_env e;
    if (cluster_env_decode((const uint8_t *)natsMsg_GetData(nm),
                           (size_t)natsMsg_GetDataLength(nm), &e) != 0) {
        r->st.invalid++;
        natsMsg_Destroy(nm);
        return;
    }
    filt *f = fs->f;
    bool own = e.epoch == r->epoch && e.node.len == r->node_len &&
               memcmp(e.node.ptr, r->cc->node, r->node_len) == 0;
    if (!f->shared) {
        /* the node routed its own message itself; shared groups are
         * served only through NATS, so a queue copy of one's own counts */
        if (own) {
            r->st.own++;
            natsMsg_Destroy(nm);
            return;
        }
        /* a republication from the stream carries its sequence */
        const char *sseq = NULL;
        bool durable = natsMsgHeader_Get(nm, "Nats-Sequence", &sseq) == NATS_OK;
        if (!fresh(r, e.node, e.epoch, e.seq, durable)) {
            r->st.duplicates++;
            natsMsg_Destroy(nm);
            return;
        }
    }
    server *srv = r->srv;
    uint64_t expiry_at = e.expiry_ms ? uv_now(srv->loop) + e.expiry_ms : 0;
    msg *m = msg_new_encoded(e.topic, e.props, e.payload, e.qos, e.retain,
                             expiry_at, ++srv->next_msg_id);
    if (!m) {
        r->st.invalid++;
        natsMsg_Destroy(nm);
        return;
    }
    route_remote rr = {e.cid, {NULL, 0}, {NULL, 0}};
    if (f->shared) {
        rr.group = f->group;
        rr.group_filter = f->inner;
    }
    r->st.received++;
    route_publish_remote(srv, m, e.route.len ? e.route : e.topic, &rr);
    msg_unref(m);
    natsMsg_Destroy(nm);
}

/* ---- life --------------------------------------------------------------- */

cluster_route *cluster_route_start(server *srv, cluster_link *l,
                                   const cluster_config *cc)
{
    cluster_route *r = calloc(1, sizeof(*r));
    if (!r || !(r->subj = malloc(SUBJECT_MAX + 1))) {
        free(r);
        log_error("cluster: out of memory: messages are not routed between "
                  "nodes");
        return NULL;
    }
    r->srv = srv;
    r->link = l;
    r->cc = cc;
    r->node_len = strlen(cc->node);
    uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    /* splitmix64: an epoch distinct per process */
    seed += 0x9E3779B97F4A7C15ull;
    seed = (seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9ull;
    seed = (seed ^ (seed >> 27)) * 0x94D049BB133111EBull;
    r->epoch = seed ^ (seed >> 31);
    r->hooks = (cluster_hooks){r,
                               on_route,
                               on_retain,
                               on_sub_added,
                               on_sub_removed,
                               durable_ready,
                               durable_busy,
                               durable_mark,
                               durable_status};
    r->retain = cluster_retain_start(srv, cc);
    r->durable = cluster_durable_start(srv, l, cc, r->epoch);
    if (r->durable)
        cluster_link_on_lost(l, link_lost, r);
    cluster_link_set_sink(l, on_nats, r);
    /* the subscriptions of sessions loaded from the store */
    uint32_t pos = 0;
    session *s;
    while ((s = hmap_next(&srv->sessions, &pos)) != NULL)
        for (sess_sub *ss = s->subs; ss; ss = ss->next)
            on_sub_added(r, (mqtt_str){(const uint8_t *)ss->filter, ss->len});
    srv->cluster_hooks = &r->hooks;
    return r;
}

void cluster_route_stop(cluster_route *r)
{
    if (!r || r->stopped)
        return;
    r->stopped = true;
    /* Fails what is in flight, so no ack waits for an answer that will
     * not come; the hooks go first, so the acks see a stopped cluster. */
    r->srv->cluster_hooks = NULL;
    cluster_durable_stop(r->durable);
    cluster_retain_stop(r->retain);
    cluster_link_set_sink(r->link, NULL, NULL);
    cluster_link_on_lost(r->link, NULL, NULL);
    uint32_t pos = 0;
    filt *f;
    while ((f = hmap_next(&r->filters, &pos)) != NULL) {
        unsubscribe(r, f);
        free(f);
    }
    hmap_free(&r->filters);
    hmap_free(&r->by_sid);
}

void cluster_route_free(cluster_route *r)
{
    if (!r)
        return;
    cluster_route_stop(r);
    uint32_t pos = 0;
    origin *o;
    while ((o = hmap_next(&r->origins, &pos)) != NULL)
        free(o);
    hmap_free(&r->origins);
    cluster_retain_free(r->retain);
    cluster_durable_free(r->durable);
    free(r->buf);
    free(r->subj);
    free(r);
}

cluster_retain *cluster_route_retain(cluster_route *r)
{
    return r->retain;
}

struct cluster_durable *cluster_route_durable(cluster_route *r)
{
    return r->durable;
}

void cluster_route_get_stats(const cluster_route *r, cluster_route_stats *out)
{
    *out = r->st;
}
