/* siphash: the paper's SipHash-2-4 vector, SipHash-1-3 against an
 * independent implementation (CPython 3.11's bytes hash, which is
 * SipHash-1-3 with an all-zero key under PYTHONHASHSEED=0), and the
 * process key being drawn once and not zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "siphash.h"

#include <string.h>

static const siphash_key paper_key = {0x0706050403020100ull,
                                      0x0f0e0d0c0b0a0908ull};

static void test_paper_vector(void **state)
{
    (void)state;
    /* Appendix A of the paper: key 00..0f, message 00..0e. */
    uint8_t m[15];
    for (int i = 0; i < 15; i++)
        m[i] = (uint8_t)i;
    assert_int_equal(siphash24(&paper_key, m, sizeof m), 0xa129ca6149be45e5ull);
}

static void test_siphash13_vectors(void **state)
{
    (void)state;
    /* PYTHONHASHSEED=0 python3 -c 'print(hash(bytes(range(n))) & (2**64-1))'
     * for each n: every tail length 0..7 of the final word is covered. */
    static const struct {
        size_t n;
        uint64_t h;
    } v[] = {
        {1, 0x68a914128e01e473ull},  {3, 0x4d4c9a4a8ef6e0adull},
        {7, 0x2f098ab0c751325aull},  {8, 0xead411e67ebe2eeaull},
        {9, 0x75927f9d95124362ull},  {15, 0xf30eb725bb91c9eaull},
        {16, 0x8972188433a5c5b7ull}, {17, 0x4883c49a2c009c1dull},
        {31, 0x169739443111d49bull},
    };
    const siphash_key zero = {0, 0};
    uint8_t m[32];
    for (int i = 0; i < 32; i++)
        m[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(siphash13(&zero, m, v[i].n), v[i].h);
}

static void test_process_key(void **state)
{
    (void)state;
    const siphash_key *k = siphash_process_key();
    assert_ptr_equal(k, siphash_process_key());
    assert_false(k->k0 == 0 && k->k1 == 0);
    assert_int_equal(siphash_keyed("abc", 3), siphash13(k, "abc", 3));
    /* Another key, another hash: what makes crafted collisions useless. */
    const siphash_key other = {k->k0 ^ 1, k->k1};
    assert_int_not_equal(siphash13(&other, "abc", 3), siphash_keyed("abc", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paper_vector),
        cmocka_unit_test(test_siphash13_vectors),
        cmocka_unit_test(test_process_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
