/* PINGREQ, DISCONNECT, AUTH. */
#include "conn_log.h"
#include "errors.h"
#include "handlers.h"
#include "log.h"
#include "reason.h"
#include "session.h"

int handle_pingreq(conn *c)
{
    mqtt_packet p = {.type = MQTT_PINGRESP};
    return conn_send(c, &p);
}

int handle_disconnect(conn *c, const mqtt_disconnect *p)
{
    session *s = c->sess;
    if (c->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_SESSION_EXPIRY)) {
        /* A session that was to end with the connection cannot be made
         * persistent at DISCONNECT [MQTT-3.14.2-2]. */
        if (s->expiry == 0 && p->props.session_expiry != 0)
            return IMQTT_EPROTOCOL;
        uint32_t max = c->srv->cfg.max_session_expiry;
        s->expiry =
            p->props.session_expiry < max ? p->props.session_expiry : max;
    }
    c->disconnect_normal = true;
    c->will_on_close =
        c->version == MQTT_V5 && p->reason == MQTT_RC_DISCONNECT_WITH_WILL;
    conn_close(c);
    return 0;
}

int handle_auth(conn *c, const mqtt_auth *p)
{
    (void)p;
    /* No enhanced authentication method is configured, so no AUTH
     * exchange can be under way [MQTT-4.12.0-1]. */
    log_info("%s: AUTH without an authentication method", conn_who(c));
    conn_disconnect(c, MQTT_RC_BAD_AUTH_METHOD);
    return 0;
}
