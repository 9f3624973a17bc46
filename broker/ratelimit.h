/* Rate limits (config "limits", docs/config.md): new connections per
 * source address, and PUBLISH packets and bytes per client. Token
 * buckets: `rate` per second, holding at most `burst` (default: one
 * second's worth). Each refusal is counted in the metrics. */
#ifndef IMQTT_RATELIMIT_H
#define IMQTT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct server;
struct conn;

typedef struct rate_bucket {
    double tokens;
    uint64_t last_ms; /* 0: never used (starts full) */
} rate_bucket;

/* Take cost tokens at time now_ms; false when the bucket is short. */
bool rate_take(rate_bucket *b, uint32_t rate, uint32_t burst, double cost,
               uint64_t now_ms);

/* A new connection from address ip (text, no port). False: refuse it. */
bool limits_accept(struct server *srv, const char *ip);

/* A PUBLISH of `bytes` from c. False: over its rate (disconnect 0x96). */
bool limits_publish(struct conn *c, uint32_t bytes);

/* Free the per-address table. */
void limits_free(struct server *srv);

#endif
