/* err.h - the one list of error codes shared by every sysbus binary.
 *
 * Fallible functions return int: 0 on success, a negative SB_E* code on
 * failure. Detail (a message, the saved errno) goes into a caller-supplied
 * struct sb_err, filled at the place where the failure happens. The list is an
 * X-macro so the enum, sb_strerror() and sb_errname() cannot drift apart. */
#ifndef SB_ERR_H
#define SB_ERR_H

#include <stdbool.h>
#include <stddef.h>

#define SB_ERROR_LIST(X)                  \
    X(OK, 0, "ok")                        \
    X(NOMEM, -1, "out of memory")         \
    X(INVAL, -2, "invalid argument")      \
    X(IO, -3, "I/O error")                \
    X(NOTFOUND, -4, "not found")          \
    X(EXISTS, -5, "already exists")       \
    X(TOOBIG, -6, "too large")            \
    X(AUTH, -7, "unauthorized")           \
    X(TIMEOUT, -8, "timed out")           \
    X(PROTO, -9, "protocol error")        \
    X(STORE, -10, "store error")          \
    X(BUSY, -11, "busy")                  \
    X(UNAVAIL, -12, "unavailable")        \
    X(CONFIG, -13, "configuration error") \
    X(CONFLICT, -14, "conflict")          \
    X(INTERNAL, -15, "internal error")

enum sb_errcode {
#define SB_X_ENUM(name, val, str) SB_E##name = val,
    SB_ERROR_LIST(SB_X_ENUM)
#undef SB_X_ENUM
};

struct sb_err {
    int code;      /* SB_E* */
    int sys_errno; /* errno at the failure, 0 if none */
    char msg[512]; /* human readable, complete sentence-ish */
};

/* Fills err (if not NULL) and returns code, so callers can write
 * `return sb_err_set(err, SB_EINVAL, "bad %s", x);`. */
int sb_err_set(struct sb_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like sb_err_set, and records errno and appends strerror(errno). */
int sb_err_errno(struct sb_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sb_err_clear(struct sb_err *err);

/* Is a failure with code worth trying again as it is (the store busy, I/O,
 * out of memory, a peer unavailable or slow), as opposed to one that would
 * repeat (invalid, too large, a conflict, not found, unauthorized)? */
bool sb_err_transient(int code);

const char *sb_strerror(int code); /* "out of memory" */
const char *sb_errname(int code);  /* "NOMEM" */

#endif
