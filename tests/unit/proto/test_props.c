/* MQTT 5 properties: table, validation, iterators, encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "props.h"
#include "proto_test.h"

#include <stdlib.h>
#include <time.h>

static const uint8_t known_ids[] = {
    0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13,
    0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C, 0x1F, 0x21,
    0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
};
#define N_KNOWN (sizeof known_ids / sizeof known_ids[0])

/* Append id and a valid value of its type to b; returns new length. */
static size_t put_valid(uint8_t *b, size_t n, uint8_t id)
{
    b[n++] = id;
    switch (mqtt_prop_type_of(id)) {
    case MQTT_PT_BYTE:
        b[n++] = 1;
        break;
    case MQTT_PT_U16:
        b[n++] = 0;
        b[n++] = 1;
        break;
    case MQTT_PT_U32:
        memcpy(b + n, "\0\0\0\1", 4);
        n += 4;
        break;
    case MQTT_PT_VARINT:
        b[n++] = 1;
        break;
    case MQTT_PT_STRING:
    case MQTT_PT_BINARY:
        memcpy(b + n, "\0\2ab", 4);
        n += 4;
        break;
    case MQTT_PT_PAIR:
        memcpy(b + n, "\0\1k\0\1v", 6);
        n += 6;
        break;
    default:
        fail();
    }
    return n;
}

/* Decode content c[0..n) as a block (a 1-byte length prefix is added). The
 * views in *p point into a static buffer valid until the next call. */
static int decode_content(const uint8_t *c, size_t n, int type, mqtt_props *p)
{
    static uint8_t buf[256];
    assert_true(n < 128);
    buf[0] = (uint8_t)n;
    memcpy(buf + 1, c, n);
    return mqtt_props_decode(buf, n + 1, type, p);
}

static void test_table(void **state)
{
    (void)state;
    for (uint32_t id = 0; id < 300; id++) {
        bool known = id < 0x80 && memchr(known_ids, (int)id, N_KNOWN);
        assert_int_equal(mqtt_prop_type_of(id) != MQTT_PT_NONE, known);
        if (!known) {
            assert_string_equal(mqtt_prop_name(id), "?");
            for (int t = 0; t <= MQTT_PROPS_IN_WILL; t++)
                assert_false(mqtt_prop_allowed(id, t));
        }
    }
    assert_int_equal(mqtt_prop_type_of(0x26), MQTT_PT_PAIR);
    assert_int_equal(mqtt_prop_type_of(0x0B), MQTT_PT_VARINT);
    assert_int_equal(mqtt_prop_type_of(0x09), MQTT_PT_BINARY);
    assert_int_equal(mqtt_prop_type_of(0x27), MQTT_PT_U32);
    assert_int_equal(mqtt_prop_type_of(0x21), MQTT_PT_U16);
    assert_string_equal(mqtt_prop_name(0x11), "Session Expiry Interval");
    assert_true(mqtt_prop_allowed(0x18, MQTT_PROPS_IN_WILL));
    assert_false(mqtt_prop_allowed(0x18, MQTT_CONNECT));
    assert_true(mqtt_prop_allowed(0x01, MQTT_PROPS_IN_WILL));
    assert_false(mqtt_prop_allowed(0x11, MQTT_PROPS_IN_WILL));
    assert_true(mqtt_prop_allowed(0x23, MQTT_PUBLISH));
    assert_false(mqtt_prop_allowed(0x23, MQTT_CONNECT));
    assert_true(mqtt_prop_allowed(0x26, MQTT_AUTH));
    assert_false(mqtt_prop_allowed(0x26, MQTT_PINGREQ));
    assert_false(mqtt_prop_allowed(0x1F, MQTT_PUBLISH));
    assert_true(mqtt_prop_allowed(0x1F, MQTT_PUBREL));
    assert_false(mqtt_prop_allowed(0x01, -1));
    assert_false(mqtt_prop_allowed(0x01, 17));
}

static void test_empty_block(void **state)
{
    (void)state;
    const uint8_t b[] = {0x00, 0xAA};
    mqtt_props p;
    assert_int_equal(mqtt_props_decode(b, 2, MQTT_PUBLISH, &p), 1);
    assert_int_equal(p.present, 0);
    assert_int_equal(p.user_count, 0);
    assert_int_equal(p.raw.len, 0);
}

