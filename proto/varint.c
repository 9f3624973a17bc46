/* Variable byte integers [MQTT-1.5.5 / 2.2.3]. */
#include "packet.h"
#include "wire.h"

int mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if ((size_t)i >= len)
            return 0;
        uint8_t b = buf[i];
        v |= (uint32_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            /* 0x80 0x00 encodes 0 in two bytes: only the shortest form is
             * valid, and accepting others would let two byte strings mean
             * the same packet. */
            if (b == 0 && i > 0)
                return IMQTT_EVARINT;
            *out = v;
            return i + 1;
        }
    }
    /* The fourth byte had its continuation bit set: a fifth byte can only
     * follow in a malformed stream, so fail without waiting for it. */
    return IMQTT_EVARINT;
}

int mqtt_varint_size(uint32_t v)
{
    return wire_varint_size(v);
}

int mqtt_varint_encode(uint32_t v, uint8_t *buf)
{
    return (int)(wire_put_varint(buf, v) - buf);
}
