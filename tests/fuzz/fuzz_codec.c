/* libFuzzer target for the codec: frame, decode, encode, decode again.
 *
 * Input: byte 0 picks the protocol level and a maximum packet size, the
 * rest is a byte stream as a broker would read it. Every packet that
 * decodes must re-encode at the same level into exactly
 * mqtt_encoded_size() bytes, and that encoding must frame, decode to the
 * same fields, and re-encode to the same bytes. Topics and filters met on
 * the way go through the topic functions with invariants we can state
 * without a second implementation. Any violation aborts, which libFuzzer
 * reports as a crash. */
#include "errors.h"
#include "fuzz.h"
#include "packet.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool bytes_eq(mqtt_bytes a, mqtt_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---- properties ---------------------------------------------------------
 * Scalars are compared field by field where present; repeated properties
 * through the iterators, since `raw` itself is reordered by the encoder. */

#define NUM_PROPS(X)                                            \
    X(MQTT_PROP_PAYLOAD_FORMAT, payload_format)                 \
    X(MQTT_PROP_MESSAGE_EXPIRY, message_expiry)                 \
    X(MQTT_PROP_SUBSCRIPTION_ID, subscription_id)               \
    X(MQTT_PROP_SESSION_EXPIRY, session_expiry)                 \
    X(MQTT_PROP_SERVER_KEEP_ALIVE, server_keep_alive)           \
    X(MQTT_PROP_REQUEST_PROBLEM_INFO, request_problem_info)     \
    X(MQTT_PROP_WILL_DELAY, will_delay)                         \
    X(MQTT_PROP_REQUEST_RESPONSE_INFO, request_response_info)   \
    X(MQTT_PROP_RECEIVE_MAXIMUM, receive_maximum)               \
    X(MQTT_PROP_TOPIC_ALIAS_MAXIMUM, topic_alias_maximum)       \
    X(MQTT_PROP_TOPIC_ALIAS, topic_alias)                       \
    X(MQTT_PROP_MAXIMUM_QOS, maximum_qos)                       \
    X(MQTT_PROP_RETAIN_AVAILABLE, retain_available)             \
    X(MQTT_PROP_MAXIMUM_PACKET_SIZE, maximum_packet_size)       \
    X(MQTT_PROP_WILDCARD_SUB_AVAILABLE, wildcard_sub_available) \
    X(MQTT_PROP_SUB_ID_AVAILABLE, sub_id_available)             \
    X(MQTT_PROP_SHARED_SUB_AVAILABLE, shared_sub_available)

#define BYTES_PROPS(X)                                  \
    X(MQTT_PROP_CONTENT_TYPE, content_type)             \
    X(MQTT_PROP_RESPONSE_TOPIC, response_topic)         \
    X(MQTT_PROP_CORRELATION_DATA, correlation_data)     \
    X(MQTT_PROP_ASSIGNED_CLIENT_ID, assigned_client_id) \
    X(MQTT_PROP_AUTH_METHOD, auth_method)               \
    X(MQTT_PROP_AUTH_DATA, auth_data)                   \
    X(MQTT_PROP_RESPONSE_INFO, response_info)           \
    X(MQTT_PROP_SERVER_REFERENCE, server_reference)     \
    X(MQTT_PROP_REASON_STRING, reason_string)

static void props_eq(const mqtt_props *a, const mqtt_props *b)
{
    FUZZ_CHECK(a->present == b->present);
#define NUM_EQ_(id, field)     \
    if (mqtt_props_has(a, id)) \
        FUZZ_CHECK(a->field == b->field);
    NUM_PROPS(NUM_EQ_)
#undef NUM_EQ_
#define BYTES_EQ_(id, field)   \
    if (mqtt_props_has(a, id)) \
        FUZZ_CHECK(bytes_eq(a->field, b->field));
    BYTES_PROPS(BYTES_EQ_)
#undef BYTES_EQ_

    FUZZ_CHECK(a->user_count == b->user_count);
    uint32_t pa = 0, pb = 0, n = 0;
    mqtt_user_prop ua, ub;
    while (mqtt_props_next_user(a->raw, &pa, &ua)) {
        FUZZ_CHECK(mqtt_props_next_user(b->raw, &pb, &ub) == 1);
        FUZZ_CHECK(bytes_eq(ua.key, ub.key) && bytes_eq(ua.value, ub.value));
        n++;
    }
    FUZZ_CHECK(mqtt_props_next_user(b->raw, &pb, &ub) == 0);
    FUZZ_CHECK(n == a->user_count);

    FUZZ_CHECK(a->sub_id_count == b->sub_id_count);
    pa = pb = 0;
    uint32_t ia, ib;
    while (mqtt_props_next_sub_id(a->raw, &pa, &ia)) {
        FUZZ_CHECK(mqtt_props_next_sub_id(b->raw, &pb, &ib) == 1);
        FUZZ_CHECK(ia == ib);
    }
    FUZZ_CHECK(mqtt_props_next_sub_id(b->raw, &pb, &ib) == 0);
}

