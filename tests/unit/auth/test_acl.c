/* ACL: rule order, defaults, publish vs subscribe, filter coverage and
 * placeholder substitution, including identities that try to smuggle
 * wildcards or levels into a rule (BAD_INPUTS row 11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "acl.h"
#include "errors.h"

#define S(lit) mqtt_str_from((lit), strlen(lit))

static const acl_identity anon = {{NULL, 0}, {NULL, 0}};

static acl_identity ident(const char *client_id, const char *username)
{
    acl_identity who = {S(client_id), {NULL, 0}};
    if (username != NULL)
        who.username = S(username);
    return who;
}

static bool pub(const acl *a, const acl_identity *who, const char *topic)
{
    return acl_check(a, who, ACL_PUBLISH, S(topic));
}

static bool sub(const acl *a, const acl_identity *who, const char *filter)
{
    return acl_check(a, who, ACL_SUBSCRIBE, S(filter));
}

static void test_defaults(void **state)
{
    (void)state;
    acl *allow = acl_new(true);
    acl *deny = acl_new(false);
    assert_non_null(allow);
    assert_non_null(deny);
    assert_true(pub(allow, &anon, "a/b"));
    assert_true(sub(allow, &anon, "#"));
    assert_false(pub(deny, &anon, "a/b"));
    assert_false(sub(deny, &anon, "a/b"));
    assert_int_equal(acl_rule_count(allow), 0);
    acl_free(allow);
    acl_free(deny);
}

static void test_first_match_decides(void **state)
{
    (void)state;
    acl *a = acl_new(false);
    assert_int_equal(
        acl_add_rule(a, false, ACL_PUBLISH | ACL_SUBSCRIBE, S("secret/#")), 0);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH | ACL_SUBSCRIBE, S("#")),
                     0);
    assert_int_equal(acl_add_rule(a, false, ACL_PUBLISH, S("open/x")), 0);
    assert_int_equal(acl_rule_count(a), 3);

    assert_false(pub(a, &anon, "secret/x"));
    assert_false(pub(a, &anon, "secret"));
    assert_false(sub(a, &anon, "secret/+"));
    assert_true(pub(a, &anon, "open/x")); /* rule 2 wins over rule 3 */
    assert_true(sub(a, &anon, "a/b"));
    /* Rule 1 does not cover "#", so rule 2 allows the subscription; the
     * secret topics are then kept out at delivery, where each topic name is
     * checked with ACL_SUBSCRIBE (acl.h). */
    assert_true(sub(a, &anon, "#"));
    assert_false(sub(a, &anon, "secret/x"));
    assert_false(pub(a, &anon, "$SYS/x")); /* '#' does not match '$' */
    acl_free(a);
}

static void test_publish_vs_subscribe(void **state)
{
    (void)state;
    acl *a = acl_new(false);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("in/#")), 0);
    assert_int_equal(acl_add_rule(a, true, ACL_SUBSCRIBE, S("out/#")), 0);
    assert_int_equal(acl_add_rule(a, false, ACL_SUBSCRIBE, S("test/nosub")), 0);
    assert_true(pub(a, &anon, "in/x"));
    assert_false(sub(a, &anon, "in/x"));
    assert_true(sub(a, &anon, "out/x"));
    assert_false(pub(a, &anon, "out/x"));
    assert_false(sub(a, &anon, "test/nosub"));
    acl_free(a);

    a = acl_new(true);
    assert_int_equal(acl_add_rule(a, false, ACL_SUBSCRIBE, S("test/nosub")), 0);
    assert_false(sub(a, &anon, "test/nosub"));
    assert_true(pub(a, &anon, "test/nosub"));
    assert_true(sub(a, &anon, "test/#")); /* not covered by the rule */
    acl_free(a);
}

