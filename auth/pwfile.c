/* Password files on disk: loading, and adding or replacing one entry
 * (the `imqtt passwd` command). Blocking I/O: start-up, reload and the
 * command line only. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "identity.h"
#include "password.h"

/* Far beyond any real file; stops a wrong path (a log, a device) from
 * being read whole. */
#define PWFILE_MAX (16u * 1024 * 1024)

/* Read all of path. *missing tells ENOENT apart for pwfile_set. */
static int read_all(const char *path, char **out, size_t *len, bool *missing)
{
    *out = NULL;
    *len = 0;
    *missing = false;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *missing = errno == ENOENT;
        return IMQTT_EIO;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf != NULL) {
        if (n == cap) {
            if (cap >= PWFILE_MAX) {
                rc = IMQTT_ECONFIG;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = IMQTT_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = IMQTT_EIO;
            break;
        }
    }
    int saved = errno;
    fclose(f);
    if (buf == NULL)
        return IMQTT_ENOMEM;
    if (rc != 0) {
        free(buf);
        errno = saved;
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int pwdb_load(const char *path, pwdb **out, struct pw_error *err)
{
    *out = NULL;
    *err = (struct pw_error){0, NULL};
    char *text;
    size_t len;
    bool missing;
    int rc = read_all(path, &text, &len, &missing);
    if (rc != 0) {
        err->what = rc == IMQTT_ECONFIG ? "file larger than 16 MiB"
                                        : "cannot read the file";
        return rc;
    }
    rc = pwdb_parse(text, len, out, err);
    free(text);
    if (rc == 0 && pwdb_count(*out) == 0) {
        pwdb_free(*out);
        *out = NULL;
        *err = (struct pw_error){0, "no entries"};
        return IMQTT_ECONFIG;
    }
    return rc;
}

/* Write all of buf to fd, retrying short writes. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return IMQTT_EIO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The new file text: text with the entry of user replaced (or appended). */
static char *rewrite(const char *text, size_t len, mqtt_str user,
                     const char *entry, size_t *out_len)
{
    size_t elen = strlen(entry);
    char *out = malloc(len + elen + 2);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    bool replaced = false;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl != NULL);
        /* The text parsed, so every line that is not empty or a comment
         * is "user:..." with a valid user. */
        bool mine = ll > user.len && line[0] != '#' && line[user.len] == ':' &&
                    memcmp(line, user.ptr, user.len) == 0;
        if (mine && !replaced) {
            memcpy(out + n, entry, elen);
            n += elen;
            replaced = true;
        } else {
            memcpy(out + n, line, ll);
            n += ll;
        }
        out[n++] = '\n';
    }
    if (!replaced) {
        memcpy(out + n, entry, elen);
        n += elen;
        out[n++] = '\n';
    }
    *out_len = n;
    return out;
}

static int replace_file(const char *path, const char *buf, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof(".XXXXXX"));
    if (tmp == NULL)
        return IMQTT_ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
    /* mkstemp creates the file 0600: hashes are secrets too. */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return IMQTT_EIO;
    }
    int rc = write_all(fd, buf, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = IMQTT_EIO;
    if (close(fd) != 0 && rc == 0)
        rc = IMQTT_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = IMQTT_EIO;
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int pwfile_set(const char *path, mqtt_str user, const char *hash_text,
               struct pw_error *err)
{
    *err = (struct pw_error){0, NULL};
    if (!im_id_part_valid(user)) {
        err->what = "user name is not 1..64 of [A-Za-z0-9._-]";
        return IMQTT_EINVAL;
    }
    size_t hlen = strlen(hash_text);
    size_t elen = user.len + 1 + hlen;
    char *entry = malloc(elen + 1);
    if (entry == NULL)
        return IMQTT_ENOMEM;
    memcpy(entry, user.ptr, user.len);
    entry[user.len] = ':';
    memcpy(entry + user.len + 1, hash_text, hlen + 1);

    /* The new entry must itself be one the loader accepts. */
    pwdb *db = NULL;
    int rc = pwdb_parse(entry, elen, &db, err);
    pwdb_free(db);
    if (rc != 0) {
        free(entry);
        return rc == IMQTT_ECONFIG ? IMQTT_EINVAL : rc;
    }

    char *text = NULL;
    size_t len = 0;
    bool missing = false;
    rc = read_all(path, &text, &len, &missing);
    if (rc != 0 && !missing) {
        err->what = "cannot read the file";
        free(entry);
        return rc;
    }
    rc = pwdb_parse(text ? text : "", len, &db, err);
    pwdb_free(db);
    if (rc == 0) {
        size_t out_len = 0;
        char *out = rewrite(text ? text : "", len, user, entry, &out_len);
        rc = out ? replace_file(path, out, out_len) : IMQTT_ENOMEM;
        if (rc == IMQTT_EIO)
            err->what = "cannot write the file";
        free(out);
    }
    free(text);
    free(entry);
    return rc;
}
