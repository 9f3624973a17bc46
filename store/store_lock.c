/* The data directory's lock (BAD_INPUTS row 23): one writer per store.
 *
 * LMDB would let two processes write one environment, each believing it
 * owns the sessions, queues and message ids in it; two brokers on one
 * directory would hand out the same ids and delete each other's queues.
 * So a writable store_open takes an exclusive flock(2) on DIR/imqtt.lock
 * and writes its PID there for the operator. The kernel drops the lock
 * with the last descriptor of the open file, so a broker killed with
 * SIGKILL leaves no stale lock: the PID text left behind is only a hint,
 * never trusted without the lock. The file is not removed at close:
 * unlinking a lock file while another process opens it would let two
 * processes lock two different files. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "errors.h"

static void lock_path(const char *dir, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/" STORE_LOCK_FILE, dir);
}

/* The PID written in the lock file, or 0 when it holds none. */
static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

int store_lock_take(const char *dir, int *fd_out)
{
    char path[4096];
    lock_path(dir, path, sizeof(path));
    *fd_out = -1;
    /* O_CLOEXEC: a program the broker might exec must not keep the lock. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        store_log("error", "%s: %s", path, strerror(errno));
        return IMQTT_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            long pid = read_pid(fd);
            if (pid > 0)
                store_log("error",
                          "%s is in use by another imqtt process (PID %ld, "
                          "lock %s); refusing to open it twice",
                          dir, pid, path);
            else
                store_log("error",
                          "%s is in use by another process (lock %s); "
                          "refusing to open it twice",
                          dir, path);
            close(fd);
            return IMQTT_ELOCKED;
        }
        store_log("error", "%s: flock: %s", path, strerror(e));
        close(fd);
        return IMQTT_EIO;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        store_log("error", "%s: writing the PID: %s", path, strerror(errno));
        close(fd);
        return IMQTT_EIO;
    }
    *fd_out = fd;
    return 0;
}

long store_lock_holder(const char *dir)
{
    char path[4096];
    lock_path(dir, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0; /* no lock file: never opened for writing */
    long holder = 0;
    /* A shared lock is refused only while a writer holds the exclusive
     * one; taken, it is dropped at once so the check blocks no broker. */
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            holder = read_pid(fd);
            if (holder == 0)
                holder = -1;
        }
    } else {
        flock(fd, LOCK_UN);
    }
    close(fd);
    return holder;
}
