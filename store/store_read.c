/* Reading the store on the loop thread: start-up load, draining a queue,
 * and the consistency check of --check-store. Read transactions are short
 * and hold the resize lock shared so the store thread cannot remap under
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "store_int.h"

int store_rd_begin(store *s, MDB_txn **txn)
{
    if (!s->env)
        return IMQTT_EINVAL;
    pthread_rwlock_rdlock(&s->resize);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew it (never us: we hold the lock). */
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    }
    if (rc != 0) {
        pthread_rwlock_unlock(&s->resize);
        store_log("error", "read transaction: %s", mdb_strerror(rc));
        return store_err(rc);
    }
    return 0;
}

void store_rd_end(store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize);
}

int store_get_msg(store *s, MDB_txn *txn, uint64_t id, store_msg *m)
{
    uint8_t key[8];
    store_be64(key, id);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(txn, s->db[DB_MSGS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return IMQTT_ECORRUPT; /* a reference to a message that is gone */
    if (rc != 0)
        return store_err(rc);
    return store_msg_decode(v.mv_data, v.mv_size, m);
}

static int corrupt(const char *what, const MDB_val *k)
{
    store_log("error", "corrupt %s record (key of %zu bytes)", what,
              k->mv_size);
    return IMQTT_ECORRUPT;
}

static int load_sessions(store *s, MDB_txn *txn, const store_visitor *v,
                         uint64_t *max_sid)
{
    MDB_cursor *cur;
    MDB_val k, d;
    int rc = mdb_cursor_open(txn, s->db[DB_SESSIONS], &cur);
    if (rc != 0)
        return store_err(rc);
    int err = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        store_session ss;
        if (k.mv_size == 0 || k.mv_size > 65535 ||
            store_session_decode(d.mv_data, d.mv_size, &ss) < 0) {
            err = corrupt("session", &k);
            break;
        }
        ss.client_id = (mqtt_str){k.mv_data, (uint32_t)k.mv_size};
        if (ss.sid > *max_sid)
            *max_sid = ss.sid;
        err = v->session ? v->session(v->arg, &ss) : 0;
    }
    mdb_cursor_close(cur);
    if (err)
        return err;
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int load_keyed(store *s, MDB_txn *txn, int db, const store_visitor *v)
{
    MDB_cursor *cur;
    MDB_val k, d;
    int rc = mdb_cursor_open(txn, s->db[db], &cur);
    if (rc != 0)
        return store_err(rc);
    int err = 0;
    uint64_t qsid = 0, first = 0, last = 0, count = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < 8) {
            err = corrupt(store_db_names[db], &k);
            break;
        }
        uint64_t sid = store_get64(kp);
        if (db == DB_SUBS) {
            store_sub sub = {sid, {kp + 8, (uint32_t)(k.mv_size - 8)}, 0, 0};
            if (sub.filter.len == 0 ||
                store_subval_decode(d.mv_data, d.mv_size, &sub.opts,
                                    &sub.sub_id) < 0)
                err = corrupt("subscription", &k);
            else if (v->sub)
                err = v->sub(v->arg, &sub);
        } else if (db == DB_QOS2) {
            if (k.mv_size != STORE_Q2KEY_LEN)
                err = corrupt("qos2", &k);
            else if (v->qos2)
                err = v->qos2(v->arg, sid, store_get16(kp + 8));
        } else {
            if (k.mv_size != STORE_QKEY_LEN) {
                err = corrupt("queue", &k);
                break;
            }
            uint64_t seq = store_get64(kp + 8);
            if (count && sid != qsid && v->queue)
                err = v->queue(v->arg, qsid, first, last, count);
            if (!count || sid != qsid) {
                qsid = sid;
                first = seq;
                count = 0;
            }
            last = seq;
            count++;
        }
    }
    if (!err && count && v->queue)
        err = v->queue(v->arg, qsid, first, last, count);
    mdb_cursor_close(cur);
    if (err)
        return err;
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int load_retained(store *s, MDB_txn *txn, const store_visitor *v)
{
    MDB_cursor *cur;
    MDB_val k, d;
    int rc = mdb_cursor_open(txn, s->db[DB_RETAINED], &cur);
    if (rc != 0)
        return store_err(rc);
    int err = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && err == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        uint64_t id;
        store_msg m;
        if (store_retval_decode(d.mv_data, d.mv_size, &id) < 0 ||
            store_get_msg(s, txn, id, &m) < 0) {
            err = corrupt("retained", &k);
            break;
        }
        err = v->retained ? v->retained(v->arg, id, &m) : 0;
    }
    mdb_cursor_close(cur);
    if (err)
        return err;
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int max_key64(store *s, MDB_txn *txn, int db, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, d;
    int rc = mdb_cursor_open(txn, s->db[db], &cur);
    if (rc != 0)
        return store_err(rc);
    rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
    if (rc == 0 && k.mv_size == 8)
        *out = store_get64(k.mv_data);
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int store_load(store *s, const store_visitor *v, uint64_t *max_msg_id,
               uint64_t *max_sid)
{
    *max_msg_id = *max_sid = 0;
    if (s->durability == STORE_NONE && !s->read_only)
        return 0;
    MDB_txn *txn;
    int rc = store_rd_begin(s, &txn);
    if (rc < 0)
        return rc;
    rc = load_sessions(s, txn, v, max_sid);
    if (rc == 0)
        rc = load_keyed(s, txn, DB_SUBS, v);
    if (rc == 0)
        rc = load_keyed(s, txn, DB_QOS2, v);
    if (rc == 0)
        rc = load_keyed(s, txn, DB_QUEUE, v);
    if (rc == 0)
        rc = load_retained(s, txn, v);
    if (rc == 0)
        rc = max_key64(s, txn, DB_MSGS, max_msg_id);
    store_rd_end(s, txn);
    return rc;
}

int store_read_queue(store *s, uint64_t sid, uint64_t from, uint32_t max,
                     store_entry_cb cb, void *arg)
{
    MDB_txn *txn;
    int rc = store_rd_begin(s, &txn);
    if (rc < 0)
        return rc;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->db[DB_QUEUE], &cur)) != 0) {
        store_rd_end(s, txn);
        return store_err(rc);
    }
    uint8_t key[STORE_QKEY_LEN];
    store_qkey(key, sid, from);
    MDB_val k = {sizeof(key), key}, d;
    int n = 0, err = 0;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
         rc == 0 && (uint32_t)n < max;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size != STORE_QKEY_LEN || store_get64(k.mv_data) != sid)
            break;
        store_entry e;
        store_msg m, *mp = NULL;
        if (store_entry_decode(d.mv_data, d.mv_size, &e) < 0 ||
            (e.msg_id && store_get_msg(s, txn, e.msg_id, &m) < 0)) {
            err = corrupt("queue", &k);
            break;
        }
        if (e.msg_id)
            mp = &m;
        err = cb(arg, store_get64((uint8_t *)k.mv_data + 8), &e, mp);
        if (err < 0)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    store_rd_end(s, txn);
    if (err < 0)
        return err;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_err(rc);
    return n;
}

