#include "api_rate.h"

#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

typedef struct api_rate_entry {
    rate_bucket bucket;
    uint32_t len;
    char cid[]; /* the key */
} api_rate_entry;

/* One second's worth when no burst is configured (ratelimit.h). */
static uint32_t burst_of(const server *srv)
{
    return srv->cfg.msg_burst ? srv->cfg.msg_burst : srv->cfg.msg_rate;
}

/* Forget the devices whose bucket is full again: they were idle long
 * enough that a fresh bucket is the same. */
static void sweep(api_rates *r, const server *srv, uint64_t now)
{
    uint32_t pos = 0;
    api_rate_entry *e;
    api_rate_entry **idle = NULL;
    uint32_t n = 0, cap = 0;
    while ((e = hmap_next(&r->devices, &pos))) {
        double t = e->bucket.tokens +
                   (double)(now - e->bucket.last_ms) * srv->cfg.msg_rate / 1e3;
        if (t < (double)burst_of(srv))
            continue;
        if (n == cap) {
            uint32_t ncap = cap ? cap * 2 : 256;
            api_rate_entry **v = realloc(idle, ncap * sizeof(*v));
            if (!v)
                break;
            idle = v;
            cap = ncap;
        }
        idle[n++] = e;
    }
    for (uint32_t i = 0; i < n; i++) {
        hmap_remove(&r->devices,
                    (mqtt_bytes){(const uint8_t *)idle[i]->cid, idle[i]->len});
        free(idle[i]);
    }
    free(idle);
}

bool api_rate_take(api_rates *r, const server *srv, mqtt_str cid)
{
    if (!srv->cfg.msg_rate)
        return true;
    uint64_t now = server_now(srv);
    api_rate_entry *e = hmap_get(&r->devices, cid);
    if (!e) {
        if (r->devices.count >= API_RATE_MAX)
            sweep(r, srv, now);
        if (r->devices.count >= API_RATE_MAX)
            return false;
        e = calloc(1, sizeof(*e) + cid.len);
        if (!e)
            return false;
        memcpy(e->cid, cid.ptr, cid.len);
        e->len = cid.len;
        if (hmap_put(&r->devices, (mqtt_bytes){(const uint8_t *)e->cid, e->len},
                     e, NULL) < 0) {
            free(e);
            return false;
        }
    }
    return rate_take(&e->bucket, srv->cfg.msg_rate, srv->cfg.msg_burst, 1, now);
}

void api_rates_free(api_rates *r)
{
    uint32_t pos;
    api_rate_entry *e;
    while ((pos = 0, e = hmap_next(&r->devices, &pos))) {
        hmap_remove(&r->devices, (mqtt_bytes){(const uint8_t *)e->cid, e->len});
        free(e);
    }
    hmap_free(&r->devices);
}
