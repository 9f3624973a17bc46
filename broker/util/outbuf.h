/* A connection's pending output: a byte arena for what the broker encodes
 * (fixed headers, acks, PUBLISH headers) interleaved with references to
 * message payloads, which are written from the message itself (one
 * vectored write, no payload copy per subscriber).
 *
 * Payloads of at most OUTBUF_COPY_MAX bytes are the exception: they are
 * copied behind their header. The kernel copies every byte either way; for
 * a chat message of a few dozen bytes, an iovec of its own, and a
 * reference taken and dropped per subscriber, cost more than the copy. The
 * README's performance section has the before/after figures.
 *
 * Handlers only append; the server writes all pending output once per loop
 * iteration (outbuf_to_bufs + uv_try_write / uv_write), as Redis does.
 */
#ifndef IMQTT_OUTBUF_H
#define IMQTT_OUTBUF_H

#include <uv.h>

#include "msg.h"

#define OUTBUF_COPY_MAX 256

typedef struct out_seg {
    const uint8_t *ptr; /* payload bytes when ref != NULL */
    uint32_t off;       /* arena offset when ref == NULL */
    uint32_t len;
    msg *ref; /* holds a reference until the bytes are written */
} out_seg;

typedef struct outbuf {
    uint8_t *arena;
    uint32_t arena_len, arena_cap;
    out_seg *segs;
    uint32_t nseg, seg_cap;
    uint32_t head;  /* first unwritten segment */
    size_t pending; /* bytes not yet written */
} outbuf;

/* Room for n bytes at the end of the arena; write them, then call
 * outbuf_commit with the number actually written. NULL on ENOMEM. The
 * pointer is valid until the next outbuf call. */
uint8_t *outbuf_reserve(outbuf *ob, size_t n);
int outbuf_commit(outbuf *ob, size_t n);

/* Append len bytes at ptr inside message m (takes a reference on m). */
int outbuf_add_ref(outbuf *ob, msg *m, const uint8_t *ptr, uint32_t len);

/* Fill bufs[0..max) with the pending segments in order; returns the count. */
unsigned outbuf_to_bufs(const outbuf *ob, uv_buf_t *bufs, unsigned max);

/* Drop the first n written bytes, releasing payload references. When
 * everything is written the arena is rewound (memory kept for reuse). */
void outbuf_consume(outbuf *ob, size_t n);

/* When nothing is pending and the buffers are small, free them: an idle
 * connection then holds no output memory (Redis does the same with its
 * query buffers). A busy connection's grown buffers are kept for reuse. */
void outbuf_trim(outbuf *ob);

/* Move what src has pending to the end of dst (payload references move
 * with it); src is freed either way. Returns 0 or IMQTT_ENOMEM (then
 * dst holds part of it and src's rest is released). */
int outbuf_append_all(outbuf *dst, outbuf *src);

/* Release everything (references included). The outbuf is then empty and
 * may be reused. */
void outbuf_free(outbuf *ob);

static inline bool outbuf_empty(const outbuf *ob)
{
    return ob->pending == 0;
}

#endif
