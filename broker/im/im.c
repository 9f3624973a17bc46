#include "im.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "conn.h"
#include "errors.h"
#include "hmap.h"
#include "im_ban.h"
#include "im_devices.h"
#include "im_history.h"
#include "im_log.h"
#include "im_msg.h"
#include "im_push.h"
#include "im_receipt.h"
#include "log.h"
#include "reason.h"
#include "route.h"
#include "session.h"
#include "topic.h"
#include "wallclock.h"

#define INBOX_PREFIX    "p2p/talk/"
#define PRESENCE_PREFIX "p2p/presence/"
#define GROUP_PREFIX    "g/talk/"
#define PREFIX_LEN(p)   (sizeof(p) - 1)

/* Who is online, per user, for presence. */
typedef struct presence {
    /* Its online devices, borrowed (a session leaves before it is freed):
     * the one inline while cap <= 1 (most users), else many, owned. */
    union {
        session *one;
        session **many;
    } d;
    uint32_t count, cap;
    uint32_t user_len;
    char user[]; /* NUL-terminated, sized to it: one per user online */
} presence;

static inline session **devices_of(presence *p)
{
    return p->cap > 1 ? p->d.many : &p->d.one;
}

static inline session *const *devices_of_c(const presence *p)
{
    return p->cap > 1 ? p->d.many : &p->d.one;
}

static void presence_free(presence *p)
{
    if (p->cap > 1)
        free(p->d.many);
    free(p);
}

int64_t im_wall_ms(void)
{
    return wall_ms();
}

