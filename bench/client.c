/* The MQTT client side of imqtt-bench: one libuv TCP handle per
 * connection, CONNECT / SUBSCRIBE at start, publishing and acknowledging
 * with preallocated buffers.
 *
 * Output follows the broker's pattern: packets are appended to the
 * connection's buffer and written once per loop iteration (uv_prepare,
 * uv_try_write, uv_write for what the socket did not take). While a
 * uv_write owns one buffer, appends go to the other one. */
#include "bench.h"
#include "errors.h"
#include "tls.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CONNECTING 256 /* handshakes under way per thread */
#define ACK_ROOM       64  /* output room a receiver keeps for acks */

static void on_close(uv_handle_t *h);

static void conn_close(bench_conn *c, const char *why, int err)
{
    if (c->state >= CS_CLOSING)
        return;
    bool handshake = c->state == CS_CONNECTING || c->state == CS_CONNACK;
    if (handshake)
        c->th->connecting--;
    if (handshake && why)
        STAT_ADD(c->th, conn_failed, 1);
    else if (why && atomic_load(&G.phase) < PH_CLOSE)
        STAT_ADD(c->th, disconnects, 1);
    if (why && atomic_load(&G.phase) < PH_CLOSE) {
        bench_log_error(
            "%s: %s%s%s", c->client_id, why, err ? ": " : "",
            err ? (err < -999 ? imqtt_strerror(err) : uv_strerror(err)) : "");
    }
    /* A subscriber that leaves before its SUBACK is settled as failed,
     * so that set-up does not wait for it. */
    if ((c->sub_filter_len || c->sub_filter2_len) && c->state < CS_READY)
        STAT_ADD(c->th, sub_failed, 1);
    c->state = CS_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_close(uv_handle_t *h)
{
    bench_conn *c = (bench_conn *)h;
    c->state = CS_CLOSED;
    bench_tls_free(c->tls);
    c->tls = NULL;
}

int client_alloc(bench_conn *c, uint32_t rcap, uint32_t wcap)
{
    c->rcap = rcap;
    c->wcap = wcap;
    c->rbuf = malloc(rcap);
    c->wbuf[0] = malloc(wcap);
    c->wbuf[1] = malloc(wcap);
    if (!c->rbuf || !c->wbuf[0] || !c->wbuf[1])
        return IMQTT_ENOMEM;
    c->recv_max = 65535;
    c->wbase = G.o.ws ? WS_HEADROOM : 0;
    c->wlen[0] = c->wlen[1] = c->wbase;
    return 0;
}

bool client_has_room(const bench_conn *c, uint32_t need)
{
    return c->wlen[c->wcur] + need <= c->wcap;
}

static void mark_pending(bench_conn *c)
{
    if (!c->pending) {
        c->pending = true;
        c->next_pending = c->th->pending_head;
        c->th->pending_head = c;
    }
}

/* Encode p into the output buffer. Control packets are small and the
 * buffers are sized to always hold them; running out is a bug worth a
 * loud close, not silent loss. */
static int send_packet(bench_conn *c, const mqtt_packet *p)
{
    uint8_t *dst = c->wbuf[c->wcur] + c->wlen[c->wcur];
    int n =
        mqtt_encode(p, (uint8_t)G.o.version, dst, c->wcap - c->wlen[c->wcur]);
    if (n < 0) {
        conn_close(c, "encode", n);
        return n;
    }
    c->wlen[c->wcur] += (uint32_t)n;
    mark_pending(c);
    return 0;
}

static void send_ack(bench_conn *c, uint8_t type, uint16_t pid)
{
    mqtt_packet p = {.type = type};
    p.u.ack.packet_id = pid;
    send_packet(c, &p);
}

bool client_publish(bench_conn *c, const uint8_t *topic, uint16_t topic_len,
                    uint32_t len, int qos)
{
    if (c->state != CS_READY)
        return false;
    if (qos > 0 && c->acks_out >= c->recv_max)
        return false;
    uint32_t need = 5 + 2 + topic_len + 2 + 1 + len;
    if (!client_has_room(c, need))
        return false;
    mqtt_publish pub = {.qos = (uint8_t)qos, .retain = G.o.retain};
    pub.topic = mqtt_str_from((const char *)topic, topic_len);
    pub.payload = (mqtt_bytes){c->payload, len};
    if (qos > 0) {
        if (++c->next_pid == 0)
            c->next_pid = 1;
        pub.packet_id = c->next_pid;
    }
    uint8_t *dst = c->wbuf[c->wcur] + c->wlen[c->wcur];
    int n = mqtt_encode_publish_header(&pub, (uint8_t)G.o.version, dst,
                                       c->wcap - c->wlen[c->wcur]);
    if (n < 0)
        return false;
    memcpy(dst + n, c->payload, len);
    c->wlen[c->wcur] += (uint32_t)n + len;
    if (qos > 0)
        c->acks_out++;
    mark_pending(c);
    STAT_ADD(c->th, sent, 1);
    return true;
}

/* ---- input ------------------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    bench_conn *c = (bench_conn *)h;
    if (c->tls) {
        /* Ciphertext goes to the session; plaintext reaches rbuf through
         * tls_pull. */
        size_t len;
        buf->base = (char *)bench_tls_in_room(c->tls, &len);
        buf->len = len;
        return;
    }
    buf->base = (char *)c->rbuf + c->rlen;
    buf->len = c->rcap - c->rlen;
}

