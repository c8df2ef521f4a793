/* crypto.h - hashing, HMAC, hex and randomness (OpenSSL libcrypto + getrandom).
 * Small fixed-size helpers; nothing here allocates. */
#ifndef SB_CRYPTO_H
#define SB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SB_SHA1_LEN 20
#define SB_SHA256_LEN 32

void sb_sha1(const void *data, size_t len, uint8_t out[SB_SHA1_LEN]);
void sb_sha256(const void *data, size_t len, uint8_t out[SB_SHA256_LEN]);
/* HMAC-SHA256 over the concatenation of two parts (the second may be NULL). */
void sb_hmac_sha256(const void *key, size_t keylen, const void *d1, size_t l1, const void *d2,
                    size_t l2, uint8_t out[SB_SHA256_LEN]);

/* HMAC-SHA1 (webhook providers that still use it, e.g. Vercel). */
void sb_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[SB_SHA1_LEN]);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void sb_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes 2*outlen hex chars (either case). Returns bytes written or -1. */
/* Value of one hex digit (either case), or -1. */
int sb_hex_digit(char c);
int sb_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t outcap);

/* Standard base64 (with or without padding). Returns bytes written, or -1
 * on bad input or when the result does not fit. */
int sb_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap);

/* Hex SHA-1 of a string: the Inngest step id hash. out: 41 bytes. */
void sb_sha1_hex(const char *s, size_t len, char out[41]);

/* Cryptographically random bytes (getrandom). 0 ok, SB_EIO. */
int sb_random_bytes(void *out, size_t len);
/* Random bytes from a per-thread buffer refilled from getrandom (one system
 * call per 512 bytes): for ids and jitter, never for keys. */
void sb_random_fast(void *out, size_t len);
/* Uniform random integer in [0, bound) (bound > 0), from sb_random_fast. */
uint64_t sb_random_below(uint64_t bound);

/* Constant-time comparison of two equal-length buffers. */
int sb_ct_equal(const void *a, const void *b, size_t len);

#endif
