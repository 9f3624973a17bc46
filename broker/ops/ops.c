/* SIGHUP, $SYS and the metrics listener, tied to the server's life. */
#include "ops.h"

#include <stdlib.h>

#include "http.h"
#include "log.h"
#include "loop_lock.h"
#include "memtrim.h"
#include "reload.h"
#include "retained_send.h"
#include "sys_topics.h"

struct ops_state {
    uv_signal_t sighup;
    sys_topics *sys;
    http_listener *http;
    memtrim *trim; /* owned; NULL without memory */
};

static void on_sighup_locked(uv_signal_t *h, int signum)
{
    (void)signum;
    server *srv = h->data;
    if (!srv->config_path) {
        log_warn("SIGHUP: started without --config, nothing to reload");
        return;
    }
    log_info("SIGHUP: reloading %s", srv->config_path);
    if (reload_apply(srv, srv->config_path) == 0)
        sys_topics_set_interval(srv->ops->sys, srv->cfg.sys_interval);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    loop_lock();
    on_sighup_locked(h, signum);
    loop_unlock();
}

static void stop_hook(server *srv, void *arg)
{
    (void)arg;
    ops_stop(srv);
}

int ops_start(server *srv)
{
    struct ops_state *o = calloc(1, sizeof(*o));
    if (!o)
        return -1;
    srv->ops = o;
    server_on_stopping(srv, stop_hook, NULL);
    log_set_json(srv->cfg.log_json);
    uv_signal_init(srv->loop, &o->sighup);
    o->sighup.data = srv;
    uv_signal_start(&o->sighup, on_sighup, SIGHUP);
    o->sys = sys_topics_start(srv);
    o->trim = memtrim_start(srv->loop);
    retained_pacer_start(srv);
    return http_start(srv, &o->http);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void ops_stop(server *srv)
{
    struct ops_state *o = srv->ops;
    if (!o)
        return;
    srv->ops = NULL;
    sys_topics_stop(o->sys);
    http_stop(o->http);
    memtrim_stop(o->trim);
    retained_pacer_stop(srv->retained_pacer);
    /* The state goes with the signal handle's close callback. */
    o->sighup.data = o;
    uv_close((uv_handle_t *)&o->sighup, on_closed);
}

void ops_free(server *srv)
{
    reload_free_retired(srv);
}
