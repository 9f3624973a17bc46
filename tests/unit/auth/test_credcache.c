/* credcache: a verified credential hits, a wrong password, another user or
 * a changed entry never does, entries expire, clear forgets, a full set
 * evicts the entry closest to expiry and the cache never grows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "credcache.h"
#include "password.h"

#include <stdio.h>
#include <string.h>

static mqtt_str s_(const char *s)
{
    return mqtt_str_from(s, strlen(s));
}

static mqtt_bytes b_(const char *s)
{
    return (mqtt_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* A database with alice:pw_a and bob:pw_b (1000 iterations: fast). */
static pwdb *make_db(const char *pw_a, const char *pw_b)
{
    char ha[PW_HASH_TEXT_MAX], hb[PW_HASH_TEXT_MAX], text[1024];
    assert_int_equal(pw_hash_new(b_(pw_a), 1000, ha, sizeof ha), 0);
    assert_int_equal(pw_hash_new(b_(pw_b), 1000, hb, sizeof hb), 0);
    snprintf(text, sizeof text, "alice:%s\nbob:%s\n", ha, hb);
    pwdb *db = NULL;
    struct pw_error err;
    assert_int_equal(pwdb_parse(text, strlen(text), &db, &err), 0);
    return db;
}

static void test_hit_only_for_the_verified_password(void **state)
{
    (void)state;
    pwdb *db = make_db("secret-a", "secret-b");
    credcache *cc = credcache_new(16, 1000);
    assert_non_null(cc);
    assert_false(credcache_check(cc, db, s_("alice"), b_("secret-a"), 10));
    credcache_remember(cc, db, s_("alice"), b_("secret-a"), 10);
    assert_true(credcache_check(cc, db, s_("alice"), b_("secret-a"), 20));
    /* Wrong password, other user with alice's password, unknown user,
     * a prefix of the password: misses. */
    assert_false(credcache_check(cc, db, s_("alice"), b_("secret-b"), 20));
    assert_false(credcache_check(cc, db, s_("alice"), b_("secret-"), 20));
    assert_false(credcache_check(cc, db, s_("alice"), b_(""), 20));
    assert_false(credcache_check(cc, db, s_("bob"), b_("secret-a"), 20));
    assert_false(credcache_check(cc, db, s_("carol"), b_("secret-a"), 20));
    assert_int_equal(credcache_hits(cc), 1);
    assert_int_equal(credcache_misses(cc), 6);

    /* The same user and password against a new entry (the file changed,
     * same password, new salt): the old tag does not match. */
    pwdb *db2 = make_db("secret-a", "secret-b");
    assert_false(credcache_check(cc, db2, s_("alice"), b_("secret-a"), 20));
    assert_true(credcache_check(cc, db, s_("alice"), b_("secret-a"), 20));

    credcache_clear(cc);
    assert_false(credcache_check(cc, db, s_("alice"), b_("secret-a"), 20));
    credcache_free(cc);
    pwdb_free(db);
    pwdb_free(db2);
}

static void test_expiry_is_from_verification(void **state)
{
    (void)state;
    pwdb *db = make_db("a", "b");
    credcache *cc = credcache_new(16, 1000);
    credcache_remember(cc, db, s_("alice"), b_("a"), 5000);
    assert_true(credcache_check(cc, db, s_("alice"), b_("a"), 5999));
    assert_false(credcache_check(cc, db, s_("alice"), b_("a"), 6000));
    /* Verified again: a fresh TTL. */
    credcache_remember(cc, db, s_("alice"), b_("a"), 7000);
    assert_true(credcache_check(cc, db, s_("alice"), b_("a"), 7999));
    credcache_free(cc);
    pwdb_free(db);
}

static void test_bounded(void **state)
{
    (void)state;
    /* Capacity 4: one set. 4 users fill it; a 5th evicts the oldest. */
    char text[8192] = "", h[PW_HASH_TEXT_MAX];
    for (int i = 0; i < 5; i++) {
        char line[400], pw[16];
        snprintf(pw, sizeof pw, "pw%d", i);
        assert_int_equal(pw_hash_new(b_(pw), 1000, h, sizeof h), 0);
        snprintf(line, sizeof line, "u%d:%s\n", i, h);
        strcat(text, line);
    }
    pwdb *db = NULL;
    struct pw_error err;
    assert_int_equal(pwdb_parse(text, strlen(text), &db, &err), 0);
    credcache *cc = credcache_new(4, 100000);
    assert_int_equal(credcache_capacity(cc), 4);
    const char *users[] = {"u0", "u1", "u2", "u3", "u4"};
    const char *pws[] = {"pw0", "pw1", "pw2", "pw3", "pw4"};
    for (int i = 0; i < 5; i++)
        credcache_remember(cc, db, s_(users[i]), b_(pws[i]), 100 + i);
    assert_false(credcache_check(cc, db, s_("u0"), b_("pw0"), 200));
    for (int i = 1; i < 5; i++)
        assert_true(credcache_check(cc, db, s_(users[i]), b_(pws[i]), 200));
    credcache_free(cc);
    pwdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_only_for_the_verified_password),
        cmocka_unit_test(test_expiry_is_from_verification),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
