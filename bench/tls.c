/* mbedTLS client sessions over memory buffers: ciphertext read from the
 * socket is appended to `in` and consumed by the library's receive
 * callback; what the library sends is appended to one of two output
 * buffers, one of which may be owned by a uv_write at a time (the same
 * double buffering as the plaintext in client.c). */
#include "tls.h"

#include "errors.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room kept for one socket read: a whole TLS record and its header. */
#define TLS_READ_ROOM (MBEDTLS_SSL_IN_CONTENT_LEN + 512)

struct bench_tls_conf {
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    bool have_ca;
};

struct bench_tls {
    mbedtls_ssl_context ssl;
    bool ready;
    uint8_t *in;
    uint32_t in_off, in_len, in_cap;
    uint8_t *out[2];
    uint32_t out_len[2], out_cap[2];
    int ocur; /* appends go to out[ocur]; out[!ocur] may be in a write */
};

const char *bench_tls_strerror(int err, char *buf, size_t cap)
{
    mbedtls_strerror(err, buf, cap);
    return buf;
}

bench_tls_conf *bench_tls_conf_new(const char *cafile)
{
    bench_tls_conf *cf = calloc(1, sizeof(*cf));
    if (!cf)
        return NULL;
    mbedtls_ssl_config_init(&cf->conf);
    mbedtls_entropy_init(&cf->entropy);
    mbedtls_ctr_drbg_init(&cf->drbg);
    mbedtls_x509_crt_init(&cf->ca);
    char eb[128];
    int rc =
        mbedtls_ctr_drbg_seed(&cf->drbg, mbedtls_entropy_func, &cf->entropy,
                              (const unsigned char *)"imqtt-bench", 11);
    if (rc == 0)
        rc = mbedtls_ssl_config_defaults(&cf->conf, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc == 0 && cafile) {
        rc = mbedtls_x509_crt_parse_file(&cf->ca, cafile);
        if (rc == 0)
            cf->have_ca = true;
        else
            fprintf(stderr, "imqtt-bench: --cafile %s: %s\n", cafile,
                    bench_tls_strerror(rc, eb, sizeof(eb)));
    }
    if (rc != 0) {
        if (!cafile || cf->have_ca)
            fprintf(stderr, "imqtt-bench: TLS set-up: %s\n",
                    bench_tls_strerror(rc, eb, sizeof(eb)));
        bench_tls_conf_free(cf);
        return NULL;
    }
    mbedtls_ssl_conf_rng(&cf->conf, mbedtls_ctr_drbg_random, &cf->drbg);
    if (cf->have_ca) {
        mbedtls_ssl_conf_ca_chain(&cf->conf, &cf->ca, NULL);
        mbedtls_ssl_conf_authmode(&cf->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        /* Load testing without a CA: encrypt, but trust any certificate. */
        mbedtls_ssl_conf_authmode(&cf->conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    return cf;
}

void bench_tls_conf_free(bench_tls_conf *cf)
{
    if (!cf)
        return;
    mbedtls_ssl_config_free(&cf->conf);
    mbedtls_ctr_drbg_free(&cf->drbg);
    mbedtls_entropy_free(&cf->entropy);
    mbedtls_x509_crt_free(&cf->ca);
    free(cf);
}

static int grow(uint8_t **p, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *n = realloc(*p, c);
    if (!n)
        return IMQTT_ENOMEM;
    *p = n;
    *cap = (uint32_t)c;
    return 0;
}

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
    bench_tls *t = arg;
    int k = t->ocur;
    if (grow(&t->out[k], &t->out_cap[k], (size_t)t->out_len[k] + len) < 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    memcpy(t->out[k] + t->out_len[k], buf, len);
    t->out_len[k] += (uint32_t)len;
    return (int)len;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
    bench_tls *t = arg;
    uint32_t avail = t->in_len - t->in_off;
    if (avail == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > avail)
        len = avail;
    memcpy(buf, t->in + t->in_off, len);
    t->in_off += (uint32_t)len;
    if (t->in_off == t->in_len)
        t->in_off = t->in_len = 0;
    return (int)len;
}

bench_tls *bench_tls_new(bench_tls_conf *cf, const char *host)
{
    bench_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &cf->conf) != 0 ||
        (host && mbedtls_ssl_set_hostname(&t->ssl, host) != 0)) {
        bench_tls_free(t);
        return NULL;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    return t;
}

void bench_tls_free(bench_tls *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    free(t->in);
    free(t->out[0]);
    free(t->out[1]);
    free(t);
}

uint8_t *bench_tls_in_room(bench_tls *t, size_t *len)
{
    if (t->in_off > 0) {
        memmove(t->in, t->in + t->in_off, t->in_len - t->in_off);
        t->in_len -= t->in_off;
        t->in_off = 0;
    }
    if (grow(&t->in, &t->in_cap, (size_t)t->in_len + TLS_READ_ROOM) < 0) {
        *len = 0;
        return NULL;
    }
    *len = t->in_cap - t->in_len;
    return t->in + t->in_len;
}

void bench_tls_in_commit(bench_tls *t, size_t n)
{
    t->in_len += (uint32_t)n;
}

int bench_tls_handshake(bench_tls *t)
{
    if (t->ready)
        return 1;
    int rc = mbedtls_ssl_handshake(&t->ssl);
    if (rc == 0) {
        t->ready = true;
        return 1;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    return rc;
}

bool bench_tls_ready(const bench_tls *t)
{
    return t->ready;
}

int bench_tls_read(bench_tls *t, uint8_t *out, size_t cap)
{
    if (cap == 0)
        return 0;
    int rc = mbedtls_ssl_read(&t->ssl, out, cap);
    if (rc > 0)
        return rc;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return IMQTT_EIO;
    return rc;
}

int bench_tls_write(bench_tls *t, const uint8_t *p, size_t n)
{
    size_t done = 0;
    /* The output callback never blocks, so every call takes a record's
     * worth; the loop covers plaintext above the record size. */
    while (done < n) {
        int rc = mbedtls_ssl_write(&t->ssl, p + done, n - done);
        if (rc < 0)
            return rc;
        done += (size_t)rc;
    }
    return 0;
}

uint8_t *bench_tls_out(bench_tls *t, uint32_t *len)
{
    *len = t->out_len[t->ocur];
    return t->out[t->ocur];
}

void bench_tls_out_consume(bench_tls *t, uint32_t n)
{
    int k = t->ocur;
    memmove(t->out[k], t->out[k] + n, t->out_len[k] - n);
    t->out_len[k] -= n;
}

void bench_tls_out_swap(bench_tls *t)
{
    t->ocur ^= 1;
}

void bench_tls_out_done(bench_tls *t)
{
    t->out_len[!t->ocur] = 0;
}
