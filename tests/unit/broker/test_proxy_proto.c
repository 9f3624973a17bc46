/* PROXY protocol v1/v2 headers and proxy_from networks
 * (broker/proxy_proto.h), BAD_INPUTS row 26. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "proxy_proto.h"

#include <string.h>

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Every proper prefix of a complete header asks for more bytes. */
static void assert_prefixes_wait(const uint8_t *h, size_t n)
{
    proxy_info info;
    for (size_t i = 0; i < n; i++) {
        int rc = proxy_parse(h, i, &info);
        if (rc != 0)
            fail_msg("prefix %zu of %zu: %d", i, n, rc);
    }
}

static int parse_text(const char *s, proxy_info *info)
{
    return proxy_parse((const uint8_t *)s, strlen(s), info);
}

static void test_v1(void **state)
{
    (void)state;
    proxy_info info;
    const char *h = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 1883\r\nMQTT";
    assert_int_equal(parse_text(h, &info), 42);
    assert_int_equal(info.version, 1);
    assert_int_equal(info.family, 4);
    assert_memory_equal(info.src, "\xc0\x00\x02\x07", 4);
    assert_memory_equal(info.dst, "\x0a\x00\x00\x01", 4);
    assert_int_equal(info.src_port, 56324);
    assert_int_equal(info.dst_port, 1883);
    assert_prefixes_wait((const uint8_t *)h, 42);

    h = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    assert_int_equal(parse_text(h, &info), (int)strlen(h));
    assert_int_equal(info.family, 6);
    assert_int_equal(info.src[0], 0x20);
    assert_int_equal(info.src[15], 1);
    assert_int_equal(info.src_port, 65535);
    assert_int_equal(info.dst_port, 0);

    h = "PROXY UNKNOWN\r\n";
    assert_int_equal(parse_text(h, &info), 15);
    assert_int_equal(info.family, 0);
    h = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_int_equal(parse_text(h, &info), (int)strlen(h));
    assert_int_equal(info.family, 0);

    /* the longest v1 line: 107 bytes */
    h = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(h), 104);
    assert_int_equal(parse_text(h, &info), 104);
}

