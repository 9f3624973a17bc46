/* imqtt-bench: the load generator shipped with imqtt.
 *
 *   imqtt-bench conn|pub|sub|p2p|fanout|fanin|im [options]
 *
 * The main thread parses options, builds the scenario, starts one libuv
 * loop per --threads, and then only watches: it moves the phase forward
 * (set-up, run, drain, close), prints a progress line every second on
 * stderr and the summary at the end. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "bench.h"
#include "errors.h"
#include "report.h"
#include "setup.h"
#include "tls.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

bench_global G;

static volatile sig_atomic_t interrupted;

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The first few errors are printed; a broker that drops 10,000
 * connections should not bury the summary. */
void bench_log_error(const char *fmt, ...)
{
    uint64_t n = atomic_fetch_add(&G.errors_logged, 1);
    if (n >= 10) {
        if (n == 10)
            fprintf(stderr, "imqtt-bench: more errors not shown\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "imqtt-bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: imqtt-bench COMMAND [options]\n"
        "commands:\n"
        "  conn    open -c connections and hold them (idle memory)\n"
        "  pub     -c publishers to -t (at -I ms each, or -R total msgs/s)\n"
        "  sub     -c subscribers to -t (--expect-pubs N tracks loss from a "
        "pub run)\n"
        "  p2p     -c publisher/subscriber pairs, one topic per pair\n"
        "  fanout  1 publisher -> -c subscribers\n"
        "  fanin   -c publishers -> 1 wildcard subscriber\n"
        "  im      --users U x --devices D on user@device connections with "
        "JWTs\n"
        "connection (emqtt_bench style):\n"
        "  -h HOST (127.0.0.1)  -p PORT (1883)  -c COUNT  -i CONN_INTERVAL_MS "
        "(0)\n"
        "  -u USER  -P PASS  -k KEEPALIVE (300)  -C CLEAN true|false (true)\n"
        "  -V 3|4|5 (4)  --prefix ID_PREFIX  --ifaddr A,B,...  --threads N "
        "(1)\n"
        "  --ws (WebSocket, path /mqtt)  --tls [--cafile FILE] [--tls-name "
        "NAME]\n"
        "    (TLS: without --cafile the broker's certificate is not checked;\n"
        "    --tls-name is sent as SNI and matched against the certificate)\n"
        "messages:\n"
        "  -t TOPIC (%%i index, %%c client id, %%u user)  -s SIZE (64, min "
        "32)\n"
        "  -q QOS (0)  -r retain  -I MSG_INTERVAL_MS  -w WINDOW (64, closed "
        "loop)\n"
        "  -R RATE (total msgs/s, open loop)  -d SECONDS (10)  -L LIMIT per "
        "pub\n"
        "  --drain SECONDS (3)\n"
        "im:\n"
        "  --users U (100) --devices D (3) --groups G (0) --group-size N (10)\n"
        "  --im-rate R (msgs/s per user, 1; 0 only holds the connections)\n"
        "  --jwt-secret S --jwt-ttl SECONDS (3600)\n"
        "  --inbox-sub (subscribe to p2p/talk/{user} ourselves)\n"
        "report:\n"
        "  --broker-pid PID (broker CPU per 1000 messages, RSS)  --json\n");
}

enum {
    OPT_THREADS = 256,
    OPT_IFADDR,
    OPT_WS,
    OPT_TLS,
    OPT_TLS_NAME,
    OPT_CAFILE,
    OPT_BROKER_PID,
    OPT_JSON,
    OPT_PREFIX,
    OPT_DRAIN,
    OPT_EXPECT_PUBS,
    OPT_USERS,
    OPT_DEVICES,
    OPT_GROUPS,
    OPT_GROUP_SIZE,
    OPT_IM_RATE,
    OPT_JWT_SECRET,
    OPT_JWT_TTL,
    OPT_INBOX_SUB,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"host", required_argument, 0, 'h'},
    {"port", required_argument, 0, 'p'},
    {"count", required_argument, 0, 'c'},
    {"interval", required_argument, 0, 'i'},
    {"interval_of_msg", required_argument, 0, 'I'},
    {"topic", required_argument, 0, 't'},
    {"size", required_argument, 0, 's'},
    {"qos", required_argument, 0, 'q'},
    {"retain", no_argument, 0, 'r'},
    {"keepalive", required_argument, 0, 'k'},
    {"clean", required_argument, 0, 'C'},
    {"username", required_argument, 0, 'u'},
    {"password", required_argument, 0, 'P'},
    {"version", required_argument, 0, 'V'},
    {"window", required_argument, 0, 'w'},
    {"rate", required_argument, 0, 'R'},
    {"duration", required_argument, 0, 'd'},
    {"limit", required_argument, 0, 'L'},
    {"threads", required_argument, 0, OPT_THREADS},
    {"ifaddr", required_argument, 0, OPT_IFADDR},
    {"ws", no_argument, 0, OPT_WS},
    {"tls", no_argument, 0, OPT_TLS},
    {"tls-name", required_argument, 0, OPT_TLS_NAME},
    {"cafile", required_argument, 0, OPT_CAFILE},
    {"broker-pid", required_argument, 0, OPT_BROKER_PID},
    {"json", no_argument, 0, OPT_JSON},
    {"prefix", required_argument, 0, OPT_PREFIX},
    {"drain", required_argument, 0, OPT_DRAIN},
    {"expect-pubs", required_argument, 0, OPT_EXPECT_PUBS},
    {"users", required_argument, 0, OPT_USERS},
    {"devices", required_argument, 0, OPT_DEVICES},
    {"groups", required_argument, 0, OPT_GROUPS},
    {"group-size", required_argument, 0, OPT_GROUP_SIZE},
    {"im-rate", required_argument, 0, OPT_IM_RATE},
    {"jwt-secret", required_argument, 0, OPT_JWT_SECRET},
    {"jwt-ttl", required_argument, 0, OPT_JWT_TTL},
    {"inbox-sub", no_argument, 0, OPT_INBOX_SUB},
    {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

static long num(const char *what, const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr,
                "imqtt-bench: %s: expected an integer %ld..%ld, got "
                "\"%s\"\n",
                what, lo, hi, s);
        exit(2);
    }
    return v;
}

