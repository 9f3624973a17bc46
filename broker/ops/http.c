/* The operations HTTP listener (see http.h): connections on the main
 * loop, requests read with http_parser (http_req.h), /metrics and
 * /healthz answered here, /api/v1/ handed to the backend API (api.h). */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_rate.h"
#include "conn_log.h"
#include "errors.h"
#include "http_req.h"
#include "log.h"
#include "loop_lock.h"
#include "metrics_render.h"

#define HTTP_TIMEOUT_MS 5000
#define HTTP_READ_CHUNK 4096
/* Open requests at most: each holds ~15 KiB (the request's bounded
 * buffers); more are accepted and closed at once. */
#define HTTP_CONNS_MAX 1024

struct http_listener {
    uv_tcp_t tcp;
    server *srv;
    struct http_conn *conns; /* open requests, closed on stop */
    uint32_t nconns;         /* in conns */
    api_rates rates;         /* the uplink's per-device rate limit */
    int handles;             /* freed when the last close callback ran */
    bool stopping;
};

typedef struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    http_listener *hl; /* borrowed: freed only after its last request */
    struct http_conn *next, *prev; /* hl->conns */
    http_req req;                  /* owns the request's body */
    api_call call;                 /* an API request's answer (owns it) */
    char rbuf[HTTP_READ_CHUNK];    /* lent to one read at a time */
    char *resp;                    /* owned until the write callback */
    int handles;
    bool answered;
    bool continued; /* "100 Continue" sent */
    bool waiting;   /* an API answer waits for a store commit: the
                       memory stays until its callback (on_api_ready) */
    bool closed;    /* both handles closed */
} http_conn;

static void maybe_free_listener(http_listener *hl)
{
    if (hl->stopping && hl->handles == 0 && !hl->conns) {
        api_rates_free(&hl->rates);
        free(hl);
    }
}

static void conn_free(http_conn *hc)
{
    http_listener *hl = hc->hl;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        hl->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    hl->nconns--;
    http_req_free(&hc->req);
    api_call_free(&hc->call);
    free(hc->resp);
    free(hc);
    maybe_free_listener(hl);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn *hc = h->data;
    if (--hc->handles > 0)
        return;
    hc->closed = true;
    if (!hc->waiting)
        conn_free(hc);
}

static void hc_close(http_conn *hc)
{
    if (uv_is_closing((uv_handle_t *)&hc->tcp))
        return;
    uv_close((uv_handle_t *)&hc->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&hc->timer, on_conn_closed);
}

static void on_written_locked(uv_write_t *req, int status)
{
    (void)status;
    hc_close(req->data);
}

/* A libuv callback: broker state is touched under the loop lock
 * (loop_lock.h). */
