/* MQTT 5 properties [MQTT-2.2.2]: the table of identifiers, one validating
 * decode pass, iterators for the repeatable ones, and the encoder. */
#include "props.h"
#include "codec_int.h"
#include "errors.h"
#include "topic.h"
#include "utf8.h"
#include "wire.h"

#include <string.h>

#define IN(t) (1u << (t))
#define WILL  IN(MQTT_PROPS_IN_WILL)
#define ACKS \
    (IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP))

typedef struct prop_info {
    uint8_t type;   /* enum mqtt_prop_type */
    uint32_t where; /* IN(packet type) bits, WILL */
    const char *name;
} prop_info;

/* MQTT 5.0 table 2-4. Indexed by identifier; gaps are MQTT_PT_NONE. */
static const prop_info prop_table[] = {
    [0x01] = {MQTT_PT_BYTE, IN(MQTT_PUBLISH) | WILL,
              "Payload Format Indicator"},
    [0x02] = {MQTT_PT_U32, IN(MQTT_PUBLISH) | WILL, "Message Expiry Interval"},
    [0x03] = {MQTT_PT_STRING, IN(MQTT_PUBLISH) | WILL, "Content Type"},
    [0x08] = {MQTT_PT_STRING, IN(MQTT_PUBLISH) | WILL, "Response Topic"},
    [0x09] = {MQTT_PT_BINARY, IN(MQTT_PUBLISH) | WILL, "Correlation Data"},
    [0x0B] = {MQTT_PT_VARINT, IN(MQTT_PUBLISH) | IN(MQTT_SUBSCRIBE),
              "Subscription Identifier"},
    [0x11] = {MQTT_PT_U32,
              IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT),
              "Session Expiry Interval"},
    [0x12] = {MQTT_PT_STRING, IN(MQTT_CONNACK), "Assigned Client Identifier"},
    [0x13] = {MQTT_PT_U16, IN(MQTT_CONNACK), "Server Keep Alive"},
    [0x15] = {MQTT_PT_STRING,
              IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH),
              "Authentication Method"},
    [0x16] = {MQTT_PT_BINARY,
              IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH),
              "Authentication Data"},
    [0x17] = {MQTT_PT_BYTE, IN(MQTT_CONNECT), "Request Problem Information"},
    [0x18] = {MQTT_PT_U32, WILL, "Will Delay Interval"},
    [0x19] = {MQTT_PT_BYTE, IN(MQTT_CONNECT), "Request Response Information"},
    [0x1A] = {MQTT_PT_STRING, IN(MQTT_CONNACK), "Response Information"},
    [0x1C] = {MQTT_PT_STRING, IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT),
              "Server Reference"},
    [0x1F] = {MQTT_PT_STRING,
              IN(MQTT_CONNACK) | ACKS | IN(MQTT_SUBACK) | IN(MQTT_UNSUBACK) |
                  IN(MQTT_DISCONNECT) | IN(MQTT_AUTH),
              "Reason String"},
    [0x21] = {MQTT_PT_U16, IN(MQTT_CONNECT) | IN(MQTT_CONNACK),
              "Receive Maximum"},
    [0x22] = {MQTT_PT_U16, IN(MQTT_CONNECT) | IN(MQTT_CONNACK),
              "Topic Alias Maximum"},
    [0x23] = {MQTT_PT_U16, IN(MQTT_PUBLISH), "Topic Alias"},
    [0x24] = {MQTT_PT_BYTE, IN(MQTT_CONNACK), "Maximum QoS"},
    [0x25] = {MQTT_PT_BYTE, IN(MQTT_CONNACK), "Retain Available"},
    [0x26] = {MQTT_PT_PAIR,
              IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_PUBLISH) | WILL |
                  ACKS | IN(MQTT_SUBSCRIBE) | IN(MQTT_SUBACK) |
                  IN(MQTT_UNSUBSCRIBE) | IN(MQTT_UNSUBACK) |
                  IN(MQTT_DISCONNECT) | IN(MQTT_AUTH),
              "User Property"},
    [0x27] = {MQTT_PT_U32, IN(MQTT_CONNECT) | IN(MQTT_CONNACK),
              "Maximum Packet Size"},
    [0x28] = {MQTT_PT_BYTE, IN(MQTT_CONNACK),
              "Wildcard Subscription Available"},
    [0x29] = {MQTT_PT_BYTE, IN(MQTT_CONNACK),
              "Subscription Identifier Available"},
    [0x2A] = {MQTT_PT_BYTE, IN(MQTT_CONNACK), "Shared Subscription Available"},
};

