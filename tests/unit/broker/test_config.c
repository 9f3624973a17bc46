/* Config loader: defaults, a full valid file, one test per kind of error
 * (each message must name the offending key), the fail-closed ACL rules of
 * BAD_INPUTS row 12, and the log line format the config's level feeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_cluster.h"
#include "config_push.h"
#include "errors.h"

#define S(lit) mqtt_str_from((lit), strlen(lit))

static const acl_identity anon = {{(const uint8_t *)"c", 1}, {NULL, 0}};

static int parse(const char *json, imqtt_config *c, char *err, size_t len)
{
    return config_parse(json, strlen(json), c, err, len);
}

/* Parsing must fail with IMQTT_ECONFIG and a message containing `want`. */
static void expect_error(const char *json, const char *want)
{
    imqtt_config c;
    char err[256] = "";
    int rc = parse(json, &c, err, sizeof(err));
    if (rc != IMQTT_ECONFIG || strstr(err, want) == NULL)
        fail_msg("%s\n  rc %d, message \"%s\", want \"%s\"", json, rc, err,
                 want);
    assert_null(c.listeners);
    assert_null(c.acl);
    config_free(&c); /* harmless on a failed parse */
}

static void test_defaults_from_empty_object(void **state)
{
    (void)state;
    imqtt_config c;
    char err[128];
    assert_int_equal(parse(" {} ", &c, err, sizeof(err)), 0);
    assert_int_equal(c.listener_count, 1);
    assert_string_equal(c.listeners[0].bind, "0.0.0.0");
    assert_int_equal(c.listeners[0].port, 1883);
    assert_int_equal(c.listeners[0].max_connections, 0);
    assert_int_equal(c.max_connections, 0);
    assert_int_equal(c.max_inflight_messages, 1024);
    assert_int_equal(c.max_queued_messages, 1000);
    assert_int_equal(c.max_packet_size, 1048576);
    assert_int_equal(c.max_keepalive, 0);
    assert_true(c.retain_available);
    assert_int_equal(c.topic_alias_maximum, 10);
    assert_int_equal(c.max_session_expiry, UINT32_MAX);
    assert_int_equal(c.max_topic_levels, 128);
    assert_int_equal(c.max_topic_length, 65535);
    /* Bounded at the defaults (issue 15). */
    assert_int_equal(c.max_subscriptions, 10000);
    assert_int_equal(c.max_queued_bytes, 64ull << 20);
    assert_int_equal(c.max_retained_messages, 1000000);
    assert_int_equal(c.max_retained_bytes, 256ull << 20);
    assert_int_equal(c.im_max_retained_messages, 100);
    assert_int_equal(c.im_max_retained_bytes, 1u << 20);
    assert_int_equal(c.output_buffer, 1u << 20);
    assert_int_equal(c.stall_timeout, 60);
    assert_int_equal(c.max_pending_acks, 4096);
    assert_int_equal(c.log_level, LOG_INFO);
    /* No "acl" at all: the documented anonymous default, allow-all. */
    assert_non_null(c.acl);
    assert_int_equal(acl_rule_count(c.acl), 0);
    assert_true(acl_check(c.acl, &anon, ACL_PUBLISH, S("a/b")));
    config_free(&c);
    config_free(&c); /* idempotent */

    imqtt_config d;
    assert_int_equal(config_defaults(&d), 0);
    assert_int_equal(d.listener_count, 1);
    assert_true(acl_check(d.acl, &anon, ACL_SUBSCRIBE, S("#")));
    config_free(&d);
}

static const char full_config[] =
    "{\n"
    "  \"listeners\": [ {\"bind\": \"127.0.0.1\", \"port\": 1884,\n"
    "                    \"max_connections\": 100},\n"
    "                   {\"bind\": \"::\", \"port\": 1885} ],\n"
    "  \"max_connections\": 5000,\n"
    "  \"max_inflight_messages\": 65535,\n"
    "  \"max_queued_messages\": 0,\n"
    "  \"max_packet_size\": 268435460,\n"
    "  \"max_keepalive\": 600,\n"
    "  \"retain_available\": false,\n"
    "  \"topic_alias_maximum\": 0,\n"
    "  \"max_session_expiry\": 4294967295,\n"
    "  \"max_topic_levels\": 16,\n"
    "  \"max_topic_length\": 1024,\n"
    "  \"acl\": {\"default\": \"deny\", \"rules\": [\n"
    "    {\"permission\": \"deny\", \"action\": \"subscribe\",\n"
    "     \"topic\": \"test/nosubscribe\"},\n"
    "    {\"permission\": \"allow\", \"action\": \"all\",\n"
    "     \"topic\": \"users/%u/#\"},\n"
    "    {\"permission\": \"allow\", \"action\": \"publish\",\n"
    "     \"topic\": \"test/#\"} ]},\n"
    "  \"log\": {\"level\": \"debug\"}\n"
    "}\n";

