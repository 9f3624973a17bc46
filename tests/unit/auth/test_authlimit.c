/* authlimit: burst attempts then refusals, a success refunds, tokens come
 * back with time, addresses are independent, the table stays bounded and
 * drops the least-failed address first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "authlimit.h"

#include <string.h>

static const uint8_t A[4] = {10, 0, 0, 1}, B[4] = {10, 0, 0, 2};

static void test_burst_then_refused(void **state)
{
    (void)state;
    authlimit *al = authlimit_new(64, 3, 60); /* one token a second */
    assert_non_null(al);
    for (int i = 0; i < 3; i++)
        assert_true(authlimit_take(al, A, 4, 1000));
    assert_false(authlimit_take(al, A, 4, 1000));
    assert_false(authlimit_take(al, A, 4, 1500));
    assert_int_equal(authlimit_refused(al), 2);
    /* Another address is not affected. */
    assert_true(authlimit_take(al, B, 4, 1500));
    /* One second later: one token back. */
    assert_true(authlimit_take(al, A, 4, 2000));
    assert_false(authlimit_take(al, A, 4, 2000));
    /* Long idle: back to the burst, not beyond. */
    for (int i = 0; i < 3; i++)
        assert_true(authlimit_take(al, A, 4, 100000));
    assert_false(authlimit_take(al, A, 4, 100000));
    authlimit_free(al);
}

static void test_success_refunds(void **state)
{
    (void)state;
    authlimit *al = authlimit_new(64, 2, 1);
    for (int i = 0; i < 100; i++) {
        assert_true(authlimit_take(al, A, 4, 10));
        authlimit_refund(al, A, 4, 10); /* it was the right password */
    }
    assert_true(authlimit_take(al, A, 4, 10));
    assert_true(authlimit_take(al, A, 4, 10));
    assert_false(authlimit_take(al, A, 4, 10));
    authlimit_free(al);
}

static void test_bounded_drops_least_failed(void **state)
{
    (void)state;
    authlimit *al = authlimit_new(8, 2, 1); /* one set of 8 */
    /* A fails twice: empty bucket. */
    assert_true(authlimit_take(al, A, 4, 10));
    assert_true(authlimit_take(al, A, 4, 10));
    /* 1000 other addresses each try once and succeed or fail once. */
    for (uint32_t i = 0; i < 1000; i++) {
        uint8_t k[4] = {192, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        assert_true(authlimit_take(al, k, 4, 10));
    }
    /* A kept its empty bucket: the others had more tokens left. */
    assert_false(authlimit_take(al, A, 4, 10));
    authlimit_free(al);
}

static void test_set_cuts_tokens(void **state)
{
    (void)state;
    authlimit *al = authlimit_new(64, 10, 1);
    assert_true(authlimit_take(al, A, 4, 10));
    authlimit_set(al, 2, 1);
    assert_true(authlimit_take(al, A, 4, 10));
    assert_true(authlimit_take(al, A, 4, 10));
    assert_false(authlimit_take(al, A, 4, 10));
    authlimit_free(al);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refused),
        cmocka_unit_test(test_success_refunds),
        cmocka_unit_test(test_bounded_drops_least_failed),
        cmocka_unit_test(test_set_cuts_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
