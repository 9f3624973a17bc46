/* The push webhook client (broker/push/webhook.c) against an HTTP server
 * on the same loop: batches as JSON arrays, 2xx / 4xx / 5xx, connection
 * refused, retries, the bounded queue, closing with POSTs in flight. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <uv.h>

#include "errors.h"
#include "webhook.h"

#define MAX_REQ 32

/* The test's HTTP server: answers each request with the next status of
 * `plan` (then 200) and keeps every body. */
typedef struct hserver {
    uv_tcp_t tcp;
    int port;
    int plan[8];
    int nplan, next;
    char *bodies[MAX_REQ];
    int nbodies, requests;
    char auth[128];
} hserver;

typedef struct hconn {
    uv_tcp_t tcp;
    hserver *hs;
    char buf[65536];
    size_t len;
} hconn;

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    hconn *c = h->data;
    b->base = c->buf + c->len;
    b->len = sizeof(c->buf) - c->len;
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void reply(hconn *c, int status)
{
    uv_write_t *w = malloc(sizeof(*w) + 96);
    char *text = (char *)(w + 1);
    int n = snprintf(text, 96, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
                     status);
    uv_buf_t b = uv_buf_init(text, (unsigned)n);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

/* Whole requests out of the buffer, one reply each. */
static void serve(hconn *c)
{
    hserver *hs = c->hs;
    for (;;) {
        c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            return;
        size_t head = (size_t)(end - c->buf) + 4;
        size_t clen = 0;
        for (char *l = c->buf; l < end; l = strstr(l, "\r\n") + 2) {
            if (strncasecmp(l, "Content-Length:", 15) == 0)
                clen = strtoul(l + 15, NULL, 10);
            if (strncasecmp(l, "Authorization:", 14) == 0)
                snprintf(hs->auth, sizeof hs->auth, "%.*s",
                         (int)(strstr(l, "\r\n") - l - 15), l + 15);
        }
        if (c->len < head + clen)
            return;
        hs->requests++;
        int status = hs->next < hs->nplan ? hs->plan[hs->next++] : 200;
        if (status == 200 && hs->nbodies < MAX_REQ) {
            char *b = malloc(clen + 1);
            memcpy(b, c->buf + head, clen);
            b[clen] = '\0';
            hs->bodies[hs->nbodies++] = b;
        }
        reply(c, status);
        memmove(c->buf, c->buf + head + clen, c->len - head - clen);
        c->len -= head + clen;
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    hconn *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    c->len += (size_t)n;
    serve(c);
}

static void on_conn(uv_stream_t *srv, int status)
{
    assert_int_equal(status, 0);
    hconn *c = calloc(1, sizeof(*c));
    c->hs = srv->data;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void hserver_start(uv_loop_t *loop, hserver *hs)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &hs->tcp);
    hs->tcp.data = hs;
    assert_int_equal(uv_tcp_bind(&hs->tcp, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&hs->tcp, 16, on_conn), 0);
    int len = sizeof(a);
    uv_tcp_getsockname(&hs->tcp, (struct sockaddr *)&a, &len);
    hs->port = ntohs(a.sin_port);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TCP && h->data && h->data != arg ? on_closed
                                                                   : NULL);
}

static void hserver_free(hserver *hs)
{
    for (int i = 0; i < hs->nbodies; i++)
        free(hs->bodies[i]);
}

