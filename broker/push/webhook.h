/* A webhook client on a libuv loop: events (one JSON value each) go into a
 * bounded queue and are POSTed as JSON arrays, in batches, with libcurl's
 * multi interface driven by the loop (curl_multi_socket_action, a uv_poll_t
 * per socket, a uv_timer_t for curl's timeouts), so nothing ever blocks
 * the loop. A POST that fails to connect, times out or gets a 5xx (or 408
 * / 429) is retried with a doubling backoff; a 4xx is dropped at once (the
 * receiver said the body is wrong: sending it again cannot help). When the
 * queue is full, new events are dropped and counted.
 *
 * Everything runs on the loop given to webhook_new, one thread; the
 * client knows nothing of MQTT (docs/im.md, Offline push).
 */
#ifndef IMQTT_WEBHOOK_H
#define IMQTT_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct webhook_options {
    const char *url;            /* copied */
    const char *bearer;         /* copied; NULL: no Authorization header */
    uint32_t batch_size;        /* events per POST, >= 1 */
    uint32_t batch_interval_ms; /* longest the first queued event waits for
                                   a batch to fill; 0: post at once */
    uint32_t timeout_ms;        /* per POST, connecting included */
    uint32_t retries;           /* attempts after the first */
    uint32_t retry_backoff_ms;  /* first retry delay, doubled, at most 30 s */
    uint32_t queue_limit;       /* events waiting (not in a POST), >= 1 */
    uint32_t concurrency;       /* POSTs in flight at once, >= 1 */
} webhook_options;

/* Counters since webhook_new; events, unless said otherwise. */
typedef struct webhook_stats {
    uint64_t posted;          /* in a POST answered 2xx */
    uint64_t failed;          /* POST attempts that failed (any cause) */
    uint64_t retried;         /* POST attempts that were retries */
    uint64_t dropped_full;    /* refused: the queue was full */
    uint64_t dropped_retries; /* given up: every attempt failed */
    uint64_t dropped_4xx;     /* given up: the receiver answered 4xx */
    uint64_t queued;          /* gauge: waiting, not in a POST */
    uint64_t in_flight;       /* gauge: in POSTs, retries included */
} webhook_stats;

typedef struct webhook webhook;

/* A client on `loop` (borrowed; the client's handles live on it until
 * webhook_close). Returns 0 or IMQTT_ENOMEM / IMQTT_EINVAL (libcurl could
 * not be set up). */
int webhook_new(uv_loop_t *loop, const webhook_options *o, webhook **out);

/* Queue one event: `json` (len bytes, one JSON value) is copied. Returns 0,
 * IMQTT_EBUSY when the queue is full or the client is closed (counted in
 * dropped_full), or IMQTT_ENOMEM. */
int webhook_post(webhook *wh, const char *json, size_t len);

const webhook_stats *webhook_get_stats(const webhook *wh);

/* Stop: transfers are abandoned, queued events dropped, the handles
 * closed. Safe to call twice. The memory stays until webhook_free. */
void webhook_close(webhook *wh);

/* Free the client once the loop has run the close callbacks (after
 * uv_run returned); also after a start-up that closed every handle of the
 * loop with uv_walk. NULL is ignored. */
void webhook_free(webhook *wh);

#endif
