/* JWT verification: every case of BAD_INPUTS row 18, the accepted
 * algorithms, claims access and verifier configuration.
 *
 * Keys are generated at test time with mbedTLS (RSA 2048, EC P-256), so no
 * key material is checked in; tokens are minted with libjwt as the
 * `imqtt token` command does, or put together by hand (with an HMAC from
 * mbedTLS) where a header must be one libjwt would never write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <jwt.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "errors.h"
#include "jwt_verify.h"

#define S(lit) mqtt_str_from((lit), strlen(lit))

/* 32, 48 and 64 bytes: the RFC 7518 minimum for HS256/384/512 */
static const char secret32[] = "0123456789abcdef0123456789abcdef";
static const char secret48[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef";
static const char secret64[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct keys {
    char rsa_priv[4096], rsa_pub[1024];
    char ec_priv[1024], ec_pub[512];
    char rsa2_priv[4096]; /* another RSA key, for "wrong key" */
};
static struct keys K;

static int64_t now;

/* ---- test key generation (mbedTLS) ---- */

static void gen_key(mbedtls_ctr_drbg_context *drbg, bool rsa, char *priv,
                    size_t priv_size, char *pub, size_t pub_size)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    if (rsa) {
        assert_int_equal(
            mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)),
            0);
        assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk),
                                             mbedtls_ctr_drbg_random, drbg,
                                             2048, 65537),
                         0);
    } else {
        assert_int_equal(
            mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)),
            0);
        assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
                                             mbedtls_pk_ec(pk),
                                             mbedtls_ctr_drbg_random, drbg),
                         0);
    }
    assert_int_equal(
        mbedtls_pk_write_key_pem(&pk, (unsigned char *)priv, priv_size), 0);
    if (pub != NULL)
        assert_int_equal(
            mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)pub, pub_size),
            0);
    mbedtls_pk_free(&pk);
}

static int setup_keys(void **state)
{
    (void)state;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) !=
        0)
        return -1;
    gen_key(&drbg, true, K.rsa_priv, sizeof(K.rsa_priv), K.rsa_pub,
            sizeof(K.rsa_pub));
    gen_key(&drbg, false, K.ec_priv, sizeof(K.ec_priv), K.ec_pub,
            sizeof(K.ec_pub));
    gen_key(&drbg, true, K.rsa2_priv, sizeof(K.rsa2_priv), NULL, 0);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    now = (int64_t)time(NULL);
    return 0;
}

/* ---- minting ---- */

/* A token signed by libjwt with `alg` and `key`, claims from JSON. */
static char *mint(jwt_alg_t alg, const char *key, size_t key_len,
                  const char *claims_json)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims_json), 0);
    assert_int_equal(
        jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)key_len), 0);
    char *tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    jwt_free(jwt);
    return tok; /* free() */
}

/* The usual claims for user "alice", exp in an hour, plus `extra`
 * (",\"k\":v" or ""). */
static char *claims(const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "{\"sub\":\"alice\",\"exp\":%lld%s}",
             (long long)(now + 3600), extra);
    return buf;
}

