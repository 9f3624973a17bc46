/* In-process harness for the broker's state-machine tests (test_sm_*.c).
 *
 * A real server (server_init with a JSON config and no listening socket)
 * on a private libuv loop, and small clients built on proto/: each client
 * is one end of a socketpair whose other end the broker serves through
 * conn_adopt(), as tests/fuzz/fuzz_broker.c does. Clients encode packets
 * with proto's encoder and cut and decode the broker's replies with proto's
 * frame parser and decoder, so every byte goes through the broker's real
 * read path, handlers, store batches and flush. The loop is driven in
 * UV_RUN_NOWAIT rounds from the test's thread; every wait is bounded in
 * time (SM_WAIT_MS) and fails the test when it runs out.
 *
 * Header only, static functions: each test_*.c is its own executable.
 * Include it first (it includes cmocka with its prerequisites).
 *
 * Ownership: sm_start allocates the sm_broker, which owns its server,
 * loop, clients and temporary store directory until sm_stop frees it all.
 * A client is owned by its broker: sm_close / sm_stop free it. A packet
 * returned by sm_expect / sm_take is owned by its client and valid until
 * the next sm_expect / sm_take on that client.
 *
 * What "idle" means reads the server's internals (flush and ack lists,
 * commits in flight, sessions waiting for a store read, writes in flight:
 * sm_idle), in one place, for when struct server is split.
 */
#ifndef IMQTT_SM_HARNESS_H
#define IMQTT_SM_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's FTW_DEPTH / FTW_PHYS */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four above, which it needs */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "errors.h"
#include "im.h"
#include "log.h"
#include "packet.h"
#include "reason.h"
#include "server.h"
#include "session.h"
#include "store.h"

/* Upper bound of one wait (a reply, the broker settling). Generous for
 * the Sanitize build on a loaded 2-core machine; a healthy run takes
 * milliseconds. */
#ifndef SM_WAIT_MS
#define SM_WAIT_MS 20000
#endif
#define SM_MAX_CLIENTS 16

/* The members every test config starts with: quiet logs, no $SYS. */
#define SM_BASE "\"log\": {\"level\": \"error\"}, \"sys_interval\": 0"
/* Memory only (the default durability is "process" in ./data). */
#define SM_NONE "\"store\": {\"durability\": \"none\"}"
/* A durable store in the broker's temporary directory ("$DIR" is
 * replaced by it); extra store members may follow inside the braces. */
#define SM_PROCESS "\"store\": {\"durability\": \"process\", \"dir\": \"$DIR\""

typedef struct sm_pkt {
    uint8_t *raw; /* owned copy of the packet's bytes */
    uint32_t len;
    mqtt_packet p; /* views into raw */
} sm_pkt;

typedef struct sm_broker sm_broker;

typedef struct sm_client {
    sm_broker *b; /* borrowed: the broker owns the client */
    int fd;       /* our end of the socketpair */
    uint8_t version;
    bool eof; /* the broker closed its end */
    char id[64];
    /* bytes read, not yet cut into packets */
    uint8_t *in;
    size_t in_len, in_cap;
    /* packets cut and decoded, not yet taken, oldest at qhead */
    sm_pkt *q;
    size_t qhead, qlen, qcap;
    sm_pkt cur; /* the packet last taken */
    /* what the CONNACK said */
    bool session_present;
    uint8_t connack_reason;
    uint16_t connack_receive_max; /* v5; 0: absent */
} sm_client;

struct sm_broker {
    uv_loop_t loop;
    server srv;
    listener lst;
    bool running;
    char tmp[64]; /* temporary directory ("": none made yet) */
    char dir[96]; /* the store directory inside it */
    char *config; /* owned: the JSON text, for sm_restart */
    sm_client *clients[SM_MAX_CLIENTS];
};

/* ---- time and files ------------------------------------------------------ */

