/* IM presence across nodes (cluster_presence.h). */
#include <nats/nats.h>

#include "cluster_presence.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "log.h"

/* The message, one line of text: "1 <node> <epoch> <user> [<device> ...]".
 * Node names are [A-Za-z0-9_-], users and devices [A-Za-z0-9._-]
 * (config_cluster.c, im identity rules), so spaces separate safely. */
#define NAME_MAX_LEN 64

/* What this node last said about one user: sent again, whole, to a node
 * that comes up. The key in `local` is user. */
typedef struct lpres {
    char *devs; /* owned: "dev dev ...", never empty */
    uint32_t devs_len;
    uint16_t len;
    char user[];
} lpres;

/* What one other node last said about one user. */
typedef struct rent {
    uint64_t epoch;
    char *devs; /* owned: "dev dev ...", never empty */
    uint32_t devs_len;
    uint8_t node_len;
    char node[NAME_MAX_LEN + 1];
} rent;

/* The other nodes' devices of one user; the key in `remote` is user. */
typedef struct ruser {
    rent *e; /* owned, n of cap */
    uint32_t n, cap;
    uint16_t len;
    char user[];
} ruser;

struct cluster_presence {
    server *srv;              /* borrowed */
    cluster_nodes *nodes;     /* borrowed */
    cluster_link *link;       /* borrowed */
    const cluster_config *cc; /* borrowed */
    cluster_presence_changed changed;
    bool stopped;
    char subject[160];
    hmap local;  /* user -> lpres*, owned */
    hmap remote; /* user -> ruser*, owned */
    char *buf;   /* owned: the message being built */
    size_t buf_cap;
};

static bool name_ok(mqtt_str s, bool dot)
{
    if (s.len == 0 || s.len > NAME_MAX_LEN)
        return false;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              (dot && c == '.')))
            return false;
    }
    return true;
}

static bool str_eq(mqtt_str a, const char *b, size_t n)
{
    return a.len == n && memcmp(a.ptr, b, n) == 0;
}

/* ---- telling the other nodes -------------------------------------------- */

static void send_state(cluster_presence *cp, mqtt_str user, const char *devs,
                       uint32_t devs_len)
{
    size_t need = 2 + NAME_MAX_LEN + 1 + 20 + 1 + user.len + 1 + devs_len + 1;
    if (need > cp->buf_cap) {
        char *b = realloc(cp->buf, need);
        if (!b)
            return;
        cp->buf = b;
        cp->buf_cap = need;
    }
    int n = snprintf(cp->buf, cp->buf_cap, "1 %s %" PRIu64 " %.*s",
                     cp->cc->node, cluster_nodes_epoch(cp->nodes),
                     (int)user.len, (const char *)user.ptr);
    if (n < 0)
        return;
    size_t len = (size_t)n;
    if (devs_len) {
        cp->buf[len++] = ' ';
        memcpy(cp->buf + len, devs, devs_len);
        len += devs_len;
    }
    natsConnection_Publish(cluster_link_conn(cp->link), cp->subject, cp->buf,
                           (int)len);
}

void cluster_presence_local(void *arg, mqtt_str user, const mqtt_str *devices,
                            uint32_t n)
{
    cluster_presence *cp = arg;
    if (cp->stopped || !name_ok(user, true))
        return;
    lpres *old = hmap_remove(&cp->local, user);
    if (old) {
        free(old->devs);
        free(old);
    }
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += devices[i].len + 1;
    lpres *p = NULL;
    if (n > 0 && (p = calloc(1, sizeof(*p) + user.len + 1)) != NULL &&
        (p->devs = malloc(total)) != NULL) {
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                p->devs[p->devs_len++] = ' ';
            memcpy(p->devs + p->devs_len, devices[i].ptr, devices[i].len);
            p->devs_len += devices[i].len;
        }
        p->len = (uint16_t)user.len;
        memcpy(p->user, user.ptr, user.len);
        if (hmap_put(&cp->local, (mqtt_bytes){(uint8_t *)p->user, p->len}, p,
                     NULL) < 0) {
            free(p->devs);
            free(p);
            p = NULL;
        }
    } else if (p) {
        free(p);
        p = NULL;
    }
    if (p)
        send_state(cp, user, p->devs, p->devs_len);
    else
        send_state(cp, user, NULL, 0); /* none here (or out of memory) */
}

