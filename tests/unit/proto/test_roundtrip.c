/* Every packet type at every protocol level: encode -> frame -> decode, then
 * compare field by field (properties and user properties in order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto_test.h"

static const uint8_t versions[] = {MQTT_V31, MQTT_V311, MQTT_V5};

static uint8_t wire[1 << 18];
static uint8_t spare[1 << 18];

static const mqtt_user_prop users[] = {
    {MQTT_STR_LIT("from"), MQTT_STR_LIT("alice@phone")},
    {MQTT_STR_LIT("k"), MQTT_STR_LIT("")},
    {MQTT_STR_LIT("from"), MQTT_STR_LIT("dup keys keep order")},
};
static const uint32_t sub_ids[] = {1, 16384, MQTT_MAX_REMAINING};
static const uint8_t bin[] = {0x00, 0xFF, 0x10};

/* Every property allowed in `type`, each with a distinct non-default
 * value, plus three user properties. */
static void fill_props(mqtt_props *p, int type)
{
    memset(p, 0, sizeof *p);
    static const uint8_t ids[] = {0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11,
                                  0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19,
                                  0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x23, 0x24,
                                  0x25, 0x27, 0x28, 0x29, 0x2A};
    for (size_t i = 0; i < sizeof ids; i++)
        if (mqtt_prop_allowed(ids[i], type))
            mqtt_props_set(p, ids[i]);
    p->payload_format = 1;
    p->message_expiry = 0x01020304;
    p->content_type = MQTT_STR_LIT("application/json");
    p->response_topic = MQTT_STR_LIT("reply/to/me");
    p->correlation_data = (mqtt_bytes){bin, sizeof bin};
    p->subscription_id = 77;
    p->session_expiry = 0xFFFFFFFF;
    p->assigned_client_id = MQTT_STR_LIT("auto-123");
    p->server_keep_alive = 30;
    p->auth_method = MQTT_STR_LIT("SCRAM-SHA-1");
    p->auth_data = (mqtt_bytes){bin, sizeof bin};
    p->request_problem_info = 1;
    p->will_delay = 5;
    p->request_response_info = 1;
    p->response_info = MQTT_STR_LIT("resp");
    p->server_reference = MQTT_STR_LIT("other:1883");
    p->reason_string = MQTT_STR_LIT("because \xE2\x82\xAC");
    p->receive_maximum = 20;
    p->topic_alias_maximum = 10;
    p->topic_alias = 3;
    p->maximum_qos = 1;
    p->retain_available = 1;
    p->maximum_packet_size = 1 << 20;
    p->wildcard_sub_available = 1;
    p->sub_id_available = 1;
    p->shared_sub_available = 1;
    /* Fields not present must not leak onto the wire: zero them. */
    mqtt_props z;
    memset(&z, 0, sizeof z);
    for (uint32_t id = 0; id < 64; id++) {
        if (mqtt_props_has(p, id))
            continue;
        switch (id) {
        case 0x01:
            p->payload_format = 0;
            break;
        case 0x02:
            p->message_expiry = 0;
            break;
        case 0x03:
            p->content_type = z.content_type;
            break;
        case 0x08:
            p->response_topic = z.response_topic;
            break;
        case 0x09:
            p->correlation_data = z.correlation_data;
            break;
        case 0x0B:
            p->subscription_id = 0;
            break;
        case 0x11:
            p->session_expiry = 0;
            break;
        case 0x12:
            p->assigned_client_id = z.assigned_client_id;
            break;
        case 0x13:
            p->server_keep_alive = 0;
            break;
        case 0x15:
            p->auth_method = z.auth_method;
            break;
        case 0x16:
            p->auth_data = z.auth_data;
            break;
        case 0x17:
            p->request_problem_info = 0;
            break;
        case 0x18:
            p->will_delay = 0;
            break;
        case 0x19:
            p->request_response_info = 0;
            break;
        case 0x1A:
            p->response_info = z.response_info;
            break;
        case 0x1C:
            p->server_reference = z.server_reference;
            break;
        case 0x1F:
            p->reason_string = z.reason_string;
            break;
        case 0x21:
            p->receive_maximum = 0;
            break;
        case 0x22:
            p->topic_alias_maximum = 0;
            break;
        case 0x23:
            p->topic_alias = 0;
            break;
        case 0x24:
            p->maximum_qos = 0;
            break;
        case 0x25:
            p->retain_available = 0;
            break;
        case 0x27:
            p->maximum_packet_size = 0;
            break;
        case 0x28:
            p->wildcard_sub_available = 0;
            break;
        case 0x29:
            p->sub_id_available = 0;
            break;
        case 0x2A:
            p->shared_sub_available = 0;
            break;
        default:
            break;
        }
    }
    p->user = users;
    p->user_count = 3;
    if (type == MQTT_PUBLISH) {
        p->sub_ids = sub_ids;
        p->sub_id_count = 3;
        p->subscription_id = sub_ids[0];
    }
}

