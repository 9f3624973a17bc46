/* Encoding all packet types. Each packet is sized first (plan), the size is
 * compared with the caller's capacity once, then written without further
 * checks. */
#include "codec_int.h"

#include <string.h>

/* How a packet will be written: the sizes that writing needs again. */
typedef struct plan {
    uint32_t rem;      /* remaining length */
    size_t props;      /* content size of the property block, if written */
    size_t will_props; /* CONNECT in v5 with a will */
    bool with_props;   /* a property block is written */
    bool with_reason;  /* v5 acks, DISCONNECT, AUTH: reason byte written */
} plan;

static size_t block_size(size_t content)
{
    return (size_t)wire_varint_size((uint32_t)content) + content;
}

static bool fits16(mqtt_bytes b)
{
    return b.len <= 0xFFFF;
}

/* Size the property block of a v5 packet into pl; returns its size. */
static int plan_props(const mqtt_props *props, size_t *content, size_t *out)
{
    int rc = mqtt__props_check(props);
    if (rc < 0)
        return rc;
    *content = mqtt__props_content_size(props);
    if (*content > MQTT_MAX_REMAINING)
        return IMQTT_EINVAL;
    *out = block_size(*content);
    return 0;
}

/* Whether a v5 property block would be empty, which allows short forms. */
static bool props_empty(const mqtt_props *p)
{
    return (p->present & ~((uint64_t)1 << MQTT_PROP_USER)) == 0 &&
           (p->user == NULL || p->user_count == 0) && p->user_from.len == 0 &&
           (p->sub_ids == NULL || p->sub_id_count == 0);
}

static int plan_connect(const mqtt_connect *c, uint8_t version, plan *pl,
                        size_t *n)
{
    bool v5 = version == MQTT_V5;
    if (c->will_qos > 2 || !fits16(c->client_id) ||
        (c->will && (!fits16(c->will_topic) || !fits16(c->will_payload))) ||
        (c->has_username && !fits16(c->username)) ||
        (c->has_password && !fits16(c->password)))
        return IMQTT_EINVAL;
    if (!v5 && c->has_password && !c->has_username)
        return IMQTT_EINVAL; /* 3.x cannot carry it [MQTT-3.1.2-22] */
    *n = 2 + (version == MQTT_V31 ? 6 : 4) + 1 + 1 + 2 + 2 + c->client_id.len;
    size_t sz;
    int rc;
    if (v5) {
        if ((rc = plan_props(&c->props, &pl->props, &sz)) < 0)
            return rc;
        pl->with_props = true;
        *n += sz;
    }
    if (c->will) {
        *n += 2 + (size_t)c->will_topic.len + 2 + c->will_payload.len;
        if (v5) {
            if ((rc = plan_props(&c->will_props, &pl->will_props, &sz)) < 0)
                return rc;
            *n += sz;
        }
    }
    if (c->has_username)
        *n += 2 + (size_t)c->username.len;
    if (c->has_password)
        *n += 2 + (size_t)c->password.len;
    return 0;
}

static int plan_publish(const mqtt_publish *p, uint8_t version, plan *pl,
                        size_t *n)
{
    if (p->qos > 2 || !fits16(p->topic))
        return IMQTT_EINVAL;
    *n = 2 + (size_t)p->topic.len + (p->qos ? 2 : 0) + p->payload.len;
    if (version == MQTT_V5) {
        size_t sz;
        int rc = plan_props(&p->props, &pl->props, &sz);
        if (rc < 0)
            return rc;
        pl->with_props = true;
        *n += sz;
    }
    return 0;
}

/* Acks, DISCONNECT and AUTH in v5: reason and properties are omitted from
 * the end when they carry nothing [MQTT-3.4.2.1, 3.14.2.1, 3.15.2.1]. AUTH
 * only has the empty short form, so a non-zero reason takes the full one. */
static int plan_reason(uint8_t type, uint8_t reason, const mqtt_props *props,
                       plan *pl, size_t *n)
{
    if (!props_empty(props)) {
        size_t sz;
        int rc = plan_props(props, &pl->props, &sz);
        if (rc < 0)
            return rc;
        pl->with_props = pl->with_reason = true;
        *n += 1 + sz;
    } else if (reason != 0 && type == MQTT_AUTH) {
        pl->with_props = pl->with_reason = true;
        pl->props = 0;
        *n += 2;
    } else if (reason != 0) {
        pl->with_reason = true;
        *n += 1;
    }
    return 0;
}

