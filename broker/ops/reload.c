/* Configuration reload (see reload.h). */
#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "auth_guard.h"
#include "errors.h"
#include "jwt_verify.h"
#include "log.h"
#include "password.h"
#include "transport.h"

/* ACL, JWT verifier and password database replaced by a reload are kept
 * until shutdown: a password check running on the thread pool, or a
 * decision cached from the old ACL, may still point into them. A reload
 * costs the size of the old objects, once. */
typedef struct reload_retired {
    acl *acl;
    struct jwtv_verifier *jwt;
    struct pwdb *passwords;
    struct reload_retired *next;
} retired;

static bool same_listener(const listener_config *a, const listener_config *b)
{
    return a->port == b->port && strcmp(a->bind, b->bind) == 0 &&
           a->transport == b->transport;
}

int reload_apply(server *srv, const char *path)
{
    imqtt_config nc;
    char err[512];
    int rc = config_load(path, &nc, err, sizeof(err));
    if (rc < 0) {
        log_error("reload failed, keeping the running configuration: %s", err);
        metrics_count(srv, METRIC_RELOADS_FAILED);
        return rc;
    }
    retired *r = calloc(1, sizeof(*r));
    if (!r) {
        config_free(&nc);
        log_error("reload failed, keeping the running configuration: %s",
                  imqtt_strerror(IMQTT_ENOMEM));
        metrics_count(srv, METRIC_RELOADS_FAILED);
        return IMQTT_ENOMEM;
    }
    /* Certificates first: the one step that can still fail. A listener
     * is matched by bind, port and transport; anything else about the
     * listeners takes a restart. */
    imqtt_config *oc = &srv->cfg;
    bool restart_needed = nc.listener_count != oc->listener_count;
    for (uint32_t i = 0; i < srv->nlisteners && i < nc.listener_count; i++) {
        listener *lst = &srv->listeners[i];
        if (!same_listener(lst->cfg, &nc.listeners[i])) {
            restart_needed = true;
            continue;
        }
        if (!config_listener_proxy_same(lst->cfg, &nc.listeners[i]))
            restart_needed = true; /* the certificates still reload */
        rc = transport_listener_reload(lst, &nc.listeners[i]);
        if (rc < 0) {
            free(r);
            config_free(&nc);
            log_error("reload failed, keeping the running configuration "
                      "(certificates of listeners before %u are already "
                      "the new ones)",
                      i);
            metrics_count(srv, METRIC_RELOADS_FAILED);
            return rc;
        }
        oc->listeners[i].max_connections = nc.listeners[i].max_connections;
    }
    if (restart_needed)
        log_warn("reload: listener changes (other than certificates and "
                 "max_connections) take effect after a restart");

    r->acl = oc->acl;
    r->jwt = oc->jwt;
    r->passwords = oc->passwords;
    r->next = srv->retired;
    srv->retired = r;
    oc->acl = nc.acl;
    oc->jwt = nc.jwt;
    oc->passwords = nc.passwords;
    nc.acl = NULL;
    nc.jwt = NULL;
    nc.passwords = NULL;
    oc->deny_suback_reason = nc.deny_suback_reason;

    /* Limits that are checked per event, not baked into a session or a
     * CONNACK already sent. */
    oc->max_connections = nc.max_connections;
    oc->max_queued_messages = nc.max_queued_messages;
    oc->max_queued_bytes = nc.max_queued_bytes;
    oc->max_inflight_bytes = nc.max_inflight_bytes;
    oc->max_stored_messages = nc.max_stored_messages;
    oc->max_stored_bytes = nc.max_stored_bytes;
    oc->max_subscriptions = nc.max_subscriptions;
    oc->max_retained_messages = nc.max_retained_messages;
    oc->max_retained_bytes = nc.max_retained_bytes;
    oc->im_max_retained_messages = nc.im_max_retained_messages;
    oc->im_max_retained_bytes = nc.im_max_retained_bytes;
    oc->max_packet_size = nc.max_packet_size;
    oc->max_keepalive = nc.max_keepalive;
    oc->max_session_expiry = nc.max_session_expiry;
    oc->max_topic_levels = nc.max_topic_levels;
    oc->max_topic_length = nc.max_topic_length;
    oc->log_level = nc.log_level;
    oc->log_json = nc.log_json;
    oc->sys_interval = nc.sys_interval;
    oc->conn_rate = nc.conn_rate;
    oc->conn_burst = nc.conn_burst;
    oc->msg_rate = nc.msg_rate;
    oc->msg_burst = nc.msg_burst;
    oc->bytes_rate = nc.bytes_rate;
    oc->bytes_burst = nc.bytes_burst;
    oc->auth_cache_size = nc.auth_cache_size;
    oc->auth_cache_ttl = nc.auth_cache_ttl;
    oc->auth_fail_burst = nc.auth_fail_burst;
    oc->auth_fail_rate = nc.auth_fail_rate;
    oc->auth_fail_jwt = nc.auth_fail_jwt;
    auth_guard_reload(srv); /* new password file: verified anew */
    oc->output_buffer = nc.output_buffer;
    oc->stall_timeout = nc.stall_timeout;
    oc->max_pending_acks = nc.max_pending_acks;
    /* API tokens: swapped, so the old ones go with nc. Requests are
     * answered within one callback: none holds a token across this. */
    char **tok = oc->api_tokens;
    uint32_t ntok = oc->api_token_count;
    oc->api_tokens = nc.api_tokens;
    oc->api_token_count = nc.api_token_count;
    nc.api_tokens = tok;
    nc.api_token_count = ntok;
    oc->api_max_body = nc.api_max_body;
    log_set_level(oc->log_level);
    log_set_json(oc->log_json);
    config_free(&nc);
    metrics_count(srv, METRIC_RELOADS_OK);
    log_info("configuration reloaded from %s", path);
    return 0;
}

void reload_free_retired(server *srv)
{
    while (srv->retired) {
        retired *r = srv->retired;
        srv->retired = r->next;
        acl_free(r->acl);
        jwtv_verifier_free(r->jwt);
        pwdb_free(r->passwords);
        free(r);
    }
}
