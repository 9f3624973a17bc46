#include "topic.h"

#include "errors.h"
#include "utf8.h"

#include <string.h>

#define SPEC_MAX_LEN     65535u
#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN (sizeof(SHARE_PREFIX) - 1)

static bool over_len(uint32_t len, const mqtt_topic_limits *lim)
{
    if (len > SPEC_MAX_LEN)
        return true;
    return lim && lim->max_len && len > lim->max_len;
}

/* Counting levels is a scan of its own, so only done when limited, and
 * not when the name is too short to have that many (levels <= len + 1). */
static bool over_levels(mqtt_str t, const mqtt_topic_limits *lim)
{
    return lim && lim->max_levels && t.len >= lim->max_levels &&
           mqtt_topic_levels(t) > lim->max_levels;
}

/* Byte-parallel tests on eight bytes at a time (SWAR). eq_mask gives 0x80
 * in exactly the bytes of v equal to b (no false positives, so the bits
 * can be counted), 0 elsewhere. */
#define ONES  0x0101010101010101ull
#define LOW7  0x7f7f7f7f7f7f7f7full
#define HIGHS 0x8080808080808080ull

static inline uint64_t eq_mask(uint64_t v, uint8_t b)
{
    uint64_t x = v ^ (ONES * b);
    return ~(((x & LOW7) + LOW7) | x | LOW7);
}

/* Number of bytes flagged 0x80 in m (a multiply sums them into the top
 * byte; no popcount instruction is assumed). */
static inline uint32_t count_bits(uint64_t m)
{
    return (uint32_t)(((m >> 7) * ONES) >> 56);
}

uint32_t mqtt_topic_levels(mqtt_str t)
{
    uint32_t n = 1;
    const uint8_t *p = t.ptr;
    uint32_t i = 0;
    /* A topic is a few dozen bytes: counting '/' a word at a time beats a
     * memchr call per level. */
    for (; i + 8 <= t.len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        n += count_bits(eq_mask(v, '/'));
    }
    for (; i < t.len; i++)
        n += p[i] == '/';
    return n;
}

bool mqtt_topic_has_wildcard(mqtt_str f)
{
    if (f.len == 0) /* ptr may be NULL, which memchr must not see */
        return false;
    return memchr(f.ptr, '+', f.len) || memchr(f.ptr, '#', f.len);
}

/* One pass over the name: wildcards, levels and UTF-8 together (this runs
 * for every PUBLISH, where three scans used to be a tenth of the broker's
 * instructions). Words of plain ASCII without '+', '#' or NUL are taken
 * eight bytes at a time; from the first other word on, the bytes left are
 * checked one by one for wildcards and levels, then as UTF-8. The words
 * before are all ASCII, so the UTF-8 check starts on a character boundary.
 */
int mqtt_topic_name_check(mqtt_str t, const mqtt_topic_limits *lim)
{
    if (t.len == 0 || over_len(t.len, lim))
        return IMQTT_ETOPIC;
    const uint8_t *p = t.ptr;
    uint32_t slashes = 0;
    uint32_t i = 0;
    while (i < t.len) {
        uint64_t v;
        uint32_t n = 8;
        if (t.len - i >= 8) {
            memcpy(&v, p + i, 8);
        } else {
            /* The last, partial word is padded with 'a', which passes. */
            v = 0x6161616161616161ull;
            n = t.len - i;
            for (uint32_t k = 0; k < n; k++)
                ((uint8_t *)&v)[k] = p[i + k];
        }
        uint64_t bad =
            (v | ((v - ONES) & ~v)) | eq_mask(v, '+') | eq_mask(v, '#');
        if (bad & HIGHS)
            break;
        slashes += count_bits(eq_mask(v, '/'));
        i += n;
    }
    for (uint32_t k = i; k < t.len; k++) {
        if (p[k] == '+' || p[k] == '#')
            return IMQTT_ETOPIC;
        slashes += p[k] == '/';
    }
    if (lim && lim->max_levels && slashes + 1 > lim->max_levels)
        return IMQTT_ETOPIC;
    return i < t.len ? mqtt_utf8_check(p + i, t.len - i) : 0;
}

int mqtt_topic_name_within(mqtt_str t, const mqtt_topic_limits *lim)
{
    if (t.len == 0 || over_len(t.len, lim))
        return IMQTT_ETOPIC;
    if (over_levels(t, lim))
        return IMQTT_ETOPIC;
    return 0;
}

