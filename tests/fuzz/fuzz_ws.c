/* libFuzzer target: the WebSocket upgrade parser and frame reader
 * (broker/ws.c, pure: compiled in here, so the target links only what the
 * fuzz build already has).
 *
 * The first byte picks the split point, so frames and requests arrive in
 * two reads as they would from a socket. Invariants: the parser never
 * consumes more than it was given, handed-out payload lies inside the
 * input, control payloads fit WS_CONTROL_MAX, and an accepted request's
 * key and protocol point into the request. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/net/ws.c"

static void frames(uint8_t *buf, size_t len, size_t split)
{
    ws_reader r;
    memset(&r, 0, sizeof(r));
    size_t parts[2][2] = {{0, split}, {split, len}};
    for (int k = 0; k < 2; k++) {
        size_t off = parts[k][0], end = parts[k][1];
        while (off < end) {
            ws_event ev;
            int n = ws_read(&r, buf + off, end - off, &ev);
            if (n < 0) {
                assert(n == -1002 || n == -1003 || n == -1009);
                return;
            }
            assert((size_t)n <= end - off);
            if (ev.type == WS_EV_DATA) {
                assert(ev.data >= buf + off &&
                       ev.data + ev.len <= buf + off + n);
            } else if (ev.type != WS_EV_NONE) {
                assert(ev.len <= WS_CONTROL_MAX);
            }
            if (n == 0)
                break;
            off += (size_t)n;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = size > 1 ? data[0] % size : 0;
    data++;
    size--;
    if (split > size)
        split = size;
    ws_http_req req;
    int rc = ws_http_parse((const char *)data, size, "/mqtt", &req);
    assert(rc <= (int)size);
    assert(rc >= 0 || rc == -400 || rc == -404 || rc == -405 || rc == -426 ||
           rc == -431);
    if (rc > 0) {
        assert(req.key >= (const char *)data &&
               req.key + req.key_len <= (const char *)data + rc);
        assert(req.key_len == 24);
    }
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    frames(copy, size, split);
    free(copy);
    return 0;
}
