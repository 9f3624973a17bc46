/* password_file: parse errors name their line (fail closed, BAD_INPUTS
 * row 12), checks accept the right password only, unknown users are
 * refused, new entries round-trip through the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "errors.h"
#include "password.h"

#define S(lit) mqtt_str_from((lit), strlen(lit))

/* Low iteration counts keep the suite fast; one test uses the default. */
#define FAST 1000

static char *entry_for(const char *user, const char *pw, uint32_t iter)
{
    char hash[PW_HASH_TEXT_MAX];
    assert_int_equal(pw_hash_new(S(pw), iter, hash, sizeof(hash)), 0);
    char *line = malloc(strlen(user) + strlen(hash) + 3);
    assert_non_null(line);
    sprintf(line, "%s:%s\n", user, hash);
    return line;
}

static pwdb *parse_ok(const char *text)
{
    pwdb *db = NULL;
    struct pw_error err;
    int rc = pwdb_parse(text, strlen(text), &db, &err);
    if (rc != 0)
        fail_msg("line %u: %s", err.line, err.what);
    return db;
}

static void test_verify(void **state)
{
    (void)state;
    char *a = entry_for("alice", "correct horse", FAST);
    char *b = entry_for("bob", "", FAST);
    char text[1024];
    snprintf(text, sizeof(text), "# users\n\n%s%s", a, b);
    pwdb *db = parse_ok(text);
    assert_int_equal(pwdb_count(db), 2);
    assert_int_equal(pwdb_check(db, S("alice"), S("correct horse")), 0);
    assert_int_equal(pwdb_check(db, S("alice"), S("correct horsE")),
                     IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("alice"), S("")), IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("bob"), S("")), 0);
    assert_int_equal(pwdb_check(db, S("bob"), S("x")), IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("carol"), S("correct horse")),
                     IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("alic"), S("correct horse")),
                     IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S(""), S("")), IMQTT_EAUTH);
    pwdb_free(db);
    free(a);
    free(b);
}

static void test_default_iterations(void **state)
{
    (void)state;
    char hash[PW_HASH_TEXT_MAX];
    assert_int_equal(pw_hash_new(S("pw"), 0, hash, sizeof(hash)), 0);
    assert_non_null(strstr(hash, "$pbkdf2-sha512$100000$"));
    char text[512];
    snprintf(text, sizeof(text), "dev-1:%s\r\n", hash); /* CRLF file */
    pwdb *db = parse_ok(text);
    assert_int_equal(pwdb_check(db, S("dev-1"), S("pw")), 0);
    pwdb_free(db);
}

static void test_salts_differ(void **state)
{
    (void)state;
    char h1[PW_HASH_TEXT_MAX], h2[PW_HASH_TEXT_MAX];
    assert_int_equal(pw_hash_new(S("same"), FAST, h1, sizeof(h1)), 0);
    assert_int_equal(pw_hash_new(S("same"), FAST, h2, sizeof(h2)), 0);
    assert_string_not_equal(h1, h2);
    assert_int_equal(pw_hash_new(S("x"), 999, h1, sizeof(h1)), IMQTT_EINVAL);
    assert_int_equal(pw_hash_new(S("x"), FAST, h1, 20), IMQTT_ENOSPACE);
}

/* A known vector, so the format is pinned and not only self-consistent:
 * PBKDF2-HMAC-SHA512("password", "saltsalt", 1000), checked against
 * Python's hashlib.pbkdf2_hmac. */
static void test_known_vector(void **state)
{
    (void)state;
    const char *text =
        "v:$pbkdf2-sha512$1000$c2FsdHNhbHQ=$"
        "Q6v4xwJ8a9nWPp2BeEoAYYhHSo2xRmPWART17vTpSxt2q6iNp7BOozW557qqa95e"
        "NjUO4gKs0CyvJbYGGku1tA==\n";
    pwdb *db = parse_ok(text);
    assert_int_equal(pwdb_check(db, S("v"), S("password")), 0);
    assert_int_equal(pwdb_check(db, S("v"), S("passwore")), IMQTT_EAUTH);
    pwdb_free(db);
}

