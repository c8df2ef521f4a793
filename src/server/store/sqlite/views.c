/* views.c - the SQLite backend's reads for the REST API (runs, a run's queue
 * and steps, events, apps, functions, cancellations): records handed to a
 * callback, row by row; api/views.c makes the JSON. Statements with variable
 * filters are prepared per call (these are not hot paths). A scan that fails
 * part way returns its error after the rows so far (the caller drops them:
 * a page is whole or absent). Every text column is read as nullable, so a
 * NULL where none belongs shows as null instead of failing the page. */
#include "sq.h"
#include "common/buf.h"

#include <stdio.h>
#include <string.h>

/* Prepares sql on st's connection; SB_ESTORE with err on failure. */
static int prepare(struct sbd_store *st, const char *sql, sqlite3_stmt **s, struct sb_err *err)
{
    if (sqlite3_prepare_v2(sq_conn(st)->db, sql, -1, s, NULL) == SQLITE_OK)
        return 0;
    return sb_err_set(err, SB_ESTORE, "database: %s", sqlite3_errmsg(sq_conn(st)->db));
}

/* A scan's callback: the operation's fn (one member of cb, by the record it
 * takes), its ctx, and where a row that cannot be read reports why. */
struct rows {
    struct sb_err *err;
    void *ctx;
    union {
        int (*run)(void *ctx, const struct sbd_run_info *r);
        int (*queue)(void *ctx, const struct sbd_qitem_rec *q, const struct sbd_wait_rec *w);
        int (*step)(void *ctx, const struct sbd_step_rec *s);
        int (*event)(void *ctx, const struct sbd_ev_rec *e);
        int (*app)(void *ctx, const struct sbd_app_info *a);
        int (*function)(void *ctx, const struct sbd_fn_info *f);
        int (*cancellation)(void *ctx, const struct sbd_cancellation_rec *c);
    } cb;
};

/* Reads the current row of s into a record and calls its callback: the
 * callback's return, or an error (r->err filled) when a column could not be
 * read. */
typedef int row_fn(sqlite3_stmt *s, struct rows *r);

/* Steps s, calling row for each row, then finalizes s: 0, the first nonzero
 * return of row, or the error of the scan (err filled). */
static int scan(struct sbd_store *st, sqlite3_stmt *s, row_fn *row, struct rows *r)
{
    int rc;
    while ((rc = sq_next_row(st, s, r->err)) > 0) {
        if ((rc = row(s, r)))
            break;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Steps s for its one row, as scan; SB_ENOTFOUND with "no such <what>: id"
 * when there is none. */
static int one(struct sbd_store *st, sqlite3_stmt *s, row_fn *row, struct rows *r, const char *what,
               const char *id)
{
    int rc = sq_next_row(st, s, r->err);
    if (rc > 0)
        rc = row(s, r);
    else if (rc == 0)
        rc = sb_err_set(r->err, SB_ENOTFOUND, "no such %s: %s", what, id);
    sqlite3_finalize(s);
    return rc;
}

/* ---- runs ---- */

#define RUN_COLS                                                                              \
    "r.id,r.function_id,r.app_id,r.event_id,r.status,r.created_at,r.started_at,r.updated_at," \
    "r.ended_at,r.output,r.error"

static int run_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_run_info run = {
        .id = sq_col_text(s, 0, &crc),
        .function_id = sq_col_text(s, 1, &crc),
        .app_id = sq_col_text(s, 2, &crc),
        .event_id = sq_col_text(s, 3, &crc),
        .status = sqlite3_column_int(s, 4),
        .created_at = sq_col_time(s, 5),
        .started_at = sq_col_time(s, 6),
        .updated_at = sq_col_time(s, 7),
        .ended_at = sq_col_time(s, 8),
        .output = sq_col_text(s, 9, &crc),
        .error = sq_col_text(s, 10, &crc),
    };
    return crc ? sq_col_error(r->err, crc) : r->cb.run(r->ctx, &run);
}

int sq_run_get(struct sbd_store *st, const char *run_id,
               int (*fn)(void *ctx, const struct sbd_run_info *r), void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st, "SELECT " RUN_COLS " FROM runs r WHERE r.id=?", &s, err))
        return SB_ESTORE;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    struct rows r = { .err = err, .ctx = ctx, .cb.run = fn };
    return one(st, s, run_row, &r, "run", run_id);
}