static double fnum(const char *what, const char *s, double lo)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || v < lo) {
        fprintf(stderr, "imqtt-bench: %s: expected a number >= %g\n", what, lo);
        exit(2);
    }
    return v;
}

static void parse_ifaddr(bench_opts *o, char *list)
{
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        struct sockaddr_in sa;
        if (o->n_ifaddr == BENCH_MAX_IFADDR || uv_ip4_addr(tok, 0, &sa)) {
            fprintf(stderr,
                    "imqtt-bench: --ifaddr: bad or too many "
                    "addresses (IPv4, at most %d)\n",
                    BENCH_MAX_IFADDR);
            exit(2);
        }
        o->ifaddr[o->n_ifaddr++] = tok;
    }
}

static void parse(int argc, char **argv, bench_opts *o)
{
    static const char *cmds[] = {"conn",   "pub",   "sub", "p2p",
                                 "fanout", "fanin", "im"};
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        exit(argc < 2 ? 2 : 0);
    }
    int cmd = -1;
    for (int i = 0; i < 7; i++)
        if (strcmp(argv[1], cmds[i]) == 0)
            cmd = i;
    if (cmd < 0) {
        fprintf(stderr, "imqtt-bench: unknown command \"%s\"\n", argv[1]);
        usage(stderr);
        exit(2);
    }
    static char prefix[48];
    snprintf(prefix, sizeof(prefix), "bench%d", (int)getpid());
    *o = (bench_opts){.cmd = (enum bench_cmd)cmd,
                      .host = "127.0.0.1",
                      .port = 1883,
                      .count = 10,
                      .prefix = prefix,
                      .size = 64,
                      .keepalive = 300,
                      .clean = true,
                      .version = 4,
                      .threads = 1,
                      .duration = 10,
                      .window = 64,
                      .drain = 3,
                      .users = 100,
                      .devices = 3,
                      .group_size = 10,
                      .im_rate = 1,
                      .jwt_ttl = 3600};
    if (cmd == CMD_PUB)
        o->msg_interval_ms = 1000;
    o->qos = -1; /* im defaults to QoS 1, the rest to 0 */
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "h:p:c:i:I:t:s:q:rk:C:u:P:V:w:R:d:L:",
                             long_opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = (int)num("-p", optarg, 1, 65535);
            break;
        case 'c':
            o->count = (int)num("-c", optarg, 1, 10000000);
            break;
        case 'i':
            o->conn_interval_ms = (int)num("-i", optarg, 0, 1000000);
            break;
        case 'I':
            o->msg_interval_ms = (int)num("-I", optarg, 0, 100000000);
            break;
        case 't':
            o->topic = optarg;
            break;
        case 's':
            o->size = (int)num("-s", optarg, 0, 16 << 20);
            break;
        case 'q':
            o->qos = (int)num("-q", optarg, 0, 2);
            break;
        case 'r':
            o->retain = true;
            break;
        case 'k':
            o->keepalive = (int)num("-k", optarg, 0, 65535);
            break;
        case 'C':
            o->clean = strcmp(optarg, "false") != 0 && strcmp(optarg, "0") != 0;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'P':
            o->pass = optarg;
            break;
        case 'V':
            o->version = (int)num("-V", optarg, 3, 5);
            break;
        case 'w':
            o->window = (int)num("-w", optarg, 1, 1000000);
            break;
        case 'R':
            o->rate = fnum("-R", optarg, 0);
            break;
        case 'd':
            o->duration = fnum("-d", optarg, 0);
            break;
        case 'L':
            o->limit = (uint64_t)num("-L", optarg, 0, 1L << 40);
            break;
        case OPT_THREADS:
            o->threads = (int)num("--threads", optarg, 1, BENCH_MAX_THREADS);
            break;
        case OPT_IFADDR:
            parse_ifaddr(o, optarg);
            break;
        case OPT_WS:
            o->ws = true;
            break;
        case OPT_TLS:
            o->tls = true;
            break;
        case OPT_CAFILE:
            o->cafile = optarg;
            break;
        case OPT_TLS_NAME:
            o->tls_name = optarg;
            break;
        case OPT_BROKER_PID:
            o->broker_pid = (int)num("--broker-pid", optarg, 1, 1 << 30);
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_PREFIX:
            o->prefix = optarg;
            break;
        case OPT_DRAIN:
            o->drain = fnum("--drain", optarg, 0);
            break;
        case OPT_EXPECT_PUBS:
            o->expect_pubs = (int)num("--expect-pubs", optarg, 0, 1000000);
            break;
        case OPT_USERS:
            o->users = (int)num("--users", optarg, 2, 1000000);
            break;
        case OPT_DEVICES:
            o->devices = (int)num("--devices", optarg, 1, 16);
            break;
        case OPT_GROUPS:
            o->groups = (int)num("--groups", optarg, 0, 1000000);
            break;
        case OPT_GROUP_SIZE:
            o->group_size = (int)num("--group-size", optarg, 2, 1000);
            break;
        case OPT_IM_RATE:
            o->im_rate = fnum("--im-rate", optarg, 0);
            break;
        case OPT_JWT_SECRET:
            o->jwt_secret = optarg;
            break;
        case OPT_JWT_TTL:
            o->jwt_ttl = (int)num("--jwt-ttl", optarg, 1, 1 << 30);
            break;
        case OPT_INBOX_SUB:
            o->inbox_sub = true;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (o->qos < 0)
        o->qos = cmd == CMD_IM ? 1 : 0;
    if (optind < argc) {
        fprintf(stderr, "imqtt-bench: unexpected argument \"%s\"\n",
                argv[optind]);
        exit(2);
    }
    if (o->size < BENCH_HDR_LEN) {
        fprintf(stderr,
                "imqtt-bench: -s %d is below the %d-byte payload "
                "header; using %d\n",
                o->size, BENCH_HDR_LEN, BENCH_HDR_LEN);
        o->size = BENCH_HDR_LEN;
    }
    if (o->tls && o->ws) {
        fprintf(stderr, "imqtt-bench: --tls with --ws (wss) is not "
                        "supported yet\n");
        exit(2);
    }
    if ((o->cafile || o->tls_name) && !o->tls) {
        fprintf(stderr, "imqtt-bench: --cafile and --tls-name need --tls\n");
        exit(2);
    }
}

