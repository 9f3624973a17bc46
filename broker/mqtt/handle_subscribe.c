/* SUBSCRIBE and UNSUBSCRIBE: one result per filter, then the retained
 * messages the new subscriptions ask for. */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "conn_log.h"
#include "errors.h"
#include "handlers.h"
#include "log.h"
#include "reason.h"
#include "retained_send.h"
#include "session.h"
#include "topic.h"

#define STACK_FILTERS 32

/* The result for one filter: the granted QoS or a failure reason. */
static uint8_t subscribe_one(conn *c, const mqtt_sub_entry *e, uint32_t sub_id,
                             bool *send_retained_now)
{
    server *srv = c->srv;
    session *s = c->sess;
    *send_retained_now = false;
    mqtt_topic_limits lim = {srv->cfg.max_topic_length,
                             srv->cfg.max_topic_levels};
    if (mqtt_topic_filter_check(e->filter, &lim) < 0)
        return MQTT_RC_TOPIC_FILTER_INVALID;
    mqtt_str group, inner = e->filter;
    bool shared = mqtt_share_parse(e->filter, &group, &inner) == 1;
    if (!c->srv->policy->authorize(s, ACL_SUBSCRIBE, inner)) {
        log_info("%s: subscription to %.*s denied", conn_who(c),
                 (int)e->filter.len, (const char *)e->filter.ptr);
        metrics_count(srv, METRIC_SUB_REFUSED_ACL);
        return srv->cfg.deny_suback_reason;
    }
    uint32_t max = srv->cfg.max_subscriptions;
    if (max && s->nsubs >= max && !session_has_sub(s, e->filter)) {
        /* Logged once per SUBSCRIBE (handle_subscribe): a packet can hold
         * 100,000 filters. */
        metrics_count(srv, METRIC_SUB_REFUSED_LIMIT);
        return MQTT_RC_QUOTA_EXCEEDED; /* 3.1.1: 0x80 (below) */
    }
    mqtt_sub_opts o = e->opts;
    if (o.qos > 2)
        o.qos = 2;
    if (!shared)
        c->srv->policy->adjust_sub_opts(s, e->filter, &o);
    bool existed = false;
    if (session_subscribe(s, e->filter, &o, sub_id, &existed) < 0)
        return MQTT_RC_UNSPECIFIED_ERROR;
    /* Retain handling [MQTT-3.3.1-9..11]; never for shared subscriptions
     * [MQTT-3.8.4-?: retained messages are not sent to a share]. */
    *send_retained_now = !shared && (o.retain_handling == 0 ||
                                     (o.retain_handling == 1 && !existed));
    return o.qos;
}

int handle_subscribe(conn *c, const mqtt_subscribe *p)
{
    uint8_t stack_codes[STACK_FILTERS];
    bool stack_retain[STACK_FILTERS];
    uint8_t *codes = stack_codes;
    bool *retain = stack_retain;
    if (p->count > STACK_FILTERS) {
        codes = malloc(p->count);
        retain = malloc(p->count * sizeof(bool));
        if (!codes || !retain) {
            free(codes);
            free(retain);
            return IMQTT_ENOMEM;
        }
    }
    uint32_t sub_id = 0;
    if (c->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_SUBSCRIPTION_ID))
        sub_id = p->props.subscription_id;

    int rc = 0;
    uint32_t pos = 0, i = 0, over = 0;
    mqtt_sub_entry e;
    while (mqtt_sub_next(p, c->version, &pos, &e) == 1 && i < p->count) {
        mqtt_str group, inner;
        if (c->version == MQTT_V5 && e.opts.no_local &&
            mqtt_share_parse(e.filter, &group, &inner) == 1) {
            rc = IMQTT_EPROTOCOL; /* [MQTT-3.8.3-4] */
            goto out;
        }
        codes[i] = subscribe_one(c, &e, sub_id, &retain[i]);
        if (codes[i] == MQTT_RC_QUOTA_EXCEEDED)
            over++;
        if (c->version != MQTT_V5)
            codes[i] = mqtt_reason_to_v3_suback(codes[i]);
        i++;
    }

    if (over)
        log_info("client %s: %u filters refused: %u subscriptions held "
                 "(max_subscriptions)",
                 c->sess->client_id, over, c->sess->nsubs);
    mqtt_packet ack = {.type = MQTT_SUBACK};
    ack.u.suback.packet_id = p->packet_id;
    ack.u.suback.codes = codes;
    ack.u.suback.count = i;
    /* A persistent session's SUBACK waits for the commit that records its
     * subscriptions; matching PUBLISHes may go first [MQTT-3.8.4]. */
    rc = c->sess->sid ? conn_send_suback_after_commit(c, p->packet_id, codes, i)
                      : conn_send(c, &ack);

    /* After the SUBACK, the retained messages of each new subscription. */
    pos = 0;
    for (uint32_t k = 0; rc == 0 && k < i; k++) {
        if (mqtt_sub_next(p, c->version, &pos, &e) != 1)
            break;
        if (!retain[k])
            continue;
        retained_send(c, e.filter, codes[k], sub_id);
    }
out:
    if (codes != stack_codes) {
        free(codes);
        free(retain);
    }
    return rc;
}

int handle_unsubscribe(conn *c, const mqtt_unsubscribe *p)
{
    uint8_t stack_codes[STACK_FILTERS];
    uint8_t *codes = stack_codes;
    if (p->count > STACK_FILTERS && !(codes = malloc(p->count)))
        return IMQTT_ENOMEM;
    uint32_t pos = 0, i = 0;
    mqtt_str f;
    while (mqtt_unsub_next(p, &pos, &f) == 1 && i < p->count) {
        if (mqtt_topic_filter_check(f, NULL) < 0) {
            codes[i++] = MQTT_RC_TOPIC_FILTER_INVALID;
            continue;
        }
        int r = session_unsubscribe(c->sess, f);
        codes[i++] = r > 0 ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
    }
    mqtt_packet ack = {.type = MQTT_UNSUBACK};
    ack.u.unsuback.packet_id = p->packet_id;
    ack.u.unsuback.codes = codes;
    ack.u.unsuback.count = c->version == MQTT_V5 ? i : 0;
    int rc = conn_send(c, &ack);
    if (codes != stack_codes)
        free(codes);
    return rc;
}
