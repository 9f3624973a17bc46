/* The timing wheel on a real libuv loop: nothing fires before it is due,
 * everything armed fires once, disarming (also from inside a callback,
 * also a node of the slot being run) prevents a fire, re-arming from the
 * callback works, and a deadline one turn later in the same slot waits
 * its turn. The loop ends by itself once nothing is armed (the timer
 * stops), which is also what these tests rely on to finish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wheel.h"

typedef struct probe {
    wheel_node node;
    int fired;
    uint64_t fired_at;
    int rearm;            /* fire again this many times, 30 ms apart */
    struct probe *victim; /* disarmed by this probe's callback */
} probe;

static wheel w;
static uv_loop_t loop;

static void on_fire(wheel_node *n)
{
    probe *p = (probe *)((char *)n - offsetof(probe, node));
    p->fired++;
    p->fired_at = uv_now(&loop);
    if (p->victim)
        wheel_disarm(&w, &p->victim->node);
    if (p->rearm > 0) {
        p->rearm--;
        wheel_arm(&w, &p->node, uv_now(&loop) + 30);
    }
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    wheel_init(&w, &loop, on_fire);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wheel_close(&w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static void fires_once_never_early(void **state)
{
    (void)state;
    probe p[6] = {0};
    uint64_t now = uv_now(&loop), due[6];
    for (int i = 0; i < 6; i++) {
        due[i] = now + (uint64_t)(i * 73); /* 0: already due */
        wheel_arm(&w, &p[i].node, due[i]);
    }
    /* Armed again: the earlier deadline is replaced, not added. */
    wheel_arm(&w, &p[5].node, due[5] + 50);
    due[5] += 50;
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(p[i].fired, 1);
        assert_true(p[i].fired_at >= due[i]);
        assert_false(wheel_armed(&p[i].node));
    }
}

static void disarm_and_rearm(void **state)
{
    (void)state;
    uint64_t now = uv_now(&loop);
    probe gone = {0}, killer = {0}, victim = {0}, again = {0};
    wheel_arm(&w, &gone.node, now + 20);
    wheel_disarm(&w, &gone.node);
    wheel_disarm(&w, &gone.node); /* twice is harmless */
    /* Same tick, so the same slot: the victim is on the list being run
     * when the killer's callback disarms it. */
    wheel_arm(&w, &killer.node, now + 150);
    wheel_arm(&w, &victim.node, now + 150);
    killer.victim = &victim;
    again.rearm = 3;
    wheel_arm(&w, &again.node, now + 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(gone.fired, 0);
    assert_int_equal(killer.fired, 1);
    assert_int_equal(victim.fired, 0);
    assert_int_equal(again.fired, 4);
    assert_true(again.fired_at >= now + 10 + 3 * 30);
}

static void later_turn_waits(void **state)
{
    (void)state;
    uint64_t now = uv_now(&loop);
    probe near = {0}, far = {0}, stop = {0};
    /* One turn apart: both in the same slot. */
    wheel_arm(&w, &near.node, now + 200);
    wheel_arm(&w, &far.node, now + 200 + WHEEL_SLOTS * WHEEL_TICK_MS);
    wheel_arm(&w, &stop.node, now + 500);
    stop.victim = &far; /* ends the run without waiting a turn */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(near.fired, 1);
    assert_int_equal(stop.fired, 1);
    assert_int_equal(far.fired, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fires_once_never_early, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(disarm_and_rearm, setup, teardown),
        cmocka_unit_test_setup_teardown(later_turn_waits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
