/* Claims of a verified token: checks and accessors. The handle keeps
 * copies of the claims read after CONNECT (not the cJSON tree); accessors
 * return views into them. */
#include "jwt_claims.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "topic.h"

/* Filters in an `acl` claim follow the ACL's own limit (acl.c). */
#define CLAIM_FILTER_MAX 1024

bool jwt_claims_unique(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a != NULL; a = a->next)
        for (const cJSON *b = a->next; b != NULL; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return false;
    return true;
}

/* NumericDate (RFC 7519 2): we take whole seconds only, within the range
 * a double holds exactly. */
static bool numeric_date(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return false;
    *out = (int64_t)d;
    return true;
}

static mqtt_str str_view(const cJSON *s)
{
    return mqtt_str_from(s->valuestring, strlen(s->valuestring));
}

static bool aud_matches(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud))
        return false;
    const cJSON *item;
    cJSON_ArrayForEach(item, aud)
    {
        if (cJSON_IsString(item) && strcmp(item->valuestring, want) == 0)
            return true;
    }
    return false;
}

static bool groups_ok(const cJSON *groups)
{
    if (!cJSON_IsArray(groups))
        return false;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        /* Group names end up in topics (g/talk/{group}): the identity
         * alphabet keeps '+', '#' and '/' out. */
        if (!cJSON_IsString(g) || !im_id_part_valid(str_view(g)))
            return false;
    }
    return true;
}

static bool filters_ok(const cJSON *list)
{
    if (!cJSON_IsArray(list))
        return false;
    const cJSON *f;
    cJSON_ArrayForEach(f, list)
    {
        if (!cJSON_IsString(f))
            return false;
        mqtt_str s = str_view(f);
        mqtt_str group, inner;
        if (s.len > CLAIM_FILTER_MAX || mqtt_topic_filter_check(s, NULL) != 0 ||
            mqtt_share_parse(s, &group, &inner) != 0)
            return false;
    }
    return true;
}

static bool acl_ok(const cJSON *acl)
{
    if (!cJSON_IsObject(acl) || !jwt_claims_unique(acl))
        return false;
    const cJSON *m;
    cJSON_ArrayForEach(m, acl)
    {
        /* An unknown member is most likely a typo of the issuer's; refusing
         * the token shows it at once. */
        if (strcmp(m->string, "pub") != 0 && strcmp(m->string, "sub") != 0)
            return false;
        if (!filters_ok(m))
            return false;
    }
    return true;
}

enum jwtv_cause jwt_claims_check(const cJSON *payload,
                                 const struct jwt_claims_rules *r)
{
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
    int64_t exp_v, nbf_v;
    if (exp == NULL)
        return JWTV_NO_EXP;
    if (!numeric_date(exp, &exp_v))
        return JWTV_BAD_CLAIM;
    /* RFC 7519 4.1.4: valid only before exp. */
    if (r->now >= exp_v + (int64_t)r->leeway)
        return JWTV_EXPIRED;
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(payload, "nbf");
    if (nbf != NULL) {
        if (!numeric_date(nbf, &nbf_v))
            return JWTV_BAD_CLAIM;
        if (r->now + (int64_t)r->leeway < nbf_v)
            return JWTV_NOT_YET_VALID;
    }
    if (r->iss != NULL) {
        const cJSON *iss = cJSON_GetObjectItemCaseSensitive(payload, "iss");
        if (!cJSON_IsString(iss) || strcmp(iss->valuestring, r->iss) != 0)
            return JWTV_ISS;
    }
    if (r->aud != NULL &&
        !aud_matches(cJSON_GetObjectItemCaseSensitive(payload, "aud"), r->aud))
        return JWTV_AUD;
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(payload, "sub");
    if (!cJSON_IsString(sub) || r->user.len == 0)
        return JWTV_SUB;
    mqtt_str s = str_view(sub);
    if (s.len != r->user.len || memcmp(s.ptr, r->user.ptr, s.len) != 0)
        return JWTV_SUB;
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(payload, "groups");
    if (groups != NULL && !groups_ok(groups))
        return JWTV_BAD_CLAIM;
    const cJSON *acl = cJSON_GetObjectItemCaseSensitive(payload, "acl");
    if (acl != NULL && !acl_ok(acl))
        return JWTV_BAD_CLAIM;
    return JWTV_OK;
}

/* What an idle connection keeps of its token (it lives as long as the
 * session): copies of the claims the broker reads after CONNECT, in one
 * allocation: this struct, then item[n[0] + n[1] + n[2]] (views), then the
 * bytes of sub, jti and the items. The cJSON tree (200-odd bytes for a
 * token without groups or acl) is freed once they are copied. A token is
 * at most JWTV_MAX_LEN_LIMIT (65,536) bytes, so every count and length
 * fits 16 bits; the header is 32 bytes, and a token without lists costs a
 * 48-byte chunk. */
