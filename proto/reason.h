/* MQTT 5 reason codes, their names, and what a 3.x peer gets instead.
 * The broker chooses reason codes through these functions only, so the
 * mapping lives in one place. */
#ifndef IMQTT_REASON_H
#define IMQTT_REASON_H

#include <stdint.h>

/* X(name, value, text) */
#define MQTT_REASON_MAP(X)                                                   \
    X(SUCCESS, 0x00, "Success")                                              \
    X(GRANTED_QOS1, 0x01, "Granted QoS 1")                                   \
    X(GRANTED_QOS2, 0x02, "Granted QoS 2")                                   \
    X(DISCONNECT_WITH_WILL, 0x04, "Disconnect with Will Message")            \
    X(NO_MATCHING_SUBSCRIBERS, 0x10, "No matching subscribers")              \
    X(NO_SUBSCRIPTION_EXISTED, 0x11, "No subscription existed")              \
    X(CONTINUE_AUTH, 0x18, "Continue authentication")                        \
    X(REAUTHENTICATE, 0x19, "Re-authenticate")                               \
    X(UNSPECIFIED_ERROR, 0x80, "Unspecified error")                          \
    X(MALFORMED_PACKET, 0x81, "Malformed Packet")                            \
    X(PROTOCOL_ERROR, 0x82, "Protocol Error")                                \
    X(IMPLEMENTATION_SPECIFIC, 0x83, "Implementation specific error")        \
    X(UNSUPPORTED_PROTOCOL_VERSION, 0x84, "Unsupported Protocol Version")    \
    X(CLIENT_ID_NOT_VALID, 0x85, "Client Identifier not valid")              \
    X(BAD_USERNAME_OR_PASSWORD, 0x86, "Bad User Name or Password")           \
    X(NOT_AUTHORIZED, 0x87, "Not authorized")                                \
    X(SERVER_UNAVAILABLE, 0x88, "Server unavailable")                        \
    X(SERVER_BUSY, 0x89, "Server busy")                                      \
    X(BANNED, 0x8A, "Banned")                                                \
    X(SERVER_SHUTTING_DOWN, 0x8B, "Server shutting down")                    \
    X(BAD_AUTH_METHOD, 0x8C, "Bad authentication method")                    \
    X(KEEP_ALIVE_TIMEOUT, 0x8D, "Keep Alive timeout")                        \
    X(SESSION_TAKEN_OVER, 0x8E, "Session taken over")                        \
    X(TOPIC_FILTER_INVALID, 0x8F, "Topic Filter invalid")                    \
    X(TOPIC_NAME_INVALID, 0x90, "Topic Name invalid")                        \
    X(PACKET_ID_IN_USE, 0x91, "Packet Identifier in use")                    \
    X(PACKET_ID_NOT_FOUND, 0x92, "Packet Identifier not found")              \
    X(RECEIVE_MAXIMUM_EXCEEDED, 0x93, "Receive Maximum exceeded")            \
    X(TOPIC_ALIAS_INVALID, 0x94, "Topic Alias invalid")                      \
    X(PACKET_TOO_LARGE, 0x95, "Packet too large")                            \
    X(MESSAGE_RATE_TOO_HIGH, 0x96, "Message rate too high")                  \
    X(QUOTA_EXCEEDED, 0x97, "Quota exceeded")                                \
    X(ADMINISTRATIVE_ACTION, 0x98, "Administrative action")                  \
    X(PAYLOAD_FORMAT_INVALID, 0x99, "Payload format invalid")                \
    X(RETAIN_NOT_SUPPORTED, 0x9A, "Retain not supported")                    \
    X(QOS_NOT_SUPPORTED, 0x9B, "QoS not supported")                          \
    X(USE_ANOTHER_SERVER, 0x9C, "Use another server")                        \
    X(SERVER_MOVED, 0x9D, "Server moved")                                    \
    X(SHARED_SUBS_NOT_SUPPORTED, 0x9E, "Shared Subscriptions not supported") \
    X(CONNECTION_RATE_EXCEEDED, 0x9F, "Connection rate exceeded")            \
    X(MAXIMUM_CONNECT_TIME, 0xA0, "Maximum connect time")                    \
    X(SUB_IDS_NOT_SUPPORTED, 0xA1, "Subscription Identifiers not supported") \
    X(WILDCARD_SUBS_NOT_SUPPORTED, 0xA2, "Wildcard Subscriptions not supported")

enum mqtt_reason {
#define MQTT_REASON_ENUM_(name, value, text) MQTT_RC_##name = value,
    MQTT_REASON_MAP(MQTT_REASON_ENUM_)
#undef MQTT_REASON_ENUM_
};

/* MQTT 3.1.1 CONNACK return codes. */
enum mqtt_v3_connack {
    MQTT_V3_ACCEPTED = 0,
    MQTT_V3_BAD_VERSION = 1,
    MQTT_V3_ID_REJECTED = 2,
    MQTT_V3_UNAVAILABLE = 3,
    MQTT_V3_BAD_CREDENTIALS = 4,
    MQTT_V3_NOT_AUTHORIZED = 5,
};

#define MQTT_V3_SUBACK_FAILURE 0x80

/* Name of reason code rc ("Not authorized"), "?" if unknown. Note that
 * 0x00 is also "Normal disconnection" and "Granted QoS 0". */
const char *mqtt_reason_name(uint8_t rc);

/* The 3.1.1 CONNACK return code for a v5 CONNACK reason code. */
uint8_t mqtt_reason_to_v3_connack(uint8_t rc);

/* The 3.1.1 SUBACK return code for a v5 SUBACK reason code: the granted QoS
 * for 0x00..0x02, 0x80 for any failure. */
uint8_t mqtt_reason_to_v3_suback(uint8_t rc);

/* The reason code a receiver reports for a decode error (IMQTT_E*):
 * 0x95 for IMQTT_ETOOLARGE, 0x84 for IMQTT_EVERSION / IMQTT_EPROTONAME,
 * 0x82 for protocol errors (duplicate properties, packet id 0, ...), 0x81
 * for malformed packets, including a property identifier not valid for
 * its packet type (MQTT 5.0 section 2.2.2.2 calls that Malformed). The
 * broker's state errors map to their own codes (0x93, 0x94, 0x9A, ...).
 * reason.c has the table. */
uint8_t mqtt_reason_for_error(int err);

#endif
