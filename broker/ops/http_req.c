/* http_parser glue for one request (see http_req.h). The parser calls
 * back with slices of the bytes fed; they are copied into the request
 * under its bounds, and any bound passed stops the parser with the HTTP
 * status that says which. */
#include "http_req.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Stop the parser with an answer: -1 from a callback makes
 * http_parser_execute return early with HPE_CB_* (on_headers_complete
 * reads 1 and 2 as "no body" and "upgrade", so not those). */
static int fail(http_req *r, int status)
{
    if (!r->fail_status)
        r->fail_status = status;
    return -1;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_req *r = p->data;
    if (r->url_len + len > HTTP_URL_MAX)
        return fail(r, 414);
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_req *r = p->data;
    if (r->value_seen) { /* a new header starts */
        r->field_len = 0;
        r->field_long = false;
        r->value_seen = false;
        r->keep = 0;
    }
    if (r->field_len + len >= sizeof(r->field)) {
        r->field_long = true; /* not one we keep */
        return 0;
    }
    memcpy(r->field + r->field_len, at, len);
    r->field_len += len;
    r->field[r->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_req *r = p->data;
    if (!r->value_seen) {
        r->value_seen = true;
        r->keep = 0;
        if (!r->field_long && strcasecmp(r->field, "authorization") == 0) {
            if (r->has_auth)
                return fail(r, 400); /* two credentials: which one? */
            r->has_auth = true;
            r->keep = 1;
        } else if (!r->field_long &&
                   strcasecmp(r->field, "content-type") == 0) {
            r->ctype_len = 0;
            r->keep = 2;
        } else if (!r->field_long && strcasecmp(r->field, "expect") == 0) {
            r->keep = 3;
        }
    }
    if (r->keep == 1) {
        if (r->auth_len + len > HTTP_AUTH_MAX)
            return fail(r, 431);
        memcpy(r->auth + r->auth_len, at, len);
        r->auth_len += len;
        r->auth[r->auth_len] = '\0';
    } else if (r->keep == 3) {
        /* One value, "100-continue" (RFC 9110 10.1.1), seldom split. */
        r->expect_continue =
            len == 12 && strncasecmp(at, "100-continue", 12) == 0;
    } else if (r->keep == 2) {
        if (r->ctype_len + len > HTTP_CTYPE_MAX)
            return fail(r, 431);
        memcpy(r->ctype + r->ctype_len, at, len);
        r->ctype_len += len;
        r->ctype[r->ctype_len] = '\0';
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_req *r = p->data;
    r->headers_done = true;
    if (p->http_major != 1)
        return fail(r, 505);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->body_max)
        return fail(r, 413); /* refused before a byte of it is read */
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (r->url_len == 0 ||
        http_parser_parse_url(r->url, r->url_len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return fail(r, 400);
    r->path = r->url + u.field_data[UF_PATH].off;
    r->path_len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        r->query = r->url + u.field_data[UF_QUERY].off;
        r->query_len = u.field_data[UF_QUERY].len;
    } else {
        r->query = r->url + r->url_len;
        r->query_len = 0;
    }
    r->method = (enum http_method)p->method;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_req *r = p->data;
    if (len > r->body_max - r->body_len)
        return fail(r, 413); /* chunked past the bound */
    if (r->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        uint8_t *b = realloc(r->body, cap);
        if (!b)
            return fail(r, 413); /* nothing better to say */
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_req *r = p->data;
    r->done = true;
    http_parser_pause(p, 1); /* one request per connection */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_req_init(http_req *r, size_t body_max)
{
    memset(r, 0, sizeof(*r));
    r->path = r->query = r->url;
    r->body_max = body_max;
    http_parser_init(&r->p, HTTP_REQUEST);
    r->p.data = r;
}

/* A refused head: look for its end in the raw bytes. */
static int skip_bad_head(http_req *r, const char *data, size_t len)
{
    static const char end[] = "\r\n\r\n";
    for (size_t i = 0; i < len; i++) {
        r->crlf = data[i] == end[r->crlf] ? r->crlf + 1
                  : data[i] == '\r'       ? 1
                                          : 0;
        if (r->crlf == 4)
            return fail(r, 400), HTTP_REQ_FAIL;
        if (++r->head_bytes >= HTTP_BAD_HEAD_MAX)
            return fail(r, 431), HTTP_REQ_FAIL;
    }
    return HTTP_REQ_MORE;
}

int http_req_feed(http_req *r, const char *data, size_t len)
{
    if (r->done)
        return HTTP_REQ_DONE;
    if (r->fail_status)
        return HTTP_REQ_FAIL;
    if (r->bad)
        return skip_bad_head(r, data, len);
    size_t n = http_parser_execute(&r->p, &settings, data, len);
    if (r->done)
        return HTTP_REQ_DONE;
    if (!r->headers_done && !r->fail_status) {
        r->head_bytes += n;
        if (r->head_bytes > HTTP_HEAD_MAX)
            fail(r, 431);
    }
    if (r->fail_status)
        return HTTP_REQ_FAIL;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
    if (e == HPE_HEADER_OVERFLOW) {
        fail(r, 431);
    } else if (e != HPE_OK || n != len || r->p.upgrade) {
        if (r->headers_done)
            return fail(r, 400), HTTP_REQ_FAIL;
        /* Count the whole head from its start, as before the parser:
         * the earlier chunks, then this one byte by byte. */
        r->bad = true;
        r->head_bytes -= n;
        r->crlf = 0;
        return skip_bad_head(r, data, len);
    }
    return r->fail_status ? HTTP_REQ_FAIL : HTTP_REQ_MORE;
}

void http_req_free(http_req *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
}

const char *http_req_method_name(const http_req *r)
{
    return http_method_str(r->method);
}
