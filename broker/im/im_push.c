#include "im_push.h"

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>

#include "config_push.h"
#include "errors.h"
#include "hmap.h"
#include "identity.h"
#include "im.h"
#include "log.h"
#include "loop_lock.h"
#include "route.h"
#include "utf8.h"

#define INBOX_PREFIX "p2p/talk/"
#define GROUP_PREFIX "g/talk/"
#define PLEN(p)      (sizeof(p) - 1)

/* One event waiting for the end of the router's work. */
typedef struct push_item {
    struct push_item *next;
    msg *m; /* reference held until the event is published */
    uint8_t user_len, device_len;
    char user[IM_ID_PART_MAX + 1];
    char device[IM_ID_PART_MAX + 1]; /* per-device mode only */
} push_item;

typedef struct im_push {
    server *srv;            /* borrowed: the server this hangs off */
    const push_config *cfg; /* borrowed from srv->cfg (not reloaded) */
    webhook *wh;            /* owned; NULL: no webhook */
    /* Publishes the collected events on the main loop, after the
     * delivery that queued them (the router is not re-entered); sent
     * from whichever loop delivers (uv_async_send is thread-safe). */
    uv_async_t wake;
    bool stopping;
    push_item *head, *tail; /* owned */
    /* Per-user mode: the users the message being routed has an event
     * for already (keys are views into the items). */
    hmap seen;
    uint64_t seen_serial;
    uint64_t events;
} im_push;

