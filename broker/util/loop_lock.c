#include "loop_lock.h"

#include <pthread.h>

/* Process-wide by nature: the one lock of the process, written once
 * before any other thread runs. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool enabled;
static _Thread_local unsigned depth;

void loop_lock_enable(void)
{
    enabled = true;
}

bool loop_lock_enabled(void)
{
    return enabled;
}

void loop_lock(void)
{
    if (!enabled)
        return;
    if (depth++ == 0)
        pthread_mutex_lock(&lock);
}

void loop_unlock(void)
{
    if (!enabled)
        return;
    if (--depth == 0)
        pthread_mutex_unlock(&lock);
}
