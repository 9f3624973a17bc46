/* Verified-credential cache (see credcache.h). */
#include "credcache.h"

#include <mbedtls/md.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define WAYS    4
#define TAG_LEN 32

typedef struct cc_slot {
    uint8_t tag[TAG_LEN];
    uint64_t expires_ms; /* 0: empty */
} cc_slot;

struct credcache {
    uint8_t secret[32];
    uint32_t nsets; /* a power of two */
    uint32_t ttl_ms;
    uint64_t hits, misses;
    cc_slot slots[]; /* nsets * WAYS */
};

credcache *credcache_new(uint32_t capacity, uint32_t ttl_ms)
{
    uint32_t sets = 1;
    while ((uint64_t)sets * WAYS < capacity && sets < (1u << 24))
        sets *= 2;
    credcache *cc =
        calloc(1, sizeof(*cc) + (size_t)sets * WAYS * sizeof(cc_slot));
    if (!cc)
        return NULL;
    if (!auth_random_bytes(cc->secret, sizeof(cc->secret))) {
        free(cc);
        return NULL;
    }
    cc->nsets = sets;
    cc->ttl_ms = ttl_ms ? ttl_ms : 1;
    return cc;
}

void credcache_free(credcache *cc)
{
    if (!cc)
        return;
    volatile uint8_t *p = (volatile uint8_t *)cc;
    for (size_t i = 0; i < sizeof(*cc); i++)
        p[i] = 0; /* the secret */
    free(cc);
}

static void put_u32(mbedtls_md_context_t *md, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    mbedtls_md_hmac_update(md, b, 4);
}

/* The tag of (user, password) for entry e. Every variable-length field is
 * preceded by its length, so no two inputs share an encoding. false when
 * the HMAC could not be computed (then nothing is cached or hit). */
static bool make_tag(const credcache *cc, mqtt_str user, mqtt_bytes password,
                     const pw_entry_view *e, uint8_t tag[TAG_LEN])
{
    const mbedtls_md_info_t *info =
        mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (!info)
        return false;
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    bool ok = mbedtls_md_setup(&md, info, 1) == 0 &&
              mbedtls_md_hmac_starts(&md, cc->secret, sizeof(cc->secret)) == 0;
    if (ok) {
        static const uint8_t domain[] = "imqtt credential cache v1";
        mbedtls_md_hmac_update(&md, domain, sizeof(domain));
        put_u32(&md, user.len);
        mbedtls_md_hmac_update(&md, user.ptr, user.len);
        put_u32(&md, password.len);
        if (password.len)
            mbedtls_md_hmac_update(&md, password.ptr, password.len);
        put_u32(&md, e->iterations);
        put_u32(&md, e->salt_len);
        mbedtls_md_hmac_update(&md, e->salt, e->salt_len);
        mbedtls_md_hmac_update(&md, e->hash, PW_HASH_LEN);
        ok = mbedtls_md_hmac_finish(&md, tag) == 0;
    }
    mbedtls_md_free(&md);
    return ok;
}

static cc_slot *set_of(credcache *cc, const uint8_t tag[TAG_LEN])
{
    uint32_t i = (uint32_t)tag[0] | (uint32_t)tag[1] << 8 |
                 (uint32_t)tag[2] << 16 | (uint32_t)tag[3] << 24;
    return &cc->slots[(size_t)(i & (cc->nsets - 1)) * WAYS];
}

static bool tag_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (int i = 0; i < TAG_LEN; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

bool credcache_check(credcache *cc, const pwdb *db, mqtt_str user,
                     mqtt_bytes password, uint64_t now_ms)
{
    pw_entry_view e;
    uint8_t tag[TAG_LEN];
    if (pwdb_entry(db, user, &e) != 0 ||
        !make_tag(cc, user, password, &e, tag)) {
        cc->misses++;
        return false;
    }
    cc_slot *set = set_of(cc, tag);
    for (int w = 0; w < WAYS; w++) {
        cc_slot *s = &set[w];
        if (s->expires_ms == 0 || !tag_equal(s->tag, tag))
            continue;
        if (s->expires_ms <= now_ms) {
            memset(s, 0, sizeof(*s));
            break;
        }
        cc->hits++;
        return true;
    }
    cc->misses++;
    return false;
}

void credcache_remember(credcache *cc, const pwdb *db, mqtt_str user,
                        mqtt_bytes password, uint64_t now_ms)
{
    pw_entry_view e;
    uint8_t tag[TAG_LEN];
    if (pwdb_entry(db, user, &e) != 0 || !make_tag(cc, user, password, &e, tag))
        return;
    cc_slot *set = set_of(cc, tag);
    cc_slot *victim = &set[0];
    for (int w = 0; w < WAYS; w++) {
        cc_slot *s = &set[w];
        if (s->expires_ms != 0 && tag_equal(s->tag, tag)) {
            victim = s; /* verified again: a new TTL */
            break;
        }
        if (s->expires_ms <= now_ms) {
            victim = s; /* empty or expired */
            continue;
        }
        if (victim->expires_ms > now_ms && s->expires_ms < victim->expires_ms)
            victim = s;
    }
    memcpy(victim->tag, tag, TAG_LEN);
    victim->expires_ms = now_ms + cc->ttl_ms;
}

void credcache_clear(credcache *cc)
{
    memset(cc->slots, 0, (size_t)cc->nsets * WAYS * sizeof(cc_slot));
}

uint32_t credcache_capacity(const credcache *cc)
{
    return cc->nsets * WAYS;
}

uint64_t credcache_hits(const credcache *cc)
{
    return cc->hits;
}

uint64_t credcache_misses(const credcache *cc)
{
    return cc->misses;
}
