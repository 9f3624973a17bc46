/* Queue limits (docs/config.md max_queued_messages, max_queued_bytes;
 * README "Choices"; docs/operations.md drop causes): what waits beyond the
 * window is bounded by count and by payload bytes, the overflow is dropped
 * for that session and counted by cause, what is delivered keeps the
 * publish order; QoS 0 is never queued for an offline session; a message
 * whose Message Expiry runs out while queued is dropped, and one that is
 * delivered carries the interval that is left.
 *
 * Every test runs twice: with store durability "none" (the queue is in
 * memory) and "process" (a persistent session's queue is in LMDB). */
#include "sm_harness.h"

#define NONE_STORE    SM_NONE
#define PROCESS_STORE SM_PROCESS "}"

static sm_broker *start(void **state, const char *limits)
{
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s, %s", (const char *)*state, limits);
    return sm_start(cfg);
}

/* A persistent v5 session subscribed to filter at QoS 1. */
static sm_client *subscriber(sm_broker *b, const char *id, const char *filter)
{
    sm_client *s = sm_connect(b, id, (sm_conn_opts){.expiry = 3600});
    assert_int_equal(sm_subscribe(s, filter, 1), 1);
    return s;
}

static sm_client *resume(sm_broker *b, const char *id)
{
    sm_client *s =
        sm_connect(b, id, (sm_conn_opts){.resume = true, .expiry = 3600});
    assert_true(s->session_present);
    return s;
}

/* Publish payloads[0..n) at QoS 1, one at a time (the broker's Receive
 * Maximum is the small window of these tests); each is accepted (PUBACK
 * 0) whatever a subscriber's queue does with it. */
static void publish_all(sm_client *pub, const char *topic,
                        const char *const *payloads, int n)
{
    static uint16_t pid;
    for (int i = 0; i < n; i++) {
        sm_publish(pub, topic, payloads[i], 1, ++pid);
        const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
        assert_int_equal(a->u.ack.packet_id, pid);
        assert_int_equal(a->u.ack.reason, 0);
    }
}

static const char *const TEN[10] = {"m0", "m1", "m2", "m3", "m4",
                                    "m5", "m6", "m7", "m8", "m9"};

/* Receive exactly the payloads want[0..n), in order, acknowledging each
 * once it is in (the next comes as the window frees). */
static void receive_in_order(sm_broker *b, sm_client *s,
                             const char *const *want, int n)
{
    for (int i = 0; i < n; i++) {
        sm_msg m = sm_expect_publish(s);
        assert_string_equal(m.payload, want[i]);
        sm_ack(s, MQTT_PUBACK, m.pid, 0);
    }
    sm_settle(b);
    sm_expect_nothing(s);
}

/* Online subscriber that does not acknowledge: a window of 2, a queue of
 * 3, the other 5 dropped (cause queue_full); then m0..m4 in order. */
static void count_limit_online(void **state)
{
    sm_broker *b = start(
        state, "\"max_inflight_messages\": 2, \"max_queued_messages\": 3");
    sm_client *sub = subscriber(b, "sub", "q/t");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_all(pub, "q/t", TEN, 10);
    sm_settle(b);
    assert_int_equal(sm_pending(sub), 2);
    assert_int_equal(sm_metric(b, METRIC_DROP_QUEUE_FULL), 5);
    assert_int_equal(b->srv.stats.msgs_dropped, 5);
    receive_in_order(b, sub, TEN, 5);
    assert_int_equal(b->srv.stats.msgs_dropped, 5);
    sm_stop(b);
}

/* Offline, nothing is in a window: all of max_queued_messages is the
 * queue. 3 kept, 7 dropped; on resume the 3 in order. */
static void count_limit_offline(void **state)
{
    sm_broker *b = start(
        state, "\"max_inflight_messages\": 2, \"max_queued_messages\": 3");
    sm_disconnect(subscriber(b, "sub", "q/t"));
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_all(pub, "q/t", TEN, 10);
    sm_settle(b);
    assert_int_equal(sm_metric(b, METRIC_DROP_QUEUE_FULL), 7);
    sm_client *sub = resume(b, "sub");
    sm_settle(b);
    assert_int_equal(sm_pending(sub), 2); /* the window */
    receive_in_order(b, sub, TEN, 3);
    assert_int_equal(b->srv.stats.msgs_dropped, 7);
    sm_stop(b);
}

static const char *const TENB[6] = {"b0-456789", "b1-456789", "b2-456789",
                                    "b3-456789", "b4-456789", "b5-456789"};

/* max_queued_bytes 25 with 9-byte payloads: two wait beyond the window
 * (18 bytes), a third would make 27: dropped (cause queue_bytes). The
 * window's own messages do not count. */
static void bytes_limit_online(void **state)
{
    sm_broker *b =
        start(state, "\"max_inflight_messages\": 2, \"max_queued_bytes\": 25");
    sm_client *sub = subscriber(b, "sub", "q/t");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_all(pub, "q/t", TENB, 6);
    sm_settle(b);
    assert_int_equal(sm_pending(sub), 2);
    assert_int_equal(sm_metric(b, METRIC_DROP_QUEUE_BYTES), 2);
    assert_int_equal(sm_metric(b, METRIC_DROP_QUEUE_FULL), 0);
    receive_in_order(b, sub, TENB, 4);
    sm_stop(b);
}

