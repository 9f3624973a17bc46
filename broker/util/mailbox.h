/* A mailbox: how work reaches a libuv loop from other threads. A libuv
 * handle may be touched only by its own loop (STYLE.md, FlashMQ), so
 * another loop, the store thread or a library's callback thread never
 * writes to a connection: it posts an item here, and the owning loop runs
 * the items in its uv_async callback, in the order they were posted.
 *
 * Items are intrusive (the poster embeds a mailbox_item in its own struct)
 * so posting allocates nothing. The queue is bounded: past `limit` items
 * mailbox_post refuses (the poster keeps the item and decides: drop QoS 0,
 * slow down, retry), and mailbox_post_wait blocks its thread until there
 * is room — back-pressure for a producer thread that may block, such as a
 * library's delivery thread; never for a loop thread.
 *
 * Threads: mailbox_init, mailbox_close and the callback run on the owning
 * loop's thread; mailbox_post and mailbox_post_wait on any thread. An item
 * belongs to the mailbox from a successful post until its callback runs.
 */
#ifndef IMQTT_MAILBOX_H
#define IMQTT_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct mailbox_item {
    struct mailbox_item *next;
} mailbox_item;

/* Runs on the owning loop for each item, oldest first. The item is the
 * callback's from then on. */
typedef void (*mailbox_cb)(mailbox_item *item, void *arg);

typedef struct mailbox {
    uv_async_t async; /* first: the close callback gets the mailbox */
    pthread_mutex_t lock;
    pthread_cond_t room;
    mailbox_item *head, *tail; /* under lock */
    uint32_t count, limit;     /* under lock */
    uint32_t waiters;          /* threads in mailbox_post_wait, under lock */
    bool closed;               /* under lock: posts are refused */
    mailbox_cb cb;
    void *arg;
    void (*close_cb)(struct mailbox *mb);
} mailbox;

/* Start a mailbox on `loop` holding at most `limit` items (1 or more).
 * Returns 0 or a negative error. */
int mailbox_init(mailbox *mb, uv_loop_t *loop, uint32_t limit, mailbox_cb cb,
                 void *arg);

/* Post item (any thread). Returns 0, or IMQTT_EBUSY when the mailbox is
 * full or closed (the item stays the caller's). */
int mailbox_post(mailbox *mb, mailbox_item *item);

/* Post item, waiting for room (a thread that may block, never a loop
 * thread). Returns 0, or IMQTT_EBUSY once the mailbox is closed. */
int mailbox_post_wait(mailbox *mb, mailbox_item *item);

/* Items waiting now (any thread; a snapshot). */
uint32_t mailbox_count(mailbox *mb);

/* Refuse further posts, wake blocked posters, hand the items still queued
 * to `drop` (may be NULL) and close the handle; close_cb runs when it is
 * closed, after which the mailbox memory may be freed. Owning loop only. */
void mailbox_close(mailbox *mb, mailbox_cb drop, void (*close_cb)(mailbox *));

#endif
