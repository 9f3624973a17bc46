/* The loop lock: with several loop threads, what they share — sessions,
 * the indexes, the store's batch, every connection's output buffer and
 * flags — is touched under this one mutex. Each libuv callback that
 * reaches broker state takes it for its own duration; the loops' waits
 * and their socket reads (libuv reads before it calls a read callback)
 * run outside it, in parallel. libuv handles are still touched only by
 * their own loop: what one loop asks of another's connection is marked on
 * it and done by the owner (worker.h).
 *
 * With one loop the lock is never enabled and costs a branch.
 * Recursive per thread: a callback may call code that locks again.
 *
 * Why one lock and not shards: docs/architecture.md, "Threads". */
#ifndef IMQTT_LOOP_LOCK_H
#define IMQTT_LOOP_LOCK_H

#include <stdbool.h>

/* Turn the lock on (before the second loop thread starts). */
void loop_lock_enable(void);

bool loop_lock_enabled(void);

void loop_lock(void);
void loop_unlock(void);

#endif
