/* The operations part of the config: a listener's transport ("tcp", "tls",
 * "ws", "wss") with its "tls" object and "ws_path", and the metrics
 * listener ("http"). Certificates and keys are loaded here once, so a
 * missing or broken file stops the start-up, or fails the reload and keeps
 * the old config (BAD_INPUTS row 19). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "errors.h"
#include "tls.h"

static int dup_string(struct cfg_ctx *x, const cJSON *v, const char *path,
                      char **out)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return cfg_fail(x, "%s: expected a non-empty string", path);
    *out = strdup(v->valuestring);
    return *out ? 0 : cfg_fail_nomem(x);
}

static int parse_tls(struct cfg_ctx *x, const cJSON *v, const char *path,
                     listener_tls_config *t)
{
    struct cfg_key k[] = {{"cert_file", NULL},
                          {"key_file", NULL},
                          {"ca_file", NULL},
                          {"verify_client", NULL},
                          {"identity_from_cert", NULL},
                          {"min_version", NULL},
                          {"ciphers", NULL}};
    int rc = cfg_take_keys(x, v, path, k, 7);
    if (rc != 0)
        return rc;
    char sub[PATH_MAX_LEN];
    char **strs[] = {&t->cert_file, &t->key_file, &t->ca_file};
    for (int i = 0; i < 3; i++) {
        if (k[i].val == NULL)
            continue;
        cfg_join(sub, path, k[i].name);
        if ((rc = dup_string(x, k[i].val, sub, strs[i])) != 0)
            return rc;
    }
    cfg_join(sub, path, "verify_client");
    if (k[3].val && (rc = cfg_get_bool(x, k[3].val, sub, &t->verify_client)))
        return rc;
    cfg_join(sub, path, "identity_from_cert");
    if (k[4].val &&
        (rc = cfg_get_bool(x, k[4].val, sub, &t->identity_from_cert)))
        return rc;
    if (k[5].val != NULL) {
        /* mbedTLS 2.28 speaks TLS 1.2 only; 1.0 and 1.1 are refused. */
        static const char *const words[] = {"1.2"};
        size_t w = 0;
        cfg_join(sub, path, "min_version");
        if ((rc = cfg_get_word(x, k[5].val, sub, words, 1, "\"1.2\"", &w)))
            return rc;
    }
    if (k[6].val != NULL) {
        cfg_join(sub, path, "ciphers");
        if ((rc = dup_string(x, k[6].val, sub, &t->ciphers)) != 0)
            return rc;
    }
    if (!t->cert_file || !t->key_file)
        return cfg_fail(x, "%s: \"cert_file\" and \"key_file\" are required",
                        path);
    if ((t->verify_client || t->identity_from_cert) && !t->ca_file)
        return cfg_fail(x,
                        "%s: verify_client and identity_from_cert need "
                        "\"ca_file\"",
                        path);
    if (t->identity_from_cert && !t->verify_client)
        return cfg_fail(x, "%s: identity_from_cert needs verify_client", path);
    tls_options o = {t->cert_file, t->key_file, t->ca_file, t->verify_client,
                     t->ciphers};
    char why[200];
    rc = tls_options_check(&o, why, sizeof(why));
    if (rc == IMQTT_ENOMEM)
        return cfg_fail_nomem(x);
    if (rc < 0)
        return cfg_fail(x, "%s: %s", path, why);
    return 0;
}

int cfg_parse_listener_transport(struct cfg_ctx *x, const struct cfg_key *k,
                                 const char *path, listener_config *l)
{
    static const char *const words[] = {"tcp", "tls", "ws", "wss"};
    char sub[PATH_MAX_LEN];
    int rc;
    size_t w = TRANSPORT_TCP;
    if (k[0].val != NULL) {
        cfg_join(sub, path, "transport");
        rc = cfg_get_word(x, k[0].val, sub, words, 4,
                          "\"tcp\", \"tls\", \"ws\" or \"wss\"", &w);
        if (rc != 0)
            return rc;
    }
    l->transport = (enum listener_transport)w;
    bool tls = w == TRANSPORT_TLS || w == TRANSPORT_WSS;
    bool ws = w == TRANSPORT_WS || w == TRANSPORT_WSS;
    if (k[1].val != NULL && !tls)
        return cfg_fail(x, "%s: \"tls\" needs transport \"tls\" or \"wss\"",
                        path);
    if (tls && k[1].val == NULL)
        return cfg_fail(x, "%s: transport \"%s\" needs a \"tls\" object", path,
                        words[w]);
    if (k[2].val != NULL && !ws)
        return cfg_fail(x, "%s: \"ws_path\" needs transport \"ws\" or \"wss\"",
                        path);
    if (tls) {
        cfg_join(sub, path, "tls");
        if ((rc = parse_tls(x, k[1].val, sub, &l->tls)) != 0)
            return rc;
    }
    if (k[2].val != NULL) {
        cfg_join(sub, path, "ws_path");
        const char *p = cJSON_IsString(k[2].val) ? k[2].val->valuestring : "";
        bool ok = p[0] == '/' && strlen(p) < 256;
        for (const char *q = p; ok && *q; q++)
            ok = *q > 0x20 && *q < 0x7f && *q != '?' && *q != '#';
        if (!ok)
            return cfg_fail(x,
                            "%s: expected a path starting with '/' (at most "
                            "255 visible characters, no '?' or '#')",
                            sub);
        if ((l->ws_path = strdup(p)) == NULL)
            return cfg_fail_nomem(x);
    }
    return 0;
}

