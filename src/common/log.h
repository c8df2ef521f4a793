/* log.h - the one logger: one JSON object per line on stderr (or the fd
 * given to sb_log_init), and optionally to a file that is rotated by size
 * (sb_log_open_file: talon's own log).
 *
 * Line shape: {"ts":"2026-11-27T17:00:00.123Z","level":"info","comp":"sysbusd",
 * "event":"listening","msg":"...", <fields>}. `event` is a stable snake_case
 * name that tests and operators can grep for; fields carry context. The level
 * check happens in the macro, before any argument is evaluated. Thread-safe:
 * every line is formatted in a local buffer and written with one write(2);
 * the file sink's size check, rotation and write happen under one mutex.
 * Also here: sb_redact_path (keeps event keys out of logged paths) and a
 * per-kind rate limit for lines a client can cause at will. */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <pthread.h>
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

/* ---- redaction ---- */

/* Copies text (a request path, or a message that may quote one) into buf,
 * replacing everything after a path segment "e" (also "E", "%65", "%45")
 * up to the end of that path (whitespace, a quote, '?', '#' or the end) with
 * "<redacted>": "/e/<key>" carries an event key, the only credential any of
 * our routes puts in a path. "/e/k1/x" gives "/e/<redacted>"; "request for
 * `/e/k1'" gives "request for `/e/<redacted>'"; paths without such a
 * segment are copied unchanged. buf is always NUL-terminated (buflen >= 1)
 * and a path too long for it is cut, never leaking what was skipped.
 * Returns buf. Use it wherever a request path (or text quoting one) is
 * logged. */
const char *sb_redact_path(const char *text, char *buf, size_t buflen);

/* ---- rate limit: at most one line per kind per interval ---- */

#define SB_LOG_LIMIT_KINDS 16

/* Counts per kind (any stable pointer: a format string, an event name).
 * Guarded by its own lock; a kind not seen for longest makes room for a new
 * one when all slots are used (its count of suppressed lines is lost). */
struct sb_log_limit {
    pthread_mutex_t lock;
    int64_t interval_ms;
    struct {
        const void *kind;
        int64_t passed_ms, seen_ms;
        uint64_t suppressed;
    } slot[SB_LOG_LIMIT_KINDS];
};

void sb_log_limit_init(struct sb_log_limit *l, int64_t interval_ms);
void sb_log_limit_destroy(struct sb_log_limit *l);
/* Whether a line of this kind may be written at now_ms (monotonic): true
 * for the first one and then once interval_ms has passed since the last one
 * that was; *suppressed gets how many were refused in between (to be said
 * in the line). Otherwise false, and the refused line is counted. */
bool sb_log_limit_pass(struct sb_log_limit *l, const void *kind, int64_t now_ms,
                       uint64_t *suppressed);

#endif
