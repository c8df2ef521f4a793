/* event_parse.c - event API body validation and normalization (see
 * event_parse.h). Pure: no I/O, no global state except the ULID clock. */
#include "event_parse.h"
#include "common/crypto.h"
#include "common/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 512
#define MAX_ID 512
#define MAX_VERSION 128
#define MAX_TS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* The cap of one normalized event, the buffer that outside input fills. The
 * normalized event re-encodes part of the body: whitespace goes, escapes
 * such as \u00e9 become the shorter character, and only a number can grow,
 * by at most 21/4 (9e20 is written out as 900000000000000000000). To that
 * the normalizer adds a few fixed keys, a ULID and a timestamp. So no event
 * that passed the parse can reach NORM_GROWTH times the body plus
 * NORM_EXTRA; the body itself is bounded by --max-body. */
#define NORM_GROWTH 6
#define NORM_EXTRA 1024

static size_t norm_cap(size_t body_len)
{
    if (body_len > (SIZE_MAX - NORM_EXTRA) / NORM_GROWTH)
        return SIZE_MAX;
    return body_len * NORM_GROWTH + NORM_EXTRA;
}

/* "<ms>,<base64 of 10 bytes>" */
static bool parse_seed(const char *h, int64_t *ms, uint8_t entropy[10])
{
    if (!h)
        return false;
    const char *comma = strchr(h, ',');
    if (!comma)
        return false;
    char *end;
    long long v = strtoll(h, &end, 10);
    if (end != comma || v <= 0 || v > 0xFFFFFFFFFFFFLL)
        return false;
    uint8_t buf[16];
    if (sb_base64_decode(comma + 1, strlen(comma + 1), buf, sizeof buf) != 10)
        return false;
    memcpy(entropy, buf, 10);
    *ms = v;
    return true;
}

static void seeded_id(int64_t ms, const uint8_t entropy[10], size_t index, char out[SB_ULID_SIZE])
{
    uint8_t e[10];
    memcpy(e, entropy, 10);
    uint32_t tail = ((uint32_t)e[6] << 24 | (uint32_t)e[7] << 16 | (uint32_t)e[8] << 8 | e[9]) +
                    (uint32_t)index;
    e[6] = (uint8_t)(tail >> 24), e[7] = (uint8_t)(tail >> 16);
    e[8] = (uint8_t)(tail >> 8), e[9] = (uint8_t)tail;
    sb_ulid_from_parts(ms, e, out);
}

/* Fills err with code and the message, *rule with the stable name of the
 * rule that failed, and returns code. */
