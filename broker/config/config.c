/* JSON configuration. Objects are walked child by child with exact key
 * comparison (cJSON's own lookup ignores case and returns the first of
 * duplicate keys, either of which would let a typo or a second "acl" pass
 * unnoticed). A config is built in a local struct and handed out only when
 * complete, so a failed load never leaves half a config behind. */
#include "config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_cluster.h"
#include "config_parse.h"
#include "config_push.h"
#include "errors.h"
#include "jwt_verify.h"
#include "password.h"

#define CONFIG_FILE_MAX (1024 * 1024)
int cfg_fail(struct cfg_ctx *x, const char *fmt, ...)
{
    if (x->err != NULL && x->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err, x->errlen, fmt, ap);
        va_end(ap);
    }
    return IMQTT_ECONFIG;
}

int cfg_fail_nomem(struct cfg_ctx *x)
{
    cfg_fail(x, "out of memory");
    return IMQTT_ENOMEM;
}

/* "parent.key", or "key" at the top level; cut to PATH_MAX_LEN - 1 bytes
 * (paths only name keys in error messages, so a cut path is harmless). */
void cfg_join(char *out, const char *parent, const char *key)
{
    size_t n = 0;
    for (const char *p = parent; *p && n + 1 < PATH_MAX_LEN; p++)
        out[n++] = *p;
    if (n > 0 && n + 1 < PATH_MAX_LEN)
        out[n++] = '.';
    for (const char *p = key; *p && n + 1 < PATH_MAX_LEN; p++)
        out[n++] = *p;
    out[n] = '\0';
}

int cfg_take_keys(struct cfg_ctx *x, const cJSON *obj, const char *path,
                  struct cfg_key *keys, size_t n)
{
    if (!cJSON_IsObject(obj))
        return cfg_fail(x, "%s: expected an object",
                        path[0] ? path : "top level");
    for (const cJSON *it = obj->child; it != NULL; it = it->next) {
        size_t i = 0;
        while (i < n && strcmp(keys[i].name, it->string) != 0)
            i++;
        char sub[PATH_MAX_LEN];
        cfg_join(sub, path, it->string);
        if (i == n)
            return cfg_fail(x, "unknown key \"%s\"", sub);
        if (keys[i].val != NULL)
            return cfg_fail(x, "duplicate key \"%s\"", sub);
        keys[i].val = it;
    }
    return 0;
}

int cfg_get_uint(struct cfg_ctx *x, const cJSON *v, const char *path,
                 uint32_t min, uint32_t max, uint32_t *out)
{
    /* Every double in [min, max] converts exactly, so the round trip is an
     * integrality test; the range test first keeps the cast defined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min) ||
        !(v->valuedouble <= max) ||
        (double)(uint32_t)v->valuedouble != v->valuedouble)
        return cfg_fail(x, "%s: expected an integer %u..%u", path,
                        (unsigned)min, (unsigned)max);
    *out = (uint32_t)v->valuedouble;
    return 0;
}

int cfg_get_u16(struct cfg_ctx *x, const cJSON *v, const char *path,
                uint16_t min, uint16_t max, uint16_t *out)
{
    uint32_t n = 0;
    int rc = cfg_get_uint(x, v, path, min, max, &n);
    if (rc == 0)
        *out = (uint16_t)n;
    return rc;
}

int cfg_get_bool(struct cfg_ctx *x, const cJSON *v, const char *path, bool *out)
{
    if (!cJSON_IsBool(v))
        return cfg_fail(x, "%s: expected true or false", path);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* One of a fixed set of words; returns its index in `words`. */
int cfg_get_word(struct cfg_ctx *x, const cJSON *v, const char *path,
                 const char *const *words, size_t n, const char *expected,
                 size_t *out)
{
    if (cJSON_IsString(v)) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v->valuestring, words[i]) == 0) {
                *out = i;
                return 0;
            }
        }
    }
    return cfg_fail(x, "%s: expected %s", path, expected);
}