/* Compare decoded props `out` with what was encoded from `in` at version. */
static void check_props(const mqtt_props *in, const mqtt_props *out,
                        uint8_t version)
{
    if (version != MQTT_V5) {
        assert_int_equal(out->present, 0);
        assert_int_equal(out->user_count, 0);
        assert_int_equal(out->sub_id_count, 0);
        return;
    }
    uint64_t want = in->present & ~((uint64_t)1 << MQTT_PROP_USER);
    if (in->sub_ids && in->sub_id_count)
        want |= (uint64_t)1 << MQTT_PROP_SUBSCRIPTION_ID;
    assert_int_equal(out->present, want);
    assert_int_equal(out->payload_format, in->payload_format);
    assert_int_equal(out->message_expiry, in->message_expiry);
    assert_bytes_equal(out->content_type, in->content_type);
    assert_bytes_equal(out->response_topic, in->response_topic);
    assert_bytes_equal(out->correlation_data, in->correlation_data);
    assert_int_equal(out->subscription_id, in->subscription_id);
    assert_int_equal(out->session_expiry, in->session_expiry);
    assert_bytes_equal(out->assigned_client_id, in->assigned_client_id);
    assert_int_equal(out->server_keep_alive, in->server_keep_alive);
    assert_bytes_equal(out->auth_method, in->auth_method);
    assert_bytes_equal(out->auth_data, in->auth_data);
    assert_int_equal(out->request_problem_info, in->request_problem_info);
    assert_int_equal(out->will_delay, in->will_delay);
    assert_int_equal(out->request_response_info, in->request_response_info);
    assert_bytes_equal(out->response_info, in->response_info);
    assert_bytes_equal(out->server_reference, in->server_reference);
    assert_bytes_equal(out->reason_string, in->reason_string);
    assert_int_equal(out->receive_maximum, in->receive_maximum);
    assert_int_equal(out->topic_alias_maximum, in->topic_alias_maximum);
    assert_int_equal(out->topic_alias, in->topic_alias);
    assert_int_equal(out->maximum_qos, in->maximum_qos);
    assert_int_equal(out->retain_available, in->retain_available);
    assert_int_equal(out->maximum_packet_size, in->maximum_packet_size);
    assert_int_equal(out->wildcard_sub_available, in->wildcard_sub_available);
    assert_int_equal(out->sub_id_available, in->sub_id_available);
    assert_int_equal(out->shared_sub_available, in->shared_sub_available);

    /* User properties: the array, then those of user_from, in order. */
    uint32_t pos = 0, from_pos = 0, n = 0;
    mqtt_user_prop u, f;
    while (mqtt_props_next_user(out->raw, &pos, &u)) {
        if (in->user && n < in->user_count) {
            assert_bytes_equal(u.key, in->user[n].key);
            assert_bytes_equal(u.value, in->user[n].value);
        } else {
            assert_int_equal(mqtt_props_next_user(in->user_from, &from_pos, &f),
                             1);
            assert_bytes_equal(u.key, f.key);
            assert_bytes_equal(u.value, f.value);
        }
        n++;
    }
    assert_int_equal(mqtt_props_next_user(in->user_from, &from_pos, &f), 0);
    assert_int_equal(out->user_count, n);

    if (in->sub_ids && in->sub_id_count) {
        assert_int_equal(out->sub_id_count, in->sub_id_count);
        uint32_t sp = 0, id, k = 0;
        while (mqtt_props_next_sub_id(out->raw, &sp, &id))
            assert_int_equal(id, in->sub_ids[k++]);
        assert_int_equal(k, in->sub_id_count);
    }
}