static int bad(const char **rule, const char *name, struct sb_err *err, int code, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
static int bad(const char **rule, const char *name, struct sb_err *err, int code, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err) {
        err->code = code;
        err->sys_errno = 0;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    va_end(ap);
    *rule = name;
    return code;
}

static int normalize(const json_t *in, size_t i, int64_t now, size_t cap, struct sbd_event *ev,
                     const char **code, struct sb_err *err)
{
    if (!json_is_object(in))
        return bad(code, "INVALID_EVENT", err, SB_EINVAL, "event %zu: must be a JSON object", i);
    struct sb_err nerr = { 0 };
    json_t *namev = json_object_get(in, "name");
    int nrc = sb_json_name(namev, "'name'", MAX_NAME, &nerr);
    if (nrc == SB_ENOTFOUND || (json_is_string(namev) && json_string_length(namev) == 0))
        return bad(code, "MISSING_NAME", err, SB_EINVAL,
                   "event %zu: 'name' is required (a non-empty string)", i);
    if (nrc)
        return bad(code, "INVALID_EVENT", err, SB_EINVAL, "event %zu: %s", i, nerr.msg);
    const char *name = json_string_value(namev);
    json_t *data = json_object_get(in, "data");
    if (data && !json_is_null(data) && !json_is_object(data))
        return bad(code, "INVALID_EVENT", err, SB_EINVAL,
                   "event %zu ('%.100s'): 'data' must be an object", i, name);
    json_t *user = json_object_get(in, "user");
    if (user && !json_is_null(user) && !json_is_object(user))
        return bad(code, "INVALID_EVENT", err, SB_EINVAL,
                   "event %zu ('%.100s'): 'user' must be an object", i, name);
    json_t *idv = json_object_get(in, "id");
    if (json_is_string(idv) && json_string_length(idv) == 0)
        idv = NULL; /* "" means no id, as in the SDKs */
    if (sb_json_name(idv, "'id'", MAX_ID, &nerr) == SB_EINVAL)
        return bad(code, "INVALID_EVENT", err, SB_EINVAL, "event %zu ('%.100s'): %s", i, name,
                   nerr.msg);
    json_t *tsv = json_object_get(in, "ts");
    int64_t ts = now;
    if (tsv && !json_is_null(tsv) && (!sb_json_as_int(tsv, &ts) || ts < 0 || ts > MAX_TS))
        return bad(code, "INVALID_EVENT", err, SB_EINVAL,
                   "event %zu ('%.100s'): 'ts' must be a timestamp in milliseconds (an integer "
                   "from 0 to %lld, 9999-12-31)",
                   i, name, (long long)MAX_TS);
    json_t *v = json_object_get(in, "v");
    if (v && !json_is_null(v) && sb_json_name(v, "'v'", MAX_VERSION, &nerr) != 0)
        return bad(code, "INVALID_EVENT", err, SB_EINVAL, "event %zu ('%.100s'): %s", i, name,
                   nerr.msg);
    const char *uid = json_is_string(idv) ? json_string_value(idv) : NULL;
    /* The normalized event, written directly in canonical form (keys in
     * order: data, id, name, ts, user, v) rather than built as a tree. */
    struct sb_buf b = SB_BUF_INIT(cap);
    int wrc = sb_buf_puts(&b, "{\"data\":");
    wrc |= json_is_object(data) ? sb_json_write(&b, data) : sb_buf_puts(&b, "{}");
    wrc |= sb_buf_puts(&b, ",\"id\":");
    wrc |=
        uid ? sb_json_write_strn(&b, uid, json_string_length(idv)) : sb_json_write_str(&b, ev->id);
    wrc |= sb_buf_puts(&b, ",\"name\":");
    wrc |= sb_json_write_str(&b, name);
    wrc |= sb_buf_printf(&b, ",\"ts\":%lld,\"user\":", (long long)ts);
    wrc |= json_is_object(user) ? sb_json_write(&b, user) : sb_buf_puts(&b, "{}");
    if (json_is_string(v)) {
        wrc |= sb_buf_puts(&b, ",\"v\":");
        wrc |= sb_json_write_strn(&b, json_string_value(v), json_string_length(v));
    }
    wrc |= sb_buf_putc(&b, '}');
    if (wrc) {
        sb_buf_free(&b);
        return bad(code, "INTERNAL", err, SB_EINTERNAL, "event %zu: cannot encode it", i);
    }
    ev->body = sb_buf_steal(&b, NULL);
    ev->name = strdup(name);
    ev->dedupe_key = uid ? strdup(uid) : NULL;
    ev->ts = ts;
    if (!ev->body || !ev->name || (uid && !ev->dedupe_key))
        return bad(code, "INTERNAL", err, SB_ENOMEM, "out of memory");
    return 0;
}

int sbd_events_parse(const char *text, size_t len, const char *seed_header, int64_t now,
                     struct sbd_event **out, size_t *n, const char **code, struct sb_err *err)
{
    *out = NULL;
    *n = 0;
    if (len == 0)
        return bad(code, "EMPTY_BODY", err, SB_EINVAL, "request body is empty; send JSON");
    struct sb_err perr = { 0 };
    json_t *body = sb_json_parse_input(text, len, 0, &perr);
    if (!body)
        return bad(code, perr.code == SB_ETOOBIG ? "TOO_DEEP" : "INVALID_JSON", err, SB_EINVAL,
                   "%s", perr.msg);
    int rc = 0;
    if (!json_is_object(body) && !json_is_array(body)) {
        rc = bad(code, "INVALID_EVENT", err, SB_EINVAL,
                 "body must be an event object or an array of events");
        goto done;
    }
    size_t count = json_is_array(body) ? json_array_size(body) : 1;
    if (count > SBD_MAX_EVENTS) {
        rc = bad(code, "TOO_MANY_EVENTS", err, SB_ETOOBIG,
                 "%zu events in one request; the limit is %d", count, SBD_MAX_EVENTS);
        goto done;
    }
    struct sbd_event *evs = calloc(count ? count : 1, sizeof *evs);
    if (!evs) {
        rc = bad(code, "INTERNAL", err, SB_ENOMEM, "out of memory");
        goto done;
    }
    int64_t seed_ms;
    uint8_t entropy[10];
    bool seeded = parse_seed(seed_header, &seed_ms, entropy);
    for (size_t i = 0; i < count; i++) {
        if (seeded)
            seeded_id(seed_ms, entropy, i + 1, evs[i].id);
        else
            sb_ulid_new(now, evs[i].id);
        const json_t *in = json_is_array(body) ? json_array_get(body, i) : body;
        if ((rc = normalize(in, i, now, norm_cap(len), &evs[i], code, err)) != 0) {
            sbd_events_free(evs, i + 1);
            goto done;
        }
    }
    *out = evs;
    *n = count;
done:
    json_decref(body);
    return rc;
}
