/* proto.c - the secrets wire protocol (see proto.h): guarded buffers,
 * validation, and request parsing/encoding (the JSON scanner it parses with
 * is jscan.c).
 *
 * Wire format (version 1). SOCK_STREAM over a Unix socket; each way, one JSON
 * object per line, UTF-8, terminated by "\n" (a "\r" before it is tolerated).
 * A request line is at most SECRETS_REQUEST_MAX bytes, an answer line at most
 * SECRETS_RESPONSE_MAX. The client sends one request and reads one answer;
 * the daemon also accepts several requests in sequence on one connection and
 * answers them in order.
 *
 *   request:  {"v":1,"op":OP, ...fields}
 *     status                                      -> {ok, daemon, pid, store, socket,
 *                                                     secrets, active_leases, uptime_s, version}
 *     add     name, value                         -> {ok, name, created}
 *     lease   name, [ttl (s)], [client_id]        -> {ok, lease_id, secret_name, value,
 *                                                     expires_at, ttl, client_id}
 *     revoke  lease_id                            -> {ok, lease_id}
 *     revoke_all                                  -> {ok, revoked}
 *     leases                                      -> {ok, leases: [{lease_id, secret_name,
 *                                                     client_id, created_at, expires_at, ttl}]}
 *     list                                        -> {ok, secrets: [{name, created_at,
 *                                                     updated_at, active_leases}]}
 *     rm      name                                -> {ok, name, revoked_leases}
 *     audit   [tail]                              -> {ok, entries: [audit objects]}
 *   every op also takes an optional client_id (recorded in the audit trail).
 *   failure:  {"ok":false,"error":{"code":CODE,"message":TEXT}}
 *     CODE: NOT_FOUND, BAD_REQUEST, TOO_LARGE, UNAUTHORIZED, PROTOCOL, IO, BUSY,
 *           EXISTS, UNAVAILABLE, STORE, CONFIG, TIMEOUT, CONFLICT, NO_MEMORY, INTERNAL
 *   Times (expires_at, created_at, ...) are ISO-8601 UTC strings with
 *   milliseconds ("2026-11-27T17:00:00.000Z"); ttl is whole seconds.
 *
 * Requests are parsed by a scanner of our own instead of jansson so that a
 * value is decoded straight from the guarded line buffer into guarded memory
 * and never sits in ordinary heap memory (jansson would copy it twice). The
 * answers that carry no value (everything but lease) are built and parsed
 * with jansson. */
#include "secrets/proto.h"
#include "common/clock.h"
#include "common/ulid.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* ---- guarded buffer ------------------------------------------------------ */

