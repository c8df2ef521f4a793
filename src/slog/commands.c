/* commands.c - slog's commands: write (append one entry), tail (print the
 * last entries), validate (check every line) and health (is the log alive?).
 * Each command has its own settings table (config.h: flags > SLOG_*
 * environment > defaults, and its --help); the file format is entry.c's, the
 * file handling logfile.c's. Output goes to stdout, problems to stderr with a
 * "slog: " prefix; exit codes are SLOG_EXIT_*. */
#include "slog.h"

#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_CODES                                                                    \
    "Exit codes: 0 ok; 1 failed (the reason is on stderr); 2 bad usage (a required\n" \
    "flag missing, an unknown flag, a field over its size limit).\n"                  \
    "Docs: docs/slog.md"

#define FILE_OPT(type_struct)                                                      \
    {                                                                              \
        .name = "file", .type = SB_OPT_STR, .offset = offsetof(type_struct, file), \
        .metavar = "PATH",                                                         \
        .help = "The log (default $XDG_STATE_HOME/sysbus/slog.jsonl, else "        \
                "~/.local/state/sysbus/slog.jsonl)",                               \
    }

/* Parses a command's flags; returns -1 to go on, else the exit code. */
static int parse(const struct sb_config_spec *spec, void *settings, int argc, char **argv)
{
    struct sb_err err = { 0 };
    char *pos[1];
    size_t npos;
    int rc = sb_config_parse(spec, settings, argc, argv, pos, 0, &npos, &err);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(spec, stdout);
        return SLOG_EXIT_OK;
    }
    if (rc) {
        fprintf(stderr, "slog: %s\nUsage: %s\n", err.msg, spec->usage);
        return SLOG_EXIT_USAGE;
    }
    return -1;
}

/* The log's path from the --file setting; prints the problem when there is none. */
static char *log_path(const char *flag)
{
    struct sb_err err = { 0 };
    char *path = slog_default_path(flag, &err);
    if (!path)
        fprintf(stderr, "slog: %s\n", err.msg);
    return path;
}

/* Flushes stdout; a failure (a full disk behind a redirect) is an error too. */
static int finish_output(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "slog: cannot write the output\n");
        return SLOG_EXIT_FAIL;
    }
    return code;
}

/* ---- write ------------------------------------------------------------------ */

struct write_settings {
    char *file, *action, *tool, *detail, *reason, *session, *system;
    int64_t lock_timeout_ms;
};

#define W(f) offsetof(struct write_settings, f)
static const struct sb_opt write_opts[] = {
    { .name = "action",
      .type = SB_OPT_STR,
      .offset = W(action),
      .metavar = "ACTION",
      .help = "What was done, a short word (deploy, restart, rotate-secret...); required",
      .flags = SB_OPTF_NOENV },
    { .name = "tool",
      .type = SB_OPT_STR,
      .offset = W(tool),
      .metavar = "TOOL",
      .help = "What did it (kubectl, talon, a script); required",
      .flags = SB_OPTF_NOENV },
    { .name = "detail",
      .type = SB_OPT_STR,
      .offset = W(detail),
      .metavar = "TEXT",
      .help = "What happened, up to 64 KiB; required",
      .flags = SB_OPTF_NOENV },
    { .name = "reason",
      .type = SB_OPT_STR,
      .offset = W(reason),
      .metavar = "TEXT",
      .help = "Why, up to 4 KiB",
      .flags = SB_OPTF_NOENV },
    { .name = "session",
      .type = SB_OPT_STR,
      .offset = W(session),
      .metavar = "ID",
      .help = "Session that acted (sessionId)",
      .env = "SLOG_SESSION_ID" },
    { .name = "system",
      .type = SB_OPT_STR,
      .offset = W(system),
      .metavar = "ID",
      .help = "System acted on (systemId)",
      .env = "SLOG_SYSTEM_ID" },
    FILE_OPT(struct write_settings),
    { .name = "lock-timeout",
      .type = SB_OPT_DURATION,
      .offset = W(lock_timeout_ms),
      .def = "10s",
      .metavar = "DURATION",
      .help = "Longest wait for another writer's lock; a bare number is milliseconds",
      .min = 0,
      .max = 3600000,
      .bare_unit_ms = 1 },
};

