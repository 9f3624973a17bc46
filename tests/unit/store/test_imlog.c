/* The conversation log in the store (store_imlog.h): appends and pages in
 * both directions, retention by count, bytes and age in the appending
 * transaction, the last id kept after deletes, the start-up count, and
 * the upgrade of a schema 1 store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "errors.h"
#include "store.h"
#include "store_imlog.h"

#define S(x) ((mqtt_str){(const uint8_t *)(x), sizeof(x) - 1})

static char dir[64];
static int done_calls;

static void on_done(void *arg, int status)
{
    (void)arg;
    assert_int_equal(status, 0);
    done_calls++;
}

static store *open_dir(void)
{
    store_options o = {.durability = STORE_PROCESS,
                       .dir = dir,
                       .map_size = 1 << 20,
                       .max_size = 1 << 28,
                       .sync_interval_ms = 50};
    store *s = NULL;
    assert_int_equal(store_open(&o, &s), 0);
    return s;
}

static void commit_wait(store *s)
{
    int before = done_calls;
    assert_int_equal(store_commit(s, on_done, NULL), 0);
    for (int i = 0; i < 5000 && done_calls == before; i++) {
        store_poll(s);
        if (done_calls == before)
            usleep(1000);
    }
    assert_int_equal(done_calls, before + 1);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/imqtt-imlog-XXXXXX");
    assert_non_null(mkdtemp(dir));
    strcat(dir, "/data");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    dir[strlen(dir) - 5] = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void append(store *s, mqtt_str conv, uint64_t id, uint64_t ts,
                   const store_imlog_limits *lim)
{
    char pl[32];
    int n = snprintf(pl, sizeof(pl), "m%llu", (unsigned long long)id);
    store_imlog_rec r = {id,
                         ts,
                         S("alice@phone"),
                         S("p2p/talk/bob"),
                         {(const uint8_t *)pl, (uint32_t)n}};
    assert_int_equal(store_imlog_append(s, conv, &r, lim), 0);
}

typedef struct got {
    uint64_t ids[64];
    int n, stop_after;
} got;

static int collect(void *arg, const store_imlog_rec *r)
{
    got *g = arg;
    if (g->stop_after && g->n == g->stop_after)
        return 1;
    char want[32];
    int n = snprintf(want, sizeof(want), "m%llu", (unsigned long long)r->id);
    assert_int_equal(r->payload.len, n);
    assert_memory_equal(r->payload.ptr, want, (size_t)n);
    assert_int_equal(r->from.len, 11);
    g->ids[g->n++] = r->id;
    return 0;
}

static void pages_both_ways(void **state)
{
    (void)state;
    store *s = open_dir();
    static const store_imlog_limits none = {0, 0, 0};
    /* Two conversations whose keys share a prefix must not mix. */
    for (uint64_t id = 1; id <= 20; id++) {
        append(s, S("d/alice/bob"), id, id, &none);
        append(s, S("d/alice/bobby"), id + 100, id, &none);
    }
    commit_wait(s);
    got g = {0};
    bool more;
    assert_int_equal(
        store_imlog_page(s, S("d/alice/bob"), true, 0, 5, collect, &g, &more),
        5);
    assert_true(more);
    assert_int_equal(g.ids[0], 1);
    assert_int_equal(g.ids[4], 5);
    g = (got){0};
    assert_int_equal(
        store_imlog_page(s, S("d/alice/bob"), true, 18, 5, collect, &g, &more),
        2);
    assert_false(more);
    assert_int_equal(g.ids[0], 19);
    g = (got){0};
    assert_int_equal(
        store_imlog_page(s, S("d/alice/bob"), false, 0, 3, collect, &g, &more),
        3);
    assert_true(more);
    assert_int_equal(g.ids[0], 18);
    assert_int_equal(g.ids[2], 20);
    g = (got){0};
    assert_int_equal(
        store_imlog_page(s, S("d/alice/bob"), false, 4, 10, collect, &g, &more),
        3);
    assert_false(more);
    assert_int_equal(g.ids[0], 1);
    assert_int_equal(g.ids[2], 3);
    /* the page ends early when the callback says it is full */
    g = (got){.stop_after = 2};
    assert_int_equal(
        store_imlog_page(s, S("d/alice/bob"), true, 0, 10, collect, &g, &more),
        2);
    assert_true(more);
    g = (got){0};
    assert_int_equal(
        store_imlog_page(s, S("d/nobody/x"), false, 0, 10, collect, &g, &more),
        0);
    assert_false(more);
    uint64_t last;
    assert_int_equal(store_imlog_last(s, S("d/alice/bobby"), &last), 0);
    assert_int_equal(last, 120);
    store_close(s);
}

