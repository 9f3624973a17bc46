/* A hashed timing wheel for the connections' deadlines (keepalive, token
 * expiry, CONNECT timeout, close linger). One uv timer serves all of them:
 * a uv_timer_t per connection cost 152 bytes of every idle connection.
 *
 * A deadline fires on the first tick at or after it is due, so up to
 * WHEEL_TICK_MS late (keepalive is already 1.5 periods; nothing here needs
 * a finer grain). Arming, re-arming and disarming are O(1); a tick looks
 * only at the nodes of its slot. The timer runs only while something is
 * armed.
 *
 * Nodes are embedded in their owner (the connection), which must disarm
 * its node before freeing it. A fire callback may arm or disarm any node,
 * its own included.
 *
 * Threads: the wheel's lists may be changed by any thread holding the loop
 * lock (loop_lock.h); its timer handle only by the loop it was made on. A
 * wheel made with wheel_defer_start never starts its timer inside
 * wheel_arm: the owning loop does, in wheel_sync, before it waits. */
#ifndef IMQTT_WHEEL_H
#define IMQTT_WHEEL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define WHEEL_TICK_MS 100
#define WHEEL_SLOTS   512 /* one turn: 51.2 s; later deadlines wait turns */

typedef struct wheel_node {
    struct wheel_node *next, *prev; /* NULL while not armed */
    uint64_t due;                   /* uv_now ms */
} wheel_node;

typedef void (*wheel_fire_cb)(wheel_node *n);

typedef struct wheel {
    uv_timer_t timer;
    wheel_node slots[WHEEL_SLOTS]; /* sentinels of circular lists */
    uint64_t done_tick;            /* every tick up to this one is handled */
    uint32_t armed;
    wheel_fire_cb fire;
    bool ticking;      /* the timer runs (a flag of ours: the handle's own
                          state belongs to its loop) */
    bool defer_start;  /* another thread may arm: the owner starts it */
    bool start_wanted; /* armed from idle, waiting for wheel_sync */
} wheel;

void wheel_init(wheel *w, uv_loop_t *loop, wheel_fire_cb fire);

/* Arm n for `due` (uv_now ms), replacing any earlier deadline of n. */
void wheel_arm(wheel *w, wheel_node *n, uint64_t due);

/* Disarm n; nothing if it is not armed. */
void wheel_disarm(wheel *w, wheel_node *n);

static inline bool wheel_armed(const wheel_node *n)
{
    return n->next != NULL;
}

/* Arms may come from other threads: start the timer in wheel_sync only. */
void wheel_defer_start(wheel *w);

/* On the owning loop: start the timer if an arm asked for it. */
void wheel_sync(wheel *w);

/* Close the timer handle (the loop must still run to finish it). */
void wheel_close(wheel *w);

#endif
