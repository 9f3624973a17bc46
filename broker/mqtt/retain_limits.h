/* What retained messages may cost (BAD_INPUTS row 30): every retained
 * message is set and cleared through here, so the broker knows how many it
 * holds and their bytes (topic + payload: what a publisher controls), and
 * for IM users how many each has retained.
 *
 * Limits, checked for a client's PUBLISH before it is routed
 * (handle_publish.c), never for the broker's own presence and $SYS
 * messages (which still count):
 *   max_retained_messages / max_retained_bytes   all retained messages;
 *   im.max_retained_messages / im.max_retained_bytes   per user, for
 *     clients of IM listeners.
 * Past one, an MQTT 5 publisher's message is refused (PUBACK/PUBREC 0x97,
 * QoS 0 dropped); a 3.1.1 publisher, which cannot be told, has it
 * delivered without being retained. Replacing or clearing a retained
 * message is always allowed when it does not grow past a limit.
 *
 * Owned by the loop thread, like the retained index.
 */
#ifndef IMQTT_RETAIN_LIMITS_H
#define IMQTT_RETAIN_LIMITS_H

#include <stdbool.h>

#include "msg.h"
#include "server.h"

/* The bytes a retained message counts for. */
static inline uint64_t retain_cost(uint32_t topic_len, uint32_t payload_len)
{
    return (uint64_t)topic_len + payload_len;
}

/* Whether publisher `s` may retain payload_len bytes on topic (an empty
 * payload, which clears, always may). Counts a refusal in /metrics. */
bool retain_admit(server *srv, const session *s, mqtt_str topic,
                  uint32_t payload_len);

/* Retain m (m->retain set; an empty payload clears the topic), taking a
 * reference. `s` is the publishing session (NULL: the broker, or a message
 * loaded from the store), whose IM user is charged for it. Returns 0 or
 * IMQTT_ENOMEM (nothing retained). */
int retain_set(server *srv, msg *m, const session *s);

/* Bytes (retain_cost) of every retained message, for /metrics. */
uint64_t retain_bytes(const server *srv);

/* Free the accounting (server_free). */
void retain_limits_free(server *srv);

#endif
