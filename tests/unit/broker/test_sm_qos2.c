/* QoS 2 both ways (README "exactly-once on receipt", DESIGN.md invariants,
 * docs/store.md "Start-up").
 *
 * Incoming: PUBLISH -> PUBREC; the same id again before PUBREL is
 * answered with PUBREC and not forwarded twice; PUBREL -> PUBCOMP; a
 * PUBREL for an id we do not hold -> PUBCOMP 0x92 (v5); after PUBCOMP the
 * id is new again. The id is held across a reconnect and a restart.
 * Outgoing: PUBLISH -> client PUBREC -> broker PUBREL -> client PUBCOMP,
 * the window slot held until PUBCOMP; a PUBREC with a failure code ends
 * the flow; a PUBREC for an unknown id gets PUBREL 0x92; a reconnect
 * resends PUBREL (not PUBLISH) once PUBREC was received, and the PUBLISH
 * with DUP and the same id before that.
 *
 * Tests that involve sessions run with durability none and process. */
#include "sm_harness.h"

#define NONE_STORE    SM_NONE
#define PROCESS_STORE SM_PROCESS "}"

static sm_broker *start(void **state, const char *more)
{
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s%s%s", (const char *)*state,
             more[0] ? ", " : "", more);
    return sm_start(cfg);
}

static bool durable(void **state)
{
    return strstr((const char *)*state, "process") != NULL;
}

static void expect_ack(sm_client *cl, uint8_t type, uint16_t pid,
                       uint8_t reason)
{
    const mqtt_packet *p = sm_expect(cl, type);
    assert_int_equal(p->u.ack.packet_id, pid);
    assert_int_equal(p->u.ack.reason, reason);
}

/* A subscriber's side of one outgoing QoS 2 flow, to its end. */
static sm_msg receive_qos2(sm_client *sub)
{
    sm_msg m = sm_expect_publish(sub);
    assert_int_equal(m.qos, 2);
    sm_ack(sub, MQTT_PUBREC, m.pid, 0);
    expect_ack(sub, MQTT_PUBREL, m.pid, 0);
    sm_ack(sub, MQTT_PUBCOMP, m.pid, 0);
    return m;
}

static void incoming_flow(void **state, uint8_t version)
{
    sm_broker *b = start(state, "");
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(sub, "q2/t", 2), 2);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){.version = version});

    sm_publish(pub, "q2/t", "x1", 2, 7);
    expect_ack(pub, MQTT_PUBREC, 7, 0);
    sm_msg m = receive_qos2(sub);
    assert_string_equal(m.payload, "x1");

    /* The publisher did not see our PUBREC (say) and sends it again. */
    sm_publish_o(pub, "q2/t", "x1", 2, 7, (sm_pub_opts){.dup = true});
    expect_ack(pub, MQTT_PUBREC, 7, 0);
    sm_settle(b);
    sm_expect_nothing(sub);

    sm_ack(pub, MQTT_PUBREL, 7, 0);
    expect_ack(pub, MQTT_PUBCOMP, 7, 0);
    /* Released before: still completed, with 0x92 in v5 [MQTT-4.3.3-11]
     * (3.1.1 acks carry no reason). */
    sm_ack(pub, MQTT_PUBREL, 7, 0);
    expect_ack(pub, MQTT_PUBCOMP, 7,
               version == MQTT_V5 ? MQTT_RC_PACKET_ID_NOT_FOUND : 0);
    /* Never received at all. */
    sm_ack(pub, MQTT_PUBREL, 8, 0);
    expect_ack(pub, MQTT_PUBCOMP, 8,
               version == MQTT_V5 ? MQTT_RC_PACKET_ID_NOT_FOUND : 0);

    /* After PUBCOMP the id is free: the same id is a new message. */
    sm_publish(pub, "q2/t", "x2", 2, 7);
    expect_ack(pub, MQTT_PUBREC, 7, 0);
    m = receive_qos2(sub);
    assert_string_equal(m.payload, "x2");
    sm_ack(pub, MQTT_PUBREL, 7, 0);
    expect_ack(pub, MQTT_PUBCOMP, 7, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    sm_expect_nothing(pub);
    sm_stop(b);
}

