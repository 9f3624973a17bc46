/* The durable path (cluster_durable.h). */
#include <nats/nats.h>

#include "cluster_durable.h"
#include "cluster_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "loop_lock.h"

#define WINDOW_MASK (DURABLE_WINDOW - 1)
/* Failures come in episodes (NATS away, an election past the wait);
 * past this many the older half is forgotten: their PUBLISHes were
 * answered long before. */
#define FAILED_MAX 4096

enum { IN_FLIGHT = 0, ANSWERED = 1 };

struct answer {
    uint64_t seq;
    bool ok;
};

struct cluster_durable {
    server *srv;              /* borrowed */
    cluster_link *link;       /* borrowed */
    const cluster_config *cc; /* borrowed */
    jsCtx *js;                /* owned; on the link's connection */
    uint64_t epoch;

    /* The loop's side, under the loop lock. */
    uint64_t next;                 /* the last publication issued */
    uint64_t done;                 /* every publication <= done is answered */
    uint8_t state[DURABLE_WINDOW]; /* by seq & WINDOW_MASK, (done, next] */
    uint64_t *failed;              /* owned, ascending */
    uint32_t nfailed, failed_cap;
    bool stopped;
    char *subj; /* owned scratch: the stream subject */
    size_t subj_cap;
    char jprefix[128]; /* "<prefix>_j" */
    size_t jprefix_len, prefix_len;
    cluster_durable_stats st;

    /* Answers from libnats's thread, drained by the main loop. */
    uv_async_t async;
    uv_mutex_t lock; /* guards answers, nanswers, cap, closing */
    struct answer *answers;
    uint32_t nanswers, answers_cap;
    bool closing;
};

/* ---- libnats's thread --------------------------------------------------- */

static uint64_t seq_of(natsMsg *m)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id)
        return 0;
    const char *dot = strrchr(id, '.');
    return dot ? strtoull(dot + 1, NULL, 10) : 0;
}

static void on_answer(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae,
                      void *arg)
{
    (void)js;
    (void)pae;
    cluster_durable *d = arg;
    struct answer a = {seq_of(m), pa != NULL};
    natsMsg_Destroy(m);
    if (!a.seq)
        return; /* not ours: cannot happen, the context is ours alone */
    uv_mutex_lock(&d->lock);
    if (!d->closing) {
        if (d->nanswers == d->answers_cap) {
            uint32_t cap = d->answers_cap ? d->answers_cap * 2 : 256;
            struct answer *v = realloc(d->answers, cap * sizeof(*v));
            if (!v) {
                /* The publication stays in flight and fails nowhere: its
                 * PUBLISH is never acknowledged, which is the safe side. */
                uv_mutex_unlock(&d->lock);
                return;
            }
            d->answers = v;
            d->answers_cap = cap;
        }
        d->answers[d->nanswers++] = a;
        uv_async_send(&d->async); /* under the lock: the handle is open */
    }
    uv_mutex_unlock(&d->lock);
}

/* ---- the loop ----------------------------------------------------------- */

static void remember_failure(cluster_durable *d, uint64_t seq)
{
    if (d->nfailed == FAILED_MAX) {
        memmove(d->failed, d->failed + FAILED_MAX / 2,
                (FAILED_MAX / 2) * sizeof(uint64_t));
        d->nfailed = FAILED_MAX / 2;
    }
    if (d->nfailed == d->failed_cap) {
        uint32_t cap = d->failed_cap ? d->failed_cap * 2 : 16;
        uint64_t *v = realloc(d->failed, cap * sizeof(*v));
        if (!v)
            return;
        d->failed = v;
        d->failed_cap = cap;
    }
    /* answers come nearly in order: insert from the end */
    uint32_t i = d->nfailed++;
    while (i > 0 && d->failed[i - 1] > seq) {
        d->failed[i] = d->failed[i - 1];
        i--;
    }
    d->failed[i] = seq;
}

static void answered(cluster_durable *d, uint64_t seq, bool ok)
{
    if (seq <= d->done || seq > d->next)
        return; /* failed at the stop already, or not ours */
    if (d->state[seq & WINDOW_MASK] == ANSWERED)
        return;
    d->state[seq & WINDOW_MASK] = ANSWERED;
    if (ok) {
        d->st.acked++;
    } else {
        d->st.failed++;
        remember_failure(d, seq);
    }
}

/* Advance `done` over what is answered; tell the loops when it moved. */
static void advance(cluster_durable *d)
{
    uint64_t was = d->done;
    while (d->done < d->next &&
           d->state[(d->done + 1) & WINDOW_MASK] == ANSWERED)
        d->done++;
    d->st.inflight = d->next - d->done;
    if (d->done != was)
        server_cluster_acked(d->srv);
}

static void on_async_locked(uv_async_t *h)
{
    cluster_durable *d = h->data;
    struct answer batch[256];
    for (;;) {
        uv_mutex_lock(&d->lock);
        uint32_t n = d->nanswers < 256 ? d->nanswers : 256;
        memcpy(batch, d->answers, n * sizeof(batch[0]));
        memmove(d->answers, d->answers + n,
                (d->nanswers - n) * sizeof(batch[0]));
        d->nanswers -= n;
        uv_mutex_unlock(&d->lock);
        for (uint32_t i = 0; i < n; i++)
            answered(d, batch[i].seq, batch[i].ok);
        if (n < 256)
            break;
    }
    advance(d);
}

