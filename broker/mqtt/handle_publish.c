/* PUBLISH from a client: topic alias, receive maximum, QoS 2 duplicate
 * detection, ACL, then the message is stored once and routed; the
 * acknowledgement waits for the store commit. */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "cluster_hooks.h"
#include "conn_log.h"
#include "errors.h"
#include "handlers.h"
#include "log.h"
#include "reason.h"
#include "retain_limits.h"
#include "route.h"
#include "session.h"
#include "topic.h"

/* Client -> server topic aliases are per connection [MQTT-3.3.2-7]. */
static int resolve_alias(conn *c, const mqtt_publish *p, mqtt_str *topic)
{
    uint16_t max = c->srv->cfg.topic_alias_maximum;
    uint16_t a = p->props.topic_alias;
    if (a == 0 || a > max)
        return IMQTT_EALIAS; /* [MQTT-3.3.2-8], [MQTT-3.3.2-9] */
    conn_aliases *al = conn_aliases_get(c);
    if (!al)
        return IMQTT_ENOMEM;
    if (!al->in) {
        al->in = calloc((size_t)max + 1, sizeof(char *));
        al->in_len = calloc((size_t)max + 1, sizeof(uint32_t));
        if (!al->in || !al->in_len) {
            free(al->in); /* both or neither: conn_free relies on in */
            free(al->in_len);
            al->in = NULL;
            al->in_len = NULL;
            return IMQTT_ENOMEM;
        }
    }
    if (p->topic.len == 0) {
        if (!al->in[a])
            return IMQTT_EPROTOCOL; /* alias never set on this connection */
        *topic = (mqtt_str){(uint8_t *)al->in[a], al->in_len[a]};
        return 0;
    }
    char *copy = malloc(p->topic.len);
    if (!copy)
        return IMQTT_ENOMEM;
    memcpy(copy, p->topic.ptr, p->topic.len);
    free(al->in[a]);
    al->in[a] = copy;
    al->in_len[a] = p->topic.len;
    *topic = p->topic;
    return 0;
}

static int refuse(conn *c, const mqtt_publish *p, uint8_t reason)
{
    if (reason == MQTT_RC_NOT_AUTHORIZED)
        metrics_drop(c->srv, METRIC_DROP_NOT_AUTHORIZED);
    if (p->qos == 0)
        return 0;
    /* 3.1.1 has no way to say no: acknowledge and drop, as Mosquitto does,
     * so the client does not resend forever. */
    uint8_t type = p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC;
    if (c->version != MQTT_V5 && p->qos == 2)
        session_qos2_add(c->sess, p->packet_id);
    mqtt_packet ack = {.type = type};
    ack.u.ack.packet_id = p->packet_id;
    ack.u.ack.reason = c->version == MQTT_V5 ? reason : 0;
    return conn_send(c, &ack);
}

/* A QoS 1/2 message that cannot be kept now (the store refusing writes,
 * the cluster's stream out of reach): refused before anyone sees it, never
 * acknowledged. 3.1.1 has no refusal: `err` closes the connection. */
static int refuse_unkept(conn *c, const mqtt_publish *p, int drop_metric,
                         int err)
{
    metrics_drop(c->srv, drop_metric);
    if (c->version != MQTT_V5)
        return err;
    mqtt_packet ack = {.type = p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC};
    ack.u.ack.packet_id = p->packet_id;
    ack.u.ack.reason = MQTT_RC_QUOTA_EXCEEDED;
    return conn_send(c, &ack);
}

