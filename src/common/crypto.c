/* crypto.c - hashing, HMAC, hex and randomness (see crypto.h). */
#include "crypto.h"
#include "err.h"

#include <errno.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <sys/random.h>

void sb_sha1(const void *data, size_t len, uint8_t out[SB_SHA1_LEN])
{
    unsigned int n = 0;
    EVP_Digest(data, len, out, &n, EVP_sha1(), NULL);
}

void sb_sha256(const void *data, size_t len, uint8_t out[SB_SHA256_LEN])
{
    unsigned int n = 0;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void sb_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[SB_SHA1_LEN])
{
    unsigned int n = 0;
    HMAC(EVP_sha1(), key, (int)keylen, data, len, out, &n);
}

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg; /* fetched once, shared read-only by all threads */

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

void sb_hmac_sha256(const void *key, size_t keylen, const void *d1, size_t l1, const void *d2,
                    size_t l2, uint8_t out[SB_SHA256_LEN])
{
    unsigned int n = 0;
    if (!d2 || l2 == 0) {
        HMAC(EVP_sha256(), key, (int)keylen, d1, l1, out, &n);
        return;
    }
    /* Two parts without joining them: the EVP_MAC interface (HMAC_CTX is
     * deprecated in OpenSSL 3). The algorithm object is fetched once. */
    pthread_once(&hmac_once, hmac_fetch);
    EVP_MAC *mac = hmac_alg;
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    size_t outl = 0;
    if (!ctx || !EVP_MAC_init(ctx, key, keylen, params) || !EVP_MAC_update(ctx, d1, l1) ||
        !EVP_MAC_update(ctx, d2, l2) || !EVP_MAC_final(ctx, out, &outl, SB_SHA256_LEN))
        memset(out, 0, SB_SHA256_LEN);
    EVP_MAC_CTX_free(ctx);
}

void sb_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int sb_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sb_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t outcap)
{
    if (hexlen % 2 || hexlen / 2 > outcap)
        return -1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int hi = sb_hex_digit(hex[2 * i]), lo = sb_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(hexlen / 2);
}

int sb_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    while (inlen > 0 && in[inlen - 1] == '=')
        inlen--;
    for (size_t i = 0; i < inlen; i++) {
        char c = in[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= outcap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (int)n;
}

void sb_sha1_hex(const char *s, size_t len, char out[41])
{
    uint8_t d[SB_SHA1_LEN];
    sb_sha1(s, len, d);
    sb_hex_encode(d, SB_SHA1_LEN, out);
}

int sb_random_bytes(void *out, size_t len)
{
    uint8_t *p = out;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SB_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void sb_random_fast(void *out, size_t len)
{
    static __thread uint8_t pool[512];
    static __thread size_t left;
    uint8_t *p = out;
    while (len > 0) {
        if (left == 0) {
            if (sb_random_bytes(pool, sizeof pool) != 0) {
                /* getrandom cannot fail on Linux >= 3.17 once seeded; if it
                 * ever does, fall back to the direct call's error path */
                memset(pool, 0, sizeof pool);
            }
            left = sizeof pool;
        }
        size_t n = len < left ? len : left;
        memcpy(p, pool + sizeof pool - left, n);
        memset(pool + sizeof pool - left, 0, n);
        left -= n;
        p += n;
        len -= n;
    }
}

uint64_t sb_random_below(uint64_t bound)
{
    uint64_t r = 0;
    sb_random_fast(&r, sizeof r);
    return bound ? r % bound : 0;
}

int sb_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= x[i] ^ y[i];
    return acc == 0;
}
