#include "msg.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The properties that travel with the message to every subscriber
 * [MQTT-3.3.2-*]: payload format, content type, response topic,
 * correlation data and user properties (in order). */
static const uint64_t forwarded =
    (1ull << MQTT_PROP_PAYLOAD_FORMAT) | (1ull << MQTT_PROP_CONTENT_TYPE) |
    (1ull << MQTT_PROP_RESPONSE_TOPIC) | (1ull << MQTT_PROP_CORRELATION_DATA);

/* Freed messages (and other small blocks: msg_block_alloc) are kept for
 * reuse, per size class of 64 bytes up to 1 KiB: a PUBLISH costs one
 * allocation, and glibc's per-thread cache (7 blocks per size) overflows
 * into its locked bins under a burst. One cache for the process: messages
 * are made and freed by loop threads holding the loop lock (loop_lock.h;
 * the store thread never holds one), and with several loops a message is
 * typically made on the publisher's loop and freed on the subscriber's,
 * which per-thread lists (and glibc's) turn into a malloc and a remote
 * free per message. Each list is capped at MSG_CACHE_CLASS_BYTES (4,096
 * blocks of 64 bytes, 256 of 1 KiB: a window's worth of small messages
 * freed by one burst of PUBACKs comes back to the next burst of
 * PUBLISHes), so the cache holds at most 16 * 256 KiB = 4 MiB and idle
 * memory stays bounded. */
#define MSG_CLASS_BYTES       64u
#define MSG_CLASSES           16u
#define MSG_CACHE_CLASS_BYTES (256u * 1024u)

typedef struct msg_free_block {
    struct msg_free_block *next;
} msg_free_block;

static _Thread_local uint64_t next_serial;

/* Serials are unique in the process: the top 8 bits say which thread
 * made the message (a message made on one loop may be encoded by
 * another's cache), the rest count on that thread. */
static _Atomic uint32_t threads_seen;

static uint64_t serial_next(void)
{
    if (next_serial == 0)
        next_serial = (uint64_t)(atomic_fetch_add(&threads_seen, 1) % 255 + 1)
                      << 56;
    return ++next_serial;
}

static struct {
    msg_free_block *head[MSG_CLASSES];
    uint32_t count[MSG_CLASSES];
} cache; /* under the loop lock */

/* Class index + 1 of an allocation of `size` bytes, 0 when too large. */
static inline uint32_t size_class(size_t size)
{
    size_t c = (size + MSG_CLASS_BYTES - 1) / MSG_CLASS_BYTES;
    return c <= MSG_CLASSES ? (uint32_t)c : 0;
}

const mqtt_props msg_no_props;

/* Where a message's decoded properties start: after its bytes, aligned. */
static inline size_t props_at(size_t topic, size_t props, size_t payload)
{
    size_t a = _Alignof(mqtt_props);
    return (sizeof(msg) + topic + props + payload + a - 1) / a * a;
}

static inline size_t msg_bytes(size_t topic, size_t props, size_t payload)
{
    if (props == 0)
        return sizeof(msg) + topic + payload;
    return props_at(topic, props, payload) + sizeof(mqtt_props);
}

/* m's own property set, in its allocation (props_len > 0). */
static inline mqtt_props *own_props(msg *m)
{
    return (mqtt_props *)((uint8_t *)m +
                          props_at(m->topic_len, m->props_len, m->payload_len));
}

void *msg_block_alloc(size_t size)
{
    uint32_t c = size_class(size);
    if (c == 0)
        return malloc(size);
    msg_free_block *b = cache.head[c - 1];
    if (b) {
        cache.head[c - 1] = b->next;
        cache.count[c - 1]--;
        return b;
    }
    /* Whole classes, so a block fits any message of its class. */
    return malloc((size_t)c * MSG_CLASS_BYTES);
}

void msg_block_free(void *p, size_t size)
{
    uint32_t c = size_class(size);
    if (c == 0 ||
        cache.count[c - 1] >= MSG_CACHE_CLASS_BYTES / (c * MSG_CLASS_BYTES)) {
        free(p);
        return;
    }
    msg_free_block *b = p;
    b->next = cache.head[c - 1];
    cache.head[c - 1] = b;
    cache.count[c - 1]++;
}

static msg *msg_alloc(size_t size)
{
    return msg_block_alloc(size);
}

static void msg_release(msg *m)
{
    msg_block_free(m, msg_bytes(m->topic_len, m->props_len, m->payload_len));
}

void msg_cache_free(void)
{
    for (uint32_t c = 0; c < MSG_CLASSES; c++) {
        while (cache.head[c]) {
            msg_free_block *b = cache.head[c];
            cache.head[c] = b->next;
            free(b);
        }
        cache.count[c] = 0;
    }
}

msg *msg_new(mqtt_str topic, const mqtt_props *props, mqtt_bytes payload,
             uint8_t qos, bool retain, uint64_t expiry_at, uint64_t id)
{
    /* A 3.1.1 publisher has no properties: skip building and sizing a
     * block (zeroing a property set per PUBLISH showed in profiles). */
    mqtt_props keep;
    bool has_props = false;
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
        has_props = keep.present || keep.user_from.len || keep.user_count;
    }
    size_t props_len = has_props ? mqtt_props_size(&keep) : 0;

    msg *m = msg_alloc(msg_bytes(topic.len, props_len, payload.len));
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
    m->serial = serial_next();
    m->props = &msg_no_props;
    memcpy(m->data, topic.ptr, topic.len);
    if (has_props) {
        uint8_t *block = m->data + topic.len;
        mqtt_props *own = own_props(m);
        memset(own, 0, sizeof(*own));
        mqtt_props_encode(&keep, block, props_len);
        /* Re-read our own copy so the views point into the message, which
         * outlives the publisher's input buffer. It was just encoded from
         * validated fields, so it decodes. */
        mqtt_props_decode(block, props_len, MQTT_PUBLISH, own);
        m->props = own;
    }
    if (payload.len)
        memcpy(m->data + topic.len + props_len, payload.ptr, payload.len);
    return m;
}

void msg_unref(msg *m)
{
    if (m && --m->refs == 0)
        msg_release(m);
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
    msg *m = msg_alloc(msg_bytes(topic.len, props_block.len, payload.len));
    if (!m)
        return NULL;
    *m = (msg){.refs = 1,
               .qos = qos,
               .retain = retain,
               .topic_len = (uint16_t)topic.len,
               .props_len = props_block.len,
               .payload_len = payload.len,
               .expiry_at = expiry_at,
               .id = id,
               .serial = serial_next(),
               .props = &msg_no_props};
    memcpy(m->data, topic.ptr, topic.len);
    if (props_block.len) {
        uint8_t *block = m->data + topic.len;
        memcpy(block, props_block.ptr, props_block.len);
        mqtt_props *own = own_props(m);
        memset(own, 0, sizeof(*own));
        /* The block comes from disk: it is checked like any input. */
        if (mqtt_props_decode(block, props_block.len, MQTT_PUBLISH, own) < 0) {
            msg_release(m);
            return NULL;
        }
        m->props = own;
    }
    if (payload.len)
        memcpy(m->data + topic.len + props_block.len, payload.ptr, payload.len);
    return m;
}
