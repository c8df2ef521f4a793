/* backup.c - the PostgreSQL store's export and import (sysbusd backup,
 * restore and migrate).
 *
 * The export (the store-neutral format of store.h, SBD_STORE_EXPORT_MAGIC;
 * docs/internals/store.md, "Export format") is one consistent snapshot of
 * the store's tables: a REPEATABLE READ, READ ONLY transaction (it blocks no
 * writer) copies each table with COPY ... TO STDOUT in PostgreSQL's text
 * format. The file:
 *
 *   SYSBUS-EXPORT 1
 *   schema_version N
 *   table NAME COLUMN,COLUMN,...   (for each table)
 *   <COPY text rows>
 *   \.
 *   end
 *
 * COPY's text format escapes backslashes and newlines inside values, so a
 * row never is the line "\." and every row is one line. A backup file is
 * written beside the target as <path>.partial, fsync'd and renamed; "end"
 * is written last, so a file without it is refused.
 *
 * Import (restore, and the target side of migrate) takes the store's
 * writable connection (pgs_open: creates and migrates the schema, takes the
 * writer's lock, so no sysbusd runs on it meanwhile), requires the export's
 * schema version to be this binary's, refuses a store holding data unless
 * forced (every table is emptied first), and loads each table with COPY ...
 * FROM STDIN in one transaction: the whole export is in the store or none
 * of it. Table and column names come from the file, so each is checked
 * against the tables this binary has and the identifier characters before
 * it reaches SQL. The bus id in the export's meta table replaces the new
 * store's (it is the same bus); an export without one (a SQLite store's)
 * keeps the store's. */
#include "pgs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_MAGIC SBD_STORE_EXPORT_MAGIC
/* The longest line an import reads (PostgreSQL's largest field is 1 GiB):
 * a longer one is refused as not a whole export. */
#define EXPORT_MAX_LINE (1L << 30)

/* Every table of the schema (schema.c), meta first. */
static const char *const tables[] = {
    "meta",  "apps",  "functions", "events",     "runs",          "steps",    "queue",
    "waits", "crons", "flow_keys", "rate_hits",  "cancellations", "deferred", "run_events",
    "cancel_requests",
};
#define NTABLES (sizeof tables / sizeof tables[0])

/* A failed statement: SB_EINVAL for what the file's content caused (a bad
 * value: class 22; a column we do not have: 42703, 42P01), else SB_ESTORE. */
static int result_error(struct sb_err *err, struct pgs_conn *c, PGresult *r, const char *what)
{
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(c->db);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int code = state && (strncmp(state, "22", 2) == 0 || strcmp(state, "42703") == 0 ||
                         strcmp(state, "42P01") == 0)
                   ? SB_EINVAL
                   : SB_ESTORE;
    return sb_err_set(err, code, "database (%s): %s: %.*s", c->where, what,
                      (int)strcspn(m, "\n"), m);
}

/* Runs sql, expecting no rows back. */
static int run(struct pgs_conn *c, const char *sql, struct sb_err *err)
{
    PGresult *r = PQexec(c->db, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : result_error(err, c, r, sql);
    PQclear(r);
    return rc;
}

/* The one-value answer of sql into out. */
static int run_value(struct pgs_conn *c, const char *sql, char *out, size_t size,
                     struct sb_err *err)
{
    PGresult *r = PQexec(c->db, sql);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        rc = result_error(err, c, r, sql);
    else
        snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Reads what is left of an answer; stops at a copy still open (its
 * PQgetResult would answer the same for ever). */
static void drain_results(struct pgs_conn *c)
{
    PGresult *r;
    while ((r = PQgetResult(c->db))) {
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT)
            break;
    }
}

/* The columns of table, "a,b,c", in their order in the schema. */
static int table_columns(struct pgs_conn *c, const char *table, char *out, size_t size,
                         struct sb_err *err)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
             "information_schema.columns WHERE table_schema = current_schema() AND "
             "table_name = '%s'",
             table);
    return run_value(c, sql, out, size, err);
}

