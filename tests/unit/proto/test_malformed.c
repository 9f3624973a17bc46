/* Malformed input: each case asserts the exact IMQTT_E* code. Packets are
 * built in exactly-sized heap buffers so that ASan catches any read past
 * the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_test.h"

#include <stdlib.h>
#include <time.h>

/* Frame first byte + varint(n) + body[0..n) in a fresh exact buffer, then
 * frame and decode it at `v`. Returns the first error or the decode
 * result. */
static int dec(uint8_t v, uint8_t first, const uint8_t *body, size_t n)
{
    uint8_t *buf = malloc(n + 5);
    assert_non_null(buf);
    buf[0] = first;
    int h = 1 + mqtt_varint_encode((uint32_t)n, buf + 1);
    if (n)
        memcpy(buf + h, body, n);
    mqtt_frame f;
    int rc = mqtt_frame_parse(buf, (size_t)h + n, 0, &f);
    if (rc > 0) {
        assert_int_equal(rc, h + (int)n);
        mqtt_packet p;
        rc = mqtt_decode(&f, v, &p);
    }
    free(buf);
    return rc;
}

#define B(...) \
    ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

/* ---- CONNECT ----------------------------------------------------------- */

#define MQTT4 0x00, 0x04, 'M', 'Q', 'T', 'T'

static void test_connect_protocol(void **state)
{
    (void)state;
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x02, 0, 60, 0, 1, 'c')), 0);
    assert_int_equal(
        dec(4, 0x10, B(0, 4, 'M', 'Q', 'T', 't', 4, 2, 0, 60, 0, 1, 'c')),
        IMQTT_EPROTONAME);
    assert_int_equal(
        dec(4, 0x10, B(0, 4, 'H', 'T', 'T', 'P', 4, 2, 0, 60, 0, 1, 'c')),
        IMQTT_EPROTONAME);
    assert_int_equal(dec(4, 0x10, B(0, 0, 4, 2, 0, 60, 0, 1, 'c')),
                     IMQTT_EPROTONAME);
    assert_int_equal(dec(4, 0x10, B(MQTT4, 6, 0x02, 0, 60, 0, 1, 'c')),
                     IMQTT_EVERSION);
    assert_int_equal(dec(4, 0x10, B(MQTT4, 3, 0x02, 0, 60, 0, 1, 'c')),
                     IMQTT_EVERSION);
    assert_int_equal(dec(4, 0x10, B(MQTT4, 0, 0x02, 0, 60, 0, 1, 'c')),
                     IMQTT_EVERSION);
    assert_int_equal(
        dec(4, 0x10,
            B(0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 2, 0, 60, 0, 1, 'c')),
        IMQTT_EVERSION);
    assert_int_equal(
        dec(4, 0x10,
            B(0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 60, 0, 1, 'c')),
        0);
    /* Truncated protocol name. */
    assert_int_equal(dec(4, 0x10, B(0, 4, 'M', 'Q')), IMQTT_EMALFORMED);
}

static void test_connect_flags(void **state)
{
    (void)state;
    /* Reserved bit 0 [MQTT-3.1.2-3]. */
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x03, 0, 60, 0, 1, 'c')),
                     IMQTT_ERESERVED);
    assert_int_equal(dec(5, 0x10, B(MQTT4, 5, 0x01, 0, 60, 0, 0, 1, 'c')),
                     IMQTT_ERESERVED);
    /* Will QoS / retain without the will flag; will QoS 3. */
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x0A, 0, 60, 0, 1, 'c')),
                     IMQTT_EWILL);
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x12, 0, 60, 0, 1, 'c')),
                     IMQTT_EWILL);
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x22, 0, 60, 0, 1, 'c')),
                     IMQTT_EWILL);
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x1E, 0, 60, 0, 1, 'c', 0, 1, 't', 0, 0)),
        IMQTT_EWILL);
    /* 3.1.1 password without user name; v5 allows it. */
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x42, 0, 60, 0, 1, 'c', 0, 1, 'p')),
        IMQTT_EMALFORMED);
    assert_int_equal(
        dec(5, 0x10, B(MQTT4, 5, 0x42, 0, 60, 0, 0, 1, 'c', 0, 1, 'p')), 0);
    /* A flag announcing a field that is not there. */
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x82, 0, 60, 0, 1, 'c')),
                     IMQTT_EMALFORMED);
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x06, 0, 60, 0, 1, 'c', 0, 1, 't')),
        IMQTT_EMALFORMED);
    /* Bytes after the last field. */
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x02, 0, 60, 0, 1, 'c', 0)),
                     IMQTT_ETRAILING);
}