/* Lines written by Debian 12's mosquitto_passwd (mosquitto
 * 2.0.11-1.2+deb12u2): `mosquitto_passwd -b -c FILE user pass` (its
 * default, 101 iterations) and `-I 2000` for sensor-7 with a password
 * holding ':' and '$'. Read as they are. */
static void test_mosquitto_7(void **state)
{
    (void)state;
    const char *text =
        "user:$7$101$9V/Xl1DUcZ14O5g2$+USAsGcydyV3/5NCOmFar1qAQMRt5l4koFBP6so"
        "cs0lVM4SHDl+JE5N+fX/q8PvQzK7e85KKJIE6+51+GXTAsg==\n"
        "sensor-7:$7$2000$sqdFrUMuwKPe0Yud$5i7J5OeCDkzey0909k54bxkihQsiQk5QV3"
        "s3Qfja9dyAwnnWB1gY/hJNhdk8bH7xsKDSwg+Pb/l1jbMP6C0UuA==\n";
    pwdb *db = parse_ok(text);
    assert_int_equal(pwdb_count(db), 2);
    assert_int_equal(pwdb_check(db, S("user"), S("pass")), 0);
    assert_int_equal(pwdb_check(db, S("user"), S("pasS")), IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("user"), S("")), IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("sensor-7"), S("s3cret:with$chars")), 0);
    assert_int_equal(pwdb_check(db, S("sensor-7"), S("pass")), IMQTT_EAUTH);
    pw_entry_view e;
    assert_int_equal(pwdb_entry(db, S("user"), &e), 0);
    assert_int_equal(e.iterations, 101);
    assert_int_equal(e.salt_len, 12);
    pwdb_free(db);
}

static void expect_error(const char *text, unsigned line)
{
    pwdb *db = (pwdb *)1;
    struct pw_error err;
    assert_int_equal(pwdb_parse(text, strlen(text), &db, &err), IMQTT_ECONFIG);
    assert_null(db);
    assert_int_equal(err.line, line);
    assert_non_null(err.what);
}

