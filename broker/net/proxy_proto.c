/* PROXY protocol v1 and v2 headers (proxy_proto.h), written from HAProxy's
 * doc/proxy-protocol.txt. */
#include "proxy_proto.h"

#include "errors.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V1_MAX 107 /* "PROXY TCP6 " + 2 x 39 + 2 x 5 + 3 spaces + CRLF */

/* A decimal port: 1 to 5 digits, no leading zero, at most 65535. */
static bool parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool parse_ip(const char *s, size_t n, int af, uint8_t *out)
{
    char buf[48];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, out) == 1;
}

/* "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" or "PROXY UNKNOWN...\r\n" */
static int parse_v1(const uint8_t *p, size_t len, proxy_info *out)
{
    static const char magic[] = "PROXY ";
    size_t m = len < 6 ? len : 6;
    if (memcmp(p, magic, m) != 0)
        return IMQTT_EPROXY;
    size_t end = 0; /* index of '\r' */
    for (size_t i = 0; i < len && i < V1_MAX; i++) {
        if (p[i] == '\r') {
            end = i;
            break;
        }
        if (p[i] == '\n' || p[i] == '\0')
            return IMQTT_EPROXY;
    }
    if (end == 0)
        return len >= V1_MAX ? IMQTT_EPROXY : 0;
    if (end + 1 >= len)
        return 0; /* the '\n' has not arrived yet */
    if (p[end + 1] != '\n' || end < 6)
        return IMQTT_EPROXY;
    const char *line = (const char *)p + 6;
    size_t n = end - 6;

    /* split the rest at single spaces */
    const char *f[6];
    size_t fl[6], nf = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && line[i] != ' ')
            continue;
        if (nf == 6)
            return IMQTT_EPROXY;
        f[nf] = line + start;
        fl[nf] = i - start;
        nf++;
        start = i + 1;
    }
    proxy_info info = {.version = 1};
    if (fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0) {
        /* the rest of the line is to be ignored */
        *out = info;
        return (int)(end + 2);
    }
    int af;
    if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0) {
        af = AF_INET;
        info.family = 4;
    } else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0) {
        af = AF_INET6;
        info.family = 6;
    } else {
        return IMQTT_EPROXY;
    }
    if (nf != 5 || !parse_ip(f[1], fl[1], af, info.src) ||
        !parse_ip(f[2], fl[2], af, info.dst) ||
        !parse_port(f[3], fl[3], &info.src_port) ||
        !parse_port(f[4], fl[4], &info.dst_port))
        return IMQTT_EPROXY;
    *out = info;
    return (int)(end + 2);
}

/* The TLVs after the addresses must fill the rest exactly. */
static bool tlvs_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 3)
            return false;
        size_t l = (size_t)p[i + 1] << 8 | p[i + 2];
        if (l > n - i - 3)
            return false;
        i += 3 + l;
    }
    return true;
}

static int parse_v2(const uint8_t *p, size_t len, proxy_info *out)
{
    size_t m = len < sizeof v2_sig ? len : sizeof v2_sig;
    if (memcmp(p, v2_sig, m) != 0)
        return IMQTT_EPROXY;
    if (len < 13)
        return 0;
    uint8_t ver = p[12] >> 4, cmd = p[12] & 15;
    if (ver != 2 || cmd > 1) /* LOCAL (0) or PROXY (1) */
        return IMQTT_EPROXY;
    if (len < 16)
        return 0;
    uint8_t fam = p[13] >> 4, proto = p[13] & 15;
    size_t hlen = (size_t)p[14] << 8 | p[15];
    if (16 + hlen > PROXY_HDR_MAX)
        return IMQTT_EPROXY;
    if (len < 16 + hlen)
        return 0;
    const uint8_t *a = p + 16;
    proxy_info info = {.version = 2};
    size_t alen = 0;
    if (cmd == 1 && (fam == 1 || fam == 2)) {
        if (proto != 1)
            return IMQTT_EPROXY; /* datagrams on a TCP listener */
        size_t ipl = fam == 1 ? 4 : 16;
        alen = 2 * ipl + 4;
        if (hlen < alen)
            return IMQTT_EPROXY;
        info.family = fam == 1 ? 4 : 6;
        memcpy(info.src, a, ipl);
        memcpy(info.dst, a + ipl, ipl);
        info.src_port = (uint16_t)(a[2 * ipl] << 8 | a[2 * ipl + 1]);
        info.dst_port = (uint16_t)(a[2 * ipl + 2] << 8 | a[2 * ipl + 3]);
    } else if (cmd == 1) {
        /* UNSPEC or UNIX: no address we could use; keep the socket's. The
         * address block of a UNIX pair is 216 bytes, TLVs follow it. */
        if (fam > 3 || proto > 2)
            return IMQTT_EPROXY;
        alen = fam == 3 ? 216 : hlen;
        if (hlen < alen)
            return IMQTT_EPROXY;
    } else {
        alen = hlen; /* LOCAL: the proxy speaks for itself; skip it all */
    }
    if (!tlvs_ok(a + alen, hlen - alen))
        return IMQTT_EPROXY;
    *out = info;
    return (int)(16 + hlen);
}

int proxy_parse(const uint8_t *p, size_t len, proxy_info *out)
{
    if (len == 0)
        return 0;
    if (p[0] == 'P')
        return parse_v1(p, len, out);
    if (p[0] == v2_sig[0])
        return parse_v2(p, len, out);
    return IMQTT_EPROXY;
}

int proxy_net_parse(const char *text, proxy_net *out)
{
    char buf[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof buf)
        return IMQTT_EINVAL;
    memcpy(buf, text, n + 1);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    proxy_net net = {0};
    if (inet_pton(AF_INET, buf, net.ip) == 1)
        net.family = 4;
    else if (inet_pton(AF_INET6, buf, net.ip) == 1)
        net.family = 6;
    else
        return IMQTT_EINVAL;
    unsigned max = net.family == 4 ? 32 : 128;
    net.bits = (uint8_t)max;
    if (slash) {
        uint16_t bits;
        if (!parse_port(slash + 1, strlen(slash + 1), &bits) || bits > max)
            return IMQTT_EINVAL;
        net.bits = (uint8_t)bits;
    }
    /* the host bits must be zero */
    for (unsigned i = net.bits; i < max; i++)
        if (net.ip[i / 8] & (0x80 >> (i % 8)))
            return IMQTT_EINVAL;
    *out = net;
    return 0;
}

static bool in_net(const proxy_net *net, const uint8_t *ip)
{
    unsigned full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->ip, ip, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip[full] & mask) == net->ip[full];
}

bool proxy_net_match(const proxy_net *nets, uint32_t n, uint8_t family,
                     const uint8_t *ip)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    /* a mapped address also matches as itself (a "::ffff:0:0/96" entry) */
    bool is_mapped = family == 6 && memcmp(ip, mapped, 12) == 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nets[i].family == family && in_net(&nets[i], ip))
            return true;
        if (is_mapped && nets[i].family == 4 && in_net(&nets[i], ip + 12))
            return true;
    }
    return false;
}