static void test_connect_strings(void **state)
{
    (void)state;
    /* Client id: ill-formed, U+0000, surrogate. */
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x02, 0, 60, 0, 1, 0xFF)),
                     IMQTT_EUTF8);
    assert_int_equal(dec(4, 0x10, B(MQTT4, 4, 0x02, 0, 60, 0, 1, 0x00)),
                     IMQTT_EUTF8);
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x02, 0, 60, 0, 3, 0xED, 0xA0, 0x80)),
        IMQTT_EUTF8);
    /* User name. */
    assert_int_equal(
        dec(4, 0x10,
            B(MQTT4, 4, 0x82, 0, 60, 0, 1, 'c', 0, 3, 0xED, 0xA0, 0x80)),
        IMQTT_EUTF8);
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x82, 0, 60, 0, 1, 'c', 0, 2, 'a', 0x00)),
        IMQTT_EUTF8);
    /* The password is binary: anything goes. */
    assert_int_equal(
        dec(4, 0x10,
            B(MQTT4, 4, 0xC2, 0, 60, 0, 1, 'c', 0, 1, 'u', 0, 2, 0x00, 0xFF)),
        0);
    /* Will topic: wildcards, empty, bad UTF-8. */
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x06, 0, 60, 0, 1, 'c', 0, 1, '#', 0, 0)),
        IMQTT_ETOPIC);
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x06, 0, 60, 0, 1, 'c', 0, 0, 0, 0)),
        IMQTT_ETOPIC);
    assert_int_equal(
        dec(4, 0x10, B(MQTT4, 4, 0x06, 0, 60, 0, 1, 'c', 0, 1, 0xC0, 0, 0)),
        IMQTT_EUTF8);
}

static void test_connect_v5_props(void **state)
{
    (void)state;
    /* Topic alias is not a CONNECT property. */
    assert_int_equal(
        dec(5, 0x10, B(MQTT4, 5, 0x02, 0, 60, 3, 0x23, 0, 1, 0, 1, 'c')),
        IMQTT_EPROPPKT);
    /* Will delay belongs to the will properties, not CONNECT's. */
    assert_int_equal(
        dec(5, 0x10, B(MQTT4, 5, 0x02, 0, 60, 5, 0x18, 0, 0, 0, 1, 0, 1, 'c')),
        IMQTT_EPROPPKT);
    /* ... and is fine there; session expiry is not. */
    assert_int_equal(dec(5, 0x10,
                         B(MQTT4, 5, 0x06, 0, 60, 0, 0, 1, 'c', 5, 0x18, 0, 0,
                           0, 1, 0, 1, 't', 0, 0)),
                     0);
    assert_int_equal(dec(5, 0x10,
                         B(MQTT4, 5, 0x06, 0, 60, 0, 0, 1, 'c', 5, 0x11, 0, 0,
                           0, 1, 0, 1, 't', 0, 0)),
                     IMQTT_EPROPPKT);
    /* Duplicate session expiry; receive maximum 0. */
    assert_int_equal(dec(5, 0x10,
                         B(MQTT4, 5, 0x02, 0, 60, 10, 0x11, 0, 0, 0, 1, 0x11, 0,
                           0, 0, 2, 0, 1, 'c')),
                     IMQTT_EPROPDUP);
    assert_int_equal(
        dec(5, 0x10, B(MQTT4, 5, 0x02, 0, 60, 3, 0x21, 0, 0, 0, 1, 'c')),
        IMQTT_EPROPVAL);
    /* Property block longer than the packet. */
    assert_int_equal(dec(5, 0x10, B(MQTT4, 5, 0x02, 0, 60, 9, 0x11, 0)),
                     IMQTT_EMALFORMED);
}