static int parse_listener(struct cfg_ctx *x, const cJSON *v, const char *path,
                          listener_config *l)
{
    struct cfg_key k[] = {{"bind", NULL},
                          {"port", NULL},
                          {"max_connections", NULL},
                          {"im", NULL},
                          {"auth", NULL},
                          {"clientid", NULL},
                          {"transport", NULL},
                          {"tls", NULL},
                          {"ws_path", NULL},
                          {"im_envelope", NULL},
                          {"proxy_protocol", NULL},
                          {"proxy_from", NULL},
                          {"im_receipts", NULL}};
    int rc = cfg_take_keys(x, v, path, k, 13);
    if (rc != 0)
        return rc;
    if ((rc = cfg_parse_listener_im(x, k + 3, path, l)) != 0)
        return rc;
    if (k[9].val != NULL) {
        char ep[PATH_MAX_LEN];
        cfg_join(ep, path, "im_envelope");
        if ((rc = cfg_get_bool(x, k[9].val, ep, &l->im_envelope)) != 0)
            return rc;
    }
    if (k[12].val != NULL &&
        (rc = cfg_parse_listener_receipts(x, k[12].val, path, l)) != 0)
        return rc;
    if ((rc = cfg_parse_listener_transport(x, k + 6, path, l)) != 0)
        return rc;
    if ((rc = cfg_parse_listener_proxy(x, k + 10, path, l)) != 0)
        return rc;
    char sub[PATH_MAX_LEN];
    const char *bind = "0.0.0.0";
    if (k[0].val != NULL) {
        cfg_join(sub, path, "bind");
        unsigned char addr[16];
        /* Addresses only: a host name would need a DNS lookup and could
         * resolve differently from one start to the next. */
        if (!cJSON_IsString(k[0].val) ||
            (inet_pton(AF_INET, k[0].val->valuestring, addr) != 1 &&
             inet_pton(AF_INET6, k[0].val->valuestring, addr) != 1))
            return cfg_fail(x, "%s: expected an IPv4 or IPv6 address", sub);
        bind = k[0].val->valuestring;
    }
    l->port = 1883;
    if (k[1].val != NULL) {
        cfg_join(sub, path, "port");
        if ((rc = cfg_get_u16(x, k[1].val, sub, 1, 65535, &l->port)) != 0)
            return rc;
    }
    if (k[2].val != NULL) {
        cfg_join(sub, path, "max_connections");
        rc = cfg_get_uint(x, k[2].val, sub, 0, UINT32_MAX, &l->max_connections);
        if (rc != 0)
            return rc;
    }
    l->bind = strdup(bind);
    return l->bind != NULL ? 0 : cfg_fail_nomem(x);
}

static void free_listeners(listener_config *l, uint32_t n)
{
    for (uint32_t i = 0; l != NULL && i < n; i++) {
        free(l[i].bind);
        free(l[i].proxy_from);
        cfg_free_listener_transport(&l[i]);
    }
    free(l);
}

static int parse_listeners(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    if (!cJSON_IsArray(v))
        return cfg_fail(x, "listeners: expected an array of objects");
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return cfg_fail(x, "listeners: must not be empty");
    listener_config *l = calloc((size_t)n, sizeof(*l));
    if (l == NULL)
        return cfg_fail_nomem(x);
    uint32_t i = 0;
    int rc = 0;
    for (const cJSON *it = v->child; it != NULL; it = it->next, i++) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "listeners[%u]", (unsigned)i);
        if ((rc = parse_listener(x, it, path, &l[i])) != 0)
            break;
        for (uint32_t j = 0; j < i; j++) {
            if (l[j].port == l[i].port && strcmp(l[j].bind, l[i].bind) == 0) {
                rc = cfg_fail(x, "%s: same bind and port as listeners[%u]",
                              path, (unsigned)j);
                break;
            }
        }
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        free_listeners(l, (uint32_t)n);
        return rc;
    }
    free_listeners(c->listeners, c->listener_count);
    c->listeners = l;
    c->listener_count = (uint32_t)n;
    return 0;
}

