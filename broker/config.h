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

typedef struct listener_config {
    char *bind;               /* owned; default "0.0.0.0" */
    uint16_t port;            /* default 1883 */
    uint32_t max_connections; /* 0: only the global limit applies */
} listener_config;

typedef struct imqtt_config {
    listener_config *listeners; /* owned array */
    uint32_t listener_count;

    uint32_t max_connections;       /* 0 = unlimited (default) */
    uint16_t max_inflight_messages; /* outgoing window per session and the
                                       Receive Maximum we announce; 20 */
    uint32_t max_queued_messages;   /* per session beyond the window; 1000 */
    uint32_t max_packet_size;       /* both directions; default 1048576 */
    uint16_t max_keepalive;         /* 0 = accept any; default 0. When a v5
                                       client asks for more (or for 0), we
                                       answer Server Keep Alive */
    bool retain_available;          /* default true */
    uint16_t topic_alias_maximum;   /* announced to v5 clients; default 10 */
    uint32_t max_session_expiry;    /* seconds; 0xFFFFFFFF = never (default) */
    uint32_t max_topic_levels;      /* topic names and filters; default 128 */
    uint32_t max_topic_length;      /* bytes; default 65535 */

    acl *acl;                 /* owned; never NULL after load */
    uint8_t deny_suback_reason; /* v5 SUBACK code for a denied filter:
                                   0x87 (default) or 0x80 */
    enum log_level log_level; /* default LOG_INFO */
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
