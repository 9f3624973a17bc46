/* Retained messages in a JetStream KV bucket (cluster_retain.h). */
#include <nats/nats.h>

#include "cluster_retain.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_env.h"
#include "cluster_nats.h"
#include "errors.h"
#include "hmap.h"
#include "log.h"
#include "loop_lock.h"
#include "msg.h"
#include "persist.h"
#include "retain_index.h"
#include "retain_limits.h"
#include "subject.h"
#include "wallclock.h"

/* Keys are the topic's subject under this prefix ("r.m.a.b" for a/b): the
 * subject alphabet is within the KV key alphabet. */
#define KEY_PREFIX "r"
/* Writes waiting for the bucket; past it they are dropped (counted). */
#define WRITE_QUEUE_CAP 65536
/* JetStream requests (create, put, delete) wait at most this long. */
#define JS_WAIT_MS 2000

/* One write for the bucket, or one change from it. */
typedef struct kv_item {
    struct kv_item *next;
    char *key;      /* owned, NUL-terminated */
    uint8_t *value; /* owned; NULL: delete */
    size_t len;
    int64_t created_ms; /* changes: when the bucket took it */
} kv_item;

typedef struct kv_list {
    kv_item *head, *tail;
    uint32_t count;
} kv_list;

struct cluster_retain {
    server *srv;              /* borrowed; touched on the loop only */
    const cluster_config *cc; /* borrowed; read-only */
    uv_async_t async;         /* main loop: changes to apply */
    uv_thread_t writer, watcher;
    bool writer_up, watcher_up;

    uv_mutex_t lock; /* guards everything below up to the counters */
    uv_cond_t cond;  /* writes queued, the bucket ready, or closing */
    kv_list writes;  /* loop -> writer */
    kv_list changes; /* watcher -> loop */
    bool closing;
    kvStore *kv;        /* owned; set by the writer once the bucket is open */
    kvWatcher *w;       /* owned by the watcher; kvWatcher_Stop from stop */
    natsConnection *nc; /* owned; the threads' connection */
    jsCtx *js;          /* owned */

    /* The loop's side: until the bucket's present values have all been
     * applied once (synced), the topics they hold (keys owned: copies of
     * the topics), so that what the local store still retains but the
     * bucket no longer does (cleared while this node was away) is
     * cleared here too. */
    bool synced;
    hmap seen;

    uint8_t *buf; /* owned: the envelope being built (under the loop lock) */
    size_t buf_cap;
    uint64_t epoch_seq; /* sequence for the envelope (unused by readers) */

    atomic_uint_least64_t written, failed, dropped, applied, invalid;
    atomic_bool ready;
};

static void list_push(kv_list *l, kv_item *it)
{
    it->next = NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->count++;
}

static void item_free(kv_item *it)
{
    if (!it)
        return;
    free(it->key);
    free(it->value);
    free(it);
}

static void list_free(kv_list *l)
{
    kv_item *it = l->head;
    while (it) {
        kv_item *n = it->next;
        item_free(it);
        it = n;
    }
    *l = (kv_list){NULL, NULL, 0};
}

static bool is_closing(cluster_retain *cr)
{
    uv_mutex_lock(&cr->lock);
    bool c = cr->closing;
    uv_mutex_unlock(&cr->lock);
    return c;
}

/* Sleep ms unless stop comes first. */
static void nap(cluster_retain *cr, uint64_t ms)
{
    uv_mutex_lock(&cr->lock);
    if (!cr->closing)
        uv_cond_timedwait(&cr->cond, &cr->lock, ms * 1000000ull);
    uv_mutex_unlock(&cr->lock);
}

/* ---- the writer thread -------------------------------------------------- */