static int parse_rule(struct cfg_ctx *x, const cJSON *v, const char *path,
                      acl *a)
{
    static const char *const perms[] = {"allow", "deny"};
    static const char *const actions[] = {"publish", "subscribe", "all"};
    static const unsigned masks[] = {ACL_PUBLISH, ACL_SUBSCRIBE,
                                     ACL_PUBLISH | ACL_SUBSCRIBE};
    struct cfg_key k[] = {
        {"permission", NULL}, {"action", NULL}, {"topic", NULL}};
    int rc = cfg_take_keys(x, v, path, k, 3);
    if (rc != 0)
        return rc;
    /* A rule with a part left out would have to guess it, and a guess
     * ("all", "allow") could grant more than was meant. */
    for (size_t i = 0; i < 3; i++)
        if (k[i].val == NULL)
            return cfg_fail(x, "%s: missing \"%s\"", path, k[i].name);

    char sub[PATH_MAX_LEN];
    size_t perm = 0, action = 0;
    cfg_join(sub, path, "permission");
    rc = cfg_get_word(x, k[0].val, sub, perms, 2, "\"allow\" or \"deny\"",
                      &perm);
    if (rc != 0)
        return rc;
    cfg_join(sub, path, "action");
    rc = cfg_get_word(x, k[1].val, sub, actions, 3,
                      "\"publish\", \"subscribe\" or \"all\"", &action);
    if (rc != 0)
        return rc;
    cfg_join(sub, path, "topic");
    if (!cJSON_IsString(k[2].val))
        return cfg_fail(x, "%s: expected a topic filter string", sub);
    const char *topic = k[2].val->valuestring;
    rc = acl_add_rule(a, perm == 0, masks[action],
                      mqtt_str_from(topic, strlen(topic)));
    if (rc == IMQTT_ENOMEM)
        return cfg_fail_nomem(x);
    if (rc != 0)
        return cfg_fail(x, "%s: invalid topic filter \"%.100s\"", sub, topic);
    return 0;
}

static int parse_acl(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {
        {"default", NULL}, {"rules", NULL}, {"deny_suback", NULL}};
    int rc = cfg_take_keys(x, v, "acl", k, 3);
    if (rc != 0)
        return rc;
    if (k[2].val != NULL) {
        /* MQTT 5 names the refusal 0x87; some v5 clients (the Eclipse
         * Paho test client among them) accept only 0x80 in a SUBACK. */
        static const char *const words[] = {"not_authorized", "unspecified"};
        static const uint8_t codes[] = {0x87, 0x80};
        size_t w = 0;
        rc = cfg_get_word(x, k[2].val, "acl.deny_suback", words, 2,
                          "\"not_authorized\" or \"unspecified\"", &w);
        if (rc != 0)
            return rc;
        c->deny_suback_reason = codes[w];
    }
    /* An "acl" section without a default is a policy written in a hurry:
     * deny, never allow-all (BAD_INPUTS row 12). */
    size_t def = 1;
    if (k[0].val != NULL) {
        static const char *const words[] = {"allow", "deny"};
        rc = cfg_get_word(x, k[0].val, "acl.default", words, 2,
                          "\"allow\" or \"deny\"", &def);
        if (rc != 0)
            return rc;
    }
    acl *a = acl_new(def == 0);
    if (a == NULL)
        return cfg_fail_nomem(x);
    if (k[1].val != NULL) {
        if (!cJSON_IsArray(k[1].val)) {
            acl_free(a);
            return cfg_fail(x, "acl.rules: expected an array of objects");
        }
        unsigned i = 0;
        for (const cJSON *it = k[1].val->child; it != NULL;
             it = it->next, i++) {
            char path[PATH_MAX_LEN];
            snprintf(path, sizeof(path), "acl.rules[%u]", i);
            if ((rc = parse_rule(x, it, path, a)) != 0) {
                acl_free(a);
                return rc;
            }
        }
    }
    acl_free(c->acl);
    c->acl = a;
    return 0;
}

static int parse_log(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"level", NULL}, {"format", NULL}};
    int rc = cfg_take_keys(x, v, "log", k, 2);
    if (rc != 0)
        return rc;
    if (k[1].val != NULL) {
        static const char *const words[] = {"text", "json"};
        size_t w = 0;
        rc = cfg_get_word(x, k[1].val, "log.format", words, 2,
                          "\"text\" or \"json\"", &w);
        if (rc != 0)
            return rc;
        c->log_json = w == 1;
    }
    if (k[0].val == NULL)
        return 0;
    if (!cJSON_IsString(k[0].val) ||
        log_level_parse(k[0].val->valuestring, &c->log_level) != 0)
        return cfg_fail(x, "log.level: expected \"error\", \"warn\", \"info\" "
                           "or \"debug\"");
    return 0;
}

