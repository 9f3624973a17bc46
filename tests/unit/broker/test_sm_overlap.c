/* Overlapping subscriptions and the v5 subscription options (README:
 * "overlapping subscriptions give one delivery at the highest QoS with
 * every subscription identifier"; "v5 retain handling 0/1/2 and retain as
 * published").
 *
 * One session whose filters overlap gets one PUBLISH per message, at the
 * highest granted QoS (capped by the message's), carrying the identifier
 * of every matching subscription that has one. No Local keeps a session's
 * own messages off that subscription only. Retain As Published keeps the
 * RETAIN flag of a live delivery (else it is 0); retained messages sent
 * because of a SUBSCRIBE always have it, as Retain Handling allows. */
#include "sm_harness.h"

#define CFG SM_NONE

static uint8_t sub_o(sm_client *cl, const char *filter, uint8_t qos,
                     uint32_t id, bool no_local, bool rap, uint8_t rh)
{
    mqtt_sub_opts o = {.qos = qos,
                       .no_local = no_local,
                       .retain_as_published = rap,
                       .retain_handling = rh};
    return sm_subscribe_o(cl, filter, o, id);
}

/* m carries exactly the identifiers want[0..n), in any order. */
static void expect_ids(const sm_msg *m, const uint32_t *want, uint32_t n)
{
    assert_int_equal(m->nsub_ids, n);
    for (uint32_t i = 0; i < n; i++) {
        bool found = false;
        for (uint32_t k = 0; k < m->nsub_ids; k++)
            found = found || m->sub_ids[k] == want[i];
        if (!found)
            fail_msg("subscription identifier %u missing", want[i]);
    }
}

/* Publish at qos and run the publisher's side of the flow. */
static void publish(sm_client *pub, const char *topic, const char *payload,
                    uint8_t qos, bool retain)
{
    static uint16_t pid;
    if (++pid == 0)
        pid = 1;
    sm_publish_o(pub, topic, payload, qos, pid,
                 (sm_pub_opts){.retain = retain});
    if (qos == 1) {
        sm_expect(pub, MQTT_PUBACK);
    } else if (qos == 2) {
        sm_expect(pub, MQTT_PUBREC);
        sm_ack(pub, MQTT_PUBREL, pid, 0);
        sm_expect(pub, MQTT_PUBCOMP);
    }
}

/* The only PUBLISH sub gets for what was just published; acknowledged. */
static sm_msg only_delivery(sm_broker *b, sm_client *sub)
{
    sm_settle(b);
    sm_msg m = sm_expect_publish(sub);
    if (m.qos == 1) {
        sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    } else if (m.qos == 2) {
        sm_ack(sub, MQTT_PUBREC, m.pid, 0);
        sm_expect(sub, MQTT_PUBREL);
        sm_ack(sub, MQTT_PUBCOMP, m.pid, 0);
    }
    sm_settle(b);
    sm_expect_nothing(sub);
    return m;
}

static void one_delivery_highest_qos_every_id(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){0});
    assert_int_equal(sub_o(sub, "o/+", 1, 1, false, false, 0), 1);
    assert_int_equal(sub_o(sub, "o/#", 2, 2, false, false, 0), 2);
    assert_int_equal(sub_o(sub, "o/b", 0, 3, false, false, 0), 0);
    assert_int_equal(sub_o(sub, "x/#", 2, 4, false, false, 0), 2);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});

    static const uint32_t all[3] = {1, 2, 3};
    publish(pub, "o/b", "q2", 2, false);
    sm_msg m = only_delivery(b, sub);
    assert_int_equal(m.qos, 2);
    expect_ids(&m, all, 3);

    publish(pub, "o/b", "q1", 1, false); /* the message's QoS caps it */
    m = only_delivery(b, sub);
    assert_int_equal(m.qos, 1);
    expect_ids(&m, all, 3);

    publish(pub, "o/b", "q0", 0, false);
    m = only_delivery(b, sub);
    assert_int_equal(m.qos, 0);
    expect_ids(&m, all, 3);

    static const uint32_t two[2] = {1, 2};
    publish(pub, "o/c", "c", 2, false);
    m = only_delivery(b, sub);
    assert_int_equal(m.qos, 2);
    expect_ids(&m, two, 2);

    /* Subscribing to o/b again replaces that subscription: now QoS 0 and
     * no identifier, and still one delivery. */
    assert_int_equal(sub_o(sub, "o/b", 0, 0, false, false, 0), 0);
    publish(pub, "o/b", "again", 2, false);
    m = only_delivery(b, sub);
    assert_int_equal(m.qos, 2);
    expect_ids(&m, two, 2);

    /* Only the subscription with the highest QoS left: o/# at 2 goes. */
    assert_int_equal(sm_unsubscribe(sub, "o/#"), 0);
    publish(pub, "o/b", "after", 2, false);
    m = only_delivery(b, sub);
    assert_int_equal(m.qos, 1);
    static const uint32_t one[1] = {1};
    expect_ids(&m, one, 1);
    sm_stop(b);
}