/* ---- PUBLISH ----------------------------------------------------------- */

static void test_publish(void **state)
{
    (void)state;
    /* Zero-length topic: 3.1.1 always, v5 without a topic alias. */
    assert_int_equal(dec(4, 0x30, B(0, 0, 'x')), IMQTT_ETOPIC);
    assert_int_equal(dec(3, 0x30, B(0, 0)), IMQTT_ETOPIC);
    assert_int_equal(dec(5, 0x30, B(0, 0, 0, 'x')), IMQTT_ETOPIC);
    assert_int_equal(dec(5, 0x30, B(0, 0, 2, 0x01, 0, 'x')), IMQTT_ETOPIC);
    assert_int_equal(dec(5, 0x30, B(0, 0, 3, 0x23, 0, 1, 'x')), 0);
    /* QoS > 0 with the body ending after the topic. */
    assert_int_equal(dec(4, 0x32, B(0, 1, 'a')), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x34, B(0, 1, 'a', 0)), IMQTT_EMALFORMED);
    assert_int_equal(dec(5, 0x32, B(0, 1, 'a')), IMQTT_EMALFORMED);
    /* Packet id 0. */
    assert_int_equal(dec(4, 0x32, B(0, 1, 'a', 0, 0)), IMQTT_EPACKETID);
    assert_int_equal(dec(5, 0x34, B(0, 1, 'a', 0, 0, 0)), IMQTT_EPACKETID);
    /* QoS 0 has no packet id: those bytes are payload. */
    assert_int_equal(dec(4, 0x30, B(0, 1, 'a', 0, 0)), 0);
    /* Topic longer than the packet. */
    assert_int_equal(dec(4, 0x30, B(0, 9, 'a')), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x30, B(0)), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x30, NULL, 0), IMQTT_EMALFORMED);
    /* Wildcards and bad UTF-8 in the topic name. */
    assert_int_equal(dec(4, 0x30, B(0, 3, 'a', '/', '+')), IMQTT_ETOPIC);
    assert_int_equal(dec(4, 0x30, B(0, 1, '#')), IMQTT_ETOPIC);
    assert_int_equal(dec(4, 0x30, B(0, 3, 0xED, 0xA0, 0x80)), IMQTT_EUTF8);
    assert_int_equal(dec(4, 0x30, B(0, 2, 'a', 0x00)), IMQTT_EUTF8);
    assert_int_equal(dec(4, 0x30, B(0, 2, 0xC0, 0xAF)), IMQTT_EUTF8);
    assert_int_equal(dec(5, 0x30, B(0, 1, 0x80, 0)), IMQTT_EUTF8);
    /* QoS 3 in a hand-built frame. */
    const uint8_t body[] = {0, 1, 'a', 0, 1};
    mqtt_frame f = {MQTT_PUBLISH, 0x06, 2, sizeof body, body};
    mqtt_packet p;
    assert_int_equal(mqtt_decode(&f, 4, &p), IMQTT_EQOS);
}

static void test_publish_props(void **state)
{
    (void)state;
    /* Duplicate, misplaced, unknown, out of range. */
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 4, 0x01, 0, 0x01, 1)),
                     IMQTT_EPROPDUP);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 6, 0x23, 0, 1, 0x23, 0, 2)),
                     IMQTT_EPROPDUP);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 5, 0x11, 0, 0, 0, 1)),
                     IMQTT_EPROPPKT);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 3, 0x1F, 0, 0)), IMQTT_EPROPPKT);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 2, 0x05, 0)), IMQTT_EPROPID);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 2, 0x01, 2)), IMQTT_EPROPVAL);
    /* Topic alias 0 decodes; the receiver answers 0x94 [MQTT-3.3.2-8]. */
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 3, 0x23, 0, 0)), 0);
    /* Several subscription identifiers are fine in PUBLISH. */
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 4, 0x0B, 1, 0x0B, 2)), 0);
    /* Property length beyond the packet, property cut in half. */
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 9, 0x01)), IMQTT_EMALFORMED);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 2, 0x02, 0)), IMQTT_EMALFORMED);
    /* Non-minimal and 5-byte property lengths. */
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 0x80, 0x00)), IMQTT_EVARINT);
    assert_int_equal(dec(5, 0x30, B(0, 1, 'a', 0x80, 0x80, 0x80, 0x80, 0x01)),
                     IMQTT_EVARINT);
}

