/* Bodies and queries of the backend HTTP API (docs/api.md), checked
 * without the broker: a pure layer between the bytes of a request and
 * the handlers (api.c), fuzzed by tests/fuzz/fuzz_api.c. Every parser
 * returns 0, or IMQTT_EINVAL (IMQTT_ENOMEM) with *why set to a static
 * text for the error answer.
 */
#ifndef IMQTT_API_JSON_H
#define IMQTT_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "im_history_req.h"

/* Names a service publishes as: `from` of its messages (docs/api.md). */
#define API_SERVICE_DEFAULT "system"
#define API_REASON_MAX      256

enum api_target { API_TO_USER, API_TO_GROUP, API_TO_TOPIC };

/* A message to publish (POST /publish) or a device's uplink. */
typedef struct api_message {
    enum api_target to;
    char *topic; /* owned, NUL-ended: p2p/talk/{user}, g/talk/{group} or
                    the raw topic */
    size_t topic_len;
    char service[IM_ID_PART_MAX + 1]; /* publish: the sender's name */
    uint8_t qos;                      /* default 1 */
    bool retain;
    uint32_t expiry;  /* Message Expiry Interval, seconds; 0: none */
    uint8_t *payload; /* owned (may be NULL when empty) */
    size_t payload_len;
} api_message;

/* Parse a publish body (uplink false): exactly one of "user", "group",
 * "topic"; "service", "qos", "retain", "expiry"; exactly one of
 * "payload" (text) and "payload_b64". An uplink body (uplink true) takes
 * "user" or "group", "qos", "expiry" and the payload only. On success
 * the caller frees *m with api_message_free; on failure nothing is left
 * to free. */
int api_parse_message(const uint8_t *body, size_t len, bool uplink,
                      api_message *m, const char **why);
void api_message_free(api_message *m);

/* POST /revocations: {"issued_before": seconds} or {"jti": "..."}, and
 * optionally "user" (else every user). */
typedef struct api_revocation {
    char user[IM_ID_PART_MAX + 1]; /* "" : all users */
    bool by_jti;
    int64_t before; /* seconds since the epoch */
    char jti[API_REASON_MAX + 1];
} api_revocation;
int api_parse_revocation(const uint8_t *body, size_t len, api_revocation *r,
                         const char **why);

/* PUT .../ban: empty, or {"reason": "..."} (at most API_REASON_MAX
 * bytes). */
int api_parse_ban(const uint8_t *body, size_t len,
                  char reason[API_REASON_MAX + 1], const char **why);

/* GET .../history?peer=|group=&after=&before=&limit=: the query, turned
 * into a history request as a device would publish it to $im/history
 * and checked by the same parser (im_history_parse). */
int api_parse_history_query(const char *q, size_t len, uint32_t page_max,
                            im_history_req *out, const char **why);

/* The JSON text of an error answer: {"error": {"code", "message"}}.
 * Returns a malloc'd string (the caller frees) or NULL. */
char *api_error_json(const char *code, const char *message);

#endif
