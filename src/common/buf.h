/* buf.h - growable byte buffer with a hard cap.
 *
 * Every buffer that holds untrusted or unbounded input has a maximum size
 * (max); appending past it fails with SB_ETOOBIG and leaves the buffer as it
 * was. data is always NUL-terminated when len > 0 or after sb_buf_cstr(). */
#ifndef SB_BUF_H
#define SB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct sb_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0 = no limit other than memory */
};

#define SB_BUF_INIT(maxbytes)  \
    {                          \
        NULL, 0, 0, (maxbytes) \
    }

int sb_buf_reserve(struct sb_buf *b, size_t extra);
int sb_buf_append(struct sb_buf *b, const void *p, size_t n);
int sb_buf_puts(struct sb_buf *b, const char *s);
int sb_buf_putc(struct sb_buf *b, char c);
int sb_buf_printf(struct sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sb_buf_vprintf(struct sb_buf *b, const char *fmt, va_list ap);
/* Returns a NUL-terminated string (never NULL; "" for an empty buffer that
 * could not allocate). The buffer keeps ownership. */
const char *sb_buf_cstr(struct sb_buf *b);
/* Hands the data to the caller (malloc'd, NUL-terminated, or NULL when empty
 * and allocation failed) and resets the buffer. */
char *sb_buf_steal(struct sb_buf *b, size_t *len);
void sb_buf_reset(struct sb_buf *b); /* len = 0, keeps memory */
void sb_buf_free(struct sb_buf *b);

#endif
