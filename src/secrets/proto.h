/* proto.h - the secrets wire protocol, shared by the daemon and the client
 * (client.o + proto.o are all talon links, so nothing here may depend on the
 * daemon's files).
 *
 * Owns: the request shape and its parser (untrusted input: fuzzed by
 * tests/fuzz/fuzz_secrets_proto.c), the request encoder, a small strict JSON
 * scanner that never copies string values into unguarded memory, the guarded
 * buffer (sodium_malloc'd, wiped on every release) that carries request and
 * answer lines, name/value/client-id/TTL validation, and the wire error codes.
 * The format itself is specified at the top of proto.c and in
 * docs/internals/secrets.md. */
#ifndef SECRETS_PROTO_H
#define SECRETS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SECRETS_PROTO_VERSION 1
#define SECRETS_NAME_MAX 128      /* bytes of a secret name */
#define SECRETS_CLIENT_ID_MAX 127 /* bytes of a client id */
#define SECRETS_VALUE_MAX 65536   /* bytes of a secret value */
/* A request line, newline included: a value whose every byte needs a
 * six-byte escape still fits. */
#define SECRETS_REQUEST_MAX (SECRETS_VALUE_MAX * 6 + 4096)
/* An answer line (the longest is `audit` with 10000 entries). */
#define SECRETS_RESPONSE_MAX (16u << 20)
#define SECRETS_AUDIT_TAIL_MAX 10000

/* The envelope for untrusted JSON, as this protocol applies it. Any JSON we
 * receive nests at most SECRETS_JSON_DEPTH_MAX levels (a request far less:
 * the scanner allows two levels of objects and no arrays); member names are
 * at most SECRETS_JSON_KEY_MAX bytes and never hold \u0000; a request string
 * other than a value is at most SECRETS_STRING_MAX bytes as sent (names and
 * ids have their own, smaller maxima above, and may not hold \u0000 either). */
#define SECRETS_JSON_DEPTH_MAX 64
#define SECRETS_JSON_KEY_MAX 64
#define SECRETS_STRING_MAX 1024

/* ---- guarded buffer ------------------------------------------------------ */

/* A growable byte buffer in sodium_malloc memory (mlocked, excluded from core
 * dumps, guard pages around it). Growing copies into a new guarded block and
 * wipes the old one; free wipes. data is NUL-terminated when non-NULL. max is
 * a hard cap (SB_ETOOBIG beyond it). */
struct secrets_gbuf {
    char *data;
    size_t len, cap, max;
};
#define SECRETS_GBUF_INIT(maxbytes) \
    {                               \
        NULL, 0, 0, (maxbytes)      \
    }

int secrets_gbuf_reserve(struct secrets_gbuf *b, size_t extra);
int secrets_gbuf_append(struct secrets_gbuf *b, const void *p, size_t n);
int secrets_gbuf_puts(struct secrets_gbuf *b, const char *s);
/* Appends s (n bytes) as a quoted, escaped JSON string. */
int secrets_gbuf_json_str(struct secrets_gbuf *b, const char *s, size_t n);
/* Drops the first n bytes (wiping what moved), e.g. a consumed line. */
void secrets_gbuf_consume(struct secrets_gbuf *b, size_t n);
/* Wipes and releases the memory; the buffer can be reused. */
void secrets_gbuf_free(struct secrets_gbuf *b);

/* A copy of n bytes in sodium_malloc memory, NUL-terminated; NULL on
 * allocation failure. Release with secrets_guarded_free. */
char *secrets_guarded_dup(const char *p, size_t n);
void secrets_guarded_free(char *p); /* NULL is fine; wipes (sodium_free does) */

/* ---- validation ---------------------------------------------------------- */

/* [A-Za-z0-9_.-]{1,128} */
bool secrets_name_valid(const char *s);
/* [A-Za-z0-9_.:@/+=-]{1,127} */
bool secrets_client_id_valid(const char *s);
/* 1..SECRETS_VALUE_MAX bytes of valid UTF-8 without NUL. Fills err (SB_EINVAL
 * or SB_ETOOBIG) with a message that never quotes the value. */
int secrets_value_check(const char *v, size_t n, struct sb_err *err);
/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool secrets_utf8_valid(const char *s, size_t n);
/* TTL text: "30s", "20m", "1h", "24h", "1h30m", or bare seconds ("90").
 * Whole seconds, > 0. Range (<= 24 h) is the daemon's decision, not checked
 * here. 0 or SB_EINVAL. */
int secrets_ttl_parse(const char *s, int64_t *seconds);

/* ---- wire error codes ---------------------------------------------------- */