/* A byte size: an integer up to 2^53 (JSON numbers are doubles). */
int cfg_get_size(struct cfg_ctx *x, const cJSON *v, const char *path,
                 uint64_t min, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)min) ||
        !(v->valuedouble <= 9007199254740992.0) ||
        (double)(uint64_t)v->valuedouble != v->valuedouble)
        return cfg_fail(x, "%s: expected an integer number of bytes >= %llu",
                        path, (unsigned long long)min);
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static int parse_store(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    struct cfg_key k[] = {{"durability", NULL},
                          {"dir", NULL},
                          {"map_size", NULL},
                          {"max_size", NULL},
                          {"sync_interval_ms", NULL}};
    int rc = cfg_take_keys(x, v, "store", k, 5);
    if (rc != 0)
        return rc;
    if (k[0].val != NULL) {
        static const char *const words[] = {"none", "process", "full"};
        size_t i = 0;
        rc = cfg_get_word(x, k[0].val, "store.durability", words, 3,
                          "\"none\", \"process\" or \"full\"", &i);
        if (rc != 0)
            return rc;
        c->store_durability = (enum store_durability)i;
    }
    if (k[1].val != NULL) {
        if (!cJSON_IsString(k[1].val) || k[1].val->valuestring[0] == '\0')
            return cfg_fail(x, "store.dir: expected a non-empty string");
        char *d = strdup(k[1].val->valuestring);
        if (d == NULL)
            return cfg_fail_nomem(x);
        free(c->store_dir);
        c->store_dir = d;
    }
    if (k[2].val != NULL && (rc = cfg_get_size(x, k[2].val, "store.map_size",
                                               65536, &c->store_map_size)) != 0)
        return rc;
    if (k[3].val != NULL && (rc = cfg_get_size(x, k[3].val, "store.max_size",
                                               65536, &c->store_max_size)) != 0)
        return rc;
    if (k[4].val != NULL &&
        (rc = cfg_get_uint(x, k[4].val, "store.sync_interval_ms", 1, 3600000,
                           &c->store_sync_interval_ms)) != 0)
        return rc;
    if (c->store_map_size > c->store_max_size)
        c->store_map_size = c->store_max_size;
    return 0;
}

/* Top-level keys, in the order of docs/config.md. */
enum {
    K_LISTENERS,
    K_THREADS,
    K_MAX_CONNECTIONS,
    K_MAX_INFLIGHT,
    K_MAX_QUEUED,
    K_MAX_QUEUED_BYTES,
    K_MAX_INFLIGHT_BYTES,
    K_MAX_SUBS,
    K_MAX_PACKET,
    K_MAX_KEEPALIVE,
    K_RETAIN,
    K_MAX_RETAINED,
    K_MAX_RETAINED_BYTES,
    K_ALIAS_MAX,
    K_SESSION_EXPIRY,
    K_TOPIC_LEVELS,
    K_TOPIC_LENGTH,
    K_ACL,
    K_LOG,
    K_STORE,
    K_AUTH,
    K_IM,
    K_SYS_INTERVAL,
    K_HTTP,
    K_LIMITS,
    K_MAX_STORED,
    K_MAX_STORED_BYTES,
    K_CLUSTER,
    K_COUNT_
};

