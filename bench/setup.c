/* Building the connection set of each scenario: who publishes where, who
 * subscribes to what, which thread owns whom, buffer sizes. Everything is
 * allocated here, before the first connection is made. */
#include "setup.h"
#include "bench.h"
#include "errors.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Expand %i (index), %c (client id) and %u (user name) in pat. */
int topic_expand(const char *pat, uint32_t i, const char *cid, const char *user,
                 char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pat; *p; p++) {
        char tmp[32];
        const char *ins = NULL;
        if (p[0] == '%' && p[1] == 'i') {
            snprintf(tmp, sizeof(tmp), "%u", i);
            ins = tmp;
        } else if (p[0] == '%' && p[1] == 'c') {
            ins = cid;
        } else if (p[0] == '%' && p[1] == 'u') {
            ins = user ? user : "";
        }
        if (ins) {
            size_t l = strlen(ins);
            if (n + l >= cap)
                return IMQTT_ENOSPACE;
            memcpy(out + n, ins, l);
            n += l;
            p++;
            continue;
        }
        if (n + 1 >= cap)
            return IMQTT_ENOSPACE;
        out[n++] = *p;
    }
    out[n] = '\0';
    return (int)n;
}

static uint32_t clamp_u32(uint64_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

int setup_alloc(uint32_t nconns, uint32_t npubs)
{
    G.nconns = nconns;
    G.npubs = npubs;
    G.conns = calloc(nconns ? nconns : 1, sizeof(*G.conns));
    G.pubs = calloc(npubs ? npubs : 1, sizeof(*G.pubs));
    if (!G.conns || !G.pubs)
        return IMQTT_ENOMEM;
    for (uint32_t i = 0; i < nconns; i++) {
        /* One allocation each: handles must not move, and a failed run
         * should not depend on one giant block. */
        G.conns[i] = calloc(1, sizeof(bench_conn));
        if (!G.conns[i])
            return IMQTT_ENOMEM;
        G.conns[i]->index = i;
        G.conns[i]->pub_id = -1;
    }
    return 0;
}

/* Buffers: publishers need room for their window (or ~50 ms of their open
 * loop rate); receivers read in 64 KiB gulps; idle connections stay small
 * so that 10,000 of them cost the bench little. */
int setup_buffers(bench_conn *c, bool receiver)
{
    uint32_t pkt = (uint32_t)G.o.size + 200;
    bool many = G.nconns > 1000;
    uint32_t r = receiver ? (many ? 8192 : 65536) : 4096;
    uint32_t w = 1024;
    if (receiver)
        w = many ? 2048 : 16384; /* acks: 4 bytes per message read */
    if (c->pub_id >= 0) {
        uint64_t want = (uint64_t)pkt * (uint64_t)G.o.window;
        if (!closed_loop_opts())
            want = (uint64_t)pkt * 256;
        w = clamp_u32(want, 8192, 4u << 20);
        c->payload = calloc(1, (size_t)G.o.size);
        if (!c->payload)
            return IMQTT_ENOMEM;
        memset(c->payload + BENCH_HDR_LEN, 'x',
               (size_t)G.o.size - BENCH_HDR_LEN);
    }
    if (r < 2 * pkt)
        r = 2 * pkt;
    if (w < pkt + 64)
        w = pkt + 64;
    return client_alloc(c, r, w);
}

bool closed_loop_opts(void)
{
    return G.o.rate <= 0 && G.o.msg_interval_ms <= 0;
}

/* Hand every connection to its thread (conn->th set by the caller). */
int setup_threads(void)
{
    for (int t = 0; t < G.nthreads; t++) {
        G.th[t].conns = calloc(G.nconns ? G.nconns : 1, sizeof(bench_conn *));
        if (!G.th[t].conns)
            return IMQTT_ENOMEM;
    }
    for (uint32_t i = 0; i < G.nconns; i++) {
        bench_thread *th = G.conns[i]->th;
        th->conns[th->nconns++] = G.conns[i];
    }
    return 0;
}

static void set_client_id(bench_conn *c, const char *role, uint32_t i)
{
    snprintf(c->client_id, sizeof(c->client_id), "%s-%s%u", G.o.prefix, role,
             i);
}

static int set_topic(char *dst, size_t cap, uint16_t *len, const char *pat,
                     uint32_t i, const bench_conn *c)
{
    int n = topic_expand(pat, i, c->client_id, G.o.user, dst, cap);
    if (n <= 0)
        return IMQTT_EINVAL;
    *len = (uint16_t)n;
    return 0;
}

static int make_streams(bench_conn *c, uint32_t base, uint32_t n)
{
    c->stream_base = base;
    c->nstreams = n;
    c->streams = n ? calloc(n, sizeof(bench_stream)) : NULL;
    return n && !c->streams ? IMQTT_ENOMEM : 0;
}

/* The flow scenarios. Pairs (p2p) share a thread, so that a delivery
 * credits its publisher without crossing threads. */
int setup_flow(void)
{
    const bench_opts *o = &G.o;
    uint32_t n = (uint32_t)o->count, T = (uint32_t)G.nthreads;
    uint32_t nconns = 0, npubs = 0;
    switch (o->cmd) {
    case CMD_CONN:
    case CMD_SUB:
        nconns = n;
        break;
    case CMD_PUB:
        nconns = npubs = n;
        break;
    case CMD_P2P:
        nconns = 2 * n;
        npubs = n;
        break;
    case CMD_FANOUT:
        nconns = n + 1;
        npubs = 1;
        break;
    case CMD_FANIN:
        nconns = n + 1;
        npubs = n;
        break;
    default:
        return IMQTT_EINVAL;
    }
    int rc = setup_alloc(nconns, npubs);
    if (rc < 0)
        return rc;
    const char *def_topic = o->cmd == CMD_P2P      ? "bench/p2p/%i"
                            : o->cmd == CMD_FANOUT ? "bench/fanout"
                            : o->cmd == CMD_FANIN  ? "bench/fanin/%i"
                                                   : "bench/%i";
    const char *pat = o->topic ? o->topic : def_topic;
    for (uint32_t k = 0; k < nconns; k++) {
        bench_conn *c = G.conns[k];
        bool recv = false;
        switch (o->cmd) {
        case CMD_CONN:
            set_client_id(c, "c", k);
            c->th = &G.th[k % T];
            break;
        case CMD_SUB:
            set_client_id(c, "s", k);
            c->th = &G.th[k % T];
            rc = set_topic(c->sub_filter, sizeof(c->sub_filter),
                           &c->sub_filter_len, pat, k, c);
            recv = true;
            if (rc == 0)
                rc = make_streams(c, 0, (uint32_t)o->expect_pubs);
            break;
        case CMD_PUB:
            set_client_id(c, "p", k);
            c->th = &G.th[k % T];
            c->pub_id = (int32_t)k;
            rc = set_topic(c->pub_topic, sizeof(c->pub_topic),
                           &c->pub_topic_len, pat, k, c);
            break;
        case CMD_P2P: {
            uint32_t pair = k / 2;
            c->th = &G.th[pair % T];
            if (k % 2 == 0) {
                set_client_id(c, "s", pair);
                rc = set_topic(c->sub_filter, sizeof(c->sub_filter),
                               &c->sub_filter_len, pat, pair, c);
                recv = true;
                if (rc == 0)
                    rc = make_streams(c, pair, 1);
            } else {
                set_client_id(c, "p", pair);
                c->pub_id = (int32_t)pair;
                c->expect_per_msg = 1;
                rc = set_topic(c->pub_topic, sizeof(c->pub_topic),
                               &c->pub_topic_len, pat, pair, c);
            }
            break;
        }
        case CMD_FANOUT:
            c->th = &G.th[k % T];
            if (k == 0) {
                set_client_id(c, "p", 0);
                c->pub_id = 0;
                c->expect_per_msg = n;
                rc = set_topic(c->pub_topic, sizeof(c->pub_topic),
                               &c->pub_topic_len, pat, 0, c);
            } else {
                set_client_id(c, "s", k - 1);
                rc = set_topic(c->sub_filter, sizeof(c->sub_filter),
                               &c->sub_filter_len, pat, k - 1, c);
                recv = true;
                if (rc == 0)
                    rc = make_streams(c, 0, 1);
            }
            break;
        case CMD_FANIN:
            c->th = &G.th[k % T];
            if (k == 0) {
                set_client_id(c, "s", 0);
                /* The wildcard form of the pattern: %i becomes '+'. */
                char wild[160];
                const char *pi = strstr(pat, "%i");
                if (pi)
                    snprintf(wild, sizeof(wild), "%.*s+%s", (int)(pi - pat),
                             pat, pi + 2);
                else
                    snprintf(wild, sizeof(wild), "%s", pat);
                rc = set_topic(c->sub_filter, sizeof(c->sub_filter),
                               &c->sub_filter_len, wild, 0, c);
                recv = true;
                if (rc == 0)
                    rc = make_streams(c, 0, n);
            } else {
                set_client_id(c, "p", k - 1);
                c->pub_id = (int32_t)(k - 1);
                c->expect_per_msg = 1;
                rc = set_topic(c->pub_topic, sizeof(c->pub_topic),
                               &c->pub_topic_len, pat, k - 1, c);
            }
            break;
        default:
            break;
        }
        if (rc < 0)
            return rc;
        if (c->pub_id >= 0)
            G.pubs[c->pub_id] = c;
        rc = setup_buffers(c, recv);
        if (rc < 0)
            return rc;
    }
    G.expect_per_msg = o->cmd == CMD_FANOUT                         ? n
                       : (o->cmd == CMD_P2P || o->cmd == CMD_FANIN) ? 1
                                                                    : 0;
    return setup_threads();
}
