/* History over MQTT (docs/im.md, History): a device publishes a JSON
 * request to $im/history; the broker answers that device alone, with one
 * page of one of the user's conversations, on the v5 Response Topic (with
 * the Correlation Data) or on $im/history/reply. Loop thread only. */
#ifndef IMQTT_IM_HISTORY_H
#define IMQTT_IM_HISTORY_H

#include <cjson/cJSON.h>

#include "conn.h"
#include "im_history_req.h"
#include "session.h"

#define IM_HISTORY_TOPIC "$im/history"
#define IM_HISTORY_REPLY "$im/history/reply"

/* Whether a PUBLISH of s on topic is a history request (an IM device on
 * an IM listener): handle_publish then hands it to im_history_handle
 * instead of routing it. */
bool im_history_is_request(const session *s, mqtt_str topic);

/* Answer request p of connection c (the reply is queued to c's session
 * at QoS 1). Always answers, an error included; returns 0 or
 * IMQTT_ENOMEM. */
int im_history_handle(conn *c, const mqtt_publish *p);

/* One page of request r of `user` (whose direct conversation with
 * r->name; a group's is the group's) into object o: "peer" or "group",
 * "messages" (at most `budget` bytes of them, at least one), "more".
 * Access is the caller's to check. Returns 0, IMQTT_EINVAL (a bad name),
 * IMQTT_ENOHISTORY, IMQTT_ENOMEM or the store's error. */
int im_history_page(server *srv, mqtt_str user, const im_history_req *r,
                    size_t budget, cJSON *o);

/* The page budget of an answer not bounded by a client's packet size. */
#define IM_HISTORY_PAGE_BYTES (1u << 20)

#endif
