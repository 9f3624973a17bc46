/* NATS for cluster mode (cluster_nats.h). libnats 3.x (Debian
 * libnats-dev). */
#include "cluster_nats.h"
#include "cluster_stream.h"

#include "errors.h"

#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

/* libnats's last error text for this thread, or the status's text. */
static const char *nats_why(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    if (!t || !*t)
        return natsStatus_GetText(s);
    /* drop libnats's "(file.c:line): " in front of the text */
    const char *end = t[0] == '(' ? strstr(t, "): ") : NULL;
    return end ? end + 3 : t;
}

natsStatus cluster_nats_options(natsOptions *o, const cluster_config *cc)
{
    const char *urls[CLUSTER_MAX_URLS];
    for (uint32_t i = 0; i < cc->nurls; i++)
        urls[i] = cc->urls[i];
    natsStatus s = natsOptions_SetServers(o, urls, (int)cc->nurls);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, cc->connect_timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, cc->node);
    if (s == NATS_OK && cc->credentials_file)
        s = natsOptions_SetUserCredentialsFromFiles(o, cc->credentials_file,
                                                    NULL);
    if (s == NATS_OK && (cc->tls_ca_file || cc->tls_cert_file))
        s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && cc->tls_ca_file)
        s = natsOptions_LoadCATrustedCertificates(o, cc->tls_ca_file);
    if (s == NATS_OK && cc->tls_cert_file)
        s = natsOptions_LoadCertificatesChain(o, cc->tls_cert_file,
                                              cc->tls_key_file);
    return s;
}

static void url_list(const cluster_config *cc, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < cc->nurls && n + 1 < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? "," : "", cc->urls[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static bool used;

void cluster_nats_shutdown(void)
{
    if (used)
        nats_CloseAndWait(2000);
    used = false;
}

int cluster_startup_check(const cluster_config *cc, char *info, size_t infolen,
                          char *err, size_t errlen)
{
    char urls[512];
    url_list(cc, urls, sizeof urls);
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    int rc = IMQTT_EIO;
    used = true;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = cluster_nats_options(o, cc);
    if (s != NATS_OK) {
        snprintf(err, errlen, "NATS options (credentials, TLS files): %s",
                 nats_why(s));
        goto out;
    }
    /* one attempt per server: the start-up must not hang */
    natsOptions_SetAllowReconnect(o, false);
    s = natsConnection_Connect(&nc, o);
    if (s != NATS_OK) {
        snprintf(err, errlen, "cannot reach NATS at %s: %s", urls, nats_why(s));
        goto out;
    }
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = cc->connect_timeout_ms;
    s = natsConnection_JetStream(&js, nc, &jo);
    /* A JetStream cluster electing its meta leader (all servers starting
     * together, or its leader just lost) does not answer for a few
     * seconds: wait for it up to startup_wait_ms, not for a JetStream
     * that is not there at all. */
    int64_t deadline = nats_Now() + cc->startup_wait_ms;
    while (s == NATS_OK) {
        jerr = 0;
        s = js_GetAccountInfo(&ai, js, NULL, &jerr);
        bool electing = s == NATS_TIMEOUT || jerr == JSClusterNotAvailErr;
        if (!electing || nats_Now() >= deadline)
            break;
        nats_Sleep(250);
        s = NATS_OK;
    }
    if (s != NATS_OK) {
        char where[256] = "?";
        natsConnection_GetConnectedUrl(nc, where, sizeof where);
        if (s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr ||
            jerr == JSNotEnabledForAccountErr)
            snprintf(err, errlen,
                     "JetStream is not enabled on NATS at %s (cluster mode "
                     "needs nats-server with -js or a jetstream block)",
                     where);
        else
            snprintf(err, errlen,
                     "JetStream at %s did not answer within %u ms: %s "
                     "(error %d; a clustered JetStream without a meta "
                     "leader answers so)",
                     where, cc->startup_wait_ms, nats_why(s), (int)jerr);
        goto out;
    }
    /* The durable log must be there before the node takes a QoS 1/2
     * message it would acknowledge (cluster_stream.h). */
    if (cluster_stream_ensure(js, cc, deadline, err, errlen) < 0)
        goto out;
    char where[256] = "?";
    natsConnection_GetConnectedUrl(nc, where, sizeof where);
    snprintf(info, infolen,
             "NATS at %s, JetStream available (%d streams in the account)",
             where, (int)ai->Streams);
    rc = 0;
out:
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return rc;
}