static void incoming_flow_v5(void **state)
{
    incoming_flow(state, MQTT_V5);
}

static void incoming_flow_v311(void **state)
{
    incoming_flow(state, MQTT_V311);
}

/* The publisher's session holds the id across a lost connection (and, with
 * a durable store, a restart): the resent PUBLISH is acknowledged, not
 * forwarded again. */
static void incoming_id_survives_reconnect(void **state)
{
    sm_broker *b = start(state, "");
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){.expiry = 3600});
    assert_int_equal(sm_subscribe(sub, "q2/t", 2), 2);
    sm_conn_opts po = {.expiry = 3600};
    sm_client *pub = sm_connect(b, "pub", po);
    sm_publish(pub, "q2/t", "once", 2, 9);
    expect_ack(pub, MQTT_PUBREC, 9, 0);
    sm_msg m = receive_qos2(sub);
    assert_string_equal(m.payload, "once");
    sm_settle(b);

    for (int round = 0; round < (durable(state) ? 2 : 1); round++) {
        sm_close(pub); /* lost, no PUBREL sent */
        sm_settle(b);
        if (round == 1) {
            sm_close(sub);
            sm_restart(b);
            sub = sm_connect(b, "sub",
                             (sm_conn_opts){.resume = true, .expiry = 3600});
            assert_true(sub->session_present);
        }
        po.resume = true;
        pub = sm_connect(b, "pub", po);
        assert_true(pub->session_present);
        sm_publish_o(pub, "q2/t", "once", 2, 9, (sm_pub_opts){.dup = true});
        expect_ack(pub, MQTT_PUBREC, 9, 0);
        sm_settle(b);
        sm_expect_nothing(sub);
    }
    sm_ack(pub, MQTT_PUBREL, 9, 0);
    expect_ack(pub, MQTT_PUBCOMP, 9, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    sm_stop(b);
}

/* Window of 1: the slot is held from PUBLISH through PUBREC/PUBREL until
 * PUBCOMP. */
static void outgoing_flow(void **state)
{
    sm_broker *b = start(state, "\"max_inflight_messages\": 1");
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){.expiry = 3600});
    assert_int_equal(sm_subscribe(sub, "q2/t", 2), 2);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    for (uint16_t pid = 1; pid <= 2; pid++) {
        sm_publish(pub, "q2/t", pid == 1 ? "a" : "b", 2, pid);
        expect_ack(pub, MQTT_PUBREC, pid, 0);
        sm_ack(pub, MQTT_PUBREL, pid, 0);
        expect_ack(pub, MQTT_PUBCOMP, pid, 0);
    }
    sm_msg a = sm_expect_publish(sub);
    assert_int_equal(a.qos, 2);
    assert_false(a.dup);
    assert_string_equal(a.payload, "a");
    sm_settle(b);
    sm_expect_nothing(sub);
    sm_ack(sub, MQTT_PUBREC, a.pid, 0);
    expect_ack(sub, MQTT_PUBREL, a.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub); /* still one in flight */
    /* A PUBREC for an id not in flight: PUBREL 0x92, nothing else. */
    uint16_t other = a.pid == 1 ? 2 : 1;
    sm_ack(sub, MQTT_PUBREC, other, 0);
    expect_ack(sub, MQTT_PUBREL, other, MQTT_RC_PACKET_ID_NOT_FOUND);
    sm_ack(sub, MQTT_PUBCOMP, a.pid, 0);
    sm_msg m = sm_expect_publish(sub);
    assert_string_equal(m.payload, "b");
    sm_ack(sub, MQTT_PUBREC, m.pid, 0);
    expect_ack(sub, MQTT_PUBREL, m.pid, 0);
    sm_ack(sub, MQTT_PUBCOMP, m.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    assert_int_equal(sm_session(b, "sub")->inflight.count, 0);
    sm_stop(b);
}

