/* `imqtt token`: mint a JWT with libjwt. The claims are built with cJSON
 * and handed to libjwt whole, so lists (groups, acl) keep their types. */
#include "cmd_token.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <jwt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "identity.h"
#include "jwt_verify.h"
#include "keyfile.h"

#define TTL_DEFAULT 3600L
#define TTL_MAX     (10L * 365 * 24 * 3600)

struct token_opts {
    const char *sub, *groups, *alg, *key_file, *secret, *iss, *aud;
    const char *acl_pub, *acl_sub;
    long ttl;
};

static void usage(FILE *f)
{
    fputs("usage: imqtt token --sub USER [--ttl SECONDS (3600)] "
          "[--groups a,b]\n"
          "                   [--alg HS256|HS384|HS512|RS256|ES256 (HS256)]\n"
          "                   [--key-file FILE | --secret STRING] [--iss X] "
          "[--aud Y]\n"
          "                   [--acl-pub f1,f2] [--acl-sub f1,f2]\n"
          "HS*: the secret comes from --secret or --key-file (one trailing\n"
          "newline dropped). RS256/ES256: --key-file is a PEM private key.\n",
          f);
}

/* "a,b" -> ["a","b"] appended to `array`. Empty items are refused. */
static bool add_list(cJSON *array, const char *csv, bool group_names)
{
    const char *p = csv;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0)
            return false;
        if (group_names && !im_id_part_valid(mqtt_str_from(p, n)))
            return false;
        char *item = strndup(p, n);
        if (item == NULL)
            return false;
        cJSON *s = cJSON_CreateString(item);
        free(item);
        if (s == NULL || !cJSON_AddItemToArray(array, s))
            return false;
        if (comma == NULL)
            return true;
        p = comma + 1;
    }
}

/* The claims as JSON text (free()), or NULL with a message printed. */
static char *claims_json(const struct token_opts *o)
{
    time_t now = time(NULL);
    cJSON *c = cJSON_CreateObject();
    bool ok = c != NULL && cJSON_AddStringToObject(c, "sub", o->sub) &&
              cJSON_AddNumberToObject(c, "iat", (double)now) &&
              cJSON_AddNumberToObject(c, "exp", (double)(now + o->ttl));
    if (ok && o->iss)
        ok = cJSON_AddStringToObject(c, "iss", o->iss) != NULL;
    if (ok && o->aud)
        ok = cJSON_AddStringToObject(c, "aud", o->aud) != NULL;
    if (ok && o->groups) {
        cJSON *g = cJSON_AddArrayToObject(c, "groups");
        ok = g != NULL && add_list(g, o->groups, true);
        if (!ok)
            fprintf(stderr, "imqtt token: --groups: each name 1..64 of "
                            "[A-Za-z0-9._-], comma-separated\n");
    }
    if (ok && (o->acl_pub || o->acl_sub)) {
        cJSON *acl = cJSON_AddObjectToObject(c, "acl");
        ok = acl != NULL;
        if (ok && o->acl_pub) {
            cJSON *a = cJSON_AddArrayToObject(acl, "pub");
            ok = a != NULL && add_list(a, o->acl_pub, false);
        }
        if (ok && o->acl_sub) {
            cJSON *a = cJSON_AddArrayToObject(acl, "sub");
            ok = a != NULL && add_list(a, o->acl_sub, false);
        }
        if (!ok)
            fprintf(stderr, "imqtt token: --acl-pub/--acl-sub: "
                            "comma-separated topic filters\n");
    }
    char *text = ok ? cJSON_PrintUnformatted(c) : NULL;
    cJSON_Delete(c);
    return text;
}

/* Key bytes for the algorithm: keyfile_read's buffer (*owned) or the
 * --secret string. */
