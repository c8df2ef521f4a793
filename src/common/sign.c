/* sign.c - Inngest signatures and signing-key forms (see sign.h). */
#include "sign.h"
#include "crypto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t sb_signing_key_prefix_len(const char *s)
{
    if (strncmp(s, "signkey-", 8) != 0)
        return 0;
    size_t n = 8;
    while (isalnum((unsigned char)s[n]) || s[n] == '_')
        n++;
    return n > 8 && s[n] == '-' ? n + 1 : 0;
}

int sb_signing_key_init(struct sb_signing_key *k, const char *key, struct sb_err *err)
{
    memset(k, 0, sizeof *k);
    size_t len = strlen(key);
    if (len == 0 || len >= SB_SIGKEY_MAX)
        return sb_err_set(err, SB_EINVAL, "signing key must be 1..%d characters",
                          SB_SIGKEY_MAX - 1);
    memcpy(k->plain, key, len + 1);
    size_t prefix_len = sb_signing_key_prefix_len(key);
    if (prefix_len == 0 && strncmp(key, "signkey-", 8) == 0)
        return sb_err_set(err, SB_EINVAL,
                          "signing key must look like signkey-<env>-<hex> or be bare hex");
    const char *hex = k->plain + prefix_len;
    size_t hexlen = len - prefix_len;
    uint8_t raw[SB_SIGKEY_MAX / 2];
    int n = sb_hex_decode(hex, hexlen, raw, sizeof raw);
    if (n <= 0)
        return sb_err_set(err, SB_EINVAL,
                          "signing key: the part after the prefix must be an even number of "
                          "hex digits");
    uint8_t digest[SB_SHA256_LEN];
    sb_sha256(raw, (size_t)n, digest);
    char dhex[2 * SB_SHA256_LEN + 1];
    sb_hex_encode(digest, SB_SHA256_LEN, dhex);
    snprintf(k->hashed, sizeof k->hashed, "%.*s%s", (int)prefix_len, k->plain, dhex);
    k->hmac_key = hex;
    k->hmac_key_len = hexlen;
    k->prefix_len = prefix_len;
    return 0;
}

void sb_sign_body(const struct sb_signing_key *k, const void *body, size_t len, int64_t now_s,
                  char *out, size_t outsz)
{
    char ts[24];
    int tl = snprintf(ts, sizeof ts, "%lld", (long long)now_s);
    uint8_t mac[SB_SHA256_LEN];
    sb_hmac_sha256(k->hmac_key, k->hmac_key_len, body, len, ts, (size_t)tl, mac);
    char hex[2 * SB_SHA256_LEN + 1];
    sb_hex_encode(mac, SB_SHA256_LEN, hex);
    snprintf(out, outsz, "t=%s&s=%s", ts, hex);
}

int sb_sign_verify(const struct sb_signing_key *k, const char *header, const void *body, size_t len,
                   int64_t now_s, int64_t max_skew_s, struct sb_err *err)
{
    if (!header || !*header)
        return sb_err_set(err, SB_EAUTH, "missing X-Inngest-Signature");
    const char *t = NULL, *s = NULL;
    size_t tlen = 0, slen = 0;
    for (const char *p = header; *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > 2 && p[1] == '=') {
            if (p[0] == 't')
                t = p + 2, tlen = n - 2;
            else if (p[0] == 's')
                s = p + 2, slen = n - 2;
        }
        p += n + (amp ? 1 : 0);
    }
    if (!t || !s || tlen == 0 || tlen > 20 || slen != 2 * SB_SHA256_LEN)
        return sb_err_set(err, SB_EAUTH, "malformed X-Inngest-Signature");
    char ts[24];
    memcpy(ts, t, tlen);
    ts[tlen] = '\0';
    char *end;
    long long tv = strtoll(ts, &end, 10);
    if (*end != '\0')
        return sb_err_set(err, SB_EAUTH, "malformed signature timestamp");
    if (llabs(now_s - tv) > max_skew_s)
        return sb_err_set(err, SB_EAUTH, "signature timestamp is %llds away from this clock",
                          (long long)(now_s - tv));
    uint8_t mac[SB_SHA256_LEN];
    sb_hmac_sha256(k->hmac_key, k->hmac_key_len, body, len, ts, tlen, mac);
    char hex[2 * SB_SHA256_LEN + 1];
    sb_hex_encode(mac, SB_SHA256_LEN, hex);
    if (!sb_ct_equal(hex, s, slen))
        return sb_err_set(err, SB_EAUTH, "signature does not match");
    return 0;
}

const struct sb_signing_key *sb_sign_verify_any(const struct sb_signing_key *primary,
                                                const struct sb_signing_key *fallback,
                                                const char *header, const void *body, size_t len,
                                                int64_t now_s, int64_t max_skew_s,
                                                struct sb_err *err)
{
    if (sb_sign_verify(primary, header, body, len, now_s, max_skew_s, err) == 0)
        return primary;
    if (!fallback)
        return NULL;
    struct sb_err ferr = { 0 };
    if (sb_sign_verify(fallback, header, body, len, now_s, max_skew_s, &ferr) == 0)
        return fallback;
    if (err && strcmp(ferr.msg, "signature does not match") == 0)
        sb_err_set(err, SB_EAUTH, "signature matches neither the signing key nor its fallback");
    return NULL;
}

/* Compares n bytes of a with b when b is n bytes long (constant time in n). */
static int same(const char *a, size_t n, const char *b)
{
    return strlen(b) == n && sb_ct_equal(a, b, n);
}

int sb_signing_key_matches_bearer(const struct sb_signing_key *k, const char *bearer)
{
    const char *tok = bearer + sb_signing_key_prefix_len(bearer);
    size_t tl = strlen(tok);
    if (tl == 0)
        return 0;
    int ok = 0;
    ok |= same(tok, tl, k->plain + k->prefix_len);
    ok |= same(tok, tl, k->hashed + k->prefix_len);
    return ok;
}
