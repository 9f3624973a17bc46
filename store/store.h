/* Durable state. The broker records what must survive into the current
 * batch; store_commit seals the batch and reports, through a callback on
 * the broker's thread, when it is durable to the configured level. The
 * broker releases acknowledgements that promise durability (PUBACK,
 * PUBREC, SUBACK of a persistent session) only from that callback, so the
 * handlers are the same whatever the durability level.
 *
 * Durability levels (DESIGN.md):
 *   none     no LMDB; the broker's memory is the only copy, and a commit
 *            completes at once, inside store_commit.
 *   process  LMDB without fsync per commit (survives kill -9).
 *   full     fsync on every group commit (survives power loss).
 * Only `none` exists so far; opening another level is IMQTT_EINVAL until
 * the LMDB implementation lands.
 *
 * Threads: every function is called from the broker's loop thread.
 */
#ifndef IMQTT_STORE_H
#define IMQTT_STORE_H

#include <stdint.h>

enum store_durability {
    STORE_NONE = 0,
    STORE_PROCESS = 1,
    STORE_FULL = 2,
};

typedef struct store_options {
    enum store_durability durability;
    const char *dir; /* borrowed for the call; unused by STORE_NONE */
} store_options;

typedef struct store store;

/* status is 0, or a negative IMQTT_E* when the batch could not be made
 * durable (the broker must then refuse what depended on it). */
typedef void (*store_done_cb)(void *arg, int status);

/* Parse "none", "process", "full". Returns 0 or IMQTT_EINVAL. */
int store_durability_parse(const char *s, enum store_durability *out);
const char *store_durability_name(enum store_durability d);

int store_open(const store_options *opts, store **out);
void store_close(store *s);

enum store_durability store_level(const store *s);

/* Seal the writes recorded since the last commit and make them durable;
 * cb(arg, status) runs once that is done (for STORE_NONE: before
 * store_commit returns). Returns 0, or a negative IMQTT_E* when the commit
 * could not be started (cb is then not called). */
int store_commit(store *s, store_done_cb cb, void *arg);

/* Commits started and completed since open (for metrics and tests). */
uint64_t store_commit_count(const store *s);

#endif
