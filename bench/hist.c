#include "hist.h"

#include <string.h>

void hist_init(bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static uint32_t bucket_of(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (uint32_t)v;
    int msb = 63 - __builtin_clzll(v);
    int e = msb - HIST_SUB_BITS;
    if (e > HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    return (uint32_t)e * HIST_SUB + (uint32_t)(v >> e);
}

/* Largest value that falls in bucket i. */
static uint64_t bucket_top(uint32_t i)
{
    if (i < 2 * HIST_SUB)
        return i;
    uint32_t e = i / HIST_SUB - 1;
    uint64_t m = i - e * HIST_SUB;
    return ((m + 1) << e) - 1;
}

void hist_record(bench_hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}

void hist_merge(bench_hist *into, const bench_hist *from)
{
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
    if (from->min < into->min)
        into->min = from->min;
}

uint64_t hist_quantile(const bench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    /* The rank of the value wanted, 1-based: ceil(q * count). */
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bucket_top(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double hist_mean(const bench_hist *h)
{
    return h->count ? (double)(h->sum / h->count) : 0.0;
}