struct jwtv_claims {
    int64_t exp;
    int64_t iat;
    uint16_t n[3]; /* groups, acl pub, acl sub */
    uint16_t sub_len, jti_len;
    bool has_iat;
    bool envelope;
    mqtt_str item[];
};

_Static_assert(JWTV_MAX_LEN_LIMIT <= 65536, "claims lengths are 16-bit");

/* Where the bytes after the views start: sub, then jti. */
static const char *claims_text(const jwtv_claims *c)
{
    return (const char *)&c->item[c->n[0] + c->n[1] + c->n[2]];
}

static const cJSON *claims_list(const cJSON *payload, int which)
{
    if (which == 0)
        return cJSON_GetObjectItemCaseSensitive(payload, "groups");
    const cJSON *acl = cJSON_GetObjectItemCaseSensitive(payload, "acl");
    if (acl == NULL)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(acl, which == 1 ? "pub" : "sub");
}

static mqtt_str copy_str(char **at, mqtt_str s)
{
    mqtt_str v = {(const uint8_t *)*at, s.len};
    if (s.len)
        memcpy(*at, s.ptr, s.len);
    *at += s.len;
    return v;
}

jwtv_claims *jwt_claims_wrap(cJSON *payload)
{
    /* jwt_claims_check has vouched for every shape read here: the lists
     * hold strings only, sub is a string. */
    const cJSON *lists[3];
    size_t nitems = 0, bytes = 0;
    for (int k = 0; k < 3; k++) {
        lists[k] = claims_list(payload, k);
        const cJSON *it;
        cJSON_ArrayForEach(it, lists[k])
        {
            nitems++;
            bytes += strlen(it->valuestring);
        }
    }
    mqtt_str sub = str_view(cJSON_GetObjectItemCaseSensitive(payload, "sub"));
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(payload, "jti");
    mqtt_str jti = cJSON_IsString(j) ? str_view(j) : (mqtt_str){NULL, 0};
    bytes += sub.len + jti.len;
    jwtv_claims *c = calloc(1, sizeof(*c) + nitems * sizeof(mqtt_str) + bytes);
    if (c == NULL)
        return NULL;
    char *at = (char *)&c->item[nitems];
    numeric_date(cJSON_GetObjectItemCaseSensitive(payload, "exp"), &c->exp);
    c->has_iat =
        numeric_date(cJSON_GetObjectItemCaseSensitive(payload, "iat"), &c->iat);
    c->envelope =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "envelope"));
    c->sub_len = (uint16_t)copy_str(&at, sub).len;
    c->jti_len = (uint16_t)copy_str(&at, jti).len;
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, lists[k])
        {
            c->item[i++] = copy_str(&at, str_view(it));
            c->n[k]++;
        }
    }
    cJSON_Delete(payload);
    return c;
}

void jwtv_claims_free(jwtv_claims *c)
{
    free(c);
}

int64_t jwtv_claims_exp(const jwtv_claims *c)
{
    return c->exp;
}

mqtt_str jwtv_claims_sub(const jwtv_claims *c)
{
    return mqtt_str_from(claims_text(c), c->sub_len);
}

bool jwtv_claims_iat(const jwtv_claims *c, int64_t *iat)
{
    if (c->has_iat)
        *iat = c->iat;
    return c->has_iat;
}

mqtt_str jwtv_claims_jti(const jwtv_claims *c)
{
    if (c->jti_len == 0)
        return (mqtt_str){NULL, 0};
    return mqtt_str_from(claims_text(c) + c->sub_len, c->jti_len);
}

/* The i-th string of list k; empty when out of range. */
static mqtt_str list_item(const jwtv_claims *c, int k, size_t i)
{
    if (i >= c->n[k])
        return (mqtt_str){NULL, 0};
    size_t first = 0;
    for (int l = 0; l < k; l++)
        first += c->n[l];
    return c->item[first + i];
}

size_t jwtv_claims_group_count(const jwtv_claims *c)
{
    return c->n[0];
}

mqtt_str jwtv_claims_group(const jwtv_claims *c, size_t i)
{
    return list_item(c, 0, i);
}

bool jwtv_claims_envelope(const jwtv_claims *c)
{
    return c->envelope;
}

bool jwtv_claims_in_group(const jwtv_claims *c, mqtt_str group)
{
    for (uint32_t i = 0; i < c->n[0]; i++) {
        mqtt_str s = c->item[i];
        if (s.len == group.len && memcmp(s.ptr, group.ptr, s.len) == 0)
            return true;
    }
    return false;
}

size_t jwtv_claims_acl_count(const jwtv_claims *c, enum jwtv_acl_kind kind)
{
    return kind <= JWTV_ACL_SUB ? c->n[1 + kind] : 0;
}

mqtt_str jwtv_claims_acl(const jwtv_claims *c, enum jwtv_acl_kind kind,
                         size_t i)
{
    return kind <= JWTV_ACL_SUB ? list_item(c, 1 + kind, i) : (mqtt_str){0};
}
