/* Internal to the config loader: the helpers config.c and config_im.c
 * share. Every helper reports through fail(), which writes a message that
 * names the key into the caller's buffer and returns IMQTT_ECONFIG. */
#ifndef IMQTT_CONFIG_PARSE_H
#define IMQTT_CONFIG_PARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PATH_MAX_LEN 96

struct ctx {
    char *err;
    size_t errlen;
};

/* The keys an object may have; val is filled by take_keys. */
struct key {
    const char *name;
    const cJSON *val;
};

__attribute__((format(printf, 2, 3))) int fail(struct ctx *x, const char *fmt,
                                               ...);
int fail_nomem(struct ctx *x);
/* "parent.key", or "key" at the top level, cut to PATH_MAX_LEN - 1. */
void join(char *out, const char *parent, const char *key);
/* Fill keys[i].val from obj (an object at `path`); any other key, a
 * duplicate or a null value is an error. */
int take_keys(struct ctx *x, const cJSON *obj, const char *path,
              struct key *keys, size_t n);
int get_uint(struct ctx *x, const cJSON *v, const char *path, uint32_t min,
             uint32_t max, uint32_t *out);
int get_u16(struct ctx *x, const cJSON *v, const char *path, uint16_t min,
            uint16_t max, uint16_t *out);
int get_bool(struct ctx *x, const cJSON *v, const char *path, bool *out);
/* A byte size: an integer from min up to 2^53. */
int get_size(struct ctx *x, const cJSON *v, const char *path, uint64_t min,
             uint64_t *out);
/* One of a fixed set of words; *out gets its index in `words`. */
int get_word(struct ctx *x, const cJSON *v, const char *path,
             const char *const *words, size_t n, const char *expected,
             size_t *out);

/* config_im.c: the IM keys of a listener (k[0] "im", k[1] "auth",
 * k[2] "clientid"), the "auth" and "im" objects, and the check that every
 * listener's auth mode is configured. */
int parse_listener_im(struct ctx *x, const struct key *k, const char *path,
                      listener_config *l);
int parse_auth(struct ctx *x, const cJSON *v, imqtt_config *c);
int parse_im(struct ctx *x, const cJSON *v, imqtt_config *c);
int check_listener_auth(struct ctx *x, imqtt_config *c);

/* config_ops.c: the transport keys of a listener (k[0] "transport",
 * k[1] "tls", k[2] "ws_path"), their release, and the operations keys
 * ("sys_interval", "http"). */
int parse_listener_transport(struct ctx *x, const struct key *k,
                             const char *path, listener_config *l);
void free_listener_transport(listener_config *l);
int parse_http(struct ctx *x, const cJSON *v, imqtt_config *c);

/* config_proxy.c: the PROXY protocol keys of a listener
 * (k[0] "proxy_protocol", k[1] "proxy_from"); l->proxy_from is released
 * with the listener (config.c). */
int parse_listener_proxy(struct ctx *x, const struct key *k, const char *path,
                         listener_config *l);

/* config_cluster.c: the "cluster" object into c->cluster. */
int parse_cluster(struct ctx *x, const cJSON *v, imqtt_config *c);
int parse_limits(struct ctx *x, const cJSON *v, imqtt_config *c);

#endif
