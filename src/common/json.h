/* json.h - the one JSON helper set: parsing (jansson), typed getters, and the
 * canonical writer.
 *
 * Parsing follows JavaScript's number model (every number is a double, as the
 * Inngest SDKs see it), so values round-trip through a JS worker unchanged.
 * All JSON that sysbus writes goes through the canonical writer: RFC 8785
 * (JCS) form, i.e. keys sorted by UTF-16 code units, no whitespace, ES number
 * formatting, minimal string escaping. That is the form call requests are
 * signed in, and using it everywhere means one serializer to trust.
 *
 * Ownership: sb_json_parse returns a new reference; getters return borrowed
 * references or copy scalars out. */
#ifndef SB_JSON_H
#define SB_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* Parses len bytes. Returns a new reference, or NULL with err filled
 * (SB_EINVAL, message with line/column). Any top-level value is accepted. */
json_t *sb_json_parse(const char *text, size_t len, struct sb_err *err);
/* The same, but integers stay integers (json_integer_value works on them):
 * for JSON handed to users (the SDK's events and step results) rather than
 * compared or re-signed. */
json_t *sb_json_parse_ints(const char *text, size_t len, struct sb_err *err);

/* Canonical (JCS) serialization of v appended to b. SB_ETOOBIG / SB_ENOMEM /
 * SB_EINVAL (a non-finite number). */
int sb_json_write(struct sb_buf *b, const json_t *v);
/* Returns malloc'd canonical text of v, or NULL on failure. */
char *sb_json_dumps(const json_t *v, size_t *len_out);

/* Low-level writer pieces, for hand-built documents. */
int sb_json_write_str(struct sb_buf *b, const char *s);
int sb_json_write_strn(struct sb_buf *b, const char *s, size_t n);
int sb_json_write_number(struct sb_buf *b, double d);
/* Formats d as ECMAScript's Number.prototype.toString does; out >= 32 bytes. */
void sb_json_format_number(double d, char *out, size_t outsz);
/* Compares two UTF-8 strings by UTF-16 code units (the JCS key order). */
int sb_json_keycmp(const char *a, const char *b);

/* Getters. Each returns true when key exists with the right type and copies
 * the value out (strings are borrowed, valid while obj lives). */
bool sb_json_get_str(const json_t *obj, const char *key, const char **out);
bool sb_json_get_int(const json_t *obj, const char *key, int64_t *out);
bool sb_json_get_num(const json_t *obj, const char *key, double *out);
bool sb_json_get_bool(const json_t *obj, const char *key, bool *out);
/* Integral number (integer or integral real within int64) -> out. */
bool sb_json_as_int(const json_t *v, int64_t *out);
/* String value or NULL (borrowed). */
const char *sb_json_str(const json_t *obj, const char *key);
/* Follows a dotted path ("data.user.id") through objects; borrowed or NULL. */
json_t *sb_json_path(const json_t *root, const char *path);

#endif