int mqtt_share_parse(mqtt_str f, mqtt_str *group, mqtt_str *filter)
{
    if (f.len < SHARE_PREFIX_LEN ||
        memcmp(f.ptr, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
        return 0;

    const uint8_t *g = f.ptr + SHARE_PREFIX_LEN;
    uint32_t rest = f.len - (uint32_t)SHARE_PREFIX_LEN;
    const uint8_t *slash = memchr(g, '/', rest);
    if (!slash)
        return IMQTT_EFILTER; /* "$share/group" has no filter at all */

    uint32_t glen = (uint32_t)(slash - g);
    /* The group name is a single level without wildcards [MQTT-4.8.2-1,2];
     * an empty filter after it would subscribe to nothing. */
    if (glen == 0 || glen + 1 == rest || memchr(g, '+', glen) ||
        memchr(g, '#', glen))
        return IMQTT_EFILTER;

    /* "$share/g/$share/h/x" would share a filter that is itself a
     * shared subscription: meaningless, so malformed (0x8F). */
    const uint8_t *inner = slash + 1;
    uint32_t ilen = rest - glen - 1;
    if (ilen >= SHARE_PREFIX_LEN &&
        memcmp(inner, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0)
        return IMQTT_EFILTER;

    *group = (mqtt_str){g, glen};
    *filter = (mqtt_str){inner, ilen};
    return 1;
}

/* '+' must fill a whole level; '#' must fill the last level. */
static bool wildcards_placed(mqtt_str f)
{
    const uint8_t *s = f.ptr;
    uint32_t n = f.len;

    for (uint32_t i = 0; i < n; i++) {
        if (s[i] != '+' && s[i] != '#')
            continue;
        bool starts_level = i == 0 || s[i - 1] == '/';
        bool ends_level = i + 1 == n || s[i + 1] == '/';
        if (!starts_level || !ends_level)
            return false;
        if (s[i] == '#' && i + 1 != n)
            return false;
    }
    return true;
}

int mqtt_topic_filter_check(mqtt_str f, const mqtt_topic_limits *lim)
{
    /* max_len limits what the client sent, $share prefix included: it is a
     * bound on the bytes we keep per subscription. */
    if (f.len == 0 || over_len(f.len, lim))
        return IMQTT_EFILTER;
    int rc = mqtt_utf8_check(f.ptr, f.len);
    if (rc < 0)
        return rc;

    mqtt_str group, inner = f;
    rc = mqtt_share_parse(f, &group, &inner);
    if (rc < 0)
        return rc;
    if (!wildcards_placed(inner))
        return IMQTT_EFILTER;
    if (over_levels(inner, lim))
        return IMQTT_EFILTER;
    return 0;
}

/* Whether the rest of a filter, right after a '/' that the topic did not
 * have, is exactly "#": "sport/#" also matches "sport" [MQTT-4.7.1.2]. */
static bool only_hash_left(const uint8_t *f, uint32_t left)
{
    return left == 1 && f[0] == '#';
}

bool mqtt_topic_match(mqtt_str filter, mqtt_str topic)
{
    const uint8_t *f = filter.ptr, *t = topic.ptr;
    uint32_t fn = filter.len, tn = topic.len;
    uint32_t fi = 0, ti = 0;

    if (fn == 0)
        return false;
    /* [MQTT-4.7.2-1]: wildcards at the first level skip $SYS and the
     * like; a literal "$..." first level can still match them. */
    if (tn > 0 && t[0] == '$' && (f[0] == '+' || f[0] == '#'))
        return false;

    /* One pass, level by level, both cursors at the start of a level. */
    for (;;) {
        if (f[fi] == '#')
            return true;
        if (f[fi] == '+') {
            fi++;
            while (ti < tn && t[ti] != '/')
                ti++;
        } else {
            while (fi < fn && f[fi] != '/') {
                if (ti == tn || t[ti] != f[fi])
                    return false;
                fi++;
                ti++;
            }
            if (ti < tn && t[ti] != '/')
                return false;
        }
        /* Both at the end of a level: at '/' or at the end. */
        if (fi == fn)
            return ti == tn;
        fi++; /* the filter's '/' */
        if (ti == tn)
            return only_hash_left(f + fi, fn - fi);
        ti++; /* the topic's '/' */
        if (fi == fn)
            return ti == tn; /* filter "a/" vs topic "a/" */
    }
}
