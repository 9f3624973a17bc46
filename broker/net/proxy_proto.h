/* The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2):
 * the header a load balancer sends before the client's bytes to say where
 * the connection really comes from. Pure functions over bytes: no I/O, no
 * allocation, no libuv (tests/fuzz/fuzz_proxy.c drives them directly).
 *
 * A header is trusted only on a listener configured with
 * "proxy_protocol": true, and only when the TCP peer is one of its
 * "proxy_from" networks (BAD_INPUTS row 26); conn_proxy.c does that. */
#ifndef IMQTT_PROXY_PROTO_H
#define IMQTT_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest header accepted: v1's own limit is 107 bytes; v2 may carry
 * TLVs after the addresses (HAProxy sends none unless told to, e.g.
 * send-proxy-v2-ssl), and more than this is refused rather than
 * buffered. */
#define PROXY_HDR_MAX (16 + 1024)

typedef struct proxy_info {
    uint8_t version; /* 1 or 2 */
    /* 4 or 6: src/dst hold the client's and the proxy's listening address
     * (IPv4 in the first 4 bytes). 0: the header gives no address (v2
     * LOCAL — the proxy's own health check —, v1 UNKNOWN, v2 UNSPEC or
     * UNIX): keep the socket's. */
    uint8_t family;
    uint8_t src[16], dst[16];
    uint16_t src_port, dst_port;
} proxy_info;

/* Parse a header at p[0..len). Returns its length (> 0; the client's
 * bytes follow it), 0 when p is a valid beginning of a header that needs
 * more bytes, or IMQTT_EPROXY when p cannot begin a valid header (no
 * signature, a bad field, a v1 line longer than 107 bytes, a v2 header
 * longer than PROXY_HDR_MAX, TLVs that do not fill the declared length,
 * a datagram family). *out is written only on success. */
int proxy_parse(const uint8_t *p, size_t len, proxy_info *out);

/* An address range of "proxy_from": "10.0.0.0/8", "192.0.2.7" (/32),
 * "2001:db8::/32", "::1" (/128). */
typedef struct proxy_net {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;   /* prefix length */
    uint8_t ip[16]; /* bits past the prefix are zero */
} proxy_net;

/* Parse `text` (NUL-terminated) into *out. The bits past the prefix must
 * be zero ("10.1.0.0/8" is refused: it is likely a typo). Returns 0 or
 * IMQTT_EINVAL. */
int proxy_net_parse(const char *text, proxy_net *out);

/* Whether the address (family 4 or 6, ip as in proxy_info) lies in one of
 * nets[0..n). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a "::"
 * listener sees for an IPv4 peer) is matched as the IPv4 address. */
bool proxy_net_match(const proxy_net *nets, uint32_t n, uint8_t family,
                     const uint8_t *ip);

#endif
