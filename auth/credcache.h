/* A bounded cache of recently verified password-file credentials
 * (BAD_INPUTS row 24): a device that reconnects within the TTL with the
 * password it used before costs one HMAC-SHA256 instead of a PBKDF2 run
 * (~0.1 s of CPU at 100,000 iterations).
 *
 * Keyed so that a wrong password never hits: an entry is the tag
 * HMAC-SHA256(secret, user, password, the entry's iterations, salt and
 * stored hash) under a secret drawn from getrandom(2) when the cache is
 * made, stored only after PBKDF2 said yes. A different password, user or
 * password-file entry gives a different tag (a false hit would need a
 * 256-bit HMAC collision), so a changed entry never matches an old tag
 * even before the cache is cleared. Neither passwords nor their hashes
 * are stored: the tags are useless without the secret, which never
 * leaves the process.
 *
 * Fixed size: capacity slots in sets of four chosen by the tag (uniform
 * and unpredictable, so nobody can aim at one set); a full set drops the
 * entry closest to expiry. Entries expire ttl_ms after their
 * verification, whatever the hits meanwhile.
 *
 * No libuv here: the caller passes the time. Not thread-safe (the broker
 * uses it on its loop thread).
 */
#ifndef IMQTT_CREDCACHE_H
#define IMQTT_CREDCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "mqtt_types.h"
#include "password.h"

typedef struct credcache credcache;

/* capacity: entries, rounded up to a power of two (at least 4); ttl_ms
 * > 0. NULL when out of memory or no randomness for the secret. */
credcache *credcache_new(uint32_t capacity, uint32_t ttl_ms);
void credcache_free(credcache *cc);

/* Whether (user, password) was verified against db's current entry for
 * user within the TTL. Counts a hit or a miss. */
bool credcache_check(credcache *cc, const pwdb *db, mqtt_str user,
                     mqtt_bytes password, uint64_t now_ms);

/* Remember that PBKDF2 accepted (user, password) for db's entry. */
void credcache_remember(credcache *cc, const pwdb *db, mqtt_str user,
                        mqtt_bytes password, uint64_t now_ms);

/* Forget everything (the password file was reloaded). */
void credcache_clear(credcache *cc);

uint32_t credcache_capacity(const credcache *cc);
uint64_t credcache_hits(const credcache *cc);
uint64_t credcache_misses(const credcache *cc);

#endif
