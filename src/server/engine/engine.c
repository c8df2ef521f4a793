/* engine.c - the engine thread: its loop, dispatching due items, collecting
 * finished calls, start and stop. The inbox is in inbox.c, the run table
 * and items in runs.c.
 *
 * Loop: drain the inbox (new runs, commits, cancellations) -> collect
 * finished calls -> dispatch every due item while there is room in flight ->
 * epoll_wait until a socket is ready, curl's timer or the next due item
 * fires, or the inbox eventfd is written. curl runs in its socket mode
 * (curl_multi_socket_action): it tells us which sockets to watch, so each
 * turn of the loop costs O(ready sockets), not O(connections).
 *
 * Threads: sbd_engine_start runs on the caller's thread (main) before the
 * engine thread exists, and may post to the inbox (repairs, replayed
 * cancellations); sbd_engine_stop and sbd_engine_free on the caller's thread
 * after joining it; sbd_engine_alloc_qid and sbd_engine_stats on any thread
 * (atomics). Everything else here runs on the engine thread. */
#include "engine_internal.h"
#include "backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/qid.h"
#include "server/sbd.h"
#include "server/store/store.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- curl's socket callbacks ---- */

/* curl asks us to watch (or stop watching) a socket. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy, (void)socketp;
    struct sbd_engine *e = userp;
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
    struct sbd_engine *e = userp;
    e->curl_timer_ms = timeout_ms < 0 ? -1 : sb_mono_ms() + timeout_ms;
    return 0;
}

/* ---- dispatch ---- */

