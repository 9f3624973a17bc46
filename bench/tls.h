/* TLS for imqtt-bench (--tls, --cafile): mbedTLS over memory buffers, so
 * the connection code keeps its libuv reads and writes and only passes
 * bytes through here. See tls.c. */
#ifndef IMQTT_BENCH_TLS_H
#define IMQTT_BENCH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_tls_conf bench_tls_conf; /* one per thread */
typedef struct bench_tls bench_tls;           /* one per connection */

/* A client configuration for one thread (the random generator is not
 * shared between threads). cafile: PEM CAs the broker's certificate must
 * chain to, or NULL to skip verification (as emqtt_bench does without a
 * CA). Returns NULL and prints why on failure. */
bench_tls_conf *bench_tls_conf_new(const char *cafile);
void bench_tls_conf_free(bench_tls_conf *cf);

/* A session for one connection. host (may be NULL) is sent as SNI and,
 * with a CA, checked against the certificate's names; without it only the
 * chain is verified (mbedTLS 2.28 does not match IP addresses, and the
 * tool connects to addresses). NULL on failure. */
bench_tls *bench_tls_new(bench_tls_conf *cf, const char *host);
void bench_tls_free(bench_tls *t);

/* Where the next socket read goes: room for at least one TLS record. */
uint8_t *bench_tls_in_room(bench_tls *t, size_t *len);
/* n bytes were read into the room given by bench_tls_in_room. */
void bench_tls_in_commit(bench_tls *t, size_t n);

/* Drive the handshake: 1 done, 0 more bytes needed (write the output
 * first), < 0 failed (an mbedTLS error code). */
int bench_tls_handshake(bench_tls *t);
bool bench_tls_ready(const bench_tls *t);

/* Decrypt into out[0..cap): bytes produced, 0 when nothing more is
 * buffered, IMQTT_EIO when the broker closed the session, other < 0 on
 * error. */
int bench_tls_read(bench_tls *t, uint8_t *out, size_t cap);
/* Encrypt all of p[0..n) into the output. 0 or < 0 on error. */
int bench_tls_write(bench_tls *t, const uint8_t *p, size_t n);

/* The ciphertext waiting to be written (appends go on while a previous
 * buffer is in a uv_write: see bench_tls_out_swap). */
uint8_t *bench_tls_out(bench_tls *t, uint32_t *len);
/* Drop n written bytes from the front of the current output. */
void bench_tls_out_consume(bench_tls *t, uint32_t n);
/* Hand the current output (from byte `from` on) to a uv_write: it stays
 * valid until bench_tls_out_done; new output goes to the other buffer. */
void bench_tls_out_swap(bench_tls *t);
void bench_tls_out_done(bench_tls *t);

/* Short description of an mbedTLS error code, for logs. */
const char *bench_tls_strerror(int err, char *buf, size_t cap);

#endif
