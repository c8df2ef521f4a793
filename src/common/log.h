/* log.h - the one logger: one JSON object per line on stderr.
 *
 * Line shape: {"ts":"2026-11-27T17:00:00.123Z","level":"info","comp":"sysbusd",
 * "event":"listening","msg":"...", <fields>}. `event` is a stable snake_case
 * name that tests and operators can grep for; fields carry context. The level
 * check happens in the macro, before any argument is evaluated. Thread-safe:
 * every line is formatted in a local buffer and written with one write(2). */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stddef.h>

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
