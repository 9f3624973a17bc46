/* The backend HTTP API's routes (docs/api.md): a method and a path to an
 * endpoint and the names in the path. Pure, fuzzed (tests/fuzz/fuzz_api.c).
 */
#ifndef IMQTT_API_ROUTE_H
#define IMQTT_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "identity.h"

#define API_PREFIX "/api/v1/"

enum api_endpoint {
    API_NONE = 0,    /* no such path: 404 */
    API_PUBLISH,     /* POST /api/v1/publish */
    API_DEVICES,     /* GET /api/v1/users/{u}/devices */
    API_PRESENCE,    /* GET /api/v1/users/{u}/presence */
    API_HISTORY,     /* GET /api/v1/users/{u}/history?peer=|group= */
    API_KICK_USER,   /* POST /api/v1/users/{u}/kick */
    API_BAN_USER,    /* PUT | DELETE /api/v1/users/{u}/ban */
    API_KICK_DEVICE, /* POST /api/v1/users/{u}/devices/{d}/kick */
    API_BAN_DEVICE,  /* PUT | DELETE /api/v1/users/{u}/devices/{d}/ban */
    API_UPLINK,      /* POST /api/v1/users/{u}/devices/{d}/messages */
    API_BANS,        /* GET /api/v1/bans */
    API_REVOCATIONS, /* GET | POST /api/v1/revocations */
};

/* Methods an endpoint takes, as bits (1 << http_method). */
typedef struct api_route {
    enum api_endpoint ep;
    bool method_ok;    /* the method is one the endpoint takes (else 405) */
    bool bad_name;     /* a user or device in the path is not a valid name
                          ([A-Za-z0-9._-]{1,64}): 400 */
    const char *allow; /* the endpoint's methods, for the Allow header */
    char user[IM_ID_PART_MAX + 1];   /* NUL-ended; "" when not in the path */
    char device[IM_ID_PART_MAX + 1]; /* NUL-ended; "" when not in the path */
} api_route;

/* Match `method` (an http_parser enum http_method) and path[0..len) (no
 * query). ep is API_NONE for a path that names no endpoint. */
void api_route_match(int method, const char *path, size_t len, api_route *out);

/* Whether the endpoint is authenticated with the device's own JWT rather
 * than an API token. */
bool api_route_is_device(enum api_endpoint ep);

#endif