static int plan_packet(const mqtt_packet *p, uint8_t version, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    if (version != MQTT_V31 && version != MQTT_V311 && version != MQTT_V5)
        return IMQTT_EINVAL;
    bool v5 = version == MQTT_V5;
    size_t n = 0, sz;
    int rc = 0;
    switch (p->type) {
    case MQTT_CONNECT:
        rc = plan_connect(&p->u.connect, version, pl, &n);
        break;
    case MQTT_CONNACK:
        n = 2;
        if (v5 && (rc = plan_props(&p->u.connack.props, &pl->props, &sz)) == 0)
            n += sz, pl->with_props = true;
        break;
    case MQTT_PUBLISH:
        rc = plan_publish(&p->u.publish, version, pl, &n);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        n = 2;
        if (v5)
            rc = plan_reason(p->type, p->u.ack.reason, &p->u.ack.props, pl, &n);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        n = 2 + (size_t)p->u.subscribe.entries.len;
        if (v5 &&
            (rc = plan_props(&p->u.subscribe.props, &pl->props, &sz)) == 0)
            n += sz, pl->with_props = true;
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        n = 2;
        if (!v5 && p->type == MQTT_UNSUBACK)
            break; /* 3.1.1 UNSUBACK has no payload */
        n += p->u.suback.count;
        if (v5 && (rc = plan_props(&p->u.suback.props, &pl->props, &sz)) == 0)
            n += sz, pl->with_props = true;
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        if (!v5) {
            if (p->type == MQTT_AUTH)
                return IMQTT_EINVAL;
            break;
        }
        rc = plan_reason(p->type, p->u.disconnect.reason,
                         &p->u.disconnect.props, pl, &n);
        break;
    default:
        return IMQTT_EINVAL;
    }
    if (rc < 0)
        return rc;
    if (n > MQTT_MAX_REMAINING)
        return IMQTT_EINVAL;
    pl->rem = (uint32_t)n;
    return 0;
}

static size_t total_size(const plan *pl)
{
    return 1 + (size_t)wire_varint_size(pl->rem) + pl->rem;
}

static uint8_t first_byte(const mqtt_packet *p)
{
    uint8_t flags = 0;
    switch (p->type) {
    case MQTT_PUBLISH:
        flags =
            (uint8_t)((p->u.publish.dup ? 0x08 : 0) | (p->u.publish.qos << 1) |
                      (p->u.publish.retain ? 0x01 : 0));
        break;
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        flags = 0x02;
        break;
    default:
        break;
    }
    return (uint8_t)(p->type << 4 | flags);
}

static uint8_t *write_connect(uint8_t *w, const mqtt_connect *c,
                              uint8_t version, const plan *pl)
{
    static const mqtt_bytes mqtt = {(const uint8_t *)"MQTT", 4};
    static const mqtt_bytes mqisdp = {(const uint8_t *)"MQIsdp", 6};
    w = wire_put_lenbytes(w, version == MQTT_V31 ? mqisdp : mqtt);
    w = wire_put_u8(w, version);
    uint8_t flags =
        (uint8_t)((c->clean_start ? 0x02 : 0) |
                  (c->will ? 0x04 | c->will_qos << 3 : 0) |
                  (c->will && c->will_retain ? 0x20 : 0) |
                  (c->has_password ? 0x40 : 0) | (c->has_username ? 0x80 : 0));
    w = wire_put_u8(w, flags);
    w = wire_put_u16(w, c->keepalive);
    if (pl->with_props)
        w = mqtt__props_write(&c->props, pl->props, w);
    w = wire_put_lenbytes(w, c->client_id);
    if (c->will) {
        if (pl->with_props)
            w = mqtt__props_write(&c->will_props, pl->will_props, w);
        w = wire_put_lenbytes(w, c->will_topic);
        w = wire_put_lenbytes(w, c->will_payload);
    }
    if (c->has_username)
        w = wire_put_lenbytes(w, c->username);
    if (c->has_password)
        w = wire_put_lenbytes(w, c->password);
    return w;
}

/* Everything of a PUBLISH but the payload. */
static uint8_t *write_publish_header(uint8_t *w, const mqtt_publish *p,
                                     const plan *pl)
{
    w = wire_put_lenbytes(w, p->topic);
    if (p->qos)
        w = wire_put_u16(w, p->packet_id);
    if (pl->with_props)
        w = mqtt__props_write(&p->props, pl->props, w);
    return w;
}

static uint8_t *write_tail(uint8_t *w, uint8_t reason, const mqtt_props *props,
                           const plan *pl)
{
    if (pl->with_reason)
        w = wire_put_u8(w, reason);
    if (pl->with_props)
        w = mqtt__props_write(props, pl->props, w);
    return w;
}

