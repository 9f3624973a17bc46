/* password_file authentication (for devices that hold no JWT).
 *
 * File format, one entry per line:
 *
 *     username:$pbkdf2-sha512$ITERATIONS$SALT$HASH
 *     username:$7$ITERATIONS$SALT$HASH    (Mosquitto 2.x, mosquitto_passwd)
 *
 * username   1..64 bytes of [A-Za-z0-9._-] (im_id_part_valid), unique
 * ITERATIONS decimal, PW_MIN_ITERATIONS..PW_MAX_ITERATIONS ($7$: from 1,
 *            as Mosquitto allows; its default is 101)
 * SALT       standard base64 (with padding) of 8..64 bytes
 * HASH       standard base64 of the 64-byte PBKDF2-HMAC-SHA512 output
 *
 * Empty lines and lines whose first byte is '#' are ignored; a trailing
 * "\r" is dropped. Anything else is an error naming the line: a file that
 * does not parse is refused as a whole (fail closed, BAD_INPUTS row 12),
 * never loaded in part.
 *
 * Checking costs one PBKDF2 run (about 0.1 s at the default 100,000
 * iterations): run it off the loop thread. A pwdb is immutable after
 * loading, so checks may run on several threads at once.
 */
#ifndef IMQTT_PASSWORD_H
#define IMQTT_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt_types.h"

#define PW_DEFAULT_ITERATIONS 100000u
#define PW_MIN_ITERATIONS     1000u
#define PW_MAX_ITERATIONS     10000000u
#define PW_SALT_LEN           16 /* what pw_hash_new generates */
#define PW_HASH_LEN           64
/* Room for the longest hash text, NUL included. */
#define PW_HASH_TEXT_MAX 256

typedef struct pwdb pwdb;

/* Where and why a file failed to parse. line is 1-based; 0 when the error
 * is about the whole file (unreadable, empty). what is a static string. */
struct pw_error {
    unsigned line;
    const char *what;
};

/* Parse file text (len bytes, need not be NUL-terminated). A text without
 * entries gives an empty database. Returns 0, IMQTT_ECONFIG (*err set) or
 * IMQTT_ENOMEM. The caller frees *out with pwdb_free. */
int pwdb_parse(const char *text, size_t len, pwdb **out, struct pw_error *err);

/* Read and parse `path`. A file without any entry is refused too
 * (IMQTT_ECONFIG, line 0): an empty password file is a mistake, not a
 * policy. IMQTT_EIO (errno kept) when it cannot be read. */
int pwdb_load(const char *path, pwdb **out, struct pw_error *err);

void pwdb_free(pwdb *db);
size_t pwdb_count(const pwdb *db);

/* Whether `password` is right for `user`. Returns 0 or IMQTT_EAUTH (unknown
 * user or wrong password: both run one PBKDF2 and a constant-time compare,
 * the unknown user against a dummy entry), or IMQTT_ENOMEM. */
int pwdb_check(const pwdb *db, mqtt_str user, mqtt_bytes password);

/* What a verified credential is bound to (credcache.h): views into db's
 * entry for user, valid while db lives. */
typedef struct pw_entry_view {
    const uint8_t *salt;
    uint32_t salt_len;
    uint32_t iterations;
    const uint8_t *hash; /* PW_HASH_LEN bytes */
} pw_entry_view;

/* Fill *out for user's entry: 0, or IMQTT_EAUTH when user has none. */
int pwdb_entry(const pwdb *db, mqtt_str user, pw_entry_view *out);

/* Hash `password` with a fresh random salt into `out` as
 * "$pbkdf2-sha512$ITER$SALT$HASH" (NUL-terminated; out_size of
 * PW_HASH_TEXT_MAX always suffices). iterations 0 means the default.
 * Returns 0, IMQTT_EINVAL (iterations out of range), IMQTT_ENOSPACE or
 * IMQTT_EIO (the random generator failed). */
int pw_hash_new(mqtt_bytes password, uint32_t iterations, char *out,
                size_t out_size);

/* Add or replace the entry of `user` in the file at `path` (created if
 * missing), keeping every other line as it was. The existing file must
 * parse (IMQTT_ECONFIG, *err naming the line, and nothing is written).
 * Writes a temporary file in the same directory with mode 0600, syncs it
 * and renames it over `path`. Returns 0, IMQTT_EINVAL (bad user name or
 * hash text), IMQTT_ECONFIG, IMQTT_EIO or IMQTT_ENOMEM. */
int pwfile_set(const char *path, mqtt_str user, const char *hash_text,
               struct pw_error *err);

#endif