#define PROP_TABLE_LEN (sizeof prop_table / sizeof prop_table[0])

/* Bits of `present` that name a property stored in a scalar field; the
 * user property is never a `present` bit (user_count tells). */
#define SCALAR_MASK                                                          \
    (((uint64_t)1 << 0x01) | ((uint64_t)1 << 0x02) | ((uint64_t)1 << 0x03) | \
     ((uint64_t)1 << 0x08) | ((uint64_t)1 << 0x09) | ((uint64_t)1 << 0x0B) | \
     ((uint64_t)1 << 0x11) | ((uint64_t)1 << 0x12) | ((uint64_t)1 << 0x13) | \
     ((uint64_t)1 << 0x15) | ((uint64_t)1 << 0x16) | ((uint64_t)1 << 0x17) | \
     ((uint64_t)1 << 0x18) | ((uint64_t)1 << 0x19) | ((uint64_t)1 << 0x1A) | \
     ((uint64_t)1 << 0x1C) | ((uint64_t)1 << 0x1F) | ((uint64_t)1 << 0x21) | \
     ((uint64_t)1 << 0x22) | ((uint64_t)1 << 0x23) | ((uint64_t)1 << 0x24) | \
     ((uint64_t)1 << 0x25) | ((uint64_t)1 << 0x27) | ((uint64_t)1 << 0x28) | \
     ((uint64_t)1 << 0x29) | ((uint64_t)1 << 0x2A))

enum mqtt_prop_type mqtt_prop_type_of(uint32_t id)
{
    if (id >= PROP_TABLE_LEN)
        return MQTT_PT_NONE;
    return (enum mqtt_prop_type)prop_table[id].type;
}

bool mqtt_prop_allowed(uint32_t id, int packet_type)
{
    if (id >= PROP_TABLE_LEN || packet_type < 0 ||
        packet_type > MQTT_PROPS_IN_WILL)
        return false;
    return (prop_table[id].where >> packet_type) & 1u;
}

const char *mqtt_prop_name(uint32_t id)
{
    if (id >= PROP_TABLE_LEN || !prop_table[id].name)
        return "?";
    return prop_table[id].name;
}

/* ---- decoding ---------------------------------------------------------- */

static int read_str(wire_reader *r, mqtt_str *out)
{
    int rc = wire_lenbytes(r, out);
    if (rc < 0)
        return rc;
    return mqtt_utf8_check(out->ptr, out->len);
}

static int read_flag(wire_reader *r, uint8_t *out)
{
    int rc = wire_u8(r, out);
    if (rc < 0)
        return rc;
    return *out > 1 ? IMQTT_EPROPVAL : 0;
}

static int read_nonzero_u16(wire_reader *r, uint16_t *out)
{
    int rc = wire_u16(r, out);
    if (rc < 0)
        return rc;
    return *out == 0 ? IMQTT_EPROPVAL : 0;
}

