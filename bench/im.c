/* The im scenario: U users x D devices connect as `u{n}@d{k}` (JWTs
 * minted from --jwt-secret), and each user sends chat messages at
 * --im-rate to a random peer's inbox `p2p/talk/u{peer}` (and, with
 * --groups, one message in five to its group `g/talk/g{n}`), from its
 * devices in turn.
 *
 * Every message has a record (preallocated per user, sized for the run)
 * that receivers mark: a bit per device of the recipient, a bit per other
 * device of the sender (the multi-device sync copy). A delivery to the
 * sending device itself is an echo. At the end every record must be
 * complete. All devices of a user live on one thread, so the sender's
 * state needs no lock; records are marked with atomics because recipients
 * may be on other threads. */
#include "bench.h"
#include "errors.h"
#include "setup.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUP_EVERY 5 /* one message in five goes to the group */
#define F_GROUP     1u

typedef struct im_rec {
    uint32_t target; /* peer user, or group */
    uint16_t device; /* sending device */
    uint16_t flags;
    _Atomic uint32_t mask;  /* p2p: recipient devices, then sender's */
    _Atomic uint32_t count; /* every delivery except echoes */
} im_rec;

typedef struct im_user {
    uint64_t seq; /* messages sent */
    im_rec *recs;
    uint32_t cap;
    uint32_t rng;
} im_user;

static im_user *users;

/* Results filled by im_check. */
static struct {
    uint64_t messages, lost_recipient, lost_sync, lost_group, dup, echo,
        foreign, bad_from;
} res;
static _Atomic uint64_t dup_count, foreign_count, bad_from_count;

