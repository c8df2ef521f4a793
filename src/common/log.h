/* log.h - the one logger: one JSON object per line on stderr (or the fd
 * given to sb_log_init), and optionally to a file that is rotated by size
 * (sb_log_open_file: talon's own log).
 *
 * Line shape: {"ts":"2026-11-27T17:00:00.123Z","level":"info","comp":"sysbusd",
 * "event":"listening","msg":"...", <fields>}. `event` is a stable snake_case
 * name that tests and operators can grep for; fields carry context. The level
 * check happens in the macro, before any argument is evaluated. Thread-safe:
 * every line is formatted in a local buffer and written with one write(2);
 * the file sink's size check, rotation and write happen under one mutex. */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum sb_log_level { SB_DEBUG = 0, SB_INFO = 1, SB_WARN = 2, SB_ERROR = 3, SB_OFF = 4 };

/* A context field. Use the LF_* constructors. */
struct sb_lf {
    const char *key;
    char type; /* 's' string, 'i' integer, 'd' double, 'b' bool, 'j' raw JSON */
    const char *s;
    long long i;
    double d;
};
#define LF_S(k, v) ((struct sb_lf){ (k), 's', (v), 0, 0 })
#define LF_I(k, v) ((struct sb_lf){ (k), 'i', NULL, (long long)(v), 0 })
#define LF_D(k, v) ((struct sb_lf){ (k), 'd', NULL, 0, (double)(v) })
#define LF_B(k, v) ((struct sb_lf){ (k), 'b', NULL, (v) ? 1 : 0, 0 })
#define LF_J(k, v) ((struct sb_lf){ (k), 'j', (v), 0, 0 })

extern int sb_log_min_level;

/* comp: component name put on every line. fd: where to write (2 = stderr). */
void sb_log_init(const char *comp, int min_level, int fd);
/* Sends every line to path as well: appended (the file is created 0640 when
 * missing); when a line would take the file past max_bytes (0 = 10 MiB), the
 * file is first renamed to "<path>.1" (replacing an older one) and a new one
 * started, so at most two files exist. also_fd: keep writing to the fd of
 * sb_log_init too (false: the file only). If the file cannot be written or
 * reopened later, lines go to the fd instead and one "log_file_failed" line
 * says why. Returns 0 or SB_EIO (cannot open; nothing changed). Call before
 * threads start; sb_log_close_file at exit. */
int sb_log_open_file(const char *path, int64_t max_bytes, bool also_fd, struct sb_err *err);
void sb_log_close_file(void);

/* Parses "debug|info|warn|error|off"; returns -1 when unknown. */
int sb_log_level_parse(const char *s);

void sb_log_emit(int level, const char *event, const struct sb_lf *fields, size_t nfields,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* SB_LOG(SB_INFO, "listening", "listening on %s:%d", host, port); */
#define SB_LOG(lvl, ev, ...)                                \
    do {                                                    \
        if ((lvl) >= sb_log_min_level)                      \
            sb_log_emit((lvl), (ev), NULL, 0, __VA_ARGS__); \
    } while (0)

/* SB_LOGK(SB_WARN, "call_failed", ((struct sb_lf[]){ LF_S("run_id", id),
 *         LF_I("status", st) }), "call failed: %s", why); */
#define SB_LOGK(lvl, ev, fields, ...)                                                 \
    do {                                                                              \
        if ((lvl) >= sb_log_min_level)                                                \
            sb_log_emit((lvl), (ev), (fields), sizeof(fields) / sizeof(struct sb_lf), \
                        __VA_ARGS__);                                                 \
    } while (0)

#endif
