/* WebSocket upgrade parser and frame reader (RFC 6455). Pure: see ws.h. */
#include "ws.h"

#include <string.h>

/* ---- HTTP upgrade ------------------------------------------------------ */

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* Whether the comma-separated list v[0..n) holds token tok (any case). */
static bool list_has(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && ieq(v + s, e - s, tok))
            return true;
    }
    return false;
}

/* Subprotocol names are case-sensitive (RFC 6455 4.1, point 10). */
static bool list_has_exact(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && memcmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

static bool is_b64(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

static bool is_tchar(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

const char *ws_http_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Error";
    }
}

/* Locate "\r\n\r\n" in the first max bytes. */
static size_t find_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
            buf[i + 3] == '\n')
            return i + 4;
    return 0;
}

struct hdrs {
    bool host, upgrade, connection, version_seen, version13;
    bool proto_seen, proto_mqtt, proto_v31;
    const char *key;
    size_t key_len;
    int keys;
};

static int header(struct hdrs *h, const char *name, size_t nl, const char *v,
                  size_t vl)
{
    if (ieq(name, nl, "host")) {
        h->host = true;
    } else if (ieq(name, nl, "upgrade")) {
        h->upgrade = h->upgrade || list_has(v, vl, "websocket");
    } else if (ieq(name, nl, "connection")) {
        h->connection = h->connection || list_has(v, vl, "upgrade");
    } else if (ieq(name, nl, "sec-websocket-version")) {
        h->version_seen = true;
        h->version13 = vl == 2 && v[0] == '1' && v[1] == '3';
    } else if (ieq(name, nl, "sec-websocket-key")) {
        h->key = v;
        h->key_len = vl;
        h->keys++;
    } else if (ieq(name, nl, "sec-websocket-protocol")) {
        h->proto_seen = true;
        h->proto_mqtt = h->proto_mqtt || list_has_exact(v, vl, "mqtt");
        h->proto_v31 = h->proto_v31 || list_has_exact(v, vl, "mqttv3.1");
    }
    return 0;
}

/* The request line: "GET <target> HTTP/1.1". */
static int request_line(const char *p, size_t n, const char *path)
{
    const char *sp1 = memchr(p, ' ', n);
    if (!sp1)
        return -400;
    size_t ml = (size_t)(sp1 - p);
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', n - ml - 1);
    if (!sp2 || sp2 == t)
        return -400;
    size_t tl = (size_t)(sp2 - t);
    size_t vl = n - ml - 1 - tl - 1;
    if (vl != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '1' ||
        sp2[8] > '9')
        return -400;
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar(p[i]))
            return -400;
    if (ml != 3 || memcmp(p, "GET", 3) != 0)
        return -405;
    /* The query string does not select the endpoint. */
    const char *q = memchr(t, '?', tl);
    size_t pl = q ? (size_t)(q - t) : tl;
    if (pl != strlen(path) || memcmp(t, path, pl) != 0)
        return -404;
    return 0;
}

int ws_http_parse(const char *buf, size_t len, const char *path,
                  ws_http_req *out)
{
    size_t scan = len < WS_HTTP_MAX ? len : WS_HTTP_MAX;
    size_t end = find_end(buf, scan);
    if (end == 0)
        return len >= WS_HTTP_MAX ? -431 : 0;
    /* Every byte of the head must be visible ASCII, space or tab, apart
     * from the line ends: no NULs, no bare CR or LF smuggling a header. */
    for (size_t i = 0; i < end; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\r') {
            if (i + 1 >= end || buf[i + 1] != '\n')
                return -400;
            i++;
        } else if (ch == '\n' || ch >= 0x7f || (ch < 0x20 && ch != '\t')) {
            return -400;
        }
    }
    const char *p = buf, *stop = buf + end - 2; /* the final empty line */
    const char *eol = memchr(p, '\r', (size_t)(stop - p));
    int rc = request_line(p, (size_t)(eol - p), path);
    if (rc < 0)
        return rc;
    p = eol + 2;
    struct hdrs h = {0};
    while (p < stop) {
        eol = memchr(p, '\r', (size_t)(stop - p));
        size_t n = (size_t)(eol - p);
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
            return -400; /* also an obsolete folded line (leading space) */
        size_t nl = (size_t)(colon - p);
        for (size_t i = 0; i < nl; i++)
            if (!is_tchar(p[i]))
                return -400;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        header(&h, p, nl, v, (size_t)(ve - v));
        p = eol + 2;
    }
    if (!h.upgrade || !h.connection)
        return -426;
    if (!h.version_seen || !h.version13)
        return -426;
    if (!h.host || h.keys != 1 || h.key_len != 24 || h.key[22] != '=' ||
        h.key[23] != '=')
        return -400;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(h.key[i]))
            return -400;
    /* MQTT-6.0.0-3/4: the client offers "mqtt"; older clients offer
     * "mqttv3.1". Offering only something else is a different protocol. */
    if (h.proto_seen && !h.proto_mqtt && !h.proto_v31)
        return -400;
    out->key = h.key;
    out->key_len = h.key_len;
    out->protocol = h.proto_mqtt ? "mqtt" : h.proto_v31 ? "mqttv3.1" : NULL;
    return (int)end;
}

