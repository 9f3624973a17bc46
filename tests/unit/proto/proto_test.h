/* Helpers shared by the proto unit tests (header-only: each test file is
 * its own executable). Include after <cmocka.h>. */
#ifndef IMQTT_PROTO_TEST_H
#define IMQTT_PROTO_TEST_H

#include "errors.h"
#include "packet.h"

#include <string.h>

/* Frame and decode a whole packet in buf[0..len). Returns the decode result;
 * asserts that the framer took exactly len bytes. */
static inline int decode_all(const uint8_t *buf, size_t len, uint8_t version,
                             mqtt_packet *out)
{
    mqtt_frame f;
    int rc = mqtt_frame_parse(buf, len, 0, &f);
    if (rc < 0)
        return rc;
    assert_int_equal(rc, (int)len);
    return mqtt_decode(&f, version, out);
}

static inline bool bytes_eq(mqtt_bytes a, mqtt_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#define assert_bytes_equal(a, b) assert_true(bytes_eq((a), (b)))
#define assert_str_is(a, lit)    assert_true(bytes_eq((a), MQTT_STR_LIT(lit)))

#define DECODE_ARR(arr, version, out) \
    decode_all((arr), sizeof(arr), (version), (out))

#endif
