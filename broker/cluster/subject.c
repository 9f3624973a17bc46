/* Topic <-> subject mapping (see subject.h for the scheme and why). */
#include "subject.h"

#include "errors.h"

#include <string.h>

static const char hexdig[] = "0123456789ABCDEF";

/* The bytes that stand for themselves in a token: safe in subjects, in KV
 * keys, in file names (JetStream stores keys as subjects) and in logs. */
static bool literal(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not canonical */
}

/* A small writer so every append checks the room left once. */
typedef struct wbuf {
    char *p;
    size_t len, cap; /* cap includes the NUL */
    bool full;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if (w->full || w->len + n + 1 > w->cap) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_c(wbuf *w, char c)
{
    put(w, &c, 1);
}

static void put_token(wbuf *w, const uint8_t *p, size_t n)
{
    if (n == 0) {
        put_c(w, CLUSTER_ESC); /* the empty level */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (literal(p[i])) {
            put_c(w, (char)p[i]);
        } else {
            char e[3] = {CLUSTER_ESC, hexdig[p[i] >> 4], hexdig[p[i] & 15]};
            put(w, e, 3);
        }
    }
}

static int finish(wbuf *w)
{
    if (w->full || w->cap == 0)
        return IMQTT_ENOSPACE;
    w->p[w->len] = '\0';
    return (int)w->len;
}

int cluster_prefix_check(const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > CLUSTER_PREFIX_MAX)
        return IMQTT_ECONFIG;
    bool at_start = true; /* of a token */
    for (size_t i = 0; i < n; i++) {
        if (prefix[i] == '.') {
            if (at_start)
                return IMQTT_ECONFIG; /* empty token */
            at_start = true;
        } else if (literal((uint8_t)prefix[i])) {
            at_start = false;
        } else {
            return IMQTT_ECONFIG;
        }
    }
    return at_start ? IMQTT_ECONFIG : 0;
}

/* "<prefix>.m." or "<prefix>.d.": the namespace follows from the first
 * level (a '$' topic, or a filter whose first level is a literal starting
 * with '$'). */
static void put_head(wbuf *w, const char *prefix, bool dollar)
{
    put(w, prefix, strlen(prefix));
    put(w, dollar ? ".d." : ".m.", 3);
}

int cluster_topic_to_subject(const char *prefix, mqtt_str t, char *out,
                             size_t cap)
{
    if (t.len == 0)
        return IMQTT_ETOPIC;
    wbuf w = {out, 0, cap, false};
    put_head(&w, prefix, t.ptr[0] == '$');
    uint32_t start = 0;
    for (uint32_t i = 0; i <= t.len; i++) {
        if (i < t.len && t.ptr[i] != '/')
            continue;
        uint32_t n = i - start;
        if (n == 1 && (t.ptr[start] == '+' || t.ptr[start] == '#'))
            return IMQTT_ETOPIC; /* a filter, not a name */
        if (start > 0)
            put_c(&w, '.');
        put_token(&w, t.ptr + start, n);
        start = i + 1;
    }
    return finish(&w);
}

int cluster_filter_to_subject(const char *prefix, mqtt_str f, char *out,
                              size_t cap, size_t *parent_len)
{
    *parent_len = 0;
    if (f.len == 0)
        return IMQTT_EFILTER;
    bool first_wild = f.ptr[0] == '+' || f.ptr[0] == '#';
    wbuf w = {out, 0, cap, false};
    put_head(&w, prefix, f.ptr[0] == '$' && !first_wild);
    uint32_t start = 0;
    for (uint32_t i = 0; i <= f.len; i++) {
        if (i < f.len && f.ptr[i] != '/')
            continue;
        uint32_t n = i - start;
        bool plus = n == 1 && f.ptr[start] == '+';
        bool hash = n == 1 && f.ptr[start] == '#';
        if (hash && i != f.len)
            return IMQTT_EFILTER;
        if (start > 0) {
            /* "x/#": the parent "x" is everything written so far */
            if (hash)
                *parent_len = w.len;
            put_c(&w, '.');
        }
        if (plus)
            put_c(&w, '*');
        else if (hash)
            put_c(&w, '>');
        else
            put_token(&w, f.ptr + start, n);
        start = i + 1;
    }
    int rc = finish(&w);
    if (rc < 0)
        *parent_len = 0;
    return rc;
}

