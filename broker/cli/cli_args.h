/* The broker's command line: options Mosquitto users type (-c, -p, -v)
 * next to the long ones, and what the command line changes in a config
 * (the first listener's port and address; loopback only without a config).
 * The `token` and `passwd` subcommands parse their own arguments. */
#ifndef IMQTT_CLI_ARGS_H
#define IMQTT_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

enum cli_action {
    CLI_RUN,         /* start the broker */
    CLI_HELP,        /* print the usage to stdout, exit 0 */
    CLI_VERSION,     /* print the version, exit 0 */
    CLI_CHECK_STORE, /* imqtt --check-store DIR */
    CLI_BAD,         /* already reported on stderr (with the usage): exit 2 */
};

typedef struct cli_args {
    const char *config_path; /* borrowed from argv; NULL: no config */
    const char *bind;        /* borrowed from argv; NULL: not given */
    const char *store_dir;   /* CLI_CHECK_STORE: borrowed from argv */
    long port;               /* -1: not given */
    long threads;            /* --threads; -1: not given */
    bool verbose;            /* -v: the per-packet trace at debug level */
} cli_args;

/* Parse argv[1..argc). A bad option, a missing value or a bad value is
 * named on stderr, followed by the usage: CLI_BAD. */
enum cli_action cli_parse(int argc, char **argv, cli_args *out);

void cli_usage(FILE *out);

/* Apply --port / --bind to cfg's first listener. Without a config and
 * without --bind, replace the listeners by 127.0.0.1 and, when this host
 * has it, ::1 (Mosquitto 2 does the same): an unconfigured broker allows
 * everything, so it must not be reachable from other machines unless
 * asked. Returns 0 or IMQTT_ENOMEM. */
int cli_apply(const cli_args *a, imqtt_config *cfg);

#endif
