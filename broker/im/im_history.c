#include "im_history.h"

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "errors.h"
#include "im.h"
#include "im_history_req.h"
#include "im_log.h"
#include "log.h"
#include "topic.h"
#include "utf8.h"

/* A page stays well inside any packet limit a client could set. */
#define PAGE_BYTES_MAX (1u << 20)
#define PAGE_OVERHEAD  512u

bool im_history_is_request(const session *s, mqtt_str topic)
{
    return s->im && s->im->im_listener &&
           topic.len == sizeof(IM_HISTORY_TOPIC) - 1 &&
           memcmp(topic.ptr, IM_HISTORY_TOPIC, topic.len) == 0;
}

typedef struct page {
    cJSON *list;
    size_t bytes, budget;
    uint32_t n;
    bool oom;
} page;

/* JSON size of a payload as a string: escapes for controls, quote and
 * backslash. */
static size_t json_len(mqtt_bytes b)
{
    size_t n = b.len + 2;
    for (uint32_t i = 0; i < b.len; i++)
        if (b.ptr[i] < 0x20 || b.ptr[i] == '"' || b.ptr[i] == '\\')
            n += 5;
    return n;
}

static int add_entry(void *arg, const im_log_entry *e)
{
    page *pg = arg;
    /* A payload JSON can carry as a string is valid UTF-8 without NUL
     * (cJSON strings end at NUL); anything else goes as base64. */
    bool text = mqtt_utf8_check(e->payload.ptr, e->payload.len) == 0 &&
                !memchr(e->payload.ptr, 0, e->payload.len);
    size_t plen =
        text ? json_len(e->payload) : (e->payload.len + 2) / 3 * 4 + 2;
    size_t need = 96 + e->from.len + e->topic.len * 2 + plen;
    if (pg->n > 0 && pg->bytes + need > pg->budget)
        return 1; /* the page is full */
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        pg->oom = true;
        return IMQTT_ENOMEM;
    }
    cJSON_AddItemToArray(pg->list, o);
    char *tmp = malloc((plen > e->topic.len ? plen : e->topic.len) + 1);
    if (!tmp) {
        pg->oom = true;
        return IMQTT_ENOMEM;
    }
    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddNumberToObject(o, "ts", (double)e->ts);
    memcpy(tmp, e->from.ptr, e->from.len);
    tmp[e->from.len] = '\0';
    cJSON_AddStringToObject(o, "from", tmp);
    memcpy(tmp, e->topic.ptr, e->topic.len);
    tmp[e->topic.len] = '\0';
    cJSON_AddStringToObject(o, "topic", tmp);
    if (text) {
        memcpy(tmp, e->payload.ptr, e->payload.len);
        tmp[e->payload.len] = '\0';
        cJSON_AddStringToObject(o, "payload", tmp);
    } else {
        size_t olen = 0;
        mbedtls_base64_encode((unsigned char *)tmp, plen + 1, &olen,
                              e->payload.ptr, e->payload.len);
        tmp[olen] = '\0';
        cJSON_AddStringToObject(o, "payload_b64", tmp);
    }
    free(tmp);
    pg->bytes += need;
    pg->n++;
    return 0;
}

/* The topic the answer goes to: the v5 Response Topic when the device may
 * receive it (a topic under $im/, or one it may subscribe to), else the
 * fixed reply topic. */
static mqtt_str reply_topic(conn *c, const mqtt_publish *p)
{
    mqtt_str rt = p->props.response_topic;
    if (c->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_RESPONSE_TOPIC) &&
        mqtt_topic_name_check(rt, NULL) == 0 &&
        ((rt.len > 4 && memcmp(rt.ptr, "$im/", 4) == 0) ||
         im_access(c->sess, ACL_SUBSCRIBE, rt)))
        return rt;
    return MQTT_STR_LIT(IM_HISTORY_REPLY);
}

static int send_reply(conn *c, const mqtt_publish *p, cJSON *o)
{
    session *s = c->sess;
    char *json = cJSON_PrintUnformatted(o);
    if (!json)
        return IMQTT_ENOMEM;
    mqtt_props props = {0};
    if (c->version == MQTT_V5 &&
        mqtt_props_has(&p->props, MQTT_PROP_CORRELATION_DATA)) {
        mqtt_props_set(&props, MQTT_PROP_CORRELATION_DATA);
        props.correlation_data = p->props.correlation_data;
    }
    msg *m =
        msg_new(reply_topic(c, p), &props,
                (mqtt_bytes){(const uint8_t *)json, (uint32_t)strlen(json)}, 1,
                false, 0, ++s->srv->next_msg_id);
    free(json);
    if (!m)
        return IMQTT_ENOMEM;
    session_deliver(s, m, 1, false, NULL, 0, NULL);
    msg_unref(m);
    return 0;
}