int sq_run_status(struct sbd_store *st, const char *run_id, int *status, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st, "SELECT status FROM runs WHERE id=?", &s, err))
        return SB_ESTORE;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int rc = sq_next_row(st, s, err);
    if (rc > 0)
        *status = sqlite3_column_int(s, 0);
    else if (rc == 0)
        rc = sb_err_set(err, SB_ENOTFOUND, "no such run: %s", run_id);
    sqlite3_finalize(s);
    return rc > 0 ? 0 : rc;
}

int sq_runs_list(struct sbd_store *st, const struct sbd_run_filter *f,
                 int (*fn)(void *ctx, const struct sbd_run_info *r), void *ctx, struct sb_err *err)
{
    struct sb_buf q = SB_BUF_INIT(0); /* SQL from this function's literals (values are bound) */
    sb_buf_puts(&q, "SELECT " RUN_COLS " FROM runs r WHERE 1=1");
    if (f->status >= 0)
        sb_buf_puts(&q, " AND r.status=?1");
    if (f->function_id)
        sb_buf_puts(&q, " AND r.function_id=?2");
    if (f->app_id)
        sb_buf_puts(&q, " AND r.app_id=?3");
    if (f->event_id)
        sb_buf_puts(&q, " AND (r.event_id=?4 OR r.id IN (SELECT run_id FROM run_events "
                        "WHERE event_id=?4))"); /* a batch's other events */
    if (f->since_ms > 0)
        sb_buf_puts(&q, " AND r.created_at>=?5");
    if (f->cursor)
        sb_buf_puts(&q, " AND r.id<?6");
    sb_buf_puts(&q, " ORDER BY r.id DESC LIMIT ?7");
    sqlite3_stmt *s;
    int prc = prepare(st, sb_buf_cstr(&q), &s, err);
    sb_buf_free(&q);
    if (prc)
        return prc;
    if (f->status >= 0)
        sqlite3_bind_int(s, 1, f->status);
    sq_bind_text(s, 2, f->function_id);
    sq_bind_text(s, 3, f->app_id);
    sq_bind_text(s, 4, f->event_id);
    sqlite3_bind_int64(s, 5, f->since_ms);
    sq_bind_text(s, 6, f->cursor);
    sqlite3_bind_int(s, 7, f->limit);
    struct rows r = { .err = err, .ctx = ctx, .cb.run = fn };
    return scan(st, s, run_row, &r);
}

static int queue_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_qitem_rec q = {
        .run_id = sq_col_text(s, 11, &crc),
        .step_id = sq_col_text(s, 0, &crc),
        .attempt = sqlite3_column_int(s, 1),
        .due_at = sq_col_time(s, 2),
        .started_at = sq_col_time(s, 3),
        .transport_failures = sqlite3_column_int(s, 4),
        .transport_since = sq_col_time(s, 5),
        .last_error = sq_col_text(s, 6, &crc),
        .flags = sqlite3_column_int(s, 7),
    };
    struct sbd_wait_rec w = {
        .event_name = sq_col_text(s, 8, &crc),
        .expression = sq_col_text(s, 9, &crc),
        .child_run_id = sq_col_text(s, 10, &crc),
    };
    q.id = w.item_id = sqlite3_column_int64(s, 12);
    w.run_id = q.run_id;
    w.step_hash = q.step_id;
    return crc ? sq_col_error(r->err, crc) : r->cb.queue(r->ctx, &q, &w);
}

