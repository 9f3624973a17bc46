/* TLS over memory buffers (see tls.h). */
#include "tls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define TLS_TICKET_LIFETIME_S 86400
#define TLS_CACHE_ENTRIES     10000
#define TLS_MAX_SUITES        64

struct tls_server {
    int refs;
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt chain;
    mbedtls_x509_crt ca;
    mbedtls_pk_context key;
    mbedtls_ssl_ticket_context ticket;
    mbedtls_ssl_cache_context cache;
    int suites[TLS_MAX_SUITES + 1]; /* conf points here: lives as long */
};

struct tls_conn {
    mbedtls_ssl_context ssl;
    tls_server *srv;   /* holds a reference */
    outbuf *wire;      /* borrowed */
    const uint8_t *in; /* the chunk being fed, during tls_conn_input */
    size_t in_len;
    bool established;
    int last_err;
    char identity[128];
    char err[96];
};

/* Decrypted records are handed out from here: one per thread (so one per
 * loop), and a chunk never outlives the callback it is passed to. */
static _Thread_local uint8_t plain_scratch[16384];

static int describe(char *err, size_t errlen, const char *what,
                    const char *file, int mrc)
{
    char m[128];
    mbedtls_strerror(mrc, m, sizeof(m));
    snprintf(err, errlen, "%s %s: %s", what, file, m);
    return IMQTT_ECONFIG;
}

static void server_free(tls_server *t)
{
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_ssl_ticket_free(&t->ticket);
    mbedtls_ssl_cache_free(&t->cache);
    mbedtls_x509_crt_free(&t->chain);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_pk_free(&t->key);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

/* "A:B, C" -> suite ids; an unknown name is an error naming it. */
static int parse_suites(tls_server *t, const char *list, char *err,
                        size_t errlen)
{
    size_t n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ':' || *p == ',' || *p == ' ')
            p++;
        const char *s = p;
        while (*p && *p != ':' && *p != ',' && *p != ' ')
            p++;
        if (p == s)
            break;
        char name[96];
        size_t len = (size_t)(p - s);
        if (len >= sizeof(name) || n == TLS_MAX_SUITES) {
            snprintf(err, errlen, "ciphers: too long");
            return IMQTT_ECONFIG;
        }
        memcpy(name, s, len);
        name[len] = '\0';
        int id = mbedtls_ssl_get_ciphersuite_id(name);
        if (id == 0) {
            snprintf(err, errlen, "ciphers: unknown suite \"%s\"", name);
            return IMQTT_ECONFIG;
        }
        t->suites[n++] = id;
    }
    if (n == 0) {
        snprintf(err, errlen, "ciphers: empty list");
        return IMQTT_ECONFIG;
    }
    t->suites[n] = 0;
    mbedtls_ssl_conf_ciphersuites(&t->conf, t->suites);
    return 0;
}

static int setup(tls_server *t, const tls_options *o, char *err, size_t errlen)
{
    static const char pers[] = "imqtt-tls";
    int mrc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                    (const uint8_t *)pers, sizeof(pers) - 1);
    if (mrc != 0)
        return describe(err, errlen, "seeding the RNG", "", mrc);
    if ((mrc = mbedtls_x509_crt_parse_file(&t->chain, o->cert_file)) != 0)
        return describe(err, errlen, "cert_file", o->cert_file, mrc);
    mrc = mbedtls_pk_parse_keyfile(&t->key, o->key_file, NULL);
    if (mrc != 0)
        return describe(err, errlen, "key_file", o->key_file, mrc);
    if (mbedtls_pk_check_pair(&t->chain.pk, &t->key) != 0) {
        snprintf(err, errlen, "key_file %s does not match cert_file %s",
                 o->key_file, o->cert_file);
        return IMQTT_ECONFIG;
    }
    mrc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_SERVER,
                                      MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (mrc != 0)
        return describe(err, errlen, "TLS defaults", "", mrc);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    /* TLS 1.2 is the floor (and, with this mbedTLS, the ceiling). */
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_renegotiation(&t->conf,
                                   MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    if ((mrc = mbedtls_ssl_conf_own_cert(&t->conf, &t->chain, &t->key)) != 0)
        return describe(err, errlen, "cert_file", o->cert_file, mrc);
    if (o->ca_file) {
        if ((mrc = mbedtls_x509_crt_parse_file(&t->ca, o->ca_file)) != 0)
            return describe(err, errlen, "ca_file", o->ca_file, mrc);
        mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    }
    mbedtls_ssl_conf_authmode(&t->conf, o->verify_client
                                            ? MBEDTLS_SSL_VERIFY_REQUIRED
                                            : MBEDTLS_SSL_VERIFY_NONE);
    if (o->ciphers) {
        int rc = parse_suites(t, o->ciphers, err, errlen);
        if (rc < 0)
            return rc;
    }
    /* Resumption both ways: tickets (no server memory) for clients that
     * support them, the session cache for those that only resend an id. */
    mrc = mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_ctr_drbg_random,
                                   &t->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                   TLS_TICKET_LIFETIME_S);
    if (mrc != 0)
        return describe(err, errlen, "session tickets", "", mrc);
    mbedtls_ssl_conf_session_tickets_cb(&t->conf, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &t->ticket);
    mbedtls_ssl_cache_set_max_entries(&t->cache, TLS_CACHE_ENTRIES);
    mbedtls_ssl_conf_session_cache(&t->conf, &t->cache, mbedtls_ssl_cache_get,
                                   mbedtls_ssl_cache_set);
    return 0;
}

