/* imqtt error codes: one list for the whole project.
 *
 * Every function that can fail returns a negative IMQTT_E* code (or a
 * non-negative result). Decoders additionally use 0 for "need more bytes".
 * The list lives in proto/ because every other folder depends on proto/;
 * later layers (store, auth, broker) add their rows here, not elsewhere.
 */
#ifndef IMQTT_ERRORS_H
#define IMQTT_ERRORS_H

/* X(name, text) */
#define IMQTT_ERRNO_MAP(X)                                                    \
    /* codec: framing */                                                      \
    X(VARINT, "malformed variable byte integer")                              \
    X(TYPE, "reserved packet type")                                           \
    X(FLAGS, "invalid fixed header flags")                                    \
    X(TOOLARGE, "packet exceeds the maximum packet size")                     \
    X(MALFORMED, "malformed packet")                                          \
    X(TRAILING, "bytes left over after the packet's fields")                  \
    /* codec: fields */                                                       \
    X(PROTONAME, "unknown protocol name")                                     \
    X(VERSION, "unsupported protocol level")                                  \
    X(RESERVED, "reserved bit set")                                           \
    X(QOS, "invalid QoS")                                                     \
    X(PACKETID, "packet identifier 0 where one is required")                  \
    X(UTF8, "invalid UTF-8 string")                                           \
    X(TOPIC, "invalid topic name")                                            \
    X(FILTER, "invalid topic filter")                                         \
    X(EMPTY, "packet carries no topic filters")                               \
    X(REASON, "reason code not allowed for this packet")                      \
    X(WILL, "will flags inconsistent")                                        \
    X(PROPID, "unknown property identifier")                                  \
    X(PROPDUP, "property present more than once")                             \
    X(PROPPKT, "property not allowed in this packet")                         \
    X(PROPVAL, "property value out of range")                                 \
    X(NOSPACE, "output buffer too small")                                     \
    X(TOOMANY, "too many items for the caller's array")                       \
    /* protocol state (detected by the broker, mapped to reasons in proto) */ \
    X(PROTOCOL, "protocol error")                                             \
    X(SERVERONLY, "packet type a client may not send")                        \
    X(ALIAS, "topic alias invalid")                                           \
    X(RECVMAX, "receive maximum exceeded")                                    \
    X(RETAINNS, "retain not supported")                                       \
    X(DENIED, "not authorized")                                               \
    X(QUOTA, "quota exceeded")                                                \
    /* authentication (auth/; the precise cause goes to the log only) */      \
    X(CLIENTID, "client identifier not valid")                                \
    X(AUTH, "bad user name or password")                                      \
    /* system */                                                              \
    X(NOMEM, "out of memory")                                                 \
    X(INVAL, "invalid argument")                                              \
    X(IO, "input/output error")                                               \
    X(CONFIG, "invalid configuration")                                        \
    X(BUSY, "queue full or closed, try again later")                          \
    /* store */                                                               \
    X(CORRUPT, "store record corrupt")                                        \
    X(SCHEMA, "store written by a newer imqtt (unknown schema version)")      \
    X(STOREFULL, "store full")                                                \
    X(LOCKED, "store in use by another process")                              \
    /* authentication limits (auth/authlimit.h) */                            \
    X(AUTHRATE, "too many failed authentications from this address")          \
    /* IM */                                                                  \
    X(NOHISTORY, "no conversation history kept")                              \
    X(PAYLOAD, "payload format invalid")                                      \
    X(BANNED, "banned")                                                       \
    X(REVOKED, "token revoked")                                               \
    X(NOTFOUND, "no such user, device or session")                            \
    /* network */                                                             \
    X(PROXY, "invalid or missing PROXY protocol header")                      \
    /* cluster */                                                             \
    X(CLUSTER, "the cluster's durable log did not take the message")

enum imqtt_err {
    IMQTT_OK = 0,
    IMQTT_ERR_BASE_ = -1000,
#define IMQTT_ERR_ENUM_(name, text) IMQTT_E##name,
    IMQTT_ERRNO_MAP(IMQTT_ERR_ENUM_)
#undef IMQTT_ERR_ENUM_
        IMQTT_ERR_END_
};

/* A static string describing err (0, any IMQTT_E*, or a negative errno). */
const char *imqtt_strerror(int err);

#endif
