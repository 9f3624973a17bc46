#include "im_history_req.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "errors.h"

static int bad(const char **why, const char *text)
{
    *why = text;
    return IMQTT_EINVAL;
}

static bool get_id(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) ||
        !(v->valuedouble <= IM_HISTORY_ID_MAX) ||
        (double)(uint64_t)v->valuedouble != v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

int im_history_parse(const uint8_t *buf, size_t len, uint32_t page_max,
                     im_history_req *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len == 0 || len > IM_HISTORY_REQ_MAX)
        return bad(why, "request empty or longer than 1024 bytes");
    cJSON *o = cJSON_ParseWithLength((const char *)buf, len);
    if (!o)
        return bad(why, "not JSON");
    int rc = 0;
    const cJSON *peer = NULL, *group = NULL, *after = NULL, *before = NULL,
                *limit = NULL, *req = NULL;
    if (!cJSON_IsObject(o)) {
        rc = bad(why, "not a JSON object");
        goto out;
    }
    for (const cJSON *it = o->child; it; it = it->next) {
        const cJSON **slot = !strcmp(it->string, "peer")     ? &peer
                             : !strcmp(it->string, "group")  ? &group
                             : !strcmp(it->string, "after")  ? &after
                             : !strcmp(it->string, "before") ? &before
                             : !strcmp(it->string, "limit")  ? &limit
                             : !strcmp(it->string, "req")    ? &req
                                                             : NULL;
        if (!slot) {
            rc = bad(why, "unknown key");
            goto out;
        }
        if (*slot) {
            rc = bad(why, "key given twice");
            goto out;
        }
        *slot = it;
    }
    if (!peer == !group) {
        rc = bad(why, "exactly one of peer and group");
        goto out;
    }
    const cJSON *name = peer ? peer : group;
    size_t nl = cJSON_IsString(name) ? strlen(name->valuestring) : 0;
    if (nl == 0 || nl > IM_ID_PART_MAX ||
        !im_id_part_valid(mqtt_str_from(name->valuestring, nl))) {
        rc = bad(why, "peer or group is not a valid name");
        goto out;
    }
    out->group = group != NULL;
    memcpy(out->name, name->valuestring, nl);
    out->name_len = (uint32_t)nl;
    if (after && before) {
        rc = bad(why, "at most one of after and before");
        goto out;
    }
    out->forward = after != NULL;
    if ((after && !get_id(after, &out->from)) ||
        (before && !get_id(before, &out->from))) {
        rc = bad(why, "after or before is not an id");
        goto out;
    }
    out->limit = page_max;
    if (limit) {
        uint64_t l;
        if (!get_id(limit, &l) || l == 0) {
            rc = bad(why, "limit is not a positive integer");
            goto out;
        }
        if (l < page_max)
            out->limit = (uint32_t)l;
    }
    if (req) {
        char *p = cJSON_PrintUnformatted(req);
        if (!p) {
            rc = bad(why, "out of memory");
            goto out;
        }
        size_t pl = strlen(p);
        if (pl > IM_HISTORY_REQ_ID_MAX) {
            cJSON_free(p);
            rc = bad(why, "req longer than 256 bytes");
            goto out;
        }
        memcpy(out->req, p, pl + 1);
        cJSON_free(p);
    }
out:
    cJSON_Delete(o);
    return rc;
}
