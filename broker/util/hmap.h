/* A small open-addressing hash map from byte-string keys to pointers.
 *
 * Keys are views that the CALLER keeps alive as long as the entry exists
 * (usually the key lives inside the value, e.g. a session's client id), so
 * the map allocates only its slot array. Linear probing, tombstone-free
 * deletion (backward shift), power-of-two capacity, grows at 3/4 load.
 * Not thread-safe.
 */
#ifndef IMQTT_HMAP_H
#define IMQTT_HMAP_H

#include "mqtt_types.h"

/* 24 bytes, not the 32 an mqtt_bytes key would take with its padding:
 * a slot and a half per session and per subscribed topic. */
typedef struct hmap_slot {
    const uint8_t *key;
    uint32_t key_len;
    uint32_t hash;
    void *value; /* NULL marks an empty slot: values are never NULL */
} hmap_slot;

typedef struct hmap {
    hmap_slot *slots;
    uint32_t cap; /* 0 or a power of two */
    uint32_t count;
} hmap;

/* A zeroed hmap is a valid empty map. */
void hmap_free(hmap *m);

/* Value for key, or NULL. */
void *hmap_get(const hmap *m, mqtt_bytes key);

/* Insert or replace. *old gets the replaced value (NULL if new; old may be
 * NULL when the caller knows the key is new). value must not be NULL; key
 * must stay valid while the entry exists (on replace, the new key view is
 * kept). Returns 0 or IMQTT_ENOMEM. */
int hmap_put(hmap *m, mqtt_bytes key, void *value, void **old);

/* Remove key; returns its value or NULL. */
void *hmap_remove(hmap *m, mqtt_bytes key);

/* Iterate: *pos starts at 0; returns the next value or NULL at the end.
 * The map must not be modified during the iteration (collect, then
 * remove). */
void *hmap_next(const hmap *m, uint32_t *pos);

/* SipHash-1-3 of key under the process's random key (siphash.h): the
 * same key hashes alike within one process, differently across runs. */
uint32_t hmap_hash(mqtt_bytes key);

#endif
