/* JWT verification: our own checks around libjwt 1.10's jwt_decode.
 * See jwt_verify.h for the order of checks and why. */
#include "jwt_verify.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64url.h"
#include "errors.h"
#include "jwt_claims.h"
#include "jwt_key.h"

struct jwtv_verifier {
    enum jwtv_alg alg;
    uint8_t *key; /* owned; PEM keys carry a NUL after key_len bytes */
    size_t key_len;
    uint32_t leeway;
    char *iss; /* owned or NULL */
    char *aud; /* owned or NULL */
    size_t max_len;
};

static const char *const alg_names[] = {
    [JWTV_HS256] = "HS256", [JWTV_HS384] = "HS384", [JWTV_HS512] = "HS512",
    [JWTV_RS256] = "RS256", [JWTV_ES256] = "ES256",
};

static const jwt_alg_t libjwt_algs[] = {
    [JWTV_HS256] = JWT_ALG_HS256, [JWTV_HS384] = JWT_ALG_HS384,
    [JWTV_HS512] = JWT_ALG_HS512, [JWTV_RS256] = JWT_ALG_RS256,
    [JWTV_ES256] = JWT_ALG_ES256,
};

#define ALG_COUNT (sizeof(alg_names) / sizeof(alg_names[0]))

const char *jwtv_cause_str(enum jwtv_cause cause)
{
    switch (cause) {
#define JWTV_CAUSE_CASE_(name, text) \
    case JWTV_##name:                \
        return text;
        JWTV_CAUSE_MAP(JWTV_CAUSE_CASE_)
#undef JWTV_CAUSE_CASE_
    }
    return "?";
}

int jwtv_alg_parse(const char *name, enum jwtv_alg *out)
{
    for (size_t i = 0; i < ALG_COUNT; i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            *out = (enum jwtv_alg)i;
            return 0;
        }
    }
    return IMQTT_EINVAL;
}

const char *jwtv_alg_name(enum jwtv_alg alg)
{
    return (size_t)alg < ALG_COUNT ? alg_names[alg] : "?";
}

bool jwtv_alg_is_hmac(enum jwtv_alg alg)
{
    return alg == JWTV_HS256 || alg == JWTV_HS384 || alg == JWTV_HS512;
}

size_t jwtv_hmac_min_key(enum jwtv_alg alg)
{
    /* RFC 7518 3.2: a key at least as long as the hash output. */
    switch (alg) {
    case JWTV_HS256:
        return 32;
    case JWTV_HS384:
        return 48;
    case JWTV_HS512:
        return 64;
    default:
        return 0;
    }
}

static char *dup_opt(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

int jwtv_verifier_new(const jwtv_config *cfg, jwtv_verifier **out,
                      const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    *out = NULL;
    if ((size_t)cfg->alg >= ALG_COUNT) {
        *why = "unsupported algorithm";
        return IMQTT_ECONFIG;
    }
    size_t max_len = cfg->max_len ? cfg->max_len : JWTV_DEFAULT_MAX_LEN;
    if (max_len > JWTV_MAX_LEN_LIMIT) {
        *why = "token size limit above 65536";
        return IMQTT_ECONFIG;
    }
    size_t key_len = cfg->key_len;
    if (!jwtv_alg_is_hmac(cfg->alg) && key_len > 0 &&
        cfg->key[key_len - 1] == '\0')
        key_len--;
    int rc = jwt_key_check(cfg->alg, cfg->key, key_len, why);
    if (rc != 0)
        return rc;

    jwtv_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return IMQTT_ENOMEM;
    bool failed = false;
    v->alg = cfg->alg;
    v->leeway = cfg->leeway;
    v->max_len = max_len;
    v->key_len = key_len;
    v->key = malloc(key_len + 1);
    v->iss = dup_opt(cfg->iss, &failed);
    v->aud = dup_opt(cfg->aud, &failed);
    if (v->key == NULL || failed) {
        jwtv_verifier_free(v);
        return IMQTT_ENOMEM;
    }
    memcpy(v->key, cfg->key, key_len);
    v->key[key_len] = '\0';
    *out = v;
    return 0;
}

void jwtv_verifier_free(jwtv_verifier *v)
{
    if (v == NULL)
        return;
    if (v->key != NULL) {
        /* The secret should not outlive the verifier in freed memory. */
        volatile uint8_t *p = v->key;
        for (size_t i = 0; i < v->key_len; i++)
            p[i] = 0;
        free(v->key);
    }
    free(v->iss);
    free(v->aud);
    free(v);
}

enum jwtv_alg jwtv_verifier_alg(const jwtv_verifier *v)
{
    return v->alg;
}

/* Decode one base64url segment and parse it as a JSON object with unique
 * member names. NULL if any of that fails (or memory ran out: *nomem). */
static cJSON *parse_segment(const char *seg, size_t len, bool *nomem)
{
    uint8_t *buf = malloc(B64URL_DECODED_MAX(len) + 1);
    if (buf == NULL) {
        *nomem = true;
        return NULL;
    }
    long n = b64url_decode(seg, len, buf);
    cJSON *obj = NULL;
    /* An embedded NUL would end cJSON's view of the text early, and what
     * follows it would be signed but never read: refuse it. */
    if (n > 0 && memchr(buf, '\0', (size_t)n) == NULL) {
        buf[n] = '\0';
        obj = cJSON_ParseWithLengthOpts((const char *)buf, (size_t)n + 1, NULL,
                                        1);
    }
    free(buf);
    if (obj != NULL && (!cJSON_IsObject(obj) || !jwt_claims_unique(obj))) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    return obj;
}

static bool b64url_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* The header decides nothing: it may only confirm the pinned algorithm. */
static enum jwtv_cause check_header(const jwtv_verifier *v, const cJSON *hdr)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    if (!cJSON_IsString(alg))
        return JWTV_ALG_MISMATCH;
    if (strcasecmp(alg->valuestring, "none") == 0)
        return JWTV_ALG_NONE;
    if (strcmp(alg->valuestring, alg_names[v->alg]) != 0)
        return JWTV_ALG_MISMATCH;
    /* RFC 7515 4.1.11: extensions we do not implement must be refused. */
    if (cJSON_GetObjectItemCaseSensitive(hdr, "crit") != NULL)
        return JWTV_MALFORMED;
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(hdr, "typ");
    if (typ != NULL &&
        (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0))
        return JWTV_MALFORMED;
    return JWTV_OK;
}