/* Encode, check sizes and ENOSPACE, frame, decode. Returns wire length. */
static int roundtrip(const mqtt_packet *in, uint8_t version, mqtt_packet *out)
{
    int size = mqtt_encoded_size(in, version);
    assert_true(size > 0);
    int n = mqtt_encode(in, version, wire, sizeof wire);
    assert_int_equal(n, size);
    assert_int_equal(mqtt_encode(in, version, spare, (size_t)n - 1),
                     IMQTT_ENOSPACE);
    mqtt_frame f;
    assert_int_equal(mqtt_frame_parse(wire, (size_t)n, (uint32_t)n, &f), n);
    assert_int_equal(f.type, in->type);
    memset(out, 0xA5, sizeof *out); /* decode must set every field */
    assert_int_equal(mqtt_decode(&f, version, out), 0);
    assert_int_equal(out->type, in->type);
    return n;
}

static void test_connect(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        for (int variant = 0; variant < 4; variant++) {
            mqtt_packet in, out;
            memset(&in, 0, sizeof in);
            in.type = MQTT_CONNECT;
            mqtt_connect *c = &in.u.connect;
            c->version = v;
            c->keepalive = (uint16_t)(60 * variant);
            c->clean_start = variant & 1;
            c->client_id =
                variant == 3 ? MQTT_STR_LIT("") : MQTT_STR_LIT("alice@phone");
            if (variant >= 1) {
                c->will = true;
                c->will_qos = (uint8_t)(variant - 1);
                c->will_retain = variant == 2;
                c->will_topic = MQTT_STR_LIT("status/alice");
                c->will_payload = (mqtt_bytes){bin, sizeof bin};
            }
            if (variant >= 2) {
                c->has_username = true;
                c->username = MQTT_STR_LIT("alice");
                c->has_password = true;
                c->password = (mqtt_bytes){bin, sizeof bin};
            }
            if (v == MQTT_V5) {
                fill_props(&c->props, MQTT_CONNECT);
                if (c->will)
                    fill_props(&c->will_props, MQTT_PROPS_IN_WILL);
                if (variant == 3) {
                    /* v5 allows a password without a user name. */
                    c->has_username = false;
                    c->username = MQTT_STR_LIT("");
                }
            }
            roundtrip(&in, v, &out);
            const mqtt_connect *d = &out.u.connect;
            assert_int_equal(d->version, v);
            assert_int_equal(d->clean_start, c->clean_start);
            assert_int_equal(d->will, c->will);
            assert_int_equal(d->will_qos, c->will_qos);
            assert_int_equal(d->will_retain, c->will_retain);
            assert_int_equal(d->has_username, c->has_username);
            assert_int_equal(d->has_password, c->has_password);
            assert_int_equal(d->keepalive, c->keepalive);
            assert_bytes_equal(d->client_id, c->client_id);
            assert_bytes_equal(d->will_topic, c->will_topic);
            assert_bytes_equal(d->will_payload, c->will_payload);
            assert_bytes_equal(d->username, c->username);
            assert_bytes_equal(d->password, c->password);
            check_props(&c->props, &d->props, v);
            check_props(&c->will_props, &d->will_props, v);
            /* The protocol name matches the level. */
            uint32_t rem;
            int vl = mqtt_varint_decode(wire + 1, 4, &rem);
            assert_int_equal(wire[1 + vl + 1], v == MQTT_V31 ? 6 : 4);
        }
    }
}

