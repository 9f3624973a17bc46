#include "hmap.h"

#include "errors.h"
#include "siphash.h"

#include <stdlib.h>
#include <string.h>

/* Smallest non-empty table: a handful of keys should not cost a realloc
 * each, and trie nodes with one or two children stay cheap. */
#define HMAP_MIN_CAP 8u

/* Keys are chosen by clients (client ids, topic levels, user names,
 * addresses), so the hash is keyed: SipHash-1-3 under a random per-process
 * key (siphash.h). An unkeyed hash let 5,000 crafted keys share one probe
 * run and made each lookup walk all of them (BAD_INPUTS row 21). The low
 * 32 bits are as unpredictable as any others. */
uint32_t hmap_hash(mqtt_bytes key)
{
    return (uint32_t)siphash_keyed(key.ptr, key.len);
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
