/* Rate limits (config "limits", docs/config.md): new connections per
 * source address, and PUBLISH packets and bytes per client, each a token
 * bucket (ratelimit.h). Each refusal is counted in the metrics. The
 * per-address table belongs to the server (srv->conn_rate_addrs). */
#ifndef IMQTT_RATE_LIMITS_H
#define IMQTT_RATE_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "ratelimit.h"

struct server;
struct conn;

/* A new connection from address ip (text, no port). False: refuse it. */
bool rate_limits_accept(struct server *srv, const char *ip);

/* A PUBLISH of `bytes` from c. False: over its rate (disconnect 0x96). */
bool rate_limits_publish(struct conn *c, uint32_t bytes);

/* Free the per-address table. */
void rate_limits_free(struct server *srv);

#endif
