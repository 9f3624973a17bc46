/* imqtt-codec-bench: how many QoS 1 PUBLISH packets per second the codec
 * cuts and decodes, and how many headers it encodes (the payload is never
 * copied on the hot path, so header encoding is what a subscriber costs).
 *
 *   imqtt-codec-bench [iterations]
 *
 * Without an argument each case is calibrated to about 0.2 s per run.
 * Each case runs 5 times; the median is printed. */
#include "errors.h"
#include "packet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS      5
#define TARGET_NS 200000000.0 /* per run */

/* Results flow here so that the compiler cannot drop the loops. */
static volatile uint64_t sink;

static const mqtt_user_prop bench_user[] = {
    {MQTT_STR_LIT("from"), MQTT_STR_LIT("alice@phone")},
};

struct bench_case {
    const char *name;
    uint8_t version;
    mqtt_publish pub;
    uint8_t wire[256];
    int wire_len;
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "imqtt-codec-bench: %s: %s\n", what, imqtt_strerror(rc));
    exit(1);
}

static double run_decode(const struct bench_case *c, uint64_t n)
{
    /* Read through a volatile pointer each time, so the decode of an
     * unchanged buffer cannot be hoisted out of the loop. */
    const uint8_t *volatile in = c->wire;
    uint64_t acc = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        mqtt_frame f;
        mqtt_packet p;
        const uint8_t *buf = in;
        int rc = mqtt_frame_parse(buf, (size_t)c->wire_len, 0, &f);
        if (rc <= 0)
            die("frame", rc);
        rc = mqtt_decode(&f, c->version, &p);
        if (rc < 0)
            die("decode", rc);
        acc += p.u.publish.packet_id + p.u.publish.payload.len +
               p.u.publish.props.user_count;
    }
    double t = now_ns() - t0;
    sink += acc;
    return t;
}

static double run_encode(const struct bench_case *c, uint64_t n)
{
    uint8_t out[256];
    const mqtt_publish *volatile src = &c->pub;
    uint64_t acc = 0;
    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        const mqtt_publish *p = src;
        int len = mqtt_encode_publish_header(p, c->version, out, sizeof out);
        if (len <= 0)
            die("encode", len);
        acc += (uint64_t)len + out[len - 1];
    }
    double t = now_ns() - t0;
    sink += acc;
    return t;
}

typedef double (*bench_fn)(const struct bench_case *, uint64_t);

static uint64_t calibrate(bench_fn fn, const struct bench_case *c)
{
    uint64_t n = 10000;
    for (;;) {
        double t = fn(c, n);
        if (t > TARGET_NS / 10)
            return (uint64_t)((double)n * TARGET_NS / t) + 1;
        n *= 10;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void measure(const char *what, bench_fn fn, const struct bench_case *c,
                    uint64_t iters)
{
    uint64_t n = iters ? iters : calibrate(fn, c);
    double rate[RUNS];
    for (int r = 0; r < RUNS; r++)
        rate[r] = (double)n / (fn(c, n) / 1e9);
    qsort(rate, RUNS, sizeof rate[0], cmp_double);
    double med = rate[RUNS / 2];
    printf("%-8s %-16s %5d B %11llu %9.2f M/s %8.1f ns\n", what, c->name,
           c->wire_len, (unsigned long long)n, med / 1e6, 1e9 / med);
}

static void setup(struct bench_case *c, const char *name, uint8_t version,
                  const uint8_t *payload)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->version = version;
    c->pub.qos = 1;
    c->pub.packet_id = 4242;
    c->pub.topic = MQTT_STR_LIT("p2p/talk/alice");
    c->pub.payload = (mqtt_bytes){payload, 64};
    if (version == MQTT_V5) {
        c->pub.props.user = bench_user;
        c->pub.props.user_count = 1;
        c->pub.props.message_expiry = 86400;
        mqtt_props_set(&c->pub.props, MQTT_PROP_MESSAGE_EXPIRY);
    }
    mqtt_packet p = {.type = MQTT_PUBLISH, .u.publish = c->pub};
    c->wire_len = mqtt_encode(&p, version, c->wire, sizeof c->wire);
    if (c->wire_len <= 0)
        die("setup", c->wire_len);
}

int main(int argc, char **argv)
{
    uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    static uint8_t payload[64];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)('a' + i % 26);

    struct bench_case cases[2];
    setup(&cases[0], "v3.1.1", MQTT_V311, payload);
    setup(&cases[1], "v5 +2 props", MQTT_V5, payload);

    printf("PUBLISH QoS 1, topic \"p2p/talk/alice\", 64-byte payload; "
           "median of %d runs\n",
           RUNS);
    printf("%-8s %-16s %7s %11s %13s %11s\n", "op", "case", "wire", "iters",
           "packets/s", "per packet");
    for (int i = 0; i < 2; i++) {
        measure("decode", run_decode, &cases[i], iters);
        measure("encode", run_encode, &cases[i], iters);
    }
    return sink == 42 ? 1 : 0; /* a use of sink the compiler must keep */
}