static void b64url(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = tab[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = tab[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

/* A hand-made token: header and payload JSON as given; signed with
 * HMAC-SHA256 over `key` when key is not NULL, else an empty signature. */
static char *craft(const char *header, const char *payload, const char *key,
                   size_t key_len)
{
    static char tok[16384];
    b64url((const uint8_t *)header, strlen(header), tok);
    size_t n = strlen(tok);
    tok[n++] = '.';
    b64url((const uint8_t *)payload, strlen(payload), tok + n);
    n = strlen(tok);
    tok[n++] = '.';
    tok[n] = '\0';
    if (key != NULL) {
        uint8_t mac[32];
        assert_int_equal(
            mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                            (const unsigned char *)key, key_len,
                            (const unsigned char *)tok, n - 1, mac),
            0);
        b64url(mac, sizeof(mac), tok + n);
    }
    return tok;
}

/* ---- verifying ---- */

static jwtv_verifier *verifier(enum jwtv_alg alg, const char *key,
                               size_t key_len, uint32_t leeway)
{
    jwtv_config cfg = {.alg = alg,
                       .key = (const uint8_t *)key,
                       .key_len = key_len,
                       .leeway = leeway};
    jwtv_verifier *v = NULL;
    const char *why = NULL;
    int rc = jwtv_verifier_new(&cfg, &v, &why);
    if (rc != 0)
        fail_msg("verifier: %s", why ? why : imqtt_strerror(rc));
    return v;
}

static jwtv_verifier *hs256(void)
{
    return verifier(JWTV_HS256, secret32, 32, 0);
}

/* Verify tok for alice; return the cause, checking the return code fits. */
static enum jwtv_cause check_user(const jwtv_verifier *v, const char *tok,
                                  const char *user)
{
    enum jwtv_cause cause = JWTV_NOMEM;
    jwtv_claims *c = (jwtv_claims *)1;
    int rc = jwtv_verify(v, S(tok), S(user), now, &c, &cause);
    if (cause == JWTV_OK) {
        assert_int_equal(rc, 0);
        assert_non_null(c);
    } else {
        assert_int_equal(rc, IMQTT_EAUTH);
        assert_null(c);
    }
    jwtv_claims_free(c);
    return cause;
}

static enum jwtv_cause check(const jwtv_verifier *v, const char *tok)
{
    return check_user(v, tok, "alice");
}

#define assert_cause(got, want)                                             \
    do {                                                                    \
        enum jwtv_cause got_ = (got);                                       \
        if (got_ != (want))                                                 \
            fail_msg("cause \"%s\", expected \"%s\"", jwtv_cause_str(got_), \
                     jwtv_cause_str(want));                                 \
    } while (0)

/* ---- accepted tokens ---- */

static void test_valid_hmac(void **state)
{
    (void)state;
    struct {
        enum jwtv_alg alg;
        jwt_alg_t lj;
        const char *key;
        size_t len;
    } cases[] = {
        {JWTV_HS256, JWT_ALG_HS256, secret32, 32},
        {JWTV_HS384, JWT_ALG_HS384, secret48, 48},
        {JWTV_HS512, JWT_ALG_HS512, secret64, 64},
    };
    for (size_t i = 0; i < 3; i++) {
        jwtv_verifier *v =
            verifier(cases[i].alg, cases[i].key, cases[i].len, 0);
        char *tok = mint(cases[i].lj, cases[i].key, cases[i].len, claims(""));
        assert_cause(check(v, tok), JWTV_OK);
        /* claims pointer is optional */
        enum jwtv_cause cause;
        assert_int_equal(jwtv_verify(v, S(tok), S("alice"), now, NULL, &cause),
                         0);
        free(tok);
        jwtv_verifier_free(v);
    }
}

static void test_valid_rs256_es256(void **state)
{
    (void)state;
    jwtv_verifier *rs =
        verifier(JWTV_RS256, K.rsa_pub, strlen(K.rsa_pub) + 1, 0);
    char *tok = mint(JWT_ALG_RS256, K.rsa_priv, strlen(K.rsa_priv), claims(""));
    assert_cause(check(rs, tok), JWTV_OK);
    free(tok);
    /* signed by another RSA key */
    tok = mint(JWT_ALG_RS256, K.rsa2_priv, strlen(K.rsa2_priv), claims(""));
    assert_cause(check(rs, tok), JWTV_SIGNATURE);
    free(tok);

    jwtv_verifier *es = verifier(JWTV_ES256, K.ec_pub, strlen(K.ec_pub), 0);
    tok = mint(JWT_ALG_ES256, K.ec_priv, strlen(K.ec_priv), claims(""));
    assert_cause(check(es, tok), JWTV_OK);
    /* an ES256 token where RS256 is pinned, and the reverse */
    assert_cause(check(rs, tok), JWTV_ALG_MISMATCH);
    free(tok);
    tok = mint(JWT_ALG_RS256, K.rsa_priv, strlen(K.rsa_priv), claims(""));
    assert_cause(check(es, tok), JWTV_ALG_MISMATCH);
    free(tok);
    jwtv_verifier_free(rs);
    jwtv_verifier_free(es);
}

/* ---- BAD_INPUTS row 18 ---- */

static void test_alg_none(void **state)
{
    (void)state;
    jwtv_verifier *v = hs256();
    const char *nones[] = {"none", "None", "NONE", "nOnE"};
    for (size_t i = 0; i < 4; i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
                 nones[i]);
        /* unsigned, and with a signature appended: both refused */
        assert_cause(check(v, craft(hdr, claims(""), NULL, 0)), JWTV_ALG_NONE);
        assert_cause(check(v, craft(hdr, claims(""), secret32, 32)),
                     JWTV_ALG_NONE);
    }
    /* libjwt's own unsigned token */
    char *tok = mint(JWT_ALG_NONE, NULL, 0, claims(""));
    assert_cause(check(v, tok), JWTV_ALG_NONE);
    free(tok);
    jwtv_verifier_free(v);
}

static void test_alg_other_than_pinned(void **state)
{
    (void)state;
    jwtv_verifier *v = hs256();
    /* correctly signed with the right secret, but HS512, not HS256 */
    char *tok = mint(JWT_ALG_HS512, secret32, 32, claims(""));
    assert_cause(check(v, tok), JWTV_ALG_MISMATCH);
    free(tok);
    tok = mint(JWT_ALG_HS384, secret32, 32, claims(""));
    assert_cause(check(v, tok), JWTV_ALG_MISMATCH);
    free(tok);
    /* alg missing, not a string, wrong case, unknown */
    const char *hdrs[] = {"{\"typ\":\"JWT\"}",   "{\"alg\":256}",
                          "{\"alg\":null}",      "{\"alg\":[\"HS256\"]}",
                          "{\"alg\":\"hs256\"}", "{\"alg\":\"HS256 \"}",
                          "{\"alg\":\"XX999\"}", "{\"ALG\":\"HS256\"}"};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        assert_cause(check(v, craft(hdrs[i], claims(""), secret32, 32)),
                     JWTV_ALG_MISMATCH);
    /* the hand-made path itself is fine */
    assert_cause(
        check(v, craft("{\"alg\":\"HS256\"}", claims(""), secret32, 32)),
        JWTV_OK);
    jwtv_verifier_free(v);
}

static void test_hs256_with_rsa_public_key(void **state)
{
    (void)state;
    /* The classic key confusion: the attacker knows the RSA public key and
     * uses it as an HMAC secret. libjwt alone would accept this, because
     * it takes HS256 from the header and the key bytes as the secret. */
    jwtv_verifier *v = verifier(JWTV_RS256, K.rsa_pub, strlen(K.rsa_pub), 0);
    size_t n = strlen(K.rsa_pub);
    char *tok = mint(JWT_ALG_HS256, K.rsa_pub, n, claims(""));
    assert_cause(check(v, tok), JWTV_ALG_MISMATCH);
    free(tok);
    /* show that the bare libjwt call is indeed fooled */
    jwt_t *jwt = NULL;
    tok = mint(JWT_ALG_HS256, K.rsa_pub, n, claims(""));
    assert_int_equal(
        jwt_decode(&jwt, tok, (const unsigned char *)K.rsa_pub, (int)n), 0);
    jwt_free(jwt);
    free(tok);
    /* claiming RS256 in the header with an HMAC signature: bad signature */
    assert_cause(
        check(v, craft("{\"alg\":\"RS256\"}", claims(""), K.rsa_pub, n)),
        JWTV_SIGNATURE);
    /* two alg members, for parsers that keep the first or the last */
    assert_cause(check(v, craft("{\"alg\":\"RS256\",\"alg\":\"HS256\"}",
                                claims(""), K.rsa_pub, n)),
                 JWTV_MALFORMED);
    jwtv_verifier_free(v);
}

static void test_expiry(void **state)
{
    (void)state;
    jwtv_verifier *strict = hs256();
    jwtv_verifier *lenient = verifier(JWTV_HS256, secret32, 32, 30);
    char body[256];
    snprintf(body, sizeof(body), "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)(now - 10));
    char *tok = mint(JWT_ALG_HS256, secret32, 32, body);
    assert_cause(check(strict, tok), JWTV_EXPIRED);
    assert_cause(check(lenient, tok), JWTV_OK); /* within leeway */
    free(tok);
    /* exp == now is already expired */
    snprintf(body, sizeof(body), "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)now);
    tok = mint(JWT_ALG_HS256, secret32, 32, body);
    assert_cause(check(strict, tok), JWTV_EXPIRED);
    free(tok);
    snprintf(body, sizeof(body), "{\"sub\":\"alice\",\"exp\":%lld}",
             (long long)(now - 31));
    tok = mint(JWT_ALG_HS256, secret32, 32, body);
    assert_cause(check(lenient, tok), JWTV_EXPIRED);
    free(tok);
    /* missing exp, and exp of the wrong type */
    tok = mint(JWT_ALG_HS256, secret32, 32, "{\"sub\":\"alice\"}");
    assert_cause(check(strict, tok), JWTV_NO_EXP);
    free(tok);
    const char *bad[] = {"{\"sub\":\"alice\",\"exp\":\"99999999999\"}",
                         "{\"sub\":\"alice\",\"exp\":99999999999.5}",
                         "{\"sub\":\"alice\",\"exp\":true}",
                         "{\"sub\":\"alice\",\"exp\":null}",
                         "{\"sub\":\"alice\",\"exp\":1e300}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_cause(
            check(strict, craft("{\"alg\":\"HS256\"}", bad[i], secret32, 32)),
            JWTV_BAD_CLAIM);
    jwtv_verifier_free(strict);
    jwtv_verifier_free(lenient);
}

static void test_nbf(void **state)
{
    (void)state;
    jwtv_verifier *strict = hs256();
    jwtv_verifier *lenient = verifier(JWTV_HS256, secret32, 32, 120);
    char extra[64];
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(now + 100));
    char *tok = mint(JWT_ALG_HS256, secret32, 32, claims(extra));
    assert_cause(check(strict, tok), JWTV_NOT_YET_VALID);
    assert_cause(check(lenient, tok), JWTV_OK);
    free(tok);
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)now);
    tok = mint(JWT_ALG_HS256, secret32, 32, claims(extra));
    assert_cause(check(strict, tok), JWTV_OK);
    free(tok);
    assert_cause(check(strict, craft("{\"alg\":\"HS256\"}",
                                     claims(",\"nbf\":\"0\""), secret32, 32)),
                 JWTV_BAD_CLAIM);
    jwtv_verifier_free(strict);
    jwtv_verifier_free(lenient);
}

