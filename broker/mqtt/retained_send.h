/* The retained messages a SUBSCRIBE asks for, sent in slices (issue 15).
 *
 * A SUBSCRIBE to '#' over a million retained messages used to be answered
 * in one go: the whole walk and every delivery inside one read callback,
 * everyone else waiting, and whatever did not fit the session's queue or
 * the 4 MiB output bound dropped (and logged, one line each). Now the
 * first RETAINED_SLICE are sent at once, as before (the common case: a
 * few presence or state topics); the rest are kept, each with a reference,
 * in a backlog on the connection and sent RETAINED_SLICE per loop
 * iteration while the connection has room: its unwritten output below half
 * of limits.output_buffer and (QoS 1/2) its queue below half of
 * max_queued_messages. So a large set is delivered whole, paced by the
 * client, and never stalls the others for more than a slice.
 *
 * A backlog lives until it is sent or the connection closes (a takeover
 * included): what was not sent by then is not sent. Live messages to the
 * same topics may overtake retained ones still in the backlog.
 */
#ifndef IMQTT_RETAINED_SEND_H
#define IMQTT_RETAINED_SEND_H

#include "conn.h"

#define RETAINED_SLICE 256

typedef struct retained_pacer retained_pacer;
typedef struct retained_backlog retained_backlog;

/* The pacer of srv (ops_start / ops_stop). Without memory, retained
 * messages are all sent at once, as they used to be. */
retained_pacer *retained_pacer_start(server *srv);
/* Drop every backlog (their connections are closing) and close. */
void retained_pacer_stop(retained_pacer *p);

/* On the main loop: send what another loop's SUBSCRIBE left waiting. */
void retained_pacer_kick(server *srv);

/* Send, now or later, the retained messages matching filter for c's
 * subscription granted at qos with subscription id sub_id (0: none). */
void retained_send(conn *c, mqtt_str filter, uint8_t qos, uint32_t sub_id);

#endif
