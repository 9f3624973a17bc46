/* The PROXY header phase of a connection (conn_proxy.h). While it lasts,
 * c->in is the header buffer (PROXY_HDR_MAX bytes, allocated on the first
 * read): no MQTT byte has been read yet, so nothing else uses it. */
#include "conn_proxy.h"

#include "errors.h"
#include "log.h"
#include "loop_lock.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "rate_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool conn_proxy_trusted(conn *c)
{
    const listener_config *lc = c->lst->cfg;
    const conn_addr *a = &c->peer;
    if ((a->family == 4 || a->family == 6) &&
        proxy_net_match(lc->proxy_from, lc->proxy_from_count, a->family, a->ip))
        return true;
    log_warn("%s: refused: not a proxy_from address of PROXY listener %s:%u",
             conn_peer(c), lc->bind, lc->port);
    metrics_count(c->srv, METRIC_REFUSED_PROXY);
    return false;
}

static void proxy_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = h->data;
    if (!c->in) {
        c->in = malloc(PROXY_HDR_MAX);
        c->in_len = 0;
        c->in_cap = c->in ? PROXY_HDR_MAX : 0;
    }
    /* proxy_parse refuses a header longer than the buffer, so there is
     * always room left while it waits for more */
    buf->base = (char *)c->in + c->in_len;
    buf->len = c->in_cap - c->in_len; /* 0 without memory: UV_ENOBUFS */
}

static void refuse(conn *c, const char *why)
{
    log_warn("%s: refused on PROXY listener %s:%u: %s", conn_peer(c),
             c->lst->cfg->bind, c->lst->cfg->port, why);
    metrics_count(c->srv, METRIC_REFUSED_PROXY);
    conn_abort(c);
}

static void proxy_read_locked(uv_stream_t *stream, ssize_t nread,
                              const uv_buf_t *buf)
{
    (void)buf;
    conn *c = stream->data;
    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            conn_abort(c);
        } else if (c->in_len == 0) {
            /* a port probe, or a check that only connects */
            log_debug("%s: closed before sending anything", conn_peer(c));
            conn_close(c);
        } else {
            refuse(c, "closed in the middle of its PROXY header");
        }
        return;
    }
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    c->srv->stats.bytes_received += (uint64_t)nread;
    c->in_len += (uint32_t)nread;
    proxy_info info;
    int n = proxy_parse(c->in, c->in_len, &info);
    if (n == 0)
        return;
    if (n < 0) {
        refuse(c, imqtt_strerror(n));
        return;
    }
    char via[64];
    snprintf(via, sizeof via, "%s", conn_peer(c));
    if (info.family != 0) {
        c->peer.family = info.family;
        memset(c->peer.ip, 0, sizeof c->peer.ip);
        memcpy(c->peer.ip, info.src, info.family == 4 ? 4 : 16);
        c->peer.port = info.src_port;
    }
    log_debug("%s: PROXY v%u header from %s", conn_peer(c), info.version, via);
    /* the rate limit is the client's, now that it is known */
    char ip[48] = "?";
    uv_inet_ntop(c->peer.family == 6 ? AF_INET6 : AF_INET, c->peer.ip, ip,
                 sizeof ip);
    if (!rate_limits_accept(c->srv, ip)) {
        log_warn("%s: refused: connection rate limit", conn_peer(c));
        conn_abort(c);
        return;
    }
    /* Hand over: the MQTT read path takes the socket and the bytes after
     * the header; the header buffer is ours to free. */
    uint8_t *hold = c->in;
    size_t total = c->in_len;
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    uv_read_stop(stream);
    conn_read_start(c);
    if (total > (size_t)n)
        conn_feed(c, hold + n, total - (size_t)n);
    free(hold);
}

static void proxy_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    loop_lock();
    proxy_read_locked(stream, nread, buf);
    loop_unlock();
}

void conn_proxy_read_start(conn *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, proxy_alloc, proxy_read);
}
