/* engine.c - the engine thread: inbox, dispatch loop, start and stop (the
 * run table and items are in runs.c).
 *
 * Loop: drain the inbox (new runs, commits, cancellations) -> collect
 * finished calls -> dispatch every due item while there is room in flight ->
 * epoll_wait until a socket is ready, curl's timer or the next due item
 * fires, or the inbox eventfd is written. curl runs in its socket mode
 * (curl_multi_socket_action): it tells us which sockets to watch, so each
 * turn of the loop costs O(ready sockets), not O(connections). All state
 * below is engine-thread only, except the inbox and the stat_* counters. */
#include "engine_internal.h"
#include "backoff.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/sbd.h"
#include "server/store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- wake-ups and curl's socket callbacks ---- */

static void engine_wake(struct sb_engine *e)
{
    uint64_t one = 1;
    while (write(e->wakefd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/* curl asks us to watch (or stop watching) a socket. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy, (void)socketp;
    struct sb_engine *e = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = { 0 };
    ev.data.fd = s;
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
        epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

/* curl asks to be called back after timeout_ms (-1: no timer). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct sb_engine *e = userp;
    e->curl_timer_ms = timeout_ms < 0 ? -1 : sb_mono_ms() + timeout_ms;
    return 0;
}

/* ---- inbox ---- */

/* A message the engine will never handle (it stopped): answer whoever waits
 * for it and free it. */
static void inbox_reject(struct inbox_msg *m)
{
    if (m->kind == MSG_NEW_RUNS) { /* committed: picked up at the next start */
        for (size_t i = 0; i < m->nruns; i++) {
            free(m->runs[i].function_id);
            free(m->runs[i].event);
        }
        free(m->runs);
    } else if (m->kind == MSG_COMMITTED) {
        m->op->run->committing--;
        runop_free(m->op);
    } else if (m->kind == MSG_CANCEL) {
        if (m->cancel->cb)
            m->cancel->cb(m->cancel->ctx, SB_EUNAVAIL, -1);
        free(m->cancel);
    } else if (m->kind == MSG_WAITS_RESOLVED) {
        sb_wait_resolutions_free(m->resolved, m->nresolved);
    } else if (m->kind == MSG_CHECKPOINT) {
        json_decref(m->steps);
        sb_reply_error(m->req, 503, "UNAVAILABLE", "sysbusd is shutting down");
    } else if (m->kind == MSG_DESCRIBE) {
        m->describe_cb(m->describe_ctx, NULL);
    }
    free(m);
}

/* After the thread stopped: answers every queued message, and later posts
 * at once (so no request waits on an engine that is gone). */
static void engine_inbox_close(struct sb_engine *e)
{
    pthread_mutex_lock(&e->inbox_lock);
    e->inbox_closed = true;
    struct inbox_msg *m = e->inbox_head;
    e->inbox_head = e->inbox_tail = NULL;
    pthread_mutex_unlock(&e->inbox_lock);
    while (m) {
        struct inbox_msg *next = m->next;
        inbox_reject(m);
        m = next;
    }
}

void engine_inbox_post(struct sb_engine *e, struct inbox_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&e->inbox_lock);
    if (e->inbox_closed) {
        pthread_mutex_unlock(&e->inbox_lock);
        inbox_reject(m);
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

void sb_engine_add_runs(struct sb_engine *e, struct new_run *runs, size_t n)
{
    struct inbox_msg *m = calloc(1, sizeof *m);
    struct new_run *copy = malloc(n * sizeof *copy);
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
    m->kind = MSG_NEW_RUNS;
    m->runs = copy;
    m->nruns = n;
    engine_inbox_post(e, m);
}

void sb_engine_cancel(struct sb_engine *e, const char *run_id,
                      void (*cb)(void *ctx, int rc, int status), void *ctx)
{
    struct inbox_msg *m = calloc(1, sizeof *m);
    struct cancel_req *c = calloc(1, sizeof *c);
    if (!m || !c) {
        free(m);
        free(c);
        if (cb)
            cb(ctx, SB_ENOMEM, -1);
        return;
    }
    c->cb = cb;
    c->ctx = ctx;
    m->kind = MSG_CANCEL;
    snprintf(m->run_id, sizeof m->run_id, "%s", run_id);
    m->cancel = c;
    engine_inbox_post(e, m);
}

void sb_engine_describe(struct sb_engine *e, const char *run_id,
                        void (*cb)(void *ctx, json_t *desc), void *ctx)
{
    struct inbox_msg *m = calloc(1, sizeof *m);
    if (!m) {
        cb(ctx, NULL);
        return;
    }
    m->kind = MSG_DESCRIBE;
    snprintf(m->run_id, sizeof m->run_id, "%s", run_id);
    m->describe_cb = cb;
    m->describe_ctx = ctx;
    engine_inbox_post(e, m);
}

/* {in_call, parked_on?}: the slot key a parked item waits on
 * ("c<US>scope<US>value"), or the throttle key of an item a throttle
 * delayed ("t<US>fn-id<US>value"). */
static void handle_describe(struct sb_engine *e, struct inbox_msg *m)
{
    struct run *r = engine_run_find(e, m->run_id);
    json_t *d = NULL;
    if (r) {
        bool in_call = false;
        const char *key = NULL, *kind = "concurrency";
        for (const struct item *it = r->items; it; it = it->next) {
            in_call = in_call || it->call || it->leasing;
            if (!key)
                key = admit_parked_key(e, it);
            if (!key && it->throttled && r->flow_keys[2]) {
                key = r->flow_keys[2]; /* "t<US>fn-id<US>value" */
                kind = "throttle";
            }
        }
        d = json_pack("{s:b}", "in_call", in_call);
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
    }
    m->describe_cb(m->describe_ctx, d);
}

void sb_engine_waits_resolved(struct sb_engine *e, struct wait_resolution *res, size_t n)
{
    struct inbox_msg *m = calloc(1, sizeof *m);
    if (!m) {
        /* committed in the store: the runs are rebuilt at the next start */
        SB_LOG(SB_ERROR, "oom", "cannot tell the engine about %zu resolved waits", n);
        sb_wait_resolutions_free(res, n);
        return;
    }
    m->kind = MSG_WAITS_RESOLVED;
    m->resolved = res;
    m->nresolved = n;
    engine_inbox_post(e, m);
}

void sb_engine_checkpoint(struct sb_engine *e, const char *run_id, int64_t qi_id, json_t *steps,
                          struct sb_req *req)
{
    struct inbox_msg *m = calloc(1, sizeof *m);
    if (!m) {
        json_decref(steps);
        sb_reply_error(req, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    m->kind = MSG_CHECKPOINT;
    snprintf(m->run_id, sizeof m->run_id, "%s", run_id);
    m->qi_id = qi_id;
    m->steps = steps;
    m->req = req;
    engine_inbox_post(e, m);
}

/* Called on the writer thread when a run_update committed. */
void runop_post_committed(struct sb_engine *e, struct run_update *op, int rc);
void runop_post_committed(struct sb_engine *e, struct run_update *op, int rc)
{
    struct inbox_msg *m = calloc(1, sizeof *m);
    if (!m) {
        SB_LOG(SB_ERROR, "oom", "cannot post a commit to the engine");
        abort();
    }
    m->kind = MSG_COMMITTED;
    m->op = op;
    m->rc = rc;
    engine_inbox_post(e, m);
}

static void take_new_runs(struct sb_engine *e, struct inbox_msg *m)
{
    for (size_t i = 0; i < m->nruns; i++) {
        struct new_run *nr = &m->runs[i];
        struct run *r = engine_run_add(e, nr->run_id);
        snprintf(r->event_id, sizeof r->event_id, "%s", nr->event_id);
        r->function_id = nr->function_id;
        if (nr->event) {
            r->event = nr->event;
            r->loaded = true;
            e->loaded_runs++;
        }
        struct item *it = engine_item_new(e, r, nr->qid, "step");
        it->due_at = nr->due_at;
        engine_heap_push(e, it);
    }
    free(m->runs);
}

static void handle_cancel(struct sb_engine *e, struct inbox_msg *m)
{
    struct run *r = engine_run_find(e, m->run_id);
    if (!r || r->ended) {
        /* Not running here: tell the caller whether it exists at all. */
        int status = -1;
        struct sb_err err = { SB_EUNAVAIL, 0, "" };
        struct sb_store *st = sb_store_reader();
        int rc = st ? sb_store_run_status(st, m->run_id, &status, &err) : SB_EUNAVAIL;
        if (rc || status < RUN_RUNNING || status > RUN_CANCELLED)
            status = -1; /* not found, unreadable, or a status no run has */
        if (rc && err.code != SB_ENOTFOUND && !(r && r->ended)) {
            /* whether it exists is unknown: not "no such run" */
            if (m->cancel->cb)
                m->cancel->cb(m->cancel->ctx, err.code, -1);
            free(m->cancel);
            return;
        }
        if (r && r->ended) {
            /* ending is in flight: answer when it commits */
            m->cancel->next = r->cancels;
            r->cancels = m->cancel;
            return;
        }
        if (m->cancel->cb)
            m->cancel->cb(m->cancel->ctx, status < 0 ? SB_ENOTFOUND : SB_ECONFLICT, status);
        free(m->cancel);
        return;
    }
    m->cancel->next = r->cancels;
    r->cancels = m->cancel;
    r->cancelled = true;
    decide_fail(e, r, NULL, RUN_CANCELLED, 0, "RunCancelled", "the run was cancelled");
}

/* A Running run without queue rows (found at start): give it a discovery
 * call; memoized steps make this safe. */
static void handle_repair(struct sb_engine *e, struct inbox_msg *m)
{
    if (engine_run_find(e, m->run_id))
        return;
    struct run *r = engine_run_add(e, m->run_id);
    struct item *it = engine_item_new(e, r, sb_engine_alloc_qid(e), "step");
    it->due_at = sb_now_ms();
    struct run_update *op = runop_new(e, r);
    if (!op || runop_put_item(op, it) != 0) {
        runop_free(op);
        engine_run_free(e, r);
        return;
    }
    SB_LOG(SB_WARN, "run_repaired", "run %s had no queue item; scheduled a new call", r->id);
    runop_submit(op);
}

static void drain_inbox(struct sb_engine *e)
{
    pthread_mutex_lock(&e->inbox_lock);
    struct inbox_msg *m = e->inbox_head;
    e->inbox_head = e->inbox_tail = NULL;
    pthread_mutex_unlock(&e->inbox_lock);
    while (m) {
        struct inbox_msg *next = m->next;
        switch (m->kind) {
        case MSG_NEW_RUNS: take_new_runs(e, m); break;
        case MSG_COMMITTED: runop_committed(e, m->op, m->rc); break;
        case MSG_CANCEL: handle_cancel(e, m); break;
        case MSG_REPAIR: handle_repair(e, m); break;
        case MSG_WAITS_RESOLVED: engine_handle_waits_resolved(e, m); break;
        case MSG_CHECKPOINT: engine_handle_checkpoint(e, m); break;
        case MSG_LEASED: engine_handle_leased(e, m); break;
        case MSG_DESCRIBE: handle_describe(e, m); break;
        }
        free(m);
        m = next;
    }
}

/* ---- dispatch ---- */

static void refresh_snapshot(struct sb_engine *e)
{
    struct reg_snap *s = sb_registry_acquire(e->sbd->registry);
    if (s == e->snap) {
        sb_snap_release(s);
        return;
    }
    sb_snap_release(e->snap);
    e->snap = s;
}

enum load_result { LOAD_OK, LOAD_GONE, LOAD_LATER };

/* A run whose state could not be read is tried again after 400 ms, doubling
 * to 30 s (with jitter); its log line comes at most once a minute. */
#define LOAD_RETRY_MAX_MS 30000
#define LOAD_LOG_EVERY_MS 60000

/* A store error reading the run: the call is not made without its state
 * (missing memoized steps would run completed steps again), and the run is
 * not failed for what is most likely a passing fault (a busy or full disk):
 * the item waits and is tried again, with a log line per run at most once a
 * minute and a counter for every retry. */
static void load_failed(struct run *r, struct item *it, const struct sb_err *err, int64_t now)
{
    r->load_failures++;
    SBD_COUNT(run_load_retries);
    int64_t delay = sb_backoff_transport_ms(r->load_failures + 2, LOAD_RETRY_MAX_MS);
    if (r->load_failures == 1 || now - r->load_logged_at >= LOAD_LOG_EVERY_MS) {
        r->load_logged_at = now;
        SB_LOGK(SB_ERROR, "run_load_failed",
                ((struct sb_lf[]){ LF_S("run_id", r->id), LF_I("failures", r->load_failures),
                                   LF_I("retry_in_ms", delay) }),
                "cannot read the state of run %s (its call waits): %s", r->id, err->msg);
    }
    it->due_at = now + delay;
}

/* Loads the run's heavy state from the store: LOAD_GONE when the run cannot
 * be continued (ended, or no longer stored), LOAD_LATER when the store could
 * not be read (err says why). */
static enum load_result ensure_loaded(struct sb_engine *e, struct run *r, struct sb_err *err)
{
    if (r->loaded)
        return LOAD_OK;
    struct sb_store *st = sb_store_reader();
    struct run_state rs;
    int rc = st ? sb_store_run_state(st, r->id, &rs, err)
                : sb_err_set(err, SB_EUNAVAIL, "no read connection to the store");
    if (rc == SB_ENOTFOUND) {
        SB_LOG(SB_ERROR, "run_load_failed", "run %s is not in the store any more: dropped", r->id);
        return LOAD_GONE;
    }
    if (rc)
        return LOAD_LATER;
    r->load_failures = 0;
    if (rs.status != RUN_RUNNING) {
        /* ended by an earlier incarnation; its queue rows are stale */
        sb_run_state_free(&rs);
        return LOAD_GONE;
    }
    struct memo *memo = calloc(rs.nsteps ? rs.nsteps : 1, sizeof *memo);
    if (!memo) {
        /* a run without its memoized steps would run them again */
        sb_run_state_free(&rs);
        sb_err_set(err, SB_ENOMEM, "out of memory loading its steps");
        return LOAD_LATER;
    }
    r->memo = memo;
    r->capmemo = rs.nsteps ? rs.nsteps : 1;
    for (size_t i = 0; i < rs.nsteps; i++) {
        snprintf(r->memo[i].hash, sizeof r->memo[i].hash, "%s", rs.steps[i].hash);
        r->memo[i].value = rs.steps[i].output;
        rs.steps[i].output = NULL;
        r->nmemo++;
    }
    r->event = rs.event;
    rs.event = NULL;
    r->events = rs.events;
    rs.events = NULL;
    r->req_version = rs.req_version;
    if (!r->function_id) {
        r->function_id = rs.function_id;
        rs.function_id = NULL;
    }
    sb_run_state_free(&rs);
    r->loaded = true;
    e->loaded_runs++;
    return LOAD_OK;
}

static void dispatch_due(struct sb_engine *e)
{
    int64_t now = sb_now_ms();
    int64_t max_inflight = e->sbd->cfg.max_inflight;
    while (e->queue.n > 0 && e->inflight < max_inflight) {
        struct item *it = iheap_top(&e->queue);
        if (it->due_at > now)
            break;
        engine_heap_remove(e, it);
        struct run *r = it->run;
        if (r->committing > 0 || r->ended)
            continue; /* re-pushed when the commit lands */
        if (it->flags & ITEM_REBUILD) {
            repair_rebuild_due(e, it);
            continue;
        }
        struct sb_err lerr = { 0 };
        enum load_result lr = ensure_loaded(e, r, &lerr);
        if (lr == LOAD_GONE) {
            engine_run_free(e, r);
            continue;
        }
        if (lr == LOAD_LATER) {
            load_failed(r, it, &lerr, now);
            engine_heap_push(e, it);
            continue;
        }
        const struct fn *f = r->function_id ? sb_snap_find(e->snap, r->function_id) : NULL;
        if (!f) {
            decide_fail(e, r, NULL, RUN_FAILED, 0, "FunctionNotFound",
                        "function '%s' is not registered any more; sync its app and rerun",
                        r->function_id ? r->function_id : "?");
            continue;
        }
        if (it->flags & ITEM_DEADLINE) {
            admit_deadline_due(e, it, f);
            continue;
        }
        if (it->flags & (ITEM_SLEEP | ITEM_WAIT | ITEM_INVOKE)) {
            decide_timer(e, it);
            continue;
        }
        if (!it->leased) { /* a leased call was admitted before its lease */
            switch (admit_call(e, it, f, now)) {
            case ADMIT_GO: break;
            case ADMIT_LATER: engine_heap_push(e, it); continue;
            case ADMIT_PARKED:
            case ADMIT_TIMED_OUT: continue;
            }
            if (lease_begin(e, it, now))
                continue; /* back when its lease is stored */
        }
        if (call_start(e, it, f) != 0) {
            /* could not even build the request: retry shortly */
            admit_release(e, it);
            it->due_at = now + 1000;
            engine_heap_push(e, it);
            break;
        }
    }
}

static void collect_done(struct sb_engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (!c)
            continue;
        long status = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
        curl_off_t pretransfer = 0, starttransfer = 0;
        curl_easy_getinfo(c->h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
        curl_easy_getinfo(c->h, CURLINFO_STARTTRANSFER_TIME_T, &starttransfer);
        CURLcode code = msg->data.result;
        int64_t dt = sb_mono_us() - c->sent_us;
        sbd_hist_observe(&sbd_metrics.call_latency, dt);
        struct call_result res;
        outcome_parse(code, code == CURLE_OPERATION_TIMEDOUT && pretransfer > 0, status, c, &res);
        struct item *it = c->item;
        it->call = NULL;
        call_free(e, c);
        e->inflight--;
        admit_release(e, it);
        it->run->handoff_us = sb_mono_us();
        decide_call_result(e, it, &res);
        outcome_free(&res);
    }
}

static void *engine_main(void *arg)
{
    struct sb_engine *e = arg;
    struct epoll_event evs[256];
    int running = 0;
    while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
        drain_inbox(e);
        collect_done(e);
        refresh_snapshot(e);
        admit_sweep(e, sb_now_ms());
        dispatch_due(e);
        collect_done(e); /* a call can fail at once (e.g. refused) */
        __atomic_store_n(&e->stat_items, (int64_t)e->nitems, __ATOMIC_RELAXED);
        __atomic_store_n(&e->stat_inflight, e->inflight, __ATOMIC_RELAXED);
        __atomic_store_n(&e->stat_runs, (int64_t)e->nruns, __ATOMIC_RELAXED);

        int64_t timeout = 1000;
        if (e->queue.n > 0 && e->inflight < e->sbd->cfg.max_inflight) {
            int64_t wait = iheap_top(&e->queue)->due_at - sb_now_ms();
            if (wait < timeout)
                timeout = wait < 0 ? 0 : wait;
        }
        if (e->curl_timer_ms >= 0) {
            int64_t wait = e->curl_timer_ms - sb_mono_ms();
            if (wait < timeout)
                timeout = wait < 0 ? 0 : wait;
        }
        int n = epoll_wait(e->epfd, evs, 256, (int)timeout);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == e->wakefd) {
                uint64_t v;
                while (read(e->wakefd, &v, sizeof v) < 0 && errno == EINTR) {
                }
                continue;
            }
            int flags = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP))
                flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (evs[i].events & EPOLLERR)
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(e->multi, fd, flags, &running);
        }
        if (e->curl_timer_ms >= 0 && sb_mono_ms() >= e->curl_timer_ms) {
            e->curl_timer_ms = -1;
            curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
    }
    return NULL;
}

/* ---- start / stop ---- */

struct load_ctx {
    struct sb_engine *e;
    int64_t now;
};

static int load_item(void *ctx, const struct qitem_rec *q)
{
    struct load_ctx *lc = ctx;
    struct sb_engine *e = lc->e;
    struct run *r = engine_run_find(e, q->run_id);
    if (!r) {
        r = engine_run_add(e, q->run_id);
        r->function_id = q->function_id ? strdup(q->function_id) : NULL;
        snprintf(r->event_id, sizeof r->event_id, "%s", q->event_id ? q->event_id : "");
    }
    engine_heap_push(e, engine_item_load(e, r, q));
    lease_restore(e, q, lc->now);
    return 0;
}

static void repair_orphan(void *ctx, const char *run_id)
{
    struct sb_engine *e = ctx;
    struct inbox_msg *m = calloc(1, sizeof *m);
    if (!m)
        return;
    m->kind = MSG_REPAIR;
    snprintf(m->run_id, sizeof m->run_id, "%s", run_id);
    engine_inbox_post(e, m);
}

static void restore_throttle(void *ctx, const char *key, int64_t tat)
{
    admit_throttle_restore(ctx, key, tat);
}

/* A cancellation decided before the last stop but not yet carried out. */
static int replay_cancel(void *ctx, const char *run_id, const char *reason)
{
    (void)reason;
    sb_engine_cancel(ctx, run_id, NULL, NULL);
    return 0;
}

/* The start-up scans. Whole or not at all: an engine that started with part
 * of its queue would leave the other runs stalled until the next restart
 * (and could hand out queue ids already in use). The error goes to main,
 * which exits 1 with it; the supervisor's restart reads the store again. */
static int engine_load(struct sb_engine *e, struct sb_store *st, struct load_ctx *lc,
                       struct sb_err *err)
{
    int rc;
    const char *what;
    if ((rc = sb_store_queue_max_id(st, &e->next_qid, err)))
        what = "the largest queue id";
    else if ((rc = sb_store_queue_scan(st, load_item, lc, err)))
        what = "the queue";
    else if ((rc = sb_store_throttles_scan(st, lc->now, restore_throttle, e, err)))
        what = "the throttle keys";
    else if ((rc = sb_store_orphan_runs(st, repair_orphan, e, err)))
        what = "the runs to repair";
    else if ((rc = sb_store_cancel_requests_scan(st, replay_cancel, e, err)))
        what = "the cancel requests";
    else {
        e->next_qid++;
        return 0;
    }
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return sb_err_set(err, rc < 0 ? rc : SB_ESTORE, "cannot load %s from the store: %.400s", what,
                      msg);
}

int64_t sb_engine_alloc_qid(struct sb_engine *e)
{
    return __atomic_fetch_add(&e->next_qid, 1, __ATOMIC_RELAXED);
}

int sb_engine_start(struct sbd *sbd, struct sb_engine **out, struct sb_err *err)
{
    struct sb_engine *e = calloc(1, sizeof *e);
    if (!e)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    e->sbd = sbd;
    e->epfd = e->wakefd = -1;
    e->nbuckets = 1024;
    e->buckets = calloc(e->nbuckets, sizeof *e->buckets);
    e->multi = curl_multi_init();
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->curl_timer_ms = -1;
    pthread_mutex_init(&e->inbox_lock, NULL);
    struct epoll_event wev = { .events = EPOLLIN, .data.fd = e->wakefd };
    if (!e->buckets || !e->multi || e->epfd < 0 || e->wakefd < 0 ||
        epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &wev) != 0) {
        sb_engine_free(e);
        return sb_err_set(err, SB_ENOMEM, "cannot set up the engine's event loop");
    }
    /* idle keep-alive connections kept after a burst (each holds buffers) */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, 128L);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    e->snap = sb_registry_acquire(sbd->registry);

    struct sb_store *st = sb_store_reader();
    if (!st) {
        sb_engine_free(e);
        return sb_err_set(err, SB_ESTORE, "cannot open a read connection to the store");
    }
    struct load_ctx lc = { e, sb_now_ms() };
    if (engine_load(e, st, &lc, err) != 0) {
        sb_engine_free(e);
        return err->code;
    }
    SB_LOGK(SB_INFO, "engine_loaded",
            ((struct sb_lf[]){ LF_I("queue_items", e->nitems), LF_I("runs", e->nruns) }),
            "engine loaded %zu queue items of %zu runs", e->nitems, e->nruns);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        e->thread = 0;
        sb_engine_free(e);
        return sb_err_errno(err, SB_EIO, "cannot start the engine thread");
    }
    *out = e;
    return 0;
}

