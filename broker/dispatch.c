/* Decode one packet and hand it to its handler: the only place that knows
 * which packet types a client may send in which state. */
#include "errors.h"
#include "handlers.h"
#include "session.h"

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

    switch (f->type) {
    case MQTT_CONNECT:
        if (c->state != CONN_NEW)
            return IMQTT_EPROTOCOL; /* a second CONNECT [MQTT-3.1.0-2] */
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
