/* The policy's on_ack and on_session_end hooks (mqtt/policy.h), as mqtt/
 * calls them: on_ack once per delivery the device accepts — its PUBACK of
 * a QoS 1 delivery, its PUBREC (reason < 0x80) of a QoS 2 one — with the
 * message delivered, after the ack is handled; never for a repeated ack,
 * an unknown packet id, PUBCOMP, a refusing PUBREC, or a session without
 * an identity. on_session_end once per session that ends.
 *
 * The IM policy with the two hooks replaced by recorders; the listener
 * takes user@device ids (clientid "optional", anonymous), so those
 * sessions have an identity and others do not. */
#include "sm_harness.h"

#include "policy.h"

static policy recorder;
static struct {
    int acks, ends;
    const session *s;
    char topic[64], payload[64];
    uint8_t qos;
    uint32_t inflight; /* s's window when on_ack ran */
} seen;

static void on_ack(session *s, msg *m)
{
    seen.acks++;
    seen.s = s;
    mqtt_str t = msg_topic(m);
    mqtt_bytes p = msg_payload(m);
    snprintf(seen.topic, sizeof(seen.topic), "%.*s", (int)t.len,
             (const char *)t.ptr);
    snprintf(seen.payload, sizeof(seen.payload), "%.*s", (int)p.len,
             (const char *)p.ptr);
    seen.qos = m->qos;
    seen.inflight = s->inflight.count;
}

static void on_session_end(session *s)
{
    (void)s;
    seen.ends++;
}

static sm_broker *start(void)
{
    memset(&seen, 0, sizeof(seen));
    sm_broker *b = sm_start("\"listeners\": [{\"clientid\": \"optional\"}], "
                            "\"im\": {\"presence\": false}, " SM_NONE);
    recorder = *b->srv.policy;
    recorder.on_ack = on_ack;
    recorder.on_session_end = on_session_end;
    b->srv.policy = &recorder;
    return b;
}

static void qos1_puback(void **state)
{
    (void)state;
    sm_broker *b = start();
    sm_client *sub = sm_connect(b, "alice@phone", (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(sub, "t/1", 1), 1);
    sm_client *pub = sm_connect(b, "bob@pc", (sm_conn_opts){0});
    sm_publish(pub, "t/1", "hello", 1, 1);
    sm_expect(pub, MQTT_PUBACK);
    sm_msg m = sm_expect_publish(sub);
    sm_settle(b);
    assert_int_equal(seen.acks, 0); /* not before the device's PUBACK */
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    assert_int_equal(seen.acks, 1);
    assert_ptr_equal(seen.s, sm_session(b, "alice@phone"));
    assert_string_equal(seen.topic, "t/1");
    assert_string_equal(seen.payload, "hello");
    assert_int_equal(seen.inflight, 0); /* the ack was handled first */
    /* The same PUBACK again, an id never used: nothing. */
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_ack(sub, MQTT_PUBACK, 999, 0);
    sm_settle(b);
    assert_int_equal(seen.acks, 1);
    sm_stop(b);
}

static void qos2_pubrec(void **state)
{
    (void)state;
    sm_broker *b = start();
    sm_client *sub = sm_connect(b, "alice@phone", (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(sub, "t/2", 2), 2);
    sm_client *pub = sm_connect(b, "bob@pc", (sm_conn_opts){0});
    sm_publish(pub, "t/2", "twice", 2, 1);
    sm_expect(pub, MQTT_PUBREC);
    sm_msg m = sm_expect_publish(sub);
    assert_int_equal(m.qos, 2);
    sm_ack(sub, MQTT_PUBREC, m.pid, 0);
    sm_expect(sub, MQTT_PUBREL);
    assert_int_equal(seen.acks, 1);
    assert_string_equal(seen.payload, "twice");
    /* A repeated PUBREC and the PUBCOMP: nothing more. */
    sm_ack(sub, MQTT_PUBREC, m.pid, 0);
    sm_expect(sub, MQTT_PUBREL);
    sm_ack(sub, MQTT_PUBCOMP, m.pid, 0);
    sm_settle(b);
    assert_int_equal(seen.acks, 1);
    /* A PUBREC that refuses the message is no delivery. */
    sm_publish(pub, "t/2", "no", 2, 2);
    sm_expect(pub, MQTT_PUBREC);
    m = sm_expect_publish(sub);
    sm_ack(sub, MQTT_PUBREC, m.pid, 0x80);
    sm_settle(b);
    assert_int_equal(seen.acks, 1);
    sm_stop(b);
}

/* A session without an identity (the client id is not user@device): the
 * policy is not asked. */
static void plain_session(void **state)
{
    (void)state;
    sm_broker *b = start();
    sm_client *sub = sm_connect(b, "plain", (sm_conn_opts){0});
    assert_int_equal(sm_subscribe(sub, "t/3", 1), 1);
    sm_client *pub = sm_connect(b, "bob@pc", (sm_conn_opts){0});
    sm_publish(pub, "t/3", "x", 1, 1);
    sm_msg m = sm_expect_publish(sub);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    assert_int_equal(seen.acks, 0);
    sm_stop(b);
}

static void session_ends(void **state)
{
    (void)state;
    sm_broker *b = start();
    sm_client *a = sm_connect(b, "carol@x", (sm_conn_opts){0});
    sm_client *p = sm_connect(b, "keep@x", (sm_conn_opts){.expiry = 600});
    sm_disconnect(a); /* no expiry: the session ends with the connection */
    sm_settle(b);
    assert_int_equal(seen.ends, 1);
    sm_disconnect(p); /* kept for 600 s */
    sm_settle(b);
    assert_int_equal(seen.ends, 1);
    /* Clean start ends the kept one before the new session begins. */
    sm_connect(b, "keep@x", (sm_conn_opts){0});
    sm_settle(b);
    assert_int_equal(seen.ends, 2);
    sm_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qos1_puback),
        cmocka_unit_test(qos2_pubrec),
        cmocka_unit_test(plain_session),
        cmocka_unit_test(session_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
