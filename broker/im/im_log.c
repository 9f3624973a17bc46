/* im_log.h on one node: ids from a per-conversation counter seeded from
 * the store, messages in the store's conversation log. */
#include "im_log.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "hmap.h"
#include "identity.h"
#include "log.h"
#include "store_imlog.h"

#define INBOX_PREFIX "p2p/talk/"
#define GROUP_PREFIX "g/talk/"
#define PLEN(p)      (sizeof(p) - 1)

/* Next id per conversation seen in this run. Holding one for every
 * conversation touched costs ~80 bytes each; they are not evicted, since
 * an evicted counter would have to be re-read from the store, whose last
 * committed id may be behind ids already handed out. */
typedef struct conv_next {
    uint64_t next;
    uint32_t len;
    char key[IM_CONV_MAX];
} conv_next;

typedef struct im_log_state {
    hmap convs;
} im_log_state;

static size_t put2(char *buf, const char *tag, mqtt_str a, mqtt_str b)
{
    size_t n = 0;
    memcpy(buf, tag, 2);
    n = 2;
    memcpy(buf + n, a.ptr, a.len);
    n += a.len;
    if (b.ptr) {
        buf[n++] = '/';
        memcpy(buf + n, b.ptr, b.len);
        n += b.len;
    }
    return n;
}

size_t im_log_conv_peer(mqtt_str user, mqtt_str peer, char buf[IM_CONV_MAX])
{
    if (!im_id_part_valid(user) || !im_id_part_valid(peer))
        return 0;
    uint32_t m = user.len < peer.len ? user.len : peer.len;
    int c = memcmp(user.ptr, peer.ptr, m);
    bool user_first = c < 0 || (c == 0 && user.len <= peer.len);
    return user_first ? put2(buf, "d/", user, peer)
                      : put2(buf, "d/", peer, user);
}

size_t im_log_conv_group(mqtt_str group, char buf[IM_CONV_MAX])
{
    if (!im_id_part_valid(group))
        return 0;
    return put2(buf, "g/", group, (mqtt_str){NULL, 0});
}

size_t im_log_conv_of(mqtt_str user, mqtt_str topic, char buf[IM_CONV_MAX])
{
    if (topic.len > PLEN(INBOX_PREFIX) &&
        memcmp(topic.ptr, INBOX_PREFIX, PLEN(INBOX_PREFIX)) == 0)
        return im_log_conv_peer(
            user,
            (mqtt_str){topic.ptr + PLEN(INBOX_PREFIX),
                       topic.len - (uint32_t)PLEN(INBOX_PREFIX)},
            buf);
    if (topic.len > PLEN(GROUP_PREFIX) &&
        memcmp(topic.ptr, GROUP_PREFIX, PLEN(GROUP_PREFIX)) == 0)
        return im_log_conv_group(
            (mqtt_str){topic.ptr + PLEN(GROUP_PREFIX),
                       topic.len - (uint32_t)PLEN(GROUP_PREFIX)},
            buf);
    return 0;
}

static im_log_state *state(server *srv)
{
    if (!srv->im_log)
        srv->im_log = calloc(1, sizeof(im_log_state));
    return srv->im_log;
}

/* The counter of conv, seeded on first use from the store's last
 * committed id and the start-up count (im_log.h, Ids). */
static conv_next *counter(server *srv, mqtt_str conv)
{
    im_log_state *st = state(srv);
    if (!st)
        return NULL;
    conv_next *c = hmap_get(&st->convs, conv);
    if (c)
        return c;
    uint64_t last = 0;
    if (store_durable(srv->store) &&
        store_imlog_last(srv->store, conv, &last) < 0)
        return NULL; /* logged by the store */
    uint64_t boot = store_boot(srv->store);
    uint64_t floor = boot > 1 ? (boot - 1) << 32 : 1;
    c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    c->next = last + 1 > floor ? last + 1 : floor;
    c->len = conv.len;
    memcpy(c->key, conv.ptr, conv.len);
    if (hmap_put(&st->convs, (mqtt_bytes){(uint8_t *)c->key, c->len}, c, NULL) <
        0) {
        free(c);
        return NULL;
    }
    return c;
}

int im_log_append(server *srv, mqtt_str conv, im_log_entry *e)
{
    if (conv.len == 0 || conv.len > IM_CONV_MAX)
        return IMQTT_EINVAL;
    conv_next *c = counter(srv, conv);
    if (!c)
        return IMQTT_ENOMEM;
    e->id = c->next++;
    const imqtt_config *cfg = &srv->cfg;
    if (!cfg->im_history || !store_durable(srv->store))
        return 0;
    store_imlog_rec r = {e->id, e->ts, e->from, e->topic, e->payload};
    store_imlog_limits lim = {cfg->im_history_max_age_ms,
                              cfg->im_history_max_bytes,
                              cfg->im_history_max_messages};
    int rc = store_imlog_append(srv->store, conv, &r, &lim);
    if (rc < 0) {
        log_warn("conversation %.*s: message %llu not logged: %s",
                 (int)conv.len, (const char *)conv.ptr,
                 (unsigned long long)e->id, imqtt_strerror(rc));
        return 0; /* the id stands; the message still goes out */
    }
    return 1;
}

typedef struct page_ctx {
    im_log_cb cb;
    void *arg;
} page_ctx;

static int on_rec(void *arg, const store_imlog_rec *r)
{
    page_ctx *p = arg;
    im_log_entry e = {r->id, r->ts, r->from, r->topic, r->payload};
    return p->cb(p->arg, &e);
}

int im_log_page(server *srv, mqtt_str conv, bool forward, uint64_t from,
                uint32_t limit, im_log_cb cb, void *arg, bool *more)
{
    *more = false;
    if (!srv->cfg.im_history || !store_durable(srv->store))
        return IMQTT_ENOHISTORY;
    page_ctx p = {cb, arg};
    return store_imlog_page(srv->store, conv, forward, from, limit, on_rec, &p,
                            more);
}

void im_log_free(server *srv)
{
    im_log_state *st = srv->im_log;
    if (!st)
        return;
    /* Free the values in one pass, then the table (which only borrowed
     * the keys inside them). */
    uint32_t pos = 0;
    conv_next *c;
    while ((c = hmap_next(&st->convs, &pos)))
        free(c);
    hmap_free(&st->convs);
    free(st);
    srv->im_log = NULL;
}