static void test_add_rule_errors(void **state)
{
    (void)state;
    acl *a = acl_new(true);
    assert_int_equal(acl_add_rule(a, true, 0, S("a")), IMQTT_EINVAL);
    assert_int_equal(acl_add_rule(a, true, 4, S("a")), IMQTT_EINVAL);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("")), IMQTT_EFILTER);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("a/#/b")),
                     IMQTT_EFILTER);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("a+")),
                     IMQTT_EFILTER);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("%u#")),
                     IMQTT_EFILTER);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("$share/g/a")),
                     IMQTT_EFILTER);
    char big[1100];
    memset(big, 'a', sizeof(big));
    assert_int_equal(
        acl_add_rule(a, true, ACL_PUBLISH, mqtt_str_from(big, sizeof(big))),
        IMQTT_EFILTER);
    assert_int_equal(acl_rule_count(a), 0);
    acl_free(a);
}

/* Rows: rule filter, requested filter, covered. */
static const struct {
    const char *rule, *req;
    bool covered;
} covers_table[] = {
    {"#", "a", true},
    {"#", "a/b/c", true},
    {"#", "#", true},
    {"#", "+", true},
    {"#", "+/+/#", true},
    {"#", "$SYS/#", false},
    {"#", "$SYS", false},
    {"+/#", "$SYS/x", false},
    {"+", "$SYS", false},
    {"$SYS/#", "$SYS/#", true},
    {"$SYS/#", "$SYS/broker/+", true},
    {"$SYS/#", "#", false},
    {"$SYS/+", "$SYS/x", true},
    {"a/#", "a/#", true},
    {"a/#", "a", true},
    {"a/#", "a/+/c", true},
    {"a/#", "b/#", false},
    {"a/+", "a/#", false},
    {"a", "a/#", false},
    {"a/+", "a/b", true},
    {"a/+", "a/+", true},
    {"a/+", "a", false},
    {"a/+", "a/b/c", false},
    {"a/b", "a/+", false},
    {"a/b", "a/b", true},
    {"a/b", "a/c", false},
    {"a/b", "a/b/#", false},
    {"a/+/#", "a/#", false},
    {"a/+/#", "a/+", true},
    {"a/+/#", "a/b/c/d", true},
    {"+/+", "+/+", true},
    {"+/+", "+/#", false},
    {"+", "+", true},
    {"+", "#", false},
    {"+/#", "#", true},
    {"+/#", "+/#", true},
    {"+/+/#", "#", false},
    {"+/b", "a/b", true},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"a/", "a/", true},
    {"a/", "a", false},
    {"a/#", "a/", true},
    {"ab", "a", false},
    {"a", "ab", false},
};

static void test_covers_table(void **state)
{
    (void)state;
    size_t n = sizeof(covers_table) / sizeof(covers_table[0]);
    assert_true(n >= 25);
    for (size_t i = 0; i < n; i++) {
        acl *a = acl_new(false);
        assert_int_equal(
            acl_add_rule(a, true, ACL_SUBSCRIBE, S(covers_table[i].rule)), 0);
        bool got = sub(a, &anon, covers_table[i].req);
        if (got != covers_table[i].covered)
            fail_msg("rule \"%s\" covering \"%s\": got %d, want %d",
                     covers_table[i].rule, covers_table[i].req, got,
                     covers_table[i].covered);
        acl_free(a);
    }
}

static acl *user_acl(void)
{
    acl *a = acl_new(false);
    assert_int_equal(
        acl_add_rule(a, true, ACL_PUBLISH | ACL_SUBSCRIBE, S("users/%u/#")), 0);
    assert_int_equal(
        acl_add_rule(a, true, ACL_PUBLISH | ACL_SUBSCRIBE, S("dev/%c")), 0);
    return a;
}

