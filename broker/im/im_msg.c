#include "im_msg.h"

#include <stdio.h>

#include "im_log.h"
#include "log.h"

static const mqtt_props no_props = {0};

msg *im_message_new(session *s, mqtt_str topic, const mqtt_props *props,
                    mqtt_bytes payload, uint8_t qos, bool retain,
                    uint64_t expiry_at, bool *in_batch)
{
    const im_info *im = s->im;
    im_sender who = {mqtt_str_from(im->id, im->user.len + 1 + im->device.len),
                     im->user, im->im_listener};
    return im_message_as(s->srv, &who, topic, props, payload, qos, retain,
                         expiry_at, in_batch, NULL);
}

msg *im_message_as(server *srv, const im_sender *who, mqtt_str topic,
                   const mqtt_props *props, mqtt_bytes payload, uint8_t qos,
                   bool retain, uint64_t expiry_at, bool *in_batch,
                   im_log_entry *out)
{
    /* Identity (issue 13): the broker's clock on every message, and the
     * next id of the conversation's log on chat messages, which the log
     * records at the same time. */
    im_log_entry e = {0, (uint64_t)im_wall_ms(), who->from, topic, payload};
    char conv[IM_CONV_MAX];
    size_t clen = who->im_rules ? im_log_conv_of(who->user, topic, conv) : 0;
    int logged = 0;
    if (clen > 0) {
        logged = im_log_append(srv, mqtt_str_from(conv, clen), &e);
        if (logged < 0)
            return NULL; /* no id to give it: refused like an ENOMEM */
    }
    char idbuf[24], tsbuf[24];
    mqtt_user_prop extra[2];
    uint32_t nextra = 0;
    if (who->im_rules) {
        if (clen > 0) {
            int n = snprintf(idbuf, sizeof(idbuf), "%llu",
                             (unsigned long long)e.id);
            extra[nextra++] = (mqtt_user_prop){MQTT_STR_LIT("id"),
                                               mqtt_str_from(idbuf, (size_t)n)};
        }
        int n =
            snprintf(tsbuf, sizeof(tsbuf), "%llu", (unsigned long long)e.ts);
        extra[nextra++] = (mqtt_user_prop){MQTT_STR_LIT("ts"),
                                           mqtt_str_from(tsbuf, (size_t)n)};
    }
    im_stamp stamp = {0};
    mqtt_props stamped = im_stamp_props_as(who->from, props ? props : &no_props,
                                           extra, nextra, &stamp);
    msg *m = msg_new(topic, &stamped, payload, qos, retain, expiry_at,
                     ++srv->next_msg_id);
    im_stamp_free(&stamp);
    if (in_batch)
        *in_batch = logged > 0;
    if (out)
        *out = e;
    return m;
}

void im_overflow_marker(session *s)
{
    if (!s->missed || !s->im || !s->im->im_listener)
        return;
    char json[96];
    int n = snprintf(json, sizeof(json), "{\"missed\":%llu,\"since\":%llu}",
                     (unsigned long long)s->missed,
                     (unsigned long long)s->missed_since);
    s->missed = 0; /* first: the delivery below must not come back here */
    msg *m = msg_new(MQTT_STR_LIT("$im/missed"), NULL,
                     (mqtt_bytes){(const uint8_t *)json, (uint32_t)n}, 1, false,
                     0, ++s->srv->next_msg_id);
    if (!m)
        return;
    log_info("client %s: told it missed %s", s->client_id, json);
    /* One message past the limits: the device must hear of the overflow
     * even while its queue is still full. */
    s->marker_now = true;
    session_deliver(s, m, 1, false, NULL, 0, NULL);
    s->marker_now = false;
    msg_unref(m);
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
        log_info("client %s: will to %.*s denied", s->client_id, (int)topic.len,
                 (const char *)topic.ptr);
        return NULL;
    }
    return im_message_new(s, topic, w->props, msg_payload(w), w->qos, w->retain,
                          w->expiry_at, NULL);
}
