/* Topic names, filters, matching and shared subscriptions (MQTT 5 4.7,
 * 4.8.2), including BAD_INPUTS rows 4, 5, 6 and 17. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "topic.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) MQTT_STR_LIT(lit)

static bool match(const char *f, const char *t)
{
    return mqtt_topic_match(mqtt_str_from(f, strlen(f)),
                            mqtt_str_from(t, strlen(t)));
}

static int fcheck(const char *f)
{
    return mqtt_topic_filter_check(mqtt_str_from(f, strlen(f)), NULL);
}

static int ncheck(const char *t)
{
    return mqtt_topic_name_check(mqtt_str_from(t, strlen(t)), NULL);
}

static void test_name_check(void **state)
{
    (void)state;
    assert_int_equal(ncheck("sport/tennis/player1"), 0);
    assert_int_equal(ncheck("/"), 0);
    assert_int_equal(ncheck("//"), 0);
    assert_int_equal(ncheck("/finance"), 0);
    assert_int_equal(ncheck("$SYS/broker"), 0);
    assert_int_equal(ncheck("$foo"), 0); /* BAD_INPUTS row 6 */
    assert_int_equal(ncheck(" "), 0);
    assert_int_equal(ncheck(""), IMQTT_ETOPIC); /* BAD_INPUTS row 5 */
    assert_int_equal(ncheck("sport/+"), IMQTT_ETOPIC);
    assert_int_equal(ncheck("sport/#"), IMQTT_ETOPIC);
    assert_int_equal(ncheck("a+b"), IMQTT_ETOPIC);
    assert_int_equal(ncheck("#"), IMQTT_ETOPIC);
    assert_int_equal(mqtt_topic_name_check(S("a\0b"), NULL), IMQTT_EUTF8);
    assert_int_equal(mqtt_topic_name_check(S("a/\xed\xa0\x80"), NULL),
                     IMQTT_EUTF8);
    assert_int_equal(mqtt_topic_name_check(S("\xc0\x80"), NULL), IMQTT_EUTF8);
}

static void test_name_limits(void **state)
{
    (void)state;
    mqtt_topic_limits lim = {.max_len = 5, .max_levels = 2};
    assert_int_equal(mqtt_topic_name_check(S("a/b"), &lim), 0);
    assert_int_equal(mqtt_topic_name_check(S("abcde"), &lim), 0);
    assert_int_equal(mqtt_topic_name_check(S("abcdef"), &lim), IMQTT_ETOPIC);
    assert_int_equal(mqtt_topic_name_check(S("a/b/c"), &lim), IMQTT_ETOPIC);
    mqtt_topic_limits none = {0, 0};
    assert_int_equal(mqtt_topic_name_check(S("a/b/c/d/e/f"), &none), 0);

    /* 65,535 bytes is the spec's ceiling whatever the limits say */
    uint8_t *big = malloc(65536);
    assert_non_null(big);
    memset(big, 'x', 65536);
    assert_int_equal(mqtt_topic_name_check((mqtt_str){big, 65535}, NULL), 0);
    assert_int_equal(mqtt_topic_name_check((mqtt_str){big, 65536}, NULL),
                     IMQTT_ETOPIC);
    assert_int_equal(mqtt_topic_filter_check((mqtt_str){big, 65535}, &none), 0);
    assert_int_equal(mqtt_topic_filter_check((mqtt_str){big, 65536}, &none),
                     IMQTT_EFILTER);
    free(big);
}

static void test_filter_check_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "sport/tennis/player1/#",
        "sport/#",
        "#",
        "+",
        "+/+",
        "/+",
        "+/tennis/#",
        "sport/+/player1",
        "sport/tennis/+",
        "/finance",
        "a//b",
        "/",
        "$SYS/#",
        "$share",      /* no slash: an ordinary filter */
        "$sharex/g/a", /* not the $share prefix */
        "$share/g/a/b",
        "$share/g/#",
        "$share/g/+/x",
        "$share/g//",
        "$share/\xc3\xa9/a",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (fcheck(ok[i]) != 0)
            fail_msg("filter \"%s\" rejected", ok[i]);
    }
}