int tls_server_new(const tls_options *o, tls_server **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    tls_server *t = calloc(1, sizeof(*t));
    if (!t)
        return IMQTT_ENOMEM;
    t->refs = 1;
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_x509_crt_init(&t->chain);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_pk_init(&t->key);
    mbedtls_ssl_ticket_init(&t->ticket);
    mbedtls_ssl_cache_init(&t->cache);
    int rc = setup(t, o, err, errlen);
    if (rc < 0) {
        server_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int tls_options_check(const tls_options *o, char *err, size_t errlen)
{
    tls_server *t = NULL;
    int rc = tls_server_new(o, &t, err, errlen);
    if (t)
        tls_server_unref(t);
    return rc;
}

void tls_server_ref(tls_server *t)
{
    t->refs++;
}

void tls_server_unref(tls_server *t)
{
    if (t && --t->refs == 0)
        server_free(t);
}

/* ---- per connection ------------------------------------------------------ */

static int bio_send(void *arg, const unsigned char *p, size_t n)
{
    tls_conn *t = arg;
    uint8_t *dst = outbuf_reserve(t->wire, n);
    if (!dst)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    memcpy(dst, p, n);
    outbuf_commit(t->wire, n);
    return (int)n;
}

static int bio_recv(void *arg, unsigned char *p, size_t n)
{
    tls_conn *t = arg;
    if (t->in_len == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (n > t->in_len)
        n = t->in_len;
    memcpy(p, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

tls_conn *tls_conn_new(tls_server *srv, outbuf *wire)
{
    tls_conn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &srv->conf) != 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return NULL;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    tls_server_ref(srv);
    t->srv = srv;
    t->wire = wire;
    return t;
}

void tls_conn_free(tls_conn *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    tls_server_unref(t->srv);
    free(t);
}

static void set_error(tls_conn *t, int mrc)
{
    t->last_err = mrc;
    mbedtls_strerror(mrc, t->err, sizeof(t->err));
    if (mrc == MBEDTLS_ERR_SSL_BAD_HS_CLIENT_HELLO ||
        mrc == MBEDTLS_ERR_SSL_INVALID_RECORD)
        snprintf(t->err, sizeof(t->err), "not a TLS client (-0x%04x)", -mrc);
}

/* Remember who the client certificate names, once verified. */
static void take_identity(tls_conn *t)
{
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&t->ssl);
    if (!crt || mbedtls_ssl_get_verify_result(&t->ssl) != 0)
        return;
    for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next) {
        if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
            n->val.len < sizeof(t->identity)) {
            memcpy(t->identity, n->val.p, n->val.len);
            t->identity[n->val.len] = '\0';
            return;
        }
    }
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s;
         s = s->next) {
        /* [2] dNSName, an IA5String */
        if (s->buf.p && s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) &&
            s->buf.len < sizeof(t->identity)) {
            memcpy(t->identity, s->buf.p, s->buf.len);
            t->identity[s->buf.len] = '\0';
            return;
        }
    }
}

int tls_conn_input(tls_conn *t, const uint8_t *in, size_t len, tls_plain_cb cb,
                   void *arg)
{
    t->in = in;
    t->in_len = len;
    int rc = 0;
    if (!t->established) {
        int mrc = mbedtls_ssl_handshake(&t->ssl);
        if (mrc == MBEDTLS_ERR_SSL_WANT_READ) {
            t->in_len = 0;
            return 0;
        }
        if (mrc != 0) {
            set_error(t, mrc);
            return IMQTT_EPROTOCOL;
        }
        t->established = true;
        take_identity(t);
    }
    for (;;) {
        int n = mbedtls_ssl_read(&t->ssl, plain_scratch, sizeof(plain_scratch));
        if (n > 0) {
            if (cb(arg, plain_scratch, (size_t)n) < 0)
                break;
            continue;
        }
        if (n == MBEDTLS_ERR_SSL_WANT_READ)
            break;
        if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            rc = 1;
            break;
        }
        set_error(t, n);
        rc = IMQTT_EPROTOCOL;
        break;
    }
    t->in = NULL;
    t->in_len = 0;
    return rc;
}

int tls_conn_write(tls_conn *t, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int w = mbedtls_ssl_write(&t->ssl, p, n);
        if (w <= 0) {
            set_error(t, w);
            return w == MBEDTLS_ERR_SSL_ALLOC_FAILED ? IMQTT_ENOMEM : IMQTT_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void tls_conn_close_notify(tls_conn *t)
{
    if (t->established)
        mbedtls_ssl_close_notify(&t->ssl);
}

bool tls_conn_established(const tls_conn *t)
{
    return t->established;
}

const char *tls_conn_error(const tls_conn *t)
{
    return t->err[0] ? t->err : "unknown";
}

const char *tls_conn_peer_identity(const tls_conn *t)
{
    return t->identity[0] ? t->identity : NULL;
}

const char *tls_conn_version(const tls_conn *t)
{
    return mbedtls_ssl_get_version(&t->ssl);
}

const char *tls_conn_suite(const tls_conn *t)
{
    return mbedtls_ssl_get_ciphersuite(&t->ssl);
}
