/* Failed-authentication limiter (see authlimit.h). */
#include "authlimit.h"

#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define WAYS 8

typedef struct al_slot {
    double tokens;
    uint64_t last_ms;
    uint8_t key[AUTHLIMIT_KEY_MAX];
    uint8_t len;
    bool used;
} al_slot;

struct authlimit {
    uint32_t nsets; /* a power of two */
    uint32_t burst, per_minute;
    uint64_t refused;
    al_slot slots[]; /* nsets * WAYS */
};

authlimit *authlimit_new(uint32_t capacity, uint32_t burst, uint32_t per_minute)
{
    uint32_t sets = 1;
    while ((uint64_t)sets * WAYS < capacity && sets < (1u << 24))
        sets *= 2;
    authlimit *al =
        calloc(1, sizeof(*al) + (size_t)sets * WAYS * sizeof(al_slot));
    if (!al)
        return NULL;
    al->nsets = sets;
    authlimit_set(al, burst, per_minute);
    return al;
}

void authlimit_free(authlimit *al)
{
    free(al);
}

void authlimit_set(authlimit *al, uint32_t burst, uint32_t per_minute)
{
    al->burst = burst ? burst : 1;
    al->per_minute = per_minute ? per_minute : 1;
    for (size_t i = 0; i < (size_t)al->nsets * WAYS; i++)
        if (al->slots[i].tokens > al->burst)
            al->slots[i].tokens = al->burst;
}

/* Tokens of s at now, refilled since its last use. */
static double refill(const authlimit *al, const al_slot *s, uint64_t now_ms)
{
    double t = s->tokens;
    if (now_ms > s->last_ms)
        t += (double)(now_ms - s->last_ms) * al->per_minute / 60000.0;
    return t > al->burst ? al->burst : t;
}

/* key's bucket, made (full) if absent, refilled to now. */
static al_slot *bucket(authlimit *al, const uint8_t *key, size_t len,
                       uint64_t now_ms, bool create)
{
    if (len > AUTHLIMIT_KEY_MAX)
        len = AUTHLIMIT_KEY_MAX;
    uint64_t h = siphash_keyed(key, len);
    al_slot *set = &al->slots[(size_t)(h & (al->nsets - 1)) * WAYS];
    al_slot *victim = NULL;
    double victim_tokens = -1;
    for (int w = 0; w < WAYS; w++) {
        al_slot *s = &set[w];
        if (s->used && s->len == len && memcmp(s->key, key, len) == 0) {
            s->tokens = refill(al, s, now_ms);
            s->last_ms = now_ms;
            return s;
        }
        double t = s->used ? refill(al, s, now_ms) : al->burst + 1.0;
        if (t > victim_tokens) {
            victim = s;
            victim_tokens = t;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->key, key, len);
    victim->len = (uint8_t)len;
    victim->used = true;
    victim->tokens = al->burst;
    victim->last_ms = now_ms;
    return victim;
}

bool authlimit_take(authlimit *al, const uint8_t *key, size_t len,
                    uint64_t now_ms)
{
    al_slot *s = bucket(al, key, len, now_ms, true);
    if (s->tokens < 1.0) {
        al->refused++;
        return false;
    }
    s->tokens -= 1.0;
    return true;
}

void authlimit_refund(authlimit *al, const uint8_t *key, size_t len,
                      uint64_t now_ms)
{
    al_slot *s = bucket(al, key, len, now_ms, false);
    if (!s)
        return; /* dropped meanwhile: it starts full anyway */
    s->tokens += 1.0;
    if (s->tokens > al->burst)
        s->tokens = al->burst;
}

uint64_t authlimit_refused(const authlimit *al)
{
    return al->refused;
}
