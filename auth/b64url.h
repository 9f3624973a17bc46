/* base64url (RFC 4648 section 5) without padding, as JWS uses it.
 * Internal to auth/. */
#ifndef IMQTT_B64URL_H
#define IMQTT_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode `len` characters (an upper bound). */
#define B64URL_DECODED_MAX(len) ((len) / 4 * 3 + 3)

/* Decode `len` characters of `in` into `out` (room for
 * B64URL_DECODED_MAX(len) bytes). Strict: only [A-Za-z0-9_-], no padding,
 * no whitespace, no length of 1 mod 4, and the unused low bits of the last
 * character must be zero (one encoding per byte string). Returns the
 * decoded length, or -1. */
long b64url_decode(const char *in, size_t len, uint8_t *out);

#endif
