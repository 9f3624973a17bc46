/* The endpoints of the backend API (docs/api.md). Each runs on the main
 * loop inside the HTTP listener's read callback and touches the server
 * directly (sessions, routing, the store batch, the ban state); an
 * answer that must wait for the store commit leaves call->later and a
 * commit waiter behind. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_json.h"
#include "api_rate.h"
#include "api_route.h"
#include "conn.h"
#include "errors.h"
#include "im_api.h"
#include "im_ban.h"
#include "im_history.h"
#include "log.h"
#include "reason.h"
#include "session.h"
#include "wallclock.h"

#define container_of(p, type, field) \
    ((type *)(void *)((char *)(p)-offsetof(type, field)))

static mqtt_str str_of(const char *s)
{
    return mqtt_str_from(s, strlen(s));
}

/* The store batch holding the message committed: now the answer goes. */
static void on_commit(commit_waiter *cw, int status)
{
    api_call *call = container_of(cw, api_call, cw);
    if (status < 0) {
        cJSON_Delete(call->later);
        call->later = NULL;
        api_fail(call, IMQTT_ESTOREFULL, "the store could not keep it");
    } else {
        cJSON *o = call->later;
        call->later = NULL;
        api_ok(call, o);
    }
    call->ready(call);
}

/* Answer o now, or after the commit when the message was recorded. */
static bool answer_message(api_call *call, cJSON *o, bool recorded)
{
    if (!recorded) {
        api_ok(call, o);
        return true;
    }
    call->later = o;
    call->cw.done = on_commit;
    worker_wait_commit(worker_current(), &call->cw);
    return false;
}

static cJSON *message_json(const api_message *m, const im_api_result *res,
                           const char *from)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "topic", m->topic);
    cJSON_AddStringToObject(o, "from", from);
    if (res->id)
        cJSON_AddNumberToObject(o, "id", (double)res->id);
    cJSON_AddNumberToObject(o, "ts", (double)res->ts);
    cJSON_AddNumberToObject(o, "qos", m->qos);
    cJSON_AddNumberToObject(o, "delivered", res->delivered);
    return o;
}

static bool ep_publish(api_call *call, const http_req *r)
{
    api_message m;
    const char *why;
    int rc = api_parse_message(r->body, r->body_len, false, &m, &why);
    if (rc < 0) {
        api_fail(call, rc, why);
        return true;
    }
    im_api_result res;
    rc = im_api_publish(call->srv, str_of(m.service),
                        mqtt_str_from(m.topic, m.topic_len),
                        (mqtt_bytes){m.payload, (uint32_t)m.payload_len}, m.qos,
                        m.retain, m.expiry, &res);
    if (rc < 0) {
        api_message_free(&m);
        api_fail(call, rc, NULL);
        return true;
    }
    log_debug("api: %s published to %s", m.service, m.topic);
    cJSON *o = message_json(&m, &res, m.service);
    api_message_free(&m);
    return answer_message(call, o, res.recorded);
}

/* limits.message_rate per device, as its MQTT connection has it. */
static bool uplink_admit(void *arg, mqtt_str cid)
{
    api_call *call = arg;
    return api_rate_take(call->rates, call->srv, cid);
}

static bool ep_uplink(api_call *call, const http_req *r, const api_route *rt)
{
    const char *tok;
    size_t tlen;
    api_bearer(r, &tok, &tlen);
    api_message m;
    const char *why;
    int rc = api_parse_message(r->body, r->body_len, true, &m, &why);
    if (rc < 0) {
        api_fail(call, rc, why);
        return true;
    }
    im_api_result res;
    im_api_admit admit = {uplink_admit, call};
    rc = im_api_uplink(call->srv, call->peer.family ? &call->peer : NULL,
                       call->rates ? &admit : NULL, str_of(rt->user),
                       str_of(rt->device),
                       (mqtt_bytes){(const uint8_t *)tok, (uint32_t)tlen},
                       mqtt_str_from(m.topic, m.topic_len),
                       (mqtt_bytes){m.payload, (uint32_t)m.payload_len}, m.qos,
                       m.expiry, &res, &why);
    if (rc < 0) {
        if (rc == IMQTT_EAUTH)
            log_info("api: uplink of %s@%s refused: %s", rt->user, rt->device,
                     why);
        api_message_free(&m);
        /* The token's precise fault is for the log only (docs/im.md). */
        api_fail(call, rc,
                 rc == IMQTT_EAUTH ? "the token is not valid "
                                     "for this user"
                                   : why);
        return true;
    }
    char from[IM_CLIENT_ID_MAX + 1];
    snprintf(from, sizeof(from), "%s@%s", rt->user, rt->device);
    cJSON *o = message_json(&m, &res, from);
    api_message_free(&m);
    return answer_message(call, o, res.recorded);
}