static const struct sb_config_spec write_spec = {
    .prog = "slog write",
    .env_prefix = "SLOG",
    .usage = "slog write --action A --tool T --detail D [--reason R] [--session S] [--system S]\n"
             "                  [--file PATH]",
    .summary = "Appends one entry to the log: one JSON line, written whole under an exclusive\n"
               "lock and fsync'd before slog exits 0. When the entry cannot be written, slog\n"
               "exits 1 and says why on stderr; a partial line is never left behind.",
    .footer = EXIT_CODES,
    .opts = write_opts,
    .nopts = sizeof write_opts / sizeof write_opts[0],
};

int slog_cmd_write(int argc, char **argv)
{
    struct write_settings s = { 0 };
    int code = parse(&write_spec, &s, argc, argv);
    if (code >= 0)
        goto out;
    struct slog_fields f = { s.action, s.tool, s.detail, s.reason, s.session, s.system };
    /* An empty --session/--system (or variable) means "none". */
    if (f.session && !*f.session)
        f.session = NULL;
    if (f.system && !*f.system)
        f.system = NULL;
    struct sb_err err = { 0 };
    if (slog_fields_check(&f, &err) != 0) {
        fprintf(stderr, "slog: %s\nUsage: %s\n", err.msg, write_spec.usage);
        code = SLOG_EXIT_USAGE;
        goto out;
    }
    char *path = log_path(s.file);
    if (!path) {
        code = SLOG_EXIT_USAGE;
        goto out;
    }
    struct sb_buf line = SB_BUF_INIT(SLOG_LINE_MAX);
    if (slog_entry_format(&f, sb_now_ms(), &line) != 0) {
        fprintf(stderr, "slog: cannot write %s: out of memory\n", path);
        code = SLOG_EXIT_FAIL;
    } else if (slog_append(path, line.data, line.len, s.lock_timeout_ms, &err) != 0) {
        fprintf(stderr, "slog: cannot write %s: %s\n", path, err.msg);
        code = SLOG_EXIT_FAIL;
    } else {
        code = SLOG_EXIT_OK;
    }
    sb_buf_free(&line);
    free(path);
out:
    sb_config_free(&write_spec, &s);
    return code;
}

/* ---- tail ------------------------------------------------------------------- */

struct tail_settings {
    char *file, *action;
    int64_t n;
    bool json;
};

#define T(f) offsetof(struct tail_settings, f)
static const struct sb_opt tail_opts[] = {
    { .name = "lines",
      .type = SB_OPT_INT,
      .offset = T(n),
      .def = "10",
      .metavar = "N",
      .help = "How many entries",
      .flags = SB_OPTF_NOENV,
      .min = 1,
      .max = 1000000,
      .short_flag = 'n' },
    { .name = "action",
      .type = SB_OPT_STR,
      .offset = T(action),
      .metavar = "ACTION",
      .help = "Only entries with this action",
      .flags = SB_OPTF_NOENV },
    { .name = "json",
      .type = SB_OPT_BOOL,
      .offset = T(json),
      .def = "false",
      .help = "Print the entries' JSON lines as stored",
      .flags = SB_OPTF_NOENV },
    FILE_OPT(struct tail_settings),
};

static const struct sb_config_spec tail_spec = {
    .prog = "slog tail",
    .env_prefix = "SLOG",
    .usage = "slog tail [-n N] [--action A] [--json] [--file PATH]",
    .summary = "Prints the last N entries (after the --action filter), oldest first: one\n"
               "line each, `TIMESTAMP ACTION TOOL: DETAIL (reason: R) [session S, system S]`\n"
               "with control characters escaped, or the stored JSON lines with --json. Lines\n"
               "that are not valid entries are skipped and counted on stderr.",
    .footer = EXIT_CODES,
    .opts = tail_opts,
    .nopts = sizeof tail_opts / sizeof tail_opts[0],
};

/* Writes s with control characters escaped (C0, DEL, and the C1 range
 * U+0080..U+009F that some terminals obey), so that an entry cannot move the
 * cursor or fake another line on a terminal. s is valid UTF-8. */
