/* Byte-exact vectors: the non-normative examples of the MQTT 3.1.1 and 5.0
 * specifications, and small packets as common clients send them. Each is
 * checked in both directions (encode gives the bytes, decode gives the
 * fields back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_test.h"
#include "reason.h"

static uint8_t out[1024];

/* Encode p and compare the whole packet with want[0..n). */
static void expect_encoding(const mqtt_packet *p, uint8_t version,
                            const uint8_t *want, size_t n)
{
    int rc = mqtt_encode(p, version, out, sizeof out);
    assert_int_equal(rc, (int)n);
    assert_memory_equal(out, want, n);
    assert_int_equal(mqtt_encoded_size(p, version), (int)n);
}

/* 3.1.1 table 2.4 / 5.0 table 1-1: Size of Variable Byte Integer. */
static void test_varint_table(void **state)
{
    (void)state;
    static const struct {
        uint32_t v;
        uint8_t b[4];
        int n;
    } t[] = {
        {0, {0x00}, 1},
        {127, {0x7F}, 1},
        {128, {0x80, 0x01}, 2},
        {16383, {0xFF, 0x7F}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {2097151, {0xFF, 0xFF, 0x7F}, 3},
        {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
        {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t b[4];
        uint32_t v;
        assert_int_equal(mqtt_varint_encode(t[i].v, b), t[i].n);
        assert_memory_equal(b, t[i].b, (size_t)t[i].n);
        assert_int_equal(mqtt_varint_decode(t[i].b, 4, &v), t[i].n);
        assert_int_equal(v, t[i].v);
    }
}

/* 3.1.1 section 1.5.3 figure 1.1 / 5.0 section 1.5.4: the string 'A'
 * U+2A6D4 is 0x00 0x05 0x41 0xF0 0xAA 0x9B 0x94. Carried here as a topic
 * name, where the codec writes and checks it. */
static void test_utf8_string_example(void **state)
{
    (void)state;
    const uint8_t s[] = {0x41, 0xF0, 0xAA, 0x9B, 0x94};
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_PUBLISH;
    p.u.publish.topic = (mqtt_str){s, sizeof s};
    const uint8_t want[] = {0x30, 0x07, 0x00, 0x05, 0x41,
                            0xF0, 0xAA, 0x9B, 0x94};
    expect_encoding(&p, MQTT_V311, want, sizeof want);
    mqtt_packet d;
    assert_int_equal(DECODE_ARR(want, MQTT_V311, &d), 0);
    assert_int_equal(d.u.publish.topic.len, 5);
    assert_memory_equal(d.u.publish.topic.ptr, s, 5);
}

/* 3.1.1 section 3.1.2.10 figure 3.6: CONNECT variable header example.
 * Flags 0xCE: user name, password, will QoS 1, will, clean session. */
static void test_connect_311_example(void **state)
{
    (void)state;
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_CONNECT;
    mqtt_connect *c = &p.u.connect;
    c->keepalive = 10;
    c->clean_start = true;
    c->will = true;
    c->will_qos = 1;
    c->has_username = true;
    c->has_password = true;
    c->client_id = MQTT_STR_LIT("c");
    c->will_topic = MQTT_STR_LIT("w");
    c->will_payload = MQTT_STR_LIT("m");
    c->username = MQTT_STR_LIT("u");
    c->password = MQTT_STR_LIT("p");
    const uint8_t want[] = {
        0x10, 0x19,                               /* fixed header */
        0x00, 0x04, 'M',  'Q',  'T',  'T',  0x04, /* name, level */
        0xCE, 0x00, 0x0A,                         /* flags, keep alive */
        0x00, 0x01, 'c',  0x00, 0x01, 'w',  0x00, 0x01,
        'm',  0x00, 0x01, 'u',  0x00, 0x01, 'p',
    };
    expect_encoding(&p, MQTT_V311, want, sizeof want);
    mqtt_packet d;
    assert_int_equal(DECODE_ARR(want, MQTT_V311, &d), 0);
    assert_int_equal(d.u.connect.version, 4);
    assert_int_equal(d.u.connect.keepalive, 10);
    assert_true(d.u.connect.will && d.u.connect.clean_start);
    assert_int_equal(d.u.connect.will_qos, 1);
    assert_false(d.u.connect.will_retain);
    assert_str_is(d.u.connect.client_id, "c");
    assert_str_is(d.u.connect.will_topic, "w");
    assert_str_is(d.u.connect.username, "u");
}

/* 5.0 section 3.1.2.11 figure 3-6 ("Variable Header example"): as above at
 * level 5 with Properties Length 5 and Session Expiry Interval (17) = 10. */
static void test_connect_v5_example(void **state)
{
    (void)state;
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_CONNECT;
    mqtt_connect *c = &p.u.connect;
    c->keepalive = 10;
    c->clean_start = true;
    c->will = true;
    c->will_qos = 1;
    c->has_username = true;
    c->has_password = true;
    c->props.session_expiry = 10;
    mqtt_props_set(&c->props, MQTT_PROP_SESSION_EXPIRY);
    c->client_id = MQTT_STR_LIT("c");
    c->will_topic = MQTT_STR_LIT("w");
    c->will_payload = MQTT_STR_LIT("m");
    c->username = MQTT_STR_LIT("u");
    c->password = MQTT_STR_LIT("p");
    /* The will properties length (0) sits between client id and topic. */
    const uint8_t full[] = {
        0x10, 0x20, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0xCE, 0x00, 0x0A,
        0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x01, 'c',  0x00, 0x00, 0x01,
        'w',  0x00, 0x01, 'm',  0x00, 0x01, 'u',  0x00, 0x01, 'p',
    };
    expect_encoding(&p, MQTT_V5, full, sizeof full);
    mqtt_packet d;
    assert_int_equal(DECODE_ARR(full, MQTT_V5, &d), 0);
    assert_int_equal(d.u.connect.version, 5);
    assert_true(mqtt_props_has(&d.u.connect.props, MQTT_PROP_SESSION_EXPIRY));
    assert_int_equal(d.u.connect.props.session_expiry, 10);
    assert_int_equal(d.u.connect.will_props.present, 0);
}

/* MQTT 3.1 (level 3): protocol name "MQIsdp". */
static void test_connect_31(void **state)
{
    (void)state;
    const uint8_t want[] = {0x10, 0x11, 0x00, 0x06, 'M',  'Q',  'I',
                            's',  'd',  'p',  0x03, 0x02, 0x00, 0x3C,
                            0x00, 0x03, 'a',  'b',  'c'};
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_CONNECT;
    p.u.connect.clean_start = true;
    p.u.connect.keepalive = 60;
    p.u.connect.client_id = MQTT_STR_LIT("abc");
    expect_encoding(&p, MQTT_V31, want, sizeof want);
    mqtt_packet d;
    assert_int_equal(DECODE_ARR(want, MQTT_V311, &d), 0);
    assert_int_equal(d.u.connect.version, 3);
}

/* 3.1.1 section 3.3.2.3 figure 3.11 / 5.0 figure 3-9: PUBLISH variable
 * header with topic "a/b" and packet identifier 10 (v5 adds an empty
 * property block). */
static void test_publish_example(void **state)
{
    (void)state;
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_PUBLISH;
    p.u.publish.qos = 1;
    p.u.publish.packet_id = 10;
    p.u.publish.topic = MQTT_STR_LIT("a/b");
    p.u.publish.payload = MQTT_STR_LIT("hi");
    const uint8_t v4[] = {0x32, 0x09, 0x00, 0x03, 'a', '/',
                          'b',  0x00, 0x0A, 'h',  'i'};
    const uint8_t v5[] = {0x32, 0x0A, 0x00, 0x03, 'a', '/',
                          'b',  0x00, 0x0A, 0x00, 'h', 'i'};
    expect_encoding(&p, MQTT_V311, v4, sizeof v4);
    expect_encoding(&p, MQTT_V5, v5, sizeof v5);
    mqtt_packet d;
    assert_int_equal(DECODE_ARR(v5, MQTT_V5, &d), 0);
    assert_int_equal(d.u.publish.packet_id, 10);
    assert_str_is(d.u.publish.topic, "a/b");
    assert_str_is(d.u.publish.payload, "hi");
    assert_int_equal(DECODE_ARR(v4, MQTT_V311, &d), 0);
    assert_str_is(d.u.publish.payload, "hi");
    /* The same bytes read as v5 take 'h' as the property length. */
    assert_int_not_equal(DECODE_ARR(v4, MQTT_V5, &d), 0);
}

/* 3.1.1 section 3.8.3 figure 3.22: SUBSCRIBE payload "a/b" QoS 1, "c/d"
 * QoS 2, with packet identifier 10 (figure 3.21). */
static void test_subscribe_example(void **state)
{
    (void)state;
    const mqtt_sub_entry e[] = {
        {MQTT_STR_LIT("a/b"), {1, false, false, 0}},
        {MQTT_STR_LIT("c/d"), {2, false, false, 0}},
    };
    uint8_t entries[32];
    int n = mqtt_sub_encode_entries(e, 2, MQTT_V311, entries, sizeof entries);
    const uint8_t payload[] = {0x00, 0x03, 'a', '/', 'b', 0x01,
                               0x00, 0x03, 'c', '/', 'd', 0x02};
    assert_int_equal(n, sizeof payload);
    assert_memory_equal(entries, payload, sizeof payload);

    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_SUBSCRIBE;
    p.u.subscribe.packet_id = 10;
    p.u.subscribe.entries = (mqtt_bytes){entries, (uint32_t)n};
    p.u.subscribe.count = 2;
    const uint8_t want[] = {0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/',
                            'b',  0x01, 0x00, 0x03, 'c',  '/',  'd', 0x02};
    expect_encoding(&p, MQTT_V311, want, sizeof want);
    mqtt_packet d;
    assert_int_equal(DECODE_ARR(want, MQTT_V311, &d), 0);
    assert_int_equal(d.u.subscribe.count, 2);

    /* v5 options byte: QoS 1, No Local, Retain As Published, handling 2. */
    const mqtt_sub_entry e5 = {MQTT_STR_LIT("a/b"), {1, true, true, 2}};
    n = mqtt_sub_encode_entries(&e5, 1, MQTT_V5, entries, sizeof entries);
    assert_int_equal(n, 6);
    assert_int_equal(entries[5], 0x2D);
}

/* 3.1.1 figure 3.26: SUBACK payload 0x00, 0x02, 0x80. */
static void test_suback_example(void **state)
{
    (void)state;
    const uint8_t codes[] = {0x00, 0x02, 0x80};
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_SUBACK;
    p.u.suback.packet_id = 10;
    p.u.suback.codes = codes;
    p.u.suback.count = 3;
    const uint8_t want[] = {0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80};
    expect_encoding(&p, MQTT_V311, want, sizeof want);
    const uint8_t want5[] = {0x90, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x02, 0x80};
    expect_encoding(&p, MQTT_V5, want5, sizeof want5);
}

/* 3.1.1 figure 3.30: UNSUBSCRIBE payload "a/b", "c/d". */
static void test_unsubscribe_example(void **state)
{
    (void)state;
    const mqtt_str f[] = {MQTT_STR_LIT("a/b"), MQTT_STR_LIT("c/d")};
    uint8_t entries[32];
    int n = mqtt_unsub_encode_entries(f, 2, entries, sizeof entries);
    const uint8_t payload[] = {0x00, 0x03, 'a', '/', 'b',
                               0x00, 0x03, 'c', '/', 'd'};
    assert_int_equal(n, sizeof payload);
    assert_memory_equal(entries, payload, sizeof payload);
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_UNSUBSCRIBE;
    p.u.unsubscribe.packet_id = 10;
    p.u.unsubscribe.entries = (mqtt_bytes){entries, (uint32_t)n};
    p.u.unsubscribe.count = 2;
    const uint8_t want[] = {0xA2, 0x0C, 0x00, 0x0A, 0x00, 0x03, 'a',
                            '/',  'b',  0x00, 0x03, 'c',  '/',  'd'};
    expect_encoding(&p, MQTT_V311, want, sizeof want);
}

/* The small fixed packets every client sends. */
static void test_small_packets(void **state)
{
    (void)state;
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_PINGREQ;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\xC0\x00", 2);
    p.type = MQTT_PINGRESP;
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\xD0\x00", 2);
    p.type = MQTT_DISCONNECT;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\xE0\x00", 2);
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\xE0\x00", 2);
    p.u.disconnect.reason = 0x04;
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\xE0\x01\x04", 3);
    /* 3.x drops the reason. */
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\xE0\x00", 2);

    memset(&p, 0, sizeof p);
    p.type = MQTT_CONNACK;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\x20\x02\x00\x00", 4);
    p.u.connack.session_present = true;
    p.u.connack.reason = MQTT_V3_NOT_AUTHORIZED;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\x20\x02\x01\x05", 4);
    p.u.connack.reason = 0x87;
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\x20\x03\x01\x87\x00", 5);

    memset(&p, 0, sizeof p);
    p.type = MQTT_PUBACK;
    p.u.ack.packet_id = 10;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\x40\x02\x00\x0A", 4);
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\x40\x02\x00\x0A", 4);
    p.u.ack.reason = 0x10;
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\x40\x03\x00\x0A\x10", 5);
    p.type = MQTT_PUBREL;
    p.u.ack.reason = 0;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\x62\x02\x00\x0A", 4);
    p.type = MQTT_PUBREC;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\x50\x02\x00\x0A", 4);
    p.type = MQTT_PUBCOMP;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\x70\x02\x00\x0A", 4);

    memset(&p, 0, sizeof p);
    p.type = MQTT_UNSUBACK;
    p.u.unsuback.packet_id = 10;
    expect_encoding(&p, MQTT_V311, (const uint8_t *)"\xB0\x02\x00\x0A", 4);

    memset(&p, 0, sizeof p);
    p.type = MQTT_AUTH;
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\xF0\x00", 2);
    p.u.auth.reason = 0x18;
    expect_encoding(&p, MQTT_V5, (const uint8_t *)"\xF0\x02\x18\x00", 4);
}

/* Decoding the v5 short forms sent by other implementations. */
static void test_v5_short_forms_decode(void **state)
{
    (void)state;
    mqtt_packet d;
    const uint8_t puback2[] = {0x40, 0x02, 0x00, 0x0A};
    assert_int_equal(DECODE_ARR(puback2, MQTT_V5, &d), 0);
    assert_int_equal(d.u.ack.reason, 0);
    const uint8_t puback3[] = {0x40, 0x03, 0x00, 0x0A, 0x10};
    assert_int_equal(DECODE_ARR(puback3, MQTT_V5, &d), 0);
    assert_int_equal(d.u.ack.reason, 0x10);
    const uint8_t puback4[] = {0x40, 0x04, 0x00, 0x0A, 0x10, 0x00};
    assert_int_equal(DECODE_ARR(puback4, MQTT_V5, &d), 0);
    const uint8_t disc0[] = {0xE0, 0x00};
    assert_int_equal(DECODE_ARR(disc0, MQTT_V5, &d), 0);
    assert_int_equal(d.u.disconnect.reason, 0);
    const uint8_t disc1[] = {0xE0, 0x01, 0x8E};
    assert_int_equal(DECODE_ARR(disc1, MQTT_V5, &d), 0);
    assert_int_equal(d.u.disconnect.reason, 0x8E);
    const uint8_t auth0[] = {0xF0, 0x00};
    assert_int_equal(DECODE_ARR(auth0, MQTT_V5, &d), 0);
    const uint8_t auth1[] = {0xF0, 0x01, 0x19};
    assert_int_equal(DECODE_ARR(auth1, MQTT_V5, &d), 0);
    assert_int_equal(d.u.auth.reason, 0x19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_table),
        cmocka_unit_test(test_utf8_string_example),
        cmocka_unit_test(test_connect_311_example),
        cmocka_unit_test(test_connect_v5_example),
        cmocka_unit_test(test_connect_31),
        cmocka_unit_test(test_publish_example),
        cmocka_unit_test(test_subscribe_example),
        cmocka_unit_test(test_suback_example),
        cmocka_unit_test(test_unsubscribe_example),
        cmocka_unit_test(test_small_packets),
        cmocka_unit_test(test_v5_short_forms_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
