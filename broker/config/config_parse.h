/* Internal to the config loader: the helpers config.c and config_im.c
 * share. Every helper reports through cfg_fail(), which writes a message that
 * names the key into the caller's buffer and returns IMQTT_ECONFIG. */
#ifndef IMQTT_CONFIG_PARSE_H
#define IMQTT_CONFIG_PARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PATH_MAX_LEN 96

struct cfg_ctx {
    char *err;
    size_t errlen;
};

/* The keys an object may have; val is filled by take_keys. */
struct cfg_key {
    const char *name;
    const cJSON *val;
};

__attribute__((format(printf, 2, 3))) int cfg_fail(struct cfg_ctx *x,
                                                   const char *fmt, ...);
int cfg_fail_nomem(struct cfg_ctx *x);
/* "parent.key", or "key" at the top level, cut to PATH_MAX_LEN - 1. */
void cfg_join(char *out, const char *parent, const char *key);
/* Fill keys[i].val from obj (an object at `path`); any other key, a
 * duplicate or a null value is an error. */
int cfg_take_keys(struct cfg_ctx *x, const cJSON *obj, const char *path,
                  struct cfg_key *keys, size_t n);
int cfg_get_uint(struct cfg_ctx *x, const cJSON *v, const char *path,
                 uint32_t min, uint32_t max, uint32_t *out);
int cfg_get_u16(struct cfg_ctx *x, const cJSON *v, const char *path,
                uint16_t min, uint16_t max, uint16_t *out);
int cfg_get_bool(struct cfg_ctx *x, const cJSON *v, const char *path,
                 bool *out);
/* A byte size: an integer from min up to 2^53. */
int cfg_get_size(struct cfg_ctx *x, const cJSON *v, const char *path,
                 uint64_t min, uint64_t *out);
/* One of a fixed set of words; *out gets its index in `words`. */
int cfg_get_word(struct cfg_ctx *x, const cJSON *v, const char *path,
                 const char *const *words, size_t n, const char *expected,
                 size_t *out);

/* config_im.c: the IM keys of a listener (k[0] "im", k[1] "auth",
 * k[2] "clientid"), the "auth" and "im" objects, and the check that every
 * listener's auth mode is configured. */
int cfg_parse_listener_im(struct cfg_ctx *x, const struct cfg_key *k,
                          const char *path, listener_config *l);
/* listeners[].im_receipts: {"delivery": true | false | "device",
 * "read": true | false}. */
int cfg_parse_listener_receipts(struct cfg_ctx *x, const cJSON *v,
                                const char *path, listener_config *l);
int cfg_parse_auth(struct cfg_ctx *x, const cJSON *v, imqtt_config *c);
int cfg_parse_im(struct cfg_ctx *x, const cJSON *v, imqtt_config *c);
int cfg_check_listener_auth(struct cfg_ctx *x, imqtt_config *c);

/* config_push.c: the "im.push" object into c->push. */
int cfg_parse_push(struct cfg_ctx *x, const cJSON *v, imqtt_config *c);

/* config_ops.c: the transport keys of a listener (k[0] "transport",
 * k[1] "tls", k[2] "ws_path"), their release, and the operations keys
 * ("sys_interval", "http"). */
int cfg_parse_listener_transport(struct cfg_ctx *x, const struct cfg_key *k,
                                 const char *path, listener_config *l);
void cfg_free_listener_transport(listener_config *l);
int cfg_parse_http(struct cfg_ctx *x, const cJSON *v, imqtt_config *c);

/* config_proxy.c: the PROXY protocol keys of a listener
 * (k[0] "proxy_protocol", k[1] "proxy_from"); l->proxy_from is released
 * with the listener (config.c). */
int cfg_parse_listener_proxy(struct cfg_ctx *x, const struct cfg_key *k,
                             const char *path, listener_config *l);

/* config_cluster.c: the "cluster" object into c->cluster. */
int cfg_parse_cluster(struct cfg_ctx *x, const cJSON *v, imqtt_config *c);
int cfg_parse_limits(struct cfg_ctx *x, const cJSON *v, imqtt_config *c);

#endif
