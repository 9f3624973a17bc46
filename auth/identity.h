/* IM identities: a client id of the form `user@device`.
 *
 * Each side is 1..64 bytes of [A-Za-z0-9._-] (DESIGN.md, IM conventions).
 * That alphabet has no '+', '#', '/', '@', '%', control characters or
 * non-ASCII bytes, so a validated part can be pasted into a topic filter
 * (ACL placeholders %u %d, the inbox p2p/talk/{user}) without adding a
 * level or a wildcard (BAD_INPUTS row 11).
 */
#ifndef IMQTT_IDENTITY_H
#define IMQTT_IDENTITY_H

#include <stdbool.h>

#include "mqtt_types.h"

#define IM_ID_PART_MAX 64
/* user + '@' + device */
#define IM_CLIENT_ID_MAX (2 * IM_ID_PART_MAX + 1)

/* Both fields are views into the client id passed to im_identity_parse:
 * valid only as long as those bytes are. */
typedef struct im_identity {
    mqtt_str user;
    mqtt_str device;
} im_identity;

/* Whether `part` is 1..IM_ID_PART_MAX bytes of [A-Za-z0-9._-]. Also the
 * rule for user names in a password file and for group names. */
bool im_id_part_valid(mqtt_str part);

/* Split `client_id` at its single '@' into user and device and validate
 * both. Returns 0 and fills *out, or IMQTT_ECLIENTID (no '@', more than
 * one, an empty or overlong side, a byte outside the alphabet); *out is
 * zeroed on failure. */
int im_identity_parse(mqtt_str client_id, im_identity *out);

/* Whether `client_id` is a valid `user@device`. */
bool im_identity_valid(mqtt_str client_id);

#endif
