/* mqtt_frame_parse: fixed header rules, partial input, size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "packet.h"

#include <string.h>

static void test_empty_needs_more(void **state)
{
    (void)state;
    mqtt_frame f;
    assert_int_equal(mqtt_frame_parse(NULL, 0, 0, &f), 0);
}

static void test_whole_packet(void **state)
{
    (void)state;
    const uint8_t b[] = {0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y', 0xEE};
    mqtt_frame f;
    assert_int_equal(mqtt_frame_parse(b, sizeof b, 0, &f), 7);
    assert_int_equal(f.type, MQTT_PUBLISH);
    assert_int_equal(f.flags, 0);
    assert_int_equal(f.header_len, 2);
    assert_int_equal(f.remaining, 5);
    assert_ptr_equal(f.body, b + 2);
}

static void test_partial_reports_what_it_knows(void **state)
{
    (void)state;
    uint8_t b[300] = {0x32, 0xAC, 0x02}; /* remaining 300 */
    mqtt_frame f;
    memset(&f, 0, sizeof f);
    assert_int_equal(mqtt_frame_parse(b, 1, 0, &f), 0);
    assert_int_equal(f.type, MQTT_PUBLISH);
    assert_int_equal(f.flags, 2);
    assert_int_equal(mqtt_frame_parse(b, 2, 0, &f), 0);
    assert_int_equal(mqtt_frame_parse(b, 3, 0, &f), 0);
    assert_int_equal(f.remaining, 300);
    assert_int_equal(f.header_len, 3);
    assert_int_equal(mqtt_frame_parse(b, 302, 0, &f), 0);
}

static void test_every_type_with_valid_flags(void **state)
{
    (void)state;
    for (int t = 1; t <= 15; t++) {
        uint8_t flags =
            (t == MQTT_PUBREL || t == MQTT_SUBSCRIBE || t == MQTT_UNSUBSCRIBE)
                ? 2
                : 0;
        uint8_t b[2] = {(uint8_t)(t << 4 | flags), 0};
        mqtt_frame f;
        assert_int_equal(mqtt_frame_parse(b, 2, 0, &f), 2);
        assert_int_equal(f.type, t);
    }
}

static void test_wrong_flags_every_type(void **state)
{
    (void)state;
    for (int t = 1; t <= 15; t++) {
        if (t == MQTT_PUBLISH)
            continue;
        uint8_t good =
            (t == MQTT_PUBREL || t == MQTT_SUBSCRIBE || t == MQTT_UNSUBSCRIBE)
                ? 2
                : 0;
        for (int fl = 0; fl < 16; fl++) {
            if (fl == good)
                continue;
            uint8_t b[2] = {(uint8_t)(t << 4 | fl), 0};
            mqtt_frame f;
            /* Rejected from the first byte alone. */
            assert_int_equal(mqtt_frame_parse(b, 1, 0, &f), IMQTT_EFLAGS);
            assert_int_equal(mqtt_frame_parse(b, 2, 0, &f), IMQTT_EFLAGS);
        }
    }
}

static void test_publish_flags(void **state)
{
    (void)state;
    for (int fl = 0; fl < 16; fl++) {
        uint8_t b[2] = {(uint8_t)(0x30 | fl), 0};
        mqtt_frame f;
        int rc = mqtt_frame_parse(b, 2, 0, &f);
        if (((fl >> 1) & 3) == 3)
            assert_int_equal(rc, IMQTT_EQOS);
        else
            assert_int_equal(rc, 2);
    }
}

static void test_type_zero(void **state)
{
    (void)state;
    const uint8_t b[] = {0x00, 0x00};
    mqtt_frame f;
    assert_int_equal(mqtt_frame_parse(b, 1, 0, &f), IMQTT_ETYPE);
    assert_int_equal(mqtt_frame_parse(b, 2, 0, &f), IMQTT_ETYPE);
}

static void test_too_large_after_five_bytes(void **state)
{
    (void)state;
    /* 256 MB announced, 1 MB allowed: refused from the header alone. */
    const uint8_t b[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    mqtt_frame f;
    assert_int_equal(mqtt_frame_parse(b, 4, 1 << 20, &f), 0);
    assert_int_equal(mqtt_frame_parse(b, 5, 1 << 20, &f), IMQTT_ETOOLARGE);
    /* Without a limit it just needs more bytes. */
    assert_int_equal(mqtt_frame_parse(b, 5, 0, &f), 0);
    assert_int_equal(f.remaining, MQTT_MAX_REMAINING);
}

static void test_size_limit_is_inclusive(void **state)
{
    (void)state;
    const uint8_t b[] = {0xC0, 0x00};
    mqtt_frame f;
    assert_int_equal(mqtt_frame_parse(b, 2, 2, &f), 2);
    assert_int_equal(mqtt_frame_parse(b, 2, 1, &f), IMQTT_ETOOLARGE);
    const uint8_t c[] = {0x30, 0x7F};
    assert_int_equal(mqtt_frame_parse(c, 2, 129, &f), 0);
    assert_int_equal(mqtt_frame_parse(c, 2, 128, &f), IMQTT_ETOOLARGE);
}

static void test_bad_length(void **state)
{
    (void)state;
    mqtt_frame f;
    const uint8_t five[] = {0x30, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(mqtt_frame_parse(five, 6, 0, &f), IMQTT_EVARINT);
    assert_int_equal(mqtt_frame_parse(five, 5, 0, &f), IMQTT_EVARINT);
    const uint8_t nonmin[] = {0xC0, 0x80, 0x00};
    assert_int_equal(mqtt_frame_parse(nonmin, 3, 0, &f), IMQTT_EVARINT);
}

static void test_back_to_back(void **state)
{
    (void)state;
    const uint8_t b[] = {0xC0, 0x00, 0xD0, 0x00, 0xE0, 0x00};
    size_t off = 0;
    int n = 0;
    mqtt_frame f;
    int rc;
    while ((rc = mqtt_frame_parse(b + off, sizeof b - off, 0, &f)) > 0) {
        off += (size_t)rc;
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_needs_more),
        cmocka_unit_test(test_whole_packet),
        cmocka_unit_test(test_partial_reports_what_it_knows),
        cmocka_unit_test(test_every_type_with_valid_flags),
        cmocka_unit_test(test_wrong_flags_every_type),
        cmocka_unit_test(test_publish_flags),
        cmocka_unit_test(test_type_zero),
        cmocka_unit_test(test_too_large_after_five_bytes),
        cmocka_unit_test(test_size_limit_is_inclusive),
        cmocka_unit_test(test_bad_length),
        cmocka_unit_test(test_back_to_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
