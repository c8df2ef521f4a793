/* flow.c - the PostgreSQL backend's side of what starts or stops runs other
 * than an event: cancellations, cron triggers, flow-control keys and rate
 * hits, and deferred starts (debounce, batchEvents). A port of
 * sqlite/flow.c.
 *
 * Single writer: flow control reads then writes a key in one transaction
 * (flow_key_get then flow_key_put, rate_count then rate_hit, deferred_find
 * then deferred_put, running_runs then cancel_request_put) without a lock on
 * the key: correct because the writer's advisory lock (conn.c) makes this
 * connection the store's only writer (store.h, "Single writer" 3). */
#include "pgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cancellations ---- */

int pgs_running_runs(struct sbd_store *st, const char *app_id, const char *function_id,
                     int64_t after, int64_t before,
                     int (*fn)(void *ctx, const char *run_id, int64_t created_at,
                               const char *trigger_event),
                     void *ctx, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, function_id);
    pgs_text(&p, app_id);
    pgs_int(&p, after);
    pgs_int(&p, before);
    pgs_int(&p, RUN_RUNNING);
    PGresult *r;
    int rc = pgs_run(st, PGS_RUNNING_OF, &p, &r, err);
    if (rc)
        return rc;
    /* all or none: a cancellation that matched half the runs would report
     * itself done; so every row is checked before fn (which writes) is
     * first called */
    int n = PQntuples(r), crc = 0;
    for (int i = 0; i < n; i++) {
        pgs_col_req(r, i, 0, &crc);
        pgs_col_int(r, i, 1, &crc);
        pgs_col_req(r, i, 2, &crc);
    }
    if (crc)
        rc = pgs_col_error(err, crc);
    for (int i = 0; !rc && i < n; i++)
        rc = fn(ctx, PQgetvalue(r, i, 0), pgs_col_int(r, i, 1, &crc), PQgetvalue(r, i, 2));
    PQclear(r);
    return rc;
}

int pgs_cancel_request_put(struct sbd_store *st, const char *run_id, const char *reason,
                           int64_t now, bool *added, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    pgs_text(&p, reason);
    pgs_int(&p, now);
    int64_t n = 0;
    int rc = pgs_exec(st, PGS_CANCEL_REQ_PUT, &p, &n, err);
    if (!rc) {
        *added = n > 0;
        if (*added)
            pgs_conn(st)->tally.open_cancels++;
    }
    return rc;
}

int pgs_cancel_requests_scan(struct sbd_store *st,
                             int (*fn)(void *ctx, const char *run_id, const char *reason),
                             void *ctx, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, PGS_CANCEL_REQ_SCAN, NULL, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        const char *run_id = pgs_col_req(r, i, 0, &crc);
        const char *reason = pgs_col_req(r, i, 1, &crc);
        if ((rc = crc ? pgs_col_error(err, crc) : fn(ctx, run_id, reason)))
            break;
    }
    PQclear(r);
    return rc;
}

int pgs_cancellation_put(struct sbd_store *st, const struct sbd_cancellation_rec *c,
                         struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, c->id);
    pgs_text(&p, c->app_id);
    pgs_text(&p, c->function_id);
    pgs_int(&p, c->started_after);
    pgs_int(&p, c->started_before);
    pgs_text(&p, c->expression);
    pgs_int(&p, c->created_at);
    pgs_int(&p, c->run_count);
    return pgs_exec(st, PGS_CANCELLATION_PUT, &p, NULL, err);
}

/* ---- cron triggers ---- */

int pgs_cron_get(struct sbd_store *st, const char *function_id, int idx, char **expr,
                 int64_t *next_at, struct sb_err *err)
{
    *expr = NULL;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, function_id);
    pgs_int(&p, idx);
    PGresult *r;
    int rc = pgs_run_row(st, PGS_CRON_GET, &p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    char *e = pgs_col_dup(r, 0, 0, &crc);
    int64_t at = pgs_col_int(r, 0, 1, &crc);
    PQclear(r);
    if (crc || !e) {
        free(e);
        return pgs_col_error(err, crc ? crc : SB_ESTORE);
    }
    *expr = e;
    *next_at = at;
    return 0;
}

int pgs_cron_put(struct sbd_store *st, const struct sbd_cron_rec *c, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, c->function_id);
    pgs_int(&p, c->idx);
    pgs_text(&p, c->expression);
    pgs_int(&p, c->next_at);
    return pgs_exec(st, PGS_CRON_PUT, &p, NULL, err);
}