/* A node came up: it knows nothing of this node's devices yet. */
static void send_all(cluster_presence *cp)
{
    uint32_t pos = 0;
    const lpres *p;
    while ((p = hmap_next(&cp->local, &pos)) != NULL)
        send_state(cp, (mqtt_str){(const uint8_t *)p->user, p->len}, p->devs,
                   p->devs_len);
}

/* ---- what the other nodes say ------------------------------------------- */

static void ruser_drop(cluster_presence *cp, ruser *u, uint32_t i)
{
    free(u->e[i].devs);
    u->e[i] = u->e[--u->n];
    if (u->n == 0) {
        hmap_remove(&cp->remote, (mqtt_bytes){(uint8_t *)u->user, u->len});
        free(u->e);
        free(u);
    }
}

static int find_node(const ruser *u, mqtt_str node)
{
    for (uint32_t i = 0; i < u->n; i++)
        if (str_eq(node, u->e[i].node, u->e[i].node_len))
            return (int)i;
    return -1;
}

/* node's devices of user are now devs (may be empty). Returns whether
 * the user's merged view changed. */
static bool apply(cluster_presence *cp, mqtt_str node, uint64_t epoch,
                  mqtt_str user, mqtt_str devs)
{
    ruser *u = hmap_get(&cp->remote, user);
    int i = u ? find_node(u, node) : -1;
    if (i >= 0 && u->e[i].devs_len == devs.len &&
        memcmp(u->e[i].devs, devs.ptr, devs.len) == 0) {
        u->e[i].epoch = epoch;
        return false; /* told again (a node came up): nothing new */
    }
    if (devs.len == 0) {
        if (i < 0)
            return false;
        ruser_drop(cp, u, (uint32_t)i);
        return true;
    }
    char *copy = malloc(devs.len);
    if (!copy)
        return false;
    memcpy(copy, devs.ptr, devs.len);
    if (!u) {
        u = calloc(1, sizeof(*u) + user.len + 1);
        if (!u) {
            free(copy);
            return false;
        }
        u->len = (uint16_t)user.len;
        memcpy(u->user, user.ptr, user.len);
        if (hmap_put(&cp->remote, (mqtt_bytes){(uint8_t *)u->user, u->len}, u,
                     NULL) < 0) {
            free(u);
            free(copy);
            return false;
        }
    }
    if (i < 0) {
        if (u->n == u->cap) {
            uint32_t cap = u->cap ? u->cap * 2 : 2;
            rent *e = realloc(u->e, cap * sizeof(*e));
            if (!e) {
                free(copy);
                if (u->n == 0) { /* made just now: leave no empty user */
                    hmap_remove(&cp->remote,
                                (mqtt_bytes){(uint8_t *)u->user, u->len});
                    free(u->e);
                    free(u);
                }
                return false;
            }
            u->e = e;
            u->cap = cap;
        }
        i = (int)u->n++;
        rent *r = &u->e[i];
        r->node_len = (uint8_t)node.len;
        memcpy(r->node, node.ptr, node.len);
        r->node[node.len] = '\0';
        r->devs = NULL;
    }
    rent *r = &u->e[i];
    free(r->devs);
    r->devs = copy;
    r->devs_len = devs.len;
    r->epoch = epoch;
    return true;
}

/* The next space-separated word of *s. */
static mqtt_str word(mqtt_str *s)
{
    uint32_t i = 0;
    while (i < s->len && s->ptr[i] != ' ')
        i++;
    mqtt_str w = {s->ptr, i};
    uint32_t skip = i < s->len ? i + 1 : i;
    s->ptr += skip;
    s->len -= skip;
    return w;
}

static void on_msg(void *arg, natsMsg *m)
{
    cluster_presence *cp = arg;
    mqtt_str s = {(const uint8_t *)natsMsg_GetData(m),
                  (uint32_t)natsMsg_GetDataLength(m)};
    mqtt_str ver = word(&s), node = word(&s), ep = word(&s), user = word(&s);
    char num[24];
    uint64_t epoch = 0;
    if (cp->stopped || !str_eq(ver, "1", 1) || !name_ok(node, false) ||
        !name_ok(user, true) || ep.len == 0 || ep.len >= sizeof num)
        goto done;
    memcpy(num, ep.ptr, ep.len);
    num[ep.len] = '\0';
    char *end;
    epoch = strtoull(num, &end, 10);
    if (*end != '\0')
        goto done;
    /* every device word must be a device name; the rest stays as text */
    mqtt_str rest = s, d = s;
    while (d.len > 0)
        if (!name_ok(word(&d), true))
            goto done;
    /* this node's own, or an older process of that node: dropped. A node
     * heard here for the first time comes up first (and gets our table). */
    if (!cluster_nodes_heard(cp->nodes, node, epoch))
        goto done;
    if (apply(cp, node, epoch, user, rest))
        cp->changed(cp->srv, user);
done:
    natsMsg_Destroy(m);
}

