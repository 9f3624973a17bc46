/* Shared subscriptions (README: "$share/{group}/{filter} (round robin,
 * preferring a member that can take the message now; a leaving member's
 * messages in memory go to another member"): each message to exactly one
 * member of a group, in turn; a member whose window is full is passed
 * over while another can take the message; when none can, the turn
 * decides and the message waits in that member's queue; what a leaving
 * member held goes to another member, in order. A plain subscription to
 * the same topic gets every message besides.
 *
 * The choice is run twice: members with clean sessions in memory, and
 * persistent members (Session Expiry 3600) with a durable store, whose
 * queues are in LMDB. */
#include "sm_harness.h"

#define LIMITS "\"max_inflight_messages\": 8"
#define CFG    SM_NONE ", " LIMITS
#define SHARE  "$share/g/s/t"

typedef struct variant {
    const char *config;
    uint32_t expiry; /* of the members' sessions */
} variant;

static const variant MEMORY = {CFG, 0};
static const variant DURABLE = {SM_PROCESS "}, " LIMITS, 3600};

/* The variant of the running test (cmocka runs one at a time). */
static const variant *current = &MEMORY;

static sm_broker *start(void **state)
{
    current = *state;
    return sm_start(current->config);
}

static sm_client *member(sm_broker *b, const char *id, uint16_t receive_max)
{
    sm_client *m = sm_connect(
        b, id,
        (sm_conn_opts){.receive_max = receive_max, .expiry = current->expiry});
    assert_int_equal(sm_subscribe(m, SHARE, 1), 1);
    return m;
}

static void publish(sm_client *pub, const char *payload, uint8_t qos)
{
    static uint16_t pid;
    if (++pid == 0)
        pid = 1;
    sm_publish(pub, "s/t", payload, qos, pid);
    if (qos)
        sm_expect(pub, MQTT_PUBACK);
}

/* After settling: the one PUBLISH cl got, acknowledged if `ack`. */
static sm_msg got(sm_client *cl, bool ack)
{
    sm_msg m = sm_expect_publish(cl);
    if (ack && m.qos)
        sm_ack(cl, MQTT_PUBACK, m.pid, 0);
    return m;
}

