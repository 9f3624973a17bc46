/* Every session of each IM user, online or offline (docs/im.md, Limits):
 * what im.max_devices_per_user counts, and the groups of the user's latest
 * token, which presence in "group" mode compares (docs/im.md, Presence).
 *
 * A session is indexed from its first CONNECT with an identity (or from
 * start-up, for the sessions the store brought back) until policy
 * on_session_end. The index holds borrowed session pointers: a session
 * leaves it before it is freed. It is kept only when a limit is set or
 * presence is in "group" mode. Loop thread only.
 */
#ifndef IMQTT_IM_DEVICES_H
#define IMQTT_IM_DEVICES_H

#include "im.h"

/* The devices of one user. */
typedef struct im_user_devices {
    char user[IM_ID_PART_MAX + 1];
    uint32_t user_len;
    session **s; /* owned array of borrowed sessions */
    uint32_t n, cap;
    /* The `groups` claim of the user's latest token: names one after the
     * other, each NUL-ended (owned; NULL: none known). */
    char *groups;
    uint32_t ngroups;
} im_user_devices;

/* IM session s (s->im set) connected: index it, remember the groups of
 * its token as the user's, and, past im.max_devices_per_user, end the
 * user's offline sessions that left first until the user is within it. */
void im_devices_connected(server *srv, session *s);

/* s ends (policy on_session_end): forget it. */
void im_devices_ended(server *srv, session *s);

/* Start-up: index every session the store brought back whose client id
 * is user@device (their groups are known when a device reconnects). */
void im_devices_load(server *srv);

/* Whether a CONNECT of a new device of id's user (its client id has no
 * session) may go on under im.max_devices_per_user: 0 when the user is
 * below the limit or has an offline device that will make room when the
 * new one connects (im_devices_connected), IMQTT_EQUOTA when every
 * device of the user at the limit is online. Changes nothing. */
int im_devices_admit(const server *srv, const im_identity *id);

/* Whether reader shares a group with user (by the groups of reader's
 * token and of user's latest token); a user always "shares" with itself.
 * False when user's groups are not known (no session since start-up). */
bool im_devices_share_group(const server *srv, const im_info *reader,
                            mqtt_str user);

/* Free the index (the server is being freed). */
void im_devices_free(server *srv);

#endif
