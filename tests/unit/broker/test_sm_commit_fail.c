/* Acknowledgements after a store batch that fails (docs/store.md "Faults",
 * docs/config.md store.max_size, DESIGN.md: no PUBACK / PUBREC before the
 * message is recorded durably).
 *
 * A durable store ("process", in a temporary directory) with a small
 * store.max_size, and a persistent subscriber that is offline, so every
 * QoS 1/2 publication is a queue entry in LMDB and the store fills for
 * real. The batch whose puts pass the limit fails: its publisher gets
 * PUBACK / PUBREC 0x97 (v5) or its connection closed (3.1.1) for the
 * refused message, never a success; while the store refuses, new QoS 1/2
 * publications are refused at once the same way (cause store_full).
 * Exactly the messages acknowledged with success reach the subscriber, in
 * order; once it has consumed them, publications succeed again. A refused
 * QoS 2 id is not held: its resend is a new message. */
#include "sm_harness.h"

/* 3,000-byte payloads (one LMDB overflow page each) fill the 7/8 of
 * 256 KiB that live data may use within a few dozen messages. */
#define CFG                                                    \
    SM_PROCESS ", \"map_size\": 65536, \"max_size\": 262144}," \
               " \"max_queued_messages\": 100000"
#define PAYLOAD  3000
#define MAX_MSGS 1000 /* far more than fit */

static char *payload_of(unsigned seq)
{
    static char buf[PAYLOAD + 1];
    int n = snprintf(buf, sizeof(buf), "%u:", seq);
    memset(buf + n, 'y', PAYLOAD - (size_t)n);
    buf[PAYLOAD] = '\0';
    return buf;
}

static sm_conn_opts sub_opts(bool resume)
{
    return (sm_conn_opts){.resume = resume, .expiry = 3600};
}

static void offline_subscriber(sm_broker *b)
{
    sm_client *sub = sm_connect(b, "sub", sub_opts(false));
    assert_int_equal(sm_subscribe(sub, "f/#", 1), 1);
    sm_disconnect(sub);
}

/* The subscriber comes back and must get exactly seqs[0..n), in order,
 * acknowledging each and waiting for the commit of each acknowledgement
 * before the next, so that the room is freed over many transactions
 * (all of it freed by one transaction is what
 * room_usable_right_after_one_commit checks). */
static sm_client *drain(sm_broker *b, const unsigned *seqs, unsigned n)
{
    sm_client *sub = sm_connect(b, "sub", sub_opts(true));
    assert_true(sub->session_present);
    for (unsigned i = 0; i < n; i++) {
        sm_msg m = sm_expect_publish(sub);
        assert_int_equal(m.payload_len, PAYLOAD);
        if (strtoul(m.payload, NULL, 10) != seqs[i])
            fail_msg("delivery %u is message %lu, expected %u", i,
                     strtoul(m.payload, NULL, 10), seqs[i]);
        assert_int_equal(m.qos, 1); /* the subscription's QoS */
        sm_ack(sub, MQTT_PUBACK, m.pid, 0);
        sm_settle(b);
    }
    sm_settle(b);
    sm_expect_nothing(sub);
    assert_false(store_refusing(b->srv.store));
    return sub;
}

/* After room is made: a QoS 1 publication succeeds and is delivered. */
static void accepted_again(sm_broker *b, sm_client *pub, sm_client *sub)
{
    sm_publish(pub, "f/x", payload_of(99999), 1, 4242);
    const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
    assert_int_equal(a->u.ack.packet_id, 4242);
    if (a->u.ack.reason != 0)
        fail_msg("a publication after the queue was consumed got 0x%02x "
                 "(store refusing: %d, commits so far: %llu)",
                 a->u.ack.reason, store_refusing(b->srv.store),
                 (unsigned long long)store_commit_count(b->srv.store));
    sm_msg m = sm_expect_publish(sub);
    assert_int_equal(strtoul(m.payload, NULL, 10), 99999);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
}

