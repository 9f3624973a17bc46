/* A small NATS client (libnats 3.x) for the cluster tests: there is no
 * NATS client for Python in Debian. Prints one line per result and exits
 * 0 on success.
 *
 *   nats_probe check URL[,URL...]
 *       connect and ask for the JetStream account info: exit 0, 2 when no
 *       server answers, 3 when JetStream is not enabled.
 *   nats_probe js URL[,URL...]
 *       create an R3 file stream, publish 20 messages with acks (sequences
 *       must be 1..20), check the stream has a leader and 2 followers,
 *       delete it.
 *   nats_probe match SUB_URL PUB_URL
 *       BAD_INPUTS row 25 on a real server: subscribe on SUB_URL to the
 *       subjects of a set of MQTT filters (broker/cluster/subject.h),
 *       publish the subjects of a set of MQTT topics through PUB_URL (so
 *       across a route), and check that each filter received exactly the
 *       topics proto's mqtt_topic_match says it matches.
 *   nats_probe request URL SUBJECT
 *       send a request, print "reply: <data>" (exit 1 without a reply
 *       within 2 s).
 *   nats_probe stream URL NAME
 *       print the stream's "messages: N", "subjects: S", "republish: SRC
 *       -> DST", "replicas: R" and "leader: SERVER" (exit 1 when there is
 *       no such stream). */
#include <nats/nats.h>

#include "subject.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P "imqtt"

static natsConnection *connect_to(const char *urls)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    if (natsOptions_Create(&o) != NATS_OK)
        return NULL;
    /* a comma-separated list: one server array entry each */
    char copy[1024];
    const char *list[16];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", urls);
    for (char *save = NULL, *u = strtok_r(copy, ",", &save); u && n < 16;
         u = strtok_r(NULL, ",", &save))
        list[n++] = u;
    natsOptions_SetServers(o, list, n);
    natsOptions_SetTimeout(o, 2000);
    natsOptions_SetAllowReconnect(o, false);
    natsStatus s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        printf("unreachable: %s: %s\n", urls, natsStatus_GetText(s));
        return NULL;
    }
    return nc;
}

static int cmd_check(const char *urls)
{
    natsConnection *nc = connect_to(urls);
    if (!nc)
        return 2;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsErrCode jerr = 0;
    int rc = 0;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK)
        s = js_GetAccountInfo(&ai, js, NULL, &jerr);
    if (s != NATS_OK) {
        printf("no jetstream: %s (%d)\n", natsStatus_GetText(s), (int)jerr);
        rc = 3;
    } else {
        printf("jetstream ok: streams %" PRId64 "\n", (int64_t)ai->Streams);
        jsAccountInfo_Destroy(ai);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

static int cmd_js(const char *urls)
{
    natsConnection *nc = connect_to(urls);
    if (!nc)
        return 2;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    int rc = 1;
    jsStreamInfo *si = NULL;
    if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        goto out;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"probe.js.>"};
    cfg.Name = "PROBE";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = 3;
    natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK) {
        printf("add stream: %s (%d)\n", natsStatus_GetText(s), (int)jerr);
        goto out;
    }
    jsStreamInfo_Destroy(si);
    si = NULL;
    for (int i = 1; i <= 20; i++) {
        jsPubAck *pa = NULL;
        char body[32];
        int n = snprintf(body, sizeof body, "m%d", i);
        s = js_Publish(&pa, js, "probe.js.x", body, n, NULL, &jerr);
        if (s != NATS_OK || pa->Sequence != (uint64_t)i) {
            printf("publish %d: %s (%d)\n", i, natsStatus_GetText(s),
                   (int)jerr);
            jsPubAck_Destroy(pa);
            goto out;
        }
        jsPubAck_Destroy(pa);
    }
    s = js_GetStreamInfo(&si, js, "PROBE", NULL, &jerr);
    if (s != NATS_OK || !si->Cluster || !si->Cluster->Leader ||
        si->Cluster->ReplicasLen != 2 || si->State.Msgs != 20) {
        printf("stream info: %s\n", natsStatus_GetText(s));
        goto out;
    }
    printf("stream ok: leader %s, %d replicas, %" PRIu64 " messages\n",
           si->Cluster->Leader, si->Cluster->ReplicasLen, si->State.Msgs);
    rc = 0;
