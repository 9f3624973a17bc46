/* Retained messages by topic name, searchable by topic filter.
 *
 * A tree of topic levels (one node per level, children by name in a hash
 * map), so that a SUBSCRIBE with a wildcard visits only the branches it can
 * match instead of every retained topic. The walk is iterative with an
 * explicit stack owned by the index (no recursion: see BAD_INPUTS row 4).
 *
 * The index stores an opaque value per topic and does not own it: the
 * caller frees values it replaces or removes. Owned by the loop thread.
 */
#ifndef IMQTT_RETAIN_INDEX_H
#define IMQTT_RETAIN_INDEX_H

#include "mqtt_types.h"

typedef struct retain_index retain_index;

retain_index *retain_index_new(void);
/* Frees the index; calls free_value(value) for each remaining value when
 * free_value is not NULL. */
void retain_index_free(retain_index *ri, void (*free_value)(void *value));

/* Set topic's value (not NULL). If one was there, it is returned in *old
 * (else *old is NULL; old may be NULL if the caller does not care). The
 * index copies the topic text. Returns 0, IMQTT_ENOMEM, or IMQTT_EINVAL
 * for an empty topic. */
int retain_index_set(retain_index *ri, mqtt_str topic, void *value, void **old);

/* Remove topic; returns its value or NULL. Empty branches are pruned. */
void *retain_index_remove(retain_index *ri, mqtt_str topic);

/* Value of exactly this topic, or NULL. */
void *retain_index_get(const retain_index *ri, mqtt_str topic);

/* Call cb for every retained topic matching the valid filter `filter`
 * (topic-matching rules of topic.h, including '$' topics not matched by a
 * leading wildcard). `topic` is a view valid during the call only. The
 * callback must not modify the index. Returns 0 or IMQTT_ENOMEM (the walk
 * stack could not grow; nothing is visited past that point). */
int retain_index_match(retain_index *ri, mqtt_str filter,
                       void (*cb)(void *arg, mqtt_str topic, void *value),
                       void *arg);

size_t retain_index_count(const retain_index *ri);

/* Tree nodes currently held (the roots excluded): 0 once every topic is
 * removed. For tests and metrics. */
size_t retain_index_node_count(const retain_index *ri);

#endif