/* COPY table TO STDOUT into f, after its "table NAME COLUMNS" line. */
static int export_table(struct pgs_conn *c, const char *table, FILE *f, struct sb_err *err)
{
    char cols[1024], sql[1200];
    int rc = table_columns(c, table, cols, sizeof cols, err);
    if (rc)
        return rc;
    snprintf(sql, sizeof sql, "COPY %s (%s) TO STDOUT", table, cols);
    PGresult *r = PQexec(c->db, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        rc = result_error(err, c, r, sql);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    fprintf(f, "table %s %s\n", table, cols);
    char *row;
    int n;
    while ((n = PQgetCopyData(c->db, &row, 0)) > 0) {
        fwrite(row, 1, (size_t)n, f);
        PQfreemem(row);
    }
    r = PQgetResult(c->db);
    rc = n == -1 && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : result_error(err, c, r, sql);
    PQclear(r);
    drain_results(c);
    fputs("\\.\n", f);
    return rc;
}

static int export_all(struct pgs_conn *c, FILE *f, struct sb_err *err)
{
    char version[32];
    /* a large store takes longer than a server statement may (conn.c) */
    int rc = run(c, "SET statement_timeout TO 0", err);
    if (!rc)
        rc = run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
    if (!rc)
        rc = run_value(c, "SELECT value FROM meta WHERE key='schema_version'", version,
                       sizeof version, err);
    if (!rc)
        fprintf(f, "%s\nschema_version %s\n", EXPORT_MAGIC, version);
    for (size_t i = 0; !rc && i < NTABLES; i++)
        rc = export_table(c, tables[i], f, err);
    struct sb_err ignored;
    run(c, rc ? "ROLLBACK" : "COMMIT", &ignored);
    if (!rc)
        fputs("end\n", f);
    return rc;
}

int pgs_export(const char *url, FILE *out, struct sb_err *err)
{
    struct sbd_store *st = NULL;
    int rc = pgs_open_reader(url, &st, err);
    if (rc)
        return rc;
    rc = export_all(pgs_conn(st), out, err);
    pgs_close(st);
    if (!rc && (fflush(out) != 0 || ferror(out)))
        rc = sb_err_errno(err, SB_EIO, "cannot write the export");
    return rc;
}

int pgs_backup(const char *url, const char *path, struct sb_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.partial", path) >= (int)sizeof tmp)
        return sb_err_set(err, SB_EINVAL, "backup path too long");
    /* O_EXCL: a second backup to the same file must not write into this one */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int rc = errno == EEXIST ? sb_err_set(err, SB_EEXISTS,
                                              "%s exists: another backup to the same file is "
                                              "running, or one was cut short (remove it)",
                                              tmp)
                                 : sb_err_errno(err, SB_EIO, "cannot create %s", tmp);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int rc = pgs_export(url, f, err);
    if (!rc && (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
    if (fclose(f) != 0 && !rc)
        rc = sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
    if (!rc && rename(tmp, path) != 0)
        rc = sb_err_errno(err, SB_EIO, "cannot rename %s to %s", tmp, path);
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- import ---- */

/* The next line of f into *line (getline's buffer), without its newline;
 * false at the end of the file, and for a last line without its newline
 * (every line of a whole export has one: this one was cut short). */
static bool next_line(FILE *f, char **line, size_t *cap, ssize_t *len)
{
    *len = getline(line, cap, f);
    if (*len <= 0 || (*line)[*len - 1] != '\n' || *len > EXPORT_MAX_LINE)
        return false;
    (*line)[--*len] = 0;
    return true;
}

static int bad_file(struct sb_err *err, const char *path, const char *why)
{
    return sb_err_set(err, SB_EINVAL, "%s is not a whole sysbusd export: %s", path, why);
}

/* COPY target ("table (columns)") FROM STDIN with the rows of f up to its
 * "\." line. */
static int import_table(struct pgs_conn *c, const char *table, FILE *f, const char *path,
                        struct sb_err *err)
{
    char sql[1300];
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN", table);
    PGresult *r = PQexec(c->db, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        int rc = result_error(err, c, r, sql);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool ended = false;
    int rc = 0;
    long long rows = 0;
    while (!rc && next_line(f, &line, &cap, &len)) {
        if (strcmp(line, "\\.") == 0) {
            ended = true;
            break;
        }
        rows++;
        line[len] = '\n';
        if (PQputCopyData(c->db, line, (int)len + 1) != 1)
            rc = result_error(err, c, NULL, sql);
    }
    free(line);
    if (!rc && !ended)
        rc = bad_file(err, path, "it ends inside a table");
    if (PQputCopyEnd(c->db, rc ? "the backup file is not whole" : NULL) != 1 && !rc)
        rc = result_error(err, c, NULL, sql);
    r = PQgetResult(c->db);
    if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = result_error(err, c, r, sql);
    else if (!rc && atoll(PQcmdTuples(r)) != rows) /* verified: every row is in */
        rc = sb_err_set(err, SB_ESTORE, "%s: %lld rows sent, %s stored", sql, rows,
                        PQcmdTuples(r));
    PQclear(r);
    drain_results(c);
    return rc;
}

/* The header of the export: its schema version must be this binary's. */
static int read_header(FILE *f, const char *path, struct sb_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0, version = -1;
    bool got = next_line(f, &line, &cap, &len);
    if (!got || strcmp(line, EXPORT_MAGIC) != 0)
        rc = len >= 15 && strncmp(line, "SQLite format 3", 15) == 0
                 ? sb_err_set(err, SB_EINVAL,
                              "%s is a backup of a SQLite store: restore it into a sqlite:// "
                              "store (--data-dir)",
                              path)
                 : sb_err_set(err, SB_EINVAL, "%s is not a sysbusd backup", path);
    else if (!next_line(f, &line, &cap, &len) || sscanf(line, "schema_version %d", &version) != 1)
        rc = bad_file(err, path, "no schema version");
    else if (version > SBD_STORE_SCHEMA_VERSION)
        rc = sb_err_set(err, SB_ECONFIG,
                        "%s has schema version %d, newer than this sysbusd's (%d): use a sysbusd "
                        "at least as new as the one that wrote it",
                        path, version, SBD_STORE_SCHEMA_VERSION);
    else if (version != SBD_STORE_SCHEMA_VERSION)
        rc = sb_err_set(err, SB_EINVAL,
                        "%s has schema version %d and this sysbusd writes %d: restore it with a "
                        "sysbusd of that version, then start this one (it migrates the store)",
                        path, version, SBD_STORE_SCHEMA_VERSION);
    free(line);
    return rc;
}

/* A "table NAME COLUMNS" line: NAME one of `tables`, COLUMNS identifiers
 * separated by commas (the file is input: nothing else reaches the SQL). */
static bool table_line(const char *line, const char **name, const char **cols)
{
    static char nbuf[64];
    if (strncmp(line, "table ", 6) != 0)
        return false;
    const char *n = line + 6, *sp = strchr(n, ' ');
    if (!sp || (size_t)(sp - n) >= sizeof nbuf)
        return false;
    snprintf(nbuf, sizeof nbuf, "%.*s", (int)(sp - n), n);
    *name = NULL;
    for (size_t i = 0; i < NTABLES; i++)
        if (strcmp(tables[i], nbuf) == 0)
            *name = tables[i];
    *cols = sp + 1;
    if (!*name || !**cols || strlen(*cols) > 1000)
        return false;
    for (const char *p = *cols; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (*p == ',' && p[1] && p[1] != ',')))
            return false;
    return true;
}

/* Whether meta holds this binary's schema version and one bus id, a ULID
 * ("t" or "f" into out). */
static int meta_ok(struct pgs_conn *c, char *out, size_t size, struct sb_err *err)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM meta WHERE key='schema_version' AND value='%d') = 1 "
             "AND (SELECT count(*) FROM meta WHERE key='bus_id' AND "
             "value ~ '^[0-9A-HJKMNP-TV-Z]{26}$') = 1",
             SBD_STORE_SCHEMA_VERSION);
    return run_value(c, sql, out, size, err);
}

/* Empties every table but meta (the store must hold no data unless force). */
static int empty_store(struct pgs_conn *c, bool force, struct sb_err *err)
{
    char has[8];
    int rc = run_value(c,
                       "SELECT EXISTS(SELECT 1 FROM apps) OR EXISTS(SELECT 1 FROM events) OR "
                       "EXISTS(SELECT 1 FROM runs)",
                       has, sizeof has, err);
    if (!rc && strcmp(has, "t") == 0 && !force)
        rc = sb_err_set(err, SB_EEXISTS,
                        "the store (database %s, schema %s) holds data already: restore into an "
                        "empty store, or give --force to replace its data",
                        c->where, c->schema);
    for (size_t i = 1; !rc && i < NTABLES; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "DELETE FROM %s", tables[i]);
        rc = run(c, sql, err);
    }
    return rc;
}