static void send_subscribe(bench_conn *c)
{
    uint8_t entries[256];
    mqtt_sub_entry e[2];
    memset(e, 0, sizeof(e));
    uint32_t count = 0;
    if (c->sub_filter_len)
        e[count++].filter = mqtt_str_from(c->sub_filter, c->sub_filter_len);
    if (c->sub_filter2_len)
        e[count++].filter = mqtt_str_from(c->sub_filter2, c->sub_filter2_len);
    for (uint32_t i = 0; i < count; i++) {
        e[i].opts.qos = (uint8_t)G.o.qos;
        e[i].opts.no_local = c->sub_opts_no_local && G.o.version == MQTT_V5;
    }
    int n = mqtt_sub_encode_entries(e, count, (uint8_t)G.o.version, entries,
                                    sizeof(entries));
    if (n < 0) {
        conn_close(c, "subscribe encode", n);
        return;
    }
    mqtt_packet p = {.type = MQTT_SUBSCRIBE};
    p.u.subscribe.packet_id = 1;
    p.u.subscribe.entries = (mqtt_bytes){entries, (uint32_t)n};
    p.u.subscribe.count = count;
    c->state = CS_SUBACK;
    send_packet(c, &p);
}

static void become_ready(bench_conn *c)
{
    c->state = CS_READY;
    if (G.ops.on_ready)
        G.ops.on_ready(c);
}

static void handle_connack(bench_conn *c, const mqtt_packet *p)
{
    if (p->u.connack.reason != 0) {
        char why[48];
        snprintf(why, sizeof(why), "CONNACK refused 0x%02x",
                 p->u.connack.reason);
        conn_close(c, why, 0);
        return;
    }
    c->th->connecting--;
    STAT_ADD(c->th, connected, 1);
    if (G.o.version == MQTT_V5 &&
        mqtt_props_has(&p->u.connack.props, MQTT_PROP_RECEIVE_MAXIMUM))
        c->recv_max = p->u.connack.props.receive_maximum;
    if (c->sub_filter_len || c->sub_filter2_len)
        send_subscribe(c);
    else
        become_ready(c);
}

