/* The store API against a real LMDB environment in a temporary directory:
 * commit and load, reference counts, cancellation inside a batch, session
 * deletion, map full, schema versions, read-only checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "errors.h"
#include "store.h"

#define S(x) ((mqtt_str){(const uint8_t *)(x), sizeof(x) - 1})

typedef struct fixture {
    char dir[64];
    store *s;
} fixture;

static int done_status, done_calls;

static void on_done(void *arg, int status)
{
    (void)arg;
    done_status = status;
    done_calls++;
}

static void rm_rf(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static store *open_store(const char *dir, uint64_t max_size)
{
    store_options o = {.durability = STORE_PROCESS,
                       .dir = dir,
                       .map_size = 65536 * 4,
                       .max_size = max_size,
                       .sync_interval_ms = 50};
    store *s = NULL;
    int rc = store_open(&o, &s);
    assert_int_equal(rc, 0);
    return s;
}

/* Seal the batch and wait for its callback. */
static int commit_wait(store *s)
{
    int before = done_calls;
    assert_int_equal(store_commit(s, on_done, NULL), 0);
    for (int i = 0; i < 5000 && done_calls == before; i++) {
        store_poll(s);
        if (done_calls == before)
            usleep(1000);
    }
    assert_int_equal(done_calls, before + 1);
    return done_status;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/imqtt-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    strcat(f->dir, "/data");
    f->s = open_store(f->dir, 1 << 30);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    f->dir[strlen(f->dir) - 5] = '\0';
    rm_rf(f->dir);
    free(f);
    return 0;
}

static store_msg msg_of(const char *topic, const char *payload)
{
    return (store_msg){1,         false,
                       0,         {(const uint8_t *)topic, strlen(topic)},
                       {NULL, 0}, {(const uint8_t *)payload, strlen(payload)}};
}

static int check(store *s)
{
    FILE *out = fopen("/dev/null", "w");
    int rc = store_check(s, out);
    fclose(out);
    return rc;
}

typedef struct seen {
    int sessions, subs, qos2, retained;
    uint64_t qfirst, qlast, qcount;
} seen;

static int v_session(void *a, const store_session *ss)
{
    seen *x = a;
    assert_int_equal(ss->sid, 1);
    x->sessions++;
    return 0;
}
static int v_sub(void *a, const store_sub *sub)
{
    ((seen *)a)->subs++;
    assert_int_equal(sub->sub_id, 3);
    return 0;
}
static int v_qos2(void *a, uint64_t sid, uint16_t pid)
{
    (void)sid;
    assert_int_equal(pid, 9);
    ((seen *)a)->qos2++;
    return 0;
}
static int v_queue(void *a, uint64_t sid, uint64_t first, uint64_t last,
                   uint64_t count)
{
    (void)sid;
    seen *x = a;
    x->qfirst = first;
    x->qlast = last;
    x->qcount = count;
    return 0;
}
static int v_retained(void *a, uint64_t id, const store_msg *m)
{
    (void)id;
    (void)m;
    ((seen *)a)->retained++;
    return 0;
}

static int count_entries(void *arg, uint64_t seq, const store_entry *e,
                         const store_msg *m)
{
    (void)seq;
    (void)e;
    assert_non_null(m);
    (*(int *)arg)++;
    return 0;
}

static void commit_load_and_refcounts(void **state)
{
    fixture *f = *state;
    store *s = f->s;
    store_session ss = {
        .client_id = S("c1"), .sid = 1, .version = 4, .expiry = 60};
    assert_int_equal(store_put_session(s, &ss), 0);
    assert_int_equal(store_put_sub(s, 1, S("a/#"), 1, 3), 0);
    assert_int_equal(store_put_qos2(s, 1, 9), 0);
    store_msg m = msg_of("a/b", "payload");
    assert_int_equal(store_put_msg(s, 10, &m), 0);
    store_entry e = {.msg_id = 10, .state = STORE_ENTRY_QUEUED, .qos = 1};
    for (uint64_t seq = 1; seq <= 3; seq++)
        assert_int_equal(store_put_entry(s, 1, seq, &e, true), 0);
    assert_int_equal(store_put_retained(s, S("a/b"), 10), 0);
    assert_int_equal(commit_wait(s), 0);
    assert_int_equal(check(s), 0);

    seen x = {0};
    store_visitor v = {&x, v_session, v_sub, v_qos2, v_queue, v_retained};
    uint64_t max_msg, max_sid;
    assert_int_equal(store_load(s, &v, &max_msg, &max_sid), 0);
    assert_int_equal(x.sessions, 1);
    assert_int_equal(x.subs, 1);
    assert_int_equal(x.qos2, 1);
    assert_int_equal(x.retained, 1);
    assert_int_equal(x.qcount, 3);
    assert_int_equal(x.qfirst, 1);
    assert_int_equal(x.qlast, 3);
    assert_int_equal(max_msg, 10);
    assert_int_equal(max_sid, 1);
    int n = 0;
    assert_int_equal(store_read_queue(s, 1, 2, 10, count_entries, &n), 2);
    assert_int_equal(n, 2);

    /* Deleting the entries and the retained record frees the message. */
    for (uint64_t seq = 1; seq <= 3; seq++)
        store_del_entry(s, 1, seq);
    store_del_retained(s, S("a/b"));
    assert_int_equal(commit_wait(s), 0);
    assert_int_equal(check(s), 0);
    x = (seen){0};
    assert_int_equal(store_load(s, &v, &max_msg, &max_sid), 0);
    assert_int_equal(max_msg, 0);
    assert_int_equal(x.qcount, 0);

    /* A session delete takes its subscriptions, entries and ids along. */
    assert_int_equal(store_put_msg(s, 11, &m), 0);
    assert_int_equal(
        store_put_entry(s, 1, 4, &(store_entry){.msg_id = 11, .qos = 1}, true),
        0);
    assert_int_equal(commit_wait(s), 0);
    store_del_session(s, S("c1"), 1);
    assert_int_equal(commit_wait(s), 0);
    x = (seen){0};
    assert_int_equal(store_load(s, &v, &max_msg, &max_sid), 0);
    assert_int_equal(x.sessions + x.subs + x.qos2 + (int)x.qcount, 0);
    assert_int_equal(max_msg, 0);
    assert_int_equal(check(s), 0);
}