static void test_every_property_where_allowed(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_KNOWN; i++) {
        for (int t = 1; t <= MQTT_PROPS_IN_WILL; t++) {
            uint8_t c[32];
            size_t n = put_valid(c, 0, known_ids[i]);
            mqtt_props p;
            int rc = decode_content(c, n, t, &p);
            if (mqtt_prop_allowed(known_ids[i], t)) {
                assert_int_equal(rc, (int)n + 1);
                if (known_ids[i] == MQTT_PROP_USER)
                    assert_int_equal(p.user_count, 1);
                else
                    assert_true(mqtt_props_has(&p, known_ids[i]));
            } else {
                assert_int_equal(rc, IMQTT_EPROPPKT);
            }
        }
    }
}

static void test_duplicates(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_KNOWN; i++) {
        uint8_t id = known_ids[i];
        int t = 1;
        while (!mqtt_prop_allowed(id, t))
            t++;
        if (id == MQTT_PROP_SUBSCRIPTION_ID)
            t = MQTT_SUBSCRIBE;
        uint8_t c[32];
        size_t n = put_valid(c, put_valid(c, 0, id), id);
        mqtt_props p;
        int rc = decode_content(c, n, t, &p);
        if (id == MQTT_PROP_USER)
            assert_int_equal(rc, (int)n + 1);
        else
            assert_int_equal(rc, IMQTT_EPROPDUP);
    }
}

static void test_publish_sub_ids_repeat(void **state)
{
    (void)state;
    const uint8_t c[] = {0x0B, 0x05, 0x0B, 0x80, 0x01, 0x0B, 0x07};
    mqtt_props p;
    assert_int_equal(decode_content(c, sizeof c, MQTT_PUBLISH, &p),
                     (int)sizeof c + 1);
    assert_int_equal(p.sub_id_count, 3);
    assert_int_equal(p.subscription_id, 5);
    assert_true(mqtt_props_has(&p, MQTT_PROP_SUBSCRIPTION_ID));
    uint32_t pos = 0, v, want[] = {5, 128, 7};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mqtt_props_next_sub_id(p.raw, &pos, &v), 1);
        assert_int_equal(v, want[i]);
    }
    assert_int_equal(mqtt_props_next_sub_id(p.raw, &pos, &v), 0);
}

static void test_unknown_ids(void **state)
{
    (void)state;
    const uint8_t ids[] = {0x00, 0x04, 0x0A, 0x10, 0x2B, 0x7F};
    for (size_t i = 0; i < sizeof ids; i++) {
        uint8_t c[] = {ids[i], 0x00};
        mqtt_props p;
        assert_int_equal(decode_content(c, sizeof c, MQTT_PUBLISH, &p),
                         IMQTT_EPROPID);
    }
    /* A two-byte identifier (0x80 0x01 = 128). */
    const uint8_t big[] = {0x80, 0x01, 0x00};
    mqtt_props p;
    assert_int_equal(decode_content(big, sizeof big, MQTT_PUBLISH, &p),
                     IMQTT_EPROPID);
    /* A non-minimal identifier for 0x01. */
    const uint8_t nonmin[] = {0x81, 0x00, 0x00};
    assert_int_equal(decode_content(nonmin, sizeof nonmin, MQTT_PUBLISH, &p),
                     IMQTT_EVARINT);
}

struct range_case {
    uint8_t bytes[8];
    size_t len;
    int type;
    int rc;
};

