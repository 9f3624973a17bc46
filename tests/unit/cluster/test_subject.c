/* Topic <-> NATS subject mapping (broker/cluster/subject.h), BAD_INPUTS
 * row 25: round trips, every special byte, canonical decoding, and NATS
 * matching of mapped filters equal to MQTT matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "subject.h"
#include "topic.h"

#include <stdio.h>
#include <string.h>

#define P "imqtt"

static mqtt_str str(const char *s)
{
    return mqtt_str_from(s, strlen(s));
}

/* The subject of topic t (asserts success). */
static const char *subj(const char *t)
{
    static char buf[1024];
    int n = cluster_topic_to_subject(P, str(t), buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    return buf;
}

static void assert_round_trip(const uint8_t *t, size_t len)
{
    char s[1024];
    uint8_t back[512];
    int n =
        cluster_topic_to_subject(P, (mqtt_str){t, (uint32_t)len}, s, sizeof s);
    assert_true(n > 0);
    int m = cluster_subject_to_topic(P, s, (size_t)n, back, sizeof back);
    assert_int_equal(m, (int)len);
    assert_memory_equal(back, t, len);
    /* nothing in the subject but the safe alphabet and dots between
     * non-empty tokens */
    for (int i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '=' ||
                  c == '.';
        assert_true(ok);
        if (c == '.')
            assert_true(i > 0 && i + 1 < n && s[i + 1] != '.');
    }
}

static void test_vectors(void **state)
{
    (void)state;
    assert_string_equal(subj("a/b"), "imqtt.m.a.b");
    assert_string_equal(subj("chat/alice"), "imqtt.m.chat.alice");
    assert_string_equal(subj("a.b/c d"), "imqtt.m.a=2Eb.c=20d");
    assert_string_equal(subj("*"), "imqtt.m.=2A");
    assert_string_equal(subj(">"), "imqtt.m.=3E");
    assert_string_equal(subj("a/>"), "imqtt.m.a.=3E");
    assert_string_equal(subj("="), "imqtt.m.=3D");
    assert_string_equal(subj("=3D"), "imqtt.m.=3D3D");
    assert_string_equal(subj("/"), "imqtt.m.=.=");
    assert_string_equal(subj("a//b/"), "imqtt.m.a.=.b.=");
    assert_string_equal(subj("$SYS/broker"), "imqtt.d.=24SYS.broker");
    assert_string_equal(subj("a/$b"), "imqtt.m.a.=24b");
    assert_string_equal(subj("\xc3\xa9t\xc3\xa9"), "imqtt.m.=C3=A9t=C3=A9");
    assert_string_equal(subj("tab\there"), "imqtt.m.tab=09here");
    assert_string_equal(subj("a+b/c#"), "imqtt.m.a=2Bb.c=23");
    assert_string_equal(subj("u@example.com"), "imqtt.m.u=40example=2Ecom");
    assert_string_equal(subj("_-"), "imqtt.m._-");
}

static void test_every_byte(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        uint8_t one[1] = {(uint8_t)b};
        uint8_t three[5] = {'x', (uint8_t)b, 'y', '/', (uint8_t)b};
        if (b != '/' && b != '+' && b != '#')
            assert_round_trip(one, 1);
        assert_round_trip(three, 3);
        if (b != '+' && b != '#')
            assert_round_trip(three, 5);
    }
    /* a long topic with every byte but '/' */
    uint8_t all[300];
    size_t n = 0;
    for (int b = 0; b < 256; b++)
        if (b != '/')
            all[n++] = (uint8_t)b;
    assert_round_trip(all, n);
    const char *odd[] = {"/", "//", "a/",  "/a",    "$",       "$/",
                         "=", "==", "=2E", "a/=/b", "$SYS/#x", "++/##"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
        assert_round_trip((const uint8_t *)odd[i], strlen(odd[i]));
}

static void test_name_refusals(void **state)
{
    (void)state;
    char s[64];
    assert_int_equal(cluster_topic_to_subject(P, str(""), s, sizeof s),
                     IMQTT_ETOPIC);
    assert_int_equal(cluster_topic_to_subject(P, str("a/+"), s, sizeof s),
                     IMQTT_ETOPIC);
    assert_int_equal(cluster_topic_to_subject(P, str("#"), s, sizeof s),
                     IMQTT_ETOPIC);
    /* room: exactly enough and one less */
    assert_int_equal(cluster_topic_to_subject(P, str("a.b"), s, 14), 13);
    assert_string_equal(s, "imqtt.m.a=2Eb");
    assert_int_equal(cluster_topic_to_subject(P, str("a.b"), s, 13),
                     IMQTT_ENOSPACE);
    assert_int_equal(cluster_topic_to_subject(P, str("a"), s, 0),
                     IMQTT_ENOSPACE);
    /* the documented capacity is always enough */
    uint8_t worst[200];
    memset(worst, '/', sizeof worst);
    char big[CLUSTER_SUBJECT_CAP(5, 200)];
    assert_true(cluster_topic_to_subject(P, (mqtt_str){worst, 200}, big,
                                         sizeof big) > 0);
    memset(worst, 0xff, sizeof worst);
    assert_true(cluster_topic_to_subject(P, (mqtt_str){worst, 200}, big,
                                         sizeof big) > 0);
}

static int dec(const char *s)
{
    uint8_t out[256];
    return cluster_subject_to_topic(P, s, strlen(s), out, sizeof out);
}

static void test_decode_refusals(void **state)
{
    (void)state;
    assert_int_equal(dec("imqtt.m.a.b"), 3);
    assert_int_equal(dec("imqtt.m.=.="), 1);          /* "/" */
    assert_int_equal(dec("imqtt.m.="), IMQTT_ETOPIC); /* "" is no topic */
    const char *bad[] = {
        "imqtt.m.a.*",    /* wildcard */
        "imqtt.m.>",      /* wildcard */
        "imqtt.m.=41",    /* 'A' escaped: not canonical */
        "imqtt.m.=2e",    /* lower-case hex */
        "imqtt.m.=2",     /* short escape */
        "imqtt.m.a=",     /* escape at the end */
        "imqtt.m.==",     /* '=' must be =3D */
        "imqtt.m.a..b",   /* empty token */
        "imqtt.m.a.",     /* empty last token */
        "imqtt.m.",       /* no level */
        "imqtt.m",        /* no namespace end */
        "imqtt.d.a",      /* '$' namespace for a topic without '$' */
        "imqtt.m.=24SYS", /* a '$' topic outside its namespace */
        "imqtt.x.a",      /* unknown namespace */
        "other.m.a",      /* another prefix */
        "imqttx.m.a",     /* prefix is a whole token */
        "imqtt.m.a b",    /* whitespace */
        "imqtt.m.a@b",    /* outside the alphabet */
        "imqtt.m.a.=2B",  /* a "+" level: a filter, not a name */
        "imqtt.m.=23",    /* a "#" level */
        "imqtt.m.a=2Fb",  /* an escaped '/': "a.b" is its spelling */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (dec(bad[i]) != IMQTT_ETOPIC)
            fail_msg("accepted %s", bad[i]);
    }
    uint8_t small[2];
    assert_int_equal(cluster_subject_to_topic(P, "imqtt.m.abc", 11, small, 2),
                     IMQTT_ENOSPACE);
}

static void test_filters(void **state)
{
    (void)state;
    char s[256];
    size_t parent;
    struct {
        const char *f, *subj, *parent;
    } v[] = {
        {"+", "imqtt.m.*", NULL},
        {"#", "imqtt.m.>", NULL},
        {"a/#", "imqtt.m.a.>", "imqtt.m.a"},
        {"+/#", "imqtt.m.*.>", "imqtt.m.*"},
        {"a/+/c", "imqtt.m.a.*.c", NULL},
        {"/#", "imqtt.m.=.>", "imqtt.m.="},
        {"$SYS/#", "imqtt.d.=24SYS.>", "imqtt.d.=24SYS"},
        {"$SYS/+/x", "imqtt.d.=24SYS.*.x", NULL},
        {"a.b/*/>", "imqtt.m.a=2Eb.=2A.=3E", NULL},
        {"a+/#b", "imqtt.m.a=2B.=23b", NULL},
        {"a/b", "imqtt.m.a.b", NULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        int n = cluster_filter_to_subject(P, str(v[i].f), s, sizeof s, &parent);
        assert_int_equal(n, (int)strlen(v[i].subj));
        assert_string_equal(s, v[i].subj);
        if (v[i].parent) {
            assert_int_equal(parent, strlen(v[i].parent));
            assert_memory_equal(s, v[i].parent, parent);
        } else {
            assert_int_equal(parent, 0);
        }
    }
    assert_int_equal(
        cluster_filter_to_subject(P, str("#/a"), s, sizeof s, &parent),
        IMQTT_EFILTER);
    assert_int_equal(
        cluster_filter_to_subject(P, str(""), s, sizeof s, &parent),
        IMQTT_EFILTER);
    assert_int_equal(cluster_filter_to_subject(P, str("a/#"), s, 11, &parent),
                     IMQTT_ENOSPACE);
    assert_int_equal(parent, 0);
}

/* Whether any subject of filter f matches the subject of topic t. */
static bool mapped_match(const char *f, const char *t)
{
    char fs[256], ts[256];
    size_t parent;
    assert_true(cluster_filter_to_subject(P, str(f), fs, sizeof fs, &parent) >
                0);
    assert_true(cluster_topic_to_subject(P, str(t), ts, sizeof ts) > 0);
    if (cluster_subject_match(fs, ts))
        return true;
    if (parent > 0) {
        fs[parent] = '\0';
        return cluster_subject_match(fs, ts);
    }
    return false;
}

static void test_wildcard_semantics(void **state)
{
    (void)state;
    const char *filters[] = {
        "#",   "+",  "+/+", "+/#",    "a/#",    "a/+",  "a/+/c", "a/b",   "a",
        "/#",  "/+", "+/",  "$SYS/#", "$SYS/+", "$SYS", "+/b/#", "a.b/#", "a/*",
        "a/>", "*",  ">",   "a b/#",  "$share", "=/#",  "a//#",  "+/+/+",
    };
    const char *topics[] = {
        "a",    "a/b",    "a/b/c",    "a/x/c", "/",      "/a",  "a/",
        "$SYS", "$SYS/x", "$SYS/x/y", "a.b",   "a.b/c",  "a/*", "a/>",
        "*",    ">",      "a b/c",    "a",     "$share", "=",   "=/x",
        "a//b", "b/b/b",  "x/b",      "x/b/y", "a/b.c",
    };
    int matched = 0;
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
        assert_int_equal(mqtt_topic_filter_check(str(filters[i]), NULL), 0);
        for (size_t j = 0; j < sizeof topics / sizeof *topics; j++) {
            bool want = mqtt_topic_match(str(filters[i]), str(topics[j]));
            bool got = mapped_match(filters[i], topics[j]);
            if (want != got)
                fail_msg("filter '%s' topic '%s': mqtt %d nats %d", filters[i],
                         topics[j], want, got);
            matched += want;
        }
    }
    assert_true(matched > 40); /* the vectors do exercise matches */
    /* the injections of row 25: none of these may cross */
    assert_false(mapped_match("a/b", "a.b"));
    assert_false(mapped_match("a/+", "a/b/c"));
    assert_false(mapped_match("a/b", "a/*"));
    assert_false(mapped_match("a/*", "a/b"));
    assert_false(mapped_match("a/>", "a/b/c"));
    assert_false(mapped_match("#", "$SYS/x"));
    assert_false(mapped_match("+/x", "$SYS/x"));
}

static void test_nats_match(void **state)
{
    (void)state;
    assert_true(cluster_subject_match("a.b", "a.b"));
    assert_false(cluster_subject_match("a.b", "a.bc"));
    assert_false(cluster_subject_match("a.b", "a.b.c"));
    assert_true(cluster_subject_match("a.*", "a.b"));
    assert_false(cluster_subject_match("a.*", "a.b.c"));
    assert_false(cluster_subject_match("a.*", "a"));
    assert_true(cluster_subject_match("a.>", "a.b"));
    assert_true(cluster_subject_match("a.>", "a.b.c"));
    assert_false(cluster_subject_match("a.>", "a"));
    assert_true(cluster_subject_match("*.>", "a.b"));
    assert_false(cluster_subject_match("*.>", "a"));
    assert_true(cluster_subject_match(">", "a"));
    assert_false(cluster_subject_match("a.b*", "a.bc"));
    assert_false(cluster_subject_match("a.>x", "a.b"));
}

static void test_tokens_and_keys(void **state)
{
    (void)state;
    char k[128];
    uint8_t back[64];
    assert_int_equal(cluster_client_key(str("alice@phone"), k, sizeof k), 13);
    assert_string_equal(k, "alice=40phone");
    assert_int_equal(cluster_client_key(str("a.b/c"), k, sizeof k), 9);
    assert_string_equal(k, "a=2Eb=2Fc");
    assert_int_equal(cluster_client_key(str(""), k, sizeof k), 1);
    assert_string_equal(k, "=");
    assert_int_equal(cluster_token_decode("=", 1, back, sizeof back), 0);
    assert_int_equal(
        cluster_token_decode("alice=40phone", 13, back, sizeof back), 11);
    assert_memory_equal(back, "alice@phone", 11);
    assert_int_equal(cluster_token_decode("", 0, back, sizeof back),
                     IMQTT_EINVAL);
    assert_int_equal(cluster_token_decode("a.b", 3, back, sizeof back),
                     IMQTT_EINVAL);
    assert_int_equal(cluster_token_decode("abc", 3, back, 2), IMQTT_ENOSPACE);
    /* every byte: the key alphabet of NATS KV, and a round trip */
    for (int b = 0; b < 256; b++) {
        uint8_t id[3] = {'u', (uint8_t)b, 'v'};
        int n = cluster_token_encode(id, 3, k, sizeof k);
        assert_true(n >= 3);
        for (int i = 0; i < n; i++)
            assert_non_null(strchr("-_=ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz0123456789",
                                   k[i]));
        assert_int_equal(cluster_token_decode(k, (size_t)n, back, sizeof back),
                         3);
        assert_memory_equal(back, id, 3);
    }
}

static void test_prefix(void **state)
{
    (void)state;
    assert_int_equal(cluster_prefix_check("imqtt"), 0);
    assert_int_equal(cluster_prefix_check("prod.imqtt-1"), 0);
    assert_int_equal(cluster_prefix_check(""), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check(NULL), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check(".a"), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check("a."), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check("a..b"), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check("a.*"), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check("a >"), IMQTT_ECONFIG);
    assert_int_equal(cluster_prefix_check("a=b"), IMQTT_ECONFIG);
    char longp[CLUSTER_PREFIX_MAX + 2];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(cluster_prefix_check(longp), IMQTT_ECONFIG);
    longp[CLUSTER_PREFIX_MAX] = '\0';
    assert_int_equal(cluster_prefix_check(longp), 0);
    /* another prefix gives another subject space */
    char s[64];
    assert_true(cluster_topic_to_subject("t2", str("a"), s, sizeof s) > 0);
    assert_string_equal(s, "t2.m.a");
    uint8_t out[8];
    assert_int_equal(cluster_subject_to_topic(P, s, strlen(s), out, 8),
                     IMQTT_ETOPIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_name_refusals),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_wildcard_semantics),
        cmocka_unit_test(test_nats_match),
        cmocka_unit_test(test_tokens_and_keys),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
