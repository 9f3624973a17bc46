#include "conn.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_hooks.h"
#include "conn_log.h"
#include "conn_trace.h"
#include "errors.h"
#include "handlers.h"
#include "log.h"
#include "loop_lock.h"
#include "rate_limits.h"
#include "reason.h"
#include "session.h"
#include "transport.h"

/* Output a reader may leave unread before QoS 0 messages to it are
 * dropped; QoS 1/2 are bounded by the window and the queue instead. */
#define CONN_OUTPUT_LIMIT (4u << 20)
/* Time a new connection has to send CONNECT, and a closing one to take
 * its last bytes. */
#define CONN_CONNECT_TIMEOUT_MS 10000
#define CONN_LINGER_MS          2000

typedef struct write_req {
    uv_write_t req;
    outbuf ob; /* owned until the write callback */
    conn *c;
} write_req;

static void maybe_finish_close(conn *c);
static void close_handles(conn *c);

/* ---- life cycle ------------------------------------------------------- */

void conn_ref(conn *c)
{
    c->refs++;
}

static void conn_free(conn *c)
{
    c->w->conns_alive--;
    transport_free(c);
    outbuf_free(&c->out);
    free(c->in);
    for (uint32_t i = 0; i < conn_nacks(c); i++)
        free(c->acks->a[i].codes);
    free(c->acks);
    conn_extra_free(c);
    free(c);
}

const char *conn_peer(const conn *c)
{
    static _Thread_local char text[64];
    const conn_addr *a = &c->peer;
    if (a->family == 0)
        return "?";
    if (a->family == 1) {
        snprintf(text, sizeof(text), "fd:%u", a->port);
        return text;
    }
    char ip[48] = "?";
    uv_inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->ip, ip, sizeof(ip));
    /* [::1]:5678, as in a URL: the port cannot be mistaken for a part of
     * the address. */
    snprintf(text, sizeof(text), a->family == 6 ? "[%s]:%u" : "%s:%u", ip,
             a->port);
    return text;
}

void conn_unref(conn *c)
{
    if (--c->refs == 0 && c->handles_open == 0)
        conn_free(c);
}

static void on_handle_closed_locked(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles_open == 0 && c->refs == 0)
        conn_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    loop_lock();
    on_handle_closed_locked(h);
    loop_unlock();
}

static void unlink_conn(conn *c)
{
    worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    w->nconns--;
    c->lst->nconns--;
}

/* Whether the calling thread runs c's loop: only it touches c's handle. */
static inline bool on_owner(const conn *c)
{
    return c->w == worker_current();
}

static void close_handles(conn *c)
{
    if (c->handles_closing)
        return;
    c->handles_closing = true;
    wheel_disarm(&c->w->wheel, &c->deadline);
    if (!on_owner(c)) {
        c->close_wanted = true;
        worker_want_flush(c->w, c);
        return;
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Never after close_handles: the node must stay disarmed until the
 * connection is freed. */
static void arm_deadline(conn *c, uint64_t due)
{
    if (c->handles_closing)
        return;
    wheel_arm(&c->w->wheel, &c->deadline, due);
    if (!on_owner(c))
        worker_wake(c->w); /* its wheel may have to start ticking */
}

bool conn_owner_work(conn *c)
{
    if (c->read_stop_wanted) {
        c->read_stop_wanted = false;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    if (c->close_wanted) {
        c->close_wanted = false;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return false;
    }
    if (c->paused)
        conn_pressure_drain(c);
    return true;
}

static void on_linger_timeout(conn *c)
{
    /* The peer did not take its last bytes, or did not close, in time. */
    outbuf_free(&c->out);
    close_handles(c);
}

static void on_drain_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = h->data;
    buf->base = (char *)c->w->readbuf;
    buf->len = READBUF_SIZE;
}

static void on_drain_read_locked(uv_stream_t *stream, ssize_t nread,
                                 const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        close_handles(stream->data);
}

static void on_drain_read(uv_stream_t *stream, ssize_t nread,
                          const uv_buf_t *buf)
{
    loop_lock();
    on_drain_read_locked(stream, nread, buf);
    loop_unlock();
}

static void on_shutdown_locked(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    free(req);
    /* Read and discard until the peer closes: closing a socket with
     * unread input makes the kernel send RST, and the peer could lose
     * our last packet (DISCONNECT, CONNACK) before reading it. */
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_drain_alloc,
                                    on_drain_read) < 0)
        close_handles(c);
    conn_unref(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    loop_lock();
    on_shutdown_locked(req, status);
    loop_unlock();
}

static void maybe_finish_close(conn *c)
{
    if (c->state != CONN_CLOSING || !outbuf_empty(&c->out) ||
        c->writes_in_flight || c->shutdown_started)
        return;
    if (c->handles_closing)
        return;
    /* TLS close_notify, WebSocket close frame: written before the FIN. */
    if (c->tp && transport_close_begin(c)) {
        worker_want_flush(c->w, c);
        return;
    }
    c->shutdown_started = true;
    /* Allocated here, not in the connection: only a closing connection
     * needs one (80 bytes less per idle connection). Without memory, close
     * at once (the FIN still goes out, unread input may turn it into RST). */
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req) {
        close_handles(c);
        return;
    }
    req->data = c;
    conn_ref(c);
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(req);
        conn_unref(c);
        close_handles(c);
    }
}

