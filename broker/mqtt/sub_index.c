#include "sub_index.h"

#include "errors.h"
#include "hmap.h"
#include "topic.h"

#include <stdlib.h>
#include <string.h>

/* Match keeps its pending trie nodes on the C stack up to this many, which
 * covers every filter the default level limit allows; deeper tries use
 * idx->stack, grown by add so that match never allocates. */
#define SUB_STACK_FIXED 32u

/* What subscribes to one filter: plain entries (any order) and shared
 * groups (one per group name). Embedded in a trie node or an exact-map
 * record. */
typedef struct sub_leaf {
    /* Entries: the one inline while cap <= 1 (an inbox topic has one
     * subscriber: no 32-byte array chunk per idle connection), else many,
     * owned. */
    union {
        sub_entry one;
        sub_entry *many;
    } e;
    uint32_t n, cap;
    struct group_box **groups; /* owned, each box owned too */
    uint32_t ngroups;
} sub_leaf;

static inline sub_entry *leaf_entries(sub_leaf *l)
{
    return l->cap > 1 ? l->e.many : &l->e.one;
}

static inline const sub_entry *leaf_entries_c(const sub_leaf *l)
{
    return l->cap > 1 ? l->e.many : &l->e.one;
}

/* A sub_group plus what the public struct has no room for. The visitor
 * gets &box->g, which stays at the same address while the group exists
 * (the router may keep advancing g.next through it). */
typedef struct group_box {
    sub_group g;
    uint32_t cap;   /* capacity of g.members */
    uint8_t text[]; /* name bytes then filter bytes; g.name/g.filter */
} group_box;

/* A record of the exact map: the filter text is the map's key. */
typedef struct exact_leaf {
    sub_leaf leaf;
    uint8_t text[]; /* the map's key holds its length */
} exact_leaf;

enum { NODE_LITERAL, NODE_PLUS, NODE_HASH };

/* A trie node: one level of one or more wildcard filters. Its children's
 * hmap keys point into each child's own name bytes. */
typedef struct sub_node {
    struct sub_node *parent; /* NULL for the roots */
    struct sub_node *plus;   /* owned */
    struct sub_node *hash;   /* owned */
    hmap children;           /* literal children, values owned */
    sub_leaf leaf;           /* subscriptions whose filter ends here */
    uint32_t name_len;
    uint8_t kind;
    uint8_t name[];
} sub_node;

typedef struct walk_frame {
    const sub_node *node;
    /* Offset of the next topic level to consume; topic.len + 1 once every
     * level has been consumed. */
    uint32_t pos;
} walk_frame;

struct sub_index {
    hmap exact; /* filter text -> exact_leaf (owned) */
    /* roots[0] for filters starting with anything but '$', roots[1] for
     * '$' filters: a topic only walks the root of its own kind, so a
     * leading wildcard can never reach $SYS [MQTT-4.7.2-1]. */
    sub_node *roots[2];
    walk_frame *stack; /* owned; stack_cap frames */
    uint32_t stack_cap;
    uint32_t max_depth; /* deepest wildcard filter ever added */
    size_t count;
    size_t nodes; /* trie nodes other than the roots */
};

/* ---- leaves ---------------------------------------------------------- */

static bool leaf_empty(const sub_leaf *l)
{
    return l->n == 0 && l->ngroups == 0;
}

static void leaf_clear(sub_leaf *l)
{
    for (uint32_t i = 0; i < l->ngroups; i++) {
        free(l->groups[i]->g.members);
        free(l->groups[i]);
    }
    free(l->groups);
    if (l->cap > 1)
        free(l->e.many);
    memset(l, 0, sizeof *l);
}

static void leaf_visit(const sub_leaf *l, const sub_visitor *v)
{
    if (v->on_entry != NULL)
        for (uint32_t i = 0; i < l->n; i++)
            v->on_entry(v->arg, &leaf_entries_c(l)[i]);
    if (v->on_group != NULL)
        for (uint32_t i = 0; i < l->ngroups; i++)
            v->on_group(v->arg, &l->groups[i]->g);
}