static void put_escaped(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            printf("\\u%04x", *++p);
        else
            putchar(*p);
    }
}

static void print_human(const struct slog_entry *e)
{
    put_escaped(e->timestamp);
    putchar(' ');
    put_escaped(e->action);
    putchar(' ');
    put_escaped(e->tool);
    fputs(": ", stdout);
    put_escaped(e->detail);
    if (e->reason) {
        fputs(" (reason: ", stdout);
        put_escaped(e->reason);
        putchar(')');
    }
    if (e->session || e->system) {
        fputs(" [", stdout);
        if (e->session) {
            fputs("session ", stdout);
            put_escaped(e->session);
        }
        if (e->session && e->system)
            fputs(", ", stdout);
        if (e->system) {
            fputs("system ", stdout);
            put_escaped(e->system);
        }
        putchar(']');
    }
    putchar('\n');
}

/* Opens the log of a reading command: -1 when open (free *path and close
 * *r after), else the exit code, with the reason on stderr. */
static int open_for_reading(const char *file, char **path, struct slog_reader *r)
{
    if (!(*path = log_path(file)))
        return SLOG_EXIT_USAGE;
    struct sb_err err = { 0 };
    if (slog_reader_open(r, *path, &err) != 0) {
        fprintf(stderr, "slog: cannot read %s: %s\n", *path, err.msg);
        free(*path);
        return SLOG_EXIT_FAIL;
    }
    return -1;
}

int slog_cmd_tail(int argc, char **argv)
{
    struct tail_settings s = { 0 };
    int code = parse(&tail_spec, &s, argc, argv);
    if (code >= 0)
        goto out;
    char *path;
    struct slog_reader r;
    if ((code = open_for_reading(s.file, &path, &r)) >= 0)
        goto out;
    struct sb_err err = { 0 };
    /* A ring of the last n matching lines, kept as stored. */
    size_t cap = (size_t)s.n, count = 0, bad = 0;
    char **ring = calloc(cap, sizeof *ring);
    const char *line;
    size_t len;
    int rc = ring ? 0 : SB_ENOMEM;
    while (rc == 0 && (rc = slog_reader_next(&r, &line, &len, &err)) == 1) {
        rc = 0;
        struct slog_entry e;
        struct sb_err why = { 0 };
        if (slog_reader_entry(&r, line, len, &e, &why) != 0) {
            bad++;
            continue;
        }
        bool match = !s.action || strcmp(e.action, s.action) == 0;
        slog_entry_free(&e);
        if (!match)
            continue;
        char *copy = strndup(line, len);
        if (!copy) {
            rc = SB_ENOMEM;
            break;
        }
        free(ring[count % cap]);
        ring[count % cap] = copy;
        count++;
    }
    if (rc < 0) {
        fprintf(stderr, "slog: cannot read %s: %s\n", path,
                rc == SB_ENOMEM ? "out of memory" : err.msg);
        code = SLOG_EXIT_FAIL;
    } else {
        size_t first = count > cap ? count - cap : 0;
        for (size_t i = first; i < count; i++) {
            const char *l = ring[i % cap];
            if (s.json) {
                puts(l);
                continue;
            }
            struct slog_entry e;
            if (slog_entry_parse(l, strlen(l), &e, NULL) == 0) {
                print_human(&e);
                slog_entry_free(&e);
            }
        }
        if (bad)
            fprintf(stderr, "slog: %s: skipped %zu bad line%s (see: slog validate)\n", path, bad,
                    bad == 1 ? "" : "s");
        code = finish_output(SLOG_EXIT_OK);
    }
    for (size_t i = 0; ring && i < cap; i++)
        free(ring[i]);
    free(ring);
    slog_reader_close(&r);
    free(path);
out:
    sb_config_free(&tail_spec, &s);
    return code;
}

/* ---- validate --------------------------------------------------------------- */

struct validate_settings {
    char *file;
};

static const struct sb_opt validate_opts[] = {
    FILE_OPT(struct validate_settings),
};