static void handle_packet(bench_conn *c, const mqtt_packet *p)
{
    switch (p->type) {
    case MQTT_CONNACK:
        if (c->state == CS_CONNACK)
            handle_connack(c, p);
        break;
    case MQTT_SUBACK:
        for (uint32_t i = 0; i < p->u.suback.count; i++)
            if (p->u.suback.codes[i] >= 0x80) {
                conn_close(c, "SUBACK refused", 0);
                return;
            }
        STAT_ADD(c->th, subscribed, 1);
        become_ready(c);
        break;
    case MQTT_PUBLISH: {
        const mqtt_publish *pub = &p->u.publish;
        if (pub->qos == 1)
            send_ack(c, MQTT_PUBACK, pub->packet_id);
        else if (pub->qos == 2)
            send_ack(c, MQTT_PUBREC, pub->packet_id);
        if (G.ops.on_message)
            G.ops.on_message(c, pub);
        break;
    }
    case MQTT_PUBREL:
        send_ack(c, MQTT_PUBCOMP, p->u.ack.packet_id);
        break;
    case MQTT_PUBREC:
        send_ack(c, MQTT_PUBREL, p->u.ack.packet_id);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBCOMP:
        if (c->acks_out)
            c->acks_out--;
        STAT_ADD(c->th, acked, 1);
        c->stalled = true; /* let the scenario look again */
        break;
    case MQTT_DISCONNECT: {
        char why[48];
        snprintf(why, sizeof(why), "DISCONNECT from broker 0x%02x",
                 p->u.disconnect.reason);
        conn_close(c, why, 0);
        break;
    }
    default:
        break;
    }
}

/* Cut and handle whole packets from the input. Stops early when the
 * output has no room for more acks; the rest waits in rbuf until the
 * write callback makes room (reading is held meanwhile). */
static void process_input(bench_conn *c)
{
    uint32_t off = 0;
    while (c->state < CS_CLOSING) {
        if (!client_has_room(c, ACK_ROOM)) {
            if (!c->read_held) {
                c->read_held = true;
                uv_read_stop((uv_stream_t *)&c->tcp);
            }
            break;
        }
        mqtt_frame f;
        int n = mqtt_frame_parse(c->rbuf + off, c->rlen - off, 0, &f);
        if (n == 0)
            break;
        if (n < 0) {
            conn_close(c, "frame", n);
            return;
        }
        mqtt_packet p;
        int rc = mqtt_decode(&f, (uint8_t)G.o.version, &p);
        if (rc < 0) {
            conn_close(c, "decode", rc);
            return;
        }
        handle_packet(c, &p);
        off += (uint32_t)n;
    }
    if (off && c->state < CS_CLOSING) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (c->stalled && c->state == CS_READY && G.ops.on_room) {
        c->stalled = false;
        G.ops.on_room(c);
    }
}

static void send_connect(bench_conn *c);
static bool tls_write_out(bench_conn *c);

/* TLS: decrypt what the session holds into rbuf and handle it, until the
 * session is empty, rbuf is full, or input is held for want of output
 * room (the rest stays in the session until resume_input). */
static void tls_pull(bench_conn *c)
{
    while (c->state < CS_CLOSING && !c->read_held && c->rlen < c->rcap) {
        int k = bench_tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (k == 0)
            break;
        if (k < 0) {
            char eb[96];
            if (k == IMQTT_EIO)
                conn_close(c, "closed by broker", 0);
            else
                bench_log_error("%s: TLS read: %s", c->client_id,
                                bench_tls_strerror(k, eb, sizeof(eb)));
            conn_close(c, "TLS", 0);
            return;
        }
        c->rlen += (uint32_t)k;
        process_input(c);
    }
    /* The session may have records to send back (alerts). */
    if (c->state < CS_CLOSING)
        tls_write_out(c);
}

/* Handle input that waited for output room. */
static void resume_input(bench_conn *c)
{
    process_input(c);
    if (c->tls && c->state < CS_CLOSING)
        tls_pull(c);
}

/* TLS bytes arrived: drive the handshake, then decrypt. */
static void tls_on_read(bench_conn *c, size_t n)
{
    bench_tls_in_commit(c->tls, n);
    if (!bench_tls_ready(c->tls)) {
        int hs = bench_tls_handshake(c->tls);
        if (hs < 0) {
            char eb[96];
            bench_log_error("%s: TLS handshake: %s", c->client_id,
                            bench_tls_strerror(hs, eb, sizeof(eb)));
            conn_close(c, "TLS handshake", 0);
            return;
        }
        tls_write_out(c);
        if (hs == 0 || c->state >= CS_CLOSING)
            return;
        send_connect(c);
    }
    tls_pull(c);
    if (c->state < CS_CLOSING && c->rlen == c->rcap)
        conn_close(c, "packet larger than the read buffer", 0);
}

