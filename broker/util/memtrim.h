/* Giving freed memory back to the system (issue 15, BAD_INPUTS row 30).
 *
 * glibc keeps what the broker frees: a flood of retained messages or
 * subscriptions, once cleared, left ~70 MB of free heap resident, because
 * malloc returns only the top of a heap and the store thread's arena keeps
 * its own. Once a second the broker looks at the allocator's totals
 * (mallinfo2, all arenas) and, when at least MEMTRIM_MIN_FREED bytes in use
 * have been freed since the last trim, calls malloc_trim(0), which returns
 * every free page of every arena (madvise). A steady broker, whose use does
 * not fall by megabytes, never trims; the cost of a trim (a walk of the
 * free lists) is paid once after a flood is cleared.
 */
#ifndef IMQTT_MEMTRIM_H
#define IMQTT_MEMTRIM_H

#include <uv.h>

#define MEMTRIM_MIN_FREED (8u << 20)
#define MEMTRIM_PERIOD_MS 1000

typedef struct memtrim memtrim;

/* Start the check on loop (its timer does not keep the loop alive).
 * Returns NULL on ENOMEM (memory is then just not trimmed). */
memtrim *memtrim_start(uv_loop_t *loop);

/* Stop and free (the memory goes with the timer's close callback). */
void memtrim_stop(memtrim *t);

/* Trims done so far (for tests and /metrics). */
unsigned long memtrim_count(const memtrim *t);

#endif
