/* History requests (docs/im.md, History): the JSON a device publishes to
 * $im/history, parsed without the broker (a pure function, fuzzed by
 * tests/fuzz/fuzz_history.c). */
#ifndef IMQTT_IM_HISTORY_REQ_H
#define IMQTT_IM_HISTORY_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"

/* A request is at most this long: it is a handful of fields. */
#define IM_HISTORY_REQ_MAX 1024
/* The echoed "req" value, printed, is at most this long. */
#define IM_HISTORY_REQ_ID_MAX 256
/* Ids are below 2^53 (im_log.h): what JSON numbers carry exactly. */
#define IM_HISTORY_ID_MAX 9007199254740991.0

typedef struct im_history_req {
    bool group;                    /* else a direct conversation */
    char name[IM_ID_PART_MAX + 1]; /* the peer or the group, NUL-ended */
    uint32_t name_len;
    bool forward;                        /* "after" given */
    uint64_t from;                       /* after / before id; 0: newest page */
    uint32_t limit;                      /* 1..page_max */
    char req[IM_HISTORY_REQ_ID_MAX + 1]; /* printed "req", or "" */
} im_history_req;

/* Parse buf[0..len): {"peer": user | "group": name, "after": id |
 * "before": id, "limit": n, "req": any}. A limit above page_max (or
 * absent) becomes page_max. Returns 0, or IMQTT_EINVAL with *why set to a
 * static text for the error reply. */
int im_history_parse(const uint8_t *buf, size_t len, uint32_t page_max,
                     im_history_req *out, const char **why);

#endif
