/* TLS with mbedTLS 2.28, driven through memory buffers: the loop reads
 * ciphertext from the socket and hands it in; ciphertext to send is
 * appended to an outbuf the connection writes like any other output. No
 * mbedTLS call ever touches a socket, so nothing blocks.
 *
 * One tls_server per TLS listener holds what all its connections share:
 * the mbedtls_ssl_config, certificate chain, key, CA, RNG, session ticket
 * key and session cache. It is reference counted: a SIGHUP that loads new
 * certificates builds a new tls_server for new connections while open ones
 * keep the old until they close.
 *
 * Per connection: a tls_conn is about 1 KiB of state plus mbedTLS's two
 * record buffers (MBEDTLS_SSL_IN/OUT_CONTENT_LEN, 16 KiB each in Debian's
 * build, plus headroom): docs/operations.md has the measured figure.
 */
#ifndef IMQTT_TLS_H
#define IMQTT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbuf.h"

typedef struct tls_options {
    const char *cert_file; /* PEM chain: server certificate first */
    const char *key_file;  /* PEM private key */
    const char *ca_file;   /* PEM CAs for client certificates; may be NULL */
    bool verify_client;    /* require a client certificate signed by ca */
    const char *ciphers;   /* "A:B:C" mbedTLS/IANA suite names; NULL: the
                              library's default list */
} tls_options;

typedef struct tls_server tls_server;
typedef struct tls_conn tls_conn;

/* Load the files and build the shared config. On error returns
 * IMQTT_ECONFIG (or IMQTT_ENOMEM) with a message naming the file. */
int tls_server_new(const tls_options *o, tls_server **out, char *err,
                   size_t errlen);
void tls_server_ref(tls_server *t);
void tls_server_unref(tls_server *t);

/* Validate options without keeping anything (config check on load). */
int tls_options_check(const tls_options *o, char *err, size_t errlen);

/* A connection's TLS state. Ciphertext to send is appended to *wire
 * (borrowed: must outlive the tls_conn). Takes a reference on srv. */
tls_conn *tls_conn_new(tls_server *srv, outbuf *wire);
void tls_conn_free(tls_conn *t);

/* Called with each chunk of plaintext; return < 0 to stop reading (the
 * connection is closing). The chunk is a scratch buffer, writable,
 * valid only during the call. */
typedef int (*tls_plain_cb)(void *arg, uint8_t *data, size_t len);

/* Feed ciphertext in[0..len) (all of it is consumed). Drives the
 * handshake, then hands every decrypted chunk to cb. Returns 0, 1 when
 * the peer sent close_notify, or a negative error (handshake failure or
 * bad record; the reason is in tls_conn_error). */
int tls_conn_input(tls_conn *t, const uint8_t *in, size_t len, tls_plain_cb cb,
                   void *arg);

/* Encrypt p[0..n) into the wire. Returns 0 or a negative error. */
int tls_conn_write(tls_conn *t, const uint8_t *p, size_t n);

/* Queue close_notify. */
void tls_conn_close_notify(tls_conn *t);

bool tls_conn_established(const tls_conn *t);
/* Text of the last error, for the log line. */
const char *tls_conn_error(const tls_conn *t);
/* The client certificate's subject CN (or, without one, its first DNS
 * SAN); NULL when there is no verified certificate. Owned by t. */
const char *tls_conn_peer_identity(const tls_conn *t);
/* Negotiated protocol and suite, for the log ("TLSv1.2", "TLS-..."). */
const char *tls_conn_version(const tls_conn *t);
const char *tls_conn_suite(const tls_conn *t);

#endif
