/* Token buckets for the rate limits (see ratelimit.h). */
#include "ratelimit.h"

bool rate_take(rate_bucket *b, uint32_t rate, uint32_t burst, double cost,
               uint64_t now_ms)
{
    double cap = burst ? burst : rate;
    if (cost > cap)
        cost = cap; /* one message larger than the burst: a full bucket */
    if (b->last_ms == 0) {
        b->tokens = cap;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > cap)
            b->tokens = cap;
    }
    b->last_ms = now_ms ? now_ms : 1;
    if (b->tokens < cost)
        return false;
    b->tokens -= cost;
    return true;
}
