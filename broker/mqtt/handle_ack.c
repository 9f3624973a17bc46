/* PUBACK, PUBREC, PUBREL, PUBCOMP from a client. */
#include "handlers.h"
#include "reason.h"
#include "session.h"

/* The message a PUBACK (qos 1) or PUBREC (qos 2) acknowledges, with a
 * reference for the policy's on_ack, when the policy wants to hear of
 * it; NULL for anything else (unknown id, a repeated PUBREC). */
static msg *acked(conn *c, uint16_t pid, uint8_t qos)
{
    if (!c->srv->policy->on_ack || !c->sess->im)
        return NULL;
    msg *m = session_inflight_msg(c->sess, pid, qos);
    return m ? msg_ref(m) : NULL;
}

static int told(conn *c, msg *m, int rc)
{
    if (m) {
        if (rc == 0 && c->sess)
            c->srv->policy->on_ack(c->sess, m);
        msg_unref(m);
    }
    return rc;
}

int handle_puback(conn *c, const mqtt_ack *p)
{
    /* A refusing PUBACK (v5, 0x80 or more) is no delivery either. */
    msg *m = p->reason < 0x80 ? acked(c, p->packet_id, 1) : NULL;
    return told(c, m, session_on_puback(c->sess, p->packet_id));
}

int handle_pubrec(conn *c, const mqtt_ack *p)
{
    /* A refusing PUBREC is no delivery. */
    msg *m = p->reason < 0x80 ? acked(c, p->packet_id, 2) : NULL;
    return told(c, m, session_on_pubrec(c->sess, p->packet_id, p->reason));
}

int handle_pubcomp(conn *c, const mqtt_ack *p)
{
    return session_on_pubcomp(c->sess, p->packet_id);
}

int handle_pubrel(conn *c, const mqtt_ack *p)
{
    mqtt_packet ack = {.type = MQTT_PUBCOMP};
    ack.u.ack.packet_id = p->packet_id;
    if (session_qos2_remove(c->sess, p->packet_id)) {
        if (c->inflight_in > 0)
            c->inflight_in--;
        /* The client may reuse the id once it has PUBCOMP: the id's
         * removal must be durable first, or after a kill -9 a new message
         * with that id would be taken for a duplicate and lost. */
        if (c->sess->sid)
            return conn_send_after_commit(c, MQTT_PUBCOMP, p->packet_id, 0);
    } else {
        /* Released before, or never received: still complete the flow so
         * the client can free the id [MQTT-4.3.3-11]. */
        ack.u.ack.reason = MQTT_RC_PACKET_ID_NOT_FOUND;
    }
    return conn_send(c, &ack);
}