/* A decoded block re-encodes its user properties from user_from and, for a
 * PUBLISH with several subscription ids, from an array the caller fills.
 * Returns the array (caller frees) or NULL. */
static uint32_t *props_for_encode(mqtt_props *p)
{
    p->user = NULL;
    p->user_from = p->raw;
    p->sub_ids = NULL;
    if (p->sub_id_count <= 1)
        return NULL;
    uint32_t *ids = malloc(sizeof *ids * p->sub_id_count);
    FUZZ_CHECK(ids != NULL);
    uint32_t pos = 0, n = 0, id;
    while (mqtt_props_next_sub_id(p->raw, &pos, &id)) {
        FUZZ_CHECK(n < p->sub_id_count);
        ids[n++] = id;
    }
    FUZZ_CHECK(n == p->sub_id_count);
    p->sub_ids = ids;
    return ids;
}

/* ---- topics ------------------------------------------------------------ */

static void check_topic(mqtt_str t)
{
    if (t.len == 0)
        return; /* v5 topic alias */
    FUZZ_CHECK(mqtt_topic_name_check(t, NULL) == 0);
    FUZZ_CHECK(!mqtt_topic_has_wildcard(t));
    FUZZ_CHECK(mqtt_topic_match(t, t));
    FUZZ_CHECK(mqtt_topic_match(MQTT_STR_LIT("#"), t) == (t.ptr[0] != '$'));
    mqtt_str g, f;
    (void)mqtt_share_parse(t, &g, &f);
}

/* A topic built from a filter by filling each wildcard must match it:
 * '+' becomes "x", '#' becomes "y/z". */
static void check_filter(mqtt_str f, mqtt_str last_topic)
{
    mqtt_str group, inner = f;
    /* The decoder leaves filter syntax to the receiver: check only the
     * filters a broker would accept. */
    if (mqtt_topic_filter_check(f, NULL) != 0)
        return;
    int rc = mqtt_share_parse(f, &group, &inner);
    FUZZ_CHECK(rc == 0 || rc == 1);
    if (rc == 1) {
        FUZZ_CHECK(group.len > 0 && inner.len > 0);
        FUZZ_CHECK(mqtt_topic_filter_check(inner, NULL) == 0);
    }

    uint8_t *t = malloc((size_t)inner.len + 3);
    FUZZ_CHECK(t != NULL);
    uint32_t n = 0;
    for (uint32_t i = 0; i < inner.len; i++) {
        if (inner.ptr[i] == '+') {
            t[n++] = 'x';
        } else if (inner.ptr[i] == '#') {
            memcpy(t + n, "y/z", 3);
            n += 3;
        } else {
            t[n++] = inner.ptr[i];
        }
    }
    mqtt_str topic = {t, n};
    FUZZ_CHECK(mqtt_topic_match(inner, topic));
    if (!mqtt_topic_has_wildcard(inner))
        FUZZ_CHECK(bytes_eq(inner, topic));
    if (last_topic.len > 0) {
        bool m = mqtt_topic_match(inner, last_topic);
        if (!mqtt_topic_has_wildcard(inner))
            FUZZ_CHECK(m == bytes_eq(inner, last_topic));
    }
    FUZZ_CHECK(mqtt_topic_levels(inner) >= 1);
    free(t);
}

/* ---- packets ----------------------------------------------------------- */

static void subs_eq(const mqtt_subscribe *a, const mqtt_subscribe *b,
                    uint8_t type, uint8_t v, mqtt_str last_topic)
{
    FUZZ_CHECK(a->packet_id == b->packet_id);
    FUZZ_CHECK(a->count == b->count && a->count > 0);
    props_eq(&a->props, &b->props);

    uint32_t pa = 0, pb = 0, n = 0;
    if (type == MQTT_SUBSCRIBE) {
        mqtt_sub_entry ea, eb;
        while (mqtt_sub_next(a, v, &pa, &ea)) {
            FUZZ_CHECK(mqtt_sub_next(b, v, &pb, &eb) == 1);
            FUZZ_CHECK(bytes_eq(ea.filter, eb.filter));
            FUZZ_CHECK(ea.opts.qos == eb.opts.qos && ea.opts.qos <= 2);
            FUZZ_CHECK(ea.opts.no_local == eb.opts.no_local);
            FUZZ_CHECK(ea.opts.retain_as_published ==
                       eb.opts.retain_as_published);
            FUZZ_CHECK(ea.opts.retain_handling == eb.opts.retain_handling);
            check_filter(ea.filter, last_topic);
            n++;
        }
        FUZZ_CHECK(mqtt_sub_next(b, v, &pb, &eb) == 0);
    } else {
        mqtt_str fa, fb;
        while (mqtt_unsub_next(a, &pa, &fa)) {
            FUZZ_CHECK(mqtt_unsub_next(b, &pb, &fb) == 1);
            FUZZ_CHECK(bytes_eq(fa, fb));
            check_filter(fa, last_topic);
            n++;
        }
        FUZZ_CHECK(mqtt_unsub_next(b, &pb, &fb) == 0);
    }
    FUZZ_CHECK(n == a->count);
}

