/* imqtt: an MQTT 3.1.1 / 5.0 broker for instant messaging. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "cluster_link.h"
#include "cluster_nats.h"
#include "cluster_nodes.h"
#include "cluster_presence.h"
#include "cluster_route.h"
#include "cmd_passwd.h"
#include "cmd_token.h"
#include "config.h"
#include "errors.h"
#include "im.h"
#include "log.h"
#include "ops.h"
#include "server.h"

/* From CMake's project(VERSION) (broker/CMakeLists.txt), the one place
 * the version is written. */
#ifndef IMQTT_VERSION
#error "IMQTT_VERSION comes from project(VERSION) in CMakeLists.txt"
#endif

/* --check-store: reference counts, queue entries pointing at messages,
 * every record parsing. */
static int check_store(const char *dir)
{
    store_options o = {
        .durability = STORE_PROCESS, .dir = dir, .read_only = true};
    /* Allowed on a live store: a read-only LMDB transaction sees one
     * consistent snapshot and takes no write lock (docs/store.md). */
    long holder = store_lock_holder(dir);
    if (holder != 0)
        printf("store %s: in use by a running broker (PID %ld); checking a "
               "read-only snapshot\n",
               dir, holder);
    store *s = NULL;
    int rc = store_open(&o, &s);
    if (rc == 0)
        rc = store_check(s, stdout);
    store_close(s);
    if (rc < 0) {
        fprintf(stderr, "imqtt: store %s: %s\n", dir, imqtt_strerror(rc));
        return 1;
    }
    printf("store %s: consistent\n", dir);
    return 0;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Presence across nodes: the IM layer's peer (im.h), filled when the
 * cluster starts. */
static cluster_presence *presence;
static im_presence_peer presence_peer = {NULL, cluster_presence_local,
                                         cluster_presence_remote};

static void stop_cluster(server *srv, void *link)
{
    im_presence_set_peer(srv, NULL);
    cluster_presence_stop(presence);
    cluster_nodes_stop(srv->cluster_nodes);
    cluster_route_stop(srv->cluster_route); /* its NATS subscriptions first */
    cluster_link_stop(link);
}

int main(int argc, char **argv)
{
    /* Subcommands for operators and tests (docs/auth.md). */
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return cmd_token_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "passwd") == 0)
        return cmd_passwd_main(argc - 1, argv + 1);

    cli_args args;
    switch (cli_parse(argc, argv, &args)) {
    case CLI_BAD:
        return 2;
    case CLI_HELP:
        cli_usage(stdout);
        return 0;
    case CLI_VERSION:
        printf("imqtt %s\n", IMQTT_VERSION);
        return 0;
    case CLI_CHECK_STORE:
        return check_store(args.store_dir);
    case CLI_RUN:
        break;
    }
    const char *config_path = args.config_path;
    if (args.verbose)
        log_set_packets(true);

    imqtt_config cfg;
    char err[512];
    int rc = config_path ? config_load(config_path, &cfg, err, sizeof(err))
                         : config_defaults(&cfg);
    if (rc < 0) {
        fprintf(stderr, "imqtt: %s\n", config_path ? err : imqtt_strerror(rc));
        return 2;
    }
    if (cli_apply(&args, &cfg) < 0) {
        fprintf(stderr, "imqtt: %s\n", imqtt_strerror(IMQTT_ENOMEM));
        config_free(&cfg);
        return 1;
    }

    /* A peer that goes away mid-write must not kill the broker. */
    signal(SIGPIPE, SIG_IGN);

    /* Cluster mode needs NATS with JetStream from the first message on:
     * refuse to start without it rather than acknowledge what only this
     * node would keep. */
    if (cfg.cluster) {
        char info[512];
        rc = cluster_startup_check(cfg.cluster, info, sizeof info, err,
                                   sizeof err);
        if (rc < 0) {
            log_error("start-up failed: cluster: %s", err);
            config_free(&cfg);
            cluster_nats_shutdown();
            return 1;
        }
        log_info("cluster node %s: %s", cfg.cluster->node, info);
    }

    uv_loop_t *loop = uv_default_loop();
    server srv;
    rc = server_init(&srv, loop, &cfg, im_policy());
    if (rc == 0)
        rc = ops_start(&srv);
    if (rc < 0) {
        log_error("start-up failed: %s", imqtt_strerror(rc));
        /* Close what was opened so far (sessions loaded before the error
         * free their memory in close callbacks). */
        srv.stopping = true;
        server_end_sessions(&srv);
        uv_walk(loop, close_handle, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        ops_free(&srv);
        server_free(&srv);
        uv_loop_close(loop);
        cluster_nats_shutdown();
        return 1;
    }
    srv.config_path = config_path; /* for SIGHUP (reload.c) */
    if (srv.cfg.cluster) {
        srv.cluster = cluster_link_start(loop, srv.cfg.cluster);
        if (srv.cluster)
            srv.cluster_route =
                cluster_route_start(&srv, srv.cluster, srv.cfg.cluster);
        if (srv.cluster)
            srv.cluster_nodes =
                cluster_nodes_start(&srv, srv.cluster, srv.cfg.cluster);
        if (srv.cluster_nodes)
            presence =
                cluster_presence_start(&srv, srv.cluster_nodes, srv.cluster,
                                       srv.cfg.cluster, im_presence_refresh);
        if (presence) {
            presence_peer.arg = presence;
            im_presence_set_peer(&srv, &presence_peer);
        }
        server_on_stopping(&srv, stop_cluster, srv.cluster);
    }
    log_info("imqtt %s started", IMQTT_VERSION);
    int code = server_run(&srv);
    ops_free(&srv);
    cluster_presence_free(presence);
    presence = NULL;
    cluster_nodes_free(srv.cluster_nodes);
    srv.cluster_nodes = NULL;
    cluster_route_free(srv.cluster_route);
    srv.cluster_route = NULL;
    cluster_link_release(srv.cluster);
    cluster_nats_shutdown();
    cluster_link_free(srv.cluster);
    server_free(&srv);
    uv_loop_close(loop);
    log_info("stopped");
    return code;
}