/* ---- frames -------------------------------------------------------------- */

static bool close_code_valid(uint16_t c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) ||
           (c >= 3000 && c <= 4999);
}

/* A whole header is in r->hdr: check it and set up the payload. */
static int start_frame(ws_reader *r)
{
    uint8_t b0 = r->hdr[0], b1 = r->hdr[1];
    uint8_t op = b0 & 0x0F;
    r->fin = (b0 & 0x80) != 0;
    if (b0 & 0x70)
        return -WS_CLOSE_PROTOCOL; /* no extension was negotiated */
    if (!(b1 & 0x80))
        return -WS_CLOSE_PROTOCOL; /* clients must mask (RFC 6455 5.1) */
    uint64_t len = b1 & 0x7F;
    size_t at = 2;
    if (len == 126) {
        len = (uint64_t)r->hdr[2] << 8 | r->hdr[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | r->hdr[2 + i];
        if (len >> 63)
            return -WS_CLOSE_PROTOCOL;
        at = 10;
    }
    memcpy(r->mask, r->hdr + at, 4);
    switch (op) {
    case WS_OP_CONT:
        if (!r->in_message)
            return -WS_CLOSE_PROTOCOL;
        r->in_message = !r->fin;
        break;
    case WS_OP_BINARY:
        if (r->in_message)
            return -WS_CLOSE_PROTOCOL;
        r->in_message = !r->fin;
        break;
    case WS_OP_TEXT:
        /* MQTT is carried in binary frames only [MQTT-6.0.0-1]. */
        return -WS_CLOSE_UNSUPPORTED;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!r->fin || len > WS_CONTROL_MAX)
            return -WS_CLOSE_PROTOCOL;
        break;
    default:
        return -WS_CLOSE_PROTOCOL;
    }
    r->opcode = op;
    r->left = len;
    r->done = 0;
    r->ctl_len = 0;
    r->in_frame = true;
    return 0;
}

static size_t header_size(const uint8_t *hdr, size_t have)
{
    if (have < 2)
        return 2;
    uint8_t l7 = hdr[1] & 0x7F;
    return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
}

/* A control frame is complete: turn it into its event. */
static int end_control(ws_reader *r, ws_event *ev)
{
    r->in_frame = false;
    ev->data = r->ctl;
    ev->len = r->ctl_len;
    if (r->opcode == WS_OP_PING) {
        ev->type = WS_EV_PING;
    } else if (r->opcode == WS_OP_PONG) {
        ev->type = WS_EV_PONG;
    } else {
        ev->type = WS_EV_CLOSE;
        ev->code = 1005;
        if (r->ctl_len == 1)
            return -WS_CLOSE_PROTOCOL;
        if (r->ctl_len >= 2) {
            ev->code = (uint16_t)(r->ctl[0] << 8 | r->ctl[1]);
            if (!close_code_valid(ev->code))
                return -WS_CLOSE_PROTOCOL;
        }
    }
    return 0;
}

int ws_read(ws_reader *r, uint8_t *buf, size_t len, ws_event *ev)
{
    *ev = (ws_event){0};
    size_t off = 0;
    if (!r->in_frame) {
        size_t need = header_size(r->hdr, r->hdr_len);
        while (off < len && r->hdr_len < need) {
            r->hdr[r->hdr_len++] = buf[off++];
            need = header_size(r->hdr, r->hdr_len);
        }
        if (r->hdr_len < need)
            return (int)off;
        r->hdr_len = 0;
        int rc = start_frame(r);
        if (rc < 0)
            return rc;
        if (r->left == 0) {
            if (r->opcode >= WS_OP_CLOSE) {
                rc = end_control(r, ev);
                return rc < 0 ? rc : (int)off;
            }
            r->in_frame = false; /* an empty data frame: nothing to hand */
            return (int)off;
        }
        if (off == len)
            return (int)off;
    }
    size_t n = len - off;
    if ((uint64_t)n > r->left)
        n = (size_t)r->left;
    /* Cap so the consumed count fits the int return. */
    if (n > (1u << 30))
        n = 1u << 30;
    uint8_t *p = buf + off;
    for (size_t i = 0; i < n; i++)
        p[i] ^= r->mask[(r->done + i) & 3];
    r->done += n;
    r->left -= n;
    off += n;
    if (r->opcode >= WS_OP_CLOSE) {
        memcpy(r->ctl + r->ctl_len, p, n);
        r->ctl_len = (uint8_t)(r->ctl_len + n);
        if (r->left == 0) {
            int rc = end_control(r, ev);
            if (rc < 0)
                return rc;
        }
        return (int)off;
    }
    ev->type = WS_EV_DATA;
    ev->data = p;
    ev->len = n;
    if (r->left == 0)
        r->in_frame = false;
    return (int)off;
}

size_t ws_frame_header(uint8_t *out, uint8_t opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
