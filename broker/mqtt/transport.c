/* TLS, WebSocket and WSS connections (see transport.h): the glue between
 * conn.c, the pure WebSocket code (ws.c) and mbedTLS (tls.c). */
#include "transport.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "conn_log.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "ws.h"

enum ws_state { WS_HTTP, WS_OPEN, WS_CLOSED };

struct transport {
    tls_conn *tls; /* owned; NULL for plain ws */
    bool ws;
    enum ws_state ws_state;
    bool close_sent;     /* close frame / close_notify queued */
    uint16_t close_code; /* for our close frame; 0 = 1000 */
    char *http;          /* owned: the upgrade request so far (WS_HTTP) */
    size_t http_len;
    ws_reader rd;
    outbuf wire; /* encoded bytes waiting for conn_flush */
};

/* Output of a TLS connection is gathered here before encryption, so one
 * MQTT write of many small packets becomes few TLS records. One per
 * thread (so one per loop): shared by its connections, never held across
 * calls. */
static _Thread_local uint8_t seal_scratch[16384];
static _Thread_local size_t seal_len;

/* ---- listener ------------------------------------------------------------ */

static bool is_tls(enum listener_transport t)
{
    return t == TRANSPORT_TLS || t == TRANSPORT_WSS;
}

static int make_tls(const listener_config *lc, tls_server **out)
{
    const listener_tls_config *t = &lc->tls;
    tls_options o = {t->cert_file, t->key_file, t->ca_file, t->verify_client,
                     t->ciphers};
    char err[256];
    int rc = tls_server_new(&o, out, err, sizeof(err));
    if (rc < 0)
        log_error("listener %s: %s", log_hostport(lc->bind, lc->port), err);
    return rc;
}

int transport_listener_start(listener *lst)
{
    if (!is_tls(lst->cfg->transport))
        return 0;
    return make_tls(lst->cfg, &lst->tls);
}

int transport_listener_reload(listener *lst, const listener_config *cfg)
{
    if (!is_tls(cfg->transport))
        return 0;
    tls_server *t = NULL;
    int rc = make_tls(cfg, &t);
    if (rc < 0)
        return rc;
    tls_server_unref(lst->tls);
    lst->tls = t;
    return 0;
}

void transport_listener_free(listener *lst)
{
    tls_server_unref(lst->tls);
    lst->tls = NULL;
}

/* ---- connection ---------------------------------------------------------- */

int transport_attach(conn *c)
{
    enum listener_transport kind = c->lst->cfg->transport;
    if (kind == TRANSPORT_TCP)
        return 0;
    transport *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return IMQTT_ENOMEM;
    tp->ws = kind == TRANSPORT_WS || kind == TRANSPORT_WSS;
    if (is_tls(kind)) {
        tp->tls = tls_conn_new(c->lst->tls, &tp->wire);
        if (!tp->tls) {
            free(tp);
            return IMQTT_ENOMEM;
        }
    }
    c->tp = tp;
    return 0;
}

void transport_free(conn *c)
{
    transport *tp = c->tp;
    if (!tp)
        return;
    tls_conn_free(tp->tls);
    outbuf_free(&tp->wire);
    free(tp->http);
    free(tp);
    c->tp = NULL;
}

const char *transport_cert_identity(const conn *c)
{
    if (!c->tp || !c->tp->tls || !c->lst->cfg->tls.identity_from_cert)
        return NULL;
    return tls_conn_peer_identity(c->tp->tls);
}

/* Bytes for the peer, below the WebSocket layer: encrypted when TLS. */
static int emit(conn *c, const uint8_t *p, size_t n)
{
    transport *tp = c->tp;
    int rc = 0;
    if (tp->tls) {
        rc = tls_conn_write(tp->tls, p, n);
    } else {
        uint8_t *dst = outbuf_reserve(&tp->wire, n);
        if (!dst)
            return IMQTT_ENOMEM;
        memcpy(dst, p, n);
        rc = outbuf_commit(&tp->wire, n);
    }
    worker_want_flush(c->w, c);
    return rc;
}

/* ---- WebSocket ----------------------------------------------------------- */

static int ws_control(conn *c, uint8_t op, const uint8_t *p, size_t n)
{
    uint8_t frame[2 + WS_CONTROL_MAX];
    size_t h = ws_frame_header(frame, op, n);
    memcpy(frame + h, p, n);
    return emit(c, frame, h + n);
}

