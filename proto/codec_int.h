/* Internal to proto/: functions shared between the codec's files. */
#ifndef IMQTT_CODEC_INT_H
#define IMQTT_CODEC_INT_H

#include "packet.h"
#include "wire.h"

/* Whether rc is a reason code (v5) or return code (3.x) that a packet of
 * this type may carry. */
bool mqtt__reason_valid(uint8_t type, uint8_t version, uint8_t rc);

int mqtt__decode_connect(wire_reader *r, mqtt_connect *c);
int mqtt__decode_connack(wire_reader *r, uint8_t version, mqtt_connack *c);

/* The property encoder in two steps, so that an encoder that already sized
 * the block does not walk it (and its user properties) twice.
 * mqtt__props_check: 0 or IMQTT_EINVAL (a value the wire cannot carry).
 * mqtt__props_content_size: bytes of the block without its length prefix.
 * mqtt__props_write: writes prefix and content, returns the end. */
int mqtt__props_check(const mqtt_props *p);
size_t mqtt__props_content_size(const mqtt_props *p);
uint8_t *mqtt__props_write(const mqtt_props *p, size_t content, uint8_t *w);

#endif