static bool has_prefix(mqtt_str s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

/* The one level after prefix, when the topic is exactly prefix + level. */
static bool rest_is_level(mqtt_str t, size_t n, mqtt_str *level)
{
    if (t.len <= n || memchr(t.ptr + n, '/', t.len - n))
        return false;
    *level = (mqtt_str){t.ptr + n, t.len - (uint32_t)n};
    return true;
}

static bool str_eq(mqtt_str a, mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

void im_info_free(im_info *im)
{
    if (!im)
        return;
    jwtv_claims_free(im->claims);
    free(im);
}

/* ---- authentication ------------------------------------------------------ */

/* Counted in imqtt_auth_failures_total by cause (metrics.h). */
static im_auth_result refuse(server *srv, enum metric_id cause, uint8_t reason,
                             mqtt_str client_id, const char *why)
{
    (void)client_id; /* named by the caller's log line, with the peer */
    metrics_count(srv, cause);
    return (im_auth_result){reason, NULL, 0, why};
}

/* A token refusal's metric: the causes operators act on apart, the
 * rest of the claims together. */
static enum metric_id token_cause(enum jwtv_cause c)
{
    switch (c) {
    case JWTV_EXPIRED:
    case JWTV_NOT_YET_VALID:
        return METRIC_AUTH_TOKEN_EXPIRED;
    case JWTV_SIGNATURE:
        return METRIC_AUTH_TOKEN_SIGNATURE;
    case JWTV_ALG_NONE:
    case JWTV_ALG_MISMATCH:
        return METRIC_AUTH_TOKEN_ALG;
    case JWTV_TOOLONG:
    case JWTV_MALFORMED:
        return METRIC_AUTH_TOKEN_MALFORMED;
    case JWTV_SUB:
        return METRIC_AUTH_NOT_AUTHORIZED;
    default:
        return METRIC_AUTH_TOKEN_CLAIMS;
    }
}

static bool is_admin(const server *srv, mqtt_str user)
{
    for (uint32_t i = 0; i < srv->cfg.im_admin_count; i++)
        if (str_eq(user, mqtt_str_from(srv->cfg.im_admins[i],
                                       strlen(srv->cfg.im_admins[i]))))
            return true;
    return false;
}

im_auth_result im_authenticate(server *srv, const listener_config *l,
                               const mqtt_connect *p, mqtt_str client_id,
                               bool password_ok)
{
    im_identity id = {{0}, {0}};
    bool parsed = l->clientid != IM_CLIENTID_OFF &&
                  im_identity_parse(client_id, &id) == 0;
    if (l->clientid == IM_CLIENTID_REQUIRED && !parsed)
        return refuse(srv, METRIC_AUTH_CLIENT_ID, MQTT_RC_CLIENT_ID_NOT_VALID,
                      client_id, "client id is not user@device");
    /* Whom the credentials must prove: the user of user@device, else the
     * user name. A user name that names someone else is refused. */
    mqtt_str user = parsed ? id.user : p->username;
    if (parsed && p->has_username && p->username.len > 0 &&
        !str_eq(p->username, id.user))
        return refuse(srv, METRIC_AUTH_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
                      client_id, "user name differs from the client id's user");

    im_auth_result r = {MQTT_RC_SUCCESS, NULL, 0};
    jwtv_claims *claims = NULL;
    switch (l->auth) {
    case LISTENER_AUTH_ANONYMOUS:
        break;
    case LISTENER_AUTH_PASSWORD_FILE:
        if (!password_ok)
            return refuse(srv, METRIC_AUTH_PASSWORD,
                          MQTT_RC_BAD_USERNAME_OR_PASSWORD, client_id,
                          "user name or password not in the password file");
        break;
    case LISTENER_AUTH_JWT: {
        if (!p->has_password || user.len == 0)
            return refuse(srv, METRIC_AUTH_NO_TOKEN,
                          MQTT_RC_BAD_USERNAME_OR_PASSWORD, client_id,
                          "no token, or no user to check it for");
        enum jwtv_cause cause;
        int rc = jwtv_verify(srv->cfg.jwt, p->password, user,
                             (int64_t)(im_wall_ms() / 1000), &claims, &cause);
        if (rc == IMQTT_ENOMEM)
            return refuse(srv, METRIC_AUTH_SERVER_ERROR,
                          MQTT_RC_SERVER_UNAVAILABLE, client_id,
                          "out of memory");
        if (rc < 0)
            /* A token for someone else is valid but not theirs to use. */
            return refuse(srv, token_cause(cause),
                          cause == JWTV_SUB ? MQTT_RC_NOT_AUTHORIZED
                                            : MQTT_RC_BAD_USERNAME_OR_PASSWORD,
                          client_id, jwtv_cause_str(cause));
        r.expires = jwtv_claims_exp(claims);
        break;
    }
    }
    if (!parsed) {
        jwtv_claims_free(claims);
        return r;
    }
    /* Bans and revocations set through the backend API (im_ban.h). */
    int banned = im_ban_check(srv, id.user, id.device, claims);
    if (banned < 0) {
        jwtv_claims_free(claims);
        if (banned == IMQTT_EBANNED)
            return refuse(srv, METRIC_AUTH_NOT_AUTHORIZED, MQTT_RC_BANNED,
                          client_id, "banned");
        return refuse(srv, METRIC_AUTH_TOKEN_CLAIMS,
                      MQTT_RC_BAD_USERNAME_OR_PASSWORD, client_id,
                      "token revoked");
    }
    /* From the offset of id, not sizeof: the struct's tail padding holds
     * the first bytes of the id (ids of up to 10 bytes: a 64-byte chunk). */
    im_info *im = calloc(1, offsetof(im_info, id) + client_id.len + 1);
    if (!im) {
        jwtv_claims_free(claims);
        return refuse(srv, METRIC_AUTH_SERVER_ERROR, MQTT_RC_SERVER_UNAVAILABLE,
                      client_id, "out of memory");
    }
    memcpy(im->id, client_id.ptr, client_id.len);
    im->user = (mqtt_str){(uint8_t *)im->id, id.user.len};
    im->device = (mqtt_str){(uint8_t *)im->id + id.user.len + 1, id.device.len};
    im->claims = claims;
    im->admin = is_admin(srv, im->user);
    im->push_backend = l->auth != LISTENER_AUTH_ANONYMOUS &&
                       im_push_is_subscriber(srv, im->user);
    im->im_listener = l->im;
    im->delivery = l->im_delivery;
    im->read_receipts = !l->im_read_receipts_off;
    /* A new device of a user at im.max_devices_per_user (docs/im.md,
     * Limits) is refused when no offline device can make room (which it
     * does once the new one is connected: im_on_connect). */
    if (srv->cfg.im_max_devices && !session_find(srv, client_id) &&
        im_devices_admit(srv, &id) < 0) {
        im_info_free(im);
        return refuse(srv, METRIC_REFUSED_MAX_DEVICES,
                      mqtt_reason_for_error(IMQTT_EQUOTA), client_id,
                      "every device of the user at im.max_devices_per_user "
                      "is online");
    }
    r.im = im;
    /* 3.1.1 has no properties: who wrote it, its id and time can only
     * travel in the payload, for devices that ask (docs/im.md). */
    r.envelope = l->im && p->version != MQTT_V5 &&
                 (l->im_envelope || (claims && jwtv_claims_envelope(claims)));
    return r;
}

/* ---- access ----------------------------------------------------------------
 */

static bool in_group(const im_info *im, mqtt_str group)
{
    return im->claims && jwtv_claims_in_group(im->claims, group);
}

/* Who may read p2p/presence/{user} (im.presence): a filter with
 * wildcards is let through in "group" mode, and each message it matches
 * is checked at delivery (im_may_receive), by its topic. */
static bool presence_readable(const server *srv, const im_info *im,
                              mqtt_str topic)
{
    if (!srv->cfg.im_presence)
        return false; /* "nobody" */
    if (!acl_pattern_allows(MQTT_STR_LIT(PRESENCE_PREFIX "#"), NULL,
                            ACL_SUBSCRIBE, topic))
        return false;
    if (srv->cfg.im_presence_read == IM_PRESENCE_EVERYONE)
        return true;
    mqtt_str user;
    if (!rest_is_level(topic, PREFIX_LEN(PRESENCE_PREFIX), &user))
        return true; /* p2p/presence/# */
    if (memchr(user.ptr, '+', user.len) || memchr(user.ptr, '#', user.len))
        return true; /* p2p/presence/+ */
    return im_devices_share_group(srv, im, user);
}

/* The IM defaults (issue 5): anyone may publish to an inbox; a user may
 * subscribe to its own inbox only; presence is readable as im.presence
 * says; group topics need the group in the token. */
static bool im_default(const server *srv, const im_info *im,
                       enum acl_action action, mqtt_str topic)
{
    mqtt_str level;
    if (action == ACL_PUBLISH) {
        if (rest_is_level(topic, PREFIX_LEN(INBOX_PREFIX), &level) &&
            has_prefix(topic, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX)))
            return im_id_part_valid(level);
        if (has_prefix(topic, GROUP_PREFIX, PREFIX_LEN(GROUP_PREFIX)) &&
            rest_is_level(topic, PREFIX_LEN(GROUP_PREFIX), &level))
            return in_group(im, level);
        return false;
    }
    if (has_prefix(topic, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX)))
        return rest_is_level(topic, PREFIX_LEN(INBOX_PREFIX), &level) &&
               str_eq(level, im->user);
    if (has_prefix(topic, PRESENCE_PREFIX, PREFIX_LEN(PRESENCE_PREFIX)))
        return presence_readable(srv, im, topic);
    if (has_prefix(topic, GROUP_PREFIX, PREFIX_LEN(GROUP_PREFIX)) &&
        rest_is_level(topic, PREFIX_LEN(GROUP_PREFIX), &level))
        return in_group(im, level);
    return false;
}