static uint32_t group_of(uint32_t u)
{
    return (u / (uint32_t)G.o.group_size) % (uint32_t)G.o.groups;
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

int im_setup(void)
{
    const bench_opts *o = &G.o;
    uint32_t U = (uint32_t)o->users, D = (uint32_t)o->devices;
    uint32_t T = (uint32_t)G.nthreads;
    int rc = setup_alloc(U * D, U);
    if (rc < 0)
        return rc;
    users = calloc(U, sizeof(*users));
    if (!users)
        return IMQTT_ENOMEM;
    uint32_t cap = (uint32_t)(o->im_rate * o->duration * 1.2) + 16;
    if (o->limit && o->limit < cap)
        cap = (uint32_t)o->limit;
    long exp = (long)time(NULL) + o->jwt_ttl;
    for (uint32_t u = 0; u < U; u++) {
        users[u].recs = calloc(cap, sizeof(im_rec));
        if (!users[u].recs)
            return IMQTT_ENOMEM;
        users[u].cap = cap;
        users[u].rng = 2654435761u * (u + 1);
        char uname[32], groups[48];
        snprintf(uname, sizeof(uname), "u%u", u);
        if (o->groups)
            snprintf(groups, sizeof(groups), "[\"g%u\"]", group_of(u));
        for (uint32_t d = 0; d < D; d++) {
            bench_conn *c = G.conns[u * D + d];
            c->th = &G.th[u % T];
            c->user = u;
            c->device = d;
            c->pub_id = d == 0 ? (int32_t)u : -1;
            snprintf(c->client_id, sizeof(c->client_id), "u%u@d%u", u, d);
            c->sub_opts_no_local = 1;
            if (o->inbox_sub)
                c->sub_filter_len = (uint16_t)snprintf(
                    c->sub_filter, sizeof(c->sub_filter), "p2p/talk/u%u", u);
            if (o->groups)
                c->sub_filter2_len =
                    (uint16_t)snprintf(c->sub_filter2, sizeof(c->sub_filter2),
                                       "g/talk/g%u", group_of(u));
            if (o->jwt_secret &&
                jwt_mint(o->jwt_secret, uname, exp, o->groups ? groups : NULL,
                         c->password, sizeof(c->password)) < 0)
                return IMQTT_ENOSPACE;
            /* Every device may send: each needs a payload buffer. */
            int32_t keep = c->pub_id;
            c->pub_id = 0;
            rc = setup_buffers(c, true);
            c->pub_id = keep;
            if (rc < 0)
                return rc;
        }
        G.pubs[u] = G.conns[u * D];
    }
    return setup_threads();
}

static uint32_t group_members(uint32_t g)
{
    uint32_t n = 0;
    for (uint32_t u = 0; u < (uint32_t)G.o.users; u++)
        n += group_of(u) == g;
    return n;
}

/* ---- sending ----------------------------------------------------------- */

static void im_send(bench_thread *th, uint32_t u, uint64_t now)
{
    im_user *us = &users[u];
    uint32_t D = (uint32_t)G.o.devices;
    if (us->seq >= us->cap)
        return;
    uint32_t d = (uint32_t)(us->seq % D);
    bench_conn *c = G.conns[u * D + d];
    if (c->state != CS_READY)
        return;
    im_rec *r = &us->recs[us->seq];
    char topic[64];
    int tl;
    bool group = G.o.groups && us->seq % GROUP_EVERY == GROUP_EVERY - 1;
    if (group) {
        r->target = group_of(u);
        r->flags = F_GROUP;
        tl = snprintf(topic, sizeof(topic), "g/talk/g%u", r->target);
    } else {
        uint32_t peer = xorshift(&us->rng) % ((uint32_t)G.o.users - 1);
        if (peer >= u)
            peer++;
        r->target = peer;
        r->flags = 0;
        tl = snprintf(topic, sizeof(topic), "p2p/talk/u%u", peer);
    }
    r->device = (uint16_t)d;
    int32_t keep = c->pub_id;
    c->pub_id = (int32_t)u;
    payload_write(c, us->seq, now, u, (d << 16) | r->flags);
    c->pub_id = keep;
    if (client_publish(c, (const uint8_t *)topic, (uint16_t)tl,
                       (uint32_t)G.o.size, G.o.qos))
        /* Release: the check on the main thread reads the record only
         * after it sees the new count (im_check). */
        __atomic_store_n(&us->seq, us->seq + 1, __ATOMIC_RELEASE);
    (void)th;
}

static void im_tick(bench_thread *th, uint64_t now)
{
    /* --im-rate 0: connections that only hold their sessions (the idle
     * IM memory row of bench/compare); the rate divides below. */
    if (atomic_load_explicit(&G.phase, memory_order_relaxed) != PH_RUN ||
        G.o.im_rate <= 0)
        return;
    uint32_t U = (uint32_t)G.o.users, T = (uint32_t)G.nthreads;
    for (uint32_t u = (uint32_t)th->index; u < U; u += T) {
        /* Users start at staggered offsets so that their messages do not
         * all leave in the same millisecond. */
        uint64_t off = (uint64_t)((double)u / U * 1e9 / G.o.im_rate);
        uint64_t due_u = now - th->run_t0 < off
                             ? 0
                             : (uint64_t)((double)(now - th->run_t0 - off) *
                                          G.o.im_rate / 1e9) +
                                   1;
        while (users[u].seq < due_u && users[u].seq < users[u].cap) {
            uint64_t before = users[u].seq;
            im_send(th, u, now);
            if (users[u].seq == before)
                break;
        }
    }
}

/* ---- receiving --------------------------------------------------------- */

static void check_from(const mqtt_publish *p, uint32_t u, uint32_t d)
{
    char want[48];
    int wl = snprintf(want, sizeof(want), "u%u@d%u", u, d);
    uint32_t pos = 0;
    mqtt_user_prop up;
    while (mqtt_props_next_user(p->props.raw, &pos, &up))
        if (up.key.len == 4 && memcmp(up.key.ptr, "from", 4) == 0) {
            if (up.value.len != (uint32_t)wl ||
                memcmp(up.value.ptr, want, (size_t)wl) != 0)
                atomic_fetch_add(&bad_from_count, 1);
            return;
        }
    atomic_fetch_add(&bad_from_count, 1);
}

static void im_message(bench_conn *c, const mqtt_publish *p)
{
    bench_thread *th = c->th;
    uint32_t magic, u, aux1;
    uint64_t seq, t;
    if (p->payload.len < BENCH_HDR_LEN) {
        STAT_ADD(th, unexpected, 1);
        return;
    }
    memcpy(&magic, p->payload.ptr, 4);
    memcpy(&seq, p->payload.ptr + 8, 8);
    memcpy(&t, p->payload.ptr + 16, 8);
    memcpy(&u, p->payload.ptr + 24, 4);
    memcpy(&aux1, p->payload.ptr + 28, 4);
    if (magic != BENCH_MAGIC || u >= (uint32_t)G.o.users ||
        seq >= users[u].cap) {
        STAT_ADD(th, unexpected, 1);
        return;
    }
    uint32_t d = aux1 >> 16, D = (uint32_t)G.o.devices;
    uint64_t now = bench_now_ns();
    STAT_ADD(th, delivered, 1);
    if (G.o.version == MQTT_V5)
        check_from(p, u, d);
    if (c->user == u && c->device == d) {
        STAT_ADD(th, im_echo, 1);
        return;
    }
    im_rec *r = &users[u].recs[seq];
    uint64_t lat = now > t ? now - t : 0;
    if (r->flags & F_GROUP) {
        atomic_fetch_add(&r->count, 1);
        hist_record(c->user == u ? &th->im_lat_sync : &th->lat, lat);
        return;
    }
    uint32_t bit;
    if (c->user == r->target) {
        bit = c->device;
        hist_record(&th->lat, lat);
    } else if (c->user == u) {
        bit = D + c->device;
        hist_record(&th->im_lat_sync, lat);
    } else {
        atomic_fetch_add(&foreign_count, 1);
        return;
    }
    uint32_t old = atomic_fetch_or(&r->mask, 1u << bit);
    atomic_fetch_add(&r->count, 1);
    if (old & (1u << bit))
        atomic_fetch_add(&dup_count, 1);
}

void im_setup_ops(void)
{
    G.ops.on_message = im_message;
    G.ops.on_tick = im_tick;
    G.ops.on_room = NULL;
}

/* ---- checking ---------------------------------------------------------- */

/* Counts what is missing; true when every sent message reached every
 * device it should have, exactly once, and none came back as an echo. */
bool im_check(void)
{
    uint32_t U = (uint32_t)G.o.users, D = (uint32_t)G.o.devices;
    uint32_t G_ = (uint32_t)G.o.groups;
    static uint32_t *members;
    if (G_ && !members) {
        members = calloc(G_, sizeof(*members));
        for (uint32_t g = 0; members && g < G_; g++)
            members[g] = group_members(g);
    }
    memset(&res, 0, sizeof(res));
    uint32_t all_recv = (1u << D) - 1;
    for (uint32_t u = 0; u < U; u++) {
        /* seq is written by the user's thread: a message sent after this
         * read is simply not checked yet; acquire pairs with im_send. */
        uint64_t n = __atomic_load_n(&users[u].seq, __ATOMIC_ACQUIRE);
        res.messages += n;
        for (uint64_t s = 0; s < n; s++) {
            im_rec *r = &users[u].recs[s];
            uint32_t m = atomic_load(&r->mask);
            if (r->flags & F_GROUP) {
                uint32_t want = members ? members[r->target] * D - 1 : 0;
                uint32_t got = atomic_load(&r->count);
                if (got < want)
                    res.lost_group += want - got;
                continue;
            }
            uint32_t sync_want = (all_recv & ~(1u << r->device)) << D;
            res.lost_recipient += (uint64_t)__builtin_popcount(all_recv & ~m);
            res.lost_sync += (uint64_t)__builtin_popcount(sync_want & ~m);
        }
    }
    for (int i = 0; i < G.nthreads; i++)
        res.echo += STAT_GET(&G.th[i], im_echo);
    res.dup = atomic_load(&dup_count);
    res.foreign = atomic_load(&foreign_count);
    res.bad_from = atomic_load(&bad_from_count);
    return res.lost_recipient == 0 && res.lost_sync == 0 &&
           res.lost_group == 0 && res.echo == 0 && res.dup == 0 &&
           res.foreign == 0 && res.bad_from == 0;
}

void im_report(FILE *out, bool json)
{
    bool ok = im_check();
    bench_hist sync;
    hist_init(&sync);
    for (int i = 0; i < G.nthreads; i++)
        hist_merge(&sync, &G.th[i].im_lat_sync);
    if (json) {
        fprintf(out,
                ",\"im\":{\"users\":%d,\"devices\":%d,\"groups\":%d,"
                "\"messages\":%llu,\"lost_recipient\":%llu,"
                "\"lost_sync\":%llu,\"lost_group\":%llu,\"duplicates\":%llu,"
                "\"echo\":%llu,\"foreign\":%llu,\"bad_from\":%llu,"
                "\"sync_p99_us\":%.1f,\"ok\":%s}",
                G.o.users, G.o.devices, G.o.groups,
                (unsigned long long)res.messages,
                (unsigned long long)res.lost_recipient,
                (unsigned long long)res.lost_sync,
                (unsigned long long)res.lost_group, (unsigned long long)res.dup,
                (unsigned long long)res.echo, (unsigned long long)res.foreign,
                (unsigned long long)res.bad_from,
                (double)hist_quantile(&sync, 0.99) / 1000.0,
                ok ? "true" : "false");
        return;
    }
    fprintf(out,
            "im           %d users x %d devices, %llu messages: missing at "
            "recipient %llu, missing sync %llu, missing group %llu, "
            "duplicates %llu, echoes %llu, misrouted %llu, bad 'from' %llu "
            "-> %s\n",
            G.o.users, G.o.devices, (unsigned long long)res.messages,
            (unsigned long long)res.lost_recipient,
            (unsigned long long)res.lost_sync,
            (unsigned long long)res.lost_group, (unsigned long long)res.dup,
            (unsigned long long)res.echo, (unsigned long long)res.foreign,
            (unsigned long long)res.bad_from, ok ? "OK" : "FAILED");
    if (sync.count)
        fprintf(out, "sync copies  p50 %.1f us  p99 %.1f us\n",
                (double)hist_quantile(&sync, 0.5) / 1000.0,
                (double)hist_quantile(&sync, 0.99) / 1000.0);
}
