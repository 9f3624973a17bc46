#include "api_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "topic.h"
#include "utf8.h"

static int bad(const char **why, const char *text)
{
    *why = text;
    return IMQTT_EINVAL;
}

/* The body as a JSON object with only the allowed keys, each once.
 * cJSON_ParseWithLength stops at the first value: trailing bytes are an
 * error. */
static int parse_object(const uint8_t *body, size_t len,
                        const char *const *keys, size_t nkeys, cJSON **out,
                        const char **why)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts((const char *)body, len, &end, false);
    if (!o)
        return bad(why, "the body is not JSON");
    size_t rest = len - (size_t)(end - (const char *)body);
    for (size_t i = 0; i < rest; i++) {
        char ch = end[i];
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t' && ch != '\0') {
            cJSON_Delete(o);
            return bad(why, "the body is not JSON");
        }
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return bad(why, "the body is not a JSON object");
    }
    for (const cJSON *a = o->child; a; a = a->next) {
        bool known = false;
        for (size_t k = 0; k < nkeys && !known; k++)
            known = strcmp(a->string, keys[k]) == 0;
        bool dup = false;
        for (const cJSON *b = a->next; b && !dup; b = b->next)
            dup = strcmp(a->string, b->string) == 0;
        if (!known || dup) {
            cJSON_Delete(o);
            return bad(why, known ? "a key appears twice" : "unknown key");
        }
    }
    *out = o;
    return 0;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* A whole number in [lo, hi]. */
static bool whole(const cJSON *v, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi)
        return false;
    *out = d;
    return true;
}

static bool name_of(const cJSON *v, char out[IM_ID_PART_MAX + 1])
{
    if (!cJSON_IsString(v))
        return false;
    size_t n = strlen(v->valuestring);
    if (!im_id_part_valid(mqtt_str_from(v->valuestring, n)))
        return false;
    memcpy(out, v->valuestring, n + 1);
    return true;
}

static int set_topic(api_message *m, const char *prefix, const char *rest)
{
    size_t a = strlen(prefix), b = strlen(rest);
    m->topic = malloc(a + b + 1);
    if (!m->topic)
        return IMQTT_ENOMEM;
    memcpy(m->topic, prefix, a);
    memcpy(m->topic + a, rest, b + 1);
    m->topic_len = a + b;
    return 0;
}

static int take_payload(const cJSON *o, api_message *m, const char **why)
{
    const cJSON *text = get(o, "payload"), *b64 = get(o, "payload_b64");
    if ((text != NULL) == (b64 != NULL))
        return bad(why, "exactly one of payload and payload_b64");
    const cJSON *v = text ? text : b64;
    if (!cJSON_IsString(v))
        return bad(why, "the payload must be a string");
    const char *s = v->valuestring;
    size_t n = strlen(s);
    if (text) {
        if (n == 0)
            return 0;
        if (!(m->payload = malloc(n)))
            return IMQTT_ENOMEM;
        memcpy(m->payload, s, n);
        m->payload_len = n;
        return 0;
    }
    /* Standard base64 with padding, nothing else: mbedTLS would also
     * take white space and line breaks. */
    bool ok = n % 4 == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/' ||
             (s[i] == '=' && i + 2 >= n);
    if (!ok)
        return bad(why, "payload_b64 is not base64");
    if (n == 0)
        return 0;
    size_t cap = n / 4 * 3;
    if (!(m->payload = malloc(cap)))
        return IMQTT_ENOMEM;
    if (mbedtls_base64_decode(m->payload, cap, &m->payload_len,
                              (const unsigned char *)s, n) != 0)
        return bad(why, "payload_b64 is not base64");
    if (m->payload_len == 0) {
        free(m->payload);
        m->payload = NULL;
    }
    return 0;
}

static int message_fields(const cJSON *o, bool uplink, api_message *m,
                          const char **why)
{
    const cJSON *user = get(o, "user"), *group = get(o, "group"),
                *topic = get(o, "topic");
    int targets = (user != NULL) + (group != NULL) + (topic != NULL);
    if (targets != 1)
        return bad(why, uplink ? "exactly one of user and group"
                               : "exactly one of user, group and topic");
    char name[IM_ID_PART_MAX + 1];
    int rc;
    if (user || group) {
        if (!name_of(user ? user : group, name))
            return bad(why, "not a valid user or group name");
        m->to = user ? API_TO_USER : API_TO_GROUP;
        rc = set_topic(m, user ? "p2p/talk/" : "g/talk/", name);
    } else {
        if (!cJSON_IsString(topic))
            return bad(why, "topic must be a string");
        size_t n = strlen(topic->valuestring);
        if (n == 0 || n > 65535 ||
            mqtt_topic_name_check(mqtt_str_from(topic->valuestring, n), NULL) <
                0)
            return bad(why, "not a valid topic name");
        if (topic->valuestring[0] == '$')
            return bad(why, "topics starting with $ are the broker's");
        m->to = API_TO_TOPIC;
        rc = set_topic(m, "", topic->valuestring);
    }
    if (rc < 0)
        return rc;
    double d;
    const cJSON *v;
    m->qos = 1;
    if ((v = get(o, "qos")) && !whole(v, 0, 2, &d))
        return bad(why, "qos must be 0, 1 or 2");
    if (v)
        m->qos = (uint8_t)d;
    if ((v = get(o, "expiry"))) {
        if (!whole(v, 0, 4294967295.0, &d))
            return bad(why, "expiry must be seconds (0..4294967295)");
        m->expiry = (uint32_t)d;
    }
    if (!uplink) {
        strcpy(m->service, API_SERVICE_DEFAULT);
        if ((v = get(o, "service")) && !name_of(v, m->service))
            return bad(why, "service must be a name ([A-Za-z0-9._-]{1,64})");
        if ((v = get(o, "retain"))) {
            if (!cJSON_IsBool(v))
                return bad(why, "retain must be true or false");
            m->retain = cJSON_IsTrue(v);
        }
    }
    return take_payload(o, m, why);
}

