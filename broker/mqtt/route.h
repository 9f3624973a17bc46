/* Routing a published message to the sessions whose subscriptions match. */
#ifndef IMQTT_ROUTE_H
#define IMQTT_ROUTE_H

#include "msg.h"
#include "server.h"

/* Deliver m to every matching session once (overlapping subscriptions
 * merge: the highest QoS, all subscription identifiers [MQTT-3.3.4-2..5]),
 * and to one member of each matching shared subscription group.
 * `from` is the publishing session (for No Local), NULL for wills.
 * In cluster mode (srv->cluster_hooks) shared groups are left to NATS
 * queue groups, and the message is handed to the hooks after the local
 * routing (route_publish_as does it, so the IM sync copies go too).
 * Returns how many deliveries were made. */
uint32_t route_publish(server *srv, msg *m, session *from);

/* Like route_publish, but match the subscriptions of `topic` (the IM
 * layer's sync copies: a message on p2p/talk/{peer} delivered through the
 * sender's own inbox). */
uint32_t route_publish_as(server *srv, msg *m, mqtt_str topic, session *from);

/* Who published a message that arrived from another node, and which of
 * this node's subscriptions it is for (nats/cluster_route.c). */
typedef struct route_remote {
    mqtt_str origin;       /* the publisher's client id (No Local); empty:
                              none (the broker's own message) */
    mqtt_str group;        /* non-empty: only this shared group ... */
    mqtt_str group_filter; /* ... of this filter (a NATS queue delivery);
                              empty: only the non-shared subscriptions */
} route_remote;

/* Route m, which another node published, to this node's sessions on
 * `topic` (its own or the inbox of an IM sync copy); never sent on to
 * NATS again. */
uint32_t route_publish_remote(server *srv, msg *m, mqtt_str topic,
                              const route_remote *r);

/* A message enters the broker (PUBLISH or will): update the retained
 * store when m->retain, then route it. */
uint32_t route_message(server *srv, msg *m, session *from);

/* Like route_message for a message of the broker's own (no session)
 * that every node of a cluster publishes itself (the IM presence's
 * merged view): retained as route_message does (the cluster's retained
 * bucket included), but routed to this node's sessions only, shared
 * groups too, never sent to NATS. No policy sync. */
uint32_t route_message_here(server *srv, msg *m);

/* Free w's scratch (and this thread's message cache). */
void route_scratch_free(worker *w);

#endif
