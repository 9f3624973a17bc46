/* The "cluster" section (docs/cluster.md): where NATS is and what the
 * cluster's names are. Absent, the broker is the embedded single node. */
#ifndef IMQTT_CONFIG_CLUSTER_H
#define IMQTT_CONFIG_CLUSTER_H

#include <stdint.h>

#define CLUSTER_MAX_URLS 16

typedef struct cluster_config {
    char *urls[CLUSTER_MAX_URLS]; /* owned; "nats://host:port" or tls:// */
    uint32_t nurls;
    char *node;             /* owned; this node's name, [A-Za-z0-9_-] */
    char *subject_prefix;   /* owned; default "imqtt" (subject.h) */
    char *credentials_file; /* owned; NATS .creds (JWT + NKey); NULL: none */
    char *tls_ca_file;      /* owned; NULL: system CAs when a URL is tls:// */
    char *tls_cert_file;    /* owned; client certificate, with key */
    char *tls_key_file;     /* owned */
    char *stream;           /* owned; default "IMQTT_MSGS" */
    char *sessions_bucket;  /* owned; default "imqtt_sessions" */
    char *retained_bucket;  /* owned; default "imqtt_retained" */
    uint32_t replicas;      /* 1..5, default 3 */
    uint64_t max_age;       /* seconds the stream keeps a message; 604800 */
    uint64_t max_bytes;     /* stream size limit; 0: none */
    uint32_t connect_timeout_ms; /* default 2000 */
    uint32_t startup_wait_ms;    /* for JetStream to answer; 15000 */
} cluster_config;

void cluster_config_free(cluster_config *cc);

#endif