/* Read the value of scalar property `id` into its field of *p. */
static int read_scalar(wire_reader *r, uint32_t id, mqtt_props *p)
{
    int rc;
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT:
        return read_flag(r, &p->payload_format);
    case MQTT_PROP_MESSAGE_EXPIRY:
        return wire_u32(r, &p->message_expiry);
    case MQTT_PROP_CONTENT_TYPE:
        return read_str(r, &p->content_type);
    case MQTT_PROP_RESPONSE_TOPIC:
        rc = wire_lenbytes(r, &p->response_topic);
        if (rc < 0)
            return rc;
        /* A response topic is a topic name [MQTT-3.3.2-14]. */
        rc = mqtt_topic_name_check(p->response_topic, NULL);
        return rc == IMQTT_ETOPIC ? IMQTT_EPROPVAL : rc;
    case MQTT_PROP_CORRELATION_DATA:
        return wire_lenbytes(r, &p->correlation_data);
    case MQTT_PROP_SUBSCRIPTION_ID:
        rc = wire_varint(r, &p->subscription_id);
        if (rc < 0)
            return rc;
        return p->subscription_id == 0 ? IMQTT_EPROPVAL : 0;
    case MQTT_PROP_SESSION_EXPIRY:
        return wire_u32(r, &p->session_expiry);
    case MQTT_PROP_ASSIGNED_CLIENT_ID:
        return read_str(r, &p->assigned_client_id);
    case MQTT_PROP_SERVER_KEEP_ALIVE:
        return wire_u16(r, &p->server_keep_alive);
    case MQTT_PROP_AUTH_METHOD:
        return read_str(r, &p->auth_method);
    case MQTT_PROP_AUTH_DATA:
        return wire_lenbytes(r, &p->auth_data);
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
        return read_flag(r, &p->request_problem_info);
    case MQTT_PROP_WILL_DELAY:
        return wire_u32(r, &p->will_delay);
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
        return read_flag(r, &p->request_response_info);
    case MQTT_PROP_RESPONSE_INFO:
        return read_str(r, &p->response_info);
    case MQTT_PROP_SERVER_REFERENCE:
        return read_str(r, &p->server_reference);
    case MQTT_PROP_REASON_STRING:
        return read_str(r, &p->reason_string);
    case MQTT_PROP_RECEIVE_MAXIMUM:
        return read_nonzero_u16(r, &p->receive_maximum);
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
        return wire_u16(r, &p->topic_alias_maximum);
    case MQTT_PROP_TOPIC_ALIAS:
        /* 0 is invalid, but as 0x94 Topic Alias invalid, which the
         * receiver chooses with its own maximum [MQTT-3.3.2-8]. */
        return wire_u16(r, &p->topic_alias);
    case MQTT_PROP_MAXIMUM_QOS:
        return read_flag(r, &p->maximum_qos);
    case MQTT_PROP_RETAIN_AVAILABLE:
        return read_flag(r, &p->retain_available);
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
        rc = wire_u32(r, &p->maximum_packet_size);
        if (rc < 0)
            return rc;
        return p->maximum_packet_size == 0 ? IMQTT_EPROPVAL : 0;
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
        return read_flag(r, &p->wildcard_sub_available);
    case MQTT_PROP_SUB_ID_AVAILABLE:
        return read_flag(r, &p->sub_id_available);
    case MQTT_PROP_SHARED_SUB_AVAILABLE:
        return read_flag(r, &p->shared_sub_available);
    default:
        return IMQTT_EPROPID; /* unreachable: the table was consulted */
    }
}

