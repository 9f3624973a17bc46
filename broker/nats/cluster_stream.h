/* The cluster's durable log: one JetStream stream (docs/cluster.md, "The
 * durable path"), created or brought to our configuration at start-up.
 *
 * A QoS 1/2 message is published once, on "<prefix>_j.<subject>" where
 * <subject> is the message's live subject without the prefix
 * ("imqtt_j.m.chat.alice" for "imqtt.m.chat.alice"). The stream keeps it
 * (cluster.replicas, file storage, cluster.max_age / max_bytes) and
 * RePublishes it on the live subject, "<prefix>.>", so nodes receive
 * durable and QoS 0 messages through the same subscriptions; the
 * RePublished copy carries the stream sequence (Nats-Sequence). The
 * stream's subjects lie outside "<prefix>.>" so the republication cannot
 * loop. */
#ifndef IMQTT_CLUSTER_STREAM_H
#define IMQTT_CLUSTER_STREAM_H

#include <stddef.h>

#include <nats/nats.h>

#include "config_cluster.h"

/* "<prefix>_j" into out; its length, or -1 when it does not fit. */
int cluster_stream_prefix(const cluster_config *cc, char *out, size_t cap);

/* Create the stream cc->stream, or update it when it exists with other
 * subjects, RePublish, replicas or limits. Blocks for JetStream's answers
 * (start-up only, before the loop runs); asks again every 0.25 s until
 * `deadline` (nats_Now() milliseconds) while JetStream is electing a
 * leader. Returns 0, or IMQTT_EIO with the reason in err[0..errlen). */
int cluster_stream_ensure(jsCtx *js, const cluster_config *cc, int64_t deadline,
                          char *err, size_t errlen);

#endif
