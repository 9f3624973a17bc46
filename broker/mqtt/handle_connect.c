/* CONNECT: validate, authorise the will, find or create the session
 * (takeover of a connected one), answer CONNACK, resume delivery. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "auth_guard.h"
#include "conn_log.h"
#include "errors.h"
#include "handlers.h"
#include "log.h"
#include "reason.h"
#include "session.h"
#include "topic.h"
#include "transport.h"
#include "wallclock.h"

static void send_connack(conn *c, uint8_t reason, bool present,
                         const mqtt_props *props)
{
    mqtt_packet p = {.type = MQTT_CONNACK};
    p.u.connack.session_present = present;
    p.u.connack.reason =
        c->version == MQTT_V5 ? reason : mqtt_reason_to_v3_connack(reason);
    if (props && c->version == MQTT_V5)
        p.u.connack.props = *props;
    conn_send(c, &p);
}

static int refuse(conn *c, uint8_t reason, const char *why)
{
    log_info("%s: CONNECT refused (%s): %s", conn_peer(c),
             mqtt_reason_name(reason), why);
    send_connack(c, reason, false, NULL);
    conn_close(c);
    return 0;
}

int handle_connect_refuse(conn *c, const mqtt_connect *p, uint8_t reason,
                          const char *why)
{
    c->version = p->version;
    return refuse(c, reason, why);
}

int handle_connect_error(conn *c, const mqtt_frame *f, int err)
{
    /* Find the protocol level to answer in the client's own version. */
    const uint8_t *b = f->body;
    uint32_t n = f->remaining;
    uint8_t level = 0;
    if (n >= 2) {
        uint32_t name_len = ((uint32_t)b[0] << 8) | b[1];
        if (n > 2 + name_len)
            level = b[2 + name_len];
    }
    if (err == IMQTT_EVERSION) {
        /* [MQTT-3.1.2-2]: CONNACK 0x01 (0x84 in v5), then close. */
        c->version = level == MQTT_V5 ? MQTT_V5 : MQTT_V311;
        return refuse(c, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                      "protocol level not supported");
    }
    if (level == MQTT_V5 && err != IMQTT_EPROTONAME) {
        c->version = MQTT_V5;
        return refuse(c, mqtt_reason_for_error(err), imqtt_strerror(err));
    }
    log_info("%s: malformed CONNECT: %s", conn_peer(c), imqtt_strerror(err));
    conn_close(c);
    return 0;
}

static bool assign_client_id(conn *c, char *buf, size_t len)
{
    /* Unique enough across restarts and within a run: time and a counter. */
    snprintf(buf, len, "imqtt-%llx-%x",
             (unsigned long long)uv_hrtime() & 0xffffffffffull,
             ++c->srv->next_client_id);
    return true;
}

static msg *make_will(server *srv, const mqtt_connect *p)
{
    return msg_new(p->will_topic, p->version == MQTT_V5 ? &p->will_props : NULL,
                   p->will_payload, p->will_qos, p->will_retain, 0,
                   ++srv->next_msg_id);
}

/* The older connection of this client id is closed [MQTT-3.1.4-3]. Its will
 * is sent unless the new connection resumes the session before a will
 * delay could run out [MQTT-3.1.3-9]. */
static void take_over(conn *c, session *s, bool clean_start)
{
    conn *old = s->conn;
    /* Both ends are named: two devices fighting over one client id show
     * as two addresses taking turns. */
    char by[64];
    snprintf(by, sizeof(by), "%s", conn_peer(c));
    old->sess = NULL;
    s->conn = NULL;
    if (s->will && (clean_start || s->will_delay == 0))
        session_publish_will(s);
    session_set_will(s, NULL, 0);
    log_info("client %s (%s): session taken over by %s", s->client_id,
             conn_peer(old), by);
    conn_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER);
}

/* The will is a publication: topic rules and the ACL apply at CONNECT
 * (BAD_INPUTS row 14). Returns 0, 1 when refused (connection closed), or
 * a negative error. */
