/* Variable byte integers: boundaries, minimal encoding, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "packet.h"

static const uint32_t boundaries[] = {
    0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455,
};

static void test_roundtrip_boundaries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++) {
        uint8_t buf[4];
        uint32_t v = boundaries[i], out = 0;
        int n = mqtt_varint_encode(v, buf);
        assert_int_equal(n, mqtt_varint_size(v));
        assert_int_equal(mqtt_varint_decode(buf, (size_t)n, &out), n);
        assert_int_equal(out, v);
        /* Every proper prefix needs more bytes. */
        for (int k = 0; k < n; k++)
            assert_int_equal(mqtt_varint_decode(buf, (size_t)k, &out), 0);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    assert_int_equal(mqtt_varint_size(0), 1);
    assert_int_equal(mqtt_varint_size(127), 1);
    assert_int_equal(mqtt_varint_size(128), 2);
    assert_int_equal(mqtt_varint_size(16383), 2);
    assert_int_equal(mqtt_varint_size(16384), 3);
    assert_int_equal(mqtt_varint_size(2097151), 3);
    assert_int_equal(mqtt_varint_size(2097152), 4);
    assert_int_equal(mqtt_varint_size(268435455), 4);
}

static void test_every_value_sampled(void **state)
{
    (void)state;
    /* A dense sweep of the small range plus a stride over the rest. */
    for (uint32_t v = 0; v <= MQTT_MAX_REMAINING;
         v += (v < 70000 ? 1 : 65521)) {
        uint8_t buf[4];
        uint32_t out;
        int n = mqtt_varint_encode(v, buf);
        assert_int_equal(mqtt_varint_decode(buf, 4, &out), n);
        assert_int_equal(out, v);
    }
}

static void test_fifth_byte_rejected(void **state)
{
    (void)state;
    uint32_t out;
    const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(mqtt_varint_decode(five, 5, &out), IMQTT_EVARINT);
    /* Known to be bad after 4 bytes: no need to wait for the 5th. */
    assert_int_equal(mqtt_varint_decode(five, 4, &out), IMQTT_EVARINT);
    const uint8_t five0[] = {0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(mqtt_varint_decode(five0, 5, &out), IMQTT_EVARINT);
}

static void test_non_minimal_rejected(void **state)
{
    (void)state;
    uint32_t out;
    const uint8_t a[] = {0x80, 0x00};
    const uint8_t b[] = {0xFF, 0x00};
    const uint8_t c[] = {0x80, 0x80, 0x00};
    const uint8_t d[] = {0x80, 0x80, 0x80, 0x00};
    const uint8_t e[] = {0xFF, 0xFF, 0x80, 0x00};
    assert_int_equal(mqtt_varint_decode(a, 2, &out), IMQTT_EVARINT);
    assert_int_equal(mqtt_varint_decode(b, 2, &out), IMQTT_EVARINT);
    assert_int_equal(mqtt_varint_decode(c, 3, &out), IMQTT_EVARINT);
    assert_int_equal(mqtt_varint_decode(d, 4, &out), IMQTT_EVARINT);
    assert_int_equal(mqtt_varint_decode(e, 4, &out), IMQTT_EVARINT);
}

static void test_trailing_bytes_ignored(void **state)
{
    (void)state;
    uint32_t out;
    const uint8_t a[] = {0x05, 0xFF, 0xFF};
    assert_int_equal(mqtt_varint_decode(a, 3, &out), 1);
    assert_int_equal(out, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_boundaries),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_every_value_sampled),
        cmocka_unit_test(test_fifth_byte_rejected),
        cmocka_unit_test(test_non_minimal_rejected),
        cmocka_unit_test(test_trailing_bytes_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
