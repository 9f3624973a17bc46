/* imqtt: an MQTT 3.1.1 / 5.0 broker for instant messaging. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            "  --config FILE  JSON configuration (docs/config.md); without it\n"
            "                 the broker listens on 0.0.0.0:1883, anonymous\n"
            "  --port N       port of the first listener\n"
            "  --bind ADDR    address of the first listener\n"
            "  --version      print the version\n");
}

int main(int argc, char **argv)
{
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
        fprintf(stderr, "imqtt: %s\n",
                config_path ? err : imqtt_strerror(rc));
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

    uv_loop_t *loop = uv_default_loop();
    server srv;
    rc = server_init(&srv, loop, &cfg);
    if (rc < 0) {
        log_error("start-up failed: %s", imqtt_strerror(rc));
        server_free(&srv);
        return 1;
    }
    log_info("imqtt %s started", IMQTT_VERSION);
    int code = server_run(&srv);
    server_free(&srv);
    uv_loop_close(loop);
    log_info("stopped");
    return code;
}
