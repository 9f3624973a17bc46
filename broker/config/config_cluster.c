/* "cluster": {...} (config_cluster.h, docs/config.md). Everything that can
 * be checked without NATS is checked here, so a typo stops the start-up
 * with the key's name; reaching NATS is cluster_nats.c's start-up check. */
#include "config_cluster.h"

#include "config_parse.h"
#include "errors.h"
#include "subject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cluster_config_free(cluster_config *cc)
{
    if (!cc)
        return;
    for (uint32_t i = 0; i < cc->nurls; i++)
        free(cc->urls[i]);
    char *strs[] = {cc->node,        cc->subject_prefix,  cc->credentials_file,
                    cc->tls_ca_file, cc->tls_cert_file,   cc->tls_key_file,
                    cc->stream,      cc->sessions_bucket, cc->retained_bucket};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        free(strs[i]);
    free(cc);
}

/* Names NATS takes as stream / bucket names and we take as a subject
 * token: [A-Za-z0-9_-], 1..max bytes. */
static bool plain_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int get_string(struct cfg_ctx *x, const cJSON *v, const char *path,
                      char **out)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return cfg_fail(x, "%s: expected a non-empty string", path);
    free(*out);
    *out = strdup(v->valuestring);
    return *out ? 0 : cfg_fail_nomem(x);
}

static int get_name(struct cfg_ctx *x, const cJSON *v, const char *path,
                    size_t max, char **out)
{
    if (!cJSON_IsString(v) || !plain_name(v->valuestring, max))
        return cfg_fail(x, "%s: expected 1 to %zu of A-Z a-z 0-9 _ -", path,
                        max);
    return get_string(x, v, path, out);
}

static int get_file(struct cfg_ctx *x, const cJSON *v, const char *path,
                    char **out)
{
    int rc = get_string(x, v, path, out);
    if (rc == 0 && access(*out, R_OK) != 0)
        return cfg_fail(x, "%s: cannot read %s", path, *out);
    return rc;
}

/* "nats://host:port" or "tls://host:port" (also "host:port", which
 * libnats reads as nats://); no spaces or commas, which would split it. */
static bool url_ok(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 255 || strpbrk(u, " ,\t\r\n") != NULL)
        return false;
    const char *hp = strstr(u, "://");
    if (hp) {
        size_t sl = (size_t)(hp - u);
        if (!((sl == 4 && memcmp(u, "nats", 4) == 0) ||
              (sl == 3 && memcmp(u, "tls", 3) == 0)))
            return false;
        hp += 3;
    } else {
        hp = u;
    }
    const char *colon = strrchr(hp, ':');
    return colon && colon > hp && colon[1] != '\0';
}

static int set_defaults(struct cfg_ctx *x, cluster_config *cc)
{
    struct {
        char **field;
        const char *value;
    } d[] = {{&cc->subject_prefix, "imqtt"},
             {&cc->stream, "IMQTT_MSGS"},
             {&cc->sessions_bucket, "imqtt_sessions"},
             {&cc->retained_bucket, "imqtt_retained"}};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        if (*d[i].field == NULL && !(*d[i].field = strdup(d[i].value)))
            return cfg_fail_nomem(x);
    }
    return 0;
}

static int parse_urls(struct cfg_ctx *x, const cJSON *v, cluster_config *cc)
{
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > CLUSTER_MAX_URLS)
        return cfg_fail(x,
                        "cluster.nats_urls: expected an array of 1 to %d URLs",
                        CLUSTER_MAX_URLS);
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        char sub[PATH_MAX_LEN];
        snprintf(sub, sizeof sub, "cluster.nats_urls[%u]", cc->nurls);
        if (!cJSON_IsString(it) || !url_ok(it->valuestring))
            return cfg_fail(x,
                            "%s: expected \"nats://host:port\" or "
                            "\"tls://host:port\"",
                            sub);
        if (!(cc->urls[cc->nurls] = strdup(it->valuestring)))
            return cfg_fail_nomem(x);
        cc->nurls++;
    }
    return 0;
}

static int parse_tls(struct cfg_ctx *x, const cJSON *v, cluster_config *cc)
{
    struct cfg_key k[] = {
        {"ca_file", NULL}, {"cert_file", NULL}, {"key_file", NULL}};
    int rc = cfg_take_keys(x, v, "cluster.tls", k, 3);
    if (rc != 0)
        return rc;
    char **out[] = {&cc->tls_ca_file, &cc->tls_cert_file, &cc->tls_key_file};
    for (int i = 0; i < 3; i++) {
        char sub[PATH_MAX_LEN];
        cfg_join(sub, "cluster.tls", k[i].name);
        if (k[i].val && (rc = get_file(x, k[i].val, sub, out[i])) != 0)
            return rc;
    }
    if (!cc->tls_cert_file != !cc->tls_key_file)
        return cfg_fail(x, "cluster.tls: \"cert_file\" and \"key_file\" go "
                           "together");
    return 0;
}