static void test_many_user_properties(void **state)
{
    (void)state;
    /* 100,000 user properties in one PUBLISH: allowed, counted, linear. */
    const uint32_t count = 100000;
    size_t plen = (size_t)count * 7;
    uint8_t *body = malloc(3 + 4 + plen + 1);
    assert_non_null(body);
    size_t n = 0;
    body[n++] = 0;
    body[n++] = 1;
    body[n++] = 'a';
    n += (size_t)mqtt_varint_encode((uint32_t)plen, body + n);
    for (uint32_t i = 0; i < count; i++, n += 7)
        memcpy(body + n, "\x26\0\1k\0\1v", 7);
    body[n++] = 'P';
    uint8_t *buf = malloc(n + 5);
    assert_non_null(buf);
    buf[0] = 0x30;
    int h = 1 + mqtt_varint_encode((uint32_t)n, buf + 1);
    memcpy(buf + h, body, n);
    mqtt_frame f;
    mqtt_packet p;
    clock_t t0 = clock();
    assert_int_equal(mqtt_frame_parse(buf, (size_t)h + n, 0, &f), h + (int)n);
    assert_int_equal(mqtt_decode(&f, 5, &p), 0);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    assert_int_equal(p.u.publish.props.user_count, count);
    assert_int_equal(p.u.publish.payload.len, 1);
    free(body);
    free(buf);
}

/* ---- acks -------------------------------------------------------------- */

static void test_acks(void **state)
{
    (void)state;
    const uint8_t firsts[] = {0x40, 0x50, 0x62, 0x70};
    for (size_t i = 0; i < sizeof firsts; i++) {
        uint8_t f0 = firsts[i];
        assert_int_equal(dec(4, f0, B(0, 0)), IMQTT_EPACKETID);
        assert_int_equal(dec(5, f0, B(0, 0)), IMQTT_EPACKETID);
        assert_int_equal(dec(4, f0, B(0)), IMQTT_EMALFORMED);
        assert_int_equal(dec(4, f0, NULL, 0), IMQTT_EMALFORMED);
        assert_int_equal(dec(4, f0, B(0, 1, 0)), IMQTT_ETRAILING);
        assert_int_equal(dec(5, f0, B(0, 1, 0, 0, 0)), IMQTT_ETRAILING);
        assert_int_equal(dec(5, f0, B(0, 1, 0, 5)), IMQTT_EMALFORMED);
        /* A reason code the packet may not carry. */
        assert_int_equal(dec(5, f0, B(0, 1, 0x05)), IMQTT_EREASON);
        /* A property the packet may not carry. */
        assert_int_equal(dec(5, f0, B(0, 1, 0, 2, 0x01, 0)), IMQTT_EPROPPKT);
    }
    assert_int_equal(dec(5, 0x40, B(0, 1, 0x92)), IMQTT_EREASON);
    assert_int_equal(dec(5, 0x62, B(0, 1, 0x92)), 0);
    assert_int_equal(dec(5, 0x62, B(0, 1, 0x10)), IMQTT_EREASON);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------- */

static void test_subscribe(void **state)
{
    (void)state;
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 'a', 1)), 0);
    /* No filters at all. */
    assert_int_equal(dec(4, 0x82, B(0, 1)), IMQTT_EEMPTY);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0)), IMQTT_EEMPTY);
    /* Filter without its options byte. */
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 'a')), IMQTT_EMALFORMED);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0, 0, 1, 'a')), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 'a', 1, 0, 1, 'b')),
                     IMQTT_EMALFORMED);
    /* Filter length beyond the packet. */
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 5, 'a', 1)), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0)), IMQTT_EMALFORMED);
    /* Packet id 0. */
    assert_int_equal(dec(4, 0x82, B(0, 0, 0, 1, 'a', 1)), IMQTT_EPACKETID);
    /* Options: QoS 3, reserved bits (3.x: 2-7, v5: 6-7), handling 3. */
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 'a', 3)), IMQTT_EQOS);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0, 0, 1, 'a', 3)), IMQTT_EQOS);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 'a', 0x04)), IMQTT_ERESERVED);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 'a', 0x80)), IMQTT_ERESERVED);
    assert_int_equal(dec(3, 0x82, B(0, 1, 0, 1, 'a', 0x10)), IMQTT_ERESERVED);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0, 0, 1, 'a', 0x2D)), 0);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0, 0, 1, 'a', 0x40)),
                     IMQTT_ERESERVED);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0, 0, 1, 'a', 0x80)),
                     IMQTT_ERESERVED);
    assert_int_equal(dec(5, 0x82, B(0, 1, 0, 0, 1, 'a', 0x30)),
                     IMQTT_EMALFORMED);
    /* Invalid filters decode: the receiver answers 0x8F for each one
     * (the broker's SUBACK), the packet itself is well formed. */
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 0, 1)), 0);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 3, 'a', '#', 'b', 1)), 0);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 3, '#', '/', 'a', 1)), 0);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 2, 'a', '+', 1)), 0);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 3, 0xED, 0xA0, 0x80, 1)),
                     IMQTT_EUTF8);
    assert_int_equal(dec(4, 0x82, B(0, 1, 0, 1, 0x00, 1)), IMQTT_EUTF8);
    /* v5: two subscription identifiers; id 0. */
    assert_int_equal(dec(5, 0x82, B(0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, 'a', 1)),
                     IMQTT_EPROPDUP);
    assert_int_equal(dec(5, 0x82, B(0, 1, 2, 0x0B, 0, 0, 1, 'a', 1)),
                     IMQTT_EPROPVAL);
}