static void retention_in_the_append(void **state)
{
    (void)state;
    store *s = open_dir();
    store_imlog_limits count = {0, 0, 5};
    for (uint64_t id = 1; id <= 12; id++)
        append(s, S("g/team"), id, 1000 + id, &count);
    commit_wait(s);
    got g = {0};
    bool more;
    assert_int_equal(
        store_imlog_page(s, S("g/team"), true, 0, 64, collect, &g, &more), 5);
    assert_int_equal(g.ids[0], 8);
    /* age: everything older than 10 ms before the newest goes */
    store_imlog_limits age = {10, 0, 0};
    append(s, S("g/team"), 13, 1000 + 12 + 5, &age); /* ts 1017 */
    commit_wait(s);
    g = (got){0};
    store_imlog_page(s, S("g/team"), true, 0, 64, collect, &g, &more);
    assert_int_equal(g.n, 6); /* 8..12 (ts 1008..1012) are within 10 ms */
    append(s, S("g/team"), 14, 2000, &age);
    commit_wait(s);
    g = (got){0};
    store_imlog_page(s, S("g/team"), true, 0, 64, collect, &g, &more);
    assert_int_equal(g.n, 1); /* the newest always stays */
    assert_int_equal(g.ids[0], 14);
    /* bytes: a budget of about three records */
    store_imlog_limits bytes = {0, 3 * (1 + 6 + 8 + 12 + 11 + 12 + 3), 0};
    for (uint64_t id = 15; id <= 25; id++)
        append(s, S("g/team"), id, 3000, &bytes);
    commit_wait(s);
    g = (got){0};
    store_imlog_page(s, S("g/team"), true, 0, 64, collect, &g, &more);
    assert_true(g.n >= 2 && g.n <= 3);
    assert_int_equal(g.ids[g.n - 1], 25);
    /* the last id outlives the deletes: ids never go back */
    uint64_t last;
    assert_int_equal(store_imlog_last(s, S("g/team"), &last), 0);
    assert_int_equal(last, 25);
    store_close(s);
}

static void boot_counts_and_v1_upgrades(void **state)
{
    (void)state;
    store *s = open_dir();
    assert_int_equal(store_boot(s), 1);
    store_close(s);
    s = open_dir();
    assert_int_equal(store_boot(s), 2);
    store_close(s);
    /* Make it look like schema 1: version record 1, no log databases. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    uint8_t ver[4] = {0, 0, 0, 1};
    MDB_val k = {6, "schema"}, v = {4, ver};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_dbi_open(txn, "imlog", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_dbi_open(txn, "imconv", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    /* read-only (imqtt --check-store of an old store): opens, no log */
    store_options ro = {.dir = dir, .read_only = true};
    assert_int_equal(store_open(&ro, &s), 0);
    uint64_t last = 1;
    assert_int_equal(store_imlog_last(s, S("g/x"), &last), 0);
    assert_int_equal(last, 0);
    store_close(s);
    /* read-write: upgraded to 2, the log works */
    s = open_dir();
    append(s, S("g/x"), 7, 1, &(store_imlog_limits){0, 0, 0});
    commit_wait(s);
    assert_int_equal(store_imlog_last(s, S("g/x"), &last), 0);
    assert_int_equal(last, 7);
    store_close(s);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_get(txn, meta, &k, &v), 0);
    assert_int_equal(((uint8_t *)v.mv_data)[3], 2);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pages_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_in_the_append, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(boot_counts_and_v1_upgrades, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
