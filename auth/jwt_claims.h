/* Claim checks and the claims handle for jwt_verify.c (internal to
 * auth/). Works on the cJSON tree of a payload whose signature has been
 * verified. */
#ifndef IMQTT_JWT_CLAIMS_H
#define IMQTT_JWT_CLAIMS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "jwt_verify.h"

struct jwt_claims_rules {
    int64_t now;
    uint32_t leeway;
    const char *iss; /* NULL: any */
    const char *aud; /* NULL: any */
    mqtt_str user;   /* sub must equal it */
};

/* Whether no two members of object `obj` share a name (top level only).
 * Duplicates are refused: two JSON parsers may pick different ones. */
bool jwt_claims_unique(const cJSON *obj);

/* Check exp, nbf, iss, aud, sub and the shape of groups and acl. */
enum jwtv_cause jwt_claims_check(const cJSON *payload,
                                 const struct jwt_claims_rules *rules);

/* A claims handle made from `payload` (a tree jwt_claims_check accepted),
 * which it frees: the handle keeps copies of what it needs. NULL when out
 * of memory (payload is then still the caller's). */
jwtv_claims *jwt_claims_wrap(cJSON *payload);

#endif
