/* The Prometheus text of /metrics (served by http.c): srv->stats,
 * srv->metrics and gauges read from the server's state. */
#ifndef IMQTT_METRICS_RENDER_H
#define IMQTT_METRICS_RENDER_H

#include <stddef.h>

struct server;

/* Render every metric in Prometheus text format 0.0.4 into a malloc'd
 * string (caller frees); *len gets its length. NULL on ENOMEM. */
char *metrics_render(struct server *srv, size_t *len);

#endif
