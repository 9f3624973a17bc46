/* imqtt-bench: shared types of the load generator.
 *
 * One process, N libuv loops (threads). Every connection belongs to one
 * thread for its whole life and is touched only by that thread, except for
 * the few fields marked "atomic" that receivers on other threads update.
 * Buffers are allocated once per connection at set-up; sending or receiving
 * a message allocates nothing.
 */
#ifndef IMQTT_BENCH_H
#define IMQTT_BENCH_H

#include "hist.h"
#include "packet.h"
#include "ws.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define BENCH_MAX_THREADS 64
#define BENCH_MAX_IFADDR  16
#define BENCH_HDR_LEN     32 /* bytes of the payload header (see payload) */
#define BENCH_MAGIC       0x42514d49u

enum bench_cmd {
    CMD_CONN,
    CMD_PUB,
    CMD_SUB,
    CMD_P2P,
    CMD_FANOUT,
    CMD_FANIN,
    CMD_IM,
};

typedef struct bench_opts {
    enum bench_cmd cmd;
    const char *host;
    int port;
    int count;            /* -c: connections / pairs / subscribers / pubs */
    int conn_interval_ms; /* -i */
    int msg_interval_ms;  /* -I: pub, per connection */
    const char *topic;    /* -t */
    const char *prefix;   /* client id prefix */
    int size;             /* -s payload bytes */
    int qos;              /* -q */
    bool retain;          /* -r */
    int keepalive;        /* -k */
    bool clean;           /* -C */
    const char *user;     /* -u */
    const char *pass;     /* -P */
    int version;          /* -V 3|4|5 */
    const char *ifaddr[BENCH_MAX_IFADDR];
    int n_ifaddr;
    bool ws, tls;
    const char *cafile;
    const char *tls_name; /* --tls-name: SNI and certificate name check */
    int threads;
    double duration; /* -d seconds of publishing (conn/sub: of holding) */
    uint64_t limit;  /* -L messages per publisher, 0 = no limit */
    int window;      /* -w messages in flight per publisher (closed loop) */
    double rate;     /* -R total msgs/s (open loop), 0 = closed loop */
    double drain;    /* seconds to wait for the last deliveries */
    int broker_pid;
    bool json;
    int expect_pubs; /* sub: publishers to track for loss/order, 0 = none */
    /* im */
    int users, devices, groups, group_size;
    double im_rate; /* messages/s per user */
    const char *jwt_secret;
    int jwt_ttl;
    bool inbox_sub; /* subscribe to the inbox ourselves */
} bench_opts;

/* Loss / duplicate / order tracking of one (publisher, receiver) stream:
 * the highest sequence seen and a bitmap of the 64 below it. */
typedef struct bench_stream {
    uint64_t top; /* highest seq seen + 1; 0 = none yet */
    uint64_t bits;
} bench_stream;

enum conn_state {
    CS_IDLE,
    CS_CONNECTING,
    CS_CONNACK,
    CS_SUBACK,
    CS_READY,
    CS_CLOSING,
    CS_CLOSED,
};

struct bench_thread;

typedef struct bench_conn {
    uv_tcp_t tcp; /* first: handle->data is not needed to get back here */
    uv_connect_t creq;
    uv_write_t wreq;
    struct bench_thread *th;
    struct bench_conn *next_pending; /* thread's flush list */
    uint32_t index;                  /* global connection index */
    int32_t pub_id;                  /* >= 0 when this conn publishes */
    uint8_t state;
    bool writing;   /* a uv_write is in progress on wbuf[!wcur] */
    bool pending;   /* on the flush list */
    bool read_held; /* reading stopped until the output drains */
    bool stalled;   /* publisher waiting for room / acks */
    uint16_t next_pid;
    uint16_t recv_max; /* server's Receive Maximum (v5), else 65535 */
    uint32_t acks_out; /* our QoS > 0 publishes not yet completed */
    uint64_t last_tx_ns;

    /* Input: the unparsed tail of the stream. */
    uint8_t *rbuf;
    uint32_t rlen, rcap;
    /* Output: appends go to wbuf[wcur]; the other buffer may be in flight
     * in a uv_write (valid until the write callback). */
    uint8_t *wbuf[2];
    uint32_t wlen[2], wcap;
    uint32_t wbase; /* WS_HEADROOM with --ws: room for a frame header */
    int wcur;
    uint8_t ws_state; /* 0 plain TCP, 1 upgrade sent, 2 frames */
    ws_in ws;
    struct bench_tls *tls; /* --tls: owned session, NULL for plain TCP */

    char client_id[96];
    char pub_topic[160]; /* publishers: the topic they send to */
    uint16_t pub_topic_len;
    char sub_filter[160]; /* subscribers: the filter they subscribe */
    uint16_t sub_filter_len;
    char sub_filter2[64]; /* im: the group topic */
    uint16_t sub_filter2_len;
    uint8_t sub_opts_no_local;
    char password[512]; /* im: the minted JWT */

    /* Publisher side. */
    uint64_t seq;                  /* next sequence number */
    _Atomic uint64_t e2e_received; /* deliveries of our messages (atomic) */
    uint32_t expect_per_msg;       /* receivers of each message */
    uint8_t *payload;              /* size bytes, header rewritten per msg */

    /* Receiver side: streams[pub_id - stream_base]. */
    bench_stream *streams;
    uint32_t stream_base, nstreams;

    /* im */
    uint32_t user, device;
    uint32_t rng;
} bench_conn;

