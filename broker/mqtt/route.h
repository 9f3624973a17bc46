/* Routing a published message to the sessions whose subscriptions match. */
#ifndef IMQTT_ROUTE_H
#define IMQTT_ROUTE_H

#include "msg.h"
#include "server.h"

/* Deliver m to every matching session once (overlapping subscriptions
 * merge: the highest QoS, all subscription identifiers [MQTT-3.3.4-2..5]),
 * and to one member of each matching shared subscription group.
 * `from` is the publishing session (for No Local), NULL for wills.
 * Returns how many deliveries were made. */
uint32_t route_publish(server *srv, msg *m, session *from);

/* Like route_publish, but match the subscriptions of `topic` (the IM
 * layer's sync copies: a message on p2p/talk/{peer} delivered through the
 * sender's own inbox). */
uint32_t route_publish_as(server *srv, msg *m, mqtt_str topic, session *from);

/* A message enters the broker (PUBLISH or will): update the retained
 * store when m->retain, then route it. */
uint32_t route_message(server *srv, msg *m, session *from);

/* Free w's scratch (and this thread's message cache). */
void route_scratch_free(worker *w);

#endif