int mqtt_props_decode(const uint8_t *buf, size_t len, int packet_type,
                      mqtt_props *out)
{
    memset(out, 0, sizeof *out);
    if (packet_type < 0 || packet_type > MQTT_PROPS_IN_WILL)
        return IMQTT_EINVAL;
    wire_reader r =
        wire_reader_make(buf, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
    uint32_t block_len;
    int rc = wire_varint(&r, &block_len);
    if (rc < 0)
        return rc;
    if (block_len > wire_left(&r))
        return IMQTT_EMALFORMED;
    out->raw.ptr = wire_cur(&r);
    out->raw.len = block_len;

    wire_reader b = wire_reader_make(out->raw.ptr, block_len);
    const uint32_t here = 1u << packet_type;
    while (wire_left(&b) > 0) {
        uint32_t id;
        rc = wire_varint(&b, &id);
        if (rc < 0)
            return rc;
        if (mqtt_prop_type_of(id) == MQTT_PT_NONE)
            return IMQTT_EPROPID;
        if (!(prop_table[id].where & here))
            return IMQTT_EPROPPKT;

        if (id == MQTT_PROP_USER) {
            mqtt_str k, v;
            if ((rc = read_str(&b, &k)) < 0 || (rc = read_str(&b, &v)) < 0)
                return rc;
            out->user_count++;
            continue;
        }
        if (id == MQTT_PROP_SUBSCRIPTION_ID && packet_type == MQTT_PUBLISH) {
            /* A PUBLISH to a subscriber carries one identifier per matching
             * subscription; keep the first, the iterator gives the rest. */
            uint32_t sid;
            rc = wire_varint(&b, &sid);
            if (rc < 0)
                return rc;
            if (sid == 0)
                return IMQTT_EPROPVAL;
            if (out->sub_id_count++ == 0)
                out->subscription_id = sid;
            mqtt_props_set(out, id);
            continue;
        }
        if (mqtt_props_has(out, id))
            return IMQTT_EPROPDUP;
        mqtt_props_set(out, id);
        rc = read_scalar(&b, id, out);
        if (rc < 0)
            return rc;
        if (id == MQTT_PROP_SUBSCRIPTION_ID)
            out->sub_id_count = 1;
    }
    return (int)(r.pos + block_len);
}

/* Skip one property value of the given type; the block is already valid. */
static int skip_value(wire_reader *r, uint8_t type)
{
    uint32_t v32;
    uint16_t v16;
    uint8_t v8;
    mqtt_bytes b;
    switch (type) {
    case MQTT_PT_BYTE:
        return wire_u8(r, &v8);
    case MQTT_PT_U16:
        return wire_u16(r, &v16);
    case MQTT_PT_U32:
        return wire_u32(r, &v32);
    case MQTT_PT_VARINT:
        return wire_varint(r, &v32);
    case MQTT_PT_STRING:
    case MQTT_PT_BINARY:
        return wire_lenbytes(r, &b);
    case MQTT_PT_PAIR:
        if (wire_lenbytes(r, &b) < 0)
            return IMQTT_EMALFORMED;
        return wire_lenbytes(r, &b);
    default:
        return IMQTT_EPROPID;
    }
}

/* Advance *pos to just after the identifier of the next property `want`;
 * returns 1 if found. */
static int seek_prop(mqtt_bytes raw, uint32_t *pos, uint32_t want,
                     wire_reader *r)
{
    if (*pos >= raw.len)
        return 0;
    *r = wire_reader_make(raw.ptr, raw.len);
    r->pos = *pos;
    while (wire_left(r) > 0) {
        uint32_t id;
        if (wire_varint(r, &id) < 0)
            return 0;
        if (id == want)
            return 1;
        if (skip_value(r, mqtt_prop_type_of(id)) < 0)
            return 0;
    }
    *pos = r->pos;
    return 0;
}

int mqtt_props_next_user(mqtt_bytes raw, uint32_t *pos, mqtt_user_prop *out)
{
    wire_reader r;
    if (!seek_prop(raw, pos, MQTT_PROP_USER, &r))
        return 0;
    if (wire_lenbytes(&r, &out->key) < 0 || wire_lenbytes(&r, &out->value) < 0)
        return 0;
    *pos = r.pos;
    return 1;
}

int mqtt_props_next_sub_id(mqtt_bytes raw, uint32_t *pos, uint32_t *out)
{
    wire_reader r;
    if (!seek_prop(raw, pos, MQTT_PROP_SUBSCRIPTION_ID, &r))
        return 0;
    if (wire_varint(&r, out) < 0)
        return 0;
    *pos = r.pos;
    return 1;
}

/* ---- encoding ---------------------------------------------------------- */

/* Size of the value (without the identifier byte) of scalar property id. */
static const mqtt_bytes *bytes_field(const mqtt_props *p, uint32_t id);

static size_t scalar_size(const mqtt_props *p, uint32_t id)
{
    const mqtt_bytes *b = bytes_field(p, id);
    if (b)
        return 2 + (size_t)b->len;
    switch (prop_table[id].type) {
    case MQTT_PT_BYTE:
        return 1;
    case MQTT_PT_U16:
        return 2;
    case MQTT_PT_VARINT:
        return (size_t)wire_varint_size(p->subscription_id);
    default:
        return 4;
    }
}

static uint8_t *put_scalar(uint8_t *w, const mqtt_props *p, uint32_t id)
{
    *w++ = (uint8_t)id;
    switch (id) {
    case MQTT_PROP_PAYLOAD_FORMAT:
        return wire_put_u8(w, p->payload_format);
    case MQTT_PROP_MESSAGE_EXPIRY:
        return wire_put_u32(w, p->message_expiry);
    case MQTT_PROP_CONTENT_TYPE:
        return wire_put_lenbytes(w, p->content_type);
    case MQTT_PROP_RESPONSE_TOPIC:
        return wire_put_lenbytes(w, p->response_topic);
    case MQTT_PROP_CORRELATION_DATA:
        return wire_put_lenbytes(w, p->correlation_data);
    case MQTT_PROP_SUBSCRIPTION_ID:
        return wire_put_varint(w, p->subscription_id);
    case MQTT_PROP_SESSION_EXPIRY:
        return wire_put_u32(w, p->session_expiry);
    case MQTT_PROP_ASSIGNED_CLIENT_ID:
        return wire_put_lenbytes(w, p->assigned_client_id);
    case MQTT_PROP_SERVER_KEEP_ALIVE:
        return wire_put_u16(w, p->server_keep_alive);
    case MQTT_PROP_AUTH_METHOD:
        return wire_put_lenbytes(w, p->auth_method);
    case MQTT_PROP_AUTH_DATA:
        return wire_put_lenbytes(w, p->auth_data);
    case MQTT_PROP_REQUEST_PROBLEM_INFO:
        return wire_put_u8(w, p->request_problem_info);
    case MQTT_PROP_WILL_DELAY:
        return wire_put_u32(w, p->will_delay);
    case MQTT_PROP_REQUEST_RESPONSE_INFO:
        return wire_put_u8(w, p->request_response_info);
    case MQTT_PROP_RESPONSE_INFO:
        return wire_put_lenbytes(w, p->response_info);
    case MQTT_PROP_SERVER_REFERENCE:
        return wire_put_lenbytes(w, p->server_reference);
    case MQTT_PROP_REASON_STRING:
        return wire_put_lenbytes(w, p->reason_string);
    case MQTT_PROP_RECEIVE_MAXIMUM:
        return wire_put_u16(w, p->receive_maximum);
    case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
        return wire_put_u16(w, p->topic_alias_maximum);
    case MQTT_PROP_TOPIC_ALIAS:
        return wire_put_u16(w, p->topic_alias);
    case MQTT_PROP_MAXIMUM_QOS:
        return wire_put_u8(w, p->maximum_qos);
    case MQTT_PROP_RETAIN_AVAILABLE:
        return wire_put_u8(w, p->retain_available);
    case MQTT_PROP_MAXIMUM_PACKET_SIZE:
        return wire_put_u32(w, p->maximum_packet_size);
    case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
        return wire_put_u8(w, p->wildcard_sub_available);
    case MQTT_PROP_SUB_ID_AVAILABLE:
        return wire_put_u8(w, p->sub_id_available);
    default: /* MQTT_PROP_SHARED_SUB_AVAILABLE */
        return wire_put_u8(w, p->shared_sub_available);
    }
}

/* The caller's arrays are used only when their pointer is set, so that a
 * decoded block (counts set, arrays NULL) can be re-encoded: its user
 * properties then come from user_from, its subscription id from the
 * scalar field. */
static uint32_t user_array_count(const mqtt_props *p)
{
    return p->user ? p->user_count : 0;
}

static uint32_t sub_array_count(const mqtt_props *p)
{
    return p->sub_ids ? p->sub_id_count : 0;
}

/* Size of the property content (without the block's length prefix). */
static size_t content_size(const mqtt_props *p)
{
    size_t n = 0;
    uint64_t bits = p->present & SCALAR_MASK;
    if (sub_array_count(p) > 0) {
        bits &= ~((uint64_t)1 << MQTT_PROP_SUBSCRIPTION_ID);
        for (uint32_t i = 0; i < p->sub_id_count; i++)
            n += 1 + (size_t)wire_varint_size(p->sub_ids[i]);
    }
    while (bits) {
        uint32_t id = (uint32_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        n += 1 + scalar_size(p, id);
    }
    for (uint32_t i = 0; i < user_array_count(p); i++)
        n += 5 + (size_t)p->user[i].key.len + p->user[i].value.len;
    if (p->user_from.len) {
        uint32_t pos = 0;
        mqtt_user_prop u;
        while (mqtt_props_next_user(p->user_from, &pos, &u))
            n += 5 + (size_t)u.key.len + u.value.len;
    }
    return n;
}

size_t mqtt_props_size(const mqtt_props *p)
{
    size_t n = content_size(p);
    return (size_t)wire_varint_size((uint32_t)n) + n;
}

static uint8_t *put_pair(uint8_t *w, const mqtt_user_prop *u)
{
    *w++ = MQTT_PROP_USER;
    w = wire_put_lenbytes(w, u->key);
    return wire_put_lenbytes(w, u->value);
}

/* The view behind a string or binary property, NULL for other types. */
static const mqtt_bytes *bytes_field(const mqtt_props *p, uint32_t id)
{
    switch (id) {
    case MQTT_PROP_CONTENT_TYPE:
        return &p->content_type;
    case MQTT_PROP_RESPONSE_TOPIC:
        return &p->response_topic;
    case MQTT_PROP_CORRELATION_DATA:
        return &p->correlation_data;
    case MQTT_PROP_ASSIGNED_CLIENT_ID:
        return &p->assigned_client_id;
    case MQTT_PROP_AUTH_METHOD:
        return &p->auth_method;
    case MQTT_PROP_AUTH_DATA:
        return &p->auth_data;
    case MQTT_PROP_RESPONSE_INFO:
        return &p->response_info;
    case MQTT_PROP_SERVER_REFERENCE:
        return &p->server_reference;
    case MQTT_PROP_REASON_STRING:
        return &p->reason_string;
    default:
        return NULL;
    }
}

/* Whether every length fits its two-byte prefix and every subscription id
 * its variable byte integer; anything else cannot be put on the wire. */
static bool encodable(const mqtt_props *p)
{
    uint64_t bits = p->present & SCALAR_MASK;
    while (bits) {
        uint32_t id = (uint32_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        const mqtt_bytes *b = bytes_field(p, id);
        if (b && b->len > 0xFFFF)
            return false;
    }
    if (mqtt_props_has(p, MQTT_PROP_SUBSCRIPTION_ID) &&
        p->subscription_id > MQTT_MAX_REMAINING)
        return false;
    for (uint32_t i = 0; i < sub_array_count(p); i++)
        if (p->sub_ids[i] > MQTT_MAX_REMAINING)
            return false;
    for (uint32_t i = 0; i < user_array_count(p); i++)
        if (p->user[i].key.len > 0xFFFF || p->user[i].value.len > 0xFFFF)
            return false;
    return true;
}

int mqtt__props_check(const mqtt_props *p)
{
    return encodable(p) ? 0 : IMQTT_EINVAL;
}

size_t mqtt__props_content_size(const mqtt_props *p)
{
    return content_size(p);
}

uint8_t *mqtt__props_write(const mqtt_props *p, size_t n, uint8_t *w)
{
    w = wire_put_varint(w, (uint32_t)n);
    uint64_t bits = p->present & SCALAR_MASK;
    bool sub_array = sub_array_count(p) > 0;
    if (sub_array)
        bits |= (uint64_t)1 << MQTT_PROP_SUBSCRIPTION_ID;
    bool users = user_array_count(p) > 0 || p->user_from.len > 0;
    if (users)
        bits |= (uint64_t)1 << MQTT_PROP_USER;
    /* Ascending identifier order: not required by the spec, but it makes
     * the output deterministic, which the byte-exact tests rely on. */
    while (bits) {
        uint32_t id = (uint32_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        if (id == MQTT_PROP_SUBSCRIPTION_ID && sub_array) {
            for (uint32_t i = 0; i < p->sub_id_count; i++) {
                *w++ = MQTT_PROP_SUBSCRIPTION_ID;
                w = wire_put_varint(w, p->sub_ids[i]);
            }
        } else if (id == MQTT_PROP_USER) {
            for (uint32_t i = 0; i < user_array_count(p); i++)
                w = put_pair(w, &p->user[i]);
            uint32_t pos = 0;
            mqtt_user_prop u;
            while (mqtt_props_next_user(p->user_from, &pos, &u))
                w = put_pair(w, &u);
        } else {
            w = put_scalar(w, p, id);
        }
    }
    return w;
}

/* Returns bytes written, IMQTT_ENOSPACE, or IMQTT_EINVAL for a value that
 * cannot be encoded (a string over 65,535 bytes, an id over 268,435,455). */
int mqtt_props_encode(const mqtt_props *p, uint8_t *buf, size_t cap)
{
    if (!encodable(p))
        return IMQTT_EINVAL;
    size_t n = content_size(p);
    if (n > MQTT_MAX_REMAINING)
        return IMQTT_EINVAL;
    size_t total = (size_t)wire_varint_size((uint32_t)n) + n;
    if (total > cap)
        return IMQTT_ENOSPACE;
    return (int)(mqtt__props_write(p, n, buf) - buf);
}
