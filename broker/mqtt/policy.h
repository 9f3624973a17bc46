/* The policy: what a deployment adds to MQTT — who may connect, what a
 * session may publish, subscribe to and receive, what the broker adds to a
 * message and where else it sends it, and what happens when a session comes
 * and goes. mqtt/ calls these hooks at fixed points and knows nothing of
 * the rules behind them; im/ implements them (im_policy(), docs/im.md).
 *
 * Every hook runs on the loop thread that owns the session (or, before a
 * session exists, the connection). None may block.
 */
#ifndef IMQTT_POLICY_H
#define IMQTT_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "acl.h"
#include "config.h"
#include "packet.h"

struct server;
struct session;
struct msg;

/* The identity a policy gives a session (user@device, token claims):
 * opaque to mqtt/, owned by the session (session->im), freed with
 * policy->identity_free. Sessions of plain MQTT clients have none. */
struct im_info;

/* What CONNECT authentication decided. */
typedef struct policy_auth {
    uint8_t reason;     /* MQTT_RC_SUCCESS or the CONNACK refusal */
    struct im_info *im; /* the new identity (the caller owns it), or NULL */
    int64_t expires;    /* credential expiry, seconds since the epoch; 0 */
    const char *why;    /* a refusal's cause for the log line (static text) */
} policy_auth;

/* Scratch for the properties a stamped message is stored with: the user
 * property array lives here (on the stack unless it is long) until
 * stamp_free. */
typedef struct policy_stamp {
    mqtt_user_prop *user;
    uint32_t n;
    mqtt_user_prop stack[16];
} policy_stamp;

typedef struct policy {
    /* CONNECT `p` on listener `l` (client id rules, credentials). The
     * password file has already been checked off the loop: password_ok.
     * The precise cause of a refusal goes to the log, never the reply. */
    policy_auth (*authenticate)(struct server *srv, const listener_config *l,
                                const mqtt_connect *p, mqtt_str client_id,
                                bool password_ok);
    void (*identity_free)(struct im_info *im);
    /* %u and %d of the ACL rules for an identity (never NULL). */
    void (*identity_parts)(const struct im_info *im, mqtt_str *user,
                           mqtt_str *device);

    /* May session s do `action` on `topic` (a name for publish, a filter
     * for subscribe)? */
    bool (*authorize)(const struct session *s, enum acl_action action,
                      mqtt_str topic);
    /* The same before a session exists (the will, at CONNECT); im may be
     * NULL. */
    bool (*authorize_identity)(const struct server *srv,
                               const struct im_info *im,
                               const acl_identity *who, enum acl_action action,
                               mqtt_str topic);
    /* At delivery: may s still receive a message on `topic`? */
    bool (*may_receive)(const struct session *s, mqtt_str topic);
    /* Subscription options the policy imposes on a filter of s. */
    void (*adjust_sub_opts)(const struct session *s, mqtt_str filter,
                            mqtt_sub_opts *o);

    /* The properties a message from `from` (a session with an identity) is
     * stored with; `scratch` holds them until stamp_free. */
    mqtt_props (*stamp)(const struct session *from, const mqtt_props *in,
                        policy_stamp *scratch);
    void (*stamp_free)(policy_stamp *scratch);
    /* After a message from `from` (NULL: a will) has been routed: deliver
     * it wherever else the policy wants it (the sender's other devices). */
    void (*sync)(struct server *srv, struct msg *m, struct session *from);

    /* s has been sent its CONNACK / its connection has gone. */
    void (*on_connect)(struct session *s);
    void (*on_disconnect)(struct session *s);
    /* The store is loaded (start-up); the server is being freed. */
    void (*on_start)(struct server *srv);
    void (*on_free)(struct server *srv);
} policy;

#endif