static void on_written(uv_write_t *req, int status)
{
    loop_lock();
    on_written_locked(req, status);
    loop_unlock();
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

/* Write the answer and close once it is written. `extra` is more header
 * lines, each ending in CRLF (may be ""). */
static void respond_ex(http_conn *hc, int status, const char *type,
                       const char *extra, const char *body, size_t blen)
{
    hc->answered = true;
    if (uv_is_closing((uv_handle_t *)&hc->tcp))
        return;
    uv_read_stop((uv_stream_t *)&hc->tcp);
    size_t cap = blen + 512 + strlen(extra);
    hc->resp = malloc(cap);
    if (!hc->resp) {
        hc_close(hc);
        return;
    }
    int n = snprintf(hc->resp, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                     status, reason_of(status), type, blen, extra);
    memcpy(hc->resp + n, body, blen);
    uv_buf_t b = uv_buf_init(hc->resp, (unsigned)((size_t)n + blen));
    hc->wreq.data = hc;
    if (uv_write(&hc->wreq, (uv_stream_t *)&hc->tcp, &b, 1, on_written) < 0)
        hc_close(hc);
}

static void respond(http_conn *hc, int status, const char *type,
                    const char *body, size_t blen)
{
    respond_ex(hc, status, type, "", body, blen);
}

static void send_api_answer(http_conn *hc)
{
    const api_answer *a = &hc->call.ans;
    server *srv = hc->hl->srv;
    metrics_count(srv, !a->body || a->status >= 500 ? METRIC_API_FAILED
                       : a->status >= 400           ? METRIC_API_REFUSED
                                                    : METRIC_API_OK);
    char extra[160] = "";
    if (a->status == 405 && a->allow)
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", a->allow);
    else if (a->status == 401)
        snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer\r\n");
    if (!a->body) {
        respond(hc, 500, "application/json", "", 0);
        return;
    }
    respond_ex(hc, a->status, "application/json", extra, a->body, a->len);
}

/* The API answer waited for its commit (api.h). */
static void on_api_ready(api_call *call)
{
    http_conn *hc = call->owner;
    hc->waiting = false;
    if (hc->closed) {
        conn_free(hc); /* the peer or a stop went first */
        return;
    }
    send_api_answer(hc);
}

static void api_request(http_conn *hc)
{
    hc->call.srv = hc->hl->srv;
    hc->call.rates = &hc->hl->rates;
    hc->call.ready = on_api_ready;
    hc->call.owner = hc;
    uv_read_stop((uv_stream_t *)&hc->tcp);
    if (api_handle(&hc->call, &hc->req)) {
        send_api_answer(hc);
        return;
    }
    hc->waiting = true;
    uv_timer_stop(&hc->timer); /* the answer comes with the commit */
}

static bool path_is(const http_req *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static void route(http_conn *hc)
{
    const http_req *r = &hc->req;
    server *srv = hc->hl->srv;
    if (srv->cfg.api && r->path_len >= 5 && memcmp(r->path, "/api/", 5) == 0) {
        api_request(hc);
        return;
    }
    bool get = r->method == HTTP_GET, head = r->method == HTTP_HEAD;
    bool health = path_is(r, "/healthz"), metrics = path_is(r, "/metrics");
    if (!health && !metrics) {
        respond(hc, 404, "text/plain", "not found\n", 10);
    } else if (!get && !head) {
        respond(hc, 405, "text/plain", "", 0);
    } else if (health) {
        /* Serving this request means the loop turns: alive. */
        respond(hc, 200, "text/plain", "ok\n", head ? 0 : 3);
    } else {
        size_t len = 0;
        char *body = metrics_render(srv, &len);
        if (!body) {
            respond(hc, 500, "text/plain", "", 0);
            return;
        }
        respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", body,
                head ? 0 : len);
        free(body);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    http_conn *hc = h->data;
    buf->base = hc->rbuf;
    buf->len = sizeof(hc->rbuf);
}

static void fail_request(http_conn *hc, int status)
{
    const char *api = "/api/";
    bool is_api = hc->hl->srv->cfg.api && hc->req.url_len >= 5 &&
                  memcmp(hc->req.url, api, 5) == 0;
    if (!is_api) {
        if (status == 400)
            respond(hc, 400, "text/plain", "bad request\n", 12);
        else
            respond(hc, status, "text/plain", "", 0);
        return;
    }
    static const struct {
        int status;
        const char *code, *message;
    } errs[] = {
        {400, "bad_request", "malformed HTTP request"},
        {413, "too_large", "the body is larger than http.api.max_body"},
        {414, "uri_too_long", "the URL is too long"},
        {431, "headers_too_large", "the request head is too large"},
        {505, "http_version", "HTTP/1.x only"},
    };
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        if (errs[i].status != status)
            continue;
        api_error(&hc->call, status, errs[i].code, errs[i].message);
        send_api_answer(hc);
        return;
    }
    respond(hc, status, "text/plain", "", 0);
}

/* "Expect: 100-continue" (curl sends it with bodies over 1 KiB): the
 * interim answer, so the client sends the body now rather than after its
 * own timeout. 25 bytes on an idle socket: written at once, or the
 * connection is given up. */
static void send_continue(http_conn *hc)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    hc->continued = true;
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    if (uv_try_write((uv_stream_t *)&hc->tcp, &b, 1) != (int)b.len)
        hc_close(hc);
}

static void on_read_locked(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    http_conn *hc = s->data;
    if (n < 0) {
        hc_close(hc);
        return;
    }
    if (hc->answered || hc->waiting)
        return;
    int st = http_req_feed(&hc->req, buf->base, (size_t)n);
    if (st == HTTP_REQ_DONE)
        route(hc);
    else if (st == HTTP_REQ_FAIL)
        fail_request(hc, hc->req.fail_status);
    else if (hc->req.headers_done && hc->req.expect_continue && !hc->continued)
        send_continue(hc);
}

