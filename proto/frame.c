/* Cutting packets out of a byte stream: the fixed header only. */
#include "packet.h"
#include "wire.h"

int mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_size,
                     mqtt_frame *out)
{
    if (len < 1)
        return 0;
    out->type = buf[0] >> 4;
    out->flags = buf[0] & 0x0F;
    if (out->type == 0)
        return IMQTT_ETYPE;
    int rc = wire_check_flags(out->type, out->flags);
    if (rc < 0)
        return rc;

    uint32_t remaining;
    rc = mqtt_varint_decode(buf + 1, len - 1, &remaining);
    if (rc <= 0)
        return rc;
    out->header_len = (uint8_t)(1 + rc);
    out->remaining = remaining;
    /* Checked before the body is awaited so that a peer announcing a huge
     * packet is refused after at most 5 bytes, not after we buffered it. */
    uint64_t total = (uint64_t)out->header_len + remaining;
    if (max_size && total > max_size)
        return IMQTT_ETOOLARGE;
    if (len < total)
        return 0;
    out->body = buf + out->header_len;
    return (int)total;
}
