/* The broker's side of the credential cache and the failed-authentication
 * limit (auth/credcache.h, auth/authlimit.h; config "auth", docs/auth.md):
 * which address a connection counts against, the clock, the metrics, and
 * re-making both when the configuration is reloaded. The state is the
 * server's (srv->guard, owned), made on first use. One loop thread. */
#ifndef IMQTT_AUTH_GUARD_H
#define IMQTT_AUTH_GUARD_H

#include <stdbool.h>

#include "conn.h"
#include "password.h"

/* Whether (user, password) was verified against db's entry within the
 * cache's TTL: then it is accepted without PBKDF2. Counts a hit or miss;
 * false when the cache is off. */
bool auth_guard_cached(conn *c, const pwdb *db, mqtt_str user,
                       mqtt_bytes password);

/* An expensive check (PBKDF2, token signature) is about to run for c:
 * false when c's address has no attempts left (refuse with 0x9F; counted),
 * else one attempt is taken. */
bool auth_guard_admit(conn *c);

/* The check admitted for c succeeded: its attempt back. */
void auth_guard_succeeded(conn *c);
/* The same two for an attempt that is no connection's (the backend API's
 * device uplink), counted against address a. */
bool auth_guard_admit_addr(server *srv, const conn_addr *a);
void auth_guard_succeeded_addr(server *srv, const conn_addr *a);

/* A password check admitted for c ended with `ok`: on success the
 * attempt is given back and the credential cached. c may be closed; only
 * its address and server are read. */
void auth_guard_password_done(conn *c, const pwdb *db, mqtt_str user,
                              mqtt_bytes password, bool ok);

/* The configuration was reloaded: the cache is emptied (the password file
 * was read again; a changed entry must be verified anew) and both take the
 * new sizes and limits. */
void auth_guard_reload(server *srv);

void auth_guard_free(server *srv);

#endif
