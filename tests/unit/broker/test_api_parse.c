/* The backend API's pure layers (docs/api.md): http_req over http_parser
 * (pieces, chunked bodies, every bound), api_route, the body and query
 * parsers, and the "http.api" config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_json.h"
#include "api_route.h"
#include "config.h"
#include "errors.h"
#include "http_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feed s one byte at a time: the parser must not care how it is cut. */
static int feed_bytes(http_req *r, const char *s)
{
    int st = HTTP_REQ_MORE;
    for (size_t i = 0; s[i] && st == HTTP_REQ_MORE; i++)
        st = http_req_feed(r, s + i, 1);
    return st;
}

static void test_request_in_pieces(void **state)
{
    (void)state;
    const char *req = "POST /api/v1/publish?x=1 HTTP/1.1\r\nHost: h\r\n"
                      "authorization: Bearer tok\r\nContent-Type: "
                      "application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    http_req r;
    http_req_init(&r, 100);
    assert_int_equal(feed_bytes(&r, req), HTTP_REQ_DONE);
    assert_int_equal(r.method, HTTP_POST);
    assert_int_equal(r.path_len, strlen("/api/v1/publish"));
    assert_memory_equal(r.path, "/api/v1/publish", r.path_len);
    assert_int_equal(r.query_len, 3);
    assert_string_equal(r.auth, "Bearer tok");
    assert_string_equal(r.ctype, "application/json");
    assert_int_equal(r.body_len, 7);
    assert_string_equal((char *)r.body, "{\"a\":1}");
    http_req_free(&r);
}

