/* Internals shared by the store's files (store.c: open, batches, the
 * store thread; store_read.c: loading and reading; store_check.c). Not for
 * the broker. */
#ifndef IMQTT_STORE_INT_H
#define IMQTT_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

#include "store.h"

/* The named databases of the environment (docs/store.md). */
enum store_db {
    DB_META,     /* "schema" -> u32 version */
    DB_MSGS,     /* msg id u64 -> message record */
    DB_REFS,     /* msg id u64 -> u32 reference count */
    DB_SESSIONS, /* client id -> session record */
    DB_SUBS,     /* sid u64 | filter -> subscription value */
    DB_QUEUE,    /* sid u64 | seq u64 -> queue entry */
    DB_QOS2,     /* sid u64 | pid u16 -> empty */
    DB_RETAINED, /* topic -> retained value */
    DB_IMLOG,    /* u8 len | conversation | u64 id -> log record (v2) */
    DB_IMCONV,   /* conversation -> conversation record (v2) */
    DB_COUNT_
};

extern const char *const store_db_names[DB_COUNT_];

/* store_lock.c: the exclusive lock of a writable store's directory.
 * Returns 0 with *fd_out the locked descriptor (closing it unlocks),
 * IMQTT_ELOCKED (another process holds it; logged with its PID) or
 * IMQTT_EIO. */
int store_lock_take(const char *dir, int *fd_out);

/* Operations of a batch. Each is [op u8][db u8][klen u32][vlen u32][key]
 * [val] in the batch buffer (big-endian lengths). */
enum store_op {
    OP_NOP,       /* cancelled in the open batch */
    OP_PUT,       /* plain put */
    OP_DEL,       /* plain delete, absent is fine */
    OP_MSG,       /* message put unless present */
    OP_ENTRY_PUT, /* queue entry put, references counted */
    OP_ENTRY_DEL,
    OP_RET_PUT, /* retained put, references counted */
    OP_RET_DEL,
    OP_SESS_DEL, /* session and everything under its sid */
    OP_IMLOG,    /* conversation log append and its retention deletes */
};
#define OP_HDR 10

/* A sealed batch: the encoded operations of one or more loop iterations.
 * Owned by the loop thread while open, by the queue (under mu) once
 * sealed, by the store thread while it commits, then by the done list. */
typedef struct batch {
    struct batch *next;
    uint8_t *ops; /* owned: [op u8][db u8][klen u32][vlen u32][key][val] */
    size_t len, cap;
    uint64_t gen;
    store_done_cb cb;
    void *arg;
    int status;
} batch;

/* Largest scratch kept between commits: the entry table of the open batch
 * (slots, 24 bytes each) and the store thread's list of new message ids
 * (8 bytes each). Past these they are freed after use, so one huge batch
 * does not keep its memory (issue 15). */
#define STORE_EH_KEEP    16384
#define STORE_NEW_KEEP   8192
#define STORE_CARRY_KEEP 65536
/* Ops bytes committed in one LMDB transaction (at least one batch): LMDB
 * keeps the pages a write transaction dirtied on its own free list for
 * good, so the largest transaction sets what the store thread holds. */
#define STORE_TXN_OPS_MAX (4u << 20)

typedef struct ehash_slot {
    uint64_t sid, seq; /* seq == 0: empty (sequences start at 1) */
    size_t off;        /* offset of the add in the open batch */
} ehash_slot;

struct store {
    enum store_durability durability;
    bool read_only;
    int lock_fd; /* DIR/imqtt.lock, flocked while open for writing; or -1 */
    MDB_env *env;
    MDB_dbi db[DB_COUNT_];
    char *dir; /* owned */

    /* loop thread */
    batch *cur;        /* the open batch */
    uint64_t next_gen; /* generation of the open batch */
    uint64_t done_gen; /* last batch whose callback ran */
    ehash_slot *eh;    /* entries added in the open batch */
    size_t eh_cap, eh_count;
    uint64_t commits;

    /* shared with the store thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch *todo_head, *todo_tail; /* sealed, waiting for the thread */
    batch *done_head, *done_tail; /* committed, waiting for store_poll */
    bool stop;
    bool thread_started;
    pthread_t thread;
    /* Loop-thread reads hold it shared; a map resize holds it exclusive
     * (mdb_env_set_mapsize needs no transaction open in the process). */
    pthread_rwlock_t resize;
    atomic_bool refusing;
    atomic_uint_fast64_t map_size;

    /* store thread */
    uint64_t max_size;
    uint32_t sync_ms;
    uint64_t *new_msgs; /* ids put in the current transaction */
    size_t nnew, new_cap;
    uint8_t *carry; /* deletes of failed batches, retried */
    size_t carry_len, carry_cap;
    uint64_t ticks; /* store thread: transactions made by tick() */

    void (*notify)(void *arg);
    void *notify_arg;

    uint64_t boot; /* start-ups of this store, this one included */
    bool no_imlog; /* read-only schema 1 store: no log databases */
};

/* Log a store error on stderr in the broker's log format. */
void store_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Map an LMDB or errno code to IMQTT_E*. */
int store_err(int rc);

/* The store thread's body (store_txn.c). */
void *store_thread(void *arg);

/* Short read transaction on the loop thread (store_read.c). */
int store_rd_begin(store *s, MDB_txn **txn);
void store_rd_end(store *s, MDB_txn *txn);

/* Apply one OP_IMLOG (store_imlog.c, on the store thread). */
int store_imlog_apply(store *s, MDB_txn *txn, const MDB_val *k,
                      const MDB_val *v);

/* --check-store of the conversation log inside read txn (store_imlog.c):
 * every record decodes, each conversation's record matches its messages.
 * Prints each problem to f; returns how many. */
size_t store_imlog_check(store *s, MDB_txn *txn, FILE *f, size_t *convs,
                         size_t *logged);

/* Read a message record by id inside txn. */
int store_get_msg(store *s, MDB_txn *txn, uint64_t id, store_msg *m);

/* Append one op to the open batch: its header and key, and room for vlen
 * value bytes, which the caller writes at the returned pointer (valid until
 * the next append). *off (may be NULL) gets the op's offset in the batch.
 * NULL on ENOMEM. */
uint8_t *store_append(store *s, uint8_t op, uint8_t db, const void *key,
                      uint32_t klen, uint32_t vlen, size_t *off);

#endif
