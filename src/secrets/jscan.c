/* jscan.c - the strict JSON scanner of the secrets protocol (declared in
 * proto.h): walks one request line field by field, unescapes strings into a
 * caller's buffer (guarded memory for values) and reads integers, so that a
 * secret value never passes through ordinary heap memory (see proto.c for
 * the wire format and why not jansson). Depth, sizes and UTF-8 are checked,
 * and member names are held to the untrusted-JSON envelope (at most 64
 * bytes, no \u0000); any other JSON we receive (answers parsed by jansson) is
 * held to the envelope's depth first (sb_json_check_depth, common/json.h). A fuzz target
 * (tests/fuzz/fuzz_secrets_proto.c) drives it. */
#include "secrets/proto.h"
#include "common/crypto.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- JSON scanner -------------------------------------------------------- */

struct scan {
    const char *start, *p, *end;
    secrets_json_field_fn fn;
    void *ctx;
    struct sb_err *err;
};

static int scan_fail(struct scan *s, const char *what)
{
    return sb_err_set(s->err, SB_EPROTO, "malformed message at byte %zu: %s",
                      (size_t)(s->p - s->start), what);
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* At '"': finds the closing quote, checking escapes, control characters and
 * UTF-8. Sets raw and rawlen to the bytes between the quotes. */
static int scan_string(struct scan *s, const char **raw, size_t *rawlen)
{
    s->p++; /* opening quote */
    const char *begin = s->p;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c < 0x20)
            return scan_fail(s, "control character in a string");
        if (c == '\\') {
            if (s->end - s->p < 2)
                return scan_fail(s, "unterminated escape");
            char e = s->p[1];
            if (e == 'u') {
                if (s->end - s->p < 6)
                    return scan_fail(s, "short \\u escape");
                for (int i = 2; i < 6; i++)
                    if (sb_hex_digit(s->p[i]) < 0)
                        return scan_fail(s, "bad \\u escape");
                s->p += 6;
                continue;
            }
            if (e == '\0' || !strchr("\"\\/bfnrt", e))
                return scan_fail(s, "bad escape");
            s->p += 2;
            continue;
        }
        s->p++;
    }
    if (s->p >= s->end)
        return scan_fail(s, "unterminated string");
    *raw = begin;
    *rawlen = (size_t)(s->p - begin);
    s->p++; /* closing quote */
    if (!secrets_utf8_valid(begin, *rawlen))
        return sb_err_set(s->err, SB_EPROTO, "malformed message: a string is not valid UTF-8");
    return 0;
}

static int scan_number(struct scan *s)
{
    const char *p = s->p;
    if (p < s->end && *p == '-')
        p++;
    if (p >= s->end || !(*p >= '0' && *p <= '9'))
        return scan_fail(s, "bad number");
    if (*p == '0')
        p++;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    if (p < s->end && *p == '.') {
        p++;
        if (p >= s->end || !(*p >= '0' && *p <= '9'))
            return scan_fail(s, "bad number");
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || !(*p >= '0' && *p <= '9'))
            return scan_fail(s, "bad number");
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return 0;
}

static int scan_literal(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return scan_fail(s, "unexpected character");
    s->p += n;
    return 0;
}

/* Decodes a member name after prefix ("" or a parent's name) into key:
 * "parent.name". Member names are held to the envelope's limits: at most
 * SECRETS_JSON_KEY_MAX bytes, and no \u0000 (a name must never be cut short
 * at a NUL and then match another). */
static int member_name(struct scan *s, const char *prefix, const char *kraw, size_t krawlen,
                       char key[SECRETS_JSON_KEY_MAX * 2 + 2])
{
    size_t plen = strlen(prefix); /* a name this function produced: <= the maximum */
    if (plen) {
        memcpy(key, prefix, plen);
        key[plen++] = '.';
    }
    int rc = secrets_json_unescape(kraw, krawlen, key + plen, SECRETS_JSON_KEY_MAX + 1, NULL);
    if (rc == SB_ETOOBIG)
        return sb_err_set(s->err, SB_EPROTO,
                          "malformed message: a member name is longer than %d bytes",
                          SECRETS_JSON_KEY_MAX);
    if (rc)
        return sb_err_set(s->err, SB_EPROTO, "malformed message: a member name holds %s",
                          secrets_json_raw_has_nul(kraw, krawlen) ? "\\u0000 (NUL)"
                                                                  : "an unpaired surrogate escape");
    return 0;
}

