/* `imqtt -v`: a DEBUG line for every packet received and sent, like
 * `mosquitto -v`. Callers test log_packets (log.h) first, so the trace
 * costs one branch on a cached flag when it is off. */
#ifndef IMQTT_CONN_TRACE_H
#define IMQTT_CONN_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "msg.h"
#include "packet.h"

/* One DEBUG line for packet p received from / sent to c ("Received
 * PUBLISH from alice@phone (d0, q1, r0, m12, 'p2p/talk/bob', ... (5
 * bytes))"). Call only when log_packets is set: the caller's test of that
 * flag is all the trace costs when it is off. */
void conn_trace(const conn *c, bool sending, const mqtt_packet *p);

/* The same for a PUBLISH sent from a stored message (conn_send_publish
 * encodes those without an mqtt_packet). */
void conn_trace_publish(const conn *c, const msg *m, uint8_t qos, uint16_t pid,
                        bool dup, bool retain);

#endif