static void test_filter_check_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "a/#/b",
        "a#",
        "a/b+",
        "#/a",
        "+a",
        "a+/b",
        "sport/tennis#",
        "##",
        "++",
        "a/+b/c",
        "a/#/",
        "$share//a",
        "$share/g",
        "$share/g/",
        "$share/g+/a",
        "$share/g#/a",
        "$share/+/a",
        "$share/#/a",
        "$share/g/a#",
        "$share/g/#/a",
        "$share/",
        "$share/g/$share/h/x", /* nested: sharing a shared subscription */
        "$share/g/$share/h/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (fcheck(bad[i]) != IMQTT_EFILTER)
            fail_msg("filter \"%s\" accepted (%d)", bad[i], fcheck(bad[i]));
    }
    assert_int_equal(mqtt_topic_filter_check(S("a/\0"), NULL), IMQTT_EUTF8);
    assert_int_equal(mqtt_topic_filter_check(S("\xed\xbf\xbf/#"), NULL),
                     IMQTT_EUTF8);
    assert_int_equal(
        mqtt_topic_filter_check(S("$share/\xf4\x90\x80\x80/a"), NULL),
        IMQTT_EUTF8);
}

static void test_filter_limits(void **state)
{
    (void)state;
    mqtt_topic_limits lim = {.max_len = 0, .max_levels = 3};
    assert_int_equal(mqtt_topic_filter_check(S("a/b/#"), &lim), 0);
    assert_int_equal(mqtt_topic_filter_check(S("a/b/c/#"), &lim),
                     IMQTT_EFILTER);
    /* levels are counted after the $share/{group}/ prefix */
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/a/b/c"), &lim), 0);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/a/b/c/d"), &lim),
                     IMQTT_EFILTER);
    /* the length limit is on the whole filter as sent */
    mqtt_topic_limits len = {.max_len = 10, .max_levels = 0};
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/a"), &len), 0);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/ab"), &len),
                     IMQTT_EFILTER);
}

