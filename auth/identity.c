/* user@device parsing. No allocation: the result is views. */
#include "identity.h"

#include <string.h>

#include "errors.h"

static bool id_byte_ok(uint8_t ch)
{
    /* Spelled out rather than isalnum(): the locale must not widen it. */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

bool im_id_part_valid(mqtt_str part)
{
    if (part.ptr == NULL || part.len == 0 || part.len > IM_ID_PART_MAX)
        return false;
    for (uint32_t i = 0; i < part.len; i++)
        if (!id_byte_ok(part.ptr[i]))
            return false;
    return true;
}

int im_identity_parse(mqtt_str client_id, im_identity *out)
{
    memset(out, 0, sizeof(*out));
    if (client_id.ptr == NULL || client_id.len > IM_CLIENT_ID_MAX)
        return IMQTT_ECLIENTID;
    const uint8_t *at = memchr(client_id.ptr, '@', client_id.len);
    if (at == NULL)
        return IMQTT_ECLIENTID;
    uint32_t ulen = (uint32_t)(at - client_id.ptr);
    mqtt_str user = {client_id.ptr, ulen};
    mqtt_str device = {at + 1, client_id.len - ulen - 1};
    /* A second '@' lands in device, which the alphabet refuses. */
    if (!im_id_part_valid(user) || !im_id_part_valid(device))
        return IMQTT_ECLIENTID;
    out->user = user;
    out->device = device;
    return 0;
}

bool im_identity_valid(mqtt_str client_id)
{
    im_identity id;
    return im_identity_parse(client_id, &id) == 0;
}
