/* Decoding every packet but CONNECT/CONNACK (decode_connect.c), and the
 * dispatch by type. Every field is a view into the frame body. */
#include "codec_int.h"
#include "topic.h"
#include "utf8.h"

#include <string.h>

/* Reason codes each packet may carry, MQTT 5.0 section 2.4 and the
 * per-packet tables. A short linear scan: at most 30 entries. */
static const uint8_t rc_connack[] = {
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87,
                                    0x90, 0x91, 0x97, 0x99};
static const uint8_t rc_pubrel[] = {0x00, 0x92};
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rc_disconnect[] = {
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
    0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};
static const uint8_t rc_v3_connack[] = {0, 1, 2, 3, 4, 5};
static const uint8_t rc_v3_suback[] = {0x00, 0x01, 0x02, 0x80};

#define IN_LIST(l, rc) (memchr((l), (rc), sizeof(l)) != NULL)

bool mqtt__reason_valid(uint8_t type, uint8_t version, uint8_t rc)
{
    if (version != MQTT_V5) {
        if (type == MQTT_CONNACK)
            return IN_LIST(rc_v3_connack, rc);
        if (type == MQTT_SUBACK)
            return IN_LIST(rc_v3_suback, rc);
        return rc == 0;
    }
    switch (type) {
    case MQTT_CONNACK:
        return IN_LIST(rc_connack, rc);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
        return IN_LIST(rc_puback, rc);
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return IN_LIST(rc_pubrel, rc);
    case MQTT_SUBACK:
        return IN_LIST(rc_suback, rc);
    case MQTT_UNSUBACK:
        return IN_LIST(rc_unsuback, rc);
    case MQTT_DISCONNECT:
        return IN_LIST(rc_disconnect, rc);
    case MQTT_AUTH:
        return IN_LIST(rc_auth, rc);
    default:
        return rc == 0;
    }
}

static int read_props(wire_reader *r, int type, mqtt_props *out)
{
    int rc = mqtt_props_decode(wire_cur(r), wire_left(r), type, out);
    if (rc < 0)
        return rc;
    r->pos += (uint32_t)rc;
    return 0;
}

static int read_packet_id(wire_reader *r, uint16_t *out)
{
    int rc = wire_u16(r, out);
    if (rc < 0)
        return rc;
    return *out == 0 ? IMQTT_EPACKETID : 0; /* [MQTT-2.3.1-1] */
}

static int end(const wire_reader *r)
{
    return wire_left(r) ? IMQTT_ETRAILING : 0;
}

