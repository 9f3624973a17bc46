/* user@device parsing and validation: edge cases, and every byte that
 * could carry a level or a wildcard into a topic (BAD_INPUTS row 11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "identity.h"

#define S(lit) mqtt_str_from((lit), strlen(lit))

static void assert_str(mqtt_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

static void test_valid(void **state)
{
    (void)state;
    im_identity id;
    assert_int_equal(im_identity_parse(S("alice@phone"), &id), 0);
    assert_str(id.user, "alice");
    assert_str(id.device, "phone");
    assert_int_equal(im_identity_parse(S("a@b"), &id), 0);
    assert_str(id.user, "a");
    assert_str(id.device, "b");
    assert_int_equal(im_identity_parse(S("A.b_c-9@Dev-1.x_Y"), &id), 0);
    assert_str(id.user, "A.b_c-9");
    assert_str(id.device, "Dev-1.x_Y");
    assert_true(im_identity_valid(S("bob@web")));
}

static void test_missing_parts(void **state)
{
    (void)state;
    const char *bad[] = {"",      "@",     "@dev", "user@",
                         "alice", "a@b@c", "@@",   "a@@b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        im_identity id = {S("x"), S("y")};
        assert_int_equal(im_identity_parse(S(bad[i]), &id), IMQTT_ECLIENTID);
        /* nothing half-filled on failure */
        assert_null(id.user.ptr);
        assert_null(id.device.ptr);
        assert_false(im_identity_valid(S(bad[i])));
    }
    im_identity id;
    assert_int_equal(im_identity_parse((mqtt_str){NULL, 0}, &id),
                     IMQTT_ECLIENTID);
}

static void test_lengths(void **state)
{
    (void)state;
    char buf[200];
    memset(buf, 'u', 64);
    memcpy(buf + 64, "@d", 3);
    assert_true(im_identity_valid(S(buf))); /* 64: the limit */
    memset(buf, 'u', 65);
    memcpy(buf + 65, "@d", 3);
    assert_false(im_identity_valid(S(buf))); /* 65-char user */
    buf[0] = 'u';
    buf[1] = '@';
    memset(buf + 2, 'd', 64);
    buf[66] = '\0';
    assert_true(im_identity_valid(S(buf)));
    memset(buf + 2, 'd', 65);
    buf[67] = '\0';
    assert_false(im_identity_valid(S(buf))); /* 65-char device */
}

static void test_topic_bytes(void **state)
{
    (void)state;
    const char *bad[] = {
        "+@dev",
        "#@dev",
        "a/b@dev",
        "user@+",
        "user@#",
        "user@d/e",
        "us er@dev",
        "user@dev\n",
        "%u@dev",
        "user@%d",
        "$SYS@dev",
        "us:er@dev",
        "j\xc3\xbcrgen@dev",
        /* ü */ "user@\xe6\x89\x8b\xe6\x9c\xba",
        "user@dev\xef\xbf\xbd",
        "\xf0\x9f\x98\x80@dev", /* emoji */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(im_identity_valid(S(bad[i])));
    /* an embedded NUL is just another byte outside the alphabet */
    assert_false(im_identity_valid((mqtt_str){(const uint8_t *)"us\0r@d", 6}));
}

static void test_part_valid(void **state)
{
    (void)state;
    assert_true(im_id_part_valid(S("group-1")));
    assert_false(im_id_part_valid(S("")));
    assert_false(im_id_part_valid((mqtt_str){NULL, 0}));
    assert_false(im_id_part_valid(S("a@b")));
    assert_false(im_id_part_valid(S("+")));
    assert_false(im_id_part_valid(S("#")));
    assert_false(im_id_part_valid(S("a/b")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),      cmocka_unit_test(test_missing_parts),
        cmocka_unit_test(test_lengths),    cmocka_unit_test(test_topic_bytes),
        cmocka_unit_test(test_part_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
