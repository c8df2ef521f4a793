/* inbox.c - the engine's inbox: how other threads hand it work, and the one
 * table that says what each kind of message does.
 *
 * Threads: the sbd_engine_* posting functions and engine_post_committed run
 * on any thread (HTTP, writer, scheduler) and only build a message and post
 * it (inbox_lock, then the eventfd). engine_inbox_drain and the handlers of
 * the table run on the engine thread. engine_inbox_close runs on the thread
 * that stops the engine, after the engine thread is gone: from then on every
 * message, queued or posted later, gets the table's "stopped" answer at
 * once, so no request waits on an engine that is gone.
 *
 * Invariant: every kind has a row with both a handler and a stopped answer
 * (checked at start, inbox_table_complete); a new kind is one enum value,
 * one union member and one row here. */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "server/store/store.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void engine_wake(struct sbd_engine *e)
{
    uint64_t one = 1;
    while (write(e->wakefd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/* ---- the handlers, engine thread ---- */

static void take_new_runs(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    for (size_t i = 0; i < m->new_runs.n; i++) {
        struct sbd_new_run *nr = &m->new_runs.runs[i];
        struct sbd_run *r = engine_run_add(e, nr->run_id);
        snprintf(r->event_id, sizeof r->event_id, "%s", nr->event_id);
        r->function_id = nr->function_id;
        if (nr->event) {
            r->event = nr->event;
            r->loaded = true;
            e->loaded_runs++;
        }
        struct sbd_item *it = engine_item_new(e, r, nr->qid, "step");
        it->due_at = nr->due_at;
        engine_heap_push(e, it);
    }
    free(m->new_runs.runs);
}

static void handle_committed(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    runop_committed(e, m->committed.op, m->committed.rc);
}

/* A cancellation of a run that is not running here: tell the caller whether
 * it exists at all (or answer when its end, already in flight, commits). */
static void cancel_not_running(struct sbd_run *r, struct sbd_inbox_msg *m)
{
    struct sbd_cancel_req *c = m->cancel.req;
    int status = -1;
    struct sb_err err = { SB_EUNAVAIL, 0, "" };
    struct sbd_store *st = sbd_store_reader();
    int rc = st ? sbd_store_run_status(st, m->cancel.run_id, &status, &err) : SB_EUNAVAIL;
    if (rc || status < RUN_RUNNING || status > RUN_CANCELLED)
        status = -1; /* not found, unreadable, or a status no run has */
    if (rc && err.code != SB_ENOTFOUND && !(r && r->ended)) {
        /* whether it exists is unknown: not "no such run" */
        if (c->cb)
            c->cb(c->ctx, err.code, -1);
        free(c);
        return;
    }
    if (r && r->ended) {
        /* ending is in flight: answer when it commits */
        c->next = r->cancels;
        r->cancels = c;
        return;
    }
    if (c->cb)
        c->cb(c->ctx, status < 0 ? SB_ENOTFOUND : SB_ECONFLICT, status);
    free(c);
}

static void handle_cancel(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    struct sbd_run *r = engine_run_find(e, m->cancel.run_id);
    if (!r || r->ended) {
        cancel_not_running(r, m);
        return;
    }
    m->cancel.req->next = r->cancels;
    r->cancels = m->cancel.req;
    r->cancelled = true;
    decide_fail(e, r, NULL, RUN_CANCELLED, 0, "RunCancelled", "the run was cancelled");
}

/* A Running run without queue rows (found at start): give it a discovery
 * call; memoized steps make this safe. */
static void handle_repair(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    if (engine_run_find(e, m->repair.run_id))
        return;
    struct sbd_run *r = engine_run_add(e, m->repair.run_id);
    struct sbd_item *it = engine_item_new(e, r, sbd_engine_alloc_qid(e), "step");
    it->due_at = sb_now_ms();
    struct sbd_run_update *op = runop_new(e, r);
    if (!op || runop_put_item(op, it) != 0) {
        runop_free(op);
        engine_run_free(e, r);
        return;
    }
    SB_LOG(SB_WARN, "run_repaired", "run %s had no queue item; scheduled a new call", r->id);
    runop_submit(op);
}

/* {in_call, parked_on?}: the slot key a parked item waits on
 * ("c<US>scope<US>value"), or the throttle key of an item a throttle
 * delayed ("t<US>fn-id<US>value"). */
static json_t *describe_run(struct sbd_engine *e, const struct sbd_run *r)
{
    bool in_call = false;
    const char *key = NULL, *kind = "concurrency";
    for (const struct sbd_item *it = r->items; it; it = it->next) {
        in_call = in_call || it->call || it->leasing;
        if (!key)
            key = admit_parked_key(e, it);
        if (!key && it->throttled && r->flow_keys[2]) {
            key = r->flow_keys[2]; /* "t<US>fn-id<US>value" */
            kind = "throttle";
        }
    }
    json_t *d = json_pack("{s:b}", "in_call", in_call);
    if (key) {
        char scope[300] = "";
        const char *sep = strchr(key, '\x1f');
        const char *value = sep ? strchr(sep + 1, '\x1f') : NULL;
        if (sep)
            snprintf(scope, sizeof scope, "%.*s",
                     (int)(value ? (size_t)(value - sep - 1) : strlen(sep + 1)), sep + 1);
        json_t *p = json_pack("{s:s, s:s}", "kind", kind, "scope", scope);
        if (value && value[1])
            json_object_set_new(p, "value", json_string(value + 1));
        json_object_set_new(d, "parked_on", p);
    }
    return d;
}

static void handle_describe(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    struct sbd_run *r = engine_run_find(e, m->describe.run_id);
    m->describe.cb(m->describe.ctx, r ? describe_run(e, r) : NULL);
}

/* ---- the answers once the engine has stopped (any thread) ---- */

static void stopped_new_runs(struct sbd_inbox_msg *m)
{
    /* committed: picked up at the next start */
    for (size_t i = 0; i < m->new_runs.n; i++) {
        free(m->new_runs.runs[i].function_id);
        free(m->new_runs.runs[i].event);
    }
    free(m->new_runs.runs);
}

/* Runs on the writer thread, but the engine thread is gone and the runs are
 * freed only after the writer has stopped (daemon.c), so the run is safe to
 * touch here. */
static void stopped_committed(struct sbd_inbox_msg *m)
{
    m->committed.op->run->committing--;
    runop_free(m->committed.op);
}

static void stopped_cancel(struct sbd_inbox_msg *m)
{
    if (m->cancel.req->cb)
        m->cancel.req->cb(m->cancel.req->ctx, SB_EUNAVAIL, -1);
    free(m->cancel.req);
}

static void stopped_waits_resolved(struct sbd_inbox_msg *m)
{
    /* committed in the store: the runs go on after the next start */
    sbd_wait_resolutions_free(m->waits_resolved.res, m->waits_resolved.n);
}

static void stopped_checkpoint(struct sbd_inbox_msg *m)
{
    json_decref(m->checkpoint.steps);
    sb_reply_error(m->checkpoint.req, 503, "UNAVAILABLE", "sysbusd is shutting down");
}

static void stopped_describe(struct sbd_inbox_msg *m)
{
    m->describe.cb(m->describe.ctx, NULL);
}

/* A repair or a lease answer needs nothing: the next start scans the store
 * again (a lease left on a row holds its slots for --orphan-hold at most). */
static void stopped_nothing(struct sbd_inbox_msg *m)
{
    (void)m;
}

/* ---- the table ---- */

static const struct inbox_kind_def {
    const char *name;
    void (*handle)(struct sbd_engine *e, struct sbd_inbox_msg *m); /* engine thread */
    void (*stopped)(struct sbd_inbox_msg *m);                      /* the engine is gone */
} INBOX[MSG_KINDS] = {
    [MSG_NEW_RUNS] = { "new_runs", take_new_runs, stopped_new_runs },
    [MSG_COMMITTED] = { "committed", handle_committed, stopped_committed },
    [MSG_CANCEL] = { "cancel", handle_cancel, stopped_cancel },
    [MSG_REPAIR] = { "repair", handle_repair, stopped_nothing },
    [MSG_WAITS_RESOLVED] = { "waits_resolved", engine_handle_waits_resolved,
                             stopped_waits_resolved },
    [MSG_CHECKPOINT] = { "checkpoint", engine_handle_checkpoint, stopped_checkpoint },
    [MSG_LEASED] = { "leased", engine_handle_leased, stopped_nothing },
    [MSG_DESCRIBE] = { "describe", handle_describe, stopped_describe },
};

bool inbox_table_complete(void)
{
    for (size_t k = 0; k < MSG_KINDS; k++)
        if (!INBOX[k].name || !INBOX[k].handle || !INBOX[k].stopped)
            return false;
    return true;
}

/* The one place a message is acted on: by its handler while the engine runs
 * (e set), by its stopped answer after (e NULL). Frees m. */
static void inbox_dispatch(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    assert((unsigned)m->kind < MSG_KINDS);
    const struct inbox_kind_def *def = &INBOX[m->kind];
    if (e)
        def->handle(e, m);
    else
        def->stopped(m);
    free(m);
}

/* ---- posting (any thread) ---- */

struct sbd_inbox_msg *engine_inbox_msg(enum sbd_inbox_kind kind)
{
    struct sbd_inbox_msg *m = calloc(1, sizeof *m);
    if (m)
        m->kind = kind;
    return m;
}

void engine_inbox_post(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&e->inbox_lock);
    if (e->inbox_closed) {
        pthread_mutex_unlock(&e->inbox_lock);
        inbox_dispatch(NULL, m);
        return;
    }
    if (e->inbox_tail)
        e->inbox_tail->next = m;
    else
        e->inbox_head = m;
    e->inbox_tail = m;
    pthread_mutex_unlock(&e->inbox_lock);
    engine_wake(e);
}

void engine_inbox_drain(struct sbd_engine *e)
{
    pthread_mutex_lock(&e->inbox_lock);
    struct sbd_inbox_msg *m = e->inbox_head;
    e->inbox_head = e->inbox_tail = NULL;
    pthread_mutex_unlock(&e->inbox_lock);
    while (m) {
        struct sbd_inbox_msg *next = m->next;
        inbox_dispatch(e, m);
        m = next;
    }
}

void engine_inbox_close(struct sbd_engine *e)
{
    pthread_mutex_lock(&e->inbox_lock);
    e->inbox_closed = true;
    struct sbd_inbox_msg *m = e->inbox_head;
    e->inbox_head = e->inbox_tail = NULL;
    pthread_mutex_unlock(&e->inbox_lock);
    while (m) {
        struct sbd_inbox_msg *next = m->next;
        inbox_dispatch(NULL, m);
        m = next;
    }
}

void sbd_engine_add_runs(struct sbd_engine *e, struct sbd_new_run *runs, size_t n)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_NEW_RUNS);
    struct sbd_new_run *copy = malloc(n * sizeof *copy);
    if (!m || !copy) {
        /* The runs are committed: they will be picked up at the next start.
         * Losing the wake-up only delays them; log loudly. */
        SB_LOG(SB_ERROR, "oom", "cannot hand %zu new runs to the engine", n);
        free(m);
        free(copy);
        for (size_t i = 0; i < n; i++) {
            free(runs[i].function_id);
            free(runs[i].event);
        }
        return;
    }
    memcpy(copy, runs, n * sizeof *copy);
    m->new_runs.runs = copy;
    m->new_runs.n = n;
    engine_inbox_post(e, m);
}