int secrets_gbuf_reserve(struct secrets_gbuf *b, size_t extra)
{
    size_t need = b->len + extra + 1; /* + NUL */
    if (extra > SIZE_MAX / 2 || (b->max && need > b->max + 1))
        return SB_ETOOBIG;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    char *p = sodium_malloc(cap);
    if (!p)
        return SB_ENOMEM;
    if (b->data) {
        memcpy(p, b->data, b->len + 1);
        sodium_free(b->data); /* wipes */
    } else {
        p[0] = '\0';
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int secrets_gbuf_append(struct secrets_gbuf *b, const void *p, size_t n)
{
    int rc = secrets_gbuf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int secrets_gbuf_puts(struct secrets_gbuf *b, const char *s)
{
    return secrets_gbuf_append(b, s, strlen(s));
}

int secrets_gbuf_json_str(struct secrets_gbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = secrets_gbuf_reserve(b, n + 2);
    if (rc)
        return rc;
    size_t start = b->len; /* to undo a partial append */
    b->data[b->len++] = '"';
    char esc[7];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\', esc[k++] = (char)c;
        } else if (c >= 0x20) {
            esc[k++] = (char)c;
        } else {
            esc[k++] = '\\';
            switch (c) {
            case '\n': esc[k++] = 'n'; break;
            case '\r': esc[k++] = 'r'; break;
            case '\t': esc[k++] = 't'; break;
            case '\b': esc[k++] = 'b'; break;
            case '\f': esc[k++] = 'f'; break;
            default:
                esc[k++] = 'u', esc[k++] = '0', esc[k++] = '0';
                esc[k++] = hex[c >> 4], esc[k++] = hex[c & 15];
            }
        }
        if ((rc = secrets_gbuf_append(b, esc, k))) {
            sodium_memzero(esc, sizeof esc);
            sodium_memzero(b->data + start, b->len - start);
            b->len = start;
            b->data[b->len] = '\0';
            return rc;
        }
    }
    sodium_memzero(esc, sizeof esc);
    return secrets_gbuf_append(b, "\"", 1);
}

void secrets_gbuf_consume(struct secrets_gbuf *b, size_t n)
{
    if (!b->data)
        return;
    if (n > b->len)
        n = b->len;
    memmove(b->data, b->data + n, b->len - n);
    sodium_memzero(b->data + b->len - n, n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void secrets_gbuf_free(struct secrets_gbuf *b)
{
    sodium_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *secrets_guarded_dup(const char *p, size_t n)
{
    char *d = sodium_malloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

void secrets_guarded_free(char *p)
{
    sodium_free(p);
}

/* ---- validation ---------------------------------------------------------- */

static bool charset_valid(const char *s, size_t max, const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return n > 0;
}

bool secrets_name_valid(const char *s)
{
    return s && charset_valid(s, SECRETS_NAME_MAX, "_.-");
}

bool secrets_client_id_valid(const char *s)
{
    return s && charset_valid(s, SECRETS_CLIENT_ID_MAX, "_.:@/+=-");
}

bool secrets_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3, cp = c & 0x07;
        else
            return false;
        if ((size_t)(end - p) <= k)
            return false;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += k + 1;
    }
    return true;
}

int secrets_value_check(const char *v, size_t n, struct sb_err *err)
{
    if (n == 0)
        return sb_err_set(err, SB_EINVAL, "empty value refused");
    if (n > SECRETS_VALUE_MAX)
        return sb_err_set(err, SB_ETOOBIG, "value is %zu bytes; the maximum is %d", n,
                          SECRETS_VALUE_MAX);
    if (memchr(v, '\0', n))
        return sb_err_set(err, SB_EINVAL, "value contains a NUL byte");
    if (!secrets_utf8_valid(v, n))
        return sb_err_set(err, SB_EINVAL, "value is not valid UTF-8");
    return 0;
}

int secrets_ttl_parse(const char *s, int64_t *seconds)
{
    int64_t ms;
    if (!s || sb_duration_parse(s, 1000, &ms) != 0 || ms <= 0 || ms % 1000 != 0)
        return SB_EINVAL;
    *seconds = ms / 1000;
    return 0;
}

/* ---- wire error codes ---------------------------------------------------- */

static const struct {
    int code;
    const char *wire;
} wire_codes[] = {
    { SB_ENOTFOUND, "NOT_FOUND" }, { SB_EINVAL, "BAD_REQUEST" }, { SB_ETOOBIG, "TOO_LARGE" },
    { SB_EAUTH, "UNAUTHORIZED" },  { SB_EPROTO, "PROTOCOL" },    { SB_EIO, "IO" },
    { SB_EBUSY, "BUSY" },          { SB_EEXISTS, "EXISTS" },     { SB_EUNAVAIL, "UNAVAILABLE" },
    { SB_ESTORE, "STORE" },        { SB_ECONFIG, "CONFIG" },     { SB_ETIMEOUT, "TIMEOUT" },
    { SB_ECONFLICT, "CONFLICT" },  { SB_ENOMEM, "NO_MEMORY" },   { SB_EINTERNAL, "INTERNAL" },
};

const char *secrets_wire_code(int code)
{
    for (size_t i = 0; i < sizeof wire_codes / sizeof wire_codes[0]; i++)
        if (wire_codes[i].code == code)
            return wire_codes[i].wire;
    return "INTERNAL";
}

int secrets_wire_decode(const char *wire)
{
    for (size_t i = 0; wire && i < sizeof wire_codes / sizeof wire_codes[0]; i++)
        if (strcmp(wire_codes[i].wire, wire) == 0)
            return wire_codes[i].code;
    return SB_EPROTO;
}

/* ---- requests ------------------------------------------------------------ */

static const char *const op_names[] = {
    [SECRETS_OP_STATUS] = "status",
    [SECRETS_OP_ADD] = "add",
    [SECRETS_OP_LEASE] = "lease",
    [SECRETS_OP_REVOKE] = "revoke",
    [SECRETS_OP_REVOKE_ALL] = "revoke_all",
    [SECRETS_OP_LEASES] = "leases",
    [SECRETS_OP_LIST] = "list",
    [SECRETS_OP_RM] = "rm",
    [SECRETS_OP_AUDIT] = "audit",
};
#define NOPS (sizeof op_names / sizeof op_names[0])

const char *secrets_op_name(enum secrets_op op)
{
    return (size_t)op < NOPS ? op_names[op] : NULL;
}

enum {
    F_V = 1,
    F_OP = 2,
    F_NAME = 4,
    F_VALUE = 8,
    F_TTL = 16,
    F_CLIENT = 32,
    F_LEASE = 64,
    F_TAIL = 128,
};

struct parse_ctx {
    struct secrets_request *req;
    unsigned seen;
    bool op_unknown;
    int bad_code; /* first semantic failure (SB_EINVAL / SB_ETOOBIG), 0 = none */
    char bad_msg[160];
    struct sb_err *err;
};

static void bad(struct parse_ctx *c, int code, const char *msg)
{
    if (!c->bad_code) {
        c->bad_code = code;
        snprintf(c->bad_msg, sizeof c->bad_msg, "%s", msg);
    }
}

/* A text field (name, id) into a fixed buffer. Over-long text is kept
 * truncated for the audit trail; text holding \u0000 is dropped whole, so
 * no shortened name is ever recorded or looked up. */
static int text_field(struct parse_ctx *c, const char *key, enum secrets_jtype t, const char *raw,
                      size_t rawlen, char *out, size_t cap)
{
    if (t != SECRETS_J_STRING)
        return sb_err_set(c->err, SB_EPROTO, "request field '%s' must be a string", key);
    int rc = secrets_json_unescape(raw, rawlen, out, cap, NULL);
    char msg[96];
    if (secrets_json_raw_has_nul(raw, rawlen)) {
        snprintf(msg, sizeof msg, "%s holds \\u0000 (NUL), which no %s may contain", key, key);
        bad(c, SB_EINVAL, msg);
        out[0] = '\0';
    } else if (rc == SB_ETOOBIG) {
        snprintf(msg, sizeof msg, "%s is longer than %zu bytes", key, cap - 1);
        bad(c, SB_EINVAL, msg);
    } else if (rc) {
        snprintf(msg, sizeof msg, "%s holds an invalid escape", key);
        bad(c, SB_EINVAL, msg);
        out[0] = '\0';
    }
    return 0;
}

static int int_field(struct parse_ctx *c, const char *key, enum secrets_jtype t, const char *raw,
                     size_t rawlen, int64_t *out)
{
    if (t != SECRETS_J_NUMBER || !secrets_json_int(raw, rawlen, out))
        return sb_err_set(c->err, SB_EPROTO, "request field '%s' must be an integer", key);
    return 0;
}

static int on_field(void *ctx, const char *key, enum secrets_jtype t, const char *raw,
                    size_t rawlen)
{
    struct parse_ctx *c = ctx;
    struct secrets_request *r = c->req;
    static const struct {
        const char *key;
        unsigned flag;
    } fields[] = { { "v", F_V },
                   { "op", F_OP },
                   { "name", F_NAME },
                   { "value", F_VALUE },
                   { "ttl", F_TTL },
                   { "client_id", F_CLIENT },
                   { "lease_id", F_LEASE },
                   { "tail", F_TAIL } };
    unsigned flag = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(fields[i].key, key) == 0)
            flag = fields[i].flag;
    if (!flag) {
        /* unknown members are ignored, within the envelope's string limit */
        if (t == SECRETS_J_STRING && rawlen > SECRETS_STRING_MAX) {
            char msg[160];
            snprintf(msg, sizeof msg, "request field '%.64s' is longer than %d bytes", key,
                     SECRETS_STRING_MAX);
            bad(c, SB_ETOOBIG, msg);
        }
        return 0;
    }
    if (c->seen & flag)
        return sb_err_set(c->err, SB_EPROTO, "request field '%s' appears twice", key);
    c->seen |= flag;
    switch (flag) {
    case F_V: {
        int64_t v;
        int rc = int_field(c, key, t, raw, rawlen, &v);
        if (rc)
            return rc;
        if (v != SECRETS_PROTO_VERSION)
            return sb_err_set(c->err, SB_EPROTO, "protocol version %lld is not supported (1 is)",
                              (long long)v);
        return 0;
    }
    case F_OP: {
        char op[16];
        if (t != SECRETS_J_STRING)
            return sb_err_set(c->err, SB_EPROTO, "request field 'op' must be a string");
        c->op_unknown = true;
        if (secrets_json_unescape(raw, rawlen, op, sizeof op, NULL) == 0)
            for (size_t i = 1; i < NOPS; i++)
                if (strcmp(op, op_names[i]) == 0)
                    r->op = (enum secrets_op)i, c->op_unknown = false;
        return 0;
    }
    case F_NAME: return text_field(c, key, t, raw, rawlen, r->name, sizeof r->name);
    case F_CLIENT: return text_field(c, key, t, raw, rawlen, r->client_id, sizeof r->client_id);
    case F_LEASE: return text_field(c, key, t, raw, rawlen, r->lease_id, sizeof r->lease_id);
    case F_TTL: r->has_ttl = true; return int_field(c, key, t, raw, rawlen, &r->ttl);
    case F_TAIL: return int_field(c, key, t, raw, rawlen, &r->tail);
    case F_VALUE: {
        if (t != SECRETS_J_STRING)
            return sb_err_set(c->err, SB_EPROTO, "request field 'value' must be a string");
        /* decoded text is never longer than its escaped form */
        r->value = sodium_malloc(rawlen + 1);
        if (!r->value)
            return sb_err_set(c->err, SB_ENOMEM, "out of memory for the value");
        int rc = secrets_json_unescape(raw, rawlen, r->value, rawlen + 1, &r->value_len);
        if (rc)
            bad(c, SB_EINVAL, "value holds \\u0000 or an unpaired surrogate escape");
        return 0;
    }
    }
    return 0;
}

int secrets_request_parse(const char *line, size_t len, struct secrets_request *req,
                          struct sb_err *err)
{
    memset(req, 0, sizeof *req);
    struct parse_ctx c = { .req = req, .err = err };
    int rc = secrets_json_scan(line, len, on_field, &c, err);
    if (rc)
        goto fail;
    rc = SB_EPROTO;
    if (!(c.seen & F_OP)) {
        sb_err_set(err, rc, "request has no 'op'");
        goto fail;
    }
    if (c.op_unknown) {
        sb_err_set(err, rc,
                   "unknown op (known: status, add, lease, revoke, revoke_all, leases, "
                   "list, rm, audit)");
        goto fail;
    }
    enum secrets_op op = req->op;
    bool uses_name = op == SECRETS_OP_ADD || op == SECRETS_OP_LEASE || op == SECRETS_OP_RM;
    if (uses_name && !(c.seen & F_NAME)) {
        sb_err_set(err, rc, "op %s needs 'name'", op_names[op]);
        goto fail;
    }
    if (op == SECRETS_OP_ADD && !(c.seen & F_VALUE)) {
        sb_err_set(err, rc, "op add needs 'value'");
        goto fail;
    }
    if (op == SECRETS_OP_REVOKE && !(c.seen & F_LEASE)) {
        sb_err_set(err, rc, "op revoke needs 'lease_id'");
        goto fail;
    }
    if (op != SECRETS_OP_ADD && req->value) {
        secrets_guarded_free(req->value); /* only add carries a value */
        req->value = NULL;
        req->value_len = 0;
    }
    /* well-formed: now the field values */
    if (c.bad_code) {
        rc = sb_err_set(err, c.bad_code, "%s", c.bad_msg);
    } else if (uses_name && !secrets_name_valid(req->name)) {
        rc = sb_err_set(err, SB_EINVAL,
                        "invalid secret name (allowed: letters, digits, '_', '.', '-'; "
                        "1 to %d bytes)",
                        SECRETS_NAME_MAX);
    } else if ((c.seen & F_CLIENT) && !secrets_client_id_valid(req->client_id)) {
        rc = sb_err_set(err, SB_EINVAL,
                        "invalid client id (allowed: letters, digits and _.:@/+=-; 1 to %d "
                        "bytes)",
                        SECRETS_CLIENT_ID_MAX);
    } else if (op == SECRETS_OP_REVOKE && !sb_ulid_valid(req->lease_id)) {
        rc = sb_err_set(err, SB_EINVAL, "invalid lease id (a lease id is a 26-character ULID)");
    } else if (op == SECRETS_OP_ADD &&
               (rc = secrets_value_check(req->value, req->value_len, err)) != 0) {
        /* err filled */
    } else if (op == SECRETS_OP_LEASE && req->has_ttl && req->ttl <= 0) {
        rc = sb_err_set(err, SB_EINVAL, "ttl must be a positive number of seconds");
    } else if (op == SECRETS_OP_AUDIT && (c.seen & F_TAIL) &&
               (req->tail < 1 || req->tail > SECRETS_AUDIT_TAIL_MAX)) {
        rc = sb_err_set(err, SB_EINVAL, "tail must be 1..%d", SECRETS_AUDIT_TAIL_MAX);
    } else {
        return 0;
    }
    /* a refused field: keep op and text for the audit trail, drop the value */
    secrets_guarded_free(req->value);
    req->value = NULL;
    req->value_len = 0;
    return rc;
fail:
    secrets_request_clear(req);
    return rc;
}

void secrets_request_clear(struct secrets_request *req)
{
    secrets_guarded_free(req->value);
    sodium_memzero(req, sizeof *req);
}

static int put_str_member(struct secrets_gbuf *b, const char *key, const char *v, size_t n)
{
    int rc;
    if ((rc = secrets_gbuf_puts(b, ",\"")) || (rc = secrets_gbuf_puts(b, key)) ||
        (rc = secrets_gbuf_puts(b, "\":")))
        return rc;
    return secrets_gbuf_json_str(b, v, n);
}

static int put_int_member(struct secrets_gbuf *b, const char *key, int64_t v)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, ",\"%s\":%lld", key, (long long)v);
    return secrets_gbuf_puts(b, tmp);
}