static void test_sub(void **state)
{
    (void)state;
    jwtv_verifier *v = hs256();
    char *tok = mint(JWT_ALG_HS256, secret32, 32, claims(""));
    assert_cause(check_user(v, tok, "bob"), JWTV_SUB);
    assert_cause(check_user(v, tok, "alic"), JWTV_SUB);
    assert_cause(check_user(v, tok, "alice2"), JWTV_SUB);
    assert_cause(check_user(v, tok, "ALICE"), JWTV_SUB);
    assert_cause(check_user(v, tok, ""), JWTV_SUB);
    free(tok);
    char body[128];
    snprintf(body, sizeof(body), "{\"exp\":%lld}", (long long)(now + 60));
    tok = mint(JWT_ALG_HS256, secret32, 32, body);
    assert_cause(check(v, tok), JWTV_SUB); /* no sub */
    free(tok);
    snprintf(body, sizeof(body), "{\"sub\":7,\"exp\":%lld}",
             (long long)(now + 60));
    assert_cause(
        check_user(v, craft("{\"alg\":\"HS256\"}", body, secret32, 32), "7"),
        JWTV_SUB);
    jwtv_verifier_free(v);
}

static void test_size_limit(void **state)
{
    (void)state;
    jwtv_verifier *v = hs256();
    /* a valid token padded past 4096 bytes by a long claim */
    static char extra[5000];
    strcpy(extra, ",\"pad\":\"");
    memset(extra + strlen(extra), 'x', 4000);
    strcat(extra, "\"");
    /* (hand-made: libjwt 1.10 refuses to encode a claim this long) */
    char *tok =
        strdup(craft("{\"alg\":\"HS256\"}", claims(extra), secret32, 32));
    assert_true(strlen(tok) > JWTV_DEFAULT_MAX_LEN);
    assert_cause(check(v, tok), JWTV_TOOLONG);
    /* a larger configured limit accepts it */
    jwtv_config cfg = {.alg = JWTV_HS256,
                       .key = (const uint8_t *)secret32,
                       .key_len = 32,
                       .max_len = 8192};
    jwtv_verifier *big = NULL;
    assert_int_equal(jwtv_verifier_new(&cfg, &big, NULL), 0);
    assert_cause(check(big, tok), JWTV_OK);
    jwtv_verifier_free(big);
    free(tok);
    /* the limit is checked before anything else: 1 MB of garbage */
    char *junk = malloc(1 << 20);
    memset(junk, '.', (1 << 20) - 1);
    junk[(1 << 20) - 1] = '\0';
    assert_cause(check(v, junk), JWTV_TOOLONG);
    free(junk);
    jwtv_verifier_free(v);
}

