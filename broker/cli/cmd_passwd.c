/* `imqtt passwd`: hash a password (PBKDF2-HMAC-SHA512, random salt) and
 * add or replace the user's line in a password file. */
#include "cmd_passwd.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "errors.h"
#include "identity.h"
#include "password.h"

#define PASSWORD_MAX 1024

static void usage(FILE *f)
{
    fputs("usage: imqtt passwd [--password P] [--iterations N] FILE USER\n"
          "Adds or replaces USER in FILE (created 0600 if missing). The\n"
          "password is read from stdin unless --password is given (which\n"
          "other local users can see in the process list).\n",
          f);
}

/* One line from stdin into buf, without its newline; no echo on a
 * terminal. Returns the length or -1. */
static long read_password(char *buf, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("Password: ", stderr);
    } else {
        tty = false;
    }
    char *got = fgets(buf, (int)size, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (got == NULL)
        return -1;
    size_t n = strlen(buf);
    if (n == size - 1 && buf[n - 1] != '\n')
        return -1; /* longer than PASSWORD_MAX */
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (long)n;
}

int cmd_passwd_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"password", required_argument, NULL, 'p'},
        {"iterations", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *password = NULL;
    unsigned long iterations = PW_DEFAULT_ITERATIONS;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            password = optarg;
            break;
        case 'i': {
            char *end;
            iterations = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' ||
                iterations < PW_MIN_ITERATIONS ||
                iterations > PW_MAX_ITERATIONS) {
                fputs("imqtt passwd: --iterations: 1000..10000000\n", stderr);
                return 2;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    mqtt_str user = mqtt_str_from(argv[optind + 1], strlen(argv[optind + 1]));
    if (!im_id_part_valid(user)) {
        fputs("imqtt passwd: USER: 1..64 of [A-Za-z0-9._-]\n", stderr);
        return 2;
    }
    char buf[PASSWORD_MAX + 2];
    size_t len;
    if (password != NULL) {
        len = strlen(password);
    } else {
        long n = read_password(buf, sizeof(buf));
        if (n < 0) {
            fputs("imqtt passwd: no password on stdin (or longer than 1024 "
                  "bytes)\n",
                  stderr);
            return 1;
        }
        password = buf;
        len = (size_t)n;
    }
    if (len == 0) {
        fputs("imqtt passwd: empty password refused\n", stderr);
        return 1;
    }
    char hash[PW_HASH_TEXT_MAX];
    int rc = pw_hash_new((mqtt_bytes){(const uint8_t *)password, (uint32_t)len},
                         (uint32_t)iterations, hash, sizeof(hash));
    memset(buf, 0, sizeof(buf));
    if (rc != 0) {
        fprintf(stderr, "imqtt passwd: hashing failed: %s\n",
                imqtt_strerror(rc));
        return 1;
    }
    struct pw_error err;
    rc = pwfile_set(path, user, hash, &err);
    if (rc != 0) {
        if (err.line > 0)
            fprintf(stderr, "imqtt passwd: %s:%u: %s (file left unchanged)\n",
                    path, err.line, err.what);
        else
            fprintf(stderr, "imqtt passwd: %s: %s\n", path,
                    err.what ? err.what : imqtt_strerror(rc));
        return 1;
    }
    return 0;
}