void conn_close(conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (on_owner(c))
        uv_read_stop((uv_stream_t *)&c->tcp);
    else
        c->read_stop_wanted = true; /* (the flush below wakes the owner) */
    unlink_conn(c);
    session *s = c->sess;
    c->sess = NULL;
    if (s && s->conn == c) {
        bool will = !c->disconnect_normal || c->will_on_close;
        log_info("client %s (%s) disconnected%s", s->client_id, conn_peer(c),
                 c->disconnect_normal ? "" : " (connection lost)");
        s->srv->policy->on_disconnect(s);
        session_connection_lost(s, will);
    }
    arm_deadline(c, server_now(c->srv) + CONN_LINGER_MS);
    worker_want_flush(c->w, c);
}

void conn_abort(conn *c)
{
    /* The socket is unusable: nothing more can be written. */
    outbuf_free(&c->out);
    conn_close(c);
    close_handles(c);
}

void conn_disconnect(conn *c, uint8_t reason)
{
    if (c->state == CONN_ACTIVE && c->version == MQTT_V5) {
        mqtt_packet p = {.type = MQTT_DISCONNECT};
        p.u.disconnect.reason = reason;
        conn_send(c, &p);
    }
    conn_close(c);
}

/* ---- output ------------------------------------------------------------ */

int conn_send(conn *c, const mqtt_packet *p)
{
    int size = mqtt_encoded_size(p, c->version);
    if (size < 0)
        return size;
    uint8_t *buf = outbuf_reserve(&c->out, (size_t)size);
    if (!buf) {
        conn_abort(c);
        return IMQTT_ENOMEM;
    }
    int n = mqtt_encode(p, c->version, buf, (size_t)size);
    if (n < 0)
        return n;
    outbuf_commit(&c->out, (size_t)n);
    worker_want_flush(c->w, c);
    if (log_packets)
        conn_trace(c, true, p);
    return 0;
}

int conn_send_after_commit(conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    return conn_send_after_durable(c, type, pid, reason, 0, 0);
}

int conn_send_after_durable(conn *c, uint8_t type, uint16_t pid, uint8_t reason,
                            uint64_t dlo, uint64_t dhi)
{
    uint32_t n = conn_nacks(c), have = c->acks ? c->acks->cap : 0;
    if (n == have) {
        uint32_t cap = have ? have * 2 : 8;
        pending_acks *a =
            realloc(c->acks, sizeof(*a) + (size_t)cap * sizeof(a->a[0]));
        if (!a)
            return IMQTT_ENOMEM;
        if (!c->acks)
            a->n = 0;
        a->cap = cap;
        c->acks = a;
    }
    c->acks->a[c->acks->n++] = (pending_ack){
        type, reason, pid, store_batch_gen(c->srv->store), dlo, dhi, NULL, 0};
    if (!c->in_ack_list) {
        c->in_ack_list = true;
        conn_ref(c);
        c->ack_next = c->w->ack_head;
        c->w->ack_head = c;
    }
    return 0;
}

static void release_suback(conn *c, pending_ack *a, int status)
{
    if (status < 0) {
        /* The subscriptions were not recorded: say so per filter. */
        for (uint32_t i = 0; i < a->ncodes; i++)
            if (a->codes[i] < 0x80)
                a->codes[i] =
                    c->version == MQTT_V5 ? MQTT_RC_QUOTA_EXCEEDED : 0x80;
    }
    mqtt_packet p = {.type = MQTT_SUBACK};
    p.u.suback.packet_id = a->packet_id;
    p.u.suback.codes = a->codes;
    p.u.suback.count = a->ncodes;
    conn_send(c, &p);
    free(a->codes);
}