static void refresh_snapshot(struct sbd_engine *e)
{
    struct sbd_reg_snap *s = sbd_registry_acquire(e->sbd->registry);
    if (s == e->snap) {
        sbd_snap_release(s);
        return;
    }
    sbd_snap_release(e->snap);
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
static void load_failed(struct sbd_run *r, struct sbd_item *it, const struct sb_err *err,
                        int64_t now)
{
    r->load_failures++;
    SBD_COUNT(run_load_retries);
    int64_t delay = sbd_backoff_transport_ms(r->load_failures + 2, LOAD_RETRY_MAX_MS);
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
static enum load_result ensure_loaded(struct sbd_engine *e, struct sbd_run *r, struct sb_err *err)
{
    if (r->loaded)
        return LOAD_OK;
    struct sbd_store *st = sbd_store_reader();
    struct sbd_run_state rs;
    int rc = st ? sbd_store_run_state(st, r->id, &rs, err)
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
        sbd_run_state_free(&rs);
        return LOAD_GONE;
    }
    struct sbd_memo *memo = calloc(rs.nsteps ? rs.nsteps : 1, sizeof *memo);
    if (!memo) {
        /* a run without its memoized steps would run them again */
        sbd_run_state_free(&rs);
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
    sbd_run_state_free(&rs);
    r->loaded = true;
    e->loaded_runs++;
    return LOAD_OK;
}

static void dispatch_due(struct sbd_engine *e)
{
    int64_t now = sb_now_ms();
    int64_t max_inflight = e->sbd->cfg.max_inflight;
    while (e->queue.n > 0 && e->inflight < max_inflight) {
        struct sbd_item *it = iheap_top(&e->queue);
        if (it->due_at > now)
            break;
        engine_heap_remove(e, it);
        struct sbd_run *r = it->run;
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
        const struct sbd_fn *f = r->function_id ? sbd_snap_find(e->snap, r->function_id) : NULL;
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

static void collect_done(struct sbd_engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct sbd_call *c = NULL;
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
        struct sbd_call_result res;
        outcome_parse(code, code == CURLE_OPERATION_TIMEDOUT && pretransfer > 0, status, c, &res);
        struct sbd_item *it = c->item;
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
    struct sbd_engine *e = arg;
    struct epoll_event evs[256];
    int running = 0;
    while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
        engine_inbox_drain(e);
        collect_done(e);
        refresh_snapshot(e);
        admit_sweep(e, sb_now_ms());
        dispatch_due(e);
        collect_done(e); /* a call can fail at once (e.g. refused) */
        ENGINE_CHECK(e);
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
    struct sbd_engine *e;
    int64_t now;
};

static int load_item(void *ctx, const struct sbd_qitem_rec *q)
{
    struct load_ctx *lc = ctx;
    struct sbd_engine *e = lc->e;
    struct sbd_run *r = engine_run_find(e, q->run_id);
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
    engine_post_repair(ctx, run_id);
}

static void restore_throttle(void *ctx, const char *key, int64_t tat)
{
    admit_throttle_restore(ctx, key, tat);
}

/* A cancellation decided before the last stop but not yet carried out. */
static int replay_cancel(void *ctx, const char *run_id, const char *reason)
{
    (void)reason;
    sbd_engine_cancel(ctx, run_id, NULL, NULL);
    return 0;
}

/* The start-up scans. Whole or not at all: an engine that started with part
 * of its queue would leave the other runs stalled until the next restart
 * (and could hand out queue ids already in use). The error goes to main,
 * which exits 1 with it; the supervisor's restart reads the store again. */
static int engine_load(struct sbd_engine *e, struct sbd_store *st, struct load_ctx *lc,
                       struct sb_err *err)
{
    int rc;
    const char *what;
    if ((rc = sbd_store_queue_scan(st, load_item, lc, err)))
        what = "the queue";
    else if ((rc = sbd_store_throttles_scan(st, lc->now, restore_throttle, e, err)))
        what = "the throttle keys";
    else if ((rc = sbd_store_orphan_runs(st, repair_orphan, e, err)))
        what = "the runs to repair";
    else if ((rc = sbd_store_cancel_requests_scan(st, replay_cancel, e, err)))
        what = "the cancel requests";
    else
        return 0;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return sb_err_set(err, rc < 0 ? rc : SB_ESTORE, "cannot load %s from the store: %.400s", what,
                      msg);
}

int64_t sbd_engine_alloc_qid(struct sbd_engine *e)
{
    return sbd_qid_new(&e->sbd->qids);
}

int sbd_engine_start(struct sbd *sbd, struct sbd_engine **out, struct sb_err *err)
{
    assert(inbox_table_complete()); /* every inbox kind has its handler */
    struct sbd_engine *e = calloc(1, sizeof *e);
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
        sbd_engine_free(e);
        return sb_err_set(err, SB_ENOMEM, "cannot set up the engine's event loop");
    }
    /* idle keep-alive connections kept after a burst (each holds buffers) */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, 128L);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    e->snap = sbd_registry_acquire(sbd->registry);

    struct sbd_store *st = sbd_store_reader();
    if (!st) {
        sbd_engine_free(e);
        return sb_err_set(err, SB_ESTORE, "cannot open a read connection to the store");
    }
    struct load_ctx lc = { e, sb_now_ms() };
    if (engine_load(e, st, &lc, err) != 0) {
        sbd_engine_free(e);
        return err->code;
    }
    SB_LOGK(SB_INFO, "engine_loaded",
            ((struct sb_lf[]){ LF_I("queue_items", e->nitems), LF_I("runs", e->nruns) }),
            "engine loaded %zu queue items of %zu runs", e->nitems, e->nruns);
    /* Published before the thread runs: a run it ends can trigger runs whose
     * commit notifies *out (daemon.c) before this function returns. */
    *out = e;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        *out = NULL;
        e->thread = 0;
        sbd_engine_free(e);
        return sb_err_errno(err, SB_EIO, "cannot start the engine thread");
    }
    return 0;
}

void sbd_engine_stop(struct sbd_engine *e)
{
    if (!e || !e->thread)
        return;
    __atomic_store_n(&e->stop, 1, __ATOMIC_RELEASE);
    engine_wake(e);
    pthread_join(e->thread, NULL);
    e->thread = 0;
    engine_inbox_close(e);
}

void sbd_engine_free(struct sbd_engine *e)
{
    if (!e)
        return;
    sbd_engine_stop(e);
    engine_inbox_close(e); /* answers what is left */
    /* Calls in flight are abandoned: their items are still in the store and
     * will be dispatched again at the next start. */
    for (size_t i = 0; i < e->nbuckets; i++) {
        while (e->buckets[i]) {
            struct sbd_run *r = e->buckets[i];
            while (r->cancels) {
                struct sbd_cancel_req *c = r->cancels;
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
    sbd_snap_release(e->snap);
    pthread_mutex_destroy(&e->inbox_lock);
    admit_free(e);
    iheap_free(&e->queue);
    free(e->buckets);
    free(e);
}

void sbd_engine_stats(struct sbd_engine *e, struct sbd_engine_stats *out)
{
    out->queue_items = __atomic_load_n(&e->stat_items, __ATOMIC_RELAXED);
    out->inflight = __atomic_load_n(&e->stat_inflight, __ATOMIC_RELAXED);
    out->runs = __atomic_load_n(&e->stat_runs, __ATOMIC_RELAXED);
}
