/* SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012), written from the paper, and the per-process key every hash table
 * keyed by client input uses (BAD_INPUTS row 21, docs/reliability.md).
 *
 * Why a keyed PRF: an unkeyed hash lets a client choose keys (client ids,
 * topic levels, user names, addresses) that all land in one bucket, so
 * each lookup walks every entry (hash flooding). With a secret 128-bit key
 * drawn from getrandom(2) at start-up the bucket of a key is unpredictable
 * to anyone who does not know the key, and SipHash is designed so that the
 * outputs reveal nothing usable about the key. SipHash-1-3 (one compression
 * round, three finalization rounds) is the variant Python and Rust use for
 * their hash tables; SipHash-2-4 is the paper's conservative choice and is
 * kept for the test vectors of the paper. */
#ifndef IMQTT_SIPHASH_H
#define IMQTT_SIPHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct siphash_key {
    uint64_t k0, k1; /* the 16 key bytes read little-endian */
} siphash_key;

uint64_t siphash13(const siphash_key *k, const void *data, size_t len);
uint64_t siphash24(const siphash_key *k, const void *data, size_t len);

/* The process's random key, drawn on first use (thread-safe) from
 * getrandom(2), /dev/urandom as a fallback; aborts when neither gives
 * randomness, as a broker without a secret key would be floodable. The
 * pointer is to static storage valid for the process's lifetime. */
const siphash_key *siphash_process_key(void);

/* len random bytes from getrandom(2), else /dev/urandom; false when
 * neither could give them. */
bool auth_random_bytes(void *out, size_t len);

/* SipHash-1-3 of data under the process key. */
uint64_t siphash_keyed(const void *data, size_t len);

#endif