static void test_connack(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        const uint8_t v3codes[] = {0, 1, 2, 3, 4, 5};
        const uint8_t v5codes[] = {0x00, 0x80, 0x87, 0x9F};
        const uint8_t *codes = v == MQTT_V5 ? v5codes : v3codes;
        size_t ncodes = v == MQTT_V5 ? sizeof v5codes : sizeof v3codes;
        for (size_t i = 0; i < ncodes; i++) {
            mqtt_packet in, out;
            memset(&in, 0, sizeof in);
            in.type = MQTT_CONNACK;
            in.u.connack.session_present = i & 1;
            in.u.connack.reason = codes[i];
            if (v == MQTT_V5 && i == 0)
                fill_props(&in.u.connack.props, MQTT_CONNACK);
            int n = roundtrip(&in, v, &out);
            if (v != MQTT_V5)
                assert_int_equal(n, 4);
            assert_int_equal(out.u.connack.session_present, i & 1);
            assert_int_equal(out.u.connack.reason, codes[i]);
            check_props(&in.u.connack.props, &out.u.connack.props, v);
        }
    }
}

static void test_publish(void **state)
{
    (void)state;
    static uint8_t payload[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        for (int qos = 0; qos <= 2; qos++) {
            for (int variant = 0; variant < 4; variant++) {
                mqtt_packet in, out;
                memset(&in, 0, sizeof in);
                in.type = MQTT_PUBLISH;
                mqtt_publish *p = &in.u.publish;
                p->qos = (uint8_t)qos;
                p->dup = qos > 0 && (variant & 1);
                p->retain = variant & 2;
                p->packet_id = qos ? (uint16_t)(variant ? 0xFFFF : 1) : 0;
                p->topic = MQTT_STR_LIT("p2p/talk/bob");
                p->payload.ptr = payload;
                p->payload.len = variant == 0 ? 0 : variant == 3 ? 70000 : 5;
                if (v == MQTT_V5 && variant >= 2)
                    fill_props(&p->props, MQTT_PUBLISH);
                if (v == MQTT_V5 && variant == 3)
                    p->topic = MQTT_STR_LIT(""); /* by alias */
                int n = roundtrip(&in, v, &out);
                const mqtt_publish *d = &out.u.publish;
                assert_int_equal(d->qos, p->qos);
                assert_int_equal(d->dup, p->dup);
                assert_int_equal(d->retain, p->retain);
                assert_int_equal(d->packet_id, p->packet_id);
                assert_bytes_equal(d->topic, p->topic);
                assert_bytes_equal(d->payload, p->payload);
                /* The payload is a view into the input, not a copy. */
                assert_ptr_equal(d->payload.ptr + d->payload.len, wire + n);
                check_props(&p->props, &d->props, v);

                /* The header-only encoder plus the payload gives the same
                 * bytes as the full encoder. */
                int h = mqtt_encode_publish_header(p, v, spare, sizeof spare);
                assert_int_equal(h + (int)p->payload.len, n);
                assert_memory_equal(spare, wire, (size_t)h);
                assert_int_equal(
                    mqtt_encode_publish_header(p, v, spare, (size_t)h - 1),
                    IMQTT_ENOSPACE);
            }
        }
    }
}