#define VALIDATE_SHOWN 10 /* bad lines named one by one; the rest are counted */
static const struct sb_config_spec validate_spec = {
    .prog = "slog validate",
    .env_prefix = "SLOG",
    .usage = "slog validate [--file PATH]",
    .summary = "Checks every line: a JSON object with a valid timestamp and non-empty action,\n"
               "tool and detail strings, optional sessionId/systemId/reason strings or null,\n"
               "each within its size limit, and a newline at the end. Prints\n"
               "`ok: PATH: N entries` and exits 0, or names the bad lines on stderr (the first\n"
               "10 with why, then how many) and exits 1.",
    .footer = EXIT_CODES,
    .opts = validate_opts,
    .nopts = sizeof validate_opts / sizeof validate_opts[0],
};

int slog_cmd_validate(int argc, char **argv)
{
    struct validate_settings s = { 0 };
    int code = parse(&validate_spec, &s, argc, argv);
    if (code >= 0)
        goto out;
    char *path;
    struct slog_reader r;
    if ((code = open_for_reading(s.file, &path, &r)) >= 0)
        goto out;
    struct sb_err err = { 0 };
    unsigned long lines = 0, bad = 0;
    const char *line;
    size_t len;
    int rc;
    while ((rc = slog_reader_next(&r, &line, &len, &err)) == 1) {
        lines++;
        struct slog_entry e;
        struct sb_err why = { 0 };
        if (slog_reader_entry(&r, line, len, &e, &why) == 0) {
            slog_entry_free(&e);
            continue;
        }
        if (++bad <= VALIDATE_SHOWN)
            fprintf(stderr, "slog: %s: line %lu: %s\n", path, r.lineno, why.msg);
    }
    if (rc < 0) {
        fprintf(stderr, "slog: cannot read %s: %s\n", path, err.msg);
        code = SLOG_EXIT_FAIL;
    } else if (bad) {
        fprintf(stderr, "slog: %s: %lu of %lu lines are bad\n", path, bad, lines);
        code = SLOG_EXIT_FAIL;
    } else {
        printf("ok: %s: %lu entries\n", path, lines);
        code = finish_output(SLOG_EXIT_OK);
    }
    slog_reader_close(&r);
    free(path);
out:
    sb_config_free(&validate_spec, &s);
    return code;
}

/* ---- health ----------------------------------------------------------------- */

struct health_settings {
    char *file;
    int64_t max_age_ms;
};

static const struct sb_opt health_opts[] = {
    { .name = "max-age",
      .type = SB_OPT_DURATION,
      .offset = offsetof(struct health_settings, max_age_ms),
      .def = "24h",
      .metavar = "DURATION",
      .help = "Newest entry older than this = not ok (a bare number is seconds)",
      .min = 1000,
      .max = 3650LL * 86400000,
      .bare_unit_ms = 1000 },
    FILE_OPT(struct health_settings),
};

static const struct sb_config_spec health_spec = {
    .prog = "slog health",
    .env_prefix = "SLOG",
    .usage = "slog health [--max-age DURATION] [--file PATH]",
    .summary = "Is the log alive? Prints one JSON object: {ok, file, entries, bad_lines,\n"
               "newest, age_seconds, max_age_seconds, problems}. Not ok (exit 1, problems on\n"
               "stderr too) when the log is missing or unreadable, has no entries, its last\n"
               "line is bad, or its newest entry is older than --max-age: a log that stopped\n"
               "being written shows up. Usable as a talon script probe.",
    .footer = EXIT_CODES,
    .opts = health_opts,
    .nopts = sizeof health_opts / sizeof health_opts[0],
};

static void add_problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(json_t *problems, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(msg));
}

/* What health learns from one pass over the log. */
struct health_scan {
    unsigned long entries, bad;
    bool last_bad; /* the last line read did not parse */
    unsigned long last_lineno;
    char last_why[512]; /* why the last bad line is bad */
    int64_t newest_ms;
    char *newest; /* the newest entry's timestamp (malloc'd), NULL when none */
};

/* Reads every line of path into sc; a log that cannot be read (opened or
 * read to its end) adds a problem. */
