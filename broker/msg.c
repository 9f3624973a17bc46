#include "msg.h"

#include <stdlib.h>
#include <string.h>

/* The properties that travel with the message to every subscriber
 * [MQTT-3.3.2-*]: payload format, content type, response topic,
 * correlation data and user properties (in order). */
static const uint64_t forwarded =
    (1ull << MQTT_PROP_PAYLOAD_FORMAT) | (1ull << MQTT_PROP_CONTENT_TYPE) |
    (1ull << MQTT_PROP_RESPONSE_TOPIC) | (1ull << MQTT_PROP_CORRELATION_DATA);

msg *msg_new(mqtt_str topic, const mqtt_props *props, mqtt_bytes payload,
             uint8_t qos, bool retain, uint64_t expiry_at, uint64_t id)
{
    mqtt_props keep = {0};
    if (props) {
        keep = *props;
        keep.present &= forwarded;
        /* Decoded properties carry their user properties in raw; a caller
         * that rewrote them (the IM stamp) passes them in `user`. */
        if (props->user) {
            keep.user_from = (mqtt_bytes){0};
        } else {
            keep.user_from = props->user_count ? props->raw : (mqtt_bytes){0};
            keep.user_count = 0;
        }
        keep.sub_ids = NULL;
        keep.sub_id_count = 0;
    }
    bool has_props = keep.present || keep.user_from.len || keep.user_count;
    size_t props_len = has_props ? mqtt_props_size(&keep) : 0;

    msg *m = malloc(sizeof(*m) + topic.len + props_len + payload.len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->qos = qos;
    m->retain = retain;
    m->topic_len = (uint16_t)topic.len;
    m->props_len = (uint32_t)props_len;
    m->payload_len = payload.len;
    m->expiry_at = expiry_at;
    m->id = id;
    m->store_gen = 0;
    memset(&m->props, 0, sizeof(m->props));
    memcpy(m->data, topic.ptr, topic.len);
    if (has_props) {
        uint8_t *block = m->data + topic.len;
        mqtt_props_encode(&keep, block, props_len);
        /* Re-read our own copy so the views point into the message, which
         * outlives the publisher's input buffer. It was just encoded from
         * validated fields, so it decodes. */
        mqtt_props_decode(block, props_len, MQTT_PUBLISH, &m->props);
    }
    if (payload.len)
        memcpy(m->data + topic.len + props_len, payload.ptr, payload.len);
    return m;
}

void msg_unref(msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

uint32_t msg_expiry_left(const msg *m, uint64_t now)
{
    if (now >= m->expiry_at)
        return 0;
    return (uint32_t)((m->expiry_at - now + 999) / 1000);
}

msg *msg_new_encoded(mqtt_str topic, mqtt_bytes props_block, mqtt_bytes payload,
                     uint8_t qos, bool retain, uint64_t expiry_at, uint64_t id)
{
    msg *m = malloc(sizeof(*m) + topic.len + props_block.len + payload.len);
    if (!m)
        return NULL;
    *m = (msg){.refs = 1,
               .qos = qos,
               .retain = retain,
               .topic_len = (uint16_t)topic.len,
               .props_len = props_block.len,
               .payload_len = payload.len,
               .expiry_at = expiry_at,
               .id = id};
    memcpy(m->data, topic.ptr, topic.len);
    if (props_block.len) {
        uint8_t *block = m->data + topic.len;
        memcpy(block, props_block.ptr, props_block.len);
        /* The block comes from disk: it is checked like any input. */
        if (mqtt_props_decode(block, props_block.len, MQTT_PUBLISH, &m->props) <
            0) {
            free(m);
            return NULL;
        }
    }
    if (payload.len)
        memcpy(m->data + topic.len + props_block.len, payload.ptr, payload.len);
    return m;
}