static void test_placeholders(void **state)
{
    (void)state;
    acl *a = user_acl();
    acl_identity alice = ident("alice@phone", "alice");
    assert_true(pub(a, &alice, "users/alice/inbox"));
    assert_true(sub(a, &alice, "users/alice/#"));
    assert_true(sub(a, &alice, "users/alice"));
    assert_false(pub(a, &alice, "users/bob/inbox"));
    assert_false(sub(a, &alice, "users/+/inbox"));
    assert_false(sub(a, &alice, "users/#"));
    assert_true(pub(a, &alice, "dev/alice@phone"));
    assert_false(pub(a, &alice, "dev/bob@phone"));
    assert_false(sub(a, &alice, "dev/+"));

    /* The placeholder may share a level with literal text. */
    acl *b = acl_new(false);
    assert_int_equal(acl_add_rule(b, true, ACL_PUBLISH, S("x/u-%u-%c")), 0);
    assert_true(pub(b, &alice, "x/u-alice-alice@phone"));
    assert_false(pub(b, &alice, "x/u-alice-"));
    acl_free(b);
    acl_free(a);
}

static void test_placeholder_attacks(void **state)
{
    (void)state;
    acl *a = user_acl();
    static const char *const bad[] = {"#",   "+", "a/b", "alice/#",
                                      "+/+", "/", "a#",  "b+"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        acl_identity who = ident(bad[i], bad[i]);
        /* Literal substitution would have turned "users/%u/#" into
         * "users/#/#", "users/+/#" or "users/a/b/#". */
        assert_false(pub(a, &who, "users/alice/inbox"));
        assert_false(sub(a, &who, "users/alice/#"));
        assert_false(sub(a, &who, "users/+/inbox"));
        assert_false(sub(a, &who, "users/#"));
        assert_false(pub(a, &who, "dev/alice@phone"));
        assert_false(sub(a, &who, "dev/+"));
        assert_false(sub(a, &who, "#"));
    }
    /* "a/b" must not reach user "a"'s subtree at "b". */
    acl_identity slash = ident("a/b", "a/b");
    assert_false(pub(a, &slash, "users/a/b/x"));
    assert_false(pub(a, &slash, "dev/a/b"));
    acl_free(a);
}

static void test_missing_identity_parts(void **state)
{
    (void)state;
    acl *a = user_acl();
    acl_identity nouser = ident("dev1", NULL);
    assert_false(pub(a, &nouser, "users//x"));
    assert_false(pub(a, &nouser, "users/x"));
    assert_false(sub(a, &nouser, "users/+/#"));
    assert_true(pub(a, &nouser, "dev/dev1")); /* %c still works */

    acl_identity empty = ident("", "");
    assert_false(pub(a, &empty, "dev/"));
    assert_false(pub(a, &empty, "users//x"));
    assert_false(pub(a, NULL, "dev/"));
    acl_free(a);

    /* A deny rule that cannot be instantiated does not match; the rules
     * after it still decide. */
    a = acl_new(true);
    assert_int_equal(acl_add_rule(a, false, ACL_PUBLISH, S("priv/%u")), 0);
    assert_int_equal(acl_add_rule(a, false, ACL_PUBLISH, S("priv/#")), 0);
    acl_identity hash = ident("c", "#");
    assert_false(pub(a, &hash, "priv/x"));
    assert_true(pub(a, &hash, "pub/x"));
    acl_free(a);
}

static void test_expansion_too_long(void **state)
{
    (void)state;
    /* An identity too long to expand refuses the check, even when the rule
     * that overflows is a deny rule that would otherwise be skipped. */
    static char longname[5000];
    memset(longname, 'x', sizeof(longname) - 1);
    acl *a = acl_new(true);
    assert_int_equal(acl_add_rule(a, false, ACL_PUBLISH, S("priv/%u")), 0);
    acl_identity who = ident("c", longname);
    assert_false(pub(a, &who, "other"));
    acl_free(a);

    a = acl_new(false);
    assert_int_equal(acl_add_rule(a, true, ACL_PUBLISH, S("u/%u")), 0);
    static char topic[5100];
    snprintf(topic, sizeof(topic), "u/%s", longname);
    assert_false(pub(a, &who, topic));
    acl_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_first_match_decides),
        cmocka_unit_test(test_publish_vs_subscribe),
        cmocka_unit_test(test_add_rule_errors),
        cmocka_unit_test(test_covers_table),
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_placeholder_attacks),
        cmocka_unit_test(test_missing_identity_parts),
        cmocka_unit_test(test_expansion_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
