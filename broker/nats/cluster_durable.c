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
/* Failures come in episodes (NATS away, an election past the wait), as
 * runs of consecutive numbers: they are kept as ranges. Past this many
 * ranges the oldest half is forgotten (their PUBLISHes were answered long
 * before: an episode fails at most DURABLE_WINDOW in one range). */
#define FAILED_MAX 65536

enum { IN_FLIGHT = 0, ANSWERED = 1 };

struct frange {
    uint64_t lo, hi;
};

struct answer {
    uint64_t seq;
    bool ok;
    natsMsg *retry; /* owned: to be sent again; NULL: answered */
};

struct cluster_durable {
    server *srv;              /* borrowed */
    cluster_link *link;       /* borrowed */
    const cluster_config *cc; /* borrowed */
    jsCtx *js;                /* owned; on the link's connection */
    uint64_t epoch;

    /* The loop's side, under the loop lock. */
    uint64_t next;                   /* the last publication issued */
    uint64_t done;                   /* every publication <= done is answered */
    uint8_t state[DURABLE_WINDOW];   /* by seq & WINDOW_MASK, (done, next] */
    uint64_t issued[DURABLE_WINDOW]; /* uv_now when it was published */
    uv_timer_t watchdog; /* resends, and fails what is never answered */
    uint64_t resent_at;  /* uv_now of the last resend */
    uint64_t heard_at;   /* uv_now of the last answer taken */
    natsMsg **retry;     /* owned: "no responders" answers to send again */
    uint32_t nretry, retry_cap;
    struct frange *failed; /* owned: failed publications, ascending,
                              disjoint */
    uint32_t nfailed, failed_cap;
    bool stopped;
    char *subj; /* owned scratch: the stream subject */
    size_t subj_cap;
    char jprefix[128]; /* "<prefix>_j" */
    size_t jprefix_len, prefix_len;
    cluster_durable_stats st;

    /* Answers from libnats's thread, drained by the main loop. */
    uv_async_t async;
    uv_mutex_t lock;     /* guards answers, nanswers, cap, closing */
    uv_mutex_t pub_lock; /* held around js_PublishMsgAsync (on_answer) */
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

/* The stream answered "duplicate" to a publication sent again: it had it
 * already, from a leader that may have died before republishing it, and
 * it does not republish a duplicate. So this node sends the live copy
 * itself, marked with the stream sequence like a republication; a node
 * that got the first one drops this one (cluster_route.c: fresh). */
static void republish(cluster_durable *d, natsMsg *m, uint64_t sseq)
{
    const char *subj = natsMsg_GetSubject(m);
    char live[4096];
    size_t n = strlen(subj);
    if (n < d->jprefix_len || n - d->jprefix_len + d->prefix_len >= sizeof live)
        return;
    memcpy(live, d->cc->subject_prefix, d->prefix_len);
    memcpy(live + d->prefix_len, subj + d->jprefix_len, n - d->jprefix_len + 1);
    natsMsg *copy = NULL;
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)sseq);
    if (natsMsg_Create(&copy, live, NULL, natsMsg_GetData(m),
                       natsMsg_GetDataLength(m)) == NATS_OK &&
        natsMsgHeader_Set(copy, "Nats-Sequence", seq) == NATS_OK)
        natsConnection_PublishMsg(cluster_link_conn(d->link), copy);
    natsMsg_Destroy(copy);
}

static void on_answer(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae,
                      void *arg)
{
    (void)js;
    (void)pae;
    cluster_durable *d = arg;
    /* An answer can come back while the loop is still inside the
     * js_PublishMsgAsync that sent the message (libnats registers it
     * first): the message is not ours to read or free before that call
     * has returned. */
    uv_mutex_lock(&d->pub_lock);
    struct answer a = {seq_of(m), pa != NULL, NULL};
    if (!a.seq) {
        natsMsg_Destroy(m);
        uv_mutex_unlock(&d->pub_lock);
        return; /* not ours: cannot happen, the context is ours alone */
    }
    /* No stream leader to answer (an election): try again shortly, the
     * publication keeps its place and its deadline */
    if (pae && pae->Err == NATS_NO_RESPONDERS) {
        a.retry = m;
    } else {
        if (pa && pa->Duplicate)
            republish(d, m, pa->Sequence);
        natsMsg_Destroy(m);
    }
    uv_mutex_unlock(&d->pub_lock);
    uv_mutex_lock(&d->lock);
    if (!d->closing) {
        if (d->nanswers == d->answers_cap) {
            uint32_t cap = d->answers_cap ? d->answers_cap * 2 : 256;
            struct answer *v = realloc(d->answers, cap * sizeof(*v));
            if (!v) {
                /* The publication stays in flight until the watchdog
                 * fails it: never acknowledged, the safe side. */
                uv_mutex_unlock(&d->lock);
                natsMsg_Destroy(a.retry);
                return;
            }
            d->answers = v;
            d->answers_cap = cap;
        }
        d->answers[d->nanswers++] = a;
        uv_async_send(&d->async); /* under the lock: the handle is open */
        a.retry = NULL;           /* the queue owns it */
    }
    uv_mutex_unlock(&d->lock);
    natsMsg_Destroy(a.retry); /* closing, or no memory */
}

