/* Encoding a PUBLISH for one connection: the per-connection topic
 * aliases (their state for both directions), the shared encoding of a 3.1.1 QoS 0 PUBLISH, and the header
 * written ahead of the (shared or copied) payload. The hot path of every
 * delivery; the rest of the connection is in conn.c. */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "conn_trace.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"

conn_aliases *conn_aliases_get(conn *c)
{
    if (!c->aliases)
        c->aliases = calloc(1, sizeof(*c->aliases));
    return c->aliases;
}

void conn_aliases_free(conn *c)
{
    conn_aliases *a = c->aliases;
    if (!a)
        return;
    if (a->in)
        for (uint32_t i = 0; i <= c->srv->cfg.topic_alias_maximum; i++)
            free(a->in[i]);
    free(a->in);
    free(a->in_len);
    if (a->out_topics)
        for (uint32_t i = 0; i <= c->client_alias_max; i++)
            free(a->out_topics[i]);
    free(a->out_topics);
    hmap_free(&a->out);
    free(a);
    c->aliases = NULL;
}

/* Server -> client topic alias [MQTT-3.3.2-*]: the first topics get an
 * alias each, up to what the client allows; later PUBLISHes to them carry
 * the alias and an empty topic. */
static uint16_t alias_for(conn *c, mqtt_str topic, bool *fresh)
{
    *fresh = false;
    if (c->client_alias_max == 0)
        return 0;
    conn_aliases *al = c->aliases;
    if (al) {
        void *v = hmap_get(&al->out, topic);
        if (v)
            return (uint16_t)(uintptr_t)v;
        if (al->out_next >= c->client_alias_max)
            return 0;
    } else if (!(al = conn_aliases_get(c))) {
        return 0;
    }
    if (!al->out_topics) {
        al->out_topics =
            calloc((size_t)c->client_alias_max + 1, sizeof(char *));
        if (!al->out_topics)
            return 0;
    }
    uint16_t a = ++al->out_next;
    char *copy = malloc(topic.len ? topic.len : 1);
    if (!copy) {
        al->out_next--;
        return 0;
    }
    memcpy(copy, topic.ptr, topic.len);
    if (hmap_put(&al->out, (mqtt_bytes){(uint8_t *)copy, topic.len},
                 (void *)(uintptr_t)a, NULL) < 0) {
        free(copy);
        al->out_next--;
        return 0;
    }
    al->out_topics[a] = copy;
    *fresh = true;
    return a;
}

/* A 3.1.1 QoS 0 PUBLISH is the same bytes for every subscriber of a
 * message (no packet id, no properties): a fanout encodes it once and
 * copies it. Keyed by the message's serial (unique per allocation, so a
 * new message at a freed one's address never matches) and the retain flag
 * as delivered. Per thread, as messages are. */
#define V3_PUB_CACHE_MAX 512

static _Thread_local struct {
    uint64_t serial; /* 0: empty */
    bool retain;
    uint32_t len;
    uint8_t bytes[V3_PUB_CACHE_MAX];
} v3_pub;

static bool v3_pub_cacheable(const conn *c, const msg *m, uint8_t qos)
{
    return qos == 0 && c->version != MQTT_V5 && c->client_max_packet == 0 &&
           m->payload_len <= OUTBUF_COPY_MAX;
}