/* ---- the worker threads ------------------------------------------------ */

static double thread_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void thread_step(bench_thread *th)
{
    uint64_t now = bench_now_ns();
    int ph = atomic_load(&G.phase);
    if (ph != th->seen_phase) {
        th->seen_phase = ph;
        if (ph == PH_RUN)
            th->run_t0 = now;
        if (ph == PH_CLOSE) {
            for (uint32_t i = 0; i < th->nconns; i++)
                client_disconnect(th->conns[i]);
            atomic_store(&th->cpu_us, (uint64_t)(thread_cpu_s() * 1e6));
            /* Connections are closing; everything else goes too, and the
             * loop ends when the last close callback has run. */
            uv_walk(&th->loop, close_handle, NULL);
            return;
        }
    }
    if (ph == PH_SETUP || th->next_connect < th->nconns)
        client_connect_due(th, now);
    if (G.ops.on_tick)
        G.ops.on_tick(th, now);
}

static void on_tick(uv_timer_t *t)
{
    bench_thread *th = t->data;
    thread_step(th);
    static _Thread_local uint64_t last_s;
    uint64_t now = bench_now_ns();
    if (now - last_s >= 1000000000u && th->seen_phase != PH_CLOSE) {
        last_s = now;
        client_keepalive(th, now);
        atomic_store(&th->cpu_us, (uint64_t)(thread_cpu_s() * 1e6));
    }
}

