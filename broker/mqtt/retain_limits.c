/* Retained-message accounting and limits (retain_limits.h). */
#include "retain_limits.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "session.h"

/* One IM user's retained messages. */
typedef struct user_quota {
    uint32_t count;
    uint32_t len;
    uint64_t bytes;
    char user[]; /* the key in retain_quota.users */
} user_quota;

/* Who is charged for one retained topic (IM publishers only). */
typedef struct retain_owner {
    user_quota *q; /* borrowed: freed only when its count reaches 0 */
    uint64_t cost;
    uint32_t len;
    char topic[]; /* the key in retain_quota.owners */
} retain_owner;

struct retain_quota {
    uint64_t bytes; /* retain_cost of every retained message */
    hmap users;     /* user -> user_quota */
    hmap owners;    /* topic -> retain_owner */
};

static retain_quota *quota(server *srv)
{
    if (!srv->retain_quota)
        srv->retain_quota = calloc(1, sizeof(*srv->retain_quota));
    return srv->retain_quota;
}

static uint64_t msg_cost(const msg *m)
{
    return retain_cost(m->topic_len, m->payload_len);
}

/* The user s's retained messages count against (an IM device), or
 * false. */
static bool im_user(const session *s, mqtt_str *user)
{
    return s && s->im && s->srv->policy->quota_user(s, user);
}

static void refused(server *srv, const session *s, mqtt_str topic, int id,
                    const char *what)
{
    metrics_count(srv, id);
    log_info("client %s: retained message to %.*s not kept: %s",
             s ? s->client_id : "?", (int)topic.len, (const char *)topic.ptr,
             what);
}

bool retain_admit(server *srv, const session *s, mqtt_str topic,
                  uint32_t payload_len)
{
    if (payload_len == 0)
        return true;
    const imqtt_config *cfg = &srv->cfg;
    retain_quota *rq = srv->retain_quota;
    const msg *cur = retain_index_get(srv->retain, topic);
    uint64_t add = retain_cost(topic.len, payload_len);
    uint64_t had = cur ? msg_cost(cur) : 0;
    uint64_t total = rq ? rq->bytes : 0;
    if (!cur && cfg->max_retained_messages &&
        retain_index_count(srv->retain) >= cfg->max_retained_messages) {
        refused(srv, s, topic, METRIC_RETAIN_REFUSED_COUNT,
                "max_retained_messages");
        return false;
    }
    if (cfg->max_retained_bytes &&
        total - had + add > cfg->max_retained_bytes) {
        refused(srv, s, topic, METRIC_RETAIN_REFUSED_BYTES,
                "max_retained_bytes");
        return false;
    }
    mqtt_str user;
    if (!im_user(s, &user))
        return true;
    const user_quota *q = rq ? hmap_get(&rq->users, user) : NULL;
    const retain_owner *o = rq ? hmap_get(&rq->owners, topic) : NULL;
    bool mine = q && o && o->q == q;
    if (!mine && q && cfg->im_max_retained_messages &&
        q->count >= cfg->im_max_retained_messages) {
        refused(srv, s, topic, METRIC_RETAIN_REFUSED_USER_COUNT,
                "im.max_retained_messages");
        return false;
    }
    uint64_t used = (q ? q->bytes : 0) - (mine ? o->cost : 0);
    if (cfg->im_max_retained_bytes && used + add > cfg->im_max_retained_bytes) {
        refused(srv, s, topic, METRIC_RETAIN_REFUSED_USER_BYTES,
                "im.max_retained_bytes");
        return false;
    }
    return true;
}

static void disown(retain_quota *rq, mqtt_str topic)
{
    retain_owner *o = rq->owners.count ? hmap_remove(&rq->owners, topic) : NULL;
    if (!o)
        return;
    user_quota *q = o->q;
    q->count--;
    q->bytes -= o->cost;
    free(o);
    if (q->count == 0) {
        hmap_remove(&rq->users, (mqtt_str){(uint8_t *)q->user, q->len});
        free(q);
    }
    /* Maps do not shrink: give their slots back once they are empty, so
     * the memory of a cleared flood returns. */
    if (rq->owners.count == 0)
        hmap_free(&rq->owners);
    if (rq->users.count == 0)
        hmap_free(&rq->users);
}

/* Charge user for topic. Without memory it is not charged (logged): the
 * message is kept, the per-user limit just does not see it. */
static void own(retain_quota *rq, mqtt_str topic, mqtt_str user, uint64_t cost)
{
    user_quota *q = hmap_get(&rq->users, user);
    if (!q) {
        q = malloc(sizeof(*q) + user.len);
        if (!q)
            goto nomem;
        *q = (user_quota){0, user.len, 0};
        memcpy(q->user, user.ptr, user.len);
        if (hmap_put(&rq->users, (mqtt_str){(uint8_t *)q->user, q->len}, q,
                     NULL) < 0) {
            free(q);
            goto nomem;
        }
    }
    retain_owner *o = malloc(sizeof(*o) + topic.len);
    if (!o)
        goto nomem_q;
    *o = (retain_owner){q, cost, topic.len};
    memcpy(o->topic, topic.ptr, topic.len);
    if (hmap_put(&rq->owners, (mqtt_str){(uint8_t *)o->topic, o->len}, o,
                 NULL) < 0) {
        free(o);
        goto nomem_q;
    }
    q->count++;
    q->bytes += cost;
    return;
nomem_q:
    if (q->count == 0) {
        hmap_remove(&rq->users, user);
        free(q);
    }
nomem:
    log_warn("retained message to %.*s: out of memory for its quota",
             (int)topic.len, (const char *)topic.ptr);
}

int retain_set(server *srv, msg *m, const session *s)
{
    retain_quota *rq = quota(srv);
    if (!rq)
        return IMQTT_ENOMEM;
    mqtt_str topic = msg_topic(m);
    void *old = NULL;
    if (m->payload_len == 0) {
        /* An empty retained message clears the topic [MQTT-3.3.1-6]. */
        old = retain_index_remove(srv->retain, topic);
    } else if (retain_index_set(srv->retain, topic, msg_ref(m), &old) < 0) {
        msg_unref(m);
        return IMQTT_ENOMEM;
    }
    if (old)
        rq->bytes -= msg_cost(old);
    if (m->payload_len)
        rq->bytes += msg_cost(m);
    disown(rq, topic);
    mqtt_str user;
    if (m->payload_len && im_user(s, &user))
        own(rq, topic, user, msg_cost(m));
    msg_unref(old);
    return 0;
}

uint64_t retain_bytes(const server *srv)
{
    return srv->retain_quota ? srv->retain_quota->bytes : 0;
}

void retain_limits_free(server *srv)
{
    retain_quota *rq = srv->retain_quota;
    if (!rq)
        return;
    uint32_t pos = 0;
    retain_owner *o;
    while ((o = hmap_next(&rq->owners, &pos)))
        free(o);
    pos = 0;
    user_quota *q;
    while ((q = hmap_next(&rq->users, &pos)))
        free(q);
    hmap_free(&rq->owners);
    hmap_free(&rq->users);
    free(rq);
    srv->retain_quota = NULL;
}
