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
 * The envelope for untrusted JSON (sb_json_parse_input): every document that
 * enters a sysbus process from outside (an event, a registration, a worker's
 * answer, a REST write, a webhook, a secrets request) is parsed through it.
 * It refuses, before building a tree, documents nested deeper than
 * SB_JSON_MAX_DEPTH. That limit is far below the writer's
 * (SB_JSON_WRITE_MAX_DEPTH), so whatever is accepted can be embedded in
 * every envelope sysbus later wraps around it (a lifecycle event, a call
 * request, a REST page: each adds a handful of levels) and still be written.
 * Names and ids are checked with sb_json_name (bounded, no NUL or control
 * characters); integers read with sb_json_as_int are exact in a double
 * (|n| <= 2^53 - 1), as a JavaScript SDK sees them.
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

/* The deepest document accepted from outside (objects and arrays count one
 * level each; a scalar at the top is depth 0). */
#define SB_JSON_MAX_DEPTH 64
/* Documents that embed accepted values in sysbus's own envelopes (the call
 * request a worker receives from sysbusd). */
#define SB_JSON_MAX_DEPTH_EMBEDDED 256
/* The writer refuses (SB_EINVAL) values nested deeper than this. */
#define SB_JSON_WRITE_MAX_DEPTH 1000
/* Largest integer a double holds exactly (Number.MAX_SAFE_INTEGER). */
#define SB_JSON_MAX_SAFE_INT 9007199254740991LL

/* Bounds of names and ids (event names and ids, function, app and step ids,
 * display names) and of URLs accepted from outside. */
#define SB_MAX_ID 512
#define SB_MAX_URL 2048

/* Flags of sb_json_parse_input. */
#define SB_JSON_INTS 1u     /* integers stay integers (as sb_json_parse_ints) */
#define SB_JSON_EMBEDDED 2u /* allow SB_JSON_MAX_DEPTH_EMBEDDED levels */

/* Parses untrusted input through the envelope. Returns a new reference, or
 * NULL with err filled: SB_ETOOBIG when nested deeper than the limit (the
 * message names the limit and the byte offset), SB_EINVAL when not JSON. */
json_t *sb_json_parse_input(const char *text, size_t len, unsigned flags, struct sb_err *err);
/* The nesting depth check alone, on raw text: 0, or SB_ETOOBIG with err
 * filled. Strings are skipped; the text need not be valid JSON. */
int sb_json_check_depth(const char *text, size_t len, int max_depth, struct sb_err *err);

/* A name or id (event name, function id, step id, app name...): a string of
 * 1..max bytes of UTF-8 without NUL or other control characters. what names
 * the field in the message. Returns 0, SB_ENOTFOUND when v is NULL or JSON
 * null (absent), SB_EINVAL (err filled) otherwise. */
int sb_json_name(const json_t *v, const char *what, size_t max, struct sb_err *err);
/* The same test on text (len bytes; a NUL inside counts as a control). */
int sb_name_check(const char *s, size_t len, const char *what, size_t max, struct sb_err *err);

/* Replaces, in place, every byte of s that is not part of a valid UTF-8
 * sequence with '?' (a message cut at a byte limit may end mid-character;
 * JSON strings must be valid UTF-8). */
void sb_utf8_scrub(char *s);

/* Parses len bytes of trusted text (written by sysbus itself). Returns a new
 * reference, or NULL with err filled (SB_EINVAL, message with line/column).
 * Any top-level value is accepted. */
json_t *sb_json_parse(const char *text, size_t len, struct sb_err *err);
/* The same, but integers stay integers (json_integer_value works on them):
 * for JSON handed to users (the SDK's events and step results) rather than
 * compared or re-signed. */
json_t *sb_json_parse_ints(const char *text, size_t len, struct sb_err *err);

/* Canonical (JCS) serialization of v appended to b. SB_ETOOBIG / SB_ENOMEM /
 * SB_EINVAL (a non-finite number). */
int sb_json_write(struct sb_buf *b, const json_t *v);
/* Returns malloc'd canonical text of v, or NULL on failure. No cap of its
 * own: for trees already bounded in memory (built by sysbus, or parsed from
 * a capped body through the envelope); the text is as bounded as the tree.
 * To cap the written form, sb_json_write into a buffer with a maximum (as
 * the engine does for memoized values). */
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
/* Integral number within +-SB_JSON_MAX_SAFE_INT (integer or integral real)
 * -> out; false for anything else (a larger integer has lost its exact value
 * in a JavaScript client already). */
bool sb_json_as_int(const json_t *v, int64_t *out);
/* String value or NULL (borrowed). */
const char *sb_json_str(const json_t *obj, const char *key);
/* Follows a dotted path ("data.user.id") through objects; borrowed or NULL. */
json_t *sb_json_path(const json_t *root, const char *path);

#endif
