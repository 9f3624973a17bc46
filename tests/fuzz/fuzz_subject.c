/* libFuzzer target: MQTT topics as NATS subjects (broker/cluster/subject.h,
 * BAD_INPUTS row 25).
 *
 * Input: lines separated by '\n' (at most MAX_LINES). For every line:
 *   - as a topic name (when proto accepts it): decode(encode(t)) == t, and
 *     the subject holds only [A-Za-z0-9_=-] tokens joined by single dots,
 *     so no wildcard token, no empty token, no whitespace;
 *   - as a filter (when proto accepts it and it is not $share): '*' and
 *     '>' appear only as whole tokens, exactly where the filter had '+'
 *     and '#', and the parent subject is the pattern without ".>";
 *   - as a subject: when it decodes, encoding the topic gives the line
 *     back (one subject per topic, so no two subjects alias);
 *   - as a client id: the KV key round-trips and stays in the key
 *     alphabet.
 * Then for every (filter, topic) pair: NATS matching of the mapped
 * subjects (the pattern or its parent) equals proto's mqtt_topic_match. */
#include "errors.h"
#include "fuzz.h"
#include "subject.h"
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 32
#define P         "imqtt"
#define CAP       CLUSTER_SUBJECT_CAP(5, 4096)

static bool safe_subject(const char *s, size_t n, bool wild_ok)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            char c = s[i];
            bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                      c == '=';
            if (!ok && !(wild_ok && (c == '*' || c == '>')))
                return false;
            continue;
        }
        if (i == start)
            return false; /* empty token */
        for (size_t j = start; j < i; j++)
            if ((s[j] == '*' || s[j] == '>') && i - start != 1)
                return false; /* a wildcard is a whole token */
        start = i + 1;
    }
    return true;
}

static size_t count_tokens(const char *s, char which)
{
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (s[i] == which && (i == 0 || s[i - 1] == '.') &&
            (i + 1 == len || s[i + 1] == '.'))
            n++;
    return n;
}

static size_t count_levels(mqtt_str f, const char *lvl)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= f.len; i++) {
        if (i < f.len && f.ptr[i] != '/')
            continue;
        if (i - start == 1 && f.ptr[start] == lvl[0])
            n++;
        start = i + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    mqtt_str line[MAX_LINES];
    uint32_t n = 0, start = 0;
    for (uint32_t i = 0; i <= size && n < MAX_LINES; i++) {
        if (i == size || data[i] == '\n') {
            line[n++] = (mqtt_str){data + start, i - start};
            start = i + 1;
        }
    }

    static char tsub[MAX_LINES][CAP], fsub[MAX_LINES][CAP], tmp[CAP];
    static uint8_t back[CAP];
    bool tok[MAX_LINES], fok[MAX_LINES];
    size_t parent[MAX_LINES];
    for (uint32_t i = 0; i < n; i++) {
        mqtt_str s = line[i];
        tok[i] = mqtt_topic_name_check(s, NULL) == 0;
        mqtt_str g, inner;
        fok[i] = mqtt_topic_filter_check(s, NULL) == 0 &&
                 mqtt_share_parse(s, &g, &inner) == 0;

        if (tok[i]) {
            int k = cluster_topic_to_subject(P, s, tsub[i], CAP);
            FUZZ_CHECK(k > 0 && (size_t)k == strlen(tsub[i]));
            FUZZ_CHECK(safe_subject(tsub[i], (size_t)k, false));
            int m = cluster_subject_to_topic(P, tsub[i], (size_t)k, back,
                                             sizeof back);
            FUZZ_CHECK(m == (int)s.len && memcmp(back, s.ptr, s.len) == 0);
        }
        if (fok[i]) {
            int k = cluster_filter_to_subject(P, s, fsub[i], CAP, &parent[i]);
            FUZZ_CHECK(k > 0 && (size_t)k == strlen(fsub[i]));
            FUZZ_CHECK(safe_subject(fsub[i], (size_t)k, true));
            FUZZ_CHECK(count_tokens(fsub[i], '*') == count_levels(s, "+"));
            FUZZ_CHECK(count_tokens(fsub[i], '>') == count_levels(s, "#"));
            bool slash_hash = s.len >= 2 && s.ptr[s.len - 1] == '#' &&
                              s.ptr[s.len - 2] == '/';
            FUZZ_CHECK((parent[i] > 0) == slash_hash);
            if (parent[i] > 0)
                FUZZ_CHECK(parent[i] + 2 == (size_t)k &&
                           memcmp(fsub[i] + parent[i], ".>", 2) == 0);
            /* a filter without wildcards is exactly its topic's subject */
            if (tok[i])
                FUZZ_CHECK(strcmp(fsub[i], tsub[i]) == 0);
        }
        /* the line as a subject: canonical or refused */
        if (s.len + 1 < sizeof tmp && memchr(s.ptr, 0, s.len) == NULL) {
            int m = cluster_subject_to_topic(P, (const char *)s.ptr, s.len,
                                             back, sizeof back);
            FUZZ_CHECK(m >= 0 || m == IMQTT_ETOPIC);
            FUZZ_CHECK(m != 0); /* the empty topic is refused */
            if (m > 0) {
                int k = cluster_topic_to_subject(
                    P, (mqtt_str){back, (uint32_t)m}, tmp, sizeof tmp);
                FUZZ_CHECK(k == (int)s.len && memcmp(tmp, s.ptr, s.len) == 0);
            }
        }
        /* the line as a client id */
        int k = cluster_client_key(s, tmp, sizeof tmp);
        FUZZ_CHECK(k > 0 && safe_subject(tmp, (size_t)k, false) &&
                   memchr(tmp, '.', (size_t)k) == NULL);
        int m = cluster_token_decode(tmp, (size_t)k, back, sizeof back);
        FUZZ_CHECK(m == (int)s.len && memcmp(back, s.ptr, s.len) == 0);
    }

    for (uint32_t i = 0; i < n; i++) {
        if (!fok[i])
            continue;
        for (uint32_t j = 0; j < n; j++) {
            if (!tok[j])
                continue;
            bool want = mqtt_topic_match(line[i], line[j]);
            bool got = cluster_subject_match(fsub[i], tsub[j]);
            if (!got && parent[i] > 0) {
                memcpy(tmp, fsub[i], parent[i]);
                tmp[parent[i]] = '\0';
                got = cluster_subject_match(tmp, tsub[j]);
            }
            if (got != want) {
                fprintf(stderr,
                        "filter '%.*s' (%s) topic '%.*s' (%s): "
                        "mqtt %d nats %d\n",
                        (int)line[i].len, (const char *)line[i].ptr, fsub[i],
                        (int)line[j].len, (const char *)line[j].ptr, tsub[j],
                        want, got);
                abort();
            }
        }
    }
    return 0;
}