static void test_malformed(void **state)
{
    (void)state;
    jwtv_verifier *v = hs256();
    char *good = mint(JWT_ALG_HS256, secret32, 32, claims(""));
    const char *dot1 = strchr(good, '.');
    const char *dot2 = strchr(dot1 + 1, '.');
    char buf[4096];
    const char *bad[] = {
        "",
        ".",
        "..",
        "...",
        "abc",
        "abc.def",
        "a.b.c",
        "e30.e30.",
        "e30.e30.c2ln", /* {} header: no alg */
        "!!!.e30.c2ln",
        "eyJhbGciOiJIUzI1NiJ9=.e30.c2ln", /* padding */
        "eyJhbGciOiJIUzI1NiJ9 .e30.c2ln",
        "eyJhbGciOiJIUzI1NiJ9.e30.c2ln.c2ln",      /* four parts */
        "eyJhbGciOiJIUzI1NiJ9.e30.c2ln.c2ln.c2ln", /* JWE-like */
        "eyJhbGciOiJIUzI1NiJ9.!!!.c2ln",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum jwtv_cause c = check(v, bad[i]);
        if (c != JWTV_MALFORMED && c != JWTV_ALG_MISMATCH)
            fail_msg("\"%s\": %s", bad[i], jwtv_cause_str(c));
    }
    /* header or payload that is not a JSON object */
    const char *hdrs[] = {"{", "[\"alg\",\"HS256\"]", "\"HS256\"",
                          "{\"alg\":\"HS256\"} x", "{\"alg\":\"HS256\",}"};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        assert_cause(check(v, craft(hdrs[i], claims(""), secret32, 32)),
                     JWTV_MALFORMED);
    const char *bodies[] = {"{", "[]", "42", "{\"sub\":\"alice\"",
                            "{\"sub\":\"alice\",\"sub\":\"bob\",\"exp\":1}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_cause(
            check(v, craft("{\"alg\":\"HS256\"}", bodies[i], secret32, 32)),
            JWTV_MALFORMED);
    /* a NUL inside the header JSON */
    char hdr_nul[] = "{\"alg\":\"HS256\"}\0junk";
    char tok[512];
    b64url((const uint8_t *)hdr_nul, sizeof(hdr_nul) - 1, tok);
    strcat(tok, strchr(good, '.'));
    assert_cause(check(v, tok), JWTV_MALFORMED);
    /* unsupported header extensions and types */
    assert_cause(check(v, craft("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                                claims(""), secret32, 32)),
                 JWTV_MALFORMED);
    assert_cause(check(v, craft("{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
                                claims(""), secret32, 32)),
                 JWTV_MALFORMED);
    /* signature bytes that are not base64url */
    snprintf(buf, sizeof(buf), "%.*s*", (int)(strlen(good) - 1), good);
    assert_cause(check(v, buf), JWTV_MALFORMED);
    /* the payload swapped for another (sub: bob) under alice's signature */
    char *bob_tok = mint(JWT_ALG_HS256, "another-secret-another-secret-xx", 32,
                         "{\"sub\":\"bob\",\"exp\":9999999999}");
    const char *b1 = strchr(bob_tok, '.');
    const char *b2 = strchr(b1 + 1, '.');
    snprintf(buf, sizeof(buf), "%.*s%.*s%s", (int)(dot1 - good), good,
             (int)(b2 - b1), b1, dot2);
    assert_cause(check_user(v, buf, "bob"), JWTV_SIGNATURE);
    free(bob_tok);
    /* a binary password with a NUL in it */
    enum jwtv_cause cause;
    mqtt_bytes bin = {(const uint8_t *)"eyJ\0.e30.c2ln", 13};
    assert_int_equal(jwtv_verify(v, bin, S("alice"), now, NULL, &cause),
                     IMQTT_EAUTH);
    free(good);
    jwtv_verifier_free(v);
}

static void test_iss_aud(void **state)
{
    (void)state;
    jwtv_config cfg = {.alg = JWTV_HS256,
                       .key = (const uint8_t *)secret32,
                       .key_len = 32,
                       .iss = "https://id.example",
                       .aud = "imqtt"};
    jwtv_verifier *v = NULL;
    assert_int_equal(jwtv_verifier_new(&cfg, &v, NULL), 0);
    struct {
        const char *extra;
        enum jwtv_cause want;
    } cases[] = {
        {",\"iss\":\"https://id.example\",\"aud\":\"imqtt\"", JWTV_OK},
        {",\"iss\":\"https://id.example\",\"aud\":[\"x\",\"imqtt\"]", JWTV_OK},
        {",\"iss\":\"https://id.example\",\"aud\":[\"x\"]", JWTV_AUD},
        {",\"iss\":\"https://id.example\",\"aud\":\"imqtt2\"", JWTV_AUD},
        {",\"iss\":\"https://id.example\",\"aud\":[]", JWTV_AUD},
        {",\"iss\":\"https://id.example\",\"aud\":[1]", JWTV_AUD},
        {",\"iss\":\"https://id.example\"", JWTV_AUD},
        {",\"iss\":\"https://evil.example\",\"aud\":\"imqtt\"", JWTV_ISS},
        {",\"aud\":\"imqtt\"", JWTV_ISS},
        {",\"iss\":[\"https://id.example\"],\"aud\":\"imqtt\"", JWTV_ISS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = mint(JWT_ALG_HS256, secret32, 32, claims(cases[i].extra));
        assert_cause(check(v, tok), cases[i].want);
        free(tok);
    }
    jwtv_verifier_free(v);
    /* not configured: not checked */
    v = hs256();
    char *tok = mint(JWT_ALG_HS256, secret32, 32,
                     claims(",\"iss\":\"anyone\",\"aud\":\"whatever\""));
    assert_cause(check(v, tok), JWTV_OK);
    free(tok);
    jwtv_verifier_free(v);
}

static void test_claims_access(void **state)
{
    (void)state;
    jwtv_verifier *v = hs256();
    char *tok = mint(JWT_ALG_HS256, secret32, 32,
                     claims(",\"groups\":[\"team-a\",\"b.2\"],\"acl\":{\"pub\":"
                            "[\"x/%u/#\",\"y\"],\"sub\":[\"z/+\"]}"));
    jwtv_claims *c = NULL;
    enum jwtv_cause cause;
    assert_int_equal(jwtv_verify(v, S(tok), S("alice"), now, &c, &cause), 0);
    free(tok); /* claims do not borrow the token */
    assert_int_equal(cause, JWTV_OK);
    assert_int_equal(jwtv_claims_exp(c), now + 3600);
    assert_int_equal(jwtv_claims_sub(c).len, 5);
    assert_int_equal(jwtv_claims_group_count(c), 2);
    assert_memory_equal(jwtv_claims_group(c, 1).ptr, "b.2", 3);
    assert_null(jwtv_claims_group(c, 2).ptr);
    assert_true(jwtv_claims_in_group(c, S("team-a")));
    assert_false(jwtv_claims_in_group(c, S("team")));
    assert_int_equal(jwtv_claims_acl_count(c, JWTV_ACL_PUB), 2);
    assert_int_equal(jwtv_claims_acl_count(c, JWTV_ACL_SUB), 1);
    mqtt_str f = jwtv_claims_acl(c, JWTV_ACL_PUB, 0);
    assert_int_equal(f.len, 6);
    assert_memory_equal(f.ptr, "x/%u/#", 6);
    assert_memory_equal(jwtv_claims_acl(c, JWTV_ACL_SUB, 0).ptr, "z/+", 3);
    jwtv_claims_free(c);

    /* absent claims: empty lists */
    tok = mint(JWT_ALG_HS256, secret32, 32, claims(""));
    assert_int_equal(jwtv_verify(v, S(tok), S("alice"), now, &c, &cause), 0);
    assert_int_equal(jwtv_claims_group_count(c), 0);
    assert_false(jwtv_claims_in_group(c, S("team-a")));
    assert_int_equal(jwtv_claims_acl_count(c, JWTV_ACL_PUB), 0);
    assert_int_equal(jwtv_claims_acl_count(c, JWTV_ACL_SUB), 0);
    jwtv_claims_free(c);
    free(tok);

    /* shapes that would let a token smuggle wildcards: refused */
    const char *bad[] = {
        ",\"groups\":\"team-a\"",
        ",\"groups\":[\"+\"]",
        ",\"groups\":[\"#\"]",
        ",\"groups\":[\"a/b\"]",
        ",\"groups\":[\"\"]",
        ",\"groups\":[1]",
        ",\"acl\":[]",
        ",\"acl\":{\"pub\":\"a\"}",
        ",\"acl\":{\"pub\":[\"a/#/b\"]}",
        ",\"acl\":{\"sub\":[\"a+\"]}",
        ",\"acl\":{\"sub\":[\"\"]}",
        ",\"acl\":{\"publish\":[\"a\"]}",
        ",\"acl\":{\"sub\":[\"$share/g/a\"]}",
        ",\"acl\":{\"pub\":[\"a\"],\"pub\":[\"#\"]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok = craft("{\"alg\":\"HS256\"}", claims(bad[i]), secret32, 32);
        enum jwtv_cause got = check(v, tok);
        if (got != JWTV_BAD_CLAIM)
            fail_msg("%s: %s", bad[i], jwtv_cause_str(got));
    }
    jwtv_verifier_free(v);
}

static void test_verifier_config(void **state)
{
    (void)state;
    struct {
        enum jwtv_alg alg;
        const char *key;
        size_t len;
    } bad[] = {
        {JWTV_HS256, secret32, 31}, /* shorter than the hash */
        {JWTV_HS384, secret32, 32},
        {JWTV_HS512, secret48, 48},
        {JWTV_HS256, "", 0},
        {JWTV_RS256, "not a key", 9},
        {JWTV_RS256, K.ec_pub, strlen(K.ec_pub)},     /* EC key for RS256 */
        {JWTV_ES256, K.rsa_pub, strlen(K.rsa_pub)},   /* RSA key for ES256 */
        {JWTV_RS256, K.rsa_priv, strlen(K.rsa_priv)}, /* private, not public */
        {(enum jwtv_alg)42, secret64, 64},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        jwtv_config cfg = {.alg = bad[i].alg,
                           .key = (const uint8_t *)bad[i].key,
                           .key_len = bad[i].len};
        jwtv_verifier *v = (jwtv_verifier *)1;
        const char *why = NULL;
        assert_int_equal(jwtv_verifier_new(&cfg, &v, &why), IMQTT_ECONFIG);
        assert_null(v);
        assert_non_null(why);
    }
    jwtv_config cfg = {.alg = JWTV_HS256,
                       .key = (const uint8_t *)secret32,
                       .key_len = 32,
                       .max_len = JWTV_MAX_LEN_LIMIT + 1};
    jwtv_verifier *v;
    assert_int_equal(jwtv_verifier_new(&cfg, &v, NULL), IMQTT_ECONFIG);

    enum jwtv_alg alg;
    assert_int_equal(jwtv_alg_parse("ES256", &alg), 0);
    assert_int_equal(alg, JWTV_ES256);
    assert_string_equal(jwtv_alg_name(JWTV_HS384), "HS384");
    assert_int_equal(jwtv_alg_parse("none", &alg), IMQTT_EINVAL);
    assert_int_equal(jwtv_alg_parse("hs256", &alg), IMQTT_EINVAL);
    assert_int_equal(jwtv_alg_parse("RS384", &alg), IMQTT_EINVAL);
    assert_string_equal(jwtv_cause_str(JWTV_EXPIRED), "expired");
    assert_string_equal(jwtv_cause_str(JWTV_SIGNATURE), "bad signature");
    assert_string_equal(jwtv_cause_str(JWTV_ALG_MISMATCH), "alg mismatch");
    assert_string_equal(jwtv_cause_str(JWTV_SUB), "sub mismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_hmac),
        cmocka_unit_test(test_valid_rs256_es256),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_other_than_pinned),
        cmocka_unit_test(test_hs256_with_rsa_public_key),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_claims_access),
        cmocka_unit_test(test_verifier_config),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