static void connect_eq(const mqtt_connect *a, const mqtt_connect *b)
{
    FUZZ_CHECK(a->version == b->version);
    FUZZ_CHECK(a->clean_start == b->clean_start);
    FUZZ_CHECK(a->will == b->will);
    FUZZ_CHECK(a->has_username == b->has_username);
    FUZZ_CHECK(a->has_password == b->has_password);
    FUZZ_CHECK(a->keepalive == b->keepalive);
    FUZZ_CHECK(bytes_eq(a->client_id, b->client_id));
    props_eq(&a->props, &b->props);
    if (a->will) {
        FUZZ_CHECK(a->will_qos == b->will_qos && a->will_qos <= 2);
        FUZZ_CHECK(a->will_retain == b->will_retain);
        props_eq(&a->will_props, &b->will_props);
        FUZZ_CHECK(bytes_eq(a->will_topic, b->will_topic));
        FUZZ_CHECK(bytes_eq(a->will_payload, b->will_payload));
        check_topic(a->will_topic);
    }
    if (a->has_username)
        FUZZ_CHECK(bytes_eq(a->username, b->username));
    if (a->has_password)
        FUZZ_CHECK(bytes_eq(a->password, b->password));
}

static void packet_eq(const mqtt_packet *a, const mqtt_packet *b, uint8_t v,
                      mqtt_str last_topic)
{
    FUZZ_CHECK(a->type == b->type);
    switch (a->type) {
    case MQTT_CONNECT:
        connect_eq(&a->u.connect, &b->u.connect);
        break;
    case MQTT_CONNACK:
        FUZZ_CHECK(a->u.connack.session_present ==
                   b->u.connack.session_present);
        FUZZ_CHECK(a->u.connack.reason == b->u.connack.reason);
        props_eq(&a->u.connack.props, &b->u.connack.props);
        break;
    case MQTT_PUBLISH: {
        const mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
        FUZZ_CHECK(x->qos == y->qos && x->qos <= 2);
        FUZZ_CHECK(x->dup == y->dup && x->retain == y->retain);
        if (x->qos > 0)
            FUZZ_CHECK(x->packet_id == y->packet_id && x->packet_id != 0);
        FUZZ_CHECK(bytes_eq(x->topic, y->topic));
        FUZZ_CHECK(bytes_eq(x->payload, y->payload));
        props_eq(&x->props, &y->props);
        check_topic(x->topic);
        break;
    }
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        FUZZ_CHECK(a->u.ack.packet_id == b->u.ack.packet_id);
        FUZZ_CHECK(a->u.ack.reason == b->u.ack.reason);
        props_eq(&a->u.ack.props, &b->u.ack.props);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        subs_eq(&a->u.subscribe, &b->u.subscribe, a->type, v, last_topic);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK: {
        const mqtt_suback *x = &a->u.suback, *y = &b->u.suback;
        FUZZ_CHECK(x->packet_id == y->packet_id);
        FUZZ_CHECK(x->count == y->count);
        FUZZ_CHECK(x->count == 0 || memcmp(x->codes, y->codes, x->count) == 0);
        props_eq(&x->props, &y->props);
        break;
    }
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        FUZZ_CHECK(a->u.disconnect.reason == b->u.disconnect.reason);
        props_eq(&a->u.disconnect.props, &b->u.disconnect.props);
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
        break;
    default:
        FUZZ_CHECK(!"decoded an unknown packet type");
    }
}

/* Every property block of p, so that it can be prepared for encoding. */
static int props_of(mqtt_packet *p, mqtt_props *out[2])
{
    switch (p->type) {
    case MQTT_CONNECT:
        out[0] = &p->u.connect.props;
        out[1] = &p->u.connect.will_props;
        return 2;
    case MQTT_CONNACK:
        out[0] = &p->u.connack.props;
        return 1;
    case MQTT_PUBLISH:
        out[0] = &p->u.publish.props;
        return 1;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        out[0] = &p->u.ack.props;
        return 1;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        out[0] = &p->u.subscribe.props;
        return 1;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        out[0] = &p->u.suback.props;
        return 1;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        out[0] = &p->u.disconnect.props;
        return 1;
    default:
        return 0;
    }
}