/* The upgrade response: once whole, what follows it is frames. Returns
 * 1 when upgraded, 0 need more, < 0 when the connection was closed. */
static int ws_upgraded(bench_conn *c)
{
    int r = ws_response(c->rbuf, c->rlen);
    if (r == 0 && c->rlen < c->rcap)
        return 0;
    if (r <= 0) {
        conn_close(c, "WebSocket upgrade refused", r);
        return -1;
    }
    uint32_t rest = c->rlen - (uint32_t)r;
    memmove(c->rbuf, c->rbuf + r, rest);
    c->ws_state = 2;
    int k = ws_unframe(&c->ws, c->rbuf, rest);
    if (k < 0) {
        conn_close(c, "WebSocket", k);
        return -1;
    }
    c->rlen = (uint32_t)k;
    send_connect(c);
    return 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    bench_conn *c = (bench_conn *)s;
    if (n < 0) {
        conn_close(c, n == UV_EOF ? "closed by broker" : "read",
                   n == UV_EOF ? 0 : (int)n);
        return;
    }
    if (c->tls) {
        tls_on_read(c, (size_t)n);
        return;
    }
    if (c->ws_state == 2) {
        int k = ws_unframe(&c->ws, c->rbuf + c->rlen, (uint32_t)n);
        if (k < 0) {
            conn_close(c, "WebSocket", k);
            return;
        }
        n = k;
    }
    c->rlen += (uint32_t)n;
    if (c->ws_state == 1 && ws_upgraded(c) <= 0)
        return;
    process_input(c);
    if (c->state < CS_CLOSING && c->rlen == c->rcap)
        conn_close(c, "packet larger than the read buffer", 0);
}

/* ---- output ------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status)
{
    bench_conn *c = req->data;
    c->writing = false;
    if (c->tls)
        bench_tls_out_done(c->tls); /* the plaintext was consumed already */
    else
        c->wlen[!c->wcur] = c->wbase;
    if (c->state >= CS_CLOSING)
        return;
    if (status < 0) {
        conn_close(c, "write", status);
        return;
    }
    if (c->tls && !tls_write_out(c))
        return;
    if (c->wlen[c->wcur] > c->wbase)
        mark_pending(c);
    if (c->read_held) {
        c->read_held = false;
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
        resume_input(c);
    } else if (G.ops.on_room && c->state == CS_READY) {
        G.ops.on_room(c);
    }
}

/* TLS: write the session's ciphertext. Returns true when all of it was
 * written, false when a write is (now) in flight or the connection
 * closed. */
static bool tls_write_out(bench_conn *c)
{
    if (c->writing)
        return false;
    uint32_t len;
    uint8_t *p = bench_tls_out(c->tls, &len);
    if (len == 0)
        return true;
    uv_buf_t b = uv_buf_init((char *)p, len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        conn_close(c, "write", n);
        return false;
    }
    c->last_tx_ns = bench_now_ns();
    bench_tls_out_consume(c->tls, (uint32_t)n);
    if ((uint32_t)n == len)
        return true;
    p = bench_tls_out(c->tls, &len);
    b = uv_buf_init((char *)p, len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        conn_close(c, "write", rc);
        return false;
    }
    c->writing = true;
    bench_tls_out_swap(c->tls);
    return false;
}

/* After all output was written: input held for want of room can go on,
 * and a publisher that was out of room can send. */
static void room_again(bench_conn *c)
{
    if (c->read_held) {
        c->read_held = false;
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
        resume_input(c);
    } else if (c->pub_id >= 0 && G.ops.on_room && c->state == CS_READY) {
        G.ops.on_room(c);
    }
}

