/* store_views.c - reads shaped as the REST API returns them (runs, steps,
 * events, apps, functions). Each function builds a new JSON value; statements
 * with variable filters are prepared per call (these are not hot paths).
 * A view is whole or absent: a scan that fails part way gives NULL and the
 * error, never the rows read so far (an API answer would pass them off as a
 * complete page). */
#include "store_internal.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prepares sql on st's connection; SB_ESTORE with err on failure. */
static int prepare(struct sb_store *st, const char *sql, sqlite3_stmt **s, struct sb_err *err)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) == SQLITE_OK)
        return 0;
    return sb_err_set(err, SB_ESTORE, "database: %s", sqlite3_errmsg(st->db));
}

/* Fills arr with row(s) for every row of s, then finalizes s. arr on
 * success; NULL (arr released) with err when the scan fails. */
static json_t *collect(struct sb_store *st, sqlite3_stmt *s, json_t *arr,
                       json_t *(*row)(sqlite3_stmt *s), struct sb_err *err)
{
    int rc = arr ? 0 : sb_err_set(err, SB_ENOMEM, "out of memory");
    while (!rc && (rc = sb_store_next_row(st, s, err)) > 0) {
        json_t *o = row(s);
        rc = o && json_array_append_new(arr, o) == 0
                 ? 0
                 : sb_err_set(err, SB_ENOMEM, "out of memory reading a stored row");
    }
    sqlite3_finalize(s);
    if (rc == 0)
        return arr;
    json_decref(arr);
    return NULL;
}

static json_t *iso_or_null(sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return json_null();
    char buf[40];
    sb_time_format_iso(sqlite3_column_int64(s, col), buf, sizeof buf);
    return json_string(buf);
}

/* Column col as JSON (its text when it does not parse); null for SQL NULL.
 * Out of memory reading it sets *crc (see sb_store_col_text). */
static json_t *json_col(sqlite3_stmt *s, int col, int *crc)
{
    const char *t = sb_store_col_text(s, col, crc);
    if (!t)
        return json_null();
    size_t len = strlen(t);
    /* a value stored before the JSON envelope existed may be nested too
     * deeply to embed in a page: it is shown as a note, and the page works */
    if (sb_json_check_depth(t, len, SB_JSON_MAX_DEPTH_EMBEDDED, NULL) != 0)
        return json_pack("{s:s}", "sysbus_note", "this value is nested too deeply to show");
    json_t *v = sb_json_parse(t, len, NULL);
    return v ? v : json_string(t);
}

static json_t *text_or_null(sqlite3_stmt *s, int col, int *crc)
{
    const char *t = sb_store_col_text(s, col, crc);
    return t ? json_string(t) : json_null();
}

/* The end of a row builder: o, or NULL when a column could not be read
 * (collect() then fails the whole view). */