static uint8_t *write_body(uint8_t *w, const mqtt_packet *p, uint8_t version,
                           const plan *pl)
{
    switch (p->type) {
    case MQTT_CONNECT:
        return write_connect(w, &p->u.connect, version, pl);
    case MQTT_CONNACK:
        w = wire_put_u8(w, p->u.connack.session_present ? 1 : 0);
        return write_tail(wire_put_u8(w, p->u.connack.reason), 0,
                          &p->u.connack.props, pl);
    case MQTT_PUBLISH:
        w = write_publish_header(w, &p->u.publish, pl);
        return wire_put_bytes(w, p->u.publish.payload.ptr,
                              p->u.publish.payload.len);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        w = wire_put_u16(w, p->u.ack.packet_id);
        return write_tail(w, p->u.ack.reason, &p->u.ack.props, pl);
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        w = wire_put_u16(w, p->u.subscribe.packet_id);
        w = write_tail(w, 0, &p->u.subscribe.props, pl);
        return wire_put_bytes(w, p->u.subscribe.entries.ptr,
                              p->u.subscribe.entries.len);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        w = wire_put_u16(w, p->u.suback.packet_id);
        if (version != MQTT_V5 && p->type == MQTT_UNSUBACK)
            return w;
        w = write_tail(w, 0, &p->u.suback.props, pl);
        return wire_put_bytes(w, p->u.suback.codes, p->u.suback.count);
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return write_tail(w, p->u.disconnect.reason, &p->u.disconnect.props,
                          pl);
    default: /* PINGREQ, PINGRESP */
        return w;
    }
}

int mqtt_encoded_size(const mqtt_packet *p, uint8_t version)
{
    plan pl;
    int rc = plan_packet(p, version, &pl);
    return rc < 0 ? rc : (int)total_size(&pl);
}

int mqtt_encode(const mqtt_packet *p, uint8_t version, uint8_t *buf, size_t cap)
{
    plan pl;
    int rc = plan_packet(p, version, &pl);
    if (rc < 0)
        return rc;
    if (total_size(&pl) > cap)
        return IMQTT_ENOSPACE;
    uint8_t *w = buf;
    *w++ = first_byte(p);
    w = wire_put_varint(w, pl.rem);
    w = write_body(w, p, version, &pl);
    return (int)(w - buf);
}

int mqtt_encode_publish_header(const mqtt_publish *p, uint8_t version,
                               uint8_t *buf, size_t cap)
{
    if (version != MQTT_V31 && version != MQTT_V311 && version != MQTT_V5)
        return IMQTT_EINVAL;
    plan pl;
    memset(&pl, 0, sizeof pl);
    size_t n;
    int rc = plan_publish(p, version, &pl, &n);
    if (rc < 0)
        return rc;
    if (n > MQTT_MAX_REMAINING)
        return IMQTT_EINVAL;
    pl.rem = (uint32_t)n;
    size_t header = total_size(&pl) - p->payload.len;
    if (header > cap)
        return IMQTT_ENOSPACE;
    uint8_t *w = buf;
    *w++ = (uint8_t)(MQTT_PUBLISH << 4 | (p->dup ? 0x08 : 0) | p->qos << 1 |
                     (p->retain ? 0x01 : 0));
    w = wire_put_varint(w, pl.rem);
    w = write_publish_header(w, p, &pl);
    return (int)(w - buf);
}

int mqtt_sub_encode_entries(const mqtt_sub_entry *e, uint32_t n,
                            uint8_t version, uint8_t *buf, size_t cap)
{
    size_t need = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!fits16(e[i].filter))
            return IMQTT_EINVAL;
        need += 3 + (size_t)e[i].filter.len;
    }
    if (need > cap)
        return IMQTT_ENOSPACE;
    uint8_t *w = buf;
    for (uint32_t i = 0; i < n; i++) {
        const mqtt_sub_opts *o = &e[i].opts;
        uint8_t b = o->qos & 3;
        if (version == MQTT_V5)
            b |= (uint8_t)((o->no_local ? 0x04 : 0) |
                           (o->retain_as_published ? 0x08 : 0) |
                           (o->retain_handling & 3) << 4);
        w = wire_put_lenbytes(w, e[i].filter);
        w = wire_put_u8(w, b);
    }
    return (int)(w - buf);
}

int mqtt_unsub_encode_entries(const mqtt_str *filters, uint32_t n, uint8_t *buf,
                              size_t cap)
{
    size_t need = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!fits16(filters[i]))
            return IMQTT_EINVAL;
        need += 2 + (size_t)filters[i].len;
    }
    if (need > cap)
        return IMQTT_ENOSPACE;
    uint8_t *w = buf;
    for (uint32_t i = 0; i < n; i++)
        w = wire_put_lenbytes(w, filters[i]);
    return (int)(w - buf);
}
