/* Ordered ACL rules. The check path never allocates: rules without
 * placeholders are matched in place, rules with placeholders are expanded
 * into a stack buffer first. */
#include "acl.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "topic.h"

/* Rule text is bounded so that an expanded rule fits the stack buffer for
 * any identity a real deployment uses (IM ids are at most 129 bytes). */
#define ACL_RULE_MAX   1024
#define ACL_EXPAND_MAX 4096

struct acl_rule {
    uint8_t *filter; /* owned copy, placeholders unexpanded */
    uint32_t len;
    unsigned actions;
    bool allow;
    bool placeholders;
};

struct acl {
    struct acl_rule *rules;
    size_t count;
    size_t cap;
    bool default_allow;
};

acl *acl_new(bool default_allow)
{
    acl *a = calloc(1, sizeof(*a));
    if (a != NULL)
        a->default_allow = default_allow;
    return a;
}

void acl_free(acl *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->count; i++)
        free(a->rules[i].filter);
    free(a->rules);
    free(a);
}

size_t acl_rule_count(const acl *a)
{
    return a->count;
}

static bool is_placeholder(const uint8_t *p, size_t left)
{
    return left >= 2 && p[0] == '%' &&
           (p[1] == 'c' || p[1] == 'u' || p[1] == 'd');
}

static bool has_placeholder(mqtt_str f)
{
    for (uint32_t i = 0; i < f.len; i++)
        if (is_placeholder(f.ptr + i, f.len - i))
            return true;
    return false;
}

int acl_add_rule(acl *a, bool allow, unsigned actions, mqtt_str filter)
{
    if ((actions & (ACL_PUBLISH | ACL_SUBSCRIBE)) == 0 ||
        (actions & ~(unsigned)(ACL_PUBLISH | ACL_SUBSCRIBE)) != 0)
        return IMQTT_EINVAL;
    if (filter.len > ACL_RULE_MAX || mqtt_topic_filter_check(filter, NULL) != 0)
        return IMQTT_EFILTER;
    /* acl_check receives filters with the $share prefix already removed, so
     * a rule naming one could never match: refuse it rather than keep a rule
     * that silently does nothing. */
    mqtt_str group, inner;
    if (mqtt_share_parse(filter, &group, &inner) != 0)
        return IMQTT_EFILTER;

    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct acl_rule *r = realloc(a->rules, cap * sizeof(*r));
        if (r == NULL)
            return IMQTT_ENOMEM;
        a->rules = r;
        a->cap = cap;
    }
    uint8_t *copy = malloc(filter.len);
    if (copy == NULL)
        return IMQTT_ENOMEM;
    memcpy(copy, filter.ptr, filter.len);
    a->rules[a->count++] = (struct acl_rule){
        .filter = copy,
        .len = filter.len,
        .actions = actions,
        .allow = allow,
        .placeholders = has_placeholder(filter),
    };
    return 0;
}

/* An identity part may stand in for exactly one literal level fragment:
 * anything that is empty or could add a wildcard or a level would let an
 * identity widen a rule (BAD_INPUTS row 11). */
static bool identity_usable(mqtt_str s)
{
    if (s.ptr == NULL || s.len == 0)
        return false;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t ch = s.ptr[i];
        if (ch == '+' || ch == '#' || ch == '/')
            return false;
    }
    return true;
}

enum expand_result { EXPAND_OK, EXPAND_UNUSABLE, EXPAND_TOOLONG };

static mqtt_str identity_part(const acl_identity *who, uint8_t which)
{
    switch (which) {
    case 'c':
        return who->client_id;
    case 'u':
        return who->username;
    default:
        return who->device;
    }
}

static enum expand_result expand(mqtt_str pattern, const acl_identity *who,
                                 uint8_t *buf, uint32_t *out_len)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < pattern.len;) {
        const uint8_t *src = pattern.ptr + i;
        uint32_t len = 1;
        if (is_placeholder(src, pattern.len - i)) {
            if (who == NULL)
                return EXPAND_UNUSABLE;
            mqtt_str part = identity_part(who, src[1]);
            if (!identity_usable(part))
                return EXPAND_UNUSABLE;
            src = part.ptr;
            len = part.len;
            i += 2;
        } else {
            i++;
        }
        if (len > ACL_EXPAND_MAX - n)
            return EXPAND_TOOLONG;
        memcpy(buf + n, src, len);
        n += len;
    }
    *out_len = n;
    return EXPAND_OK;
}