static bool prefixed(mqtt_str s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static bool eq(mqtt_str a, mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool im_push_is_subscriber(const server *srv, mqtt_str user)
{
    const push_config *pc = srv->cfg.push;
    for (uint32_t i = 0; pc && i < pc->subscriber_count; i++)
        if (eq(user,
               mqtt_str_from(pc->subscribers[i], strlen(pc->subscribers[i]))))
            return true;
    return false;
}

bool im_push_access(bool backend, bool subscribe, mqtt_str topic, bool *allow)
{
    if (!prefixed(topic, IM_EVENTS_PREFIX, PLEN(IM_EVENTS_PREFIX)))
        return false;
    *allow = subscribe && backend &&
             prefixed(topic, IM_PUSH_PREFIX, PLEN(IM_PUSH_PREFIX));
    return true;
}

/* ---- deciding -------------------------------------------------------------
 */

/* The broker's stamp, first in the message's user properties (im.c). */
typedef struct stamp {
    mqtt_str from, id, ts;
} stamp;

static stamp stamp_of(const msg *m)
{
    stamp st = {{0}, {0}, {0}};
    uint32_t pos = 0;
    mqtt_user_prop up;
    for (int i = 0; i < 3 && mqtt_props_next_user(m->props->raw, &pos, &up);
         i++) {
        if (eq(up.key, MQTT_STR_LIT("from")))
            st.from = up.value;
        else if (eq(up.key, MQTT_STR_LIT("id")))
            st.id = up.value;
        else if (eq(up.key, MQTT_STR_LIT("ts")))
            st.ts = up.value;
        else
            break;
    }
    return st;
}

static mqtt_str user_of(mqtt_str from)
{
    const uint8_t *at = from.len ? memchr(from.ptr, '@', from.len) : NULL;
    return at ? (mqtt_str){from.ptr, (uint32_t)(at - from.ptr)} : from;
}

static void on_wake(uv_async_t *h);

void im_push_queued(session *s, msg *m)
{
    server *srv = s->srv;
    im_push *p = srv->im_push;
    if (!p || p->stopping)
        return;
    /* A device loaded from the store after a restart has no identity
     * until it reconnects: its client id says whose it is. */
    im_identity who;
    if (s->im) {
        if (!s->im->im_listener)
            return;
        who = (im_identity){s->im->user, s->im->device};
    } else if (im_identity_parse(mqtt_str_from(s->client_id, s->client_id_len),
                                 &who) < 0) {
        return;
    }
    mqtt_str topic = msg_topic(m);
    if (!prefixed(topic, INBOX_PREFIX, PLEN(INBOX_PREFIX)) &&
        !prefixed(topic, GROUP_PREFIX, PLEN(GROUP_PREFIX)))
        return; /* only chat messages wake a phone */
    /* The user's own messages (sync copies, notes to self) are no news. */
    stamp st = stamp_of(m);
    if (st.from.len && eq(user_of(st.from), who.user))
        return;
    bool per_user = p->cfg->mode == PUSH_PER_USER;
    if (per_user) {
        if (im_user_online(srv, who.user))
            return;
        if (p->seen_serial != m->serial) {
            hmap_free(&p->seen);
            p->seen_serial = m->serial;
        }
        if (hmap_get(&p->seen, who.user))
            return; /* another offline device of the user: one event */
    }
    push_item *it = calloc(1, sizeof(*it));
    if (!it)
        return;
    memcpy(it->user, who.user.ptr, who.user.len);
    it->user_len = (uint8_t)who.user.len;
    if (!per_user) {
        memcpy(it->device, who.device.ptr, who.device.len);
        it->device_len = (uint8_t)who.device.len;
    } else if (hmap_put(&p->seen,
                        (mqtt_bytes){(const uint8_t *)it->user, it->user_len},
                        it, NULL) < 0) {
        free(it);
        return;
    }
    it->m = msg_ref(m);
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    if (!p->stopping)
        uv_async_send(&p->wake);
}

/* ---- formatting -----------------------------------------------------------
 */

static void add_str(cJSON *o, const char *key, mqtt_str v)
{
    char buf[512];
    if (v.len >= sizeof buf)
        return; /* user@device and topics of chats are far shorter */
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    cJSON_AddStringToObject(o, key, buf);
}

static void add_dec(cJSON *o, const char *key, mqtt_str v)
{
    uint64_t n = 0;
    if (v.len == 0 || v.len > 16)
        return;
    for (uint32_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return;
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    cJSON_AddNumberToObject(o, key, (double)n);
}

/* The payload as history gives it: a JSON string when it is UTF-8 without
 * NUL, else base64. Returns false on ENOMEM. */
static bool add_payload(cJSON *o, mqtt_bytes pl)
{
    bool text =
        mqtt_utf8_check(pl.ptr, pl.len) == 0 && !memchr(pl.ptr, 0, pl.len);
    size_t cap = text ? (size_t)pl.len + 1 : ((size_t)pl.len + 2) / 3 * 4 + 1;
    char *tmp = malloc(cap);
    if (!tmp)
        return false;
    if (text) {
        memcpy(tmp, pl.ptr, pl.len);
        tmp[pl.len] = '\0';
    } else {
        size_t olen = 0;
        mbedtls_base64_encode((unsigned char *)tmp, cap, &olen, pl.ptr, pl.len);
        tmp[olen] = '\0';
    }
    cJSON *r =
        cJSON_AddStringToObject(o, text ? "payload" : "payload_b64", tmp);
    free(tmp);
    return r != NULL;
}

static cJSON *event_of(const push_item *it)
{
    const msg *m = it->m;
    stamp st = stamp_of(m);
    mqtt_str topic = msg_topic(m);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_str(o, "user", mqtt_str_from(it->user, it->user_len));
    if (it->device_len)
        add_str(o, "device", mqtt_str_from(it->device, it->device_len));
    if (st.from.len)
        add_str(o, "from", st.from);
    add_dec(o, "id", st.id);
    if (st.ts.len)
        add_dec(o, "ts", st.ts);
    else
        cJSON_AddNumberToObject(o, "ts", (double)im_wall_ms());
    add_str(o, "topic", topic);
    if (prefixed(topic, GROUP_PREFIX, PLEN(GROUP_PREFIX)))
        add_str(o, "group",
                (mqtt_str){topic.ptr + PLEN(GROUP_PREFIX),
                           topic.len - (uint32_t)PLEN(GROUP_PREFIX)});
    else if (st.from.len)
        add_str(o, "peer", user_of(st.from));
    return o;
}

static void publish_topic(server *srv, const push_item *it, const char *json)
{
    char topic[PLEN(IM_PUSH_PREFIX) + IM_ID_PART_MAX + 1];
    memcpy(topic, IM_PUSH_PREFIX, PLEN(IM_PUSH_PREFIX));
    memcpy(topic + PLEN(IM_PUSH_PREFIX), it->user, it->user_len);
    msg *m =
        msg_new(mqtt_str_from(topic, PLEN(IM_PUSH_PREFIX) + it->user_len), NULL,
                (mqtt_bytes){(const uint8_t *)json, (uint32_t)strlen(json)}, 1,
                false, 0, ++srv->next_msg_id);
    if (!m)
        return;
    route_message(srv, m, NULL);
    msg_unref(m);
}

/* One event: on the topic and to the webhook, each with or without the
 * payload as configured. */
static void emit(im_push *p, const push_item *it)
{
    const push_config *pc = p->cfg;
    bool wh_payload = p->wh && pc->webhook->include_payload;
    bool need_plain = !pc->include_payload || (p->wh && !wh_payload);
    bool need_full = pc->include_payload || wh_payload;
    cJSON *o = event_of(it);
    if (!o)
        return;
    char *plain = need_plain ? cJSON_PrintUnformatted(o) : NULL;
    char *full = NULL;
    if (need_full && add_payload(o, msg_payload(it->m)))
        full = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    const char *on_topic = pc->include_payload ? full : plain;
    const char *on_hook = wh_payload ? full : plain;
    if (on_topic || on_hook)
        p->events++;
    if (on_topic)
        publish_topic(p->srv, it, on_topic);
    if (p->wh && on_hook)
        webhook_post(p->wh, on_hook, strlen(on_hook)); /* counted if full */
    cJSON_free(plain);
    cJSON_free(full);
}

static void on_wake_locked(uv_async_t *h)
{
    im_push *p = h->data;
    push_item *it = p->head;
    p->head = p->tail = NULL;
    hmap_free(&p->seen);
    p->seen_serial = 0;
    while (it) {
        push_item *next = it->next;
        if (!p->stopping)
            emit(p, it);
        msg_unref(it->m);
        free(it);
        it = next;
    }
}

static void on_wake(uv_async_t *h)
{
    loop_lock();
    on_wake_locked(h);
    loop_unlock();
}

/* ---- life cycle -----------------------------------------------------------
 */

static void drop_items(im_push *p)
{
    while (p->head) {
        push_item *it = p->head;
        p->head = it->next;
        msg_unref(it->m);
        free(it);
    }
    p->tail = NULL;
    hmap_free(&p->seen);
}

static void stop_push(server *srv, void *arg)
{
    (void)arg;
    im_push *p = srv->im_push;
    if (!p || p->stopping)
        return;
    p->stopping = true;
    drop_items(p);
    uv_close((uv_handle_t *)&p->wake, NULL);
    webhook_close(p->wh);
}

void im_push_start(server *srv)
{
    const push_config *pc = srv->cfg.push;
    if (!pc || srv->im_push)
        return;
    im_push *p = calloc(1, sizeof(*p));
    if (!p) {
        log_error("offline push: %s", imqtt_strerror(IMQTT_ENOMEM));
        return;
    }
    p->srv = srv;
    p->cfg = pc;
    if (pc->webhook) {
        const push_webhook_config *w = pc->webhook;
        webhook_options o = {.url = w->url,
                             .bearer = w->bearer,
                             .batch_size = w->batch_size,
                             .batch_interval_ms = w->batch_interval_ms,
                             .timeout_ms = w->timeout_ms,
                             .retries = w->retries,
                             .retry_backoff_ms = w->retry_backoff_ms,
                             .queue_limit = w->queue_limit,
                             .concurrency = w->concurrency};
        int rc = webhook_new(srv->loop, &o, &p->wh);
        if (rc < 0) {
            log_error("offline push: webhook %s: %s", w->url,
                      imqtt_strerror(rc));
            free(p);
            return;
        }
    }
    uv_async_init(srv->loop, &p->wake, on_wake);
    p->wake.data = p;
    if (server_on_stopping(srv, stop_push, NULL) < 0) {
        log_error("offline push: no stop hook left");
        uv_close((uv_handle_t *)&p->wake, NULL);
        webhook_close(p->wh);
        p->stopping = true;
    }
    srv->im_push = p;
    log_info("offline push: events on " IM_PUSH_PREFIX "{user}%s%s (%s)",
             p->wh ? ", webhook " : "", p->wh ? pc->webhook->url : "",
             pc->mode == PUSH_PER_USER ? "per user" : "per device");
}

void im_push_free(server *srv)
{
    im_push *p = srv->im_push;
    if (!p)
        return;
    drop_items(p);
    webhook_free(p->wh);
    free(p);
    srv->im_push = NULL;
}

bool im_push_stats_get(const server *srv, im_push_stats *out)
{
    const im_push *p = srv->im_push;
    if (!p)
        return false;
    out->events = p->events;
    out->webhook = p->wh != NULL;
    if (p->wh)
        out->wh = *webhook_get_stats(p->wh);
    return true;
}
