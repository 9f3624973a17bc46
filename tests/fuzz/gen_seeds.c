/* Writes the seed corpus of fuzz_codec: one valid packet of every type at
 * every protocol level, plus a few multi-packet streams, each prefixed
 * with the selector byte fuzz_codec reads first.
 *
 *   gen_seeds DIR     (e.g. tests/fuzz/corpus/codec)
 *
 * Seeds come from the encoder so they follow the headers; the checked-in
 * files are what the fuzz test uses, so rerun this only when the wire
 * format of a packet changes. */
#include "errors.h"
#include "packet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXPKT 1024

struct out {
    const char *dir;
    uint8_t buf[8 * MAXPKT];
    size_t len;
    int files;
};

static void start(struct out *o, uint8_t selector)
{
    o->buf[0] = selector;
    o->len = 1;
}

static void add(struct out *o, const mqtt_packet *p, uint8_t version)
{
    int n = mqtt_encode(p, version, o->buf + o->len, sizeof o->buf - o->len);
    if (n < 0) {
        fprintf(stderr, "encode %s v%u: %s\n", mqtt_type_name(p->type), version,
                imqtt_strerror(n));
        exit(1);
    }
    o->len += (size_t)n;
}

static void save(struct out *o, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", o->dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(o->buf, 1, o->len, f) != o->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    o->files++;
}

static const mqtt_user_prop user_props[] = {
    {MQTT_STR_LIT("from"), MQTT_STR_LIT("alice@phone")},
    {MQTT_STR_LIT("k"), MQTT_STR_LIT("v")},
};
static const uint32_t publish_sub_ids[] = {1, 300};
static const uint8_t payload[64] = "hello, this is a sixty-four byte payload "
                                   "for the codec seeds...";

static mqtt_props with_users(void)
{
    mqtt_props p = {0};
    p.user = user_props;
    p.user_count = 2;
    return p;
}

static mqtt_packet connect_pkt(uint8_t v, bool will)
{
    mqtt_packet p = {.type = MQTT_CONNECT};
    mqtt_connect *c = &p.u.connect;
    c->version = v;
    c->clean_start = true;
    c->keepalive = 60;
    c->client_id = MQTT_STR_LIT("alice@phone");
    c->has_username = true;
    c->username = MQTT_STR_LIT("alice");
    c->has_password = true;
    c->password = MQTT_STR_LIT("secret");
    if (v == MQTT_V5) {
        c->props = with_users();
        c->props.session_expiry = 3600;
        mqtt_props_set(&c->props, MQTT_PROP_SESSION_EXPIRY);
        c->props.receive_maximum = 20;
        mqtt_props_set(&c->props, MQTT_PROP_RECEIVE_MAXIMUM);
        c->props.maximum_packet_size = 65536;
        mqtt_props_set(&c->props, MQTT_PROP_MAXIMUM_PACKET_SIZE);
    }
    if (will) {
        c->will = true;
        c->will_qos = 1;
        c->will_retain = true;
        c->will_topic = MQTT_STR_LIT("status/alice");
        c->will_payload = MQTT_STR_LIT("offline");
        if (v == MQTT_V5) {
            c->will_props.will_delay = 5;
            mqtt_props_set(&c->will_props, MQTT_PROP_WILL_DELAY);
            c->will_props.content_type = MQTT_STR_LIT("text/plain");
            mqtt_props_set(&c->will_props, MQTT_PROP_CONTENT_TYPE);
        }
    }
    return p;
}

static mqtt_packet publish_pkt(uint8_t v, uint8_t qos, bool alias)
{
    mqtt_packet p = {.type = MQTT_PUBLISH};
    mqtt_publish *m = &p.u.publish;
    m->qos = qos;
    m->retain = qos == 0;
    m->packet_id = qos ? 42 : 0;
    m->topic = MQTT_STR_LIT("p2p/talk/alice");
    m->payload = (mqtt_bytes){payload, sizeof payload};
    if (v == MQTT_V5) {
        m->props = with_users();
        m->props.payload_format = 1;
        mqtt_props_set(&m->props, MQTT_PROP_PAYLOAD_FORMAT);
        m->props.message_expiry = 86400;
        mqtt_props_set(&m->props, MQTT_PROP_MESSAGE_EXPIRY);
        m->props.response_topic = MQTT_STR_LIT("p2p/talk/bob");
        mqtt_props_set(&m->props, MQTT_PROP_RESPONSE_TOPIC);
        m->props.correlation_data = MQTT_STR_LIT("\x01\x02");
        mqtt_props_set(&m->props, MQTT_PROP_CORRELATION_DATA);
        m->props.sub_ids = publish_sub_ids;
        m->props.sub_id_count = 2;
        if (alias) {
            m->topic = (mqtt_str){NULL, 0};
            m->props.topic_alias = 3;
            mqtt_props_set(&m->props, MQTT_PROP_TOPIC_ALIAS);
        }
    }
    return p;
}