/* v5, QoS 1, one message at a time: the first refusal is the failed
 * batch's (0x97 from conn_release_acks), the next the store's refusal up
 * front (0x97 from handle_publish). */
static void v5_qos1_refused_never_acknowledged(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    offline_subscriber(b);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    unsigned *acked = calloc(MAX_MSGS, sizeof(unsigned)), n = 0, seq;
    assert_non_null(acked);
    for (seq = 1; seq < MAX_MSGS; seq++) {
        sm_publish(pub, "f/x", payload_of(seq), 1, (uint16_t)seq);
        const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
        assert_int_equal(a->u.ack.packet_id, seq);
        if (a->u.ack.reason != 0) {
            assert_int_equal(a->u.ack.reason, MQTT_RC_QUOTA_EXCEEDED);
            break;
        }
        acked[n++] = seq;
    }
    assert_true(seq < MAX_MSGS && n > 5);
    assert_int_equal(b->srv.nfailed, 1); /* one batch failed... */
    assert_int_equal(sm_metric(b, METRIC_DROP_STORE_FULL), 0); /* ...that one */
    assert_true(store_refusing(b->srv.store));

    sm_publish(pub, "f/x", payload_of(seq + 1), 1, (uint16_t)(seq + 1));
    const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
    assert_int_equal(a->u.ack.packet_id, seq + 1);
    assert_int_equal(a->u.ack.reason, MQTT_RC_QUOTA_EXCEEDED);
    assert_int_equal(sm_metric(b, METRIC_DROP_STORE_FULL), 1);
    assert_int_equal(b->srv.nfailed, 1); /* refused before any batch */

    sm_client *sub = drain(b, acked, n);
    accepted_again(b, pub, sub);
    free(acked);
    sm_stop(b);
}

/* Distinct store batches the acks waiting on c belong to. */
static unsigned ack_batches(const conn *c)
{
    unsigned n = 0;
    for (uint32_t i = 0; c && i < conn_nacks(c); i++)
        n += i == 0 || c->acks->a[i].gen != c->acks->a[i - 1].gen;
    return n;
}

static unsigned max_u(unsigned a, unsigned b)
{
    return a > b ? a : b;
}

/* v5, QoS 1, up to 8 in flight, one PUBLISH per loop round, so that the
 * acks of one connection wait for several batches at once (the case of
 * the issue 8 finding): each ack carries its own batch's outcome. */
static void v5_pipelined_each_ack_by_its_batch(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    offline_subscriber(b);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    uint8_t *reason = calloc(MAX_MSGS + 1, 1); /* by seq; 0xff: waiting */
    unsigned *acked = calloc(MAX_MSGS, sizeof(unsigned)), n = 0;
    assert_true(reason && acked);
    unsigned sent = 0, done = 0, refused = 0, spread = 0;
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    while (done < sent || (refused < 5 && sent < MAX_MSGS)) {
        if (sm_ms() > deadline)
            fail_msg("%u of %u publications answered", done, sent);
        if (refused < 5 && sent < MAX_MSGS && sent - done < 8) {
            sent++;
            reason[sent] = 0xff;
            sm_publish(pub, "f/x", payload_of(sent), 1, (uint16_t)sent);
        }
        if (sm_round(b) == 0)
            usleep(50);
        spread = max_u(spread, ack_batches(sm_session(b, "pub")->conn));
        const mqtt_packet *p;
        while ((p = sm_take(pub)) != NULL) {
            assert_int_equal(p->type, MQTT_PUBACK);
            uint16_t pid = p->u.ack.packet_id;
            assert_true(pid >= 1 && pid <= sent && reason[pid] == 0xff);
            reason[pid] = p->u.ack.reason;
            if (p->u.ack.reason != 0 &&
                p->u.ack.reason != MQTT_RC_QUOTA_EXCEEDED)
                fail_msg("message %u: PUBACK 0x%02x", pid, p->u.ack.reason);
            refused += p->u.ack.reason != 0;
            done++;
        }
    }
    assert_true(b->srv.nfailed >= 1);
    /* The case did happen: acks of one connection in several batches. */
    assert_true(spread >= 2);
    for (unsigned s = 1; s <= sent; s++)
        if (reason[s] == 0)
            acked[n++] = s;
    sm_client *sub = drain(b, acked, n);
    accepted_again(b, pub, sub);
    free(reason);
    free(acked);
    sm_stop(b);
}

