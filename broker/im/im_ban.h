/* Bans and token revocations (docs/api.md): the state the backend API
 * edits and CONNECT consults. Kept in RAM only, hung off the server
 * (srv->bans, freed with the policy): a restart forgets it, and the
 * backend that set it sets it again (GET /api/v1/bans and /revocations
 * list what is in force). Loop thread only.
 *
 * - A banned user or device is refused at CONNECT with 0x8A Banned
 *   (3.1.1: return code 5), and its connected devices are disconnected
 *   at once with DISCONNECT 0x98 Administrative action.
 * - A revoked token (issued before a time, per user or for everyone, or
 *   with a given jti) is refused at CONNECT like a bad one, 0x86 (3.1.1:
 *   4); connected devices that came with such a token are disconnected
 *   (0x98).
 */
#ifndef IMQTT_IM_BAN_H
#define IMQTT_IM_BAN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "im.h"

/* Most jti revocations kept (then IMQTT_EQUOTA). */
#define IM_REVOKED_JTI_MAX 100000
#define IM_BAN_REASON_MAX  256

/* Ban user (device len 0) or user@device. reason may be "" (copied).
 * Returns 1 when new, 0 when it was already banned (reason updated),
 * or IMQTT_ENOMEM. */
int im_ban_add(server *srv, mqtt_str user, mqtt_str device, const char *reason);
/* Lift a ban: true when there was one. */
bool im_ban_remove(server *srv, mqtt_str user, mqtt_str device);

/* Revoke the tokens of user (len 0: every user) issued before `before`
 * (seconds since the epoch; a later call with an earlier time does not
 * move it back). Tokens without `iat` are revoked by any such call that
 * covers their user. Returns 0 or IMQTT_ENOMEM. */
int im_revoke_before(server *srv, mqtt_str user, int64_t before);
/* Revoke the token with this jti (for user, or any user when len 0).
 * Returns 0, IMQTT_EQUOTA or IMQTT_ENOMEM. */
int im_revoke_jti(server *srv, mqtt_str user, mqtt_str jti);

/* CONNECT (and the HTTP uplink): 0, IMQTT_EBANNED or IMQTT_EREVOKED for
 * user@device presenting claims (NULL: no token). */
int im_ban_check(const server *srv, mqtt_str user, mqtt_str device,
                 const jwtv_claims *claims);

/* Disconnect with `reason` every connected IM device of user (len 0:
 * of everyone) that im_ban_check now refuses; with `all`, every
 * connected device of user@device (device len 0: of user) whatever the
 * state says (a kick). Returns how many were disconnected. */
uint32_t im_ban_enforce(server *srv, mqtt_str user, mqtt_str device, bool all,
                        uint8_t reason);

/* {"users": [{"user", "reason", "since"}], "devices": [{"user", "device",
 * "reason", "since"}]} and {"issued_before": s|null, "users": [{"user",
 * "issued_before"}], "jti": [{"jti", "user"}]}, new trees (the caller
 * deletes them) or NULL. */
cJSON *im_ban_list(const server *srv);
cJSON *im_revocation_list(const server *srv);

/* Free the state (the policy's on_free). */
void im_ban_free(server *srv);

#endif