void conn_release_acks(conn *c, int status)
{
    /* c may have been in the list of an earlier batch while these acks
     * were recorded: release only those whose batch is committed, keep
     * the rest for theirs. */
    uint64_t done = store_done_gen(c->srv->store);
    const cluster_hooks *ch = c->srv->cluster_hooks;
    uint32_t keep = 0;
    bool store_wait = false; /* else what is kept waits for the cluster */
    pending_acks *list = c->acks;
    uint32_t n = conn_nacks(c);
    for (uint32_t i = 0; i < n; i++) {
        pending_ack *a = &list->a[i];
        /* Once one waits, the rest wait behind it: acks keep the order of
         * their packets [MQTT-4.6.0-2]. */
        int durable = a->dhi && ch ? ch->durable_status(ch->arg, a->dlo, a->dhi)
                      : a->dhi     ? IMQTT_ECLUSTER /* the cluster stopped */
                                   : 1;
        if (keep || a->gen > done || durable == 0) {
            if (!keep)
                store_wait = a->gen > done;
            list->a[keep++] = *a;
            continue;
        }
        /* This callback may belong to a later batch than the ack's (the
         * connection was listed again for its newer acks): the ack's own
         * batch decides, or a refused message would be acknowledged. */
        status = server_batch_status(c->srv, a->gen);
        if (status == 0 && durable < 0)
            status = durable; /* not in the cluster's log: refuse it */
        if (c->state == CONN_CLOSING) {
            free(a->codes);
            continue;
        }
        if (a->type == MQTT_SUBACK) {
            release_suback(c, a, status);
            continue;
        }
        if (a->type == MQTT_PUBACK && c->inflight_in > 0)
            c->inflight_in--;
        uint8_t reason = a->reason;
        if (status < 0 && a->type == MQTT_PUBREC) {
            /* Not stored, so not received: a resend must be taken as new,
             * not answered as a duplicate. */
            if (c->sess)
                session_qos2_remove(c->sess, a->packet_id);
            if (c->inflight_in > 0)
                c->inflight_in--;
        }
        bool refusable = a->type == MQTT_PUBACK || a->type == MQTT_PUBREC;
        if (status < 0 && refusable) {
            /* Not stored: refuse rather than acknowledge [DESIGN.md]. */
            if (c->version != MQTT_V5) {
                conn_close(c);
                continue;
            }
            reason = MQTT_RC_QUOTA_EXCEEDED;
        }
        mqtt_packet p = {.type = a->type};
        p.u.ack.packet_id = a->packet_id;
        p.u.ack.reason = reason;
        conn_send(c, &p);
    }
    if (c->state == CONN_CLOSING) {
        for (uint32_t i = 0; i < keep; i++)
            free(list->a[i].codes);
        keep = 0;
    }
    if (list)
        list->n = keep;
    if (list && keep == 0 && list->cap <= 8) {
        /* Idle connections keep no ack array; a busy one's grown array
         * is kept for reuse. */
        free(list);
        c->acks = NULL;
    }
    if (conn_nacks(c) && !c->in_ack_list) {
        c->in_ack_list = true;
        conn_ref(c);
        conn **head = store_wait ? &c->w->ack_head : &c->w->cluster_head;
        c->ack_next = *head;
        *head = c;
    }
    conn_pressure_drain(c);
}

bool conn_output_full(const conn *c)
{
    return c->out.pending + c->bytes_in_flight > CONN_OUTPUT_LIMIT;
}

static void on_write_locked(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    conn *c = w->c;
    c->writes_in_flight--;
    c->bytes_in_flight -= w->ob.pending;
    if (status == 0)
        c->srv->stats.bytes_sent += w->ob.pending;
    outbuf_free(&w->ob);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        conn_abort(c);
    } else {
        conn_pressure_drain(c);
        maybe_finish_close(c);
    }
    conn_unref(c);
}

static void on_write(uv_write_t *req, int status)
{
    loop_lock();
    on_write_locked(req, status);
    loop_unlock();
}

static bool ensure_iov(worker *w, unsigned n)
{
    if (n <= w->iov_cap)
        return true;
    unsigned cap = w->iov_cap ? w->iov_cap : 64;
    while (cap < n)
        cap *= 2;
    uv_buf_t *iov = realloc(w->iov, cap * sizeof(*iov));
    if (!iov)
        return false;
    w->iov = iov;
    w->iov_cap = cap;
    return true;
}

