#include "webhook.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

#define BACKOFF_MAX_MS 30000

/* One queued event: the JSON follows the header (one allocation). */
typedef struct wh_event {
    struct wh_event *next;
    uint32_t len;
    char json[];
} wh_event;

/* One POST slot (there are o.concurrency): the batch it carries, from the
 * first attempt to the last. */
typedef struct wh_batch {
    webhook *wh;
    CURL *easy; /* owned; NULL between attempts */
    char *body; /* owned: "[e1,e2,...]"; NULL: the slot is free */
    size_t len;
    uint32_t count;   /* events in body */
    uint32_t attempt; /* 0: the first */
    uv_timer_t retry; /* the backoff before the next attempt */
} wh_batch;

/* A socket libcurl asked us to watch; freed in its close callback (or by
 * webhook_free when the loop closed it with uv_walk). */
typedef struct wh_sock {
    uv_poll_t poll;
    webhook *wh;
    curl_socket_t fd;
    struct wh_sock *prev, *next;
} wh_sock;

struct webhook {
    uv_loop_t *loop;            /* borrowed */
    CURLM *multi;               /* owned; NULL once closed */
    struct curl_slist *headers; /* owned */
    char *url;                  /* owned */
    webhook_options o;          /* url and bearer point at our copies */
    wh_event *head, *tail;      /* owned FIFO of o.queue_limit at most */
    uint32_t count;
    bool due;               /* the batch interval passed: post what waits */
    bool closed;            /* webhook_close ran: callbacks do nothing */
    uv_timer_t batch_timer; /* the batch interval */
    uv_timer_t curl_timer;  /* libcurl's timeout */
    wh_sock *socks;         /* every socket watched, owned */
    wh_batch *slots;        /* owned [o.concurrency] */
    webhook_stats st;
};

static void kick(webhook *wh);

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n; /* the answer's body is not read, only its status */
}

/* ---- libcurl on the loop ------------------------------------------------ */

static void check_done(webhook *wh);

static void on_sock_closed(uv_handle_t *h)
{
    wh_sock *ks = h->data;
    if (ks->prev)
        ks->prev->next = ks->next;
    else
        ks->wh->socks = ks->next;
    if (ks->next)
        ks->next->prev = ks->prev;
    free(ks);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    wh_sock *ks = h->data;
    webhook *wh = ks->wh; /* ks may be closed by the call below */
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(wh->multi, ks->fd, flags, &running);
    check_done(wh);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    (void)e;
    webhook *wh = userp;
    wh_sock *ks = socketp;
    if (wh->closed)
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (ks) {
            curl_multi_assign(wh->multi, fd, NULL);
            uv_close((uv_handle_t *)&ks->poll, on_sock_closed);
        }
        return 0;
    }
    if (!ks) {
        ks = calloc(1, sizeof(*ks));
        if (!ks)
            return -1; /* libcurl fails the transfer: retried */
        if (uv_poll_init_socket(wh->loop, &ks->poll, fd) != 0) {
            free(ks);
            return -1;
        }
        ks->poll.data = ks;
        ks->wh = wh;
        ks->fd = fd;
        ks->next = wh->socks;
        if (wh->socks)
            wh->socks->prev = ks;
        wh->socks = ks;
        curl_multi_assign(wh->multi, fd, ks);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&ks->poll, ev, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    webhook *wh = t->data;
    int running = 0;
    curl_multi_socket_action(wh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(wh);
}

/* libcurl wants to be called back in timeout_ms (-1: never). It may not
 * be called from inside this callback: a timer of 0 ms does it from the
 * loop. */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    webhook *wh = userp;
    if (wh->closed)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&wh->curl_timer);
    else
        uv_timer_start(&wh->curl_timer, on_curl_timeout, (uint64_t)timeout_ms,
                       0);
    return 0;
}

/* ---- batches -------------------------------------------------------------
 */

static void slot_release(wh_batch *b)
{
    b->wh->st.in_flight -= b->count;
    free(b->body);
    b->body = NULL;
    b->len = 0;
    b->count = 0;
    b->attempt = 0;
}

static int start_post(wh_batch *b)
{
    webhook *wh = b->wh;
    CURL *e = curl_easy_init();
    if (!e)
        return IMQTT_ENOMEM;
    curl_easy_setopt(e, CURLOPT_URL, wh->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, wh->headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, b->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)wh->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)wh->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, b);
    if (curl_multi_add_handle(wh->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return IMQTT_ENOMEM;
    }
    b->easy = e;
    return 0;
}

static void give_up(wh_batch *b, const char *why)
{
    webhook *wh = b->wh;
    wh->st.dropped_retries += b->count;
    log_warn("push webhook: %u events dropped after %u attempts (%s)", b->count,
             b->attempt + 1, why);
    slot_release(b);
}

