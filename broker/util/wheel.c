#include "wheel.h"

#include <stddef.h>

#include "loop_lock.h"

static void list_insert(wheel_node *head, wheel_node *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static void list_unlink(wheel_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

static void on_tick(uv_timer_t *t);

void wheel_init(wheel *w, uv_loop_t *loop, wheel_fire_cb fire)
{
    for (size_t i = 0; i < WHEEL_SLOTS; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->done_tick = uv_now(loop) / WHEEL_TICK_MS;
    w->armed = 0;
    w->fire = fire;
    w->ticking = w->defer_start = w->start_wanted = false;
}

void wheel_arm(wheel *w, wheel_node *n, uint64_t due)
{
    if (wheel_armed(n))
        wheel_disarm(w, n);
    if (w->armed == 0 && !w->ticking) {
        if (w->defer_start) {
            /* done_tick stays where it was: the first tick then looks at
             * every slot the idle time skipped (at most one turn). */
            w->start_wanted = true;
        } else {
            /* Idle until now: nothing is pending in the ticks skipped. */
            w->done_tick = uv_now(w->timer.loop) / WHEEL_TICK_MS;
            uv_timer_start(&w->timer, on_tick, WHEEL_TICK_MS, WHEEL_TICK_MS);
            w->ticking = true;
        }
    }
    /* A deadline in a tick already handled goes to the next one, not a
     * whole turn later. */
    uint64_t tick = due / WHEEL_TICK_MS;
    if (tick <= w->done_tick)
        tick = w->done_tick + 1;
    n->due = due;
    list_insert(&w->slots[tick % WHEEL_SLOTS], n);
    w->armed++;
}

void wheel_disarm(wheel *w, wheel_node *n)
{
    if (!wheel_armed(n))
        return;
    list_unlink(n);
    w->armed--;
}

/* Fire what is due in one slot; the rest (later turns) goes back. The
 * slot is moved to a list of its own first, so callbacks may arm and
 * disarm anything, the nodes of that list included. */
static void run_slot(wheel *w, wheel_node *slot, uint64_t now)
{
    if (slot->next == slot)
        return;
    wheel_node run;
    run.next = slot->next;
    run.prev = slot->prev;
    run.next->prev = &run;
    run.prev->next = &run;
    slot->next = slot->prev = slot;
    while (run.next != &run) {
        wheel_node *n = run.next;
        list_unlink(n);
        w->armed--;
        if (n->due <= now)
            w->fire(n);
        else
            wheel_arm(w, n, n->due);
    }
}

static void on_tick(uv_timer_t *t)
{
    wheel *w = t->data;
    loop_lock();
    uint64_t now = uv_now(t->loop);
    uint64_t now_tick = now / WHEEL_TICK_MS;
    /* After a stall longer than a turn, every slot once is enough. */
    uint64_t from = w->done_tick + 1;
    if (now_tick >= from + WHEEL_SLOTS)
        from = now_tick - WHEEL_SLOTS + 1;
    for (uint64_t tick = from; tick <= now_tick; tick++) {
        w->done_tick = tick;
        run_slot(w, &w->slots[tick % WHEEL_SLOTS], now);
    }
    if (now_tick > w->done_tick)
        w->done_tick = now_tick;
    if (w->armed == 0) {
        uv_timer_stop(t);
        w->ticking = false;
    }
    loop_unlock();
}

void wheel_defer_start(wheel *w)
{
    w->defer_start = true;
}

void wheel_sync(wheel *w)
{
    if (!w->start_wanted)
        return;
    w->start_wanted = false;
    if (!w->ticking && w->armed > 0) {
        uv_timer_start(&w->timer, on_tick, WHEEL_TICK_MS, WHEEL_TICK_MS);
        w->ticking = true;
    }
}

void wheel_close(wheel *w)
{
    uv_timer_stop(&w->timer);
    w->ticking = false;
    uv_close((uv_handle_t *)&w->timer, NULL);
}
