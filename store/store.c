/* The store: LMDB environment, batches recorded on the loop thread, and
 * the store thread that commits them (group commit). */
#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

const char *const store_db_names[DB_COUNT_] = {
    "meta",  "msgs", "refs",     "sessions", "subs",
    "queue", "qos2", "retained", "imlog",    "imconv"};

void store_log(const char *level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n,
                          ".%03ldZ %s store: ", ts.tv_nsec / 1000000L, level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n += m < 0                              ? 0
         : (size_t)m < sizeof(line) - n - 1 ? (size_t)m
                                            : sizeof(line) - n - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* nowhere left to report a failed log write */
}

int store_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_MAP_FULL:
    case ENOSPC:
        return IMQTT_ESTOREFULL;
    case ENOMEM:
        return IMQTT_ENOMEM;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return IMQTT_ECORRUPT;
    default:
        return IMQTT_EIO;
    }
}

int store_durability_parse(const char *s, enum store_durability *out)
{
    static const char *const names[] = {"none", "process", "full"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum store_durability)i;
            return 0;
        }
    }
    return IMQTT_EINVAL;
}

const char *store_durability_name(enum store_durability d)
{
    switch (d) {
    case STORE_NONE:
        return "none";
    case STORE_PROCESS:
        return "process";
    case STORE_FULL:
        return "full";
    }
    return "?";
}

/* ---- opening ----------------------------------------------------------- */

static int prepare_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || mkdir(dir, 0700) < 0) {
            store_log("error", "%s: %s", dir, strerror(errno));
            return IMQTT_EIO;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        store_log("error", "%s: not a directory", dir);
        return IMQTT_EIO;
    }
    if ((st.st_mode & 077) != 0) {
        /* Queued messages are private (BAD_INPUTS row 20). */
        store_log("warn", "%s was readable by others: mode set to 0700", dir);
        if (chmod(dir, 0700) < 0) {
            store_log("error", "%s: chmod: %s", dir, strerror(errno));
            return IMQTT_EIO;
        }
    }
    return 0;
}

