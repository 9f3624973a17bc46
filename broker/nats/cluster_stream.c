/* The durable log's stream (cluster_stream.h). */
#include "cluster_stream.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

int cluster_stream_prefix(const cluster_config *cc, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s_j", cc->subject_prefix);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Ours when it has exactly our subject and RePublish and our limits; a
 * stream someone changed by hand is brought back rather than trusted. */
static bool same(const jsStreamConfig *have, const jsStreamConfig *want)
{
    const jsRePublish *a = have->RePublish, *b = want->RePublish;
    return have->SubjectsLen == 1 &&
           strcmp(have->Subjects[0], want->Subjects[0]) == 0 && a &&
           strcmp(a->Source, b->Source) == 0 &&
           strcmp(a->Destination, b->Destination) == 0 && !a->HeadersOnly &&
           have->Replicas == want->Replicas && have->MaxAge == want->MaxAge &&
           have->MaxBytes == want->MaxBytes && have->Storage == want->Storage;
}

static bool electing(natsStatus s, jsErrCode jerr)
{
    return s == NATS_TIMEOUT || jerr == JSClusterNotAvailErr ||
           jerr == JSStreamOfflineErr;
}

int cluster_stream_ensure(jsCtx *js, const cluster_config *cc, int64_t deadline,
                          char *err, size_t errlen)
{
    char subj[256], src[256], dst[256];
    int n = cluster_stream_prefix(cc, subj, sizeof subj - 2);
    if (n < 0) {
        snprintf(err, errlen, "cluster.subject_prefix too long");
        return IMQTT_EIO;
    }
    memcpy(subj + n, ".>", 3);
    memcpy(src, subj, sizeof src);
    snprintf(dst, sizeof dst, "%s.>", cc->subject_prefix);
    const char *subjects[1] = {subj};
    jsRePublish rp;
    jsRePublish_Init(&rp);
    rp.Source = src;
    rp.Destination = dst;
    jsStreamConfig want;
    jsStreamConfig_Init(&want);
    want.Name = cc->stream;
    want.Subjects = subjects;
    want.SubjectsLen = 1;
    want.Storage = js_FileStorage;
    want.Replicas = (int64_t)cc->replicas;
    want.MaxAge = (int64_t)cc->max_age * 1000000000LL;
    want.MaxBytes = cc->max_bytes ? (int64_t)cc->max_bytes : -1;
    want.RePublish = &rp;

    for (;;) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, js, cc->stream, NULL, &jerr);
        const char *what = "create";
        if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
            s = js_AddStream(NULL, js, &want, NULL, &jerr);
        } else if (s == NATS_OK) {
            what = "update";
            if (!same(si->Config, &want))
                s = js_UpdateStream(NULL, js, &want, NULL, &jerr);
        }
        jsStreamInfo_Destroy(si);
        if (s == NATS_OK)
            return 0;
        if (!electing(s, jerr) || nats_Now() >= deadline) {
            snprintf(err, errlen,
                     "cannot %s the JetStream stream %s (replicas %u): %s "
                     "(error %d)",
                     what, cc->stream, cc->replicas,
                     nats_GetLastError(NULL) ? nats_GetLastError(NULL)
                                             : natsStatus_GetText(s),
                     (int)jerr);
            return IMQTT_EIO;
        }
        nats_Sleep(250);
    }
}