static void test_v1_refused(void **state)
{
    (void)state;
    proxy_info info;
    const char *bad[] = {
        "PROXY TCP4 192.0.2.7 10.0.0.1 56324\r\n",        /* no dport */
        "PROXY TCP4 192.0.2.7 10.0.0.1 56324 1883 9\r\n", /* one more */
        "PROXY TCP4 192.0.2.7  10.0.0.1 56324 1883\r\n",  /* two spaces */
        "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",        /* v6 in TCP4 */
        "PROXY TCP6 192.0.2.7 10.0.0.1 1 2\r\n",          /* v4 in TCP6 */
        "PROXY TCP4 192.0.2.256 10.0.0.1 1 2\r\n",        /* bad octet */
        "PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n",      /* bad port */
        "PROXY TCP4 192.0.2.7 10.0.0.1 01 2\r\n",         /* leading 0 */
        "PROXY TCP4 192.0.2.7 10.0.0.1 -1 2\r\n",
        "PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n", /* protocol */
        "PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n",   /* bare LF */
        "PROXY TCP4 192.0.2.7 10.0.0.1 1 2\rX",  /* CR alone */
        "PROXY \r\n",
        "proxy TCP4 192.0.2.7 10.0.0.1 1 2\r\n", /* case */
        "PROXYTCP4",
        "\x10\x0c\x00\x04MQTT", /* a CONNECT */
        "GET / HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse_text(bad[i], &info) != IMQTT_EPROXY)
            fail_msg("accepted %s", bad[i]);
    /* no CRLF within 107 bytes */
    char longl[200] = "PROXY UNKNOWN ";
    memset(longl + 14, 'x', 150);
    longl[164] = '\0';
    assert_int_equal(parse_text(longl, &info), IMQTT_EPROXY);
    longl[100] = '\0'; /* still waiting at 100 */
    assert_int_equal(parse_text(longl, &info), 0);
}

/* A v2 header: sig, ver/cmd, fam, len, then body. */
static size_t v2(uint8_t *out, uint8_t vc, uint8_t fam, const uint8_t *body,
                 size_t n)
{
    memcpy(out, sig, 12);
    out[12] = vc;
    out[13] = fam;
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
    if (n > 0)
        memcpy(out + 16, body, n);
    return 16 + n;
}

static void test_v2(void **state)
{
    (void)state;
    uint8_t h[2048];
    proxy_info info;
    const uint8_t in4[12] = {192, 0, 2, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x07, 0x5b};
    size_t n = v2(h, 0x21, 0x11, in4, 12);
    assert_int_equal(proxy_parse(h, n, &info), 28);
    assert_int_equal(info.version, 2);
    assert_int_equal(info.family, 4);
    assert_memory_equal(info.src, in4, 4);
    assert_int_equal(info.src_port, 56324);
    assert_int_equal(info.dst_port, 1883);
    assert_prefixes_wait(h, n);
    /* followed by MQTT bytes: the header length only */
    memcpy(h + n, "\x10\x0c", 2);
    assert_int_equal(proxy_parse(h, n + 2, &info), 28);

    uint8_t in6[36] = {0x20, 0x01, 0x0d, 0xb8};
    in6[15] = 9;
    in6[31] = 1;
    in6[32] = 0x12;
    in6[33] = 0x34;
    n = v2(h, 0x21, 0x21, in6, 36);
    assert_int_equal(proxy_parse(h, n, &info), 52);
    assert_int_equal(info.family, 6);
    assert_memory_equal(info.src, in6, 16);
    assert_int_equal(info.src_port, 0x1234);

    /* TLVs after the addresses (a NOOP of 3 bytes, then an empty one) */
    uint8_t tl[12 + 9];
    memcpy(tl, in4, 12);
    memcpy(tl + 12, "\x04\x00\x03xyz\x05\x00\x00", 9);
    n = v2(h, 0x21, 0x11, tl, sizeof tl);
    assert_int_equal(proxy_parse(h, n, &info), (int)n);
    /* a TLV that claims more than is there */
    tl[14] = 4;
    n = v2(h, 0x21, 0x11, tl, sizeof tl);
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);

    /* LOCAL (a health check): anything in the body, no address */
    n = v2(h, 0x20, 0x00, NULL, 0);
    assert_int_equal(proxy_parse(h, n, &info), 16);
    assert_int_equal(info.family, 0);
    n = v2(h, 0x20, 0x11, in4, 12);
    assert_int_equal(proxy_parse(h, n, &info), 28);
    assert_int_equal(info.family, 0);
    /* PROXY with UNSPEC: keep the socket's address */
    n = v2(h, 0x21, 0x00, NULL, 0);
    assert_int_equal(proxy_parse(h, n, &info), 16);
    assert_int_equal(info.family, 0);
    /* UNIX: 216 address bytes */
    uint8_t un[216] = {0};
    n = v2(h, 0x21, 0x31, un, 216);
    assert_int_equal(proxy_parse(h, n, &info), 232);
    assert_int_equal(info.family, 0);

    /* the largest accepted, and one more */
    static uint8_t big[PROXY_HDR_MAX];
    memcpy(big, in4, 12);
    size_t room = PROXY_HDR_MAX - 16 - 12;
    big[12] = 4;
    big[13] = (uint8_t)((room - 3) >> 8);
    big[14] = (uint8_t)(room - 3);
    n = v2(h, 0x21, 0x11, big, 12 + room);
    assert_int_equal(n, PROXY_HDR_MAX);
    assert_int_equal(proxy_parse(h, n, &info), PROXY_HDR_MAX);
    h[15]++;
    assert_int_equal(proxy_parse(h, 16, &info), IMQTT_EPROXY);
}