void conn_flush(conn *c)
{
    server *srv = c->srv;
    if (c->handles_closing)
        return;
    if (c->tp && transport_encode(c) < 0) {
        conn_abort(c);
        return;
    }
    if (outbuf_empty(&c->out)) {
        maybe_finish_close(c);
        return;
    }
    unsigned nseg = c->out.nseg - c->out.head;
    if (!ensure_iov(c->w, nseg)) {
        conn_abort(c);
        return;
    }
    if (c->writes_in_flight == 0) {
        unsigned n = outbuf_to_bufs(&c->out, c->w->iov, nseg);
        int r = uv_try_write((uv_stream_t *)&c->tcp, c->w->iov, n);
        if (r > 0) {
            srv->stats.bytes_sent += (uint64_t)r;
            outbuf_consume(&c->out, (size_t)r);
            conn_pressure_drain(c);
        } else if (r < 0 && r != UV_EAGAIN) {
            conn_abort(c);
            return;
        }
        if (outbuf_empty(&c->out)) {
            outbuf_trim(&c->out);
            maybe_finish_close(c);
            return;
        }
    }
    /* The socket is full (or a write is queued): hand the rest to libuv,
     * which keeps the bytes ordered; the buffers move with the request. */
    write_req *w = malloc(sizeof(*w));
    if (!w) {
        conn_abort(c);
        return;
    }
    w->ob = c->out;
    memset(&c->out, 0, sizeof(c->out));
    w->c = c;
    unsigned n = outbuf_to_bufs(&w->ob, c->w->iov, nseg);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, c->w->iov, n, on_write) < 0) {
        outbuf_free(&w->ob);
        free(w);
        conn_abort(c);
        return;
    }
    conn_ref(c);
    c->writes_in_flight++;
    c->bytes_in_flight += w->ob.pending;
}

/* ---- writing outside the loop lock -------------------------------------
 *
 * With several loops the flush takes each plain-TCP connection's output
 * under the lock (conn_take_output), writes it without the lock
 * (conn_write_taken: the socket is the owner's alone, the bytes are no
 * longer the connection's) and settles under the lock again
 * (conn_settle_taken): other loops meanwhile append to a fresh output,
 * which goes after whatever the socket did not take. */

bool conn_take_output(conn *c, outbuf *ob)
{
    if (c->tp || c->handles_closing || c->writes_in_flight ||
        outbuf_empty(&c->out) || !ensure_iov(c->w, c->out.nseg - c->out.head))
        return false;
    *ob = c->out;
    memset(&c->out, 0, sizeof(c->out));
    c->writes_in_flight++; /* counted as in flight, as a queued write is */
    c->bytes_in_flight += ob->pending;
    return true;
}

int conn_write_taken(conn *c, const outbuf *ob)
{
    unsigned n = outbuf_to_bufs(ob, c->w->iov, ob->nseg - ob->head);
    return uv_try_write((uv_stream_t *)&c->tcp, c->w->iov, n);
}

bool conn_settle_taken(conn *c, outbuf *ob, int written)
{
    c->writes_in_flight--;
    c->bytes_in_flight -= ob->pending;
    if (written > 0) {
        c->srv->stats.bytes_sent += (uint64_t)written;
        outbuf_consume(ob, (size_t)written);
    }
    if (c->handles_closing || (written < 0 && written != UV_EAGAIN)) {
        outbuf_free(ob);
        if (!c->handles_closing)
            conn_abort(c);
        return false;
    }
    if (!outbuf_empty(ob)) {
        /* The socket is full: the rest goes first, then what came
         * meanwhile, through libuv's queue (conn_flush). */
        int rc = outbuf_append_all(ob, &c->out);
        c->out = *ob;
        if (rc < 0) {
            conn_abort(c);
            return false;
        }
        conn_flush(c);
        return false;
    }
    if (!c->out.arena && !c->out.segs)
        c->out = *ob; /* nothing came meanwhile: keep the memory */
    else
        outbuf_free(ob);
    conn_pressure_drain(c);
    if (!outbuf_empty(&c->out))
        return true; /* more to write: flush again */
    outbuf_trim(&c->out);
    maybe_finish_close(c);
    return false;
}