static json_t *row_done(json_t *o, int crc)
{
    if (crc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

#define RUN_COLS                                                                              \
    "r.id,r.function_id,r.app_id,r.event_id,r.status,r.created_at,r.started_at,r.updated_at," \
    "r.ended_at,r.output,r.error"

static json_t *run_row(sqlite3_stmt *s)
{
    int crc = 0;
    json_t *o = json_object();
    json_object_set_new(o, "run_id", text_or_null(s, 0, &crc));
    json_object_set_new(o, "function_id", text_or_null(s, 1, &crc));
    json_object_set_new(o, "app_id", text_or_null(s, 2, &crc));
    json_object_set_new(o, "event_id", text_or_null(s, 3, &crc));
    json_object_set_new(o, "status", json_string(run_status_name(sqlite3_column_int(s, 4))));
    json_object_set_new(o, "created_at", iso_or_null(s, 5));
    json_object_set_new(o, "started_at", iso_or_null(s, 6));
    json_object_set_new(o, "updated_at", iso_or_null(s, 7));
    json_object_set_new(o, "ended_at", iso_or_null(s, 8));
    json_object_set_new(o, "output", json_col(s, 9, &crc));
    json_object_set_new(o, "error", json_col(s, 10, &crc));
    return row_done(o, crc);
}

static json_t *queue_row(sqlite3_stmt *s)
{
    int crc = 0;
    json_t *q = json_object();
    json_object_set_new(q, "step_id", text_or_null(s, 0, &crc));
    int flags = sqlite3_column_int(s, 7);
    json_object_set_new(q, "kind",
                        json_string((flags & QF_SLEEP)      ? "sleep"
                                    : (flags & QF_WAIT)     ? "wait"
                                    : (flags & QF_INVOKE)   ? "invoke"
                                    : (flags & QF_DEADLINE) ? "deadline"
                                                            : "call"));
    if (flags & QF_INVOKE)
        json_object_set_new(q, "invoked_run_id", text_or_null(s, 10, &crc));
    if (flags & QF_WAIT) {
        json_object_set_new(q, "waiting_for", text_or_null(s, 8, &crc));
        json_object_set_new(q, "if", text_or_null(s, 9, &crc));
    }
    json_object_set_new(q, "attempt", json_integer(sqlite3_column_int(s, 1)));
    json_object_set_new(q, "due_at", iso_or_null(s, 2));
    json_object_set_new(q, "due_at_ms", json_integer(sqlite3_column_int64(s, 2)));
    json_object_set_new(q, "transport_failures", json_integer(sqlite3_column_int(s, 4)));
    json_object_set_new(q, "transport_failing_since", iso_or_null(s, 5));
    json_object_set_new(q, "last_error", json_col(s, 6, &crc));
    return row_done(q, crc);
}

/* The queue rows of a run: what it is waiting for. */
static json_t *run_queue(struct sb_store *st, const char *run_id, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT q.step_id,q.attempt,q.due_at,q.started_at,"
                "q.transport_failures,q.transport_since,q.last_error,q.flags,"
                "w.event_name,w.expression,w.child_run_id FROM queue q "
                "LEFT JOIN waits w ON "
                "w.item_id=q.id WHERE q.run_id=? ORDER BY q.due_at",
                &s, err))
        return NULL;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    return collect(st, s, json_array(), queue_row, err);
}

json_t *sb_store_run_json(struct sb_store *st, const char *run_id, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st, "SELECT " RUN_COLS " FROM runs r WHERE r.id=?", &s, err))
        return NULL;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    json_t *o = NULL;
    int rc = sb_store_next_row(st, s, err);
    bool running = rc > 0 && sqlite3_column_int(s, 4) == RUN_RUNNING;
    if (rc > 0 && !(o = run_row(s)))
        sb_err_set(err, SB_ENOMEM, "out of memory");
    else if (rc == 0)
        sb_err_set(err, SB_ENOTFOUND, "no such run: %s", run_id);
    sqlite3_finalize(s);
    if (o && running) {
        json_t *q = run_queue(st, run_id, err);
        if (!q) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "queue", q);
    }
    return o;
}

static const char *step_status_name(int s)
{
    return s == STEP_COMPLETED ? "Completed" : s == STEP_FAILED ? "Failed" : "Running";
}

static json_t *step_row(sqlite3_stmt *s)
{
    int crc = 0;
    json_t *o = json_object();
    int status = sqlite3_column_int(s, 3);
    json_object_set_new(o, "id", text_or_null(s, 0, &crc));
    json_object_set_new(o, "name", text_or_null(s, 1, &crc));
    json_object_set_new(o, "op", text_or_null(s, 2, &crc));
    json_object_set_new(o, "status", json_string(step_status_name(status)));
    json_object_set_new(o, "attempts", json_integer(sqlite3_column_int(s, 4)));
    /* a step.run result is memoized as {"data": X} (output X) or
     * {"error": E}; sleeps and waits memoize the value itself (null, or
     * the matching event, which has a "data" key of its own) */
    json_t *memo = json_col(s, 5, &crc);
    const char *op = sb_store_col_text(s, 2, &crc);
    bool raw = op && (strcmp(op, "WaitForEvent") == 0 || strcmp(op, "Sleep") == 0);
    json_t *data = raw ? NULL : json_object_get(memo, "data");
    json_t *merr = raw ? NULL : json_object_get(memo, "error");
    json_object_set(o, "output", data ? data : (merr ? json_null() : memo));
    json_t *err = merr ? json_incref(merr) : json_col(s, 6, &crc);
    json_object_set_new(o, "error", status == STEP_COMPLETED && !merr ? json_null() : err);
    if (status == STEP_COMPLETED && !merr)
        json_decref(err);
    json_decref(memo);
    json_object_set_new(o, "started_at", iso_or_null(s, 7));
    json_object_set_new(o, "ended_at", iso_or_null(s, 8));
    if (sqlite3_column_type(s, 7) != SQLITE_NULL && sqlite3_column_type(s, 8) != SQLITE_NULL)
        json_object_set_new(o, "duration_ms",
                            json_integer(sqlite3_column_int64(s, 8) - sqlite3_column_int64(s, 7)));
    else
        json_object_set_new(o, "duration_ms", json_null());
    return row_done(o, crc);
}