static int check_schema(store *s, MDB_txn *txn)
{
    MDB_val k = {6, "schema"}, v;
    int rc = mdb_get(txn, s->db[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        MDB_stat st;
        mdb_stat(txn, s->db[DB_SESSIONS], &st);
        size_t n = st.ms_entries;
        mdb_stat(txn, s->db[DB_MSGS], &st);
        n += st.ms_entries;
        if (n > 0) {
            store_log("error", "%s: data without a schema record", s->dir);
            return IMQTT_ECORRUPT;
        }
        if (s->read_only)
            return 0;
        uint8_t ver[4];
        store_be32(ver, STORE_SCHEMA_VERSION);
        v = (MDB_val){4, ver};
        return store_err(mdb_put(txn, s->db[DB_META], &k, &v, 0));
    }
    if (rc != 0)
        return store_err(rc);
    if (v.mv_size != 4) {
        store_log("error", "%s: schema record corrupt", s->dir);
        return IMQTT_ECORRUPT;
    }
    uint32_t ver = store_get32(v.mv_data);
    if (ver > STORE_SCHEMA_VERSION) {
        store_log("error",
                  "%s: written by a newer imqtt (schema version %u, this "
                  "build reads up to %u); refusing to open it",
                  s->dir, (unsigned)ver, (unsigned)STORE_SCHEMA_VERSION);
        return IMQTT_ESCHEMA;
    }
    if (ver == 0) {
        store_log("error", "%s: schema version 0", s->dir);
        return IMQTT_ECORRUPT;
    }
    if (ver < STORE_SCHEMA_VERSION && !s->read_only) {
        /* 1 -> 2 added the conversation log's databases, created empty by
         * the open above: nothing else changed, so the upgrade is the
         * version record. An older build then refuses the store. */
        uint8_t nv[4];
        store_be32(nv, STORE_SCHEMA_VERSION);
        v = (MDB_val){4, nv};
        rc = mdb_put(txn, s->db[DB_META], &k, &v, 0);
        if (rc != 0)
            return store_err(rc);
        store_log("info", "%s: schema version %u upgraded to %u", s->dir,
                  (unsigned)ver, (unsigned)STORE_SCHEMA_VERSION);
    }
    return 0;
}

/* Count this start-up: the conversation log's ids are made unique across
 * restarts from it (store_boot). */
static int count_boot(store *s, MDB_txn *txn)
{
    MDB_val k = {4, "boot"}, v;
    int rc = mdb_get(txn, s->db[DB_META], &k, &v);
    if (rc == 0 && v.mv_size == 8)
        s->boot = store_get64(v.mv_data);
    else if (rc != MDB_NOTFOUND)
        return rc == 0 ? IMQTT_ECORRUPT : store_err(rc);
    if (s->read_only)
        return 0;
    s->boot++;
    uint8_t b[8];
    store_be64(b, s->boot);
    v = (MDB_val){8, b};
    return store_err(mdb_put(txn, s->db[DB_META], &k, &v, 0));
}

static int open_env(store *s, const store_options *o)
{
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(s->env, DB_COUNT_);
    if (rc == 0 && !s->read_only)
        rc = mdb_env_set_mapsize(s->env, (size_t)o->map_size);
    unsigned flags = MDB_NOTLS;
    if (s->read_only)
        flags |= MDB_RDONLY;
    else if (s->durability == STORE_PROCESS)
        flags |= MDB_NOSYNC;
    if (rc == 0)
        rc = mdb_env_open(s->env, s->dir, flags, 0600);
    if (rc != 0) {
        store_log("error", "%s: cannot open the store: %s", s->dir,
                  mdb_strerror(rc));
        return rc == ENOENT ? IMQTT_EIO : store_err(rc);
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    atomic_store(&s->map_size, info.me_mapsize);
    /* A file cut short (disk full during a copy, a bad restore) would
     * fault on the first page past its end: refuse it here instead. */
    MDB_stat est;
    mdb_env_stat(s->env, &est);
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
    struct stat fst;
    if (stat(path, &fst) == 0 &&
        (uint64_t)fst.st_size <
            ((uint64_t)info.me_last_pgno + 1) * est.ms_psize) {
        store_log("error",
                  "%s: truncated (%lld bytes, %llu needed); refusing to open "
                  "it",
                  path, (long long)fst.st_size,
                  (unsigned long long)(info.me_last_pgno + 1) * est.ms_psize);
        return IMQTT_ECORRUPT;
    }
    /* Reader slots of a process killed with -9 would pin old pages and
     * grow the file: clear them. */
    int dead = 0;
    mdb_reader_check(s->env, &dead);

    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0) {
        store_log("error", "%s: %s", s->dir, mdb_strerror(rc));
        return store_err(rc);
    }
    for (int i = 0; i < DB_COUNT_ && rc == 0; i++) {
        rc = mdb_dbi_open(txn, store_db_names[i], s->read_only ? 0 : MDB_CREATE,
                          &s->db[i]);
        /* A version 1 store opened read-only has no conversation log. */
        if (rc == MDB_NOTFOUND && s->read_only && i >= DB_IMLOG) {
            s->no_imlog = true;
            rc = 0;
        }
    }
    if (rc != 0) {
        store_log("error", "%s: %s", s->dir, mdb_strerror(rc));
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? IMQTT_ECORRUPT : store_err(rc);
    }
    int err = check_schema(s, txn);
    if (err == 0)
        err = count_boot(s, txn);
    if (err < 0) {
        mdb_txn_abort(txn);
        return err;
    }
    rc = mdb_txn_commit(txn);
    return rc ? store_err(rc) : 0;
}

int store_open(const store_options *o, store **out)
{
    store *s = calloc(1, sizeof(*s));
    if (!s)
        return IMQTT_ENOMEM;
    s->durability = o->durability;
    s->read_only = o->read_only;
    s->lock_fd = -1;
    s->next_gen = 1;
    s->max_size = o->max_size;
    s->sync_ms = o->sync_interval_ms ? o->sync_interval_ms : 1000;
    s->notify = o->notify;
    s->notify_arg = o->notify_arg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_rwlock_init(&s->resize, NULL);
    *out = s;
    if (s->durability == STORE_NONE && !s->read_only)
        return 0;
    s->dir = strdup(o->dir ? o->dir : "./data");
    s->cur = calloc(1, sizeof(batch));
    if (!s->dir || !s->cur)
        return IMQTT_ENOMEM;
    int rc = s->read_only ? 0 : prepare_dir(s->dir);
    if (rc == 0 && !s->read_only)
        rc = store_lock_take(s->dir, &s->lock_fd);
    if (rc == 0)
        rc = open_env(s, o);
    if (rc == 0 && !s->read_only) {
        if (pthread_create(&s->thread, NULL, store_thread, s) != 0)
            return IMQTT_ENOMEM;
        s->thread_started = true;
    }
    return rc;
}

static void batch_free(batch *b)
{
    if (b) {
        free(b->ops);
        free(b);
    }
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        store_poll(s);
    }
    if (s->env) {
        if (!s->read_only)
            mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    batch_free(s->cur);
    for (batch *b = s->todo_head; b;) {
        batch *n = b->next;
        batch_free(b);
        b = n;
    }
    free(s->eh);
    free(s->new_msgs);
    free(s->carry);
    free(s->dir);
    /* Last: the store is closed and synced before another may open it. */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_rwlock_destroy(&s->resize);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

enum store_durability store_level(const store *s)
{
    return s->durability;
}

bool store_durable(const store *s)
{
    return s->durability != STORE_NONE;
}

bool store_refusing(const store *s)
{
    return atomic_load(&((store *)s)->refusing);
}

uint64_t store_commit_count(const store *s)
{
    return s->commits;
}

uint64_t store_batch_gen(const store *s)
{
    return s->next_gen;
}

uint64_t store_done_gen(const store *s)
{
    return s->done_gen;
}

bool store_pending(const store *s)
{
    return s->cur && s->cur->len > 0;
}

uint64_t store_file_size(const store *s)
{
    if (!s->dir)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* ---- recording (loop thread) ------------------------------------------- */

/* Append one op; returns a pointer to its value area (vlen bytes) or
 * NULL on ENOMEM. */
uint8_t *store_append(store *s, uint8_t op, uint8_t db, const void *key,
                      uint32_t klen, uint32_t vlen, size_t *off)
{
    batch *b = s->cur;
    size_t need = OP_HDR + (size_t)klen + vlen;
    if (b->cap - b->len < need) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len < need)
            cap *= 2;
        uint8_t *p = realloc(b->ops, cap);
        if (!p)
            return NULL;
        b->ops = p;
        b->cap = cap;
    }
    uint8_t *p = b->ops + b->len;
    if (off)
        *off = b->len;
    p[0] = op;
    p[1] = db;
    store_be32(p + 2, klen);
    store_be32(p + 6, vlen);
    if (klen)
        memcpy(p + OP_HDR, key, klen);
    b->len += need;
    return p + OP_HDR + klen;
}

static int put_raw(store *s, uint8_t op, uint8_t db, const void *key,
                   uint32_t klen, const void *val, uint32_t vlen)
{
    if (s->durability == STORE_NONE)
        return 0;
    uint8_t *v = store_append(s, op, db, key, klen, vlen, NULL);
    if (!v)
        return IMQTT_ENOMEM;
    if (vlen)
        memcpy(v, val, vlen);
    return 0;
}

int store_put_msg(store *s, uint64_t id, const store_msg *m)
{
    if (s->durability == STORE_NONE)
        return 0;
    uint8_t key[8];
    store_be64(key, id);
    size_t n = store_msg_size(m);
    uint8_t *v = store_append(s, OP_MSG, DB_MSGS, key, 8, (uint32_t)n, NULL);
    if (!v)
        return IMQTT_ENOMEM;
    store_msg_encode(m, v);
    return 0;
}

static size_t eh_find(const store *s, uint64_t sid, uint64_t seq)
{
    size_t mask = s->eh_cap - 1;
    size_t i = (size_t)((sid * 0x9E3779B97F4A7C15ull) ^ seq) & mask;
    while (s->eh[i].seq != 0 && (s->eh[i].sid != sid || s->eh[i].seq != seq))
        i = (i + 1) & mask;
    return i;
}

/* Remember that (sid, seq) was added at `off` in the open batch. */
static void eh_add(store *s, uint64_t sid, uint64_t seq, size_t off)
{
    if ((s->eh_count + 1) * 2 > s->eh_cap) {
        size_t cap = s->eh_cap ? s->eh_cap * 2 : 256;
        ehash_slot *old = s->eh;
        size_t ocap = s->eh_cap;
        ehash_slot *n = calloc(cap, sizeof(*n));
        if (!n)
            return; /* no cancellation: correct, only slower */
        s->eh = n;
        s->eh_cap = cap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].seq)
                s->eh[eh_find(s, old[i].sid, old[i].seq)] = old[i];
        free(old);
    }
    size_t i = eh_find(s, sid, seq);
    if (s->eh[i].seq == 0)
        s->eh_count++;
    s->eh[i] = (ehash_slot){sid, seq, off};
}

