/* The envelope of a message between nodes (broker/nats/cluster_env.h):
 * round trips, every truncation refused, bad versions, QoS 3 and topics
 * that are not topic names refused — a NATS client can put any bytes on
 * a node's subjects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cluster_env.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>

static mqtt_str str(const char *s)
{
    return (mqtt_str){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static bool eq(mqtt_str a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static cluster_env sample(void)
{
    static const uint8_t props[] = {3, 0x26, 0, 0}; /* a block as msg keeps */
    return (cluster_env){.qos = 1,
                         .retain = true,
                         .node = str("imqtt-1"),
                         .epoch = 0x0123456789ABCDEFull,
                         .seq = 42,
                         .expiry_ms = 60000,
                         .topic = str("p2p/talk/bob"),
                         .route = str("p2p/talk/alice"),
                         .cid = str("alice@phone"),
                         .props = {props, sizeof props},
                         .payload = str("hi bob")};
}

static void test_round_trip(void **state)
{
    (void)state;
    cluster_env e = sample(), d;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int n = cluster_env_encode(&e, &buf, &cap);
    assert_true(n > 0);
    assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.qos, 1);
    assert_true(d.retain);
    assert_true(eq(d.node, "imqtt-1"));
    assert_true(d.epoch == e.epoch && d.seq == 42 && d.expiry_ms == 60000);
    assert_true(eq(d.topic, "p2p/talk/bob"));
    assert_true(eq(d.route, "p2p/talk/alice"));
    assert_true(eq(d.cid, "alice@phone"));
    assert_int_equal(d.props.len, 4);
    assert_memory_equal(d.props.ptr, e.props.ptr, 4);
    assert_true(eq(d.payload, "hi bob"));

    /* empty fields: no route, no client id, no properties, no payload */
    e.route = e.cid = (mqtt_str){NULL, 0};
    e.props = e.payload = (mqtt_bytes){NULL, 0};
    e.qos = 0;
    e.retain = false;
    n = cluster_env_encode(&e, &buf, &cap);
    assert_true(n > 0);
    assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.route.len + d.cid.len + d.props.len + d.payload.len, 0);
    assert_false(d.retain);
    free(buf);
}

static void test_truncations_refused(void **state)
{
    (void)state;
    cluster_env e = sample(), d;
    e.payload = (mqtt_bytes){NULL, 0}; /* the payload is "the rest" */
    uint8_t *buf = NULL;
    size_t cap = 0;
    int n = cluster_env_encode(&e, &buf, &cap);
    assert_true(n > 0);
    for (int cut = 0; cut < n; cut++)
        assert_int_not_equal(cluster_env_decode(buf, (size_t)cut, &d), 0);
    assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), 0);
    free(buf);
}

static void test_bad_inputs_refused(void **state)
{
    (void)state;
    cluster_env e = sample(), d;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int n = cluster_env_encode(&e, &buf, &cap);
    buf[0] = 2; /* an unknown version */
    assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), IMQTT_EMALFORMED);
    buf[0] = 1;
    buf[1] |= 3; /* QoS 3 */
    assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), IMQTT_EMALFORMED);
    /* topics that are not topic names: a wildcard, empty, bad UTF-8 */
    const char *bad[] = {"a/+", "a/#", "", "a\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e = sample();
        e.topic = str(bad[i]);
        n = cluster_env_encode(&e, &buf, &cap);
        assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), IMQTT_ETOPIC);
        e = sample();
        e.route = str(bad[i]);
        n = cluster_env_encode(&e, &buf, &cap);
        /* an empty route means "the topic" */
        assert_int_equal(cluster_env_decode(buf, (size_t)n, &d),
                         bad[i][0] ? IMQTT_ETOPIC : 0);
    }
    /* a buffer grows from nothing to a large payload */
    static uint8_t big[200000];
    e = sample();
    e.payload = (mqtt_bytes){big, sizeof big};
    n = cluster_env_encode(&e, &buf, &cap);
    assert_true(n > (int)sizeof big && cap >= (size_t)n);
    assert_int_equal(cluster_env_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.payload.len, sizeof big);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncations_refused),
        cmocka_unit_test(test_bad_inputs_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
