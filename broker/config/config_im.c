/* The "auth" and "im" sections of the config and the IM keys of a
 * listener (docs/auth.md, docs/im.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "errors.h"
#include "identity.h"
#include "jwt_verify.h"
#include "keyfile.h"
#include "password.h"

/* The IM keys of a listener: k[0] "im", k[1] "auth", k[2] "clientid".
 * An IM listener defaults to JWT and required user@device ids. */
int cfg_parse_listener_im(struct cfg_ctx *x, const struct cfg_key *k,
                          const char *path, listener_config *l)
{
    static const char *const auths[] = {"anonymous", "jwt", "password_file"};
    static const char *const ids[] = {"off", "optional", "required"};
    char sub[PATH_MAX_LEN];
    int rc;
    if (k[0].val != NULL) {
        cfg_join(sub, path, "im");
        if ((rc = cfg_get_bool(x, k[0].val, sub, &l->im)) != 0)
            return rc;
    }
    size_t w = l->im ? LISTENER_AUTH_JWT : LISTENER_AUTH_ANONYMOUS;
    if (k[1].val != NULL) {
        cfg_join(sub, path, "auth");
        rc = cfg_get_word(x, k[1].val, sub, auths, 3,
                          "\"anonymous\", \"jwt\" or \"password_file\"", &w);
        if (rc != 0)
            return rc;
    }
    l->auth = (enum listener_auth)w;
    w = l->im ? IM_CLIENTID_REQUIRED : IM_CLIENTID_OFF;
    if (k[2].val != NULL) {
        cfg_join(sub, path, "clientid");
        rc = cfg_get_word(x, k[2].val, sub, ids, 3,
                          "\"off\", \"optional\" or \"required\"", &w);
        if (rc != 0)
            return rc;
    }
    l->clientid = (enum im_clientid)w;
    return 0;
}

int cfg_parse_listener_receipts(struct cfg_ctx *x, const cJSON *v,
                                const char *path, listener_config *l)
{
    char sub[PATH_MAX_LEN];
    cfg_join(sub, path, "im_receipts");
    struct cfg_key k[] = {{"delivery", NULL}, {"read", NULL}};
    int rc = cfg_take_keys(x, v, sub, k, 2);
    if (rc != 0)
        return rc;
    if (k[0].val != NULL) {
        if (cJSON_IsBool(k[0].val))
            l->im_delivery =
                cJSON_IsTrue(k[0].val) ? IM_DELIVERY_USER : IM_DELIVERY_OFF;
        else if (cJSON_IsString(k[0].val) &&
                 strcmp(k[0].val->valuestring, "device") == 0)
            l->im_delivery = IM_DELIVERY_DEVICE;
        else
            return cfg_fail(x,
                            "%s.delivery: expected true, false or "
                            "\"device\"",
                            sub);
    }
    if (k[1].val != NULL) {
        bool read = true;
        char rp[PATH_MAX_LEN];
        cfg_join(rp, sub, "read");
        if ((rc = cfg_get_bool(x, k[1].val, rp, &read)) != 0)
            return rc;
        l->im_read_receipts_off = !read;
    }
    return 0;
}

/* im.presence: true / "everyone", "group", false / "nobody". */
static int parse_presence(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    static const char *const words[] = {"everyone", "group", "nobody"};
    if (cJSON_IsBool(v)) {
        c->im_presence = cJSON_IsTrue(v);
        c->im_presence_read = IM_PRESENCE_EVERYONE;
        return 0;
    }
    size_t w = 0;
    int rc = cfg_get_word(x, v, "im.presence", words, 3,
                          "true, false, \"everyone\", \"group\" or "
                          "\"nobody\"",
                          &w);
    if (rc != 0)
        return rc;
    c->im_presence = w != 2;
    c->im_presence_read = w == 1 ? IM_PRESENCE_GROUP : IM_PRESENCE_EVERYONE;
    return 0;
}

/* "auth": {"jwt": {...}, "password_file": "path"}. Keys and password
 * files are read here, so a broken one stops the start-up (or the reload)
 * instead of letting everyone in (BAD_INPUTS row 12). */
