/* waiters.c - long-poll waiters (see waiters.h). All waiter state is guarded
 * by w->bg.lock; store reads happen on the waiter thread without the lock. */
#include "waiters.h"
#include "common/bgthread.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ulid.h"
#include "api/views.h"
#include "sbd.h"
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
    struct waiter *next;
    struct sb_req *req;
    enum sbd_waiter_kind kind;
    char id[SB_ULID_SIZE];
    int64_t deadline_ms;
    int check; /* needs a re-check */
};

struct note {
    struct note *next;
    char run_id[SB_ULID_SIZE], event_id[SB_ULID_SIZE];
};

struct sbd_waiters {
    struct sbd *sbd;
    struct sb_bg bg; /* bg.lock guards everything below */
    struct waiter *waiters;
    struct note *notes;
    int64_t count; /* waiters not yet answered (listed or being evaluated) */
};

/* The failure of a read: SB_ENOTFOUND (the run or event does not exist), or
 * the store's error (err filled in both cases). */
static int read_failed(struct sbd_store *st, json_t **body, struct sb_err *err)
{
    if (!st)
        sb_err_set(err, SB_EUNAVAIL, "no read connection to the store");
    *body = NULL;
    return err->code < 0 ? err->code : SB_ESTORE;
}

int sbd_read_run(const char *run_id, json_t **body, bool *ended, struct sb_err *err)
{
    struct sbd_store *st = sbd_store_reader();
    int run_status = -1;
    json_t *run = st ? api_view_run(st, run_id, &run_status, err) : NULL;
    if (!run)
        return read_failed(st, body, err);
    *ended = run_status != RUN_RUNNING;
    *body = json_pack("{s:o}", "data", run);
    return 0;
}

int sbd_read_event_runs(const char *event_id, json_t **body, bool *ended, struct sb_err *err)
{
    struct sbd_store *st = sbd_store_reader();
    json_t *ev = st ? api_view_event(st, event_id, err) : NULL;
    if (!ev)
        return read_failed(st, body, err);
    json_decref(ev);
    struct sbd_run_filter f = { .status = -1, .event_id = event_id, .limit = 1000 };
    size_t running = 0;
    json_t *runs = api_view_runs(st, &f, &running, err);
    if (!runs)
        return read_failed(st, body, err);
    *ended = running == 0;
    json_t *meta = json_pack("{s:I}", "count", (json_int_t)json_array_size(runs));
    int64_t due_at;
    bool held = false;
    int hrc =
        json_array_size(runs) == 0 ? sbd_store_event_held(st, event_id, &held, &due_at, err) : 0;
    if (hrc) { /* "no runs, none to come" is not known: no answer yet */
        json_decref(runs);
        json_decref(meta);
        sb_err_set(err, hrc, "cannot tell whether event %s is held by a debounce or batch",
                   event_id);
        return read_failed(st, body, err);
    }
    if (held) {
        char iso[40]; /* a debounce or batch holds it: its run is still to come */
        sb_time_format_iso(due_at, iso, sizeof iso);
        json_object_set_new(meta, "held_until", json_string(iso));
        *ended = false;
    }
    *body = json_pack("{s:o, s:o}", "data", runs, "metadata", meta);
    return 0;
}

void sbd_reply_read_error(struct sb_req *req, const char *what, const char *id, int rc,
                          const struct sb_err *err)
{
    if (rc == SB_ENOTFOUND)
        sb_reply_error(req, 404, "NOT_FOUND", "no such %s: %s", what, id);
    else
        sb_reply_error(req, 503, "STORE_ERROR", "cannot read %s %s from the store: %s", what, id,
                       sbd_store_err_public(err));
}

/* Reads the waiter's state; answers and returns true when done (the awaited
 * end, a failed read, or final). */
static bool evaluate(struct waiter *wt, bool final)
{
    json_t *body;
    bool ended = false;
    struct sb_err err = { 0 };
    int rc = wt->kind == WAIT_RUN ? sbd_read_run(wt->id, &body, &ended, &err)
                                  : sbd_read_event_runs(wt->id, &body, &ended, &err);
    if (!rc && !ended && !final) {
        json_decref(body);
        return false;
    }
    if (rc) {
        json_decref(body);
        sbd_reply_read_error(wt->req, wt->kind == WAIT_RUN ? "run" : "event", wt->id, rc, &err);
    } else {
        sb_reply_json(wt->req, 200, body);
    }
    return true;
}