static int check_will(conn *c, const mqtt_connect *p, mqtt_str client_id,
                      const struct im_info *im)
{
    const imqtt_config *cfg = &c->srv->cfg;
    if (!p->will)
        return 0;
    if (p->will_retain && !cfg->retain_available)
        return refuse(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
                      "will retain, retain not available") +
               1;
    mqtt_topic_limits lim = {cfg->max_topic_length, cfg->max_topic_levels};
    if (mqtt_topic_name_check(p->will_topic, &lim) < 0)
        return refuse(c, MQTT_RC_TOPIC_NAME_INVALID, "will topic") + 1;
    const policy *pol = c->srv->policy;
    acl_identity who = {client_id,
                        p->has_username ? p->username : (mqtt_str){NULL, 0}};
    if (im)
        pol->identity_parts(im, &who.username, &who.device);
    if (!pol->authorize_identity(c->srv, im, &who, ACL_PUBLISH,
                                 p->will_topic)) {
        metrics_count(c->srv, METRIC_AUTH_NOT_AUTHORIZED);
        return refuse(c, MQTT_RC_NOT_AUTHORIZED, "will topic denied") + 1;
    }
    return 0;
}

int handle_connect(conn *c, const mqtt_connect *p)
{
    server *srv = c->srv;
    const imqtt_config *cfg = &srv->cfg;
    c->version = p->version;
    mqtt_props ack = {0};
    mqtt_str client_id = p->client_id;
    char assigned[64];

    if (client_id.len == 0) {
        if (p->version == MQTT_V31 ||
            (!p->clean_start && p->version != MQTT_V5)) {
            metrics_count(srv, METRIC_AUTH_CLIENT_ID);
            return refuse(c, MQTT_RC_CLIENT_ID_NOT_VALID,
                          "empty client id without clean session");
        }
        assign_client_id(c, assigned, sizeof(assigned));
        client_id = mqtt_str_from(assigned, strlen(assigned));
        if (p->version == MQTT_V5) {
            mqtt_props_set(&ack, MQTT_PROP_ASSIGNED_CLIENT_ID);
            ack.assigned_client_id = client_id;
        }
    }
    if (p->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_AUTH_METHOD))
        return refuse(c, MQTT_RC_BAD_AUTH_METHOD,
                      "no enhanced authentication is configured");

    /* identity_from_cert: the verified certificate names the user, for
     * authentication and the ACL's %u. A different user name in the
     * CONNECT is refused rather than silently replaced: its password (if
     * any) was checked for someone else. On IM listeners im_authenticate
     * then requires the client id's user part to be that name (0x87). */
    mqtt_connect with_cert;
    const char *cert_user = transport_cert_identity(c);
    if (cert_user) {
        mqtt_str u = mqtt_str_from(cert_user, strlen(cert_user));
        if (p->has_username && p->username.len > 0 &&
            (p->username.len != u.len ||
             memcmp(p->username.ptr, u.ptr, u.len) != 0)) {
            metrics_count(srv, METRIC_AUTH_NOT_AUTHORIZED);
            return refuse(c, MQTT_RC_NOT_AUTHORIZED,
                          "user name differs from the certificate's identity");
        }
        with_cert = *p;
        with_cert.username = u;
        with_cert.has_username = true;
        p = &with_cert; /* views into the transport, valid while c lives */
    }

    const listener_config *lc = c->lst->cfg;
    policy_auth ar = {MQTT_RC_SUCCESS, NULL, 0};
    if (lc->auth != LISTENER_AUTH_ANONYMOUS ||
        lc->clientid != IM_CLIENTID_OFF) {
        /* A token check may cost a signature verification (RSA, EC): with
         * auth.failure_limit_jwt its failures count against the address
         * like wrong passwords (auth_guard.h). */
        bool jwt = lc->auth == LISTENER_AUTH_JWT && cfg->auth_fail_jwt;
        if (jwt && !auth_guard_admit(c))
            return refuse(c, mqtt_reason_for_error(IMQTT_EAUTHRATE),
                          "too many failed authentications from this address");
        ar = srv->policy->authenticate(srv, lc, p, client_id, c->password_ok);
        if (jwt && ar.reason == MQTT_RC_SUCCESS)
            auth_guard_succeeded(c);
        if (ar.reason != MQTT_RC_SUCCESS) {
            log_info("%s: CONNECT of %.*s refused (%s): %s", conn_peer(c),
                     (int)client_id.len, (const char *)client_id.ptr,
                     mqtt_reason_name(ar.reason), ar.why);
            send_connack(c, ar.reason, false, NULL);
            conn_close(c);
            return 0;
        }
    }
    int rc = check_will(c, p, client_id, ar.im);
    if (rc != 0) {
        srv->policy->identity_free(ar.im);
        return rc > 0 ? 0 : rc;
    }
    /* 3.1.1 has no properties: who wrote it, its id and time can only
     * travel in the payload, for devices that ask (docs/im.md). */
    c->im_envelope = ar.envelope;

    msg *will = NULL;
    bool will_made = false;
    if (p->will && ar.im)
        will = srv->policy->will_new(srv, ar.im, p, &will_made);
    if (p->will && !will_made)
        will = make_will(srv, p);
    if (p->will && !will) {
        srv->policy->identity_free(ar.im);
        return IMQTT_ENOMEM;
    }

    session *s = session_find(srv, client_id);
    if (s && s->conn)
        take_over(c, s, p->clean_start);
    if (s && p->clean_start) {
        srv->policy->on_disconnect(s);
        session_end(s);
        s = NULL;
    }
    bool present = s != NULL;
    if (!s) {
        s = session_new(srv, client_id);
        if (!s) {
            msg_unref(will);
            srv->policy->identity_free(ar.im);
            return IMQTT_ENOMEM;
        }
    }
    srv->policy->identity_free(s->im);
    s->im = ar.im;
    if (ar.expires) {
        /* Disconnect at the token's exp (v5 0xA0), on the loop's clock. */
        int64_t left = ar.expires * 1000 - wall_ms();
        c->auth_deadline = server_now(srv) + (left > 0 ? (uint64_t)left : 0);
    }

    if (p->version == MQTT_V5) {
        uint32_t want = mqtt_props_has(&p->props, MQTT_PROP_SESSION_EXPIRY)
                            ? p->props.session_expiry
                            : 0;
        s->expiry =
            want < cfg->max_session_expiry ? want : cfg->max_session_expiry;
        if (s->expiry != want) {
            mqtt_props_set(&ack, MQTT_PROP_SESSION_EXPIRY);
            ack.session_expiry = s->expiry;
        }
    } else {
        s->expiry = p->clean_start ? 0 : cfg->max_session_expiry;
    }
    uint32_t will_delay = 0;
    s->will_expiry = 0;
    if (will && p->version == MQTT_V5) {
        will_delay = p->will_props.will_delay;
        if (mqtt_props_has(&p->will_props, MQTT_PROP_MESSAGE_EXPIRY))
            s->will_expiry = p->will_props.message_expiry;
    }
    session_set_will(s, will, will_delay);
    if (session_set_username(s, p->username, p->has_username) < 0)
        return IMQTT_ENOMEM;

    c->sess = s;
    c->keepalive = p->keepalive;
    if (cfg->max_keepalive &&
        (p->keepalive == 0 || p->keepalive > cfg->max_keepalive) &&
        p->version == MQTT_V5) {
        c->keepalive = cfg->max_keepalive;
        mqtt_props_set(&ack, MQTT_PROP_SERVER_KEEP_ALIVE);
        ack.server_keep_alive = c->keepalive;
    }
    uint16_t rm = cfg->max_inflight_messages;
    if (p->version == MQTT_V5) {
        if (mqtt_props_has(&p->props, MQTT_PROP_RECEIVE_MAXIMUM) &&
            p->props.receive_maximum < rm)
            rm = p->props.receive_maximum;
        if (mqtt_props_has(&p->props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
            c->client_max_packet = p->props.maximum_packet_size;
        if (mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
            c->client_alias_max = p->props.topic_alias_maximum;
        c->request_problem_info =
            !mqtt_props_has(&p->props, MQTT_PROP_REQUEST_PROBLEM_INFO) ||
            p->props.request_problem_info;

        mqtt_props_set(&ack, MQTT_PROP_RECEIVE_MAXIMUM);
        ack.receive_maximum = cfg->max_inflight_messages;
        mqtt_props_set(&ack, MQTT_PROP_MAXIMUM_PACKET_SIZE);
        ack.maximum_packet_size = cfg->max_packet_size;
        if (cfg->topic_alias_maximum) {
            mqtt_props_set(&ack, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
            ack.topic_alias_maximum = cfg->topic_alias_maximum;
        }
        if (!cfg->retain_available) {
            mqtt_props_set(&ack, MQTT_PROP_RETAIN_AVAILABLE);
            ack.retain_available = 0;
        }
    }
    c->client_receive_max = rm;

    send_connack(c, MQTT_RC_SUCCESS, present, &ack);
    c->state = CONN_ACTIVE;
    log_info("client %.*s connected from %s (v%s, %s, keepalive %u)",
             (int)client_id.len, (const char *)client_id.ptr, conn_peer(c),
             p->version == MQTT_V5     ? "5"
             : p->version == MQTT_V311 ? "3.1.1"
                                       : "3.1",
             present ? "session resumed" : "new session", c->keepalive);
    session_attach(s, c);
    conn_start_keepalive(c);
    srv->policy->on_connect(s);
    return 0;
}