static inline uint64_t sm_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline int sm_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void sm_rm_rf(const char *dir)
{
    nftw(dir, sm_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the client's input -------------------------------------------------- */

static inline void sm_pkt_free(sm_pkt *p)
{
    free(p->raw);
    memset(p, 0, sizeof(*p));
}

/* Cut every whole packet in cl->in, decode it for cl's version and queue
 * it. A reply the decoder refuses fails the test: the broker sent bytes a
 * client cannot read. */
static inline void sm_cut(sm_client *cl)
{
    size_t off = 0;
    while (off < cl->in_len) {
        mqtt_frame f;
        int r = mqtt_frame_parse(cl->in + off, cl->in_len - off, 0, &f);
        if (r == 0)
            break;
        if (r < 0)
            fail_msg("client %s: broker sent an unframable packet: %s", cl->id,
                     imqtt_strerror(r));
        if (cl->qhead + cl->qlen == cl->qcap) {
            if (cl->qhead > 0) {
                memmove(cl->q, cl->q + cl->qhead, cl->qlen * sizeof(sm_pkt));
                cl->qhead = 0;
            } else {
                cl->qcap = cl->qcap ? cl->qcap * 2 : 64;
                cl->q = realloc(cl->q, cl->qcap * sizeof(sm_pkt));
                assert_non_null(cl->q);
            }
        }
        sm_pkt *p = &cl->q[cl->qhead + cl->qlen];
        p->len = (uint32_t)r;
        p->raw = malloc((size_t)r);
        assert_non_null(p->raw);
        memcpy(p->raw, cl->in + off, (size_t)r);
        /* Frame again from the copy: the decoded views point into it. */
        assert_int_equal(mqtt_frame_parse(p->raw, p->len, 0, &f), r);
        int rc = mqtt_decode(&f, cl->version, &p->p);
        if (rc < 0)
            fail_msg("client %s: broker sent an undecodable %s: %s", cl->id,
                     mqtt_type_name(f.type), imqtt_strerror(rc));
        cl->qlen++;
        off += (size_t)r;
    }
    memmove(cl->in, cl->in + off, cl->in_len - off);
    cl->in_len -= off;
}

/* Read what the broker wrote to cl. Returns bytes read. */
static inline size_t sm_read(sm_client *cl)
{
    size_t total = 0;
    while (!cl->eof) {
        if (cl->in_cap - cl->in_len < 16384) {
            cl->in_cap = cl->in_cap ? cl->in_cap * 2 : 65536;
            cl->in = realloc(cl->in, cl->in_cap);
            assert_non_null(cl->in);
        }
        ssize_t n = read(cl->fd, cl->in + cl->in_len, cl->in_cap - cl->in_len);
        if (n > 0) {
            cl->in_len += (size_t)n;
            total += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            cl->eof = true;
        break;
    }
    if (total)
        sm_cut(cl);
    return total;
}

/* ---- driving the loop ---------------------------------------------------- */

/* One loop round, then every client reads. Returns bytes the clients
 * read. */
static inline size_t sm_round(sm_broker *b)
{
    uv_run(&b->loop, UV_RUN_NOWAIT);
    size_t n = 0;
    for (int i = 0; i < SM_MAX_CLIENTS; i++)
        if (b->clients[i])
            n += sm_read(b->clients[i]);
    return n;
}

/* Bytes cl wrote that the broker has not read yet. */
static inline int sm_unread(const sm_client *cl)
{
    int n = 0;
    if (cl->fd < 0 || ioctl(cl->fd, SIOCOUTQ, &n) < 0)
        return 0;
    return n;
}

/* Whether the broker has nothing left to do: every client byte read,
 * nothing to flush or commit, no write in flight. */
static inline bool sm_idle(sm_broker *b)
{
    server *srv = &b->srv;
    worker *w = &srv->workers[0];
    if (w->flush_head || w->ack_head || w->commits_n || srv->wait_head ||
        store_pending(srv->store))
        return false;
    for (conn *c = w->conns; c; c = c->next)
        if (c->writes_in_flight)
            return false;
    for (int i = 0; i < SM_MAX_CLIENTS; i++)
        if (b->clients[i] && sm_unread(b->clients[i]) > 0)
            return false;
    return true;
}

/* Run the loop until the broker is idle and the clients have read all it
 * wrote (three quiet rounds in a row), at most SM_WAIT_MS. */
static inline void sm_settle(sm_broker *b)
{
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    int quiet = 0;
    while (quiet < 3) {
        if (sm_ms() > deadline)
            fail_msg("the broker did not settle within %d ms", SM_WAIT_MS);
        size_t n = sm_round(b);
        if (n == 0 && sm_idle(b)) {
            quiet++;
        } else {
            quiet = 0;
            if (n == 0)
                usleep(100); /* waiting for the store thread */
        }
    }
}

/* ---- the broker ---------------------------------------------------------- */

/* Temporary directories of brokers that were not stopped (their test
 * failed half-way): removed at exit, so failures leave no litter. */
static sm_broker *sm_live[64];

static inline void sm_remove_leftovers(void)
{
    for (int i = 0; i < 64; i++)
        if (sm_live[i] && sm_live[i]->tmp[0])
            sm_rm_rf(sm_live[i]->tmp);
}

static inline void sm_track(sm_broker *b, bool live)
{
    static bool registered;
    if (!registered) {
        atexit(sm_remove_leftovers);
        registered = true;
    }
    for (int i = 0; i < 64; i++) {
        if (live && !sm_live[i]) {
            sm_live[i] = b;
            return;
        }
        if (!live && sm_live[i] == b) {
            sm_live[i] = NULL;
            return;
        }
    }
}

static inline void sm_boot(sm_broker *b)
{
    imqtt_config cfg;
    char err[256];
    if (config_parse(b->config, strlen(b->config), &cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s\n%s", err, b->config);
    /* The listener config stays in the server's cfg; with a count of 0
     * server_init binds nothing, and our own listener struct uses it. */
    uint32_t nl = cfg.listener_count;
    cfg.listener_count = 0;
    assert_int_equal(uv_loop_init(&b->loop), 0);
    int rc = server_init(&b->srv, &b->loop, &cfg, im_policy());
    if (rc != 0)
        fail_msg("server_init: %s", imqtt_strerror(rc));
    assert_true(nl >= 1 && b->srv.cfg.listeners != NULL);
    /* Counted again, so that config_free (server_free) frees them. */
    b->srv.cfg.listener_count = nl;
    memset(&b->lst, 0, sizeof(b->lst));
    b->lst.srv = &b->srv;
    b->lst.w = &b->srv.workers[0];
    b->lst.cfg = &b->srv.cfg.listeners[0];
    b->running = true;
}

/* Start a broker with the JSON object members `members` (after SM_BASE;
 * "$DIR" in them becomes a fresh temporary directory's store path). The
 * broker is on the heap, freed by sm_stop: a test that fails half-way
 * leaves it allocated, so the handles libuv still knows of (its signal
 * watchers are process-wide) never point into a reused stack. */
static inline sm_broker *sm_start(const char *members)
{
    sm_broker *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    signal(SIGPIPE, SIG_IGN); /* as main.c: a closed peer is an error code */
    const char *at = strstr(members, "$DIR");
    size_t len = strlen(SM_BASE) + strlen(members) + 128;
    b->config = malloc(len);
    assert_non_null(b->config);
    if (at) {
        strcpy(b->tmp, "/tmp/imqtt-sm-XXXXXX");
        assert_non_null(mkdtemp(b->tmp));
        sm_track(b, true);
        snprintf(b->dir, sizeof(b->dir), "%s/data", b->tmp);
        snprintf(b->config, len, "{" SM_BASE ", %.*s%s%s}", (int)(at - members),
                 members, b->dir, at + 4);
    } else {
        snprintf(b->config, len, "{" SM_BASE ", %s}", members);
    }
    sm_boot(b);
    return b;
}

static inline void sm_close(sm_client *cl);

/* Stop the way SIGTERM does (server_run's path): every client closes
 * first, the loop runs until the server has closed its handles, then
 * everything is freed. The store directory is kept for sm_restart. */
static inline void sm_halt(sm_broker *b)
{
    for (int i = 0; i < SM_MAX_CLIENTS; i++)
        if (b->clients[i])
            sm_close(b->clients[i]);
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    while (b->srv.workers[0].conns_alive > 0 || !sm_idle(b)) {
        if (sm_ms() > deadline)
            fail_msg("%u connections still alive",
                     b->srv.workers[0].conns_alive);
        sm_round(b);
        usleep(100);
    }
    /* The server's own SIGTERM handler (server.c) starts the shutdown. */
    raise(SIGTERM);
    while (uv_run(&b->loop, UV_RUN_NOWAIT) != 0) {
        if (sm_ms() > deadline)
            fail_msg("the server did not close its handles");
        usleep(500);
    }
    server_free(&b->srv);
    assert_int_equal(uv_loop_close(&b->loop), 0);
    b->running = false;
}

/* Stop, remove the temporary directory and free b. */
static inline void sm_stop(sm_broker *b)
{
    if (b->running)
        sm_halt(b);
    if (b->tmp[0]) {
        sm_rm_rf(b->tmp);
        sm_track(b, false);
    }
    free(b->config);
    free(b);
}

/* Stop and start again on the same config and store (a clean restart). */
static inline void sm_restart(sm_broker *b)
{
    sm_halt(b);
    sm_boot(b);
}

static inline session *sm_session(sm_broker *b, const char *id)
{
    return session_find(&b->srv, mqtt_str_from(id, strlen(id)));
}

static inline uint64_t sm_metric(sm_broker *b, enum metric_id id)
{
    return b->srv.metrics.v[id];
}

/* ---- clients ------------------------------------------------------------- */

/* Write all of buf, letting the broker read when the socket is full. */
static inline void sm_write(sm_client *cl, const uint8_t *buf, size_t len)
{
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(cl->fd, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            fail_msg("client %s: write: %s", cl->id, strerror(errno));
        if (sm_ms() > deadline)
            fail_msg("client %s: the broker does not read", cl->id);
        sm_round(cl->b);
    }
}

static inline void sm_send(sm_client *cl, const mqtt_packet *p)
{
    uint8_t stack[1024];
    int size = mqtt_encoded_size(p, cl->version);
    assert_true(size > 0);
    uint8_t *buf = (size_t)size <= sizeof(stack) ? stack : malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(mqtt_encode(p, cl->version, buf, (size_t)size), size);
    sm_write(cl, buf, (size_t)size);
    if (buf != stack)
        free(buf);
}

/* A new client: a socketpair, one end adopted by the broker. */
static inline sm_client *sm_client_new(sm_broker *b, const char *id,
                                       uint8_t version)
{
    int slot = 0;
    while (slot < SM_MAX_CLIENTS && b->clients[slot])
        slot++;
    assert_true(slot < SM_MAX_CLIENTS);
    sm_client *cl = calloc(1, sizeof(*cl));
    assert_non_null(cl);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    cl->b = b;
    cl->fd = sv[1];
    cl->version = version;
    snprintf(cl->id, sizeof(cl->id), "%s", id);
    assert_int_equal(conn_adopt(&b->lst, sv[0]), 0);
    b->clients[slot] = cl;
    return cl;
}

/* Take the oldest packet cl has read, or NULL. */
static inline const mqtt_packet *sm_take(sm_client *cl)
{
    sm_pkt_free(&cl->cur);
    if (cl->qlen == 0)
        return NULL;
    cl->cur = cl->q[cl->qhead];
    cl->qhead++;
    cl->qlen--;
    if (cl->qlen == 0)
        cl->qhead = 0;
    return &cl->cur.p;
}

/* Wait for cl's next packet, which must be of `type`. */
static inline const mqtt_packet *sm_expect(sm_client *cl, uint8_t type)
{
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    while (cl->qlen == 0) {
        if (cl->eof)
            fail_msg("client %s: connection closed while waiting for %s",
                     cl->id, mqtt_type_name(type));
        if (sm_ms() > deadline)
            fail_msg("client %s: no %s within %d ms", cl->id,
                     mqtt_type_name(type), SM_WAIT_MS);
        if (sm_round(cl->b) == 0)
            usleep(100);
    }
    const mqtt_packet *p = sm_take(cl);
    if (p->type != type)
        fail_msg("client %s: got %s, expected %s", cl->id,
                 mqtt_type_name(p->type), mqtt_type_name(type));
    return p;
}

/* After sm_settle: cl has been sent nothing more. */
static inline void sm_expect_nothing(sm_client *cl)
{
    if (cl->qlen)
        fail_msg("client %s: unexpected %s", cl->id,
                 mqtt_type_name(cl->q[cl->qhead].p.type));
}

/* Wait until the broker closes cl's connection; packets before the close
 * are left in the queue. */
static inline void sm_expect_closed(sm_client *cl)
{
    uint64_t deadline = sm_ms() + SM_WAIT_MS;
    while (!cl->eof) {
        if (sm_ms() > deadline)
            fail_msg("client %s: still open after %d ms", cl->id, SM_WAIT_MS);
        if (sm_round(cl->b) == 0)
            usleep(100);
    }
}

/* Close our end (the broker sees EOF: a lost connection) and free cl. */
static inline void sm_close(sm_client *cl)
{
    sm_broker *b = cl->b;
    for (int i = 0; i < SM_MAX_CLIENTS; i++)
        if (b->clients[i] == cl)
            b->clients[i] = NULL;
    close(cl->fd);
    sm_pkt_free(&cl->cur);
    for (size_t i = 0; i < cl->qlen; i++)
        free(cl->q[cl->qhead + i].raw);
    free(cl->q);
    free(cl->in);
    free(cl);
}

/* DISCONNECT (normal: no will), then close, and let the broker see it. */
static inline void sm_disconnect(sm_client *cl)
{
    sm_broker *b = cl->b;
    mqtt_packet p = {.type = MQTT_DISCONNECT};
    sm_send(cl, &p);
    sm_settle(b);
    sm_close(cl);
    sm_settle(b);
}

typedef struct sm_conn_opts {
    uint8_t version;      /* MQTT_V311 or MQTT_V5 (0: MQTT_V5) */
    bool resume;          /* clean session / clean start 0 */
    uint32_t expiry;      /* v5 Session Expiry Interval (0: not sent) */
    uint16_t receive_max; /* v5 Receive Maximum (0: not sent) */
} sm_conn_opts;

/* Connect as `id`; the CONNACK must accept. */
static inline sm_client *sm_connect(sm_broker *b, const char *id,
                                    sm_conn_opts o)
{
    uint8_t v = o.version ? o.version : MQTT_V5;
    sm_client *cl = sm_client_new(b, id, v);
    mqtt_packet p = {.type = MQTT_CONNECT};
    mqtt_connect *c = &p.u.connect;
    c->version = v;
    c->clean_start = !o.resume;
    c->keepalive = 0;
    c->client_id = mqtt_str_from(id, strlen(id));
    if (v == MQTT_V5 && o.expiry) {
        mqtt_props_set(&c->props, MQTT_PROP_SESSION_EXPIRY);
        c->props.session_expiry = o.expiry;
    }
    if (v == MQTT_V5 && o.receive_max) {
        mqtt_props_set(&c->props, MQTT_PROP_RECEIVE_MAXIMUM);
        c->props.receive_maximum = o.receive_max;
    }
    sm_send(cl, &p);
    const mqtt_packet *a = sm_expect(cl, MQTT_CONNACK);
    cl->session_present = a->u.connack.session_present;
    cl->connack_reason = a->u.connack.reason;
    if (mqtt_props_has(&a->u.connack.props, MQTT_PROP_RECEIVE_MAXIMUM))
        cl->connack_receive_max = a->u.connack.props.receive_maximum;
    assert_int_equal(cl->connack_reason, 0);
    return cl;
}

/* ---- packets ------------------------------------------------------------- */

static inline void sm_ack(sm_client *cl, uint8_t type, uint16_t pid,
                          uint8_t reason)
{
    mqtt_packet p = {.type = type};
    p.u.ack.packet_id = pid;
    p.u.ack.reason = reason;
    sm_send(cl, &p);
}

typedef struct sm_pub_opts {
    bool retain;
    bool dup;
    uint32_t expiry; /* v5 Message Expiry Interval (0: none) */
} sm_pub_opts;

static inline void sm_publish_o(sm_client *cl, const char *topic,
                                const char *payload, uint8_t qos, uint16_t pid,
                                sm_pub_opts o)
{
    mqtt_packet p = {.type = MQTT_PUBLISH};
    mqtt_publish *m = &p.u.publish;
    m->qos = qos;
    m->packet_id = qos ? pid : 0;
    m->retain = o.retain;
    m->dup = o.dup;
    m->topic = mqtt_str_from(topic, strlen(topic));
    m->payload =
        (mqtt_bytes){(const uint8_t *)payload, (uint32_t)strlen(payload)};
    if (o.expiry && cl->version == MQTT_V5) {
        mqtt_props_set(&m->props, MQTT_PROP_MESSAGE_EXPIRY);
        m->props.message_expiry = o.expiry;
    }
    sm_send(cl, &p);
}

static inline void sm_publish(sm_client *cl, const char *topic,
                              const char *payload, uint8_t qos, uint16_t pid)
{
    sm_publish_o(cl, topic, payload, qos, pid, (sm_pub_opts){0});
}

/* SUBSCRIBE one filter (v5: with subscription identifier sub_id unless
 * 0); returns the SUBACK's code. */
static inline uint8_t sm_subscribe_o(sm_client *cl, const char *filter,
                                     mqtt_sub_opts o, uint32_t sub_id)
{
    static uint16_t last_pid; /* SUBSCRIBE ids, 1..65535 */
    if (++last_pid == 0)
        last_pid = 1;
    uint8_t entries[512];
    mqtt_sub_entry e = {mqtt_str_from(filter, strlen(filter)), o};
    int n =
        mqtt_sub_encode_entries(&e, 1, cl->version, entries, sizeof(entries));
    assert_true(n > 0);
    mqtt_packet p = {.type = MQTT_SUBSCRIBE};
    p.u.subscribe.packet_id = last_pid;
    p.u.subscribe.entries = (mqtt_bytes){entries, (uint32_t)n};
    p.u.subscribe.count = 1;
    if (sub_id && cl->version == MQTT_V5) {
        mqtt_props_set(&p.u.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID);
        p.u.subscribe.props.subscription_id = sub_id;
    }
    uint16_t want = p.u.subscribe.packet_id;
    sm_send(cl, &p);
    const mqtt_packet *a = sm_expect(cl, MQTT_SUBACK);
    assert_int_equal(a->u.suback.packet_id, want);
    assert_int_equal(a->u.suback.count, 1);
    return a->u.suback.codes[0];
}

static inline uint8_t sm_subscribe(sm_client *cl, const char *filter,
                                   uint8_t qos)
{
    return sm_subscribe_o(cl, filter, (mqtt_sub_opts){.qos = qos}, 0);
}

/* UNSUBSCRIBE one filter; returns the UNSUBACK's code (v5; 3.1.1 has
 * none: 0). */
static inline uint8_t sm_unsubscribe(sm_client *cl, const char *filter)
{
    static uint16_t last_pid;
    if (++last_pid == 0)
        last_pid = 1;
    uint8_t entries[512];
    mqtt_str f = mqtt_str_from(filter, strlen(filter));
    int n = mqtt_unsub_encode_entries(&f, 1, entries, sizeof(entries));
    assert_true(n > 0);
    mqtt_packet p = {.type = MQTT_UNSUBSCRIBE};
    p.u.unsubscribe.packet_id = last_pid;
    p.u.unsubscribe.entries = (mqtt_bytes){entries, (uint32_t)n};
    p.u.unsubscribe.count = 1;
    sm_send(cl, &p);
    const mqtt_packet *a = sm_expect(cl, MQTT_UNSUBACK);
    assert_int_equal(a->u.unsuback.packet_id, last_pid);
    if (cl->version != MQTT_V5)
        return 0;
    assert_int_equal(a->u.unsuback.count, 1);
    return a->u.unsuback.codes[0];
}

/* A PUBLISH as the client received it, copied out of the packet. */
typedef struct sm_msg {
    uint8_t qos;
    bool dup, retain;
    uint16_t pid;
    char topic[128];
    char payload[256]; /* NUL-terminated copy of the first 255 bytes */
    uint32_t payload_len;
    uint32_t sub_ids[8];
    uint32_t nsub_ids;
    bool has_expiry;
    uint32_t expiry;
} sm_msg;

static inline sm_msg sm_msg_of(const mqtt_packet *p)
{
    const mqtt_publish *m = &p->u.publish;
    sm_msg r = {
        .qos = m->qos, .dup = m->dup, .retain = m->retain, .pid = m->packet_id};
    assert_true(m->topic.len < sizeof(r.topic));
    memcpy(r.topic, m->topic.ptr, m->topic.len);
    r.payload_len = m->payload.len;
    uint32_t n = m->payload.len < sizeof(r.payload) - 1 ? m->payload.len
                                                        : sizeof(r.payload) - 1;
    if (n)
        memcpy(r.payload, m->payload.ptr, n);
    uint32_t pos = 0, id;
    while (mqtt_props_next_sub_id(m->props.raw, &pos, &id) == 1) {
        assert_true(r.nsub_ids < 8);
        r.sub_ids[r.nsub_ids++] = id;
    }
    r.has_expiry = mqtt_props_has(&m->props, MQTT_PROP_MESSAGE_EXPIRY);
    r.expiry = m->props.message_expiry;
    return r;
}

/* Wait for a PUBLISH to cl. */
static inline sm_msg sm_expect_publish(sm_client *cl)
{
    return sm_msg_of(sm_expect(cl, MQTT_PUBLISH));
}

/* Packets of cl waiting to be taken (after sm_settle: all it was sent). */
static inline size_t sm_pending(const sm_client *cl)
{
    return cl->qlen;
}

#endif