int sq_run_queue(struct sbd_store *st, const char *run_id,
                 int (*fn)(void *ctx, const struct sbd_qitem_rec *q, const struct sbd_wait_rec *w),
                 void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT q.step_id,q.attempt,q.due_at,q.started_at,"
                "q.transport_failures,q.transport_since,q.last_error,q.flags,"
                "w.event_name,w.expression,w.child_run_id,q.run_id,q.id FROM queue q "
                "LEFT JOIN waits w ON "
                "w.item_id=q.id WHERE q.run_id=? ORDER BY q.due_at",
                &s, err))
        return SB_ESTORE;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    struct rows r = { .err = err, .ctx = ctx, .cb.queue = fn };
    return scan(st, s, queue_row, &r);
}

static int step_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_step_rec step = {
        .run_id = sq_col_text(s, 10, &crc),
        .hash = sq_col_text(s, 0, &crc),
        .seq = sqlite3_column_type(s, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 9),
        .name = sq_col_text(s, 1, &crc),
        .op = sq_col_text(s, 2, &crc),
        .status = sqlite3_column_int(s, 3),
        .attempts = sqlite3_column_int(s, 4),
        .output = sq_col_text(s, 5, &crc),
        .error = sq_col_text(s, 6, &crc),
        .started_at = sq_col_time(s, 7),
        .ended_at = sq_col_time(s, 8),
    };
    return crc ? sq_col_error(r->err, crc) : r->cb.step(r->ctx, &step);
}

int sq_run_steps(struct sbd_store *st, const char *run_id,
                 int (*fn)(void *ctx, const struct sbd_step_rec *s), void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT hash,name,op,status,attempts,output,error,started_at,ended_at,"
                "seq,run_id FROM steps WHERE run_id=? ORDER BY seq IS NULL, seq, started_at",
                &s, err))
        return SB_ESTORE;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    struct rows r = { .err = err, .ctx = ctx, .cb.step = fn };
    return scan(st, s, step_row, &r);
}

/* ---- events ---- */

#define EVENT_COLS "id,name,body,ts,received_at,dedupe_key"

static int event_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_ev_rec e = {
        .name = sq_col_text(s, 1, &crc),
        .body = sq_col_text(s, 2, &crc),
        .ts = sqlite3_column_int64(s, 3),
        .received_at = sq_col_time(s, 4),
        .dedupe_key = sq_col_text(s, 5, &crc),
    };
    const char *id = sq_col_text(s, 0, &crc);
    snprintf(e.id, sizeof e.id, "%s", id ? id : "");
    return crc ? sq_col_error(r->err, crc) : r->cb.event(r->ctx, &e);
}

int sq_event_get(struct sbd_store *st, const char *event_id,
                 int (*fn)(void *ctx, const struct sbd_ev_rec *e), void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st, "SELECT " EVENT_COLS " FROM events WHERE id=?", &s, err))
        return SB_ESTORE;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    struct rows r = { .err = err, .ctx = ctx, .cb.event = fn };
    return one(st, s, event_row, &r, "event", event_id);
}

int sq_events_list(struct sbd_store *st, const struct sbd_event_filter *f,
                   int (*fn)(void *ctx, const struct sbd_ev_rec *e), void *ctx, struct sb_err *err)
{
    struct sb_buf q = SB_BUF_INIT(0); /* SQL from this function's literals (values are bound) */
    sb_buf_puts(&q, "SELECT " EVENT_COLS " FROM events WHERE 1=1");
    if (f->name)
        sb_buf_puts(&q, " AND name=?1");
    if (f->after_ms > 0)
        sb_buf_puts(&q, " AND received_at>=?2");
    if (f->before_ms > 0)
        sb_buf_puts(&q, " AND received_at<?3");
    if (f->cursor)
        sb_buf_puts(&q, " AND id<?4");
    sb_buf_puts(&q, " ORDER BY id DESC LIMIT ?5");
    sqlite3_stmt *s;
    int prc = prepare(st, sb_buf_cstr(&q), &s, err);
    sb_buf_free(&q);
    if (prc)
        return prc;
    sq_bind_text(s, 1, f->name);
    sqlite3_bind_int64(s, 2, f->after_ms);
    sqlite3_bind_int64(s, 3, f->before_ms);
    sq_bind_text(s, 4, f->cursor);
    sqlite3_bind_int(s, 5, f->limit);
    struct rows r = { .err = err, .ctx = ctx, .cb.event = fn };
    return scan(st, s, event_row, &r);
}