static void test_publish_forward_user_from(void **state)
{
    (void)state;
    /* A broker forwarding a decoded v5 PUBLISH: its own `from` first, then
     * the publisher's user properties copied from the decoded block. */
    mqtt_packet in, mid, out;
    memset(&in, 0, sizeof in);
    in.type = MQTT_PUBLISH;
    in.u.publish.qos = 1;
    in.u.publish.packet_id = 9;
    in.u.publish.topic = MQTT_STR_LIT("g/1");
    fill_props(&in.u.publish.props, MQTT_PUBLISH);
    in.u.publish.props.sub_ids = NULL;
    in.u.publish.props.sub_id_count = 0;
    mqtt_props_set(&in.u.publish.props, MQTT_PROP_SUBSCRIPTION_ID);
    in.u.publish.props.subscription_id = 12;
    roundtrip(&in, MQTT_V5, &mid);
    static uint8_t first[1 << 18];
    memcpy(first, wire, sizeof first); /* mid's views point into wire */
    mqtt_frame f;
    int n = mqtt_frame_parse(first, sizeof first, 0, &f);
    assert_true(n > 0);
    assert_int_equal(mqtt_decode(&f, MQTT_V5, &mid), 0);

    mqtt_user_prop stamp = {MQTT_STR_LIT("from"), MQTT_STR_LIT("bob@pc")};
    mqtt_packet fwd = mid;
    fwd.u.publish.props.user = &stamp;
    fwd.u.publish.props.user_count = 1;
    fwd.u.publish.props.user_from = mid.u.publish.props.raw;
    roundtrip(&fwd, MQTT_V5, &out);
    check_props(&fwd.u.publish.props, &out.u.publish.props, MQTT_V5);
    assert_int_equal(out.u.publish.props.user_count, 4);
    assert_int_equal(out.u.publish.props.subscription_id, 12);
}

static void test_acks(void **state)
{
    (void)state;
    const uint8_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
                             MQTT_PUBCOMP};
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        for (size_t ti = 0; ti < sizeof types; ti++) {
            for (int form = 0; form < 3; form++) {
                mqtt_packet in, out;
                memset(&in, 0, sizeof in);
                in.type = types[ti];
                in.u.ack.packet_id = (uint16_t)(1000 + form);
                if (v == MQTT_V5) {
                    bool rel =
                        types[ti] == MQTT_PUBREL || types[ti] == MQTT_PUBCOMP;
                    in.u.ack.reason = form == 0 ? 0 : rel ? 0x92 : 0x10;
                    if (form == 2)
                        fill_props(&in.u.ack.props, types[ti]);
                }
                int n = roundtrip(&in, v, &out);
                /* Short forms: 2 bytes of packet id, then the reason. */
                if (v != MQTT_V5 || form == 0)
                    assert_int_equal(n, 4);
                else if (form == 1)
                    assert_int_equal(n, 5);
                assert_int_equal(out.u.ack.packet_id, in.u.ack.packet_id);
                assert_int_equal(out.u.ack.reason, in.u.ack.reason);
                check_props(&in.u.ack.props, &out.u.ack.props, v);
            }
        }
    }
}