/* TLS: encrypt the pending plaintext (all of it: the session's output
 * buffer grows), then write the ciphertext. */
static void flush_tls(bench_conn *c)
{
    if (c->writing || c->state >= CS_CLOSING || c->state == CS_CONNECTING)
        return;
    uint32_t len = c->wlen[c->wcur] - c->wbase;
    if (len && bench_tls_ready(c->tls)) {
        int rc = bench_tls_write(c->tls, c->wbuf[c->wcur] + c->wbase, len);
        if (rc < 0) {
            char eb[96];
            bench_log_error("%s: TLS write: %s", c->client_id,
                            bench_tls_strerror(rc, eb, sizeof(eb)));
            conn_close(c, "TLS", 0);
            return;
        }
        c->wlen[c->wcur] = c->wbase;
    }
    if (tls_write_out(c))
        room_again(c);
}

static void flush_conn(bench_conn *c)
{
    if (c->tls) {
        flush_tls(c);
        return;
    }
    uint32_t len = c->wlen[c->wcur] - c->wbase;
    if (c->writing || len == 0 || c->state >= CS_CLOSING ||
        c->state == CS_CONNECTING)
        return;
    uint8_t *base = c->wbuf[c->wcur] + c->wbase;
    if (c->ws_state) {
        int h = ws_frame_header(len, base);
        base -= h;
        len += (uint32_t)h;
    }
    uv_buf_t b = uv_buf_init((char *)base, len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        conn_close(c, "write", n);
        return;
    }
    c->last_tx_ns = bench_now_ns();
    if ((uint32_t)n == len) {
        c->wlen[c->wcur] = c->wbase;
        room_again(c);
        return;
    }
    /* The socket is full: hand the rest to uv_write, append elsewhere. */
    b = uv_buf_init((char *)base + n, len - (uint32_t)n);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        conn_close(c, "write", rc);
        return;
    }
    c->writing = true;
    c->wcur ^= 1;
}

static void on_prepare(uv_prepare_t *h)
{
    bench_thread *th = h->data;
    /* Flushing can produce more output (held input processed, a
     * publisher refilling its window); a few rounds write that too
     * before the loop sleeps, without letting one busy publisher keep
     * the loop from polling. */
    for (int round = 0; round < 4 && th->pending_head; round++) {
        bench_conn *c = th->pending_head;
        th->pending_head = NULL;
        while (c) {
            bench_conn *next = c->next_pending;
            c->pending = false;
            flush_conn(c);
            c = next;
        }
    }
}

void client_thread_init(bench_thread *th)
{
    uv_prepare_init(&th->loop, &th->flush);
    th->flush.data = th;
    uv_prepare_start(&th->flush, on_prepare);
}

/* ---- connecting -------------------------------------------------------- */

static void send_connect(bench_conn *c)
{
    mqtt_packet p = {.type = MQTT_CONNECT};
    mqtt_connect *k = &p.u.connect;
    k->version = (uint8_t)G.o.version;
    k->clean_start = G.o.clean;
    k->keepalive = (uint16_t)G.o.keepalive;
    k->client_id = mqtt_str_from(c->client_id, strlen(c->client_id));
    const char *user = G.o.user, *pass = G.o.pass;
    if (c->password[0])
        pass = c->password;
    size_t ulen = user ? strlen(user) : 0;
    if (G.o.cmd == CMD_IM && !user) {
        /* The IM identity is the client id user@device; the user name
         * carries the user part (the JWT's sub must equal it). */
        user = c->client_id;
        ulen = strcspn(user, "@");
    }
    if (user) {
        k->has_username = true;
        k->username = mqtt_str_from(user, ulen);
    }
    if (pass) {
        k->has_password = true;
        k->password =
            (mqtt_bytes){(const uint8_t *)pass, (uint32_t)strlen(pass)};
    }
    if (G.o.version == MQTT_V5) {
        /* Let the broker fill our window; we ack as fast as we read. */
        k->props.receive_maximum = 65535;
        mqtt_props_set(&k->props, MQTT_PROP_RECEIVE_MAXIMUM);
        if (!G.o.clean) {
            k->props.session_expiry = 3600;
            mqtt_props_set(&k->props, MQTT_PROP_SESSION_EXPIRY);
        }
    }
    c->state = CS_CONNACK;
    send_packet(c, &p);
}

