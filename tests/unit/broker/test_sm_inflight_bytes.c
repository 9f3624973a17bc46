/* The window's byte bound (docs/config.md max_inflight_bytes): a
 * subscriber that does not acknowledge holds at most max_inflight_bytes of
 * payload in flight (the message that crosses the bound still goes, the
 * next waits in the queue), whatever max_inflight_messages allows; each
 * PUBACK that brings it under the bound lets the next one out, in order;
 * and one message larger than the bound still goes when nothing is in
 * flight. In memory and through the store. */
#include "sm_harness.h"

#define PAYLOAD 3000

static void payload_of(char *buf, int k)
{
    memset(buf, 'a' + k % 26, PAYLOAD);
    snprintf(buf, 16, "m%d:", k);
    buf[strlen(buf)] = 'x'; /* snprintf's NUL inside the payload */
    buf[PAYLOAD] = '\0';
}

static void window_bounded_by_bytes(const char *durability)
{
    char cfg[256];
    snprintf(cfg, sizeof(cfg),
             "%s, \"max_inflight_messages\": 100,"
             " \"max_inflight_bytes\": 10000",
             durability);
    sm_broker *b = sm_start(cfg);
    sm_conn_opts persistent = {.resume = true, .expiry = 600};
    bool durable = strstr(durability, "process") != NULL;
    sm_client *sub =
        sm_connect(b, "sub", durable ? persistent : (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(sub, "b/t", 1), 1);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    static char payload[PAYLOAD + 1];
    for (int k = 0; k < 8; k++) {
        payload_of(payload, k);
        sm_publish(pub, "b/t", payload, 1, (uint16_t)(k + 1));
        sm_expect(pub, MQTT_PUBACK);
    }
    sm_settle(b);

    /* 3 x 3000 = 9000 < 10000: a fourth goes, crossing the bound; the
     * fifth waits. */
    uint16_t pids[8];
    for (int k = 0; k < 4; k++) {
        sm_msg m = sm_expect_publish(sub);
        char want[16];
        snprintf(want, sizeof(want), "m%d:", k);
        assert_memory_equal(m.payload, want, strlen(want));
        pids[k] = m.pid;
    }
    sm_expect_nothing(sub);
    session *s = sm_session(b, "sub");
    assert_int_equal(s->inflight.count, 4);
    assert_int_equal(s->inflight_bytes, 4 * PAYLOAD);

    /* One ack: 9000 in flight, under the bound again: exactly one more. */
    for (int k = 4; k < 8; k++) {
        sm_ack(sub, MQTT_PUBACK, pids[k - 4], 0);
        sm_settle(b);
        sm_msg m = sm_expect_publish(sub);
        char want[16];
        snprintf(want, sizeof(want), "m%d:", k);
        assert_memory_equal(m.payload, want, strlen(want));
        pids[k] = m.pid;
        sm_expect_nothing(sub);
    }
    for (int k = 4; k < 8; k++)
        sm_ack(sub, MQTT_PUBACK, pids[k], 0);
    sm_settle(b);
    assert_int_equal(s->inflight.count, 0);
    assert_int_equal(s->inflight_bytes, 0);
    sm_stop(b);
}

static void bounded_in_memory(void **state)
{
    (void)state;
    window_bounded_by_bytes(SM_NONE);
}

static void bounded_through_the_store(void **state)
{
    (void)state;
    window_bounded_by_bytes(SM_PROCESS "}");
}

/* A message larger than the bound is not stuck: it goes alone. */
static void one_large_message_still_goes(void **state)
{
    (void)state;
    sm_broker *b = sm_start(SM_NONE ", \"max_inflight_bytes\": 1000");
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(sub, "b/t", 1), 1);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    static char payload[PAYLOAD + 1];
    for (int k = 0; k < 2; k++) {
        payload_of(payload, k);
        sm_publish(pub, "b/t", payload, 1, (uint16_t)(k + 1));
        sm_expect(pub, MQTT_PUBACK);
    }
    sm_settle(b);
    sm_msg m = sm_expect_publish(sub);
    sm_expect_nothing(sub); /* the second waits for the first's ack */
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    m = sm_expect_publish(sub);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    sm_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounded_in_memory),
        cmocka_unit_test(bounded_through_the_store),
        cmocka_unit_test(one_large_message_still_goes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
