/* JWT verification for CONNECT passwords (IM conventions, BAD_INPUTS 18).
 *
 * Named jwt_verify.h, not jwt.h, so that it never shadows libjwt's <jwt.h>
 * on the include path. Prefix jwtv_ keeps clear of libjwt's jwt_ names.
 *
 * libjwt 1.10's jwt_decode() takes the algorithm from the token header and
 * checks no claims. This wrapper:
 *   1. refuses tokens longer than the configured limit before parsing;
 *   2. checks the compact form (three base64url segments) itself, decodes
 *      the header and requires `alg` to equal the pinned algorithm exactly
 *      ("none", any other value, a missing alg, duplicate keys and a
 *      `crit` header are refused);
 *   3. only then lets libjwt verify the signature with the configured key,
 *      and checks that libjwt saw the same algorithm (so a header that two
 *      JSON parsers read differently cannot switch it);
 *   4. checks the claims from its own parse of the signed payload: `exp`
 *      required, `nbf` honoured (both with leeway), `iss` and `aud` if
 *      configured, `sub` equal to the expected user, `groups` and `acl`
 *      well-formed when present.
 *
 * A verifier is immutable after jwtv_verifier_new and may be shared by any
 * number of verifications (libjwt keeps no state between calls); a config
 * reload builds a new one.
 */
#ifndef IMQTT_JWT_VERIFY_H
#define IMQTT_JWT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_types.h"

#define JWTV_DEFAULT_MAX_LEN 4096
/* Upper bound for a configured max_len: tokens arrive in the CONNECT
 * password and are copied once per verification. */
#define JWTV_MAX_LEN_LIMIT 65536

enum jwtv_alg {
    JWTV_HS256,
    JWTV_HS384,
    JWTV_HS512,
    JWTV_RS256,
    JWTV_ES256,
};

/* Why a token was refused. The text is for the log; a client is never
 * told (it gets CONNACK 0x86 / return code 4). X(name, text) */
#define JWTV_CAUSE_MAP(X)                   \
    X(OK, "ok")                             \
    X(TOOLONG, "token too long")            \
    X(MALFORMED, "malformed token")         \
    X(ALG_NONE, "alg none")                 \
    X(ALG_MISMATCH, "alg mismatch")         \
    X(SIGNATURE, "bad signature")           \
    X(NO_EXP, "exp missing")                \
    X(EXPIRED, "expired")                   \
    X(NOT_YET_VALID, "not yet valid (nbf)") \
    X(ISS, "iss mismatch")                  \
    X(AUD, "aud mismatch")                  \
    X(SUB, "sub mismatch")                  \
    X(BAD_CLAIM, "claim of the wrong type") \
    X(NOMEM, "out of memory")

enum jwtv_cause {
#define JWTV_CAUSE_ENUM_(name, text) JWTV_##name,
    JWTV_CAUSE_MAP(JWTV_CAUSE_ENUM_)
#undef JWTV_CAUSE_ENUM_
};

typedef struct jwtv_config {
    enum jwtv_alg alg;
    /* HS*: the secret bytes (at least 32/48/64 bytes for HS256/384/512,
     * RFC 7518 3.2). RS256/ES256: a PEM public key (RSA of at least 2048
     * bits / EC on P-256); a trailing NUL is allowed but not needed.
     * Borrowed: copied by jwtv_verifier_new. */
    const uint8_t *key;
    size_t key_len;
    uint32_t leeway; /* seconds of clock skew allowed for exp and nbf */
    const char *iss; /* NULL: not checked; else `iss` must equal it */
    const char *aud; /* NULL: not checked; else `aud` must contain it */
    size_t max_len;  /* token size limit; 0: JWTV_DEFAULT_MAX_LEN */
} jwtv_config;

typedef struct jwtv_verifier jwtv_verifier;
typedef struct jwtv_claims jwtv_claims;

/* Build a verifier from cfg (all of it copied). Validates the key: HS
 * secrets must be long enough, PEM keys must parse and be of the pinned
 * kind. Returns 0, IMQTT_ECONFIG (bad key, alg or max_len; *why, if not
 * NULL, gets a static explanation) or IMQTT_ENOMEM. */
int jwtv_verifier_new(const jwtv_config *cfg, jwtv_verifier **out,
                      const char **why);
void jwtv_verifier_free(jwtv_verifier *v);
enum jwtv_alg jwtv_verifier_alg(const jwtv_verifier *v);

/* Verify `token` (the CONNECT password; need not be NUL-terminated) for
 * `user` (the user part of the client id; must be non-empty) at time
 * `now` (seconds since the epoch; the caller passes time(NULL)).
 *
 * Returns 0 on success and, if claims is not NULL, *claims = a new handle
 * the caller frees with jwtv_claims_free. Returns IMQTT_EAUTH for a
 * refused token, IMQTT_ENOMEM when memory ran out; *claims is then NULL.
 * *cause (required) is always set: JWTV_OK on success. */
int jwtv_verify(const jwtv_verifier *v, mqtt_bytes token, mqtt_str user,
                int64_t now, jwtv_claims **claims, enum jwtv_cause *cause);

/* Static text for a cause ("expired"), for the log. */
const char *jwtv_cause_str(enum jwtv_cause cause);

/* "HS256" <-> JWTV_HS256. Names are exact (case-sensitive, as in the JOSE
 * header). jwtv_alg_parse returns 0 or IMQTT_EINVAL. */
int jwtv_alg_parse(const char *name, enum jwtv_alg *out);
const char *jwtv_alg_name(enum jwtv_alg alg);
bool jwtv_alg_is_hmac(enum jwtv_alg alg);
/* Smallest secret accepted for an HS algorithm (0 for RS/ES). */
size_t jwtv_hmac_min_key(enum jwtv_alg alg);

/* ---- claims of a verified token ----
 *
 * All strings returned are views owned by the claims handle: valid until
 * jwtv_claims_free. None is NUL-terminated in the API's sense (use .len).
 */
enum jwtv_acl_kind { JWTV_ACL_PUB, JWTV_ACL_SUB };

void jwtv_claims_free(jwtv_claims *c);
/* The `exp` claim: disconnect the client at this time (v5 0xA0). */
int64_t jwtv_claims_exp(const jwtv_claims *c);
mqtt_str jwtv_claims_sub(const jwtv_claims *c);
/* `iat` (whole seconds), for revocations by issue time: false when the
 * token has none (or not a NumericDate). */
bool jwtv_claims_iat(const jwtv_claims *c, int64_t *iat);
/* `jti`, for revocations by token id: empty when absent or not a
 * string. */
mqtt_str jwtv_claims_jti(const jwtv_claims *c);
/* `groups`: an array of group names, each valid per im_id_part_valid (a
 * token with any other shape is refused). 0 when absent. */
size_t jwtv_claims_group_count(const jwtv_claims *c);
mqtt_str jwtv_claims_group(const jwtv_claims *c, size_t i);
bool jwtv_claims_in_group(const jwtv_claims *c, mqtt_str group);
/* `envelope`: true asks for the IM envelope on 3.1.1 deliveries
 * (docs/im.md); false when absent or not the JSON literal true. */
bool jwtv_claims_envelope(const jwtv_claims *c);
/* `acl`: {"pub":[filters],"sub":[filters]}; each a valid topic filter
 * that may hold placeholders %u %d %c (unexpanded). 0 when absent. */
size_t jwtv_claims_acl_count(const jwtv_claims *c, enum jwtv_acl_kind kind);
mqtt_str jwtv_claims_acl(const jwtv_claims *c, enum jwtv_acl_kind kind,
                         size_t i);

#endif
