/* events.c - POST /e/{key}: event ingest.
 *
 * The body is one event or an array of up to 5000. Each is validated and
 * normalized ({name, data, id, ts, user, v}); its id is a ULID, derived from
 * the x-inngest-event-id-seed header when present (so an SDK's retried send
 * gets the same ids), else fresh. The events, the runs of every function they
 * trigger, and each run's first queue item go to the writer as one operation;
 * the reply {"ids":[...],"status":200} is sent only after that commit.
 * Duplicates (same seeded id, or same user `id` within 24 h) are answered
 * with the original id and start nothing. */
#include "api.h"
#include "event_parse.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ulid.h"
#include "server/engine/engine.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/sbd.h"
#include "server/store/writer.h"
#include "server/waits.h"

#include <stdlib.h>
#include <string.h>

#define DEDUPE_WINDOW_MS (24LL * 3600 * 1000)

struct ingest_run {
    char run_id[SB_ULID_SIZE];
    char *function_id, *app_id;
    int64_t qid;
};

struct ingest_event {
    struct parsed_event ev;
    bool duplicate;
    struct ingest_run *runs;
    size_t nruns;
};

struct ingest_op {
    struct wop wop;
    struct wait_resolution *resolved; /* waits this batch of events satisfied */
    size_t nresolved;
    struct sb_req *req;
    struct sbd *sbd;
    int64_t received_at;
    struct ingest_event *events;
    size_t n;
};

static void ingest_free(struct ingest_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        struct ingest_event *ev = &op->events[i];
        for (size_t j = 0; j < ev->nruns; j++) {
            free(ev->runs[j].function_id);
            free(ev->runs[j].app_id);
        }
        free(ev->runs);
        free(ev->ev.name);
        free(ev->ev.body);
        free(ev->ev.dedupe_key);
    }
    free(op->events);
    sb_wait_resolutions_free(op->resolved, op->nresolved);
    free(op);
}

static int ingest_apply(struct sb_store *st, struct wop *w, struct sb_err *err)
{
    struct ingest_op *op = (struct ingest_op *)w;
    for (size_t i = 0; i < op->n; i++) {
        struct ingest_event *ev = &op->events[i];
        ev->duplicate = false;
        if (ev->ev.dedupe_key) {
            char existing[SB_ULID_SIZE];
            if (sb_store_event_find_dedupe(st, ev->ev.dedupe_key,
                                           op->received_at - DEDUPE_WINDOW_MS, existing) == 0) {
                memcpy(ev->ev.id, existing, sizeof ev->ev.id);
                ev->duplicate = true;
                continue;
            }
        }
        struct ev_rec rec = { .name = ev->ev.name, .body = ev->ev.body, .ts = ev->ev.ts,
                              .received_at = op->received_at, .dedupe_key = ev->ev.dedupe_key };
        memcpy(rec.id, ev->ev.id, sizeof rec.id);
        bool inserted;
        int rc = sb_store_event_insert(st, &rec, &inserted, err);
        if (rc)
            return rc;
        if (!inserted) {
            ev->duplicate = true;
            continue;
        }
        for (size_t j = 0; j < ev->nruns; j++) {
            struct ingest_run *ir = &ev->runs[j];
            struct run_rec run = { .function_id = ir->function_id, .app_id = ir->app_id,
                                   .created_at = op->received_at };
            memcpy(run.id, ir->run_id, sizeof run.id);
            memcpy(run.event_id, ev->ev.id, sizeof run.event_id);
            if ((rc = sb_store_run_insert(st, &run, err)))
                return rc;
            struct qitem_rec q = { .id = ir->qid, .run_id = ir->run_id, .step_id = "step",
                                   .due_at = op->received_at };
            if ((rc = sb_store_queue_put(st, &q, err)))
                return rc;
        }
        /* open waitForEvent waits this event satisfies, in this transaction */
        if ((rc = sb_waits_on_event(st, op->sbd->engine, ev->ev.name, ev->ev.body,
                                    &op->resolved, &op->nresolved, err)))
            return rc;
    }
    return 0;
}

