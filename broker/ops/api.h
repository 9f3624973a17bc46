/* The backend HTTP API (docs/api.md) behind /api/v1/ on the operations
 * listener: authentication (API bearer tokens, or a device's own JWT for
 * its uplink), routing (api_route.h), bodies (api_json.h), JSON answers
 * and errors. Runs on the main loop (srv->loop), in the listener's read
 * callback; an answer that must wait for the store commit (a message
 * that was recorded) is sent from the commit's callback, like a PUBACK.
 */
#ifndef IMQTT_API_H
#define IMQTT_API_H

#include <cjson/cJSON.h>

#include "conn.h"
#include "http_req.h"
#include "server.h"

typedef struct api_answer {
    int status; /* HTTP status */
    char *body; /* owned JSON text, or NULL for none */
    size_t len;
    const char *allow; /* static: the Allow header of a 405 */
} api_answer;

typedef struct api_call api_call;
struct api_call {
    server *srv;             /* borrowed */
    conn_addr peer;          /* the HTTP client's address (family 0: unknown) */
    struct api_rates *rates; /* borrowed from the listener: uplink limits */
    api_answer ans;          /* the answer, once ready */
    commit_waiter cw;        /* while the answer waits for a commit */
    cJSON *later;            /* owned: the answer to send after that commit */
    /* Set by the caller: the answer became ready after api_handle
     * returned false (it runs from the commit callback). */
    void (*ready)(api_call *call);
    void *owner; /* the caller's */
};

/* Answer request r (complete, borrowed for the call). Returns true when
 * call->ans is ready now; false when it waits for the store commit, and
 * then call->ready(call) runs once it is (call must stay alive until
 * then). */
bool api_handle(api_call *call, const http_req *r);

/* The bearer credential of r: true with *tok (a view into r, not
 * NUL-ended) when the Authorization header is "Bearer <token>". */
bool api_bearer(const http_req *r, const char **tok, size_t *len);

/* Free what call->ans and call->later hold. */
void api_call_free(api_call *call);

/* Fill call->ans with the error of IMQTT_E* err (the HTTP status and the
 * code from one table), message `why` (NULL: imqtt_strerror). */
void api_fail(api_call *call, int err, const char *why);
/* Fill call->ans with an error of a given status and code. */
void api_error(api_call *call, int status, const char *code,
               const char *message);
/* Fill call->ans with 200 and o as its body (deleted here). */
void api_ok(api_call *call, cJSON *o);

/* The endpoints (api_routes.c); each fills call->ans or, returning
 * false, waits for a commit. */
struct api_route;
bool api_endpoint(api_call *call, const http_req *r,
                  const struct api_route *rt);

#endif
