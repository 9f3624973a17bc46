/* UTF-8 as MQTT requires it [MQTT-1.5.3-1..3 / MQTT-1.5.4-1..3]. */
#ifndef IMQTT_UTF8_H
#define IMQTT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 0 if s[0..len) is well-formed UTF-8 (shortest form, at most U+10FFFF)
 * containing no U+0000 and no surrogate code points (U+D800..U+DFFF);
 * IMQTT_EUTF8 otherwise. Control characters and non-characters are allowed
 * (the specs say a receiver MAY reject them; we pass them through). */
int mqtt_utf8_check(const uint8_t *s, size_t len);

#endif