static void test_v2_refused(void **state)
{
    (void)state;
    uint8_t h[256];
    proxy_info info;
    const uint8_t in4[12] = {192, 0, 2, 7, 10, 0, 0, 1, 0, 1, 0, 2};
    size_t n;
    n = v2(h, 0x11, 0x11, in4, 12); /* version 1 in the binary form */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    assert_int_equal(proxy_parse(h, 13, &info), IMQTT_EPROXY); /* early */
    n = v2(h, 0x22, 0x11, in4, 12);                            /* command 2 */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    n = v2(h, 0x21, 0x12, in4, 12); /* DGRAM */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    n = v2(h, 0x21, 0x11, in4, 11); /* too short for INET */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    n = v2(h, 0x21, 0x21, in4, 12); /* too short for INET6 */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    n = v2(h, 0x21, 0x41, in4, 12); /* family 4 */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    n = v2(h, 0x21, 0x31, in4, 12); /* UNIX too short */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    n = v2(h, 0x21, 0x11, in4, 12);
    h[11] = 0x0B; /* signature */
    assert_int_equal(proxy_parse(h, n, &info), IMQTT_EPROXY);
    assert_int_equal(proxy_parse(h, 12, &info), IMQTT_EPROXY);
    h[11] = 0x0A;
    h[3] = 0; /* early in the signature */
    assert_int_equal(proxy_parse(h, 4, &info), IMQTT_EPROXY);
}

static proxy_net net(const char *s)
{
    proxy_net n;
    assert_int_equal(proxy_net_parse(s, &n), 0);
    return n;
}

static void test_nets(void **state)
{
    (void)state;
    proxy_net nets[3] = {net("10.0.0.0/8"), net("192.0.2.7"),
                         net("2001:db8::/32")};
    uint8_t a[16] = {10, 200, 3, 4};
    assert_true(proxy_net_match(nets, 3, 4, a));
    a[0] = 11;
    assert_false(proxy_net_match(nets, 3, 4, a));
    uint8_t b[4] = {192, 0, 2, 7};
    assert_true(proxy_net_match(nets, 3, 4, b));
    b[3] = 8;
    assert_false(proxy_net_match(nets, 3, 4, b));
    uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff};
    assert_true(proxy_net_match(nets, 3, 6, v6));
    v6[3] = 0xb9;
    assert_false(proxy_net_match(nets, 3, 6, v6));
    /* IPv4-mapped IPv6 is the IPv4 address */
    uint8_t mapped[16] = {0, 0, 0,    0,    0,  0, 0, 0,
                          0, 0, 0xff, 0xff, 10, 1, 2, 3};
    assert_true(proxy_net_match(nets, 3, 6, mapped));
    mapped[12] = 127;
    assert_false(proxy_net_match(nets, 3, 6, mapped));
    /* a family never matches the other's network */
    proxy_net any4 = net("0.0.0.0/0");
    assert_true(proxy_net_match(&any4, 1, 4, b));
    assert_false(proxy_net_match(&any4, 1, 6, v6));
    proxy_net n = net("::1");
    assert_int_equal(n.bits, 128);
    assert_int_equal(net("127.0.0.1").bits, 32);
    assert_int_equal(net("10.0.0.0/8").bits, 8);

    const char *bad[] = {
        "",          "10.1.0.0/8",     "10.0.0.0/33", "::/129",
        "10.0.0.0/", "10.0.0.0/08",    "localhost",   "10.0.0.0/8/8",
        "1.2.3",     "2001:db8::1/64", " 10.0.0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (proxy_net_parse(bad[i], &n) != IMQTT_EINVAL)
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1),   cmocka_unit_test(test_v1_refused),
        cmocka_unit_test(test_v2),   cmocka_unit_test(test_v2_refused),
        cmocka_unit_test(test_nets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
