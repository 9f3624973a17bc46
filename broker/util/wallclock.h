/* Wall-clock time, for what is stamped or compared with other machines
 * (token times, presence stamps, message timestamps); everything else runs
 * on the loop's monotonic clock (uv_now). */
#ifndef IMQTT_WALLCLOCK_H
#define IMQTT_WALLCLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Milliseconds since the epoch. */
static inline int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

#endif