static void on_wake(uv_async_t *a)
{
    thread_step(a->data);
}

static void thread_main(void *arg)
{
    bench_thread *th = arg;
    uv_run(&th->loop, UV_RUN_DEFAULT);
    uv_loop_close(&th->loop);
}

static void thread_init(bench_thread *th, int i)
{
    th->index = i;
    uv_loop_init(&th->loop);
    uv_async_init(&th->loop, &th->wake, on_wake);
    th->wake.data = th;
    uv_timer_init(&th->loop, &th->tick);
    th->tick.data = th;
    uv_timer_start(&th->tick, on_tick, 1, 1);
    client_thread_init(th);
    if (G.o.tls) {
        th->tls_conf = bench_tls_conf_new(G.o.cafile);
        if (!th->tls_conf)
            exit(2);
    }
    hist_init(&th->lat);
    hist_init(&th->im_lat_sync);
}

static void set_phase(int ph)
{
    if (atomic_exchange(&G.phase, ph) == ph)
        return;
    /* A worker that sees PH_CLOSE closes all its handles, `wake` included,
     * and may do so (from its 1 ms tick) before this loop reaches it: an
     * async send to a closed handle aborts. So PH_CLOSE is left to the
     * tick; only the earlier phases, during which `wake` stays open, are
     * sent at once. */
    if (ph == PH_CLOSE)
        return;
    for (int i = 0; i < G.nthreads; i++)
        uv_async_send(&G.th[i].wake);
}

/* ---- the main thread: phases and progress ------------------------------ */

static uint64_t sum_stat(size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < G.nthreads; i++)
        s += atomic_load_explicit(
            (_Atomic uint64_t *)((char *)&G.th[i].st + off),
            memory_order_relaxed);
    return s;
}

#define SUM(f) sum_stat(offsetof(bench_stats, f))

static uint64_t n_subscribers(void)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < G.nconns; i++)
        n += G.conns[i]->sub_filter_len > 0 || G.conns[i]->sub_filter2_len > 0;
    return n;
}