static void scan_log(const char *path, struct health_scan *sc, json_t *problems)
{
    struct sb_err err = { 0 };
    struct slog_reader r;
    if (slog_reader_open(&r, path, &err) != 0) {
        add_problem(problems, "cannot read %s: %s", path, err.msg);
        return;
    }
    const char *line;
    size_t len;
    int rc;
    while ((rc = slog_reader_next(&r, &line, &len, &err)) == 1) {
        struct slog_entry e;
        struct sb_err why = { 0 };
        sc->last_lineno = r.lineno;
        sc->last_bad = slog_reader_entry(&r, line, len, &e, &why) != 0;
        if (sc->last_bad) {
            sc->bad++;
            snprintf(sc->last_why, sizeof sc->last_why, "%s", why.msg);
            continue;
        }
        sc->entries++;
        if (!sc->newest || e.ts_ms > sc->newest_ms) {
            char *copy = strdup(e.timestamp);
            if (copy) {
                free(sc->newest);
                sc->newest = copy;
                sc->newest_ms = e.ts_ms;
            }
        }
        slog_entry_free(&e);
    }
    if (rc < 0)
        add_problem(problems, "cannot read %s: %s", path, err.msg);
    slog_reader_close(&r);
}

/* The problems a readable log can have: no entries, a bad last line, a
 * newest entry older than max_age_ms. */
static void judge_log(const struct health_scan *sc, int64_t max_age_ms, int64_t now,
                      json_t *problems)
{
    bool readable = json_array_size(problems) == 0;
    if (readable && sc->entries == 0)
        add_problem(problems, "the log has no entries");
    if (readable && sc->last_bad)
        add_problem(problems, "the last line (%lu) is bad: %s", sc->last_lineno, sc->last_why);
    if (sc->newest && now - sc->newest_ms > max_age_ms) {
        char age[32], max[32];
        sb_duration_format((now - sc->newest_ms) / 1000 * 1000, age, sizeof age);
        sb_duration_format(max_age_ms, max, sizeof max);
        add_problem(problems, "the newest entry (%s) is %s old, more than --max-age %s", sc->newest,
                    age, max);
    }
}

/* Prints the report on stdout and each problem on stderr; returns the exit
 * code. */
static int print_health(const char *path, const struct health_scan *sc, int64_t max_age_ms,
                        int64_t now, json_t *problems)
{
    bool ok = json_array_size(problems) == 0;
    json_t *doc =
        json_pack("{s:b, s:s, s:I, s:I, s:o, s:o, s:f, s:O}", "ok", ok, "file", path, "entries",
                  (json_int_t)sc->entries, "bad_lines", (json_int_t)sc->bad, "newest",
                  sc->newest ? json_string(sc->newest) : json_null(), "age_seconds",
                  sc->newest ? json_real((double)(now - sc->newest_ms) / 1000.0) : json_null(),
                  "max_age_seconds", (double)max_age_ms / 1000.0, "problems", problems);
    char *text = doc ? sb_json_dumps(doc, NULL) : NULL;
    int code;
    if (!text) {
        fprintf(stderr, "slog: out of memory\n");
        code = SLOG_EXIT_FAIL;
    } else {
        puts(text);
        for (size_t i = 0; i < json_array_size(problems); i++)
            fprintf(stderr, "slog: health: %s\n", json_string_value(json_array_get(problems, i)));
        code = finish_output(ok ? SLOG_EXIT_OK : SLOG_EXIT_FAIL);
    }
    free(text);
    json_decref(doc);
    return code;
}

int slog_cmd_health(int argc, char **argv)
{
    struct health_settings s = { 0 };
    int code = parse(&health_spec, &s, argc, argv);
    if (code >= 0)
        goto out;
    char *path = log_path(s.file);
    if (!path) {
        code = SLOG_EXIT_USAGE;
        goto out;
    }
    json_t *problems = json_array();
    struct health_scan sc = { 0 };
    scan_log(path, &sc, problems);
    int64_t now = sb_now_ms();
    judge_log(&sc, s.max_age_ms, now, problems);
    code = print_health(path, &sc, s.max_age_ms, now, problems);
    json_decref(problems);
    free(sc.newest);
    free(path);
out:
    sb_config_free(&health_spec, &s);
    return code;
}
