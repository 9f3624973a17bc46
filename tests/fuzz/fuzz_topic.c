/* libFuzzer target: topic validation and matching, differentially.
 *
 * Input: lines separated by '\n' (at most MAX_LINES). Every line is tried
 * as a topic filter and as a topic name. A plain reference written here
 * (split into levels, compare level by level) must agree with:
 *   - mqtt_topic_filter_check / mqtt_topic_name_check on the syntax of
 *     printable-ASCII lines (UTF-8 is the codec target's business);
 *   - mqtt_topic_match for every (valid filter, valid topic) pair;
 *   - the broker's sub_index (every valid non-shared filter subscribed by
 *     its own owner, then half removed) against brute force;
 *   - the broker's retain_index (every valid topic retained) against
 *     brute force over each valid filter.
 * Finally both indexes must be empty again (node counts 0) after removing
 * everything. Any disagreement aborts. */
#include "errors.h"
#include "fuzz.h"
#include "retain_index.h"
#include "sub_index.h"
#include "topic.h"
#include "topic_ref.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 48

/* ---- the reference (levels and matching: topic_ref.h) ----------------- */

static bool ascii_printable(mqtt_str s)
{
    for (uint32_t i = 0; i < s.len; i++)
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e)
            return false;
    return true;
}

static bool starts_with(mqtt_str s, const char *w)
{
    size_t n = strlen(w);
    return s.len >= n && memcmp(s.ptr, w, n) == 0;
}

/* Filter syntax (no $share handling, no UTF-8): non-empty, '+' and '#'
 * alone in their level, '#' only last. */
static bool ref_filter_ok(mqtt_str f, lvl *buf, uint32_t cap)
{
    if (f.len == 0)
        return false;
    uint32_t n = ref_split(f, buf, cap);
    if (n > cap)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < buf[i].n; j++) {
            uint8_t ch = buf[i].p[j];
            if ((ch == '+' || ch == '#') && buf[i].n != 1)
                return false;
        }
        if (lvl_is(buf[i], "#") && i != n - 1)
            return false;
    }
    return true;
}

static bool ref_name_ok(mqtt_str t)
{
    if (t.len == 0)
        return false;
    for (uint32_t i = 0; i < t.len; i++)
        if (t.ptr[i] == '+' || t.ptr[i] == '#')
            return false;
    return true;
}

/* ---- index visitors ---------------------------------------------------- */

typedef struct seen {
    uint32_t count;
    uint8_t hit[MAX_LINES];
} seen;

static void on_entry(void *arg, const sub_entry *e)
{
    seen *s = arg;
    uintptr_t i = (uintptr_t)e->owner - 1;
    FUZZ_CHECK(i < MAX_LINES);
    FUZZ_CHECK(s->hit[i] == 0); /* each owner once */
    s->hit[i] = 1;
    s->count++;
}

