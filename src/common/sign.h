/* sign.h - Inngest request signing and signing-key handling.
 *
 * A signing key looks like "signkey-<env>-<hex>". The HMAC key is the <hex>
 * part used as ASCII bytes (not decoded). A request signature header is
 * "t=<unix seconds>&s=<hex HMAC-SHA256(body || decimal t)>". The "hashed" form
 * of a key, which SDKs send as their bearer token, is
 * "signkey-<env>-" + hex(SHA-256(hex-decoded <hex>)). */
#ifndef SB_SIGN_H
#define SB_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SB_SIGKEY_MAX 256

struct sb_signing_key {
    char plain[SB_SIGKEY_MAX];  /* as configured */
    char hashed[SB_SIGKEY_MAX]; /* signkey-<env>-<sha256 hex> */
    const char *hmac_key;       /* points into plain: the part after the prefix */
    size_t hmac_key_len;
};

/* Parses and derives both forms. A key without the "signkey-<env>-" prefix
 * is accepted as a bare hex key. SB_EINVAL when the hex part is not hex. */
int sb_signing_key_init(struct sb_signing_key *k, const char *key, struct sb_err *err);

/* Writes "t=<now_s>&s=<hex>" for body into out (>= 96 bytes). */
void sb_sign_body(const struct sb_signing_key *k, const void *body, size_t len, int64_t now_s,
                  char *out, size_t outsz);

/* Verifies header against body: 0 ok; SB_EAUTH (bad/missing signature or
 * timestamp outside +-max_skew_s) with err filled. */
int sb_sign_verify(const struct sb_signing_key *k, const char *header, const void *body, size_t len,
                   int64_t now_s, int64_t max_skew_s, struct sb_err *err);

/* True when bearer (the token after "Bearer ") equals the plain or the
 * hashed form of k (constant time). */
int sb_signing_key_matches_bearer(const struct sb_signing_key *k, const char *bearer);

#endif