/* Run the loop until done(arg) or 5 s. */
static void run_until(uv_loop_t *loop, bool (*done)(void *), void *arg)
{
    uint64_t deadline = uv_now(loop) + 5000;
    while (!done(arg) && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    assert_true(done(arg));
}

typedef struct fixture {
    uv_loop_t loop;
    hserver hs;
    webhook *wh;
    char url[64];
} fixture;

static void setup_fx(fixture *fx, const int *plan, int nplan)
{
    memset(fx, 0, sizeof(*fx));
    uv_loop_init(&fx->loop);
    for (int i = 0; i < nplan; i++)
        fx->hs.plan[i] = plan[i];
    fx->hs.nplan = nplan;
    hserver_start(&fx->loop, &fx->hs);
    snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%d/hook", fx->hs.port);
}

static void teardown_fx(fixture *fx)
{
    webhook_close(fx->wh);
    /* The server's connections free their state; the listener is in fx. */
    fx->hs.tcp.data = NULL;
    uv_walk(&fx->loop, close_any, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    webhook_free(fx->wh);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    hserver_free(&fx->hs);
}

static webhook_options opts(const char *url)
{
    return (webhook_options){.url = url,
                             .batch_size = 3,
                             .batch_interval_ms = 50,
                             .timeout_ms = 2000,
                             .retries = 2,
                             .retry_backoff_ms = 10,
                             .queue_limit = 100,
                             .concurrency = 1};
}

static void post(webhook *wh, int i)
{
    char json[16];
    int n = snprintf(json, sizeof json, "%d", i);
    assert_int_equal(webhook_post(wh, json, (size_t)n), 0);
}

static const webhook_stats *st(fixture *fx)
{
    return webhook_get_stats(fx->wh);
}

static bool posted_7(void *arg)
{
    return st(arg)->posted == 7;
}

static void test_batches(void **state)
{
    (void)state;
    fixture fx;
    setup_fx(&fx, NULL, 0);
    webhook_options o = opts(fx.url);
    o.bearer = "tok";
    assert_int_equal(webhook_new(&fx.loop, &o, &fx.wh), 0);
    for (int i = 1; i <= 7; i++)
        post(fx.wh, i);
    run_until(&fx.loop, posted_7, &fx);
    /* Full batches go at once, one at a time; the seventh waits for the
     * interval. */
    assert_int_equal(fx.hs.nbodies, 3);
    assert_string_equal(fx.hs.bodies[0], "[1,2,3]");
    assert_string_equal(fx.hs.bodies[1], "[4,5,6]");
    assert_string_equal(fx.hs.bodies[2], "[7]");
    assert_string_equal(fx.hs.auth, "Bearer tok");
    assert_int_equal(st(&fx)->failed, 0);
    assert_int_equal(st(&fx)->queued, 0);
    assert_int_equal(st(&fx)->in_flight, 0);
    teardown_fx(&fx);
}

static bool posted_1(void *arg)
{
    return st(arg)->posted == 1;
}

static void test_5xx_retried(void **state)
{
    (void)state;
    fixture fx;
    const int plan[] = {500, 503};
    setup_fx(&fx, plan, 2);
    webhook_options o = opts(fx.url);
    o.batch_interval_ms = 0;
    assert_int_equal(webhook_new(&fx.loop, &o, &fx.wh), 0);
    post(fx.wh, 1);
    run_until(&fx.loop, posted_1, &fx);
    assert_int_equal(fx.hs.requests, 3);
    assert_int_equal(st(&fx)->failed, 2);
    assert_int_equal(st(&fx)->retried, 2);
    assert_string_equal(fx.hs.bodies[0], "[1]");
    teardown_fx(&fx);
}

static bool rejected_1(void *arg)
{
    return st(arg)->dropped_4xx == 1;
}

static void test_4xx_dropped(void **state)
{
    (void)state;
    fixture fx;
    const int plan[] = {400};
    setup_fx(&fx, plan, 1);
    webhook_options o = opts(fx.url);
    o.batch_interval_ms = 0;
    assert_int_equal(webhook_new(&fx.loop, &o, &fx.wh), 0);
    post(fx.wh, 1);
    run_until(&fx.loop, rejected_1, &fx);
    assert_int_equal(fx.hs.requests, 1);
    assert_int_equal(st(&fx)->failed, 1);
    assert_int_equal(st(&fx)->retried, 0);
    assert_int_equal(st(&fx)->in_flight, 0);
    /* The next event goes through: a rejection is of one batch. */
    post(fx.wh, 2);
    run_until(&fx.loop, posted_1, &fx);
    teardown_fx(&fx);
}

static bool gave_up_1(void *arg)
{
    return st(arg)->dropped_retries == 1;
}

static void test_refused_then_dropped(void **state)
{
    (void)state;
    fixture fx;
    setup_fx(&fx, NULL, 0);
    /* A port nobody listens on: the server's, once it is closed. */
    uv_close((uv_handle_t *)&fx.hs.tcp, NULL);
    uv_run(&fx.loop, UV_RUN_NOWAIT);
    webhook_options o = opts(fx.url);
    o.batch_interval_ms = 0;
    assert_int_equal(webhook_new(&fx.loop, &o, &fx.wh), 0);
    post(fx.wh, 1);
    run_until(&fx.loop, gave_up_1, &fx);
    assert_int_equal(st(&fx)->failed, 3);
    assert_int_equal(st(&fx)->retried, 2);
    assert_int_equal(st(&fx)->posted, 0);
    teardown_fx(&fx);
}

static void test_queue_limit_and_close(void **state)
{
    (void)state;
    fixture fx;
    const int plan[] = {500};
    setup_fx(&fx, plan, 1);
    webhook_options o = opts(fx.url);
    o.batch_size = 1;
    o.batch_interval_ms = 0;
    o.queue_limit = 2;
    o.retry_backoff_ms = 60000;
    assert_int_equal(webhook_new(&fx.loop, &o, &fx.wh), 0);
    post(fx.wh, 1); /* in flight */
    post(fx.wh, 2);
    post(fx.wh, 3);
    assert_int_equal(webhook_post(fx.wh, "4", 1), IMQTT_EBUSY);
    assert_int_equal(webhook_post(fx.wh, "5", 1), IMQTT_EBUSY);
    assert_int_equal(st(&fx)->dropped_full, 2);
    assert_int_equal(st(&fx)->queued, 2);
    assert_int_equal(st(&fx)->in_flight, 1);
    /* The 500 comes back; the retry waits a minute: close meanwhile. */
    while (st(&fx)->failed == 0)
        uv_run(&fx.loop, UV_RUN_ONCE);
    teardown_fx(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_5xx_retried),
        cmocka_unit_test(test_4xx_dropped),
        cmocka_unit_test(test_refused_then_dropped),
        cmocka_unit_test(test_queue_limit_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
