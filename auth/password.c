/* Password entries: parsing, PBKDF2-HMAC-SHA512 checks, new hashes. File
 * reading and rewriting live in pwfile.c. */
#include "password.h"

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "identity.h"

#define HASH_PREFIX "$pbkdf2-sha512$"
#define MOSQ_PREFIX "$7$"
#define SALT_MIN    8
#define SALT_MAX    64
#define ITER_DIGITS 8 /* PW_MAX_ITERATIONS has 8 */

struct pw_entry {
    char user[IM_ID_PART_MAX];
    uint32_t user_len;
    uint32_t iterations;
    uint8_t salt[SALT_MAX];
    uint32_t salt_len;
    uint8_t hash[PW_HASH_LEN];
};

struct pwdb {
    struct pw_entry *entries;
    size_t count;
    size_t cap;
    /* Checked in place of an unknown user, so that both cost the same. */
    struct pw_entry dummy;
};

static int pbkdf2(const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                  size_t salt_len, uint32_t iterations,
                  uint8_t out[PW_HASH_LEN])
{
    static const uint8_t empty[1];
    const mbedtls_md_info_t *info =
        mbedtls_md_info_from_type(MBEDTLS_MD_SHA512);
    if (info == NULL)
        return IMQTT_EIO;
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    int rc = mbedtls_md_setup(&md, info, 1 /* HMAC */);
    if (rc == 0)
        rc = mbedtls_pkcs5_pbkdf2_hmac(&md, pw_len ? pw : empty, pw_len, salt,
                                       salt_len, iterations, PW_HASH_LEN, out);
    mbedtls_md_free(&md);
    if (rc == MBEDTLS_ERR_MD_ALLOC_FAILED)
        return IMQTT_ENOMEM;
    return rc == 0 ? 0 : IMQTT_EIO;
}

/* Whether a and b are equal, in time that depends on n only. */
static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static bool b64_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
            return false;
    }
    return len > 0;
}

/* Decode exactly one standard base64 field; -1 if it is not one. */
static long b64_field(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (!b64_chars(s, len) ||
        mbedtls_base64_decode(out, cap, &n, (const unsigned char *)s, len) != 0)
        return -1;
    return (long)n;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Parse "$pbkdf2-sha512$ITER$SALT$HASH", or Mosquitto's "$7$ITER$SALT$HASH"
 * (the same PBKDF2-HMAC-SHA512 with a 64-byte output, as mosquitto_passwd
 * 2.x writes it) (len bytes) into e. */
static const char *parse_hash(const char *s, size_t len, struct pw_entry *e)
{
    size_t plen;
    uint32_t min_iter;
    if (has_prefix(s, len, HASH_PREFIX)) {
        plen = strlen(HASH_PREFIX);
        min_iter = PW_MIN_ITERATIONS;
    } else if (has_prefix(s, len, MOSQ_PREFIX)) {
        /* Read as Mosquitto wrote it: mosquitto_passwd's default is 101
         * iterations, which imqtt would not choose (docs/auth.md). */
        plen = strlen(MOSQ_PREFIX);
        min_iter = 1;
    } else if (has_prefix(s, len, "$6$")) {
        return "Mosquitto $6$ hash (salted SHA-512, no iterations) is not "
               "accepted: set the password again with imqtt passwd or "
               "mosquitto_passwd 2.x ($7$)";
    } else {
        return "hash does not start with $pbkdf2-sha512$ or $7$";
    }
    const char *p = s + plen, *end = s + len;
    const char *d1 = memchr(p, '$', (size_t)(end - p));
    if (d1 == NULL)
        return "hash lacks the salt field";
    const char *d2 = memchr(d1 + 1, '$', (size_t)(end - d1 - 1));
    if (d2 == NULL)
        return "hash lacks the hash field";
    if (d1 == p || d1 - p > ITER_DIGITS)
        return "iteration count is not a number";
    uint32_t iter = 0;
    for (const char *q = p; q < d1; q++) {
        if (*q < '0' || *q > '9')
            return "iteration count is not a number";
        iter = iter * 10 + (uint32_t)(*q - '0');
    }
    if (iter < min_iter || iter > PW_MAX_ITERATIONS)
        return min_iter == 1 ? "iteration count out of range (1..10000000)"
                             : "iteration count out of range (1000..10000000)";
    long salt_len = b64_field(d1 + 1, (size_t)(d2 - d1 - 1), e->salt, SALT_MAX);
    if (salt_len < SALT_MIN)
        return "salt is not base64 of 8..64 bytes";
    uint8_t hash[PW_HASH_LEN + 3];
    long hash_len =
        b64_field(d2 + 1, (size_t)(end - d2 - 1), hash, sizeof(hash));
    if (hash_len != PW_HASH_LEN)
        return "hash is not base64 of 64 bytes";
    memcpy(e->hash, hash, PW_HASH_LEN);
    e->iterations = iter;
    e->salt_len = (uint32_t)salt_len;
    return NULL;
}

static const struct pw_entry *find(const pwdb *db, mqtt_str user)
{
    for (size_t i = 0; i < db->count; i++) {
        const struct pw_entry *e = &db->entries[i];
        if (e->user_len == user.len && memcmp(e->user, user.ptr, user.len) == 0)
            return e;
    }
    return NULL;
}

/* Parse one non-comment line into a new entry of db. */
static const char *parse_line(pwdb *db, const char *line, size_t len,
                              bool *nomem)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return "expected user:$pbkdf2-sha512$...";
    mqtt_str user = mqtt_str_from(line, (size_t)(colon - line));
    if (!im_id_part_valid(user))
        return "user name is not 1..64 of [A-Za-z0-9._-]";
    if (find(db, user) != NULL)
        return "user listed twice";
    struct pw_entry e = {0};
    const char *why = parse_hash(colon + 1, len - user.len - 1, &e);
    if (why != NULL)
        return why;
    memcpy(e.user, user.ptr, user.len);
    e.user_len = user.len;
    if (db->count == db->cap) {
        size_t cap = db->cap ? db->cap * 2 : 16;
        struct pw_entry *n = realloc(db->entries, cap * sizeof(*n));
        if (n == NULL) {
            *nomem = true;
            return "out of memory";
        }
        db->entries = n;
        db->cap = cap;
    }
    db->entries[db->count++] = e;
    return NULL;
}

