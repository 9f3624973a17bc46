/* sub_index: MQTT matching rules, updates, shared groups, pruning, a
 * differential test against mqtt_topic_match, and 65,000-level filters
 * (BAD_INPUTS row 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "sub_index.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) MQTT_STR_LIT(lit)

static mqtt_str str_of(const char *s)
{
    return mqtt_str_from(s, strlen(s));
}

/* Owners are just distinct addresses. */
static char owners[64];

/* What a match reported: sub ids of entries and of group members, plus
 * the groups themselves. */
typedef struct seen {
    uint32_t ids[4096];
    uint32_t n;
    sub_group *groups[256];
    uint32_t ngroups;
} seen;

static void on_entry(void *arg, const sub_entry *e)
{
    seen *s = arg;
    assert_true(s->n < 4096);
    s->ids[s->n++] = e->sub_id;
}

static void on_group(void *arg, sub_group *g)
{
    seen *s = arg;
    assert_true(s->ngroups < 256);
    s->groups[s->ngroups++] = g;
    for (uint32_t i = 0; i < g->count; i++) {
        assert_true(s->n < 4096);
        s->ids[s->n++] = g->members[i].sub_id;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void match(sub_index *idx, const char *topic, seen *s)
{
    memset(s, 0, sizeof *s);
    sub_visitor v = {on_entry, on_group, s};
    sub_index_match(idx, str_of(topic), &v);
    qsort(s->ids, s->n, sizeof s->ids[0], cmp_u32);
}

static const mqtt_sub_opts qos1 = {.qos = 1};

static void add(sub_index *idx, const char *filter, int owner, uint32_t id)
{
    assert_int_equal(
        sub_index_add(idx, str_of(filter), &owners[owner], &qos1, id), 1);
}

/* Whether `topic` reaches subscription id `id`, alone. */
static bool hits(const char *filter, const char *topic)
{
    sub_index *idx = sub_index_new();
    assert_non_null(idx);
    add(idx, filter, 0, 7);
    seen s;
    match(idx, topic, &s);
    bool hit = s.n == 1 && s.ids[0] == 7;
    assert_true(s.n <= 1);
    assert_int_equal(sub_index_remove(idx, str_of(filter), &owners[0]), 1);
    assert_int_equal(sub_index_count(idx), 0);
    assert_int_equal(sub_index_node_count(idx), 0);
    sub_index_free(idx);
    return hit;
}

static void test_rules(void **state)
{
    (void)state;
    static const struct {
        const char *filter, *topic;
        bool hit;
    } rows[] = {
        {"a/b", "a/b", true},
        {"a/b", "a/c", false},
        {"a/b", "a/b/c", false},
        {"+", "a", true},
        {"+", "a/b", false},
        {"+/+", "/a", true},
        {"/+", "/a", true},
        {"+", "/a", false},
        {"#", "a/b/c", true},
        {"#", "/", true},
        {"a/#", "a", true}, /* '#' matches the parent level */
        {"a/#", "a/", true},
        {"a/#", "a/b/c", true},
        {"a/#", "ab", false},
        {"a/+", "a", false},
        {"a/+", "a/", true},
        {"a/+/c", "a/b/c", true},
        {"a/+/c", "a/b/d", false},
        {"+/+/#", "a", false},
        {"+/#", "a", true},
        {"#", "$SYS/x", false}, /* [MQTT-4.7.2-1] */
        {"+/x", "$SYS/x", false},
        {"+/#", "$a", false},
        {"$SYS/#", "$SYS/x", true},
        {"$SYS/#", "$SYS", true},
        {"$SYS/+", "$SYS/x", true},
        {"$SYS/x", "$SYS/x", true},
        {"a/+", "a/$x", true}, /* '$' matters at the first level only */
        {"a/#", "a/$x/y", true},
        {"$share/g/a/b", "a/b", true},
        {"$share/g/+/b", "a/b", true},
        {"$share/g/#", "$SYS/b", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool got = hits(rows[i].filter, rows[i].topic);
        if (got != rows[i].hit)
            fail_msg("filter '%s' topic '%s': got %d", rows[i].filter,
                     rows[i].topic, got);
    }
}

static void test_update_and_distinct(void **state)
{
    (void)state;
    sub_index *idx = sub_index_new();
    mqtt_sub_opts q2 = {.qos = 2, .no_local = true};
    add(idx, "a/b", 0, 1);
    assert_int_equal(sub_index_add(idx, S("a/b"), &owners[0], &q2, 9), 0);
    add(idx, "$share/g/a/b", 0, 2); /* distinct from the plain one */
    add(idx, "a/+", 0, 3);
    assert_int_equal(sub_index_add(idx, S("$share/g/a/b"), &owners[0], &q2, 4),
                     0);
    assert_int_equal(sub_index_count(idx), 3);

    seen s;
    memset(&s, 0, sizeof s);
    match(idx, "a/b", &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.ids[0], 3);
    assert_int_equal(s.ids[1], 4);
    assert_int_equal(s.ids[2], 9);
    assert_int_equal(s.ngroups, 1);
    sub_group *g = s.groups[0];
    assert_int_equal(g->members[0].opts.qos, 2);
    assert_true(g->name.len == 1 && g->name.ptr[0] == 'g');
    assert_true(g->filter.len == 3 && memcmp(g->filter.ptr, "a/b", 3) == 0);

    /* Invalid input is refused or matches nothing, without a crash. */
    assert_int_equal(sub_index_add(idx, S(""), &owners[0], &qos1, 1),
                     IMQTT_EFILTER);
    assert_int_equal(sub_index_add(idx, S("$share/g"), &owners[0], &qos1, 1),
                     IMQTT_EFILTER);
    assert_int_equal(sub_index_remove(idx, (mqtt_str){NULL, 0}, &owners[0]), 0);
    sub_visitor nv = {NULL, NULL, NULL};
    sub_index_match(idx, (mqtt_str){NULL, 0}, &nv);
    sub_index_match(idx, S("a/b"), &nv);
    assert_int_equal(sub_index_count(idx), 3);

    assert_int_equal(sub_index_remove(idx, S("a/b"), &owners[1]), 0);
    assert_int_equal(sub_index_remove(idx, S("x/y"), &owners[0]), 0);
    assert_int_equal(sub_index_remove(idx, S("x/+"), &owners[0]), 0);
    assert_int_equal(sub_index_remove(idx, S("$share/h/a/b"), &owners[0]), 0);
    assert_int_equal(sub_index_remove(idx, S("a/b"), &owners[0]), 1);
    assert_int_equal(sub_index_remove(idx, S("a/b"), &owners[0]), 0);
    match(idx, "a/b", &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(sub_index_remove(idx, S("$share/g/a/b"), &owners[0]), 1);
    assert_int_equal(sub_index_remove(idx, S("a/+"), &owners[0]), 1);
    assert_int_equal(sub_index_count(idx), 0);
    assert_int_equal(sub_index_node_count(idx), 0);
    sub_index_free(idx);
}

static sub_group *only_group(sub_index *idx, const char *topic)
{
    seen s;
    match(idx, topic, &s);
    assert_int_equal(s.ngroups, 1);
    return s.groups[0];
}

static void test_group_cursor(void **state)
{
    (void)state;
    sub_index *idx = sub_index_new();
    for (int i = 0; i < 4; i++)
        add(idx, "$share/g/t/+", i, (uint32_t)i + 1);
    add(idx, "$share/h/t/+", 9, 99); /* another group, same filter */
    seen s;
    match(idx, "t/1", &s);
    assert_int_equal(s.ngroups, 2);
    sub_group *g = s.groups[0]->name.ptr[0] == 'g' ? s.groups[0] : s.groups[1];
    assert_int_equal(g->count, 4);

    /* Cursor on member 2 (id 3); removing an earlier member keeps it
     * there. */
    g->next = 2;
    assert_int_equal(sub_index_remove(idx, S("$share/g/t/+"), &owners[0]), 1);
    assert_int_equal(g->count, 3);
    assert_int_equal(g->members[g->next].sub_id, 3);
    /* Removing the member under the cursor moves it to the next one. */
    assert_int_equal(sub_index_remove(idx, S("$share/g/t/+"), &owners[2]), 1);
    assert_int_equal(g->members[g->next].sub_id, 4);
    /* Removing the last member while the cursor is on it wraps to 0. */
    assert_int_equal(sub_index_remove(idx, S("$share/g/t/+"), &owners[3]), 1);
    assert_int_equal(g->count, 1);
    assert_int_equal(g->next, 0);
    assert_int_equal(g->members[0].sub_id, 2);
    /* Join order is kept. */
    add(idx, "$share/g/t/+", 5, 6);
    add(idx, "$share/g/t/+", 0, 1);
    assert_int_equal(g->members[1].sub_id, 6);
    assert_int_equal(g->members[2].sub_id, 1);

    assert_int_equal(sub_index_remove(idx, S("$share/g/t/+"), &owners[1]), 1);
    assert_int_equal(sub_index_remove(idx, S("$share/g/t/+"), &owners[5]), 1);
    assert_int_equal(sub_index_remove(idx, S("$share/g/t/+"), &owners[0]), 1);
    assert_int_equal(only_group(idx, "t/1")->name.ptr[0], 'h');
    assert_int_equal(sub_index_remove(idx, S("$share/h/t/+"), &owners[9]), 1);
    assert_int_equal(sub_index_count(idx), 0);
    assert_int_equal(sub_index_node_count(idx), 0);
    sub_index_free(idx);
}

/* ---- differential -------------------------------------------------- */

typedef struct model_sub {
    char filter[64];
    int owner;
    uint32_t id;
    bool live;
} model_sub;

static const char *const lits[] = {"a", "b", "c", "", "$x"};

static void rand_levels(char *out, size_t cap, bool wild, bool topic)
{
    int levels = 1 + rand() % 5;
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < levels; i++) {
        const char *l;
        int r = rand() % 10;
        if (i == 0 && r == 0)
            l = topic || rand() % 2 ? "$SYS" : "$x";
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

/* Totals over the differential run, to show it is not vacuous. */
static unsigned long diff_hits, diff_groups;

static void check_against_model(sub_index *idx, const model_sub *m, int nm,
                                const char *topic)
{
    static uint32_t want[4096];
    uint32_t nw = 0;
    for (int i = 0; i < nm; i++) {
        if (!m[i].live)
            continue;
        mqtt_str group, f = str_of(m[i].filter);
        mqtt_share_parse(str_of(m[i].filter), &group, &f);
        if (mqtt_topic_match(f, str_of(topic)))
            want[nw++] = m[i].id;
    }
    qsort(want, nw, sizeof want[0], cmp_u32);
    seen s;
    match(idx, topic, &s);
    if (s.n != nw || memcmp(s.ids, want, nw * sizeof want[0]) != 0)
        fail_msg("topic '%s': %u matches, expected %u", topic, s.n, nw);
    diff_hits += nw;
    diff_groups += s.ngroups;
    /* Each reported group is distinct. */
    for (uint32_t i = 0; i < s.ngroups; i++)
        for (uint32_t j = i + 1; j < s.ngroups; j++)
            assert_ptr_not_equal(s.groups[i], s.groups[j]);
}

static void test_differential(void **state)
{
    (void)state;
    enum { NM = 3000, OWNERS = 40 };
    static model_sub m[NM];
    int nm = 0;
    uint32_t next_id = 1;
    sub_index *idx = sub_index_new();
    srand(12345);
    memset(m, 0, sizeof m);

    for (int round = 0; round < 6; round++) {
        /* Add a batch (re-adding an existing pair updates its id). */
        for (int k = 0; k < 1000; k++) {
            char f[48], full[64];
            rand_levels(f, sizeof f, true, false);
            int share = rand() % 8;
            if (share < 2)
                snprintf(full, sizeof full, "$share/g%d/%s", share, f);
            else
                snprintf(full, sizeof full, "%s", f);
            int owner = rand() % OWNERS, found = -1;
            for (int i = 0; i < nm; i++)
                if (m[i].live && m[i].owner == owner &&
                    strcmp(m[i].filter, full) == 0)
                    found = i;
            uint32_t id = next_id++;
            int rc =
                sub_index_add(idx, str_of(full), &owners[owner], &qos1, id);
            if (found >= 0) {
                assert_int_equal(rc, 0);
                m[found].id = id;
            } else {
                assert_int_equal(rc, 1);
                if (nm == NM) { /* reuse a dead slot */
                    int i = 0;
                    while (m[i].live)
                        i++;
                    found = i;
                } else
                    found = nm++;
                snprintf(m[found].filter, sizeof m[found].filter, "%s", full);
                m[found].owner = owner;
                m[found].id = id;
                m[found].live = true;
            }
        }
        /* Remove about a third. */
        for (int i = 0; i < nm; i++) {
            if (!m[i].live || rand() % 3 != 0)
                continue;
            assert_int_equal(
                sub_index_remove(idx, str_of(m[i].filter), &owners[m[i].owner]),
                1);
            m[i].live = false;
        }
        size_t live = 0;
        for (int i = 0; i < nm; i++)
            live += m[i].live;
        assert_int_equal(sub_index_count(idx), live);

        for (int t = 0; t < 2000; t++) {
            char topic[48];
            rand_levels(topic, sizeof topic, false, true);
            check_against_model(idx, m, nm, topic);
        }
    }

    assert_true(diff_hits > 100000);
    assert_true(diff_groups > 10000);

    /* Churn down to nothing: every node and exact record must go. */
    for (int i = 0; i < nm; i++)
        if (m[i].live)
            assert_int_equal(
                sub_index_remove(idx, str_of(m[i].filter), &owners[m[i].owner]),
                1);
    assert_int_equal(sub_index_count(idx), 0);
    assert_int_equal(sub_index_node_count(idx), 0);
    seen s;
    match(idx, "a/b", &s);
    assert_int_equal(s.n, 0);
    sub_index_free(idx);
}

/* ---- BAD_INPUTS row 4 ---------------------------------------------- */

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
    sub_index *idx = sub_index_new();
    /* 65,000 levels: 64,999 empty ones and a wildcard or a literal. */
    char *hash = levels_of(64999, "#");
    char *plus = levels_of(64999, "+");
    char *exact = levels_of(64999, "x");
    char *topic = levels_of(64999, "x");
    char *shorter = levels_of(64998, "");
    add(idx, hash, 0, 1);
    add(idx, plus, 1, 2);
    add(idx, exact, 2, 3);
    add(idx, "+/#", 3, 4); /* a shallow one beside it */

    seen s;
    match(idx, topic, &s);
    assert_int_equal(s.n, 4);
    match(idx, shorter, &s); /* '#' matches its parent level */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], 1);
    assert_int_equal(s.ids[1], 4);

    assert_int_equal(sub_index_remove(idx, str_of(plus), &owners[1]), 1);
    match(idx, topic, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(sub_index_remove(idx, str_of(hash), &owners[0]), 1);
    assert_int_equal(sub_index_remove(idx, str_of(exact), &owners[2]), 1);
    assert_int_equal(sub_index_node_count(idx), 2); /* "+" and its "#" */

    /* Freed with a deep trie still in it: no recursion there either. */
    add(idx, hash, 0, 1);
    sub_index_free(idx);
    free(hash);
    free(plus);
    free(exact);
    free(topic);
    free(shorter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_update_and_distinct),
        cmocka_unit_test(test_group_cursor),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
