/* The conversation log (store_imlog.h): record layouts, the append op and
 * its retention on the store thread, pages read on the loop thread. */
#include "store_imlog.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "store_int.h"

/* Log record: ver | ts u64 | from_len u8 | from | topic_len u16 | topic |
 * payload (rest). Conversation record: ver | last id u64 | count u64 |
 * bytes u64 | oldest ts u64 (so that the age limit costs no lookup while
 * nothing is old enough). The op's value carries the limits ahead of the
 * record, so a reload's new limits apply from the next append on. */
#define REC_FIXED  (1 + 8 + 1 + 2)
#define CONV_LEN   (1 + 8 + 8 + 8 + 8)
#define LIMITS_LEN 24

uint64_t store_boot(const store *s)
{
    return s->boot;
}

static size_t log_key(uint8_t *key, mqtt_str conv, uint64_t id)
{
    key[0] = (uint8_t)conv.len;
    memcpy(key + 1, conv.ptr, conv.len);
    store_be64(key + 1 + conv.len, id);
    return 1 + conv.len + 8;
}

int store_imlog_append(store *s, mqtt_str conv, const store_imlog_rec *r,
                       const store_imlog_limits *lim)
{
    if (conv.len == 0 || conv.len > STORE_IMLOG_CONV_MAX || r->from.len > 255 ||
        r->topic.len > 65535)
        return IMQTT_EINVAL;
    if (s->durability == STORE_NONE)
        return 0;
    uint8_t key[1 + STORE_IMLOG_CONV_MAX + 8];
    size_t klen = log_key(key, conv, r->id);
    size_t vlen =
        LIMITS_LEN + REC_FIXED + r->from.len + r->topic.len + r->payload.len;
    if (vlen > UINT32_MAX)
        return IMQTT_EINVAL;
    uint8_t *p = store_append(s, OP_IMLOG, DB_IMLOG, key, (uint32_t)klen,
                              (uint32_t)vlen, NULL);
    if (!p)
        return IMQTT_ENOMEM;
    store_be64(p, lim->max_age_ms);
    store_be64(p + 8, lim->max_bytes);
    store_be64(p + 16, lim->max_count);
    p += LIMITS_LEN;
    p[0] = STORE_REC_VERSION;
    store_be64(p + 1, r->ts);
    p[9] = (uint8_t)r->from.len;
    memcpy(p + 10, r->from.ptr, r->from.len);
    p += 10 + r->from.len;
    store_be16(p, (uint16_t)r->topic.len);
    memcpy(p + 2, r->topic.ptr, r->topic.len);
    p += 2 + r->topic.len;
    if (r->payload.len)
        memcpy(p, r->payload.ptr, r->payload.len);
    return 0;
}

int store_imlog_decode(const uint8_t *p, size_t n, uint64_t id,
                       store_imlog_rec *r)
{
    if (n < REC_FIXED || p[0] != STORE_REC_VERSION)
        return IMQTT_ECORRUPT;
    r->id = id;
    r->ts = store_get64(p + 1);
    size_t fl = p[9];
    if (n < REC_FIXED + fl)
        return IMQTT_ECORRUPT;
    r->from = (mqtt_str){p + 10, (uint32_t)fl};
    size_t at = 10 + fl;
    size_t tl = store_get16(p + at);
    at += 2;
    if (n - at < tl)
        return IMQTT_ECORRUPT;
    r->topic = (mqtt_str){p + at, (uint32_t)tl};
    at += tl;
    r->payload = (mqtt_bytes){p + at, (uint32_t)(n - at)};
    return 0;
}

/* ---- store thread --------------------------------------------------- */

static uint64_t rec_ts(const MDB_val *v)
{
    return v->mv_size >= REC_FIXED
               ? store_get64((const uint8_t *)v->mv_data + 1)
               : 0; /* cannot be kept anyway: the oldest possible */
}

