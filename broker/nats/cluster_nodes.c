/* Which nodes of the cluster are alive (cluster_nodes.h). */
#include <nats/nats.h>

#include "cluster_nodes.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "hmap.h"
#include "log.h"
#include "loop_lock.h"
#include "wallclock.h"

/* The heartbeat, one line of text: "hb 1 <node> <epoch> <start_ms>", or
 * "bye 1 <node> <epoch>" at a clean stop. Node names are
 * [A-Za-z0-9_-]{1,64} (config_cluster.c), so spaces separate safely. */
#define HB_MAX 160

/* Another node, as last heard; the key in `peers` is name. Kept after it
 * is gone (so its return is logged as such), freed with the module. */
typedef struct peer {
    uint64_t epoch;
    int64_t start_ms; /* its wall clock at its start */
    uint64_t heard;   /* loop time (ms) of its last message */
    bool alive;
    uint16_t len;
    char name[]; /* NUL-terminated */
} peer;

typedef struct ctl_sub {
    natsSubscription *sub; /* owned; NULL: free slot */
    int64_t sid;
    cluster_nodes_handler fn;
    void *arg;
} ctl_sub;

struct cluster_nodes {
    server *srv;              /* borrowed */
    cluster_link *link;       /* borrowed */
    const cluster_config *cc; /* borrowed */
    uv_timer_t timer;         /* on the main loop; closed by stop */
    bool stopped;
    uint64_t epoch;
    int64_t start_ms;
    size_t node_len;
    natsSubscription *hb; /* owned */
    int64_t hb_sid;
    char hb_subject[160];
    ctl_sub subs[CLUSTER_NODES_SUBS];
    hmap peers; /* name -> peer*, owned */
    cluster_nodes_watch watch;
    void *watch_arg;
    bool warned_twin; /* "another process has this node's name" */
    atomic_uint seen; /* alive peers + 1: read by /metrics, $SYS */
};

static uint32_t count_alive(const cluster_nodes *n)
{
    uint32_t c = 1, pos = 0;
    const peer *p;
    while ((p = hmap_next(&n->peers, &pos)) != NULL)
        c += p->alive;
    return c;
}

static void set_state(cluster_nodes *n, peer *p, bool alive, const char *why)
{
    if (p->alive == alive)
        return;
    p->alive = alive;
    atomic_store(&n->seen, count_alive(n));
    if (alive)
        log_info("cluster: node %s is up (%s; %u nodes seen)", p->name, why,
                 atomic_load(&n->seen));
    else
        log_warn("cluster: node %s is gone (%s; %u nodes seen)", p->name, why,
                 atomic_load(&n->seen));
    if (n->watch)
        n->watch(n->watch_arg, alive ? CLUSTER_NODE_UP : CLUSTER_NODE_GONE,
                 (mqtt_str){(const uint8_t *)p->name, p->len});
}

static bool is_self(const cluster_nodes *n, mqtt_str name)
{
    return name.len == n->node_len &&
           memcmp(name.ptr, n->cc->node, n->node_len) == 0;
}

/* A message from `name` with `epoch`: the peer's record brought up to
 * date. Returns NULL for this node's own name or an older process's
 * message. */
static peer *hear(cluster_nodes *n, mqtt_str name, uint64_t epoch,
                  int64_t start_ms)
{
    if (is_self(n, name)) {
        if (epoch != n->epoch && !n->warned_twin) {
            n->warned_twin = true;
            log_warn("cluster: another process announces this node's name "
                     "%s: give every node a name of its own",
                     n->cc->node);
        }
        return NULL;
    }
    if (name.len == 0 || name.len > 64)
        return NULL;
    peer *p = hmap_get(&n->peers, name);
    if (!p) {
        p = calloc(1, sizeof(*p) + name.len + 1);
        if (!p)
            return NULL;
        p->len = (uint16_t)name.len;
        memcpy(p->name, name.ptr, name.len);
        if (hmap_put(&n->peers, (mqtt_bytes){(uint8_t *)p->name, p->len}, p,
                     NULL) < 0) {
            free(p);
            return NULL;
        }
        p->epoch = epoch;
    }
    if (epoch < p->epoch)
        return NULL; /* from before its restart, still in flight */
    if (epoch > p->epoch) {
        set_state(n, p, false, "restarted");
        p->epoch = epoch;
    }
    if (start_ms)
        p->start_ms = start_ms;
    p->heard = uv_now(n->srv->loop);
    set_state(n, p, true, "heard");
    return p;
}

bool cluster_nodes_heard(cluster_nodes *n, mqtt_str name, uint64_t epoch)
{
    return !n->stopped && hear(n, name, epoch, 0) != NULL;
}

/* "hb 1 <node> <epoch> <start_ms>" / "bye 1 <node> <epoch>". */
static void on_heartbeat(cluster_nodes *n, natsMsg *m)
{
    char line[HB_MAX + 1], kind[8], name[72];
    unsigned long long epoch = 0;
    long long start = 0;
    int len = natsMsg_GetDataLength(m);
    if (len <= 0 || len > HB_MAX)
        return;
    memcpy(line, natsMsg_GetData(m), (size_t)len);
    line[len] = '\0';
    int k = sscanf(line, "%7s 1 %71s %llu %lld", kind, name, &epoch, &start);
    if (k < 3)
        return;
    mqtt_str nm = {(const uint8_t *)name, (uint32_t)strlen(name)};
    if (strcmp(kind, "bye") == 0) {
        peer *p = hmap_get(&n->peers, nm);
        if (p && p->epoch == epoch)
            set_state(n, p, false, "stopped");
        return;
    }
    if (strcmp(kind, "hb") == 0 && k == 4)
        hear(n, nm, epoch, start);
}