/* A libuv callback: broker state is touched under the loop lock
 * (loop_lock.h). */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    loop_lock();
    on_read_locked(s, n, buf);
    loop_unlock();
}

/* The client's address, for the uplink's failure limit. */
static void peer_of(http_conn *hc)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    conn_addr *a = &hc->call.peer;
    if (uv_tcp_getpeername(&hc->tcp, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        memcpy(a->ip, &s6->sin6_addr, 16);
        a->port = ntohs(s6->sin6_port);
        a->family = 6;
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        memcpy(a->ip, &s4->sin_addr, 4);
        a->port = ntohs(s4->sin_port);
        a->family = 4;
    }
}

static void on_timeout_locked(uv_timer_t *t)
{
    hc_close(t->data);
}

/* A libuv callback: broker state is touched under the loop lock
 * (loop_lock.h). */
static void on_timeout(uv_timer_t *t)
{
    loop_lock();
    on_timeout_locked(t);
    loop_unlock();
}

static void on_connection_locked(uv_stream_t *s, int status)
{
    http_listener *hl = s->data;
    if (status < 0 || hl->stopping)
        return;
    http_conn *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return;
    hc->hl = hl;
    http_req_init(&hc->req, hl->srv->cfg.api_max_body);
    uv_tcp_init(hl->srv->loop, &hc->tcp);
    uv_timer_init(hl->srv->loop, &hc->timer);
    hc->tcp.data = hc->timer.data = hc;
    hc->handles = 2;
    hc->next = hl->conns;
    if (hl->conns)
        hl->conns->prev = hc;
    hl->conns = hc;
    hl->nconns++;
    if (uv_accept(s, (uv_stream_t *)&hc->tcp) < 0 ||
        hl->nconns > HTTP_CONNS_MAX) {
        hc_close(hc);
        return;
    }
    peer_of(hc);
    uv_timer_start(&hc->timer, on_timeout, HTTP_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read);
}

/* A libuv callback: broker state is touched under the loop lock
 * (loop_lock.h). */
static void on_connection(uv_stream_t *s, int status)
{
    loop_lock();
    on_connection_locked(s, status);
    loop_unlock();
}

static void on_listener_closed(uv_handle_t *h)
{
    http_listener *hl = h->data;
    hl->handles--;
    maybe_free_listener(hl);
}

int http_start(server *srv, http_listener **out)
{
    *out = NULL;
    if (srv->cfg.http_port == 0)
        return 0;
    http_listener *hl = calloc(1, sizeof(*hl));
    if (!hl)
        return IMQTT_ENOMEM;
    hl->srv = srv;
    const char *bind = srv->cfg.http_bind ? srv->cfg.http_bind : "127.0.0.1";
    struct sockaddr_storage addr;
    int rc = strchr(bind, ':') ? uv_ip6_addr(bind, srv->cfg.http_port,
                                             (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(bind, srv->cfg.http_port,
                                             (struct sockaddr_in *)&addr);
    if (rc == 0) {
        uv_tcp_init(srv->loop, &hl->tcp);
        hl->tcp.data = hl;
        hl->handles = 1;
        rc = uv_tcp_bind(&hl->tcp, (struct sockaddr *)&addr, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&hl->tcp, 64, on_connection);
    }
    if (rc < 0) {
        log_error("http listener %s: %s",
                  log_hostport(bind, srv->cfg.http_port), uv_strerror(rc));
        if (hl->handles) {
            http_stop(hl);
        } else {
            free(hl);
        }
        return rc;
    }
    log_info("metrics on http://%s/metrics",
             log_hostport(bind, srv->cfg.http_port));
    if (srv->cfg.api)
        log_info("backend API on http://%s/api/v1/ (%u token%s)",
                 log_hostport(bind, srv->cfg.http_port),
                 srv->cfg.api_token_count,
                 srv->cfg.api_token_count == 1 ? "" : "s");
    *out = hl;
    return 0;
}

void http_stop(http_listener *hl)
{
    if (!hl || hl->stopping)
        return;
    hl->stopping = true;
    for (http_conn *hc = hl->conns; hc; hc = hc->next)
        hc_close(hc);
    uv_close((uv_handle_t *)&hl->tcp, on_listener_closed);
}
