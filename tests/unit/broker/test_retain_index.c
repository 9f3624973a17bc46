/* retain_index: set/get/remove with pruning, filter walks checked against
 * mqtt_topic_match, and 65,000-level topics (BAD_INPUTS row 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "retain_index.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mqtt_str str_of(const char *s)
{
    return mqtt_str_from(s, strlen(s));
}

/* A stored value: its own topic, so a visit can check the view it gets. */
typedef struct rec {
    char topic[64];
    const char *name; /* the topic when too long for `topic` */
    bool live;
    int visits;
} rec;

typedef struct visits {
    int n;
    bool bad_topic;
} visits;

static void on_match(void *arg, mqtt_str topic, void *value)
{
    visits *v = arg;
    rec *r = value;
    const char *want = r->name ? r->name : r->topic;
    v->n++;
    r->visits++;
    if (topic.len != strlen(want) || memcmp(topic.ptr, want, topic.len) != 0)
        v->bad_topic = true;
}

static void test_basic(void **state)
{
    (void)state;
    retain_index *ri = retain_index_new();
    rec a = {"a/b"}, b = {"a/b"}, c = {"a"};
    void *old = &a;
    assert_int_equal(retain_index_set(ri, str_of("a/b"), &a, &old), 0);
    assert_null(old);
    assert_int_equal(retain_index_set(ri, str_of("a/b"), &b, &old), 0);
    assert_ptr_equal(old, &a);
    assert_int_equal(retain_index_set(ri, str_of("a"), &c, NULL), 0);
    assert_int_equal(retain_index_count(ri), 2);
    assert_ptr_equal(retain_index_get(ri, str_of("a/b")), &b);
    assert_ptr_equal(retain_index_get(ri, str_of("a")), &c);
    assert_null(retain_index_get(ri, str_of("a/b/c")));
    assert_null(retain_index_get(ri, str_of("b")));
    assert_null(retain_index_remove(ri, str_of("a/b/c")));
    assert_null(retain_index_remove(ri, str_of("x")));

    /* An empty topic or filter (invalid) is refused or finds nothing. */
    mqtt_str none = {NULL, 0};
    assert_int_equal(retain_index_set(ri, none, &a, NULL), IMQTT_EINVAL);
    assert_null(retain_index_get(ri, none));
    assert_null(retain_index_remove(ri, none));
    assert_int_equal(retain_index_match(ri, none, on_match, NULL), 0);

    /* Removing "a" keeps the node: "a/b" hangs below it. */
    assert_ptr_equal(retain_index_remove(ri, str_of("a")), &c);
    assert_null(retain_index_remove(ri, str_of("a")));
    assert_int_equal(retain_index_node_count(ri), 2);
    assert_ptr_equal(retain_index_get(ri, str_of("a/b")), &b);
    assert_ptr_equal(retain_index_remove(ri, str_of("a/b")), &b);
    assert_int_equal(retain_index_count(ri), 0);
    assert_int_equal(retain_index_node_count(ri), 0);
    retain_index_free(ri, NULL);
}

static int count_matches(retain_index *ri, const char *filter)
{
    visits v = {0};
    assert_int_equal(retain_index_match(ri, str_of(filter), on_match, &v), 0);
    assert_false(v.bad_topic);
    return v.n;
}

static void test_rules(void **state)
{
    (void)state;
    static rec recs[] = {{"a"},   {"a/b"},    {"a/b/c"}, {"a/"},
                         {"/a"},  {"$SYS/x"}, {"$SYS"},  {"b/$x"},
                         {"a/c"}, {"$x/a/b"}, {"/"}};
    retain_index *ri = retain_index_new();
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        assert_int_equal(
            retain_index_set(ri, str_of(recs[i].topic), &recs[i], NULL), 0);
    static const struct {
        const char *filter;
        int n;
    } rows[] = {
        {"#", 8},                  /* everything but the three '$' topics */
        {"+", 1},                  /* a */
        {"+/+", 6},                /* a/b a/ /a b/$x a/c / */
        {"a/#", 5},                /* a a/b a/b/c a/ a/c */
        {"a/+", 3},                /* a/b a/ a/c */
        {"+/b", 1},                /* a/b */
        {"+/+/c", 1},              /* a/b/c */
        {"$SYS/#", 2},             /* $SYS/x and $SYS itself */
        {"$SYS/+", 1},             /* $SYS/x */
        {"+/#", 8},                /* a leading wildcard never reaches '$' */
        {"$x/+/b", 1},             /* $x/a/b */
        {"b/+", 1},                /* b/$x */
        {"a/b/c/#", 1},            /* a/b/c */
        {"z/#", 0},     {"/#", 2}, /* /a and / */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int want = 0;
        for (size_t j = 0; j < sizeof recs / sizeof recs[0]; j++)
            want +=
                mqtt_topic_match(str_of(rows[i].filter), str_of(recs[j].topic));
        int got = count_matches(ri, rows[i].filter);
        if (got != want || want != rows[i].n)
            fail_msg("filter '%s': %d visits, spec says %d, table %d",
                     rows[i].filter, got, want, rows[i].n);
    }
    retain_index_free(ri, NULL);
}

