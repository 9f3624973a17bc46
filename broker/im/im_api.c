#include "im_api.h"

#include <stdlib.h>
#include <string.h>

#include "auth_guard.h"
#include "errors.h"
#include "im_ban.h"
#include "im_msg.h"
#include "log.h"
#include "retain_limits.h"
#include "route.h"
#include "session.h"

static uint64_t expiry_at(server *srv, uint32_t expiry)
{
    return expiry ? server_now(srv) + (uint64_t)expiry * 1000 : 0;
}

/* Whether routing put m in the open store batch (handle_publish.c). */
static bool recorded(server *srv, const msg *m, bool logged)
{
    return store_durable(srv->store) &&
           (logged || m->store_gen == store_batch_gen(srv->store));
}

int im_api_publish(server *srv, mqtt_str name, mqtt_str topic,
                   mqtt_bytes payload, uint8_t qos, bool retain,
                   uint32_t expiry, im_api_result *out)
{
    memset(out, 0, sizeof(*out));
    if (qos > 0 && store_refusing(srv->store)) {
        metrics_drop(srv, METRIC_DROP_STORE_FULL);
        return IMQTT_ESTOREFULL;
    }
    if (retain && !srv->cfg.retain_available)
        return IMQTT_ERETAINNS;
    if (retain && !retain_admit(srv, NULL, topic, payload.len))
        return IMQTT_EQUOTA;
    im_sender who = {name, name, true};
    im_log_entry e;
    bool logged = false;
    msg *m = im_message_as(srv, &who, topic, NULL, payload, qos, retain,
                           expiry_at(srv, expiry), &logged, &e);
    if (!m)
        return IMQTT_ENOMEM;
    out->delivered = route_message(srv, m, NULL);
    out->recorded = recorded(srv, m, logged);
    out->id = e.id;
    out->ts = e.ts;
    msg_unref(m);
    return 0;
}

int im_api_uplink(server *srv, const struct conn_addr *peer,
                  const im_api_admit *admit, mqtt_str user, mqtt_str device,
                  mqtt_bytes token, mqtt_str topic, mqtt_bytes payload,
                  uint8_t qos, uint32_t expiry, im_api_result *out,
                  const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (!srv->cfg.jwt) {
        *why = "no auth.jwt configured";
        return IMQTT_ENOTFOUND;
    }
    /* A signature check costs (RSA, EC): limited per address like a
     * CONNECT's when the config says so (auth.failure_limit_jwt). */
    bool limit = srv->cfg.auth_fail_jwt && peer;
    if (limit && !auth_guard_admit_addr(srv, peer)) {
        *why = "too many failed authentications from this address";
        return IMQTT_EAUTHRATE;
    }
    jwtv_claims *claims = NULL;
    enum jwtv_cause cause;
    int rc = jwtv_verify(srv->cfg.jwt, token, user,
                         (int64_t)(im_wall_ms() / 1000), &claims, &cause);
    if (rc < 0) {
        *why = jwtv_cause_str(cause);
        return rc == IMQTT_ENOMEM ? rc : IMQTT_EAUTH;
    }
    if (limit)
        auth_guard_succeeded_addr(srv, peer);
    if ((rc = im_ban_check(srv, user, device, claims)) < 0) {
        jwtv_claims_free(claims);
        return rc;
    }
    /* The identity the device would have on an IM listener, for this one
     * publication. */
    union {
        im_info info;
        char bytes[sizeof(im_info) + IM_CLIENT_ID_MAX + 1];
    } im_buf = {0};
    im_info *im = &im_buf.info;
    memcpy(im->id, user.ptr, user.len);
    im->id[user.len] = '@';
    memcpy(im->id + user.len + 1, device.ptr, device.len);
    im->user = mqtt_str_from(im->id, user.len);
    im->device = mqtt_str_from(im->id + user.len + 1, device.len);
    im->claims = claims;
    im->im_listener = true;
    mqtt_str cid = mqtt_str_from(im->id, user.len + 1 + device.len);
    acl_identity who = {cid, im->user, im->device};
    if (!im_access_identity(srv, im, &who, ACL_PUBLISH, topic)) {
        log_info("api: uplink of %s to %.*s denied", im->id, (int)topic.len,
                 (const char *)topic.ptr);
        metrics_drop(srv, METRIC_DROP_NOT_AUTHORIZED);
        jwtv_claims_free(claims);
        return IMQTT_EDENIED;
    }
    if (admit && !admit->fn(admit->arg, cid)) {
        *why = "limits.message_rate: too many messages from this device";
        jwtv_claims_free(claims);
        return IMQTT_EBUSY;
    }
    if (qos > 0 && store_refusing(srv->store)) {
        metrics_drop(srv, METRIC_DROP_STORE_FULL);
        jwtv_claims_free(claims);
        return IMQTT_ESTOREFULL;
    }
    /* The device's session, when it has one, is the publisher: No Local
     * keeps the message from its own subscriptions, as for its PUBLISH. */
    session *dev = session_find(srv, cid);
    im_sender sender = {cid, im->user, true};
    im_log_entry e;
    bool logged = false;
    msg *m = im_message_as(srv, &sender, topic, NULL, payload, qos, false,
                           expiry_at(srv, expiry), &logged, &e);
    jwtv_claims_free(claims);
    if (!m)
        return IMQTT_ENOMEM;
    /* route_message without the retained part (uplinks are never
     * retained), with the sync of this identity. */
    srv->stats.msgs_received++;
    out->delivered = route_publish(srv, m, dev);
    out->delivered += im_route_sync_user(srv, m, im->user, dev);
    out->recorded = recorded(srv, m, logged);
    out->id = e.id;
    out->ts = e.ts;
    msg_unref(m);
    return 0;
}
