#include "pid_map.h"

#include <stdlib.h>

#include "errors.h"

/* Slots hold a key (0: empty) and a value; cap is 2^bits. */
struct pid_map_table {
    uint32_t cap, count, bits;
    uint16_t *keys; /* into the same allocation, after vals */
    void *vals[];
};

#define PID_MAP_MIN_CAP 16u

static pid_map_table *table_new(uint32_t cap)
{
    pid_map_table *t =
        calloc(1, sizeof(*t) + cap * sizeof(void *) + cap * sizeof(uint16_t));
    if (!t)
        return NULL;
    t->cap = cap;
    while ((1u << t->bits) < cap)
        t->bits++;
    t->keys = (uint16_t *)(t->vals + cap);
    return t;
}

/* Fibonacci hashing: ids in sequence (the common case) are scattered, so
 * a window never forms one long run that every removal would walk. */
static uint32_t slot_of(const pid_map_table *t, uint16_t pid)
{
    return (uint32_t)(pid * 0x9E3779B1u) >> (32 - t->bits);
}

void *pid_map_get(const pid_map *m, uint16_t pid)
{
    const pid_map_table *t = m->t;
    if (!t || pid == 0)
        return NULL;
    for (uint32_t i = slot_of(t, pid);; i = (i + 1) & (t->cap - 1)) {
        if (t->keys[i] == pid)
            return t->vals[i];
        if (t->keys[i] == 0)
            return NULL;
    }
}

static void insert(pid_map_table *t, uint16_t pid, void *value)
{
    uint32_t i = slot_of(t, pid);
    while (t->keys[i] != 0)
        i = (i + 1) & (t->cap - 1);
    t->keys[i] = pid;
    t->vals[i] = value;
    t->count++;
}

int pid_map_put(pid_map *m, uint16_t pid, void *value)
{
    pid_map_table *t = m->t;
    if (!t || (t->count + 1) * 2 > t->cap) {
        uint32_t cap = t ? t->cap * 2 : PID_MAP_MIN_CAP;
        pid_map_table *n = table_new(cap);
        if (!n)
            return IMQTT_ENOMEM;
        for (uint32_t i = 0; t && i < t->cap; i++)
            if (t->keys[i])
                insert(n, t->keys[i], t->vals[i]);
        free(t);
        m->t = t = n;
    }
    insert(t, pid, value);
    return 0;
}

void *pid_map_remove(pid_map *m, uint16_t pid)
{
    pid_map_table *t = m->t;
    if (!t || pid == 0)
        return NULL;
    uint32_t mask = t->cap - 1, i = slot_of(t, pid);
    while (t->keys[i] != pid) {
        if (t->keys[i] == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *value = t->vals[i];
    if (--t->count == 0) {
        free(t);
        m->t = NULL;
        return value;
    }
    /* Backward-shift deletion: pull later members of the run into the hole
     * when their home slot is not between the hole and them. */
    for (uint32_t j = (i + 1) & mask; t->keys[j] != 0; j = (j + 1) & mask) {
        uint32_t home = slot_of(t, t->keys[j]);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->keys[i] = t->keys[j];
            t->vals[i] = t->vals[j];
            i = j;
        }
    }
    t->keys[i] = 0;
    t->vals[i] = NULL;
    return value;
}

uint32_t pid_map_count(const pid_map *m)
{
    return m->t ? m->t->count : 0;
}

uint16_t pid_map_next(const pid_map *m, uint32_t *pos, void **value)
{
    const pid_map_table *t = m->t;
    for (; t && *pos < t->cap; (*pos)++) {
        if (t->keys[*pos]) {
            if (value)
                *value = t->vals[*pos];
            return t->keys[(*pos)++];
        }
    }
    return 0;
}

void pid_map_clear(pid_map *m)
{
    free(m->t);
    m->t = NULL;
}
