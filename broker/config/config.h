/* The broker's configuration: a JSON file read with cJSON.
 *
 * Every option has a default (config_defaults), so an empty object `{}` is a
 * valid config and no file at all gives the embedded default: one listener
 * on 0.0.0.0:1883, anonymous access allowed. Unknown keys and values of the
 * wrong type or range are errors whose message names the key
 * ("listeners[0].port: expected an integer 1..65535").
 *
 * docs/config.md lists every option; keep it in step with config.c.
 */
#ifndef IMQTT_CONFIG_H
#define IMQTT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl.h"
#include "log.h"
#include "store.h"

enum listener_auth {
    LISTENER_AUTH_ANONYMOUS = 0,
    LISTENER_AUTH_JWT = 1,
    LISTENER_AUTH_PASSWORD_FILE = 2,
};

enum im_clientid {
    IM_CLIENTID_OFF = 0,      /* client ids are opaque */
    IM_CLIENTID_OPTIONAL = 1, /* user@device when it parses as one */
    IM_CLIENTID_REQUIRED = 2, /* anything else: CONNACK 0x85 */
};

/* listeners[].im_receipts.delivery (docs/im.md, Receipts). Off unless
 * asked for: devices of apps that know nothing of receipts would take
 * them for messages. */
enum im_delivery_receipts {
    IM_DELIVERY_OFF = 0,
    IM_DELIVERY_USER = 1,   /* one receipt, at the recipient's first device */
    IM_DELIVERY_DEVICE = 2, /* one per device of the recipient, always */
};

/* Who may read p2p/presence/{user} (im.presence, docs/im.md). */
enum im_presence_read {
    IM_PRESENCE_EVERYONE = 0, /* any authenticated user (the default) */
    IM_PRESENCE_GROUP = 1,    /* users sharing a group with {user} */
};

enum listener_transport {
    TRANSPORT_TCP = 0,
    TRANSPORT_TLS = 1,
    TRANSPORT_WS = 2,  /* MQTT over WebSocket */
    TRANSPORT_WSS = 3, /* MQTT over WebSocket over TLS */
};

/* A listener's "tls" object (docs/config.md); strings owned. */
typedef struct listener_tls_config {
    char *cert_file, *key_file, *ca_file; /* PEM; ca_file may be NULL */
    char *ciphers;                        /* NULL: mbedTLS's default suites */
    bool verify_client;      /* require a client certificate (mTLS) */
    bool identity_from_cert; /* the certificate's CN is the user name */
} listener_tls_config;

typedef struct listener_config {
    char *bind;                /* owned; default "0.0.0.0" */
    uint16_t port;             /* default 1883 */
    uint32_t max_connections;  /* 0: only the global limit applies */
    bool im;                   /* an IM listener (docs/im.md); default false */
    enum listener_auth auth;   /* default: jwt on IM listeners, else
                                  anonymous */
    enum im_clientid clientid; /* default: required on IM listeners, else
                                  off */
    enum listener_transport transport; /* default TRANSPORT_TCP */
    listener_tls_config tls;           /* transport tls and wss */
    char *ws_path;    /* owned; ws and wss; NULL means "/mqtt" */
    bool im_envelope; /* 3.1.1 receivers get the envelope (docs/im.md) */
    /* listeners[].im_receipts (docs/im.md, Receipts): what this listener's
     * devices' acknowledgements and read receipts produce */
    enum im_delivery_receipts im_delivery; /* default IM_DELIVERY_OFF */
    bool im_read_receipts_off;             /* default false: routed */
    /* PROXY protocol (conn_proxy.c): a header is required first, and only
     * from these networks (owned array; non-empty when proxy_protocol) */
    bool proxy_protocol;
    uint32_t proxy_from_count;
    struct proxy_net *proxy_from;
} listener_config;

/* Whether a and b have the same PROXY protocol settings (a reload that
 * changes them needs a restart; config_proxy.c). */
bool config_listener_proxy_same(const listener_config *a,
                                const listener_config *b);

#define CONFIG_THREADS_MAX 256

