/* See auth_guard.h. */
#include "auth_guard.h"

#include <stdlib.h>

#include <string.h>

#include "authlimit.h"
#include "credcache.h"
#include "log.h"
#include "metrics.h"

/* Addresses remembered by the limiter: 40 bytes each, 2.5 MiB of zeroed
 * pages that the kernel maps only as sets are first used. */
#define AUTH_LIMIT_ADDRS 65536

/* The server's (srv->guard), made from the config on first use. */
struct auth_guard {
    credcache *cache; /* NULL: off, or not made yet */
    authlimit *limiter;
    bool made; /* cache and limiter made from the config */
};

static void make(server *srv, struct auth_guard *g)
{
    const imqtt_config *cfg = &srv->cfg;
    credcache_free(g->cache);
    g->cache = NULL;
    if (cfg->auth_cache_size > 0) {
        g->cache =
            credcache_new(cfg->auth_cache_size, cfg->auth_cache_ttl * 1000u);
        if (!g->cache)
            log_warn("auth: no memory for the credential g->cache; every "
                     "password check runs PBKDF2");
    }
    if (cfg->auth_fail_burst == 0) {
        authlimit_free(g->limiter);
        g->limiter = NULL;
    } else if (g->limiter) {
        authlimit_set(g->limiter, cfg->auth_fail_burst, cfg->auth_fail_rate);
    } else {
        g->limiter = authlimit_new(AUTH_LIMIT_ADDRS, cfg->auth_fail_burst,
                                   cfg->auth_fail_rate);
        if (!g->limiter)
            log_warn("auth: no memory for the failed-authentication limit");
    }
    g->made = true;
}

/* The server's guard, made on first use; NULL without memory (then
 * neither the cache nor the limit applies). */
static struct auth_guard *guard(server *srv)
{
    if (!srv->guard) {
        srv->guard = calloc(1, sizeof(*srv->guard));
        if (!srv->guard)
            return NULL;
    }
    if (!srv->guard->made)
        make(srv, srv->guard);
    return srv->guard;
}

/* What c's attempts count against: the IPv4 address, or the /64 of an
 * IPv6 one (one host's usual allocation; a host has 2^64 addresses in
 * it). IPv4-mapped IPv6 addresses count as their IPv4 address. The first
 * byte keeps the families apart. */
static size_t peer_key(const conn_addr *a, uint8_t key[AUTHLIMIT_KEY_MAX])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
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
    struct auth_guard *g = guard(c->srv);
    if (!g || !g->cache)
        return false;
    bool hit =
        credcache_check(g->cache, db, user, password, server_now(c->srv));
    metrics_count(c->srv, hit ? METRIC_AUTH_CACHE_HIT : METRIC_AUTH_CACHE_MISS);
    return hit;
}

bool auth_guard_admit_addr(server *srv, const conn_addr *a)
{
    struct auth_guard *g = guard(srv);
    if (!g || !g->limiter)
        return true;
    uint8_t key[AUTHLIMIT_KEY_MAX];
    size_t n = peer_key(a, key);
    if (authlimit_take(g->limiter, key, n, server_now(srv)))
        return true;
    metrics_count(srv, METRIC_REFUSED_AUTH_FAILURES);
    return false;
}

void auth_guard_succeeded_addr(server *srv, const conn_addr *a)
{
    struct auth_guard *g = srv->guard;
    if (!g || !g->limiter)
        return;
    uint8_t key[AUTHLIMIT_KEY_MAX];
    size_t n = peer_key(a, key);
    authlimit_refund(g->limiter, key, n, server_now(srv));
}

bool auth_guard_admit(conn *c)
{
    return auth_guard_admit_addr(c->srv, &c->peer);
}

void auth_guard_succeeded(conn *c)
{
    auth_guard_succeeded_addr(c->srv, &c->peer);
}

void auth_guard_password_done(conn *c, const pwdb *db, mqtt_str user,
                              mqtt_bytes password, bool ok)
{
    if (!ok)
        return; /* the attempt stays taken: that is the limit */
    auth_guard_succeeded(c);
    struct auth_guard *g = c->srv->guard;
    if (g && g->cache)
        credcache_remember(g->cache, db, user, password, server_now(c->srv));
}

void auth_guard_reload(server *srv)
{
    /* Not made yet: nothing cached, and the first check makes both from
     * the new configuration. */
    if (srv->guard && srv->guard->made)
        make(srv, srv->guard);
}

void auth_guard_free(server *srv)
{
    struct auth_guard *g = srv->guard;
    if (!g)
        return;
    credcache_free(g->cache);
    authlimit_free(g->limiter);
    free(g);
    srv->guard = NULL;
}