static int parse_body(struct cfg_ctx *x, const cJSON *v, cluster_config *cc)
{
    enum {
        URLS,
        NODE,
        PREFIX,
        CREDS,
        TLS,
        STREAM,
        SESS,
        RET,
        REPL,
        AGE,
        BYTES,
        TIMEOUT,
        WAIT,
        NKEYS
    };
    struct cfg_key k[NKEYS] = {
        [URLS] = {"nats_urls", NULL},
        [NODE] = {"node", NULL},
        [PREFIX] = {"subject_prefix", NULL},
        [CREDS] = {"credentials_file", NULL},
        [TLS] = {"tls", NULL},
        [STREAM] = {"stream", NULL},
        [SESS] = {"sessions_bucket", NULL},
        [RET] = {"retained_bucket", NULL},
        [REPL] = {"replicas", NULL},
        [AGE] = {"max_age", NULL},
        [BYTES] = {"max_bytes", NULL},
        [TIMEOUT] = {"connect_timeout_ms", NULL},
        [WAIT] = {"startup_wait_ms", NULL},
    };
    int rc = cfg_take_keys(x, v, "cluster", k, NKEYS);
    if (rc != 0)
        return rc;
    if (!k[URLS].val)
        return cfg_fail(x, "cluster.nats_urls: required");
    if (!k[NODE].val)
        return cfg_fail(x, "cluster.node: required (this node's name)");
    if ((rc = parse_urls(x, k[URLS].val, cc)) != 0 ||
        (rc = get_name(x, k[NODE].val, "cluster.node", 64, &cc->node)) != 0)
        return rc;
    if (k[PREFIX].val) {
        if (!cJSON_IsString(k[PREFIX].val) ||
            cluster_prefix_check(k[PREFIX].val->valuestring) != 0)
            return cfg_fail(x,
                            "cluster.subject_prefix: expected tokens of "
                            "A-Z a-z 0-9 _ - joined by dots, at most %d "
                            "bytes",
                            CLUSTER_PREFIX_MAX);
        if ((rc = get_string(x, k[PREFIX].val, "cluster.subject_prefix",
                             &cc->subject_prefix)) != 0)
            return rc;
    }
    if (k[CREDS].val &&
        (rc = get_file(x, k[CREDS].val, "cluster.credentials_file",
                       &cc->credentials_file)) != 0)
        return rc;
    if (k[TLS].val && (rc = parse_tls(x, k[TLS].val, cc)) != 0)
        return rc;
    const char *names[] = {"cluster.stream", "cluster.sessions_bucket",
                           "cluster.retained_bucket"};
    char **nout[] = {&cc->stream, &cc->sessions_bucket, &cc->retained_bucket};
    for (int i = 0; i < 3; i++)
        if (k[STREAM + i].val &&
            (rc = get_name(x, k[STREAM + i].val, names[i], 64, nout[i])) != 0)
            return rc;
    cc->replicas = 3;
    cc->max_age = 604800;
    cc->connect_timeout_ms = 2000;
    cc->startup_wait_ms = 15000;
    /* NATS allows at most 5 replicas */
    if ((k[REPL].val && (rc = cfg_get_uint(x, k[REPL].val, "cluster.replicas",
                                           1, 5, &cc->replicas)) != 0))
        return rc;
    uint32_t age = 0;
    if (k[AGE].val) {
        if ((rc = cfg_get_uint(x, k[AGE].val, "cluster.max_age", 1, UINT32_MAX,
                               &age)) != 0)
            return rc;
        cc->max_age = age;
    }
    if (k[BYTES].val) {
        const cJSON *b = k[BYTES].val;
        if (!cJSON_IsNumber(b) || !(b->valuedouble >= 0) ||
            !(b->valuedouble <= 9007199254740992.0) ||
            (double)(uint64_t)b->valuedouble != b->valuedouble)
            return cfg_fail(x,
                            "cluster.max_bytes: expected an integer number of "
                            "bytes (0: no limit)");
        cc->max_bytes = (uint64_t)b->valuedouble;
    }
    if (k[TIMEOUT].val &&
        (rc = cfg_get_uint(x, k[TIMEOUT].val, "cluster.connect_timeout_ms", 100,
                           60000, &cc->connect_timeout_ms)) != 0)
        return rc;
    if (k[WAIT].val &&
        (rc = cfg_get_uint(x, k[WAIT].val, "cluster.startup_wait_ms", 0, 600000,
                           &cc->startup_wait_ms)) != 0)
        return rc;
    return set_defaults(x, cc);
}

int cfg_parse_cluster(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    cluster_config *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return cfg_fail_nomem(x);
    int rc = parse_body(x, v, cc);
    if (rc != 0) {
        cluster_config_free(cc);
        return rc;
    }
    cluster_config_free(c->cluster);
    c->cluster = cc;
    return 0;
}
