/* Counters for refusals and failures that srv->stats does not keep, and
 * ops/metrics_render.h turns both into the Prometheus text of /metrics.
 *
 * Counting is one increment on the loop thread: no atomics, no locks.
 */
#ifndef IMQTT_METRICS_H
#define IMQTT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* X(enum name, metric name, label, help) — one counter each. Counters
 * that share a metric name differ by label (rendered {cause="..."}) and
 * must stand next to each other: they are rendered under one HELP. */
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
    X(REFUSED_AUTH_FAILURES, "imqtt_connections_refused_total",               \
      "auth_failures", "Connections refused, by cause")                       \
    X(REFUSED_PROXY, "imqtt_connections_refused_total", "proxy",              \
      "Connections refused, by cause")                                        \
    X(REFUSED_MAX_DEVICES, "imqtt_connections_refused_total", "max_devices",  \
      "Connections refused, by cause")                                        \
    X(IM_DEVICES_EVICTED, "imqtt_im_devices_evicted_total", "",               \
      "Offline device sessions ended for im.max_devices_per_user")            \
    X(AUTH_CACHE_HIT, "imqtt_password_cache_lookups_total", "hit",            \
      "Password checks answered by the credential cache (hit) or not (miss)") \
    X(AUTH_CACHE_MISS, "imqtt_password_cache_lookups_total", "miss",          \
      "Password checks answered by the credential cache (hit) or not (miss)") \
    X(REFUSED_MSG_RATE, "imqtt_clients_limited_total", "message_rate",        \
      "Clients disconnected for a rate limit (0x96), by cause")               \
    X(REFUSED_BYTES_RATE, "imqtt_clients_limited_total", "bytes_rate",        \
      "Clients disconnected for a rate limit (0x96), by cause")               \
    X(PAUSED_OUTPUT, "imqtt_input_paused_total", "output_buffer",             \
      "Times reading from a client stopped until it drained, by cause")       \
    X(PAUSED_ACKS, "imqtt_input_paused_total", "pending_acks",                \
      "Times reading from a client stopped until it drained, by cause")       \
    X(PAUSED_CLUSTER, "imqtt_input_paused_total", "cluster",                  \
      "Times reading from a client stopped until it drained, by cause")       \
    X(STALLED, "imqtt_clients_stalled_total", "",                             \
      "Clients disconnected (0x97) for not draining their output in time")    \
    X(RETAIN_REFUSED_COUNT, "imqtt_retained_refused_total",                   \
      "max_retained_messages", "Retained messages not kept, by limit")        \
    X(RETAIN_REFUSED_BYTES, "imqtt_retained_refused_total",                   \
      "max_retained_bytes", "Retained messages not kept, by limit")           \
    X(RETAIN_REFUSED_USER_COUNT, "imqtt_retained_refused_total",              \
      "im_max_retained_messages", "Retained messages not kept, by limit")     \
    X(RETAIN_REFUSED_USER_BYTES, "imqtt_retained_refused_total",              \
      "im_max_retained_bytes", "Retained messages not kept, by limit")        \
    X(RELOADS_OK, "imqtt_config_reloads_total", "ok",                         \
      "SIGHUP reloads, by result")                                            \
    X(RELOADS_FAILED, "imqtt_config_reloads_total", "failed",                 \
      "SIGHUP reloads, by result")                                            \
    X(SUB_REFUSED_LIMIT, "imqtt_subscriptions_refused_total",                 \
      "max_subscriptions", "SUBSCRIBE filters refused, by cause")             \
    X(SUB_REFUSED_ACL, "imqtt_subscriptions_refused_total", "not_authorized", \
      "SUBSCRIBE filters refused, by cause")                                  \
    X(DROP_QUEUE_FULL, "imqtt_messages_dropped_total", "queue_full",          \
      "Messages dropped, by cause")                                           \
    X(DROP_QUEUE_BYTES, "imqtt_messages_dropped_total", "queue_bytes",        \
      "Messages dropped, by cause")                                           \
    X(DROP_EXPIRED, "imqtt_messages_dropped_total", "expired",                \
      "Messages dropped, by cause")                                           \
    X(DROP_TOO_LARGE, "imqtt_messages_dropped_total", "too_large",            \
      "Messages dropped, by cause")                                           \
    X(DROP_SLOW_READER, "imqtt_messages_dropped_total", "slow_reader",        \
      "Messages dropped, by cause")                                           \
    X(DROP_OFFLINE_QOS0, "imqtt_messages_dropped_total", "qos0_offline",      \
      "Messages dropped, by cause")                                           \
    X(DROP_NOT_AUTHORIZED, "imqtt_messages_dropped_total", "not_authorized",  \
      "Messages dropped, by cause")                                           \
    X(DROP_STORE_FULL, "imqtt_messages_dropped_total", "store_full",          \
      "Messages dropped, by cause")                                           \
    X(DROP_NO_MEMORY, "imqtt_messages_dropped_total", "out_of_memory",        \
      "Messages dropped, by cause")                                           \
    X(DROP_CLUSTER, "imqtt_messages_dropped_total", "cluster_unavailable",    \
      "Messages dropped, by cause")                                           \
    X(AUTH_CLIENT_ID, "imqtt_auth_failures_total", "client_id_invalid",       \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_PASSWORD, "imqtt_auth_failures_total", "bad_password",             \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_NO_TOKEN, "imqtt_auth_failures_total", "token_missing",            \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_TOKEN_EXPIRED, "imqtt_auth_failures_total", "token_expired",       \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_TOKEN_SIGNATURE, "imqtt_auth_failures_total", "token_signature",   \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_TOKEN_ALG, "imqtt_auth_failures_total", "token_alg",               \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_TOKEN_MALFORMED, "imqtt_auth_failures_total", "token_malformed",   \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_TOKEN_CLAIMS, "imqtt_auth_failures_total", "token_claims",         \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_NOT_AUTHORIZED, "imqtt_auth_failures_total", "not_authorized",     \
      "CONNECTs refused by authentication, by cause")                         \
    X(AUTH_SERVER_ERROR, "imqtt_auth_failures_total", "server_error",         \
      "CONNECTs refused by authentication, by cause")                         \
    X(API_OK, "imqtt_api_requests_total", "ok",                               \
      "Backend API requests answered, by outcome: ok (2xx), refused (4xx), "  \
      "failed (5xx)")                                                         \
    X(API_REFUSED, "imqtt_api_requests_total", "refused",                     \
      "Backend API requests answered, by outcome: ok (2xx), refused (4xx), "  \
      "failed (5xx)")                                                         \
    X(API_FAILED, "imqtt_api_requests_total", "failed",                       \
      "Backend API requests answered, by outcome: ok (2xx), refused (4xx), "  \
      "failed (5xx)")