static void test_unsubscribe(void **state)
{
    (void)state;
    assert_int_equal(dec(4, 0xA2, B(0, 1, 0, 1, 'a')), 0);
    assert_int_equal(dec(4, 0xA2, B(0, 1)), IMQTT_EEMPTY);
    assert_int_equal(dec(5, 0xA2, B(0, 1, 0)), IMQTT_EEMPTY);
    assert_int_equal(dec(4, 0xA2, B(0, 0, 0, 1, 'a')), IMQTT_EPACKETID);
    assert_int_equal(dec(4, 0xA2, B(0, 1, 0, 1, 'a', 0)), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0xA2, B(0, 1, 0, 2, 'a', '#')), 0);
    assert_int_equal(dec(4, 0xA2, B(0, 1, 0, 1, 0xFF)), IMQTT_EUTF8);
    assert_int_equal(dec(5, 0xA2, B(0, 1, 2, 0x0B, 1, 0, 1, 'a')),
                     IMQTT_EPROPPKT);
}

/* ---- server to client -------------------------------------------------- */

static void test_connack_suback(void **state)
{
    (void)state;
    assert_int_equal(dec(4, 0x20, B(0x02, 0)), IMQTT_ERESERVED);
    assert_int_equal(dec(4, 0x20, B(0x80, 0)), IMQTT_ERESERVED);
    assert_int_equal(dec(4, 0x20, B(0x00, 6)), IMQTT_EREASON);
    assert_int_equal(dec(4, 0x20, B(0x00)), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x20, B(0x00, 0, 0)), IMQTT_ETRAILING);
    assert_int_equal(dec(5, 0x20, B(0x00, 0x01, 0)), IMQTT_EREASON);
    assert_int_equal(dec(5, 0x20, B(0x00, 0x00)), IMQTT_EMALFORMED);
    assert_int_equal(dec(5, 0x20, B(0x00, 0x00, 2, 0x24, 2)), IMQTT_EPROPVAL);
    assert_int_equal(dec(5, 0x20, B(0x00, 0x00, 2, 0x23, 2)), IMQTT_EPROPPKT);

    assert_int_equal(dec(4, 0x90, B(0, 1)), IMQTT_EMALFORMED);
    assert_int_equal(dec(4, 0x90, B(0, 1, 3)), IMQTT_EREASON);
    assert_int_equal(dec(4, 0x90, B(0, 1, 0x87)), IMQTT_EREASON);
    assert_int_equal(dec(5, 0x90, B(0, 1, 0, 0x87)), 0);
    assert_int_equal(dec(5, 0x90, B(0, 1, 0, 0x11)), IMQTT_EREASON);
    assert_int_equal(dec(4, 0xB0, B(0, 1, 0)), IMQTT_ETRAILING);
    assert_int_equal(dec(5, 0xB0, B(0, 1, 0)), IMQTT_EMALFORMED);
    assert_int_equal(dec(5, 0xB0, B(0, 1, 0, 0x11)), 0);
    assert_int_equal(dec(5, 0xB0, B(0, 1, 0, 0x01)), IMQTT_EREASON);
}