static int parse_root(struct cfg_ctx *x, const cJSON *root, imqtt_config *c)
{
    struct cfg_key k[K_COUNT_] = {
        [K_LISTENERS] = {"listeners", NULL},
        [K_THREADS] = {"threads", NULL},
        [K_MAX_CONNECTIONS] = {"max_connections", NULL},
        [K_MAX_INFLIGHT] = {"max_inflight_messages", NULL},
        [K_MAX_QUEUED] = {"max_queued_messages", NULL},
        [K_MAX_QUEUED_BYTES] = {"max_queued_bytes", NULL},
        [K_MAX_INFLIGHT_BYTES] = {"max_inflight_bytes", NULL},
        [K_MAX_SUBS] = {"max_subscriptions", NULL},
        [K_MAX_PACKET] = {"max_packet_size", NULL},
        [K_MAX_KEEPALIVE] = {"max_keepalive", NULL},
        [K_RETAIN] = {"retain_available", NULL},
        [K_MAX_RETAINED] = {"max_retained_messages", NULL},
        [K_MAX_RETAINED_BYTES] = {"max_retained_bytes", NULL},
        [K_ALIAS_MAX] = {"topic_alias_maximum", NULL},
        [K_SESSION_EXPIRY] = {"max_session_expiry", NULL},
        [K_TOPIC_LEVELS] = {"max_topic_levels", NULL},
        [K_TOPIC_LENGTH] = {"max_topic_length", NULL},
        [K_ACL] = {"acl", NULL},
        [K_LOG] = {"log", NULL},
        [K_STORE] = {"store", NULL},
        [K_AUTH] = {"auth", NULL},
        [K_IM] = {"im", NULL},
        [K_SYS_INTERVAL] = {"sys_interval", NULL},
        [K_HTTP] = {"http", NULL},
        [K_LIMITS] = {"limits", NULL},
        [K_MAX_STORED] = {"max_stored_messages", NULL},
        [K_MAX_STORED_BYTES] = {"max_stored_bytes", NULL},
        [K_CLUSTER] = {"cluster", NULL},
    };
    int rc = cfg_take_keys(x, root, "", k, K_COUNT_);
    if (rc != 0)
        return rc;
#define OPT(key, call)                            \
    if (k[key].val != NULL && (rc = (call)) != 0) \
    return rc
#define V(key) k[key].val, k[key].name
    OPT(K_LISTENERS, parse_listeners(x, k[K_LISTENERS].val, c));
    OPT(K_THREADS,
        cfg_get_uint(x, V(K_THREADS), 0, CONFIG_THREADS_MAX, &c->threads));
    OPT(K_MAX_CONNECTIONS, cfg_get_uint(x, V(K_MAX_CONNECTIONS), 0, UINT32_MAX,
                                        &c->max_connections));
    OPT(K_MAX_INFLIGHT,
        cfg_get_u16(x, V(K_MAX_INFLIGHT), 1, 65535, &c->max_inflight_messages));
    OPT(K_MAX_QUEUED, cfg_get_uint(x, V(K_MAX_QUEUED), 0, UINT32_MAX,
                                   &c->max_queued_messages));
    OPT(K_MAX_QUEUED_BYTES,
        cfg_get_size(x, V(K_MAX_QUEUED_BYTES), 0, &c->max_queued_bytes));
    OPT(K_MAX_INFLIGHT_BYTES,
        cfg_get_size(x, V(K_MAX_INFLIGHT_BYTES), 0, &c->max_inflight_bytes));
    /* A config that bounds queues and says nothing of the stored ones
     * (written before they had their own keys) keeps bounding them all. */
    if (k[K_MAX_QUEUED].val && !k[K_MAX_STORED].val)
        c->max_stored_messages = c->max_queued_messages;
    if (k[K_MAX_QUEUED_BYTES].val && !k[K_MAX_STORED_BYTES].val)
        c->max_stored_bytes = c->max_queued_bytes;
    OPT(K_MAX_STORED,
        cfg_get_size(x, V(K_MAX_STORED), 0, &c->max_stored_messages));
    OPT(K_MAX_STORED_BYTES,
        cfg_get_size(x, V(K_MAX_STORED_BYTES), 0, &c->max_stored_bytes));
    OPT(K_MAX_SUBS,
        cfg_get_uint(x, V(K_MAX_SUBS), 0, UINT32_MAX, &c->max_subscriptions));
    OPT(K_MAX_PACKET,
        cfg_get_uint(x, V(K_MAX_PACKET), 16, MQTT_MAX_REMAINING + 5,
                     &c->max_packet_size));
    OPT(K_MAX_KEEPALIVE,
        cfg_get_u16(x, V(K_MAX_KEEPALIVE), 0, 65535, &c->max_keepalive));
    OPT(K_RETAIN, cfg_get_bool(x, V(K_RETAIN), &c->retain_available));
    OPT(K_MAX_RETAINED, cfg_get_uint(x, V(K_MAX_RETAINED), 0, UINT32_MAX,
                                     &c->max_retained_messages));
    OPT(K_MAX_RETAINED_BYTES,
        cfg_get_size(x, V(K_MAX_RETAINED_BYTES), 0, &c->max_retained_bytes));
    OPT(K_ALIAS_MAX,
        cfg_get_u16(x, V(K_ALIAS_MAX), 0, 65535, &c->topic_alias_maximum));
    OPT(K_SESSION_EXPIRY, cfg_get_uint(x, V(K_SESSION_EXPIRY), 0, UINT32_MAX,
                                       &c->max_session_expiry));
    OPT(K_TOPIC_LEVELS,
        cfg_get_uint(x, V(K_TOPIC_LEVELS), 1, 65535, &c->max_topic_levels));
    OPT(K_TOPIC_LENGTH,
        cfg_get_uint(x, V(K_TOPIC_LENGTH), 1, 65535, &c->max_topic_length));
    OPT(K_ACL, parse_acl(x, k[K_ACL].val, c));
    OPT(K_LOG, parse_log(x, k[K_LOG].val, c));
    OPT(K_STORE, parse_store(x, k[K_STORE].val, c));
    OPT(K_AUTH, cfg_parse_auth(x, k[K_AUTH].val, c));
    OPT(K_IM, cfg_parse_im(x, k[K_IM].val, c));
    OPT(K_SYS_INTERVAL,
        cfg_get_uint(x, V(K_SYS_INTERVAL), 0, 86400, &c->sys_interval));
    OPT(K_HTTP, cfg_parse_http(x, k[K_HTTP].val, c));
    OPT(K_LIMITS, cfg_parse_limits(x, k[K_LIMITS].val, c));
    OPT(K_CLUSTER, cfg_parse_cluster(x, k[K_CLUSTER].val, c));
#undef V
#undef OPT
    return cfg_check_listener_auth(x, c);
}