/* "NOT_FOUND" for SB_ENOTFOUND, ...; "INTERNAL" for anything unknown. */
const char *secrets_wire_code(int code);
/* The inverse; SB_EPROTO for a code this client does not know. */
int secrets_wire_decode(const char *wire);

/* ---- JSON scanner -------------------------------------------------------- */

enum secrets_jtype {
    SECRETS_J_STRING,
    SECRETS_J_NUMBER,
    SECRETS_J_TRUE,
    SECRETS_J_FALSE,
    SECRETS_J_NULL
};

/* Called for each scalar member. key: the member name, dotted for a member of
 * a nested object ("error.code"). raw: for a string, the bytes between the
 * quotes, escapes still in (decode with secrets_json_unescape); for a number,
 * its text. A non-zero return stops the scan and is returned. */
typedef int (*secrets_json_field_fn)(void *ctx, const char *key, enum secrets_jtype type,
                                     const char *raw, size_t rawlen);

/* Scans text (len bytes, no NUL needed) that must be exactly one JSON object,
 * whose members are scalars or objects of scalars (two levels; arrays are not
 * part of this protocol), with optional surrounding whitespace. Strings must
 * be valid UTF-8 with valid escapes; member names at most
 * SECRETS_JSON_KEY_MAX bytes decoded, without \u0000. Every member is
 * reported, known or not. Returns 0, the callback's code, or SB_EPROTO with
 * err saying where the text is malformed. Never allocates. */
int secrets_json_scan(const char *text, size_t len, secrets_json_field_fn fn, void *ctx,
                      struct sb_err *err);
/* Decodes a raw string span (as given to the callback) into out (cap bytes,
 * NUL-terminated, so at most cap - 1 bytes of text); *outlen = decoded bytes.
 * SB_ETOOBIG when it does not fit, SB_EINVAL for \u0000 or an unpaired
 * surrogate escape. */
int secrets_json_unescape(const char *raw, size_t rawlen, char *out, size_t cap, size_t *outlen);
/* A JSON integer (no fraction or exponent) within int64. */
bool secrets_json_int(const char *raw, size_t rawlen, int64_t *out);
/* Whether a raw string span (escapes still in) holds the escape \u0000. */
bool secrets_json_raw_has_nul(const char *raw, size_t rawlen);

/* ---- requests ------------------------------------------------------------ */

enum secrets_op {
    SECRETS_OP_NONE = 0,
    SECRETS_OP_STATUS,
    SECRETS_OP_ADD,
    SECRETS_OP_LEASE,
    SECRETS_OP_REVOKE,
    SECRETS_OP_REVOKE_ALL,
    SECRETS_OP_LEASES,
    SECRETS_OP_LIST,
    SECRETS_OP_RM,
    SECRETS_OP_AUDIT,
};

/* "lease" for SECRETS_OP_LEASE; NULL for NONE/unknown. */
const char *secrets_op_name(enum secrets_op op);

/* One request. Strings are NUL-terminated ("" when absent). value is
 * sodium_malloc'd (NULL when absent) and owned by the request: release with
 * secrets_request_clear. */
struct secrets_request {
    enum secrets_op op;
    char name[SECRETS_NAME_MAX + 1];
    char client_id[SECRETS_CLIENT_ID_MAX + 1];
    char lease_id[64];
    bool has_ttl;
    int64_t ttl; /* seconds, as sent (the daemon checks the range) */
    int64_t tail;
    char *value;
    size_t value_len;
};

/* Parses one request line (without its newline). Untrusted input: any bytes.
 * Returns 0; SB_EPROTO when the line is not a well-formed request (not JSON,
 * unknown op, a field of the wrong type, a missing required field, a
 * duplicate field); SB_EINVAL/SB_ETOOBIG when it is well-formed but a field's
 * value is refused (bad name, empty or oversized value, bad client id or
 * lease id, non-positive ttl or tail, \u0000 in a name or id, a string other
 * than the value longer than SECRETS_STRING_MAX). On SB_EINVAL/SB_ETOOBIG,
 * req->op and the text fields that were valid enough to copy are kept (for
 * the audit trail; an over-long name is truncated, one holding \u0000 is
 * dropped) but value is released. On any failure err says why, never quoting
 * a value. Unknown members are ignored (forward compatibility) within the
 * limits above; "v", when present, must be 1. */
int secrets_request_parse(const char *line, size_t len, struct secrets_request *req,
                          struct sb_err *err);
/* Wipes and releases the value; the struct is zeroed. */
void secrets_request_clear(struct secrets_request *req);
/* Appends req as one line (newline included) to out. Only the fields the op
 * uses are written. SB_ETOOBIG/SB_ENOMEM. */
int secrets_request_encode(const struct secrets_request *req, struct secrets_gbuf *out);

#endif
