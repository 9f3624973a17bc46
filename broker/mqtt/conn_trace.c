/* `imqtt -v`: one DEBUG line per packet, in the words of `mosquitto -v`.
 * Only reached when log_packets is set. */
#include "conn_trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mqtt_types.h"
#include "session.h"

/* A line under construction; cut (never overrun) at the end of buf. */
typedef struct line {
    char buf[1024];
    size_t len;
} line;

__attribute__((format(printf, 2, 3))) static void add(line *l, const char *fmt,
                                                      ...)
{
    if (l->len >= sizeof(l->buf) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < sizeof(l->buf) - l->len
                      ? (size_t)n
                      : sizeof(l->buf) - 1 - l->len;
}

/* A quoted client string, cut at 200 bytes (log_msg makes control
 * characters harmless). */
static void add_str(line *l, mqtt_str s)
{
    int n = s.len > 200 ? 200 : (int)s.len;
    add(l, "'%.*s%s'", n, (const char *)s.ptr, s.len > 200 ? "..." : "");
}

static void add_publish(line *l, const mqtt_publish *p)
{
    add(l, " (d%d, q%u, r%d, m%u, ", p->dup, p->qos, p->retain,
        (unsigned)p->packet_id);
    add_str(l, p->topic);
    if (mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
        add(l, ", alias %u", (unsigned)p->props.topic_alias);
    add(l, ", ... (%u bytes))", (unsigned)p->payload.len);
}

static void add_connect(line *l, const mqtt_connect *p)
{
    add(l, " (p%u, c%d, k%u, ", p->version, p->clean_start,
        (unsigned)p->keepalive);
    add_str(l, p->client_id);
    if (p->has_username) {
        add(l, ", u");
        add_str(l, p->username);
    }
    if (p->will) {
        add(l, ", will q%u r%d ", p->will_qos, p->will_retain);
        add_str(l, p->will_topic);
    }
    add(l, ")");
}

static void add_subscribe(line *l, const mqtt_subscribe *p, uint8_t version,
                          bool unsub)
{
    add(l, " (m%u", (unsigned)p->packet_id);
    uint32_t pos = 0;
    mqtt_sub_entry e;
    mqtt_str f;
    for (;;) {
        if (unsub ? mqtt_unsub_next(p, &pos, &f) != 1
                  : mqtt_sub_next(p, version, &pos, &e) != 1)
            break;
        add(l, ", ");
        add_str(l, unsub ? f : e.filter);
        if (!unsub)
            add(l, " q%u", e.opts.qos);
    }
    add(l, ")");
}

static void add_codes(line *l, const mqtt_suback *p)
{
    add(l, " (m%u", (unsigned)p->packet_id);
    for (uint32_t i = 0; i < p->count; i++)
        add(l, ", rc%u", p->codes[i]);
    add(l, ")");
}

void conn_trace(const conn *c, bool sending, const mqtt_packet *p)
{
    line l = {.len = 0};
    add(&l, "%s %s %s %s", sending ? "Sending" : "Received",
        mqtt_type_name(p->type), sending ? "to" : "from",
        c->sess ? c->sess->client_id : conn_peer(c));
    switch (p->type) {
    case MQTT_CONNECT:
        add_connect(&l, &p->u.connect);
        break;
    case MQTT_CONNACK:
        add(&l, " (s%d, rc%u)", p->u.connack.session_present,
            p->u.connack.reason);
        break;
    case MQTT_PUBLISH:
        add_publish(&l, &p->u.publish);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        add(&l, " (m%u, rc%u)", (unsigned)p->u.ack.packet_id, p->u.ack.reason);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        add_subscribe(&l, &p->u.subscribe, c->version,
                      p->type == MQTT_UNSUBSCRIBE);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        add_codes(&l, &p->u.suback);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        add(&l, " (rc%u)", p->u.disconnect.reason);
        break;
    default:
        break;
    }
    log_debug("%s", l.buf);
}

void conn_trace_publish(const conn *c, const msg *m, uint8_t qos, uint16_t pid,
                        bool dup, bool retain)
{
    mqtt_packet p = {.type = MQTT_PUBLISH};
    p.u.publish = (mqtt_publish){.qos = qos,
                                 .dup = dup && qos > 0,
                                 .retain = retain,
                                 .packet_id = pid,
                                 .topic = msg_topic(m),
                                 .payload = msg_payload(m)};
    conn_trace(c, true, &p);
}
