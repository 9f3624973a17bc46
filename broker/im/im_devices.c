#include "im_devices.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "session.h"

static im_user_devices *lookup(const server *srv, mqtt_str user)
{
    const im_state *st = srv->im;
    return st ? hmap_get(&st->devices, user) : NULL;
}

static im_user_devices *user_of(server *srv, mqtt_str user)
{
    im_state *st = im_state_of(srv);
    if (!st)
        return NULL;
    im_user_devices *u = hmap_get(&st->devices, user);
    if (u)
        return u;
    u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    memcpy(u->user, user.ptr, user.len);
    u->user_len = user.len;
    if (hmap_put(&st->devices, (mqtt_bytes){(uint8_t *)u->user, user.len}, u,
                 NULL) < 0) {
        free(u);
        return NULL;
    }
    return u;
}

static void user_free(im_user_devices *u)
{
    free(u->s);
    free(u->groups);
    free(u);
}

static void add(server *srv, session *s, mqtt_str user)
{
    im_user_devices *u = user_of(srv, user);
    if (!u)
        return; /* out of memory: the session goes uncounted */
    for (uint32_t i = 0; i < u->n; i++)
        if (u->s[i] == s)
            return;
    if (u->n == u->cap) {
        uint32_t cap = u->cap ? u->cap * 2 : 4;
        session **a = realloc(u->s, cap * sizeof(*a));
        if (!a)
            return;
        u->s = a;
        u->cap = cap;
    }
    u->s[u->n++] = s;
}

static void set_groups(im_user_devices *u, const jwtv_claims *claims)
{
    size_t n = claims ? jwtv_claims_group_count(claims) : 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += jwtv_claims_group(claims, i).len + 1;
    char *g = len ? malloc(len) : NULL;
    if (len && !g)
        return; /* keep what was known */
    char *p = g;
    for (size_t i = 0; i < n; i++) {
        mqtt_str name = jwtv_claims_group(claims, i);
        memcpy(p, name.ptr, name.len);
        p[name.len] = '\0';
        p += name.len + 1;
    }
    free(u->groups);
    u->groups = g;
    u->ngroups = (uint32_t)n;
}

/* Only what uses the index pays for it (neither key is reloaded). */
static bool wanted(const server *srv)
{
    return srv->cfg.im_max_devices ||
           srv->cfg.im_presence_read == IM_PRESENCE_GROUP;
}

/* Past im.max_devices_per_user with s connected: the device that has
 * been away longest makes room (a user who replaced a phone is not locked
 * out by a session that will never come back); devices online now are
 * never pushed out (im_devices_admit refused s if all were). */
static void make_room(server *srv, session *s)
{
    uint32_t max = srv->cfg.im_max_devices;
    im_user_devices *u;
    while (max && (u = lookup(srv, s->im->user)) && u->n > max) {
        session *oldest = NULL;
        for (uint32_t i = 0; i < u->n; i++) {
            session *o = u->s[i];
            if (!o->conn &&
                (!oldest || o->disconnect_wall < oldest->disconnect_wall))
                oldest = o;
        }
        if (!oldest)
            return;
        log_info("client %s: %s ends, the oldest offline of %u devices of "
                 "%.*s (im.max_devices_per_user)",
                 s->client_id, oldest->client_id, u->n, (int)s->im->user.len,
                 (const char *)s->im->user.ptr);
        metrics_count(srv, METRIC_IM_DEVICES_EVICTED);
        session_end(oldest); /* calls back im_devices_ended */
    }
}

void im_devices_connected(server *srv, session *s)
{
    if (!wanted(srv))
        return;
    add(srv, s, s->im->user);
    im_user_devices *u = lookup(srv, s->im->user);
    if (u)
        set_groups(u, s->im->claims);
    make_room(srv, s);
}

void im_devices_ended(server *srv, session *s)
{
    im_identity id;
    if (!s->client_id ||
        im_identity_parse(mqtt_str_from(s->client_id, s->client_id_len), &id))
        return;
    im_user_devices *u = lookup(srv, id.user);
    if (!u)
        return;
    for (uint32_t i = 0; i < u->n; i++) {
        if (u->s[i] == s) {
            u->s[i] = u->s[--u->n];
            break;
        }
    }
    if (u->n == 0) {
        hmap_remove(&srv->im->devices,
                    (mqtt_bytes){(uint8_t *)u->user, u->user_len});
        user_free(u);
    }
}

void im_devices_load(server *srv)
{
    if (!wanted(srv))
        return;
    uint32_t pos = 0;
    session *s;
    while ((s = hmap_next(&srv->sessions, &pos))) {
        im_identity id;
        if (im_identity_parse(mqtt_str_from(s->client_id, s->client_id_len),
                              &id) == 0)
            add(srv, s, id.user);
    }
}

int im_devices_admit(const server *srv, const im_identity *id)
{
    uint32_t max = srv->cfg.im_max_devices;
    const im_user_devices *u = lookup(srv, id->user);
    if (max == 0 || !u || u->n < max)
        return 0;
    for (uint32_t i = 0; i < u->n; i++)
        if (!u->s[i]->conn)
            return 0; /* it will make room (make_room) */
    return IMQTT_EQUOTA;
}

bool im_devices_share_group(const server *srv, const im_info *reader,
                            mqtt_str user)
{
    if (reader->user.len == user.len &&
        memcmp(reader->user.ptr, user.ptr, user.len) == 0)
        return true;
    const im_user_devices *u = lookup(srv, user);
    if (!u || !reader->claims)
        return false;
    const char *p = u->groups;
    for (uint32_t i = 0; i < u->ngroups; i++) {
        size_t len = strlen(p);
        if (jwtv_claims_in_group(reader->claims, mqtt_str_from(p, len)))
            return true;
        p += len + 1;
    }
    return false;
}

void im_devices_free(server *srv)
{
    im_state *st = srv->im;
    if (!st)
        return;
    uint32_t pos = 0;
    im_user_devices *u;
    while ((pos = 0, u = hmap_next(&st->devices, &pos))) {
        hmap_remove(&st->devices,
                    (mqtt_bytes){(uint8_t *)u->user, u->user_len});
        user_free(u);
    }
    hmap_free(&st->devices);
}
