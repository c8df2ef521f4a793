/* sign.h - Inngest request signing and signing-key handling.
 *
 * A signing key is "signkey-<env>-<hex>" or just "<hex>" (what
 * `openssl rand -hex 32` prints); <env> is a word of letters, digits and '_'.
 * The HMAC key is the <hex> part used as ASCII bytes (not decoded), so both
 * forms of one key sign alike. A request signature header is
 * "t=<unix seconds>&s=<hex HMAC-SHA256(body || decimal t)>". The "hashed"
 * form of a key, which SDKs send as their bearer token, is the same prefix +
 * hex(SHA-256(hex-decoded <hex>)). A bearer is compared on the part after
 * its own optional prefix, against the plain and the hashed <hex>, as
 * Inngest's server does: the prefix is a label, not part of the secret. */
#ifndef SB_SIGN_H
#define SB_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SB_SIGKEY_MAX 256

struct sb_signing_key {
    char plain[SB_SIGKEY_MAX];  /* as configured */
    char hashed[SB_SIGKEY_MAX]; /* <prefix><sha256 hex>: what an SDK sends as its bearer */
    const char *hmac_key;       /* points into plain: the part after the prefix */
    size_t hmac_key_len;
    size_t prefix_len; /* length of "signkey-<env>-" in plain and hashed (0 = bare) */
};

/* Parses and derives both forms. A key without the "signkey-<env>-" prefix
 * is accepted as a bare hex key. SB_EINVAL when the hex part is not hex. */
int sb_signing_key_init(struct sb_signing_key *k, const char *key, struct sb_err *err);

/* Length of a leading "signkey-<env>-" in s (0 when there is none). */
size_t sb_signing_key_prefix_len(const char *s);

/* Writes "t=<now_s>&s=<hex>" for body into out (>= 96 bytes). */
void sb_sign_body(const struct sb_signing_key *k, const void *body, size_t len, int64_t now_s,
                  char *out, size_t outsz);

/* Verifies header against body: 0 ok; SB_EAUTH (bad/missing signature or
 * timestamp outside +-max_skew_s) with err filled. */
int sb_sign_verify(const struct sb_signing_key *k, const char *header, const void *body, size_t len,
                   int64_t now_s, int64_t max_skew_s, struct sb_err *err);

/* sb_sign_verify with primary, then, when that fails and fallback is not
 * NULL, with fallback (a key rotation: the server may still sign with the
 * old key, or already with the new one). Returns the key that verified (an
 * answer is signed with it), or NULL with err filled. */
const struct sb_signing_key *sb_sign_verify_any(const struct sb_signing_key *primary,
                                                const struct sb_signing_key *fallback,
                                                const char *header, const void *body, size_t len,
                                                int64_t now_s, int64_t max_skew_s,
                                                struct sb_err *err);

/* True when bearer (the token after "Bearer "), without its optional
 * "signkey-<env>-" prefix, equals k's hex part or its hashed form (constant
 * time). Any prefix on either side is ignored. */
int sb_signing_key_matches_bearer(const struct sb_signing_key *k, const char *bearer);

#endif