int store_imlog_apply(store *s, MDB_txn *txn, const MDB_val *k,
                      const MDB_val *v)
{
    const uint8_t *key = k->mv_data, *val = v->mv_data;
    if (k->mv_size < 10 || k->mv_size != (size_t)key[0] + 9 ||
        v->mv_size < LIMITS_LEN + REC_FIXED)
        return MDB_CORRUPTED;
    uint64_t max_age = store_get64(val), max_bytes = store_get64(val + 8),
             max_count = store_get64(val + 16);
    MDB_val rec = {v->mv_size - LIMITS_LEN, (void *)(val + LIMITS_LEN)};
    int rc = mdb_put(txn, s->db[DB_IMLOG], (MDB_val *)k, &rec, 0);
    if (rc != 0)
        return rc;
    uint64_t id = store_get64(key + 1 + key[0]);
    uint64_t now = rec_ts(&rec);
    MDB_val ck = {key[0], (void *)(key + 1)}, cv;
    uint64_t last = 0, count = 0, bytes = 0, oldest = now;
    rc = mdb_get(txn, s->db[DB_IMCONV], &ck, &cv);
    if (rc == 0 && cv.mv_size == CONV_LEN) {
        const uint8_t *c = cv.mv_data;
        last = store_get64(c + 1);
        count = store_get64(c + 9);
        bytes = store_get64(c + 17);
        oldest = store_get64(c + 25);
    } else if (rc != MDB_NOTFOUND) {
        return rc == 0 ? MDB_CORRUPTED : rc;
    }
    rc = 0;
    if (id > last)
        last = id;
    if (count == 0)
        oldest = now;
    count++;
    bytes += k->mv_size + rec.mv_size;

    /* Retention: the oldest go first, while a limit is passed. */
    MDB_cursor *cur = NULL;
    size_t plen = 1 + key[0];
    while (count > 1) {
        bool over = (max_count && count > max_count) ||
                    (max_bytes && bytes > max_bytes);
        if (!over && !(max_age && oldest + max_age < now))
            break;
        if (!cur && (rc = mdb_cursor_open(txn, s->db[DB_IMLOG], &cur)) != 0)
            return rc;
        MDB_val ok = {plen, (void *)key}, ov;
        rc = mdb_cursor_get(cur, &ok, &ov, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (ok.mv_size != plen + 8 || memcmp(ok.mv_data, key, plen) != 0)
            break;
        if (!over && rec_ts(&ov) + max_age >= now) {
            oldest = rec_ts(&ov); /* a stale hint: the oldest is younger */
            break;
        }
        size_t sz = ok.mv_size + ov.mv_size;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        count--;
        bytes = bytes > sz ? bytes - sz : 0;
        /* After a delete the cursor is on the next record: the new
         * oldest of this conversation (the newest is always there). */
        rc = mdb_cursor_get(cur, &ok, &ov, MDB_GET_CURRENT);
        if (rc == 0 && ok.mv_size == plen + 8 &&
            memcmp(ok.mv_data, key, plen) == 0)
            oldest = rec_ts(&ov);
        rc = 0;
    }
    if (cur)
        mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    uint8_t c[CONV_LEN];
    c[0] = STORE_REC_VERSION;
    store_be64(c + 1, last);
    store_be64(c + 9, count);
    store_be64(c + 17, bytes);
    store_be64(c + 25, oldest);
    cv = (MDB_val){CONV_LEN, c};
    return mdb_put(txn, s->db[DB_IMCONV], &ck, &cv, 0);
}

/* ---- loop thread ---------------------------------------------------- */

int store_imlog_last(store *s, mqtt_str conv, uint64_t *last)
{
    *last = 0;
    if (!s->env || s->no_imlog || conv.len == 0 ||
        conv.len > STORE_IMLOG_CONV_MAX)
        return 0;
    MDB_txn *txn;
    int rc = store_rd_begin(s, &txn);
    if (rc < 0)
        return rc;
    MDB_val ck = {conv.len, (void *)conv.ptr}, cv;
    rc = mdb_get(txn, s->db[DB_IMCONV], &ck, &cv);
    if (rc == 0 && cv.mv_size == CONV_LEN)
        *last = store_get64((const uint8_t *)cv.mv_data + 1);
    int err = rc == 0 && cv.mv_size != CONV_LEN ? IMQTT_ECORRUPT
              : rc == 0 || rc == MDB_NOTFOUND   ? 0
                                                : store_err(rc);
    store_rd_end(s, txn);
    return err;
}

static bool in_conv(const MDB_val *k, const uint8_t *prefix, size_t plen)
{
    return k->mv_size == plen + 8 && memcmp(k->mv_data, prefix, plen) == 0;
}

int store_imlog_page(store *s, mqtt_str conv, bool forward, uint64_t from,
                     uint32_t limit, store_imlog_cb cb, void *arg, bool *more)
{
    *more = false;
    if (!s->env || s->no_imlog || conv.len == 0 ||
        conv.len > STORE_IMLOG_CONV_MAX || limit == 0)
        return 0;
    uint8_t key[1 + STORE_IMLOG_CONV_MAX + 8];
    size_t plen = 1 + conv.len;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    int rc = store_rd_begin(s, &txn);
    if (rc < 0)
        return rc;
    rc = mdb_cursor_open(txn, s->db[DB_IMLOG], &cur);
    MDB_val k, v;
    bool have = false; /* the cursor is on the page's first message */
    int n = 0;
    if (rc == 0 && forward) {
        if (from == UINT64_MAX)
            goto done;
        k = (MDB_val){log_key(key, conv, from + 1), key};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        have = rc == 0 && in_conv(&k, key, plen);
    } else if (rc == 0) {
        /* Find the first id < from, then step back limit - 1 more. */
        k = (MDB_val){log_key(key, conv, from ? from : UINT64_MAX), key};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        else if (rc == 0) /* at or past the bound: the one before */
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        have = rc == 0 && in_conv(&k, key, plen);
        for (uint32_t i = 1; have && i < limit; i++) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
            if (rc != 0 || !in_conv(&k, key, plen)) {
                rc =
                    mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_NEXT : MDB_FIRST);
                break;
            }
        }
        if (have) {
            /* Anything older than the page's first? */
            MDB_val pk, pv;
            int r2 = mdb_cursor_get(cur, &pk, &pv, MDB_PREV);
            *more = r2 == 0 && in_conv(&pk, key, plen);
            rc = r2 == 0 ? mdb_cursor_get(cur, &k, &v, MDB_NEXT)
                         : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            have = rc == 0 && in_conv(&k, key, plen);
        }
    }
    while (have && (uint32_t)n < limit) {
        uint64_t id = store_get64((uint8_t *)k.mv_data + plen);
        if (!forward && from && id >= from)
            break;
        store_imlog_rec r;
        if (store_imlog_decode(v.mv_data, v.mv_size, id, &r) < 0) {
            n = IMQTT_ECORRUPT;
            goto done;
        }
        int c = cb(arg, &r);
        if (c < 0) {
            n = c;
            goto done;
        }
        if (c > 0) {
            *more = true;
            goto done;
        }
        n++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        have = rc == 0 && in_conv(&k, key, plen);
    }
    if (forward && have && (uint32_t)n == limit)
        *more = true;
