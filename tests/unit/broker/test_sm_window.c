/* The outgoing window and packet-id allocation (README, "QoS 0, 1, 2 both
 * ways"; docs/config.md max_inflight_messages): a subscriber that does not
 * acknowledge gets exactly window-many PUBLISHes with distinct non-zero
 * ids, the rest wait in its queue; each PUBACK releases exactly one more,
 * in publish order; an id is given again only after its acknowledgement,
 * also when the 16-bit id space wraps; a v5 client's smaller Receive
 * Maximum caps the window, a larger one does not raise it; and a v5
 * client that exceeds our Receive Maximum is disconnected with 0x93. */
#include "sm_harness.h"

static sm_client *subscriber(sm_broker *b, const char *id, sm_conn_opts o,
                             const char *filter)
{
    sm_client *s = sm_connect(b, id, o);
    assert_int_equal(sm_subscribe(s, filter, 1), 1);
    return s;
}

/* Publish n QoS 1 messages "m<first>".."m<first+n-1>" from pub; the
 * broker acknowledges each (memory only: at once), in order. */
static void publish_n(sm_client *pub, const char *topic, int first, int n)
{
    char payload[32];
    for (int i = 0; i < n; i++) {
        snprintf(payload, sizeof(payload), "m%d", first + i);
        sm_publish(pub, topic, payload, 1, (uint16_t)(first + i + 1));
    }
    for (int i = 0; i < n; i++) {
        const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
        assert_int_equal(a->u.ack.packet_id, first + i + 1);
        assert_int_equal(a->u.ack.reason, 0);
    }
}

static void expect_payload(const sm_msg *m, int k)
{
    char want[32];
    snprintf(want, sizeof(want), "m%d", k);
    assert_string_equal(m->payload, want);
}