static void on_retry(uv_timer_t *t)
{
    wh_batch *b = t->data;
    if (b->wh->closed)
        return;
    b->wh->st.retried++;
    if (start_post(b) < 0)
        give_up(b, "out of memory");
    kick(b->wh);
}

/* A POST is over: 2xx delivered; 4xx (but 408 and 429) dropped at once;
 * anything else retried while attempts are left. */
static void finish(wh_batch *b, CURLcode res, long code)
{
    webhook *wh = b->wh;
    if (res == CURLE_OK && code >= 200 && code < 300) {
        wh->st.posted += b->count;
        slot_release(b);
        return;
    }
    wh->st.failed++;
    char why[CURL_ERROR_SIZE + 32];
    if (res != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(res));
    else
        snprintf(why, sizeof why, "HTTP %ld", code);
    bool final = res == CURLE_OK && code >= 300 && code < 500 && code != 408 &&
                 code != 429;
    if (final) {
        wh->st.dropped_4xx += b->count;
        log_warn("push webhook: %u events dropped: the receiver answered %s",
                 b->count, why);
        slot_release(b);
        return;
    }
    if (b->attempt >= wh->o.retries) {
        give_up(b, why);
        return;
    }
    uint64_t delay = wh->o.retry_backoff_ms;
    for (uint32_t i = 0; i < b->attempt && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    b->attempt++;
    log_info("push webhook: POST of %u events failed (%s), retry %u in %llu ms",
             b->count, why, b->attempt, (unsigned long long)delay);
    uv_timer_start(&b->retry, on_retry, delay, 0);
}

static void check_done(webhook *wh)
{
    if (wh->closed)
        return;
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(wh->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        wh_batch *b = NULL;
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&b);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_multi_remove_handle(wh->multi, e);
        curl_easy_cleanup(e);
        b->easy = NULL;
        finish(b, res, code);
    }
    kick(wh);
}

static wh_batch *free_slot(webhook *wh)
{
    for (uint32_t i = 0; i < wh->o.concurrency; i++)
        if (!wh->slots[i].body)
            return &wh->slots[i];
    return NULL;
}

/* Take up to batch_size events off the queue into b's body. */
static int fill(webhook *wh, wh_batch *b)
{
    size_t len = 2;
    uint32_t n = 0;
    for (wh_event *ev = wh->head; ev && n < wh->o.batch_size; ev = ev->next)
        len += ev->len + 1, n++;
    char *body = malloc(len);
    if (!body)
        return IMQTT_ENOMEM;
    size_t at = 0;
    body[at++] = '[';
    for (uint32_t i = 0; i < n; i++) {
        wh_event *ev = wh->head;
        if (i > 0)
            body[at++] = ',';
        memcpy(body + at, ev->json, ev->len);
        at += ev->len;
        wh->head = ev->next;
        free(ev);
    }
    body[at++] = ']';
    if (!wh->head)
        wh->tail = NULL;
    wh->count -= n;
    wh->st.queued = wh->count;
    wh->st.in_flight += n;
    b->body = body;
    b->len = at;
    b->count = n;
    b->attempt = 0;
    return 0;
}

static void on_batch_timer(uv_timer_t *t)
{
    webhook *wh = t->data;
    wh->due = true;
    kick(wh);
}

/* Post what may go now: full batches, or everything once the interval has
 * passed, while a slot is free. */
static void kick(webhook *wh)
{
    if (wh->closed)
        return;
    while (wh->count > 0 && (wh->count >= wh->o.batch_size || wh->due ||
                             wh->o.batch_interval_ms == 0)) {
        wh_batch *b = free_slot(wh);
        if (!b)
            return; /* a POST's end kicks again */
        if (fill(wh, b) < 0)
            return; /* out of memory: the next event or POST tries again */
        if (start_post(b) < 0)
            give_up(b, "out of memory");
    }
    if (wh->count == 0) {
        wh->due = false;
        uv_timer_stop(&wh->batch_timer);
    } else if (!wh->due && !uv_is_active((uv_handle_t *)&wh->batch_timer)) {
        uv_timer_start(&wh->batch_timer, on_batch_timer,
                       wh->o.batch_interval_ms, 0);
    }
}

/* ---- the interface ------------------------------------------------------- */