int secrets_request_encode(const struct secrets_request *req, struct secrets_gbuf *out)
{
    const char *op = secrets_op_name(req->op);
    if (!op)
        return SB_EINVAL;
    size_t start = out->len;
    int rc = secrets_gbuf_puts(out, "{\"v\":1");
    if (!rc)
        rc = put_str_member(out, "op", op, strlen(op));
    if (!rc &&
        (req->op == SECRETS_OP_ADD || req->op == SECRETS_OP_LEASE || req->op == SECRETS_OP_RM))
        rc = put_str_member(out, "name", req->name, strlen(req->name));
    if (!rc && req->op == SECRETS_OP_ADD)
        rc = put_str_member(out, "value", req->value ? req->value : "", req->value_len);
    if (!rc && req->op == SECRETS_OP_LEASE && req->has_ttl)
        rc = put_int_member(out, "ttl", req->ttl);
    if (!rc && req->op == SECRETS_OP_REVOKE)
        rc = put_str_member(out, "lease_id", req->lease_id, strlen(req->lease_id));
    if (!rc && req->op == SECRETS_OP_AUDIT && req->tail > 0)
        rc = put_int_member(out, "tail", req->tail);
    if (!rc && req->client_id[0])
        rc = put_str_member(out, "client_id", req->client_id, strlen(req->client_id));
    if (!rc)
        rc = secrets_gbuf_puts(out, "}\n");
    if (rc) {
        sodium_memzero(out->data + start, out->len - start);
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
