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
 * its own included. */
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

/* Close the timer handle (the loop must still run to finish it). */
void wheel_close(wheel *w);

#endif