int api_parse_message(const uint8_t *body, size_t len, bool uplink,
                      api_message *m, const char **why)
{
    static const char *const pub_keys[] = {"user",    "group",   "topic",
                                           "service", "qos",     "retain",
                                           "expiry",  "payload", "payload_b64"};
    static const char *const up_keys[] = {"user",   "group",   "qos",
                                          "expiry", "payload", "payload_b64"};
    memset(m, 0, sizeof(*m));
    *why = NULL;
    cJSON *o;
    int rc = uplink ? parse_object(body, len, up_keys, 6, &o, why)
                    : parse_object(body, len, pub_keys, 9, &o, why);
    if (rc < 0)
        return rc;
    rc = message_fields(o, uplink, m, why);
    cJSON_Delete(o);
    if (rc < 0) {
        if (rc == IMQTT_ENOMEM)
            *why = "out of memory";
        api_message_free(m);
    }
    return rc;
}

void api_message_free(api_message *m)
{
    free(m->topic);
    free(m->payload);
    m->topic = NULL;
    m->payload = NULL;
}

int api_parse_revocation(const uint8_t *body, size_t len, api_revocation *r,
                         const char **why)
{
    static const char *const keys[] = {"user", "issued_before", "jti"};
    memset(r, 0, sizeof(*r));
    *why = NULL;
    cJSON *o;
    int rc = parse_object(body, len, keys, 3, &o, why);
    if (rc < 0)
        return rc;
    const cJSON *user = get(o, "user"), *before = get(o, "issued_before"),
                *jti = get(o, "jti");
    double d;
    if ((before != NULL) == (jti != NULL))
        rc = bad(why, "exactly one of issued_before and jti");
    else if (user && !name_of(user, r->user))
        rc = bad(why, "not a valid user name");
    else if (before && !whole(before, 0, 9007199254740991.0, &d))
        rc = bad(why, "issued_before must be seconds since the epoch");
    else if (jti && (!cJSON_IsString(jti) || jti->valuestring[0] == '\0' ||
                     strlen(jti->valuestring) > API_REASON_MAX))
        rc = bad(why, "jti must be a string of 1 to 256 bytes");
    else if (before) {
        r->before = (int64_t)d;
    } else {
        r->by_jti = true;
        strcpy(r->jti, jti->valuestring);
    }
    cJSON_Delete(o);
    return rc;
}

int api_parse_ban(const uint8_t *body, size_t len,
                  char reason[API_REASON_MAX + 1], const char **why)
{
    static const char *const keys[] = {"reason"};
    reason[0] = '\0';
    *why = NULL;
    if (len == 0)
        return 0;
    cJSON *o;
    int rc = parse_object(body, len, keys, 1, &o, why);
    if (rc < 0)
        return rc;
    const cJSON *v = get(o, "reason");
    if (v && (!cJSON_IsString(v) || strlen(v->valuestring) > API_REASON_MAX))
        rc = bad(why, "reason must be a string of at most 256 bytes");
    else if (v)
        strcpy(reason, v->valuestring);
    cJSON_Delete(o);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (at most cap - 1 bytes, NUL-ended);
 * '+' is a space. False on a bad escape or when it does not fit. */
static bool unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (k + 1 >= cap || ch == '\0')
            return false;
        out[k++] = ch;
    }
    out[k] = '\0';
    return true;
}

static bool digits(const char *s, double *out)
{
    if (!*s || strlen(s) > 16)
        return false;
    double d = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        d = d * 10 + (*s - '0');
    }
    *out = d;
    return true;
}

int api_parse_history_query(const char *q, size_t len, uint32_t page_max,
                            im_history_req *out, const char **why)
{
    *why = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        *why = "out of memory";
        return IMQTT_ENOMEM;
    }
    int rc = 0;
    size_t i = 0;
    while (rc == 0 && i < len) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        char key[16], val[96];
        if (j == i) {
            i = j + 1;
            continue;
        }
        if (!eq || !unescape(q + i, (size_t)(eq - q - i), key, sizeof(key)) ||
            !unescape(eq + 1, (size_t)(q + j - eq - 1), val, sizeof(val))) {
            rc = bad(why, "malformed query");
            break;
        }
        double d;
        if (get(o, key))
            rc = bad(why, "a query key appears twice");
        else if (strcmp(key, "peer") == 0 || strcmp(key, "group") == 0)
            rc = cJSON_AddStringToObject(o, key, val) ? 0 : IMQTT_ENOMEM;
        else if (strcmp(key, "after") == 0 || strcmp(key, "before") == 0 ||
                 strcmp(key, "limit") == 0)
            rc = !digits(val, &d) ? bad(why, "after, before and limit are "
                                             "whole numbers")
                 : cJSON_AddNumberToObject(o, key, d) ? 0
                                                      : IMQTT_ENOMEM;
        else
            rc = bad(why, "unknown query key");
        i = j + 1;
    }
    char *json = rc == 0 ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (rc == 0 && !json)
        rc = IMQTT_ENOMEM;
    if (rc == IMQTT_ENOMEM)
        *why = "out of memory";
    if (rc < 0)
        return rc;
    rc = im_history_parse((const uint8_t *)json, strlen(json), page_max, out,
                          why);
    free(json);
    return rc;
}

char *api_error_json(const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    if (!e || !cJSON_AddStringToObject(e, "code", code) ||
        !cJSON_AddStringToObject(e, "message", message)) {
        cJSON_Delete(o);
        return NULL;
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
