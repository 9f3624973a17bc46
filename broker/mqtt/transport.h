/* Transports other than plain TCP: TLS, WebSocket, and WebSocket over TLS.
 *
 * A plain TCP connection has c->tp == NULL and never enters this file:
 * its reads are parsed in place and its output written straight from the
 * outbuf. For the others conn.c calls three hooks:
 *
 *   read   transport_on_read(c, bytes): decrypt / unframe, then hand the
 *          MQTT bytes to conn_input;
 *   write  transport_encode(c) at the start of conn_flush: frame / encrypt
 *          what c->out holds into the transport's wire buffer, then swap
 *          the two so that conn_flush writes the wire bytes as usual;
 *   close  transport_close_begin(c) before the TCP shutdown: queue the
 *          WebSocket close frame and the TLS close_notify.
 */
#ifndef IMQTT_TRANSPORT_H
#define IMQTT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

typedef struct transport transport;

/* Build what the listener's transport shares (the TLS config). Called
 * before it listens; returns 0 or a negative error (logged). */
int transport_listener_start(listener *lst);
/* Swap in the TLS certificates of cfg (a reload): new connections use
 * them, open ones keep theirs. Returns 0 or an error (logged; the old
 * certificates stay). */
int transport_listener_reload(listener *lst, const listener_config *cfg);
void transport_listener_free(listener *lst);

/* Give c its transport state when its listener is not plain TCP. Returns
 * 0 or IMQTT_ENOMEM. */
int transport_attach(conn *c);
void transport_free(conn *c);

/* Bytes read from the socket (a writable buffer, borrowed for the call). */
void transport_on_read(conn *c, uint8_t *data, size_t len);

/* Move c->out's MQTT bytes into the wire and swap: afterwards c->out
 * holds the bytes to write. Returns 0 or IMQTT_ENOMEM. */
int transport_encode(conn *c);

/* Queue the transport's goodbye once. Returns true when bytes were queued
 * (flush them before the shutdown). */
bool transport_close_begin(conn *c);

/* The user name a verified client certificate gives (identity_from_cert
 * listeners); NULL otherwise. Owned by the transport. */
const char *transport_cert_identity(const conn *c);

#endif
