/* One handler per packet type a client may send (Mosquitto's layout).
 * Each takes the decoded packet, borrowed until it returns (views into the
 * connection's input). Return 0, or a negative IMQTT_E* for a protocol
 * violation: the dispatcher then disconnects with the reason code that
 * mqtt_reason_for_error chooses. A handler that has already closed the
 * connection itself returns 0. */
#ifndef IMQTT_HANDLERS_H
#define IMQTT_HANDLERS_H

#include "conn.h"

int handle_connect(conn *c, const mqtt_connect *p);
/* Refuse CONNECT p before handle_connect ran (CONNACK reason in p's
 * version, a log line with the peer, close). Returns 0. */
int handle_connect_refuse(conn *c, const mqtt_connect *p, uint8_t reason,
                          const char *why);
/* A CONNECT that did not decode: answer with the CONNACK the spec asks for
 * when it can be told (unsupported protocol level), then close. */
int handle_connect_error(conn *c, const mqtt_frame *f, int err);
int handle_publish(conn *c, const mqtt_publish *p);
int handle_puback(conn *c, const mqtt_ack *p);
int handle_pubrec(conn *c, const mqtt_ack *p);
int handle_pubrel(conn *c, const mqtt_ack *p);
int handle_pubcomp(conn *c, const mqtt_ack *p);
int handle_subscribe(conn *c, const mqtt_subscribe *p);
int handle_unsubscribe(conn *c, const mqtt_unsubscribe *p);
int handle_pingreq(conn *c);
int handle_disconnect(conn *c, const mqtt_disconnect *p);
int handle_auth(conn *c, const mqtt_auth *p);

/* Decode-and-dispatch one framed packet. */
int dispatch_packet(conn *c, const mqtt_frame *f);

#endif