static void test_subscribe(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        mqtt_sub_entry e[4] = {
            {MQTT_STR_LIT("p2p/talk/alice"), {1, false, false, 0}},
            {MQTT_STR_LIT("g/+/x"), {2, true, true, 2}},
            {MQTT_STR_LIT("#"), {0, false, true, 1}},
            {MQTT_STR_LIT("$share/grp/a/#"), {1, false, false, 0}},
        };
        if (v != MQTT_V5)
            for (int i = 0; i < 4; i++)
                e[i].opts = (mqtt_sub_opts){e[i].opts.qos, false, false, 0};
        uint8_t entries[256];
        int en = mqtt_sub_encode_entries(e, 4, v, entries, sizeof entries);
        assert_true(en > 0);
        assert_int_equal(
            mqtt_sub_encode_entries(e, 4, v, entries, (size_t)en - 1),
            IMQTT_ENOSPACE);
        mqtt_packet in, out;
        memset(&in, 0, sizeof in);
        in.type = MQTT_SUBSCRIBE;
        in.u.subscribe.packet_id = 42;
        in.u.subscribe.entries = (mqtt_bytes){entries, (uint32_t)en};
        in.u.subscribe.count = 4;
        if (v == MQTT_V5)
            fill_props(&in.u.subscribe.props, MQTT_SUBSCRIBE);
        roundtrip(&in, v, &out);
        assert_int_equal(out.u.subscribe.packet_id, 42);
        assert_int_equal(out.u.subscribe.count, 4);
        check_props(&in.u.subscribe.props, &out.u.subscribe.props, v);
        uint32_t pos = 0, i = 0;
        mqtt_sub_entry d;
        while (mqtt_sub_next(&out.u.subscribe, v, &pos, &d)) {
            assert_bytes_equal(d.filter, e[i].filter);
            assert_int_equal(d.opts.qos, e[i].opts.qos);
            assert_int_equal(d.opts.no_local, e[i].opts.no_local);
            assert_int_equal(d.opts.retain_as_published,
                             e[i].opts.retain_as_published);
            assert_int_equal(d.opts.retain_handling, e[i].opts.retain_handling);
            i++;
        }
        assert_int_equal(i, 4);
    }
}

static void test_unsubscribe(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        const mqtt_str filters[] = {MQTT_STR_LIT("a/b"), MQTT_STR_LIT("+"),
                                    MQTT_STR_LIT("$share/g/x/#")};
        uint8_t entries[128];
        int en = mqtt_unsub_encode_entries(filters, 3, entries, sizeof entries);
        assert_int_equal(en, 5 + 3 + 14);
        assert_int_equal(mqtt_unsub_encode_entries(filters, 3, entries, 21),
                         IMQTT_ENOSPACE);
        mqtt_packet in, out;
        memset(&in, 0, sizeof in);
        in.type = MQTT_UNSUBSCRIBE;
        in.u.unsubscribe.packet_id = 7;
        in.u.unsubscribe.entries = (mqtt_bytes){entries, (uint32_t)en};
        in.u.unsubscribe.count = 3;
        if (v == MQTT_V5)
            fill_props(&in.u.unsubscribe.props, MQTT_UNSUBSCRIBE);
        roundtrip(&in, v, &out);
        assert_int_equal(out.u.unsubscribe.packet_id, 7);
        assert_int_equal(out.u.unsubscribe.count, 3);
        check_props(&in.u.unsubscribe.props, &out.u.unsubscribe.props, v);
        uint32_t pos = 0, i = 0;
        mqtt_str s;
        while (mqtt_unsub_next(&out.u.unsubscribe, &pos, &s))
            assert_bytes_equal(s, filters[i++]);
        assert_int_equal(i, 3);
    }
}

static void test_suback_unsuback(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        const uint8_t sub_codes[] = {0, 1, 2, 0x80};
        const uint8_t unsub_codes[] = {0x00, 0x11, 0x87};
        mqtt_packet in, out;
        memset(&in, 0, sizeof in);
        in.type = MQTT_SUBACK;
        in.u.suback.packet_id = 3;
        in.u.suback.codes = sub_codes;
        in.u.suback.count = 4;
        if (v == MQTT_V5)
            fill_props(&in.u.suback.props, MQTT_SUBACK);
        roundtrip(&in, v, &out);
        assert_int_equal(out.u.suback.packet_id, 3);
        assert_int_equal(out.u.suback.count, 4);
        assert_memory_equal(out.u.suback.codes, sub_codes, 4);
        check_props(&in.u.suback.props, &out.u.suback.props, v);

        memset(&in, 0, sizeof in);
        in.type = MQTT_UNSUBACK;
        in.u.unsuback.packet_id = 4;
        in.u.unsuback.codes = unsub_codes;
        in.u.unsuback.count = 3;
        if (v == MQTT_V5)
            fill_props(&in.u.unsuback.props, MQTT_UNSUBACK);
        int n = roundtrip(&in, v, &out);
        assert_int_equal(out.u.unsuback.packet_id, 4);
        check_props(&in.u.unsuback.props, &out.u.unsuback.props, v);
        if (v == MQTT_V5) {
            assert_int_equal(out.u.unsuback.count, 3);
            assert_memory_equal(out.u.unsuback.codes, unsub_codes, 3);
        } else {
            /* 3.x UNSUBACK carries no codes. */
            assert_int_equal(n, 4);
            assert_int_equal(out.u.unsuback.count, 0);
        }
    }
}

