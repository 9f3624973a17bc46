/* The bounds of what may wait for a session (docs/config.md: in RAM
 * max_queued_*, in the store max_stored_*), and what is noted when one
 * is passed, for the IM overflow marker (im_msg.c). */
#include "persist.h"
#include "session.h"
#include "wallclock.h"

void session_overflowed(session *s)
{
    if (s->missed++ == 0)
        s->missed_since = (uint64_t)wall_ms();
}

bool session_queue_has_room(const session *s)
{
    const imqtt_config *cfg = &s->srv->cfg;
    if (persist_on(s))
        return s->disk_count < cfg->max_stored_messages &&
               (!cfg->max_stored_bytes ||
                s->queued_bytes < cfg->max_stored_bytes);
    return s->queue.count < cfg->max_queued_messages &&
           (!cfg->max_queued_bytes || s->queued_bytes < cfg->max_queued_bytes);
}