/* Wait until cl has a packet or is closed; true: closed without one. */
static bool closed_before_reply(sm_client *cl)
{
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    while (sm_pending(cl) == 0 && !cl->eof) {
        if (sm_ms() > deadline)
            fail_msg("client %s: no reply and not closed", cl->id);
        if (sm_round(cl->b) == 0)
            usleep(100);
    }
    return sm_pending(cl) == 0;
}

/* 3.1.1 has no refusal code: the connection is closed, with no PUBACK for
 * the refused message, whether its batch failed or it was refused up
 * front. */
static void v311_refused_closes_connection(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    offline_subscriber(b);
    sm_conn_opts v3 = {.version = MQTT_V311};
    sm_client *pub = sm_connect(b, "pub", v3);
    unsigned *acked = calloc(MAX_MSGS, sizeof(unsigned)), n = 0, seq;
    assert_non_null(acked);
    for (seq = 1; seq < MAX_MSGS; seq++) {
        sm_publish(pub, "f/x", payload_of(seq), 1, (uint16_t)seq);
        if (closed_before_reply(pub))
            break;
        const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
        assert_int_equal(a->u.ack.packet_id, seq);
        acked[n++] = seq;
    }
    assert_true(seq < MAX_MSGS && n > 5);
    assert_int_equal(b->srv.nfailed, 1);
    assert_int_equal(sm_metric(b, METRIC_DROP_STORE_FULL), 0);
    sm_close(pub);

    pub = sm_connect(b, "pub", v3);
    sm_publish(pub, "f/x", payload_of(seq + 1), 1, 1);
    assert_true(closed_before_reply(pub));
    assert_int_equal(sm_metric(b, METRIC_DROP_STORE_FULL), 1);
    sm_close(pub);

    sm_client *sub = drain(b, acked, n);
    pub = sm_connect(b, "pub", v3);
    accepted_again(b, pub, sub);
    free(acked);
    sm_stop(b);
}

/* v5, QoS 2: PUBREC 0x97 for the refused message, and its id is not kept
 * (it was not received): once there is room, the resend with that id is
 * a new message, acknowledged and delivered once. */
static void v5_qos2_refused_id_not_held(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG);
    offline_subscriber(b);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    unsigned *acked = calloc(MAX_MSGS + 1, sizeof(unsigned)), n = 0, seq;
    assert_non_null(acked);
    for (seq = 1; seq < MAX_MSGS; seq++) {
        sm_publish(pub, "f/x", payload_of(seq), 2, (uint16_t)seq);
        const mqtt_packet *r = sm_expect(pub, MQTT_PUBREC);
        assert_int_equal(r->u.ack.packet_id, seq);
        if (r->u.ack.reason != 0) {
            assert_int_equal(r->u.ack.reason, MQTT_RC_QUOTA_EXCEEDED);
            break;
        }
        sm_ack(pub, MQTT_PUBREL, (uint16_t)seq, 0);
        const mqtt_packet *c = sm_expect(pub, MQTT_PUBCOMP);
        assert_int_equal(c->u.ack.reason, 0);
        acked[n++] = seq;
    }
    assert_true(seq < MAX_MSGS && n > 5);
    assert_int_equal(b->srv.nfailed, 1);
    assert_false(session_qos2_has(sm_session(b, "pub"), (uint16_t)seq));
    /* Still full: the resend is refused up front. */
    sm_publish_o(pub, "f/x", payload_of(seq), 2, (uint16_t)seq,
                 (sm_pub_opts){.dup = true});
    const mqtt_packet *r = sm_expect(pub, MQTT_PUBREC);
    assert_int_equal(r->u.ack.reason, MQTT_RC_QUOTA_EXCEEDED);

    sm_client *sub = drain(b, acked, n);
    /* Room again: the same id is a new message. */
    sm_publish_o(pub, "f/x", payload_of(seq), 2, (uint16_t)seq,
                 (sm_pub_opts){.dup = true});
    r = sm_expect(pub, MQTT_PUBREC);
    assert_int_equal(r->u.ack.packet_id, seq);
    assert_int_equal(r->u.ack.reason, 0);
    sm_ack(pub, MQTT_PUBREL, (uint16_t)seq, 0);
    const mqtt_packet *c = sm_expect(pub, MQTT_PUBCOMP);
    assert_int_equal(c->u.ack.reason, 0);
    sm_msg m = sm_expect_publish(sub);
    assert_int_equal(strtoul(m.payload, NULL, 10), seq);
    sm_ack(sub, MQTT_PUBACK, m.pid, 0);
    sm_settle(b);
    sm_expect_nothing(sub);
    free(acked);
    sm_stop(b);
}

