/* mqtt_utf8_check: the well-formedness rules of MQTT-1.5.4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "utf8.h"

#include <string.h>

#define CHECK(lit) mqtt_utf8_check((const uint8_t *)(lit), sizeof(lit) - 1)

static void test_valid(void **state)
{
    (void)state;
    assert_int_equal(CHECK(""), 0);
    assert_int_equal(CHECK("sport/tennis/player1"), 0);
    assert_int_equal(CHECK("\x7f"), 0);              /* DEL is allowed */
    assert_int_equal(CHECK("\x01\x1f"), 0);          /* controls too */
    assert_int_equal(CHECK("\xc2\x80"), 0);          /* U+0080 */
    assert_int_equal(CHECK("\xdf\xbf"), 0);          /* U+07FF */
    assert_int_equal(CHECK("\xe0\xa0\x80"), 0);      /* U+0800 */
    assert_int_equal(CHECK("\xed\x9f\xbf"), 0);      /* U+D7FF */
    assert_int_equal(CHECK("\xee\x80\x80"), 0);      /* U+E000 */
    assert_int_equal(CHECK("\xef\xbf\xbf"), 0);      /* U+FFFF */
    assert_int_equal(CHECK("\xef\xbb\xbf"), 0);      /* BOM */
    assert_int_equal(CHECK("\xf0\x90\x80\x80"), 0);  /* U+10000 */
    assert_int_equal(CHECK("\xf0\x9f\x98\x80"), 0);  /* U+1F600 */
    assert_int_equal(CHECK("\xf4\x8f\xbf\xbf"), 0);  /* U+10FFFF */
    assert_int_equal(CHECK("A\xf0\xaa\x9b\x94"), 0); /* spec 1.5.4 */
    assert_int_equal(CHECK("caf\xc3\xa9/\xe4\xb8\xad\xe6\x96\x87"), 0);
}

static void test_overlong(void **state)
{
    (void)state;
    assert_int_equal(CHECK("\xc0\x80"), IMQTT_EUTF8); /* overlong U+0000 */
    assert_int_equal(CHECK("\xc1\xbf"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xe0\x80\x80"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xe0\x9f\xbf"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xf0\x80\x80\x80"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xf0\x8f\xbf\xbf"), IMQTT_EUTF8);
}

