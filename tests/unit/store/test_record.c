/* Record layouts: encode -> decode round trips, exact bytes, and every
 * truncation of a valid record refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "record.h"

#define S(x) ((mqtt_str){(const uint8_t *)(x), sizeof(x) - 1})

static void msg_round_trip(void **state)
{
    (void)state;
    static const uint8_t props[] = {3, 0x01, 0x01, 0x01};
    store_msg m = {
        2,         true, 1700000000123ull, S("a/b"), {props, sizeof(props)},
        S("hello")};
    size_t n = store_msg_size(&m);
    assert_int_equal(n, 13 + 3 + 4 + 4 + 5);
    uint8_t *buf = malloc(n);
    store_msg_encode(&m, buf);
    /* The layout is explicit: version, qos, flags, expiry big-endian. */
    assert_int_equal(buf[0], STORE_REC_VERSION);
    assert_int_equal(buf[1], 2);
    assert_int_equal(buf[2], 1);
    assert_int_equal(store_get64(buf + 3), 1700000000123ull);
    assert_int_equal(store_get16(buf + 11), 3);
    store_msg d;
    assert_int_equal(store_msg_decode(buf, n, &d), 0);
    assert_int_equal(d.qos, 2);
    assert_true(d.retain);
    assert_int_equal(d.expiry_ms, 1700000000123ull);
    assert_memory_equal(d.topic.ptr, "a/b", 3);
    assert_int_equal(d.props.len, sizeof(props));
    assert_int_equal(d.payload.len, 5);
    assert_memory_equal(d.payload.ptr, "hello", 5);
    /* Every cut short of the fixed part or the lengths is refused. */
    for (size_t cut = 0; cut < 13 + 3 + 4 + 4; cut++)
        assert_int_equal(store_msg_decode(buf, cut, &d), IMQTT_ECORRUPT);
    buf[0] = 9; /* unknown record version */
    assert_int_equal(store_msg_decode(buf, n, &d), IMQTT_ECORRUPT);
    free(buf);
}

static void entry_round_trip(void **state)
{
    (void)state;
    uint32_t ids[] = {7, 0x01020304};
    store_entry e = {.msg_id = 42,
                     .state = STORE_ENTRY_SENT,
                     .qos = 2,
                     .dup = true,
                     .retain = false,
                     .pid = 513,
                     .nsub_ids = 2,
                     .sub_ids = ids};
    uint8_t buf[64];
    size_t n = store_entry_size(&e);
    assert_int_equal(n, 18 + 8);
    store_entry_encode(&e, buf);
    store_entry d;
    assert_int_equal(store_entry_decode(buf, n, &d), 0);
    assert_int_equal(d.msg_id, 42);
    assert_int_equal(d.state, STORE_ENTRY_SENT);
    assert_int_equal(d.qos, 2);
    assert_true(d.dup);
    assert_false(d.retain);
    assert_int_equal(d.pid, 513);
    assert_int_equal(d.nsub_ids, 2);
    assert_int_equal(store_entry_sub_id(&d, 1), 0x01020304);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(store_entry_decode(buf, cut, &d), IMQTT_ECORRUPT);
    /* A PUBREC entry has no message, any other state needs one. */
    e.state = STORE_ENTRY_PUBREC;
    store_entry_encode(&e, buf);
    assert_int_equal(store_entry_decode(buf, n, &d), IMQTT_ECORRUPT);
    e.msg_id = 0;
    store_entry_encode(&e, buf);
    assert_int_equal(store_entry_decode(buf, n, &d), 0);
    /* A count of ids larger than the record is refused, not read. */
    store_be32(buf + 14, 0xFFFFFFFF);
    assert_int_equal(store_entry_decode(buf, n, &d), IMQTT_ECORRUPT);
}

static void session_round_trip(void **state)
{
    (void)state;
    store_session s = {.client_id = S("alice@phone"),
                       .sid = 5,
                       .version = 5,
                       .expiry = 3600,
                       .disconnect_ms = 99,
                       .has_username = true,
                       .username = S("alice"),
                       .has_will = true,
                       .will_delay = 10,
                       .will_expiry = 20,
                       .will = {1, false, 0, S("w/t"), {NULL, 0}, S("bye")}};
    size_t n = store_session_size(&s);
    uint8_t *buf = malloc(n);
    store_session_encode(&s, buf);
    store_session d;
    assert_int_equal(store_session_decode(buf, n, &d), 0);
    assert_int_equal(d.sid, 5);
    assert_int_equal(d.version, 5);
    assert_int_equal(d.expiry, 3600);
    assert_int_equal(d.disconnect_ms, 99);
    assert_true(d.has_username);
    assert_memory_equal(d.username.ptr, "alice", 5);
    assert_true(d.has_will);
    assert_int_equal(d.will_delay, 10);
    assert_int_equal(d.will_expiry, 20);
    assert_memory_equal(d.will.payload.ptr, "bye", 3);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(store_session_decode(buf, cut, &d), IMQTT_ECORRUPT);
    free(buf);
    s.has_will = false;
    s.has_username = false;
    s.username = (mqtt_str){NULL, 0};
    uint8_t small[64];
    n = store_session_size(&s);
    store_session_encode(&s, small);
    assert_int_equal(store_session_decode(small, n, &d), 0);
    assert_false(d.has_will);
    assert_false(d.has_username);
}

static void keys_sort_numerically(void **state)
{
    (void)state;
    uint8_t a[STORE_QKEY_LEN], b[STORE_QKEY_LEN];
    store_qkey(a, 1, 255);
    store_qkey(b, 1, 256);
    assert_true(memcmp(a, b, sizeof(a)) < 0);
    store_qkey(b, 2, 0);
    assert_true(memcmp(a, b, sizeof(a)) < 0);
    uint8_t v[STORE_RETVAL_LEN];
    uint64_t id;
    store_retval(v, 77);
    assert_int_equal(store_retval_decode(v, sizeof(v), &id), 0);
    assert_int_equal(id, 77);
    uint8_t sv[STORE_SUBVAL_LEN], opts;
    uint32_t sid;
    store_subval(sv, 0x2d, 9);
    assert_int_equal(store_subval_decode(sv, sizeof(sv), &opts, &sid), 0);
    assert_int_equal(opts, 0x2d);
    assert_int_equal(sid, 9);
    assert_int_equal(store_subval_decode(sv, 5, &opts, &sid), IMQTT_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(msg_round_trip),
        cmocka_unit_test(entry_round_trip),
        cmocka_unit_test(session_round_trip),
        cmocka_unit_test(keys_sort_numerically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