static mqtt_packet ack_pkt(uint8_t v, uint8_t type, bool full)
{
    mqtt_packet p = {.type = type};
    p.u.ack.packet_id = 42;
    if (v == MQTT_V5 && full) {
        p.u.ack.reason =
            type == MQTT_PUBREL || type == MQTT_PUBCOMP ? 0x92 : 0x10;
        p.u.ack.props.reason_string = MQTT_STR_LIT("why");
        mqtt_props_set(&p.u.ack.props, MQTT_PROP_REASON_STRING);
    }
    return p;
}

static mqtt_packet subscribe_pkt(uint8_t v, uint8_t *scratch, size_t cap)
{
    const mqtt_sub_entry e[] = {
        {MQTT_STR_LIT("sport/tennis/+"), {.qos = 1}},
        {MQTT_STR_LIT("$share/g/a/#"),
         {.qos = 2,
          .no_local = false,
          .retain_as_published = true,
          .retain_handling = 2}},
        {MQTT_STR_LIT("$SYS/#"), {.qos = 0, .no_local = true}},
        {MQTT_STR_LIT("/finance"), {.qos = 0}},
    };
    mqtt_packet p = {.type = MQTT_SUBSCRIBE};
    int n = mqtt_sub_encode_entries(e, 4, v, scratch, cap);
    if (n < 0)
        exit(1);
    p.u.subscribe.packet_id = 7;
    p.u.subscribe.entries = (mqtt_bytes){scratch, (uint32_t)n};
    p.u.subscribe.count = 4;
    if (v == MQTT_V5) {
        p.u.subscribe.props = with_users();
        p.u.subscribe.props.subscription_id = 12345;
        mqtt_props_set(&p.u.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID);
    }
    return p;
}

static mqtt_packet unsubscribe_pkt(uint8_t v, uint8_t *scratch, size_t cap)
{
    const mqtt_str f[] = {MQTT_STR_LIT("sport/tennis/+"),
                          MQTT_STR_LIT("$share/g/a/#")};
    mqtt_packet p = {.type = MQTT_UNSUBSCRIBE};
    int n = mqtt_unsub_encode_entries(f, 2, scratch, cap);
    if (n < 0)
        exit(1);
    p.u.unsubscribe.packet_id = 8;
    p.u.unsubscribe.entries = (mqtt_bytes){scratch, (uint32_t)n};
    p.u.unsubscribe.count = 2;
    if (v == MQTT_V5)
        p.u.unsubscribe.props = with_users();
    return p;
}