/* Let libjwt check the signature. Called only once the header names the
 * pinned algorithm; afterwards libjwt's own reading of the header must
 * agree, or a header parsed differently by jansson could pick another. */
static enum jwtv_cause check_signature(const jwtv_verifier *v, mqtt_bytes token)
{
    char *text = malloc((size_t)token.len + 1);
    if (text == NULL)
        return JWTV_NOMEM;
    memcpy(text, token.ptr, token.len);
    text[token.len] = '\0';
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, text, v->key, (int)v->key_len);
    free(text);
    if (rc != 0 || jwt == NULL) {
        jwt_free(jwt);
        return rc == ENOMEM ? JWTV_NOMEM : JWTV_SIGNATURE;
    }
    enum jwtv_cause cause =
        jwt_get_alg(jwt) == libjwt_algs[v->alg] ? JWTV_OK : JWTV_ALG_MISMATCH;
    jwt_free(jwt);
    return cause;
}

static enum jwtv_cause verify(const jwtv_verifier *v, mqtt_bytes token,
                              mqtt_str user, int64_t now, cJSON **payload)
{
    if (token.len > v->max_len)
        return JWTV_TOOLONG;
    if (token.ptr == NULL || token.len == 0)
        return JWTV_MALFORMED;
    const char *s = (const char *)token.ptr;
    const char *dot1 = memchr(s, '.', token.len);
    if (dot1 == NULL)
        return JWTV_MALFORMED;
    size_t rest = token.len - (size_t)(dot1 + 1 - s);
    const char *dot2 = memchr(dot1 + 1, '.', rest);
    if (dot2 == NULL)
        return JWTV_MALFORMED;
    const char *sig = dot2 + 1;
    size_t sig_len = token.len - (size_t)(sig - s);

    bool nomem = false;
    cJSON *hdr = parse_segment(s, (size_t)(dot1 - s), &nomem);
    if (hdr == NULL)
        return nomem ? JWTV_NOMEM : JWTV_MALFORMED;
    enum jwtv_cause cause = check_header(v, hdr);
    cJSON_Delete(hdr);
    if (cause != JWTV_OK)
        return cause;

    /* A third '.' (JWE has five parts) or an empty signature is no JWS. */
    if (sig_len == 0 || !b64url_chars(sig, sig_len))
        return JWTV_MALFORMED;
    cJSON *body = parse_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1), &nomem);
    if (body == NULL)
        return nomem ? JWTV_NOMEM : JWTV_MALFORMED;

    cause = check_signature(v, token);
    if (cause == JWTV_OK) {
        struct jwt_claims_rules rules = {
            .now = now,
            .leeway = v->leeway,
            .iss = v->iss,
            .aud = v->aud,
            .user = user,
        };
        cause = jwt_claims_check(body, &rules);
    }
    if (cause != JWTV_OK) {
        cJSON_Delete(body);
        return cause;
    }
    *payload = body;
    return JWTV_OK;
}

int jwtv_verify(const jwtv_verifier *v, mqtt_bytes token, mqtt_str user,
                int64_t now, jwtv_claims **claims, enum jwtv_cause *cause)
{
    if (claims != NULL)
        *claims = NULL;
    cJSON *payload = NULL;
    *cause = verify(v, token, user, now, &payload);
    if (*cause != JWTV_OK)
        return *cause == JWTV_NOMEM ? IMQTT_ENOMEM : IMQTT_EAUTH;
    if (claims == NULL) {
        cJSON_Delete(payload);
        return 0;
    }
    *claims = jwt_claims_wrap(payload);
    if (*claims == NULL) {
        cJSON_Delete(payload);
        *cause = JWTV_NOMEM;
        return IMQTT_ENOMEM;
    }
    return 0;
}