bool im_access(const session *s, enum acl_action action, mqtt_str topic)
{
    acl_identity who = session_identity(s);
    return im_access_identity(s->srv, s->im, &who, action, topic);
}

bool im_access_identity(const server *srv, const im_info *im,
                        const acl_identity *whop, enum acl_action action,
                        mqtt_str topic)
{
    acl_identity who = *whop;
    /* $events/ is the broker's (offline push): only the backends the
     * config names read it, nobody publishes there, whatever else says. */
    bool allow;
    if (im_push_access(im && im->push_backend, action == ACL_SUBSCRIBE, topic,
                       &allow))
        return allow;
    /* $SYS is for the operators the config names, whatever else allows;
     * being named is what lets them subscribe to it. */
    if (im && im->im_listener && topic.len && topic.ptr[0] == '$') {
        if (!im->admin)
            return false;
        if (action == ACL_SUBSCRIBE)
            return true;
    }
    enum acl_decision d = acl_decide(srv->cfg.acl, &who, action, topic);
    if (d != ACL_NO_MATCH)
        return d == ACL_ALLOW;
    if (!im || !im->im_listener)
        return acl_default_allows(srv->cfg.acl);
    if (im->claims) {
        enum jwtv_acl_kind kind =
            action == ACL_PUBLISH ? JWTV_ACL_PUB : JWTV_ACL_SUB;
        size_t n = jwtv_claims_acl_count(im->claims, kind);
        for (size_t i = 0; i < n; i++)
            if (acl_pattern_allows(jwtv_claims_acl(im->claims, kind, i), &who,
                                   action, topic))
                return true;
    }
    return im_default(srv, im, action, topic);
}

