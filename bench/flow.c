/* The plain scenarios: conn, pub, sub, p2p, fanout, fanin.
 *
 * Closed loop (-w W): a publisher keeps at most W messages that have not
 * yet reached all their receivers; every delivery credits the publisher
 * (an atomic counter, because the receiver may live on another thread)
 * and lets it send the next one. Open loop (-R RATE, or -I for pub): each
 * thread's 1 ms tick sends what is due by then. */
#include "bench.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- payload ----------------------------------------------------------- */

/* Layout (host byte order; sender and receiver are one machine):
 *   0 magic u32, 4 publisher id u32, 8 sequence u64, 16 send time u64
 *   (CLOCK_MONOTONIC ns, comparable across processes), 24 aux0 u32,
 *   28 aux1 u32 (scenario data: im puts the sender's user and device). */
void payload_write(bench_conn *c, uint64_t seq, uint64_t now_ns, uint32_t aux0,
                   uint32_t aux1)
{
    uint8_t *p = c->payload;
    uint32_t magic = BENCH_MAGIC, id = (uint32_t)c->pub_id;
    memcpy(p, &magic, 4);
    memcpy(p + 4, &id, 4);
    memcpy(p + 8, &seq, 8);
    memcpy(p + 16, &now_ns, 8);
    memcpy(p + 24, &aux0, 4);
    memcpy(p + 28, &aux1, 4);
}

/* Record seq on a stream: a new highest value moves the window, a value
 * inside the window is either a duplicate (bit already set) or a late
 * arrival (out of order); below the window we cannot tell, so it counts
 * as out of order. */
void stream_record(bench_thread *th, bench_stream *s, uint64_t seq)
{
    if (seq >= s->top) {
        uint64_t shift = seq + 1 - s->top;
        s->bits = shift >= 64 ? 0 : s->bits << shift;
        s->bits |= 1;
        s->top = seq + 1;
        return;
    }
    uint64_t k = s->top - 1 - seq;
    if (k >= 64) {
        STAT_ADD(th, ooo, 1);
    } else if ((s->bits >> k) & 1) {
        STAT_ADD(th, dup, 1);
    } else {
        s->bits |= (uint64_t)1 << k;
        STAT_ADD(th, ooo, 1);
    }
}

/* ---- sending ----------------------------------------------------------- */

static bool closed_loop(void)
{
    return G.o.rate <= 0 && G.o.msg_interval_ms <= 0;
}

static bool send_one(bench_conn *c, uint64_t now)
{
    payload_write(c, c->seq, now, 0, 0);
    if (!client_publish(c, (const uint8_t *)c->pub_topic, c->pub_topic_len,
                        (uint32_t)G.o.size, G.o.qos))
        return false;
    c->seq++;
    return true;
}

static void pub_pump(bench_conn *c)
{
    if (c->pub_id < 0 || !closed_loop() ||
        atomic_load_explicit(&G.phase, memory_order_relaxed) != PH_RUN)
        return;
    uint64_t now = bench_now_ns();
    while (!G.o.limit || c->seq < G.o.limit) {
        if (c->expect_per_msg) {
            uint64_t done =
                atomic_load_explicit(&c->e2e_received, memory_order_relaxed) /
                c->expect_per_msg;
            if (c->seq - done >= (uint64_t)G.o.window)
                break;
        }
        if (!send_one(c, now))
            break;
    }
}

void flow_credit_publisher(bench_thread *th, uint32_t pub_id)
{
    if (pub_id >= G.npubs)
        return;
    bench_conn *pub = G.pubs[pub_id];
    atomic_fetch_add_explicit(&pub->e2e_received, 1, memory_order_relaxed);
    if (!closed_loop())
        return;
    if (pub->th == th) {
        pub_pump(pub);
    } else if (!atomic_load_explicit(&pub->th->kicked, memory_order_relaxed)) {
        atomic_store_explicit(&pub->th->kicked, 1, memory_order_relaxed);
        uv_async_send(&pub->th->wake);
    }
}

static void flow_tick(bench_thread *th, uint64_t now)
{
    if (atomic_load_explicit(&G.phase, memory_order_relaxed) != PH_RUN)
        return;
    if (atomic_exchange(&th->kicked, 0) || closed_loop()) {
        /* Closed loop: pick up credits from other threads, and start. */
        for (uint32_t i = 0; i < th->nconns; i++)
            pub_pump(th->conns[i]);
        return;
    }
    double per_pub = G.o.rate > 0 ? G.o.rate / (double)G.npubs
                                  : 1000.0 / G.o.msg_interval_ms;
    double elapsed = (double)(now - th->run_t0) / 1e9;
    for (uint32_t i = 0; i < th->nconns; i++) {
        bench_conn *c = th->conns[i];
        if (c->pub_id < 0)
            continue;
        /* Publishers are spread over one period, so that 100 of them at
         * 100 msgs/s do not send 100 messages in the same millisecond
         * (that burst would be measured as broker latency). */
        double off = (double)c->pub_id / (double)G.npubs / per_pub;
        if (elapsed < off)
            continue;
        uint64_t want = (uint64_t)((elapsed - off) * per_pub) + 1;
        if (G.o.limit && want > G.o.limit)
            want = G.o.limit;
        while (c->seq < want && send_one(c, now))
            ;
    }
}

static void flow_message(bench_conn *c, const mqtt_publish *p)
{
    bench_thread *th = c->th;
    uint32_t magic, pub_id;
    uint64_t seq, t;
    if (p->payload.len < BENCH_HDR_LEN) {
        STAT_ADD(th, unexpected, 1);
        return;
    }
    memcpy(&magic, p->payload.ptr, 4);
    memcpy(&pub_id, p->payload.ptr + 4, 4);
    memcpy(&seq, p->payload.ptr + 8, 8);
    memcpy(&t, p->payload.ptr + 16, 8);
    if (magic != BENCH_MAGIC) {
        STAT_ADD(th, unexpected, 1);
        return;
    }
    uint64_t now = bench_now_ns();
    hist_record(&th->lat, now > t ? now - t : 0);
    STAT_ADD(th, delivered, 1);
    uint32_t slot = pub_id - c->stream_base;
    if (slot < c->nstreams)
        stream_record(th, &c->streams[slot], seq);
    flow_credit_publisher(th, pub_id);
}

static void flow_room(bench_conn *c)
{
    pub_pump(c);
}

void flow_setup_ops(void)
{
    G.ops.on_message = flow_message;
    G.ops.on_room = flow_room;
    G.ops.on_tick = flow_tick;
}
