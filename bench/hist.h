/* A log-bucketed latency histogram (HdrHistogram-like): exact below 128,
 * then 64 linear sub-buckets per power of two, so any recorded value is
 * known to within 1/64 (1.6 %). Fixed size, no allocation, one per thread;
 * merged at the end. */
#ifndef IMQTT_BENCH_HIST_H
#define IMQTT_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP  40 /* values up to 2^46 ns (~19 h) */
#define HIST_BUCKETS  ((HIST_MAX_EXP + 2) * HIST_SUB)

typedef struct bench_hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    long double sum;
    uint64_t b[HIST_BUCKETS];
} bench_hist;

void hist_init(bench_hist *h);
void hist_record(bench_hist *h, uint64_t v);
void hist_merge(bench_hist *into, const bench_hist *from);
/* Value at quantile q (0..1): the upper edge of the bucket holding it,
 * never above the recorded maximum. 0 when empty. */
uint64_t hist_quantile(const bench_hist *h, double q);
double hist_mean(const bench_hist *h);

#endif