static int load_key(const struct token_opts *o, enum jwtv_alg alg,
                    uint8_t **key, size_t *len, bool *owned)
{
    bool hmac = jwtv_alg_is_hmac(alg);
    *owned = false;
    if (o->secret != NULL && o->key_file != NULL) {
        fputs("imqtt token: --secret and --key-file exclude each other\n",
              stderr);
        return 2;
    }
    if (o->secret != NULL) {
        if (!hmac) {
            fputs("imqtt token: RS256/ES256 need --key-file with a PEM "
                  "private key\n",
                  stderr);
            return 2;
        }
        *key = (uint8_t *)o->secret;
        *len = strlen(o->secret);
    } else if (o->key_file != NULL) {
        int rc = keyfile_read(o->key_file, hmac, key, len);
        if (rc != 0) {
            fprintf(stderr, "imqtt token: %s: %s\n", o->key_file,
                    rc == IMQTT_EIO ? "cannot read" : "empty or too large");
            return 1;
        }
        *owned = true;
    } else {
        fputs("imqtt token: a key is needed: --secret or --key-file\n", stderr);
        return 2;
    }
    /* The broker refuses shorter secrets; a token signed with one could
     * never be accepted. */
    if (hmac && *len < jwtv_hmac_min_key(alg)) {
        fprintf(stderr,
                "imqtt token: %s needs a secret of at least %zu bytes\n",
                jwtv_alg_name(alg), jwtv_hmac_min_key(alg));
        if (*owned)
            keyfile_free(*key, *len);
        return 2;
    }
    return 0;
}

static int mint(const struct token_opts *o, enum jwtv_alg alg)
{
    uint8_t *key = NULL;
    size_t key_len = 0;
    bool owned = false;
    int status = load_key(o, alg, &key, &key_len, &owned);
    if (status != 0)
        return status;
    char *claims = claims_json(o);
    jwt_t *jwt = NULL;
    char *tok = NULL;
    status = 1;
    if (claims != NULL && jwt_new(&jwt) == 0 &&
        jwt_add_grants_json(jwt, claims) == 0) {
        if (jwt_set_alg(jwt, jwt_str_alg(jwtv_alg_name(alg)), key,
                        (int)key_len) != 0)
            fputs("imqtt token: the key does not suit the algorithm\n", stderr);
        else if ((tok = jwt_encode_str(jwt)) == NULL)
            fputs("imqtt token: signing failed (is the key file a private "
                  "key of the right kind?)\n",
                  stderr);
        else if (printf("%s\n", tok) > 0 && fflush(stdout) == 0)
            status = 0;
    } else if (claims != NULL) {
        fputs("imqtt token: cannot build the token\n", stderr);
    }
    free(tok);
    jwt_free(jwt);
    free(claims);
    if (owned)
        keyfile_free(key, key_len);
    return status;
}

int cmd_token_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"sub", required_argument, NULL, 's'},
        {"ttl", required_argument, NULL, 't'},
        {"groups", required_argument, NULL, 'g'},
        {"alg", required_argument, NULL, 'a'},
        {"key-file", required_argument, NULL, 'k'},
        {"secret", required_argument, NULL, 'S'},
        {"iss", required_argument, NULL, 'i'},
        {"aud", required_argument, NULL, 'u'},
        {"acl-pub", required_argument, NULL, 'P'},
        {"acl-sub", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct token_opts o = {.ttl = TTL_DEFAULT, .alg = "HS256"};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            o.sub = optarg;
            break;
        case 'g':
            o.groups = optarg;
            break;
        case 'a':
            o.alg = optarg;
            break;
        case 'k':
            o.key_file = optarg;
            break;
        case 'S':
            o.secret = optarg;
            break;
        case 'i':
            o.iss = optarg;
            break;
        case 'u':
            o.aud = optarg;
            break;
        case 'P':
            o.acl_pub = optarg;
            break;
        case 'B':
            o.acl_sub = optarg;
            break;
        case 't': {
            char *end;
            o.ttl = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || o.ttl <= 0 ||
                o.ttl > TTL_MAX) {
                fputs("imqtt token: --ttl: seconds, 1..315360000\n", stderr);
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
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (o.sub == NULL ||
        !im_id_part_valid(mqtt_str_from(o.sub, strlen(o.sub)))) {
        fputs("imqtt token: --sub USER is required: 1..64 of "
              "[A-Za-z0-9._-]\n",
              stderr);
        return 2;
    }
    enum jwtv_alg alg;
    if (jwtv_alg_parse(o.alg, &alg) != 0) {
        fprintf(stderr,
                "imqtt token: --alg %s: one of HS256 HS384 HS512 "
                "RS256 ES256\n",
                o.alg);
        return 2;
    }
    return mint(&o, alg);
}