int handle_publish(conn *c, const mqtt_publish *p)
{
    server *srv = c->srv;
    const imqtt_config *cfg = &srv->cfg;
    session *s = c->sess;
    mqtt_str topic = p->topic;
    srv->metrics.received_qos[p->qos]++; /* every PUBLISH packet, refused too */

    /* Subscription identifiers travel only from server to client
     * [MQTT-3.3.4-6]. */
    if (p->props.sub_id_count)
        return IMQTT_EPROTOCOL;
    if (c->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS)) {
        int rc = resolve_alias(c, p, &topic);
        if (rc < 0)
            return rc;
    }
    /* The decoder checked the name (UTF-8, no wildcards), an aliased one
     * when its alias was set: only the configured limits are left. */
    mqtt_topic_limits lim = {cfg->max_topic_length, cfg->max_topic_levels};
    if (mqtt_topic_name_within(topic, &lim) < 0)
        return IMQTT_ETOPIC;
    if (p->retain && !cfg->retain_available)
        return IMQTT_ERETAINNS; /* [MQTT-3.3.1-11] */

    if (p->qos == 2 && session_qos2_has(s, p->packet_id)) {
        /* Already received and not yet released: acknowledge again, do not
         * deliver again (exactly once, [MQTT-4.3.3-9]). */
        mqtt_packet ack = {.type = MQTT_PUBREC};
        ack.u.ack.packet_id = p->packet_id;
        return conn_send(c, &ack);
    }
    /* Only v5 clients are told our Receive Maximum, so only they can be
     * held to it [MQTT-3.3.4-7]; a 3.1.1 client's unreleased QoS 2 ids are
     * bounded by the 16-bit id space. */
    if (p->qos > 0 && c->version == MQTT_V5 &&
        c->inflight_in >= cfg->max_inflight_messages)
        return IMQTT_ERECVMAX;

    /* The store cannot take it (full or failing); QoS 0 still flows. */
    if (p->qos > 0 && store_refusing(srv->store))
        return refuse_unkept(c, p, METRIC_DROP_STORE_FULL, IMQTT_ESTOREFULL);

    if (s->im && srv->policy->is_request(s, topic)) {
        /* Answered by the broker, never routed (docs/im.md, History,
         * Receipts); a reason code >= 0x80 is a refusal. */
        mqtt_publish q = *p;
        q.topic = topic; /* an alias resolved */
        int rc = srv->policy->answer(c, &q);
        if (rc >= 0x80)
            return refuse(c, p, (uint8_t)rc);
        if (rc < 0 || p->qos == 0)
            return rc;
        if (p->qos == 1) {
            mqtt_packet ack = {.type = MQTT_PUBACK};
            ack.u.ack.packet_id = p->packet_id;
            return conn_send(c, &ack);
        }
        if ((rc = session_qos2_add(s, p->packet_id)) < 0)
            return rc;
        c->inflight_in++;
        return conn_send_after_commit(c, MQTT_PUBREC, p->packet_id, 0);
    }

    if (!srv->policy->authorize(s, ACL_PUBLISH, topic)) {
        log_info("%s: publish to %.*s denied", conn_who(c), (int)topic.len,
                 (const char *)topic.ptr);
        return refuse(c, p, MQTT_RC_NOT_AUTHORIZED);
    }

    bool retain = p->retain;
    if (retain && !retain_admit(srv, s, topic, p->payload.len)) {
        /* Past a retained limit (retain_limits.h): MQTT 5 is told and the
         * message goes nowhere; 3.1.1 cannot be told, so it is delivered
         * as an ordinary message. */
        if (c->version == MQTT_V5) {
            if (p->qos == 0)
                return 0;
            mqtt_packet ack = {.type = p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC};
            ack.u.ack.packet_id = p->packet_id;
            ack.u.ack.reason = MQTT_RC_QUOTA_EXCEEDED;
            return conn_send(c, &ack);
        }
        retain = false;
    }

    /* Cluster mode: a QoS 1/2 message is acknowledged only once the
     * cluster's stream has it, so one that cannot reach the stream now is
     * refused before any session sees it (docs/cluster.md). */
    const cluster_hooks *ch = p->qos > 0 ? srv->cluster_hooks : NULL;
    uint64_t dlo = 0;
    if (ch) {
        if (!ch->durable_ready(ch->arg))
            return refuse_unkept(c, p, METRIC_DROP_CLUSTER, IMQTT_ECLUSTER);
        dlo = ch->durable_mark(ch->arg);
    }

    uint64_t expiry_at = 0;
    if (c->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_MESSAGE_EXPIRY))
        expiry_at = server_now(srv) + (uint64_t)p->props.message_expiry * 1000;
    /* IM senders are stamped ("from", "user@device"), 3.1.1 ones too, so
     * MQTT 5 receivers can trust who wrote it. */
    /* The stamp's buffers are only touched for IM senders: zeroing them
     * for every PUBLISH cost 5 % of the broker's instructions. */
    const mqtt_props *props = c->version == MQTT_V5 ? &p->props : NULL;
    msg *m;
    bool logged = false;
    if (s->im) {
        m = srv->policy->message_new(s, topic, props, p->payload, p->qos,
                                     retain, expiry_at, &logged);
    } else {
        m = msg_new(topic, props, p->payload, p->qos, retain, expiry_at,
                    ++srv->next_msg_id);
    }
    if (!m)
        return IMQTT_ENOMEM;
    route_message(srv, m, s);
    /* Whether routing recorded m in the open store batch (a persistent
     * session or the retained store took it): only then has the PUBACK
     * anything to wait for. */
    bool recorded = store_durable(srv->store) &&
                    (logged || m->store_gen == store_batch_gen(srv->store));
    msg_unref(m);
    /* Its publications to the stream; none ($SYS, a subject too long):
     * nothing to wait for */
    uint64_t dhi = ch ? ch->durable_mark(ch->arg) : 0;
    if (dhi == dlo)
        dhi = 0;

    if (p->qos == 1) {
        if (!recorded && !dhi && conn_nacks(c) == 0) {
            /* Nothing of it must survive a crash (no persistent session
             * and no retained copy): acknowledge now, without the round
             * trip through the store thread. Only when no earlier ack of
             * this connection is waiting, so PUBACKs keep the order of
             * their PUBLISHes [MQTT-4.6.0-2]. */
            mqtt_packet ack = {.type = MQTT_PUBACK};
            ack.u.ack.packet_id = p->packet_id;
            return conn_send(c, &ack);
        }
        c->inflight_in++;
        return conn_send_after_durable(c, MQTT_PUBACK, p->packet_id, 0, dlo,
                                       dhi);
    }
    if (p->qos == 2) {
        int rc = session_qos2_add(s, p->packet_id);
        if (rc < 0)
            return rc;
        c->inflight_in++;
        return conn_send_after_durable(c, MQTT_PUBREC, p->packet_id, 0, dlo,
                                       dhi);
    }
    return 0;
}
