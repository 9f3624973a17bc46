/* The operations HTTP listener (off by default): GET /metrics in
 * Prometheus text format, GET /healthz. HTTP/1.1 without keep-alive:
 * one request per connection, answered, then closed. */
#ifndef IMQTT_HTTP_H
#define IMQTT_HTTP_H

#include "server.h"

typedef struct http_listener http_listener;

/* Listen on srv->cfg.http_bind:http_port. Returns 0 (and *out NULL when
 * the listener is off) or a negative error (logged). */
int http_start(server *srv, http_listener **out);
/* Stop listening and close open requests; memory is freed in the close
 * callbacks. */
void http_stop(http_listener *h);

#endif