int store_put_entry(store *s, uint64_t sid, uint64_t seq, const store_entry *e,
                    bool created)
{
    if (s->durability == STORE_NONE)
        return 0;
    bool fresh = false;
    if (s->eh_cap) {
        size_t i = eh_find(s, sid, seq);
        if (s->eh[i].seq) {
            /* Added in this very batch: the new value replaces it. */
            s->cur->ops[s->eh[i].off] = OP_NOP;
            fresh = true;
        }
    }
    uint8_t key[STORE_QKEY_LEN];
    store_qkey(key, sid, seq);
    size_t n = store_entry_size(e), off;
    uint8_t *v = store_append(s, OP_ENTRY_PUT, DB_QUEUE, key, sizeof(key),
                              (uint32_t)n, &off);
    if (!v)
        return IMQTT_ENOMEM;
    store_entry_encode(e, v);
    /* Only an entry's first put may be cancelled by its delete: a put
     * over a committed entry must still reach LMDB as a delete. */
    if (fresh || created)
        eh_add(s, sid, seq, off);
    return 0;
}

int store_del_entry(store *s, uint64_t sid, uint64_t seq)
{
    if (s->durability == STORE_NONE)
        return 0;
    if (s->eh_cap) {
        size_t i = eh_find(s, sid, seq);
        if (s->eh[i].seq) {
            /* DESIGN.md hot path step 6: acknowledged before its batch was
             * sealed, the entry never reaches LMDB. The slot stays (its
             * op is a NOP now) so the probe chains are not broken. */
            s->cur->ops[s->eh[i].off] = OP_NOP;
            return 0;
        }
    }
    uint8_t key[STORE_QKEY_LEN];
    store_qkey(key, sid, seq);
    return put_raw(s, OP_ENTRY_DEL, DB_QUEUE, key, sizeof(key), NULL, 0);
}

