/* limits.message_rate / message_burst for the device uplink: a token
 * bucket per user@device, as an MQTT connection has one, kept by the HTTP
 * listener. Bounded: past API_RATE_MAX devices, the buckets that have
 * refilled (idle devices) are forgotten; if none has, the newcomer is
 * refused. Main loop, under the loop lock. */
#ifndef IMQTT_API_RATE_H
#define IMQTT_API_RATE_H

#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "server.h"

#define API_RATE_MAX 65536

typedef struct api_rates {
    hmap devices; /* user@device -> struct api_rate_entry (owned) */
} api_rates;

/* Whether client id `cid` may send one more message now (always true
 * when limits.message_rate is 0). */
bool api_rate_take(api_rates *r, const server *srv, mqtt_str cid);

void api_rates_free(api_rates *r);

#endif
