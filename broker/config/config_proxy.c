/* The PROXY protocol keys of a listener (docs/config.md):
 *   "proxy_protocol": true, "proxy_from": ["127.0.0.1", "10.0.0.0/8"]
 * A listener that takes PROXY headers must say whom it takes them from:
 * there is no default that trusts every peer (BAD_INPUTS row 26). */
#include "config_parse.h"
#include "errors.h"
#include "proxy_proto.h"

#include <stdlib.h>
#include <string.h>

/* More would be a list of hosts, not of load balancers. */
#define PROXY_FROM_MAX 64

int cfg_parse_listener_proxy(struct cfg_ctx *x, const struct cfg_key *k,
                             const char *path, listener_config *l)
{
    char sub[PATH_MAX_LEN];
    int rc;
    if (k[0].val != NULL) {
        cfg_join(sub, path, "proxy_protocol");
        if ((rc = cfg_get_bool(x, k[0].val, sub, &l->proxy_protocol)) != 0)
            return rc;
    }
    cfg_join(sub, path, "proxy_from");
    if (k[1].val == NULL) {
        if (l->proxy_protocol)
            return cfg_fail(x,
                            "%s: required with proxy_protocol (the addresses "
                            "of the load balancers)",
                            sub);
        return 0;
    }
    if (!l->proxy_protocol)
        return cfg_fail(x, "%s: only with \"proxy_protocol\": true", sub);
    int n = cJSON_IsArray(k[1].val) ? cJSON_GetArraySize(k[1].val) : -1;
    if (n < 1 || n > PROXY_FROM_MAX)
        return cfg_fail(x,
                        "%s: expected an array of 1 to %d addresses or "
                        "networks (\"10.0.0.0/8\")",
                        sub, PROXY_FROM_MAX);
    l->proxy_from = calloc((size_t)n, sizeof(*l->proxy_from));
    if (!l->proxy_from)
        return cfg_fail_nomem(x);
    l->proxy_from_count = (uint32_t)n;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, k[1].val)
    {
        if (!cJSON_IsString(it) ||
            proxy_net_parse(it->valuestring, &l->proxy_from[i]) != 0)
            return cfg_fail(x,
                            "%s[%d]: expected an IPv4 or IPv6 address, "
                            "optionally /prefix with the host bits zero",
                            sub, i);
        i++;
    }
    return 0;
}

bool config_listener_proxy_same(const listener_config *a,
                                const listener_config *b)
{
    if (a->proxy_protocol != b->proxy_protocol ||
        a->proxy_from_count != b->proxy_from_count)
        return false;
    for (uint32_t i = 0; i < a->proxy_from_count; i++) {
        const proxy_net *p = &a->proxy_from[i], *q = &b->proxy_from[i];
        if (p->family != q->family || p->bits != q->bits ||
            memcmp(p->ip, q->ip, sizeof p->ip) != 0)
            return false;
    }
    return true;
}