static void on_async(uv_async_t *h)
{
    loop_lock();
    on_async_locked(h);
    loop_unlock();
}

cluster_durable *cluster_durable_start(server *srv, cluster_link *l,
                                       const cluster_config *cc, uint64_t epoch)
{
    cluster_durable *d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    d->epoch = epoch;
    d->srv = srv;
    d->link = l;
    d->cc = cc;
    d->prefix_len = strlen(cc->subject_prefix);
    int n = cluster_stream_prefix(cc, d->jprefix, sizeof d->jprefix);
    d->subj_cap = 4096;
    if (n < 0 || !(d->subj = malloc(d->subj_cap)))
        goto nomem;
    d->jprefix_len = (size_t)n;
    if (uv_mutex_init(&d->lock) != 0)
        goto nomem;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = DURABLE_ACK_WAIT_MS;
    jo.PublishAsync.AckHandler = on_answer;
    jo.PublishAsync.AckHandlerClosure = d;
    /* Never let libnats stall the loop: our own window refuses first. */
    jo.PublishAsync.MaxPending = 2 * DURABLE_WINDOW;
    natsStatus s = natsConnection_JetStream(&d->js, cluster_link_conn(l), &jo);
    if (s != NATS_OK) {
        log_error("cluster: JetStream context: %s; QoS 1/2 publications "
                  "will be refused",
                  natsStatus_GetText(s));
        uv_mutex_destroy(&d->lock);
        free(d->subj);
        free(d);
        return NULL;
    }
    uv_async_init(srv->loop, &d->async, on_async);
    d->async.data = d;
    return d;
nomem:
    if (d)
        free(d->subj);
    free(d);
    log_error("cluster: out of memory: QoS 1/2 publications will be refused");
    return NULL;
}

static void fail_now(cluster_durable *d, uint64_t seq)
{
    answered(d, seq, false);
    advance(d);
}

void cluster_durable_publish(cluster_durable *d, const char *live,
                             const void *data, int len)
{
    uint64_t seq = ++d->next;
    d->state[seq & WINDOW_MASK] = IN_FLIGHT;
    d->st.inflight = d->next - d->done;
    if (d->stopped) {
        fail_now(d, seq);
        return;
    }
    size_t tail = strlen(live) - d->prefix_len;
    if (d->jprefix_len + tail + 1 > d->subj_cap) {
        fail_now(d, seq);
        return;
    }
    memcpy(d->subj, d->jprefix, d->jprefix_len);
    memcpy(d->subj + d->jprefix_len, live + d->prefix_len, tail + 1);
    /* The id makes libnats's resends after a reconnect idempotent in the
     * stream's duplicate window; the answer finds its number in it. */
    char id[160];
    snprintf(id, sizeof id, "%s.%llx.%llu", d->cc->node,
             (unsigned long long)d->epoch, (unsigned long long)seq);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, d->subj, NULL, data, len);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = DURABLE_ACK_WAIT_MS;
    po.MsgId = id;
    if (s == NATS_OK)
        s = js_PublishMsgAsync(d->js, &m, &po);
    natsMsg_Destroy(m); /* NULL when libnats took it */
    if (s != NATS_OK) {
        fail_now(d, seq);
        return;
    }
    d->st.published++;
}

bool cluster_durable_ready(cluster_durable *d)
{
    return !d->stopped && cluster_link_connected(d->link) &&
           d->next - d->done < DURABLE_WINDOW;
}

uint64_t cluster_durable_mark(const cluster_durable *d)
{
    return d->next;
}

int cluster_durable_status(const cluster_durable *d, uint64_t lo, uint64_t hi)
{
    if (hi > d->done)
        return 0;
    /* the first failure above lo */
    uint32_t a = 0, b = d->nfailed;
    while (a < b) {
        uint32_t mid = a + (b - a) / 2;
        if (d->failed[mid] <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a < d->nfailed && d->failed[a] <= hi ? IMQTT_ECLUSTER : 1;
}

void cluster_durable_stop(cluster_durable *d)
{
    if (!d || d->stopped)
        return;
    d->stopped = true;
    uv_mutex_lock(&d->lock);
    d->closing = true;
    uv_mutex_unlock(&d->lock);
    for (uint64_t seq = d->done + 1; seq <= d->next; seq++)
        answered(d, seq, false);
    advance(d);
    uv_close((uv_handle_t *)&d->async, NULL);
}

void cluster_durable_free(cluster_durable *d)
{
    if (!d)
        return;
    jsCtx_Destroy(d->js);
    uv_mutex_destroy(&d->lock);
    free(d->answers);
    free(d->failed);
    free(d->subj);
    free(d);
}

void cluster_durable_get_stats(const cluster_durable *d,
                               cluster_durable_stats *out)
{
    *out = d->st;
}
