#include "keyfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "errors.h"

int keyfile_read(const char *path, bool strip_newline, uint8_t **out,
                 size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return IMQTT_EIO;
    /* One byte more than allowed tells "too large" from "exactly max". */
    uint8_t *buf = malloc(KEYFILE_MAX + 2);
    if (buf == NULL) {
        fclose(f);
        return IMQTT_ENOMEM;
    }
    size_t n = fread(buf, 1, KEYFILE_MAX + 1, f);
    int err = ferror(f);
    int saved = errno;
    fclose(f);
    int rc = 0;
    if (err) {
        errno = saved;
        rc = IMQTT_EIO;
    } else if (n > KEYFILE_MAX) {
        rc = IMQTT_ECONFIG;
    } else {
        if (strip_newline && n > 0 && buf[n - 1] == '\n') {
            n--;
            if (n > 0 && buf[n - 1] == '\r')
                n--;
        }
        if (n == 0)
            rc = IMQTT_ECONFIG;
    }
    if (rc != 0) {
        keyfile_free(buf, KEYFILE_MAX + 2);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void keyfile_free(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    volatile uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
    free(buf);
}
