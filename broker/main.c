/* imqtt: an MQTT 3.1.1 / 5.0 broker for instant messaging. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_link.h"
#include "cluster_nats.h"
#include "cmd_passwd.h"
#include "cmd_token.h"
#include "config.h"
#include "errors.h"
#include "log.h"
#include "server.h"

#ifndef IMQTT_VERSION
#define IMQTT_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: imqtt [--config FILE] [--port N] [--bind ADDR]\n"
            "       imqtt token --sub USER [--ttl S] [--groups a,b] ...\n"
            "       imqtt passwd [--password P] FILE USER\n"
            "  --config FILE  JSON configuration (docs/config.md); without it\n"
            "                 the broker listens on 0.0.0.0:1883, anonymous\n"
            "  --port N       port of the first listener\n"
            "  --bind ADDR    address of the first listener\n"
            "  --check-store DIR  check the LMDB store in DIR (read-only;\n"
            "                 run it on a stopped broker's store), print\n"
            "                 counts; exit 0 when consistent, 1 otherwise\n"
            "  --version      print the version\n");
}

/* --check-store: reference counts, queue entries pointing at messages,
 * every record parsing. */
static int check_store(const char *dir)
{
    store_options o = {
        .durability = STORE_PROCESS, .dir = dir, .read_only = true};
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

int main(int argc, char **argv)
{
    /* Subcommands for operators and tests (docs/auth.md). */
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return cmd_token_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "passwd") == 0)
        return cmd_passwd_main(argc - 1, argv + 1);

    const char *config_path = NULL, *bind = NULL;
    long port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--config") == 0 && v) {
            config_path = v;
            i++;
        } else if (strcmp(a, "--port") == 0 && v) {
            char *end;
            port = strtol(v, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "imqtt: --port: expected 0..65535\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--bind") == 0 && v) {
            bind = v;
            i++;
        } else if (strcmp(a, "--check-store") == 0 && v) {
            return check_store(v);
        } else if (strcmp(a, "--version") == 0) {
            printf("imqtt %s\n", IMQTT_VERSION);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    imqtt_config cfg;
    char err[512];
    int rc = config_path ? config_load(config_path, &cfg, err, sizeof(err))
                         : config_defaults(&cfg);
    if (rc < 0) {
        fprintf(stderr, "imqtt: %s\n", config_path ? err : imqtt_strerror(rc));
        return 2;
    }
    if (port >= 0)
        cfg.listeners[0].port = (uint16_t)port;
    if (bind) {
        char *copy = strdup(bind);
        if (!copy)
            return 1;
        free(cfg.listeners[0].bind);
        cfg.listeners[0].bind = copy;
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
    rc = server_init(&srv, loop, &cfg);
    if (rc < 0) {
        log_error("start-up failed: %s", imqtt_strerror(rc));
        /* Close what was opened so far (sessions loaded before the error
         * free their memory in close callbacks). */
        srv.stopping = true;
        server_end_sessions(&srv);
        uv_walk(loop, close_handle, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        server_free(&srv);
        uv_loop_close(loop);
        cluster_nats_shutdown();
        return 1;
    }
    srv.config_path = config_path; /* for SIGHUP (reload.c) */
    if (srv.cfg.cluster)
        srv.cluster = cluster_link_start(loop, srv.cfg.cluster);
    log_info("imqtt %s started", IMQTT_VERSION);
    int code = server_run(&srv);
    cluster_link_release(srv.cluster);
    cluster_nats_shutdown();
    cluster_link_free(srv.cluster);
    server_free(&srv);
    uv_loop_close(loop);
    log_info("stopped");
    return code;
}
