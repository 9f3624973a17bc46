#include "im_ban.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "errors.h"
#include "hmap.h"
#include "session.h"
#include "wallclock.h"

/* One ban or revocation record; the map key is `key` inside it. */
typedef struct ban_rec {
    int64_t since_ms;              /* wall clock when set */
    int64_t before;                /* revocations by time: seconds */
    char user[IM_ID_PART_MAX + 1]; /* jti records: the user, "" any */
    char reason[IM_BAN_REASON_MAX + 1];
    uint32_t key_len;
    char key[]; /* user, user@device or the jti */
} ban_rec;

/* Every map owns its records (freed by free_map); keys live inside. */
struct im_bans {
    hmap users;         /* user -> ban_rec */
    hmap devices;       /* user@device -> ban_rec */
    hmap user_before;   /* user -> ban_rec (before) */
    hmap jti;           /* jti -> ban_rec (user) */
    int64_t all_before; /* every user's tokens before this, when all_set */
    bool all_set;
};

static struct im_bans *bans(server *srv)
{
    if (!srv->bans)
        srv->bans = calloc(1, sizeof(struct im_bans));
    return srv->bans;
}

static mqtt_bytes key_of(const ban_rec *r)
{
    return (mqtt_bytes){(const uint8_t *)r->key, r->key_len};
}

/* user or user@device into buf (IM_CLIENT_ID_MAX + 1). */
static mqtt_bytes who(char *buf, mqtt_str user, mqtt_str device)
{
    memcpy(buf, user.ptr, user.len);
    size_t n = user.len;
    if (device.len) {
        buf[n++] = '@';
        memcpy(buf + n, device.ptr, device.len);
        n += device.len;
    }
    return (mqtt_bytes){(const uint8_t *)buf, (uint32_t)n};
}

/* The record for key in m, created when absent (*created). */
static ban_rec *rec_get(hmap *m, mqtt_bytes key, bool *created)
{
    *created = false;
    ban_rec *r = hmap_get(m, key);
    if (r)
        return r;
    r = calloc(1, sizeof(*r) + key.len + 1);
    if (!r)
        return NULL;
    memcpy(r->key, key.ptr, key.len);
    r->key_len = key.len;
    if (hmap_put(m, key_of(r), r, NULL) < 0) {
        free(r);
        return NULL;
    }
    *created = true;
    r->since_ms = (int64_t)wall_ms();
    return r;
}

int im_ban_add(server *srv, mqtt_str user, mqtt_str device, const char *reason)
{
    struct im_bans *b = bans(srv);
    if (!b)
        return IMQTT_ENOMEM;
    char buf[IM_CLIENT_ID_MAX + 1];
    bool created;
    ban_rec *r = rec_get(device.len ? &b->devices : &b->users,
                         who(buf, user, device), &created);
    if (!r)
        return IMQTT_ENOMEM;
    size_t n = strlen(reason);
    if (n > IM_BAN_REASON_MAX)
        n = IM_BAN_REASON_MAX;
    memcpy(r->reason, reason, n);
    r->reason[n] = '\0';
    return created ? 1 : 0;
}

bool im_ban_remove(server *srv, mqtt_str user, mqtt_str device)
{
    struct im_bans *b = srv->bans;
    if (!b)
        return false;
    char buf[IM_CLIENT_ID_MAX + 1];
    ban_rec *r = hmap_remove(device.len ? &b->devices : &b->users,
                             who(buf, user, device));
    free(r);
    return r != NULL;
}

int im_revoke_before(server *srv, mqtt_str user, int64_t before)
{
    struct im_bans *b = bans(srv);
    if (!b)
        return IMQTT_ENOMEM;
    if (user.len == 0) {
        if (!b->all_set || before > b->all_before)
            b->all_before = before;
        b->all_set = true;
        return 0;
    }
    char buf[IM_CLIENT_ID_MAX + 1];
    bool created;
    ban_rec *r =
        rec_get(&b->user_before, who(buf, user, (mqtt_str){0}), &created);
    if (!r)
        return IMQTT_ENOMEM;
    if (created || before > r->before)
        r->before = before;
    return 0;
}

int im_revoke_jti(server *srv, mqtt_str user, mqtt_str jti)
{
    struct im_bans *b = bans(srv);
    if (!b)
        return IMQTT_ENOMEM;
    if (!hmap_get(&b->jti, jti) && b->jti.count >= IM_REVOKED_JTI_MAX)
        return IMQTT_EQUOTA;
    bool created;
    ban_rec *r = rec_get(&b->jti, jti, &created);
    if (!r)
        return IMQTT_ENOMEM;
    if (created) {
        memcpy(r->user, user.ptr, user.len);
        r->user[user.len] = '\0';
    } else if (strlen(r->user) != user.len ||
               memcmp(r->user, user.ptr, user.len) != 0) {
        r->user[0] = '\0'; /* revoked for two users: for any */
    }
    return 0;
}

