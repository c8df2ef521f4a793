/* json.c - JSON parsing, getters and the canonical (RFC 8785) writer.
 * See json.h for the contract. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text, size_t len, size_t flags, struct sb_err *err)
{
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | flags, &je);
    if (!v) {
        sb_err_set(err, SB_EINVAL, "invalid JSON at line %d column %d: %s", je.line, je.column,
                   je.text);
        return NULL;
    }
    return v;
}

json_t *sb_json_parse(const char *text, size_t len, struct sb_err *err)
{
    return parse(text, len, JSON_DECODE_INT_AS_REAL, err);
}

json_t *sb_json_parse_ints(const char *text, size_t len, struct sb_err *err)
{
    return parse(text, len, 0, err);
}

/* ---- the envelope for untrusted input ------------------------------------ */

int sb_json_check_depth(const char *text, size_t len, int max_depth, struct sb_err *err)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return sb_err_set(err, SB_ETOOBIG,
                                  "JSON nested deeper than %d levels (at byte %zu); sysbus "
                                  "accepts at most %d",
                                  max_depth, i, max_depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

json_t *sb_json_parse_input(const char *text, size_t len, unsigned flags, struct sb_err *err)
{
    int max = (flags & SB_JSON_EMBEDDED) ? SB_JSON_MAX_DEPTH_EMBEDDED : SB_JSON_MAX_DEPTH;
    if (sb_json_check_depth(text, len, max, err) != 0)
        return NULL;
    return parse(text, len, (flags & SB_JSON_INTS) ? 0 : JSON_DECODE_INT_AS_REAL, err);
}

int sb_name_check(const char *s, size_t len, const char *what, size_t max, struct sb_err *err)
{
    if (len == 0)
        return sb_err_set(err, SB_EINVAL, "%s must not be empty", what);
    if (len > max)
        return sb_err_set(err, SB_EINVAL, "%s is longer than %zu bytes (%zu)", what, max, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return sb_err_set(err, SB_EINVAL,
                              "%s contains a control character (\\u%04x at byte %zu)", what, c, i);
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static int utf8_seq_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4))
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && c == 0xE0 && s[1] < 0xA0) || (n == 3 && c == 0xED && s[1] >= 0xA0) ||
        (n == 4 && c == 0xF0 && s[1] < 0x90) || (n == 4 && c == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, or beyond U+10FFFF */
    return n;
}

void sb_utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = utf8_seq_len(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
}

int sb_json_name(const json_t *v, const char *what, size_t max, struct sb_err *err)
{
    if (!v || json_is_null(v))
        return SB_ENOTFOUND;
    if (!json_is_string(v))
        return sb_err_set(err, SB_EINVAL, "%s must be a string", what);
    return sb_name_check(json_string_value(v), json_string_length(v), what, max, err);
}

/* ---- canonical writer ---------------------------------------------------- */

int sb_json_write_strn(struct sb_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = sb_buf_reserve(b, n + 2);
    if (rc)
        return rc;
    b->data[b->len++] = '"';
    size_t run = 0; /* start of the current unescaped run */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if ((rc = sb_buf_append(b, s + run, i - run)))
            return rc;
        char esc[7];
        size_t elen = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0';
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        if ((rc = sb_buf_append(b, esc, elen)))
            return rc;
        run = i + 1;
    }
    if ((rc = sb_buf_append(b, s + run, n - run)))
        return rc;
    return sb_buf_putc(b, '"');
}

int sb_json_write_str(struct sb_buf *b, const char *s)
{
    return sb_json_write_strn(b, s ? s : "", s ? strlen(s) : 0);
}

void sb_json_format_number(double d, char *out, size_t outsz)
{
    if (d != d || isinf(d)) {
        snprintf(out, outsz, "null");
        return;
    }
    if (d == 0) {
        snprintf(out, outsz, "0");
        return;
    }
    /* Fast path: integers that doubles hold exactly print as integers. */
    if (fabs(d) < 9007199254740992.0 && d == (double)(long long)d) {
        snprintf(out, outsz, "%lld", (long long)d);
        return;
    }
    const char *sign = d < 0 ? "-" : "";
    double a = fabs(d);
    /* Shortest digit string that round-trips (ECMAScript's k). */
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, a);
        if (strtod(tmp, NULL) == a)
            break;
    }
    /* tmp = "D.DDDDe[+-]XX" -> digits and exponent */
    char digits[24];
    int k = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    int e = atoi(p + 1);
    int n = e + 1; /* value = 0.DIGITS x 10^n */
    if (k <= n && n <= 21) {
        snprintf(out, outsz, "%s%s%0*d", sign, digits, n - k, 0);
        /* %0*d with width 0 prints "0"; fix the n == k case. */
        if (n == k)
            snprintf(out, outsz, "%s%s", sign, digits);
    } else if (0 < n && n <= 21) {
        snprintf(out, outsz, "%s%.*s.%s", sign, n, digits, digits + n);
    } else if (-6 < n && n <= 0) {
        snprintf(out, outsz, "%s0.%0*d%s", sign, -n, 0, digits);
        if (n == 0)
            snprintf(out, outsz, "%s0.%s", sign, digits);
    } else {
        int x = n - 1;
        if (k == 1)
            snprintf(out, outsz, "%s%se%c%d", sign, digits, x < 0 ? '-' : '+', abs(x));
        else
            snprintf(out, outsz, "%s%c.%se%c%d", sign, digits[0], digits + 1, x < 0 ? '-' : '+',
                     abs(x));
    }
}