/* ---- apps, functions, cancellations ---- */

static int app_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_app_info a = {
        .id = sq_col_text(s, 0, &crc),
        .url = sq_col_text(s, 1, &crc),
        .sdk = sq_col_text(s, 2, &crc),
        .framework = sq_col_text(s, 3, &crc),
        .app_version = sq_col_text(s, 4, &crc),
        .checksum = sq_col_text(s, 5, &crc),
        .created_at = sq_col_time(s, 6),
        .synced_at = sq_col_time(s, 7),
        .sync_error = sq_col_text(s, 8, &crc),
        .sync_error_at = sq_col_time(s, 9),
        .function_count = sqlite3_column_int(s, 10),
    };
    return crc ? sq_col_error(r->err, crc) : r->cb.app(r->ctx, &a);
}

int sq_apps_list(struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_app_info *a),
                 void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT a.id,a.url,a.sdk,a.framework,a.app_version,a.checksum,"
                "a.created_at,a.synced_at,a.sync_error,a.sync_error_at,"
                "(SELECT COUNT(*) FROM functions f WHERE f.app_id=a.id AND "
                "f.removed_at IS NULL) FROM apps a WHERE a.deleted_at IS NULL "
                "ORDER BY a.id",
                &s, err))
        return SB_ESTORE;
    struct rows r = { .err = err, .ctx = ctx, .cb.app = fn };
    return scan(st, s, app_row, &r);
}

static int function_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_fn_info f = {
        .id = sq_col_text(s, 0, &crc),
        .app_id = sq_col_text(s, 1, &crc),
        .name = sq_col_text(s, 2, &crc),
        .config = sq_col_text(s, 3, &crc),
        .created_at = sq_col_time(s, 4),
        .updated_at = sq_col_time(s, 5),
        .removed_at = sq_col_time(s, 6),
    };
    return crc ? sq_col_error(r->err, crc) : r->cb.function(r->ctx, &f);
}

int sq_functions_list(struct sbd_store *st, const char *app_id, bool include_removed,
                      int (*fn)(void *ctx, const struct sbd_fn_info *f), void *ctx,
                      struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT id,app_id,name,config,created_at,updated_at,removed_at FROM "
                "functions WHERE (?1 IS NULL OR app_id=?1) AND (?2 OR removed_at IS "
                "NULL) ORDER BY app_id,id",
                &s, err))
        return SB_ESTORE;
    sq_bind_text(s, 1, app_id);
    sqlite3_bind_int(s, 2, include_removed);
    struct rows r = { .err = err, .ctx = ctx, .cb.function = fn };
    return scan(st, s, function_row, &r);
}

static int cancellation_row(sqlite3_stmt *s, struct rows *r)
{
    int crc = 0;
    struct sbd_cancellation_rec c = {
        .app_id = sq_col_text(s, 1, &crc),
        .function_id = sq_col_text(s, 2, &crc),
        .started_after = sqlite3_column_int64(s, 3),
        .started_before = sqlite3_column_int64(s, 4),
        .expression = sq_col_text(s, 5, &crc),
        .created_at = sq_col_time(s, 6),
        .run_count = sqlite3_column_int64(s, 7),
    };
    const char *id = sq_col_text(s, 0, &crc);
    snprintf(c.id, sizeof c.id, "%s", id ? id : "");
    return crc ? sq_col_error(r->err, crc) : r->cb.cancellation(r->ctx, &c);
}

int sq_cancellations_list(struct sbd_store *st, int limit,
                          int (*fn)(void *ctx, const struct sbd_cancellation_rec *c), void *ctx,
                          struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT id,app_id,function_id,started_after,started_before,expression,"
                "created_at,run_count FROM cancellations ORDER BY id DESC LIMIT ?",
                &s, err))
        return SB_ESTORE;
    sqlite3_bind_int(s, 1, limit);
    struct rows r = { .err = err, .ctx = ctx, .cb.cancellation = fn };
    return scan(st, s, cancellation_row, &r);
}