bool im_may_receive(const session *s, mqtt_str topic)
{
    if (s->im && has_prefix(topic, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX)))
        return true; /* the inbox and the sync copies of one's own chats */
    if (s->im && s->im->im_listener && has_prefix(topic, "$im/", 4))
        return true; /* the broker's answers to this device: nobody else
                        may publish under $, and nothing matches it but
                        the broker's direct deliveries (im_history.c) */
    if (!s->im && acl_rule_count(s->srv->cfg.acl) == 0)
        return true; /* the default decides alike for every topic */
    return im_access(s, ACL_SUBSCRIBE, topic);
}

void im_adjust_sub_opts(const session *s, mqtt_str filter, mqtt_sub_opts *o)
{
    if (s->im && (has_prefix(filter, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX)) ||
                  has_prefix(filter, GROUP_PREFIX, PREFIX_LEN(GROUP_PREFIX))))
        o->no_local = true;
}

/* ---- the from stamp ---------------------------------------------------------
 */

mqtt_props im_stamp_props(const session *from, const mqtt_props *in,
                          im_stamp *st)
{
    return im_stamp_props_of(from->im, in, st);
}

mqtt_props im_stamp_props_of(const im_info *im, const mqtt_props *in,
                             im_stamp *st)
{
    return im_stamp_props_ex(im, in, NULL, 0, st);
}

/* The names the broker sets (receipt and msg_id mark receipts,
 * im_receipt.c): a client's own are dropped. */
static bool stamp_key(mqtt_str k)
{
    return str_eq(k, MQTT_STR_LIT("from")) || str_eq(k, MQTT_STR_LIT("id")) ||
           str_eq(k, MQTT_STR_LIT("ts")) ||
           str_eq(k, MQTT_STR_LIT("receipt")) ||
           str_eq(k, MQTT_STR_LIT("msg_id"));
}

mqtt_props im_stamp_props_ex(const im_info *im, const mqtt_props *in,
                             const mqtt_user_prop *extra, uint32_t nextra,
                             im_stamp *st)
{
    return im_stamp_props_as(
        mqtt_str_from(im->id, im->user.len + 1 + im->device.len), in, extra,
        nextra, st);
}

mqtt_props im_stamp_props_as(mqtt_str from, const mqtt_props *in,
                             const mqtt_user_prop *extra, uint32_t nextra,
                             im_stamp *st)
{
    mqtt_props out = *in;
    st->user = st->stack;
    st->n = 0;
    uint32_t need = in->user_count + 1 + nextra;
    if (need > sizeof(st->stack) / sizeof(st->stack[0])) {
        st->user = malloc(need * sizeof(*st->user));
        if (!st->user) {
            st->user = st->stack;
            need = sizeof(st->stack) / sizeof(st->stack[0]);
        }
    }
    /* The broker's stamp first, then the client's properties in order,
     * without any "from" of its own: receivers can trust it. */
    st->user[st->n++] = (mqtt_user_prop){MQTT_STR_LIT("from"), from};
    for (uint32_t i = 0; i < nextra && st->n < need; i++)
        st->user[st->n++] = extra[i];
    uint32_t pos = 0;
    mqtt_user_prop up;
    while (st->n < need && mqtt_props_next_user(in->raw, &pos, &up) == 1)
        if (!stamp_key(up.key))
            st->user[st->n++] = up;
    out.user = st->user;
    out.user_count = st->n;
    out.user_from = (mqtt_bytes){NULL, 0};
    return out;
}

void im_stamp_free(im_stamp *st)
{
    if (st->user != st->stack)
        free(st->user);
    st->user = NULL;
}

/* ---- sync
 * -------------------------------------------------------------------- */

void im_route_sync(server *srv, msg *m, session *from)
{
    if (!from || !from->im)
        return;
    im_route_sync_user(srv, m, from->im->user, from);
}

