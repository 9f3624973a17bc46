/* Encoding a PUBLISH for one connection: the per-connection topic
 * aliases (their state for both directions), the shared encoding of a 3.1.1 QoS
 * 0 PUBLISH, and the header written ahead of the (shared or copied) payload.
 * The hot path of every delivery; the rest of the connection is in conn.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "conn_trace.h"
#include "errors.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"

conn_extra *conn_extra_get(conn *c)
{
    if (!c->extra)
        c->extra = calloc(1, sizeof(*c->extra));
    return c->extra;
}

void conn_extra_free(conn *c)
{
    if (!c->extra)
        return;
    conn_aliases *a = &c->extra->aliases;
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
    free(c->extra);
    c->extra = NULL;
}

/* Server -> client topic alias [MQTT-3.3.2-*]: the first topics get an
 * alias each, up to what the client allows; later PUBLISHes to them carry
 * the alias and an empty topic. */
static uint16_t alias_for(conn *c, mqtt_str topic, bool *fresh)
{
    *fresh = false;
    if (c->client_alias_max == 0)
        return 0;
    conn_aliases *al = c->extra ? &c->extra->aliases : NULL;
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

/* The IM envelope for 3.1.1 devices (docs/im.md, Envelope): one JSON
 * header line with the broker's stamp, then the payload unchanged. NULL
 * when m carries no stamp (not written by an IM device) or no memory
 * (the message then goes out bare rather than not at all). */
static msg *envelope(const msg *m)
{
    mqtt_str from = {NULL, 0}, id = {NULL, 0}, ts = {NULL, 0};
    uint32_t pos = 0;
    mqtt_user_prop up;
    /* The broker put its stamp first: stop after it. */
    for (int i = 0;
         i < 3 && mqtt_props_next_user(m->props->raw, &pos, &up) == 1; i++) {
        if (up.key.len == 4 && memcmp(up.key.ptr, "from", 4) == 0)
            from = up.value;
        else if (up.key.len == 2 && memcmp(up.key.ptr, "id", 2) == 0)
            id = up.value;
        else if (up.key.len == 2 && memcmp(up.key.ptr, "ts", 2) == 0)
            ts = up.value;
    }
    if (!from.ptr || !ts.ptr)
        return NULL;
    /* The values are the broker's own: user@device of [A-Za-z0-9._-@]
     * and decimal numbers, nothing to escape. */
    char head[IM_CLIENT_ID_MAX + 96];
    int n = snprintf(head, sizeof(head), "{\"from\":\"%.*s\"", (int)from.len,
                     (const char *)from.ptr);
    if (id.ptr)
        n += snprintf(head + n, sizeof(head) - (size_t)n, ",\"id\":%.*s",
                      (int)id.len, (const char *)id.ptr);
    n += snprintf(head + n, sizeof(head) - (size_t)n, ",\"ts\":%.*s}\n",
                  (int)ts.len, (const char *)ts.ptr);
    if (n <= 0 || (size_t)n >= sizeof(head))
        return NULL;
    size_t len = (size_t)n + m->payload_len;
    uint8_t *buf = malloc(len);
    if (!buf)
        return NULL;
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, msg_payload(m).ptr, m->payload_len);
    msg *e = msg_new(msg_topic(m), NULL, (mqtt_bytes){buf, (uint32_t)len},
                     m->qos, m->retain, m->expiry_at, m->id);
    free(buf);
    return e;
}

static int send_publish(conn *c, msg *m, uint8_t qos, uint16_t pid, bool dup,
                        bool retain, const uint32_t *sub_ids,
                        uint32_t nsub_ids);

int conn_send_publish(conn *c, msg *m, uint8_t qos, uint16_t pid, bool dup,
                      bool retain, const uint32_t *sub_ids, uint32_t nsub_ids)
{
    if (c->im_envelope && m->props->user_count) {
        msg *e = envelope(m);
        if (e) {
            int rc =
                send_publish(c, e, qos, pid, dup, retain, sub_ids, nsub_ids);
            msg_unref(e); /* an output buffer keeps its own reference */
            return rc;
        }
    }
    return send_publish(c, m, qos, pid, dup, retain, sub_ids, nsub_ids);
}

static int send_publish(conn *c, msg *m, uint8_t qos, uint16_t pid, bool dup,
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
        p.props = *m->props;
        p.props.user_from =
            m->props->user_count ? m->props->raw : (mqtt_bytes){0};
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
            conn_aliases *al = &c->extra->aliases;
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
    c->acks->a[c->acks->n - 1].codes = copy;
    c->acks->a[c->acks->n - 1].ncodes = count;
    return 0;
}
