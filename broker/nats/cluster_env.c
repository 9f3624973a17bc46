/* The envelope of a message between nodes (cluster_env.h). */
#include "cluster_env.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "topic.h"

#define ENV_VERSION 1
#define ENV_FIXED   (1 + 1 + 2 + 8 + 8 + 4 + 2 + 2 + 2 + 4)

static uint8_t *put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *putb(uint8_t *p, const void *b, size_t n)
{
    if (n)
        memcpy(p, b, n);
    return p + n;
}

int cluster_env_encode(const cluster_env *e, uint8_t **buf, size_t *cap)
{
    size_t need = ENV_FIXED + e->node.len + e->topic.len + e->route.len +
                  e->cid.len + e->props.len + e->payload.len;
    if (need > INT32_MAX)
        return IMQTT_ENOMEM;
    if (need > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < need)
            c *= 2;
        uint8_t *nb = realloc(*buf, c);
        if (!nb)
            return IMQTT_ENOMEM;
        *buf = nb;
        *cap = c;
    }
    uint8_t *p = *buf;
    *p++ = ENV_VERSION;
    *p++ = (uint8_t)((e->qos & 3) | (e->retain ? 4 : 0));
    p = put16(p, e->node.len);
    p = putb(p, e->node.ptr, e->node.len);
    p = put64(p, e->epoch);
    p = put64(p, e->seq);
    p = put32(p, e->expiry_ms);
    p = put16(p, e->topic.len);
    p = putb(p, e->topic.ptr, e->topic.len);
    p = put16(p, e->route.len);
    p = putb(p, e->route.ptr, e->route.len);
    p = put16(p, e->cid.len);
    p = putb(p, e->cid.ptr, e->cid.len);
    p = put32(p, e->props.len);
    p = putb(p, e->props.ptr, e->props.len);
    p = putb(p, e->payload.ptr, e->payload.len);
    return (int)(p - *buf);
}

typedef struct reader {
    const uint8_t *p, *end;
    bool bad;
} reader;

static uint64_t get(reader *r, int bytes)
{
    if (r->end - r->p < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | *r->p++;
    return v;
}

static mqtt_str get_str(reader *r, int lenbytes)
{
    uint64_t n = get(r, lenbytes);
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return (mqtt_str){NULL, 0};
    }
    mqtt_str s = {r->p, (uint32_t)n};
    r->p += n;
    return s;
}

int cluster_env_decode(const uint8_t *p, size_t n, cluster_env *e)
{
    reader rd = {p, p + n, false};
    uint8_t ver = (uint8_t)get(&rd, 1);
    uint8_t flags = (uint8_t)get(&rd, 1);
    e->qos = flags & 3;
    e->retain = (flags & 4) != 0;
    e->node = get_str(&rd, 2);
    e->epoch = get(&rd, 8);
    e->seq = get(&rd, 8);
    e->expiry_ms = (uint32_t)get(&rd, 4);
    e->topic = get_str(&rd, 2);
    e->route = get_str(&rd, 2);
    e->cid = get_str(&rd, 2);
    mqtt_str props = get_str(&rd, 4);
    e->props = (mqtt_bytes){props.ptr, props.len};
    if (rd.bad || ver != ENV_VERSION || e->qos == 3)
        return IMQTT_EMALFORMED;
    e->payload = (mqtt_bytes){rd.p, (uint32_t)(rd.end - rd.p)};
    if (mqtt_topic_name_check(e->topic, NULL) != 0 ||
        (e->route.len && mqtt_topic_name_check(e->route, NULL) != 0))
        return IMQTT_ETOPIC;
    return 0;
}
