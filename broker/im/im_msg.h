/* Messages written by IM devices, whichever way they enter the broker (a
 * PUBLISH, a Will): the one place that stamps them, so no path can skip
 * the stamp (BAD_INPUTS row 22). Loop thread only. */
#ifndef IMQTT_IM_MSG_H
#define IMQTT_IM_MSG_H

#include "im.h"
#include "im_log.h"
#include "msg.h"
#include "session.h"

/* A new message (refs = 1) published by IM device s (s->im set) on
 * `topic`: `props` (may be NULL: 3.1.1) get the broker's stamp (from, and
 * on IM listeners ts and, on conversation topics, the log's id; the log
 * records it). *in_batch (may be NULL) says the log put it in the open
 * store batch: an acknowledgement must wait for that commit. Returns NULL
 * on allocation failure. */
msg *im_message_new(session *s, mqtt_str topic, const mqtt_props *props,
                    mqtt_bytes payload, uint8_t qos, bool retain,
                    uint64_t expiry_at, bool *in_batch);

/* Who a message is from when it is not built from a session (the backend
 * API: a service, or a device's HTTP uplink). */
typedef struct im_sender {
    mqtt_str from; /* the stamp: user@device, or a service's name */
    mqtt_str user; /* whose conversations it belongs to (the log) */
    bool im_rules; /* stamp ts and, on conversation topics, id and log */
} im_sender;

/* im_message_new for any sender; *out (may be NULL) gets the id (0 off
 * conversation topics) and ts it was given. */
msg *im_message_as(server *srv, const im_sender *who, mqtt_str topic,
                   const mqtt_props *props, mqtt_bytes payload, uint8_t qos,
                   bool retain, uint64_t expiry_at, bool *in_batch,
                   im_log_entry *out);

/* The Will of CONNECT p by identity im, stamped with `from` already here,
 * so a will stored and sent after a restart (when its session has no
 * identity until the device comes back) cannot carry a forged sender.
 * NULL on allocation failure. */
msg *im_will_new(server *srv, const im_info *im, const mqtt_connect *p);

/* At the moment will w of IM session s is sent: the access check again
 * (the rights are those of the identity now), then a fresh stamp, as for a
 * PUBLISH. Returns the message to route (a new reference; the caller
 * drops w), or NULL when the will must not go out. */
msg *im_will_publish(session *s, msg *w);

/* Tell IM device s (s->im set, on an IM listener) that s->missed
 * messages were dropped for it (queue full): a QoS 1 message on
 * $im/missed, {"missed":n,"since":ms}, queued past the limits (one
 * message over); resets the count. */
void im_overflow_marker(session *s);

#endif