int config_defaults(imqtt_config *c)
{
    *c = (imqtt_config){
        .listener_count = 1,
        .max_connections = 0,
        .max_inflight_messages = 1024,
        .max_queued_messages = 1000,
        .max_stored_messages = 10000000,
        .max_stored_bytes = 1ull << 30,
        .max_queued_bytes = 64ull << 20,
        .max_inflight_bytes = 16ull << 20,
        .max_subscriptions = 10000,
        .max_packet_size = 1048576,
        .max_keepalive = 0,
        .retain_available = true,
        .max_retained_messages = 1000000,
        .max_retained_bytes = 256ull << 20,
        .im_max_retained_messages = 100,
        .im_max_retained_bytes = 1u << 20,
        .topic_alias_maximum = 10,
        .max_session_expiry = UINT32_MAX,
        .max_topic_levels = 128,
        .max_topic_length = 65535,
        .deny_suback_reason = 0x87,
        .im_inbox_qos = 1,
        .im_presence = true,
        .im_history = true,
        .im_history_max_age_ms = 30ull * 86400 * 1000,
        .im_history_max_bytes = 64ull << 20,
        .im_history_max_messages = 1000000,
        .im_history_page_max = 500,
        .log_level = LOG_INFO,
        .store_durability = STORE_PROCESS,
        .store_map_size = 64ull << 20,
        .store_max_size = 16ull << 30,
        .store_sync_interval_ms = 1000,
        .sys_interval = 10,
        .api_max_body = 65536,
        .auth_cache_size = 10000,
        .auth_cache_ttl = 900,
        .auth_fail_burst = 10,
        .auth_fail_rate = 10,
        .output_buffer = 1u << 20,
        .stall_timeout = 60,
        .max_pending_acks = 4096,
    };
    c->store_dir = strdup("./data");
    c->listeners = calloc(1, sizeof(*c->listeners));
    c->acl = acl_new(true);
    if (c->listeners != NULL)
        c->listeners[0] =
            (listener_config){.bind = strdup("0.0.0.0"), .port = 1883};
    if (c->listeners == NULL || c->listeners[0].bind == NULL ||
        c->acl == NULL || c->store_dir == NULL) {
        config_free(c);
        return IMQTT_ENOMEM;
    }
    return 0;
}

/* cJSON turns "\u0000" into a NUL that silently cuts the C string short; a
 * rule topic cut short is a different rule. Refuse it up front. */
static size_t find_escaped_nul(const char *s, size_t len)
{
    size_t run = 0; /* backslashes just before i */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            run++;
            continue;
        }
        if (run % 2 == 1 && s[i] == 'u' && len - i >= 5 &&
            memcmp(s + i + 1, "0000", 4) == 0)
            return i - 1;
        run = 0;
    }
    return len;
}

/* "line 3, column 7" of byte offset off: what an editor shows. Columns
 * count characters (UTF-8 continuation bytes are not one), from 1. */
