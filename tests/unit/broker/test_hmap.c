/* hmap: open addressing with backward-shift deletion, checked against a
 * plain array model, with clustered keys to exercise the shift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "hmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mqtt_bytes key_of(const char *s)
{
    return (mqtt_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Every stored entry sits in its probe run: no empty slot between its home
 * bucket and its slot (what lookups rely on after a backward shift). */
static void assert_probe_runs(const hmap *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->cap; i++) {
        const hmap_slot *s = &m->slots[i];
        if (s->value == NULL)
            continue;
        n++;
        assert_int_equal(s->hash, hmap_hash((mqtt_bytes){s->key, s->key_len}));
        for (uint32_t j = s->hash & (m->cap - 1); j != i;
             j = (j + 1) & (m->cap - 1))
            assert_non_null(m->slots[j].value);
    }
    assert_int_equal(n, m->count);
    assert_true(m->cap == 0 || (uint64_t)m->count * 4 <= (uint64_t)m->cap * 3);
}

static void test_empty(void **state)
{
    (void)state;
    hmap m = {0};
    uint32_t pos = 0;
    assert_null(hmap_get(&m, key_of("a")));
    assert_null(hmap_remove(&m, key_of("a")));
    assert_null(hmap_next(&m, &pos));
    hmap_free(&m);
}

static void test_put_get_replace(void **state)
{
    (void)state;
    hmap m = {0};
    int a = 1, b = 2, c = 3;
    void *old = &a;
    assert_int_equal(hmap_put(&m, key_of("x"), &a, &old), 0);
    assert_null(old);
    assert_int_equal(hmap_put(&m, key_of(""), &b, NULL), 0); /* empty key */
    assert_ptr_equal(hmap_get(&m, key_of("x")), &a);
    assert_ptr_equal(hmap_get(&m, key_of("")), &b);
    assert_null(hmap_get(&m, key_of("y")));

    /* Replace keeps the new key view. */
    char other[] = "x";
    assert_int_equal(hmap_put(&m, key_of(other), &c, &old), 0);
    assert_ptr_equal(old, &a);
    assert_int_equal(m.count, 2);
    for (uint32_t i = 0; i < m.cap; i++)
        if (m.slots[i].value == &c)
            assert_ptr_equal(m.slots[i].key, (const uint8_t *)other);

    assert_ptr_equal(hmap_remove(&m, key_of("x")), &c);
    assert_ptr_equal(hmap_remove(&m, key_of("")), &b);
    assert_int_equal(m.count, 0);
    assert_null(m.slots); /* an emptied map holds no table */
    hmap_free(&m);
}

/* Random operations on 48 keys against a model, starting from a small
 * table so probe runs wrap around the end and overlap. */
static void test_model(void **state)
{
    (void)state;
    enum { NKEYS = 48 };
    static char names[NKEYS][16];
    int vals[NKEYS];
    bool present[NKEYS] = {false};
    hmap m = {0};
    srand(7);
    for (int i = 0; i < NKEYS; i++)
        snprintf(names[i], sizeof names[i], "k%d", i);
    for (int round = 0; round < 20000; round++) {
        int k = rand() % NKEYS;
        if (rand() % 3 != 0) {
            void *old;
            assert_int_equal(hmap_put(&m, key_of(names[k]), &vals[k], &old), 0);
            assert_ptr_equal(old, present[k] ? &vals[k] : NULL);
            present[k] = true;
        } else {
            void *v = hmap_remove(&m, key_of(names[k]));
            assert_ptr_equal(v, present[k] ? &vals[k] : NULL);
            present[k] = false;
        }
        if (round % 16 == 0) {
            assert_probe_runs(&m);
            for (int i = 0; i < NKEYS; i++)
                assert_ptr_equal(hmap_get(&m, key_of(names[i])),
                                 present[i] ? &vals[i] : NULL);
        }
    }
    hmap_free(&m);
}

/* Keys that share a home bucket in a table of 8, removed from the middle
 * of their run: the entries behind must shift back and stay reachable. */
static void test_cluster_remove(void **state)
{
    (void)state;
    static char names[64][16];
    int n = 0, vals[5];
    for (int i = 0; n < 5 && i < 100000; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "c%d", i);
        if ((hmap_hash(key_of(buf)) & 7) == 7) /* run wraps to slot 0 */
            memcpy(names[n++], buf, sizeof buf);
    }
    assert_int_equal(n, 5);
    for (int drop = 0; drop < 5; drop++) {
        hmap m = {0};
        for (int i = 0; i < 5; i++)
            assert_int_equal(hmap_put(&m, key_of(names[i]), &vals[i], NULL), 0);
        assert_int_equal(m.cap, 8);
        assert_ptr_equal(hmap_remove(&m, key_of(names[drop])), &vals[drop]);
        assert_probe_runs(&m);
        for (int i = 0; i < 5; i++)
            assert_ptr_equal(hmap_get(&m, key_of(names[i])),
                             i == drop ? NULL : &vals[i]);
        hmap_free(&m);
    }
}

static void test_many_and_iterate(void **state)
{
    (void)state;
    enum { N = 100000 };
    char(*names)[16] = malloc(sizeof(*names) * N);
    assert_non_null(names);
    hmap m = {0};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "user%d", i);
        assert_int_equal(hmap_put(&m, key_of(names[i]), names[i], NULL), 0);
    }
    assert_int_equal(m.count, N);
    assert_probe_runs(&m);
    for (int i = 0; i < N; i += 2)
        assert_ptr_equal(hmap_remove(&m, key_of(names[i])), names[i]);
    assert_int_equal(m.count, N / 2);
    assert_probe_runs(&m);

    uint32_t pos = 0, seen = 0;
    char *v;
    while ((v = hmap_next(&m, &pos)) != NULL) {
        int i = atoi(v + 4);
        assert_int_equal(i % 2, 1);
        seen++;
    }
    assert_int_equal(seen, N / 2);
    for (int i = 1; i < N; i += 2)
        assert_ptr_equal(hmap_get(&m, key_of(names[i])), names[i]);
    hmap_free(&m);
    free(names);
}

/* Sequential ids must not crowd a few buckets: the fraction of distinct
 * low-16-bit values should be close to a random function's 1 - 1/e. */
static void test_hash_spread(void **state)
{
    (void)state;
    uint8_t *hit = calloc(65536, 1);
    assert_non_null(hit);
    uint32_t distinct = 0;
    for (int i = 0; i < 65536; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "p2p/talk/user%d", i);
        uint32_t b = hmap_hash(key_of(buf)) & 0xffff;
        distinct += !hit[b];
        hit[b] = 1;
    }
    assert_true(distinct > 65536 * 6 / 10);
    free(hit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_cluster_remove),
        cmocka_unit_test(test_many_and_iterate),
        cmocka_unit_test(test_hash_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
