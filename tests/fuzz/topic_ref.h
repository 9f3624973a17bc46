/* A plain reference for topic levels and matching, written from the spec
 * (MQTT 5 4.7) with none of proto/topic.c's tricks: fuzz_topic and
 * fuzz_acl compare the real code against it. */
#ifndef IMQTT_TOPIC_REF_H
#define IMQTT_TOPIC_REF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "mqtt_types.h"

/* More levels than any input of the targets can hold (their inputs are
 * a few KB). */
#define REF_MAX_LVL 8192

typedef struct lvl {
    const uint8_t *p;
    uint32_t n;
} lvl;

/* Split s at '/' into out[0..cap); returns the level count (always >= 1,
 * possibly more than cap). */
static inline uint32_t ref_split(mqtt_str s, lvl *out, uint32_t cap)
{
    uint32_t k = 0, start = 0;
    for (uint32_t i = 0; i <= s.len; i++) {
        if (i == s.len || s.ptr[i] == '/') {
            if (k < cap)
                out[k] = (lvl){s.ptr + start, i - start};
            k++;
            start = i + 1;
        }
    }
    return k;
}

static inline bool lvl_is(lvl l, const char *w)
{
    return l.n == strlen(w) && memcmp(l.p, w, l.n) == 0;
}

static inline bool lvl_eq(lvl a, lvl b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* Whether filter f matches topic name t: '+' one level, '#' the rest and
 * the parent level, no leading wildcard for a '$' topic. */
static inline bool ref_match(mqtt_str f, mqtt_str t)
{
    static lvl fl[REF_MAX_LVL], tl[REF_MAX_LVL];
    if (t.len > 0 && t.ptr[0] == '$' && f.len > 0 &&
        (f.ptr[0] == '+' || f.ptr[0] == '#'))
        return false;
    uint32_t nf = ref_split(f, fl, REF_MAX_LVL);
    uint32_t nt = ref_split(t, tl, REF_MAX_LVL);
    FUZZ_CHECK(nf <= REF_MAX_LVL && nt <= REF_MAX_LVL);
    for (uint32_t i = 0; i < nf; i++) {
        if (lvl_is(fl[i], "#"))
            return true; /* also the parent level: "a/#" matches "a" */
        if (i >= nt)
            return false;
        if (!lvl_is(fl[i], "+") && !lvl_eq(fl[i], tl[i]))
            return false;
    }
    return nf == nt;
}

#endif