int pgs_cron_delete(struct sbd_store *st, const char *function_id, int from, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, function_id);
    pgs_int(&p, from);
    return pgs_exec(st, PGS_CRON_DEL, &p, NULL, err);
}

int pgs_cron_prune(struct sbd_store *st, struct sb_err *err)
{
    return pgs_exec(st, PGS_CRON_PRUNE, NULL, NULL, err);
}

int pgs_crons_scan(struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_cron_rec *c),
                   void *ctx, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, PGS_CRON_SCAN, NULL, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        struct sbd_cron_rec c = { pgs_col_req(r, i, 0, &crc), (int)pgs_col_int(r, i, 1, &crc),
                                  pgs_col_req(r, i, 2, &crc), pgs_col_int(r, i, 3, &crc) };
        if ((rc = crc ? pgs_col_error(err, crc) : fn(ctx, &c)))
            break;
    }
    PQclear(r);
    return rc;
}

/* ---- flow control at run start ---- */

int pgs_throttle_put(struct sbd_store *st, const char *key, int64_t tat, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, FLOW_THROTTLE);
    pgs_text(&p, key);
    pgs_int(&p, tat);
    return pgs_exec(st, PGS_THROTTLE_PUT, &p, NULL, err);
}

int pgs_throttles_scan(struct sbd_store *st, int64_t now,
                       void (*fn)(void *ctx, const char *key, int64_t tat), void *ctx,
                       struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, FLOW_THROTTLE);
    pgs_int(&p, now);
    PGresult *r;
    int rc = pgs_run(st, PGS_THROTTLE_SCAN, &p, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        const char *key = pgs_col_req(r, i, 0, &crc);
        int64_t tat = pgs_col_int(r, i, 1, &crc);
        if (crc) {
            rc = pgs_col_error(err, crc);
            break;
        }
        fn(ctx, key, tat);
    }
    PQclear(r);
    return rc;
}

int pgs_flow_key_get(struct sbd_store *st, int kind, const char *key, char **run_id,
                     int64_t *expires_at, struct sb_err *err)
{
    *run_id = NULL;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, kind);
    pgs_text(&p, key);
    PGresult *r;
    int rc = pgs_run_row(st, PGS_FLOW_GET, &p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    char *id = pgs_col_dup(r, 0, 0, &crc); /* NULL for a throttle key */
    int64_t at = pgs_col_int(r, 0, 1, &crc);
    PQclear(r);
    if (crc) {
        free(id);
        return pgs_col_error(err, crc);
    }
    *run_id = id;
    *expires_at = at;
    return 0;
}

int pgs_flow_key_put(struct sbd_store *st, int kind, const char *key, const char *run_id,
                     int64_t expires_at, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, kind);
    pgs_text(&p, key);
    pgs_text(&p, run_id);
    pgs_int(&p, expires_at);
    int rc = pgs_exec(st, PGS_FLOW_PUT, &p, NULL, err);
    if (!rc && kind == FLOW_SINGLETON) /* single writer: pgs_run_finish frees it */
        pgs_conn(st)->tally.singletons = true;
    return rc;
}

int pgs_rate_count(struct sbd_store *st, const char *key, int64_t since_ms, int64_t *count,
                   struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, key);
    pgs_int(&p, since_ms);
    return pgs_query_int64(st, PGS_RATE_COUNT, &p, count, err);
}

int pgs_rate_hit(struct sbd_store *st, const char *key, int64_t at, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, key);
    pgs_int(&p, at);
    return pgs_exec(st, PGS_RATE_HIT, &p, NULL, err);
}

/* ---- deferred starts ---- */

