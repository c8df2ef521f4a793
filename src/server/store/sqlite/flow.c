/* flow.c - the SQLite backend's side of what starts or stops runs other than
 * an event: cancellations, cron triggers, flow-control keys and rate hits,
 * and deferred starts (debounce, batchEvents). */
#include "sq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cancellations ---- */

int sq_running_runs(struct sbd_store *st, const char *app_id, const char *function_id,
                    int64_t after, int64_t before,
                    int (*fn)(void *ctx, const char *run_id, int64_t created_at,
                              const char *trigger_event),
                    void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUNNING_OF);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sq_bind_text(s, 1, function_id);
    sq_bind_text(s, 2, app_id);
    sqlite3_bind_int64(s, 3, after);
    sqlite3_bind_int64(s, 4, before);
    sqlite3_bind_int(s, 5, RUN_RUNNING);
    /* collect first: fn writes to the store */
    struct row {
        char *id, *body;
        int64_t created;
    } *rows = NULL;
    size_t n = 0;
    int rc, crc = 0;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        struct row *nr = realloc(rows, (n + 1) * sizeof *nr);
        if (!nr) {
            rc = sb_err_set(err, SB_ENOMEM, "out of memory");
            break;
        }
        rows = nr;
        rows[n].id = sq_col_dup(s, 0, &crc);
        rows[n].created = sqlite3_column_int64(s, 1);
        rows[n].body = sq_col_dup(s, 2, &crc);
        n++;
        if (!crc && (!rows[n - 1].id || !rows[n - 1].body))
            crc = SB_ESTORE;
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
    }
    sqlite3_reset(s);
    /* all or none: a cancellation that matched half the runs would report
     * itself done */
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            rc = fn(ctx, rows[i].id, rows[i].created, rows[i].body);
        free(rows[i].id);
        free(rows[i].body);
    }
    free(rows);
    return rc;
}

int sq_cancel_request_put(struct sbd_store *st, const char *run_id, const char *reason, int64_t now,
                          bool *added, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_CANCEL_REQ_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    int rc = sq_exec(st, s, err);
    if (!rc) {
        *added = sq_changes(st) > 0;
        if (*added)
            sq_conn(st)->tally.open_cancels++;
    }
    return rc;
}

int sq_cancel_requests_scan(struct sbd_store *st,
                            int (*fn)(void *ctx, const char *run_id, const char *reason), void *ctx,
                            struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_CANCEL_REQ_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *run_id = sq_col_req(s, 0, &crc);
        const char *reason = sq_col_req(s, 1, &crc);
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, run_id, reason)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_cancellation_put(struct sbd_store *st, const struct sbd_cancellation_rec *c,
                        struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_CANCELLATION_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
    sq_bind_text(s, 2, c->app_id);
    sq_bind_text(s, 3, c->function_id);
    sqlite3_bind_int64(s, 4, c->started_after);
    sqlite3_bind_int64(s, 5, c->started_before);
    sq_bind_text(s, 6, c->expression);
    sqlite3_bind_int64(s, 7, c->created_at);
    sqlite3_bind_int64(s, 8, c->run_count);
    return sq_exec(st, s, err);
}

/* ---- cron triggers ---- */

int sq_cron_get(struct sbd_store *st, const char *function_id, int idx, char **expr,
                int64_t *next_at, struct sb_err *err)
{
    *expr = NULL;
    sqlite3_stmt *s = sq_stmt(st, STMT_CRON_GET);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, function_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, idx);
    int rc = sq_next_row(st, s, err);
    if (rc == 0) {
        rc = SB_ENOTFOUND;
    } else if (rc > 0) {
        int crc = 0;
        *expr = sq_col_dup(s, 0, &crc);
        *next_at = sqlite3_column_int64(s, 1);
        rc = *expr ? 0 : sq_col_error(err, crc ? crc : SB_ESTORE);
    }
    sqlite3_reset(s);
    return rc;
}

int sq_cron_put(struct sbd_store *st, const struct sbd_cron_rec *c, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_CRON_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, c->function_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, c->idx);
    sqlite3_bind_text(s, 3, c->expression, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, c->next_at);
    return sq_exec(st, s, err);
}

int sq_cron_delete(struct sbd_store *st, const char *function_id, int from, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_CRON_DEL);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, function_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, from);
    return sq_exec(st, s, err);
}

int sq_cron_prune(struct sbd_store *st, struct sb_err *err)
{
    return sq_exec(st, sq_stmt(st, STMT_CRON_PRUNE), err);
}

int sq_crons_scan(struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_cron_rec *c),
                  void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_CRON_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        struct sbd_cron_rec c = { sq_col_req(s, 0, &crc), sqlite3_column_int(s, 1),
                                  sq_col_req(s, 2, &crc), sqlite3_column_int64(s, 3) };
        if ((rc = crc ? sq_col_error(err, crc) : fn(ctx, &c)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

/* ---- flow control at run start ---- */

int sq_throttle_put(struct sbd_store *st, const char *key, int64_t tat, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_THROTTLE_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, FLOW_THROTTLE);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, tat);
    return sq_exec(st, s, err);
}

int sq_throttles_scan(struct sbd_store *st, int64_t now,
                      void (*fn)(void *ctx, const char *key, int64_t tat), void *ctx,
                      struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_THROTTLE_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, FLOW_THROTTLE);
    sqlite3_bind_int64(s, 2, now);
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *key = sq_col_req(s, 0, &crc);
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        fn(ctx, key, sqlite3_column_int64(s, 1));
    }
    sqlite3_reset(s);
    return rc;
}

