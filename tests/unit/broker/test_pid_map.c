/* pid_map: every operation checked against a plain array over random
 * sequences, the sequential pattern of a window, and wrap-around runs that
 * exercise backward-shift deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "pid_map.h"

static void *tag(uint16_t pid)
{
    return (void *)(uintptr_t)(pid * 2u + 1u);
}

static void check_equal(const pid_map *m, void *const *ref)
{
    uint32_t n = 0;
    for (uint32_t pid = 1; pid <= 65535; pid++) {
        assert_ptr_equal(pid_map_get(m, (uint16_t)pid), ref[pid]);
        n += ref[pid] != NULL;
    }
    assert_int_equal(pid_map_count(m), n);
    uint32_t pos = 0, seen = 0;
    void *v;
    uint16_t pid;
    while ((pid = pid_map_next(m, &pos, &v)) != 0) {
        assert_ptr_equal(v, ref[pid]);
        seen++;
    }
    assert_int_equal(seen, n);
}

static void random_ops(void **state)
{
    (void)state;
    void **ref = calloc(65536, sizeof(void *));
    pid_map m = {0};
    srand(7);
    for (int round = 0; round < 20000; round++) {
        /* A small id range makes collisions and long runs likely. */
        uint16_t pid = (uint16_t)(1 + rand() % 300);
        if (ref[pid]) {
            assert_ptr_equal(pid_map_remove(&m, pid), ref[pid]);
            ref[pid] = NULL;
        } else {
            assert_int_equal(pid_map_put(&m, pid, tag(pid)), 0);
            ref[pid] = tag(pid);
        }
        if (round % 2000 == 0)
            check_equal(&m, ref);
    }
    check_equal(&m, ref);
    assert_null(pid_map_remove(&m, 301));
    pid_map_clear(&m);
    assert_int_equal(pid_map_count(&m), 0);
    free(ref);
}

/* The window of a session: ids go out in sequence and come back in order,
 * through the wrap from 65535 to 1, with 10,000 in flight. */
static void sliding_window(void **state)
{
    (void)state;
    pid_map m = {0};
    uint32_t next = 60000, oldest = 60000;
    for (int i = 0; i < 40000; i++) {
        uint16_t pid = (uint16_t)((next - 1) % 65535 + 1);
        assert_false(pid_map_has(&m, pid));
        assert_int_equal(pid_map_put(&m, pid, tag(pid)), 0);
        next++;
        if (next - oldest > 10000) {
            uint16_t old = (uint16_t)((oldest - 1) % 65535 + 1);
            assert_ptr_equal(pid_map_remove(&m, old), tag(old));
            oldest++;
        }
    }
    assert_int_equal(pid_map_count(&m), 10000);
    while (oldest < next) {
        uint16_t old = (uint16_t)((oldest - 1) % 65535 + 1);
        assert_ptr_equal(pid_map_remove(&m, old), tag(old));
        oldest++;
    }
    assert_int_equal(pid_map_count(&m), 0);
    assert_null(m.t); /* an empty map holds no memory */
}

/* Removing from the middle of a run must keep every later member of the
 * run reachable (ids that share a home slot: the same low bits). */
static void collisions(void **state)
{
    (void)state;
    pid_map m = {0};
    for (uint16_t k = 1; k <= 6; k++)
        assert_int_equal(pid_map_put(&m, (uint16_t)(k * 16), tag(k * 16)), 0);
    assert_int_equal(pid_map_put(&m, 17, tag(17)), 0);
    assert_ptr_equal(pid_map_remove(&m, 32), tag(32));
    for (uint16_t k = 1; k <= 6; k++)
        if (k != 2)
            assert_ptr_equal(pid_map_get(&m, (uint16_t)(k * 16)), tag(k * 16));
    assert_ptr_equal(pid_map_get(&m, 17), tag(17));
    assert_null(pid_map_get(&m, 0));
    pid_map_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_ops),
        cmocka_unit_test(sliding_window),
        cmocka_unit_test(collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
