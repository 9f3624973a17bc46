/* MQTT control packets: framing, decoding and encoding of all 15 types for
 * protocol levels 3 (3.1), 4 (3.1.1) and 5, in both directions.
 *
 * Pure code: no I/O, no globals, no allocation. Decoded packets are views
 * into the caller's input buffer and stay valid only as long as it does.
 *
 * Return convention (h2o style):
 *   mqtt_frame_parse: > 0 bytes of the whole packet, 0 need more input,
 *                     < 0 IMQTT_E* error (the stream is unusable).
 *   mqtt_decode:      0 ok, < 0 IMQTT_E* error.
 *   mqtt_encode*:     > 0 bytes written, < 0 IMQTT_E* (NOSPACE, INVAL...).
 */
#ifndef IMQTT_PACKET_H
#define IMQTT_PACKET_H

#include "mqtt_types.h"
#include "props.h"

/* ---- framing ----------------------------------------------------------- */

typedef struct mqtt_frame {
    uint8_t type;       /* enum mqtt_type */
    uint8_t flags;      /* low nibble of the first byte */
    uint8_t header_len; /* 2..5 */
    uint32_t remaining; /* body length */
    const uint8_t
        *body; /* buf + header_len; valid when the parse returned > 0 */
} mqtt_frame;

/* Cut one packet from buf[0..len).
 *
 * Checks the fixed header as soon as it is readable, before the body has
 * arrived: reserved type 0 (IMQTT_ETYPE), the per-type flag rules
 * (IMQTT_EFLAGS; PUBLISH QoS 3 is IMQTT_EQOS), a variable byte integer of
 * more than 4 bytes (IMQTT_EVARINT) and header_len + remaining > max_size
 * (IMQTT_ETOOLARGE; max_size 0 means no limit). A caller can therefore
 * reject an oversized packet after reading at most 5 bytes of it.
 *
 * When 0 is returned, *out has type/flags filled if the first byte was
 * available and remaining/header_len if the length was complete (the caller
 * may use this to size its buffer); the rest is unspecified. */
int mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_size,
                     mqtt_frame *out);

/* ---- packet structs ---------------------------------------------------- */

typedef struct mqtt_connect {
    uint8_t version;  /* protocol level: 3, 4 or 5 */
    bool clean_start; /* clean session (3.x) / clean start (5) */
    bool will;
    uint8_t will_qos;
    bool will_retain;
    bool has_username;
    bool has_password;
    uint16_t keepalive;
    mqtt_props props; /* v5 */
    mqtt_str client_id;
    mqtt_props will_props;   /* v5, when will */
    mqtt_str will_topic;     /* when will */
    mqtt_bytes will_payload; /* when will */
    mqtt_str username;       /* when has_username */
    mqtt_bytes password;     /* when has_password */
} mqtt_connect;

typedef struct mqtt_connack {
    bool session_present;
    uint8_t reason; /* v5 reason code, or 3.x return code (0..5) */
    mqtt_props props;
} mqtt_connack;

typedef struct mqtt_publish {
    uint8_t qos;
    bool dup;
    bool retain;
    uint16_t packet_id; /* QoS > 0 only */
    mqtt_str topic;     /* may be empty in v5 when a topic alias is given */
    mqtt_props props;
    mqtt_bytes payload;
} mqtt_publish;

/* PUBACK, PUBREC, PUBREL, PUBCOMP. In v5 the reason and properties may be
 * omitted on the wire; they decode as 0 and empty. */
typedef struct mqtt_ack {
    uint16_t packet_id;
    uint8_t reason;
    mqtt_props props;
} mqtt_ack;

/* Subscription options of one SUBSCRIBE entry. For 3.x only qos is used. */
typedef struct mqtt_sub_opts {
    uint8_t qos;
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling; /* 0, 1, 2 */
} mqtt_sub_opts;

typedef struct mqtt_sub_entry {
    mqtt_str filter;
    mqtt_sub_opts opts;
} mqtt_sub_entry;

/* SUBSCRIBE and UNSUBSCRIBE: `entries` is the validated list as it is on
 * the wire (for UNSUBSCRIBE the filters only), `count` how many; walk it
 * with mqtt_sub_next / mqtt_unsub_next. */
typedef struct mqtt_subscribe {
    uint16_t packet_id;
    mqtt_props props;
    mqtt_bytes entries;
    uint32_t count;
} mqtt_subscribe;

typedef mqtt_subscribe mqtt_unsubscribe;

/* SUBACK and UNSUBACK: one reason code per filter (3.1.1 UNSUBACK has
 * none: count 0). Decode: codes points into the input. Encode: codes is
 * borrowed for the call. */
typedef struct mqtt_suback {
    uint16_t packet_id;
    mqtt_props props;
    const uint8_t *codes;
    uint32_t count;
} mqtt_suback;

typedef mqtt_suback mqtt_unsuback;

/* DISCONNECT and AUTH (v5 carry a reason and properties; may be omitted). */
typedef struct mqtt_disconnect {
    uint8_t reason;
    mqtt_props props;
} mqtt_disconnect;

typedef mqtt_disconnect mqtt_auth;