void sbd_engine_cancel(struct sbd_engine *e, const char *run_id,
                       void (*cb)(void *ctx, int rc, int status), void *ctx)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_CANCEL);
    struct sbd_cancel_req *c = calloc(1, sizeof *c);
    if (!m || !c) {
        free(m);
        free(c);
        if (cb)
            cb(ctx, SB_ENOMEM, -1);
        return;
    }
    c->cb = cb;
    c->ctx = ctx;
    snprintf(m->cancel.run_id, sizeof m->cancel.run_id, "%s", run_id);
    m->cancel.req = c;
    engine_inbox_post(e, m);
}

void sbd_engine_describe(struct sbd_engine *e, const char *run_id,
                         void (*cb)(void *ctx, json_t *desc), void *ctx)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_DESCRIBE);
    if (!m) {
        cb(ctx, NULL);
        return;
    }
    snprintf(m->describe.run_id, sizeof m->describe.run_id, "%s", run_id);
    m->describe.cb = cb;
    m->describe.ctx = ctx;
    engine_inbox_post(e, m);
}

void sbd_engine_waits_resolved(struct sbd_engine *e, struct sbd_wait_resolution *res, size_t n)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_WAITS_RESOLVED);
    if (!m) {
        /* committed in the store: the runs are rebuilt at the next start */
        SB_LOG(SB_ERROR, "oom", "cannot tell the engine about %zu resolved waits", n);
        sbd_wait_resolutions_free(res, n);
        return;
    }
    m->waits_resolved.res = res;
    m->waits_resolved.n = n;
    engine_inbox_post(e, m);
}

void sbd_engine_checkpoint(struct sbd_engine *e, const char *run_id, int64_t qi_id, json_t *steps,
                           struct sb_req *req)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_CHECKPOINT);
    if (!m) {
        json_decref(steps);
        sb_reply_error(req, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    snprintf(m->checkpoint.run_id, sizeof m->checkpoint.run_id, "%s", run_id);
    m->checkpoint.qi_id = qi_id;
    m->checkpoint.steps = steps;
    m->checkpoint.req = req;
    engine_inbox_post(e, m);
}

void engine_post_committed(struct sbd_engine *e, struct sbd_run_update *op, int rc)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_COMMITTED);
    if (!m) {
        SB_LOG(SB_ERROR, "oom", "cannot post a commit to the engine");
        abort(); /* the run would wait for it for ever; the store has the commit */
    }
    m->committed.op = op;
    m->committed.rc = rc;
    engine_inbox_post(e, m);
}

void engine_post_repair(struct sbd_engine *e, const char *run_id)
{
    struct sbd_inbox_msg *m = engine_inbox_msg(MSG_REPAIR);
    if (!m)
        return; /* found again at the next start */
    snprintf(m->repair.run_id, sizeof m->repair.run_id, "%s", run_id);
    engine_inbox_post(e, m);
}