/* Index of owner in e[0..n), or n. A linear scan: a filter rarely has more
 * than a few subscribers in IM traffic (one inbox per user). */
static uint32_t find_owner(const sub_entry *e, uint32_t n, const void *owner)
{
    uint32_t i = 0;
    while (i < n && e[i].owner != owner)
        i++;
    return i;
}

static int entries_reserve(sub_entry **v, uint32_t n, uint32_t *cap)
{
    if (n < *cap)
        return 0;
    /* Start at one: an inbox topic with one subscriber is the common case
     * (16 bytes of every idle connection). */
    uint32_t ncap = *cap ? *cap * 2 : 1;
    if (ncap <= *cap)
        return IMQTT_ENOMEM;
    sub_entry *nv = realloc(*v, (size_t)ncap * sizeof *nv);
    if (nv == NULL)
        return IMQTT_ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

static uint32_t find_group(const sub_leaf *l, mqtt_str name)
{
    uint32_t i = 0;
    for (; i < l->ngroups; i++) {
        const mqtt_str *gn = &l->groups[i]->g.name;
        if (gn->len == name.len && memcmp(gn->ptr, name.ptr, name.len) == 0)
            break;
    }
    return i;
}

static group_box *group_new(sub_leaf *l, mqtt_str name, mqtt_str filter)
{
    group_box **ng = realloc(l->groups, (size_t)(l->ngroups + 1) * sizeof *ng);
    if (ng == NULL)
        return NULL;
    l->groups = ng;
    group_box *b = calloc(1, sizeof *b + (size_t)name.len + filter.len);
    if (b == NULL)
        return NULL;
    memcpy(b->text, name.ptr, name.len);
    memcpy(b->text + name.len, filter.ptr, filter.len);
    b->g.name = (mqtt_str){b->text, name.len};
    b->g.filter = (mqtt_str){b->text + name.len, filter.len};
    l->groups[l->ngroups++] = b;
    return b;
}

/* Add or update owner in the leaf. Returns 1 added, 0 updated, ENOMEM. */
static int leaf_add(sub_leaf *l, const mqtt_str *group, mqtt_str filter,
                    void *owner, const mqtt_sub_opts *opts, uint32_t sub_id)
{
    sub_entry e = {owner, *opts, sub_id};
    if (group == NULL) {
        sub_entry *v = leaf_entries(l);
        uint32_t i = find_owner(v, l->n, owner);
        if (i < l->n) {
            v[i] = e;
            return 0;
        }
        if (l->n == 0 && l->cap <= 1) {
            l->cap = 1;
        } else if (l->n == 1 && l->cap == 1) {
            /* The second: from the inline entry to an array. */
            sub_entry *nv = malloc(2 * sizeof *nv);
            if (nv == NULL)
                return IMQTT_ENOMEM;
            nv[0] = l->e.one;
            l->e.many = nv;
            l->cap = 2;
        } else if (entries_reserve(&l->e.many, l->n, &l->cap) < 0) {
            return IMQTT_ENOMEM;
        }
        leaf_entries(l)[l->n++] = e;
        return 1;
    }
    uint32_t gi = find_group(l, *group);
    group_box *b = gi < l->ngroups ? l->groups[gi] : NULL;
    if (b == NULL && (b = group_new(l, *group, filter)) == NULL)
        return IMQTT_ENOMEM;
    uint32_t i = find_owner(b->g.members, b->g.count, owner);
    if (i < b->g.count) {
        b->g.members[i] = e;
        return 0;
    }
    if (entries_reserve(&b->g.members, b->g.count, &b->cap) < 0) {
        if (b->g.count == 0) { /* just created: undo */
            free(b);
            l->ngroups--;
        }
        return IMQTT_ENOMEM;
    }
    b->g.members[b->g.count++] = e;
    return 1;
}

/* Returns 1 removed, 0 not there. */
static int leaf_remove(sub_leaf *l, const mqtt_str *group, void *owner)
{
    if (group == NULL) {
        sub_entry *v = leaf_entries(l);
        uint32_t i = find_owner(v, l->n, owner);
        if (i == l->n)
            return 0;
        v[i] = v[--l->n]; /* order is irrelevant here */
        if (l->n == 0) {
            if (l->cap > 1)
                free(l->e.many);
            memset(&l->e, 0, sizeof l->e);
            l->cap = 0;
        }
        return 1;
    }
    uint32_t gi = find_group(l, *group);
    if (gi == l->ngroups)
        return 0;
    sub_group *g = &l->groups[gi]->g;
    uint32_t i = find_owner(g->members, g->count, owner);
    if (i == g->count)
        return 0;
    /* Members keep their join order, so round-robin stays fair: shift. */
    memmove(&g->members[i], &g->members[i + 1],
            (size_t)(g->count - i - 1) * sizeof *g->members);
    g->count--;
    /* Keep the cursor on the member it pointed at, or wrap past the end. */
    if (i < g->next)
        g->next--;
    if (g->next >= g->count)
        g->next = 0;
    if (g->count == 0) {
        free(g->members);
        free(l->groups[gi]);
        l->groups[gi] = l->groups[--l->ngroups];
        if (l->ngroups == 0) {
            free(l->groups);
            l->groups = NULL;
        }
    }
    return 1;
}

/* ---- trie ------------------------------------------------------------ */

static uint32_t level_end(mqtt_str s, uint32_t pos)
{
    if (pos >= s.len) /* also keeps a NULL view away from memchr */
        return s.len;
    const uint8_t *p = memchr(s.ptr + pos, '/', s.len - pos);
    return p ? (uint32_t)(p - s.ptr) : s.len;
}

static sub_node *root_for(const sub_index *idx, mqtt_str s)
{
    return idx->roots[s.len > 0 && s.ptr[0] == '$'];
}

static sub_node *node_new(sub_node *parent, mqtt_str name, uint8_t kind)
{
    sub_node *n = calloc(1, sizeof *n + name.len);
    if (n == NULL)
        return NULL;
    n->parent = parent;
    n->kind = kind;
    n->name_len = name.len;
    if (name.len > 0)
        memcpy(n->name, name.ptr, name.len);
    return n;
}

static sub_node *child_get(const sub_node *n, mqtt_str level)
{
    if (level.len == 1 && level.ptr[0] == '+')
        return n->plus;
    if (level.len == 1 && level.ptr[0] == '#')
        return n->hash;
    return hmap_get(&n->children, level);
}

static bool node_bare(const sub_node *n)
{
    return leaf_empty(&n->leaf) && n->plus == NULL && n->hash == NULL &&
           n->children.count == 0;
}

/* Free n and every ancestor it leaves bare, stopping at a root. */
static void trie_prune(sub_index *idx, sub_node *n)
{
    while (n->parent != NULL && node_bare(n)) {
        sub_node *p = n->parent;
        if (n->kind == NODE_PLUS)
            p->plus = NULL;
        else if (n->kind == NODE_HASH)
            p->hash = NULL;
        else
            hmap_remove(&p->children, (mqtt_bytes){n->name, n->name_len});
        hmap_free(&n->children);
        leaf_clear(&n->leaf); /* may still hold an unused groups array */
        free(n);
        idx->nodes--;
        n = p;
    }
}

/* The node for filter f, created (with its path) when `create` is set.
 * On ENOMEM nothing new is left behind. */
static sub_node *trie_locate(sub_index *idx, mqtt_str f, bool create, int *err)
{
    sub_node *n = root_for(idx, f);
    uint32_t pos = 0;
    for (;;) {
        uint32_t end = level_end(f, pos);
        mqtt_str level = {f.ptr + pos, end - pos};
        sub_node *c = child_get(n, level);
        if (c == NULL) {
            if (!create)
                return NULL;
            uint8_t kind = NODE_LITERAL;
            if (level.len == 1 && level.ptr[0] == '+')
                kind = NODE_PLUS;
            else if (level.len == 1 && level.ptr[0] == '#')
                kind = NODE_HASH;
            c = node_new(n, level, kind);
            if (c == NULL ||
                (kind == NODE_LITERAL &&
                 hmap_put(&n->children, (mqtt_bytes){c->name, c->name_len}, c,
                          NULL) < 0)) {
                free(c);
                trie_prune(idx, n);
                *err = IMQTT_ENOMEM;
                return NULL;
            }
            if (kind == NODE_PLUS)
                n->plus = c;
            else if (kind == NODE_HASH)
                n->hash = c;
            idx->nodes++;
        }
        n = c;
        if (end == f.len)
            return n;
        pos = end + 1;
    }
}

/* Free every node below and including n without recursion: nodes are
 * chained into a to-do list through their (no longer needed) parent
 * pointer. */
static void trie_free(sub_node *n)
{
    n->parent = NULL;
    while (n != NULL) {
        sub_node *todo = n->parent;
        uint32_t it = 0;
        sub_node *c;
        while ((c = hmap_next(&n->children, &it)) != NULL) {
            c->parent = todo;
            todo = c;
        }
        if (n->plus != NULL) {
            n->plus->parent = todo;
            todo = n->plus;
        }
        if (n->hash != NULL) {
            n->hash->parent = todo;
            todo = n->hash;
        }
        hmap_free(&n->children);
        leaf_clear(&n->leaf);
        free(n);
        n = todo;
    }
}

/* Make sure match can hold `levels` deep walks without allocating. */
static int stack_reserve(sub_index *idx, uint32_t levels)
{
    if (levels <= idx->max_depth)
        return 0;
    uint64_t need = (uint64_t)levels + 2;
    if (need > SUB_STACK_FIXED && need > idx->stack_cap) {
        uint64_t ncap = (uint64_t)idx->stack_cap * 2;
        if (ncap < need)
            ncap = need;
        walk_frame *s = realloc(idx->stack, (size_t)ncap * sizeof *s);
        if (s == NULL)
            return IMQTT_ENOMEM;
        idx->stack = s;
        idx->stack_cap = (uint32_t)ncap;
    }
    idx->max_depth = levels;
    return 0;
}

/* ---- public API ------------------------------------------------------ */

sub_index *sub_index_new(void)
{
    sub_index *idx = calloc(1, sizeof *idx);
    if (idx == NULL)
        return NULL;
    idx->roots[0] = node_new(NULL, (mqtt_str){NULL, 0}, NODE_LITERAL);
    idx->roots[1] = node_new(NULL, (mqtt_str){NULL, 0}, NODE_LITERAL);
    if (idx->roots[0] == NULL || idx->roots[1] == NULL) {
        free(idx->roots[0]);
        free(idx->roots[1]);
        free(idx);
        return NULL;
    }
    return idx;
}

void sub_index_free(sub_index *idx)
{
    if (idx == NULL)
        return;
    uint32_t it = 0;
    exact_leaf *e;
    while ((e = hmap_next(&idx->exact, &it)) != NULL) {
        leaf_clear(&e->leaf);
        free(e);
    }
    hmap_free(&idx->exact);
    trie_free(idx->roots[0]);
    trie_free(idx->roots[1]);
    free(idx->stack);
    free(idx);
}

/* Split a $share filter. Returns 1 shared, 0 plain, IMQTT_EFILTER (also
 * for an empty filter, which the trie could not represent). */
static int split(mqtt_str filter, mqtt_str *group, mqtt_str *f)
{
    *f = filter;
    int rc = mqtt_share_parse(filter, group, f);
    return rc < 0 || f->len == 0 ? IMQTT_EFILTER : rc;
}

int sub_index_add(sub_index *idx, mqtt_str filter, void *owner,
                  const mqtt_sub_opts *opts, uint32_t sub_id)
{
    mqtt_str group, f;
    int shared = split(filter, &group, &f);
    if (shared < 0)
        return shared;
    const mqtt_str *gp = shared ? &group : NULL;
    int rc;

    if (!mqtt_topic_has_wildcard(f)) {
        exact_leaf *e = hmap_get(&idx->exact, f);
        bool fresh = e == NULL;
        if (fresh) {
            e = calloc(1, sizeof *e + f.len);
            if (e == NULL)
                return IMQTT_ENOMEM;
            memcpy(e->text, f.ptr, f.len);
            if (hmap_put(&idx->exact, (mqtt_bytes){e->text, f.len}, e, NULL) <
                0) {
                free(e);
                return IMQTT_ENOMEM;
            }
        }
        rc = leaf_add(&e->leaf, gp, f, owner, opts, sub_id);
        if (rc < 0 && fresh) {
            hmap_remove(&idx->exact, f);
            leaf_clear(&e->leaf);
            free(e);
        }
    } else {
        if (stack_reserve(idx, mqtt_topic_levels(f)) < 0)
            return IMQTT_ENOMEM;
        int err = 0;
        sub_node *n = trie_locate(idx, f, true, &err);
        if (n == NULL)
            return err;
        rc = leaf_add(&n->leaf, gp, f, owner, opts, sub_id);
        if (rc < 0)
            trie_prune(idx, n);
    }
    if (rc == 1)
        idx->count++;
    return rc;
}

int sub_index_remove(sub_index *idx, mqtt_str filter, void *owner)
{
    mqtt_str group, f;
    int shared = split(filter, &group, &f);
    if (shared < 0)
        return 0;
    const mqtt_str *gp = shared ? &group : NULL;
    int rc;

    if (!mqtt_topic_has_wildcard(f)) {
        exact_leaf *e = hmap_get(&idx->exact, f);
        if (e == NULL)
            return 0;
        rc = leaf_remove(&e->leaf, gp, owner);
        if (leaf_empty(&e->leaf)) {
            hmap_remove(&idx->exact, f);
            leaf_clear(&e->leaf);
            free(e);
        }
    } else {
        int err = 0;
        sub_node *n = trie_locate(idx, f, false, &err);
        if (n == NULL)
            return 0;
        rc = leaf_remove(&n->leaf, gp, owner);
        trie_prune(idx, n);
    }
    idx->count -= (size_t)rc;
    return rc;
}

void sub_index_match(sub_index *idx, mqtt_str topic, const sub_visitor *v)
{
    if (topic.len == 0) /* invalid (BAD_INPUTS row 5): matches nothing */
        return;
    /* The IM common case: p2p/talk/{user} is one lookup. */
    const exact_leaf *e = hmap_get(&idx->exact, topic);
    if (e != NULL)
        leaf_visit(&e->leaf, v);

    const sub_node *root = root_for(idx, topic);
    if (root->plus == NULL && root->hash == NULL && root->children.count == 0)
        return;

    /* Depth-first over the trie. Popping a node at depth d pushes at most
     * two nodes at depth d+1 ('+' and the literal child), so the stack
     * never holds more than max_depth + 2 frames (stack_reserve). */
    walk_frame fixed[SUB_STACK_FIXED];
    walk_frame *st = idx->max_depth + 2 <= SUB_STACK_FIXED ? fixed : idx->stack;
    uint32_t sp = 0;
    const uint32_t done = topic.len + 1;
    st[sp++] = (walk_frame){root, 0};
    while (sp > 0) {
        walk_frame f = st[--sp];
        const sub_node *n = f.node;
        /* '#' also matches the parent level: "a/#" matches "a". */
        if (n->hash != NULL)
            leaf_visit(&n->hash->leaf, v);
        if (f.pos == done) {
            leaf_visit(&n->leaf, v);
            continue;
        }
        uint32_t end = level_end(topic, f.pos);
        uint32_t next = end + 1; /* == done after the last level */
        if (n->plus != NULL)
            st[sp++] = (walk_frame){n->plus, next};
        if (n->children.count > 0) {
            mqtt_str level = {topic.ptr + f.pos, end - f.pos};
            const sub_node *c = hmap_get(&n->children, level);
            if (c != NULL)
                st[sp++] = (walk_frame){c, next};
        }
    }
}

size_t sub_index_count(const sub_index *idx)
{
    return idx->count;
}

size_t sub_index_node_count(const sub_index *idx)
{
    return idx->nodes + idx->exact.count;
}
