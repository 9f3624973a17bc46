/* Authentication, routing and the JSON error table of the backend API
 * (see api.h); the endpoints are in api_routes.c. */
#include "api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_json.h"
#include "api_route.h"
#include "errors.h"
#include "log.h"

void api_error(api_call *call, int status, const char *code,
               const char *message)
{
    free(call->ans.body);
    call->ans.status = status;
    call->ans.body = api_error_json(code, message);
    call->ans.len = call->ans.body ? strlen(call->ans.body) : 0;
}

/* One table from the project's error codes to HTTP. */
static int status_of(int err, const char **code)
{
    switch (err) {
    case IMQTT_EINVAL:
        *code = "bad_request";
        return 400;
    case IMQTT_EAUTH:
        *code = "bad_token";
        return 403;
    case IMQTT_EBANNED:
        *code = "banned";
        return 403;
    case IMQTT_EREVOKED:
        *code = "token_revoked";
        return 403;
    case IMQTT_EDENIED:
        *code = "not_authorized";
        return 403;
    case IMQTT_ENOTFOUND:
        *code = "not_found";
        return 404;
    case IMQTT_EQUOTA:
        *code = "quota_exceeded";
        return 429;
    case IMQTT_EAUTHRATE:
        *code = "too_many_failures";
        return 429;
    case IMQTT_EBUSY:
        *code = "rate_limited";
        return 429;
    case IMQTT_ERETAINNS:
        *code = "retain_not_supported";
        return 400;
    case IMQTT_ESTOREFULL:
        *code = "store_full";
        return 503;
    case IMQTT_ENOHISTORY:
        *code = "unavailable";
        return 503;
    default:
        *code = "internal";
        return 500;
    }
}

void api_fail(api_call *call, int err, const char *why)
{
    const char *code;
    int status = status_of(err, &code);
    api_error(call, status, code, why ? why : imqtt_strerror(err));
}

void api_ok(api_call *call, cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) {
        api_fail(call, IMQTT_ENOMEM, NULL);
        return;
    }
    free(call->ans.body);
    call->ans.status = 200;
    call->ans.body = s;
    call->ans.len = strlen(s);
}

void api_call_free(api_call *call)
{
    free(call->ans.body);
    call->ans.body = NULL;
    cJSON_Delete(call->later);
    call->later = NULL;
}

/* Compare without an early exit, so the time taken says nothing about
 * how much of a token matched. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = alen != blen;
    for (size_t i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
    return d == 0;
}

bool api_bearer(const http_req *r, const char **tok, size_t *len)
{
    if (!r->has_auth || r->auth_len < 7 || strncasecmp(r->auth, "Bearer ", 7))
        return false;
    const char *t = r->auth + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    *tok = t;
    *len = n;
    return n > 0;
}

static bool api_token_ok(const server *srv, const char *tok, size_t len)
{
    bool ok = false;
    for (uint32_t i = 0; i < srv->cfg.api_token_count; i++) {
        const char *t = srv->cfg.api_tokens[i];
        ok |= same_secret(tok, len, t, strlen(t));
    }
    return ok;
}

bool api_handle(api_call *call, const http_req *r)
{
    server *srv = call->srv;
    api_route rt;
    api_route_match((int)r->method, r->path, r->path_len, &rt);
    if (rt.ep == API_NONE) {
        api_error(call, 404, "not_found", "no such endpoint");
        return true;
    }
    if (!rt.method_ok) {
        api_error(call, 405, "method_not_allowed",
                  "this endpoint does not take that method");
        call->ans.allow = rt.allow;
        return true;
    }
    const char *tok;
    size_t tlen;
    if (!api_bearer(r, &tok, &tlen)) {
        api_error(call, 401, "unauthorized",
                  "an Authorization: Bearer token is required");
        return true;
    }
    /* The uplink's credential is the device's JWT, checked by the
     * endpoint for the user in the path; everything else takes an API
     * token. */
    if (!api_route_is_device(rt.ep) && !api_token_ok(srv, tok, tlen)) {
        log_info("api: %s %.*s refused: unknown token", http_req_method_name(r),
                 (int)r->path_len, r->path);
        api_error(call, 403, "forbidden", "not a valid API token");
        return true;
    }
    if (rt.bad_name) {
        api_error(call, 400, "bad_request",
                  "a user or device name in the path is not valid "
                  "([A-Za-z0-9._-]{1,64})");
        return true;
    }
    if (r->body_len && r->ctype_len &&
        strncasecmp(r->ctype, "application/json", 16) != 0) {
        api_error(call, 415, "unsupported_media_type",
                  "bodies are application/json");
        return true;
    }
    return api_endpoint(call, r, &rt);
}