int cluster_token_decode(const char *tok, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0)
        return IMQTT_EINVAL;
    if (len == 1 && tok[0] == CLUSTER_ESC)
        return 0; /* the empty level */
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c;
        if (tok[i] == CLUSTER_ESC) {
            if (i + 2 >= len)
                return IMQTT_EINVAL;
            int hi = hexval(tok[i + 1]), lo = hexval(tok[i + 2]);
            if (hi < 0 || lo < 0)
                return IMQTT_EINVAL;
            c = (uint8_t)(hi << 4 | lo);
            if (literal(c))
                return IMQTT_EINVAL; /* "=41" for 'A' is not canonical */
            i += 2;
        } else if (literal((uint8_t)tok[i])) {
            c = (uint8_t)tok[i];
        } else {
            return IMQTT_EINVAL;
        }
        if (k >= cap)
            return IMQTT_ENOSPACE;
        out[k++] = c;
    }
    return (int)k;
}

int cluster_subject_to_topic(const char *prefix, const char *s, size_t len,
                             uint8_t *out, size_t cap)
{
    size_t pl = strlen(prefix);
    if (len < pl + 4 || memcmp(s, prefix, pl) != 0 || s[pl] != '.' ||
        (s[pl + 1] != 'm' && s[pl + 1] != 'd') || s[pl + 2] != '.')
        return IMQTT_ETOPIC;
    bool dollar = s[pl + 1] == 'd';
    size_t k = 0, start = pl + 3;
    for (size_t i = start; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (start > pl + 3) {
            if (k >= cap)
                return IMQTT_ENOSPACE;
            out[k++] = '/';
        }
        int n = cluster_token_decode(s + start, i - start, out + k, cap - k);
        if (n == IMQTT_ENOSPACE)
            return n;
        if (n < 0)
            return IMQTT_ETOPIC;
        /* a name never holds a wildcard level, and a '/' inside a token
         * ("=2F") would be a second spelling of two levels */
        if ((n == 1 && (out[k] == '+' || out[k] == '#')) ||
            memchr(out + k, '/', (size_t)n) != NULL)
            return IMQTT_ETOPIC;
        k += (size_t)n;
        start = i + 1;
    }
    /* the namespace must agree with the first byte, or two subjects would
     * name one topic */
    if (k == 0 || dollar != (out[0] == '$'))
        return IMQTT_ETOPIC;
    return (int)k;
}

int cluster_token_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
    wbuf w = {out, 0, cap, false};
    put_token(&w, p, n);
    return finish(&w);
}

int cluster_client_key(mqtt_str client_id, char *out, size_t cap)
{
    return cluster_token_encode(client_id.ptr, client_id.len, out, cap);
}

/* The token of s starting at *pos; advances *pos past it and its dot. */
static size_t next_token(const char *s, size_t *pos, const char **tok)
{
    size_t start = *pos, i = start;
    while (s[i] && s[i] != '.')
        i++;
    *tok = s + start;
    *pos = s[i] ? i + 1 : i;
    return i - start;
}

bool cluster_subject_match(const char *pattern, const char *subject)
{
    size_t pp = 0, sp = 0;
    for (;;) {
        bool p_end = pattern[pp] == '\0', s_end = subject[sp] == '\0';
        if (p_end || s_end)
            return p_end && s_end;
        const char *pt, *st;
        size_t pn = next_token(pattern, &pp, &pt);
        if (pn == 1 && pt[0] == '>' && pattern[pp] == '\0')
            return true; /* one or more tokens left: s is not at its end */
        size_t sn = next_token(subject, &sp, &st);
        if (!(pn == 1 && pt[0] == '*') && (pn != sn || memcmp(pt, st, pn) != 0))
            return false;
    }
}
