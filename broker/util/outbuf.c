#include "outbuf.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

static int grow_segs(outbuf *ob)
{
    if (ob->nseg < ob->seg_cap)
        return 0;
    uint32_t cap = ob->seg_cap ? ob->seg_cap * 2 : 16;
    out_seg *s = realloc(ob->segs, cap * sizeof(*s));
    if (!s)
        return IMQTT_ENOMEM;
    ob->segs = s;
    ob->seg_cap = cap;
    return 0;
}

uint8_t *outbuf_reserve(outbuf *ob, size_t n)
{
    if (ob->arena_len + n > ob->arena_cap) {
        size_t cap = ob->arena_cap ? ob->arena_cap : 512;
        while (cap < ob->arena_len + n)
            cap *= 2;
        if (cap > UINT32_MAX)
            return NULL;
        uint8_t *a = realloc(ob->arena, cap);
        if (!a)
            return NULL;
        ob->arena = a;
        ob->arena_cap = (uint32_t)cap;
    }
    return ob->arena + ob->arena_len;
}

int outbuf_commit(outbuf *ob, size_t n)
{
    if (n == 0)
        return 0;
    /* Extend the last segment when it is arena bytes ending right here:
     * a run of acks becomes one iovec. */
    if (ob->nseg > ob->head) {
        out_seg *last = &ob->segs[ob->nseg - 1];
        if (!last->ref && last->off + last->len == ob->arena_len) {
            last->len += (uint32_t)n;
            ob->arena_len += (uint32_t)n;
            ob->pending += n;
            return 0;
        }
    }
    if (grow_segs(ob) < 0)
        return IMQTT_ENOMEM;
    ob->segs[ob->nseg++] = (out_seg){NULL, ob->arena_len, (uint32_t)n, NULL};
    ob->arena_len += (uint32_t)n;
    ob->pending += n;
    return 0;
}

int outbuf_add_ref(outbuf *ob, msg *m, const uint8_t *ptr, uint32_t len)
{
    if (len == 0)
        return 0;
    if (grow_segs(ob) < 0)
        return IMQTT_ENOMEM;
    ob->segs[ob->nseg++] = (out_seg){ptr, 0, len, msg_ref(m)};
    ob->pending += len;
    return 0;
}

unsigned outbuf_to_bufs(const outbuf *ob, uv_buf_t *bufs, unsigned max)
{
    unsigned n = 0;
    for (uint32_t i = ob->head; i < ob->nseg && n < max; i++) {
        const out_seg *s = &ob->segs[i];
        const uint8_t *p = s->ref ? s->ptr : ob->arena + s->off;
        bufs[n++] = uv_buf_init((char *)p, s->len);
    }
    return n;
}

void outbuf_consume(outbuf *ob, size_t n)
{
    ob->pending -= n;
    while (n > 0 && ob->head < ob->nseg) {
        out_seg *s = &ob->segs[ob->head];
        if (n < s->len) {
            /* Partly written: advance inside the segment. */
            if (s->ref)
                s->ptr += n;
            else
                s->off += (uint32_t)n;
            s->len -= (uint32_t)n;
            return;
        }
        n -= s->len;
        msg_unref(s->ref);
        ob->head++;
    }
    if (ob->head == ob->nseg) {
        ob->head = ob->nseg = 0;
        ob->arena_len = 0;
    }
}

#define OUTBUF_KEEP_BYTES 1024
#define OUTBUF_KEEP_SEGS  32

void outbuf_trim(outbuf *ob)
{
    if (ob->pending == 0 && ob->arena_cap <= OUTBUF_KEEP_BYTES &&
        ob->seg_cap <= OUTBUF_KEEP_SEGS)
        outbuf_free(ob);
}

void outbuf_free(outbuf *ob)
{
    for (uint32_t i = ob->head; i < ob->nseg; i++)
        msg_unref(ob->segs[i].ref);
    free(ob->arena);
    free(ob->segs);
    memset(ob, 0, sizeof(*ob));
}

int outbuf_append_all(outbuf *dst, outbuf *src)
{
    int rc = 0;
    for (; src->head < src->nseg; src->head++) {
        out_seg *sg = &src->segs[src->head];
        if (sg->ref) {
            if ((rc = grow_segs(dst)) < 0)
                break;
            dst->segs[dst->nseg++] = *sg; /* the reference moves */
            dst->pending += sg->len;
            continue;
        }
        uint8_t *p = outbuf_reserve(dst, sg->len);
        if (!p || outbuf_commit(dst, sg->len) < 0) {
            rc = IMQTT_ENOMEM;
            break;
        }
        memcpy(p, src->arena + sg->off, sg->len);
    }
    outbuf_free(src); /* unreferences only what did not move */
    return rc;
}
