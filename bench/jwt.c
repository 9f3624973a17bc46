/* Minting HS256 JWTs for the im scenario, with mbedTLS's HMAC and base64
 * (the bench must not depend on auth/). */
#include "bench.h"
#include "errors.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <string.h>

/* base64url without padding, in place of standard base64. */
static int b64url(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    if (mbedtls_base64_encode((unsigned char *)out, cap, &n, in, len) != 0)
        return IMQTT_ENOSPACE;
    while (n && out[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[n] = '\0';
    return (int)n;
}

int jwt_mint(const char *secret, const char *sub, long exp,
             const char *groups_json, char *out, size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char claims[256];
    int cl = snprintf(
        claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%ld%s%s}", sub, exp,
        groups_json ? ",\"groups\":" : "", groups_json ? groups_json : "");
    if (cl < 0 || (size_t)cl >= sizeof(claims))
        return IMQTT_ENOSPACE;
    int h = b64url((const uint8_t *)header, sizeof(header) - 1, out, cap);
    if (h < 0 || (size_t)h + 2 >= cap)
        return IMQTT_ENOSPACE;
    out[h] = '.';
    int c = b64url((const uint8_t *)claims, (size_t)cl, out + h + 1,
                   cap - (size_t)h - 1);
    if (c < 0)
        return c;
    size_t signed_len = (size_t)h + 1 + (size_t)c;
    uint8_t mac[32];
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (!md ||
        mbedtls_md_hmac(md, (const unsigned char *)secret, strlen(secret),
                        (const unsigned char *)out, signed_len, mac) != 0)
        return IMQTT_EINVAL;
    if (signed_len + 2 >= cap)
        return IMQTT_ENOSPACE;
    out[signed_len] = '.';
    int s =
        b64url(mac, sizeof(mac), out + signed_len + 1, cap - signed_len - 1);
    if (s < 0)
        return s;
    return (int)(signed_len + 1 + (size_t)s);
}