static void ws_send_close(conn *c, uint16_t code)
{
    transport *tp = c->tp;
    if (tp->close_sent)
        return;
    tp->close_sent = true;
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    ws_control(c, WS_OP_CLOSE, b, code == 1005 ? 0 : 2);
    if (tp->tls)
        tls_conn_close_notify(tp->tls);
}

static void ws_fail(conn *c, uint16_t code)
{
    log_info("%s: WebSocket: closing with %u", conn_peer(c), code);
    metrics_count(c->srv, METRIC_WS_PROTOCOL_ERRORS);
    c->tp->ws_state = WS_CLOSED;
    ws_send_close(c, code);
    conn_close(c);
}

static void http_refuse(conn *c, int status)
{
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, ws_http_reason(status),
                     status == 426 ? "Upgrade: websocket\r\n"
                                     "Sec-WebSocket-Version: 13\r\n"
                                   : "");
    log_info("%s: WebSocket upgrade refused: %d %s", conn_peer(c), status,
             ws_http_reason(status));
    metrics_count(c->srv, METRIC_WS_UPGRADE_REFUSED);
    c->tp->ws_state = WS_CLOSED;
    c->tp->close_sent = true; /* no WebSocket here to close */
    emit(c, (const uint8_t *)resp, (size_t)n);
    conn_close(c);
}

/* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (RFC 6455 4.2.2). */
static int accept_key(const char *key, size_t key_len, char out[32])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t buf[64], digest[20];
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, guid, sizeof(guid) - 1);
    if (mbedtls_sha1_ret(buf, key_len + sizeof(guid) - 1, digest) != 0)
        return IMQTT_EIO;
    size_t olen = 0;
    if (mbedtls_base64_encode((uint8_t *)out, 32, &olen, digest, 20) != 0)
        return IMQTT_EIO;
    return 0;
}

static int http_accept(conn *c, const ws_http_req *req)
{
    char acc[32];
    if (accept_key(req->key, req->key_len, acc) < 0)
        return IMQTT_EIO;
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     acc, req->protocol ? "Sec-WebSocket-Protocol: " : "",
                     req->protocol ? req->protocol : "",
                     req->protocol ? "\r\n" : "");
    c->tp->ws_state = WS_OPEN;
    return emit(c, (const uint8_t *)resp, (size_t)n);
}

