#include "record.h"

#include <string.h>

#include "errors.h"

/* A bounds-checked reader over one record: every take fails once the
 * record is shorter than it claims, so a truncated or corrupt value is an
 * error, never a read past its end. */
typedef struct rd {
    const uint8_t *p;
    size_t n, at;
    bool bad;
} rd;

static const uint8_t *take(rd *r, size_t len)
{
    if (r->bad || r->n - r->at < len) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->at;
    r->at += len;
    return p;
}

static uint8_t take8(rd *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

static uint16_t take16(rd *r)
{
    const uint8_t *p = take(r, 2);
    return p ? store_get16(p) : 0;
}

static uint32_t take32(rd *r)
{
    const uint8_t *p = take(r, 4);
    return p ? store_get32(p) : 0;
}

static uint64_t take64(rd *r)
{
    const uint8_t *p = take(r, 8);
    return p ? store_get64(p) : 0;
}

static mqtt_bytes take_bytes(rd *r, size_t len)
{
    const uint8_t *p = take(r, len);
    return (mqtt_bytes){p, p ? (uint32_t)len : 0};
}

/* ---- message: [ver][qos][flags][expiry u64][topic_len u16][topic]
 *               [props_len u32][props][payload ...] ------------------- */

size_t store_msg_size(const store_msg *m)
{
    return 1 + 1 + 1 + 8 + 2 + m->topic.len + 4 + m->props.len + m->payload.len;
}

void store_msg_encode(const store_msg *m, uint8_t *out)
{
    out[0] = STORE_REC_VERSION;
    out[1] = m->qos;
    out[2] = m->retain ? 1 : 0;
    store_be64(out + 3, m->expiry_ms);
    store_be16(out + 11, (uint16_t)m->topic.len);
    uint8_t *p = out + 13;
    if (m->topic.len)
        memcpy(p, m->topic.ptr, m->topic.len);
    p += m->topic.len;
    store_be32(p, m->props.len);
    p += 4;
    if (m->props.len)
        memcpy(p, m->props.ptr, m->props.len);
    p += m->props.len;
    if (m->payload.len)
        memcpy(p, m->payload.ptr, m->payload.len);
}

int store_msg_decode(const uint8_t *p, size_t n, store_msg *m)
{
    rd r = {p, n, 0, false};
    if (take8(&r) != STORE_REC_VERSION)
        return IMQTT_ECORRUPT;
    m->qos = take8(&r);
    uint8_t flags = take8(&r);
    m->retain = flags & 1;
    m->expiry_ms = take64(&r);
    m->topic = take_bytes(&r, take16(&r));
    m->props = take_bytes(&r, take32(&r));
    if (r.bad || m->qos > 2 || flags > 1 || m->topic.len == 0)
        return IMQTT_ECORRUPT;
    m->payload = (mqtt_bytes){p + r.at, (uint32_t)(n - r.at)};
    return 0;
}

/* ---- queue entry: [ver][msg_id u64][state][qos][flags][pid u16]
 *                   [nsub u32][sub ids u32 ...] ------------------------ */

size_t store_entry_size(const store_entry *e)
{
    return 1 + 8 + 1 + 1 + 1 + 2 + 4 + 4 * (size_t)e->nsub_ids;
}

void store_entry_encode(const store_entry *e, uint8_t *out)
{
    out[0] = STORE_REC_VERSION;
    store_be64(out + 1, e->msg_id);
    out[9] = e->state;
    out[10] = e->qos;
    out[11] = (uint8_t)((e->dup ? 1 : 0) | (e->retain ? 2 : 0));
    store_be16(out + 12, e->pid);
    store_be32(out + 14, e->nsub_ids);
    for (uint32_t i = 0; i < e->nsub_ids; i++)
        store_be32(out + 18 + 4 * (size_t)i, e->sub_ids[i]);
}

int store_entry_decode(const uint8_t *p, size_t n, store_entry *e)
{
    rd r = {p, n, 0, false};
    if (take8(&r) != STORE_REC_VERSION)
        return IMQTT_ECORRUPT;
    e->msg_id = take64(&r);
    e->state = take8(&r);
    e->qos = take8(&r);
    uint8_t flags = take8(&r);
    e->dup = flags & 1;
    e->retain = flags & 2;
    e->pid = take16(&r);
    e->nsub_ids = take32(&r);
    e->sub_ids = NULL;
    e->sub_ids_be = r.bad || e->nsub_ids > (n - r.at) / 4
                        ? NULL
                        : take(&r, 4 * (size_t)e->nsub_ids);
    if (r.bad || !e->sub_ids_be || r.at != n || e->state > 2 || e->qos < 1 ||
        e->qos > 2 || flags > 3 ||
        (e->msg_id == 0) != (e->state == STORE_ENTRY_PUBREC))
        return IMQTT_ECORRUPT;
    return 0;
}

uint32_t store_entry_sub_id(const store_entry *e, uint32_t i)
{
    return e->sub_ids ? e->sub_ids[i] : store_get32(e->sub_ids_be + 4 * i);
}

/* ---- session: [ver][sid u64][level][expiry u32][disconnect u64]
 *   [has_user][user_len u16][user][has_will]
 *   ([will_delay u32][will_expiry u32][will_len u32][message record]) -- */

size_t store_session_size(const store_session *s)
{
    size_t n = 1 + 8 + 1 + 4 + 8 + 1 + 2 + s->username.len + 1;
    if (s->has_will)
        n += 4 + 4 + 4 + store_msg_size(&s->will);
    return n;
}

void store_session_encode(const store_session *s, uint8_t *out)
{
    uint8_t *p = out;
    *p++ = STORE_REC_VERSION;
    store_be64(p, s->sid);
    p += 8;
    *p++ = s->version;
    store_be32(p, s->expiry);
    p += 4;
    store_be64(p, s->disconnect_ms);
    p += 8;
    *p++ = s->has_username ? 1 : 0;
    store_be16(p, (uint16_t)s->username.len);
    p += 2;
    if (s->username.len)
        memcpy(p, s->username.ptr, s->username.len);
    p += s->username.len;
    *p++ = s->has_will ? 1 : 0;
    if (!s->has_will)
        return;
    store_be32(p, s->will_delay);
    store_be32(p + 4, s->will_expiry);
    size_t wl = store_msg_size(&s->will);
    store_be32(p + 8, (uint32_t)wl);
    store_msg_encode(&s->will, p + 12);
}

int store_session_decode(const uint8_t *p, size_t n, store_session *s)
{
    rd r = {p, n, 0, false};
    if (take8(&r) != STORE_REC_VERSION)
        return IMQTT_ECORRUPT;
    s->sid = take64(&r);
    s->version = take8(&r);
    s->expiry = take32(&r);
    s->disconnect_ms = take64(&r);
    uint8_t hu = take8(&r);
    s->username = take_bytes(&r, take16(&r));
    s->has_username = hu == 1;
    uint8_t hw = take8(&r);
    s->has_will = hw == 1;
    if (r.bad || hu > 1 || hw > 1 || s->sid == 0 || s->version < 3 ||
        s->version > 5)
        return IMQTT_ECORRUPT;
    if (!s->has_will)
        return r.at == n ? 0 : IMQTT_ECORRUPT;
    s->will_delay = take32(&r);
    s->will_expiry = take32(&r);
    uint32_t wl = take32(&r);
    const uint8_t *w = take(&r, wl);
    if (r.bad || r.at != n)
        return IMQTT_ECORRUPT;
    return store_msg_decode(w, wl, &s->will);
}

/* ---- keys and small values ------------------------------------------ */

void store_qkey(uint8_t out[STORE_QKEY_LEN], uint64_t sid, uint64_t seq)
{
    store_be64(out, sid);
    store_be64(out + 8, seq);
}

void store_q2key(uint8_t out[STORE_Q2KEY_LEN], uint64_t sid, uint16_t pid)
{
    store_be64(out, sid);
    store_be16(out + 8, pid);
}

void store_subval(uint8_t out[STORE_SUBVAL_LEN], uint8_t opts, uint32_t id)
{
    out[0] = STORE_REC_VERSION;
    out[1] = opts;
    store_be32(out + 2, id);
}

int store_subval_decode(const uint8_t *p, size_t n, uint8_t *opts, uint32_t *id)
{
    if (n != STORE_SUBVAL_LEN || p[0] != STORE_REC_VERSION)
        return IMQTT_ECORRUPT;
    *opts = p[1];
    *id = store_get32(p + 2);
    return 0;
}

void store_retval(uint8_t out[STORE_RETVAL_LEN], uint64_t msg_id)
{
    out[0] = STORE_REC_VERSION;
    store_be64(out + 1, msg_id);
}

int store_retval_decode(const uint8_t *p, size_t n, uint64_t *msg_id)
{
    if (n != STORE_RETVAL_LEN || p[0] != STORE_REC_VERSION)
        return IMQTT_ECORRUPT;
    *msg_id = store_get64(p + 1);
    return *msg_id ? 0 : IMQTT_ECORRUPT;
}