/* ---- input --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = h->data;
    if (c->in_len > 0 && !c->tp) {
        /* A packet is half read: read the rest straight into its buffer.
         * (With a transport, c->in holds decoded bytes, not socket bytes.) */
        buf->base = (char *)c->in + c->in_len;
        buf->len = c->in_cap - c->in_len;
        return;
    }
    c->w->readbuf_lent = true;
    buf->base = (char *)c->w->readbuf;
    buf->len = READBUF_SIZE;
}

void conn_fail(conn *c, int err)
{
    log_info("%s: closing: %s", conn_who(c), imqtt_strerror(err));
    if (err == IMQTT_ENOMEM)
        conn_abort(c);
    else
        conn_disconnect(c, mqtt_reason_for_error(err));
}

/* Handle every whole packet in buf[0..len); returns bytes consumed, and
 * sets *need to the size of the packet that is still incomplete. */
static size_t process(conn *c, const uint8_t *buf, size_t len, size_t *need)
{
    uint32_t max = c->srv->cfg.max_packet_size;
    size_t off = 0;
    *need = 0;
    while (off < len && (c->state == CONN_NEW || c->state == CONN_ACTIVE)) {
        if (c->state == CONN_NEW && (buf[off] >> 4) != MQTT_CONNECT) {
            /* Nothing but CONNECT is read before CONNECT (BAD_INPUTS row
             * 2): close at the first byte, allocate nothing. */
            conn_fail(c, IMQTT_EPROTOCOL);
            return len;
        }
        mqtt_frame f = {0};
        int r = mqtt_frame_parse(buf + off, len - off, max, &f);
        if (r == 0) {
            *need = f.header_len ? (size_t)f.header_len + f.remaining
                                 : len - off + 5;
            break;
        }
        if (r < 0) {
            conn_fail(c, r);
            return len;
        }
        c->last_rx = server_now(c->srv);
        if (f.type == MQTT_PUBLISH && c->state == CONN_ACTIVE &&
            (c->srv->cfg.msg_rate || c->srv->cfg.bytes_rate) &&
            !rate_limits_publish(c, (uint32_t)r)) {
            log_info("%s: over its message rate", conn_who(c));
            conn_disconnect(c, MQTT_RC_MESSAGE_RATE_TOO_HIGH);
            return len;
        }
        int rc = dispatch_packet(c, &f);
        if (rc < 0) {
            conn_fail(c, rc);
            return len;
        }
        off += (size_t)r;
    }
    return off;
}

static int keep_partial(conn *c, const uint8_t *src, size_t n, size_t need)
{
    if (need < n)
        need = n;
    if (need > c->in_cap) {
        /* src may point into c->in (the rest of a read into it): move the
         * bytes to the front first, so realloc carries them along. */
        bool inside = c->in && (uintptr_t)src >= (uintptr_t)c->in &&
                      (uintptr_t)src < (uintptr_t)c->in + c->in_cap;
        if (inside)
            memmove(c->in, src, n);
        uint8_t *p = realloc(c->in, need);
        if (!p)
            return IMQTT_ENOMEM;
        if (inside)
            src = p;
        c->in = p;
        c->in_cap = (uint32_t)need;
    }
    if (src != c->in)
        memmove(c->in, src, n);
    c->in_len = (uint32_t)n;
    return 0;
}

/* Handle the whole packets in data[0..len) (the lent read buffer or c->in)
 * and keep what is left of an incomplete one in c->in; idle connections
 * hold no input buffer. The caller holds a reference on c. */
static void consume(conn *c, const uint8_t *data, size_t len)
{
    size_t need;
    size_t used = process(c, data, len, &need);
    if (c->state == CONN_CLOSING)
        return;
    if (used == len) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
    } else if (keep_partial(c, data + used, len - used, need) < 0) {
        conn_abort(c);
    }
}

