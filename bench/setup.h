/* Building each scenario's connections (setup.c, im.c). */
#ifndef IMQTT_BENCH_SETUP_H
#define IMQTT_BENCH_SETUP_H

#include "bench.h"

#include <stddef.h>

/* Expand %i, %c and %u in pat into out[0..cap). Returns the length or
 * IMQTT_ENOSPACE. */
int topic_expand(const char *pat, uint32_t i, const char *cid, const char *user,
                 char *out, size_t cap);
/* G.conns[0..nconns) (zeroed, index set, pub_id -1) and G.pubs. */
int setup_alloc(uint32_t nconns, uint32_t npubs);
/* Read/write buffers (and the payload of a publisher) for c. */
int setup_buffers(bench_conn *c, bool receiver);
/* Fill each thread's conns[] from conn->th. */
int setup_threads(void);
bool closed_loop_opts(void);
/* conn, pub, sub, p2p, fanout, fanin. */
int setup_flow(void);

#endif
