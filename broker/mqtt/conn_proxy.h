/* The PROXY protocol phase of a connection on a listener with
 * "proxy_protocol": true (BAD_INPUTS row 26). conn.c calls in twice:
 *
 *   conn_proxy_trusted(c)   at accept: is the TCP peer one of the
 *                           listener's proxy_from networks? If not, the
 *                           connection is refused (logged with the real
 *                           address, counted as cause "proxy").
 *   conn_proxy_read_start(c) instead of the MQTT read start: read the
 *                           header (proxy_proto.c), make its source the
 *                           connection's peer (logs, rate limits), apply
 *                           the connection rate limit to that address, then
 *                           hand the bytes after the header and the socket
 *                           to the MQTT read path. A missing, garbled or
 *                           oversized header closes the connection.
 *
 * The header wait is covered by the CONNECT deadline armed at accept. */
#ifndef IMQTT_CONN_PROXY_H
#define IMQTT_CONN_PROXY_H

#include <stdbool.h>

#include "conn.h"

bool conn_proxy_trusted(conn *c);
void conn_proxy_read_start(conn *c);

#endif
