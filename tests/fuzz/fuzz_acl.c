/* libFuzzer target: the ACL rule loader and placeholder expansion.
 *
 * Input: lines separated by '\n'. Lines 0-2 are the identity (client id,
 * user name, device; fuzzed, so they may hold '+', '#', '/', be empty or
 * be long). A line starting with '?' is a request: byte 1 odd means
 * SUBSCRIBE, else PUBLISH; the rest is the topic / filter. Any other line
 * is a rule: byte 0 bit 0 allow, bits 1-2 the action mask, the rest the
 * filter (with %c %u %d).
 *
 * A reference written here (plain substring expansion, level-by-level
 * match and cover) must agree with acl_decide for every request, and
 * acl_pattern_allows with the reference for every (rule, request) pair.
 * An identity part that is empty or holds '+', '#' or '/' never satisfies
 * a rule that uses it (BAD_INPUTS row 11). */
#include "acl.h"
#include "errors.h"
#include "fuzz.h"
#include "topic.h"
#include "topic_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES  40
#define EXPAND_MAX 4096 /* acl.c's ACL_EXPAND_MAX */

static lvl A[REF_MAX_LVL], B[REF_MAX_LVL];

/* Whether every topic filter f matches is matched by rule r. */
static bool ref_covers(mqtt_str r, mqtt_str f)
{
    uint32_t nr = ref_split(r, A, REF_MAX_LVL);
    uint32_t nf = ref_split(f, B, REF_MAX_LVL);
    FUZZ_CHECK(nr <= REF_MAX_LVL && nf <= REF_MAX_LVL);
    if ((lvl_is(A[0], "+") || lvl_is(A[0], "#")) && B[0].n > 0 &&
        B[0].p[0] == '$')
        return false;
    for (uint32_t i = 0; i < nr; i++) {
        if (lvl_is(A[i], "#"))
            return true;
        if (i >= nf)
            return false;
        if (lvl_is(B[i], "#")) /* f includes its parent (i levels) */
            return i == 0 && lvl_is(A[0], "+") && nr == 2 && lvl_is(A[1], "#");
        if (lvl_is(A[i], "+"))
            continue;
        if (lvl_is(B[i], "+") || !lvl_eq(A[i], B[i]))
            return false;
    }
    return nr == nf;
}

static bool usable(mqtt_str s)
{
    if (s.len == 0)
        return false;
    for (uint32_t i = 0; i < s.len; i++)
        if (s.ptr[i] == '+' || s.ptr[i] == '#' || s.ptr[i] == '/')
            return false;
    return true;
}

/* 1 expanded, 0 unusable identity part, -1 too long. */
static int ref_expand(mqtt_str pat, const acl_identity *who, uint8_t *buf,
                      uint32_t *len)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < pat.len;) {
        const uint8_t *src = pat.ptr + i;
        uint32_t l = 1;
        if (pat.ptr[i] == '%' && i + 1 < pat.len &&
            (pat.ptr[i + 1] == 'c' || pat.ptr[i + 1] == 'u' ||
             pat.ptr[i + 1] == 'd')) {
            mqtt_str part = pat.ptr[i + 1] == 'c'   ? who->client_id
                            : pat.ptr[i + 1] == 'u' ? who->username
                                                    : who->device;
            if (!usable(part))
                return 0;
            src = part.ptr;
            l = part.len;
            i += 2;
        } else {
            i++;
        }
        if (n + l > EXPAND_MAX)
            return -1;
        memcpy(buf + n, src, l);
        n += l;
    }
    *len = n;
    return 1;
}

/* 1 match, 0 none, -1 expansion too long. */
static int ref_rule(mqtt_str pat, const acl_identity *who, enum acl_action act,
                    mqtt_str topic)
{
    static uint8_t buf[EXPAND_MAX];
    uint32_t len = 0;
    int e = ref_expand(pat, who, buf, &len);
    if (e <= 0)
        return e;
    mqtt_str x = {buf, len};
    if (len == 0)
        return 0;
    return act == ACL_PUBLISH ? ref_match(x, topic) : ref_covers(x, topic);
}

struct rule {
    mqtt_str f;
    bool allow;
    unsigned actions;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    mqtt_str line[MAX_LINES];
    uint32_t n = 0, start = 0;
    for (uint32_t i = 0; i <= size && n < MAX_LINES; i++) {
        if (i == size || data[i] == '\n') {
            line[n++] = (mqtt_str){data + start, i - start};
            start = i + 1;
        }
    }
    if (n < 3)
        return 0;
    acl_identity who = {line[0], line[1], line[2]};
    acl *a = acl_new(n & 1);
    FUZZ_CHECK(a);
    struct rule rules[MAX_LINES];
    uint32_t nrules = 0;
    for (uint32_t i = 3; i < n; i++) {
        if (line[i].len == 0 || line[i].ptr[0] == '?')
            continue;
        bool allow = line[i].ptr[0] & 1;
        unsigned actions = (line[i].ptr[0] >> 1) & 3;
        mqtt_str f = {line[i].ptr + 1, line[i].len - 1};
        int rc = acl_add_rule(a, allow, actions, f);
        if (rc == 0) {
            FUZZ_CHECK(actions != 0 && f.len > 0 && f.len <= 1024);
            FUZZ_CHECK(mqtt_topic_filter_check(f, NULL) == 0);
            mqtt_str g, inner;
            FUZZ_CHECK(mqtt_share_parse(f, &g, &inner) == 0);
            rules[nrules++] = (struct rule){f, allow, actions};
        } else {
            FUZZ_CHECK(rc == IMQTT_EFILTER || rc == IMQTT_EINVAL ||
                       rc == IMQTT_ENOMEM);
        }
    }
    FUZZ_CHECK(acl_rule_count(a) == nrules);

    for (uint32_t i = 3; i < n; i++) {
        if (line[i].len < 2 || line[i].ptr[0] != '?')
            continue;
        enum acl_action act =
            (line[i].ptr[1] & 1) ? ACL_SUBSCRIBE : ACL_PUBLISH;
        mqtt_str t = {line[i].ptr + 2, line[i].len - 2};
        enum acl_decision d = acl_decide(a, &who, act, t);
        (void)acl_check(a, &who, act, t);
        bool valid =
            act == ACL_PUBLISH
                ? mqtt_topic_name_check(t, NULL) == 0
                : mqtt_topic_filter_check(t, NULL) == 0 &&
                      mqtt_share_parse(t, &(mqtt_str){0}, &(mqtt_str){0}) == 0;
        if (!valid)
            continue;
        enum acl_decision want = ACL_NO_MATCH;
        for (uint32_t r = 0; r < nrules; r++) {
            int m = ref_rule(rules[r].f, &who, act, t);
            bool pa = acl_pattern_allows(rules[r].f, &who, act, t);
            FUZZ_CHECK(pa == (m > 0));
            if (want == ACL_NO_MATCH && (rules[r].actions & act)) {
                if (m < 0)
                    want = ACL_DENY;
                else if (m > 0)
                    want = rules[r].allow ? ACL_ALLOW : ACL_DENY;
            }
        }
        if (d != want) {
            fprintf(stderr, "action %d topic '%.*s': acl %d ref %d\n", act,
                    (int)t.len, (const char *)t.ptr, d, want);
            abort();
        }
    }
    acl_free(a);
    return 0;
}
