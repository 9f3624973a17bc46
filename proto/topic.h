/* Topic names and filters: validation, matching, shared subscriptions.
 * Pure functions over byte views; nothing allocates, nothing recurses, so a
 * topic with 65,000 levels costs time linear in its length and no stack. */
#ifndef IMQTT_TOPIC_H
#define IMQTT_TOPIC_H

#include "mqtt_types.h"

/* Limits that a validator checks; 0 means "no limit beyond the spec's
 * 65,535 bytes". */
typedef struct mqtt_topic_limits {
    uint32_t max_len;
    uint32_t max_levels;
} mqtt_topic_limits;

/* A topic name a PUBLISH (or will) may carry: 1..65535 bytes of valid UTF-8
 * (see utf8.h), no '+' or '#'. Returns 0 or IMQTT_ETOPIC (IMQTT_EUTF8 for
 * bad UTF-8). `lim` may be NULL. */
int mqtt_topic_name_check(mqtt_str t, const mqtt_topic_limits *lim);

/* Only the limits of a topic name that mqtt_topic_name_check already
 * accepted (the decoder checks every PUBLISH topic; the broker adds its
 * configured length and level limits without scanning for UTF-8 and
 * wildcards again). Returns 0 or IMQTT_ETOPIC. */
int mqtt_topic_name_within(mqtt_str t, const mqtt_topic_limits *lim);

/* A topic filter: non-empty valid UTF-8; '+' occupies a whole level; '#'
 * occupies the last level alone. A `$share/{group}/{filter}` filter is
 * checked as a shared subscription (group non-empty, without '+', '#' or
 * '/', and a valid filter after it). Returns 0 or IMQTT_EFILTER
 * (IMQTT_EUTF8). Level limits apply to the filter after any $share
 * prefix. */
int mqtt_topic_filter_check(mqtt_str f, const mqtt_topic_limits *lim);

/* Whether filter f matches topic name t. Neither may be a $share filter
 * (split it first). A filter starting with '+' or '#' does not match a topic
 * starting with '$' [MQTT-4.7.2-1]. Both must already be valid. */
bool mqtt_topic_match(mqtt_str f, mqtt_str t);

/* Whether f contains a wildcard ('+' or '#'). */
bool mqtt_topic_has_wildcard(mqtt_str f);

/* Split `$share/{group}/{filter}`. Returns 1 with *group and *filter set
 * (views into f), 0 if f is not a shared subscription (outputs untouched),
 * IMQTT_EFILTER if it starts with "$share/" but is malformed (a filter
 * after the group that starts with "$share/" again counts as malformed). */
int mqtt_share_parse(mqtt_str f, mqtt_str *group, mqtt_str *filter);

/* Number of levels in a topic or filter ('/' count + 1). */
uint32_t mqtt_topic_levels(mqtt_str t);

#endif