/* The hot path: one pass over the topic, one over the properties. */
static int decode_publish(uint8_t flags, wire_reader *r, uint8_t version,
                          mqtt_publish *p)
{
    p->dup = flags & 0x08;
    p->qos = (flags >> 1) & 3;
    p->retain = flags & 0x01;
    p->packet_id = 0;
    int rc = wire_lenbytes(r, &p->topic);
    if (rc < 0)
        return rc;
    if (p->qos > 0 && (rc = read_packet_id(r, &p->packet_id)) < 0)
        return rc;
    if (version == MQTT_V5) {
        if ((rc = read_props(r, MQTT_PUBLISH, &p->props)) < 0)
            return rc;
    } else {
        memset(&p->props, 0, sizeof p->props);
    }
    if (p->topic.len == 0) {
        /* Only a v5 PUBLISH naming its topic by alias may leave it empty
         * [MQTT-3.3.2-1, 3.3.2.3.4]. */
        if (!mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
            return IMQTT_ETOPIC;
    } else if ((rc = mqtt_topic_name_check(p->topic, NULL)) < 0) {
        return rc;
    }
    /* Everything after the header is the payload, possibly empty. */
    return wire_take(r, wire_left(r), &p->payload);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. v5 may stop after the packet id
 * (reason 0) or after the reason (no properties) [MQTT-3.4.2.1]. */
static int decode_ack(uint8_t type, wire_reader *r, uint8_t version,
                      mqtt_ack *a)
{
    memset(a, 0, sizeof *a);
    int rc = read_packet_id(r, &a->packet_id);
    if (rc < 0 || version != MQTT_V5)
        return rc < 0 ? rc : end(r);
    if (wire_left(r) == 0)
        return 0;
    if ((rc = wire_u8(r, &a->reason)) < 0)
        return rc;
    if (!mqtt__reason_valid(type, version, a->reason))
        return IMQTT_EREASON;
    if (wire_left(r) > 0 && (rc = read_props(r, type, &a->props)) < 0)
        return rc;
    return end(r);
}

/* Check one subscription options byte [MQTT-3.8.3-5 / 3.1.1 3.8.3-4]. */
static int check_sub_opts(uint8_t o, uint8_t version)
{
    if ((o & 3) == 3)
        return IMQTT_EQOS;
    if (version != MQTT_V5)
        return (o & 0xFC) ? IMQTT_ERESERVED : 0;
    if (o & 0xC0)
        return IMQTT_ERESERVED;
    /* Retain handling 3 is a protocol error in v5. We report it as
     * malformed: there is no dedicated code and EQOS would mislead. */
    if (((o >> 4) & 3) == 3)
        return IMQTT_EMALFORMED;
    return 0;
}

/* SUBSCRIBE (with_opts) and UNSUBSCRIBE share this layout. */
static int decode_sub(uint8_t type, wire_reader *r, uint8_t version,
                      bool with_opts, mqtt_subscribe *s)
{
    memset(s, 0, sizeof *s);
    int rc = read_packet_id(r, &s->packet_id);
    if (rc < 0)
        return rc;
    if (version == MQTT_V5 && (rc = read_props(r, type, &s->props)) < 0)
        return rc;
    uint32_t start = r->pos;
    while (wire_left(r) > 0) {
        mqtt_str filter;
        uint8_t opts;
        if ((rc = wire_lenbytes(r, &filter)) < 0)
            return rc;
        if (with_opts) {
            if ((rc = wire_u8(r, &opts)) < 0)
                return rc; /* filter without its options byte */
            if ((rc = check_sub_opts(opts, version)) < 0)
                return rc;
        }
        /* Only the string rules here: the filter syntax is the receiver's
         * to judge per filter (SUBACK 0x8F), not a reason to drop the
         * whole packet. */
        if ((rc = mqtt_utf8_check(filter.ptr, filter.len)) < 0)
            return rc;
        s->count++;
    }
    if (s->count == 0)
        return IMQTT_EEMPTY; /* [MQTT-3.8.3-3, 3.10.3-2] */
    s->entries.ptr = r->buf + start;
    s->entries.len = r->pos - start;
    return 0;
}

/* SUBACK and UNSUBACK: one reason code per filter, except the 3.1.1
 * UNSUBACK which has none. */
static int decode_suback(uint8_t type, wire_reader *r, uint8_t version,
                         mqtt_suback *s)
{
    memset(s, 0, sizeof *s);
    int rc = read_packet_id(r, &s->packet_id);
    if (rc < 0)
        return rc;
    if (version != MQTT_V5 && type == MQTT_UNSUBACK)
        return end(r);
    if (version == MQTT_V5 && (rc = read_props(r, type, &s->props)) < 0)
        return rc;
    s->count = wire_left(r);
    if (s->count == 0)
        return IMQTT_EMALFORMED;
    s->codes = wire_cur(r);
    for (uint32_t i = 0; i < s->count; i++)
        if (!mqtt__reason_valid(type, version, s->codes[i]))
            return IMQTT_EREASON;
    r->pos = r->len;
    return 0;
}

/* DISCONNECT and AUTH. v5 may omit everything (reason 0) or just the
 * properties [MQTT-3.14.2.1, 3.15.2.1]. */
static int decode_disconnect(uint8_t type, wire_reader *r, uint8_t version,
                             mqtt_disconnect *d)
{
    memset(d, 0, sizeof *d);
    if (version != MQTT_V5)
        return end(r);
    if (wire_left(r) == 0)
        return 0;
    int rc = wire_u8(r, &d->reason);
    if (rc < 0)
        return rc;
    if (!mqtt__reason_valid(type, version, d->reason))
        return IMQTT_EREASON;
    if (wire_left(r) > 0 && (rc = read_props(r, type, &d->props)) < 0)
        return rc;
    return end(r);
}

int mqtt_decode(const mqtt_frame *f, uint8_t version, mqtt_packet *out)
{
    if (f->type == 0 || f->type > MQTT_AUTH)
        return IMQTT_ETYPE;
    /* Frames built by hand bypass mqtt_frame_parse: check again, it is
     * one switch. */
    int rc = wire_check_flags(f->type, f->flags);
    if (rc < 0)
        return rc;
    if (f->type != MQTT_CONNECT && version != MQTT_V31 &&
        version != MQTT_V311 && version != MQTT_V5)
        return IMQTT_EINVAL;
    out->type = f->type;
    wire_reader r = wire_reader_make(f->body, f->remaining);

    switch (f->type) {
    case MQTT_CONNECT:
        return mqtt__decode_connect(&r, &out->u.connect);
    case MQTT_CONNACK:
        return mqtt__decode_connack(&r, version, &out->u.connack);
    case MQTT_PUBLISH:
        return decode_publish(f->flags, &r, version, &out->u.publish);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return decode_ack(f->type, &r, version, &out->u.ack);
    case MQTT_SUBSCRIBE:
        return decode_sub(f->type, &r, version, true, &out->u.subscribe);
    case MQTT_UNSUBSCRIBE:
        return decode_sub(f->type, &r, version, false, &out->u.unsubscribe);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return decode_suback(f->type, &r, version, &out->u.suback);
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        return end(&r);
    case MQTT_DISCONNECT:
        return decode_disconnect(f->type, &r, version, &out->u.disconnect);
    default: /* MQTT_AUTH */
        if (version != MQTT_V5)
            return IMQTT_ETYPE;
        return decode_disconnect(f->type, &r, version, &out->u.auth);
    }
}

int mqtt_sub_next(const mqtt_subscribe *s, uint8_t version, uint32_t *pos,
                  mqtt_sub_entry *out)
{
    if (*pos >= s->entries.len)
        return 0;
    wire_reader r = wire_reader_make(s->entries.ptr, s->entries.len);
    r.pos = *pos;
    uint8_t o;
    if (wire_lenbytes(&r, &out->filter) < 0 || wire_u8(&r, &o) < 0)
        return 0;
    out->opts.qos = o & 3;
    if (version == MQTT_V5) {
        out->opts.no_local = (o >> 2) & 1;
        out->opts.retain_as_published = (o >> 3) & 1;
        out->opts.retain_handling = (o >> 4) & 3;
    } else {
        out->opts.no_local = false;
        out->opts.retain_as_published = false;
        out->opts.retain_handling = 0;
    }
    *pos = r.pos;
    return 1;
}

int mqtt_unsub_next(const mqtt_unsubscribe *u, uint32_t *pos, mqtt_str *out)
{
    if (*pos >= u->entries.len)
        return 0;
    wire_reader r = wire_reader_make(u->entries.ptr, u->entries.len);
    r.pos = *pos;
    if (wire_lenbytes(&r, out) < 0)
        return 0;
    *pos = r.pos;
    return 1;
}