static natsStatus open_bucket(cluster_retain *cr)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = cluster_nats_options(o, cr->cc);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 500);
    natsConnection *nc = NULL;
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_WAIT_MS;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    kvStore *kv = NULL;
    if (s == NATS_OK) {
        s = js_KeyValue(&kv, js, cr->cc->retained_bucket);
        if (s == NATS_NOT_FOUND) {
            kvConfig kc;
            kvConfig_Init(&kc);
            kc.Bucket = cr->cc->retained_bucket;
            kc.History = 1;
            kc.StorageType = js_FileStorage;
            kc.Replicas = (int)cr->cc->replicas;
            kc.Description = "imqtt retained messages";
            s = js_CreateKeyValue(&kv, js, &kc);
        }
    }
    if (s != NATS_OK) {
        kvStore_Destroy(kv);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return s;
    }
    uv_mutex_lock(&cr->lock);
    cr->nc = nc;
    cr->js = js;
    cr->kv = kv;
    uv_cond_broadcast(&cr->cond);
    uv_mutex_unlock(&cr->lock);
    return NATS_OK;
}

static void write_one(cluster_retain *cr, kv_item *it)
{
    natsStatus s;
    /* a write the bucket did not take (NATS away, a leader election) is
     * tried again, a few times: the bucket must end with the last one */
    for (int attempt = 0; attempt < 5 && !is_closing(cr); attempt++) {
        if (it->value)
            s = kvStore_Put(NULL, cr->kv, it->key, it->value, (int)it->len);
        else
            s = kvStore_Delete(cr->kv, it->key);
        if (s == NATS_OK) {
            atomic_fetch_add(&cr->written, 1);
            return;
        }
        nats_GetLastError(NULL);
        nap(cr, 200);
    }
    atomic_fetch_add(&cr->failed, 1);
    log_warn("cluster: retained %s not written to the bucket", it->key);
}

static void writer_main(void *arg)
{
    cluster_retain *cr = arg;
    bool warned = false;
    while (!is_closing(cr)) {
        natsStatus s = open_bucket(cr);
        if (s == NATS_OK)
            break;
        if (!warned)
            log_warn("cluster: retained bucket %s not open yet: %s; retrying",
                     cr->cc->retained_bucket, natsStatus_GetText(s));
        warned = true;
        nap(cr, 500);
    }
    if (is_closing(cr))
        return;
    log_info("cluster: retained messages in KV bucket %s",
             cr->cc->retained_bucket);
    for (;;) {
        uv_mutex_lock(&cr->lock);
        while (!cr->closing && !cr->writes.head)
            uv_cond_wait(&cr->cond, &cr->lock);
        if (cr->closing) {
            uv_mutex_unlock(&cr->lock);
            return;
        }
        kv_list todo = cr->writes;
        cr->writes = (kv_list){NULL, NULL, 0};
        uv_mutex_unlock(&cr->lock);
        for (kv_item *it = todo.head; it; it = it->next)
            write_one(cr, it);
        list_free(&todo);
    }
}

/* ---- the watcher thread ------------------------------------------------- */

