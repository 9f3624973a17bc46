/* One HTTP/1.1 request read from a byte stream, with Node's http_parser
 * (libhttp-parser-dev 2.9.4) doing the protocol: request line, headers,
 * Content-Length and chunked bodies. This file keeps what the operations
 * listener needs of a request — method, path, query, the Authorization
 * and Content-Type headers, the body — under fixed bounds. Pure: no I/O,
 * no broker state, fuzzed by tests/fuzz/fuzz_api.c.
 */
#ifndef IMQTT_HTTP_REQ_H
#define IMQTT_HTTP_REQ_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The request line and headers together are at most this long (431). */
#define HTTP_HEAD_MAX 16384
/* A head the parser refused is answered when it ends (an empty line:
 * 400) or past this many bytes (431), as the listener always did. */
#define HTTP_BAD_HEAD_MAX 4096
/* The URL is at most this long (414). */
#define HTTP_URL_MAX 2048
/* Authorization and Content-Type values kept (longer: 431). */
#define HTTP_AUTH_MAX  8192
#define HTTP_CTYPE_MAX 128

enum http_req_state {
    HTTP_REQ_MORE = 0, /* feed more bytes */
    HTTP_REQ_DONE = 1, /* a whole request: answer it */
    HTTP_REQ_FAIL = 2, /* answer with r->fail_status and close */
};

typedef struct http_req {
    http_parser p;
    size_t body_max;   /* bodies longer than this are refused (413) */
    size_t head_bytes; /* bytes fed before the headers ended */
    bool headers_done, done;
    bool bad;        /* the parser refused the head: wait for its end */
    uint32_t crlf;   /* bytes of "\r\n\r\n" seen last (bad heads) */
    int fail_status; /* 400, 413, 414, 431, 505 when HTTP_REQ_FAIL */

    enum http_method method;
    char url[HTTP_URL_MAX + 1]; /* as sent, NUL-ended */
    size_t url_len;
    /* Views into url (not NUL-ended), valid while the request lives. */
    const char *path, *query;
    size_t path_len, query_len;

    char auth[HTTP_AUTH_MAX + 1]; /* Authorization value, NUL-ended */
    size_t auth_len;
    bool has_auth;
    char ctype[HTTP_CTYPE_MAX + 1]; /* Content-Type value, NUL-ended */
    size_t ctype_len;
    bool expect_continue; /* "Expect: 100-continue": the client waits for
                             an interim answer before sending the body */

    /* The header being read: which one we keep, if any. */
    char field[32];
    size_t field_len;
    bool field_long;
    int keep; /* 0 none, 1 auth, 2 ctype, 3 expect */
    bool value_seen;

    uint8_t *body; /* owned; NUL-ended (not counted in body_len) */
    size_t body_len, body_cap;
} http_req;

/* Start reading a request whose body may hold up to body_max bytes. */
void http_req_init(http_req *r, size_t body_max);

/* Feed len bytes read from the peer. Returns HTTP_REQ_MORE, HTTP_REQ_DONE
 * (bytes after the request are ignored: one request per connection) or
 * HTTP_REQ_FAIL (r->fail_status says which answer). */
int http_req_feed(http_req *r, const char *data, size_t len);

/* Free what r owns (the body). */
void http_req_free(http_req *r);

/* The method's name ("GET"). */
const char *http_req_method_name(const http_req *r);

#endif
