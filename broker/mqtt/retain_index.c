#include "retain_index.h"

#include "errors.h"
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

/* One topic level. Children are keyed by their own name bytes. */
typedef struct rnode {
    struct rnode *parent; /* NULL for the roots */
    void *value;          /* borrowed from the caller; NULL if none */
    hmap children;        /* values owned */
    uint32_t name_len;
    uint8_t name[];
} rnode;

/* Marks a frame that enumerates a whole subtree (the filter reached '#'). */
#define POS_SUBTREE UINT32_MAX

/* A node whose children the walk is enumerating. */
typedef struct rframe {
    const rnode *node;
    uint32_t pos; /* filter offset the children continue at, POS_SUBTREE */
    uint32_t it;  /* hmap_next cursor */
    uint32_t tl;  /* length of node's topic in ri->buf */
} rframe;

struct retain_index {
    /* roots[1] holds topics starting with '$', so a filter that starts
     * with a wildcard (walked from roots[0]) never sees them. */
    rnode *roots[2];
    /* Walk state, sized by set for the deepest and longest topic ever
     * stored, so match does not allocate: `stack` holds one frame per
     * level at most, `buf` rebuilds the topic handed to the callback. */
    rframe *stack;
    uint32_t stack_cap;
    uint8_t *buf;
    uint32_t buf_cap;
    size_t count;
    size_t nodes;
};

static uint32_t level_end(mqtt_str s, uint32_t pos)
{
    if (pos >= s.len) /* also keeps a NULL view away from memchr */
        return s.len;
    const uint8_t *p = memchr(s.ptr + pos, '/', s.len - pos);
    return p ? (uint32_t)(p - s.ptr) : s.len;
}

static rnode *root_for(const retain_index *ri, mqtt_str s)
{
    return ri->roots[s.len > 0 && s.ptr[0] == '$'];
}

static rnode *node_new(rnode *parent, mqtt_str name)
{
    rnode *n = calloc(1, sizeof *n + name.len);
    if (n == NULL)
        return NULL;
    n->parent = parent;
    n->name_len = name.len;
    if (name.len > 0)
        memcpy(n->name, name.ptr, name.len);
    return n;
}

/* Free n and every ancestor it leaves empty, stopping at a root. */
static void prune(retain_index *ri, rnode *n)
{
    while (n->parent != NULL && n->value == NULL && n->children.count == 0) {
        rnode *p = n->parent;
        hmap_remove(&p->children, (mqtt_bytes){n->name, n->name_len});
        free(n);
        ri->nodes--;
        n = p;
    }
}

static rnode *locate(const retain_index *ri, mqtt_str topic)
{
    if (topic.len == 0)
        return NULL;
    rnode *n = root_for(ri, topic);
    uint32_t pos = 0;
    for (;;) {
        uint32_t end = level_end(topic, pos);
        n = hmap_get(&n->children, (mqtt_str){topic.ptr + pos, end - pos});
        if (n == NULL || end == topic.len)
            return n;
        pos = end + 1;
    }
}

retain_index *retain_index_new(void)
{
    retain_index *ri = calloc(1, sizeof *ri);
    if (ri == NULL)
        return NULL;
    ri->roots[0] = node_new(NULL, (mqtt_str){NULL, 0});
    ri->roots[1] = node_new(NULL, (mqtt_str){NULL, 0});
    if (ri->roots[0] == NULL || ri->roots[1] == NULL) {
        free(ri->roots[0]);
        free(ri->roots[1]);
        free(ri);
        return NULL;
    }
    return ri;
}

/* Free a whole tree without recursion: pending nodes are chained through
 * their parent pointer, which is no longer needed. */
static void tree_free(rnode *n, void (*free_value)(void *value))
{
    n->parent = NULL;
    while (n != NULL) {
        rnode *todo = n->parent;
        uint32_t it = 0;
        rnode *c;
        while ((c = hmap_next(&n->children, &it)) != NULL) {
            c->parent = todo;
            todo = c;
        }
        if (n->value != NULL && free_value != NULL)
            free_value(n->value);
        hmap_free(&n->children);
        free(n);
        n = todo;
    }
}

void retain_index_free(retain_index *ri, void (*free_value)(void *value))
{
    if (ri == NULL)
        return;
    tree_free(ri->roots[0], free_value);
    tree_free(ri->roots[1], free_value);
    free(ri->stack);
    free(ri->buf);
    free(ri);
}

static int reserve(retain_index *ri, mqtt_str topic)
{
    uint32_t levels = 1;
    for (uint32_t i = 0; i < topic.len; i++)
        levels += topic.ptr[i] == '/';
    uint64_t frames = (uint64_t)levels + 2;
    if (frames > ri->stack_cap) {
        uint64_t ncap = (uint64_t)ri->stack_cap * 2;
        if (ncap < frames)
            ncap = frames;
        rframe *s = realloc(ri->stack, (size_t)ncap * sizeof *s);
        if (s == NULL)
            return IMQTT_ENOMEM;
        ri->stack = s;
        ri->stack_cap = (uint32_t)ncap;
    }
    if (topic.len > ri->buf_cap || ri->buf == NULL) {
        uint8_t *b = realloc(ri->buf, (size_t)topic.len + 1);
        if (b == NULL)
            return IMQTT_ENOMEM;
        ri->buf = b;
        ri->buf_cap = topic.len;
    }
    return 0;
}

