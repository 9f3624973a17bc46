/* WebSocket (RFC 6455) for MQTT over WebSocket: the HTTP/1.1 upgrade
 * request parser and a streaming frame reader / frame header writer.
 *
 * Pure code: no I/O, no libuv, no allocation, no globals, so it can be
 * fuzzed as is (tests/fuzz/fuzz_ws.c). The SHA-1 of the handshake lives in
 * the transport (ws_conn.c), which also owns the buffers.
 *
 * Decoders follow the project's convention: bytes consumed (> 0), 0 for
 * "need more bytes", or a negative error.
 */
#ifndef IMQTT_WS_H
#define IMQTT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest upgrade request we read; a longer one is refused with 431. */
#define WS_HTTP_MAX 8192
/* RFC 6455 5.5: control frames carry at most 125 bytes. */
#define WS_CONTROL_MAX 125

/* Close codes (RFC 6455 7.4.1) the broker sends. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_TOO_BIG = 1009,
};

/* ---- HTTP upgrade ------------------------------------------------------ */

/* What the upgrade request asked for. Pointers are views into the
 * caller's buffer (borrowed: valid while it is). */
typedef struct ws_http_req {
    const char *key; /* Sec-WebSocket-Key, 24 base64 characters */
    size_t key_len;
    const char *protocol; /* the subprotocol we choose: "mqtt",
                             "mqttv3.1", or NULL when none was offered */
} ws_http_req;

/* Parse the request in buf[0..len) for an upgrade on `path`. Returns the
 * length of the request (through the blank line), 0 when the blank line
 * has not arrived yet (and len < WS_HTTP_MAX), or the negative HTTP status
 * to answer with: -400 malformed, -404 another path, -405 not GET, -426
 * not a WebSocket upgrade or not version 13, -431 larger than
 * WS_HTTP_MAX. */
int ws_http_parse(const char *buf, size_t len, const char *path,
                  ws_http_req *out);

/* The reason phrase of a status ws_http_parse returns (as a positive
 * number). */
const char *ws_http_reason(int status);

/* ---- frames -------------------------------------------------------------- */

enum ws_event_type {
    WS_EV_NONE = 0,
    WS_EV_DATA, /* payload bytes of a binary message (any fragment) */
    WS_EV_PING, /* a whole ping; answer with a pong of the same payload */
    WS_EV_PONG,
    WS_EV_CLOSE, /* the peer's close frame; code 1005 when it gave none */
};

typedef struct ws_event {
    enum ws_event_type type;
    uint8_t *data; /* unmasked in place, a view into the caller's buffer */
    size_t len;
    uint16_t code; /* WS_EV_CLOSE */
} ws_event;

/* The reader's state between calls: a frame header may arrive in pieces,
 * a payload is handed out as it arrives (never buffered here, so a frame
 * of any length costs no memory), control frames are collected whole. */
typedef struct ws_reader {
    uint8_t hdr[14];
    uint8_t hdr_len;
    bool in_frame;   /* header read, payload under way */
    bool in_message; /* a fragmented binary message is open */
    uint8_t opcode;  /* of the current frame */
    bool fin;
    uint8_t mask[4];
    uint64_t left; /* payload bytes still to come */
    uint64_t done; /* payload bytes seen (for the mask offset) */
    uint8_t ctl[WS_CONTROL_MAX];
    uint8_t ctl_len;
} ws_reader;

/* Read from buf[0..len) (modified: payload is unmasked in place). Returns
 * bytes consumed (>= 0) and sets *ev when an event is ready (it may be
 * WS_EV_NONE when the bytes only advanced the state); returns a negative
 * close code (-1002, -1003, -1009) when the stream must be closed with it.
 * Call again with the rest of the buffer until it returns 0 with no
 * event. */
int ws_read(ws_reader *r, uint8_t *buf, size_t len, ws_event *ev);

/* Write the header of an unmasked server frame (FIN set) carrying len
 * payload bytes into out (at least 10 bytes); returns its length. */
size_t ws_frame_header(uint8_t *out, uint8_t opcode, uint64_t len);

#define WS_OP_CONT   0x0
#define WS_OP_TEXT   0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE  0x8
#define WS_OP_PING   0x9
#define WS_OP_PONG   0xA

#endif