int webhook_post(webhook *wh, const char *json, size_t len)
{
    if (wh->closed || wh->count >= wh->o.queue_limit) {
        wh->st.dropped_full++;
        return IMQTT_EBUSY;
    }
    wh_event *ev = malloc(sizeof(*ev) + len);
    if (!ev)
        return IMQTT_ENOMEM;
    ev->next = NULL;
    ev->len = (uint32_t)len;
    memcpy(ev->json, json, len);
    if (wh->tail)
        wh->tail->next = ev;
    else
        wh->head = ev;
    wh->tail = ev;
    wh->count++;
    wh->st.queued = wh->count;
    kick(wh);
    return 0;
}

const webhook_stats *webhook_get_stats(const webhook *wh)
{
    return &wh->st;
}

int webhook_new(uv_loop_t *loop, const webhook_options *o, webhook **out)
{
    *out = NULL;
    if (!o->url || o->batch_size == 0 || o->queue_limit == 0 ||
        o->concurrency == 0)
        return IMQTT_EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return IMQTT_EINVAL;
    webhook *wh = calloc(1, sizeof(*wh));
    if (!wh) {
        curl_global_cleanup();
        return IMQTT_ENOMEM;
    }
    wh->loop = loop;
    wh->o = *o;
    wh->url = strdup(o->url);
    wh->slots = calloc(o->concurrency, sizeof(*wh->slots));
    wh->multi = curl_multi_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: "
                                                   "application/json");
    /* No "Expect: 100-continue" round trip before a large batch. */
    if (h)
        h = curl_slist_append(h, "Expect:");
    if (h)
        h = curl_slist_append(h, "User-Agent: imqtt/" IMQTT_VERSION);
    if (h && o->bearer) {
        size_t n = strlen(o->bearer) + 32;
        char *line = malloc(n);
        if (line) {
            snprintf(line, n, "Authorization: Bearer %s", o->bearer);
            struct curl_slist *nh = curl_slist_append(h, line);
            free(line);
            if (!nh)
                curl_slist_free_all(h);
            h = nh;
        } else {
            curl_slist_free_all(h);
            h = NULL;
        }
    }
    wh->headers = h;
    if (!wh->url || !wh->slots || !wh->multi || !wh->headers) {
        wh->closed = true;
        webhook_free(wh);
        return IMQTT_ENOMEM;
    }
    wh->o.url = wh->url;
    wh->o.bearer = NULL; /* only in the header list */
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETDATA, wh);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERDATA, wh);
    uv_timer_init(loop, &wh->batch_timer);
    wh->batch_timer.data = wh;
    uv_timer_init(loop, &wh->curl_timer);
    wh->curl_timer.data = wh;
    for (uint32_t i = 0; i < o->concurrency; i++) {
        wh->slots[i].wh = wh;
        uv_timer_init(loop, &wh->slots[i].retry);
        wh->slots[i].retry.data = &wh->slots[i];
    }
    *out = wh;
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Abandon the transfers and let libcurl close its connections. */
static void drop_transfers(webhook *wh)
{
    for (uint32_t i = 0; wh->slots && i < wh->o.concurrency; i++) {
        wh_batch *b = &wh->slots[i];
        if (b->easy) {
            curl_multi_remove_handle(wh->multi, b->easy);
            curl_easy_cleanup(b->easy);
            b->easy = NULL;
        }
        if (b->body)
            slot_release(b);
    }
    if (wh->multi)
        curl_multi_cleanup(wh->multi);
    wh->multi = NULL;
}

void webhook_close(webhook *wh)
{
    if (!wh || wh->closed)
        return;
    wh->closed = true;
    uint64_t lost = wh->count + wh->st.in_flight;
    /* Our watchers first, then libcurl closes the sockets. */
    for (wh_sock *ks = wh->socks; ks; ks = ks->next)
        if (!uv_is_closing((uv_handle_t *)&ks->poll))
            uv_close((uv_handle_t *)&ks->poll, on_sock_closed);
    drop_transfers(wh);
    close_handle((uv_handle_t *)&wh->batch_timer);
    close_handle((uv_handle_t *)&wh->curl_timer);
    for (uint32_t i = 0; i < wh->o.concurrency; i++)
        close_handle((uv_handle_t *)&wh->slots[i].retry);
    if (lost)
        log_warn("push webhook: %llu events not posted at shutdown",
                 (unsigned long long)lost);
}

void webhook_free(webhook *wh)
{
    if (!wh)
        return;
    wh->closed = true;
    drop_transfers(wh);
    while (wh->socks) { /* closed by the loop's uv_walk, no callback */
        wh_sock *ks = wh->socks;
        wh->socks = ks->next;
        free(ks);
    }
    while (wh->head) {
        wh_event *ev = wh->head;
        wh->head = ev->next;
        free(ev);
    }
    curl_slist_free_all(wh->headers);
    free(wh->slots);
    free(wh->url);
    free(wh);
    curl_global_cleanup();
}
