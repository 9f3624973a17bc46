/* libFuzzer target: the envelope of a message between nodes
 * (broker/nats/cluster_env.h). Any NATS client can publish on a node's
 * subjects or write the retained bucket, so the decoder sees any bytes:
 *   - it never reads outside the input;
 *   - what it accepts has QoS 0..2 and topic names that proto accepts;
 *   - encoding what it accepted gives the input back byte for byte (one
 *     encoding per envelope), and decoding that gives the same fields. */
#include "cluster_env.h"
#include "errors.h"
#include "fuzz.h"
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool same(mqtt_bytes a, mqtt_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    /* a copy of exactly `size` bytes: ASan sees a read past the end */
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    cluster_env e, d;
    int rc = cluster_env_decode(in, size, &e);
    FUZZ_CHECK(rc == 0 || rc == IMQTT_EMALFORMED || rc == IMQTT_ETOPIC);
    if (rc == 0) {
        FUZZ_CHECK(e.qos <= 2);
        FUZZ_CHECK(mqtt_topic_name_check(e.topic, NULL) == 0);
        FUZZ_CHECK(e.route.len == 0 ||
                   mqtt_topic_name_check(e.route, NULL) == 0);
        uint8_t *buf = NULL;
        size_t cap = 0;
        int n = cluster_env_encode(&e, &buf, &cap);
        FUZZ_CHECK(n >= 0);
        /* the one bit of the flags byte the format does not use may be
         * set in the input; everything else must come back */
        FUZZ_CHECK((size_t)n == size);
        FUZZ_CHECK(memcmp(buf, in, 1) == 0);
        FUZZ_CHECK((buf[1] & 7) == (in[1] & 7));
        FUZZ_CHECK(size <= 2 || memcmp(buf + 2, in + 2, size - 2) == 0);
        FUZZ_CHECK(cluster_env_decode(buf, (size_t)n, &d) == 0);
        FUZZ_CHECK(d.qos == e.qos && d.retain == e.retain &&
                   d.epoch == e.epoch && d.seq == e.seq &&
                   d.expiry_ms == e.expiry_ms);
        FUZZ_CHECK(same(d.node, e.node) && same(d.topic, e.topic) &&
                   same(d.route, e.route) && same(d.cid, e.cid) &&
                   same(d.props, e.props) && same(d.payload, e.payload));
        free(buf);
    }
    free(in);
    return 0;
}
