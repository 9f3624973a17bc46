/* Decode one packet and hand it to its handler: the only place that knows
 * which packet types a client may send in which state. */
#include <stdlib.h>
#include <string.h>

#include "auth_guard.h"
#include "conn_trace.h"
#include "errors.h"
#include "handlers.h"
#include "identity.h"
#include "log.h"
#include "loop_lock.h"
#include "password.h"
#include "reason.h"
#include "session.h"

/* A password check on libuv's thread pool: PBKDF2 takes ~0.1 s, which the
 * loop must not spend. The CONNECT is kept as bytes and dispatched again
 * once the result is known; input is paused meanwhile. */
typedef struct pw_check {
    uv_work_t req;
    conn *c;
    const pwdb *db; /* borrowed from the config, which outlives the work */
    mqtt_str user;  /* views into frame */
    mqtt_bytes password;
    int result;
    uint32_t frame_len;
    uint8_t frame[];
} pw_check;

static void pw_work(uv_work_t *req)
{
    pw_check *w = req->data;
    w->result = pwdb_check(w->db, w->user, w->password);
}

static void pw_done_locked(uv_work_t *req, int status)
{
    pw_check *w = req->data;
    conn *c = w->c;
    if (status == 0)
        auth_guard_password_done(c, w->db, w->user, w->password,
                                 w->result == 0);
    if (c->state == CONN_AUTH) {
        c->password_checked = true;
        c->password_ok = status == 0 && w->result == 0;
        c->state = CONN_NEW;
        mqtt_frame f;
        int rc = mqtt_frame_parse(w->frame, w->frame_len, 0, &f);
        rc = rc > 0 ? dispatch_packet(c, &f) : IMQTT_EMALFORMED;
        if (rc < 0)
            conn_fail(c, rc);
        else
            conn_resume_input(c);
    }
    memset(w->frame, 0, w->frame_len); /* it held a password */
    free(w);
    conn_unref(c);
}

static void pw_done(uv_work_t *req, int status)
{
    loop_lock();
    pw_done_locked(req, status);
    loop_unlock();
}

static int check_password(conn *c, const mqtt_frame *f, const mqtt_connect *p)
{
    const pwdb *db = c->srv->cfg.passwords;
    /* On an IM listener the user is the client id's: the user name may be
     * empty or absent (docs/im.md, Identity); im_authenticate refuses one
     * that names someone else. */
    mqtt_str user = p->has_username ? p->username : (mqtt_str){NULL, 0};
    im_identity id;
    if (user.len == 0 && c->lst->cfg->clientid != IM_CLIENTID_OFF &&
        im_identity_parse(p->client_id, &id) == 0)
        user = id.user;
    if (user.len == 0 || !p->has_password || !db) {
        c->password_checked = true;
        c->password_ok = false;
        return handle_connect(c, p);
    }
    /* A device reconnecting with the password verified minutes ago costs
     * an HMAC, not a PBKDF2 run; a wrong password never hits. */
    if (auth_guard_cached(c, db, p->username, p->password)) {
        c->password_checked = true;
        c->password_ok = true;
        return handle_connect(c, p);
    }
    if (!auth_guard_admit(c))
        return handle_connect_refuse(
            c, p, mqtt_reason_for_error(IMQTT_EAUTHRATE),
            "too many failed authentications from this address");
    uint32_t len = f->header_len + f->remaining;
    const uint8_t *start = f->body - f->header_len;
    pw_check *w = malloc(sizeof(*w) + len);
    if (!w)
        return IMQTT_ENOMEM;
    memcpy(w->frame, start, len);
    w->frame_len = len;
    w->req.data = w;
    w->c = c;
    w->db = db;
    w->user = (mqtt_str){w->frame + (user.ptr - start), user.len};
    w->password =
        (mqtt_bytes){w->frame + (p->password.ptr - start), p->password.len};
    if (uv_queue_work(c->w->loop, &w->req, pw_work, pw_done) < 0) {
        free(w);
        return IMQTT_ENOMEM;
    }
    conn_ref(c);
    c->state = CONN_AUTH;
    uv_read_stop((uv_stream_t *)&c->tcp);
    return 0;
}

int dispatch_packet(conn *c, const mqtt_frame *f)
{
    mqtt_packet p;
    uint8_t version = c->state == CONN_NEW ? 0 : c->version;
    int rc = mqtt_decode(f, version, &p);
    if (rc < 0) {
        if (f->type == MQTT_CONNECT)
            return handle_connect_error(c, f, rc);
        return rc;
    }
    if (c->state == CONN_NEW && f->type != MQTT_CONNECT)
        return IMQTT_EPROTOCOL;
    /* A CONNECT dispatched again after its password check was traced the
     * first time. */
    if (log_packets && !(f->type == MQTT_CONNECT && c->password_checked))
        conn_trace(c, false, &p);
    /* Every handler past CONNECT works on the session; a connection that
     * lost it (taken over) is closing and must not reach them. */
    if (f->type != MQTT_CONNECT && c->sess == NULL) {
        log_warn("%s: %s on a connection without a session", conn_peer(c),
                 mqtt_type_name(f->type));
        return IMQTT_EPROTOCOL;
    }

    switch (f->type) {
    case MQTT_CONNECT:
        if (c->state != CONN_NEW)
            return IMQTT_EPROTOCOL; /* a second CONNECT [MQTT-3.1.0-2] */
        if (c->lst->cfg->auth == LISTENER_AUTH_PASSWORD_FILE &&
            !c->password_checked)
            return check_password(c, f, &p.u.connect);
        return handle_connect(c, &p.u.connect);
    case MQTT_PUBLISH:
        return handle_publish(c, &p.u.publish);
    case MQTT_PUBACK:
        return handle_puback(c, &p.u.ack);
    case MQTT_PUBREC:
        return handle_pubrec(c, &p.u.ack);
    case MQTT_PUBREL:
        return handle_pubrel(c, &p.u.ack);
    case MQTT_PUBCOMP:
        return handle_pubcomp(c, &p.u.ack);
    case MQTT_SUBSCRIBE:
        return handle_subscribe(c, &p.u.subscribe);
    case MQTT_UNSUBSCRIBE:
        return handle_unsubscribe(c, &p.u.unsubscribe);
    case MQTT_PINGREQ:
        return handle_pingreq(c);
    case MQTT_DISCONNECT:
        return handle_disconnect(c, &p.u.disconnect);
    case MQTT_AUTH:
        return handle_auth(c, &p.u.auth);
    default:
        /* CONNACK, SUBACK, UNSUBACK, PINGRESP (BAD_INPUTS row 7). */
        return IMQTT_ESERVERONLY;
    }
}
