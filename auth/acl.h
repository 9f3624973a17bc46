/* Access control: ordered allow/deny rules on topic filters.
 *
 * Rules are evaluated in order; the first rule whose action set contains
 * the requested action and whose filter covers the topic decides. When no
 * rule matches, the default decides. An ACL is immutable once built, so a
 * reload builds a new one and swaps the pointer.
 *
 * Placeholders in a rule filter are replaced per identity before matching:
 * %c the client id, %u the user name, %d the device (IM identities). An
 * identity part that is empty or contains '+', '#' or '/' (or is absent) can
 * never satisfy a rule that uses it: such a rule simply does not match
 * (BAD_INPUTS row 11), so identities cannot smuggle wildcards or levels into a
 * rule.
 */
#ifndef IMQTT_ACL_H
#define IMQTT_ACL_H

#include <stdbool.h>

#include "mqtt_types.h"

enum acl_action {
    ACL_PUBLISH = 1,
    ACL_SUBSCRIBE = 2,
};

typedef struct acl acl;

typedef struct acl_identity {
    mqtt_str client_id;
    mqtt_str username; /* len 0: none (for IM sessions: the user) */
    mqtt_str device;   /* len 0: none (IM sessions: the device) */
} acl_identity;

enum acl_decision {
    ACL_NO_MATCH = -1, /* no rule matched: the caller's next step decides */
    ACL_DENY = 0,
    ACL_ALLOW = 1,
};

acl *acl_new(bool default_allow);
void acl_free(acl *a);

/* Append a rule. `actions` is a mask of enum acl_action. The filter is a
 * topic filter that may contain placeholders; it is copied. Returns 0,
 * IMQTT_EFILTER (invalid filter once placeholders are taken as plain
 * level text, longer than 1024 bytes, or a $share filter, which a check
 * never sees), IMQTT_EINVAL (no action) or IMQTT_ENOMEM. */
int acl_add_rule(acl *a, bool allow, unsigned actions, mqtt_str filter);

/* Whether `who` may do `action` on `topic`.
 * ACL_PUBLISH: topic is a topic name; the rule filter must match it.
 * ACL_SUBSCRIBE: topic is the requested topic filter (without any $share
 * prefix); the rule filter must cover it, i.e. every topic name the
 * requested filter can match is matched by the rule filter ("a/#" covers
 * "a/+/c"; "a/+" does not cover "a/#").
 *
 * Covering is checked per rule, so an allowed wildcard subscription may
 * still match topics that an earlier deny rule names ("#" after a rule
 * denying "secret/#"). Delivery must therefore check each topic name with
 * ACL_SUBSCRIBE as well: a topic name is a filter without wildcards, so the
 * same call answers "may this identity read this topic".
 *
 * If expanding placeholders for an unusually long identity (over ~4 KiB in
 * total) would not fit the check's stack buffer, the check refuses (returns
 * false) rather than skip the rule, which for a deny rule would widen. */
bool acl_check(const acl *a, const acl_identity *who, enum acl_action action,
               mqtt_str topic);

/* Like acl_check, without the default: the first matching rule's verdict,
 * or ACL_NO_MATCH. The IM layer puts token claims and its own defaults
 * between the rules and the default. */
enum acl_decision acl_decide(const acl *a, const acl_identity *who,
                             enum acl_action action, mqtt_str topic);

bool acl_default_allows(const acl *a);

/* Whether one pattern (a topic filter with optional %c %u %d, e.g. from a
 * token's acl claim) allows `action` on `topic`, with acl_check's rules for
 * placeholders and for publish (match) versus subscribe (cover). */
bool acl_pattern_allows(mqtt_str pattern, const acl_identity *who,
                        enum acl_action action, mqtt_str topic);

size_t acl_rule_count(const acl *a);

#endif