static void test_ping(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        for (int t = MQTT_PINGREQ; t <= MQTT_PINGRESP; t++) {
            mqtt_packet in, out;
            memset(&in, 0, sizeof in);
            in.type = (uint8_t)t;
            assert_int_equal(roundtrip(&in, versions[vi], &out), 2);
            assert_int_equal(wire[0], t << 4);
            assert_int_equal(wire[1], 0);
        }
    }
}

static void test_disconnect_auth(void **state)
{
    (void)state;
    for (size_t vi = 0; vi < sizeof versions; vi++) {
        uint8_t v = versions[vi];
        for (int t = MQTT_DISCONNECT; t <= MQTT_AUTH; t++) {
            for (int form = 0; form < 3; form++) {
                mqtt_packet in, out;
                memset(&in, 0, sizeof in);
                in.type = (uint8_t)t;
                if (v != MQTT_V5 && t == MQTT_AUTH) {
                    assert_int_equal(mqtt_encode(&in, v, wire, sizeof wire),
                                     IMQTT_EINVAL);
                    assert_int_equal(mqtt_encoded_size(&in, v), IMQTT_EINVAL);
                    continue;
                }
                if (v == MQTT_V5) {
                    if (form > 0)
                        in.u.disconnect.reason = t == MQTT_AUTH ? 0x18 : 0x8E;
                    if (form == 2)
                        fill_props(&in.u.disconnect.props, t);
                }
                int n = roundtrip(&in, v, &out);
                if (v != MQTT_V5 || form == 0)
                    assert_int_equal(n, 2);
                else if (form == 1)
                    assert_int_equal(n, t == MQTT_AUTH ? 4 : 3);
                assert_int_equal(out.u.disconnect.reason,
                                 in.u.disconnect.reason);
                check_props(&in.u.disconnect.props, &out.u.disconnect.props, v);
            }
        }
    }
}

static void test_encode_rejects(void **state)
{
    (void)state;
    mqtt_packet p;
    memset(&p, 0, sizeof p);
    p.type = MQTT_PUBLISH;
    p.u.publish.topic = MQTT_STR_LIT("a");
    p.u.publish.qos = 3;
    assert_int_equal(mqtt_encode(&p, MQTT_V5, wire, sizeof wire), IMQTT_EINVAL);
    p.u.publish.qos = 0;
    assert_int_equal(mqtt_encode(&p, 6, wire, sizeof wire), IMQTT_EINVAL);
    p.type = 0;
    assert_int_equal(mqtt_encode(&p, MQTT_V5, wire, sizeof wire), IMQTT_EINVAL);
    memset(&p, 0, sizeof p);
    p.type = MQTT_CONNECT;
    p.u.connect.has_password = true;
    assert_int_equal(mqtt_encode(&p, MQTT_V311, wire, sizeof wire),
                     IMQTT_EINVAL);
    assert_true(mqtt_encode(&p, MQTT_V5, wire, sizeof wire) > 0);
    static uint8_t big[70000];
    p.u.connect.client_id = (mqtt_str){big, sizeof big};
    assert_int_equal(mqtt_encode(&p, MQTT_V5, wire, sizeof wire), IMQTT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_connack),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_publish_forward_user_from),
        cmocka_unit_test(test_acks),
        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_suback_unsuback),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_disconnect_auth),
        cmocka_unit_test(test_encode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