/* ---- --check-store --------------------------------------------------------
 */

typedef struct ref_count {
    uint64_t id;
    uint32_t want; /* references found in queues and retained */
} ref_count;

static int cmp_ref(const void *a, const void *b)
{
    uint64_t x = ((const ref_count *)a)->id, y = ((const ref_count *)b)->id;
    return x < y ? -1 : x > y;
}

static ref_count *ref_find(ref_count *r, size_t n, uint64_t id)
{
    ref_count key = {id, 0};
    return bsearch(&key, r, n, sizeof(*r), cmp_ref);
}

int store_check(store *s, void *out)
{
    FILE *f = out;
    MDB_txn *txn;
    int rc = store_rd_begin(s, &txn);
    if (rc < 0)
        return rc;
    size_t problems = 0, nmsgs = 0, nsess = 0, nsubs = 0, nentries = 0;
    size_t nqos2 = 0, nret = 0;
    ref_count *refs = NULL;
    MDB_cursor *cur;
    MDB_val k, d;
    MDB_stat st;
    mdb_stat(txn, s->db[DB_MSGS], &st);
    refs = calloc(st.ms_entries + 1, sizeof(*refs));
    if (!refs) {
        store_rd_end(s, txn);
        return IMQTT_ENOMEM;
    }
    /* Messages (ids come sorted from LMDB, so refs is sorted). */
    mdb_cursor_open(txn, s->db[DB_MSGS], &cur);
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
         rc == 0 && nmsgs < st.ms_entries;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        store_msg m;
        if (k.mv_size != 8 || store_msg_decode(d.mv_data, d.mv_size, &m) < 0) {
            fprintf(f, "message record %zu: corrupt\n", nmsgs);
            problems++;
        }
        refs[nmsgs++].id = k.mv_size == 8 ? store_get64(k.mv_data) : 0;
    }
    mdb_cursor_close(cur);
    mdb_cursor_open(txn, s->db[DB_SESSIONS], &cur);
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        store_session ss;
        nsess++;
        if (store_session_decode(d.mv_data, d.mv_size, &ss) < 0) {
            fprintf(f, "session %.*s: corrupt record\n", (int)k.mv_size,
                    (char *)k.mv_data);
            problems++;
        }
    }
    mdb_cursor_close(cur);
    mdb_stat(txn, s->db[DB_SUBS], &st);
    nsubs = st.ms_entries;
    mdb_stat(txn, s->db[DB_QOS2], &st);
    nqos2 = st.ms_entries;
    mdb_cursor_open(txn, s->db[DB_QUEUE], &cur);
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        store_entry e;
        nentries++;
        if (k.mv_size != STORE_QKEY_LEN ||
            store_entry_decode(d.mv_data, d.mv_size, &e) < 0) {
            fprintf(f, "queue entry %zu: corrupt\n", nentries);
            problems++;
            continue;
        }
        if (!e.msg_id)
            continue;
        ref_count *r = ref_find(refs, nmsgs, e.msg_id);
        if (!r) {
            fprintf(f, "queue entry %zu: message %llu missing\n", nentries,
                    (unsigned long long)e.msg_id);
            problems++;
        } else {
            r->want++;
        }
    }
    mdb_cursor_close(cur);
    mdb_cursor_open(txn, s->db[DB_RETAINED], &cur);
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        uint64_t id;
        nret++;
        ref_count *r = NULL;
        if (store_retval_decode(d.mv_data, d.mv_size, &id) < 0 ||
            !(r = ref_find(refs, nmsgs, id))) {
            fprintf(f, "retained %.*s: bad or dangling\n", (int)k.mv_size,
                    (char *)k.mv_data);
            problems++;
        } else {
            r->want++;
        }
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; i < nmsgs; i++) {
        uint8_t key[8];
        store_be64(key, refs[i].id);
        MDB_val rk = {8, key}, rv;
        uint32_t have = 0;
        if (mdb_get(txn, s->db[DB_REFS], &rk, &rv) == 0 && rv.mv_size == 4)
            have = store_get32(rv.mv_data);
        if (have != refs[i].want) {
            fprintf(f, "message %llu: reference count %u, %u references\n",
                    (unsigned long long)refs[i].id, have, refs[i].want);
            problems++;
        }
    }
    mdb_stat(txn, s->db[DB_REFS], &st);
    if (st.ms_entries != nmsgs) {
        fprintf(f, "%zu reference counts for %zu messages\n",
                (size_t)st.ms_entries, nmsgs);
        problems++;
    }
    free(refs);
    size_t nconv = 0, nlogged = 0;
    problems += store_imlog_check(s, txn, f, &nconv, &nlogged);
    store_rd_end(s, txn);
    fprintf(f,
            "sessions %zu\nsubscriptions %zu\nqueue entries %zu\nmessages "
            "%zu\nretained %zu\nqos2 ids %zu\nconversations %zu\nlogged "
            "messages %zu\nproblems %zu\n",
            nsess, nsubs, nentries, nmsgs, nret, nqos2, nconv, nlogged,
            problems);
    return problems ? IMQTT_ECORRUPT : 0;
}

uint64_t store_message_count(store *s)
{
    MDB_txn *txn;
    if (!s || !s->env || store_rd_begin(s, &txn) < 0)
        return 0;
    MDB_stat st;
    uint64_t n = mdb_stat(txn, s->db[DB_MSGS], &st) == 0 ? st.ms_entries : 0;
    store_rd_end(s, txn);
    return n;
}