static void test_parse_errors(void **state)
{
    (void)state;
    char *good = entry_for("ok", "pw", FAST);
    char text[2048];
    const char *bad_lines[] = {
        "alice",                                           /* no colon */
        "alice:",                                          /* no hash */
        ":$pbkdf2-sha512$1000$c2FsdHNhbHQ=$AAAA",          /* no user */
        "a/b:$pbkdf2-sha512$1000$c2FsdHNhbHQ=$AAAA",       /* bad user */
        "+:$pbkdf2-sha512$1000$c2FsdHNhbHQ=$AAAA",         /* bad user */
        "alice:$pbkdf2-sha256$1000$c2FsdHNhbHQ=$AAAA",     /* other scheme */
        "alice:plaintext",                                 /* plain text */
        "alice:$pbkdf2-sha512$$c2FsdHNhbHQ=$AAAA",         /* no iterations */
        "alice:$pbkdf2-sha512$10x0$c2FsdHNhbHQ=$AAAA",     /* not a number */
        "alice:$pbkdf2-sha512$999$c2FsdHNhbHQ=$AAAA",      /* too few */
        "alice:$pbkdf2-sha512$99999999$c2FsdHNhbHQ=$AAAA", /* too many */
        "alice:$pbkdf2-sha512$1000$c2FsdA==$AAAA",         /* salt < 8 bytes */
        "alice:$pbkdf2-sha512$1000$c2F*dHNhbHQ=$AAAA",     /* salt not b64 */
        "alice:$pbkdf2-sha512$1000$c2FsdHNhbHQ=$AAAA",     /* hash too short */
        "alice:$pbkdf2-sha512$1000$c2FsdHNhbHQ=",          /* hash missing */
        " alice:$pbkdf2-sha512$1000$c2FsdHNhbHQ=$AAAA",    /* space */
        "alice:$7$0$c2FsdHNhbHQ=$AAAA",                    /* $7$, 0 iter. */
        "alice:$7$101$c2FsdHNhbHQ=$AAAA",                  /* $7$, short */
        "alice:$7$101$c2FsdA==$AAAA",                      /* $7$, salt */
        "alice:$7$$c2FsdHNhbHQ=$AAAA",                     /* $7$, no iter. */
        /* mosquitto_passwd -H sha512: no iterations, refused */
        "old:$6$9Z2IdpkwReQ4k3aI$hkM5asGbeWk7S5E73eIrsyHX3j9vxkBCfY4epgQ0mha5"
        "Uv1K5NZaKtZR/+gV37w9t4DuBIkJg44UT5ZS77ixNQ==",
    };
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        /* the bad line third, after a comment and a good entry */
        snprintf(text, sizeof(text), "# c\n%s%s\n", good, bad_lines[i]);
        expect_error(text, 3);
    }
    /* a duplicate user, also when both entries are well-formed */
    snprintf(text, sizeof(text), "%s\n%s", good, good);
    expect_error(text, 3);
    /* a NUL byte inside a line */
    pwdb *db;
    struct pw_error err;
    char nul[] = "alice\0:x\n";
    assert_int_equal(pwdb_parse(nul, sizeof(nul) - 1, &db, &err),
                     IMQTT_ECONFIG);
    assert_int_equal(err.line, 1);
    free(good);
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/imqtt-test-pw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pwdb *db = NULL;
    struct pw_error err;
    /* empty file: refused, not "nobody configured, let everyone in" */
    assert_int_equal(pwdb_load(path, &db, &err), IMQTT_ECONFIG);
    assert_null(db);
    assert_int_equal(err.line, 0);
    FILE *f = fopen(path, "w");
    fputs("# only comments\n\n", f);
    fclose(f);
    assert_int_equal(pwdb_load(path, &db, &err), IMQTT_ECONFIG);
    f = fopen(path, "w");
    fputs("x:broken\n", f);
    fclose(f);
    assert_int_equal(pwdb_load(path, &db, &err), IMQTT_ECONFIG);
    assert_int_equal(err.line, 1);
    unlink(path);
    assert_int_equal(pwdb_load(path, &db, &err), IMQTT_EIO);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_set_roundtrip(void **state)
{
    (void)state;
    char path[] = "/tmp/imqtt-test-pw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path); /* pwfile_set creates it */
    struct pw_error err;
    char hash[PW_HASH_TEXT_MAX];

    assert_int_equal(pw_hash_new(S("one"), FAST, hash, sizeof(hash)), 0);
    assert_int_equal(pwfile_set(path, S("alice"), hash, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* a comment and a second user survive a replacement */
    FILE *f = fopen(path, "a");
    fputs("# keep me\n", f);
    fclose(f);
    assert_int_equal(pw_hash_new(S("two"), FAST, hash, sizeof(hash)), 0);
    assert_int_equal(pwfile_set(path, S("bob"), hash, &err), 0);
    assert_int_equal(pw_hash_new(S("three"), FAST, hash, sizeof(hash)), 0);
    assert_int_equal(pwfile_set(path, S("alice"), hash, &err), 0);
    assert_non_null(strstr(slurp(path), "# keep me\n"));
    assert_int_equal(strncmp(slurp(path), "alice:", 6), 0);

    pwdb *db = NULL;
    assert_int_equal(pwdb_load(path, &db, &err), 0);
    assert_int_equal(pwdb_count(db), 2);
    assert_int_equal(pwdb_check(db, S("alice"), S("three")), 0);
    assert_int_equal(pwdb_check(db, S("alice"), S("one")), IMQTT_EAUTH);
    assert_int_equal(pwdb_check(db, S("bob"), S("two")), 0);
    pwdb_free(db);

    /* bad user or hash: refused, file untouched */
    char before[8192];
    strcpy(before, slurp(path));
    assert_int_equal(pwfile_set(path, S("a/b"), hash, &err), IMQTT_EINVAL);
    assert_int_equal(pwfile_set(path, S("carol"), "plain", &err), IMQTT_EINVAL);
    assert_string_equal(slurp(path), before);

    /* a malformed file is not rewritten (fail closed) */
    f = fopen(path, "a");
    fputs("garbage\n", f);
    fclose(f);
    strcpy(before, slurp(path));
    assert_int_equal(pwfile_set(path, S("carol"), hash, &err), IMQTT_ECONFIG);
    assert_int_equal(err.line, 4);
    assert_string_equal(slurp(path), before);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_default_iterations),
        cmocka_unit_test(test_salts_differ),
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_mosquitto_7),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_set_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