int pwdb_parse(const char *text, size_t len, pwdb **out, struct pw_error *err)
{
    *out = NULL;
    *err = (struct pw_error){0, NULL};
    pwdb *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return IMQTT_ENOMEM;
    unsigned lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        bool nomem = false;
        const char *why = memchr(line, '\0', n) != NULL
                              ? "NUL byte in line"
                              : parse_line(db, line, n, &nomem);
        if (why != NULL) {
            pwdb_free(db);
            *err = (struct pw_error){lineno, why};
            return nomem ? IMQTT_ENOMEM : IMQTT_ECONFIG;
        }
    }
    /* Same cost as a typical real entry: the first one's. */
    db->dummy.iterations =
        db->count ? db->entries[0].iterations : PW_DEFAULT_ITERATIONS;
    db->dummy.salt_len = PW_SALT_LEN;
    *out = db;
    return 0;
}

void pwdb_free(pwdb *db)
{
    if (db == NULL)
        return;
    if (db->entries != NULL) {
        volatile uint8_t *p = (volatile uint8_t *)db->entries;
        for (size_t i = 0; i < db->count * sizeof(*db->entries); i++)
            p[i] = 0;
    }
    free(db->entries);
    free(db);
}

size_t pwdb_count(const pwdb *db)
{
    return db->count;
}

int pwdb_check(const pwdb *db, mqtt_str user, mqtt_bytes password)
{
    const struct pw_entry *e = find(db, user);
    bool known = e != NULL;
    if (!known)
        e = &db->dummy;
    uint8_t got[PW_HASH_LEN];
    int rc = pbkdf2(password.ptr, password.len, e->salt, e->salt_len,
                    e->iterations, got);
    if (rc != 0)
        return rc;
    bool same = ct_equal(got, e->hash, PW_HASH_LEN);
    return known && same ? 0 : IMQTT_EAUTH;
}

int pwdb_entry(const pwdb *db, mqtt_str user, pw_entry_view *out)
{
    const struct pw_entry *e = find(db, user);
    if (e == NULL)
        return IMQTT_EAUTH;
    *out = (pw_entry_view){e->salt, e->salt_len, e->iterations, e->hash};
    return 0;
}

static int random_salt(uint8_t *salt, size_t len)
{
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static const char pers[] = "imqtt password salt";
    int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                   (const unsigned char *)pers, sizeof(pers));
    if (rc == 0)
        rc = mbedtls_ctr_drbg_random(&drbg, salt, len);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return rc == 0 ? 0 : IMQTT_EIO;
}

int pw_hash_new(mqtt_bytes password, uint32_t iterations, char *out,
                size_t out_size)
{
    if (iterations == 0)
        iterations = PW_DEFAULT_ITERATIONS;
    if (iterations < PW_MIN_ITERATIONS || iterations > PW_MAX_ITERATIONS)
        return IMQTT_EINVAL;
    uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
    int rc = random_salt(salt, sizeof(salt));
    if (rc == 0)
        rc = pbkdf2(password.ptr, password.len, salt, sizeof(salt), iterations,
                    hash);
    if (rc != 0)
        return rc;
    unsigned char salt_b64[32], hash_b64[100];
    size_t sn = 0, hn = 0;
    if (mbedtls_base64_encode(salt_b64, sizeof(salt_b64), &sn, salt,
                              sizeof(salt)) != 0 ||
        mbedtls_base64_encode(hash_b64, sizeof(hash_b64), &hn, hash,
                              sizeof(hash)) != 0)
        return IMQTT_ENOSPACE;
    int n = snprintf(out, out_size, HASH_PREFIX "%u$%s$%s", iterations,
                     (const char *)salt_b64, (const char *)hash_b64);
    return n > 0 && (size_t)n < out_size ? 0 : IMQTT_ENOSPACE;
}
