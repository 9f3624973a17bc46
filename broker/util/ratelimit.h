/* Token buckets: `rate` tokens per second, holding at most `burst`
 * (default: one second's worth). The limits built on them are in
 * mqtt/rate_limits.h. */
#ifndef IMQTT_RATELIMIT_H
#define IMQTT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rate_bucket {
    double tokens;
    uint64_t last_ms; /* 0: never used (starts full) */
} rate_bucket;

/* Take cost tokens at time now_ms; false when the bucket is short. */
bool rate_take(rate_bucket *b, uint32_t rate, uint32_t burst, double cost,
               uint64_t now_ms);

#endif
