/* A per-address limit on authentication attempts that can fail (BAD_INPUTS
 * row 24): each password check that would run PBKDF2, and each token
 * check, takes a token from its address's bucket; a success gives it
 * back, so only failures (and checks still running) count. An address
 * whose bucket is empty is refused before any expensive work, which turns
 * a storm of wrong passwords from one address into a handful of PBKDF2
 * runs. Tokens come back at `per_minute`, up to `burst`.
 *
 * Because the token is taken when the check starts, not when it fails,
 * parallel attempts are bounded too: 20 simultaneous wrong passwords
 * with burst 5 run 5 PBKDF2s, the other 15 are refused at once.
 *
 * The table has a fixed size (capacity buckets in sets of 8 picked by
 * SipHash under the process key, so no client can aim at one set). When
 * a set is full the bucket with the most tokens is dropped: the address
 * that has failed least, for which forgetting changes least. Addresses
 * are opaque bytes (up to AUTHLIMIT_KEY_MAX); the caller decides what an
 * address is (the broker uses the IPv4 address, or the /64 of an IPv6
 * one).
 *
 * No libuv here: the caller passes the time. Not thread-safe.
 */
#ifndef IMQTT_AUTHLIMIT_H
#define IMQTT_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTHLIMIT_KEY_MAX 16

typedef struct authlimit authlimit;

/* burst >= 1 attempts, per_minute >= 1 regained per minute; capacity
 * buckets, rounded up to a power of two (at least 8). NULL: no memory. */
authlimit *authlimit_new(uint32_t capacity, uint32_t burst,
                         uint32_t per_minute);
void authlimit_free(authlimit *al);

/* New limits for the buckets kept (a reload); tokens above the new burst
 * are cut. */
void authlimit_set(authlimit *al, uint32_t burst, uint32_t per_minute);

/* An attempt from key: true (a token taken) or false (refuse it, nothing
 * taken; counted in authlimit_refused). */
bool authlimit_take(authlimit *al, const uint8_t *key, size_t len,
                    uint64_t now_ms);

/* The attempt succeeded: its token back. */
void authlimit_refund(authlimit *al, const uint8_t *key, size_t len,
                      uint64_t now_ms);

uint64_t authlimit_refused(const authlimit *al);

#endif
