#include "api_route.h"

#include <http_parser.h>
#include <string.h>

#define M(m) (1u << (m))

/* Split path into at most 8 segments after the prefix. */
typedef struct segs {
    const char *p[8];
    size_t n[8];
    size_t count;
    bool overflow;
} segs;

static void split(const char *path, size_t len, segs *s)
{
    s->count = 0;
    s->overflow = false;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (s->count == 8) {
            s->overflow = true;
            return;
        }
        s->p[s->count] = path + i;
        s->n[s->count++] = j - i;
        i = j + 1;
    }
}

static bool is(const segs *s, size_t i, const char *word)
{
    size_t n = strlen(word);
    return s->n[i] == n && memcmp(s->p[i], word, n) == 0;
}

static bool take_name(const segs *s, size_t i, char *out)
{
    mqtt_str part = mqtt_str_from(s->p[i], s->n[i]);
    if (!im_id_part_valid(part))
        return false;
    memcpy(out, s->p[i], s->n[i]);
    out[s->n[i]] = '\0';
    return true;
}

static void found(api_route *r, enum api_endpoint ep, unsigned methods,
                  int method, const char *allow)
{
    r->ep = ep;
    r->method_ok = (methods & M((unsigned)method)) != 0;
    r->allow = allow;
}

void api_route_match(int method, const char *path, size_t len, api_route *r)
{
    memset(r, 0, sizeof(*r));
    size_t plen = sizeof(API_PREFIX) - 1;
    if (len < plen || memcmp(path, API_PREFIX, plen) != 0)
        return;
    segs s;
    split(path + plen, len - plen, &s);
    if (s.overflow || s.count == 0)
        return;
    if (s.count == 1) {
        if (is(&s, 0, "publish"))
            found(r, API_PUBLISH, M(HTTP_POST), method, "POST");
        else if (is(&s, 0, "bans"))
            found(r, API_BANS, M(HTTP_GET), method, "GET");
        else if (is(&s, 0, "revocations"))
            found(r, API_REVOCATIONS, M(HTTP_GET) | M(HTTP_POST), method,
                  "GET, POST");
        return;
    }
    if (!is(&s, 0, "users") || s.count < 3)
        return;
    if (s.count == 3) {
        if (is(&s, 2, "devices"))
            found(r, API_DEVICES, M(HTTP_GET), method, "GET");
        else if (is(&s, 2, "presence"))
            found(r, API_PRESENCE, M(HTTP_GET), method, "GET");
        else if (is(&s, 2, "history"))
            found(r, API_HISTORY, M(HTTP_GET), method, "GET");
        else if (is(&s, 2, "kick"))
            found(r, API_KICK_USER, M(HTTP_POST), method, "POST");
        else if (is(&s, 2, "ban"))
            found(r, API_BAN_USER, M(HTTP_PUT) | M(HTTP_DELETE), method,
                  "PUT, DELETE");
    } else if (s.count == 5 && is(&s, 2, "devices")) {
        if (is(&s, 4, "kick"))
            found(r, API_KICK_DEVICE, M(HTTP_POST), method, "POST");
        else if (is(&s, 4, "ban"))
            found(r, API_BAN_DEVICE, M(HTTP_PUT) | M(HTTP_DELETE), method,
                  "PUT, DELETE");
        else if (is(&s, 4, "messages"))
            found(r, API_UPLINK, M(HTTP_POST), method, "POST");
        if (r->ep != API_NONE && !take_name(&s, 3, r->device))
            r->bad_name = true;
    }
    if (r->ep != API_NONE && !take_name(&s, 1, r->user))
        r->bad_name = true;
}

bool api_route_is_device(enum api_endpoint ep)
{
    return ep == API_UPLINK;
}
