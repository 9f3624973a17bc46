/* Periodic malloc_trim after large frees (memtrim.h). */
#include "memtrim.h"

#include <malloc.h>
#include <stdlib.h>

#include "log.h"

struct memtrim {
    uv_timer_t timer;
    size_t peak; /* most bytes in use since the last trim */
    unsigned long trims;
};

static void on_tick(uv_timer_t *h)
{
    memtrim *t = h->data;
    struct mallinfo2 mi = mallinfo2();
    /* In use: small chunks in arenas plus mmapped large ones (those go
     * back at free already, but their fall still says a flood ended). */
    size_t used = mi.uordblks + mi.hblkhd;
    if (used > t->peak)
        t->peak = used;
    if (t->peak - used < MEMTRIM_MIN_FREED)
        return;
    uint64_t t0 = uv_hrtime();
    malloc_trim(0);
    t->trims++;
    log_debug("memory: %zu bytes freed since the last trim, trimmed in "
              "%.1f ms",
              t->peak - used, (double)(uv_hrtime() - t0) / 1e6);
    t->peak = used;
}

memtrim *memtrim_start(uv_loop_t *loop)
{
    memtrim *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, on_tick, MEMTRIM_PERIOD_MS, MEMTRIM_PERIOD_MS);
    uv_unref((uv_handle_t *)&t->timer);
    return t;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void memtrim_stop(memtrim *t)
{
    if (!t)
        return;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_closed);
}

unsigned long memtrim_count(const memtrim *t)
{
    return t ? t->trims : 0;
}