out:
    jsStreamInfo_Destroy(si);
    if (js)
        js_DeleteStream(js, "PROBE", NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

static const char *filters[] = {
    "#",   "+",   "+/+",   "+/#", "a/#",    "a/+",    "a/+/c",
    "a/b", "a",   "/#",    "/+",  "$SYS/#", "$SYS/+", "a.b/#",
    "a/*", "a/>", "a b/#", "=/#", "a//#",   "u@x/#",  "\xc3\xa9/+",
};
static const char *topics[] = {
    "a",    "a/b",        "a/b/c",    "a/x/c", "/",     "/a",   "a/",
    "$SYS", "$SYS/x",     "$SYS/x/y", "a.b",   "a.b/c", "a/*",  "a/>",
    "*",    ">",          "a b/c",    "=",     "=/x",   "a//b", "u@x/1",
    "u/x",  "\xc3\xa9/1", "a/b.c",    "a\t/b",
};
#define NF (sizeof filters / sizeof *filters)
#define NT (sizeof topics / sizeof *topics)

static mqtt_str str(const char *s)
{
    return mqtt_str_from(s, strlen(s));
}

static int cmd_match(const char *sub_url, const char *pub_url)
{
    natsConnection *sc = connect_to(sub_url), *pc = connect_to(pub_url);
    if (!sc || !pc)
        return 2;
    natsSubscription *subs[NF][2] = {{0}}, *ping = NULL;
    char subj[256];
    for (size_t i = 0; i < NF; i++) {
        size_t parent;
        if (cluster_filter_to_subject(P, str(filters[i]), subj, sizeof subj,
                                      &parent) < 0)
            return 1;
        natsConnection_SubscribeSync(&subs[i][0], sc, subj);
        if (parent > 0) {
            subj[parent] = '\0';
            natsConnection_SubscribeSync(&subs[i][1], sc, subj);
        }
    }
    /* The route carries interest in order: once the ping subscription
     * (made last) is reachable from the other server, all are. */
    natsConnection_SubscribeSync(&ping, sc, "probe.ping");
    natsConnection_Flush(sc);
    natsMsg *m = NULL;
    for (int tries = 0; tries < 100 && !m; tries++) {
        natsConnection_PublishString(pc, "probe.ping", "ping");
        natsConnection_Flush(pc);
        natsSubscription_NextMsg(&m, ping, 50);
    }
    if (!m) {
        printf("interest did not propagate\n");
        return 1;
    }
    natsMsg_Destroy(m);
    for (size_t j = 0; j < NT; j++) {
        if (cluster_topic_to_subject(P, str(topics[j]), subj, sizeof subj) < 0)
            return 1;
        natsConnection_Publish(pc, subj, &j, sizeof j);
    }
    natsConnection_PublishString(pc, "probe.ping", "done");
    natsConnection_Flush(pc);
    /* One reader thread queues messages in arrival order: once "done" is
     * queued every message published before it is queued too. */
    bool done = false;
    while (!done) {
        if (natsSubscription_NextMsg(&m, ping, 5000) != NATS_OK) {
            printf("no done marker\n");
            return 1;
        }
        done = strcmp(natsMsg_GetData(m), "done") == 0;
        natsMsg_Destroy(m);
    }
    int mismatches = 0, deliveries = 0;
    for (size_t i = 0; i < NF; i++) {
        bool got[NT] = {0};
        for (int k = 0; k < 2; k++) {
            if (!subs[i][k])
                continue;
            while (natsSubscription_NextMsg(&m, subs[i][k], 1) == NATS_OK) {
                size_t j;
                memcpy(&j, natsMsg_GetData(m), sizeof j);
                /* the subject decodes back to the very topic */
                uint8_t t[256];
                int n = cluster_subject_to_topic(P, natsMsg_GetSubject(m),
                                                 strlen(natsMsg_GetSubject(m)),
                                                 t, sizeof t);
                if (j >= NT || got[j] || n != (int)strlen(topics[j]) ||
                    memcmp(t, topics[j], (size_t)n) != 0) {
                    printf("bad delivery to '%s': %s\n", filters[i],
                           natsMsg_GetSubject(m));
                    mismatches++;
                } else {
                    got[j] = true;
                    deliveries++;
                }
                natsMsg_Destroy(m);
            }
        }
        for (size_t j = 0; j < NT; j++) {
            bool want = mqtt_topic_match(str(filters[i]), str(topics[j]));
            if (want != got[j]) {
                printf("filter '%s' topic '%s': mqtt %d nats %d\n", filters[i],
                       topics[j], want, got[j]);
                mismatches++;
            }
        }
        natsSubscription_Destroy(subs[i][0]);
        natsSubscription_Destroy(subs[i][1]);
    }
    natsSubscription_Destroy(ping);
    printf("match: %zu filters x %zu topics, %d deliveries, %d mismatches\n",
           NF, NT, deliveries, mismatches);
    natsConnection_Destroy(sc);
    natsConnection_Destroy(pc);
    return mismatches == 0 && deliveries > 0 ? 0 : 1;
}

static int cmd_request(const char *urls, const char *subject)
{
    natsConnection *nc = connect_to(urls);
    if (!nc)
        return 2;
    natsMsg *reply = NULL;
    natsStatus s =
        natsConnection_RequestString(&reply, nc, subject, "ping", 2000);
    int rc = 1;
    if (s == NATS_OK) {
        printf("reply: %.*s\n", natsMsg_GetDataLength(reply),
               natsMsg_GetData(reply));
        rc = 0;
    } else {
        printf("no reply: %s\n", natsStatus_GetText(s));
    }
    natsMsg_Destroy(reply);
    natsConnection_Destroy(nc);
    return rc;
}

static int cmd_stream(const char *urls, const char *name)
{
    natsConnection *nc = connect_to(urls);
    if (!nc)
        return 2;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int rc = 1;
    natsStatus s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK)
        s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (s == NATS_OK) {
        const jsStreamConfig *c = si->Config;
        printf("messages: %llu\n", (unsigned long long)si->State.Msgs);
        printf("subjects: %s\n", c->SubjectsLen ? c->Subjects[0] : "");
        if (c->RePublish)
            printf("republish: %s -> %s\n", c->RePublish->Source,
                   c->RePublish->Destination);
        printf("replicas: %lld\n", (long long)c->Replicas);
        if (si->Cluster && si->Cluster->Leader)
            printf("leader: %s\n", si->Cluster->Leader);
        rc = 0;
    } else {
        printf("no stream: %s (%d)\n", natsStatus_GetText(s), (int)jerr);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 64;
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        rc = cmd_check(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "js") == 0)
        rc = cmd_js(argv[2]);
    else if (argc == 4 && strcmp(argv[1], "match") == 0)
        rc = cmd_match(argv[2], argv[3]);
    else if (argc == 4 && strcmp(argv[1], "request") == 0)
        rc = cmd_request(argv[2], argv[3]);
    else if (argc == 4 && strcmp(argv[1], "stream") == 0)
        rc = cmd_stream(argv[2], argv[3]);
    else
        fprintf(stderr, "usage: nats_probe check|js URLS | match SUB PUB | "
                        "request URLS SUBJECT | stream URLS NAME\n");
    nats_Close();
    return rc;
}
