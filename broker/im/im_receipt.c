#include "im_receipt.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "im_log.h"
#include "log.h"
#include "reason.h"
#include "route.h"
#include "session.h"

#define INBOX_PREFIX  "p2p/talk/"
#define PREFIX_LEN(p) (sizeof(p) - 1)

/* The "delivered" marks kept at most: past it they are all forgotten at
 * once (a later device may then cause a second receipt, never none). */
#define MARKS_MAX 131072u
/* A read receipt is {"id": n}: a few bytes. */
#define READ_PAYLOAD_MAX 256u

/* Which messages of one conversation got their "delivered" receipt for
 * one recipient user: the highest id and the 63 below it, a bit each.
 * Deliveries to a device come in the conversation's order, so a device
 * acknowledging an id at or below the mark was beaten to it by another
 * device of the user (or by itself, before a reconnect). */
typedef struct mark {
    uint64_t top;  /* highest id receipted */
    uint64_t bits; /* bit i: id top - i was receipted */
    uint32_t key_len;
    char key[]; /* recipient '|' conversation */
} mark;

static bool has_prefix(mqtt_str s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static bool str_eq(mqtt_str a, mqtt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool is_key(mqtt_str k, const char *lit)
{
    return str_eq(k, mqtt_str_from(lit, strlen(lit)));
}

/* The one level after prefix, when topic is exactly prefix + level. */
static bool level_after(mqtt_str t, size_t n, mqtt_str *level)
{
    if (t.len <= n || memchr(t.ptr + n, '/', t.len - n))
        return false;
    *level = (mqtt_str){t.ptr + n, t.len - (uint32_t)n};
    return true;
}

/* A decimal id as the broker writes it (im_msg.c). */
static bool parse_id(mqtt_str v, uint64_t *out)
{
    if (v.len == 0 || v.len > 16)
        return false;
    uint64_t id = 0;
    for (uint32_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
        id = id * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    *out = id;
    return id != 0;
}

static void clear_marks(hmap *marks)
{
    uint32_t pos = 0;
    mark *k;
    while ((k = hmap_next(marks, &pos)))
        free(k);
    hmap_free(marks);
    memset(marks, 0, sizeof(*marks));
}

/* Whether id of the conversation `conv` is delivered to `recipient` for
 * the first time; records it. Without memory it says yes: a second
 * receipt is better than none. */
static bool first_delivery(server *srv, mqtt_str recipient, mqtt_str conv,
                           uint64_t id)
{
    im_state *st = im_state_of(srv);
    if (!st)
        return true;
    char key[IM_ID_PART_MAX + 1 + IM_CONV_MAX];
    memcpy(key, recipient.ptr, recipient.len);
    key[recipient.len] = '|';
    memcpy(key + recipient.len + 1, conv.ptr, conv.len);
    uint32_t klen = recipient.len + 1 + conv.len;
    mark *k = hmap_get(&st->receipts, (mqtt_bytes){(uint8_t *)key, klen});
    if (!k) {
        if (st->receipts.count >= MARKS_MAX) {
            log_info("receipts: %u delivery marks forgotten (the most kept)",
                     st->receipts.count);
            clear_marks(&st->receipts);
        }
        k = malloc(sizeof(*k) + klen);
        if (!k)
            return true;
        k->top = id;
        k->bits = 1;
        k->key_len = klen;
        memcpy(k->key, key, klen);
        if (hmap_put(&st->receipts, (mqtt_bytes){(uint8_t *)k->key, klen}, k,
                     NULL) < 0)
            free(k);
        return true;
    }
    if (id > k->top) {
        uint64_t d = id - k->top;
        k->bits = d >= 64 ? 1 : (k->bits << d) | 1;
        k->top = id;
        return true;
    }
    uint64_t d = k->top - id;
    if (d >= 64 || (k->bits & (1ull << d)))
        return false;
    k->bits |= 1ull << d;
    return true;
}

/* A receipt of `kind` about message `id`, by device `by` (user@device),
 * into the inbox of `to`: routed like a publication of `from` (NULL: the
 * broker's own, no sync copy). */
static void send_receipt(server *srv, const char *kind, mqtt_str to,
                         mqtt_str by, uint64_t id, session *from)
{
    char topic[PREFIX_LEN(INBOX_PREFIX) + IM_ID_PART_MAX];
    memcpy(topic, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX));
    memcpy(topic + PREFIX_LEN(INBOX_PREFIX), to.ptr, to.len);
    uint64_t ts = (uint64_t)im_wall_ms();
    char idb[24], tsb[24];
    int idn = snprintf(idb, sizeof(idb), "%llu", (unsigned long long)id);
    int tsn = snprintf(tsb, sizeof(tsb), "%llu", (unsigned long long)ts);
    /* from, ts first, as on every stamped message (the 3.1.1 envelope
     * reads those); no `id`: a receipt is not a message of the
     * conversation, and a client dropping ids it has seen must not drop
     * it. */
    mqtt_user_prop up[4] = {
        {MQTT_STR_LIT("from"), by},
        {MQTT_STR_LIT("ts"), mqtt_str_from(tsb, (size_t)tsn)},
        {MQTT_STR_LIT("receipt"), mqtt_str_from(kind, strlen(kind))},
        {MQTT_STR_LIT("msg_id"), mqtt_str_from(idb, (size_t)idn)}};
    mqtt_props props = {0};
    props.user = up;
    props.user_count = 4;
    /* The values are the broker's: a kind word, user@device of
     * [A-Za-z0-9._-@] and decimals, nothing to escape. */
    char json[IM_CLIENT_ID_MAX + 128];
    int n = snprintf(json, sizeof(json),
                     "{\"receipt\":\"%s\",\"id\":%s,\"by\":\"%.*s\",\"ts\":%s}",
                     kind, idb, (int)by.len, (const char *)by.ptr, tsb);
    if (n <= 0 || (size_t)n >= sizeof(json))
        return;
    msg *m = msg_new(mqtt_str_from(topic, PREFIX_LEN(INBOX_PREFIX) + to.len),
                     &props, (mqtt_bytes){(const uint8_t *)json, (uint32_t)n},
                     1, false, 0, ++srv->next_msg_id);
    if (!m) {
        log_warn("receipt %s of %llu for %.*s: out of memory", kind,
                 (unsigned long long)id, (int)to.len, (const char *)to.ptr);
        return;
    }
    route_message(srv, m, from);
    msg_unref(m);
}

void im_receipt_on_ack(session *s, msg *m)
{
    const im_info *im = s->im;
    if (!im->im_listener || im->delivery == IM_DELIVERY_OFF)
        return;
    /* Only a direct message to this device's own user, not the sync copy
     * of something its user wrote (p2p/talk/{peer}). */
    mqtt_str topic = msg_topic(m), to;
    if (!has_prefix(topic, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX)) ||
        !level_after(topic, PREFIX_LEN(INBOX_PREFIX), &to) ||
        !str_eq(to, im->user))
        return;
    mqtt_str from = {NULL, 0}, idv = {NULL, 0};
    bool per_device = im->delivery == IM_DELIVERY_DEVICE;
    uint32_t pos = 0;
    mqtt_user_prop up;
    while (mqtt_props_next_user(m->props->raw, &pos, &up) == 1) {
        if (is_key(up.key, "receipt"))
            return; /* a receipt gets none */
        if (!from.ptr && is_key(up.key, "from"))
            from = up.value;
        else if (!idv.ptr && is_key(up.key, "id"))
            idv = up.value;
        else if (is_key(up.key, "receipts") && is_key(up.value, "device"))
            per_device = true; /* the sender asked for one per device */
    }
    im_identity sender;
    uint64_t id;
    /* The stamp is the broker's: a message without one (a plain client's)
     * has nobody to tell. */
    if (!from.ptr || !idv.ptr || im_identity_parse(from, &sender) != 0 ||
        !parse_id(idv, &id) || str_eq(sender.user, im->user))
        return;
    if (!per_device) {
        char conv[IM_CONV_MAX];
        size_t clen = im_log_conv_of(sender.user, topic, conv);
        if (clen == 0 ||
            !first_delivery(s->srv, im->user, mqtt_str_from(conv, clen), id))
            return;
    }
    send_receipt(s->srv, "delivered", sender.user,
                 mqtt_str_from(im->id, im->user.len + 1 + im->device.len), id,
                 NULL);
}

bool im_receipt_is_request(const session *s, mqtt_str topic)
{
    return s->im && s->im->im_listener &&
           has_prefix(topic, IM_RECEIPT_PREFIX, PREFIX_LEN(IM_RECEIPT_PREFIX));
}

/* {"id": n}, n an id (1 .. 2^53 - 1), nothing else. */
static bool parse_read(mqtt_bytes payload, uint64_t *id)
{
    if (payload.len == 0 || payload.len > READ_PAYLOAD_MAX)
        return false;
    cJSON *o = cJSON_ParseWithLength((const char *)payload.ptr, payload.len);
    bool ok = cJSON_IsObject(o) && o->child && !o->child->next &&
              strcmp(o->child->string, "id") == 0 && cJSON_IsNumber(o->child) &&
              o->child->valuedouble >= 1 &&
              o->child->valuedouble <= 9007199254740991.0 &&
              (double)(uint64_t)o->child->valuedouble == o->child->valuedouble;
    if (ok)
        *id = (uint64_t)o->child->valuedouble;
    cJSON_Delete(o);
    return ok;
}

int im_receipt_read(conn *c, const mqtt_publish *p)
{
    session *s = c->sess;
    const im_info *im = s->im;
    mqtt_str peer;
    if (!im->read_receipts ||
        !level_after(p->topic, PREFIX_LEN(IM_RECEIPT_PREFIX), &peer) ||
        !im_id_part_valid(peer))
        return mqtt_reason_for_error(IMQTT_EDENIED);
    /* Only to a peer this device may write to. */
    char talk[PREFIX_LEN(INBOX_PREFIX) + IM_ID_PART_MAX];
    memcpy(talk, INBOX_PREFIX, PREFIX_LEN(INBOX_PREFIX));
    memcpy(talk + PREFIX_LEN(INBOX_PREFIX), peer.ptr, peer.len);
    if (!im_access(s, ACL_PUBLISH,
                   mqtt_str_from(talk, PREFIX_LEN(INBOX_PREFIX) + peer.len))) {
        log_info("client %s: read receipt to %.*s denied", s->client_id,
                 (int)peer.len, (const char *)peer.ptr);
        return mqtt_reason_for_error(IMQTT_EDENIED);
    }
    uint64_t id;
    if (!parse_read(p->payload, &id))
        return mqtt_reason_for_error(IMQTT_EPAYLOAD);
    /* To the peer's devices, and (policy sync: a publication of s on
     * p2p/talk/{peer}) to the reader's other devices. */
    send_receipt(s->srv, "read", peer,
                 mqtt_str_from(im->id, im->user.len + 1 + im->device.len), id,
                 s);
    return 0;
}

void im_receipt_free(server *srv)
{
    if (srv->im)
        clear_marks(&srv->im->receipts);
}