int im_ban_check(const server *srv, mqtt_str user, mqtt_str device,
                 const jwtv_claims *claims)
{
    const struct im_bans *b = srv->bans;
    if (!b)
        return 0;
    char buf[IM_CLIENT_ID_MAX + 1];
    if (hmap_get(&b->users, who(buf, user, (mqtt_str){0})) ||
        (device.len && hmap_get(&b->devices, who(buf, user, device))))
        return IMQTT_EBANNED;
    if (!claims)
        return 0;
    int64_t iat = 0;
    bool has_iat = jwtv_claims_iat(claims, &iat);
    if (b->all_set && (!has_iat || iat < b->all_before))
        return IMQTT_EREVOKED;
    const ban_rec *r = hmap_get(&b->user_before, who(buf, user, (mqtt_str){0}));
    if (r && (!has_iat || iat < r->before))
        return IMQTT_EREVOKED;
    mqtt_str jti = jwtv_claims_jti(claims);
    if (jti.len && (r = hmap_get(&b->jti, jti)) != NULL &&
        (r->user[0] == '\0' || (strlen(r->user) == user.len &&
                                memcmp(r->user, user.ptr, user.len) == 0)))
        return IMQTT_EREVOKED;
    return 0;
}

static bool str_eq(mqtt_str a, mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

uint32_t im_ban_enforce(server *srv, mqtt_str user, mqtt_str device, bool all,
                        uint8_t reason)
{
    /* Collect first: closing a connection may end its session, and the
     * map must not change during the walk. */
    conn **list = NULL;
    uint32_t n = 0, cap = 0, pos = 0;
    session *s;
    while ((s = hmap_next(&srv->sessions, &pos))) {
        conn *c = s->conn;
        const im_info *im = s->im;
        if (!c || c->state != CONN_ACTIVE || !im)
            continue;
        if (user.len && !str_eq(im->user, user))
            continue;
        if (device.len && !str_eq(im->device, device))
            continue;
        if (!all && im_ban_check(srv, im->user, im->device, im->claims) == 0)
            continue;
        if (n == cap) {
            uint32_t ncap = cap ? cap * 2 : 16;
            conn **v = realloc(list, ncap * sizeof(*v));
            if (!v)
                break;
            list = v;
            cap = ncap;
        }
        conn_ref(c);
        list[n++] = c;
    }
    for (uint32_t i = 0; i < n; i++) {
        conn_disconnect(list[i], reason);
        conn_unref(list[i]);
    }
    free(list);
    return n;
}

static cJSON *rec_json(const ban_rec *r, bool device)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const char *at = device ? memchr(r->key, '@', r->key_len) : NULL;
    size_t ulen = at ? (size_t)(at - r->key) : r->key_len;
    char user[IM_ID_PART_MAX + 1];
    memcpy(user, r->key, ulen);
    user[ulen] = '\0';
    cJSON_AddStringToObject(o, "user", user);
    if (at)
        cJSON_AddStringToObject(o, "device", at + 1);
    cJSON_AddStringToObject(o, "reason", r->reason);
    cJSON_AddNumberToObject(o, "since", (double)r->since_ms);
    return o;
}

static cJSON *list_of(const hmap *m, bool device)
{
    cJSON *a = cJSON_CreateArray();
    uint32_t pos = 0;
    const ban_rec *r;
    while (a && (r = hmap_next(m, &pos)))
        cJSON_AddItemToArray(a, rec_json(r, device));
    return a;
}

cJSON *im_ban_list(const server *srv)
{
    static const hmap empty;
    const struct im_bans *b = srv->bans;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "users", list_of(b ? &b->users : &empty, false));
    cJSON_AddItemToObject(o, "devices",
                          list_of(b ? &b->devices : &empty, true));
    return o;
}

cJSON *im_revocation_list(const server *srv)
{
    const struct im_bans *b = srv->bans;
    cJSON *o = cJSON_CreateObject();
    cJSON *users = cJSON_CreateArray(), *jtis = cJSON_CreateArray();
    if (!o || !users || !jtis) {
        cJSON_Delete(o);
        cJSON_Delete(users);
        cJSON_Delete(jtis);
        return NULL;
    }
    if (b && b->all_set)
        cJSON_AddNumberToObject(o, "issued_before", (double)b->all_before);
    else
        cJSON_AddNullToObject(o, "issued_before");
    uint32_t pos = 0;
    const ban_rec *r;
    while (b && (r = hmap_next(&b->user_before, &pos))) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(users, e);
        cJSON_AddStringToObject(e, "user", r->key);
        cJSON_AddNumberToObject(e, "issued_before", (double)r->before);
    }
    pos = 0;
    while (b && (r = hmap_next(&b->jti, &pos))) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(jtis, e);
        cJSON_AddStringToObject(e, "jti", r->key);
        if (r->user[0])
            cJSON_AddStringToObject(e, "user", r->user);
        else
            cJSON_AddNullToObject(e, "user");
    }
    cJSON_AddItemToObject(o, "users", users);
    cJSON_AddItemToObject(o, "jti", jtis);
    return o;
}

static void free_map(hmap *m)
{
    uint32_t pos;
    ban_rec *r;
    while ((pos = 0, r = hmap_next(m, &pos))) {
        hmap_remove(m, key_of(r));
        free(r);
    }
    hmap_free(m);
}

void im_ban_free(server *srv)
{
    struct im_bans *b = srv->bans;
    if (!b)
        return;
    free_map(&b->users);
    free_map(&b->devices);
    free_map(&b->user_before);
    free_map(&b->jti);
    free(b);
    srv->bans = NULL;
}
