/* A connection's start: accepted from a listener or adopted from a
 * socket, counted and listed on its worker, checked against the limits
 * (rate per address, PROXY header, connection counts), given its
 * transport, then read (conn.h: conn_accept, conn_adopt). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "conn_proxy.h"
#include "errors.h"
#include "log.h"
#include "rate_limits.h"
#include "transport.h"

/* A new connection on lst, counted and listed; its stream is not yet
 * connected to anything. */
static conn *conn_new(listener *lst, worker *w)
{
    server *srv = lst->srv;
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    c->w = w;
    c->lst = lst;
    uv_tcp_init(c->w->loop, &c->tcp);
    c->tcp.data = c;
    c->handles_open = 1;
    c->w->conns_alive++;
    c->next = c->w->conns;
    if (c->w->conns)
        c->w->conns->prev = c;
    c->w->conns = c;
    c->w->nconns++;
    lst->nconns++;
    return c;
}

/* The limits, the transport, then reading. Returns 0, or -1 when c was
 * refused (and closed). */
static int conn_begin(conn *c)
{
    server *srv = c->srv;
    listener *lst = c->lst;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
        char ip[48] = "?";
        conn_addr *a = &c->peer;
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
            uv_ip6_name(s6, ip, sizeof(ip));
            memcpy(a->ip, &s6->sin6_addr, 16);
            a->port = ntohs(s6->sin6_port);
            a->family = 6;
        } else {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
            uv_ip4_name(s4, ip, sizeof(ip));
            memcpy(a->ip, &s4->sin_addr, 4);
            a->port = ntohs(s4->sin_port);
            a->family = 4;
        }
        /* a PROXY listener limits the client's address, once the header
         * has told it (conn_proxy.c) */
        if (!lst->cfg->proxy_protocol && !rate_limits_accept(srv, ip)) {
            log_warn("%s: refused: connection rate limit", conn_peer(c));
            conn_abort(c);
            return -1;
        }
    }
    if (lst->cfg->proxy_protocol && !conn_proxy_trusted(c)) {
        conn_abort(c);
        return -1;
    }
    if ((srv->cfg.max_connections &&
         server_nconns(srv) > srv->cfg.max_connections) ||
        (lst->cfg->max_connections &&
         lst->nconns > lst->cfg->max_connections)) {
        log_warn("%s: refused: too many connections", conn_peer(c));
        metrics_count(srv, METRIC_REFUSED_MAX_CONN);
        conn_abort(c);
        return -1;
    }
    if (transport_attach(c) < 0) {
        conn_abort(c);
        return -1;
    }
    srv->stats.conns_total++;
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_rx = server_now(srv);
    conn_arm_connect_timeout(c);
    if (lst->cfg->proxy_protocol)
        conn_proxy_read_start(c);
    else
        conn_read_start(c);
    return 0;
}

void conn_accept(listener *lst)
{
    conn *c = conn_new(lst, lst->w);
    if (!c)
        return;
    if (uv_accept((uv_stream_t *)&lst->tcp, (uv_stream_t *)&c->tcp) < 0) {
        conn_abort(c);
        return;
    }
    (void)conn_begin(c);
}

int conn_adopt(listener *lst, uv_os_sock_t fd)
{
    return conn_adopt_on(lst, lst->w, fd);
}

int conn_adopt_on(listener *lst, worker *w, uv_os_sock_t fd)
{
    conn *c = conn_new(lst, w);
    if (!c)
        return IMQTT_ENOMEM;
    c->peer.family = 1; /* shown as "fd:N" */
    c->peer.port = (uint16_t)fd;
    if (uv_tcp_open(&c->tcp, fd) < 0) {
        close(fd);
        conn_abort(c);
        return IMQTT_EIO;
    }
    return conn_begin(c) == 0 ? 0 : IMQTT_EIO;
}