static bool on_ctl(void *arg, natsMsg *m, int64_t sid)
{
    cluster_nodes *n = arg;
    if (n->stopped)
        return false;
    if (sid == n->hb_sid) {
        on_heartbeat(n, m);
        natsMsg_Destroy(m);
        return true;
    }
    for (int i = 0; i < CLUSTER_NODES_SUBS; i++)
        if (n->subs[i].sub && n->subs[i].sid == sid) {
            n->subs[i].fn(n->subs[i].arg, m);
            return true;
        }
    return false;
}

static void publish_hb(cluster_nodes *n, const char *kind)
{
    char line[HB_MAX + 1];
    int len = snprintf(line, sizeof line, "%s 1 %s %" PRIu64 " %" PRId64, kind,
                       n->cc->node, n->epoch, n->start_ms);
    if (len > 0 && len <= HB_MAX)
        natsConnection_Publish(cluster_link_conn(n->link), n->hb_subject, line,
                               len);
}

static void on_timer_locked(cluster_nodes *n)
{
    publish_hb(n, "hb");
    uint64_t now = uv_now(n->srv->loop);
    uint32_t pos = 0;
    peer *p;
    while ((p = hmap_next(&n->peers, &pos)) != NULL)
        if (p->alive && now - p->heard > CLUSTER_HB_MS * CLUSTER_HB_MISSES)
            /* set_state changes no map: the walk stays valid */
            set_state(n, p, false, "not heard for 3 heartbeats");
}

static void on_timer(uv_timer_t *t)
{
    loop_lock();
    on_timer_locked(t->data);
    loop_unlock();
}

cluster_nodes *cluster_nodes_start(server *srv, cluster_link *l,
                                   const cluster_config *cc)
{
    cluster_nodes *n = calloc(1, sizeof(*n));
    if (!n) {
        log_error("cluster: out of memory: nodes are not tracked");
        return NULL;
    }
    n->srv = srv;
    n->link = l;
    n->cc = cc;
    n->node_len = strlen(cc->node);
    n->start_ms = wall_ms();
    /* the start time orders a node's processes; the low bits tell two
     * starts within one millisecond apart */
    n->epoch = ((uint64_t)n->start_ms << 16) |
               ((uv_hrtime() ^ (uint64_t)getpid()) & 0xFFFF);
    atomic_store(&n->seen, 1);
    snprintf(n->hb_subject, sizeof n->hb_subject, "%s.node.%s.hb",
             cc->subject_prefix, cc->node);
    char all[160];
    snprintf(all, sizeof all, "%s.node.*.hb", cc->subject_prefix);
    natsStatus s = natsConnection_Subscribe(&n->hb, cluster_link_conn(l), all,
                                            cluster_link_on_msg, l);
    if (s == NATS_OK)
        n->hb_sid = natsSubscription_GetID(n->hb);
    else
        log_warn("cluster: cannot subscribe to %s: %s: other nodes are not "
                 "seen",
                 all, natsStatus_GetText(s));
    cluster_link_set_ctl(l, on_ctl, n);
    uv_timer_init(srv->loop, &n->timer);
    n->timer.data = n;
    uv_timer_start(&n->timer, on_timer, 0, CLUSTER_HB_MS);
    return n;
}

int cluster_nodes_subscribe(cluster_nodes *n, const char *subject,
                            cluster_nodes_handler fn, void *arg)
{
    for (int i = 0; i < CLUSTER_NODES_SUBS; i++) {
        ctl_sub *cs = &n->subs[i];
        if (cs->sub)
            continue;
        natsStatus s =
            natsConnection_Subscribe(&cs->sub, cluster_link_conn(n->link),
                                     subject, cluster_link_on_msg, n->link);
        if (s != NATS_OK) {
            cs->sub = NULL;
            log_warn("cluster: cannot subscribe to %s: %s", subject,
                     natsStatus_GetText(s));
            return IMQTT_EIO;
        }
        cs->sid = natsSubscription_GetID(cs->sub);
        cs->fn = fn;
        cs->arg = arg;
        return 0;
    }
    return IMQTT_EINVAL;
}

void cluster_nodes_set_watch(cluster_nodes *n, cluster_nodes_watch fn,
                             void *arg)
{
    n->watch = fn;
    n->watch_arg = arg;
}

void cluster_nodes_stop(cluster_nodes *n)
{
    if (!n || n->stopped)
        return;
    n->stopped = true;
    publish_hb(n, "bye");
    /* the goodbye leaves before the connection closes */
    natsConnection_FlushTimeout(cluster_link_conn(n->link), 200);
    cluster_link_set_ctl(n->link, NULL, NULL);
    if (n->hb) {
        natsSubscription_Unsubscribe(n->hb);
        natsSubscription_Destroy(n->hb);
        n->hb = NULL;
    }
    for (int i = 0; i < CLUSTER_NODES_SUBS; i++)
        if (n->subs[i].sub) {
            natsSubscription_Unsubscribe(n->subs[i].sub);
            natsSubscription_Destroy(n->subs[i].sub);
            n->subs[i].sub = NULL;
        }
    uv_close((uv_handle_t *)&n->timer, NULL);
}

void cluster_nodes_free(cluster_nodes *n)
{
    if (!n)
        return;
    uint32_t pos = 0;
    peer *p;
    while ((p = hmap_next(&n->peers, &pos)) != NULL)
        free(p);
    hmap_free(&n->peers);
    free(n);
}

uint32_t cluster_nodes_seen(const cluster_nodes *n)
{
    return atomic_load(&((cluster_nodes *)n)->seen);
}

uint64_t cluster_nodes_epoch(const cluster_nodes *n)
{
    return n->epoch;
}
