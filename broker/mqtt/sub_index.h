/* The subscription index: which sessions subscribe to which filters.
 *
 * Three structures behind one API (STYLE.md, "Topic matching"):
 *  - filters without wildcards in a hash map keyed by the filter text, so
 *    the common IM case (p2p/talk/{user}) is one lookup;
 *  - wildcard filters in a trie of levels: '+' and '#' children in fixed
 *    slots, literal children looked up by name;
 *  - filters whose first level starts with '$' under their own root, so a
 *    leading wildcard never reaches $SYS [MQTT-4.7.2-1].
 * Shared subscriptions ($share/{group}/{filter}) are stored per (group,
 * filter) with their members; a match reports the group once and the
 * caller picks a member.
 *
 * Matching allocates nothing and does not recurse: levels are sliced on the
 * fly and the trie walk keeps its pending nodes in a small fixed array,
 * falling back to a heap array owned by the index only for topics deeper
 * than that (which config limits anyway).
 *
 * Owned by the loop thread; not thread-safe.
 */
#ifndef IMQTT_SUB_INDEX_H
#define IMQTT_SUB_INDEX_H

#include "packet.h"

typedef struct sub_index sub_index;

/* One subscription as the router sees it. `owner` is the subscribing
 * session, borrowed: the session removes its subscriptions before it is
 * freed. */
typedef struct sub_entry {
    void *owner;
    mqtt_sub_opts opts;
    uint32_t sub_id; /* MQTT 5 subscription identifier, 0 if none */
} sub_entry;

/* A shared subscription group for one filter. members[0..count) are the
 * current members in the order they joined; `next` is the round-robin
 * cursor, kept here for the router to advance (the index only keeps it in
 * range when members leave). */
typedef struct sub_group {
    mqtt_str name;   /* owned by the index */
    mqtt_str filter; /* owned by the index, without the $share prefix */
    sub_entry *members;
    uint32_t count;
    uint32_t next;
} sub_group;

typedef struct sub_visitor {
    /* Called for every non-shared subscription whose filter matches. */
    void (*on_entry)(void *arg, const sub_entry *e);
    /* Called once for every shared group whose filter matches. */
    void (*on_group)(void *arg, sub_group *g);
    void *arg;
} sub_visitor;

sub_index *sub_index_new(void);
void sub_index_free(sub_index *idx);

/* Add owner's subscription to `filter` (a valid filter, possibly
 * $share/...), or update its options and id if owner already has one to
 * that same filter. The index copies the filter text.
 * Returns 1 added, 0 updated, IMQTT_ENOMEM, or IMQTT_EFILTER for an empty
 * or malformed $share filter (nothing is added). */
int sub_index_add(sub_index *idx, mqtt_str filter, void *owner,
                  const mqtt_sub_opts *opts, uint32_t sub_id);

/* Remove owner's subscription to `filter`. Returns 1 removed, 0 none. */
int sub_index_remove(sub_index *idx, mqtt_str filter, void *owner);

/* Visit every subscription matching topic name `topic` (valid, no
 * wildcards; an empty one matches nothing). The visitor must not add or
 * remove subscriptions. Either callback may be NULL. */
void sub_index_match(sub_index *idx, mqtt_str topic, const sub_visitor *v);

/* Number of subscriptions (shared members count one each). */
size_t sub_index_count(const sub_index *idx);

/* Trie nodes plus exact-map filters currently held (the roots excluded):
 * 0 once every subscription is removed. For tests and metrics. */
size_t sub_index_node_count(const sub_index *idx);

#endif
