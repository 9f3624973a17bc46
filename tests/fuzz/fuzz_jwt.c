/* libFuzzer target: JWT verification and claim checks (jwtv_verify).
 *
 * One verifier pinned to HS256 with a fixed secret, a fixed clock.
 * Byte 0 picks the mode:
 *   0  the rest is the token as a client sends it (the CONNECT password):
 *      nobody can forge the HMAC, so it must never be accepted;
 *   1  the rest is "header-JSON \0 payload-JSON \0 tail"; the target
 *      base64url-encodes both and signs them with the right secret (tail
 *      is appended to the signature segment when non-empty), so the
 *      header checks (alg none / other / duplicated / crit) and the claim
 *      checks (exp, nbf, sub, groups, acl) are reached. On acceptance the
 *      header's alg must be exactly "HS256", sub must equal the user,
 *      exp must lie in the future (leeway included) and every group and
 *      acl filter must be readable through the claims API;
 *   2  like 1, signed with another secret: must be refused.
 * Header and payload are also checked with the header alg "none" and an
 * empty signature (mode 1, when byte 1 is odd): always refused. */
#include "errors.h"
#include "fuzz.h"
#include "jwt_verify.h"

#include <cjson/cJSON.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW    1700000000
#define LEEWAY 30

static const char SECRET[] = "fuzz-secret-0123456789-abcdefghijklmnop";
static const char OTHER[] = "another-secret-0123456789-abcdefghijklm";
static jwtv_verifier *g_v;

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
    }
    return o;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    jwtv_config cfg = {.alg = JWTV_HS256,
                       .key = (const uint8_t *)SECRET,
                       .key_len = strlen(SECRET),
                       .leeway = LEEWAY};
    const char *why = NULL;
    if (jwtv_verifier_new(&cfg, &g_v, &why) != 0) {
        fprintf(stderr, "verifier: %s\n", why ? why : "?");
        abort();
    }
    return 0;
}

static const mqtt_str USER = {(const uint8_t *)"alice", 5};

static int verify(const char *tok, size_t len, jwtv_claims **cl,
                  enum jwtv_cause *cause)
{
    mqtt_bytes t = {(const uint8_t *)tok, (uint32_t)len};
    return jwtv_verify(g_v, t, USER, NOW, cl, cause);
}

static void check_accepted(const uint8_t *hdr, size_t hlen, jwtv_claims *cl)
{
    cJSON *h = cJSON_ParseWithLength((const char *)hdr, hlen);
    FUZZ_CHECK(h != NULL);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    FUZZ_CHECK(cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0);
    FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(h, "crit") == NULL);
    cJSON_Delete(h);
    mqtt_str sub = jwtv_claims_sub(cl);
    FUZZ_CHECK(sub.len == USER.len && memcmp(sub.ptr, USER.ptr, 5) == 0);
    FUZZ_CHECK(jwtv_claims_exp(cl) + LEEWAY >= NOW);
    for (size_t i = 0; i < jwtv_claims_group_count(cl); i++) {
        mqtt_str g = jwtv_claims_group(cl, i);
        FUZZ_CHECK(g.len > 0);
        FUZZ_CHECK(jwtv_claims_in_group(cl, g));
    }
    for (int k = 0; k < 2; k++) {
        enum jwtv_acl_kind kind = k ? JWTV_ACL_SUB : JWTV_ACL_PUB;
        for (size_t i = 0; i < jwtv_claims_acl_count(cl, kind); i++)
            FUZZ_CHECK(jwtv_claims_acl(cl, kind, i).len > 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 8192)
        return 0;
    uint8_t mode = data[0] % 3;
    jwtv_claims *cl = NULL;
    enum jwtv_cause cause = JWTV_NOMEM;
    if (mode == 0) {
        int rc = verify((const char *)data + 1, size - 1, &cl, &cause);
        FUZZ_CHECK(rc != 0 && cause != JWTV_OK && cl == NULL);
        return 0;
    }
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    const uint8_t *z1 = memchr(p, 0, n);
    if (!z1)
        return 0;
    size_t hlen = (size_t)(z1 - p);
    const uint8_t *pay = z1 + 1;
    const uint8_t *z2 = memchr(pay, 0, n - hlen - 1);
    size_t plen = z2 ? (size_t)(z2 - pay) : n - hlen - 1;
    const uint8_t *tail = z2 ? z2 + 1 : pay + plen;
    size_t tlen = z2 ? (size_t)(p + n - tail) : 0;

    size_t cap = (hlen + plen + tlen) * 2 + 128;
    char *tok = malloc(cap);
    FUZZ_CHECK(tok);
    size_t o = b64url(p, hlen, tok);
    tok[o++] = '.';
    o += b64url(pay, plen, tok + o);
    size_t signing_len = o;
    tok[o++] = '.';

    if (data[1] & 1) { /* unsigned: always refused */
        int rc = verify(tok, o, &cl, &cause);
        FUZZ_CHECK(rc != 0 && cause != JWTV_OK && cl == NULL);
    }

    const char *key = mode == 1 ? SECRET : OTHER;
    uint8_t mac[32];
    FUZZ_CHECK(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                               (const unsigned char *)key, strlen(key),
                               (const unsigned char *)tok, signing_len,
                               mac) == 0);
    o += b64url(mac, sizeof(mac), tok + o);
    memcpy(tok + o, tail, tlen);
    o += tlen;

    int rc = verify(tok, o, &cl, &cause);
    if (rc == 0) {
        FUZZ_CHECK(cause == JWTV_OK && cl != NULL);
        FUZZ_CHECK(mode == 1);
        check_accepted(p, hlen, cl);
        jwtv_claims_free(cl);
    } else {
        FUZZ_CHECK(rc == IMQTT_EAUTH || rc == IMQTT_ENOMEM);
        FUZZ_CHECK(cause != JWTV_OK && cl == NULL);
    }
    free(tok);
    return 0;
}
