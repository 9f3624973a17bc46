#include "store_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "store.h"

static int check_in_child(const char *dir, int err_fd)
{
    /* stderr goes to the parent, which relays the store's own log lines
     * (the precise cause) and nothing else (a sanitizer's report of the
     * crash it expects, for one). */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    FILE *out = fopen("/dev/null", "w");
    store_options o = {
        .durability = STORE_PROCESS, .dir = dir, .read_only = true};
    store *s = NULL;
    int rc = store_open(&o, &s);
    if (rc == 0)
        rc = store_check(s, out ? out : stderr);
    /* No cleanup: _exit skips the exit handlers a fork must not run. */
    _exit(rc == 0 ? 0 : 1);
}

static void drain_pipe(int fd, char *buf, size_t cap, size_t *len)
{
    char scratch[1024];
    for (;;) {
        ssize_t n = read(fd, scratch, sizeof(scratch));
        if (n <= 0)
            return;
        size_t keep = (size_t)n < cap - *len ? (size_t)n : cap - *len;
        memcpy(buf + *len, scratch, keep);
        *len += keep;
    }
}

/* Pass on the lines the store logged (" store: ..."), which say what is
 * wrong, e.g. "truncated (4096 bytes, 16384 needed)". */
static void relay_store_lines(const char *buf, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && buf[i] != '\n')
            continue;
        const char *line = buf + start;
        size_t n = i - start;
        const char *tag = NULL;
        for (size_t k = 0; !tag && n >= 8 && k <= n - 8; k++)
            if (memcmp(line + k, " store: ", 8) == 0)
                tag = line + k;
        if (tag)
            log_error("%.*s", (int)(n - (size_t)(tag + 8 - line)), tag + 8);
        start = i + 1;
    }
}

int store_guard_verify(const char *dir, unsigned timeout_ms)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &st) != 0)
        return 0; /* a new store: nothing to check */
    int fds[2];
    if (pipe(fds) != 0) {
        log_error("store %s: cannot check it: %s", dir, strerror(errno));
        return IMQTT_EIO;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("store %s: cannot fork the check: %s", dir, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return IMQTT_EIO;
    }
    if (pid == 0) {
        close(fds[0]);
        check_in_child(dir, fds[1]);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    char out[8192];
    size_t out_len = 0;

    int status = 0;
    struct timespec nap = {0, 10 * 1000 * 1000};
    for (unsigned waited = 0;; waited += 10) {
        drain_pipe(fds[0], out, sizeof(out), &out_len);
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            log_error("store %s: waiting for the check: %s", dir,
                      strerror(errno));
            return IMQTT_EIO;
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            log_error("store %s is corrupt: checking it did not finish in "
                      "%u ms; refusing to start (see imqtt --check-store)",
                      dir, timeout_ms);
            return IMQTT_ECORRUPT;
        }
        nanosleep(&nap, NULL);
    }
    drain_pipe(fds[0], out, sizeof(out), &out_len);
    close(fds[0]);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    relay_store_lines(out, out_len);
    if (WIFSIGNALED(status))
        log_error("store %s is corrupt: reading it killed the check process "
                  "(signal %d); refusing to start (see imqtt --check-store)",
                  dir, WTERMSIG(status));
    else
        log_error("store %s is corrupt or unreadable; refusing to start "
                  "(imqtt --check-store %s says why)",
                  dir, dir);
    return IMQTT_ECORRUPT;
}