/* The tables of f into the store, in one transaction. An export without a
 * meta table (one of a SQLite store) keeps the store's own. */
static int import_all(struct pgs_conn *c, FILE *f, const char *path, bool force,
                      struct sb_err *err)
{
    int rc = run(c, "SET statement_timeout TO 0", err);
    if (!rc)
        rc = run(c, "BEGIN", err);
    if (!rc)
        rc = empty_store(c, force, err);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool ended = false;
    while (!rc && next_line(f, &line, &cap, &len)) {
        const char *name, *cols;
        if (strcmp(line, "end") == 0) {
            ended = true;
            break;
        }
        if (!table_line(line, &name, &cols)) {
            rc = bad_file(err, path, "a table this sysbusd does not have, or a malformed line");
            break;
        }
        char sql[1200];
        if (strcmp(name, "meta") == 0 && (rc = run(c, "DELETE FROM meta", err)))
            break;
        snprintf(sql, sizeof sql, "%s (%s)", name, cols);
        rc = import_table(c, sql, f, path, err);
    }
    free(line);
    if (!rc && !ended)
        rc = bad_file(err, path, "it has no end line");
    char meta[8];
    if (!rc) /* the file's meta (when it had one) must describe this schema */
        rc = meta_ok(c, meta, sizeof meta, err);
    if (!rc && strcmp(meta, "t") != 0)
        rc = bad_file(err, path, "its meta table is not this schema's (version, bus id)");
    struct sb_err ignored;
    if (rc)
        run(c, "ROLLBACK", &ignored);
    else
        rc = run(c, "COMMIT", err);
    return rc;
}

int pgs_restore(const char *url, const char *path, bool force, struct sb_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return sb_err_errno(err, errno == ENOENT ? SB_ENOTFOUND : SB_EIO, "cannot open %s", path);
    int rc = read_header(f, path, err);
    struct sbd_store *st = NULL;
    if (!rc && (rc = pgs_open(url, &st, err)) == SB_ECONFIG && strstr(err->msg, "another sysbusd")) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = sb_err_set(err, SB_EBUSY, "%.400s: stop every sysbusd on it before restoring", why);
    }
    if (!rc)
        rc = import_all(pgs_conn(st), f, path, force, err);
    pgs_close(st);
    fclose(f);
    return rc;
}