done:
    if (cur)
        mdb_cursor_close(cur);
    store_rd_end(s, txn);
    return n;
}

/* ---- --check-store -------------------------------------------------- */

static size_t check_conv(store *s, MDB_txn *txn, FILE *f, const uint8_t *key,
                         uint64_t count, uint64_t max_id)
{
    MDB_val ck = {key[0], (void *)(key + 1)}, cv;
    if (mdb_get(txn, s->db[DB_IMCONV], &ck, &cv) != 0 ||
        cv.mv_size != CONV_LEN) {
        fprintf(f, "conversation %.*s: no conversation record\n", key[0],
                (const char *)key + 1);
        return 1;
    }
    const uint8_t *c = cv.mv_data;
    if (store_get64(c + 9) != count || store_get64(c + 1) < max_id) {
        fprintf(f,
                "conversation %.*s: record says %llu messages up to id %llu, "
                "the log has %llu up to %llu\n",
                key[0], (const char *)key + 1,
                (unsigned long long)store_get64(c + 9),
                (unsigned long long)store_get64(c + 1),
                (unsigned long long)count, (unsigned long long)max_id);
        return 1;
    }
    return 0;
}

size_t store_imlog_check(store *s, MDB_txn *txn, FILE *f, size_t *convs,
                         size_t *logged)
{
    *convs = *logged = 0;
    if (s->no_imlog)
        return 0;
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, s->db[DB_IMLOG], &cur) != 0)
        return 1;
    size_t problems = 0;
    uint8_t prev[1 + STORE_IMLOG_CONV_MAX];
    bool have = false;
    uint64_t count = 0, max_id = 0;
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        store_imlog_rec r;
        if (k.mv_size < 10 || k.mv_size != (size_t)key[0] + 9 ||
            store_imlog_decode(v.mv_data, v.mv_size, 0, &r) < 0) {
            fprintf(f, "log record %zu: corrupt\n", *logged);
            problems++;
            continue;
        }
        (*logged)++;
        if (!have || memcmp(prev, key, 1 + key[0]) != 0) {
            if (have)
                problems += check_conv(s, txn, f, prev, count, max_id);
            memcpy(prev, key, 1 + key[0]);
            have = true;
            count = 0;
            (*convs)++;
        }
        count++;
        max_id = store_get64(key + 1 + key[0]);
    }
    if (have)
        problems += check_conv(s, txn, f, prev, count, max_id);
    mdb_cursor_close(cur);
    return problems;
}