enum metric_id {
#define METRIC_ENUM(name, m, label, help) METRIC_##name,
    METRICS_MAP(METRIC_ENUM)
#undef METRIC_ENUM
        METRIC_COUNT_
};

/* Store commit latency, seconds: upper bounds of the histogram buckets
 * (+Inf is implied). Observed on the loop thread from store_commit to its
 * done callback (server.c). */
/* clang-format off */
#define METRICS_COMMIT_BUCKETS                                                \
    X(0.0001) X(0.0005) X(0.001) X(0.0025) X(0.005) X(0.01) X(0.025)          \
    X(0.05) X(0.1) X(0.25) X(0.5) X(1.0) X(2.5)
/* clang-format on */
#define X(b) +1
enum { METRICS_COMMIT_NBUCKETS = 0 METRICS_COMMIT_BUCKETS };
#undef X

typedef struct metrics_histogram {
    uint64_t bucket[METRICS_COMMIT_NBUCKETS]; /* not cumulative */
    uint64_t count;
    uint64_t sum_ns;
} metrics_histogram;

typedef struct metrics_counters {
    uint64_t v[METRIC_COUNT_];
    uint64_t received_qos[3]; /* PUBLISH packets from clients, by QoS */
    uint64_t sent_qos[3];     /* PUBLISH packets to clients, by QoS */
    metrics_histogram commit; /* store commit latency */
} metrics_counters;

#define metrics_count(srv, id) ((srv)->metrics.v[(id)]++)

/* A message dropped: the total ($SYS publish/messages/dropped) and the
 * cause (one of the METRIC_DROP_* ids). */
#define metrics_drop(srv, id) \
    ((srv)->stats.msgs_dropped++, metrics_count(srv, id))

/* Record one commit that took ns nanoseconds. */
void metrics_commit_observe(metrics_histogram *h, uint64_t ns);

#endif