static void ws_frames(conn *c, uint8_t *p, size_t n)
{
    transport *tp = c->tp;
    size_t off = 0;
    while (off < n && tp->ws_state == WS_OPEN && c->state != CONN_CLOSING) {
        ws_event ev;
        int r = ws_read(&tp->rd, p + off, n - off, &ev);
        if (r < 0) {
            ws_fail(c, (uint16_t)-r);
            return;
        }
        off += (size_t)r;
        switch (ev.type) {
        case WS_EV_DATA:
            conn_input(c, ev.data, ev.len);
            break;
        case WS_EV_PING:
            ws_control(c, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_EV_CLOSE:
            /* Answer with the same code (RFC 6455 5.5.1), then go. A close
             * without MQTT DISCONNECT is a lost connection: the will runs. */
            log_debug("%s: WebSocket close %u from the peer", conn_peer(c),
                      ev.code);
            tp->ws_state = WS_CLOSED;
            ws_send_close(c, ev.code);
            conn_close(c);
            return;
        default:
            break;
        }
    }
}

static void ws_input(conn *c, uint8_t *p, size_t n)
{
    transport *tp = c->tp;
    if (tp->ws_state == WS_OPEN) {
        ws_frames(c, p, n);
        return;
    }
    if (tp->ws_state == WS_CLOSED)
        return;
    if (!tp->http && !(tp->http = malloc(WS_HTTP_MAX))) {
        conn_close(c);
        return;
    }
    size_t room = WS_HTTP_MAX - tp->http_len;
    size_t take = n < room ? n : room;
    memcpy(tp->http + tp->http_len, p, take);
    tp->http_len += take;
    ws_http_req req;
    const char *path = c->lst->cfg->ws_path ? c->lst->cfg->ws_path : "/mqtt";
    int rc = ws_http_parse(tp->http, tp->http_len, path, &req);
    if (rc == 0)
        return;
    if (rc < 0) {
        http_refuse(c, -rc);
        return;
    }
    if (http_accept(c, &req) < 0) {
        conn_close(c);
        return;
    }
    /* Frames may follow the request in the same read. */
    size_t extra = tp->http_len - (size_t)rc;
    char *http = tp->http;
    tp->http = NULL;
    ws_frames(c, (uint8_t *)http + rc, extra);
    free(http);
    if (take < n && c->state != CONN_CLOSING)
        ws_frames(c, p + take, n - take);
}

/* ---- read / write / close ------------------------------------------------ */

static int on_plain(void *arg, uint8_t *data, size_t len)
{
    conn *c = arg;
    if (c->tp->ws)
        ws_input(c, data, len);
    else
        conn_input(c, data, len);
    return c->state == CONN_CLOSING ? -1 : 0;
}

void transport_on_read(conn *c, uint8_t *data, size_t len)
{
    transport *tp = c->tp;
    if (!tp->tls) {
        conn_ref(c);
        ws_input(c, data, len);
        conn_unref(c);
        return;
    }
    conn_ref(c);
    bool was = tls_conn_established(tp->tls);
    int rc = tls_conn_input(tp->tls, data, len, on_plain, c);
    if (!was && tls_conn_established(tp->tls))
        log_debug("%s: TLS established: %s %s", conn_peer(c),
                  tls_conn_version(tp->tls), tls_conn_suite(tp->tls));
    if (!outbuf_empty(&tp->wire))
        worker_want_flush(c->w, c);
    if (rc < 0 && c->state != CONN_CLOSING) {
        /* One connection's failure: the alert mbedTLS queued is written,
         * then this connection closes; the listener serves on. */
        if (!was) {
            log_info("%s: TLS handshake failed: %s", conn_peer(c),
                     tls_conn_error(tp->tls));
            metrics_count(c->srv, METRIC_TLS_HANDSHAKE_FAILED);
        } else {
            log_info("%s: TLS error: %s", conn_peer(c),
                     tls_conn_error(tp->tls));
        }
        tp->close_sent = true;
        conn_close(c);
    } else if (rc == 1 && c->state != CONN_CLOSING) {
        conn_close(c);
    }
    conn_unref(c);
}

static int seal_flush(transport *tp)
{
    int rc = tls_conn_write(tp->tls, seal_scratch, seal_len);
    seal_len = 0;
    return rc;
}

static int put(transport *tp, const uint8_t *p, size_t n)
{
    if (!tp->tls) {
        uint8_t *dst = outbuf_reserve(&tp->wire, n);
        if (!dst)
            return IMQTT_ENOMEM;
        memcpy(dst, p, n);
        return outbuf_commit(&tp->wire, n);
    }
    while (n > 0) {
        size_t k = sizeof(seal_scratch) - seal_len;
        if (k > n)
            k = n;
        memcpy(seal_scratch + seal_len, p, k);
        seal_len += k;
        p += k;
        n -= k;
        if (seal_len == sizeof(seal_scratch)) {
            int rc = seal_flush(tp);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int transport_encode(conn *c)
{
    transport *tp = c->tp;
    outbuf *ob = &c->out;
    int rc = 0;
    bool drop = tp->ws && tp->ws_state != WS_OPEN;
    if (!outbuf_empty(ob) && !drop) {
        seal_len = 0;
        if (tp->ws) {
            uint8_t h[10];
            size_t hl = ws_frame_header(h, WS_OP_BINARY, ob->pending);
            rc = put(tp, h, hl);
        }
        for (uint32_t i = ob->head; rc == 0 && i < ob->nseg; i++) {
            const out_seg *s = &ob->segs[i];
            rc = put(tp, s->ref ? s->ptr : ob->arena + s->off, s->len);
        }
        if (rc == 0 && tp->tls && seal_len > 0)
            rc = seal_flush(tp);
    }
    outbuf_consume(ob, ob->pending);
    outbuf tmp = *ob;
    *ob = tp->wire;
    tp->wire = tmp;
    return rc;
}

bool transport_close_begin(conn *c)
{
    transport *tp = c->tp;
    if (tp->close_sent)
        return false;
    tp->close_sent = true;
    if (tp->ws && tp->ws_state == WS_OPEN) {
        tp->close_sent = false;
        ws_send_close(c, WS_CLOSE_NORMAL);
    } else if (tp->tls && !tp->ws) {
        tls_conn_close_notify(tp->tls);
    }
    return !outbuf_empty(&tp->wire);
}
