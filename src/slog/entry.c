/* entry.c - the slog line format: building a line from fields, and parsing
 * and checking one. Owns the format; nothing here touches files.
 *
 * Format (one entry per line, UTF-8, each line ending in '\n'):
 *
 *   {"timestamp":"2026-11-27T17:00:00.123Z","sessionId":"s-1","systemId":null,
 *    "action":"deploy","tool":"kubectl","detail":"rolled out v42","reason":null}
 *
 * (on one line). Keys are written in that order; a reader must not depend on
 * it. Fields:
 *   timestamp  required string: ISO-8601 / RFC 3339 date-time; slog writes
 *              UTC with milliseconds and a 'Z'
 *   action     required non-empty string, at most 128 bytes
 *   tool       required non-empty string, at most 128 bytes
 *   detail     required non-empty string, at most 64 KiB
 *   sessionId, systemId
 *              string (at most 256 bytes) or null; may be absent
 *   reason     string (at most 4 KiB) or null; may be absent
 * Other keys are allowed (ignored), so a later version may add fields.
 * Strings are escaped as the canonical JSON writer does (json.h); control
 * characters never appear raw, so a '\n' only ever ends a line. */
#include "slog.h"

#include "common/clock.h"
#include "common/json.h"

#include <string.h>

/* 1 when s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0)
            need = 1, min = 0x80, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            need = 2, min = 0x800, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        if (n - i <= need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

static int check_field(const char *name, const char *v, size_t max, bool required,
                       struct sb_err *err)
{
    if (!v)
        return required ? sb_err_set(err, SB_EINVAL, "--%s is required", name) : 0;
    size_t n = strlen(v);
    if (required && n == 0)
        return sb_err_set(err, SB_EINVAL, "--%s must not be empty", name);
    if (n > max)
        return sb_err_set(err, SB_ETOOBIG, "--%s is %zu bytes; the limit is %zu bytes", name, n,
                          max);
    if (!utf8_valid((const unsigned char *)v, n))
        return sb_err_set(err, SB_EINVAL, "--%s is not valid UTF-8", name);
    return 0;
}

int slog_fields_check(const struct slog_fields *f, struct sb_err *err)
{
    int rc;
    if ((rc = check_field("action", f->action, SLOG_ACTION_MAX, true, err)) ||
        (rc = check_field("tool", f->tool, SLOG_TOOL_MAX, true, err)) ||
        (rc = check_field("detail", f->detail, SLOG_DETAIL_MAX, true, err)) ||
        (rc = check_field("reason", f->reason, SLOG_REASON_MAX, false, err)) ||
        (rc = check_field("session", f->session, SLOG_ID_MAX, false, err)) ||
        (rc = check_field("system", f->system, SLOG_ID_MAX, false, err)))
        return rc;
    return 0;
}

/* ,"key":"value" or ,"key":null */
static int put_field(struct sb_buf *b, const char *key, const char *v)
{
    int rc;
    if ((rc = sb_buf_printf(b, ",\"%s\":", key)))
        return rc;
    return v ? sb_json_write_str(b, v) : sb_buf_puts(b, "null");
}

int slog_entry_format(const struct slog_fields *f, int64_t now_ms, struct sb_buf *line)
{
    char ts[32];
    sb_time_format_iso(now_ms, ts, sizeof ts);
    int rc;
    if ((rc = sb_buf_printf(line, "{\"timestamp\":\"%s\"", ts)) ||
        (rc = put_field(line, "sessionId", f->session)) ||
        (rc = put_field(line, "systemId", f->system)) ||
        (rc = put_field(line, "action", f->action)) || (rc = put_field(line, "tool", f->tool)) ||
        (rc = put_field(line, "detail", f->detail)) ||
        (rc = put_field(line, "reason", f->reason)) || (rc = sb_buf_puts(line, "}\n")))
        return rc;
    return 0;
}

/* A required non-empty string field of at most max bytes. */
static int get_required(const json_t *o, const char *key, size_t max, const char **out,
                        struct sb_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return sb_err_set(err, SB_EINVAL, "field \"%s\" is missing", key);
    if (!json_is_string(v))
        return sb_err_set(err, SB_EINVAL, "field \"%s\" is not a string", key);
    if (json_string_length(v) == 0)
        return sb_err_set(err, SB_EINVAL, "field \"%s\" is empty", key);
    if (json_string_length(v) > max)
        return sb_err_set(err, SB_EINVAL, "field \"%s\" is longer than %zu bytes", key, max);
    *out = json_string_value(v);
    return 0;
}

/* An optional field: string of at most max bytes, null, or absent. */
static int get_optional(const json_t *o, const char *key, size_t max, const char **out,
                        struct sb_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return sb_err_set(err, SB_EINVAL, "field \"%s\" is neither a string nor null", key);
    if (json_string_length(v) > max)
        return sb_err_set(err, SB_EINVAL, "field \"%s\" is longer than %zu bytes", key, max);
    *out = json_string_value(v);
    return 0;
}

int slog_entry_parse(const char *line, size_t len, struct slog_entry *e, struct sb_err *err)
{
    memset(e, 0, sizeof *e);
    if (len == 0)
        return sb_err_set(err, SB_EINVAL, "empty line");
    struct sb_err perr = { 0 };
    json_t *o = sb_json_parse(line, len, &perr);
    if (!o)
        return sb_err_set(err, SB_EINVAL, "not JSON (%s)", perr.msg);
    if (!json_is_object(o)) {
        json_decref(o);
        return sb_err_set(err, SB_EINVAL, "not a JSON object");
    }
    e->json = o;
    int rc;
    if ((rc = get_required(o, "timestamp", 64, &e->timestamp, err)) ||
        (rc = get_required(o, "action", SLOG_ACTION_MAX, &e->action, err)) ||
        (rc = get_required(o, "tool", SLOG_TOOL_MAX, &e->tool, err)) ||
        (rc = get_required(o, "detail", SLOG_DETAIL_MAX, &e->detail, err)) ||
        (rc = get_optional(o, "reason", SLOG_REASON_MAX, &e->reason, err)) ||
        (rc = get_optional(o, "sessionId", SLOG_ID_MAX, &e->session, err)) ||
        (rc = get_optional(o, "systemId", SLOG_ID_MAX, &e->system, err))) {
        slog_entry_free(e);
        return rc;
    }
    if (sb_time_parse_iso(e->timestamp, &e->ts_ms) != 0) {
        rc = sb_err_set(err, SB_EINVAL, "timestamp \"%.64s\" is not an ISO-8601 date-time",
                        e->timestamp);
        slog_entry_free(e);
        return rc;
    }
    return 0;
}

void slog_entry_free(struct slog_entry *e)
{
    json_decref(e->json);
    memset(e, 0, sizeof *e);
}
