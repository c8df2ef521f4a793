/* buf.c - growable byte buffer with a hard cap (see buf.h). */
#include "buf.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sb_buf_reserve(struct sb_buf *b, size_t extra)
{
    if (extra > ((size_t)-1) / 2 - b->len)
        return SB_ETOOBIG;
    size_t need = b->len + extra + 1; /* +1: room for the NUL */
    if (b->max && need - 1 > b->max)
        return SB_ETOOBIG;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    char *p = realloc(b->data, ncap);
    if (!p)
        return SB_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int sb_buf_append(struct sb_buf *b, const void *p, size_t n)
{
    int rc = sb_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sb_buf_puts(struct sb_buf *b, const char *s)
{
    return sb_buf_append(b, s, strlen(s));
}

int sb_buf_putc(struct sb_buf *b, char c)
{
    if (b->len + 1 < b->cap && (!b->max || b->len + 1 <= b->max)) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return sb_buf_append(b, &c, 1);
}

int sb_buf_vprintf(struct sb_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return SB_EINVAL;
    if ((size_t)n < sizeof small)
        return sb_buf_append(b, small, (size_t)n);
    int rc = sb_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sb_buf_printf(struct sb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *sb_buf_cstr(struct sb_buf *b)
{
    if (!b->data && sb_buf_reserve(b, 0) != 0)
        return "";
    b->data[b->len] = '\0';
    return b->data;
}

char *sb_buf_steal(struct sb_buf *b, size_t *len)
{
    sb_buf_cstr(b);
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void sb_buf_reset(struct sb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sb_buf_free(struct sb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