struct pos {
    unsigned line, col;
};

static struct pos pos_of(const char *s, size_t off)
{
    struct pos p = {1, 1};
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n')
            p = (struct pos){p.line + 1, 1};
        else if (((unsigned char)s[i] & 0xC0) != 0x80)
            p.col++;
    }
    return p;
}

static int parse_text(struct cfg_ctx *x, const char *json, size_t len,
                      imqtt_config *c)
{
    const char *nul = memchr(json, '\0', len);
    if (nul != NULL) {
        struct pos p = pos_of(json, (size_t)(nul - json));
        return cfg_fail(x, "invalid JSON: NUL byte at line %u, column %u",
                        p.line, p.col);
    }
    size_t esc = find_escaped_nul(json, len);
    if (esc != len) {
        struct pos p = pos_of(json, esc);
        return cfg_fail(x,
                        "invalid JSON: \\u0000 at line %u, column %u is not "
                        "allowed",
                        p.line, p.col);
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        /* The same position cJSON_GetErrorPtr reports, without the
         * global. */
        size_t off = end != NULL && end >= json ? (size_t)(end - json) : 0;
        if (off > len)
            off = len;
        struct pos p = pos_of(json, off);
        return cfg_fail(x, "invalid JSON at line %u, column %u", p.line, p.col);
    }
    size_t off = (size_t)(end - json);
    while (off < len && strchr(" \t\r\n", json[off]) != NULL)
        off++;
    int rc;
    struct pos p = pos_of(json, off);
    if (off < len)
        rc = cfg_fail(x, "invalid JSON: unexpected data at line %u, column %u",
                      p.line, p.col);
    else
        rc = parse_root(x, root, c);
    cJSON_Delete(root);
    return rc;
}

int config_parse(const char *json, size_t len, imqtt_config *c, char *err,
                 size_t errlen)
{
    struct cfg_ctx x = {err, errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    imqtt_config tmp;
    int rc = config_defaults(&tmp);
    if (rc != 0) {
        *c = (imqtt_config){0};
        return cfg_fail_nomem(&x);
    }
    rc = parse_text(&x, json, len, &tmp);
    if (rc != 0) {
        config_free(&tmp);
        *c = (imqtt_config){0};
        return rc;
    }
    *c = tmp;
    return 0;
}

int config_load(const char *path, imqtt_config *c, char *err, size_t errlen)
{
    struct cfg_ctx x = {err, errlen};
    *c = (imqtt_config){0};
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cfg_fail(&x, "%s: %s", path, strerror(errno));
        return IMQTT_EIO;
    }
    /* One byte more than the limit tells "exactly 1 MiB" from "larger". */
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return cfg_fail_nomem(&x);
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    bool read_failed = ferror(f) != 0;
    int read_errno = errno;
    fclose(f);
    int rc;
    if (read_failed) {
        cfg_fail(&x, "%s: %s", path, strerror(read_errno));
        rc = IMQTT_EIO;
    } else if (n > CONFIG_FILE_MAX) {
        rc = cfg_fail(&x, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
    } else {
        char msg[256];
        rc = config_parse(buf, n, c, msg, sizeof(msg));
        if (rc != 0)
            cfg_fail(&x, "%s: %s", path, msg);
    }
    free(buf);
    return rc;
}

void config_free(imqtt_config *c)
{
    if (c == NULL)
        return;
    free_listeners(c->listeners, c->listener_count);
    acl_free(c->acl);
    jwtv_verifier_free(c->jwt);
    pwdb_free(c->passwords);
    for (uint32_t i = 0; i < c->im_admin_count; i++)
        free(c->im_admins[i]);
    free(c->im_admins);
    c->jwt = NULL;
    c->passwords = NULL;
    c->im_admins = NULL;
    c->im_admin_count = 0;
    free(c->store_dir);
    c->store_dir = NULL;
    free(c->http_bind);
    c->http_bind = NULL;
    for (uint32_t i = 0; i < c->api_token_count; i++)
        free(c->api_tokens[i]);
    free(c->api_tokens);
    c->api_tokens = NULL;
    c->api_token_count = 0;
    cluster_config_free(c->cluster);
    c->cluster = NULL;
    push_config_free(c->push);
    c->push = NULL;
    c->listeners = NULL;
    c->listener_count = 0;
    c->acl = NULL;
}
