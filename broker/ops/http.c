/* /metrics and /healthz on a small libuv HTTP listener (see http.h). */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_log.h"
#include "errors.h"
#include "log.h"
#include "loop_lock.h"
#include "metrics_render.h"

#define HTTP_REQ_MAX    4096
#define HTTP_TIMEOUT_MS 5000

struct http_listener {
    uv_tcp_t tcp;
    server *srv;
    struct http_conn *conns; /* open requests, closed on stop */
    int handles;             /* freed when the last close callback ran */
    bool stopping;
};

typedef struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    http_listener *hl;
    struct http_conn *next, *prev;
    char req[HTTP_REQ_MAX];
    size_t len;
    char *resp; /* owned until the write callback */
    int handles;
    bool answered;
} http_conn;

static void maybe_free_listener(http_listener *hl)
{
    if (hl->stopping && hl->handles == 0 && !hl->conns)
        free(hl);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn *hc = h->data;
    if (--hc->handles > 0)
        return;
    http_listener *hl = hc->hl;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        hl->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    free(hc->resp);
    free(hc);
    maybe_free_listener(hl);
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

static void on_written(uv_write_t *req, int status)
{
    loop_lock();
    on_written_locked(req, status);
    loop_unlock();
}

static void respond(http_conn *hc, int status, const char *reason,
                    const char *type, const char *body, size_t blen)
{
    hc->answered = true;
    uv_read_stop((uv_stream_t *)&hc->tcp);
    size_t cap = blen + 256;
    hc->resp = malloc(cap);
    if (!hc->resp) {
        hc_close(hc);
        return;
    }
    int n = snprintf(hc->resp, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, type, blen);
    memcpy(hc->resp + n, body, blen);
    uv_buf_t b = uv_buf_init(hc->resp, (unsigned)((size_t)n + blen));
    hc->wreq.data = hc;
    if (uv_write(&hc->wreq, (uv_stream_t *)&hc->tcp, &b, 1, on_written) < 0)
        hc_close(hc);
}

static void route(http_conn *hc)
{
    char *sp1 = memchr(hc->req, ' ', hc->len);
    char *sp2 =
        sp1 ? memchr(sp1 + 1, ' ', hc->len - (size_t)(sp1 + 1 - hc->req))
            : NULL;
    if (!sp1 || !sp2) {
        respond(hc, 400, "Bad Request", "text/plain", "bad request\n", 12);
        return;
    }
    size_t ml = (size_t)(sp1 - hc->req), pl = (size_t)(sp2 - sp1 - 1);
    bool get = ml == 3 && memcmp(hc->req, "GET", 3) == 0;
    bool head = ml == 4 && memcmp(hc->req, "HEAD", 4) == 0;
    const char *path = sp1 + 1;
    char *q = memchr(path, '?', pl);
    if (q)
        pl = (size_t)(q - path);
    if (!get && !head) {
        respond(hc, 405, "Method Not Allowed", "text/plain", "", 0);
    } else if (pl == 8 && memcmp(path, "/healthz", 8) == 0) {
        /* Serving this request means the loop turns: alive. */
        respond(hc, 200, "OK", "text/plain", "ok\n", head ? 0 : 3);
    } else if (pl == 8 && memcmp(path, "/metrics", 8) == 0) {
        size_t len = 0;
        char *body = metrics_render(hc->hl->srv, &len);
        if (!body) {
            respond(hc, 500, "Internal Server Error", "text/plain", "", 0);
            return;
        }
        respond(hc, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body,
                head ? 0 : len);
        free(body);
    } else {
        respond(hc, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    http_conn *hc = h->data;
    buf->base = hc->req + hc->len;
    buf->len = HTTP_REQ_MAX - hc->len;
}

static void on_read_locked(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    http_conn *hc = s->data;
    if (n < 0) {
        hc_close(hc);
        return;
    }
    hc->len += (size_t)n;
    for (size_t i = 3; i < hc->len; i++) {
        if (memcmp(hc->req + i - 3, "\r\n\r\n", 4) == 0) {
            route(hc);
            return;
        }
    }
    if (hc->len == HTTP_REQ_MAX)
        respond(hc, 431, "Request Header Fields Too Large", "text/plain", "",
                0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    loop_lock();
    on_read_locked(s, n, buf);
    loop_unlock();
}

static void on_timeout_locked(uv_timer_t *t)
{
    hc_close(t->data);
}

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
    uv_tcp_init(hl->srv->loop, &hc->tcp);
    uv_timer_init(hl->srv->loop, &hc->timer);
    hc->tcp.data = hc->timer.data = hc;
    hc->handles = 2;
    hc->next = hl->conns;
    if (hl->conns)
        hl->conns->prev = hc;
    hl->conns = hc;
    if (uv_accept(s, (uv_stream_t *)&hc->tcp) < 0) {
        hc_close(hc);
        return;
    }
    uv_timer_start(&hc->timer, on_timeout, HTTP_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&hc->tcp, on_alloc, on_read);
}

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