static void on_connect(uv_connect_t *req, int status)
{
    bench_conn *c = req->data;
    if (c->state >= CS_CLOSING)
        return;
    if (status < 0) {
        conn_close(c, "connect", status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (G.o.tls) {
        /* CONNECT goes out once the handshake is done (tls_on_read). */
        c->tls = bench_tls_new(c->th->tls_conf, G.o.tls_name);
        if (!c->tls) {
            conn_close(c, "TLS session", IMQTT_ENOMEM);
            return;
        }
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
        if (bench_tls_handshake(c->tls) < 0) {
            conn_close(c, "TLS handshake", 0);
            return;
        }
        tls_write_out(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    if (G.o.ws) {
        /* The upgrade goes out alone, before any frame; an empty socket
         * takes a few hundred bytes at once. */
        char up[512];
        int n = ws_request(G.o.host, G.o.port, up, sizeof(up));
        uv_buf_t b = uv_buf_init(up, n > 0 ? (unsigned)n : 0);
        if (n < 0 || uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != n) {
            conn_close(c, "WebSocket upgrade request", 0);
            return;
        }
        c->ws_state = 1;
        return;
    }
    send_connect(c);
}

void client_start(bench_conn *c)
{
    bench_thread *th = c->th;
    uv_tcp_init(&th->loop, &c->tcp);
    c->state = CS_CONNECTING;
    th->connecting++;
    int rc;
    if (G.o.n_ifaddr) {
        struct sockaddr_in src;
        uv_ip4_addr(G.o.ifaddr[c->index % (uint32_t)G.o.n_ifaddr], 0, &src);
        rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
        if (rc < 0) {
            conn_close(c, "bind", rc);
            return;
        }
    }
    struct sockaddr_in dst;
    uv_ip4_addr(G.o.host, G.o.port, &dst);
    c->creq.data = c;
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&dst,
                        on_connect);
    if (rc < 0)
        conn_close(c, "connect", rc);
}

/* Start connections that are due: conn k at k * interval after start, at
 * most MAX_CONNECTING handshakes at once per thread. */
void client_connect_due(bench_thread *th, uint64_t now)
{
    uint64_t iv = (uint64_t)G.o.conn_interval_ms * 1000000u;
    while (th->next_connect < th->nconns && th->connecting < MAX_CONNECTING) {
        bench_conn *c = th->conns[th->next_connect];
        if (iv && now < th->connect_t0 + (uint64_t)c->index * iv)
            break;
        th->next_connect++;
        client_start(c);
    }
}

/* Keep-alive: a PINGREQ when nothing was sent for 3/4 of the interval. */
void client_keepalive(bench_thread *th, uint64_t now)
{
    if (G.o.keepalive <= 0)
        return;
    uint64_t limit = (uint64_t)G.o.keepalive * 750000000u;
    for (uint32_t i = 0; i < th->nconns; i++) {
        bench_conn *c = th->conns[i];
        if (c->state == CS_READY && now - c->last_tx_ns > limit) {
            mqtt_packet p = {.type = MQTT_PINGREQ};
            send_packet(c, &p);
            c->last_tx_ns = now;
        }
    }
}

void client_disconnect(bench_conn *c)
{
    if (c->state >= CS_CLOSING || c->state == CS_IDLE)
        return;
    if (c->state == CS_READY && !c->writing) {
        /* Best effort: what is buffered, then DISCONNECT, in one write
         * (a part the socket does not take goes with the handle). */
        mqtt_packet p = {.type = MQTT_DISCONNECT};
        if (send_packet(c, &p) == 0)
            flush_conn(c);
    }
    conn_close(c, NULL, 0);
}
