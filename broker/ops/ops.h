/* The operations side of the server, started after the listeners and
 * stopped with them: SIGHUP reload, $SYS topics, the metrics listener. */
#ifndef IMQTT_OPS_H
#define IMQTT_OPS_H

#include "server.h"

/* Returns 0 or a negative error (the metrics port could not be bound). */
int ops_start(server *srv);
/* Close the handles (server_stop). */
void ops_stop(server *srv);
/* Free what is left (server_free, after the loop). */
void ops_free(server *srv);

#endif
