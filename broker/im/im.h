/* The IM layer (DESIGN.md, "IM conventions"; docs/im.md): user@device
 * identities, authentication at CONNECT, the p2p/talk/{user} inbox,
 * multi-device sync, echo suppression, the `from` stamp, groups, presence,
 * and the order in which access is decided.
 *
 * Everything here runs on the loop thread, except the password check,
 * which runs on libuv's thread pool (PBKDF2 takes ~0.1 s).
 */
#ifndef IMQTT_IM_H
#define IMQTT_IM_H

#include "acl.h"
#include "hmap.h"
#include "identity.h"
#include "jwt_verify.h"
#include "msg.h"
#include "policy.h"
#include "server.h"

/* The IM rules as the broker's policy (mqtt/policy.h): main installs it. */
const policy *im_policy(void);

/* The IM identity of a session, owned by the session (session->im). */
typedef struct im_info {
    mqtt_str user; /* views into id */
    mqtt_str device;
    jwtv_claims *claims; /* owned; NULL unless the session came with a JWT */
    bool admin;          /* listed in im.admins: may use $SYS */
    bool push_backend;   /* listed in im.push.subscribers and authenticated
                            (not an anonymous listener): may subscribe to
                            $events/push/ (im_push.h) */
    bool im_listener;    /* connected through an IM listener: the IM
                            defaults apply and the default is deny */
    bool read_receipts;  /* its listener routes its read receipts */
    uint8_t delivery;    /* enum im_delivery_receipts: what its acks produce
                            (its listener's im_receipts) */
    char id[];           /* the client id, NUL-terminated: sized to it (not to
                            IM_CLIENT_ID_MAX: 130 bytes of every IM session) */
} im_info;

void im_info_free(im_info *im);

/* The IM layer's state on the server (srv->im), owned by the policy and
 * made on first use. */
typedef struct im_state {
    hmap users;    /* user -> presence: its online devices (im.c) */
    hmap devices;  /* user -> im_user_devices: all its sessions
                      (im_devices.c) */
    hmap receipts; /* recipient|conversation -> delivered marks
                      (im_receipt.c) */
    const struct im_presence_peer *peer; /* borrowed; NULL: single node */
} im_state;

/* srv->im, made when missing; NULL without memory. */
im_state *im_state_of(server *srv);

/* Wall-clock milliseconds (token times and presence stamps are wall
 * clock; everything else runs on the loop's monotonic clock). */
int64_t im_wall_ms(void);

/* What CONNECT authentication decided (policy.h). */
typedef policy_auth im_auth_result;

/* Check the client id rules and the listener's auth mode for CONNECT `p`
 * (a JWT in the password field; the password file is checked separately,
 * off the loop, by im_check_password_async). The precise cause of a
 * refusal (`why`) is for the caller's log line, which names the peer;
 * it never goes into the reply. */
im_auth_result im_authenticate(server *srv, const listener_config *l,
                               const mqtt_connect *p, mqtt_str client_id,
                               bool password_ok);

/* Whether the session `s` may do `action` on `topic` (a topic name for
 * publish, a filter for subscribe): config rules, then the token's acl
 * claim, then the IM defaults, then the default (deny on IM listeners). */
bool im_access(const session *s, enum acl_action action, mqtt_str topic);

/* The same decision before a session exists (the will at CONNECT). */
bool im_access_identity(const server *srv, const im_info *im,
                        const acl_identity *who, enum acl_action action,
                        mqtt_str topic);

/* The same check at delivery time (BAD_INPUTS row 13): whether s may still
 * receive a message on `topic`. Sync copies on p2p/talk/{peer} reach the
 * sender's own devices by design. */
bool im_may_receive(const session *s, mqtt_str topic);

/* Subscription options the broker imposes: on IM sessions, No Local on the
 * chat topics, so a device never gets its own messages back (3.1.1
 * included). */
void im_adjust_sub_opts(const session *s, mqtt_str filter, mqtt_sub_opts *o);

/* After CONNACK: subscribe the inbox and publish presence. */
void im_on_connect(session *s);
/* The session's connection went away: publish presence. */
void im_on_disconnect(session *s);

/* Build the properties a message from `from` is stored with: the
 * publisher's, with user property ("from", "user@device") replacing any
 * client-supplied one. Returns the props to pass to msg_new; `scratch`
 * holds the user property array (freed by im_stamp_free). */
typedef policy_stamp im_stamp;
mqtt_props im_stamp_props(const session *from, const mqtt_props *in,
                          im_stamp *scratch);
/* The same for an identity (the Will, stamped at CONNECT). */
mqtt_props im_stamp_props_of(const im_info *im, const mqtt_props *in,
                             im_stamp *scratch);
/* With the broker's `extra` user properties (id, ts) right after `from`;
 * client properties named from, id or ts are all dropped. `extra` is
 * borrowed until im_stamp_free. */
mqtt_props im_stamp_props_ex(const im_info *im, const mqtt_props *in,
                             const mqtt_user_prop *extra, uint32_t nextra,
                             im_stamp *scratch);
/* The same with any sender text as `from` (a service of the backend API:
 * "system"). */
mqtt_props im_stamp_props_as(mqtt_str from, const mqtt_props *in,
                             const mqtt_user_prop *extra, uint32_t nextra,
                             im_stamp *scratch);
void im_stamp_free(im_stamp *scratch);

/* Multi-device sync: a message user@devA published to p2p/talk/{peer}
 * (peer != user) also goes to user's other devices through their inbox. */
void im_route_sync(server *srv, msg *m, session *from);
/* The same for a message of `user` that came without its session (the
 * HTTP uplink): `from` is the device's session when it has one (No
 * Local), else NULL. Returns the deliveries made. */
uint32_t im_route_sync_user(server *srv, msg *m, mqtt_str user, session *from);

/* At start-up, after the store is loaded: every retained presence record
 * says no device is online (they were, before the restart). */
void im_on_start(server *srv);

/* Presence across nodes (cluster mode, docs/cluster.md): main attaches
 * nats/cluster_presence.c here. With a peer, each change of a user's
 * devices on this node is told to it, the presence message lists this
 * node's devices and the peer's (the other nodes'), and it is routed to
 * this node's subscribers only (route_message_here): every node publishes
 * the same merged view. Without one (a single node) nothing changes. */
typedef struct im_presence_peer {
    void *arg;
    void (*local)(void *arg, mqtt_str user, const mqtt_str *devices,
                  uint32_t n);
    void (*remote)(void *arg, mqtt_str user,
                   void (*add)(void *ctx, mqtt_str device), void *ctx);
} im_presence_peer;

/* peer is borrowed until detached (NULL). Under the loop lock. */
void im_presence_set_peer(server *srv, const im_presence_peer *peer);
/* The other nodes' devices of user changed: publish its presence again
 * (when im.presence is on). Under the loop lock. */
void im_presence_refresh(server *srv, mqtt_str user);

/* Whether any device of user is online (kept when presence or offline
 * push is on; false otherwise). */
bool im_user_online(server *srv, mqtt_str user);

/* Free the server's IM state (presence records). */
void im_server_free(server *srv);

#endif