static int parse_jwt(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"alg", NULL},         {"secret", NULL},
                          {"secret_file", NULL}, {"public_key_file", NULL},
                          {"leeway", NULL},      {"iss", NULL},
                          {"aud", NULL},         {"max_token_size", NULL}};
    int rc = cfg_take_keys(x, v, "auth.jwt", k, 8);
    if (rc != 0)
        return rc;
    jwtv_config jc = {.alg = JWTV_HS256, .leeway = 30};
    if (k[0].val != NULL && (!cJSON_IsString(k[0].val) ||
                             jwtv_alg_parse(k[0].val->valuestring, &jc.alg)))
        return cfg_fail(x, "auth.jwt.alg: expected \"HS256\", \"HS384\", "
                           "\"HS512\", \"RS256\" or \"ES256\"");
    int sources = (k[1].val != NULL) + (k[2].val != NULL) + (k[3].val != NULL);
    if (sources != 1)
        return cfg_fail(x, "auth.jwt: give exactly one of \"secret\", "
                           "\"secret_file\" or \"public_key_file\"");
    bool hmac = jwtv_alg_is_hmac(jc.alg);
    if (hmac == (k[3].val != NULL))
        return cfg_fail(x, "auth.jwt: %s takes %s", jwtv_alg_name(jc.alg),
                        hmac ? "a secret or secret_file"
                             : "a public_key_file (PEM)");
    for (int i = 1; i <= 3; i++)
        if (k[i].val != NULL && !cJSON_IsString(k[i].val))
            return cfg_fail(x, "auth.jwt.%s: expected a string", k[i].name);
    if (k[4].val != NULL && (rc = cfg_get_uint(x, k[4].val, "auth.jwt.leeway",
                                               0, 86400, &jc.leeway)) != 0)
        return rc;
    for (int i = 5; i <= 6; i++)
        if (k[i].val != NULL && !cJSON_IsString(k[i].val))
            return cfg_fail(x, "auth.jwt.%s: expected a string", k[i].name);
    jc.iss = k[5].val ? k[5].val->valuestring : NULL;
    jc.aud = k[6].val ? k[6].val->valuestring : NULL;
    if (k[7].val != NULL) {
        uint32_t max = 0;
        if ((rc = cfg_get_uint(x, k[7].val, "auth.jwt.max_token_size", 64,
                               65536, &max)) != 0)
            return rc;
        jc.max_len = max;
    }

    uint8_t *key = NULL;
    size_t key_len = 0;
    const char *file = k[2].val   ? k[2].val->valuestring
                       : k[3].val ? k[3].val->valuestring
                                  : NULL;
    if (file) {
        rc = keyfile_read(file, k[2].val != NULL, &key, &key_len);
        if (rc == IMQTT_ENOMEM)
            return cfg_fail_nomem(x);
        if (rc < 0)
            return cfg_fail(x, "auth.jwt.%s: cannot read \"%s\": %s",
                            k[2].val ? "secret_file" : "public_key_file", file,
                            rc == IMQTT_EIO ? strerror(errno)
                                            : "empty or too large");
        jc.key = key;
        jc.key_len = key_len;
    } else {
        jc.key = (const uint8_t *)k[1].val->valuestring;
        jc.key_len = strlen(k[1].val->valuestring);
    }
    const char *why = NULL;
    jwtv_verifier_free(c->jwt);
    c->jwt = NULL;
    rc = jwtv_verifier_new(&jc, &c->jwt, &why);
    keyfile_free(key, key_len);
    if (rc == IMQTT_ENOMEM)
        return cfg_fail_nomem(x);
    if (rc < 0)
        return cfg_fail(x, "auth.jwt: %s", why ? why : "invalid key");
    return 0;
}

int cfg_parse_auth(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"jwt", NULL},
                          {"password_file", NULL},
                          {"cache_size", NULL},
                          {"cache_ttl", NULL},
                          {"failure_burst", NULL},
                          {"failure_rate", NULL},
                          {"failure_limit_jwt", NULL}};
    int rc = cfg_take_keys(x, v, "auth", k, 7);
    if (rc != 0)
        return rc;
    if ((k[2].val != NULL &&
         (rc = cfg_get_uint(x, k[2].val, "auth.cache_size", 0, 1u << 24,
                            &c->auth_cache_size))) ||
        (k[3].val != NULL &&
         (rc = cfg_get_uint(x, k[3].val, "auth.cache_ttl", 1, 86400,
                            &c->auth_cache_ttl))) ||
        (k[4].val != NULL &&
         (rc = cfg_get_uint(x, k[4].val, "auth.failure_burst", 0, 1000000,
                            &c->auth_fail_burst))) ||
        (k[5].val != NULL &&
         (rc = cfg_get_uint(x, k[5].val, "auth.failure_rate", 1, 1000000,
                            &c->auth_fail_rate))) ||
        (k[6].val != NULL &&
         (rc = cfg_get_bool(x, k[6].val, "auth.failure_limit_jwt",
                            &c->auth_fail_jwt))))
        return rc;
    if (k[0].val != NULL && (rc = parse_jwt(x, k[0].val, c)) != 0)
        return rc;
    if (k[1].val != NULL) {
        if (!cJSON_IsString(k[1].val))
            return cfg_fail(x, "auth.password_file: expected a path");
        struct pw_error pe = {0, NULL};
        pwdb_free(c->passwords);
        c->passwords = NULL;
        rc = pwdb_load(k[1].val->valuestring, &c->passwords, &pe);
        if (rc == IMQTT_ENOMEM)
            return cfg_fail_nomem(x);
        if (rc < 0)
            return cfg_fail(x, "auth.password_file: \"%s\" line %u: %s",
                            k[1].val->valuestring, pe.line,
                            pe.what ? pe.what : "cannot be read");
    }
    return 0;
}