static void bytes_limit_offline(void **state)
{
    sm_broker *b =
        start(state, "\"max_inflight_messages\": 2, \"max_queued_bytes\": 25");
    sm_disconnect(subscriber(b, "sub", "q/t"));
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_all(pub, "q/t", TENB, 6);
    sm_settle(b);
    assert_int_equal(sm_metric(b, METRIC_DROP_QUEUE_BYTES), 4);
    sm_client *sub = resume(b, "sub");
    receive_in_order(b, sub, TENB, 2);
    /* Delivered and acknowledged: the bytes are free again, so a message
     * published while it is offline again is queued. */
    sm_disconnect(sub);
    publish_all(pub, "q/t", TENB + 2, 2);
    sm_settle(b);
    assert_int_equal(sm_metric(b, METRIC_DROP_QUEUE_BYTES), 4);
    sub = resume(b, "sub");
    receive_in_order(b, sub, TENB + 2, 2);
    sm_stop(b);
}

/* QoS 0 for an offline session is dropped (cause qos0_offline), also a
 * QoS 1 message that a QoS 0 subscription downgrades; QoS 1 still
 * queues. */
static void qos0_not_queued_offline(void **state)
{
    sm_broker *b = start(state, "\"max_queued_messages\": 100");
    sm_client *sub = subscriber(b, "sub", "z/1");
    assert_int_equal(sm_subscribe(sub, "z/0", 0), 0);
    sm_disconnect(sub);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    sm_publish(pub, "z/1", "zero-a", 0, 0);
    sm_publish(pub, "z/1", "zero-b", 0, 0);
    sm_publish(pub, "z/0", "downgraded", 1, 1);
    sm_expect(pub, MQTT_PUBACK);
    sm_publish(pub, "z/1", "one", 1, 2);
    sm_expect(pub, MQTT_PUBACK);
    sm_settle(b);
    assert_int_equal(sm_metric(b, METRIC_DROP_OFFLINE_QOS0), 3);
    sub = resume(b, "sub");
    static const char *const want[1] = {"one"};
    receive_in_order(b, sub, want, 1);
    /* Online, QoS 0 goes out at once. */
    sm_publish(pub, "z/1", "zero-c", 0, 0);
    sm_msg m = sm_expect_publish(sub);
    assert_int_equal(m.qos, 0);
    assert_string_equal(m.payload, "zero-c");
    sm_stop(b);
}

static void publish_expiring(sm_client *pub, const char *payload,
                             uint32_t expiry, uint16_t pid)
{
    sm_publish_o(pub, "e/t", payload, 1, pid, (sm_pub_opts){.expiry = expiry});
    const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
    assert_int_equal(a->u.ack.packet_id, pid);
    assert_int_equal(a->u.ack.reason, 0);
}

/* Let more than `ms` pass on the loop's clock. */
static void pass_time(sm_broker *b, unsigned ms)
{
    usleep(ms * 1000);
    sm_settle(b);
}

/* Offline queue: the one with 1 s left is dropped when its turn comes
 * after 1.3 s (cause expired); the one with 60 s arrives with what is
 * left of them; the one without expiry arrives without. */
static void expiry_drops_from_offline_queue(void **state)
{
    sm_broker *b = start(state, "\"max_queued_messages\": 100");
    sm_disconnect(subscriber(b, "sub", "e/t"));
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_expiring(pub, "short", 1, 1);
    publish_expiring(pub, "long", 60, 2);
    publish_expiring(pub, "none", 0, 3);
    pass_time(b, 1300);
    sm_client *sub = resume(b, "sub");
    sm_msg m = sm_expect_publish(sub);
    assert_string_equal(m.payload, "long");
    assert_true(m.has_expiry);
    /* What is left of the 60 s (less than 60; generous for a loaded box). */
    assert_in_range(m.expiry, 30, 59);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    m = sm_expect_publish(sub);
    assert_string_equal(m.payload, "none");
    assert_false(m.has_expiry);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    assert_int_equal(sm_metric(b, METRIC_DROP_EXPIRED), 1);
    sm_stop(b);
}

/* Online behind a full window (1): the expired one is skipped when the
 * window frees. */
static void expiry_drops_behind_full_window(void **state)
{
    sm_broker *b = start(state, "\"max_inflight_messages\": 1");
    sm_client *sub = subscriber(b, "sub", "e/t");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_expiring(pub, "first", 0, 1);
    publish_expiring(pub, "short", 1, 2);
    publish_expiring(pub, "last", 0, 3);
    sm_msg m = sm_expect_publish(sub);
    assert_string_equal(m.payload, "first");
    pass_time(b, 1300);
    sm_expect_nothing(sub);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    m = sm_expect_publish(sub);
    assert_string_equal(m.payload, "last");
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    assert_int_equal(sm_metric(b, METRIC_DROP_EXPIRED), 1);
    sm_stop(b);
}

/* Each test with durability none, then process, named accordingly. */
#define BOTH(fn)                                 \
    {.name = #fn "/none",                        \
     .test_func = fn,                            \
     .initial_state = (void *)NONE_STORE},       \
    {                                            \
        .name = #fn "/process", .test_func = fn, \
        .initial_state = (void *)PROCESS_STORE   \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(count_limit_online),
        BOTH(count_limit_offline),
        BOTH(bytes_limit_online),
        BOTH(bytes_limit_offline),
        BOTH(qos0_not_queued_offline),
        BOTH(expiry_drops_from_offline_queue),
        BOTH(expiry_drops_behind_full_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
