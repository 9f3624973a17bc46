/* Durable state. The broker records what must survive into the current
 * batch; store_commit seals the batch and reports, through a callback on
 * the broker's thread, when it is durable to the configured level. The
 * broker releases acknowledgements that promise durability (PUBACK,
 * PUBREC, SUBACK of a persistent session) only from that callback, so the
 * handlers are the same whatever the durability level.
 *
 * Durability levels (DESIGN.md):
 *   none     no LMDB; the broker's memory is the only copy, and a commit
 *            completes at once, inside store_commit. Every record call is
 *            a no-op.
 *   process  LMDB with MDB_NOSYNC (survives kill -9), fsync every
 *            sync_interval_ms.
 *   full     fsync on every group commit (survives power loss).
 *
 * Threads. Every function here is called from the broker's loop thread
 * (the one that called store_open). A store thread owns the LMDB write
 * transaction: it takes every sealed batch that is waiting, applies them
 * in order in one transaction (group commit), commits, and calls
 * opts->notify from the store thread; the broker answers that by calling
 * store_poll on its loop thread, which runs the done callbacks in commit
 * order. Reads (store_load, store_read_queue) use short read transactions
 * on the loop thread.
 *
 * Caveats (as lmdb.h has them):
 *  - A write recorded after store_commit belongs to the next batch; the
 *    callbacks of batch N run before those of batch N+1.
 *  - Reads see only committed batches: an entry recorded in a batch whose
 *    callback has not run may not be visible yet (store_read_queue then
 *    returns fewer entries; try again after the next completion).
 *  - Map full at store.max_size, ENOSPC or EIO: the batch's callback gets
 *    IMQTT_ESTOREFULL, the puts of that batch are dropped and its deletes
 *    are retried; store_refusing() is true until a commit succeeds again.
 *  - MDB_PANIC or a corrupt record in the write path: the store logs the
 *    cause to stderr and ends the process with exit code 70, so nothing
 *    is acknowledged after it.
 */
#ifndef IMQTT_STORE_H
#define IMQTT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "record.h"

enum store_durability {
    STORE_NONE = 0,
    STORE_PROCESS = 1,
    STORE_FULL = 2,
};

typedef struct store_options {
    enum store_durability durability;
    const char *dir;           /* borrowed for the call; unused by NONE */
    uint64_t map_size;         /* initial LMDB map size, bytes */
    uint64_t max_size;         /* the map doubles up to this, bytes */
    uint32_t sync_interval_ms; /* process: fsync period */
    bool read_only;            /* open an existing store read-only */
    /* Called on the store thread when completions wait for store_poll.
     * Must be thread-safe (uv_async_send). NULL for read-only use. */
    void (*notify)(void *arg);
    void *notify_arg; /* borrowed; must outlive the store */
} store_options;

typedef struct store store;

/* status is 0, or a negative IMQTT_E* when the batch could not be made
 * durable (the broker must then refuse what depended on it). */
typedef void (*store_done_cb)(void *arg, int status);

/* Parse "none", "process", "full". Returns 0 or IMQTT_EINVAL. */
int store_durability_parse(const char *s, enum store_durability *out);
const char *store_durability_name(enum store_durability d);

/* Open (creating dir 0700 and the files 0600 unless read_only). Unless
 * read_only, takes an exclusive lock on dir (file STORE_LOCK_FILE holding
 * the PID) for as long as the store is open, so a second process refuses
 * to open the same store. Returns 0, IMQTT_ELOCKED (held by another
 * process, whose PID is logged), IMQTT_ESCHEMA (written by a newer
 * version), IMQTT_ECORRUPT, IMQTT_EIO (with the cause logged to stderr) or
 * IMQTT_ENOMEM. */
int store_open(const store_options *opts, store **out);

#define STORE_LOCK_FILE "imqtt.lock"

/* Who holds dir's lock: its PID, -1 when held by a process that wrote no
 * PID, 0 when nobody does. Takes no lock that outlives the call. */
long store_lock_holder(const char *dir);
/* Commit what is pending, wait for it, stop the thread, close. */
void store_close(store *s);

enum store_durability store_level(const store *s);
/* Whether records are kept at all (durability != none). */
bool store_durable(const store *s);

/* ---- recording into the current batch (no-ops for STORE_NONE) --------
 * Every view is copied into the batch before the call returns. Each
 * returns 0 or IMQTT_ENOMEM. */

/* A message; written only if no record with this id exists. A message
 * whose reference count is 0 at the end of a transaction is deleted. */