/* ---- the loop ----------------------------------------------------------- */

static void remember_failure(cluster_durable *d, uint64_t seq)
{
    uint32_t n = d->nfailed;
    if (n && d->failed[n - 1].hi + 1 == seq) {
        d->failed[n - 1].hi = seq; /* the usual case: the run goes on */
        return;
    }
    if (n == FAILED_MAX) {
        memmove(d->failed, d->failed + FAILED_MAX / 2,
                (FAILED_MAX / 2) * sizeof(d->failed[0]));
        n = d->nfailed = FAILED_MAX / 2;
    }
    if (n == d->failed_cap) {
        uint32_t cap = d->failed_cap ? d->failed_cap * 2 : 16;
        struct frange *v = realloc(d->failed, cap * sizeof(*v));
        if (!v)
            return;
        d->failed = v;
        d->failed_cap = cap;
    }
    /* answers come nearly in order: insert from the end (a seq is
     * answered once, so it is in no range yet) */
    uint32_t i = d->nfailed++;
    while (i > 0 && d->failed[i - 1].lo > seq) {
        d->failed[i] = d->failed[i - 1];
        i--;
    }
    d->failed[i] = (struct frange){seq, seq};
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

static natsStatus publish_locked(cluster_durable *d, natsMsg **m,
                                 jsPubOptions *po)
{
    uv_mutex_lock(&d->pub_lock);
    natsStatus s = js_PublishMsgAsync(d->js, m, po);
    uv_mutex_unlock(&d->pub_lock);
    return s;
}

static void keep_for_retry(cluster_durable *d, uint64_t seq, natsMsg *m)
{
    if (seq <= d->done || seq > d->next ||
        d->state[seq & WINDOW_MASK] == ANSWERED) {
        natsMsg_Destroy(m);
        return;
    }
    if (d->nretry == d->retry_cap) {
        uint32_t cap = d->retry_cap ? d->retry_cap * 2 : 64;
        natsMsg **v = realloc(d->retry, cap * sizeof(*v));
        if (!v) {
            natsMsg_Destroy(m);
            answered(d, seq, false);
            return;
        }
        d->retry = v;
        d->retry_cap = cap;
    }
    d->retry[d->nretry++] = m;
}

/* Send the kept ones again; those past their deadline fail. */
static void retry_now(cluster_durable *d, uint64_t cutoff)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = DURABLE_ACK_WAIT_MS;
    uint32_t n = d->nretry;
    d->nretry = 0;
    for (uint32_t i = 0; i < n; i++) {
        natsMsg *m = d->retry[i];
        uint64_t seq = seq_of(m);
        bool live = seq > d->done && seq <= d->next &&
                    d->state[seq & WINDOW_MASK] != ANSWERED;
        if (live && d->issued[seq & WINDOW_MASK] > cutoff &&
            publish_locked(d, &m, &po) == NATS_OK)
            d->st.resent++;
        else if (live)
            answered(d, seq, false);
        natsMsg_Destroy(m); /* NULL when libnats took it */
    }
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
        if (n)
            d->heard_at = uv_now(d->srv->loop);
        for (uint32_t i = 0; i < n; i++) {
            if (batch[i].retry)
                keep_for_retry(d, batch[i].seq, batch[i].retry);
            else
                answered(d, batch[i].seq, batch[i].ok);
        }
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

/* libnats times out what the stream does not answer (MaxWait), but not
 * what it had buffered across a reconnection; a publication still
 * unanswered well past the wait fails here, so no PUBLISH waits forever. */
static void resend(cluster_durable *d, uint64_t now)
{
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, d->js) != NATS_OK)
        return;
    d->resent_at = now;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = DURABLE_ACK_WAIT_MS;
    for (int i = 0; i < pending.Count; i++) {
        uint64_t seq = seq_of(pending.Msgs[i]);
        if (seq <= d->done || seq > d->next ||
            d->state[seq & WINDOW_MASK] == ANSWERED)
            continue; /* destroyed with the list */
        /* the Nats-Msg-Id header goes with it */
        if (publish_locked(d, &pending.Msgs[i], &po) == NATS_OK)
            d->st.resent++;
    }
    natsMsgList_Destroy(&pending);
}

