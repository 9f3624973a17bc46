/* How a connection appears in the log: who it is (peer
 * address, client id), and how a listener address is written.
 *
 * Every returned string is a buffer of the loop thread, valid until the
 * next call of the same function. */
#ifndef IMQTT_CONN_LOG_H
#define IMQTT_CONN_LOG_H

#include "conn.h"

/* "client alice@phone (10.0.0.7:5995)" once CONNECT is accepted, else the
 * peer alone ("10.0.0.7:5995", "[::1]:5995"): every line about one
 * connection names its peer, so that fail2ban-style tools can act. */
const char *conn_who(const conn *c);

/* "127.0.0.1:1883", "[::1]:1883": an address and port as a log line or a
 * URL writes them. */
const char *log_hostport(const char *host, unsigned port);

#endif
