/* Reading key material from files: HMAC secrets and PEM keys for JWT.
 * One reader for the broker's config and the `imqtt token` command, so
 * both see the same secret bytes from the same file. Blocking file I/O:
 * for start-up and reload, not for the loop thread while it serves. */
#ifndef IMQTT_KEYFILE_H
#define IMQTT_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYFILE_MAX (64 * 1024)

/* Read all of `path` (at most KEYFILE_MAX bytes) into a new buffer with a
 * NUL after the content (not counted in *len). With `strip_newline`, one
 * trailing "\n" or "\r\n" is dropped: `echo secret > file` then yields
 * "secret". Returns 0, IMQTT_EIO (errno kept), IMQTT_ECONFIG (empty or
 * larger than KEYFILE_MAX) or IMQTT_ENOMEM. The caller frees *out with
 * keyfile_free. */
int keyfile_read(const char *path, bool strip_newline, uint8_t **out,
                 size_t *len);

/* Wipe and free a buffer from keyfile_read (NULL is fine). */
void keyfile_free(uint8_t *buf, size_t len);

#endif
