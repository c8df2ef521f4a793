/* export.c - the SQLite store in the export format (store.h,
 * SBD_STORE_EXPORT_MAGIC; docs/internals/store.md, "Export format"): what
 * `sysbusd migrate` reads from a SQLite store to load into PostgreSQL.
 *
 * One read transaction on a read-only connection (a consistent snapshot;
 * a running sysbusd is not blocked, though migrate itself holds the writer's
 * lock so that none runs). Each table is written with its columns in
 * SQLite's order (PRAGMA table_info), each row as one line of PostgreSQL's
 * COPY text format: values separated by tabs, NULL as \N, backslash, tab,
 * newline and carriage return escaped. The store has no meta table: the
 * target keeps its own bus id. */
#include "sq.h"

#include <stdio.h>
#include <string.h>

static const char *const tables[] = {
    "apps",  "functions", "events",    "runs",          "steps",    "queue",      "waits",
    "crons", "flow_keys", "rate_hits", "cancellations", "deferred", "run_events", "cancel_requests",
};
#define NTABLES (sizeof tables / sizeof tables[0])

static void put_text(FILE *f, const unsigned char *t, int n)
{
    for (int i = 0; i < n; i++) {
        switch (t[i]) {
        case '\\': fputs("\\\\", f); break;
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        default: fputc(t[i], f);
        }
    }
}

/* "a,b,c" of table into cols. */
static int columns(sqlite3 *db, const char *table, char *cols, size_t size, int *n,
                   struct sb_err *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return sb_err_set(err, SB_ESTORE, "cannot read the columns of %s: %s", table,
                          sqlite3_errmsg(db));
    size_t k = 0;
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && k < size)
        k += (size_t)snprintf(cols + k, size - k, "%s%s", (*n)++ ? "," : "",
                              (const char *)sqlite3_column_text(s, 1));
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE || k >= size || *n == 0)
        return sb_err_set(err, SB_ESTORE, "cannot read the columns of %s", table);
    return 0;
}

static int export_table(sqlite3 *db, const char *table, FILE *f, struct sb_err *err)
{
    char cols[1024], sql[1200];
    int ncol;
    int rc = columns(db, table, cols, sizeof cols, &ncol, err);
    if (rc)
        return rc;
    snprintf(sql, sizeof sql, "SELECT %s FROM %s", cols, table);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return sb_err_set(err, SB_ESTORE, "cannot read %s: %s", table, sqlite3_errmsg(db));
    fprintf(f, "table %s %s\n", table, cols);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++) {
            if (i)
                fputc('\t', f);
            switch (sqlite3_column_type(s, i)) {
            case SQLITE_NULL: fputs("\\N", f); break;
            case SQLITE_INTEGER: fprintf(f, "%lld", (long long)sqlite3_column_int64(s, i)); break;
            case SQLITE_FLOAT: fprintf(f, "%.17g", sqlite3_column_double(s, i)); break;
            default: put_text(f, sqlite3_column_text(s, i), sqlite3_column_bytes(s, i));
            }
        }
        fputc('\n', f);
    }
    sqlite3_finalize(s);
    fputs("\\.\n", f);
    if (rc != SQLITE_DONE)
        return sb_err_set(err, SB_ESTORE, "cannot read %s: %s", table, sqlite3_errstr(rc));
    return 0;
}

int sq_export(const char *url, FILE *out, struct sb_err *err)
{
    const char *path = sq_url_path(url, err);
    if (!path)
        return SB_EINVAL;
    struct sbd_store *st = NULL;
    int rc = sq_open_reader(url, &st, err);
    if (rc)
        return rc;
    sqlite3 *db = sq_conn(st)->db;
    int version = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        rc = sb_err_set(err, SB_ESTORE, "cannot read %s: %s", path, sqlite3_errmsg(db));
    if (!rc)
        fprintf(out, "%s\nschema_version %d\n", SBD_STORE_EXPORT_MAGIC, version);
    for (size_t i = 0; !rc && i < NTABLES; i++)
        rc = export_table(db, tables[i], out, err);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (!rc)
        fputs("end\n", out);
    if (!rc && (fflush(out) != 0 || ferror(out)))
        rc = sb_err_errno(err, SB_EIO, "cannot write the export");
    sq_close(st);
    return rc;
}
