/* libFuzzer target: the backend HTTP API's request path without the
 * network or the broker (docs/api.md): HTTP bytes -> http_req (Node's
 * http_parser under our bounds) -> api_route -> the JSON body and query
 * parsers of the endpoint it names.
 *
 * The input is fed in two pieces (split at its first byte's value), as a
 * socket would deliver it. Checked: a finished request's views lie inside
 * its buffers and its bounds hold; a refusal carries one of the statuses
 * the listener answers with; a route's names are valid; a parsed message
 * has a topic of its kind and a QoS of 0..2; every parser's refusal has
 * a reason. */
#include "api_json.h"
#include "api_route.h"
#include "errors.h"
#include "fuzz.h"
#include "http_req.h"
#include "topic.h"

#include <stdint.h>
#include <string.h>

#define BODY_MAX 4096

static void check_message(const uint8_t *b, size_t n, bool uplink)
{
    api_message m;
    const char *why = NULL;
    int rc = api_parse_message(b, n, uplink, &m, &why);
    if (rc < 0) {
        FUZZ_CHECK(rc == IMQTT_EINVAL || rc == IMQTT_ENOMEM);
        FUZZ_CHECK(why && why[0]);
        return;
    }
    FUZZ_CHECK(m.topic && strlen(m.topic) == m.topic_len);
    FUZZ_CHECK(
        mqtt_topic_name_check(mqtt_str_from(m.topic, m.topic_len), NULL) == 0);
    FUZZ_CHECK(m.qos <= 2);
    FUZZ_CHECK(!uplink || (!m.retain && m.to != API_TO_TOPIC));
    if (m.to == API_TO_USER)
        FUZZ_CHECK(strncmp(m.topic, "p2p/talk/", 9) == 0);
    if (m.to == API_TO_GROUP)
        FUZZ_CHECK(strncmp(m.topic, "g/talk/", 7) == 0);
    FUZZ_CHECK(im_id_part_valid(mqtt_str_from(m.service, strlen(m.service))) ||
               uplink);
    FUZZ_CHECK((m.payload == NULL) == (m.payload_len == 0));
    api_message_free(&m);
}

static void check_route(const http_req *r)
{
    api_route rt;
    api_route_match((int)r->method, r->path, r->path_len, &rt);
    if (rt.ep == API_NONE)
        return;
    FUZZ_CHECK(rt.allow && rt.allow[0]);
    if (!rt.bad_name) {
        if (rt.user[0])
            FUZZ_CHECK(
                im_id_part_valid(mqtt_str_from(rt.user, strlen(rt.user))));
        if (rt.device[0])
            FUZZ_CHECK(
                im_id_part_valid(mqtt_str_from(rt.device, strlen(rt.device))));
    }
    const char *why = NULL;
    int rc = 0;
    switch (rt.ep) {
    case API_PUBLISH:
        check_message(r->body, r->body_len, false);
        break;
    case API_UPLINK:
        check_message(r->body, r->body_len, true);
        break;
    case API_HISTORY: {
        im_history_req hr;
        rc = api_parse_history_query(r->query, r->query_len, 500, &hr, &why);
        if (rc == 0)
            FUZZ_CHECK(hr.limit >= 1 && hr.limit <= 500 && hr.name_len >= 1);
        break;
    }
    case API_REVOCATIONS: {
        api_revocation rv;
        rc = api_parse_revocation(r->body, r->body_len, &rv, &why);
        if (rc == 0)
            FUZZ_CHECK(rv.by_jti ? rv.jti[0] != '\0' : rv.before >= 0);
        break;
    }
    case API_BAN_USER:
    case API_BAN_DEVICE: {
        char reason[API_REASON_MAX + 1];
        rc = api_parse_ban(r->body, r->body_len, reason, &why);
        if (rc == 0)
            FUZZ_CHECK(strlen(reason) <= API_REASON_MAX);
        break;
    }
    default:
        break;
    }
    if (rc < 0)
        FUZZ_CHECK(why && why[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_req r;
    http_req_init(&r, BODY_MAX);
    size_t cut = size ? data[0] % (size + 1) : 0;
    int st = http_req_feed(&r, (const char *)data, cut);
    if (st == HTTP_REQ_MORE && size > cut)
        st = http_req_feed(&r, (const char *)data + cut, size - cut);
    if (st == HTTP_REQ_FAIL) {
        int s = r.fail_status;
        FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 505);
    } else if (st == HTTP_REQ_DONE) {
        FUZZ_CHECK(r.url_len <= HTTP_URL_MAX && r.url[r.url_len] == '\0');
        FUZZ_CHECK(r.path >= r.url && r.path + r.path_len <= r.url + r.url_len);
        FUZZ_CHECK(r.query >= r.url &&
                   r.query + r.query_len <= r.url + r.url_len);
        FUZZ_CHECK(r.auth_len <= HTTP_AUTH_MAX && r.auth[r.auth_len] == '\0');
        FUZZ_CHECK(r.body_len <= BODY_MAX);
        FUZZ_CHECK(!r.body || r.body[r.body_len] == '\0');
        check_route(&r);
    } else {
        FUZZ_CHECK(st == HTTP_REQ_MORE);
    }
    http_req_free(&r);
    return 0;
}
