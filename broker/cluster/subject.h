/* MQTT topics and client ids as NATS subjects and KV keys, reversibly.
 *
 * A NATS subject is tokens joined by '.'; a token may not be empty, may
 * not hold whitespace, and the tokens '*' and '>' are wildcards. A KV key
 * is limited further to [-/_=.A-Za-z0-9]. An MQTT topic level may hold
 * any UTF-8 character, be empty, or be '+' / '#' in a filter. So each
 * topic level becomes exactly one token in which only [A-Za-z0-9_-] stand
 * for themselves; every other byte (including '.', '*', '>', spaces,
 * control and non-ASCII bytes, and the escape character '=' itself) is
 * written as '=' followed by two upper-case hex digits. An empty level is
 * the token "=" alone (an escape always has two digits after it, so this
 * cannot be confused). No topic can therefore produce a wildcard token, an
 * empty token or an extra '.', and one client's topic can never land on
 * another's subscription (BAD_INPUTS row 25).
 *
 * Layout: "<prefix>.m.<levels>" for ordinary topics and
 * "<prefix>.d.<levels>" for topics whose first level starts with '$'.
 * Filters starting with '+' or '#' map under ".m." only, so NATS matching
 * keeps the MQTT rule that they do not match '$' topics [MQTT-4.7.2-1].
 * A filter "x/#" also matches its parent "x" in MQTT but "x.>" does not in
 * NATS; the filter mapping therefore reports a second subject (the parent)
 * that a subscriber must also subscribe to.
 *
 * Every function is pure (no allocation, no I/O): outputs are written into
 * the caller's buffer and NUL-terminated, because libnats takes C strings.
 * Lengths exclude the NUL. An encoding is at most 3 bytes per input byte
 * plus the prefix and 3 per level: CLUSTER_SUBJECT_CAP() sizes a buffer.
 * NATS itself limits a subject by its max_control_line (4 KB by default),
 * which the caller must respect by limiting topic lengths. */
#ifndef IMQTT_CLUSTER_SUBJECT_H
#define IMQTT_CLUSTER_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "mqtt_types.h"

/* The escape character: valid in subjects and in KV keys. */
#define CLUSTER_ESC '='

/* The longest prefix accepted (bytes, without the NUL). */
#define CLUSTER_PREFIX_MAX 64

/* A buffer size that always fits the subject of a topic or filter of
 * `topic_len` bytes under a prefix of `prefix_len` bytes (with the NUL). */
#define CLUSTER_SUBJECT_CAP(prefix_len, topic_len) \
    ((size_t)(prefix_len) + 4 + 4 * (size_t)(topic_len) + 4)

/* Whether `prefix` (NUL-terminated) is a usable cluster prefix: 1 to
 * CLUSTER_PREFIX_MAX bytes, tokens of [A-Za-z0-9_-] joined by single
 * dots (e.g. "imqtt" or "prod.imqtt"). Returns 0 or IMQTT_ECONFIG. */
int cluster_prefix_check(const char *prefix);

/* The subject of topic name `t` (already valid: mqtt_topic_name_check)
 * under `prefix` (already checked by cluster_prefix_check). Writes into
 * out[0..cap) and returns the length, IMQTT_ENOSPACE if cap is too small,
 * or IMQTT_ETOPIC if t is empty or holds a wildcard character as a level. */
int cluster_topic_to_subject(const char *prefix, mqtt_str t, char *out,
                             size_t cap);

/* The inverse: the topic of subject s[0..len) under `prefix`. Accepts only
 * what cluster_topic_to_subject produces (canonical escapes, upper-case
 * hex, no wildcards, no "+" or "#" level, not the empty topic, the right
 * namespace for a leading '$'), so two different subjects never decode to
 * the same topic. It does not check UTF-8: a subject from NATS comes from
 * any NATS client, so the caller runs mqtt_topic_name_check on the result
 * before using it as a topic. Writes the topic
 * bytes into out[0..cap) (not NUL-terminated: a topic is a byte view) and
 * returns its length, IMQTT_ENOSPACE, or IMQTT_ETOPIC. */
int cluster_subject_to_topic(const char *prefix, const char *s, size_t len,
                             uint8_t *out, size_t cap);

/* The subject pattern of topic filter `f` (already valid, not a $share
 * filter: split it with mqtt_share_parse first). '+' becomes '*', a final
 * '#' becomes '>'. Returns the length like cluster_topic_to_subject, or
 * IMQTT_EFILTER for a '#' that is not last.
 *
 * *parent_len: when f ends in "/#", the parent subject (which MQTT also
 * matches) is out[0..*parent_len) — the pattern without its ".>" — and
 * the caller subscribes to both; otherwise 0. */
int cluster_filter_to_subject(const char *prefix, mqtt_str f, char *out,
                              size_t cap, size_t *parent_len);

/* One token for arbitrary bytes (a queue-group name, a node name, a
 * client id): the same escaping as a topic level. The result is also a
 * valid KV key (KV keys cannot hold '@' and many other bytes a client id
 * may). Returns the length, or IMQTT_ENOSPACE. */
int cluster_token_encode(const uint8_t *p, size_t n, char *out, size_t cap);

/* The inverse of cluster_token_encode for tok[0..len), canonical forms
 * only. Returns the byte count written to out, IMQTT_ENOSPACE, or
 * IMQTT_EINVAL for anything cluster_token_encode cannot produce. */
int cluster_token_decode(const char *tok, size_t len, uint8_t *out, size_t cap);

/* The KV key of a session's client id: its token (see above). Kept as its
 * own name so the key layout can change in one place. */
int cluster_client_key(mqtt_str client_id, char *out, size_t cap);

/* NATS subject matching, as nats-server does it: `pattern` tokens '*'
 * match one token, a final '>' one or more; everything else compares
 * byte for byte. Both NUL-terminated. Used by tests and by a node that
 * must decide which of its NATS subscriptions a message arrived for. */
bool cluster_subject_match(const char *pattern, const char *subject);

#endif
