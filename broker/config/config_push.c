/* "im.push": {...} (config_push.h, docs/im.md "Offline push"). Everything
 * is checked here, so a typo stops the start-up with the key's name; the
 * webhook itself is only reached once events flow (a webhook that is down
 * costs retries and dropped events, never the start-up). */
#include "config_push.h"

#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "errors.h"
#include "identity.h"

void push_config_free(push_config *pc)
{
    if (!pc)
        return;
    for (uint32_t i = 0; i < pc->subscriber_count; i++)
        free(pc->subscribers[i]);
    free(pc->subscribers);
    if (pc->webhook) {
        free(pc->webhook->url);
        free(pc->webhook->bearer);
        free(pc->webhook);
    }
    free(pc);
}

/* http:// or https://, then a host; no bytes that would split a header
 * line or that libcurl would have to guess about. */
static bool url_ok(const char *u)
{
    size_t n = strlen(u);
    if (n > 2048)
        return false;
    size_t scheme = strncmp(u, "http://", 7) == 0    ? 7
                    : strncmp(u, "https://", 8) == 0 ? 8
                                                     : 0;
    if (scheme == 0 || n == scheme || u[scheme] == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
            return false;
    return true;
}

static bool bearer_ok(const char *b)
{
    if (b[0] == '\0' || strlen(b) > 4096)
        return false;
    for (const char *p = b; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int parse_webhook(struct cfg_ctx *x, const cJSON *v, push_config *pc)
{
    struct cfg_key k[] = {{"url", NULL},
                          {"bearer", NULL},
                          {"batch_size", NULL},
                          {"batch_interval_ms", NULL},
                          {"timeout_ms", NULL},
                          {"retries", NULL},
                          {"retry_backoff_ms", NULL},
                          {"queue_limit", NULL},
                          {"concurrency", NULL},
                          {"include_payload", NULL}};
    int rc = cfg_take_keys(x, v, "im.push.webhook", k, 10);
    if (rc != 0)
        return rc;
    push_webhook_config *w = calloc(1, sizeof(*w));
    if (!w)
        return cfg_fail_nomem(x);
    pc->webhook = w;
    *w = (push_webhook_config){.batch_size = 100,
                               .batch_interval_ms = 100,
                               .timeout_ms = 5000,
                               .retries = 3,
                               .retry_backoff_ms = 500,
                               .queue_limit = 10000,
                               .concurrency = 2};
    if (k[0].val == NULL || !cJSON_IsString(k[0].val) ||
        !url_ok(k[0].val->valuestring))
        return cfg_fail(x, "im.push.webhook.url: expected an http:// or "
                           "https:// URL");
    if ((w->url = strdup(k[0].val->valuestring)) == NULL)
        return cfg_fail_nomem(x);
    if (k[1].val != NULL) {
        if (!cJSON_IsString(k[1].val) || !bearer_ok(k[1].val->valuestring))
            return cfg_fail(x, "im.push.webhook.bearer: expected a token "
                               "(printable, up to 4096 bytes)");
        if ((w->bearer = strdup(k[1].val->valuestring)) == NULL)
            return cfg_fail_nomem(x);
    }
    if ((k[2].val &&
         (rc = cfg_get_uint(x, k[2].val, "im.push.webhook.batch_size", 1, 10000,
                            &w->batch_size))) ||
        (k[3].val &&
         (rc = cfg_get_uint(x, k[3].val, "im.push.webhook.batch_interval_ms", 0,
                            60000, &w->batch_interval_ms))) ||
        (k[4].val &&
         (rc = cfg_get_uint(x, k[4].val, "im.push.webhook.timeout_ms", 100,
                            600000, &w->timeout_ms))) ||
        (k[5].val && (rc = cfg_get_uint(x, k[5].val, "im.push.webhook.retries",
                                        0, 100, &w->retries))) ||
        (k[6].val &&
         (rc = cfg_get_uint(x, k[6].val, "im.push.webhook.retry_backoff_ms", 10,
                            30000, &w->retry_backoff_ms))) ||
        (k[7].val &&
         (rc = cfg_get_uint(x, k[7].val, "im.push.webhook.queue_limit", 1,
                            10000000, &w->queue_limit))) ||
        (k[8].val &&
         (rc = cfg_get_uint(x, k[8].val, "im.push.webhook.concurrency", 1, 64,
                            &w->concurrency))) ||
        (k[9].val &&
         (rc = cfg_get_bool(x, k[9].val, "im.push.webhook.include_payload",
                            &w->include_payload))))
        return rc;
    return 0;
}

static int parse_push(struct cfg_ctx *x, const cJSON *v, push_config *pc)
{
    static const char *const modes[] = {"user", "device"};
    struct cfg_key k[] = {{"mode", NULL},
                          {"subscribers", NULL},
                          {"include_payload", NULL},
                          {"webhook", NULL}};
    int rc = cfg_take_keys(x, v, "im.push", k, 4);
    if (rc != 0)
        return rc;
    if (k[0].val != NULL) {
        size_t m = 0;
        if ((rc = cfg_get_word(x, k[0].val, "im.push.mode", modes, 2,
                               "\"user\" or \"device\"", &m)) != 0)
            return rc;
        pc->mode = (enum push_mode)m;
    }
    if (k[2].val != NULL &&
        (rc = cfg_get_bool(x, k[2].val, "im.push.include_payload",
                           &pc->include_payload)) != 0)
        return rc;
    if (k[1].val != NULL) {
        if (!cJSON_IsArray(k[1].val))
            return cfg_fail(x, "im.push.subscribers: expected an array of "
                               "user names");
        int n = cJSON_GetArraySize(k[1].val);
        if ((pc->subscribers = calloc((size_t)n + 1, sizeof(char *))) == NULL)
            return cfg_fail_nomem(x);
        for (const cJSON *it = k[1].val->child; it != NULL; it = it->next) {
            if (!cJSON_IsString(it) ||
                !im_id_part_valid(
                    mqtt_str_from(it->valuestring, strlen(it->valuestring))))
                return cfg_fail(x,
                                "im.push.subscribers[%u]: expected a user "
                                "name ([A-Za-z0-9._-]{1,64})",
                                (unsigned)pc->subscriber_count);
            char *s = strdup(it->valuestring);
            if (s == NULL)
                return cfg_fail_nomem(x);
            pc->subscribers[pc->subscriber_count++] = s;
        }
    }
    if (k[3].val != NULL && (rc = parse_webhook(x, k[3].val, pc)) != 0)
        return rc;
    return 0;
}

int cfg_parse_push(struct cfg_ctx *x, const cJSON *v, imqtt_config *c)
{
    push_config_free(c->push);
    c->push = calloc(1, sizeof(*c->push));
    if (c->push == NULL)
        return cfg_fail_nomem(x);
    return parse_push(x, v, c->push);
}