/* Length of the level starting at p (up to the next '/' or the end). */
static uint32_t level_len(const uint8_t *p, uint32_t left)
{
    const uint8_t *slash = memchr(p, '/', left);
    return slash ? (uint32_t)(slash - p) : left;
}

static bool level_is(const uint8_t *p, uint32_t len, char ch)
{
    return len == 1 && p[0] == (uint8_t)ch;
}

/* Whether rule filter r matches every topic name that filter f matches.
 * Both are valid, non-shared filters. Walks both one level at a time. */
static bool filter_covers(mqtt_str r, mqtt_str f)
{
    uint32_t ri = 0, fi = 0;
    bool first = true;
    for (;;) {
        uint32_t rl = level_len(r.ptr + ri, r.len - ri);
        uint32_t fl = level_len(f.ptr + fi, f.len - fi);
        const uint8_t *rp = r.ptr + ri, *fp = f.ptr + fi;
        bool r_wild = level_is(rp, rl, '#') || level_is(rp, rl, '+');

        /* Wildcards in the first level never match '$' topics
         * [MQTT-4.7.2-1], so a '$' level in f is out of their reach. */
        if (first && r_wild && fl > 0 && fp[0] == '$')
            return false;
        if (level_is(rp, rl, '#'))
            return true;
        if (level_is(fp, fl, '#')) {
            /* Only '#' covers '#', except that every topic has a first
             * level, so a leading "+/#" covers "#" too. */
            return first && level_is(rp, rl, '+') && r.len - rl == 2 &&
                   r.ptr[rl + 1] == '#';
        }
        if (level_is(rp, rl, '+')) {
            /* covers a literal level or '+' */
        } else if (level_is(fp, fl, '+') || rl != fl ||
                   memcmp(rp, fp, rl) != 0) {
            return false;
        }

        bool r_end = ri + rl == r.len, f_end = fi + fl == f.len;
        if (f_end) {
            /* f stops here; "x/#" also matches the parent "x". */
            if (r_end)
                return true;
            uint32_t rest = ri + rl + 1;
            return r.len - rest == 1 && r.ptr[rest] == '#';
        }
        if (r_end)
            return false;
        ri += rl + 1;
        fi += fl + 1;
        first = false;
    }
}

static bool rule_matches(mqtt_str rule, enum acl_action action, mqtt_str topic)
{
    if (action == ACL_PUBLISH)
        return mqtt_topic_match(rule, topic);
    return filter_covers(rule, topic);
}

/* One pattern (a rule's filter or a token claim's) against one request.
 * Returns 1 match, 0 no match, -1 the expansion did not fit. */
static int pattern_matches(mqtt_str pattern, bool placeholders,
                           const acl_identity *who, enum acl_action action,
                           mqtt_str topic)
{
    if (!placeholders)
        return rule_matches(pattern, action, topic);
    uint8_t buf[ACL_EXPAND_MAX];
    uint32_t len = 0;
    switch (expand(pattern, who, buf, &len)) {
    case EXPAND_UNUSABLE:
        return 0;
    case EXPAND_TOOLONG:
        return -1;
    case EXPAND_OK:
        break;
    }
    return rule_matches((mqtt_str){buf, len}, action, topic);
}

enum acl_decision acl_decide(const acl *a, const acl_identity *who,
                             enum acl_action action, mqtt_str topic)
{
    if (topic.len == 0)
        return ACL_DENY;
    for (size_t i = 0; i < a->count; i++) {
        const struct acl_rule *r = &a->rules[i];
        if ((r->actions & (unsigned)action) == 0)
            continue;
        int m = pattern_matches((mqtt_str){r->filter, r->len}, r->placeholders,
                                who, action, topic);
        /* Skipping a deny rule for a long but legitimate identity would
         * widen access, so an expansion that does not fit refuses. */
        if (m < 0)
            return ACL_DENY;
        if (m > 0)
            return r->allow ? ACL_ALLOW : ACL_DENY;
    }
    return ACL_NO_MATCH;
}

bool acl_check(const acl *a, const acl_identity *who, enum acl_action action,
               mqtt_str topic)
{
    enum acl_decision d = acl_decide(a, who, action, topic);
    return d == ACL_NO_MATCH ? a->default_allow : d == ACL_ALLOW;
}

bool acl_default_allows(const acl *a)
{
    return a->default_allow;
}

bool acl_pattern_allows(mqtt_str pattern, const acl_identity *who,
                        enum acl_action action, mqtt_str topic)
{
    if (topic.len == 0 || pattern.len == 0)
        return false;
    return pattern_matches(pattern, has_placeholder(pattern), who, action,
                           topic) > 0;
}
