/* Parse configured public keys once at start-up with mbedTLS, so that a
 * wrong or unreadable key is a configuration error rather than every
 * client being refused with "bad signature". */
#include "jwt_key.h"

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

#define RSA_MIN_BITS 2048

static bool contains(const uint8_t *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

static int check_pem(enum jwtv_alg alg, const uint8_t *key, size_t key_len,
                     const char **why)
{
    /* libjwt reads keys with PEM_read_bio_PUBKEY, which takes only the
     * SubjectPublicKeyInfo form; mbedTLS would also take PKCS#1 "BEGIN RSA
     * PUBLIC KEY", so check the form here to fail at start-up. */
    if (!contains(key, key_len, "-----BEGIN PUBLIC KEY-----")) {
        *why = "key is not a PEM public key (-----BEGIN PUBLIC KEY-----)";
        return IMQTT_ECONFIG;
    }
    /* mbedTLS wants PEM NUL-terminated, with the NUL counted. */
    unsigned char *pem = malloc(key_len + 1);
    if (pem == NULL)
        return IMQTT_ENOMEM;
    memcpy(pem, key, key_len);
    pem[key_len] = '\0';
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = 0;
    if (mbedtls_pk_parse_public_key(&pk, pem, key_len + 1) != 0) {
        *why = "public key does not parse";
        rc = IMQTT_ECONFIG;
    } else if (alg == JWTV_RS256) {
        if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_RSA) {
            *why = "RS256 needs an RSA public key";
            rc = IMQTT_ECONFIG;
        } else if (mbedtls_pk_get_bitlen(&pk) < RSA_MIN_BITS) {
            *why = "RSA key shorter than 2048 bits";
            rc = IMQTT_ECONFIG;
        }
    } else {
        if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY ||
            mbedtls_pk_ec(pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
            *why = "ES256 needs an EC public key on P-256";
            rc = IMQTT_ECONFIG;
        }
    }
    mbedtls_pk_free(&pk);
    free(pem);
    return rc;
}

int jwt_key_check(enum jwtv_alg alg, const uint8_t *key, size_t key_len,
                  const char **why)
{
    if (key == NULL || key_len == 0) {
        *why = "no key configured";
        return IMQTT_ECONFIG;
    }
    if (key_len > INT32_MAX) {
        *why = "key too large";
        return IMQTT_ECONFIG;
    }
    if (jwtv_alg_is_hmac(alg)) {
        if (key_len < jwtv_hmac_min_key(alg)) {
            *why = "HMAC secret shorter than the hash (RFC 7518 3.2: 32, "
                   "48 or 64 bytes for HS256, HS384, HS512)";
            return IMQTT_ECONFIG;
        }
        return 0;
    }
    return check_pem(alg, key, key_len, why);
}