/* Sessions of user: client ids "user@...". */
typedef void (*session_fn)(void *arg, session *s, mqtt_str device);

static uint32_t for_sessions(server *srv, const char *user, session_fn fn,
                             void *arg)
{
    size_t ulen = strlen(user);
    uint32_t pos = 0, n = 0;
    session *s;
    while ((s = hmap_next(&srv->sessions, &pos))) {
        if (s->client_id_len <= ulen + 1 || s->client_id[ulen] != '@' ||
            memcmp(s->client_id, user, ulen) != 0)
            continue;
        mqtt_str dev =
            mqtt_str_from(s->client_id + ulen + 1, s->client_id_len - ulen - 1);
        if (!im_id_part_valid(dev))
            continue;
        n++;
        fn(arg, s, dev);
    }
    return n;
}

static bool online(const session *s)
{
    return s->conn && s->conn->state == CONN_ACTIVE;
}

static void add_device(void *arg, session *s, mqtt_str device)
{
    cJSON *list = arg;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddItemToArray(list, o);
    char dev[IM_ID_PART_MAX + 1];
    memcpy(dev, device.ptr, device.len);
    dev[device.len] = '\0';
    cJSON_AddStringToObject(o, "device", dev);
    cJSON_AddStringToObject(o, "client_id", s->client_id);
    bool on = online(s);
    cJSON_AddBoolToObject(o, "online", on);
    if (on)
        cJSON_AddNumberToObject(o, "last_seen", (double)wall_ms());
    else if (s->disconnect_wall)
        cJSON_AddNumberToObject(o, "last_seen", (double)s->disconnect_wall);
    else
        cJSON_AddNullToObject(o, "last_seen");
    cJSON_AddBoolToObject(o, "persistent", s->sid != 0 || s->expiry != 0);
    cJSON_AddNumberToObject(o, "queued",
                            (double)(s->queue.count + s->disk_count));
    cJSON_AddNumberToObject(o, "inflight", s->inflight.count);
    cJSON_AddNumberToObject(o, "subscriptions", s->nsubs);
    if (on)
        cJSON_AddStringToObject(o, "peer", conn_peer(s->conn));
}

static bool ep_devices(api_call *call, const api_route *rt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    if (!o || !list) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        api_fail(call, IMQTT_ENOMEM, NULL);
        return true;
    }
    cJSON_AddStringToObject(o, "user", rt->user);
    cJSON_AddItemToObject(o, "devices", list);
    if (for_sessions(call->srv, rt->user, add_device, list) == 0) {
        cJSON_Delete(o);
        api_error(call, 404, "not_found", "the user has no sessions");
        return true;
    }
    api_ok(call, o);
    return true;
}

typedef struct presence_acc {
    cJSON *devices;
    uint64_t last_seen;
} presence_acc;

static void add_presence(void *arg, session *s, mqtt_str device)
{
    presence_acc *acc = arg;
    if (online(s)) {
        char dev[IM_ID_PART_MAX + 1];
        memcpy(dev, device.ptr, device.len);
        dev[device.len] = '\0';
        cJSON_AddItemToArray(acc->devices, cJSON_CreateString(dev));
    } else if (s->disconnect_wall > acc->last_seen) {
        acc->last_seen = s->disconnect_wall;
    }
}

static bool ep_presence(api_call *call, const api_route *rt)
{
    cJSON *o = cJSON_CreateObject();
    presence_acc acc = {cJSON_CreateArray(), 0};
    if (!o || !acc.devices) {
        cJSON_Delete(o);
        cJSON_Delete(acc.devices);
        api_fail(call, IMQTT_ENOMEM, NULL);
        return true;
    }
    for_sessions(call->srv, rt->user, add_presence, &acc);
    bool on = cJSON_GetArraySize(acc.devices) > 0;
    cJSON_AddStringToObject(o, "user", rt->user);
    cJSON_AddBoolToObject(o, "online", on);
    cJSON_AddItemToObject(o, "devices", acc.devices);
    if (on)
        cJSON_AddNumberToObject(o, "last_seen", (double)wall_ms());
    else if (acc.last_seen)
        cJSON_AddNumberToObject(o, "last_seen", (double)acc.last_seen);
    else
        cJSON_AddNullToObject(o, "last_seen");
    cJSON_AddNumberToObject(o, "ts", (double)wall_ms());
    api_ok(call, o);
    return true;
}

static bool ep_history(api_call *call, const http_req *r, const api_route *rt)
{
    server *srv = call->srv;
    im_history_req hr;
    const char *why;
    int rc = api_parse_history_query(r->query, r->query_len,
                                     srv->cfg.im_history_page_max, &hr, &why);
    if (rc < 0) {
        api_fail(call, rc, why);
        return true;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        api_fail(call, IMQTT_ENOMEM, NULL);
        return true;
    }
    cJSON_AddStringToObject(o, "user", rt->user);
    rc = im_history_page(srv, str_of(rt->user), &hr, IM_HISTORY_PAGE_BYTES, o);
    if (rc < 0) {
        cJSON_Delete(o);
        api_fail(call, rc, rc == IMQTT_ENOHISTORY ? "no history kept" : NULL);
        return true;
    }
    api_ok(call, o);
    return true;
}

