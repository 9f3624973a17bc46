/* The rate limits the server applies (see rate_limits.h): new connections per
 * source address, PUBLISH packets and bytes per client. */
#include "rate_limits.h"

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

static void clear_addrs(hmap *addrs)
{
    uint32_t pos = 0;
    addr_bucket *a;
    while ((a = hmap_next(addrs, &pos)))
        free(a);
    hmap_free(addrs);
    memset(addrs, 0, sizeof(*addrs));
}

bool rate_limits_accept(server *srv, const char *ip)
{
    uint32_t rate = srv->cfg.conn_rate;
    if (rate == 0)
        return true;
    size_t len = strlen(ip);
    if (len >= sizeof(((addr_bucket *)0)->ip))
        return true;
    addr_bucket *a = hmap_get(&srv->conn_rate_addrs,
                              (mqtt_bytes){(const uint8_t *)ip, (uint32_t)len});
    if (!a) {
        if (srv->conn_rate_addrs.count >= LIMITS_MAX_ADDRS)
            clear_addrs(&srv->conn_rate_addrs);
        a = calloc(1, sizeof(*a));
        if (!a)
            return true;
        memcpy(a->ip, ip, len);
        if (hmap_put(&srv->conn_rate_addrs,
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

bool rate_limits_publish(conn *c, uint32_t bytes)
{
    const imqtt_config *cfg = &c->srv->cfg;
    if (!cfg->msg_rate && !cfg->bytes_rate)
        return true;
    conn_extra *x = conn_extra_get(c);
    if (!x)
        return false; /* refused, as when over the limit */
    uint64_t now = server_now(c->srv);
    if (cfg->msg_rate &&
        !rate_take(&x->buckets[0], cfg->msg_rate, cfg->msg_burst, 1, now)) {
        metrics_count(c->srv, METRIC_REFUSED_MSG_RATE);
        return false;
    }
    if (cfg->bytes_rate && !rate_take(&x->buckets[1], cfg->bytes_rate,
                                      cfg->bytes_burst, bytes, now)) {
        metrics_count(c->srv, METRIC_REFUSED_BYTES_RATE);
        return false;
    }
    return true;
}

void rate_limits_free(server *srv)
{
    clear_addrs(&srv->conn_rate_addrs);
}