static void free_rec(void *v)
{
    free(v);
}

static const char *const lits[] = {"a", "b", "c", "", "$x"};

static void rand_levels(char *out, size_t cap, bool wild)
{
    int levels = 1 + rand() % 5;
    size_t n = 0;
    for (int i = 0; i < levels; i++) {
        const char *l;
        int r = rand() % 10;
        if (i == 0 && r == 0)
            l = "$SYS";
        else if (wild && r < 2)
            l = "+";
        else if (wild && r == 2) {
            l = "#";
            levels = i + 1;
        } else
            l = lits[rand() % 5];
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "/" : "", l);
    }
    if (n == 0) /* "" is neither a valid topic nor a valid filter */
        snprintf(out, cap, "/");
}

static void test_differential(void **state)
{
    (void)state;
    enum { NT = 3000 };
    static rec recs[NT];
    memset(recs, 0, sizeof recs);
    retain_index *ri = retain_index_new();
    srand(4242);
    size_t live = 0;
    unsigned long hits = 0;
    for (int round = 0; round < 5; round++) {
        for (int k = 0; k < 600; k++) {
            rec *r = &recs[rand() % NT];
            if (r->live) {
                assert_ptr_equal(retain_index_remove(ri, str_of(r->topic)), r);
                r->live = false;
                live--;
                continue;
            }
            rand_levels(r->topic, sizeof r->topic, false);
            void *old;
            assert_int_equal(retain_index_set(ri, str_of(r->topic), r, &old),
                             0);
            if (old != NULL) { /* same topic drawn again: it moves here */
                rec *o = old;
                assert_string_equal(o->topic, r->topic);
                o->live = false;
                live--;
            }
            r->live = true;
            live++;
        }
        assert_int_equal(retain_index_count(ri), live);
        for (int t = 0; t < 1500; t++) {
            char f[64];
            rand_levels(f, sizeof f, true);
            for (int i = 0; i < NT; i++)
                recs[i].visits = 0;
            visits v = {0};
            assert_int_equal(retain_index_match(ri, str_of(f), on_match, &v),
                             0);
            assert_false(v.bad_topic);
            hits += (unsigned long)v.n;
            for (int i = 0; i < NT; i++) {
                int want = recs[i].live &&
                           mqtt_topic_match(str_of(f), str_of(recs[i].topic));
                if (recs[i].visits != want)
                    fail_msg("filter '%s' topic '%s': %d visits, want %d", f,
                             recs[i].topic, recs[i].visits, want);
            }
        }
    }
    assert_true(hits > 50000);
    for (int i = 0; i < NT; i++)
        if (recs[i].live)
            assert_ptr_equal(retain_index_remove(ri, str_of(recs[i].topic)),
                             &recs[i]);
    assert_int_equal(retain_index_count(ri), 0);
    assert_int_equal(retain_index_node_count(ri), 0);
    retain_index_free(ri, NULL);
}

static char *levels_of(uint32_t slashes, const char *last)
{
    size_t ll = strlen(last);
    char *s = malloc(slashes + ll + 1);
    assert_non_null(s);
    memset(s, '/', slashes);
    memcpy(s + slashes, last, ll + 1);
    return s;
}

static void test_deep(void **state)
{
    (void)state;
    retain_index *ri = retain_index_new();
    char *topic = levels_of(64999, "x"); /* 65,000 levels */
    char *hash = levels_of(64999, "#");
    char *plus = levels_of(64999, "+");
    rec *r = calloc(1, sizeof *r), *s = calloc(1, sizeof *s);
    r->name = topic;
    snprintf(s->topic, sizeof s->topic, "a/b");
    assert_int_equal(retain_index_set(ri, str_of(topic), r, NULL), 0);
    assert_int_equal(retain_index_set(ri, str_of("a/b"), s, NULL), 0);
    assert_ptr_equal(retain_index_get(ri, str_of(topic)), r);

    /* The callback's topic view is rebuilt level by level: on_match
     * checks all 65,000 of them. */
    visits v = {0};
    assert_int_equal(retain_index_match(ri, str_of(hash), on_match, &v), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(retain_index_match(ri, str_of(plus), on_match, &v), 0);
    assert_int_equal(retain_index_match(ri, str_of("#"), on_match, &v), 0);
    assert_int_equal(retain_index_match(ri, str_of("/#"), on_match, &v), 0);
    assert_false(v.bad_topic);
    assert_int_equal(r->visits, 4);
    assert_int_equal(s->visits, 1);

    assert_ptr_equal(retain_index_remove(ri, str_of(topic)), r);
    assert_int_equal(retain_index_node_count(ri), 2);
    free(r);
    /* Freed with a deep branch in place, values handed back. */
    r = calloc(1, sizeof *r);
    assert_int_equal(retain_index_set(ri, str_of(topic), r, NULL), 0);
    retain_index_free(ri, free_rec);
    free(topic);
    free(hash);
    free(plus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