int store_put_session(store *s, const store_session *ss)
{
    if (s->durability == STORE_NONE)
        return 0;
    size_t n = store_session_size(ss);
    uint8_t *v = store_append(s, OP_PUT, DB_SESSIONS, ss->client_id.ptr,
                              ss->client_id.len, (uint32_t)n, NULL);
    if (!v)
        return IMQTT_ENOMEM;
    store_session_encode(ss, v);
    return 0;
}

int store_del_session(store *s, mqtt_str client_id, uint64_t sid)
{
    uint8_t v[8];
    store_be64(v, sid);
    return put_raw(s, OP_SESS_DEL, DB_SESSIONS, client_id.ptr, client_id.len, v,
                   8);
}

static int sub_key_op(store *s, uint8_t op, uint64_t sid, mqtt_str filter,
                      const void *val, uint32_t vlen)
{
    if (s->durability == STORE_NONE)
        return 0;
    uint8_t stack[8 + 256];
    uint8_t *key = filter.len <= 256 ? stack : malloc(8 + filter.len);
    if (!key)
        return IMQTT_ENOMEM;
    store_be64(key, sid);
    memcpy(key + 8, filter.ptr, filter.len);
    int rc = put_raw(s, op, DB_SUBS, key, 8 + filter.len, val, vlen);
    if (key != stack)
        free(key);
    return rc;
}