static void test_chunked_and_limits(void **state)
{
    (void)state;
    http_req r;
    http_req_init(&r, 10);
    assert_int_equal(feed_bytes(&r, "POST /a HTTP/1.1\r\nTransfer-Encoding: "
                                    "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
                     HTTP_REQ_DONE);
    assert_string_equal((char *)r.body, "hello");
    http_req_free(&r);

    http_req_init(&r, 10);
    assert_int_equal(feed_bytes(&r, "POST /a HTTP/1.1\r\nContent-Length: 11"
                                    "\r\n\r\n"),
                     HTTP_REQ_FAIL);
    assert_int_equal(r.fail_status, 413);
    http_req_free(&r);

    http_req_init(&r, 10);
    assert_int_equal(feed_bytes(&r, "POST /a HTTP/1.1\r\nTransfer-Encoding: "
                                    "chunked\r\n\r\n8\r\n12345678\r\n8\r\n"
                                    "12345678\r\n"),
                     HTTP_REQ_FAIL);
    assert_int_equal(r.fail_status, 413);
    http_req_free(&r);

    /* Two Authorization headers: which one? */
    http_req_init(&r, 10);
    assert_int_equal(feed_bytes(&r, "GET /a HTTP/1.1\r\nAuthorization: a\r\n"
                                    "Authorization: b\r\n\r\n"),
                     HTTP_REQ_FAIL);
    assert_int_equal(r.fail_status, 400);
    http_req_free(&r);

    char big[HTTP_URL_MAX + 64];
    snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\n\r\n", HTTP_URL_MAX, 0);
    http_req_init(&r, 10);
    assert_int_equal(http_req_feed(&r, big, strlen(big)), HTTP_REQ_FAIL);
    assert_int_equal(r.fail_status, 414);
    http_req_free(&r);
}

/* A head http_parser refuses is answered at its end (400) or past 4 KiB
 * (431), as the hand-written listener did. */
static void test_bad_heads(void **state)
{
    (void)state;
    http_req r;
    http_req_init(&r, 10);
    assert_int_equal(http_req_feed(&r, "garbage\r\n", 9), HTTP_REQ_MORE);
    assert_int_equal(http_req_feed(&r, "\r\n", 2), HTTP_REQ_FAIL);
    assert_int_equal(r.fail_status, 400);
    http_req_free(&r);
    char xs[5000];
    memset(xs, 'X', sizeof(xs));
    http_req_init(&r, 10);
    assert_int_equal(http_req_feed(&r, xs, sizeof(xs)), HTTP_REQ_FAIL);
    assert_int_equal(r.fail_status, 431);
    http_req_free(&r);
    http_req_init(&r, 10);
    assert_int_equal(feed_bytes(&r, "GET / HTTP/2.0\r\n\r\n"), HTTP_REQ_FAIL);
    http_req_free(&r);
}

static void test_routes(void **state)
{
    (void)state;
    api_route rt;
    const char *p = "/api/v1/users/alice/devices/phone/messages";
    api_route_match(HTTP_POST, p, strlen(p), &rt);
    assert_int_equal(rt.ep, API_UPLINK);
    assert_true(rt.method_ok && !rt.bad_name);
    assert_string_equal(rt.user, "alice");
    assert_string_equal(rt.device, "phone");
    assert_true(api_route_is_device(rt.ep));
    api_route_match(HTTP_GET, p, strlen(p), &rt);
    assert_false(rt.method_ok);
    assert_string_equal(rt.allow, "POST");
    p = "/api/v1/users/a+b/ban";
    api_route_match(HTTP_PUT, p, strlen(p), &rt);
    assert_int_equal(rt.ep, API_BAN_USER);
    assert_true(rt.bad_name);
    const char *none[] = {
        "/api/v1/",          "/api/v1/users",
        "/api/v1/users/a",   "/api/v1/users/a/devices/b",
        "/api/v1/publish/x", "/api/v2/publish",
        "/metrics",          "/api/v1/users/a/devices/b/kick/c/d/e/f"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        api_route_match(HTTP_GET, none[i], strlen(none[i]), &rt);
        assert_int_equal(rt.ep, API_NONE);
    }
}

static int parse(const char *body, bool uplink, api_message *m)
{
    const char *why;
    return api_parse_message((const uint8_t *)body, strlen(body), uplink, m,
                             &why);
}

static void test_messages(void **state)
{
    (void)state;
    api_message m;
    assert_int_equal(parse("{\"user\":\"bob\",\"payload\":\"hi\"}", false, &m),
                     0);
    assert_string_equal(m.topic, "p2p/talk/bob");
    assert_string_equal(m.service, "system");
    assert_int_equal(m.qos, 1);
    assert_int_equal(m.payload_len, 2);
    api_message_free(&m);
    assert_int_equal(
        parse("{\"group\":\"g\",\"payload_b64\":\"AP8=\",\"qos\":0,"
              "\"service\":\"bot\",\"retain\":true}",
              false, &m),
        0);
    assert_string_equal(m.topic, "g/talk/g");
    assert_int_equal(m.payload_len, 2);
    assert_int_equal(m.payload[1], 0xff);
    assert_true(m.retain);
    api_message_free(&m);
    const char *bad[] = {"",
                         "[]",
                         "{\"user\":\"bob\"}",
                         "{\"user\":\"b b\",\"payload\":\"\"}",
                         "{\"user\":\"bob\",\"payload\":\"\",\"payload\":\"\"}",
                         "{\"user\":\"bob\",\"payload_b64\":\"AP8\"}",
                         "{\"user\":\"bob\",\"payload_b64\":\"AP 8\"}",
                         "{\"topic\":\"a/#\",\"payload\":\"\"}",
                         "{\"user\":\"bob\",\"payload\":\"\",\"qos\":1.5}",
                         "{\"user\":\"bob\",\"payload\":\"\"} x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], false, &m), IMQTT_EINVAL);
    /* The uplink takes no topic, service or retain. */
    assert_int_equal(parse("{\"topic\":\"a\",\"payload\":\"\"}", true, &m),
                     IMQTT_EINVAL);
    assert_int_equal(
        parse("{\"user\":\"b\",\"payload\":\"\",\"retain\":true}", true, &m),
        IMQTT_EINVAL);
}

static void test_revocations_bans_queries(void **state)
{
    (void)state;
    api_revocation rv;
    const char *why;
    const char *b = "{\"user\":\"alice\",\"issued_before\":1700000000}";
    assert_int_equal(
        api_parse_revocation((const uint8_t *)b, strlen(b), &rv, &why), 0);
    assert_string_equal(rv.user, "alice");
    assert_int_equal(rv.before, 1700000000);
    b = "{\"jti\":\"x\",\"issued_before\":1}";
    assert_int_equal(
        api_parse_revocation((const uint8_t *)b, strlen(b), &rv, &why),
        IMQTT_EINVAL);
    char reason[API_REASON_MAX + 1];
    assert_int_equal(api_parse_ban(NULL, 0, reason, &why), 0);
    b = "{\"reason\":\"spam\"}";
    assert_int_equal(api_parse_ban((const uint8_t *)b, strlen(b), reason, &why),
                     0);
    assert_string_equal(reason, "spam");
    im_history_req hr;
    const char *q = "peer=bob&after=5&limit=10";
    assert_int_equal(api_parse_history_query(q, strlen(q), 500, &hr, &why), 0);
    assert_string_equal(hr.name, "bob");
    assert_true(hr.forward && hr.from == 5 && hr.limit == 10);
    q = "group=t%65am";
    assert_int_equal(api_parse_history_query(q, strlen(q), 500, &hr, &why), 0);
    assert_string_equal(hr.name, "team");
    const char *badq[] = {"",         "peer=bob&peer=bob", "peer=bob&x=1",
                          "peer=%zz", "peer=bob&limit=-1", "peer=bob&after"};
    for (size_t i = 0; i < sizeof(badq) / sizeof(badq[0]); i++)
        assert_int_equal(
            api_parse_history_query(badq[i], strlen(badq[i]), 500, &hr, &why),
            IMQTT_EINVAL);
    char *e = api_error_json("bad_request", "x\"y");
    assert_string_equal(e, "{\"error\":{\"code\":\"bad_request\",\"message\":"
                           "\"x\\\"y\"}}");
    free(e);
}

static int cfg(const char *json, imqtt_config *c)
{
    char err[256];
    return config_parse(json, strlen(json), c, err, sizeof(err));
}

static void test_config(void **state)
{
    (void)state;
    imqtt_config c;
    assert_int_equal(cfg("{\"http\":{\"port\":9883,\"api\":{\"tokens\":"
                         "[\"0123456789abcdef\"],\"max_body\":2048}}}",
                         &c),
                     0);
    assert_true(c.api);
    assert_int_equal(c.api_token_count, 1);
    assert_string_equal(c.api_tokens[0], "0123456789abcdef");
    assert_int_equal(c.api_max_body, 2048);
    config_free(&c);
    assert_int_equal(cfg("{\"http\":{\"port\":9883}}", &c), 0);
    assert_false(c.api);
    assert_int_equal(c.api_max_body, 65536);
    config_free(&c);
    const char *bad[] = {
        "{\"http\":{\"port\":1,\"api\":{\"tokens\":[\"short\"]}}}",
        "{\"http\":{\"port\":1,\"api\":{\"tokens\":\"0123456789abcdef\"}}}",
        "{\"http\":{\"port\":1,\"api\":{\"max_body\":10}}}",
        "{\"http\":{\"port\":1,\"api\":{\"colour\":1}}}",
        "{\"http\":{\"port\":1,\"api\":{\"tokens\":[\"0123456789 abcdef\"]}}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cfg(bad[i], &c), IMQTT_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_in_pieces),
        cmocka_unit_test(test_chunked_and_limits),
        cmocka_unit_test(test_bad_heads),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_revocations_bans_queries),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