static void test_full_config(void **state)
{
    (void)state;
    imqtt_config c;
    char err[128] = "";
    assert_int_equal(parse(full_config, &c, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(c.listener_count, 2);
    assert_string_equal(c.listeners[0].bind, "127.0.0.1");
    assert_int_equal(c.listeners[0].port, 1884);
    assert_int_equal(c.listeners[0].max_connections, 100);
    assert_string_equal(c.listeners[1].bind, "::");
    assert_int_equal(c.listeners[1].port, 1885);
    assert_int_equal(c.listeners[1].max_connections, 0);
    assert_int_equal(c.max_connections, 5000);
    assert_int_equal(c.max_inflight_messages, 65535);
    assert_int_equal(c.max_queued_messages, 0);
    assert_int_equal(c.max_packet_size, 268435460);
    assert_int_equal(c.max_keepalive, 600);
    assert_false(c.retain_available);
    assert_int_equal(c.topic_alias_maximum, 0);
    assert_int_equal(c.max_session_expiry, 4294967295u);
    assert_int_equal(c.max_topic_levels, 16);
    assert_int_equal(c.max_topic_length, 1024);
    assert_int_equal(c.log_level, LOG_DEBUG);

    assert_int_equal(acl_rule_count(c.acl), 3);
    acl_identity bob = {S("bob@pc"), S("bob")};
    assert_false(acl_check(c.acl, &bob, ACL_SUBSCRIBE, S("test/nosubscribe")));
    assert_true(acl_check(c.acl, &bob, ACL_PUBLISH, S("test/nosubscribe")));
    assert_true(acl_check(c.acl, &bob, ACL_SUBSCRIBE, S("users/bob/#")));
    assert_false(acl_check(c.acl, &bob, ACL_SUBSCRIBE, S("users/amy/#")));
    assert_false(acl_check(c.acl, &bob, ACL_SUBSCRIBE, S("test/x")));
    config_free(&c);
}

static void test_acl_defaults(void **state)
{
    (void)state;
    imqtt_config c;
    char err[128];
    /* "acl" present without "default": deny (fail closed). */
    assert_int_equal(parse("{\"acl\": {}}", &c, err, sizeof(err)), 0);
    assert_false(acl_check(c.acl, &anon, ACL_PUBLISH, S("a")));
    config_free(&c);
    assert_int_equal(parse("{\"acl\": {\"rules\": []}}", &c, err, 128), 0);
    assert_false(acl_check(c.acl, &anon, ACL_SUBSCRIBE, S("a")));
    config_free(&c);
    assert_int_equal(parse("{\"acl\": {\"default\": \"allow\"}}", &c, err, 128),
                     0);
    assert_true(acl_check(c.acl, &anon, ACL_SUBSCRIBE, S("a")));
    config_free(&c);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("{\"listners\": []}", "unknown key \"listners\"");
    expect_error("{\"listeners\": [{\"port\": 1}, {\"prot\": 2}]}",
                 "unknown key \"listeners[1].prot\"");
    expect_error("{\"acl\": {\"defualt\": \"deny\"}}",
                 "unknown key \"acl.defualt\"");
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"allow\", "
                 "\"action\": \"all\", \"topic\": \"a\", \"qos\": 1}]}}",
                 "unknown key \"acl.rules[0].qos\"");
    expect_error("{\"log\": {\"file\": \"x\"}}", "unknown key \"log.file\"");
    /* cJSON's own lookup ignores case; ours must not. */
    expect_error("{\"Max_Connections\": 1}", "unknown key \"Max_Connections\"");
    expect_error("{\"max_connections\": 1, \"max_connections\": 2}",
                 "duplicate key \"max_connections\"");
    expect_error("{\"acl\": {\"default\": \"deny\"}, \"acl\": {}}",
                 "duplicate key \"acl\"");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("[]", "top level: expected an object");
    expect_error("{\"listeners\": {}}", "listeners: expected an array");
    expect_error("{\"listeners\": [1]}", "listeners[0]: expected an object");
    expect_error("{\"listeners\": [{\"port\": \"1883\"}]}",
                 "listeners[0].port: expected an integer 1..65535");
    expect_error("{\"listeners\": [{\"bind\": 1}]}",
                 "listeners[0].bind: expected an IPv4 or IPv6 address");
    expect_error("{\"listeners\": [{\"bind\": \"localhost\"}]}",
                 "listeners[0].bind: expected an IPv4 or IPv6 address");
    expect_error("{\"max_inflight_messages\": 2.5}",
                 "max_inflight_messages: expected an integer 1..65535");
    expect_error("{\"max_queued_messages\": null}",
                 "max_queued_messages: expected an integer 0..4294967295");
    expect_error("{\"retain_available\": 1}",
                 "retain_available: expected true or false");
    expect_error("{\"acl\": []}", "acl: expected an object");
    expect_error("{\"acl\": {\"default\": true}}",
                 "acl.default: expected \"allow\" or \"deny\"");
    expect_error("{\"acl\": {\"rules\": {}}}", "acl.rules: expected an array");
    expect_error("{\"log\": {\"level\": \"verbose\"}}",
                 "log.level: expected \"error\"");
    expect_error("{\"log\": \"info\"}", "log: expected an object");
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_error("{\"listeners\": [{\"port\": 0}]}",
                 "listeners[0].port: expected an integer 1..65535");
    expect_error("{\"listeners\": [{}, {\"port\": 65536}]}",
                 "listeners[1].port: expected an integer 1..65535");
    expect_error("{\"max_connections\": -1}",
                 "max_connections: expected an integer 0..4294967295");
    expect_error("{\"max_inflight_messages\": 0}",
                 "max_inflight_messages: expected an integer 1..65535");
    expect_error("{\"max_packet_size\": 15}",
                 "max_packet_size: expected an integer 16..268435460");
    expect_error("{\"max_packet_size\": 268435461}",
                 "max_packet_size: expected an integer 16..268435460");
    expect_error("{\"max_keepalive\": 65536}",
                 "max_keepalive: expected an integer 0..65535");
    expect_error("{\"topic_alias_maximum\": 1e6}",
                 "topic_alias_maximum: expected an integer 0..65535");
    expect_error("{\"max_session_expiry\": 4294967296}",
                 "max_session_expiry: expected an integer 0..4294967295");
    expect_error("{\"max_topic_levels\": 0}",
                 "max_topic_levels: expected an integer 1..65535");
    expect_error("{\"max_topic_length\": 65536}",
                 "max_topic_length: expected an integer 1..65535");
    expect_error("{\"max_topic_length\": 1e400}",
                 "max_topic_length: expected an integer 1..65535");
    expect_error("{\"limits\": {\"output_buffer\": 1024}}",
                 "limits.output_buffer: expected an integer 65536..1073741824");
    expect_error("{\"limits\": {\"stall_timeout\": 0}}",
                 "limits.stall_timeout: expected an integer 1..86400");
    expect_error("{\"limits\": {\"max_pending_acks\": 1}}",
                 "limits.max_pending_acks: expected an integer 64..16777216");
    expect_error(
        "{\"max_retained_bytes\": -1}",
        "max_retained_bytes: expected an integer number of bytes >= 0");
    expect_error("{\"im\": {\"max_retained_messages\": -1}}",
                 "im.max_retained_messages: expected an integer 0..4294967295");
}

static void test_listener_errors(void **state)
{
    (void)state;
    expect_error("{\"listeners\": []}", "listeners: must not be empty");
    expect_error("{\"listeners\": [{\"port\": 1}, {\"port\": 1}]}",
                 "listeners[1]: same bind and port as listeners[0]");
}

/* PROXY protocol keys of a listener (BAD_INPUTS row 26) */
static void test_listener_proxy(void **state)
{
    (void)state;
    imqtt_config c;
    char err[256] = "";
    const char *ok =
        "{\"listeners\": [{\"port\": 1883, \"proxy_protocol\": true,"
        " \"proxy_from\": [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\"]},"
        " {\"port\": 1884}]}";
    assert_int_equal(parse(ok, &c, err, sizeof(err)), 0);
    assert_true(c.listeners[0].proxy_protocol);
    assert_int_equal(c.listeners[0].proxy_from_count, 3);
    assert_false(c.listeners[1].proxy_protocol);
    assert_int_equal(c.listeners[1].proxy_from_count, 0);
    assert_null(c.listeners[1].proxy_from);
    assert_true(config_listener_proxy_same(&c.listeners[0], &c.listeners[0]));
    assert_false(config_listener_proxy_same(&c.listeners[0], &c.listeners[1]));
    config_free(&c);

    expect_error("{\"listeners\": [{\"proxy_protocol\": true}]}",
                 "listeners[0].proxy_from: required with proxy_protocol");
    expect_error("{\"listeners\": [{\"proxy_from\": [\"127.0.0.1\"]}]}",
                 "listeners[0].proxy_from: only with \"proxy_protocol\": true");
    expect_error(
        "{\"listeners\": [{\"proxy_protocol\": true, \"proxy_from\": []}]}",
        "listeners[0].proxy_from: expected an array of 1 to 64");
    expect_error(
        "{\"listeners\": [{\"proxy_protocol\": true, \"proxy_from\": \"x\"}]}",
        "listeners[0].proxy_from: expected an array");
    expect_error(
        "{\"listeners\": [{\"proxy_protocol\": true,"
        " \"proxy_from\": [\"127.0.0.1\", \"10.1.0.0/8\"]}]}",
        "listeners[0].proxy_from[1]: expected an IPv4 or IPv6 address");
    expect_error("{\"listeners\": [{\"proxy_protocol\": true,"
                 " \"proxy_from\": [\"lb.example\"]}]}",
                 "listeners[0].proxy_from[0]: expected");
    expect_error("{\"listeners\": [{\"proxy_protocol\": 1,"
                 " \"proxy_from\": [\"127.0.0.1\"]}]}",
                 "listeners[0].proxy_protocol: expected true or false");
}

/* The "cluster" section (docs/config.md, docs/cluster.md) */
static void test_cluster(void **state)
{
    (void)state;
    imqtt_config c;
    char err[256] = "";
    assert_int_equal(parse("{}", &c, err, sizeof(err)), 0);
    assert_null(c.cluster); /* absent: the single node */
    config_free(&c);

    const char *min =
        "{\"cluster\": {\"nats_urls\": [\"nats://10.0.0.1:4222\"],"
        " \"node\": \"n1\"}}";
    assert_int_equal(parse(min, &c, err, sizeof(err)), 0);
    assert_non_null(c.cluster);
    assert_int_equal(c.cluster->nurls, 1);
    assert_string_equal(c.cluster->urls[0], "nats://10.0.0.1:4222");
    assert_string_equal(c.cluster->node, "n1");
    assert_string_equal(c.cluster->subject_prefix, "imqtt");
    assert_string_equal(c.cluster->stream, "IMQTT_MSGS");
    assert_string_equal(c.cluster->sessions_bucket, "imqtt_sessions");
    assert_string_equal(c.cluster->retained_bucket, "imqtt_retained");
    assert_int_equal(c.cluster->replicas, 3);
    assert_int_equal(c.cluster->max_age, 604800);
    assert_int_equal(c.cluster->max_bytes, 0);
    assert_int_equal(c.cluster->connect_timeout_ms, 2000);
    assert_int_equal(c.cluster->startup_wait_ms, 15000);
    assert_null(c.cluster->credentials_file);
    config_free(&c);

    const char *full =
        "{\"cluster\": {\"nats_urls\": [\"nats://a:4222\", \"tls://b:4222\", "
        "\"c:4222\"],"
        " \"node\": \"node_2-x\", \"subject_prefix\": \"prod.im\","
        " \"stream\": \"MSGS\", \"sessions_bucket\": \"s\", "
        "\"retained_bucket\": \"r\","
        " \"replicas\": 5, \"max_age\": 3600, \"max_bytes\": 1e9,"
        " \"connect_timeout_ms\": 500}}";
    assert_int_equal(parse(full, &c, err, sizeof(err)), 0);
    assert_int_equal(c.cluster->nurls, 3);
    assert_string_equal(c.cluster->subject_prefix, "prod.im");
    assert_int_equal(c.cluster->replicas, 5);
    assert_int_equal(c.cluster->max_age, 3600);
    assert_int_equal(c.cluster->max_bytes, 1000000000);
    config_free(&c);

#define CL(body) "{\"cluster\": {" body "}}"
#define URL      "\"nats_urls\": [\"nats://a:1\"]"
    expect_error(CL("\"node\": \"n\""), "cluster.nats_urls: required");
    expect_error(CL(URL), "cluster.node: required");
    expect_error(CL("\"nats_urls\": [], \"node\": \"n\""),
                 "cluster.nats_urls: expected an array of 1 to 16");
    expect_error(CL("\"nats_urls\": [\"http://a:1\"], \"node\": \"n\""),
                 "cluster.nats_urls[0]: expected \"nats://host:port\"");
    expect_error(
        CL("\"nats_urls\": [\"nats://a:1,nats://b:2\"], \"node\": \"n\""),
        "cluster.nats_urls[0]");
    expect_error(CL("\"nats_urls\": [\"nats://a\"], \"node\": \"n\""),
                 "cluster.nats_urls[0]");
    expect_error(CL(URL ", \"node\": \"n@1\""),
                 "cluster.node: expected 1 to 64");
    expect_error(CL(URL ", \"node\": \"\""), "cluster.node: expected 1 to 64");
    expect_error(CL(URL ", \"node\": \"n\", \"subject_prefix\": \"a.*\""),
                 "cluster.subject_prefix: expected tokens");
    expect_error(CL(URL ", \"node\": \"n\", \"stream\": \"a.b\""),
                 "cluster.stream: expected 1 to 64");
    expect_error(CL(URL ", \"node\": \"n\", \"sessions_bucket\": \"a b\""),
                 "cluster.sessions_bucket: expected");
    expect_error(CL(URL ", \"node\": \"n\", \"replicas\": 0"),
                 "cluster.replicas: expected an integer 1..5");
    expect_error(CL(URL ", \"node\": \"n\", \"replicas\": 6"),
                 "cluster.replicas: expected an integer 1..5");
    expect_error(CL(URL ", \"node\": \"n\", \"max_age\": 0"),
                 "cluster.max_age");
    expect_error(CL(URL ", \"node\": \"n\", \"max_bytes\": -1"),
                 "cluster.max_bytes");
    expect_error(CL(URL ", \"node\": \"n\", \"connect_timeout_ms\": 10"),
                 "cluster.connect_timeout_ms");
    expect_error(CL(URL ", \"node\": \"n\", \"startup_wait_ms\": 600001"),
                 "cluster.startup_wait_ms: expected an integer 0..600000");
    expect_error(
        CL(URL
           ", \"node\": \"n\", \"credentials_file\": \"/nonexistent/x.creds\""),
        "cluster.credentials_file: cannot read /nonexistent/x.creds");
    expect_error(
        CL(URL
           ", \"node\": \"n\", \"tls\": {\"ca_file\": \"/nonexistent/ca\"}"),
        "cluster.tls.ca_file: cannot read");
    expect_error(
        CL(URL ", \"node\": \"n\", \"tls\": {\"cert_file\": \"/dev/null\"}"),
        "cluster.tls: \"cert_file\" and \"key_file\" go together");
    expect_error(CL(URL ", \"node\": \"n\", \"tls\": {\"verify\": true}"),
                 "cluster.tls");
    expect_error(CL(URL ", \"node\": \"n\", \"nodes\": 3"), "cluster");
    expect_error("{\"cluster\": true}", "cluster");
#undef CL
#undef URL
}

/* im.push (docs/im.md, Offline push): absent, defaults, every key, and
 * errors that name the key. */
static void test_push(void **state)
{
    (void)state;
    imqtt_config c;
    char err[256] = "";
    assert_int_equal(parse("{}", &c, err, sizeof(err)), 0);
    assert_null(c.push);
    config_free(&c);

    assert_int_equal(parse("{\"im\": {\"push\": {}}}", &c, err, sizeof(err)),
                     0);
    assert_non_null(c.push);
    assert_int_equal(c.push->mode, PUSH_PER_USER);
    assert_int_equal(c.push->subscriber_count, 0);
    assert_false(c.push->include_payload);
    assert_null(c.push->webhook);
    config_free(&c);

    const char *full =
        "{\"im\": {\"push\": {\"mode\": \"device\", \"subscribers\": "
        "[\"pushsvc\", \"ops\"], \"include_payload\": true, \"webhook\": "
        "{\"url\": \"https://push.example.com/hook\", \"bearer\": \"t0k\", "
        "\"batch_size\": 50, \"batch_interval_ms\": 0, \"timeout_ms\": 1000, "
        "\"retries\": 0, \"retry_backoff_ms\": 10, \"queue_limit\": 5, "
        "\"concurrency\": 8, \"include_payload\": true}}}}";
    assert_int_equal(parse(full, &c, err, sizeof(err)), 0);
    const push_config *pc = c.push;
    assert_int_equal(pc->mode, PUSH_PER_DEVICE);
    assert_int_equal(pc->subscriber_count, 2);
    assert_string_equal(pc->subscribers[1], "ops");
    assert_true(pc->include_payload);
    const push_webhook_config *w = pc->webhook;
    assert_non_null(w);
    assert_string_equal(w->url, "https://push.example.com/hook");
    assert_string_equal(w->bearer, "t0k");
    assert_int_equal(w->batch_size, 50);
    assert_int_equal(w->batch_interval_ms, 0);
    assert_int_equal(w->timeout_ms, 1000);
    assert_int_equal(w->retries, 0);
    assert_int_equal(w->retry_backoff_ms, 10);
    assert_int_equal(w->queue_limit, 5);
    assert_int_equal(w->concurrency, 8);
    assert_true(w->include_payload);
    config_free(&c);

    assert_int_equal(parse("{\"im\": {\"push\": {\"webhook\": {\"url\": "
                           "\"http://127.0.0.1:8080/x\"}}}}",
                           &c, err, sizeof(err)),
                     0);
    w = c.push->webhook;
    assert_null(w->bearer);
    assert_int_equal(w->batch_size, 100);
    assert_int_equal(w->batch_interval_ms, 100);
    assert_int_equal(w->timeout_ms, 5000);
    assert_int_equal(w->retries, 3);
    assert_int_equal(w->retry_backoff_ms, 500);
    assert_int_equal(w->queue_limit, 10000);
    assert_int_equal(w->concurrency, 2);
    assert_false(w->include_payload);
    config_free(&c);

    expect_error("{\"im\": {\"push\": {\"mode\": \"all\"}}}", "im.push.mode");
    expect_error("{\"im\": {\"push\": {\"nope\": 1}}}", "nope");
    expect_error("{\"im\": {\"push\": {\"subscribers\": [\"a/b\"]}}}",
                 "im.push.subscribers[0]");
    expect_error("{\"im\": {\"push\": {\"subscribers\": \"a\"}}}",
                 "im.push.subscribers");
    expect_error("{\"im\": {\"push\": {\"webhook\": {}}}}",
                 "im.push.webhook.url");
    expect_error("{\"im\": {\"push\": {\"webhook\": {\"url\": "
                 "\"ftp://x/y\"}}}}",
                 "im.push.webhook.url");
    expect_error("{\"im\": {\"push\": {\"webhook\": {\"url\": "
                 "\"http://a b/\"}}}}",
                 "im.push.webhook.url");
    expect_error("{\"im\": {\"push\": {\"webhook\": {\"url\": \"http://a/\", "
                 "\"bearer\": \"x\\ny\"}}}}",
                 "im.push.webhook.bearer");
    expect_error("{\"im\": {\"push\": {\"webhook\": {\"url\": \"http://a/\", "
                 "\"batch_size\": 0}}}}",
                 "im.push.webhook.batch_size");
    expect_error("{\"im\": {\"push\": {\"webhook\": {\"url\": \"http://a/\", "
                 "\"concurrency\": 65}}}}",
                 "im.push.webhook.concurrency");
    expect_error("{\"im\": {\"push\": {\"webhook\": {\"url\": \"http://a/\", "
                 "\"queue_limit\": 0}}}}",
                 "im.push.webhook.queue_limit");
}

static void test_bad_acl_rules(void **state)
{
    (void)state;
    expect_error("{\"acl\": {\"rules\": [1]}}",
                 "acl.rules[0]: expected an object");
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"allow\", "
                 "\"topic\": \"a\"}]}}",
                 "acl.rules[0]: missing \"action\"");
    expect_error("{\"acl\": {\"rules\": [{\"action\": \"all\", "
                 "\"topic\": \"a\"}]}}",
                 "acl.rules[0]: missing \"permission\"");
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"allow\", "
                 "\"action\": \"all\"}]}}",
                 "acl.rules[0]: missing \"topic\"");
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"grant\", "
                 "\"action\": \"all\", \"topic\": \"a\"}]}}",
                 "acl.rules[0].permission: expected \"allow\" or \"deny\"");
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"allow\", "
                 "\"action\": \"read\", \"topic\": \"a\"}]}}",
                 "acl.rules[0].action: expected \"publish\", \"subscribe\" "
                 "or \"all\"");
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"allow\", "
                 "\"action\": \"all\", \"topic\": 5}]}}",
                 "acl.rules[0].topic: expected a topic filter string");
}