typedef struct imqtt_config {
    listener_config *listeners; /* owned array */
    uint32_t listener_count;
    uint32_t threads; /* loop threads; 0 (default): one per core */

    uint32_t max_connections;       /* 0 = unlimited (default) */
    uint16_t max_inflight_messages; /* outgoing window per session and the
                                       Receive Maximum we announce; 20 */
    uint32_t max_queued_messages;   /* per session beyond the window; 1000 */
    uint64_t max_inflight_bytes;    /* payload bytes in a session's window
                                       (at least one message always goes);
                                       0 = unlimited; 16 MiB */
    uint64_t max_queued_bytes;      /* payload bytes per session beyond the
                                       window; 0 = unlimited; 64 MiB */
    /* The same for persistent sessions, whose queues are in the store:
     * sized for the disk (issue 13 item 6); as above, 0 messages means
     * none wait, 0 bytes means no byte bound. */
    uint64_t max_stored_messages;   /* default 10,000,000 */
    uint64_t max_stored_bytes;      /* default 1 GiB */
    uint32_t max_subscriptions;     /* per client; 0 = unlimited; 10000 */
    uint32_t max_packet_size;       /* both directions; default 1048576 */
    uint16_t max_keepalive;         /* 0 = accept any; default 0. When a v5
                                       client asks for more (or for 0), we
                                       answer Server Keep Alive */
    bool retain_available;          /* default true */
    uint32_t max_retained_messages; /* all retained; 0 = unlimited;
                                       1000000 (retain_limits.h) */
    uint64_t max_retained_bytes;    /* their topic + payload bytes; 0 =
                                       unlimited; 256 MiB */
    uint16_t topic_alias_maximum;   /* announced to v5 clients; default 10 */
    uint32_t max_session_expiry;    /* seconds; 0xFFFFFFFF = never (default) */
    uint32_t max_topic_levels;      /* topic names and filters; default 128 */
    uint32_t max_topic_length;      /* bytes; default 65535 */

    acl *acl;                   /* owned; never NULL after load */
    uint8_t deny_suback_reason; /* v5 SUBACK code for a denied filter:
                                   0x87 (default) or 0x80 */
    enum log_level log_level;   /* default LOG_INFO */

    /* "auth" object (docs/auth.md). Owned; NULL when not configured. */
    struct jwtv_verifier *jwt;
    struct pwdb *passwords;
    /* auth.cache_size / cache_ttl: verified password-file credentials
     * kept (0 = no cache; default 10000) and for how long (seconds;
     * default 900). auth.failure_burst / failure_rate: attempts that may
     * fail per address (0 = no limit; default 10) and how many come back
     * per minute (default 10). docs/auth.md. */
    uint32_t auth_cache_size, auth_cache_ttl;
    uint32_t auth_fail_burst, auth_fail_rate;
    bool auth_fail_jwt; /* auth.failure_limit_jwt: tokens too; default off */

    /* "im" object (docs/im.md) */
    uint8_t im_inbox_qos; /* QoS of the p2p/talk/{user} inbox; default 1 */
    bool im_presence;     /* publish p2p/presence/{user}; default true */
    enum im_presence_read im_presence_read; /* who may read it; everyone */
    uint32_t im_max_devices; /* sessions per user; 0 = unlimited (default) */
    uint32_t im_max_retained_messages; /* per IM user; 0 = unlimited; 100 */
    uint64_t im_max_retained_bytes;    /* per IM user; 0 = unlimited; 1 MiB */
    char **im_admins;                  /* owned; users who may use $SYS */
    uint32_t im_admin_count;
    /* "im.history" (docs/im.md, History): the conversation log */
    bool im_history;                  /* default true */
    uint64_t im_history_max_age_ms;   /* 0: no limit; default 30 days */
    uint64_t im_history_max_bytes;    /* per conversation; default 64 MiB */
    uint64_t im_history_max_messages; /* per conversation; default 1e6 */
    uint32_t im_history_page_max;     /* messages per page; default 500 */
    /* "im.push" (config_push.h); owned; NULL: no offline push */
    struct push_config *push;

    /* "store" object (docs/config.md, docs/store.md) */
    enum store_durability store_durability; /* default STORE_PROCESS */
    char *store_dir;                        /* owned; default "./data" */
    uint64_t store_map_size;         /* initial map, bytes; default 64 MiB */
    uint64_t store_max_size;         /* map limit, bytes; default 16 GiB */
    uint32_t store_sync_interval_ms; /* process: fsync period; 1000 */

    /* operations (config_ops.c, docs/operations.md) */
    uint32_t sys_interval; /* $SYS period, seconds; 0 off; default 10 */
    char *http_bind;       /* owned; metrics listener; "127.0.0.1" */
    /* "http.api" (docs/api.md): the backend API on the same listener.
     * api_tokens: owned array of owned bearer tokens (may be empty: then
     * only the device uplink, with the device's JWT, is served). */
    bool api;                 /* "http.api" present: /api/v1/ served */
    char **api_tokens;        /* owned */
    uint32_t api_token_count; /* reloaded by SIGHUP */
    uint32_t api_max_body;    /* request body bytes; 65536 (413 beyond) */
    /* "cluster" (config_cluster.h); owned; NULL: the single node */
    struct cluster_config *cluster;
    uint16_t http_port; /* 0: no metrics listener (default) */
    bool log_json;      /* log.format "json" */
    /* "limits": token buckets, per second; 0 = off (the default). A
     * burst of 0 means one second's worth. */
    uint32_t conn_rate, conn_burst;   /* new connections per address */
    uint32_t msg_rate, msg_burst;     /* PUBLISH packets per client */
    uint32_t bytes_rate, bytes_burst; /* PUBLISH bytes per client */
    /* "limits": what one connection may hold (conn.c, docs/reliability.md,
     * "Memory per connection"). Never off: each has a range. */
    uint32_t output_buffer;    /* unwritten output bytes past which its
                                  input is not read; 1 MiB */
    uint32_t stall_timeout;    /* seconds a paused client may stay above
                                  half of output_buffer; 60 */
    uint32_t max_pending_acks; /* acks waiting for a commit past which its
                                  input is not read; 4096 */
} imqtt_config;

/* Fill *c with the embedded defaults (one listener, allow-all ACL).
 * Returns 0 or IMQTT_ENOMEM (then *c holds nothing). */
int config_defaults(imqtt_config *c);

/* Parse JSON text into *c (defaults first, then the file's values). On
 * error returns IMQTT_ECONFIG (or IMQTT_ENOMEM) with a message naming the
 * key in err[0..errlen), and *c is left freed (nothing to release).
 * *c is output only: whatever it held before is overwritten, not freed.
 * A reload parses into a new struct and swaps it in only on success, so a
 * broken file never resets the running config (BAD_INPUTS row 19). */
int config_parse(const char *json, size_t len, imqtt_config *c, char *err,
                 size_t errlen);

/* Read the file at path and parse it. IMQTT_EIO if it cannot be read,
 * IMQTT_ECONFIG if it is larger than 1 MiB or invalid; the message starts
 * with the path. */
int config_load(const char *path, imqtt_config *c, char *err, size_t errlen);

/* Frees what *c owns and zeroes those fields; safe to call twice and on a
 * config a failed parse or load left behind. */
void config_free(imqtt_config *c);

#endif