static void on_read_locked(uv_stream_t *stream, ssize_t nread,
                           const uv_buf_t *buf)
{
    conn *c = stream->data;
    server *srv = c->srv;
    bool lent = buf->base == (char *)c->w->readbuf;
    if (lent)
        c->w->readbuf_lent = false;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_debug("%s: read error: %s", conn_peer(c),
                      uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    srv->stats.bytes_received += (uint64_t)nread;
    conn_ref(c);
    if (c->tp)
        transport_on_read(c, (uint8_t *)buf->base, (size_t)nread);
    else if (lent)
        consume(c, c->w->readbuf, (size_t)nread);
    else
        consume(c, c->in, c->in_len + (size_t)nread);
    conn_pressure_check(c);
    conn_unref(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    loop_lock();
    on_read_locked(stream, nread, buf);
    loop_unlock();
}

void conn_read_start(conn *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void conn_feed(conn *c, uint8_t *data, size_t len)
{
    if (c->tp)
        transport_on_read(c, data, len);
    else
        conn_input(c, data, len);
}

void conn_input(conn *c, const uint8_t *data, size_t len)
{
    if (c->state == CONN_CLOSING || len == 0)
        return;
    conn_ref(c);
    if (c->in_len > 0) {
        /* Bounded: c->in holds less than one packet (<= max_packet_size)
         * and len is at most one read or one TLS record. */
        size_t total = (size_t)c->in_len + len;
        if (total > c->in_cap) {
            uint8_t *p = realloc(c->in, total);
            if (!p) {
                conn_abort(c);
                conn_unref(c);
                return;
            }
            c->in = p;
            c->in_cap = (uint32_t)total;
        }
        memcpy(c->in + c->in_len, data, len);
        c->in_len = (uint32_t)total;
        data = c->in;
        len = total;
    }
    consume(c, data, len);
    conn_unref(c);
}

/* ---- keepalive ----------------------------------------------------------- */

/* One deadline serves both: the keepalive and the token's exp. */
static void arm_keepalive(conn *c)
{
    uint64_t next = 0;
    /* While its input is paused the client's packets are not read, so
     * they cannot count: the stall deadline applies instead. */
    if (c->keepalive && !c->paused)
        next = c->last_rx + (uint64_t)c->keepalive * 1500;
    if (c->paused & CONN_PAUSED_OUTPUT) {
        uint64_t stall =
            c->paused_at + (uint64_t)c->srv->cfg.stall_timeout * 1000;
        if (!next || stall < next)
            next = stall;
    }
    if (c->auth_deadline && (!next || c->auth_deadline < next))
        next = c->auth_deadline;
    if (!next) {
        wheel_disarm(&c->w->wheel, &c->deadline);
        return;
    }
    arm_deadline(c, next);
}

static void on_keepalive(conn *c)
{
    uint64_t now = server_now(c->srv);
    const char *who = conn_who(c);
    if (c->state == CONN_NEW || c->state == CONN_AUTH) {
        log_info("%s: no CONNECT within %d ms", who, CONN_CONNECT_TIMEOUT_MS);
        conn_close(c);
        return;
    }
    if (c->auth_deadline && now >= c->auth_deadline) {
        log_info("%s: token expired", who);
        conn_disconnect(c, MQTT_RC_MAXIMUM_CONNECT_TIME);
        return;
    }
    if ((c->paused & CONN_PAUSED_OUTPUT) &&
        now - c->paused_at >= (uint64_t)c->srv->cfg.stall_timeout * 1000) {
        log_info("client %s: output not drained for %u s (%zu bytes "
                 "unwritten)",
                 who, c->srv->cfg.stall_timeout, conn_unwritten(c));
        metrics_count(c->srv, METRIC_STALLED);
        conn_disconnect(c, MQTT_RC_QUOTA_EXCEEDED);
        return;
    }
    /* One and a half keepalive periods without a packet [MQTT-3.1.2-24]. */
    if (c->keepalive && !c->paused &&
        now - c->last_rx >= (uint64_t)c->keepalive * 1500) {
        log_info("%s: keepalive timeout", who);
        conn_disconnect(c, MQTT_RC_KEEP_ALIVE_TIMEOUT);
        return;
    }
    arm_keepalive(c);
}

void conn_on_deadline(wheel_node *n)
{
    conn *c = (conn *)((char *)n - offsetof(conn, deadline));
    if (c->state == CONN_CLOSING)
        on_linger_timeout(c);
    else
        on_keepalive(c);
}

void conn_start_keepalive(conn *c)
{
    arm_keepalive(c);
}

void conn_resume_input(conn *c)
{
    if (c->state != CONN_ACTIVE)
        return;
    conn_ref(c);
    if (c->in_len > 0)
        consume(c, c->in, c->in_len);
    if (c->state == CONN_ACTIVE && !c->paused)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    conn_unref(c);
}

void conn_arm_connect_timeout(conn *c)
{
    arm_deadline(c, server_now(c->srv) + CONN_CONNECT_TIMEOUT_MS);
}