static void test_invalid_rule_filter(void **state)
{
    (void)state;
    static const char *const bad[] = {"a/#/b", "a+", "", "$share/g/a", "%u#"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"acl\": {\"default\": \"allow\", \"rules\": ["
                 "{\"permission\": \"allow\", \"action\": \"all\", "
                 "\"topic\": \"ok/#\"},"
                 "{\"permission\": \"deny\", \"action\": \"all\", "
                 "\"topic\": \"%s\"}]}}",
                 bad[i]);
        expect_error(json, "acl.rules[1].topic: invalid topic filter");
    }
}

static void test_unparseable_json(void **state)
{
    (void)state;
    /* Positions as an editor shows them: line and column from 1, columns
     * in characters. */
    expect_error("", "invalid JSON at line 1, column 1");
    expect_error("{\"max_connections\": 1,}", "invalid JSON at line 1, column");
    expect_error("{\"max_connections\": 1} x",
                 "invalid JSON: unexpected data at line 1, column 24");
    expect_error("{\"a\" 1}", "invalid JSON at line 1, column 6");
    expect_error("{\n  \"a\": 1,\n  \"b\" 2\n}",
                 "invalid JSON at line 3, column 7");
    expect_error("{\"\xc3\xa9\" 1}", "invalid JSON at line 1, column 6");
    expect_error("{\"log\": {}}\n\n  ]", "unexpected data at line 3, column 3");
    /* A NUL would cut a rule topic short; refuse it whatever its form. */
    expect_error("{\"acl\": {\"rules\": [{\"permission\": \"deny\", "
                 "\"action\": \"all\", \"topic\": \"a\\u0000b\"}]}}",
                 "\\u0000 at line 1, column 71");
    imqtt_config c;
    char err[128];
    const char nul[] = "{}\0{}";
    assert_int_equal(config_parse(nul, sizeof(nul) - 1, &c, err, sizeof(err)),
                     IMQTT_ECONFIG);
    assert_non_null(strstr(err, "NUL byte at line 1, column 3"));
    /* An escaped backslash before "u0000" is plain text. */
    assert_int_equal(
        parse("{\"log\": {\"level\": \"info\"}, \"acl\": {\"rules\": "
              "[{\"permission\": \"deny\", \"action\": \"all\", "
              "\"topic\": \"a\\\\u0000\"}]}}",
              &c, err, sizeof(err)),
        0);
    config_free(&c);
    /* Small or absent error buffers are fine. */
    assert_int_equal(parse("{", &c, NULL, 0), IMQTT_ECONFIG);
    char tiny[4];
    assert_int_equal(parse("{\"x\": 1}", &c, tiny, sizeof(tiny)),
                     IMQTT_ECONFIG);
    assert_string_equal(tiny, "unk");
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/imqtt-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    imqtt_config c;
    char err[256];

    write_file(path, full_config, strlen(full_config));
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c.listener_count, 2);
    config_free(&c);

    write_file(path, "{\"port\": 1}", 11);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), IMQTT_ECONFIG);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "unknown key \"port\""));

    /* Just over 1 MiB of otherwise valid JSON is refused unread. */
    size_t big = 1024 * 1024 + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    write_file(path, text, big);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), IMQTT_ECONFIG);
    assert_non_null(strstr(err, "larger than 1048576 bytes"));
    text[1] = '{'; /* exactly 1 MiB from here: accepted */
    write_file(path, text + 1, big - 1);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
    config_free(&c);
    free(text);

    unlink(path);
    assert_int_equal(config_load(path, &c, err, sizeof(err)), IMQTT_EIO);
    assert_non_null(strstr(err, "No such file"));
    assert_null(c.acl);
    assert_int_equal(config_load("/tmp", &c, err, sizeof(err)), IMQTT_EIO);
}

