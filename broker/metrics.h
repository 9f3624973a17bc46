/* Counters for refusals and failures that srv->stats does not keep, and
 * the Prometheus text rendering of both (served by http.c on /metrics).
 *
 * Counting is one increment on the loop thread: no atomics, no locks.
 */
#ifndef IMQTT_METRICS_H
#define IMQTT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* X(enum name, metric name, label, help) — one counter each. Counters
 * that share a metric name differ by label (rendered {cause="..."}). */
#define METRICS_MAP(X)                                                        \
    X(TLS_HANDSHAKE_FAILED, "imqtt_tls_handshake_failures_total", "",         \
      "TLS handshakes that failed")                                           \
    X(WS_UPGRADE_REFUSED, "imqtt_ws_upgrade_refused_total", "",               \
      "WebSocket upgrade requests answered with an HTTP error")               \
    X(WS_PROTOCOL_ERRORS, "imqtt_ws_protocol_errors_total", "",               \
      "WebSocket connections closed for a bad frame")                         \
    X(REFUSED_MAX_CONN, "imqtt_connections_refused_total", "max_connections", \
      "Connections refused, by cause")                                        \
    X(REFUSED_RATE, "imqtt_connections_refused_total", "rate_limit",          \
      "Connections refused, by cause")                                        \
    X(REFUSED_MSG_RATE, "imqtt_clients_limited_total", "message_rate",        \
      "Clients disconnected for a rate limit (0x96), by cause")               \
    X(REFUSED_BYTES_RATE, "imqtt_clients_limited_total", "bytes_rate",        \
      "Clients disconnected for a rate limit (0x96), by cause")               \
    X(RELOADS_OK, "imqtt_config_reloads_total", "ok",                         \
      "SIGHUP reloads, by result")                                            \
    X(RELOADS_FAILED, "imqtt_config_reloads_total", "failed",                 \
      "SIGHUP reloads, by result")

enum metric_id {
#define METRIC_ENUM(name, m, label, help) METRIC_##name,
    METRICS_MAP(METRIC_ENUM)
#undef METRIC_ENUM
        METRIC_COUNT_
};

typedef struct metrics_counters {
    uint64_t v[METRIC_COUNT_];
} metrics_counters;

#define metrics_count(srv, id) ((srv)->metrics.v[(id)]++)

struct server;

/* Render every metric in Prometheus text format 0.0.4 into a malloc'd
 * string (caller frees); *len gets its length. NULL on ENOMEM. */
char *metrics_render(struct server *srv, size_t *len);

#endif
