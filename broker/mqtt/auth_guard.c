/* See auth_guard.h. */
#include "auth_guard.h"

#include <string.h>

#include "authlimit.h"
#include "credcache.h"
#include "log.h"
#include "metrics.h"

/* Addresses remembered by the limiter: 40 bytes each, 2.5 MiB of zeroed
 * pages that the kernel maps only as sets are first used. */
#define AUTH_LIMIT_ADDRS 65536

static credcache *cache; /* NULL: off, or not made yet */
static authlimit *limiter;
static bool made; /* cache and limiter made from the config */

static void make(server *srv)
{
    const imqtt_config *cfg = &srv->cfg;
    credcache_free(cache);
    cache = NULL;
    if (cfg->auth_cache_size > 0) {
        cache =
            credcache_new(cfg->auth_cache_size, cfg->auth_cache_ttl * 1000u);
        if (!cache)
            log_warn("auth: no memory for the credential cache; every "
                     "password check runs PBKDF2");
    }
    if (cfg->auth_fail_burst == 0) {
        authlimit_free(limiter);
        limiter = NULL;
    } else if (limiter) {
        authlimit_set(limiter, cfg->auth_fail_burst, cfg->auth_fail_rate);
    } else {
        limiter = authlimit_new(AUTH_LIMIT_ADDRS, cfg->auth_fail_burst,
                                cfg->auth_fail_rate);
        if (!limiter)
            log_warn("auth: no memory for the failed-authentication limit");
    }
    made = true;
}

static void ensure(server *srv)
{
    if (!made)
        make(srv);
}

/* What c's attempts count against: the IPv4 address, or the /64 of an
 * IPv6 one (one host's usual allocation; a host has 2^64 addresses in
 * it). IPv4-mapped IPv6 addresses count as their IPv4 address. The first
 * byte keeps the families apart. */
static size_t addr_key(const conn *c, uint8_t key[AUTHLIMIT_KEY_MAX])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    const conn_addr *a = &c->peer;
    if (a->family == 4 ||
        (a->family == 6 && memcmp(a->ip, mapped, sizeof(mapped)) == 0)) {
        key[0] = 4;
        memcpy(key + 1, a->family == 4 ? a->ip : a->ip + 12, 4);
        return 5;
    }
    if (a->family == 6) {
        key[0] = 6;
        memcpy(key + 1, a->ip, 8);
        return 9;
    }
    key[0] = a->family; /* adopted socket, unknown: one bucket each */
    return 1;
}

bool auth_guard_cached(conn *c, const pwdb *db, mqtt_str user,
                       mqtt_bytes password)
{
    ensure(c->srv);
    if (!cache)
        return false;
    bool hit = credcache_check(cache, db, user, password, server_now(c->srv));
    metrics_count(c->srv, hit ? METRIC_AUTH_CACHE_HIT : METRIC_AUTH_CACHE_MISS);
    return hit;
}

bool auth_guard_admit(conn *c)
{
    ensure(c->srv);
    if (!limiter)
        return true;
    uint8_t key[AUTHLIMIT_KEY_MAX];
    size_t n = addr_key(c, key);
    if (authlimit_take(limiter, key, n, server_now(c->srv)))
        return true;
    metrics_count(c->srv, METRIC_REFUSED_AUTH_FAILURES);
    return false;
}

void auth_guard_succeeded(conn *c)
{
    if (!limiter)
        return;
    uint8_t key[AUTHLIMIT_KEY_MAX];
    size_t n = addr_key(c, key);
    authlimit_refund(limiter, key, n, server_now(c->srv));
}

void auth_guard_password_done(conn *c, const pwdb *db, mqtt_str user,
                              mqtt_bytes password, bool ok)
{
    if (!ok)
        return; /* the attempt stays taken: that is the limit */
    auth_guard_succeeded(c);
    if (cache)
        credcache_remember(cache, db, user, password, server_now(c->srv));
}

void auth_guard_reload(server *srv)
{
    /* Not made yet: nothing cached, and the first check makes both from
     * the new configuration. */
    if (made)
        make(srv);
}

void auth_guard_free(void)
{
    credcache_free(cache);
    authlimit_free(limiter);
    cache = NULL;
    limiter = NULL;
    made = false;
}
