/* MQTT over WebSocket, client side (RFC 6455 framing, subprotocol
 * "mqtt"): the HTTP upgrade, binary frames out, frames in.
 *
 * Output: each flush of a connection's buffer becomes one binary frame.
 * The buffer keeps WS_HEADROOM bytes free at its start, where the frame
 * header is written just before the write, so nothing is copied. Frames
 * from a client must be masked; the masking key is zero, which leaves the
 * payload as it is (a key is only a defence for browsers against proxies
 * that mistake frames for HTTP; a load generator gains nothing from it).
 *
 * Input: frames are unwrapped in place, inside the read buffer, as bytes
 * arrive: payload moves left over the headers, never right. */
#include "ws.h"

#include "errors.h"

#include <stdio.h>
#include <string.h>

int ws_request(const char *host, int port, char *out, size_t cap)
{
    /* A fixed key: we do not check the server's accept hash, because
     * nothing here is a cache or a proxy that could be confused. */
    int n = snprintf(out, cap,
                     "GET /mqtt HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: aW1xdHQtYmVuY2gta2V5IQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
                     host, port);
    return n < 0 || (size_t)n >= cap ? IMQTT_ENOSPACE : n;
}

int ws_response(const uint8_t *buf, size_t len)
{
    for (size_t i = 3; i < len; i++) {
        if (memcmp(buf + i - 3, "\r\n\r\n", 4) == 0) {
            if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)
                return IMQTT_EPROTOCOL;
            return (int)(i + 1);
        }
    }
    return 0;
}

int ws_frame_header(uint64_t len, uint8_t *end)
{
    uint8_t h[WS_HEADROOM];
    int n = 0;
    h[n++] = 0x82; /* FIN, binary */
    if (len < 126) {
        h[n++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)(len >> (8 * i));
    }
    memset(h + n, 0, 4); /* masking key 0 */
    n += 4;
    memcpy(end - n, h, (size_t)n);
    return n;
}

static uint32_t header_need(const ws_in *w)
{
    if (w->hlen < 2)
        return 2;
    uint8_t l7 = w->hdr[1] & 0x7f;
    return 2u +
           (l7 == 126   ? 2u
            : l7 == 127 ? 8u
                        : 0u) +
           ((w->hdr[1] & 0x80) ? 4u : 0u);
}

int ws_unframe(ws_in *w, uint8_t *p, uint32_t n)
{
    uint32_t in = 0, out = 0;
    while (in < n) {
        if (!w->in_frame) {
            w->hdr[w->hlen++] = p[in++];
            if (w->hlen < 2 || w->hlen < header_need(w))
                continue;
            uint8_t l7 = w->hdr[1] & 0x7f;
            uint64_t len = l7;
            if (l7 == 126)
                len = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
            else if (l7 == 127)
                for (int i = 0; i < 8; i++)
                    len = len << 8 | w->hdr[2 + i];
            if (w->hdr[1] & 0x80) /* a server must not mask */
                return IMQTT_EPROTOCOL;
            w->opcode = w->hdr[0] & 0x0f;
            w->hlen = 0;
            if (w->opcode == 0x8)
                return IMQTT_EIO; /* close */
            w->left = len;
            w->in_frame = len > 0;
            continue;
        }
        uint32_t take = n - in;
        if (take > w->left)
            take = (uint32_t)w->left;
        /* Data (continuation, text, binary) is MQTT; ping and pong
         * payloads are skipped (servers here do not need our pong). */
        if (w->opcode <= 0x2) {
            memmove(p + out, p + in, take);
            out += take;
        }
        in += take;
        w->left -= take;
        if (w->left == 0)
            w->in_frame = false;
    }
    return (int)out;
}