static int get_u64(struct cfg_ctx *x, const cJSON *v, const char *path,
                   uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) ||
        !(v->valuedouble <= 9007199254740992.0) ||
        (double)(uint64_t)v->valuedouble != v->valuedouble)
        return cfg_fail(x, "%s: expected an integer >= 0", path);
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static int parse_history(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"enabled", NULL},
                          {"max_age", NULL},
                          {"max_bytes", NULL},
                          {"max_messages", NULL},
                          {"page_max", NULL}};
    int rc = cfg_take_keys(x, v, "im.history", k, 5);
    if (rc != 0)
        return rc;
    uint64_t age_s = c->im_history_max_age_ms / 1000;
    if ((k[0].val && (rc = cfg_get_bool(x, k[0].val, "im.history.enabled",
                                        &c->im_history))) ||
        (k[1].val &&
         (rc = get_u64(x, k[1].val, "im.history.max_age", &age_s))) ||
        (k[2].val && (rc = get_u64(x, k[2].val, "im.history.max_bytes",
                                   &c->im_history_max_bytes))) ||
        (k[3].val && (rc = get_u64(x, k[3].val, "im.history.max_messages",
                                   &c->im_history_max_messages))) ||
        (k[4].val && (rc = cfg_get_uint(x, k[4].val, "im.history.page_max", 1,
                                        10000, &c->im_history_page_max))))
        return rc;
    c->im_history_max_age_ms = age_s * 1000;
    return 0;
}

int cfg_parse_im(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"inbox_qos", NULL},
                          {"presence", NULL},
                          {"admins", NULL},
                          {"history", NULL},
                          {"max_retained_messages", NULL},
                          {"max_retained_bytes", NULL},
                          {"push", NULL},
                          {"max_devices_per_user", NULL}};
    int rc = cfg_take_keys(x, v, "im", k, 8);
    if (rc != 0)
        return rc;
    if (k[6].val != NULL && (rc = cfg_parse_push(x, k[6].val, c)) != 0)
        return rc;
    if (k[3].val != NULL && (rc = parse_history(x, k[3].val, c)) != 0)
        return rc;
    if (k[0].val != NULL) {
        uint32_t q = 0;
        if ((rc = cfg_get_uint(x, k[0].val, "im.inbox_qos", 0, 2, &q)) != 0)
            return rc;
        c->im_inbox_qos = (uint8_t)q;
    }
    if (k[1].val != NULL && (rc = parse_presence(x, k[1].val, c)) != 0)
        return rc;
    if (k[7].val != NULL &&
        (rc = cfg_get_uint(x, k[7].val, "im.max_devices_per_user", 0, 1000000,
                           &c->im_max_devices)) != 0)
        return rc;
    if (k[4].val != NULL &&
        (rc = cfg_get_uint(x, k[4].val, "im.max_retained_messages", 0,
                           UINT32_MAX, &c->im_max_retained_messages)) != 0)
        return rc;
    if (k[5].val != NULL &&
        (rc = cfg_get_size(x, k[5].val, "im.max_retained_bytes", 0,
                           &c->im_max_retained_bytes)) != 0)
        return rc;
    if (k[2].val != NULL) {
        if (!cJSON_IsArray(k[2].val))
            return cfg_fail(x, "im.admins: expected an array of user names");
        int n = cJSON_GetArraySize(k[2].val);
        char **a = calloc((size_t)n + 1, sizeof(char *));
        if (a == NULL)
            return cfg_fail_nomem(x);
        c->im_admins = a;
        for (const cJSON *it = k[2].val->child; it != NULL; it = it->next) {
            if (!cJSON_IsString(it) ||
                !im_id_part_valid(
                    mqtt_str_from(it->valuestring, strlen(it->valuestring))))
                return cfg_fail(x,
                                "im.admins[%u]: expected a user name "
                                "([A-Za-z0-9._-]{1,64})",
                                (unsigned)c->im_admin_count);
            if ((a[c->im_admin_count++] = strdup(it->valuestring)) == NULL)
                return cfg_fail_nomem(x);
        }
    }
    return 0;
}

/* A listener that authenticates needs what it authenticates with. */
int cfg_check_listener_auth(struct cfg_ctx *x, imqtt_config *c)
{
    for (uint32_t i = 0; i < c->listener_count; i++) {
        const listener_config *l = &c->listeners[i];
        if (l->auth == LISTENER_AUTH_JWT && c->jwt == NULL)
            return cfg_fail(x, "listeners[%u].auth: \"jwt\" needs auth.jwt",
                            (unsigned)i);
        if (l->auth == LISTENER_AUTH_PASSWORD_FILE && c->passwords == NULL)
            return cfg_fail(x,
                            "listeners[%u].auth: \"password_file\" needs "
                            "auth.password_file",
                            (unsigned)i);
    }
    return 0;
}