static void on_retained(void *arg, mqtt_str topic, void *value)
{
    seen *s = arg;
    uintptr_t i = (uintptr_t)value - 1;
    FUZZ_CHECK(i < MAX_LINES);
    FUZZ_CHECK(s->hit[i] == 0);
    s->hit[i] = 1;
    s->count++;
    (void)topic;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    mqtt_str line[MAX_LINES];
    uint32_t n = 0, start = 0;
    for (uint32_t i = 0; i <= size && n < MAX_LINES; i++) {
        if (i == size || data[i] == '\n') {
            line[n++] = (mqtt_str){data + start, i - start};
            start = i + 1;
        }
    }

    static lvl buf[4096];
    bool fok[MAX_LINES], tok[MAX_LINES], shared[MAX_LINES];
    for (uint32_t i = 0; i < n; i++) {
        mqtt_str s = line[i];
        fok[i] = mqtt_topic_filter_check(s, NULL) == 0;
        tok[i] = mqtt_topic_name_check(s, NULL) == 0;
        mqtt_str g, inner;
        int sh = mqtt_share_parse(s, &g, &inner);
        FUZZ_CHECK(sh == 0 || sh == 1 || sh == IMQTT_EFILTER);
        shared[i] = sh != 0;
        /* A nested "$share/g/$share/h/" is refused as a whole (it was
         * once accepted: seed corpus/topic/nested-share). */
        if (fok[i] && sh == 1)
            FUZZ_CHECK(mqtt_topic_filter_check(inner, NULL) == 0);
        if (tok[i]) {
            FUZZ_CHECK(ref_name_ok(s));
            FUZZ_CHECK(!mqtt_topic_has_wildcard(s));
            FUZZ_CHECK(mqtt_topic_match(s, s));
            FUZZ_CHECK(mqtt_topic_levels(s) == ref_split(s, buf, 0));
        }
        if (fok[i] && !shared[i])
            FUZZ_CHECK(ref_filter_ok(s, buf, 4096));
        if (ascii_printable(s) && !starts_with(s, "$share/")) {
            FUZZ_CHECK(tok[i] == ref_name_ok(s));
            FUZZ_CHECK(fok[i] == ref_filter_ok(s, buf, 4096));
        }
        if (!fok[i] || shared[i])
            fok[i] = false; /* only plain filters below */
    }

    /* pairwise matching */
    for (uint32_t i = 0; i < n; i++) {
        if (!fok[i])
            continue;
        for (uint32_t j = 0; j < n; j++) {
            if (!tok[j])
                continue;
            bool got = mqtt_topic_match(line[i], line[j]);
            bool want = ref_match(line[i], line[j]);
            if (got != want) {
                fprintf(stderr, "filter '%.*s' topic '%.*s': lib %d ref %d\n",
                        (int)line[i].len, (const char *)line[i].ptr,
                        (int)line[j].len, (const char *)line[j].ptr, got, want);
                abort();
            }
        }
    }

    /* sub_index against brute force */
    sub_index *idx = sub_index_new();
    retain_index *ri = retain_index_new();
    FUZZ_CHECK(idx && ri);
    mqtt_sub_opts opts = {.qos = 1};
    bool in_idx[MAX_LINES] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if (!fok[i])
            continue;
        int rc =
            sub_index_add(idx, line[i], (void *)(uintptr_t)(i + 1), &opts, 0);
        FUZZ_CHECK(rc == 1);
        in_idx[i] = true;
    }
    for (int round = 0; round < 2; round++) {
        for (uint32_t j = 0; j < n; j++) {
            if (!tok[j])
                continue;
            seen s = {0};
            sub_visitor v = {on_entry, NULL, &s};
            sub_index_match(idx, line[j], &v);
            for (uint32_t i = 0; i < n; i++) {
                bool want = in_idx[i] && ref_match(line[i], line[j]);
                FUZZ_CHECK(s.hit[i] == want);
            }
        }
        for (uint32_t i = round; i < n; i += 2) {
            if (in_idx[i]) {
                FUZZ_CHECK(sub_index_remove(idx, line[i],
                                            (void *)(uintptr_t)(i + 1)) == 1);
                in_idx[i] = false;
            }
        }
    }
    FUZZ_CHECK(sub_index_count(idx) == 0);
    FUZZ_CHECK(sub_index_node_count(idx) == 0);
    sub_index_free(idx);

    /* retain_index against brute force: the last line with a given topic
     * holds its value */
    for (uint32_t j = 0; j < n; j++) {
        if (!tok[j])
            continue;
        void *old = NULL;
        FUZZ_CHECK(retain_index_set(ri, line[j], (void *)(uintptr_t)(j + 1),
                                    &old) == 0);
    }
    bool last[MAX_LINES];
    for (uint32_t j = 0; j < n; j++) {
        last[j] = tok[j];
        for (uint32_t k = j + 1; k < n && last[j]; k++)
            if (tok[k] && line[k].len == line[j].len &&
                memcmp(line[k].ptr, line[j].ptr, line[j].len) == 0)
                last[j] = false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!fok[i])
            continue;
        seen s = {0};
        FUZZ_CHECK(retain_index_match(ri, line[i], on_retained, &s) == 0);
        for (uint32_t j = 0; j < n; j++) {
            bool want = last[j] && ref_match(line[i], line[j]);
            FUZZ_CHECK(s.hit[j] == want);
        }
    }
    for (uint32_t j = 0; j < n; j++) {
        if (last[j]) {
            FUZZ_CHECK(retain_index_get(ri, line[j]) ==
                       (void *)(uintptr_t)(j + 1));
            FUZZ_CHECK(retain_index_remove(ri, line[j]) ==
                       (void *)(uintptr_t)(j + 1));
        }
    }
    FUZZ_CHECK(retain_index_count(ri) == 0);
    FUZZ_CHECK(retain_index_node_count(ri) == 0);
    retain_index_free(ri, NULL);
    return 0;
}
