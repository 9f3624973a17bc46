/* store_lock: a writable store locks its directory, a second writable
 * open is refused while the first is open (flock is per open file, so
 * this holds within one process too), read-only opens are not, and the
 * lock goes with store_close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "errors.h"
#include "store.h"

static void test_second_writer_refused(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/imqtt-lock-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char dir[64];
    snprintf(dir, sizeof dir, "%s/data", tmpl);

    assert_int_equal(store_lock_holder(dir), 0);
    store_options o = {.durability = STORE_PROCESS, .dir = dir};
    store *a = NULL, *b = NULL, *r = NULL;
    assert_int_equal(store_open(&o, &a), 0);
    assert_int_equal(store_lock_holder(dir), (long)getpid());

    assert_int_equal(store_open(&o, &b), IMQTT_ELOCKED);
    store_close(b);

    store_options ro = {
        .durability = STORE_PROCESS, .dir = dir, .read_only = true};
    assert_int_equal(store_open(&ro, &r), 0);
    store_close(r);
    assert_int_equal(store_lock_holder(dir), (long)getpid());

    store_close(a);
    assert_int_equal(store_lock_holder(dir), 0);
    assert_int_equal(store_open(&o, &b), 0);
    store_close(b);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