/* The room the subscriber's acknowledgements make is usable by the very
 * next publication: here all of them are in one store batch (one
 * write), and the publication right after it must succeed ("refused ...
 * until messages are consumed", docs/config.md store.max_size).
 *
 * Fails on the code of this commit: LMDB does not hand out pages freed
 * by the last transaction to the next one, so with the map at
 * store.max_size that publication's batch fails (MDB_MAP_FULL, 0x97);
 * the store then refuses, every later QoS 1/2 publication is refused
 * before it reaches a batch, no commit happens, and the refusal lasts
 * until some unrelated write commits (here: 5 more publications over 2 s
 * all refused, the commit count unchanged). One small commit in between
 * and the same publication succeeds. Reported to the lead; not
 * weakened. */
static void room_usable_right_after_one_commit(void **state)
{
    (void)state;
    sm_broker *b = sm_start(CFG ", \"max_inflight_messages\": 1000");
    offline_subscriber(b);
    sm_client *pub = sm_connect(b, "pub", (sm_conn_opts){0});
    unsigned n = 0, seq;
    for (seq = 1; seq < MAX_MSGS; seq++) {
        sm_publish(pub, "f/x", payload_of(seq), 1, (uint16_t)seq);
        const mqtt_packet *a = sm_expect(pub, MQTT_PUBACK);
        if (a->u.ack.reason != 0)
            break;
        n++;
    }
    assert_true(seq < MAX_MSGS && n > 5);
    sm_client *sub = sm_connect(b, "sub", sub_opts(true));
    sm_settle(b);
    assert_int_equal(sm_pending(sub), n); /* the whole queue in the window */
    /* Every PUBACK in one write: one read, one batch, one commit. */
    size_t len = 0;
    uint8_t *acks = malloc((size_t)n * 4);
    assert_non_null(acks);
    for (unsigned i = 0; i < n; i++) {
        sm_msg m = sm_expect_publish(sub);
        mqtt_packet p = {.type = MQTT_PUBACK};
        p.u.ack.packet_id = m.pid;
        int w = mqtt_encode(&p, MQTT_V5, acks + len, 4);
        assert_int_equal(w, 4);
        len += 4;
    }
    sm_write(sub, acks, len);
    free(acks);
    sm_settle(b);
    assert_int_equal(sm_session(b, "sub")->inflight.count, 0);
    assert_false(store_refusing(b->srv.store));
    accepted_again(b, pub, sub);
    sm_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v5_qos1_refused_never_acknowledged),
        cmocka_unit_test(v5_pipelined_each_ack_by_its_batch),
        cmocka_unit_test(v311_refused_closes_connection),
        cmocka_unit_test(v5_qos2_refused_id_not_held),
        cmocka_unit_test(room_usable_right_after_one_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
