/* The end-of-run summary (text or one JSON object) and the readings of
 * our own and the broker's resource use. */
#ifndef IMQTT_BENCH_REPORT_H
#define IMQTT_BENCH_REPORT_H

#include "hist.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct bench_result {
    const char *scenario;
    double setup_s, run_s, measure_s;
    uint64_t conns, connected, conn_failed, subscribed, sub_failed;
    uint64_t disconnects;
    uint64_t sent, acked, delivered, expected, lost, dup, ooo, unexpected;
    bool track_loss; /* expected is known */
    double msgs_per_s;
    bench_hist lat;
    double self_cpu_s, self_cpu_pct, max_thread_pct;
    int threads;
    int broker_pid;
    double broker_cpu_s, broker_cpu_per_1k;
    long broker_rss0_kb, broker_rss_ready_kb, broker_rss_kb;
    double broker_bytes_per_conn;
} bench_result;

void report_print(const bench_result *r, FILE *out, bool json);

/* CPU seconds (user + system) of process pid from /proc/pid/stat; < 0 if
 * unreadable. */
double proc_cpu_s(int pid);
/* VmRSS of pid in KiB from /proc/pid/status; < 0 if unreadable. */
long proc_rss_kb(int pid);

#endif