/* Per-thread counters. Written only by the owning thread (relaxed stores),
 * read by the main thread for the progress line. */
typedef struct bench_stats {
    _Atomic uint64_t connected, conn_failed, subscribed, sub_failed;
    _Atomic uint64_t sent, acked, delivered, dup, ooo, unexpected;
    _Atomic uint64_t disconnects, missed;
    _Atomic uint64_t im_echo; /* im: sender device got its own message */
} bench_stats;

#define STAT_ADD(th, f, n)                                             \
    atomic_store_explicit(                                             \
        &(th)->st.f,                                                   \
        atomic_load_explicit(&(th)->st.f, memory_order_relaxed) + (n), \
        memory_order_relaxed)
#define STAT_GET(th, f) atomic_load_explicit(&(th)->st.f, memory_order_relaxed)

typedef struct bench_thread {
    uv_loop_t loop;
    uv_thread_t tid;
    uv_async_t wake;    /* main -> thread: phase changed / kicks */
    uv_prepare_t flush; /* write all pending output before the loop sleeps */
    uv_timer_t tick;
    int index;
    bench_conn **conns;
    uint32_t nconns;
    uint32_t next_connect; /* conns[0..next_connect) have been started */
    uint32_t connecting;   /* handshakes under way */
    uint64_t connect_t0;
    bench_conn *pending_head;
    struct bench_tls_conf *tls_conf; /* --tls: this thread's client config */
    _Atomic int kicked; /* a receiver elsewhere freed window space */
    int seen_phase;
    uint64_t run_t0; /* open loop: when sending began */
    bench_stats st;
    bench_hist lat;
    bench_hist im_lat_sync;
    _Atomic uint64_t cpu_us; /* thread CPU, refreshed by the thread */
} bench_thread;

enum bench_phase {
    PH_SETUP, /* connecting and subscribing */
    PH_RUN,   /* publishing */
    PH_DRAIN, /* stopped publishing, waiting for the last deliveries */
    PH_CLOSE, /* disconnect everything */
};

/* Scenario behaviour, called on the connection's thread. */
typedef struct bench_ops {
    void (*on_ready)(bench_conn *c);
    void (*on_message)(bench_conn *c, const mqtt_publish *p);
    void (*on_room)(bench_conn *c); /* acks arrived or output drained */
    void (*on_tick)(bench_thread *th, uint64_t now_ns);
} bench_ops;

typedef struct bench_global {
    bench_opts o;
    bench_ops ops;
    bench_thread *th;
    int nthreads;
    bench_conn **conns; /* all connections by index */
    uint32_t nconns;
    bench_conn **pubs; /* by pub_id */
    uint32_t npubs;
    uint32_t expect_per_msg; /* receivers of each message, 0 = unknown */
    _Atomic int phase;
    _Atomic uint64_t errors_logged;
} bench_global;

extern bench_global G;

uint64_t bench_now_ns(void);
void bench_log_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* client.c */
int client_alloc(bench_conn *c, uint32_t rcap, uint32_t wcap);
void client_start(bench_conn *c);
void client_disconnect(bench_conn *c);
/* Room in the output buffer for `need` more bytes. */
bool client_has_room(const bench_conn *c, uint32_t need);
/* Publish to c->pub_topic with c->payload[0..len): returns false if the
 * output buffer has no room or the ack window is full. */
bool client_publish(bench_conn *c, const uint8_t *topic, uint16_t topic_len,
                    uint32_t len, int qos);
void client_thread_init(bench_thread *th);
/* Start the connections that are due (the -i schedule). */
void client_connect_due(bench_thread *th, uint64_t now);
/* PINGREQ on connections that were silent for 3/4 of the keep-alive. */
void client_keepalive(bench_thread *th, uint64_t now);

/* flow.c: the p2p / fanout / fanin / pub / sub / conn behaviour. */
void flow_setup_ops(void);
void payload_write(bench_conn *c, uint64_t seq, uint64_t now_ns, uint32_t aux0,
                   uint32_t aux1);
void stream_record(bench_thread *th, bench_stream *s, uint64_t seq);
void flow_credit_publisher(bench_thread *th, uint32_t pub_id);

/* im.c */
int im_setup(void);
void im_setup_ops(void);
void im_report(FILE *out, bool json);
bool im_check(void); /* all deliveries correct */

/* jwt.c: HS256 token for `sub` with `exp` = now + ttl. */
int jwt_mint(const char *secret, const char *sub, long exp,
             const char *groups_json, char *out, size_t cap);

#endif
