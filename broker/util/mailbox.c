#include "mailbox.h"

#include <sched.h>

#include "errors.h"
#include "loop_lock.h"

/* The loop takes the whole list at once and runs it outside the lock, so a
 * poster never waits for a callback and a callback may post again (to
 * this mailbox too: those items run on the next wake-up). */
static void on_async_locked(uv_async_t *h)
{
    mailbox *mb = (mailbox *)h;
    pthread_mutex_lock(&mb->lock);
    mailbox_item *it = mb->head;
    mb->head = mb->tail = NULL;
    mb->count = 0;
    if (mb->waiters)
        pthread_cond_broadcast(&mb->room);
    pthread_mutex_unlock(&mb->lock);
    while (it) {
        mailbox_item *next = it->next;
        it->next = NULL;
        mb->cb(it, mb->arg);
        it = next;
    }
}

static void on_async(uv_async_t *h)
{
    loop_lock();
    on_async_locked(h);
    loop_unlock();
}

int mailbox_init(mailbox *mb, uv_loop_t *loop, uint32_t limit, mailbox_cb cb,
                 void *arg)
{
    *mb = (mailbox){.limit = limit ? limit : 1, .cb = cb, .arg = arg};
    if (pthread_mutex_init(&mb->lock, NULL) != 0)
        return IMQTT_ENOMEM;
    if (pthread_cond_init(&mb->room, NULL) != 0) {
        pthread_mutex_destroy(&mb->lock);
        return IMQTT_ENOMEM;
    }
    int rc = uv_async_init(loop, &mb->async, on_async);
    if (rc < 0) {
        pthread_cond_destroy(&mb->room);
        pthread_mutex_destroy(&mb->lock);
        return rc;
    }
    return 0;
}

/* Under lock. Returns whether the loop needs a wake-up (the list was
 * empty: otherwise one is already on its way). */
static bool append(mailbox *mb, mailbox_item *item)
{
    item->next = NULL;
    bool was_empty = mb->head == NULL;
    if (mb->tail)
        mb->tail->next = item;
    else
        mb->head = item;
    mb->tail = item;
    mb->count++;
    return was_empty;
}

int mailbox_post(mailbox *mb, mailbox_item *item)
{
    pthread_mutex_lock(&mb->lock);
    if (mb->closed || mb->count >= mb->limit) {
        pthread_mutex_unlock(&mb->lock);
        return IMQTT_EBUSY;
    }
    /* Sent under the lock so that mailbox_close, which takes it, never
     * closes the handle between a post and its wake-up. */
    if (append(mb, item))
        uv_async_send(&mb->async);
    pthread_mutex_unlock(&mb->lock);
    return 0;
}

int mailbox_post_wait(mailbox *mb, mailbox_item *item)
{
    pthread_mutex_lock(&mb->lock);
    mb->waiters++;
    while (!mb->closed && mb->count >= mb->limit)
        pthread_cond_wait(&mb->room, &mb->lock);
    mb->waiters--;
    if (mb->closed) {
        pthread_mutex_unlock(&mb->lock);
        return IMQTT_EBUSY;
    }
    /* Sent under the lock so that mailbox_close, which takes it, never
     * closes the handle between a post and its wake-up. */
    if (append(mb, item))
        uv_async_send(&mb->async);
    pthread_mutex_unlock(&mb->lock);
    return 0;
}

uint32_t mailbox_count(mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    uint32_t n = mb->count;
    pthread_mutex_unlock(&mb->lock);
    return n;
}

static void on_closed(uv_handle_t *h)
{
    mailbox *mb = (mailbox *)h;
    pthread_cond_destroy(&mb->room);
    pthread_mutex_destroy(&mb->lock);
    if (mb->close_cb)
        mb->close_cb(mb);
}

void mailbox_close(mailbox *mb, mailbox_cb drop, void (*close_cb)(mailbox *))
{
    pthread_mutex_lock(&mb->lock);
    mb->closed = true;
    mailbox_item *it = mb->head;
    mb->head = mb->tail = NULL;
    mb->count = 0;
    pthread_cond_broadcast(&mb->room);
    /* A poster woken here still holds the lock on its way out: wait for
     * the last one before the lock can be destroyed. */
    while (mb->waiters) {
        pthread_mutex_unlock(&mb->lock);
        sched_yield();
        pthread_mutex_lock(&mb->lock);
    }
    pthread_mutex_unlock(&mb->lock);
    while (it) {
        mailbox_item *next = it->next;
        it->next = NULL;
        if (drop)
            drop(it, mb->arg);
        it = next;
    }
    mb->close_cb = close_cb;
    uv_close((uv_handle_t *)&mb->async, on_closed);
}