void sb_engine_stop(struct sb_engine *e)
{
    if (!e || !e->thread)
        return;
    __atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
    engine_wake(e);
    pthread_join(e->thread, NULL);
    e->thread = 0;
    engine_inbox_close(e);
}

void sb_engine_free(struct sb_engine *e)
{
    if (!e)
        return;
    sb_engine_stop(e);
    engine_inbox_close(e); /* answers what is left */
    /* Calls in flight are abandoned: their items are still in the store and
     * will be dispatched again at the next start. */
    for (size_t i = 0; i < e->nbuckets; i++) {
        while (e->buckets[i]) {
            struct run *r = e->buckets[i];
            while (r->cancels) {
                struct cancel_req *c = r->cancels;
                r->cancels = c->next;
                if (c->cb)
                    c->cb(c->ctx, SB_EUNAVAIL, -1);
                free(c);
            }
            engine_run_free(e, r);
        }
    }
    for (size_t i = 0; i < e->nidle; i++)
        curl_easy_cleanup(e->idle_handles[i]);
    free(e->idle_handles);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->wakefd >= 0)
        close(e->wakefd);
    sb_snap_release(e->snap);
    pthread_mutex_destroy(&e->inbox_lock);
    admit_free(e);
    iheap_free(&e->queue);
    free(e->buckets);
    free(e);
}

void sb_engine_stats(struct sb_engine *e, struct engine_stats *out)
{
    out->queue_items = __atomic_load_n(&e->stat_items, __ATOMIC_RELAXED);
    out->inflight = __atomic_load_n(&e->stat_inflight, __ATOMIC_RELAXED);
    out->runs = __atomic_load_n(&e->stat_runs, __ATOMIC_RELAXED);
}