int store_put_sub(store *s, uint64_t sid, mqtt_str filter, uint8_t opts,
                  uint32_t sub_id)
{
    uint8_t v[STORE_SUBVAL_LEN];
    store_subval(v, opts, sub_id);
    return sub_key_op(s, OP_PUT, sid, filter, v, sizeof(v));
}

int store_del_sub(store *s, uint64_t sid, mqtt_str filter)
{
    return sub_key_op(s, OP_DEL, sid, filter, NULL, 0);
}

int store_put_qos2(store *s, uint64_t sid, uint16_t pid)
{
    uint8_t key[STORE_Q2KEY_LEN];
    store_q2key(key, sid, pid);
    return put_raw(s, OP_PUT, DB_QOS2, key, sizeof(key), NULL, 0);
}

int store_del_qos2(store *s, uint64_t sid, uint16_t pid)
{
    uint8_t key[STORE_Q2KEY_LEN];
    store_q2key(key, sid, pid);
    return put_raw(s, OP_DEL, DB_QOS2, key, sizeof(key), NULL, 0);
}

int store_put_retained(store *s, mqtt_str topic, uint64_t msg_id)
{
    uint8_t v[STORE_RETVAL_LEN];
    store_retval(v, msg_id);
    return put_raw(s, OP_RET_PUT, DB_RETAINED, topic.ptr, topic.len, v,
                   sizeof(v));
}

int store_del_retained(store *s, mqtt_str topic)
{
    return put_raw(s, OP_RET_DEL, DB_RETAINED, topic.ptr, topic.len, NULL, 0);
}

/* ---- sealing and completion (loop thread) ------------------------------- */

int store_commit(store *s, store_done_cb cb, void *arg)
{
    s->commits++;
    if (s->durability == STORE_NONE) {
        /* With no durable copy to wait for, the broker's memory already
         * holds everything the batch would: the commit is complete now. */
        s->done_gen = s->next_gen++;
        cb(arg, 0);
        return 0;
    }
    batch *next = calloc(1, sizeof(*next));
    if (!next)
        return IMQTT_ENOMEM;
    batch *b = s->cur;
    b->cb = cb;
    b->arg = arg;
    b->gen = s->next_gen++;
    s->cur = next;
    if (s->eh_count) {
        /* One huge batch (a fan-out to thousands of persistent sessions)
         * must not leave a table that every later commit clears. */
        if (s->eh_cap > STORE_EH_KEEP) {
            free(s->eh);
            s->eh = NULL;
            s->eh_cap = 0;
        } else {
            memset(s->eh, 0, s->eh_cap * sizeof(*s->eh));
        }
        s->eh_count = 0;
    }
    pthread_mutex_lock(&s->mu);
    if (s->todo_tail)
        s->todo_tail->next = b;
    else
        s->todo_head = b;
    s->todo_tail = b;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int store_poll(store *s)
{
    if (s->durability == STORE_NONE)
        return 0;
    pthread_mutex_lock(&s->mu);
    batch *b = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    int n = 0;
    while (b) {
        batch *next = b->next;
        s->done_gen = b->gen;
        if (b->cb)
            b->cb(b->arg, b->status);
        batch_free(b);
        b = next;
        n++;
    }
    return n;
}