static void window_holds_exactly_n(void **state)
{
    (void)state;
    sm_broker *b = sm_start(SM_NONE ", \"max_inflight_messages\": 3");
    sm_client *sub = subscriber(b, "sub", (sm_conn_opts){0}, "w/t");
    /* Announced to v5 clients as our Receive Maximum. */
    assert_int_equal(sub->connack_receive_max, 3);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_n(pub, "w/t", 0, 10);
    sm_settle(b);

    uint16_t held[3];
    for (int i = 0; i < 3; i++) {
        sm_msg m = sm_expect_publish(sub);
        assert_int_equal(m.qos, 1);
        assert_false(m.dup);
        expect_payload(&m, i);
        assert_int_not_equal(m.pid, 0);
        for (int k = 0; k < i; k++)
            assert_int_not_equal(m.pid, held[k]);
        held[i] = m.pid;
    }
    sm_expect_nothing(sub);
    session *s = sm_session(b, "sub");
    assert_int_equal(s->inflight.count, 3);
    assert_int_equal(s->queue.count, 7);

    /* Each PUBACK, whichever of the window it acknowledges, lets exactly
     * the next queued message out; ids in the window stay distinct. */
    static const int order[3] = {1, 0, 2}; /* not in send order */
    for (int next = 3; next < 10; next++) {
        int slot = order[next % 3];
        sm_ack(sub, MQTT_PUBACK, held[slot], 0);
        sm_settle(b);
        sm_msg m = sm_expect_publish(sub);
        expect_payload(&m, next);
        sm_expect_nothing(sub);
        assert_int_not_equal(m.pid, 0);
        for (int k = 0; k < 3; k++)
            if (k != slot)
                assert_int_not_equal(m.pid, held[k]);
        held[slot] = m.pid;
        assert_int_equal(s->inflight.count, 3);
        assert_int_equal(s->queue.count, (unsigned)(9 - next));
    }
    for (int k = 0; k < 3; k++)
        sm_ack(sub, MQTT_PUBACK, held[k], 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    assert_int_equal(s->inflight.count, 0);
    assert_int_equal(s->queue.count, 0);
    assert_int_equal(b->srv.stats.msgs_dropped, 0);
    sm_stop(b);
}

/* An acknowledgement for an id that is not in flight (never sent, or
 * already acknowledged) releases nothing. */
static void unknown_or_repeated_ack_releases_nothing(void **state)
{
    (void)state;
    sm_broker *b = sm_start(SM_NONE ", \"max_inflight_messages\": 2");
    sm_client *sub = subscriber(b, "sub", (sm_conn_opts){0}, "w/t");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_n(pub, "w/t", 0, 5);
    sm_settle(b);
    sm_msg a = sm_expect_publish(sub), c = sm_expect_publish(sub);
    sm_expect_nothing(sub);
    uint16_t unused = 1;
    while (unused == a.pid || unused == c.pid)
        unused++;
    sm_ack(sub, MQTT_PUBACK, unused, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    sm_ack(sub, MQTT_PUBACK, a.pid, 0);
    sm_settle(b);
    sm_msg d = sm_expect_publish(sub);
    expect_payload(&d, 2);
    sm_expect_nothing(sub);
    /* Ids are given in sequence (ids_wrap_past_65535), so a.pid is free
     * now: the same PUBACK again acknowledges nothing. */
    assert_int_not_equal(d.pid, a.pid);
    sm_ack(sub, MQTT_PUBACK, a.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    session *s = sm_session(b, "sub");
    assert_int_equal(s->inflight.count, 2);
    assert_int_equal(s->queue.count, 2);
    sm_stop(b);
}

/* A v5 client's Receive Maximum below max_inflight_messages caps its
 * window; one above it does not raise it [MQTT-3.3.4-9]; a 3.1.1 client
 * gets max_inflight_messages. */
static void receive_maximum_caps_window(void **state)
{
    (void)state;
    sm_broker *b = sm_start(SM_NONE ", \"max_inflight_messages\": 5");
    sm_client *small =
        subscriber(b, "small", (sm_conn_opts){.receive_max = 2}, "w/t");
    sm_client *large =
        subscriber(b, "large", (sm_conn_opts){.receive_max = 100}, "w/t");
    sm_client *v3 =
        subscriber(b, "v3", (sm_conn_opts){.version = MQTT_V311}, "w/t");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    publish_n(pub, "w/t", 0, 8);
    sm_settle(b);
    assert_int_equal(sm_pending(small), 2);
    assert_int_equal(sm_pending(large), 5);
    assert_int_equal(sm_pending(v3), 5);
    sm_msg m0 = sm_expect_publish(small);
    sm_msg m1 = sm_expect_publish(small);
    expect_payload(&m0, 0);
    expect_payload(&m1, 1);
    assert_int_equal(sm_session(b, "small")->queue.count, 6);
    sm_ack(small, MQTT_PUBACK, m1.pid, 0);
    sm_settle(b);
    sm_msg m2 = sm_expect_publish(small);
    expect_payload(&m2, 2);
    sm_expect_nothing(small);
    sm_stop(b);
}

/* A v5 publisher with more unreleased QoS 2 messages than our Receive
 * Maximum: DISCONNECT 0x93, connection closed (README). */
static void incoming_receive_maximum_exceeded(void **state)
{
    (void)state;
    sm_broker *b = sm_start(SM_NONE ", \"max_inflight_messages\": 3");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    for (uint16_t pid = 1; pid <= 3; pid++)
        sm_publish(pub, "w/t", "x", 2, pid);
    for (uint16_t pid = 1; pid <= 3; pid++) {
        const mqtt_packet *r = sm_expect(pub, MQTT_PUBREC);
        assert_int_equal(r->u.ack.packet_id, pid);
        assert_int_equal(r->u.ack.reason, 0);
    }
    /* Three unreleased (no PUBREL): the window is full. (Sent in the same
     * read as the first three, the fourth would close the connection
     * before their PUBRECs, which wait for the end of the loop iteration,
     * are written: acks still waiting when a connection closes are
     * dropped, conn_release_acks.) */
    sm_publish(pub, "w/t", "x", 2, 4);
    const mqtt_packet *d = sm_expect(pub, MQTT_DISCONNECT);
    assert_int_equal(d->u.disconnect.reason, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED);
    sm_expect_closed(pub);
    sm_stop(b);
}

/* More than 65535 messages through a window of 16 while the first one is
 * never acknowledged, the others acknowledged in bursts once 15 are in
 * (or the broker has nothing more to send): no id is given while it is
 * in flight, none is 0, order holds, the id space wraps. In memory the
 * ids run 1, 2, ..., 65535 and then skip 0 and the held id. A persistent
 * session with a durable store derives an entry's id from its queue
 * position (session.c, stored_pid), so there only the rules are checked.
 * Bounded: one chunk of 200 ahead at most, 110 s in all. */
#define WRAP_TOTAL (65535 + 400)
#define WRAP_CHUNK 200

static void ids_wrap_past_65535(void **state)
{
    bool durable = *state != NULL;
    char cfg[256];
    snprintf(cfg, sizeof(cfg),
             "%s, \"max_inflight_messages\": 16,"
             " \"max_queued_messages\": 1000",
             durable ? SM_PROCESS "}" : SM_NONE);
    sm_broker *b = sm_start(cfg);
    sm_client *sub = subscriber(
        b, "sub", (sm_conn_opts){.expiry = durable ? 3600 : 0}, "w/t");
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    uint8_t *out = calloc(65536, 1); /* ids in flight at the subscriber */
    uint16_t unacked[16];
    unsigned nunacked = 0;
    assert_non_null(out);
    uint64_t deadline = sm_ms() + 110000; /* ctest's limit is 120 s */
    uint32_t sent = 0, acked_by_broker = 0, received = 0, wraps = 0;
    uint16_t held = 0, last = 0;
    char payload[32];
    while (received < WRAP_TOTAL) {
        if (sm_ms() > deadline)
            fail_msg("only %u of %u messages after 110 s", received,
                     WRAP_TOTAL);
        /* Keep at most one chunk ahead, well inside max_queued_messages,
         * and inside our Receive Maximum (16) towards the broker. */
        while (sent < WRAP_TOTAL && sent - received < WRAP_CHUNK &&
               sent - acked_by_broker < 16) {
            snprintf(payload, sizeof(payload), "%u", sent);
            sm_publish(pub, "w/t", payload, 1, (uint16_t)(sent % 65535 + 1));
            sent++;
        }
        size_t got = sm_round(b);
        const mqtt_packet *p;
        while ((p = sm_take(pub)) != NULL) {
            assert_int_equal(p->type, MQTT_PUBACK);
            assert_int_equal(p->u.ack.packet_id, acked_by_broker % 65535 + 1);
            acked_by_broker++;
        }
        while ((p = sm_take(sub)) != NULL) {
            sm_msg m = sm_msg_of(p);
            assert_int_equal(strtoul(m.payload, NULL, 10), received);
            if (m.pid == 0 || out[m.pid])
                fail_msg("message %u got id %u, %s", received, m.pid,
                         m.pid ? "still in flight" : "zero");
            if (received > 0 && !durable) {
                /* The next free id after the last one given. */
                uint16_t want = last == 65535 ? 1 : last + 1;
                if (want == held)
                    want = want == 65535 ? 1 : want + 1;
                assert_int_equal(m.pid, want);
            }
            if (received > 0)
                wraps += m.pid < last;
            last = m.pid;
            out[m.pid] = 1;
            if (received++ == 0) {
                held = m.pid; /* never acknowledged until the end */
                continue;
            }
            assert_true(nunacked < 15); /* the window holds 16 */
            unacked[nunacked++] = m.pid;
        }
        /* A full window, or a quiet round: acknowledge what is in. */
        if (nunacked == 15 || (got == 0 && nunacked > 0)) {
            for (unsigned i = 0; i < nunacked; i++) {
                out[unacked[i]] = 0;
                sm_ack(sub, MQTT_PUBACK, unacked[i], 0);
            }
            nunacked = 0;
        }
        if (got == 0)
            usleep(20); /* durable: waiting for the store thread */
    }
    assert_true(wraps >= 1);
    assert_int_equal(held, 1);
    for (unsigned i = 0; i < nunacked; i++)
        sm_ack(sub, MQTT_PUBACK, unacked[i], 0);
    sm_settle(b);
    /* PUBACKs whose commit completed during the settle (a slow store
     * thread on a loaded machine) arrive only now. */
    const mqtt_packet *late;
    while ((late = sm_take(pub)) != NULL) {
        assert_int_equal(late->type, MQTT_PUBACK);
        assert_int_equal(late->u.ack.packet_id, acked_by_broker % 65535 + 1);
        acked_by_broker++;
    }
    assert_int_equal(acked_by_broker, WRAP_TOTAL);
    session *s = sm_session(b, "sub");
    assert_int_equal(s->inflight.count, 1);
    sm_ack(sub, MQTT_PUBACK, held, 0);
    sm_settle(b);
    assert_int_equal(s->inflight.count, 0);
    assert_int_equal(b->srv.stats.msgs_dropped, 0);
    free(out);
    sm_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(window_holds_exactly_n),
        cmocka_unit_test(unknown_or_repeated_ack_releases_nothing),
        cmocka_unit_test(receive_maximum_caps_window),
        cmocka_unit_test(incoming_receive_maximum_exceeded),
        {.name = "ids_wrap_past_65535/none", .test_func = ids_wrap_past_65535},
        {.name = "ids_wrap_past_65535/process",
         .test_func = ids_wrap_past_65535,
         .initial_state = (void *)"process"},
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
