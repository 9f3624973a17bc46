/* The broker's counters (metrics.h); rendered by ops/metrics_render.c. */
#include "metrics.h"

void metrics_commit_observe(metrics_histogram *h, uint64_t ns)
{
    static const double bounds[] = {
#define X(v) v,
        METRICS_COMMIT_BUCKETS
#undef X
    };
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < METRICS_COMMIT_NBUCKETS && s > bounds[i])
        i++;
    if (i < METRICS_COMMIT_NBUCKETS)
        h->bucket[i]++;
    h->count++;
    h->sum_ns += ns;
}
