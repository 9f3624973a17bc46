/* The mailbox on a real loop with real threads: every item posted by four
 * producers arrives once, in each producer's order, through a mailbox far
 * smaller than what is posted (producers block in mailbox_post_wait);
 * mailbox_post refuses when full; close hands the queued items to `drop`
 * and refuses later posts. Run under TSan by the Tsan build type. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "errors.h"
#include "mailbox.h"

#define PRODUCERS    4
#define PER_PRODUCER 20000

typedef struct item {
    mailbox_item link; /* first */
    int producer;
    int seq;
} item;

typedef struct sink {
    int next[PRODUCERS];
    int total;
    int out_of_order;
    mailbox *mb;
} sink;

static void on_item(mailbox_item *mi, void *arg)
{
    sink *s = arg;
    item *it = (item *)mi;
    if (it->seq != s->next[it->producer])
        s->out_of_order++;
    s->next[it->producer] = it->seq + 1;
    s->total++;
    free(it);
    if (s->total == PRODUCERS * PER_PRODUCER)
        mailbox_close(s->mb, NULL, NULL);
}

typedef struct producer {
    mailbox *mb;
    int id;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        item *it = malloc(sizeof(*it));
        it->producer = p->id;
        it->seq = i;
        if (mailbox_post_wait(p->mb, &it->link) != 0) {
            free(it);
            break;
        }
    }
    return NULL;
}

static void many_producers_in_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    mailbox mb;
    sink s = {.mb = &mb};
    assert_int_equal(mailbox_init(&mb, &loop, 64, on_item, &s), 0);
    pthread_t th[PRODUCERS];
    producer ps[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (producer){&mb, i};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &ps[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* ends when the sink closes the mailbox */
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(s.total, PRODUCERS * PER_PRODUCER);
    assert_int_equal(s.out_of_order, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int dropped;

static void on_drop(mailbox_item *mi, void *arg)
{
    (void)arg;
    dropped++;
    free(mi);
}

static void never(mailbox_item *mi, void *arg)
{
    (void)mi;
    (void)arg;
    fail_msg("an item ran after close");
}

static bool closed_cb_ran;

static void on_mailbox_closed(mailbox *mb)
{
    (void)mb;
    closed_cb_ran = true;
}

static void full_and_closed(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    mailbox mb;
    assert_int_equal(mailbox_init(&mb, &loop, 2, never, NULL), 0);
    mailbox_item *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)),
                 *c = malloc(sizeof(*c));
    assert_int_equal(mailbox_post(&mb, a), 0);
    assert_int_equal(mailbox_post(&mb, b), 0);
    assert_int_equal(mailbox_post(&mb, c), IMQTT_EBUSY); /* full: c is ours */
    assert_int_equal(mailbox_count(&mb), 2);
    dropped = 0;
    mailbox_close(&mb, on_drop, on_mailbox_closed);
    assert_int_equal(dropped, 2);
    assert_int_equal(mailbox_post(&mb, c), IMQTT_EBUSY); /* closed */
    assert_int_equal(mailbox_post_wait(&mb, c), IMQTT_EBUSY);
    free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(closed_cb_ran);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_producers_in_order),
        cmocka_unit_test(full_and_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