int store_put_msg(store *s, uint64_t id, const store_msg *m);
/* Queue entry (sid, seq): put adds a reference to e->msg_id (and drops the
 * one of the entry it replaces); del drops its reference. `created` says
 * the entry is new (no earlier batch holds it): a del in the same open
 * batch then cancels both, and neither reaches LMDB. */
int store_put_entry(store *s, uint64_t sid, uint64_t seq, const store_entry *e,
                    bool created);
int store_del_entry(store *s, uint64_t sid, uint64_t seq);
int store_put_session(store *s, const store_session *ss);
/* Deletes the session record and every subscription, entry and QoS 2 id
 * of sid. */
int store_del_session(store *s, mqtt_str client_id, uint64_t sid);
int store_put_sub(store *s, uint64_t sid, mqtt_str filter, uint8_t opts,
                  uint32_t sub_id);
int store_del_sub(store *s, uint64_t sid, mqtt_str filter);
int store_put_qos2(store *s, uint64_t sid, uint16_t pid);
int store_del_qos2(store *s, uint64_t sid, uint16_t pid);
int store_put_retained(store *s, mqtt_str topic, uint64_t msg_id);
int store_del_retained(store *s, mqtt_str topic);

/* Whether the current batch holds anything. */
bool store_pending(const store *s);
/* Generation of the open batch (1, 2, ...) and of the last batch whose
 * callback has run: a record made in batch g is readable once
 * store_done_gen() >= g. */
uint64_t store_batch_gen(const store *s);
uint64_t store_done_gen(const store *s);

/* Seal the writes recorded since the last commit and make them durable;
 * cb(arg, status) runs from store_poll once that is done (for STORE_NONE:
 * before store_commit returns). Returns 0, or a negative IMQTT_E* when the
 * commit could not be started (cb is then not called). */
int store_commit(store *s, store_done_cb cb, void *arg);

/* Run the callbacks of completed batches (loop thread). Returns how many
 * ran. */
int store_poll(store *s);

/* True while new QoS 1/2 publications must be refused (store full, disk
 * full, I/O error); cleared by the next successful commit. */
bool store_refusing(const store *s);

/* Commits started and completed since open (for metrics and tests). */
uint64_t store_commit_count(const store *s);

/* ---- reading (loop thread) -------------------------------------------- */

typedef struct store_visitor {
    void *arg;
    /* Each returns 0 to go on or a negative error to stop the load. The
     * views are valid during the call only. */
    int (*session)(void *arg, const store_session *ss);
    int (*sub)(void *arg, const store_sub *sub);
    int (*qos2)(void *arg, uint64_t sid, uint16_t pid);
    /* First and last queue seq of a session (only for non-empty queues) */
    int (*queue)(void *arg, uint64_t sid, uint64_t first, uint64_t last,
                 uint64_t count);
    int (*retained)(void *arg, uint64_t msg_id, const store_msg *m);
} store_visitor;

/* Visit everything needed at start-up: sessions, then subscriptions, QoS 2
 * ids, queue bounds per session, retained messages. Also reports the
 * largest message id and session id seen. Returns 0, a visitor's error or
 * IMQTT_ECORRUPT. */
int store_load(store *s, const store_visitor *v, uint64_t *max_msg_id,
               uint64_t *max_sid);

/* At start-up, before store_load: delete the queued (never sent) entries
 * whose message expired while the broker was down, and the messages left
 * without a reference. Returns 0 (*purged set) or a negative IMQTT_E*. */
int store_purge_expired(store *s, uint64_t now_wall_ms, uint64_t *purged);

/* Call cb for up to `max` queue entries of sid with seq >= from, in order,
 * with the entry's message (NULL for a PUBREC entry). Returns the number
 * visited, or a negative error (IMQTT_ECORRUPT: dangling or bad record). */
typedef int (*store_entry_cb)(void *arg, uint64_t seq, const store_entry *e,
                              const store_msg *m);
int store_read_queue(store *s, uint64_t sid, uint64_t from, uint32_t max,
                     store_entry_cb cb, void *arg);

/* Check a store (opened read_only): reference counts, queue entries and
 * retained records pointing at existing messages, record formats. Prints
 * counts and every problem to `out` (a FILE*). Returns 0 when
 * consistent, IMQTT_ECORRUPT otherwise. */
int store_check(store *s, void *out);

/* Bytes used by the data file (for logs, metrics, the benchmark). */
uint64_t store_file_size(const store *s);

/* Messages stored (each once, however many queues hold it); 0 without
 * LMDB or on a read error. Opens a short read transaction (loop thread):
 * for metrics and $SYS, not for the hot path. */
uint64_t store_message_count(store *s);

#endif