typedef struct mqtt_packet {
    uint8_t type; /* enum mqtt_type */
    union {
        mqtt_connect connect;
        mqtt_connack connack;
        mqtt_publish publish;
        mqtt_ack ack; /* PUBACK PUBREC PUBREL PUBCOMP */
        mqtt_subscribe subscribe;
        mqtt_unsubscribe unsubscribe;
        mqtt_suback suback;
        mqtt_unsuback unsuback;
        mqtt_disconnect disconnect;
        mqtt_auth auth;
    } u; /* PINGREQ, PINGRESP: nothing */
} mqtt_packet;

/* ---- decoding ---------------------------------------------------------- */

/* Decode the packet in frame f for protocol level `version` (3, 4 or 5).
 * CONNECT ignores `version` and reports the level it carries in
 * connect.version; a v5-only packet (AUTH) under 3.x is IMQTT_ETYPE.
 *
 * Validation done here, so that callers never see malformed fields: every
 * UTF-8 string (IMQTT_EUTF8: ill-formed, U+0000, surrogates), topic names
 * of PUBLISH and wills (IMQTT_ETOPIC: wildcards; empty topic without a
 * topic alias in v5, always in 3.x), packet
 * id 0 (IMQTT_EPACKETID), QoS 3 (IMQTT_EQOS), reserved bits
 * (IMQTT_ERESERVED), SUBSCRIBE/UNSUBSCRIBE with no entry (IMQTT_EEMPTY),
 * bytes left after the last field (IMQTT_ETRAILING), properties (see
 * mqtt_props_decode). CONNECT: protocol name/level (IMQTT_EPROTONAME,
 * IMQTT_EVERSION), will flag consistency (IMQTT_EWILL), password without
 * user name in 3.x (IMQTT_EMALFORMED). Reason / return codes a packet may
 * not carry (IMQTT_EREASON). A v5 subscription option Retain Handling 3 is
 * IMQTT_EMALFORMED. Checks that need to know the direction (a Subscription
 * Identifier in a client's PUBLISH, No Local on a shared subscription) are
 * left to the caller. Topic filters in SUBSCRIBE / UNSUBSCRIBE are checked
 * as UTF-8 strings only: whether each is a valid filter
 * (mqtt_topic_filter_check) is the receiver's to answer per filter
 * (SUBACK / UNSUBACK 0x8F), not a reason to drop the whole packet. */
int mqtt_decode(const mqtt_frame *f, uint8_t version, mqtt_packet *out);

/* Walk the entries of a decoded SUBSCRIBE / UNSUBSCRIBE. *pos starts at 0;
 * returns 1 with *out filled while there is an entry, 0 at the end. */
int mqtt_sub_next(const mqtt_subscribe *s, uint8_t version, uint32_t *pos,
                  mqtt_sub_entry *out);
int mqtt_unsub_next(const mqtt_unsubscribe *u, uint32_t *pos, mqtt_str *out);

/* ---- encoding ---------------------------------------------------------- */

/* Encode p for protocol level `version` into buf[0..cap). Returns bytes
 * written, IMQTT_ENOSPACE, or IMQTT_EINVAL (a field the level cannot
 * carry, e.g. a v5-only packet for 3.x). v5-only fields (properties,
 * reason codes other than the 3.x return codes) are dropped for 3.x.
 * In v5, acks and DISCONNECT/AUTH use the short forms when the reason is 0
 * and there are no properties.
 *
 * SUBSCRIBE and UNSUBSCRIBE encode from `entries`/`count` as produced by
 * mqtt_sub_encode_entries / mqtt_unsub_encode_entries, or from a decoded
 * packet. */
int mqtt_encode(const mqtt_packet *p, uint8_t version, uint8_t *buf,
                size_t cap);

/* Size mqtt_encode would write, or negative IMQTT_EINVAL. */
int mqtt_encoded_size(const mqtt_packet *p, uint8_t version);

/* The hot path: encode everything of a PUBLISH except the payload (fixed
 * header, topic, packet id, properties), so that the payload, shared by all
 * subscribers, is written from where it already is (vectored write).
 * Returns the header length; header + payload.len is the whole packet. */
int mqtt_encode_publish_header(const mqtt_publish *p, uint8_t version,
                               uint8_t *buf, size_t cap);

/* Build the wire form of SUBSCRIBE entries / UNSUBSCRIBE filters into
 * buf[0..cap) (client side). Returns bytes written or IMQTT_ENOSPACE. */
int mqtt_sub_encode_entries(const mqtt_sub_entry *e, uint32_t n,
                            uint8_t version, uint8_t *buf, size_t cap);
int mqtt_unsub_encode_entries(const mqtt_str *filters, uint32_t n, uint8_t *buf,
                              size_t cap);

/* ---- variable byte integers (exposed for the WebSocket layer and tests) */

/* Decode at buf[0..len). Returns bytes used (1..4), 0 need more, or
 * IMQTT_EVARINT (5th byte, or a non-minimal encoding). */
int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *out);
/* Bytes needed for v (1..4); v must be <= MQTT_MAX_REMAINING. */
int mqtt_varint_size(uint32_t v);
/* Write v at buf (room for 4 bytes). Returns bytes written. */
int mqtt_varint_encode(uint32_t v, uint8_t *buf);

#endif