static void test_surrogates(void **state)
{
    (void)state;
    assert_int_equal(CHECK("\xed\xa0\x80"), IMQTT_EUTF8); /* U+D800 */
    assert_int_equal(CHECK("\xed\xbf\xbf"), IMQTT_EUTF8); /* U+DFFF */
    /* CESU-8 pair for U+1F600 */
    assert_int_equal(CHECK("\xed\xa0\xbd\xed\xb8\x80"), IMQTT_EUTF8);
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(CHECK("\xf4\x90\x80\x80"), IMQTT_EUTF8); /* U+110000 */
    assert_int_equal(CHECK("\xf5\x80\x80\x80"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xf8\x88\x80\x80\x80"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xfe"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xff"), IMQTT_EUTF8);
}

static void test_nul(void **state)
{
    (void)state;
    assert_int_equal(CHECK("\0"), IMQTT_EUTF8);
    assert_int_equal(CHECK("a\0b"), IMQTT_EUTF8);
    /* inside and at each end of an 8-byte fast-path word */
    assert_int_equal(CHECK("abcdefg\0"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\0bcdefgh"), IMQTT_EUTF8);
    assert_int_equal(CHECK("abcdefghijklmn\0p"), IMQTT_EUTF8);
}

static void test_stray_and_truncated(void **state)
{
    (void)state;
    assert_int_equal(CHECK("\x80"), IMQTT_EUTF8);
    assert_int_equal(CHECK("a\xbf"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xc3"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xe4\xb8"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xf0\x9f\x98"), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xc3("), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xe4\xb8("), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xf0\x9f\x98("), IMQTT_EUTF8);
    assert_int_equal(CHECK("\xc3\xa9\xa9"), IMQTT_EUTF8); /* extra cont */
}

/* The length bounds the scan: a valid prefix of a longer buffer passes,
 * and a sequence cut by the length is truncated even if the bytes after
 * the view would complete it. */
static void test_length_bounds(void **state)
{
    (void)state;
    const uint8_t buf[] = "abc\xf0\x9f\x98\x80";
    assert_int_equal(mqtt_utf8_check(buf, 3), 0);
    assert_int_equal(mqtt_utf8_check(buf, 5), IMQTT_EUTF8);
    assert_int_equal(mqtt_utf8_check(buf, 6), IMQTT_EUTF8);
    assert_int_equal(mqtt_utf8_check(buf, 7), 0);
    assert_int_equal(mqtt_utf8_check(buf, 8), IMQTT_EUTF8); /* the NUL */
    assert_int_equal(mqtt_utf8_check(NULL, 0), 0);
}

/* Every position of a bad byte in a long ASCII run, so the word-at-a-time
 * path and the byte path both see it. */
static void test_fast_path_positions(void **state)
{
    (void)state;
    uint8_t buf[40];
    for (size_t bad = 0; bad < sizeof buf; bad++) {
        memset(buf, 'x', sizeof buf);
        assert_int_equal(mqtt_utf8_check(buf, sizeof buf), 0);
        buf[bad] = 0x80;
        assert_int_equal(mqtt_utf8_check(buf, sizeof buf), IMQTT_EUTF8);
        buf[bad] = 0;
        assert_int_equal(mqtt_utf8_check(buf, sizeof buf), IMQTT_EUTF8);
    }
    /* a valid 4-byte sequence at every offset */
    for (size_t at = 0; at + 4 <= sizeof buf; at++) {
        memset(buf, 'x', sizeof buf);
        memcpy(buf + at, "\xf0\x9f\x98\x80", 4);
        assert_int_equal(mqtt_utf8_check(buf, sizeof buf), 0);
    }
}

/* Cross-check the table-driven decoder against a reference built from
 * the definitions, for every 1-, 2- and 3-byte input, and every 4-byte
 * input with a valid tail byte pattern. */
static int ref_check(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n;
        uint8_t b = s[i];
        if (b < 0x80) {
            cp = b;
            n = 1;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F;
            n = 2;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F;
            n = 3;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07;
            n = 4;
        } else {
            return IMQTT_EUTF8;
        }
        if (len - i < n)
            return IMQTT_EUTF8;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return IMQTT_EUTF8;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || cp == 0 ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return IMQTT_EUTF8;
        i += n;
    }
    return 0;
}

static void test_exhaustive_short(void **state)
{
    (void)state;
    uint8_t s[4];
    for (uint32_t v = 0; v < (1u << 24); v++) {
        s[0] = (uint8_t)(v >> 16);
        s[1] = (uint8_t)(v >> 8);
        s[2] = (uint8_t)v;
        for (size_t len = 1; len <= 3; len++) {
            if (len < 3 && (v & ((1u << (8 * (3 - len))) - 1)) != 0)
                continue; /* shorter inputs once only */
            if (mqtt_utf8_check(s, len) != ref_check(s, len))
                fail_msg("mismatch at %06x len %zu", (unsigned)v, len);
        }
    }
    for (uint32_t v = 0; v < (1u << 16); v++) {
        s[0] = (uint8_t)(0xF0 | (v >> 12 & 0x0F));
        s[1] = (uint8_t)(v >> 4);
        s[2] = (uint8_t)(0x80 | (v & 0x0F) << 2);
        s[3] = (uint8_t)(0x80 | (v & 0x3F));
        if (mqtt_utf8_check(s, 4) != ref_check(s, 4))
            fail_msg("mismatch at 4-byte %04x", (unsigned)v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_stray_and_truncated),
        cmocka_unit_test(test_length_bounds),
        cmocka_unit_test(test_fast_path_positions),
        cmocka_unit_test(test_exhaustive_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
