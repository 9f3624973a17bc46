/* The broker's side of durability: turns sessions, queue entries,
 * subscriptions, QoS 2 ids, wills and retained messages into store
 * records, reads them back at start-up and as queues drain. The store
 * (store/) knows bytes and LMDB; this file knows the broker's structs.
 *
 * Time: the broker runs on uv_now() (monotonic ms); the store keeps
 * absolute wall-clock ms so deadlines survive a restart.
 *
 * Loop thread only.
 */
#ifndef IMQTT_PERSIST_H
#define IMQTT_PERSIST_H

#include "session.h"

/* Wall-clock ms since the epoch. */
uint64_t persist_wall_ms(void);
/* uv_now deadline -> wall-clock ms, and back (0 stays 0). */
uint64_t persist_to_wall(const server *srv, uint64_t mono);
uint64_t persist_from_wall(const server *srv, uint64_t wall);

/* Whether s keeps its state in the store. */
static inline bool persist_on(const session *s)
{
    return s->sid != 0;
}

/* Record m in the current batch unless it already is. */
void persist_msg(server *srv, msg *m);

/* Write s's record (creating its sid when the store is durable and the
 * session outlives its connection). Offline: s->disconnect_wall. */
void persist_session(session *s);

/* Record a retained message set (m has a payload) or cleared (empty). */
void persist_retained(server *srv, msg *m);

/* Record e's current state (created: the entry is new). */
void persist_entry(session *s, const out_entry *e, bool created);

/* Load everything at start-up: sessions (offline, with their timers),
 * subscriptions, QoS 2 ids, queue bounds, retained messages. Returns 0 or
 * a negative error (the broker must not start). */
int persist_load(server *srv);

/* Fill s's window from the store. Returns false when the next entries are
 * not committed yet (s is then put on the wait list). */
bool persist_pump(session *s);

/* Take s off the wait list (session end). */
void persist_unwait(session *s);

/* A batch completed: pump every session that waited for it. */
void persist_wake(server *srv);

/* A store record that cannot be read: log and exit non-zero. Never
 * returns, so nothing is acknowledged after it. */
_Noreturn void persist_fatal(int err, const char *what);

#endif
