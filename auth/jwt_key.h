/* Key validation for jwt_verify.c (internal to auth/). */
#ifndef IMQTT_JWT_KEY_H
#define IMQTT_JWT_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "jwt_verify.h"

/* Whether `key` (key_len bytes, no trailing NUL counted) suits `alg`:
 * an HS secret of at least jwtv_hmac_min_key bytes; for RS256 a PEM
 * SubjectPublicKeyInfo ("BEGIN PUBLIC KEY", the form libjwt reads) of an
 * RSA key of at least 2048 bits; for ES256 the same of an EC key on P-256.
 * Returns 0 or IMQTT_ECONFIG with *why set to a static string. */
int jwt_key_check(enum jwtv_alg alg, const uint8_t *key, size_t key_len,
                  const char **why);

#endif
