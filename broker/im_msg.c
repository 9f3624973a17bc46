#include "im_msg.h"

#include "log.h"

static const mqtt_props no_props = {0};

msg *im_message_new(session *s, mqtt_str topic, const mqtt_props *props,
                    mqtt_bytes payload, uint8_t qos, bool retain,
                    uint64_t expiry_at)
{
    im_stamp stamp = {0};
    mqtt_props stamped =
        im_stamp_props_of(s->im, props ? props : &no_props, &stamp);
    msg *m = msg_new(topic, &stamped, payload, qos, retain, expiry_at,
                     ++s->srv->next_msg_id);
    im_stamp_free(&stamp);
    return m;
}

msg *im_will_new(server *srv, const im_info *im, const mqtt_connect *p)
{
    const mqtt_props *in = p->version == MQTT_V5 ? &p->will_props : &no_props;
    im_stamp stamp = {0};
    mqtt_props stamped = im_stamp_props_of(im, in, &stamp);
    msg *m = msg_new(p->will_topic, &stamped, p->will_payload, p->will_qos,
                     p->will_retain, 0, ++srv->next_msg_id);
    im_stamp_free(&stamp);
    return m;
}

msg *im_will_publish(session *s, msg *w)
{
    mqtt_str topic = msg_topic(w);
    if (!im_access(s, ACL_PUBLISH, topic)) {
        log_info("client %s: will to %.*s denied", s->client_id,
                 (int)topic.len, (const char *)topic.ptr);
        return NULL;
    }
    return im_message_new(s, topic, &w->props, msg_payload(w), w->qos,
                          w->retain, w->expiry_at);
}