int conn_send_publish(conn *c, msg *m, uint8_t qos, uint16_t pid, bool dup,
                      bool retain, const uint32_t *sub_ids, uint32_t nsub_ids)
{
    server *srv = c->srv;
    bool cacheable = v3_pub_cacheable(c, m, qos);
    if (cacheable && v3_pub.serial == m->serial && v3_pub.retain == retain) {
        uint8_t *out = outbuf_reserve(&c->out, v3_pub.len);
        if (!out) {
            conn_abort(c);
            return IMQTT_ENOMEM;
        }
        memcpy(out, v3_pub.bytes, v3_pub.len);
        outbuf_commit(&c->out, v3_pub.len);
        srv->stats.msgs_sent++;
        srv->metrics.sent_qos[qos]++;
        worker_want_flush(c->w, c);
        if (log_packets)
            conn_trace_publish(c, m, qos, pid, dup, retain);
        return 0;
    }
    mqtt_publish p = {.qos = qos,
                      .dup = dup && qos > 0,
                      .retain = retain,
                      .packet_id = pid,
                      .topic = msg_topic(m),
                      .payload = msg_payload(m)};
    if (c->version == MQTT_V5) {
        p.props = m->props;
        p.props.user_from =
            m->props.user_count ? m->props.raw : (mqtt_bytes){0};
        p.props.user_count = 0;
        p.props.user = NULL;
        p.props.sub_ids = sub_ids;
        p.props.sub_id_count = nsub_ids;
        if (m->expiry_at) {
            mqtt_props_set(&p.props, MQTT_PROP_MESSAGE_EXPIRY);
            p.props.message_expiry = msg_expiry_left(m, server_now(srv));
        }
    }
    bool fresh = false;
    uint16_t alias = c->version == MQTT_V5 ? alias_for(c, p.topic, &fresh) : 0;
    if (alias) {
        mqtt_props_set(&p.props, MQTT_PROP_TOPIC_ALIAS);
        p.props.topic_alias = alias;
        if (!fresh)
            p.topic = (mqtt_str){NULL, 0};
    }
    /* Fixed header (5) + topic length (2) + packet id (2) + properties
     * (their size + up to 4 bytes of length + 3 for the topic alias). */
    size_t cap = 16 + p.topic.len +
                 (m->payload_len <= OUTBUF_COPY_MAX ? m->payload_len : 0) +
                 (c->version == MQTT_V5 ? mqtt_props_size(&p.props) + 8 : 0);
    uint8_t *buf = outbuf_reserve(&c->out, cap);
    if (!buf) {
        conn_abort(c);
        return IMQTT_ENOMEM;
    }
    int n = mqtt_encode_publish_header(&p, c->version, buf, cap);
    if (n < 0)
        return n;
    if (c->client_max_packet &&
        (uint64_t)n + m->payload_len > c->client_max_packet) {
        /* Reserved bytes are simply not committed; an alias assigned for
         * this packet was never announced, so take it back. */
        if (fresh) {
            conn_aliases *al = c->aliases;
            hmap_remove(&al->out, msg_topic(m));
            free(al->out_topics[alias]);
            al->out_topics[alias] = NULL;
            al->out_next--;
        }
        return IMQTT_ETOOLARGE;
    }
    if (m->payload_len <= OUTBUF_COPY_MAX) {
        /* Small payloads ride in the header's segment (see outbuf.h). */
        memcpy(buf + n, msg_payload(m).ptr, m->payload_len);
        size_t len = (size_t)n + m->payload_len;
        if (cacheable && len <= V3_PUB_CACHE_MAX) {
            memcpy(v3_pub.bytes, buf, len);
            v3_pub.len = (uint32_t)len;
            v3_pub.retain = retain;
            v3_pub.serial = m->serial;
        }
        outbuf_commit(&c->out, len);
    } else {
        outbuf_commit(&c->out, (size_t)n);
        if (outbuf_add_ref(&c->out, m, msg_payload(m).ptr, m->payload_len) <
            0) {
            conn_abort(c);
            return IMQTT_ENOMEM;
        }
    }
    srv->stats.msgs_sent++;
    srv->metrics.sent_qos[qos]++;
    worker_want_flush(c->w, c);
    if (log_packets)
        conn_trace_publish(c, m, qos, pid, dup, retain);
    return 0;
}

int conn_send_suback_after_commit(conn *c, uint16_t pid, const uint8_t *codes,
                                  uint32_t count)
{
    uint8_t *copy = malloc(count ? count : 1);
    if (!copy)
        return IMQTT_ENOMEM;
    memcpy(copy, codes, count);
    int rc = conn_send_after_commit(c, MQTT_SUBACK, pid, 0);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    c->acks[c->nacks - 1].codes = copy;
    c->acks[c->nacks - 1].ncodes = count;
    return 0;
}
