/* One formatted line per event, written to stderr with a single write(2) so
 * lines from a crashing process or a child are never interleaved mid-line. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_current_level = LOG_INFO;
bool log_packets;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/* Long enough for any message we produce; longer ones are cut and marked. */
#define LOG_LINE_MAX   2048
#define LOG_TRUNC_MARK "..."

static bool log_json;

void log_set_level(enum log_level level)
{
    log_current_level = log_packets ? LOG_DEBUG : level;
}

void log_set_packets(bool on)
{
    log_packets = on;
    if (on)
        log_current_level = LOG_DEBUG;
}

void log_set_json(bool on)
{
    log_json = on;
}

/* JSON string body of src[0..n) into out (room >= 6 * n + 1): quotes,
 * backslashes and control characters escaped. Returns the length. */
static size_t json_escape(char *out, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[ch >> 4];
            out[o + 5] = hex[ch & 15];
            o += 6;
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report it */
        p += w;
        n -= (size_t)w;
    }
}

/* Whether s[0..n) looks like a peer as conn_peer writes it: an IPv4 or
 * bracketed IPv6 address with a port. */
static bool is_peer(const char *s, size_t n)
{
    if (n < 3 || n > 64 || !memchr(s, ':', n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF.:[]", s[i]))
            return false;
    return true;
}

/* The peer of a line about a connection (conn_log.h's forms: "<peer>:
 * ...", "client <id> (<peer>)...", "client <id> connected from <peer>
 * ..."), as *at, *n; false when the line names none. */
static bool find_peer(const char *msg, size_t mlen, size_t id_end, size_t *at,
                      size_t *n)
{
    size_t sep = 0;
    while (sep + 1 < mlen && !(msg[sep] == ':' && msg[sep + 1] == ' '))
        sep++;
    if (sep + 1 < mlen && is_peer(msg, sep)) {
        *at = 0;
        *n = sep;
        return true;
    }
    if (!id_end)
        return false;
    static const char from[] = " connected from ";
    size_t s = id_end;
    if (s + 1 < mlen && msg[s] == ' ' && msg[s + 1] == '(')
        s += 2;
    else if (mlen - s > sizeof(from) - 1 &&
             memcmp(msg + s, from, sizeof(from) - 1) == 0)
        s += sizeof(from) - 1;
    else
        return false;
    size_t e = s;
    while (e < mlen && msg[e] != ')' && msg[e] != ' ')
        e++;
    if (!is_peer(msg + s, e - s))
        return false;
    *at = s;
    *n = e - s;
    return true;
}

static void emit_json(const char *ts, size_t tslen, enum log_level level,
                      const char *msg, size_t mlen)
{
    static const char *const lower[] = {"error", "warn", "info", "debug"};
    /* The message, the client id and the peer are each copied out of the
     * line, and escaping can make every byte six (a client id of control
     * characters): room for the worst case of all three. */
    static _Thread_local char out[(LOG_LINE_MAX * 2 + 64) * 6 + 256];
    size_t o = 0;
    o += (size_t)snprintf(out, sizeof(out), "{\"ts\":\"%.*s\",\"level\":\"%s\"",
                          (int)tslen, ts, lower[level]);
    /* "client <id> ..." / "client <id>: ...": the id as its own field. */
    size_t id_end = 0;
    if (mlen > 7 && memcmp(msg, "client ", 7) == 0) {
        size_t e = 7;
        while (e < mlen && msg[e] != ' ' && msg[e] != ':')
            e++;
        if (e > 7) {
            memcpy(out + o, ",\"client_id\":\"", 14);
            o += 14;
            o += json_escape(out + o, msg + 7, e - 7);
            out[o++] = '"';
            id_end = e;
        }
    }
    /* The peer too, for shippers that ban or group by address. */
    size_t pat, pn;
    if (find_peer(msg, mlen, id_end, &pat, &pn)) {
        memcpy(out + o, ",\"peer\":\"", 9);
        o += 9;
        o += json_escape(out + o, msg + pat, pn);
        out[o++] = '"';
    }
    memcpy(out + o, ",\"msg\":\"", 8);
    o += 8;
    o += json_escape(out + o, msg, mlen);
    memcpy(out + o, "\"}\n", 3);
    o += 3;
    write_all(out, o);
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* "2026-11-21T16:40:00" changes once a second; formatting it is the
 * expensive part, so keep the last one (per thread: loops, the store
 * thread and the thread pool all log). */
static size_t format_time(char *out)
{
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    int n = snprintf(out, 40, "%s.%03ldZ", cached, ts.tv_nsec / 1000000L);
    return n > 0 ? (size_t)n : 0;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > log_current_level || (unsigned)level > LOG_DEBUG)
        return;
    char line[LOG_LINE_MAX];
    size_t n = format_time(line);
    size_t tslen = n;
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ",
                          level_names[level]);

    size_t start = n;
    size_t room = sizeof(line) - n - 1; /* keep one byte for '\n' */
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, room + 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if ((size_t)m > room) {
        n += room;
        memcpy(line + n - strlen(LOG_TRUNC_MARK), LOG_TRUNC_MARK,
               strlen(LOG_TRUNC_MARK));
    } else {
        n += (size_t)m;
    }
    if (log_json) {
        emit_json(line, tslen, level, line + start, n - start);
        return;
    }
    /* Messages quote client ids, topics and user names: a newline or
     * escape sequence in them must not forge a log line or drive a
     * terminal. */
    for (size_t i = start; i < n; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch < 0x20 || ch == 0x7f)
            line[i] = '?';
    }
    line[n++] = '\n';
    write_all(line, n);
}
