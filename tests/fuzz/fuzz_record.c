/* libFuzzer target: the store's record decoders (store/record.h).
 *
 * Byte 0 picks the record kind, the rest is the value as LMDB would hand
 * it over (possibly corrupt: a torn or damaged store file). A decoder
 * either refuses with IMQTT_ECORRUPT or returns views that lie inside the
 * input. A decoded record re-encodes into exactly *_size() bytes, which
 * decode to the same fields and re-encode to the same bytes. */
#include "errors.h"
#include "fuzz.h"
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t *g_lo, *g_hi;

static void inside(const uint8_t *p, size_t len)
{
    if (len == 0)
        return;
    FUZZ_CHECK(p >= g_lo && p + len <= g_hi);
}

static bool beq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void msg_eq(const store_msg *a, const store_msg *b)
{
    FUZZ_CHECK(a->qos == b->qos && a->retain == b->retain);
    FUZZ_CHECK(a->expiry_ms == b->expiry_ms);
    FUZZ_CHECK(beq(a->topic.ptr, a->topic.len, b->topic.ptr, b->topic.len));
    FUZZ_CHECK(beq(a->props.ptr, a->props.len, b->props.ptr, b->props.len));
    FUZZ_CHECK(
        beq(a->payload.ptr, a->payload.len, b->payload.ptr, b->payload.len));
}

static void fuzz_msg(const uint8_t *p, size_t n)
{
    store_msg m;
    if (store_msg_decode(p, n, &m) != 0)
        return;
    inside(m.topic.ptr, m.topic.len);
    inside(m.props.ptr, m.props.len);
    inside(m.payload.ptr, m.payload.len);
    size_t sz = store_msg_size(&m);
    uint8_t *out = malloc(sz ? sz : 1);
    FUZZ_CHECK(out);
    store_msg_encode(&m, out);
    store_msg m2;
    FUZZ_CHECK(store_msg_decode(out, sz, &m2) == 0);
    msg_eq(&m, &m2);
    FUZZ_CHECK(store_msg_size(&m2) == sz);
    uint8_t *out2 = malloc(sz ? sz : 1);
    FUZZ_CHECK(out2);
    store_msg_encode(&m2, out2);
    FUZZ_CHECK(memcmp(out, out2, sz) == 0);
    free(out2);
    free(out);
}

static void fuzz_entry(const uint8_t *p, size_t n)
{
    store_entry e;
    if (store_entry_decode(p, n, &e) != 0)
        return;
    inside(e.sub_ids_be, (size_t)e.nsub_ids * 4);
    uint32_t *ids = malloc(sizeof(uint32_t) * (e.nsub_ids + 1));
    FUZZ_CHECK(ids);
    for (uint32_t i = 0; i < e.nsub_ids; i++)
        ids[i] = store_entry_sub_id(&e, i);
    e.sub_ids = ids;
    size_t sz = store_entry_size(&e);
    uint8_t *out = malloc(sz ? sz : 1);
    FUZZ_CHECK(out);
    store_entry_encode(&e, out);
    store_entry e2;
    FUZZ_CHECK(store_entry_decode(out, sz, &e2) == 0);
    FUZZ_CHECK(e2.msg_id == e.msg_id && e2.state == e.state &&
               e2.qos == e.qos && e2.dup == e.dup && e2.retain == e.retain &&
               e2.pid == e.pid && e2.nsub_ids == e.nsub_ids);
    for (uint32_t i = 0; i < e.nsub_ids; i++)
        FUZZ_CHECK(store_entry_sub_id(&e2, i) == ids[i]);
    free(out);
    free(ids);
}

static void fuzz_session(const uint8_t *p, size_t n)
{
    store_session s;
    memset(&s, 0, sizeof(s));
    if (store_session_decode(p, n, &s) != 0)
        return;
    inside(s.username.ptr, s.username.len);
    if (s.has_will) {
        inside(s.will.topic.ptr, s.will.topic.len);
        inside(s.will.props.ptr, s.will.props.len);
        inside(s.will.payload.ptr, s.will.payload.len);
    }
    size_t sz = store_session_size(&s);
    uint8_t *out = malloc(sz ? sz : 1);
    FUZZ_CHECK(out);
    store_session_encode(&s, out);
    store_session s2;
    memset(&s2, 0, sizeof(s2));
    FUZZ_CHECK(store_session_decode(out, sz, &s2) == 0);
    FUZZ_CHECK(s2.sid == s.sid && s2.version == s.version &&
               s2.expiry == s.expiry && s2.disconnect_ms == s.disconnect_ms &&
               s2.has_username == s.has_username && s2.has_will == s.has_will);
    if (s.has_username)
        FUZZ_CHECK(beq(s.username.ptr, s.username.len, s2.username.ptr,
                       s2.username.len));
    if (s.has_will) {
        FUZZ_CHECK(s2.will_delay == s.will_delay &&
                   s2.will_expiry == s.will_expiry);
        msg_eq(&s.will, &s2.will);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    g_lo = p;
    g_hi = p + n;
    switch (data[0] % 5) {
    case 0:
        fuzz_msg(p, n);
        break;
    case 1:
        fuzz_entry(p, n);
        break;
    case 2:
        fuzz_session(p, n);
        break;
    case 3: {
        uint8_t opts;
        uint32_t id;
        if (store_subval_decode(p, n, &opts, &id) == 0) {
            uint8_t out[STORE_SUBVAL_LEN];
            store_subval(out, opts, id);
            uint8_t o2;
            uint32_t i2;
            FUZZ_CHECK(store_subval_decode(out, sizeof(out), &o2, &i2) == 0);
            FUZZ_CHECK(o2 == opts && i2 == id);
        }
        break;
    }
    default: {
        uint64_t id;
        if (store_retval_decode(p, n, &id) == 0) {
            uint8_t out[STORE_RETVAL_LEN];
            store_retval(out, id);
            uint64_t i2;
            FUZZ_CHECK(store_retval_decode(out, sizeof(out), &i2) == 0);
            FUZZ_CHECK(i2 == id);
        }
        break;
    }
    }
    return 0;
}