/* The receiver refuses (PUBREC 0x80): no PUBREL, the slot is free. */
static void pubrec_failure_ends_flow(void **state)
{
    sm_broker *b = start(state, "\"max_inflight_messages\": 1");
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){.expiry = 3600});
    assert_int_equal(sm_subscribe(sub, "q2/t", 2), 2);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    for (uint16_t pid = 1; pid <= 2; pid++) {
        sm_publish(pub, "q2/t", pid == 1 ? "a" : "b", 2, pid);
        expect_ack(pub, MQTT_PUBREC, pid, 0);
        sm_ack(pub, MQTT_PUBREL, pid, 0);
        expect_ack(pub, MQTT_PUBCOMP, pid, 0);
    }
    sm_msg a = sm_expect_publish(sub);
    assert_string_equal(a.payload, "a");
    sm_ack(sub, MQTT_PUBREC, a.pid, MQTT_RC_UNSPECIFIED_ERROR);
    sm_msg m = sm_expect_publish(sub); /* "b", not a PUBREL */
    assert_string_equal(m.payload, "b");
    sm_settle(b);
    sm_expect_nothing(sub);
    /* The refused one is gone for good: not resent on reconnect. */
    sm_close(sub);
    sm_settle(b);
    sub = sm_connect(b, "sub", (sm_conn_opts){.resume = true, .expiry = 3600});
    m = sm_expect_publish(sub);
    assert_string_equal(m.payload, "b");
    assert_true(m.dup);
    sm_settle(b);
    sm_expect_nothing(sub);
    sm_stop(b);
}

/* Reconnect after PUBREC: PUBREL again, never the PUBLISH; before PUBREC:
 * the PUBLISH again with DUP and the same id [MQTT-4.4.0-1]. With a
 * durable store also across a restart. */
static void reconnect_resends_pubrel_not_publish(void **state)
{
    sm_broker *b = start(state, "\"max_inflight_messages\": 2");
    sm_conn_opts so = {.expiry = 3600};
    sm_client *sub = sm_connect(b, "sub", so);
    assert_int_equal(sm_subscribe(sub, "q2/t", 2), 2);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    for (uint16_t pid = 1; pid <= 2; pid++) {
        sm_publish(pub, "q2/t", pid == 1 ? "a" : "b", 2, pid);
        expect_ack(pub, MQTT_PUBREC, pid, 0);
        sm_ack(pub, MQTT_PUBREL, pid, 0);
        expect_ack(pub, MQTT_PUBCOMP, pid, 0);
    }
    sm_msg a = sm_expect_publish(sub);
    sm_msg c = sm_expect_publish(sub);
    assert_string_equal(a.payload, "a");
    assert_string_equal(c.payload, "b");
    sm_ack(sub, MQTT_PUBREC, a.pid, 0); /* "b" stays unacknowledged */
    expect_ack(sub, MQTT_PUBREL, a.pid, 0);
    sm_settle(b);
    so.resume = true;
    for (int round = 0; round < (durable(state) ? 2 : 1); round++) {
        sm_close(sub);
        sm_settle(b);
        if (round == 1)
            sm_restart(b);
        sub = sm_connect(b, "sub", so);
        assert_true(sub->session_present);
        expect_ack(sub, MQTT_PUBREL, a.pid, 0);
        sm_msg again = sm_expect_publish(sub);
        assert_string_equal(again.payload, "b");
        assert_true(again.dup);
        assert_int_equal(again.pid, c.pid);
        assert_int_equal(again.qos, 2);
        sm_settle(b);
        sm_expect_nothing(sub);
    }
    sm_ack(sub, MQTT_PUBCOMP, a.pid, 0);
    sm_ack(sub, MQTT_PUBREC, c.pid, 0);
    expect_ack(sub, MQTT_PUBREL, c.pid, 0);
    sm_ack(sub, MQTT_PUBCOMP, c.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    assert_int_equal(sm_session(b, "sub")->inflight.count, 0);
    sm_stop(b);
}

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
        BOTH(incoming_flow_v5),
        BOTH(incoming_flow_v311),
        BOTH(incoming_id_survives_reconnect),
        BOTH(outgoing_flow),
        BOTH(pubrec_failure_ends_flow),
        BOTH(reconnect_resends_pubrel_not_publish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
