/* A map from MQTT packet ids (1..65535) to pointers: the in-flight window
 * of a session, looked up on every acknowledgement and probed for every
 * new id. Open addressing with linear probing in one allocation, sized to
 * at least twice the ids it holds, so a lookup, an insert and a removal
 * cost O(1) whatever the window. An empty map holds no memory.
 *
 * Packet ids are not secret but some are chosen by clients (incoming QoS 2
 * ids): a client can at worst make its own session's probes longer, never
 * another's, and never beyond the ids it is allowed in flight.
 */
#ifndef IMQTT_PID_MAP_H
#define IMQTT_PID_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pid_map_table pid_map_table;

typedef struct pid_map {
    pid_map_table *t; /* owned; NULL while empty */
} pid_map;

/* The value stored for pid, or NULL. */
void *pid_map_get(const pid_map *m, uint16_t pid);

/* Whether pid is in the map. */
static inline bool pid_map_has(const pid_map *m, uint16_t pid)
{
    return pid_map_get(m, pid) != NULL;
}

/* Map pid (not 0, not present) to value (not NULL). Returns 0 or
 * IMQTT_ENOMEM (the map is unchanged). */
int pid_map_put(pid_map *m, uint16_t pid, void *value);

/* Remove pid; returns its value, or NULL when it was not there. The
 * memory goes when the map becomes empty. */
void *pid_map_remove(pid_map *m, uint16_t pid);

/* How many ids the map holds. */
uint32_t pid_map_count(const pid_map *m);

/* Iterate: start with *pos = 0; returns the next id (and its value in
 * *value when not NULL), or 0 at the end. The map must not change
 * meanwhile. */
uint16_t pid_map_next(const pid_map *m, uint32_t *pos, void **value);

/* Drop everything (the values are the caller's). */
void pid_map_clear(pid_map *m);

#endif