static void test_ping_disconnect_auth(void **state)
{
    (void)state;
    assert_int_equal(dec(4, 0xC0, B(0)), IMQTT_ETRAILING);
    assert_int_equal(dec(5, 0xD0, B(0)), IMQTT_ETRAILING);
    assert_int_equal(dec(4, 0xE0, B(0)), IMQTT_ETRAILING);
    assert_int_equal(dec(5, 0xE0, B(0x03)), IMQTT_EREASON);
    assert_int_equal(dec(5, 0xE0, B(0x00, 0x00, 0x00)), IMQTT_ETRAILING);
    assert_int_equal(dec(5, 0xE0, B(0x00, 5, 0x11, 0, 0, 0, 1)), 0);
    assert_int_equal(dec(5, 0xE0, B(0x00, 3, 0x23, 0, 1)), IMQTT_EPROPPKT);
    /* AUTH is v5 only. */
    assert_int_equal(dec(4, 0xF0, NULL, 0), IMQTT_ETYPE);
    assert_int_equal(dec(3, 0xF0, NULL, 0), IMQTT_ETYPE);
    assert_int_equal(dec(5, 0xF0, B(0x00, 0x00)), 0);
    assert_int_equal(dec(5, 0xF0, B(0x04)), IMQTT_EREASON);
}

/* ---- framing ----------------------------------------------------------- */