static uint8_t *encode_whole(const mqtt_packet *p, uint8_t v, int *len)
{
    int size = mqtt_encoded_size(p, v);
    FUZZ_CHECK(size > 0);
    /* Exactly `size` bytes, so that ASan sees any write past the size the
     * encoder announced. */
    uint8_t *buf = malloc((size_t)size);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(mqtt_encode(p, v, buf, (size_t)size) == size);
    if (size > 1)
        FUZZ_CHECK(mqtt_encode(p, v, buf, (size_t)size - 1) == IMQTT_ENOSPACE);
    *len = size;
    return buf;
}

static void roundtrip(const mqtt_packet *decoded, uint8_t v,
                      mqtt_str last_topic)
{
    mqtt_packet p = *decoded;
    mqtt_props *blocks[2];
    uint32_t *ids[2] = {NULL, NULL};
    int nblocks = props_of(&p, blocks);
    for (int i = 0; i < nblocks; i++)
        ids[i] = props_for_encode(blocks[i]);

    int len;
    uint8_t *enc = encode_whole(&p, v, &len);

    if (p.type == MQTT_PUBLISH) {
        /* The hot path must agree with the whole-packet encoder. */
        uint8_t *hdr = malloc((size_t)len);
        FUZZ_CHECK(hdr != NULL);
        int h = mqtt_encode_publish_header(&p.u.publish, v, hdr, (size_t)len);
        FUZZ_CHECK(h > 0 &&
                   (uint32_t)h + p.u.publish.payload.len == (uint32_t)len);
        FUZZ_CHECK(memcmp(hdr, enc, (size_t)h) == 0);
        free(hdr);
    }

    mqtt_frame f;
    FUZZ_CHECK(mqtt_frame_parse(enc, (size_t)len, 0, &f) == len);
    FUZZ_CHECK(f.type == p.type);
    mqtt_packet again;
    int rc = mqtt_decode(&f, v, &again);
    if (rc != 0)
        fprintf(stderr, "re-decode failed: %s\n", imqtt_strerror(rc));
    FUZZ_CHECK(rc == 0);
    packet_eq(decoded, &again, v, last_topic);

    /* encode(decode(encode(x))) == encode(x) */
    mqtt_props *blocks2[2];
    uint32_t *ids2[2] = {NULL, NULL};
    int n2 = props_of(&again, blocks2);
    for (int i = 0; i < n2; i++)
        ids2[i] = props_for_encode(blocks2[i]);
    int len2;
    uint8_t *enc2 = encode_whole(&again, v, &len2);
    FUZZ_CHECK(len2 == len && memcmp(enc, enc2, (size_t)len) == 0);

    free(enc2);
    free(enc);
    for (int i = 0; i < 2; i++) {
        free(ids[i]);
        free(ids2[i]);
    }
}

/* Byte 0: bits 0..1 the level (0 -> 3, 1 -> 4, else 5); bits 2..7 a
 * maximum packet size, 0 (no limit) for values below 32. */
static uint32_t max_size_of(uint8_t sel)
{
    uint32_t k = sel >> 2;
    return k < 32 ? 0 : (k - 32) * 8 + 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t version = (uint8_t)(3 + ((data[0] & 3) > 2 ? 2 : (data[0] & 3)));
    uint32_t max = max_size_of(data[0]);
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    mqtt_str last_topic = {NULL, 0};

    while (len > 0) {
        mqtt_frame f;
        int n = mqtt_frame_parse(p, len, max, &f);
        if (n <= 0)
            break;
        FUZZ_CHECK((size_t)n <= len);
        FUZZ_CHECK((uint32_t)n == f.header_len + f.remaining);
        FUZZ_CHECK(f.header_len >= 2 && f.header_len <= 5);
        FUZZ_CHECK(f.body == p + f.header_len);
        FUZZ_CHECK(max == 0 || (uint32_t)n <= max);
        /* A cut packet is never an error, only "need more". */
        mqtt_frame cut;
        FUZZ_CHECK(mqtt_frame_parse(p, (size_t)n - 1, max, &cut) == 0);

        mqtt_packet pk;
        if (mqtt_decode(&f, version, &pk) == 0) {
            FUZZ_CHECK(pk.type == f.type);
            uint8_t v = version;
            if (pk.type == MQTT_CONNECT) {
                /* What a broker does: the CONNECT sets the level. */
                v = pk.u.connect.version;
                FUZZ_CHECK(v == MQTT_V31 || v == MQTT_V311 || v == MQTT_V5);
                version = v;
            }
            roundtrip(&pk, v, last_topic);
            if (pk.type == MQTT_PUBLISH && pk.u.publish.topic.len > 0)
                last_topic = pk.u.publish.topic;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
