/* Receipts (docs/im.md, Receipts): a "delivered" receipt the broker sends
 * to the sender's devices when a device of the recipient acknowledges a
 * direct message (PUBACK, or PUBREC at QoS 2), once per recipient user or
 * once per device; and "read" receipts a device publishes on
 * p2p/receipt/{peer}, routed to the peer's devices and synced to the
 * reader's other devices. Both travel on the inboxes (p2p/talk/{user})
 * with the user properties from, ts, receipt and msg_id and a one-line
 * JSON payload. Loop thread only.
 */
#ifndef IMQTT_IM_RECEIPT_H
#define IMQTT_IM_RECEIPT_H

#include "conn.h"
#include "im.h"

#define IM_RECEIPT_PREFIX "p2p/receipt/"

/* Policy on_ack: IM session s acknowledged delivery m (borrowed). */
void im_receipt_on_ack(session *s, msg *m);

/* Whether a PUBLISH of s on topic is a read receipt (an IM device on an
 * IM listener publishing under p2p/receipt/). */
bool im_receipt_is_request(const session *s, mqtt_str topic);

/* Route read receipt p (its topic resolved) of connection c. Returns 0,
 * a reason code >= 0x80 when it is refused (0x87: read receipts off on
 * the listener, or a peer c may not write to; 0x99: the payload is not
 * {"id": n}), or a negative error. */
int im_receipt_read(conn *c, const mqtt_publish *p);

/* Free the "delivered" marks (the server is being freed). */
void im_receipt_free(server *srv);

#endif