static void test_frame_level(void **state)
{
    (void)state;
    mqtt_frame f;
    const uint8_t five[] = {0x30, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(mqtt_frame_parse(five, sizeof five, 0, &f), IMQTT_EVARINT);
    const uint8_t nonmin[] = {0x30, 0x80, 0x00};
    assert_int_equal(mqtt_frame_parse(nonmin, sizeof nonmin, 0, &f),
                     IMQTT_EVARINT);
    const uint8_t huge[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(mqtt_frame_parse(huge, sizeof huge, 1u << 20, &f),
                     IMQTT_ETOOLARGE);
    /* Wrong flags for every type, also when the frame is built by hand. */
    for (int t = 1; t <= 15; t++) {
        if (t == MQTT_PUBLISH)
            continue;
        uint8_t good =
            (t == MQTT_PUBREL || t == MQTT_SUBSCRIBE || t == MQTT_UNSUBSCRIBE)
                ? 2
                : 0;
        uint8_t bad = good ? 0 : 2;
        uint8_t b[2] = {(uint8_t)(t << 4 | bad), 0};
        assert_int_equal(mqtt_frame_parse(b, 2, 0, &f), IMQTT_EFLAGS);
        mqtt_frame hand = {(uint8_t)t, bad, 2, 0, b + 2};
        mqtt_packet p;
        assert_int_equal(mqtt_decode(&hand, 5, &p), IMQTT_EFLAGS);
        hand.flags = 0x0F;
        assert_int_equal(mqtt_decode(&hand, 4, &p), IMQTT_EFLAGS);
    }
    const uint8_t zero[] = {0x00, 0x00};
    assert_int_equal(mqtt_frame_parse(zero, 2, 0, &f), IMQTT_ETYPE);
    mqtt_frame hand = {0, 0, 2, 0, zero};
    mqtt_packet p;
    assert_int_equal(mqtt_decode(&hand, 4, &p), IMQTT_ETYPE);
}

/* ---- truncation at every offset ---------------------------------------- */

/* Valid packets of every type, encoded at version v into bufs. */
static int corpus(uint8_t v, uint8_t bufs[][512], int *lens)
{
    static const mqtt_user_prop up = {MQTT_STR_LIT("k"), MQTT_STR_LIT("v")};
    mqtt_props props;
    memset(&props, 0, sizeof props);
    props.user = &up;
    props.user_count = 1;
    props.reason_string = MQTT_STR_LIT("r");
    mqtt_props_set(&props, MQTT_PROP_REASON_STRING);
    mqtt_props pubprops;
    memset(&pubprops, 0, sizeof pubprops);
    pubprops.user = &up;
    pubprops.user_count = 1;
    pubprops.message_expiry = 9;
    mqtt_props_set(&pubprops, MQTT_PROP_MESSAGE_EXPIRY);

    uint8_t entries[64];
    const mqtt_sub_entry e[] = {{MQTT_STR_LIT("a/+"), {1, 0, 0, 0}},
                                {MQTT_STR_LIT("b/#"), {2, 0, 0, 0}}};
    int en = mqtt_sub_encode_entries(e, 2, v, entries, sizeof entries);
    uint8_t uentries[64];
    const mqtt_str uf[] = {MQTT_STR_LIT("a/+"), MQTT_STR_LIT("b")};
    int un = mqtt_unsub_encode_entries(uf, 2, uentries, sizeof uentries);
    static const uint8_t codes[] = {0, 1};

    mqtt_packet ps[16];
    int n = 0;
    memset(ps, 0, sizeof ps);
    ps[n].type = MQTT_CONNECT;
    ps[n].u.connect.will = true;
    ps[n].u.connect.will_qos = 1;
    ps[n].u.connect.will_topic = MQTT_STR_LIT("w/t");
    ps[n].u.connect.will_payload = MQTT_STR_LIT("bye");
    ps[n].u.connect.has_username = ps[n].u.connect.has_password = true;
    ps[n].u.connect.username = MQTT_STR_LIT("user");
    ps[n].u.connect.password = MQTT_STR_LIT("pw");
    ps[n].u.connect.client_id = MQTT_STR_LIT("id");
    ps[n].u.connect.props.session_expiry = 1;
    mqtt_props_set(&ps[n].u.connect.props, MQTT_PROP_SESSION_EXPIRY);
    ps[n++].u.connect.will_props = pubprops;
    ps[n].type = MQTT_CONNACK;
    ps[n].u.connack.props = props;
    n++;
    ps[n].type = MQTT_PUBLISH;
    ps[n].u.publish.qos = 2;
    ps[n].u.publish.packet_id = 5;
    ps[n].u.publish.topic = MQTT_STR_LIT("a/b");
    ps[n].u.publish.payload = MQTT_STR_LIT("payload");
    ps[n++].u.publish.props = pubprops;
    for (int t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++) {
        ps[n].type = (uint8_t)t;
        ps[n].u.ack.packet_id = 77;
        ps[n++].u.ack.props = props;
    }
    ps[n].type = MQTT_SUBSCRIBE;
    ps[n].u.subscribe.packet_id = 1;
    ps[n].u.subscribe.entries = (mqtt_bytes){entries, (uint32_t)en};
    ps[n++].u.subscribe.count = 2;
    ps[n].type = MQTT_SUBACK;
    ps[n].u.suback.packet_id = 1;
    ps[n].u.suback.codes = codes;
    ps[n].u.suback.count = 2;
    ps[n++].u.suback.props = props;
    ps[n].type = MQTT_UNSUBSCRIBE;
    ps[n].u.unsubscribe.packet_id = 1;
    ps[n].u.unsubscribe.entries = (mqtt_bytes){uentries, (uint32_t)un};
    ps[n++].u.unsubscribe.count = 2;
    ps[n].type = MQTT_UNSUBACK;
    ps[n].u.unsuback.packet_id = 1;
    ps[n].u.unsuback.codes = codes;
    ps[n].u.unsuback.count = 1;
    ps[n++].u.unsuback.props = props;
    ps[n++].type = MQTT_PINGREQ;
    ps[n++].type = MQTT_PINGRESP;
    ps[n].type = MQTT_DISCONNECT;
    ps[n].u.disconnect.reason = 0x8E;
    ps[n++].u.disconnect.props = props;
    if (v == MQTT_V5) {
        ps[n].type = MQTT_AUTH;
        ps[n].u.auth.reason = 0x18;
        ps[n++].u.auth.props = props;
    }
    for (int i = 0; i < n; i++) {
        lens[i] = mqtt_encode(&ps[i], v, bufs[i], 512);
        assert_true(lens[i] > 0);
    }
    return n;
}

static void test_truncated_everywhere(void **state)
{
    (void)state;
    const uint8_t versions[] = {3, 4, 5};
    static uint8_t bufs[16][512];
    int lens[16];
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        int n = corpus(v, bufs, lens);
        for (int i = 0; i < n; i++) {
            mqtt_frame f;
            mqtt_packet p;
            /* The whole packet decodes. */
            assert_int_equal(mqtt_frame_parse(bufs[i], (size_t)lens[i], 0, &f),
                             lens[i]);
            assert_int_equal(mqtt_decode(&f, v, &p), 0);
            for (int k = 0; k < lens[i]; k++) {
                /* A stream cut at k: the framer waits for more. */
                uint8_t *cut = malloc((size_t)k + 1);
                memcpy(cut, bufs[i], (size_t)k);
                assert_int_equal(mqtt_frame_parse(cut, (size_t)k, 0, &f), 0);
                free(cut);
            }
            /* A body cut at every length, announced as such: decode must
             * fail cleanly or accept a shorter valid form, never read past
             * the end (the buffer is exact, ASan watches). */
            int h = lens[i] - (int)f.remaining;
            for (uint32_t k = 0; k < f.remaining; k++) {
                uint8_t *body = malloc(k ? k : 1);
                memcpy(body, bufs[i] + h, k);
                mqtt_frame t = f;
                t.remaining = k;
                t.body = body;
                int rc = mqtt_decode(&t, v, &p);
                assert_true(rc <= 0);
                if (rc == 0) {
                    /* Only a few cuts leave a valid packet: a PUBLISH
                     * payload, a v5 ack/DISCONNECT/AUTH short form, a
                     * SUBSCRIBE / UNSUBSCRIBE / SUBACK list ending on an
                     * entry boundary. */
                    uint8_t ty = f.type;
                    assert_true(ty == MQTT_PUBLISH || ty == MQTT_SUBSCRIBE ||
                                ty == MQTT_UNSUBSCRIBE || ty == MQTT_SUBACK ||
                                ty == MQTT_UNSUBACK ||
                                (v == 5 &&
                                 (ty == MQTT_DISCONNECT || ty == MQTT_AUTH ||
                                  (ty >= MQTT_PUBACK && ty <= MQTT_PUBCOMP))));
                }
                free(body);
            }
        }
    }
}

static void test_flipped_bytes_never_crash(void **state)
{
    (void)state;
    /* Every byte of every corpus packet replaced by a few values: the
     * result is any code, but the decoder stays in bounds. */
    const uint8_t versions[] = {3, 4, 5};
    static uint8_t bufs[16][512];
    int lens[16];
    const uint8_t vals[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        int n = corpus(versions[vi], bufs, lens);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < lens[i]; k++) {
                for (size_t x = 0; x < sizeof vals; x++) {
                    uint8_t *b = malloc((size_t)lens[i]);
                    memcpy(b, bufs[i], (size_t)lens[i]);
                    b[k] = vals[x];
                    mqtt_frame f;
                    mqtt_packet p;
                    int rc = mqtt_frame_parse(b, (size_t)lens[i], 0, &f);
                    if (rc > 0)
                        (void)mqtt_decode(&f, versions[vi], &p);
                    free(b);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_protocol),
        cmocka_unit_test(test_connect_flags),
        cmocka_unit_test(test_connect_strings),
        cmocka_unit_test(test_connect_v5_props),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_publish_props),
        cmocka_unit_test(test_many_user_properties),
        cmocka_unit_test(test_acks),
        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_connack_suback),
        cmocka_unit_test(test_ping_disconnect_auth),
        cmocka_unit_test(test_frame_level),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_flipped_bytes_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