static void test_paho_config(void **state)
{
    (void)state;
    imqtt_config c;
    char err[256] = "";
    /* CMake compiles with absolute paths: find tests/ from this file. */
    char path[1024];
    const char *tail = strstr(__FILE__, "unit/broker/test_config.c");
    assert_non_null(tail);
    snprintf(path, sizeof(path), "%.*sinterop/paho.json",
             (int)(tail - __FILE__), __FILE__);
    int rc = config_load(path, &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(c.listener_count, 1);
    assert_int_equal(c.listeners[0].port, 1883);
    assert_int_equal(c.max_inflight_messages, 20);
    assert_int_equal(c.topic_alias_maximum, 10);
    assert_true(c.retain_available);
    assert_false(acl_check(c.acl, &anon, ACL_SUBSCRIBE, S("test/nosubscribe")));
    assert_true(acl_check(c.acl, &anon, ACL_PUBLISH, S("test/nosubscribe")));
    assert_true(acl_check(c.acl, &anon, ACL_SUBSCRIBE, S("TopicA/#")));
    assert_true(acl_check(c.acl, &anon, ACL_SUBSCRIBE, S("#")));
    config_free(&c);
}

/* Runs fn with stderr redirected to a file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
    static char out[4096];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static void log_some(void)
{
    log_set_level(LOG_INFO);
    log_info("hello %d", 42);
    log_debug("hidden");
    log_error("client \"%s\"", "evil\nFAKE line");
    log_set_level(LOG_ERROR);
    log_warn("hidden too");
}

static void log_long(void)
{
    log_set_level(LOG_INFO);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_info("%s", big);
}

static void test_log(void **state)
{
    (void)state;
    enum log_level lvl;
    assert_int_equal(log_level_parse("warn", &lvl), 0);
    assert_int_equal(lvl, LOG_WARN);
    assert_int_equal(log_level_parse("debug", &lvl), 0);
    assert_int_equal(lvl, LOG_DEBUG);
    assert_int_equal(log_level_parse("INFO", &lvl), -1);

    const char *out = capture_stderr(log_some);
    /* 2026-11-21T16:40:00.123Z INFO hello 42 */
    const char *p = out;
    for (int line = 0; line < 2; line++) {
        const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ ";
        for (size_t i = 0; pat[i]; i++, p++) {
            if (pat[i] == 'd')
                assert_true(*p >= '0' && *p <= '9');
            else
                assert_int_equal(*p, pat[i]);
        }
        const char *want =
            line == 0 ? "INFO hello 42\n" : "ERROR client \"evil?FAKE line\"\n";
        assert_memory_equal(p, want, strlen(want));
        p += strlen(want);
    }
    assert_int_equal(*p, '\0');

    out = capture_stderr(log_long);
    size_t n = strlen(out);
    assert_true(n < 2048 + 1);
    assert_memory_equal(out + n - 4, "...\n", 4);
    log_set_level(LOG_INFO);
}