int retain_index_set(retain_index *ri, mqtt_str topic, void *value, void **old)
{
    if (old != NULL)
        *old = NULL;
    if (topic.len == 0)
        return IMQTT_EINVAL;
    if (reserve(ri, topic) < 0)
        return IMQTT_ENOMEM;
    rnode *n = root_for(ri, topic);
    uint32_t pos = 0;
    for (;;) {
        uint32_t end = level_end(topic, pos);
        mqtt_str level = {topic.ptr + pos, end - pos};
        rnode *c = hmap_get(&n->children, level);
        if (c == NULL) {
            c = node_new(n, level);
            if (c == NULL ||
                hmap_put(&n->children, (mqtt_bytes){c->name, c->name_len}, c,
                         NULL) < 0) {
                free(c);
                prune(ri, n);
                return IMQTT_ENOMEM;
            }
            ri->nodes++;
        }
        n = c;
        if (end == topic.len)
            break;
        pos = end + 1;
    }
    void *prev = n->value;
    n->value = value;
    if (prev == NULL)
        ri->count++;
    if (old != NULL)
        *old = prev;
    return 0;
}

void *retain_index_remove(retain_index *ri, mqtt_str topic)
{
    rnode *n = locate(ri, topic);
    if (n == NULL || n->value == NULL)
        return NULL;
    void *v = n->value;
    n->value = NULL;
    ri->count--;
    prune(ri, n);
    return v;
}

void *retain_index_get(const retain_index *ri, mqtt_str topic)
{
    const rnode *n = locate(ri, topic);
    return n ? n->value : NULL;
}

/* Append child c's name to the topic of its parent p (length tl) in buf;
 * returns the child's topic length. */
static uint32_t topic_push(retain_index *ri, const rnode *p, uint32_t tl,
                           const rnode *c)
{
    if (p->parent != NULL)
        ri->buf[tl++] = '/';
    memcpy(ri->buf + tl, c->name, c->name_len);
    return tl + c->name_len;
}

int retain_index_match(retain_index *ri, mqtt_str filter,
                       void (*cb)(void *arg, mqtt_str topic, void *value),
                       void *arg)
{
    const rnode *root = root_for(ri, filter);
    if (root->children.count == 0 || filter.len == 0)
        return 0;

    /* Depth-first. The current node is entered with the filter offset
     * still to match; a node whose children must all be tried ('+' or
     * '#') gets a frame, a literal level just moves down. Frames sit at
     * distinct depths of the current path, so the stack needs at most
     * depth + 1 entries (reserved by set). */
    const uint32_t done = filter.len + 1;
    rframe *st = ri->stack;
    uint32_t sp = 0;
    const rnode *n = root;
    uint32_t pos = 0, tl = 0;
    bool entered = true;
    for (;;) {
        if (!entered) {
            if (sp == 0)
                break;
            rframe *f = &st[sp - 1];
            const rnode *c = hmap_next(&f->node->children, &f->it);
            if (c == NULL) {
                sp--;
                continue;
            }
            tl = topic_push(ri, f->node, f->tl, c);
            n = c;
            pos = f->pos;
        }
        entered = false;
        if (pos == POS_SUBTREE || pos == done) {
            if (n->value != NULL)
                cb(arg, (mqtt_str){ri->buf, tl}, n->value);
            if (pos == POS_SUBTREE && n->children.count > 0)
                st[sp++] = (rframe){n, POS_SUBTREE, 0, tl};
            continue;
        }
        uint32_t end = level_end(filter, pos);
        mqtt_str level = {filter.ptr + pos, end - pos};
        if (level.len == 1 && level.ptr[0] == '#') {
            /* '#' matches the parent level too ("a/#" matches "a"); the
             * roots never hold a value. */
            if (n->value != NULL)
                cb(arg, (mqtt_str){ri->buf, tl}, n->value);
            if (n->children.count > 0)
                st[sp++] = (rframe){n, POS_SUBTREE, 0, tl};
            continue;
        }
        if (level.len == 1 && level.ptr[0] == '+') {
            if (n->children.count > 0)
                st[sp++] = (rframe){n, end + 1, 0, tl};
            continue;
        }
        const rnode *c = hmap_get(&n->children, level);
        if (c != NULL) {
            tl = topic_push(ri, n, tl, c);
            n = c;
            pos = end + 1;
            entered = true;
        }
    }
    return 0;
}

size_t retain_index_count(const retain_index *ri)
{
    return ri->count;
}

size_t retain_index_node_count(const retain_index *ri)
{
    return ri->nodes;
}
