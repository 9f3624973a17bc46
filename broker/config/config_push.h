/* The "im.push" section (docs/im.md, Offline push): who hears that a
 * message waits for a user with no device online, and the optional
 * webhook those events are POSTed to. Absent, there is no offline push. */
#ifndef IMQTT_CONFIG_PUSH_H
#define IMQTT_CONFIG_PUSH_H

#include <stdbool.h>
#include <stdint.h>

enum push_mode {
    PUSH_PER_USER = 0, /* one event per message for a user with no device
                          online */
    PUSH_PER_DEVICE,   /* one event per offline device the message is
                          queued for */
};

typedef struct push_webhook_config {
    char *url;    /* owned; http:// or https:// */
    char *bearer; /* owned; sent as "Authorization: Bearer ..."; NULL: none */
    uint32_t batch_size;        /* events per POST; default 100 */
    uint32_t batch_interval_ms; /* longest an event waits for a batch to
                                   fill; default 100 */
    uint32_t timeout_ms;        /* per POST, connecting included; 5000 */
    uint32_t retries;           /* attempts after the first; default 3 */
    uint32_t retry_backoff_ms;  /* first retry delay, doubled each time up
                                   to 30 s; default 500 */
    uint32_t queue_limit;       /* events waiting to be posted; 10000 */
    uint32_t concurrency;       /* POSTs in flight at once; default 2 */
    bool include_payload;       /* the message's payload in the events */
} push_webhook_config;

typedef struct push_config {
    enum push_mode mode; /* default PUSH_PER_USER */
    char **subscribers;  /* owned; users who may read $events/push/# */
    uint32_t subscriber_count;
    bool include_payload; /* the message's payload in the topic's events */
    push_webhook_config *webhook; /* owned; NULL: topic only */
} push_config;

void push_config_free(push_config *pc);

#endif
