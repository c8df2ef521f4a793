/* err.c - error code names and the struct sb_err fillers (see err.h). */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sb_err_set(struct sb_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->sys_errno = 0;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int sb_err_errno(struct sb_err *err, int code, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->sys_errno = saved;
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(saved));
    }
    errno = saved;
    return code;
}

void sb_err_clear(struct sb_err *err)
{
    if (err) {
        err->code = 0;
        err->sys_errno = 0;
        err->msg[0] = '\0';
    }
}

const char *sb_strerror(int code)
{
    switch (code) {
#define SB_X_STR(name, val, str) \
    case val: return str;
        SB_ERROR_LIST(SB_X_STR)
#undef SB_X_STR
    }
    return "unknown error";
}

const char *sb_errname(int code)
{
    switch (code) {
#define SB_X_NAME(name, val, str) \
    case val: return #name;
        SB_ERROR_LIST(SB_X_NAME)
#undef SB_X_NAME
    }
    return "UNKNOWN";
}

bool sb_err_transient(int code)
{
    return code == SB_ENOMEM || code == SB_EIO || code == SB_ETIMEOUT || code == SB_ESTORE ||
           code == SB_EBUSY || code == SB_EUNAVAIL;
}