static void cancel_inside_batch(void **state)
{
    fixture *f = *state;
    store *s = f->s;
    store_msg m = msg_of("t", "x");
    store_put_msg(s, 20, &m);
    store_entry e = {.msg_id = 20, .qos = 1};
    store_put_entry(s, 7, 1, &e, true);
    e.state = STORE_ENTRY_SENT;
    e.pid = 1;
    store_put_entry(s, 7, 1, &e, false); /* sent, still in the batch */
    store_del_entry(s, 7, 1);            /* acknowledged: cancels out */
    assert_int_equal(commit_wait(s), 0);
    uint64_t max_msg, max_sid;
    store_visitor v = {0};
    assert_int_equal(store_load(s, &v, &max_msg, &max_sid), 0);
    assert_int_equal(max_msg, 0); /* the message never stayed */
    assert_int_equal(check(s), 0);
}

static void map_full_refuses_then_recovers(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    rm_rf(f->dir);
    f->s = open_store(f->dir, 65536 * 8); /* 512 KiB at most */
    store *s = f->s;
    static char big[16000];
    memset(big, 'x', sizeof(big) - 1);
    store_msg m = msg_of("t", big);
    uint64_t id = 1;
    int status = 0;
    for (int round = 0; round < 100 && status == 0; round++) {
        for (int i = 0; i < 4; i++, id++) {
            store_put_msg(s, id, &m);
            store_put_entry(s, 1, id, &(store_entry){.msg_id = id, .qos = 1},
                            true);
        }
        status = commit_wait(s);
    }
    assert_int_equal(status, IMQTT_ESTOREFULL);
    assert_true(store_refusing(s));
    assert_int_equal(check(s), 0); /* what was committed is consistent */
    /* Consuming frees space; the next commit succeeds again. */
    for (uint64_t i = 1; i < id; i++)
        store_del_entry(s, 1, i);
    assert_int_equal(commit_wait(s), 0);
    assert_false(store_refusing(s));
    store_put_msg(s, id, &m);
    store_put_entry(s, 1, id, &(store_entry){.msg_id = id, .qos = 1}, true);
    assert_int_equal(commit_wait(s), 0);
    assert_int_equal(check(s), 0);
}

/* Filled to the last byte it accepts, then restarted (as after kill -9):
 * the consumer's deletes must still commit, or the store would refuse
 * publications forever while holding messages already delivered. */
static void full_store_still_drains_after_restart(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    rm_rf(f->dir);
    f->s = open_store(f->dir, 1 << 20);
    static char big[3000], small[100];
    memset(big, 'x', sizeof(big) - 1);
    memset(small, 'y', sizeof(small) - 1);
    uint64_t id = 1;
    for (int pass = 0; pass < 2; pass++) {
        store_msg m = msg_of("t", pass == 0 ? big : small);
        for (int status = 0; status == 0; id++) {
            store_put_msg(f->s, id, &m);
            store_put_entry(f->s, 1, id, &(store_entry){.msg_id = id, .qos = 1},
                            true);
            status = commit_wait(f->s);
        }
    }
    store_close(f->s);
    f->s = open_store(f->dir, 1 << 20);
    for (uint64_t i = 1; i < id; i++)
        store_del_entry(f->s, 1, i);
    assert_int_equal(commit_wait(f->s), 0);
    assert_false(store_refusing(f->s));
    store_msg m = msg_of("t", big);
    store_put_msg(f->s, id, &m);
    store_put_entry(f->s, 1, id, &(store_entry){.msg_id = id, .qos = 1}, true);
    assert_int_equal(commit_wait(f->s), 0);
    assert_int_equal(check(f->s), 0);
}

static void newer_schema_refused(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    /* Write schema version 99 the way a future imqtt would. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    uint8_t ver[4] = {0, 0, 0, 99};
    MDB_val k = {6, "schema"}, v = {4, ver};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    store_options o = {.durability = STORE_PROCESS,
                       .dir = f->dir,
                       .map_size = 1 << 20,
                       .max_size = 1 << 20};
    store *s = NULL;
    assert_int_equal(store_open(&o, &s), IMQTT_ESCHEMA);
    store_close(s);
    /* Start afresh for teardown. */
    rm_rf(f->dir);
    f->s = open_store(f->dir, 1 << 20);
}

static void dir_is_private_and_none_is_immediate(void **state)
{
    fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    store_options o = {.durability = STORE_NONE};
    store *s = NULL;
    assert_int_equal(store_open(&o, &s), 0);
    int before = done_calls;
    store_put_qos2(s, 1, 1); /* no-op */
    assert_false(store_pending(s));
    assert_int_equal(store_commit(s, on_done, NULL), 0);
    assert_int_equal(done_calls, before + 1);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commit_load_and_refcounts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel_inside_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(map_full_refuses_then_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(full_store_still_drains_after_restart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(dir_is_private_and_none_is_immediate,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