json_t *sb_store_run_steps_json(struct sb_store *st, const char *run_id, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT hash,name,op,status,attempts,output,error,started_at,ended_at,"
                "seq FROM steps WHERE run_id=? ORDER BY seq IS NULL, seq, started_at",
                &s, err))
        return NULL;
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    return collect(st, s, json_array(), step_row, err);
}

json_t *sb_store_runs_json(struct sb_store *st, const struct run_filter *f, struct sb_err *err)
{
    struct sb_buf q = SB_BUF_INIT(0);
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
        return NULL;
    if (f->status >= 0)
        sqlite3_bind_int(s, 1, f->status);
    sb_store_bind_text(s, 2, f->function_id);
    sb_store_bind_text(s, 3, f->app_id);
    sb_store_bind_text(s, 4, f->event_id);
    sqlite3_bind_int64(s, 5, f->since_ms);
    sb_store_bind_text(s, 6, f->cursor);
    sqlite3_bind_int(s, 7, f->limit);
    return collect(st, s, json_array(), run_row, err);
}

static json_t *event_row(sqlite3_stmt *s)
{
    int crc = 0;
    /* body is the normalized event; add the internal id and receive time */
    json_t *o = json_col(s, 1, &crc);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_object_set_new(o, "internal_id", text_or_null(s, 0, &crc));
    json_object_set_new(o, "received_at", iso_or_null(s, 2));
    return row_done(o, crc);
}

json_t *sb_store_event_json(struct sb_store *st, const char *event_id, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st, "SELECT id,body,received_at FROM events WHERE id=?", &s, err))
        return NULL;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    int rc = sb_store_next_row(st, s, err);
    json_t *o = rc > 0 ? event_row(s) : NULL;
    if (rc > 0 && !o)
        sb_err_set(err, SB_ENOMEM, "out of memory");
    else if (rc == 0)
        sb_err_set(err, SB_ENOTFOUND, "no such event: %s", event_id);
    sqlite3_finalize(s);
    return o;
}

json_t *sb_store_events_json(struct sb_store *st, const struct event_filter *f, struct sb_err *err)
{
    struct sb_buf q = SB_BUF_INIT(0);
    sb_buf_puts(&q, "SELECT id,body,received_at FROM events WHERE 1=1");
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
        return NULL;
    sb_store_bind_text(s, 1, f->name);
    sqlite3_bind_int64(s, 2, f->after_ms);
    sqlite3_bind_int64(s, 3, f->before_ms);
    sb_store_bind_text(s, 4, f->cursor);
    sqlite3_bind_int(s, 5, f->limit);
    return collect(st, s, json_array(), event_row, err);
}

