#include "b64url.h"

/* 0..63 for alphabet characters, -1 for anything else. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long b64url_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* Left-over bits are padding and must be zero, otherwise two different
     * strings would decode to the same bytes. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return n;
}