static void on_node(void *arg, enum cluster_node_event ev, mqtt_str node)
{
    cluster_presence *cp = arg;
    if (cp->stopped)
        return;
    if (ev == CLUSTER_NODE_UP) {
        send_all(cp);
        return;
    }
    /* gone: every user it had devices for, without them. The walk may not
     * change the map: note the users, then drop and republish each. */
    char(*users)[NAME_MAX_LEN + 1] = NULL;
    uint32_t n = 0, cap = 0, pos = 0;
    ruser *u;
    while ((u = hmap_next(&cp->remote, &pos)) != NULL) {
        if (find_node(u, node) < 0)
            continue;
        if (n == cap) {
            uint32_t nc = cap ? cap * 2 : 16;
            void *g = realloc(users, nc * sizeof(*users));
            if (!g)
                break;
            users = g;
            cap = nc;
        }
        memcpy(users[n], u->user, u->len + 1u);
        n++;
    }
    for (uint32_t k = 0; k < n; k++) {
        mqtt_str name = {(const uint8_t *)users[k], (uint32_t)strlen(users[k])};
        u = hmap_get(&cp->remote, name);
        int i = u ? find_node(u, node) : -1;
        if (i < 0)
            continue;
        ruser_drop(cp, u, (uint32_t)i);
        cp->changed(cp->srv, name);
    }
    if (n)
        log_info("cluster: presence of %u users updated without node %.*s's "
                 "devices",
                 n, (int)node.len, (const char *)node.ptr);
    free(users);
}

void cluster_presence_remote(void *arg, mqtt_str user,
                             void (*add)(void *ctx, mqtt_str device), void *ctx)
{
    cluster_presence *cp = arg;
    const ruser *u = hmap_get(&cp->remote, user);
    if (!u)
        return;
    for (uint32_t i = 0; i < u->n; i++) {
        mqtt_str s = {(const uint8_t *)u->e[i].devs, u->e[i].devs_len};
        while (s.len > 0)
            add(ctx, word(&s));
    }
}

/* ---- life --------------------------------------------------------------- */

cluster_presence *cluster_presence_start(server *srv, cluster_nodes *n,
                                         cluster_link *l,
                                         const cluster_config *cc,
                                         cluster_presence_changed changed)
{
    cluster_presence *cp = calloc(1, sizeof(*cp));
    if (!cp) {
        log_error("cluster: out of memory: presence stays per node");
        return NULL;
    }
    cp->srv = srv;
    cp->nodes = n;
    cp->link = l;
    cp->cc = cc;
    cp->changed = changed;
    snprintf(cp->subject, sizeof cp->subject, "%s.presence",
             cc->subject_prefix);
    if (cluster_nodes_subscribe(n, cp->subject, on_msg, cp) < 0) {
        free(cp);
        return NULL;
    }
    cluster_nodes_set_watch(n, on_node, cp);
    return cp;
}

void cluster_presence_stop(cluster_presence *cp)
{
    if (!cp || cp->stopped)
        return;
    cp->stopped = true;
    cluster_nodes_set_watch(cp->nodes, NULL, NULL);
}

void cluster_presence_free(cluster_presence *cp)
{
    if (!cp)
        return;
    uint32_t pos = 0;
    lpres *p;
    while ((p = hmap_next(&cp->local, &pos)) != NULL) {
        free(p->devs);
        free(p);
    }
    hmap_free(&cp->local);
    ruser *u;
    pos = 0;
    while ((u = hmap_next(&cp->remote, &pos)) != NULL) {
        for (uint32_t i = 0; i < u->n; i++)
            free(u->e[i].devs);
        free(u->e);
        free(u);
    }
    hmap_free(&cp->remote);
    free(cp->buf);
    free(cp);
}