static void one_delivery_v311(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    sm_client *sub = sm_connect(b, "sub", (sm_conn_opts){.version = MQTT_V311});
    assert_int_equal(sm_subscribe(sub, "o/+", 1), 1);
    assert_int_equal(sm_subscribe(sub, "o/#", 0), 0);
    assert_int_equal(sm_subscribe(sub, "+/b", 0), 0);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){.version = MQTT_V311});
    publish(pub, "o/b", "q2", 2, false);
    sm_msg m = only_delivery(b, sub);
    assert_int_equal(m.qos, 1);
    assert_int_equal(m.nsub_ids, 0);
    publish(pub, "o/b", "q0", 0, false);
    m = only_delivery(b, sub);
    assert_int_equal(m.qos, 0);
    sm_stop(b);
}

/* No Local [MQTT-3.8.3-3]: never one's own message through that
 * subscription, but through an overlapping one without it. */
static void no_local(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    sm_client *a = sm_connect(b, "a", (sm_conn_opts){0});
    sm_client *other = sm_connect(b, "other", (sm_conn_opts){0});
    assert_int_equal(sub_o(a, "n/t", 1, 5, true, false, 0), 1);

    publish(a, "n/t", "own", 1, false);
    sm_settle(b);
    sm_expect_nothing(a);
    publish(other, "n/t", "theirs", 1, false);
    sm_msg m = only_delivery(b, a);
    assert_string_equal(m.payload, "theirs");

    assert_int_equal(sub_o(a, "n/#", 1, 6, false, false, 0), 1);
    /* (QoS 0, so that no PUBACK of ours interleaves with the delivery.) */
    publish(a, "n/t", "own2", 0, false);
    m = only_delivery(b, a);
    assert_string_equal(m.payload, "own2");
    assert_int_equal(m.qos, 0);
    static const uint32_t six[1] = {6};
    expect_ids(&m, six, 1);
    publish(other, "n/t", "theirs2", 1, false);
    m = only_delivery(b, a);
    static const uint32_t both[2] = {5, 6};
    expect_ids(&m, both, 2);
    sm_stop(b);
}

/* Retain As Published on live deliveries; a 3.1.1 subscriber always gets
 * RETAIN 0 on a live delivery [MQTT-3.3.1-9]. */
static void retain_as_published(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    sm_client *rap = sm_connect(b, "rap", (sm_conn_opts){0});
    sm_client *plain = sm_connect(b, "plain", (sm_conn_opts){0});
    sm_client *mixed = sm_connect(b, "mixed", (sm_conn_opts){0});
    sm_client *v3 = sm_connect(b, "v3", (sm_conn_opts){.version = MQTT_V311});
    assert_int_equal(sub_o(rap, "r/t", 1, 0, false, true, 2), 1);
    assert_int_equal(sub_o(plain, "r/t", 1, 0, false, false, 2), 1);
    /* Overlapping, one with the option: the one delivery keeps the flag. */
    assert_int_equal(sub_o(mixed, "r/t", 1, 0, false, false, 2), 1);
    assert_int_equal(sub_o(mixed, "r/+", 1, 0, false, true, 2), 1);
    assert_int_equal(sm_subscribe(v3, "r/t", 1), 1);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});

    publish(pub, "r/t", "kept", 1, true);
    assert_true(only_delivery(b, rap).retain);
    assert_false(only_delivery(b, plain).retain);
    assert_true(only_delivery(b, mixed).retain);
    assert_false(only_delivery(b, v3).retain);
    publish(pub, "r/t", "live", 1, false);
    assert_false(only_delivery(b, rap).retain);
    assert_false(only_delivery(b, plain).retain);
    assert_false(only_delivery(b, mixed).retain);
    assert_false(only_delivery(b, v3).retain);
    sm_stop(b);
}

/* Retained messages on SUBSCRIBE: RETAIN set whatever Retain As
 * Published says, at the lower of the two QoS; Retain Handling 0 sends
 * on every SUBSCRIBE, 1 only when the subscription is new, 2 never. */
static void retain_handling(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish(pub, "h/t", "stored", 2, true);
    sm_client *s = sm_connect(b, "s", (sm_conn_opts){0});
    for (int rh = 0; rh <= 2; rh++) {
        char filter[16];
        snprintf(filter, sizeof(filter), "h/%s",
                 rh == 0   ? "t"
                 : rh == 1 ? "+"
                           : "#");
        for (int again = 0; again < 2; again++) {
            assert_int_equal(sub_o(s, filter, 1, 0, false, false, (uint8_t)rh),
                             1);
            sm_settle(b);
            bool want = rh == 0 || (rh == 1 && !again);
            if (!want) {
                sm_expect_nothing(s);
                continue;
            }
            sm_msg m = only_delivery(b, s);
            assert_true(m.retain);
            assert_int_equal(m.qos, 1);
            assert_string_equal(m.payload, "stored");
        }
        assert_int_equal(sm_unsubscribe(s, filter), 0);
    }
    sm_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_delivery_highest_qos_every_id),
        cmocka_unit_test(one_delivery_v311),
        cmocka_unit_test(no_local),
        cmocka_unit_test(retain_as_published),
        cmocka_unit_test(retain_handling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
