/* MQTT over WebSocket, client side: see ws.c. Pure functions over
 * buffers; the connection code decides when to call them. */
#ifndef IMQTT_BENCH_WS_H
#define IMQTT_BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes kept free before each output buffer for a frame header. */
#define WS_HEADROOM 14

/* Incoming frame state of one connection. */
typedef struct ws_in {
    uint64_t left; /* payload bytes of the current frame still to come */
    bool in_frame;
    uint8_t opcode;
    uint8_t hlen; /* header bytes collected so far */
    uint8_t hdr[14];
} ws_in;

/* The HTTP upgrade request into out[0..cap). Returns its length or
 * IMQTT_ENOSPACE. */
int ws_request(const char *host, int port, char *out, size_t cap);
/* Whether buf[0..len) holds the whole response: its length when it is a
 * 101, 0 need more, IMQTT_EPROTOCOL for anything else. */
int ws_response(const uint8_t *buf, size_t len);
/* Write the header of a masked binary frame of len payload bytes so that
 * it ends at `end` (WS_HEADROOM bytes must be writable before it).
 * Returns the header length. */
int ws_frame_header(uint64_t len, uint8_t *end);
/* Unwrap frames in p[0..n) in place: returns how many MQTT bytes are now
 * at p[0..), or IMQTT_EIO when the server closed, IMQTT_EPROTOCOL for a
 * masked server frame. */
int ws_unframe(ws_in *w, uint8_t *p, uint32_t n);

#endif