static cJSON *count_json(const char *key, uint32_t n)
{
    cJSON *o = cJSON_CreateObject();
    if (o)
        cJSON_AddNumberToObject(o, key, n);
    return o;
}

static bool ep_kick(api_call *call, const api_route *rt)
{
    server *srv = call->srv;
    if (rt->device[0]) {
        char cid[IM_CLIENT_ID_MAX + 1];
        snprintf(cid, sizeof(cid), "%s@%s", rt->user, rt->device);
        if (!session_find(srv, str_of(cid))) {
            api_error(call, 404, "not_found", "no such device");
            return true;
        }
    }
    uint32_t n = im_ban_enforce(srv, str_of(rt->user), str_of(rt->device), true,
                                MQTT_RC_ADMINISTRATIVE_ACTION);
    log_info("api: kicked %u connection(s) of %s%s%s", n, rt->user,
             rt->device[0] ? "@" : "", rt->device);
    api_ok(call, count_json("kicked", n));
    return true;
}

static bool ep_ban(api_call *call, const http_req *r, const api_route *rt)
{
    server *srv = call->srv;
    mqtt_str user = str_of(rt->user), device = str_of(rt->device);
    if (r->method == HTTP_DELETE) {
        if (!im_ban_remove(srv, user, device)) {
            api_error(call, 404, "not_found", "no such ban");
            return true;
        }
        log_info("api: ban of %s%s%s lifted", rt->user,
                 rt->device[0] ? "@" : "", rt->device);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "banned", false);
        api_ok(call, o);
        return true;
    }
    char reason[API_REASON_MAX + 1];
    const char *why;
    int rc = api_parse_ban(r->body, r->body_len, reason, &why);
    if (rc < 0) {
        api_fail(call, rc, why);
        return true;
    }
    if ((rc = im_ban_add(srv, user, device, reason)) < 0) {
        api_fail(call, rc, NULL);
        return true;
    }
    /* In force at once: the connected ones go now. */
    uint32_t n =
        im_ban_enforce(srv, user, device, false, MQTT_RC_ADMINISTRATIVE_ACTION);
    log_info("api: %s%s%s banned, %u connection(s) closed", rt->user,
             rt->device[0] ? "@" : "", rt->device, n);
    cJSON *o = count_json("kicked", n);
    cJSON_AddBoolToObject(o, "banned", true);
    cJSON_AddBoolToObject(o, "new", rc == 1);
    api_ok(call, o);
    return true;
}

static bool ep_revocations(api_call *call, const http_req *r)
{
    server *srv = call->srv;
    if (r->method == HTTP_GET) {
        api_ok(call, im_revocation_list(srv));
        return true;
    }
    api_revocation rv;
    const char *why;
    int rc = api_parse_revocation(r->body, r->body_len, &rv, &why);
    if (rc < 0) {
        api_fail(call, rc, why);
        return true;
    }
    mqtt_str user = str_of(rv.user);
    rc = rv.by_jti ? im_revoke_jti(srv, user, str_of(rv.jti))
                   : im_revoke_before(srv, user, rv.before);
    if (rc < 0) {
        api_fail(call, rc, NULL);
        return true;
    }
    uint32_t n = im_ban_enforce(srv, user, (mqtt_str){0}, false,
                                MQTT_RC_ADMINISTRATIVE_ACTION);
    log_info("api: tokens revoked (%s%s), %u connection(s) closed",
             rv.user[0] ? "user " : "all users", rv.user[0] ? rv.user : "", n);
    api_ok(call, count_json("kicked", n));
    return true;
}

bool api_endpoint(api_call *call, const http_req *r, const api_route *rt)
{
    switch (rt->ep) {
    case API_PUBLISH:
        return ep_publish(call, r);
    case API_UPLINK:
        return ep_uplink(call, r, rt);
    case API_DEVICES:
        return ep_devices(call, rt);
    case API_PRESENCE:
        return ep_presence(call, rt);
    case API_HISTORY:
        return ep_history(call, r, rt);
    case API_KICK_USER:
    case API_KICK_DEVICE:
        return ep_kick(call, rt);
    case API_BAN_USER:
    case API_BAN_DEVICE:
        return ep_ban(call, r, rt);
    case API_BANS:
        api_ok(call, im_ban_list(call->srv));
        return true;
    case API_REVOCATIONS:
        return ep_revocations(call, r);
    case API_NONE:
        break;
    }
    api_error(call, 404, "not_found", "no such endpoint");
    return true;
}
