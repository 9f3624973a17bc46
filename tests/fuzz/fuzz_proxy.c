/* libFuzzer target: PROXY protocol headers (broker/proxy_proto.c,
 * BAD_INPUTS row 26).
 *
 * The input is a connection's first bytes. Checks:
 *   - proxy_parse returns a length within the input, 0, or IMQTT_EPROXY;
 *   - a header is never longer than PROXY_HDR_MAX;
 *   - when a header parses, every proper prefix of it asks for more (the
 *     broker must not act on half a header), the same header with more
 *     bytes after it parses to the same length and addresses, and the
 *     family is 0, 4 or 6;
 *   - when the input asks for more, so does every prefix of it;
 *   - the first line, as a proxy_from entry, parses or is refused, and a
 *     parsed network matches its own address. */
#include "errors.h"
#include "fuzz.h"
#include "proxy_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * PROXY_HDR_MAX)
        return 0;
    proxy_info info, again;
    int rc = proxy_parse(data, size, &info);
    FUZZ_CHECK(rc == IMQTT_EPROXY || (rc >= 0 && (size_t)rc <= size));
    FUZZ_CHECK(rc <= PROXY_HDR_MAX);
    if (rc > 0) {
        FUZZ_CHECK(info.version == 1 || info.version == 2);
        FUZZ_CHECK(info.family == 0 || info.family == 4 || info.family == 6);
        for (int i = 0; i < rc; i++)
            FUZZ_CHECK(proxy_parse(data, (size_t)i, &again) == 0);
        static uint8_t more[2 * PROXY_HDR_MAX + 8];
        memcpy(more, data, (size_t)rc);
        memcpy(more + rc, "\x10\x0c\x00\x04MQTT", 8);
        FUZZ_CHECK(proxy_parse(more, (size_t)rc + 8, &again) == rc);
        FUZZ_CHECK(memcmp(&again, &info, sizeof info) == 0);
    } else if (rc == 0) {
        for (size_t i = 0; i < size; i++)
            FUZZ_CHECK(proxy_parse(data, i, &again) == 0);
    }

    char line[80];
    size_t n = 0;
    while (n < size && n < sizeof line - 1 && data[n] != '\n')
        n++;
    memcpy(line, data, n);
    line[n] = '\0';
    proxy_net net;
    int nr = proxy_net_parse(line, &net);
    FUZZ_CHECK(nr == 0 || nr == IMQTT_EINVAL);
    if (nr == 0) {
        FUZZ_CHECK(net.family == 4 || net.family == 6);
        FUZZ_CHECK(net.bits <= (net.family == 4 ? 32 : 128));
        FUZZ_CHECK(proxy_net_match(&net, 1, net.family, net.ip));
    }
    return 0;
}