static void test_value_ranges(void **state)
{
    (void)state;
    const struct range_case cases[] = {
        {{0x01, 2}, 2, MQTT_PUBLISH, IMQTT_EPROPVAL},
        {{0x01, 1}, 2, MQTT_PUBLISH, 0},
        {{0x17, 2}, 2, MQTT_CONNECT, IMQTT_EPROPVAL},
        {{0x19, 2}, 2, MQTT_CONNECT, IMQTT_EPROPVAL},
        {{0x24, 2}, 2, MQTT_CONNACK, IMQTT_EPROPVAL},
        {{0x24, 1}, 2, MQTT_CONNACK, 0},
        {{0x25, 2}, 2, MQTT_CONNACK, IMQTT_EPROPVAL},
        {{0x28, 2}, 2, MQTT_CONNACK, IMQTT_EPROPVAL},
        {{0x29, 0xFF}, 2, MQTT_CONNACK, IMQTT_EPROPVAL},
        {{0x2A, 2}, 2, MQTT_CONNACK, IMQTT_EPROPVAL},
        {{0x21, 0, 0}, 3, MQTT_CONNECT, IMQTT_EPROPVAL},
        {{0x27, 0, 0, 0, 0}, 5, MQTT_CONNECT, IMQTT_EPROPVAL},
        {{0x0B, 0}, 2, MQTT_SUBSCRIBE, IMQTT_EPROPVAL},
        {{0x0B, 0}, 2, MQTT_PUBLISH, IMQTT_EPROPVAL},
        {{0x0B, 0xFF, 0xFF, 0xFF, 0x7F}, 5, MQTT_SUBSCRIBE, 0},
        {{0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
         6,
         MQTT_SUBSCRIBE,
         IMQTT_EVARINT},
        {{0x23, 0, 0}, 3, MQTT_PUBLISH, 0 /* 0x94 is the receiver's call */},
        {{0x22, 0, 0}, 3, MQTT_CONNECT, 0}, /* alias maximum 0 is fine */
        {{0x08, 0, 1, '#'}, 4, MQTT_PUBLISH, IMQTT_EPROPVAL},
        {{0x08, 0, 1, 'a'}, 4, MQTT_PUBLISH, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mqtt_props p;
        int rc =
            decode_content(cases[i].bytes, cases[i].len, cases[i].type, &p);
        if (cases[i].rc == 0)
            assert_int_equal(rc, (int)cases[i].len + 1);
        else
            assert_int_equal(rc, cases[i].rc);
    }
}

static void test_utf8_checked(void **state)
{
    (void)state;
    mqtt_props p;
    const uint8_t bad_reason[] = {0x1F, 0, 3, 0xED, 0xA0, 0x80};
    assert_int_equal(
        decode_content(bad_reason, sizeof bad_reason, MQTT_PUBACK, &p),
        IMQTT_EUTF8);
    const uint8_t nul_key[] = {0x26, 0, 1, 0x00, 0, 1, 'v'};
    assert_int_equal(decode_content(nul_key, sizeof nul_key, MQTT_PUBLISH, &p),
                     IMQTT_EUTF8);
    const uint8_t bad_value[] = {0x26, 0, 1, 'k', 0, 1, 0xFF};
    assert_int_equal(
        decode_content(bad_value, sizeof bad_value, MQTT_PUBLISH, &p),
        IMQTT_EUTF8);
    const uint8_t bad_ct[] = {0x03, 0, 2, 0xC0, 0x80};
    assert_int_equal(decode_content(bad_ct, sizeof bad_ct, MQTT_PUBLISH, &p),
                     IMQTT_EUTF8);
    /* Binary data is not UTF-8 checked. */
    const uint8_t bin[] = {0x09, 0, 2, 0xFF, 0x00};
    assert_int_equal(decode_content(bin, sizeof bin, MQTT_PUBLISH, &p),
                     (int)sizeof bin + 1);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t c[64];
    size_t n = 0;
    n = put_valid(c, n, 0x11);
    n = put_valid(c, n, 0x26);
    n = put_valid(c, n, 0x15);
    n = put_valid(c, n, 0x21);
    uint8_t buf[80];
    buf[0] = (uint8_t)n;
    memcpy(buf + 1, c, n);
    mqtt_props p;
    /* Buffer shorter than the announced block. */
    for (size_t k = 0; k <= n; k++) {
        int rc = mqtt_props_decode(buf, k, MQTT_CONNECT, &p);
        assert_int_equal(rc, IMQTT_EMALFORMED);
    }
    /* Block length cutting a value in half. */
    for (size_t k = 1; k < n; k++) {
        buf[0] = (uint8_t)k;
        int rc = mqtt_props_decode(buf, n + 1, MQTT_CONNECT, &p);
        bool boundary = k == 5 || k == 12 || k == 17;
        if (boundary)
            assert_int_equal(rc, (int)k + 1);
        else
            assert_int_equal(rc, IMQTT_EMALFORMED);
    }
    /* Non-minimal block length. */
    const uint8_t nm[] = {0x80, 0x00};
    assert_int_equal(mqtt_props_decode(nm, 2, MQTT_CONNECT, &p), IMQTT_EVARINT);
}

static void test_encode_order_and_roundtrip(void **state)
{
    (void)state;
    mqtt_user_prop users[2] = {
        {MQTT_STR_LIT("k1"), MQTT_STR_LIT("v1")},
        {MQTT_STR_LIT("k2"), MQTT_STR_LIT("")},
    };
    mqtt_props in;
    memset(&in, 0, sizeof in);
    in.topic_alias = 7;
    mqtt_props_set(&in, MQTT_PROP_TOPIC_ALIAS);
    in.payload_format = 1;
    mqtt_props_set(&in, MQTT_PROP_PAYLOAD_FORMAT);
    in.content_type = MQTT_STR_LIT("text/plain");
    mqtt_props_set(&in, MQTT_PROP_CONTENT_TYPE);
    in.message_expiry = 3600;
    mqtt_props_set(&in, MQTT_PROP_MESSAGE_EXPIRY);
    in.user = users;
    in.user_count = 2;
    uint32_t ids[] = {1, 300};
    in.sub_ids = ids;
    in.sub_id_count = 2;

    uint8_t buf[256];
    int n = mqtt_props_encode(&in, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal((size_t)n, mqtt_props_size(&in));
    mqtt_props out;
    assert_int_equal(mqtt_props_decode(buf, (size_t)n, MQTT_PUBLISH, &out), n);
    assert_int_equal(out.payload_format, 1);
    assert_int_equal(out.message_expiry, 3600);
    assert_str_is(out.content_type, "text/plain");
    assert_int_equal(out.topic_alias, 7);
    assert_int_equal(out.user_count, 2);
    assert_int_equal(out.sub_id_count, 2);
    assert_int_equal(out.subscription_id, 1);
    uint32_t p = 0;
    mqtt_user_prop u;
    assert_int_equal(mqtt_props_next_user(out.raw, &p, &u), 1);
    assert_str_is(u.key, "k1");
    assert_str_is(u.value, "v1");
    assert_int_equal(mqtt_props_next_user(out.raw, &p, &u), 1);
    assert_str_is(u.key, "k2");
    assert_str_is(u.value, "");
    assert_int_equal(mqtt_props_next_user(out.raw, &p, &u), 0);

    /* Exact bytes of the block: identifiers in ascending order, the
     * subscription ids at 0x0B, the user properties at 0x26. */
    const uint8_t expect[] = {
        0x00, /* length, patched below */
        0x01, 0x01, 0x02, 0x00, 0x00, 0x0E, 0x10, 0x03, 0x00, 0x0A, 't',
        'e',  'x',  't',  '/',  'p',  'l',  'a',  'i',  'n',  0x0B, 0x01,
        0x0B, 0xAC, 0x02, 0x23, 0x00, 0x07, 0x26, 0x00, 0x02, 'k',  '1',
        0x00, 0x02, 'v',  '1',  0x26, 0x00, 0x02, 'k',  '2',  0x00, 0x00,
    };
    assert_int_equal(n, (int)sizeof expect);
    assert_int_equal(buf[0], sizeof expect - 1);
    assert_memory_equal(buf + 1, expect + 1, sizeof expect - 1);
}

static void test_user_from_copied_after_user(void **state)
{
    (void)state;
    const uint8_t src[] = {0x0C, 0x26, 0, 1, 'a',  0,   1,
                           'b',  0x23, 0, 5, 0x01, 0x01};
    mqtt_props dec;
    assert_int_equal(mqtt_props_decode(src, sizeof src, MQTT_PUBLISH, &dec),
                     13);
    mqtt_user_prop from = {MQTT_STR_LIT("from"), MQTT_STR_LIT("u@d")};
    mqtt_props out;
    memset(&out, 0, sizeof out);
    out.user = &from;
    out.user_count = 1;
    out.user_from = dec.raw;
    uint8_t buf[64];
    int n = mqtt_props_encode(&out, buf, sizeof buf);
    assert_int_equal((size_t)n, mqtt_props_size(&out));
    const uint8_t expect[] = {0x13, 0x26, 0,   4,   'f', 'r', 'o',
                              'm',  0,    3,   'u', '@', 'd', 0x26,
                              0,    1,    'a', 0,   1,   'b'};
    /* Only user properties are copied: topic alias and payload format of
     * the source block are not. */
    assert_int_equal(n, (int)sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);
}

static void test_encode_errors(void **state)
{
    (void)state;
    mqtt_props p;
    memset(&p, 0, sizeof p);
    p.reason_string = MQTT_STR_LIT("hello");
    mqtt_props_set(&p, MQTT_PROP_REASON_STRING);
    uint8_t buf[16];
    assert_int_equal(mqtt_props_encode(&p, buf, 8), IMQTT_ENOSPACE);
    assert_int_equal(mqtt_props_encode(&p, buf, 9), 9);
    static uint8_t big[70000];
    p.reason_string.ptr = big;
    p.reason_string.len = sizeof big;
    assert_int_equal(mqtt_props_encode(&p, buf, sizeof buf), IMQTT_EINVAL);
    /* An empty set encodes as a single zero length. */
    memset(&p, 0, sizeof p);
    assert_int_equal(mqtt_props_size(&p), 1);
    assert_int_equal(mqtt_props_encode(&p, buf, 1), 1);
    assert_int_equal(buf[0], 0);
    assert_int_equal(mqtt_props_encode(&p, buf, 0), IMQTT_ENOSPACE);
}

static void test_many_user_properties_linear(void **state)
{
    (void)state;
    /* 200,000 empty user properties: 1 MB of properties. */
    const uint32_t count = 200000;
    size_t content = (size_t)count * 5;
    uint8_t *buf = malloc(content + 4);
    assert_non_null(buf);
    int h = mqtt_varint_encode((uint32_t)content, buf);
    for (uint32_t i = 0; i < count; i++)
        memcpy(buf + h + (size_t)i * 5, "\x26\0\0\0\0", 5);
    mqtt_props p;
    clock_t t0 = clock();
    assert_int_equal(
        mqtt_props_decode(buf, content + (size_t)h, MQTT_PUBLISH, &p),
        (int)content + h);
    assert_int_equal(p.user_count, count);
    uint32_t pos = 0, seen = 0;
    mqtt_user_prop u;
    while (mqtt_props_next_user(p.raw, &pos, &u))
        seen++;
    assert_int_equal(seen, count);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    /* Linear: well under a second even in a sanitizer build; a quadratic
     * walk would take minutes. */
    assert_true(secs < 2.0);
    free(buf);
}

static void test_raw_iterators_skip_other_props(void **state)
{
    (void)state;
    uint8_t c[64];
    size_t n = 0;
    n = put_valid(c, n, 0x01);
    n = put_valid(c, n, 0x26);
    n = put_valid(c, n, 0x09);
    n = put_valid(c, n, 0x0B);
    n = put_valid(c, n, 0x26);
    n = put_valid(c, n, 0x02);
    mqtt_props p;
    assert_int_equal(decode_content(c, n, MQTT_PUBLISH, &p), (int)n + 1);
    assert_int_equal(p.user_count, 2);
    uint32_t pos = 0, k = 0;
    mqtt_user_prop u;
    while (mqtt_props_next_user(p.raw, &pos, &u)) {
        assert_str_is(u.key, "k");
        k++;
    }
    assert_int_equal(k, 2);
    pos = 0;
    uint32_t sid;
    assert_int_equal(mqtt_props_next_sub_id(p.raw, &pos, &sid), 1);
    assert_int_equal(sid, 1);
    assert_int_equal(mqtt_props_next_sub_id(p.raw, &pos, &sid), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_empty_block),
        cmocka_unit_test(test_every_property_where_allowed),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_publish_sub_ids_repeat),
        cmocka_unit_test(test_unknown_ids),
        cmocka_unit_test(test_value_ranges),
        cmocka_unit_test(test_utf8_checked),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_encode_order_and_roundtrip),
        cmocka_unit_test(test_user_from_copied_after_user),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_many_user_properties_linear),
        cmocka_unit_test(test_raw_iterators_skip_other_props),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