uint32_t im_route_sync_user(server *srv, msg *m, mqtt_str user, session *from)
{
    mqtt_str topic = msg_topic(m), peer;
    if (!has_prefix(topic, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX)) ||
        !rest_is_level(topic, PREFIX_LEN(INBOX_PREFIX), &peer) ||
        str_eq(peer, user))
        return 0; /* a note to self already reached the other devices */
    char inbox[PREFIX_LEN(INBOX_PREFIX) + IM_ID_PART_MAX + 1];
    memcpy(inbox, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX));
    memcpy(inbox + PREFIX_LEN(INBOX_PREFIX), user.ptr, user.len);
    return route_publish_as(
        srv, m, mqtt_str_from(inbox, PREFIX_LEN(INBOX_PREFIX) + user.len),
        from);
}

/* ---- inbox and presence ---------------------------------------------------
 */

im_state *im_state_of(server *srv)
{
    if (!srv->im)
        srv->im = calloc(1, sizeof(im_state));
    return srv->im;
}

static const im_presence_peer *peer_of(const server *srv)
{
    return srv->im ? ((const im_state *)srv->im)->peer : NULL;
}

/* The other nodes' devices (cluster mode) after this node's: each name
 * once, as a client id connected on two nodes is two sessions. */
static void add_remote_device(void *ctx, mqtt_str dev)
{
    cJSON *devs = ctx;
    char d[IM_ID_PART_MAX + 1];
    if (dev.len == 0 || dev.len > IM_ID_PART_MAX)
        return;
    memcpy(d, dev.ptr, dev.len);
    d[dev.len] = '\0';
    const cJSON *it;
    cJSON_ArrayForEach(it, devs)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, d) == 0)
            return;
    }
    cJSON_AddItemToArray(devs, cJSON_CreateString(d));
}

/* p2p/presence/{user}: user[0..user_len) NUL-terminated; p is the user's
 * devices here, NULL when none. */
static void publish_presence_of(server *srv, const char *user,
                                uint32_t user_len, const presence *p)
{
    const im_presence_peer *peer = peer_of(srv);
    cJSON *o = cJSON_CreateObject();
    cJSON *devs = cJSON_CreateArray();
    if (!o || !devs) {
        cJSON_Delete(o);
        cJSON_Delete(devs);
        return;
    }
    cJSON_AddItemToObject(o, "user", cJSON_CreateString(user));
    for (uint32_t i = 0; p && i < p->count; i++) {
        const im_info *im = devices_of_c(p)[i]->im;
        char dev[IM_ID_PART_MAX + 1];
        memcpy(dev, im->device.ptr, im->device.len);
        dev[im->device.len] = '\0';
        cJSON_AddItemToArray(devs, cJSON_CreateString(dev));
    }
    if (peer)
        peer->remote(peer->arg, mqtt_str_from(user, user_len),
                     add_remote_device, devs);
    cJSON_AddItemToObject(o, "devices", devs);
    cJSON_AddNumberToObject(o, "ts", (double)im_wall_ms());
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!json)
        return;
    char topic[PREFIX_LEN(PRESENCE_PREFIX) + IM_ID_PART_MAX + 1];
    memcpy(topic, PRESENCE_PREFIX, PREFIX_LEN(PRESENCE_PREFIX));
    memcpy(topic + PREFIX_LEN(PRESENCE_PREFIX), user, user_len);
    msg *m = msg_new(
        mqtt_str_from(topic, PREFIX_LEN(PRESENCE_PREFIX) + user_len), NULL,
        (mqtt_bytes){(const uint8_t *)json, (uint32_t)strlen(json)}, 1, true, 0,
        ++srv->next_msg_id);
    free(json);
    if (m) {
        /* with a peer every node publishes this merged view itself */
        if (peer)
            route_message_here(srv, m);
        else
            route_message(srv, m, NULL);
        msg_unref(m);
    }
}

static void publish_presence(server *srv, const presence *p)
{
    publish_presence_of(srv, p->user, p->user_len, p);
}

/* Cluster mode: tell the other nodes this node's devices of p's user. */
static void tell_peer(server *srv, const presence *p)
{
    const im_presence_peer *peer = peer_of(srv);
    if (!peer || !srv->cfg.im_presence)
        return;
    mqtt_str few[16] = {{0}};
    mqtt_str *d = p->count <= 16 ? few : malloc(p->count * sizeof(*d));
    if (!d)
        return;
    for (uint32_t i = 0; i < p->count; i++)
        d[i] = devices_of_c(p)[i]->im->device;
    peer->local(peer->arg, mqtt_str_from(p->user, p->user_len), d, p->count);
    if (d != few)
        free(d);
}

