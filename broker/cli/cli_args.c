/* Command-line options of the broker (see cli_args.h). */
#include "cli_args.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"

void cli_usage(FILE *out)
{
    fprintf(
        out,
        "usage: imqtt [-c FILE] [-p PORT] [--bind ADDR] [--threads N] [-v]\n"
        "       imqtt --check-store DIR | --version | --help\n"
        "       imqtt token --sub USER [--ttl S] [--groups a,b] ...\n"
        "       imqtt passwd [--password P] FILE USER\n"
        "  -c, --config FILE  JSON configuration (docs/config.md); without\n"
        "                 it the broker listens on 127.0.0.1 and ::1 only,\n"
        "                 anonymous, everything allowed\n"
        "  -p, --port N   port of the first listener (of both loopback\n"
        "                 listeners without a config)\n"
        "  --bind ADDR    address of the first listener (0.0.0.0: all)\n"
        "  --threads N    loop threads (config `threads`; 0: one per core)\n"
        "  -v, --verbose  log every packet received and sent (debug level)\n"
        "  --check-store DIR  check the LMDB store in DIR (read-only;\n"
        "                 run it on a stopped broker's store), print\n"
        "                 counts; exit 0 when consistent, 1 otherwise\n"
        "  --version      print the version\n");
}

static enum cli_action bad(const char *fmt, const char *what)
{
    fprintf(stderr, "imqtt: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    cli_usage(stderr);
    return CLI_BAD;
}

/* Whether argument a is option `short_name` or `long_name`; its value
 * comes from "--long=value" or from the next argument. *i is advanced past
 * a value taken from the next argument. */
static bool is_opt(int argc, char **argv, int *i, const char *short_name,
                   const char *long_name, bool takes_value, const char **value,
                   bool *missing)
{
    const char *a = argv[*i];
    size_t ln = strlen(long_name);
    *missing = false;
    if (takes_value && strncmp(a, long_name, ln) == 0 && a[ln] == '=') {
        *value = a + ln + 1;
        return true;
    }
    if (strcmp(a, long_name) != 0 && (!short_name || strcmp(a, short_name)))
        return false;
    if (!takes_value)
        return true;
    if (*i + 1 >= argc) {
        *missing = true;
        return true;
    }
    *value = argv[++*i];
    return true;
}

enum cli_action cli_parse(int argc, char **argv, cli_args *out)
{
    *out = (cli_args){.port = -1, .threads = -1};
    enum cli_action action = CLI_RUN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        bool missing;
#define OPT(s, l, val) is_opt(argc, argv, &i, s, l, val, &v, &missing)
        if (OPT("-c", "--config", true)) {
            if (missing)
                return bad("option %s needs a file name", a);
            out->config_path = v;
        } else if (OPT("-p", "--port", true)) {
            if (missing)
                return bad("option %s needs a port number", a);
            char *end;
            long port = strtol(v, &end, 10);
            if (!*v || *end || port < 0 || port > 65535)
                return bad("%s: expected a port 0..65535", a);
            out->port = port;
        } else if (OPT(NULL, "--threads", true)) {
            if (missing)
                return bad("option %s needs a number", a);
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 0 || n > CONFIG_THREADS_MAX)
                return bad("%s: expected 0..256 (0: one per core)", a);
            out->threads = n;
        } else if (OPT(NULL, "--bind", true)) {
            if (missing)
                return bad("option %s needs an address", a);
            unsigned char addr[16];
            /* An address, not a host name: a name would need a lookup and
             * could resolve differently from one start to the next. */
            if (inet_pton(AF_INET, v, addr) != 1 &&
                inet_pton(AF_INET6, v, addr) != 1)
                return bad("%s: expected an IPv4 or IPv6 address", a);
            out->bind = v;
        } else if (OPT(NULL, "--check-store", true)) {
            if (missing)
                return bad("option %s needs a directory", a);
            out->store_dir = v;
            action = CLI_CHECK_STORE;
        } else if (OPT("-v", "--verbose", false)) {
            out->verbose = true;
        } else if (OPT(NULL, "--version", false)) {
            return CLI_VERSION;
        } else if (OPT("-h", "--help", false)) {
            return CLI_HELP;
        } else if (a[0] == '-') {
            return bad("unknown option %s", a);
        } else {
            return bad("unexpected argument %s", a);
        }
#undef OPT
    }
    return action;
}

/* Whether this host has an IPv6 loopback to listen on (IPv6 may be
 * disabled, or the machine a container without it). */
static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static int loopback_only(imqtt_config *cfg, uint16_t port)
{
    bool v6 = have_ipv6_loopback();
    listener_config *l = calloc(v6 ? 2 : 1, sizeof(*l));
    if (!l)
        return IMQTT_ENOMEM;
    l[0] = (listener_config){.bind = strdup("127.0.0.1"), .port = port};
    if (v6)
        l[1] = (listener_config){.bind = strdup("::1"), .port = port};
    if (!l[0].bind || (v6 && !l[1].bind)) {
        free(l[0].bind);
        free(v6 ? l[1].bind : NULL);
        free(l);
        return IMQTT_ENOMEM;
    }
    /* The defaults' one listener has nothing else to free. */
    for (uint32_t i = 0; i < cfg->listener_count; i++)
        free(cfg->listeners[i].bind);
    free(cfg->listeners);
    cfg->listeners = l;
    cfg->listener_count = v6 ? 2 : 1;
    log_info("no config: listening on loopback only; use --bind 0.0.0.0 or "
             "a config to listen on all addresses");
    return 0;
}

int cli_apply(const cli_args *a, imqtt_config *cfg)
{
    if (a->port >= 0)
        cfg->listeners[0].port = (uint16_t)a->port;
    if (a->threads >= 0)
        cfg->threads = (uint32_t)a->threads;
    if (!a->config_path && !a->bind)
        return loopback_only(cfg, cfg->listeners[0].port);
    if (a->bind) {
        char *copy = strdup(a->bind);
        if (!copy)
            return IMQTT_ENOMEM;
        free(cfg->listeners[0].bind);
        cfg->listeners[0].bind = copy;
    }
    return 0;
}