void cfg_free_listener_transport(listener_config *l)
{
    free(l->tls.cert_file);
    free(l->tls.key_file);
    free(l->tls.ca_file);
    free(l->tls.ciphers);
    free(l->ws_path);
    memset(&l->tls, 0, sizeof(l->tls));
    l->ws_path = NULL;
}

/* API tokens are secrets: short ones could be guessed. */
#define API_TOKEN_MIN 16
#define API_TOKEN_MAX 4096

/* "http.api": {"tokens": ["..."], "max_body": 65536} — the backend API
 * (docs/api.md). */
static int parse_api(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"tokens", NULL}, {"max_body", NULL}};
    int rc = cfg_take_keys(x, v, "http.api", k, 2);
    if (rc != 0)
        return rc;
    c->api = true;
    if (k[1].val != NULL &&
        (rc = cfg_get_uint(x, k[1].val, "http.api.max_body", 1024, 16u << 20,
                           &c->api_max_body)) != 0)
        return rc;
    if (k[0].val == NULL)
        return 0;
    if (!cJSON_IsArray(k[0].val))
        return cfg_fail(x, "http.api.tokens: expected an array of strings");
    int n = cJSON_GetArraySize(k[0].val);
    c->api_tokens = calloc((size_t)n + 1, sizeof(char *));
    if (!c->api_tokens)
        return cfg_fail_nomem(x);
    for (const cJSON *it = k[0].val->child; it; it = it->next) {
        size_t len = cJSON_IsString(it) ? strlen(it->valuestring) : 0;
        bool ok = len >= API_TOKEN_MIN && len <= API_TOKEN_MAX;
        for (size_t i = 0; ok && i < len; i++)
            ok = it->valuestring[i] > 0x20 && it->valuestring[i] < 0x7f;
        if (!ok)
            return cfg_fail(x,
                            "http.api.tokens[%u]: expected %d to %d visible "
                            "ASCII characters",
                            (unsigned)c->api_token_count, API_TOKEN_MIN,
                            API_TOKEN_MAX);
        if (!(c->api_tokens[c->api_token_count] = strdup(it->valuestring)))
            return cfg_fail_nomem(x);
        c->api_token_count++;
    }
    return 0;
}

/* "http": {"bind": "127.0.0.1", "port": 9883, "api": {...}} — metrics,
 * health and the backend API. */
int cfg_parse_http(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"bind", NULL}, {"port", NULL}, {"api", NULL}};
    int rc = cfg_take_keys(x, v, "http", k, 3);
    if (rc != 0)
        return rc;
    if (k[2].val != NULL && (rc = parse_api(x, k[2].val, c)) != 0)
        return rc;
    if (k[1].val == NULL)
        return cfg_fail(x, "http: \"port\" is required (the listener is off "
                           "without the object)");
    if ((rc = cfg_get_u16(x, k[1].val, "http.port", 1, 65535, &c->http_port)))
        return rc;
    const char *bind = "127.0.0.1";
    if (k[0].val != NULL) {
        unsigned char addr[16];
        if (!cJSON_IsString(k[0].val) ||
            (inet_pton(AF_INET, k[0].val->valuestring, addr) != 1 &&
             inet_pton(AF_INET6, k[0].val->valuestring, addr) != 1))
            return cfg_fail(x, "http.bind: expected an IPv4 or IPv6 address");
        bind = k[0].val->valuestring;
    }
    free(c->http_bind);
    c->http_bind = strdup(bind);
    return c->http_bind ? 0 : cfg_fail_nomem(x);
}

/* "limits": {"connection_rate": 10, "message_rate": 100, ...} */
int cfg_parse_limits(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"connection_rate", NULL}, {"connection_burst", NULL},
                          {"message_rate", NULL},    {"message_burst", NULL},
                          {"bytes_rate", NULL},      {"bytes_burst", NULL},
                          {"output_buffer", NULL},   {"stall_timeout", NULL},
                          {"max_pending_acks", NULL}};
    uint32_t *out[] = {
        &c->conn_rate,     &c->conn_burst,    &c->msg_rate,
        &c->msg_burst,     &c->bytes_rate,    &c->bytes_burst,
        &c->output_buffer, &c->stall_timeout, &c->max_pending_acks};
    /* The per-connection bounds cannot be turned off: below 64 KiB one
     * read's acks would pause a client at once, and an ack bound below 64
     * would throttle an ordinary QoS 1 window. */
    static const uint32_t lo[] = {0, 0, 0, 0, 0, 0, 65536, 1, 64};
    static const uint32_t hi[] = {UINT32_MAX, UINT32_MAX, UINT32_MAX,
                                  UINT32_MAX, UINT32_MAX, UINT32_MAX,
                                  1u << 30,   86400,      1u << 24};
    int rc = cfg_take_keys(x, v, "limits", k, 9);
    for (int i = 0; rc == 0 && i < 9; i++) {
        char sub[PATH_MAX_LEN];
        cfg_join(sub, "limits", k[i].name);
        if (k[i].val != NULL)
            rc = cfg_get_uint(x, k[i].val, sub, lo[i], hi[i], out[i]);
    }
    return rc;
}