static void level_seeds(struct out *o, uint8_t v)
{
    static const uint8_t suback_v3[] = {0x00, 0x01, 0x02, 0x80};
    static const uint8_t suback_v5[] = {0x00, 0x01, 0x02, 0x87, 0x8F};
    static const uint8_t unsuback_v5[] = {0x00, 0x11};
    const uint8_t sel = (uint8_t)(v - 3); /* see fuzz_codec.c */
    uint8_t scratch[256];
    char name[64];
    mqtt_packet p;

#define ONE(pkt, fmt, ...)                                       \
    do {                                                         \
        start(o, sel);                                           \
        p = (pkt);                                               \
        add(o, &p, v);                                           \
        snprintf(name, sizeof name, "v%u-" fmt, v, __VA_ARGS__); \
        save(o, name);                                           \
    } while (0)

    ONE(connect_pkt(v, false), "%s", "connect");
    ONE(connect_pkt(v, true), "%s", "connect-will");
    p = (mqtt_packet){.type = MQTT_CONNACK};
    p.u.connack.session_present = true;
    if (v == MQTT_V5) {
        p.u.connack.props.assigned_client_id = MQTT_STR_LIT("auto-1");
        mqtt_props_set(&p.u.connack.props, MQTT_PROP_ASSIGNED_CLIENT_ID);
        p.u.connack.props.topic_alias_maximum = 10;
        mqtt_props_set(&p.u.connack.props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
        p.u.connack.props.maximum_qos = 1;
        mqtt_props_set(&p.u.connack.props, MQTT_PROP_MAXIMUM_QOS);
    }
    ONE(p, "%s", "connack");
    p = (mqtt_packet){.type = MQTT_CONNACK};
    p.u.connack.reason = v == MQTT_V5 ? 0x87 : 5;
    ONE(p, "%s", "connack-refused");
    for (uint8_t qos = 0; qos <= 2; qos++)
        ONE(publish_pkt(v, qos, false), "publish-qos%u", qos);
    if (v == MQTT_V5)
        ONE(publish_pkt(v, 1, true), "%s", "publish-alias");
    static const char *const acks[] = {"puback", "pubrec", "pubrel", "pubcomp"};
    for (uint8_t t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++) {
        ONE(ack_pkt(v, t, false), "%s", acks[t - MQTT_PUBACK]);
        if (v == MQTT_V5)
            ONE(ack_pkt(v, t, true), "%s-reason", acks[t - MQTT_PUBACK]);
    }
    ONE(subscribe_pkt(v, scratch, sizeof scratch), "%s", "subscribe");
    p = (mqtt_packet){.type = MQTT_SUBACK};
    p.u.suback.packet_id = 7;
    p.u.suback.codes = v == MQTT_V5 ? suback_v5 : suback_v3;
    p.u.suback.count = v == MQTT_V5 ? 5 : 4;
    ONE(p, "%s", "suback");
    ONE(unsubscribe_pkt(v, scratch, sizeof scratch), "%s", "unsubscribe");
    p = (mqtt_packet){.type = MQTT_UNSUBACK};
    p.u.unsuback.packet_id = 8;
    if (v == MQTT_V5) {
        p.u.unsuback.codes = unsuback_v5;
        p.u.unsuback.count = 2;
    }
    ONE(p, "%s", "unsuback");
    ONE((mqtt_packet){.type = MQTT_PINGREQ}, "%s", "pingreq");
    ONE((mqtt_packet){.type = MQTT_PINGRESP}, "%s", "pingresp");
    p = (mqtt_packet){.type = MQTT_DISCONNECT};
    ONE(p, "%s", "disconnect");
    if (v == MQTT_V5) {
        p.u.disconnect.reason = 0x04;
        p.u.disconnect.props.session_expiry = 0;
        mqtt_props_set(&p.u.disconnect.props, MQTT_PROP_SESSION_EXPIRY);
        ONE(p, "%s", "disconnect-will");
        p = (mqtt_packet){.type = MQTT_AUTH};
        p.u.auth.reason = 0x18;
        p.u.auth.props.auth_method = MQTT_STR_LIT("SCRAM-SHA-1");
        mqtt_props_set(&p.u.auth.props, MQTT_PROP_AUTH_METHOD);
        p.u.auth.props.auth_data = MQTT_STR_LIT("\x00\x01\x02");
        mqtt_props_set(&p.u.auth.props, MQTT_PROP_AUTH_DATA);
        ONE(p, "%s", "auth");
    }
#undef ONE

    /* A session as a broker reads it, once unlimited and once with a
     * maximum packet size of 130 bytes (selector bits 2..7 = 48). */
    for (int limited = 0; limited < 2; limited++) {
        start(o, (uint8_t)(sel | (limited ? 48 << 2 : 0)));
        p = connect_pkt(v, true);
        add(o, &p, v);
        p = subscribe_pkt(v, scratch, sizeof scratch);
        add(o, &p, v);
        p = publish_pkt(v, 1, false);
        add(o, &p, v);
        p = ack_pkt(v, MQTT_PUBACK, true);
        add(o, &p, v);
        p = (mqtt_packet){.type = MQTT_PINGREQ};
        add(o, &p, v);
        p = (mqtt_packet){.type = MQTT_DISCONNECT};
        add(o, &p, v);
        snprintf(name, sizeof name, "v%u-session%s", v,
                 limited ? "-limited" : "");
        save(o, name);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    static struct out o;
    o.dir = argv[1];
    for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++)
        level_seeds(&o, v);
    printf("%d seeds written to %s\n", o.files, o.dir);
    return 0;
}
