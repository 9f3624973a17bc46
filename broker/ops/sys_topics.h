/* $SYS topics with the names Mosquitto publishes, every sys_interval
 * seconds, retained (a new subscriber gets the last values at once). They
 * live in the retained index only, never in the store: they describe this
 * process, not durable state. */
#ifndef IMQTT_SYS_TOPICS_H
#define IMQTT_SYS_TOPICS_H

#include "server.h"

typedef struct sys_topics sys_topics;

/* Start publishing (nothing when srv->cfg.sys_interval is 0). Returns
 * NULL when off or out of memory. */
sys_topics *sys_topics_start(server *srv);
/* Change the period after a reload (0 stops it). */
void sys_topics_set_interval(sys_topics *st, uint32_t seconds);
/* Close the timer; the memory is freed in its close callback. */
void sys_topics_stop(sys_topics *st);

#endif