static void watcher_main(void *arg)
{
    cluster_retain *cr = arg;
    uv_mutex_lock(&cr->lock);
    while (!cr->closing && !cr->kv)
        uv_cond_wait(&cr->cond, &cr->lock);
    kvStore *kv = cr->kv;
    uv_mutex_unlock(&cr->lock);
    if (!kv)
        return;
    for (;;) {
        kvWatcher *w = NULL;
        natsStatus s = kvStore_WatchAll(&w, kv, NULL);
        if (s != NATS_OK) {
            if (is_closing(cr))
                return;
            nap(cr, 500);
            continue;
        }
        uv_mutex_lock(&cr->lock);
        bool closing = cr->closing;
        if (!closing)
            cr->w = w;
        uv_mutex_unlock(&cr->lock);
        if (closing) {
            kvWatcher_Destroy(w);
            return;
        }
        for (;;) {
            kvEntry *e = NULL;
            s = kvWatcher_Next(&e, w, 1000);
            if (s == NATS_TIMEOUT)
                continue;
            if (s != NATS_OK)
                break; /* stopped */
            if (!e) {
                /* the bucket's present values have all been seen: the
                 * loop reconciles (an item without a key) */
                kv_item *mark = calloc(1, sizeof(*mark));
                uv_mutex_lock(&cr->lock);
                if (mark && !cr->closing) {
                    list_push(&cr->changes, mark);
                    mark = NULL;
                    uv_async_send(&cr->async);
                }
                uv_mutex_unlock(&cr->lock);
                free(mark);
                continue;
            }
            kv_item *it = calloc(1, sizeof(*it));
            const char *key = kvEntry_Key(e);
            kvOperation op = kvEntry_Operation(e);
            int len = kvEntry_ValueLen(e);
            if (it)
                it->key = strdup(key);
            if (it && op == kvOp_Put && len > 0) {
                it->value = malloc((size_t)len);
                if (it->value)
                    memcpy(it->value, kvEntry_Value(e), (size_t)len);
                it->len = (size_t)len;
            }
            int64_t created = kvEntry_Created(e);
            if (it)
                it->created_ms =
                    created > 100000000000000ll ? created / 1000000 : created;
            kvEntry_Destroy(e);
            if (!it || !it->key || (op == kvOp_Put && len > 0 && !it->value)) {
                item_free(it);
                atomic_fetch_add(&cr->invalid, 1);
                continue;
            }
            uv_mutex_lock(&cr->lock);
            if (!cr->closing) {
                list_push(&cr->changes, it);
                it = NULL;
                uv_async_send(&cr->async);
            }
            uv_mutex_unlock(&cr->lock);
            item_free(it);
        }
        uv_mutex_lock(&cr->lock);
        cr->w = NULL;
        closing = cr->closing;
        uv_mutex_unlock(&cr->lock);
        kvWatcher_Destroy(w);
        if (closing)
            return;
        nap(cr, 500);
    }
}

/* ---- the loop ----------------------------------------------------------- */

static void seen_set(cluster_retain *cr, mqtt_str t, bool present)
{
    if (cr->synced)
        return;
    uint8_t *old = hmap_remove(&cr->seen, t);
    free(old);
    if (!present)
        return;
    uint8_t *k = malloc(t.len ? t.len : 1);
    if (!k)
        return;
    memcpy(k, t.ptr, t.len);
    if (hmap_put(&cr->seen, (mqtt_bytes){k, t.len}, k, NULL) < 0)
        free(k);
}

typedef struct stale {
    cluster_retain *cr;
    mqtt_str *topics; /* owned array of owned copies */
    uint32_t n, cap;
} stale;

static void collect(void *arg, mqtt_str topic, void *value)
{
    (void)value;
    stale *st = arg;
    if (hmap_get(&st->cr->seen, topic))
        return;
    if (st->n == st->cap) {
        uint32_t cap = st->cap ? st->cap * 2 : 16;
        mqtt_str *nt = realloc(st->topics, cap * sizeof(*nt));
        if (!nt)
            return;
        st->topics = nt;
        st->cap = cap;
    }
    uint8_t *copy = malloc(topic.len);
    if (!copy)
        return;
    memcpy(copy, topic.ptr, topic.len);
    st->topics[st->n++] = (mqtt_str){copy, topic.len};
}

static void clear_topic(server *srv, mqtt_str t)
{
    msg *m =
        msg_new(t, NULL, (mqtt_bytes){NULL, 0}, 0, true, 0, ++srv->next_msg_id);
    if (!m)
        return;
    persist_retained(srv, m);
    retain_set(srv, m, NULL);
    msg_unref(m);
}

/* The bucket has been read through once: clear what this node retains
 * (from its store) that the bucket does not hold. Topics under '$' are
 * left alone (a node's own). */
