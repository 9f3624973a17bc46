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
struct conn;

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
    bool envelope;      /* 3.1.1 deliveries carry the sender, id and time
                           in an envelope around the payload (docs/im.md) */
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
    /* The user whose per-user quotas (retained messages) s's publications
     * count against, when there is one (s has an identity). */
    bool (*quota_user)(const struct session *s, mqtt_str *user);
    /* Subscription options the policy imposes on a filter of s. */
    void (*adjust_sub_opts)(const struct session *s, mqtt_str filter,
                            mqtt_sub_opts *o);

    /* A new message (refs = 1) published by s (a session with an
     * identity) on `topic`, with the broker's stamp on `props` (NULL:
     * 3.1.1). *in_batch: the policy recorded it in the open store batch
     * (its log), so the acknowledgement waits for that commit. NULL on
     * ENOMEM. */
    struct msg *(*message_new)(struct session *s, mqtt_str topic,
                               const mqtt_props *props, mqtt_bytes payload,
                               uint8_t qos, bool retain, uint64_t expiry_at,
                               bool *in_batch);
    /* The will of CONNECT p by identity im, when the policy builds it
     * (*handled true; NULL then means ENOMEM); else mqtt/ builds it. */
    struct msg *(*will_new)(struct server *srv, const struct im_info *im,
                            const mqtt_connect *p, bool *handled);
    /* Will w of s (with an identity) is about to be published: the
     * message to route instead (a new reference), NULL to send nothing;
     * *as_device: route it as a publication of s (No Local, sync). */
    struct msg *(*will_publish)(struct session *s, struct msg *w,
                                bool *as_device);
    /* Messages were dropped for s (s->missed) and its queue has room
     * again: tell the device. */
    void (*overflow)(struct session *s);
    /* Whether a PUBLISH of s on `topic` is a request the policy answers
     * itself (history, read receipts), and the answer; never routed.
     * answer returns 0 (acknowledged as received), an MQTT reason code
     * >= 0x80 (refused: MQTT 5 PUBACK/PUBREC with it, 3.1.1 acknowledged
     * and dropped) or a negative error. */
    bool (*is_request)(const struct session *s, mqtt_str topic);
    int (*answer)(struct conn *c, const mqtt_publish *p);
    /* After a message from `from` (NULL: a will) has been routed: deliver
     * it wherever else the policy wants it (the sender's other devices). */
    void (*sync)(struct server *srv, struct msg *m, struct session *from);
    /* m (QoS 1 or 2) has just been queued for s, which is offline
     * (offline push). s may have no identity yet (a session loaded from
     * the store). m is borrowed; the hook may not route (the router may be
     * busy): it defers what it sends. */
    void (*queued_offline)(struct session *s, struct msg *m);

    /* The device of s acknowledged delivery m (PUBACK of a QoS 1,
     * PUBREC of a QoS 2 delivery; m borrowed for the call), after the
     * acknowledgement itself has been handled. May be NULL. */
    void (*on_ack)(struct session *s, struct msg *m);

    /* s has been sent its CONNACK / its connection has gone. */
    void (*on_connect)(struct session *s);
    void (*on_disconnect)(struct session *s);
    /* s is being ended (expiry, clean start, shutdown), before its
     * identity is freed: the last time the policy sees it. May be NULL. */
    void (*on_session_end)(struct session *s);
    /* The store is loaded (start-up); the server is being freed. */
    void (*on_start)(struct server *srv);
    void (*on_free)(struct server *srv);
} policy;

#endif
