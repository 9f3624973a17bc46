/* The broker's side of NATS (docs/cluster.md). For now: the start-up
 * check that cluster mode requires — the broker refuses to start when no
 * NATS server of "cluster.nats_urls" answers or JetStream is not there. */
#ifndef IMQTT_CLUSTER_NATS_H
#define IMQTT_CLUSTER_NATS_H

#include <stddef.h>

#include <nats/nats.h>

#include "config_cluster.h"

/* Connect to cc's servers (libnats's own threads, before the event loop
 * runs: nothing of the broker is started yet), ask for the JetStream
 * account info, disconnect. Returns 0, or IMQTT_EIO with the reason in
 * err[0..errlen) ("cannot reach NATS at ...: ...", "JetStream is not
 * enabled ..."). `info` gets a one-line summary on success. */
int cluster_startup_check(const cluster_config *cc, char *info, size_t infolen,
                          char *err, size_t errlen);

/* Release libnats's threads and memory at exit (waits up to 2 s); a no-op
 * when NATS was never used. */
void cluster_nats_shutdown(void);

/* What every connection of this node to NATS is given: the servers, the
 * connect timeout, the node's name as connection name, credentials and
 * TLS. The start-up check and the node's link (cluster_link.c) share it. */
natsStatus cluster_nats_options(natsOptions *o, const cluster_config *cc);

#endif