static void on_watchdog(uv_timer_t *t)
{
    cluster_durable *d = t->data;
    loop_lock();
    uint64_t now = uv_now(d->srv->loop);
    uint64_t cutoff =
        now > DURABLE_ACK_WAIT_MS + 2000 ? now - DURABLE_ACK_WAIT_MS - 2000 : 0;
    bool up = cluster_link_connected(d->link);
    if (up && d->nretry)
        retry_now(d, cutoff);
    /* Only when the stream has gone silent (a leader that died answers
     * nothing): a busy stream answering slowly must not get everything in
     * flight a second time. */
    if (up && d->done < d->next &&
        now - d->issued[(d->done + 1) & WINDOW_MASK] >= DURABLE_RESEND_MS &&
        now - d->heard_at >= DURABLE_RESEND_MS &&
        now - d->resent_at >= DURABLE_RESEND_MS)
        resend(d, now);
    for (uint64_t seq = d->done + 1; seq <= d->next; seq++) {
        if (d->issued[seq & WINDOW_MASK] > cutoff)
            break;
        answered(d, seq, false);
    }
    advance(d);
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
    if (uv_mutex_init(&d->pub_lock) != 0) {
        uv_mutex_destroy(&d->lock);
        goto nomem;
    }
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
        uv_mutex_destroy(&d->pub_lock);
        free(d->subj);
        free(d);
        return NULL;
    }
    uv_async_init(srv->loop, &d->async, on_async);
    d->async.data = d;
    uv_timer_init(srv->loop, &d->watchdog);
    d->watchdog.data = d;
    uv_timer_start(&d->watchdog, on_watchdog, DURABLE_RETRY_MS,
                   DURABLE_RETRY_MS);
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
    d->issued[seq & WINDOW_MASK] = uv_now(d->srv->loop);
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
        s = publish_locked(d, &m, &po);
    natsMsg_Destroy(m); /* NULL when libnats took it */
    if (s != NATS_OK) {
        fail_now(d, seq);
        return;
    }
    d->st.published++;
}

bool cluster_durable_busy(const cluster_durable *d)
{
    return d->next - d->done >= DURABLE_PAUSE_AT;
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
    /* the first failed range reaching above lo */
    uint32_t a = 0, b = d->nfailed;
    while (a < b) {
        uint32_t mid = a + (b - a) / 2;
        if (d->failed[mid].hi <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a < d->nfailed && d->failed[a].lo <= hi ? IMQTT_ECLUSTER : 1;
}

void cluster_durable_fail_inflight(cluster_durable *d)
{
    for (uint32_t i = 0; i < d->nretry; i++)
        natsMsg_Destroy(d->retry[i]);
    d->nretry = 0;
    for (uint64_t seq = d->done + 1; seq <= d->next; seq++)
        answered(d, seq, false);
    advance(d);
}

void cluster_durable_stop(cluster_durable *d)
{
    if (!d || d->stopped)
        return;
    d->stopped = true;
    uv_mutex_lock(&d->lock);
    d->closing = true;
    uv_mutex_unlock(&d->lock);
    cluster_durable_fail_inflight(d);
    /* even with nothing in flight: connections paused for the stream
     * read again (they see no cluster now) */
    server_cluster_acked(d->srv);
    uv_close((uv_handle_t *)&d->async, NULL);
    uv_close((uv_handle_t *)&d->watchdog, NULL);
}

void cluster_durable_free(cluster_durable *d)
{
    if (!d)
        return;
    jsCtx_Destroy(d->js);
    uv_mutex_destroy(&d->lock);
    uv_mutex_destroy(&d->pub_lock);
    for (uint32_t i = 0; i < d->nanswers; i++)
        natsMsg_Destroy(d->answers[i].retry);
    for (uint32_t i = 0; i < d->nretry; i++)
        natsMsg_Destroy(d->retry[i]);
    free(d->retry);
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