static void ingest_done(struct wop *w, int rc, const struct sb_err *err)
{
    struct ingest_op *op = (struct ingest_op *)w;
    if (rc) {
        sb_reply_error(op->req, rc == SB_EUNAVAIL ? 503 : 500, "STORE_ERROR",
                       "events not stored: %s", err ? err->msg : "store error");
        ingest_free(op);
        return;
    }
    /* Hand the new runs to the engine, then acknowledge. */
    size_t total = 0;
    for (size_t i = 0; i < op->n; i++)
        if (!op->events[i].duplicate)
            total += op->events[i].nruns;
    struct new_run *runs = total ? calloc(total, sizeof *runs) : NULL;
    size_t k = 0;
    /* the answer, written directly: {"ids":[...],"status":200} */
    struct sb_buf reply = SB_BUF_INIT(0);
    sb_buf_reserve(&reply, 16 + op->n * 29);
    sb_buf_puts(&reply, "{\"ids\":[");
    uint64_t dups = 0;
    for (size_t i = 0; i < op->n; i++) {
        struct ingest_event *ev = &op->events[i];
        sb_buf_printf(&reply, "%s\"%s\"", i ? "," : "", ev->ev.id);
        if (ev->duplicate) {
            dups++;
            continue;
        }
        for (size_t j = 0; runs && j < ev->nruns; j++, k++) {
            struct ingest_run *ir = &ev->runs[j];
            memcpy(runs[k].run_id, ir->run_id, sizeof runs[k].run_id);
            memcpy(runs[k].event_id, ev->ev.id, sizeof runs[k].event_id);
            runs[k].function_id = ir->function_id;
            ir->function_id = NULL;
            runs[k].event = strdup(ev->ev.body);
            runs[k].qid = ir->qid;
            runs[k].due_at = op->received_at;
        }
    }
    if (runs) {
        sb_engine_add_runs(op->sbd->engine, runs, k);
        free(runs);
    }
    if (op->nresolved) {
        sb_engine_waits_resolved(op->sbd->engine, op->resolved, op->nresolved);
        op->resolved = NULL;
        op->nresolved = 0;
    }
    SBD_COUNT_N(events_received, op->n - dups);
    SBD_COUNT_N(events_duplicate, dups);
    SBD_COUNT_N(runs_started, k);
    sb_buf_puts(&reply, "],\"status\":200}");
    size_t len;
    char *text = sb_buf_steal(&reply, &len);
    if (text)
        sb_reply_raw(op->req, 200, "application/json", text, len);
    else
        sb_reply_error(op->req, 500, "INTERNAL", "out of memory");
    ingest_free(op);
}

struct match_ctx {
    struct ingest_event *ev;
    struct sbd *sbd;
    int64_t now;
    int failed;
};

static void add_match(void *ctx, const struct fn *f)
{
    struct match_ctx *mc = ctx;
    struct ingest_event *ev = mc->ev;
    struct ingest_run *nr = realloc(ev->runs, (ev->nruns + 1) * sizeof *nr);
    if (!nr) {
        mc->failed = 1;
        return;
    }
    ev->runs = nr;
    struct ingest_run *r = &nr[ev->nruns++];
    memset(r, 0, sizeof *r);
    sb_ulid_new(mc->now, r->run_id);
    r->function_id = strdup(f->id);
    r->app_id = strdup(f->app_id);
    r->qid = sb_engine_alloc_qid(mc->sbd->engine);
    if (!r->function_id || !r->app_id)
        mc->failed = 1;
}

void h_events_post(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    size_t len;
    const char *body = sb_req_body(req, &len);
    int64_t now = sb_now_ms();
    struct parsed_event *parsed;
    size_t n;
    const char *code = NULL;
    struct sb_err err = { 0 };
    int status = sbd_events_parse(body, len, sb_req_header(req, "x-inngest-event-id-seed"), now,
                                  &parsed, &n, &code, &err);
    if (status) {
        sb_reply_error(req, status, code, "%s", err.msg);
        return;
    }
    struct ingest_op *op = calloc(1, sizeof *op);
    if (!op || (n && !(op->events = calloc(n, sizeof *op->events)))) {
        free(op);
        sbd_events_free(parsed, n);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    op->wop.apply = ingest_apply;
    op->wop.done = ingest_done;
    op->req = req;
    op->sbd = sbd;
    op->received_at = now;
    op->n = n;
    for (size_t i = 0; i < n; i++)
        op->events[i].ev = parsed[i]; /* takes the strings */
    free(parsed);
    struct reg_snap *snap = sb_registry_acquire(sbd->registry);
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        struct match_ctx mc = { &op->events[i], sbd, now, 0 };
        sb_snap_match(snap, op->events[i].ev.name, op->events[i].ev.body, add_match, &mc);
        failed = mc.failed;
    }
    sb_snap_release(snap);
    if (failed) {
        ingest_free(op);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    sb_req_suspend(req);
    sb_writer_submit(sbd->writer, &op->wop);
}
