#include "hmap.h"

#include "errors.h"

#include <stdlib.h>
#include <string.h>

/* Smallest non-empty table: a handful of keys should not cost a realloc
 * each, and trie nodes with one or two children stay cheap. */
#define HMAP_MIN_CAP 8u

/* 64-bit multiply then fold the high half down: the multiplication spreads
 * every input bit upwards, the shift brings the well-mixed high bits back
 * to the low bits that pick the bucket. */
static inline uint64_t hmap_mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

uint32_t hmap_hash(mqtt_bytes key)
{
    const uint8_t *p = key.ptr;
    uint32_t n = key.len;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;

    /* Eight bytes per multiply: topic levels and client ids are short, so
     * most keys take one or two rounds plus the tail. */
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t v = 0;
        memcpy(&v, p, n);
        h = (h ^ v) * 0x94d049bb133111ebull;
        h ^= h >> 29;
    }
    return (uint32_t)hmap_mix(h);
}

void hmap_free(hmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

static inline bool slot_is(const hmap_slot *s, mqtt_bytes key, uint32_t h)
{
    return s->hash == h && s->key_len == key.len &&
           (key.len == 0 || memcmp(s->key, key.ptr, key.len) == 0);
}

/* Index of key's slot, or of the empty slot where it would go. The table
 * is never full (load <= 3/4), so the probe always stops. */
static uint32_t find_slot(const hmap *m, mqtt_bytes key, uint32_t h)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = h & mask;
    while (m->slots[i].value != NULL && !slot_is(&m->slots[i], key, h))
        i = (i + 1) & mask;
    return i;
}

void *hmap_get(const hmap *m, mqtt_bytes key)
{
    if (m->count == 0)
        return NULL;
    return m->slots[find_slot(m, key, hmap_hash(key))].value;
}

static int grow(hmap *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : HMAP_MIN_CAP;
    if (ncap < m->cap || ncap > (uint32_t)1 << 31)
        return IMQTT_ENOMEM;
    hmap_slot *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return IMQTT_ENOMEM;
    uint32_t mask = ncap - 1;
    for (uint32_t i = 0; i < m->cap; i++) {
        const hmap_slot *s = &m->slots[i];
        if (s->value == NULL)
            continue;
        uint32_t j = s->hash & mask;
        while (ns[j].value != NULL)
            j = (j + 1) & mask;
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int hmap_put(hmap *m, mqtt_bytes key, void *value, void **old)
{
    uint32_t h = hmap_hash(key);
    if (m->cap > 0) {
        hmap_slot *s = &m->slots[find_slot(m, key, h)];
        if (s->value != NULL) {
            if (old != NULL)
                *old = s->value;
            s->key = key.ptr;
            s->key_len = key.len;
            s->value = value;
            return 0;
        }
    }
    /* Grow before inserting so that load stays <= 3/4 afterwards. */
    if ((uint64_t)(m->count + 1) * 4 > (uint64_t)m->cap * 3) {
        int rc = grow(m);
        if (rc < 0)
            return rc;
    }
    hmap_slot *s = &m->slots[find_slot(m, key, h)];
    s->key = key.ptr;
    s->key_len = key.len;
    s->hash = h;
    s->value = value;
    m->count++;
    if (old != NULL)
        *old = NULL;
    return 0;
}

void *hmap_remove(hmap *m, mqtt_bytes key)
{
    if (m->count == 0)
        return NULL;
    uint32_t mask = m->cap - 1;
    uint32_t i = find_slot(m, key, hmap_hash(key));
    void *value = m->slots[i].value;
    if (value == NULL)
        return NULL;

    /* Backward shift: pull later entries of the same probe run into the
     * hole unless that would move one before its home bucket, so lookups
     * never need tombstones. */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        hmap_slot *s = &m->slots[j];
        if (s->value == NULL)
            break;
        uint32_t home = s->hash & mask;
        /* s may fill the hole at i only if its home is not in (i, j]
         * (cyclically): otherwise its probe would start after the hole. */
        bool home_after_hole =
            i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (home_after_hole)
            continue;
        m->slots[i] = *s;
        i = j;
    }
    m->slots[i].value = NULL;
    m->slots[i].key = NULL;
    m->slots[i].key_len = 0;
    m->count--;
    /* An emptied map gives its table back: trie nodes come and go with
     * subscriptions, and an empty node should cost no slot array. */
    if (m->count == 0)
        hmap_free(m);
    return value;
}

void *hmap_next(const hmap *m, uint32_t *pos)
{
    while (*pos < m->cap) {
        void *v = m->slots[(*pos)++].value;
        if (v != NULL)
            return v;
    }
    return NULL;
}