void im_presence_set_peer(server *srv, const im_presence_peer *peer)
{
    im_state *st = im_state_of(srv);
    if (st)
        st->peer = peer;
}

void im_presence_refresh(server *srv, mqtt_str user)
{
    if (!srv->cfg.im_presence || !srv->im || user.len == 0 ||
        user.len > IM_ID_PART_MAX)
        return;
    char name[IM_ID_PART_MAX + 1];
    memcpy(name, user.ptr, user.len);
    name[user.len] = '\0';
    publish_presence_of(srv, name, user.len,
                        hmap_get(&((im_state *)srv->im)->users, user));
}

static presence *presence_of(server *srv, mqtt_str user, bool create)
{
    im_state *st = im_state_of(srv);
    if (!st)
        return NULL;
    presence *p = hmap_get(&st->users, user);
    if (p || !create)
        return p;
    p = calloc(1, sizeof(*p) + user.len + 1);
    if (!p)
        return NULL;
    memcpy(p->user, user.ptr, user.len);
    p->user_len = user.len;
    if (hmap_put(&st->users, (mqtt_bytes){(uint8_t *)p->user, user.len}, p,
                 NULL) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Who is online is kept for presence and for offline push (a user with
 * a device online gets no push event). */
static bool tracking(const server *srv)
{
    return srv->cfg.im_presence || srv->cfg.push;
}

bool im_user_online(server *srv, mqtt_str user)
{
    if (!tracking(srv) || !srv->im)
        return false;
    const presence *p = hmap_get(&((im_state *)srv->im)->users, user);
    return p && p->count > 0;
}

void im_on_connect(session *s)
{
    server *srv = s->srv;
    im_info *im = s->im;
    if (!im)
        return;
    /* The inbox, on every connect: it is part of the session, and a
     * restored session simply keeps it (an update, not a second one). */
    char inbox[PREFIX_LEN(INBOX_PREFIX) + IM_ID_PART_MAX + 1];
    memcpy(inbox, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX));
    memcpy(inbox + PREFIX_LEN(INBOX_PREFIX), im->user.ptr, im->user.len);
    mqtt_sub_opts o = {.qos = srv->cfg.im_inbox_qos, .no_local = true};
    bool existed;
    if (session_subscribe(
            s, mqtt_str_from(inbox, PREFIX_LEN(INBOX_PREFIX) + im->user.len),
            &o, 0, &existed) < 0)
        log_warn("client %s: inbox subscription failed", s->client_id);
    /* What overflowed while it was away (queued after what is waiting). */
    if (s->missed && im->im_listener)
        im_overflow_marker(s);
    im_devices_connected(srv, s);
    if (!tracking(srv))
        return;
    presence *p = presence_of(srv, im->user, true);
    if (!p)
        return;
    uint32_t room = p->cap > 1 ? p->cap : 1;
    if (p->count == room) {
        uint32_t cap = room * 2;
        session **d = p->cap > 1 ? realloc(p->d.many, cap * sizeof(*d))
                                 : malloc(cap * sizeof(*d));
        if (!d)
            return;
        if (p->cap <= 1)
            d[0] = p->d.one;
        p->d.many = d;
        p->cap = cap;
    }
    for (uint32_t i = 0; i < p->count; i++)
        if (devices_of(p)[i] == s) {
            if (srv->cfg.im_presence)
                publish_presence(srv, p); /* resumed by a takeover */
            return;
        }
    devices_of(p)[p->count++] = s;
    tell_peer(srv, p);
    if (srv->cfg.im_presence)
        publish_presence(srv, p);
}

void im_on_disconnect(session *s)
{
    server *srv = s->srv;
    if (!s->im || !tracking(srv) || srv->stopping)
        return;
    presence *p = presence_of(srv, s->im->user, false);
    if (!p)
        return;
    for (uint32_t i = 0; i < p->count; i++) {
        if (devices_of(p)[i] == s) {
            devices_of(p)[i] = devices_of(p)[--p->count];
            tell_peer(srv, p);
            if (srv->cfg.im_presence)
                publish_presence(srv, p);
            break;
        }
    }
    if (p->count == 0) {
        hmap_remove(&im_state_of(srv)->users,
                    (mqtt_bytes){(uint8_t *)p->user, p->user_len});
        presence_free(p);
    }
}

static void collect_presence(void *arg, mqtt_str topic, void *value)
{
    (void)value;
    /* The walk may not change the index: note the users, publish after. */
    hmap *users = arg;
    mqtt_str user = {topic.ptr + PREFIX_LEN(PRESENCE_PREFIX),
                     topic.len - (uint32_t)PREFIX_LEN(PRESENCE_PREFIX)};
    if (!im_id_part_valid(user) || hmap_get(users, user))
        return;
    presence *p = calloc(1, sizeof(*p) + user.len + 1);
    if (!p)
        return;
    memcpy(p->user, user.ptr, user.len);
    p->user_len = user.len;
    if (hmap_put(users, (mqtt_bytes){(uint8_t *)p->user, user.len}, p, NULL))
        free(p);
}

void im_on_start(server *srv)
{
    im_push_start(srv);
    im_devices_load(srv);
    if (!srv->cfg.im_presence)
        return;
    hmap users = {0};
    retain_index_match(srv->retain, MQTT_STR_LIT(PRESENCE_PREFIX "+"),
                       collect_presence, &users);
    uint32_t pos = 0;
    presence *p;
    while ((pos = 0, p = hmap_next(&users, &pos))) {
        hmap_remove(&users, (mqtt_bytes){(uint8_t *)p->user, p->user_len});
        publish_presence(srv, p); /* no devices */
        free(p);
    }
    hmap_free(&users);
}

void im_server_free(server *srv)
{
    im_push_free(srv);
    im_log_free(srv);
    im_devices_free(srv);
    im_receipt_free(srv);
    im_ban_free(srv);
    im_state *st = srv->im;
    if (!st)
        return;
    uint32_t pos = 0;
    presence *p;
    while ((pos = 0, p = hmap_next(&st->users, &pos))) {
        hmap_remove(&st->users, (mqtt_bytes){(uint8_t *)p->user, p->user_len});
        presence_free(p);
    }
    hmap_free(&st->users);
    free(st);
    srv->im = NULL;
}

/* ---- the policy table ------------------------------------------------------
 */

static void identity_parts(const im_info *im, mqtt_str *user, mqtt_str *device)
{
    *user = im->user;
    *device = im->device;
}

/* Only devices of IM listeners get the IM treatment of their wills. */
static msg *will_new(server *srv, const im_info *im, const mqtt_connect *p,
                     bool *handled)
{
    *handled = im->im_listener;
    return im->im_listener ? im_will_new(srv, im, p) : NULL;
}

static msg *will_publish(session *s, msg *w, bool *as_device)
{
    *as_device = s->im->im_listener;
    return s->im->im_listener ? im_will_publish(s, w) : msg_ref(w);
}

static bool quota_user(const session *s, mqtt_str *user)
{
    if (!s->im->im_listener || s->im->user.len == 0)
        return false;
    *user = s->im->user;
    return true;
}

/* Requests the broker answers itself: history pages, read receipts. */
static bool is_request(const session *s, mqtt_str topic)
{
    return im_history_is_request(s, topic) || im_receipt_is_request(s, topic);
}

static int answer(conn *c, const mqtt_publish *p)
{
    if (im_receipt_is_request(c->sess, p->topic))
        return im_receipt_read(c, p);
    return im_history_handle(c, p);
}

static void on_session_end(session *s)
{
    im_devices_ended(s->srv, s);
}

static const policy im_rules = {
    .authenticate = im_authenticate,
    .identity_free = im_info_free,
    .identity_parts = identity_parts,
    .authorize = im_access,
    .authorize_identity = im_access_identity,
    .may_receive = im_may_receive,
    .quota_user = quota_user,
    .adjust_sub_opts = im_adjust_sub_opts,
    .message_new = im_message_new,
    .will_new = will_new,
    .will_publish = will_publish,
    .overflow = im_overflow_marker,
    .is_request = is_request,
    .answer = answer,
    .on_ack = im_receipt_on_ack,
    .on_session_end = on_session_end,
    .sync = im_route_sync,
    .queued_offline = im_push_queued,
    .on_connect = im_on_connect,
    .on_disconnect = im_on_disconnect,
    .on_start = im_on_start,
    .on_free = im_server_free,
};

const policy *im_policy(void)
{
    return &im_rules;
}
