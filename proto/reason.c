#include "reason.h"

#include "errors.h"

const char *mqtt_reason_name(uint8_t rc)
{
    switch (rc) {
#define MQTT_REASON_CASE_(name, value, text) \
    case value:                              \
        return text;
        MQTT_REASON_MAP(MQTT_REASON_CASE_)
#undef MQTT_REASON_CASE_
    default:
        return "?";
    }
}

/* 3.1.1 has six CONNACK codes, so v5 refusals fold into the nearest one:
 *
 *   0x00 Success                          -> 0 accepted
 *   0x84 Unsupported Protocol Version     -> 1 unacceptable protocol version
 *   0x85 Client Identifier not valid      -> 2 identifier rejected
 *   0x86 Bad User Name or Password        -> 4 bad user name or password
 *   0x87 Not authorized                   -> 5 not authorized
 *   0x8A Banned                           -> 5 (a decision about who the
 *   0x8C Bad authentication method        -> 5  client is, not about load)
 *   anything else                         -> 3 server unavailable
 *
 * "Anything else" covers 0x88 Server unavailable, 0x89 Server busy, 0x8B
 * shutting down, 0x97 quota, 0x9C/0x9D other server, 0x9F rate exceeded,
 * but also 0x80..0x83, 0x95, 0x99..0x9B: 3.1.1 has no code for those and
 * "unavailable" makes a client retry later rather than fix its
 * credentials. A non-zero success code is a caller bug; it still refuses
 * rather than accepts. */
uint8_t mqtt_reason_to_v3_connack(uint8_t rc)
{
    switch (rc) {
    case MQTT_RC_SUCCESS:
        return MQTT_V3_ACCEPTED;
    case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
        return MQTT_V3_BAD_VERSION;
    case MQTT_RC_CLIENT_ID_NOT_VALID:
        return MQTT_V3_ID_REJECTED;
    case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
        return MQTT_V3_BAD_CREDENTIALS;
    case MQTT_RC_NOT_AUTHORIZED:
    case MQTT_RC_BANNED:
    case MQTT_RC_BAD_AUTH_METHOD:
        return MQTT_V3_NOT_AUTHORIZED;
    default:
        return MQTT_V3_UNAVAILABLE;
    }
}

uint8_t mqtt_reason_to_v3_suback(uint8_t rc)
{
    return rc <= MQTT_RC_GRANTED_QOS2 ? rc : MQTT_V3_SUBACK_FAILURE;
}

/* MQTT 5 section 4.13 splits decode failures in two: a Malformed Packet
 * cannot be parsed per the spec (0x81); a Protocol Error parsed but carries
 * data the protocol does not allow (0x82). Where the spec names the
 * category for a case we follow it:
 *
 *   ETOOLARGE                          0x95  Packet too large
 *   EVERSION EPROTONAME                0x84  3.1.2.1 / 3.1.2.2
 *   EPROPDUP EPROPVAL                  0x82  "It is a Protocol Error to
 *                                            include ... more than once /
 *                                            a value of 0" (3.1.2.11 ...)
 *   EEMPTY                             0x82  "A SUBSCRIBE packet with no
 *                                            Payload is a Protocol Error"
 *   ETOPIC                             0x82  "It is a Protocol Error if the
 *                                            Topic Name is zero length and
 *                                            there is no Topic Alias"
 *   EFILTER EPACKETID EREASON ETYPE    0x82  well-formed fields whose value
 *                                            the protocol forbids
 *   EPROPID EPROPPKT                   0x81  2.2.2.2: an identifier "not
 *                                            valid for its packet type ...
 *                                            is a Malformed Packet"
 *   EVARINT EFLAGS EQOS ERESERVED      0x81  each called Malformed where the
 *   EUTF8 EWILL EMALFORMED ETRAILING         spec defines the field
 *   0                                  0x00
 *
 * Errors the broker detects from protocol state map to their own codes:
 *
 *   EPROTOCOL ESERVERONLY              0x82  (ESERVERONLY: a client sending
 *                                            CONNACK, SUBACK, PINGRESP ...)
 *   EALIAS                             0x94  Topic Alias invalid
 *   ERECVMAX                           0x93  Receive Maximum exceeded
 *   ERETAINNS                          0x9A  Retain not supported
 *   EDENIED                            0x87  Not authorized
 *   EQUOTA, ESTOREFULL                 0x97  Quota exceeded
 *   ECLIENTID                          0x85  Client Identifier not valid
 *   EAUTH                              0x86  Bad User Name or Password
 *   EAUTHRATE                          0x9F  Connection rate exceeded
 *                                            (too many failed
 *                                            authentications; 3.1.1: 3)
 *   anything else (NOMEM, IO ...)      0x80  Unspecified error
 */
uint8_t mqtt_reason_for_error(int err)
{
    switch (err) {
    case IMQTT_OK:
        return MQTT_RC_SUCCESS;
    case IMQTT_ETOOLARGE:
        return MQTT_RC_PACKET_TOO_LARGE;
    case IMQTT_EVERSION:
    case IMQTT_EPROTONAME:
        return MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION;
    case IMQTT_EPROPDUP:
    case IMQTT_EPROPVAL:
    case IMQTT_EEMPTY:
    case IMQTT_ETOPIC:
    case IMQTT_EFILTER:
    case IMQTT_EPACKETID:
    case IMQTT_EREASON:
    case IMQTT_ETYPE:
    case IMQTT_EPROTOCOL:
    case IMQTT_ESERVERONLY:
        return MQTT_RC_PROTOCOL_ERROR;
    case IMQTT_EALIAS:
        return MQTT_RC_TOPIC_ALIAS_INVALID;
    case IMQTT_ERECVMAX:
        return MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED;
    case IMQTT_ERETAINNS:
        return MQTT_RC_RETAIN_NOT_SUPPORTED;
    case IMQTT_EDENIED:
        return MQTT_RC_NOT_AUTHORIZED;
    case IMQTT_EQUOTA:
    case IMQTT_ESTOREFULL:
        return MQTT_RC_QUOTA_EXCEEDED;
    case IMQTT_ECLIENTID:
        return MQTT_RC_CLIENT_ID_NOT_VALID;
    case IMQTT_EPAYLOAD:
        return MQTT_RC_PAYLOAD_FORMAT_INVALID;
    case IMQTT_EAUTH:
        return MQTT_RC_BAD_USERNAME_OR_PASSWORD;
    case IMQTT_EAUTHRATE:
        return MQTT_RC_CONNECTION_RATE_EXCEEDED;
    case IMQTT_EVARINT:
    case IMQTT_EFLAGS:
    case IMQTT_EMALFORMED:
    case IMQTT_ETRAILING:
    case IMQTT_ERESERVED:
    case IMQTT_EQOS:
    case IMQTT_EUTF8:
    case IMQTT_EWILL:
    case IMQTT_EPROPID:
    case IMQTT_EPROPPKT:
        return MQTT_RC_MALFORMED_PACKET;
    default:
        return MQTT_RC_UNSPECIFIED_ERROR;
    }
}
