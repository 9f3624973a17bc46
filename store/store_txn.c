/* The store thread: applies sealed batches in one write transaction
 * (group commit), grows the map when it is full, syncs as the durability
 * level asks, and hands the batches back for store_poll. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "store_int.h"

/* The process must stop: something we cannot trust happened to the store.
 * Nothing is acknowledged after this (DESIGN.md invariants). */
static _Noreturn void fatal(const char *what, int rc)
{
    store_log("error",
              "%s: %s; stopping the broker without acknowledging "
              "anything more",
              what, mdb_strerror(rc));
    _exit(70);
}

/* Change msg id's reference count by delta; delete the message at 0. */
static int ref_add(store *s, MDB_txn *txn, const uint8_t id[8], int delta)
{
    MDB_val k = {8, (void *)id}, v;
    int rc = mdb_get(txn, s->db[DB_REFS], &k, &v);
    int64_t n = 0;
    if (rc == 0 && v.mv_size == 4)
        n = store_get32(v.mv_data);
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    n += delta;
    if (n <= 0) {
        rc = mdb_del(txn, s->db[DB_REFS], &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        rc = mdb_del(txn, s->db[DB_MSGS], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    uint8_t buf[4];
    store_be32(buf, (uint32_t)n);
    v = (MDB_val){4, buf};
    return mdb_put(txn, s->db[DB_REFS], &k, &v, 0);
}

/* The message id a queue entry or retained record refers to, or 0. */
static int old_ref(store *s, MDB_txn *txn, int db, MDB_val *k, uint8_t id[8])
{
    MDB_val v;
    memset(id, 0, 8);
    int rc = mdb_get(txn, s->db[db], k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (db == DB_QUEUE && v.mv_size >= 9)
        memcpy(id, (uint8_t *)v.mv_data + 1, 8);
    else if (db == DB_RETAINED && v.mv_size == STORE_RETVAL_LEN)
        memcpy(id, (uint8_t *)v.mv_data + 1, 8);
    else
        return MDB_CORRUPTED;
    return 0;
}

static bool nonzero(const uint8_t id[8])
{
    static const uint8_t z[8];
    return memcmp(id, z, 8) != 0;
}

/* Delete every key of db that starts with the 8-byte sid; queue entries
 * give back their message references. */
static int sweep(store *s, MDB_txn *txn, int db, const uint8_t sid[8])
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db[db], &cur);
    if (rc != 0)
        return rc;
    MDB_val k = {8, (void *)sid}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, sid, 8) == 0) {
        if (db == DB_QUEUE && v.mv_size >= 9) {
            uint8_t id[8];
            memcpy(id, (uint8_t *)v.mv_data + 1, 8);
            if (nonzero(id) && (rc = ref_add(s, txn, id, -1)) != 0)
                break;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == MDB_NOTFOUND || rc == EINVAL)
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static bool grows(uint8_t op)
{
    return op == OP_PUT || op == OP_MSG || op == OP_ENTRY_PUT ||
           op == OP_RET_PUT || op == OP_IMLOG;
}

static int apply_op(store *s, MDB_txn *txn, const uint8_t *p)
{
    uint8_t op = p[0], db = p[1];
    uint32_t klen = store_get32(p + 2), vlen = store_get32(p + 6);
    MDB_val k = {klen, (void *)(p + OP_HDR)};
    MDB_val v = {vlen, (void *)(p + OP_HDR + klen)};
    uint8_t id[8];
    int rc = 0;
    switch (op) {
    case OP_NOP:
        return 0;
    case OP_PUT:
        return mdb_put(txn, s->db[db], &k, &v, 0);
    case OP_DEL:
        rc = mdb_del(txn, s->db[db], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    case OP_MSG:
        rc = mdb_put(txn, s->db[db], &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
            return 0;
        if (rc == 0) {
            if (s->nnew == s->new_cap) {
                size_t cap = s->new_cap ? s->new_cap * 2 : 64;
                uint64_t *n = realloc(s->new_msgs, cap * sizeof(*n));
                if (!n)
                    return ENOMEM;
                s->new_msgs = n;
                s->new_cap = cap;
            }
            s->new_msgs[s->nnew++] = store_get64(p + OP_HDR);
        }
        return rc;
    case OP_ENTRY_PUT:
    case OP_RET_PUT:
        if ((rc = old_ref(s, txn, db, &k, id)) != 0)
            return rc;
        if ((rc = mdb_put(txn, s->db[db], &k, &v, 0)) != 0)
            return rc;
        {
            const uint8_t *nid = (const uint8_t *)v.mv_data + 1;
            if (nonzero(id) && memcmp(id, nid, 8) == 0)
                return 0; /* same message: the count is unchanged */
            if (nonzero(nid) && (rc = ref_add(s, txn, nid, 1)) != 0)
                return rc;
        }
        return nonzero(id) ? ref_add(s, txn, id, -1) : 0;
    case OP_ENTRY_DEL:
    case OP_RET_DEL:
        if ((rc = old_ref(s, txn, db, &k, id)) != 0)
            return rc;
        rc = mdb_del(txn, s->db[db], &k, NULL);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc != 0)
            return rc;
        return nonzero(id) ? ref_add(s, txn, id, -1) : 0;
    case OP_SESS_DEL:
        rc = mdb_del(txn, s->db[DB_SESSIONS], &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        if ((rc = sweep(s, txn, DB_SUBS, v.mv_data)) != 0 ||
            (rc = sweep(s, txn, DB_QUEUE, v.mv_data)) != 0)
            return rc;
        return sweep(s, txn, DB_QOS2, v.mv_data);
    case OP_IMLOG:
        return store_imlog_apply(s, txn, &k, &v);
    }
    return MDB_CORRUPTED; /* an op we never write */
}

static int apply_ops(store *s, MDB_txn *txn, const uint8_t *ops, size_t len,
                     bool shrink_only)
{
    for (size_t at = 0; at < len;) {
        const uint8_t *p = ops + at;
        at += OP_HDR + (size_t)store_get32(p + 2) + store_get32(p + 6);
        if (shrink_only && grows(p[0]))
            continue;
        int rc = apply_op(s, txn, p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Live data may fill the map only up to 7/8 of store.max_size: the rest
 * is the room a transaction of deletes needs (copied pages, the free
 * list) once the map is full. Without it a full store could not commit
 * the deletes of its consumers and would refuse publications forever. */
#define OVER_LIMIT (MDB_LAST_ERRCODE + 1) /* our own: puts past the limit */

static uint64_t live_limit(const store *s)
{
    return s->max_size - s->max_size / 8;
}

static bool over_limit(store *s, MDB_txn *txn)
{
    /* Live pages fit in the map: while it is below the limit (it grows
     * by doubling), they cannot pass it. */
    if (atomic_load(&s->map_size) <= live_limit(s))
        return false;
    uint64_t pages = 0;
    MDB_stat st = {0};
    for (int i = 0; i < DB_COUNT_; i++) {
        if (mdb_stat(txn, s->db[i], &st) != 0)
            return false;
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return pages * st.ms_psize > live_limit(s);
}

/* One transaction over the carried deletes and every batch of the list.
 * With shrink_only the puts are left out and the live limit is not
 * checked: deletes must always be able to go through. */
static int commit_list(store *s, batch *list, bool shrink_only)
{
    MDB_txn *txn;
    s->nnew = 0;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    rc = apply_ops(s, txn, s->carry, s->carry_len, false);
    for (batch *b = list; b && rc == 0; b = b->next)
        rc = apply_ops(s, txn, b->ops, b->len, shrink_only);
    /* Messages whose every entry was cancelled or dropped in this
     * transaction have no reference: do not keep them. */
    for (size_t i = 0; i < s->nnew && rc == 0; i++) {
        uint8_t id[8];
        store_be64(id, s->new_msgs[i]);
        MDB_val k = {8, id}, v;
        rc = mdb_get(txn, s->db[DB_REFS], &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = mdb_del(txn, s->db[DB_MSGS], &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
    }
    if (rc == 0 && !shrink_only && over_limit(s, txn))
        rc = OVER_LIMIT;
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc == 0)
        s->carry_len = 0;
    return rc;
}

/* Keep the deletes of batches that could not be committed, to retry with
 * the next transaction: an acknowledged delivery must not come back. */
static void carry_deletes(store *s, batch *list)
{
    for (batch *b = list; b; b = b->next) {
        for (size_t at = 0; at < b->len;) {
            const uint8_t *p = b->ops + at;
            size_t n = OP_HDR + (size_t)store_get32(p + 2) + store_get32(p + 6);
            at += n;
            if (grows(p[0]) || p[0] == OP_NOP)
                continue;
            if (s->carry_cap - s->carry_len < n) {
                size_t cap = (s->carry_cap + n) * 2;
                uint8_t *c = realloc(s->carry, cap);
                if (!c)
                    return; /* they come back as duplicates, not losses */
                s->carry = c;
                s->carry_cap = cap;
            }
            memcpy(s->carry + s->carry_len, p, n);
            s->carry_len += n;
        }
    }
}

static bool grow_map(store *s)
{
    uint64_t cur = atomic_load(&s->map_size);
    if (cur >= s->max_size)
        return false;
    uint64_t next = cur * 2 < s->max_size ? cur * 2 : s->max_size;
    pthread_rwlock_wrlock(&s->resize);
    int rc = mdb_env_set_mapsize(s->env, (size_t)next);
    pthread_rwlock_unlock(&s->resize);
    if (rc != 0) {
        store_log("error", "growing the map to %llu bytes: %s",
                  (unsigned long long)next, mdb_strerror(rc));
        return false;
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    atomic_store(&s->map_size, info.me_mapsize);
    store_log("info", "map grown to %llu bytes",
              (unsigned long long)info.me_mapsize);
    return true;
}

static bool space_error(int rc)
{
    return rc == MDB_MAP_FULL || rc == OVER_LIMIT || rc == ENOSPC ||
           rc == EIO || rc == EDQUOT || rc == EFBIG;
}

/* LMDB reuses the pages a transaction freed only two transactions later
 * (a reader may still see the snapshot before it). After consumers'
 * deletes free room, the next put would find the map full although the
 * room is there: one small transaction of its own moves the freed pages
 * within reach. Its write (the meta key "tick") is a few bytes in a page
 * the reserve above always has room for. */
static int tick(store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    static const char key[] = "tick";
    uint8_t val[8];
    store_be64(val, ++s->ticks);
    MDB_val k = {sizeof(key) - 1, (void *)key}, v = {sizeof(val), val};
    rc = mdb_put(txn, s->db[DB_META], &k, &v, 0);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

static int commit_batches(store *s, batch *list)
{
    int rc;
    bool ticked = false;
    for (;;) {
        rc = commit_list(s, list, false);
        if (rc == MDB_MAP_FULL && grow_map(s))
            continue;
        if (rc == MDB_MAP_FULL && !ticked && tick(s) == 0) {
            ticked = true;
            continue;
        }
        break;
    }
    if (rc == 0) {
        if (atomic_exchange(&s->refusing, false))
            store_log("info", "space available again: accepting QoS 1/2 "
                              "publications");
        return 0;
    }
    if (!space_error(rc))
        fatal("commit", rc);
    if (!atomic_exchange(&s->refusing, true))
        store_log("warn",
                  "cannot commit (%s): refusing QoS 1/2 publications "
                  "until space is available",
                  rc == OVER_LIMIT ? "store.max_size reached"
                                   : mdb_strerror(rc));
    /* The puts are refused (their acks say so); the deletes must stay. */
    int rc2 = commit_list(s, list, true);
    if (rc2 != 0 && !space_error(rc2))
        fatal("commit", rc2);
    if (rc2 != 0)
        carry_deletes(s, list);
    return IMQTT_ESTOREFULL;
}

/* After a commit: give back scratch that one large transaction grew. */
static void shrink_scratch(store *s)
{
    if (s->new_cap > STORE_NEW_KEEP) {
        free(s->new_msgs);
        s->new_msgs = NULL;
        s->new_cap = 0;
        s->nnew = 0;
    }
    if (s->carry_len == 0 && s->carry_cap > STORE_CARRY_KEEP) {
        free(s->carry);
        s->carry = NULL;
        s->carry_cap = 0;
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void *store_thread(void *arg)
{
    store *s = arg;
    bool dirty = false; /* committed without fsync (process) */
    uint64_t last_sync = mono_ms();
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo_head && !s->stop) {
            if (!dirty) {
                pthread_cond_wait(&s->cv, &s->mu);
                continue;
            }
            uint64_t due = last_sync + s->sync_ms, now = mono_ms();
            if (now >= due)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (due - now) * 1000000ull;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        batch *list = s->todo_head;
        s->todo_head = s->todo_tail = NULL;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);

        while (list) {
            /* Consecutive transactions commit the same as one; smaller
             * ones bound the pages LMDB keeps (STORE_TXN_OPS_MAX). */
            batch *chunk = list, *tail = list;
            size_t bytes = list->len;
            while (tail->next && bytes + tail->next->len <= STORE_TXN_OPS_MAX) {
                tail = tail->next;
                bytes += tail->len;
            }
            list = tail->next;
            tail->next = NULL;
            int status = commit_batches(s, chunk);
            dirty = s->durability == STORE_PROCESS;
            for (batch *b = chunk; b; b = b->next)
                b->status = status;
            shrink_scratch(s);
            pthread_mutex_lock(&s->mu);
            if (s->done_tail)
                s->done_tail->next = chunk;
            else
                s->done_head = chunk;
            s->done_tail = tail;
            pthread_mutex_unlock(&s->mu);
            if (s->notify)
                s->notify(s->notify_arg);
        }
        if (dirty && (mono_ms() - last_sync >= s->sync_ms || stop)) {
            int rc = mdb_env_sync(s->env, 1);
            if (rc != 0 && !space_error(rc))
                fatal("sync", rc);
            dirty = false;
            last_sync = mono_ms();
        }
        pthread_mutex_lock(&s->mu);
        if (stop && !s->todo_head)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store_purge_expired(store *s, uint64_t now_wall_ms, uint64_t *purged)
{
    *purged = 0;
    if (!s->env || s->read_only)
        return 0;
    /* A write transaction on the caller's thread: LMDB serialises writers,
     * and at start-up the store thread has no batch to commit anyway. */
    pthread_rwlock_rdlock(&s->resize);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_cursor_open(txn, s->db[DB_QUEUE], &cur);
    MDB_val k, v;
    int step = MDB_FIRST;
    while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, step)) == 0) {
        step = MDB_NEXT;
        store_entry e;
        if (store_entry_decode(v.mv_data, v.mv_size, &e) < 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        /* Only what was never sent: a message in flight is completed
         * whatever its expiry [MQTT-3.3.2-5]. */
        if (e.state != STORE_ENTRY_QUEUED || e.msg_id == 0)
            continue;
        store_msg m;
        if (store_get_msg(s, txn, e.msg_id, &m) < 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (m.expiry_ms == 0 || m.expiry_ms > now_wall_ms)
            continue;
        uint8_t id[8];
        store_be64(id, e.msg_id);
        /* After a cursor delete LMDB's MDB_NEXT yields the record that
         * followed the deleted one. */
        if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
            (rc = ref_add(s, txn, id, -1)) != 0)
            break;
        (*purged)++;
    }
    if (cur)
        mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize);
    if (rc != 0)
        *purged = 0;
    return rc == 0 ? 0 : store_err(rc);
}
