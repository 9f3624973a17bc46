#include "utf8.h"

#include "errors.h"

#include <stdbool.h>
#include <string.h>

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Almost every topic is plain ASCII, so eight bytes are tested at once:
 * no byte has its high bit set and none is zero. The zero test
 * ((v - ONES) & ~v & HIGHS) is exact about whether some byte is zero, which
 * is all we need because any hit sends the word to the slow path. */
static bool ascii8_clean(const uint8_t *s)
{
    uint64_t v;
    memcpy(&v, s, sizeof v);
    return ((v | ((v - ONES) & ~v)) & HIGHS) == 0;
}

static bool is_cont(uint8_t b)
{
    return (b & 0xC0) == 0x80;
}

/* Length of the well-formed sequence starting at s[0] (a non-ASCII lead
 * byte), or 0. The second-byte ranges follow Unicode table 3-7: they rule
 * out overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and
 * code points above U+10FFFF (F4 90..BF) without decoding the value. */
static size_t seq_len(const uint8_t *s, size_t avail)
{
    uint8_t b = s[0];
    uint8_t lo = 0x80, hi = 0xBF;
    size_t n;

    if (b < 0xC2) /* stray continuation byte, or overlong C0/C1 */
        return 0;
    if (b < 0xE0) {
        n = 2;
    } else if (b < 0xF0) {
        n = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b < 0xF5) {
        n = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (!is_cont(s[i]))
            return 0;
    }
    return n;
}

int mqtt_utf8_check(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (len - i >= 8 && ascii8_clean(s + i)) {
            i += 8;
            continue;
        }
        uint8_t b = s[i];
        if (b < 0x80) {
            if (b == 0)
                return IMQTT_EUTF8;
            i++;
            continue;
        }
        size_t n = seq_len(s + i, len - i);
        if (n == 0)
            return IMQTT_EUTF8;
        i += n;
    }
    return 0;
}