static void reconcile(cluster_retain *cr)
{
    if (cr->synced)
        return;
    stale st = {cr, NULL, 0, 0};
    retain_index_match(cr->srv->retain, MQTT_STR_LIT("#"), collect, &st);
    for (uint32_t i = 0; i < st.n; i++) {
        clear_topic(cr->srv, st.topics[i]);
        free((void *)st.topics[i].ptr);
    }
    if (st.n)
        log_info("cluster: %u retained messages the bucket no longer holds "
                 "cleared",
                 st.n);
    free(st.topics);
    uint32_t pos = 0;
    void *k;
    while ((k = hmap_next(&cr->seen, &pos)) != NULL)
        free(k);
    hmap_free(&cr->seen);
    cr->synced = true;
    atomic_store(&cr->ready, true);
}

static void apply(cluster_retain *cr, kv_item *it)
{
    server *srv = cr->srv;
    if (!it->key) {
        reconcile(cr);
        return;
    }
    uint8_t topic[4096];
    int tn = cluster_subject_to_topic(KEY_PREFIX, it->key, strlen(it->key),
                                      topic, sizeof topic);
    if (tn <= 0) {
        atomic_fetch_add(&cr->invalid, 1);
        return;
    }
    mqtt_str t = {topic, (uint32_t)tn};
    msg *m;
    cluster_env e;
    if (it->value && cluster_env_decode(it->value, it->len, &e) == 0 &&
        e.topic.len == t.len && memcmp(e.topic.ptr, t.ptr, t.len) == 0) {
        uint64_t expiry_at = 0;
        if (e.expiry_ms) {
            int64_t age = wall_ms() - it->created_ms;
            int64_t left = (int64_t)e.expiry_ms - (age > 0 ? age : 0);
            if (left <= 0)
                e.payload.len = 0; /* expired: the topic holds nothing */
            else
                expiry_at = uv_now(srv->loop) + (uint64_t)left;
        }
        m = msg_new_encoded(t, e.props, e.payload, e.qos, true, expiry_at,
                            ++srv->next_msg_id);
    } else if (!it->value) {
        m = msg_new(t, NULL, (mqtt_bytes){NULL, 0}, 0, true, 0,
                    ++srv->next_msg_id);
    } else {
        atomic_fetch_add(&cr->invalid, 1);
        return;
    }
    if (!m)
        return;
    seen_set(cr, t, m->payload_len > 0);
    persist_retained(srv, m);
    retain_set(srv, m, NULL);
    msg_unref(m);
    atomic_fetch_add(&cr->applied, 1);
}

static void on_async(uv_async_t *h)
{
    cluster_retain *cr = h->data;
    uv_mutex_lock(&cr->lock);
    kv_list todo = cr->changes;
    cr->changes = (kv_list){NULL, NULL, 0};
    uv_mutex_unlock(&cr->lock);
    loop_lock();
    for (kv_item *it = todo.head; it; it = it->next)
        apply(cr, it);
    loop_unlock();
    list_free(&todo);
}