int sq_flow_key_get(struct sbd_store *st, int kind, const char *key, char **run_id,
                    int64_t *expires_at, struct sb_err *err)
{
    *run_id = NULL;
    sqlite3_stmt *s = sq_stmt(st, STMT_FLOW_GET);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    int rc = sq_next_row(st, s, err);
    if (rc == 0) {
        rc = SB_ENOTFOUND;
    } else if (rc > 0) {
        int crc = 0;
        *run_id = sq_col_dup(s, 0, &crc); /* NULL for a throttle key */
        *expires_at = sqlite3_column_int64(s, 1);
        rc = crc ? sq_col_error(err, crc) : 0;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_flow_key_put(struct sbd_store *st, int kind, const char *key, const char *run_id,
                    int64_t expires_at, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_FLOW_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sq_bind_text(s, 3, run_id);
    sqlite3_bind_int64(s, 4, expires_at);
    int rc = sq_exec(st, s, err);
    if (!rc && kind == FLOW_SINGLETON) /* single writer: sq_run_finish frees it */
        sq_conn(st)->tally.singletons = true;
    return rc;
}

int sq_rate_count(struct sbd_store *st, const char *key, int64_t since_ms, int64_t *count,
                  struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RATE_COUNT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since_ms);
    return sq_query_int64(st, s, count, err);
}

int sq_rate_hit(struct sbd_store *st, const char *key, int64_t at, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RATE_HIT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, at);
    return sq_exec(st, s, err);
}

/* ---- deferred starts ---- */

static int deferred_row(struct sbd_store *st, sqlite3_stmt *s, struct sbd_deferred_rec *out,
                        struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = sq_next_row(st, s, err);
    if (rc <= 0) {
        sqlite3_reset(s);
        return rc ? rc : SB_ENOTFOUND;
    }
    int crc = 0;
    snprintf(out->id, sizeof out->id, "%s", sq_col_req(s, 0, &crc));
    out->function_id = sq_col_dup(s, 1, &crc);
    out->app_id = sq_col_dup(s, 2, &crc);
    out->key = sq_col_dup(s, 3, &crc);
    snprintf(out->event_id, sizeof out->event_id, "%s", sq_col_req(s, 4, &crc));
    out->size = sqlite3_column_int64(s, 5);
    out->first_at = sqlite3_column_int64(s, 6);
    out->due_at = sqlite3_column_int64(s, 7);
    out->kind = sqlite3_column_int(s, 8);
    sqlite3_reset(s);
    if (crc || !out->function_id || !out->app_id || !out->key) {
        sbd_deferred_rec_free(out);
        return sq_col_error(err, crc ? crc : SB_ESTORE);
    }
    return 0;
}

int sq_deferred_find(struct sbd_store *st, int kind, const char *function_id, const char *key,
                     struct sbd_deferred_rec *out, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_DEFERRED_FIND);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, kind);
    sqlite3_bind_text(s, 2, function_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, key, -1, SQLITE_STATIC);
    return deferred_row(st, s, out, err);
}

int sq_deferred_get(struct sbd_store *st, const char *id, struct sbd_deferred_rec *out,
                    struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_DEFERRED_GET);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    return deferred_row(st, s, out, err);
}

int sq_deferred_put(struct sbd_store *st, const struct sbd_deferred_rec *d, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_DEFERRED_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, d->kind);
    sqlite3_bind_text(s, 3, d->function_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, d->app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, d->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, d->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, d->size);
    sqlite3_bind_int64(s, 8, d->first_at);
    sqlite3_bind_int64(s, 9, d->due_at);
    return sq_exec(st, s, err);
}

int sq_deferred_delete(struct sbd_store *st, const char *id, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_DEFERRED_DEL);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    return sq_exec(st, s, err);
}

int sq_deferred_due(struct sbd_store *st, int64_t now, int (*fn)(void *ctx, const char *id),
                    void *ctx, int64_t *earliest, struct sb_err *err)
{
    *earliest = INT64_MAX;
    sqlite3_stmt *s = sq_stmt(st, STMT_DEFERRED_DUE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int64_t due = sqlite3_column_int64(s, 1);
        if (due > now) {
            *earliest = due;
            rc = 0;
            break;
        }
        int crc = 0;
        const char *id = sq_col_req(s, 0, &crc);
        if ((rc = crc ? sq_col_error(err, crc) : fn(ctx, id)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_event_held(struct sbd_store *st, const char *event_id, bool *held, int64_t *due_at,
                  struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_DEFERRED_HELD);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, DEFER_DEBOUNCE);
    int rc = sq_next_row(st, s, err);
    if (rc >= 0)
        *held = rc > 0;
    if (rc > 0)
        *due_at = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc > 0 ? 0 : rc;
}

int sq_run_event_add(struct sbd_store *st, const char *run_id, int64_t seq, const char *event_id,
                     struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_EVENT_ADD);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_text(s, 3, event_id, -1, SQLITE_STATIC);
    return sq_exec(st, s, err);
}

int sq_run_events_move(struct sbd_store *st, const char *from_id, const char *to_id,
                       struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_EVENTS_MOVE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, to_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, from_id, -1, SQLITE_STATIC);
    return sq_exec(st, s, err);
}