/* The examples of MQTT 5 section 4.7.1 and 4.7.2. */
static void test_match_spec_examples(void **state)
{
    (void)state;
    /* 4.7.1.2 multi-level wildcard */
    assert_true(match("sport/tennis/player1/#", "sport/tennis/player1"));
    assert_true(
        match("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    assert_true(match("sport/tennis/player1/#",
                      "sport/tennis/player1/score/wimbledon"));
    assert_false(match("sport/tennis/player1/#", "sport/tennis/player2"));
    assert_false(match("sport/tennis/player1/#", "sport/tennis/player10"));
    assert_true(match("sport/#", "sport"));
    assert_true(match("#", "sport/tennis/player1"));
    /* 4.7.1.3 single-level wildcard */
    assert_true(match("sport/tennis/+", "sport/tennis/player1"));
    assert_true(match("sport/tennis/+", "sport/tennis/player2"));
    assert_false(match("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert_false(match("sport/+", "sport"));
    assert_true(match("sport/+", "sport/"));
    assert_true(match("+/+", "/finance"));
    assert_true(match("/+", "/finance"));
    assert_false(match("+", "/finance"));
    assert_true(match("+/tennis/#", "sport/tennis/player1"));
    assert_true(match("sport/+/player1", "sport/tennis/player1"));
    /* 4.7.3: leading '/' makes a distinct level */
    assert_true(match("/finance", "/finance"));
    assert_false(match("finance", "/finance"));
    assert_false(match("/finance", "finance"));
    /* case sensitive, whole levels */
    assert_false(match("ACCOUNTS", "Accounts"));
    assert_false(match("sport", "sports"));
    assert_false(match("sports", "sport"));
    assert_false(match("sport/tennis", "sport"));
    assert_false(match("sport", "sport/tennis"));
}

static void test_match_dollar(void **state)
{
    (void)state;
    /* 4.7.2: wildcards at the first level never match $-topics */
    assert_false(match("#", "$SYS/broker/clients"));
    assert_false(match("+/monitor/Clients", "$SYS/monitor/Clients"));
    assert_false(match("+", "$foo"));
    assert_false(match("#", "$"));
    assert_true(match("$SYS/#", "$SYS/monitor/Clients"));
    assert_true(match("$SYS/#", "$SYS"));
    assert_true(match("$SYS/monitor/+", "$SYS/monitor/Clients"));
    assert_true(match("$foo", "$foo"));
    /* only the first character counts */
    assert_true(match("#", "a/$SYS"));
    assert_true(match("a/+", "a/$b"));
}

static void test_match_empty_levels(void **state)
{
    (void)state;
    assert_true(match("+", ""));
    assert_true(match("+/+", "/"));
    assert_true(match("a/+/b", "a//b"));
    assert_false(match("a/+/b", "a/b"));
    assert_true(match("a//b", "a//b"));
    assert_false(match("a//b", "a/b"));
    assert_true(match("/", "/"));
    assert_true(match("a/", "a/"));
    assert_false(match("a/", "a"));
    assert_false(match("a", "a/"));
    assert_true(match("a/#", "a/"));
    assert_true(match("a/#", "a//"));
    assert_true(match("+/#", "a"));
    assert_true(match("a/+/#", "a/b"));
    assert_false(match("a/+/#", "a"));
    assert_true(match("#", "/"));
    assert_false(match("a/b/#", "a"));
}

static void test_has_wildcard_levels(void **state)
{
    (void)state;
    assert_false(mqtt_topic_has_wildcard(S("a/b")));
    assert_true(mqtt_topic_has_wildcard(S("a/+")));
    assert_true(mqtt_topic_has_wildcard(S("#")));
    assert_false(mqtt_topic_has_wildcard(S("")));
    assert_int_equal(mqtt_topic_levels(S("")), 1);
    assert_int_equal(mqtt_topic_levels(S("a")), 1);
    assert_int_equal(mqtt_topic_levels(S("/")), 2);
    assert_int_equal(mqtt_topic_levels(S("a/b/c")), 3);
    assert_int_equal(mqtt_topic_levels(S("//a//")), 5);
}

static void test_share_parse(void **state)
{
    (void)state;
    mqtt_str g = {0}, f = {0};

    assert_int_equal(mqtt_share_parse(S("$share/g/a/b"), &g, &f), 1);
    assert_int_equal(g.len, 1);
    assert_memory_equal(g.ptr, "g", 1);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.ptr, "a/b", 3);

    assert_int_equal(mqtt_share_parse(S("$share/group1/#"), &g, &f), 1);
    assert_memory_equal(g.ptr, "group1", 6);
    assert_int_equal(f.len, 1);

    assert_int_equal(mqtt_share_parse(S("$share//a"), &g, &f), IMQTT_EFILTER);
    assert_int_equal(mqtt_share_parse(S("$share/g"), &g, &f), IMQTT_EFILTER);
    assert_int_equal(mqtt_share_parse(S("$share/g/"), &g, &f), IMQTT_EFILTER);
    assert_int_equal(mqtt_share_parse(S("$share/g+/a"), &g, &f), IMQTT_EFILTER);
    assert_int_equal(mqtt_share_parse(S("$share/#/a"), &g, &f), IMQTT_EFILTER);
    assert_int_equal(mqtt_share_parse(S("$share/"), &g, &f), IMQTT_EFILTER);

    /* not shared: outputs untouched */
    mqtt_str g0 = S("keep"), f0 = S("keep");
    g = g0;
    f = f0;
    assert_int_equal(mqtt_share_parse(S("a/b"), &g, &f), 0);
    assert_int_equal(mqtt_share_parse(S("$share"), &g, &f), 0);
    assert_int_equal(mqtt_share_parse(S("$SHARE/g/a"), &g, &f), 0);
    assert_int_equal(mqtt_share_parse(S("$shar"), &g, &f), 0);
    assert_int_equal(mqtt_share_parse(S(""), &g, &f), 0);
    assert_ptr_equal(g.ptr, g0.ptr);
    assert_ptr_equal(f.ptr, f0.ptr);
}

/* BAD_INPUTS row 4: ~65,000 levels. The work runs on a thread with a
 * 64 KiB stack, so any per-level recursion would overflow it at once. */
#define DEEP 65000u

struct deep {
    uint8_t *topic;  /* DEEP empty levels: DEEP - 1 slashes */
    uint8_t *filter; /* "+/+/.../+" would exceed 65,535 bytes: "////.../#" */
    uint32_t tlen, flen;
    int name_rc, filter_rc, name_lim_rc, filter_lim_rc;
    uint32_t levels;
    bool m_same, m_hash_tail, m_hash, m_plus_head, m_miss;
};

static void *deep_run(void *arg)
{
    struct deep *d = arg;
    mqtt_str t = {d->topic, d->tlen};
    mqtt_str f = {d->filter, d->flen};
    mqtt_topic_limits lim = {.max_len = 0, .max_levels = 1000};

    d->name_rc = mqtt_topic_name_check(t, NULL);
    d->filter_rc = mqtt_topic_filter_check(f, NULL);
    d->name_lim_rc = mqtt_topic_name_check(t, &lim);
    d->filter_lim_rc = mqtt_topic_filter_check(f, &lim);
    d->levels = mqtt_topic_levels(t);
    d->m_same = mqtt_topic_match(t, t);
    d->m_hash_tail = mqtt_topic_match(f, t);
    d->m_hash = mqtt_topic_match(S("#"), t);
    d->m_plus_head = mqtt_topic_match(S("+/+/+"), t);
    d->m_miss = mqtt_topic_match(f, (mqtt_str){d->topic, 100});
    return NULL;
}

static void test_deep_levels(void **state)
{
    (void)state;
    struct deep d = {0};
    d.tlen = DEEP - 1;
    d.topic = malloc(d.tlen);
    assert_non_null(d.topic);
    memset(d.topic, '/', d.tlen);
    d.flen = DEEP - 1; /* DEEP - 2 slashes and a '#' */
    d.filter = malloc(d.flen);
    assert_non_null(d.filter);
    memset(d.filter, '/', d.flen);
    d.filter[d.flen - 1] = '#';

    pthread_attr_t attr;
    pthread_t th;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    assert_int_equal(pthread_create(&th, &attr, deep_run, &d), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);

    assert_int_equal(d.name_rc, 0);
    assert_int_equal(d.filter_rc, 0);
    assert_int_equal(d.name_lim_rc, IMQTT_ETOPIC);
    assert_int_equal(d.filter_lim_rc, IMQTT_EFILTER);
    assert_int_equal(d.levels, DEEP);
    assert_true(d.m_same);
    assert_true(d.m_hash_tail);
    assert_true(d.m_hash);
    assert_false(d.m_plus_head);
    assert_false(d.m_miss);
    free(d.topic);
    free(d.filter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_check),
        cmocka_unit_test(test_name_limits),
        cmocka_unit_test(test_filter_check_valid),
        cmocka_unit_test(test_filter_check_invalid),
        cmocka_unit_test(test_filter_limits),
        cmocka_unit_test(test_match_spec_examples),
        cmocka_unit_test(test_match_dollar),
        cmocka_unit_test(test_match_empty_levels),
        cmocka_unit_test(test_has_wildcard_levels),
        cmocka_unit_test(test_share_parse),
        cmocka_unit_test(test_deep_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
