/* slog.h - slog, the operations log: what the files of src/slog/ share.
 *
 *   entry.c    the line format: building a line, checking one (the format
 *              itself is specified at the top of entry.c)
 *   logfile.c  where the log lives, the locked append with rollback, and a
 *              bounded line reader
 *   commands.c the four commands (write, tail, validate, health)
 *   main.c     command dispatch, usage and exit codes
 *
 * Everything non-static here is named slog_*; the unit tests link these
 * objects next to every other binary's. */
#ifndef SLOG_H
#define SLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Exit codes (documented in `slog --help` and docs/slog.md). */
enum { SLOG_EXIT_OK = 0, SLOG_EXIT_FAIL = 1, SLOG_EXIT_USAGE = 2 };

/* Size caps of the fields, in bytes of UTF-8. */
#define SLOG_ACTION_MAX 128
#define SLOG_TOOL_MAX 128
#define SLOG_ID_MAX 256 /* sessionId, systemId */
#define SLOG_REASON_MAX 4096
#define SLOG_DETAIL_MAX 65536
/* Longest line a reader accepts (a written line, even with every byte
 * escaped as \u00XX, stays below it). Longer lines are reported as bad. */
#define SLOG_LINE_MAX (1024 * 1024)

/* ---- entry.c: the line format ------------------------------------------- */

/* The fields of one entry. NULL optional fields are written as JSON null. */
struct slog_fields {
    const char *action, *tool, *detail; /* required, non-empty */
    const char *reason, *session, *system;
};

/* Checks the caps and UTF-8 of f; SB_EINVAL/SB_ETOOBIG naming the field. */
int slog_fields_check(const struct slog_fields *f, struct sb_err *err);
/* Appends the line for f stamped at now_ms (with its '\n') to line. Fields
 * must have passed slog_fields_check. 0 or SB_ENOMEM/SB_ETOOBIG. */
int slog_entry_format(const struct slog_fields *f, int64_t now_ms, struct sb_buf *line);

/* A parsed entry. `json` is owned (json_decref it); the strings borrow from it. */
struct slog_entry {
    json_t *json;
    const char *timestamp, *action, *tool, *detail;
    const char *reason, *session, *system; /* NULL when null or absent */
    int64_t ts_ms;
};
/* Parses and checks one line (without its '\n'). 0 and *e filled, or
 * SB_EINVAL with err->msg saying what is wrong ("not JSON: ...", "field
 * \"tool\" is missing", ...). */
int slog_entry_parse(const char *line, size_t len, struct slog_entry *e, struct sb_err *err);
void slog_entry_free(struct slog_entry *e);

/* ---- logfile.c: the file ------------------------------------------------ */

/* The log's path: flag (may be NULL/"") > $SLOG_FILE (applied by the caller's
 * config table into flag) > $XDG_STATE_HOME/sysbus/slog.jsonl >
 * ~/.local/state/sysbus/slog.jsonl (HOME, else the password database).
 * Returns a malloc'd path, or NULL with err filled. */
char *slog_default_path(const char *flag, struct sb_err *err);

/* Appends line (len bytes, ending in '\n') to path: creates missing parent
 * directories (0700) and the file (0600), takes flock(LOCK_EX) waiting at
 * most lock_timeout_ms, writes the line with one write(2), fsyncs the file
 * (and the directory when the file was created). A short or failed write or
 * a failed fsync truncates the file back to its size before the write, still
 * under the lock, so no torn or unsynced line is left. If the file did not
 * end in '\n' (a line torn by something else), a '\n' is put first so this
 * entry stands on its own line. If the log was renamed away (rotated) while
 * this writer waited for the lock, the path is opened again. 0, or
 * SB_EIO/SB_ETIMEOUT with err->msg the reason, ending in the strerror text
 * where there is one ("No space left on device"). */
int slog_append(const char *path, const char *line, size_t len, int64_t lock_timeout_ms,
                struct sb_err *err);

/* Reads a file line by line with a bounded line buffer. */
struct slog_reader {
    int fd;
    char chunk[65536];
    size_t pos, len;
    bool eof;
    struct sb_buf line;
    /* about the line last returned: */
    unsigned long lineno; /* 1-based */
    size_t full_len;      /* its length, also when it was too long to keep */
    bool too_long;        /* longer than SLOG_LINE_MAX: only the start is kept */
    bool unterminated;    /* the file ended without its '\n' */
};
/* Opens path for reading. 0, or SB_ENOTFOUND/SB_EIO with err->msg the
 * reason ("No such file or directory"). */
int slog_reader_open(struct slog_reader *r, const char *path, struct sb_err *err);
/* Next line (without '\n', NUL-terminated, valid until the next call) into
 * *line and *len. Returns 1 for a line, 0 at the end, SB_EIO on a read error. */
int slog_reader_next(struct slog_reader *r, const char **line, size_t *len, struct sb_err *err);
void slog_reader_close(struct slog_reader *r);

/* Parses one line as read by r: like slog_entry_parse, but a line that was
 * too long or had no '\n' at the end of the file is bad too. */
int slog_reader_entry(const struct slog_reader *r, const char *line, size_t len,
                      struct slog_entry *e, struct sb_err *err);

/* ---- commands.c --------------------------------------------------------- */

/* Each takes the arguments after the command name (argv[0] is the command)
 * and returns an exit code. */
int slog_cmd_write(int argc, char **argv);
int slog_cmd_tail(int argc, char **argv);
int slog_cmd_validate(int argc, char **argv);
int slog_cmd_health(int argc, char **argv);

#endif