int sb_json_write_number(struct sb_buf *b, double d)
{
    if (d != d || isinf(d))
        return SB_EINVAL;
    char out[40];
    sb_json_format_number(d, out, sizeof out);
    return sb_buf_puts(b, out);
}

/* Next UTF-16 code unit of a UTF-8 string; *pending holds the low surrogate
 * of an astral code point between calls. Returns -1 at the end. */
static int next_utf16(const unsigned char **p, int *pending)
{
    if (*pending >= 0) {
        int u = *pending;
        *pending = -1;
        return u;
    }
    const unsigned char *s = *p;
    if (!*s)
        return -1;
    unsigned cp;
    int len;
    if (s[0] < 0x80)
        cp = s[0], len = 1;
    else if ((s[0] & 0xE0) == 0xC0 && s[1])
        cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu), len = 2;
    else if ((s[0] & 0xF0) == 0xE0 && s[1] && s[2])
        cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu), len = 3;
    else if ((s[0] & 0xF8) == 0xF0 && s[1] && s[2] && s[3])
        cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
             (s[3] & 0x3Fu),
        len = 4;
    else
        cp = s[0], len = 1; /* not valid UTF-8: jansson never hands us this */
    *p = s + len;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *pending = (int)(0xDC00 + (cp & 0x3FF));
        return (int)(0xD800 + (cp >> 10));
    }
    return (int)cp;
}

int sb_json_keycmp(const char *a, const char *b)
{
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    int qa = -1, qb = -1;
    for (;;) {
        int ua = next_utf16(&pa, &qa), ub = next_utf16(&pb, &qb);
        if (ua != ub)
            return ua < ub ? -1 : 1;
        if (ua < 0)
            return 0;
    }
}

static int keycmp_qsort(const void *a, const void *b)
{
    return sb_json_keycmp(*(const char *const *)a, *(const char *const *)b);
}

static int write_value(struct sb_buf *b, const json_t *v, int depth)
{
    int rc;
    if (depth > SB_JSON_WRITE_MAX_DEPTH)
        return SB_EINVAL;
    switch (json_typeof(v)) {
    case JSON_NULL: return sb_buf_puts(b, "null");
    case JSON_TRUE: return sb_buf_puts(b, "true");
    case JSON_FALSE: return sb_buf_puts(b, "false");
    case JSON_INTEGER: return sb_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: return sb_json_write_number(b, json_real_value(v));
    case JSON_STRING: return sb_json_write_strn(b, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        if ((rc = sb_buf_putc(b, '[')))
            return rc;
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el)
        {
            if (i && (rc = sb_buf_putc(b, ',')))
                return rc;
            if ((rc = write_value(b, el, depth + 1)))
                return rc;
        }
        return sb_buf_putc(b, ']');
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        const char *small[16];
        const char **keys = n <= 16 ? small : malloc(n * sizeof *keys);
        if (!keys)
            return SB_ENOMEM;
        size_t i = 0;
        const char *k;
        json_t *el;
        json_object_foreach((json_t *)v, k, el) keys[i++] = k;
        qsort(keys, n, sizeof *keys, keycmp_qsort);
        rc = sb_buf_putc(b, '{');
        for (i = 0; i < n && !rc; i++) {
            if (i)
                rc = sb_buf_putc(b, ',');
            if (!rc)
                rc = sb_json_write_str(b, keys[i]);
            if (!rc)
                rc = sb_buf_putc(b, ':');
            if (!rc)
                rc = write_value(b, json_object_get(v, keys[i]), depth + 1);
        }
        if (!rc)
            rc = sb_buf_putc(b, '}');
        if (keys != small)
            free(keys);
        return rc;
    }
    }
    return SB_EINVAL;
}

int sb_json_write(struct sb_buf *b, const json_t *v)
{
    size_t mark = b->len;
    int rc = v ? write_value(b, v, 0) : sb_buf_puts(b, "null");
    if (rc) {
        b->len = mark; /* leave the buffer as it was */
        if (b->data)
            b->data[mark] = '\0';
    }
    return rc;
}

char *sb_json_dumps(const json_t *v, size_t *len_out)
{
    struct sb_buf b = SB_BUF_INIT(0); /* no cap: a tree in memory, bounded by its caller (json.h) */
    if (sb_json_write(&b, v)) {
        sb_buf_free(&b);
        return NULL;
    }
    return sb_buf_steal(&b, len_out);
}

/* ---- getters ------------------------------------------------------------- */

bool sb_json_as_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < -SB_JSON_MAX_SAFE_INT || n > SB_JSON_MAX_SAFE_INT)
            return false;
        *out = n;
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -(double)SB_JSON_MAX_SAFE_INT || d > (double)SB_JSON_MAX_SAFE_INT)
            return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

bool sb_json_get_str(const json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return false;
    *out = json_string_value(v);
    return true;
}

const char *sb_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool sb_json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    return sb_json_as_int(json_object_get(obj, key), out);
}

bool sb_json_get_num(const json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

bool sb_json_get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_boolean(v))
        return false;
    *out = json_is_true(v);
    return true;
}

json_t *sb_json_path(const json_t *root, const char *path)
{
    const json_t *cur = root;
    char seg[256];
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        cur = json_object_get(cur, seg);
        path += n + (dot ? 1 : 0);
    }
    return (json_t *)cur;
}