void cluster_retain_put(cluster_retain *cr, msg *m)
{
    mqtt_str topic = msg_topic(m);
    size_t cap = CLUSTER_SUBJECT_CAP(sizeof KEY_PREFIX - 1, topic.len);
    char *key = malloc(cap);
    kv_item *it = calloc(1, sizeof(*it));
    if (!key || !it ||
        cluster_topic_to_subject(KEY_PREFIX, topic, key, cap) < 0) {
        free(key);
        free(it);
        atomic_fetch_add(&cr->failed, 1);
        return;
    }
    it->key = key;
    if (m->payload_len > 0) {
        uint32_t expiry = 0;
        if (m->expiry_at) {
            uint64_t now = server_now(cr->srv);
            expiry = m->expiry_at > now ? (uint32_t)(m->expiry_at - now) : 1;
        }
        cluster_env e = {
            .qos = m->qos,
            .retain = true,
            .node = {(const uint8_t *)cr->cc->node,
                     (uint32_t)strlen(cr->cc->node)},
            .seq = ++cr->epoch_seq,
            .expiry_ms = expiry,
            .topic = topic,
            .props = msg_props_block(m),
            .payload = msg_payload(m),
        };
        int n = cluster_env_encode(&e, &cr->buf, &cr->buf_cap);
        if (n < 0 || !(it->value = malloc((size_t)n))) {
            item_free(it);
            atomic_fetch_add(&cr->failed, 1);
            return;
        }
        memcpy(it->value, cr->buf, (size_t)n);
        it->len = (size_t)n;
    }
    uv_mutex_lock(&cr->lock);
    if (cr->closing || cr->writes.count >= WRITE_QUEUE_CAP) {
        uv_mutex_unlock(&cr->lock);
        item_free(it);
        atomic_fetch_add(&cr->dropped, 1);
        return;
    }
    list_push(&cr->writes, it);
    uv_cond_broadcast(&cr->cond);
    uv_mutex_unlock(&cr->lock);
}

/* ---- life --------------------------------------------------------------- */

cluster_retain *cluster_retain_start(server *srv, const cluster_config *cc)
{
    cluster_retain *cr = calloc(1, sizeof(*cr));
    if (!cr)
        return NULL;
    cr->srv = srv;
    cr->cc = cc;
    if (uv_mutex_init(&cr->lock) != 0) {
        free(cr);
        return NULL;
    }
    if (uv_cond_init(&cr->cond) != 0) {
        uv_mutex_destroy(&cr->lock);
        free(cr);
        return NULL;
    }
    uv_async_init(srv->loop, &cr->async, on_async);
    cr->async.data = cr;
    cr->writer_up = uv_thread_create(&cr->writer, writer_main, cr) == 0;
    cr->watcher_up =
        cr->writer_up && uv_thread_create(&cr->watcher, watcher_main, cr) == 0;
    if (!cr->watcher_up) {
        log_error("cluster: cannot start the retained bucket's threads: "
                  "retained messages stay per node");
        cluster_retain_stop(cr);
    }
    return cr;
}

void cluster_retain_stop(cluster_retain *cr)
{
    if (!cr)
        return;
    uv_mutex_lock(&cr->lock);
    bool was = cr->closing;
    cr->closing = true;
    if (cr->w)
        kvWatcher_Stop(cr->w);
    uv_cond_broadcast(&cr->cond);
    uv_mutex_unlock(&cr->lock);
    if (was)
        return;
    if (cr->writer_up)
        uv_thread_join(&cr->writer);
    if (cr->watcher_up)
        uv_thread_join(&cr->watcher);
    cr->writer_up = cr->watcher_up = false;
    uv_close((uv_handle_t *)&cr->async, NULL);
}

void cluster_retain_free(cluster_retain *cr)
{
    if (!cr)
        return;
    list_free(&cr->writes);
    list_free(&cr->changes);
    uint32_t pos = 0;
    void *k;
    while ((k = hmap_next(&cr->seen, &pos)) != NULL)
        free(k);
    hmap_free(&cr->seen);
    kvStore_Destroy(cr->kv);
    jsCtx_Destroy(cr->js);
    if (cr->nc) {
        natsConnection_Close(cr->nc);
        natsConnection_Destroy(cr->nc);
    }
    uv_cond_destroy(&cr->cond);
    uv_mutex_destroy(&cr->lock);
    free(cr->buf);
    free(cr);
}

void cluster_retain_get_stats(cluster_retain *cr, cluster_retain_stats *out)
{
    out->written = atomic_load(&cr->written);
    out->failed = atomic_load(&cr->failed);
    out->dropped = atomic_load(&cr->dropped);
    out->applied = atomic_load(&cr->applied);
    out->invalid = atomic_load(&cr->invalid);
    out->ready = atomic_load(&cr->ready) ? 1 : 0;
}