static void add_req(cJSON *o, const im_history_req *r)
{
    if (r->req[0]) {
        cJSON *v = cJSON_Parse(r->req);
        if (v)
            cJSON_AddItemToObject(o, "req", v);
    }
}

static int reply_error(conn *c, const mqtt_publish *p, const im_history_req *r,
                       const char *code, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return IMQTT_ENOMEM;
    if (r)
        add_req(o, r);
    cJSON_AddStringToObject(o, "error", code);
    if (detail)
        cJSON_AddStringToObject(o, "detail", detail);
    int rc = send_reply(c, p, o);
    cJSON_Delete(o);
    return rc;
}

int im_history_page(server *srv, mqtt_str user, const im_history_req *r,
                    size_t budget, cJSON *o)
{
    mqtt_str name = mqtt_str_from(r->name, r->name_len);
    char conv[IM_CONV_MAX];
    size_t clen = r->group ? im_log_conv_group(name, conv)
                           : im_log_conv_peer(user, name, conv);
    if (clen == 0)
        return IMQTT_EINVAL;
    cJSON *list = cJSON_CreateArray();
    if (!list ||
        !cJSON_AddStringToObject(o, r->group ? "group" : "peer", r->name)) {
        cJSON_Delete(list);
        return IMQTT_ENOMEM;
    }
    cJSON_AddItemToObject(o, "messages", list);
    page pg = {list, 0, budget, 0, false};
    bool more = false;
    int n = im_log_page(srv, mqtt_str_from(conv, clen), r->forward, r->from,
                        r->limit, add_entry, &pg, &more);
    if (n < 0)
        return pg.oom ? IMQTT_ENOMEM : n;
    return cJSON_AddBoolToObject(o, "more", more) ? 0 : IMQTT_ENOMEM;
}

int im_history_handle(conn *c, const mqtt_publish *p)
{
    session *s = c->sess;
    server *srv = s->srv;
    const im_info *im = s->im;
    im_history_req r;
    const char *why;
    if (im_history_parse(p->payload.ptr, p->payload.len,
                         srv->cfg.im_history_page_max, &r, &why) < 0)
        return reply_error(c, p, NULL, "bad_request", why);
    if (r.group) {
        /* Groups the identity may read now: its token's groups, as
         * narrowed or widened by the ACL rules. */
        char topic[sizeof("g/talk/") + IM_ID_PART_MAX];
        memcpy(topic, "g/talk/", 7);
        memcpy(topic + 7, r.name, r.name_len);
        if (!im_access(s, ACL_SUBSCRIBE,
                       mqtt_str_from(topic, 7 + r.name_len))) {
            log_info("client %s: history of group %s denied", s->client_id,
                     r.name);
            return reply_error(c, p, &r, "not_authorized", NULL);
        }
    }
    /* A direct conversation is always one's own: user and peer. */
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return IMQTT_ENOMEM;
    add_req(o, &r);
    size_t budget = PAGE_BYTES_MAX;
    if (c->client_max_packet && c->client_max_packet < budget + PAGE_OVERHEAD)
        budget = c->client_max_packet > 2 * PAGE_OVERHEAD
                     ? c->client_max_packet - PAGE_OVERHEAD
                     : PAGE_OVERHEAD;
    int n = im_history_page(srv, im->user, &r, budget, o);
    int rc;
    if (n == IMQTT_EINVAL)
        rc = reply_error(c, p, &r, "bad_request", "bad name");
    else if (n == IMQTT_ENOHISTORY)
        rc = reply_error(c, p, &r, "unavailable", "no history kept");
    else if (n == IMQTT_ENOMEM)
        rc = IMQTT_ENOMEM;
    else if (n < 0)
        rc = reply_error(c, p, &r, "unavailable", imqtt_strerror(n));
    else
        rc = send_reply(c, p, o);
    cJSON_Delete(o);
    return rc;
}
