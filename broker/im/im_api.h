/* Messages that enter the broker through the backend HTTP API (docs/
 * api.md) rather than an MQTT connection: a service's (POST /publish, as
 * "system" or a named service) and a device's uplink (POST .../messages
 * with the device's own JWT). Both take the path of a PUBLISH: the
 * stamp, the id and the log of im_msg.c, routing, the sync copies to the
 * sender's other devices; the caller's answer waits for the store commit
 * when `recorded` says so, as a PUBACK does. Loop thread only. */
#ifndef IMQTT_IM_API_H
#define IMQTT_IM_API_H

#include "conn.h"
#include "im.h"
#include "im_log.h"

typedef struct im_api_result {
    uint64_t id;        /* the conversation id; 0 off conversation topics */
    uint64_t ts;        /* the broker's wall clock, ms */
    uint32_t delivered; /* sessions it was delivered or queued to */
    bool recorded;      /* in the open store batch: answer after commit */
} im_api_result;

/* Publish as service `name` (its `from` stamp; conversations of name)
 * on topic. qos > 0 is refused with IMQTT_ESTOREFULL while the store
 * refuses writes; a retained message past a retained limit with
 * IMQTT_EQUOTA. Returns 0, or a negative IMQTT_E*. */
int im_api_publish(server *srv, mqtt_str name, mqtt_str topic,
                   mqtt_bytes payload, uint8_t qos, bool retain,
                   uint32_t expiry, im_api_result *out);

/* Device user@device, proven by token (verified here: a JWT for user),
 * publishes on a conversation topic. With auth.failure_limit_jwt the
 * verification counts against `peer` (the HTTP client's address; NULL:
 * none) as a CONNECT's does. Returns 0, IMQTT_EAUTH (the token),
 * IMQTT_EAUTHRATE (too many failures from peer), IMQTT_EBUSY (admit, may
 * be NULL, said no),
 * IMQTT_EBANNED, IMQTT_EREVOKED, IMQTT_EDENIED (the ACL), IMQTT_ENOTFOUND
 * (no JWT configured), IMQTT_ESTOREFULL, IMQTT_ENOMEM. *why gets the log
 * text of a token refusal. */
typedef struct im_api_admit {
    /* Whether client_id may send one more message now (the caller's rate
     * limit), asked once the token, bans and ACL allow it. */
    bool (*fn)(void *arg, mqtt_str client_id);
    void *arg;
} im_api_admit;

int im_api_uplink(server *srv, const struct conn_addr *peer,
                  const im_api_admit *admit, mqtt_str user, mqtt_str device,
                  mqtt_bytes token, mqtt_str topic, mqtt_bytes payload,
                  uint8_t qos, uint32_t expiry, im_api_result *out,
                  const char **why);

#endif
