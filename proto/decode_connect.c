/* Decoding CONNECT and CONNACK [MQTT-3.1, 3.2]. */
#include "codec_int.h"
#include "topic.h"
#include "utf8.h"

#include <string.h>

static int read_str(wire_reader *r, mqtt_str *out)
{
    int rc = wire_lenbytes(r, out);
    if (rc < 0)
        return rc;
    return mqtt_utf8_check(out->ptr, out->len);
}

static int read_props(wire_reader *r, int type, mqtt_props *out)
{
    int rc = mqtt_props_decode(wire_cur(r), wire_left(r), type, out);
    if (rc < 0)
        return rc;
    r->pos += (uint32_t)rc;
    return 0;
}

/* Protocol name and level must come as a known pair [MQTT-3.1.2-1, -2]. */
static int read_protocol(wire_reader *r, uint8_t *version)
{
    mqtt_bytes name;
    int rc = wire_lenbytes(r, &name);
    if (rc < 0)
        return rc;
    uint8_t level;
    bool mqtt = name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0;
    bool mqisdp = name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0;
    if (!mqtt && !mqisdp)
        return IMQTT_EPROTONAME;
    if ((rc = wire_u8(r, &level)) < 0)
        return rc;
    if (mqtt ? (level != MQTT_V311 && level != MQTT_V5) : level != MQTT_V31)
        return IMQTT_EVERSION;
    *version = level;
    return 0;
}

int mqtt__decode_connect(wire_reader *r, mqtt_connect *c)
{
    memset(c, 0, sizeof *c);
    int rc = read_protocol(r, &c->version);
    if (rc < 0)
        return rc;
    bool v5 = c->version == MQTT_V5;

    uint8_t flags;
    if ((rc = wire_u8(r, &flags)) < 0)
        return rc;
    if (flags & 0x01)
        return IMQTT_ERESERVED; /* [MQTT-3.1.2-3] */
    c->clean_start = flags & 0x02;
    c->will = flags & 0x04;
    c->will_qos = (flags >> 3) & 3;
    c->will_retain = flags & 0x20;
    c->has_password = flags & 0x40;
    c->has_username = flags & 0x80;
    /* [MQTT-3.1.2-11, -13, -14, -15] */
    if (!c->will && (c->will_qos || c->will_retain))
        return IMQTT_EWILL;
    if (c->will_qos == 3)
        return IMQTT_EWILL;
    /* 3.x only: a password needs a user name [MQTT-3.1.2-22]; v5 lifted
     * that so a password can carry a token alone. */
    if (!v5 && c->has_password && !c->has_username)
        return IMQTT_EMALFORMED;

    if ((rc = wire_u16(r, &c->keepalive)) < 0)
        return rc;
    if (v5 && (rc = read_props(r, MQTT_CONNECT, &c->props)) < 0)
        return rc;
    if ((rc = read_str(r, &c->client_id)) < 0)
        return rc;

    if (c->will) {
        if (v5 && (rc = read_props(r, MQTT_PROPS_IN_WILL, &c->will_props)) < 0)
            return rc;
        if ((rc = wire_lenbytes(r, &c->will_topic)) < 0)
            return rc;
        if ((rc = mqtt_topic_name_check(c->will_topic, NULL)) < 0)
            return rc;
        if ((rc = wire_lenbytes(r, &c->will_payload)) < 0)
            return rc;
    }
    if (c->has_username && (rc = read_str(r, &c->username)) < 0)
        return rc;
    if (c->has_password && (rc = wire_lenbytes(r, &c->password)) < 0)
        return rc;
    return wire_left(r) ? IMQTT_ETRAILING : 0;
}

int mqtt__decode_connack(wire_reader *r, uint8_t version, mqtt_connack *c)
{
    memset(c, 0, sizeof *c);
    uint8_t flags;
    int rc;
    if ((rc = wire_u8(r, &flags)) < 0 || (rc = wire_u8(r, &c->reason)) < 0)
        return rc;
    /* Bits 7-1 of the acknowledge flags are reserved [MQTT-3.2.2-1]. */
    if (flags & 0xFE)
        return IMQTT_ERESERVED;
    c->session_present = flags & 1;
    if (!mqtt__reason_valid(MQTT_CONNACK, version, c->reason))
        return IMQTT_EREASON;
    if (version == MQTT_V5) {
        rc = mqtt_props_decode(wire_cur(r), wire_left(r), MQTT_CONNACK,
                               &c->props);
        if (rc < 0)
            return rc;
        r->pos += (uint32_t)rc;
    }
    return wire_left(r) ? IMQTT_ETRAILING : 0;
}