static void *waiters_main(void *arg)
{
    struct sbd_waiters *w = arg;
    pthread_mutex_lock(&w->bg.lock);
    while (!w->bg.stop) {
        /* mark waiters touched by notes */
        struct note *notes = w->notes;
        w->notes = NULL;
        while (notes) {
            struct note *n = notes;
            notes = n->next;
            for (struct waiter *wt = w->waiters; wt; wt = wt->next) {
                if ((wt->kind == WAIT_RUN && strcmp(wt->id, n->run_id) == 0) ||
                    (wt->kind == WAIT_EVENT_RUNS &&
                     (!n->event_id[0] || strcmp(wt->id, n->event_id) == 0)))
                    wt->check = 1;
            }
            free(n);
        }
        /* evaluate the marked and expired ones outside the lock */
        int64_t now = sb_now_ms(), next_deadline = now + 1000;
        struct waiter *todo = NULL, **pp = &w->waiters;
        while (*pp) {
            struct waiter *wt = *pp;
            if (wt->check || wt->deadline_ms <= now) {
                *pp = wt->next;
                wt->next = todo;
                todo = wt;
            } else {
                if (wt->deadline_ms < next_deadline)
                    next_deadline = wt->deadline_ms;
                pp = &wt->next;
            }
        }
        pthread_mutex_unlock(&w->bg.lock);
        struct waiter *keep = NULL;
        while (todo) {
            struct waiter *wt = todo;
            todo = wt->next;
            if (evaluate(wt, wt->deadline_ms <= sb_now_ms())) {
                free(wt);
                pthread_mutex_lock(&w->bg.lock);
                w->count--;
                pthread_mutex_unlock(&w->bg.lock);
            } else {
                wt->check = 0;
                wt->next = keep;
                keep = wt;
            }
        }
        pthread_mutex_lock(&w->bg.lock);
        while (keep) {
            struct waiter *wt = keep;
            keep = wt->next;
            wt->next = w->waiters;
            w->waiters = wt;
            if (wt->deadline_ms < next_deadline)
                next_deadline = wt->deadline_ms;
        }
        if (w->notes || w->bg.stop)
            continue;
        bool pending = false;
        for (struct waiter *wt = w->waiters; wt; wt = wt->next)
            pending |= wt->check;
        if (pending)
            continue;
        sb_bg_wait_ms(&w->bg, next_deadline - sb_now_ms());
    }
    /* stopping: answer everyone with the current state */
    struct waiter *all = w->waiters;
    w->waiters = NULL;
    pthread_mutex_unlock(&w->bg.lock);
    while (all) {
        struct waiter *wt = all;
        all = wt->next;
        evaluate(wt, true);
        free(wt);
    }
    return NULL;
}

int sbd_waiters_start(struct sbd *sbd, struct sbd_waiters **out, struct sb_err *err)
{
    struct sbd_waiters *w = calloc(1, sizeof *w);
    if (!w)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    w->sbd = sbd;
    int rc = sb_bg_start(&w->bg, waiters_main, w, "waiter", err);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void sbd_waiters_stop(struct sbd_waiters *w)
{
    if (!w)
        return;
    sb_bg_stop(&w->bg); /* the thread answers every waiter before it ends */
    while (w->notes) {
        struct note *n = w->notes;
        w->notes = n->next;
        free(n);
    }
    free(w);
}

void sbd_waiters_add(struct sbd_waiters *w, struct sb_req *req, enum sbd_waiter_kind kind,
                     const char *id, int64_t deadline_ms)
{
    struct waiter *wt = calloc(1, sizeof *wt);
    if (!wt) {
        sb_reply_error(req, 503, "UNAVAILABLE", "out of memory");
        return;
    }
    wt->req = req;
    wt->kind = kind;
    snprintf(wt->id, sizeof wt->id, "%s", id);
    wt->deadline_ms = deadline_ms;
    wt->check = 1;
    pthread_mutex_lock(&w->bg.lock);
    if (w->bg.stop) {
        pthread_mutex_unlock(&w->bg.lock);
        evaluate(wt, true);
        free(wt);
        return;
    }
    wt->next = w->waiters;
    w->waiters = wt;
    w->count++;
    pthread_cond_signal(&w->bg.cond);
    pthread_mutex_unlock(&w->bg.lock);
}

void sbd_waiters_notify(struct sbd_waiters *w, const char *run_id, const char *event_id)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->bg.lock);
    if (w->count == 0) { /* common case: nobody waits */
        pthread_mutex_unlock(&w->bg.lock);
        return;
    }
    struct note *n = calloc(1, sizeof *n);
    if (n) {
        snprintf(n->run_id, sizeof n->run_id, "%s", run_id);
        snprintf(n->event_id, sizeof n->event_id, "%s", event_id ? event_id : "");
        n->next = w->notes;
        w->notes = n;
        pthread_cond_signal(&w->bg.cond);
    }
    pthread_mutex_unlock(&w->bg.lock);
}
