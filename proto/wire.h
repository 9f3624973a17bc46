/* Internal to proto/: bounds-checked primitive readers and unchecked
 * writers for the MQTT wire types. Only the .c files of proto/ include this.
 *
 * Readers return 0 or a negative IMQTT_E* and never advance past `len`, so
 * a decoder built from them cannot read out of bounds whatever the input.
 * Writers do not check: encoders compute the exact size first, compare it
 * with the caller's capacity once, and then write without further checks
 * (keeps the hot path short). */
#ifndef IMQTT_WIRE_H
#define IMQTT_WIRE_H

#include "errors.h"
#include "mqtt_types.h"

#include <string.h>

typedef struct wire_reader {
    const uint8_t *buf;
    uint32_t pos;
    uint32_t len;
} wire_reader;

static inline wire_reader wire_reader_make(const uint8_t *buf, uint32_t len)
{
    wire_reader r = {buf, 0, len};
    return r;
}

static inline uint32_t wire_left(const wire_reader *r)
{
    return r->len - r->pos;
}

static inline const uint8_t *wire_cur(const wire_reader *r)
{
    return r->buf + r->pos;
}

static inline int wire_u8(wire_reader *r, uint8_t *out)
{
    if (wire_left(r) < 1)
        return IMQTT_EMALFORMED;
    *out = r->buf[r->pos++];
    return 0;
}

static inline int wire_u16(wire_reader *r, uint16_t *out)
{
    if (wire_left(r) < 2)
        return IMQTT_EMALFORMED;
    *out = (uint16_t)((r->buf[r->pos] << 8) | r->buf[r->pos + 1]);
    r->pos += 2;
    return 0;
}

static inline int wire_u32(wire_reader *r, uint32_t *out)
{
    if (wire_left(r) < 4)
        return IMQTT_EMALFORMED;
    const uint8_t *p = r->buf + r->pos;
    *out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
    r->pos += 4;
    return 0;
}

/* Decodes like mqtt_varint_decode, but inside a packet body running out of
 * bytes is malformed, not "need more". */
static inline int wire_varint(wire_reader *r, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (r->pos >= r->len)
            return IMQTT_EMALFORMED;
        uint8_t b = r->buf[r->pos++];
        v |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            /* A trailing zero byte means the value fit in fewer bytes:
             * [MQTT-1.5.5-1] requires the minimal encoding. */
            if (b == 0 && i > 0)
                return IMQTT_EVARINT;
            *out = v;
            return 0;
        }
    }
    return IMQTT_EVARINT;
}

/* A view of `n` bytes at the reader position. */
static inline int wire_take(wire_reader *r, uint32_t n, mqtt_bytes *out)
{
    if (wire_left(r) < n)
        return IMQTT_EMALFORMED;
    out->ptr = r->buf + r->pos;
    out->len = n;
    r->pos += n;
    return 0;
}

/* Two-byte length prefix, then that many bytes (binary data, or a string
 * whose UTF-8 the caller checks). */
static inline int wire_lenbytes(wire_reader *r, mqtt_bytes *out)
{
    uint16_t n;
    int rc = wire_u16(r, &n);
    if (rc < 0)
        return rc;
    return wire_take(r, n, out);
}

/* ---- writers ---- */

static inline uint8_t *wire_put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static inline uint8_t *wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static inline int wire_varint_size(uint32_t v)
{
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

static inline uint8_t *wire_put_varint(uint8_t *p, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        if (v)
            b |= 0x80;
        *p++ = b;
    } while (v);
    return p;
}

static inline uint8_t *wire_put_bytes(uint8_t *p, const uint8_t *src,
                                      uint32_t n)
{
    /* memcpy with a NULL source is undefined even for n == 0. */
    if (n)
        memcpy(p, src, n);
    return p + n;
}

/* Two-byte length prefix then the bytes; the caller has checked n <=
 * 65535. */
static inline uint8_t *wire_put_lenbytes(uint8_t *p, mqtt_bytes b)
{
    p = wire_put_u16(p, (uint16_t)b.len);
    return wire_put_bytes(p, b.ptr, b.len);
}

/* ---- fixed header rules, shared by the framer and the decoder ---- */

/* 0, or IMQTT_EFLAGS / IMQTT_EQOS for the low nibble of a fixed header
 * [MQTT-2.2.2-1, -2]. Type 0 is rejected by the caller. */
static inline int wire_check_flags(uint8_t type, uint8_t flags)
{
    switch (type) {
    case MQTT_PUBLISH:
        return ((flags >> 1) & 3) == 3 ? IMQTT_EQOS : 0;
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        return flags == 0x2 ? 0 : IMQTT_EFLAGS;
    default:
        return flags == 0 ? 0 : IMQTT_EFLAGS;
    }
}

#endif