static json_t *app_row(sqlite3_stmt *s)
{
    int crc = 0;
    json_t *o = json_object();
    json_object_set_new(o, "id", text_or_null(s, 0, &crc));
    json_object_set_new(o, "url", text_or_null(s, 1, &crc));
    json_object_set_new(o, "sdk", text_or_null(s, 2, &crc));
    json_object_set_new(o, "framework", text_or_null(s, 3, &crc));
    json_object_set_new(o, "app_version", text_or_null(s, 4, &crc));
    json_object_set_new(o, "checksum", text_or_null(s, 5, &crc));
    json_object_set_new(o, "created_at", iso_or_null(s, 6));
    json_object_set_new(o, "synced_at", iso_or_null(s, 7));
    json_object_set_new(o, "sync_error", text_or_null(s, 8, &crc));
    json_object_set_new(o, "sync_error_at", iso_or_null(s, 9));
    json_object_set_new(o, "function_count", json_integer(sqlite3_column_int(s, 10)));
    return row_done(o, crc);
}

json_t *sb_store_apps_json(struct sb_store *st, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT a.id,a.url,a.sdk,a.framework,a.app_version,a.checksum,"
                "a.created_at,a.synced_at,a.sync_error,a.sync_error_at,"
                "(SELECT COUNT(*) FROM functions f WHERE f.app_id=a.id AND "
                "f.removed_at IS NULL) FROM apps a WHERE a.deleted_at IS NULL "
                "ORDER BY a.id",
                &s, err))
        return NULL;
    return collect(st, s, json_array(), app_row, err);
}

static json_t *function_row(sqlite3_stmt *s)
{
    int crc = 0;
    json_t *o = json_object();
    json_t *cfg = json_col(s, 3, &crc);
    json_object_set_new(o, "id", text_or_null(s, 0, &crc));
    json_object_set_new(o, "app_id", text_or_null(s, 1, &crc));
    json_object_set_new(o, "name", text_or_null(s, 2, &crc));
    json_t *trig = json_object_get(cfg, "triggers");
    json_object_set(o, "triggers", trig ? trig : json_array());
    json_t *retries = json_object_get(
        json_object_get(json_object_get(json_object_get(cfg, "steps"), "step"), "retries"),
        "attempts");
    json_object_set_new(o, "retries", retries ? json_incref(retries) : json_integer(4));
    json_object_set_new(o, "config", cfg);
    json_object_set_new(o, "created_at", iso_or_null(s, 4));
    json_object_set_new(o, "updated_at", iso_or_null(s, 5));
    json_object_set_new(o, "removed_at", iso_or_null(s, 6));
    return row_done(o, crc);
}

json_t *sb_store_functions_json(struct sb_store *st, const char *app_id, bool include_removed,
                                struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT id,app_id,name,config,created_at,updated_at,removed_at FROM "
                "functions WHERE (?1 IS NULL OR app_id=?1) AND (?2 OR removed_at IS "
                "NULL) ORDER BY app_id,id",
                &s, err))
        return NULL;
    sb_store_bind_text(s, 1, app_id);
    sqlite3_bind_int(s, 2, include_removed);
    return collect(st, s, json_array(), function_row, err);
}

static json_t *cancellation_row(sqlite3_stmt *s)
{
    int crc = 0;
    json_t *o = json_object();
    json_object_set_new(o, "id", text_or_null(s, 0, &crc));
    json_object_set_new(o, "app_id", text_or_null(s, 1, &crc));
    json_object_set_new(o, "function_id", text_or_null(s, 2, &crc));
    json_object_set_new(o, "started_after",
                        sqlite3_column_int64(s, 3) ? iso_or_null(s, 3) : json_null());
    json_object_set_new(o, "started_before",
                        sqlite3_column_int64(s, 4) ? iso_or_null(s, 4) : json_null());
    json_object_set_new(o, "if", text_or_null(s, 5, &crc));
    json_object_set_new(o, "created_at", iso_or_null(s, 6));
    json_object_set_new(o, "run_count", json_integer(sqlite3_column_int64(s, 7)));
    return row_done(o, crc);
}

json_t *sb_store_cancellations_json(struct sb_store *st, int limit, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (prepare(st,
                "SELECT id,app_id,function_id,started_after,started_before,expression,"
                "created_at,run_count FROM cancellations ORDER BY id DESC LIMIT ?",
                &s, err))
        return NULL;
    sqlite3_bind_int(s, 1, limit);
    return collect(st, s, json_array(), cancellation_row, err);
}