static void round_robin_exactly_one(void **state)
{
    sm_broker *b = start(state);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    sm_publish_o(pub, "s/t", "retained", 0, 0, (sm_pub_opts){.retain = true});
    sm_client *a = member(b, "a", 0);
    sm_client *c = member(b, "c", 0);
    sm_client *plain = sm_connect(b, "plain", (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(plain, "s/t", 1), 1);
    sm_settle(b);
    /* Retained messages are not sent to a share (handle_subscribe.c). */
    sm_expect_nothing(a);
    sm_expect_nothing(c);
    assert_string_equal(got(plain, true).payload, "retained");

    char payload[16];
    for (int i = 0; i < 8; i++) {
        snprintf(payload, sizeof(payload), "m%d", i);
        publish(pub, payload, i < 6 ? 1 : 0);
        sm_settle(b);
        /* Members in the order they joined: a, c, a, c, ... */
        sm_client *turn = i % 2 == 0 ? a : c, *other = i % 2 == 0 ? c : a;
        sm_msg m = got(turn, true);
        assert_string_equal(m.payload, payload);
        assert_int_equal(m.qos, i < 6 ? 1 : 0);
        assert_string_equal(got(plain, true).payload, payload);
        sm_settle(b);
        sm_expect_nothing(turn);
        sm_expect_nothing(other);
        sm_expect_nothing(plain);
    }
    sm_stop(b);
}

/* a can take one message at a time and does not acknowledge; c does. */
static void prefers_member_that_can_take_it(void **state)
{
    sm_broker *b = start(state);
    sm_client *a = member(b, "a", 1);
    sm_client *c = member(b, "c", 0);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    static const char *const who[4] = {"a", "c", "c", "c"};
    sm_msg held = {0};
    char payload[16];
    for (int i = 0; i < 4; i++) {
        snprintf(payload, sizeof(payload), "m%d", i);
        publish(pub, payload, 1);
        sm_settle(b);
        sm_client *turn = who[i][0] == 'a' ? a : c;
        sm_msg m = got(turn, turn == c);
        assert_string_equal(m.payload, payload);
        if (turn == a)
            held = m;
        sm_settle(b);
        sm_expect_nothing(a);
        sm_expect_nothing(c);
    }
    session *sa = sm_session(b, "a");
    assert_int_equal(sa->queue.count + sa->disk_count, 0);
    /* a's window is free again: its turn comes back. */
    sm_ack(a, MQTT_PUBACK, held.pid, 0);
    publish(pub, "m4", 1);
    sm_settle(b);
    assert_string_equal(got(a, true).payload, "m4");
    sm_settle(b);
    sm_expect_nothing(c);
    sm_stop(b);
}

/* Neither can take it: the turn decides, and the message waits in that
 * member's queue (not dropped, not sent twice). */
static void all_full_turn_decides(void **state)
{
    sm_broker *b = start(state);
    sm_client *a = member(b, "a", 1);
    sm_client *c = member(b, "c", 1);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish(pub, "m0", 1);
    publish(pub, "m1", 1);
    publish(pub, "m2", 1);
    publish(pub, "m3", 1);
    sm_settle(b);
    sm_msg a0 = got(a, false), c1 = got(c, false);
    assert_string_equal(a0.payload, "m0");
    assert_string_equal(c1.payload, "m1");
    sm_expect_nothing(a);
    sm_expect_nothing(c);
    /* Waiting in memory, or in the store for persistent sessions. */
    session *sa = sm_session(b, "a"), *sc = sm_session(b, "c");
    assert_int_equal(sa->queue.count + sa->disk_count, 1);
    assert_int_equal(sc->queue.count + sc->disk_count, 1);
    sm_ack(a, MQTT_PUBACK, a0.pid, 0);
    sm_ack(c, MQTT_PUBACK, c1.pid, 0);
    sm_settle(b);
    assert_string_equal(got(a, true).payload, "m2");
    assert_string_equal(got(c, true).payload, "m3");
    sm_settle(b);
    sm_expect_nothing(a);
    sm_expect_nothing(c);
    assert_int_equal(b->srv.stats.msgs_dropped, 0);
    sm_stop(b);
}

/* a holds m0 in flight and m1 queued, then its connection (and clean
 * session) ends: c, who joined later, gets both, in order. */
static void leaving_member_hands_over(void **state)
{
    (void)state;
    current = &MEMORY; /* clean sessions: they end with the connection */
    sm_broker *b = sm_start(CFG);
    sm_client *a = member(b, "a", 1);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish(pub, "m0", 1);
    publish(pub, "m1", 1);
    sm_settle(b);
    assert_string_equal(got(a, false).payload, "m0");
    sm_expect_nothing(a);
    sm_client *c = member(b, "c", 0);
    sm_settle(b);
    sm_expect_nothing(c);
    sm_close(a);
    sm_settle(b);
    assert_string_equal(got(c, true).payload, "m0");
    assert_string_equal(got(c, true).payload, "m1");
    sm_settle(b);
    sm_expect_nothing(c);
    sm_stop(b);
}

/* No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]:
 * DISCONNECT 0x82. */
static void no_local_on_share_refused(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    sm_client *a = sm_connect(b, "a", (sm_conn_opts){0});
    uint8_t entries[64];
    mqtt_sub_entry e = {MQTT_STR_LIT(SHARE), {.qos = 1, .no_local = true}};
    int n = mqtt_sub_encode_entries(&e, 1, MQTT_V5, entries, sizeof(entries));
    assert_true(n > 0);
    mqtt_packet p = {.type = MQTT_SUBSCRIBE};
    p.u.subscribe.packet_id = 1;
    p.u.subscribe.entries = (mqtt_bytes){entries, (uint32_t)n};
    p.u.subscribe.count = 1;
    sm_send(a, &p);
    const mqtt_packet *d = sm_expect(a, MQTT_DISCONNECT);
    assert_int_equal(d->u.disconnect.reason, MQTT_RC_PROTOCOL_ERROR);
    sm_expect_closed(a);
    sm_stop(b);
}

#define BOTH(fn)                                 \
    {.name = #fn "/memory",                      \
     .test_func = fn,                            \
     .initial_state = (void *)&MEMORY},          \
    {                                            \
        .name = #fn "/durable", .test_func = fn, \
        .initial_state = (void *)&DURABLE        \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(round_robin_exactly_one),
        BOTH(prefers_member_that_can_take_it),
        BOTH(all_full_turn_decides),
        cmocka_unit_test(leaving_member_hands_over),
        cmocka_unit_test(no_local_on_share_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
