/* Token buckets for the rate limits (see ratelimit.h). */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"

/* The per-address table is bounded: when it is full it is cleared, which
 * forgives every address at once rather than growing without limit under
 * a spoofed-address flood. */
#define LIMITS_MAX_ADDRS 65536

typedef struct addr_bucket {
    char ip[48]; /* the hmap key points here */
    rate_bucket b;
} addr_bucket;

static hmap addrs; /* one loop thread */

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

static void clear_addrs(void)
{
    uint32_t pos = 0;
    addr_bucket *a;
    while ((a = hmap_next(&addrs, &pos)))
        free(a);
    hmap_free(&addrs);
    memset(&addrs, 0, sizeof(addrs));
}

bool limits_accept(server *srv, const char *ip)
{
    uint32_t rate = srv->cfg.conn_rate;
    if (rate == 0)
        return true;
    size_t len = strlen(ip);
    if (len >= sizeof(((addr_bucket *)0)->ip))
        return true;
    addr_bucket *a =
        hmap_get(&addrs, (mqtt_bytes){(const uint8_t *)ip, (uint32_t)len});
    if (!a) {
        if (addrs.count >= LIMITS_MAX_ADDRS)
            clear_addrs();
        a = calloc(1, sizeof(*a));
        if (!a)
            return true;
        memcpy(a->ip, ip, len);
        if (hmap_put(&addrs,
                     (mqtt_bytes){(const uint8_t *)a->ip, (uint32_t)len}, a,
                     NULL) < 0) {
            free(a);
            return true;
        }
    }
    if (rate_take(&a->b, rate, srv->cfg.conn_burst, 1, server_now(srv)))
        return true;
    metrics_count(srv, METRIC_REFUSED_RATE);
    return false;
}

bool limits_publish(conn *c, uint32_t bytes)
{
    const imqtt_config *cfg = &c->srv->cfg;
    if (!cfg->msg_rate && !cfg->bytes_rate)
        return true;
    if (!c->buckets) {
        c->buckets = calloc(2, sizeof(rate_bucket));
        if (!c->buckets)
            return false; /* refused, as when over the limit */
    }
    uint64_t now = server_now(c->srv);
    if (cfg->msg_rate &&
        !rate_take(&c->buckets[0], cfg->msg_rate, cfg->msg_burst, 1, now)) {
        metrics_count(c->srv, METRIC_REFUSED_MSG_RATE);
        return false;
    }
    if (cfg->bytes_rate && !rate_take(&c->buckets[1], cfg->bytes_rate,
                                      cfg->bytes_burst, bytes, now)) {
        metrics_count(c->srv, METRIC_REFUSED_BYTES_RATE);
        return false;
    }
    return true;
}

void limits_free(server *srv)
{
    (void)srv;
    clear_addrs();
}