/* listeners[].im_receipts, im.presence words, im.max_devices_per_user
 * (docs/im.md, Receipts, Presence, Limits) */
static void test_im_receipts_presence_devices(void **state)
{
    (void)state;
    imqtt_config c;
    char err[256] = "";
    assert_int_equal(
        parse("{\"listeners\": [{\"im\": true, \"auth\": \"anonymous\"}]}", &c,
              err, sizeof(err)),
        0);
    assert_int_equal(c.listeners[0].im_delivery, IM_DELIVERY_OFF);
    assert_false(c.listeners[0].im_read_receipts_off);
    assert_true(c.im_presence);
    assert_int_equal(c.im_presence_read, IM_PRESENCE_EVERYONE);
    assert_int_equal(c.im_max_devices, 0);
    config_free(&c);

    static const struct {
        const char *receipts;
        enum im_delivery_receipts delivery;
        bool read_off;
    } r[] = {{"{\"delivery\": true}", IM_DELIVERY_USER, false},
             {"{\"delivery\": \"device\", \"read\": false}", IM_DELIVERY_DEVICE,
              true},
             {"{\"delivery\": false, \"read\": true}", IM_DELIVERY_OFF, false},
             {"{}", IM_DELIVERY_OFF, false}};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"listeners\": [{\"im\": true, \"auth\": \"anonymous\", "
                 "\"im_receipts\": %s}]}",
                 r[i].receipts);
        assert_int_equal(parse(json, &c, err, sizeof(err)), 0);
        assert_int_equal(c.listeners[0].im_delivery, r[i].delivery);
        assert_int_equal(c.listeners[0].im_read_receipts_off, r[i].read_off);
        config_free(&c);
    }

    static const struct {
        const char *v;
        bool on;
        enum im_presence_read read;
    } p[] = {{"true", true, IM_PRESENCE_EVERYONE},
             {"\"everyone\"", true, IM_PRESENCE_EVERYONE},
             {"\"group\"", true, IM_PRESENCE_GROUP},
             {"false", false, IM_PRESENCE_EVERYONE},
             {"\"nobody\"", false, IM_PRESENCE_EVERYONE}};
    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json),
                 "{\"im\": {\"presence\": %s, \"max_devices_per_user\": "
                 "%zu}}",
                 p[i].v, i);
        assert_int_equal(parse(json, &c, err, sizeof(err)), 0);
        assert_int_equal(c.im_presence, p[i].on);
        assert_int_equal(c.im_presence_read, p[i].read);
        assert_int_equal(c.im_max_devices, i);
        config_free(&c);
    }

    expect_error("{\"listeners\": [{\"im_receipts\": {\"delivery\": 1}}]}",
                 "listeners[0].im_receipts.delivery: expected true, false or "
                 "\"device\"");
    expect_error("{\"listeners\": [{\"im_receipts\": {\"read\": \"x\"}}]}",
                 "listeners[0].im_receipts.read");
    expect_error("{\"listeners\": [{\"im_receipts\": {\"seen\": true}}]}",
                 "listeners[0].im_receipts");
    expect_error("{\"listeners\": [{\"im_receipts\": true}]}",
                 "listeners[0].im_receipts");
    expect_error("{\"im\": {\"presence\": \"friends\"}}",
                 "im.presence: expected true, false, \"everyone\", "
                 "\"group\" or \"nobody\"");
    expect_error("{\"im\": {\"max_devices_per_user\": 1000001}}",
                 "im.max_devices_per_user: expected an integer 0..1000000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_from_empty_object),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_acl_defaults),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_listener_errors),
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_bad_acl_rules),
        cmocka_unit_test(test_invalid_rule_filter),
        cmocka_unit_test(test_unparseable_json),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_paho_config),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_listener_proxy),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_im_receipts_presence_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