/* The one row of DEFERRED_FIND or DEFERRED_GET into *out. */
static int deferred_row(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
                        struct sbd_deferred_rec *out, struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    int rc = pgs_run_row(st, id, p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    snprintf(out->id, sizeof out->id, "%s", pgs_col_req(r, 0, 0, &crc));
    out->function_id = pgs_col_dup(r, 0, 1, &crc);
    out->app_id = pgs_col_dup(r, 0, 2, &crc);
    out->key = pgs_col_dup(r, 0, 3, &crc);
    snprintf(out->event_id, sizeof out->event_id, "%s", pgs_col_req(r, 0, 4, &crc));
    out->size = pgs_col_int(r, 0, 5, &crc);
    out->first_at = pgs_col_int(r, 0, 6, &crc);
    out->due_at = pgs_col_int(r, 0, 7, &crc);
    out->kind = (int)pgs_col_int(r, 0, 8, &crc);
    PQclear(r);
    if (crc || !out->function_id || !out->app_id || !out->key) {
        sbd_deferred_rec_free(out);
        return pgs_col_error(err, crc ? crc : SB_ESTORE);
    }
    return 0;
}

int pgs_deferred_find(struct sbd_store *st, int kind, const char *function_id, const char *key,
                      struct sbd_deferred_rec *out, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, kind);
    pgs_text(&p, function_id);
    pgs_text(&p, key);
    return deferred_row(st, PGS_DEFERRED_FIND, &p, out, err);
}

int pgs_deferred_get(struct sbd_store *st, const char *id, struct sbd_deferred_rec *out,
                     struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, id);
    return deferred_row(st, PGS_DEFERRED_GET, &p, out, err);
}

int pgs_deferred_put(struct sbd_store *st, const struct sbd_deferred_rec *d, struct sb_err *err)
{
    /* The SQLite backend's INSERT OR REPLACE also replaces the row holding
     * the same (kind, function, key) under another id; ON CONFLICT names one
     * constraint, so that row goes first. */
    struct pgs_params k = PGS_PARAMS_INIT;
    pgs_int(&k, d->kind);
    pgs_text(&k, d->function_id);
    pgs_text(&k, d->key);
    pgs_text(&k, d->id);
    int rc = pgs_exec(st, PGS_DEFERRED_DEL_KEY, &k, NULL, err);
    if (rc)
        return rc;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, d->id);
    pgs_int(&p, d->kind);
    pgs_text(&p, d->function_id);
    pgs_text(&p, d->app_id);
    pgs_text(&p, d->key);
    pgs_text(&p, d->event_id);
    pgs_int(&p, d->size);
    pgs_int(&p, d->first_at);
    pgs_int(&p, d->due_at);
    return pgs_exec(st, PGS_DEFERRED_PUT, &p, NULL, err);
}

int pgs_deferred_delete(struct sbd_store *st, const char *id, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, id);
    return pgs_exec(st, PGS_DEFERRED_DEL, &p, NULL, err);
}

int pgs_deferred_due(struct sbd_store *st, int64_t now, int (*fn)(void *ctx, const char *id),
                     void *ctx, int64_t *earliest, struct sb_err *err)
{
    *earliest = INT64_MAX;
    /* the due rows and the first one after them: not the whole table, which
     * the scheduler asks for at every change of a deferred row */
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, now);
    PGresult *r;
    int rc = pgs_run(st, PGS_DEFERRED_DUE, &p, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        int64_t due = pgs_col_int(r, i, 1, &crc);
        const char *id = pgs_col_req(r, i, 0, &crc);
        if (crc) {
            rc = pgs_col_error(err, crc);
            break;
        }
        if (due > now) {
            *earliest = due;
            break;
        }
        if ((rc = fn(ctx, id)))
            break;
    }
    PQclear(r);
    return rc;
}

int pgs_event_held(struct sbd_store *st, const char *event_id, bool *held, int64_t *due_at,
                   struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, event_id);
    pgs_int(&p, DEFER_DEBOUNCE);
    PGresult *r;
    int rc = pgs_run(st, PGS_DEFERRED_HELD, &p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    bool h = PQntuples(r) > 0;
    int64_t at = h ? pgs_col_int(r, 0, 0, &crc) : 0;
    PQclear(r);
    if (crc)
        return pgs_col_error(err, crc);
    *held = h;
    if (h)
        *due_at = at;
    return 0;
}

int pgs_run_event_add(struct sbd_store *st, const char *run_id, int64_t seq, const char *event_id,
                      struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    pgs_int(&p, seq);
    pgs_text(&p, event_id);
    return pgs_exec(st, PGS_RUN_EVENT_ADD, &p, NULL, err);
}

int pgs_run_events_move(struct sbd_store *st, const char *from_id, const char *to_id,
                        struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, to_id);
    pgs_text(&p, from_id);
    return pgs_exec(st, PGS_RUN_EVENTS_MOVE, &p, NULL, err);
}