static void progress(double t, uint64_t *last_sent, uint64_t *last_del)
{
    uint64_t sent = SUM(sent), del = SUM(delivered);
    double cpu = 0;
    for (int i = 0; i < G.nthreads; i++)
        cpu += (double)atomic_load(&G.th[i].cpu_us) / 1e6;
    fprintf(stderr,
            "[%6.1fs] conn %llu/%u  sent %llu (%llu/s)  recv %llu (%llu/s)  "
            "drop %llu  bench cpu %.1fs\n",
            t, (unsigned long long)SUM(connected), G.nconns,
            (unsigned long long)sent, (unsigned long long)(sent - *last_sent),
            (unsigned long long)del, (unsigned long long)(del - *last_del),
            (unsigned long long)(SUM(disconnects) + SUM(conn_failed)), cpu);
    *last_sent = sent;
    *last_del = del;
}

static void on_sigint(int sig)
{
    (void)sig;
    interrupted++;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Deliveries still owed by the broker (flow scenarios). */
static bool drained(void)
{
    if (G.o.cmd == CMD_IM)
        return im_check();
    if (!G.expect_per_msg)
        return true;
    /* QoS 2 deliveries can complete before the publisher's PUBCOMP:
     * wait for the acknowledgements too, so "acked" is final. */
    if (G.o.qos > 0 && SUM(acked) < SUM(sent))
        return false;
    return SUM(delivered) - SUM(dup) >= SUM(sent) * G.expect_per_msg;
}

int main(int argc, char **argv)
{
    parse(argc, argv, &G.o);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    G.nthreads = G.o.threads;
    G.th = calloc((size_t)G.nthreads, sizeof(bench_thread));
    for (int i = 0; i < G.nthreads; i++)
        thread_init(&G.th[i], i);
    int rc;
    if (G.o.cmd == CMD_IM) {
        rc = im_setup();
        im_setup_ops();
    } else {
        rc = setup_flow();
        flow_setup_ops();
    }
    if (rc < 0) {
        fprintf(stderr, "imqtt-bench: set-up: %s\n", imqtt_strerror(rc));
        return 1;
    }
    bench_result r = {.scenario = argv[1],
                      .threads = G.nthreads,
                      .broker_pid = G.o.broker_pid,
                      .conns = G.nconns};
    if (r.broker_pid)
        r.broker_rss0_kb = proc_rss_kb(r.broker_pid);

    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < G.nthreads; i++) {
        G.th[i].connect_t0 = t0;
        uv_thread_create(&G.th[i].tid, thread_main, &G.th[i]);
    }
    uint64_t nsubs = n_subscribers(), last_sent = 0, last_del = 0;
    uint64_t next_progress = t0 + 1000000000u;
    double setup_limit = 30 + G.nconns * G.o.conn_interval_ms / 1000.0;
    int phase = PH_SETUP;
    uint64_t run_t0 = 0, run_t1 = 0, end_t = 0;
    double cpu0 = 0, bcpu0 = 0;
    while (phase != PH_CLOSE) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        uint64_t now = bench_now_ns();
        double t = (double)(now - t0) / 1e9;
        if (now >= next_progress) {
            next_progress += 1000000000u;
            progress(t, &last_sent, &last_del);
        }
        if (phase == PH_SETUP) {
            bool done = SUM(connected) + SUM(conn_failed) >= G.nconns &&
                        SUM(subscribed) + SUM(sub_failed) >= nsubs;
            if (done || t > setup_limit || interrupted) {
                if (!done)
                    fprintf(stderr,
                            "imqtt-bench: set-up incomplete after "
                            "%.0f s; running with what connected\n",
                            t);
                r.setup_s = t;
                if (r.broker_pid) {
                    r.broker_rss_ready_kb = proc_rss_kb(r.broker_pid);
                    bcpu0 = proc_cpu_s(r.broker_pid);
                }
                cpu0 = self_cpu_s();
                run_t0 = run_t1 = end_t = now;
                phase = PH_RUN;
                if (SUM(connected) == 0) {
                    fprintf(stderr,
                            "imqtt-bench: no connection could be "
                            "made to %s:%d\n",
                            G.o.host, G.o.port);
                    phase = PH_CLOSE;
                }
                set_phase(phase);
            }
        } else if (phase == PH_RUN) {
            bool limit_done =
                G.o.limit && G.npubs && SUM(sent) >= G.o.limit * G.npubs;
            if ((double)(now - run_t0) / 1e9 >= G.o.duration || limit_done ||
                interrupted) {
                run_t1 = now;
                phase = PH_DRAIN;
                set_phase(PH_DRAIN);
            }
        } else if (phase == PH_DRAIN) {
            if (drained() || (double)(now - run_t1) / 1e9 >= G.o.drain ||
                interrupted > 1) {
                end_t = now;
                phase = PH_CLOSE;
            }
        }
    }
    /* Readings before the connections close (their teardown is not
     * part of the load). */
    r.self_cpu_s = self_cpu_s() - cpu0;
    if (r.broker_pid) {
        r.broker_cpu_s = proc_cpu_s(r.broker_pid) - bcpu0;
        r.broker_rss_kb = proc_rss_kb(r.broker_pid);
    }
    set_phase(PH_CLOSE);
    for (int i = 0; i < G.nthreads; i++)
        uv_thread_join(&G.th[i].tid);

    hist_init(&r.lat);
    for (int i = 0; i < G.nthreads; i++) {
        bench_thread *th = &G.th[i];
        hist_merge(&r.lat, &th->lat);
        double pct = (double)atomic_load(&th->cpu_us) / 1e4 /
                     ((double)(end_t - t0) / 1e9);
        if (pct > r.max_thread_pct)
            r.max_thread_pct = pct;
    }
    r.connected = SUM(connected);
    r.conn_failed = SUM(conn_failed);
    r.subscribed = SUM(subscribed);
    r.sub_failed = SUM(sub_failed);
    r.disconnects = SUM(disconnects);
    r.sent = SUM(sent);
    r.acked = SUM(acked);
    r.delivered = SUM(delivered);
    r.dup = SUM(dup);
    r.ooo = SUM(ooo);
    r.unexpected = SUM(unexpected);
    r.run_s = (double)(run_t1 - run_t0) / 1e9;
    r.measure_s = (double)(end_t - run_t0) / 1e9;
    r.msgs_per_s = r.measure_s > 0 ? (double)r.delivered / r.measure_s : 0;
    r.self_cpu_pct = r.measure_s > 0 ? 100 * r.self_cpu_s / r.measure_s : 0;
    r.track_loss = G.expect_per_msg > 0 && G.o.cmd != CMD_IM;
    if (r.track_loss) {
        r.expected = r.sent * G.expect_per_msg;
        uint64_t uniq = r.delivered - r.dup;
        r.lost = r.expected > uniq ? r.expected - uniq : 0;
    }
    if (r.broker_pid) {
        r.broker_cpu_per_1k =
            r.delivered ? r.broker_cpu_s * 1000.0 / (double)r.delivered : 0;
        uint64_t n = r.connected ? r.connected : 1;
        r.broker_bytes_per_conn =
            (double)(r.broker_rss_ready_kb - r.broker_rss0_kb) * 1024.0 /
            (double)n;
    }
    FILE *out = stdout;
    report_print(&r, out, G.o.json);
    if (G.o.cmd == CMD_IM)
        im_report(out, G.o.json);
    if (G.o.json)
        fputs("}\n", out);
    if (r.max_thread_pct > 90)
        fprintf(stderr,
                "imqtt-bench: warning: a bench thread used %.0f%% of a core; "
                "the bench may be the bottleneck (try --threads %d)\n",
                r.max_thread_pct, G.nthreads + 1);
    bool bad = r.lost || r.dup || r.conn_failed || r.sub_failed ||
               (G.o.cmd == CMD_IM && !im_check());
    return bad ? 1 : 0;
}