/* At '{'. prefix: "" at the top level, else the member name of this object. */
static int scan_object(struct scan *s, const char *prefix, int depth)
{
    s->p++; /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"')
            return scan_fail(s, "expected a member name");
        const char *kraw;
        size_t krawlen;
        int rc = scan_string(s, &kraw, &krawlen);
        if (rc)
            return rc;
        char key[SECRETS_JSON_KEY_MAX * 2 + 2];
        if ((rc = member_name(s, prefix, kraw, krawlen, key)))
            return rc;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return scan_fail(s, "expected ':'");
        s->p++;
        skip_ws(s);
        if (s->p >= s->end)
            return scan_fail(s, "expected a value");
        const char *vstart = s->p;
        enum secrets_jtype t;
        const char *raw = NULL;
        size_t rawlen = 0;
        switch (*s->p) {
        case '{':
            if (depth >= 2)
                return scan_fail(s, "objects nest deeper than the two levels of this protocol");
            if ((rc = scan_object(s, key, depth + 1)))
                return rc;
            goto next;
        case '[': return scan_fail(s, "arrays are not part of this protocol");
        case '"':
            if ((rc = scan_string(s, &raw, &rawlen)))
                return rc;
            t = SECRETS_J_STRING;
            break;
        case 't':
            if ((rc = scan_literal(s, "true")))
                return rc;
            t = SECRETS_J_TRUE;
            break;
        case 'f':
            if ((rc = scan_literal(s, "false")))
                return rc;
            t = SECRETS_J_FALSE;
            break;
        case 'n':
            if ((rc = scan_literal(s, "null")))
                return rc;
            t = SECRETS_J_NULL;
            break;
        default:
            if ((rc = scan_number(s)))
                return rc;
            t = SECRETS_J_NUMBER;
            raw = vstart;
            rawlen = (size_t)(s->p - vstart);
        }
        if (s->fn && (rc = s->fn(s->ctx, key, t, raw, rawlen)))
            return rc;
    next:
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        return scan_fail(s, "expected ',' or '}'");
    }
}

int secrets_json_scan(const char *text, size_t len, secrets_json_field_fn fn, void *ctx,
                      struct sb_err *err)
{
    struct scan s = { text, text, text + len, fn, ctx, err };
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return scan_fail(&s, "expected a JSON object");
    int rc = scan_object(&s, "", 1);
    if (rc)
        return rc;
    skip_ws(&s);
    if (s.p != s.end)
        return scan_fail(&s, "text after the object");
    return 0;
}

static size_t utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(const char *p, const char *end, uint32_t *cp)
{
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = sb_hex_digit(p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *cp = v;
    return 0;
}

int secrets_json_unescape(const char *raw, size_t rawlen, char *out, size_t cap, size_t *outlen)
{
    const char *p = raw, *end = raw + rawlen;
    size_t n = 0;
    int rc = 0;
    if (cap == 0)
        return SB_ETOOBIG;
    while (p < end) {
        char tmp[4];
        const char *src = p;
        size_t k = 1;
        if (*p == '\\') {
            if (end - p < 2) {
                rc = SB_EINVAL;
                break;
            }
            char e = p[1];
            p += 2;
            src = tmp;
            switch (e) {
            case '"':
            case '\\':
            case '/': tmp[0] = e; break;
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (hex4(p, end, &cp)) {
                    rc = SB_EINVAL;
                    goto done;
                }
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) ||
                        lo < 0xdc00 || lo > 0xdfff) {
                        rc = SB_EINVAL;
                        goto done;
                    }
                    p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                    rc = SB_EINVAL;
                    goto done;
                }
                k = utf8_put(cp, tmp);
                break;
            }
            default: rc = SB_EINVAL; goto done;
            }
        } else {
            p++;
        }
        if (n + k >= cap) {
            rc = SB_ETOOBIG;
            break;
        }
        memcpy(out + n, src, k);
        n += k;
        sodium_memzero(tmp, sizeof tmp);
    }
done:
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return rc;
}

bool secrets_json_int(const char *raw, size_t rawlen, int64_t *out)
{
    const char *p = raw, *end = raw + rawlen;
    bool neg = false;
    if (p < end && *p == '-')
        neg = true, p++;
    if (p >= end || (end - p) > 19)
        return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

bool secrets_json_raw_has_nul(const char *raw, size_t rawlen)
{
    for (size_t i = 0; i + 1 < rawlen; i++) {
        if (raw[i] != '\\')
            continue;
        if (raw[i + 1] == 'u' && rawlen - i >= 6 && memcmp(raw + i + 2, "0000", 4) == 0)
            return true;
        i++; /* skip the escaped character: in "\\\\u0000" the backslash is the one escaped */
    }
    return false;
}

