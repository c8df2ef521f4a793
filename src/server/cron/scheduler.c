/* scheduler.c - the scheduler thread: cron triggers and deferred starts
 * (see scheduler.h and defer.h). */
#include "scheduler.h"
#include "cron.h"
#include "common/bgthread.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ulid.h"
#include "server/ingest.h"
#include "server/registry.h"
#include "server/sbd.h"
#include "server/store/store.h"
#include "server/store/writer.h"

#include <stdlib.h>
#include <string.h>

#define RESCAN_MS 60000    /* re-read the table at least this often */
#define SCAN_RETRY_MS 1000 /* after a scan that failed */

struct sbd_scheduler {
    struct sbd *sbd;
    struct sb_bg bg;
    int kicked; /* bg.lock */
    int firing; /* a fire op is in the writer (bg.lock) */
    /* Kicks come from the writer thread (a commit's notification) until the
     * writer stops, which is after this thread has stopped: stopped, under
     * kick_lock, lets a late kick find the thread gone instead of touching
     * bg after sb_bg_stop destroyed its lock. */
    pthread_mutex_t kick_lock;
    bool stopped;
};

/* Next fire time after `after` for a trigger, with its jitter. */
static int64_t next_fire(const char *expr, int64_t jitter_ms, int64_t after)
{
    struct sbd_cron *c = sbd_cron_parse(expr, NULL);
    int64_t t = c ? sbd_cron_next(c, after) : -1;
    sbd_cron_free(c);
    if (t > 0 && jitter_ms > 0)
        t += (int64_t)sb_random_below((uint64_t)jitter_ms);
    return t;
}

int sbd_scheduler_sync_function_in_txn(struct sbd_store *st, const struct sbd_fn *f, int64_t now,
                                       struct sb_err *err)
{
    int k = 0, rc = 0;
    for (size_t i = 0; i < f->ntriggers && !rc; i++) {
        const struct sbd_trigger *t = &f->triggers[i];
        if (t->kind != TRIGGER_CRON)
            continue;
        char *old = NULL;
        int64_t next_at = 0;
        int grc = sbd_store_cron_get(st, f->id, k, &old, &next_at, err);
        if (grc && grc != SB_ENOTFOUND) /* not known: do not reset its schedule */
            return sb_err_set(err, grc, "cannot read cron trigger %d of %s", k, f->id);
        bool keep = grc == 0 && strcmp(old, t->cron) == 0;
        free(old);
        if (!keep) {
            next_at = next_fire(t->cron, t->jitter_ms, now);
            if (next_at < 0)
                next_at = INT64_MAX; /* never: kept so it shows up, never due */
        }
        struct sbd_cron_rec c = { f->id, k, t->cron, next_at };
        rc = sbd_store_cron_put(st, &c, err);
        k++;
    }
    return rc ? rc : sbd_store_cron_delete(st, f->id, k, err);
}

/* ---- firing ---- */

struct fire_op {
    struct sbd_wop wop;
    struct sbd_scheduler *s;
    char *function_id;
    int idx;
    struct sbd_ingest_batch batch;
    bool fired;
};

/* The tick's event and its run (f's), in the batch; SB_ENOMEM. */
static int tick_batch(struct fire_op *op, const struct sbd_fn *f, const char *expr, int64_t now,
                      struct sb_err *err)
{
    struct sbd_event pe = { 0 };
    sb_ulid_new(now, pe.id);
    json_t *ev = json_pack("{s:s, s:{s:s}, s:s, s:I, s:{}}", "name", "inngest/scheduled.timer",
                           "data", "cron", expr, "id", pe.id, "ts", (json_int_t)now, "user");
    pe.body = ev ? sb_json_dumps(ev, NULL) : NULL;
    json_decref(ev);
    pe.name = strdup("inngest/scheduled.timer");
    pe.ts = now;
    sbd_ingest_free(&op->batch);
    if (!pe.body || !pe.name) {
        sbd_event_clear(&pe);
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    if (sbd_ingest_init_run(op->s->sbd->ingest, &op->batch, &pe, f, now, NULL) != 0)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    return 0;
}

static int fire_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct fire_op *op = (struct fire_op *)w;
    struct sbd *sbd = op->s->sbd;
    int64_t now = sb_now_ms();
    char *expr = NULL;
    int64_t next_at;
    int rc = sbd_store_cron_get(st, op->function_id, op->idx, &expr, &next_at, err);
    if (rc == SB_ENOTFOUND)
        return 0; /* gone meanwhile */
    if (rc)       /* still due: the next scan tries again */
        return sb_err_set(err, rc, "cannot read cron trigger %d of %s", op->idx, op->function_id);
    if (next_at > now) /* moved meanwhile (a re-sync) */
        goto out;
    /* the function must still exist and still have this trigger */
    struct sbd_reg_snap *snap = sbd_registry_acquire(sbd->registry);
    const struct sbd_fn *f = sbd_snap_find(snap, op->function_id);
    const struct sbd_trigger *t = NULL;
    for (size_t i = 0, k = 0; f && !f->removed && i < f->ntriggers; i++) {
        if (f->triggers[i].kind != TRIGGER_CRON)
            continue;
        if ((int)k++ == op->idx && strcmp(f->triggers[i].cron, expr) == 0)
            t = &f->triggers[i];
    }
    if (!t) {
        sbd_snap_release(snap);
        rc = sbd_store_cron_delete(st, op->function_id, op->idx, err);
        goto out;
    }
    rc = tick_batch(op, f, expr, now, err);
    int64_t jitter = t->jitter_ms;
    sbd_snap_release(snap);
    if (rc)
        goto out;
    rc = sbd_ingest_apply_in_txn(st, sbd->ingest, &op->batch, err);
    if (!rc) {
        /* past now: missed ticks collapse into this one fire */
        int64_t next = next_fire(expr, jitter, now);
        struct sbd_cron_rec c = { op->function_id, op->idx, expr, next < 0 ? INT64_MAX : next };
        rc = sbd_store_cron_put(st, &c, err);
    }
    op->fired = rc == 0;
out:
    free(expr);
    return rc;
}

static void fire_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct fire_op *op = (struct fire_op *)w;
    struct sbd_scheduler *s = op->s;
    if (rc)
        SB_LOG(SB_ERROR, "cron_fire_failed", "cron trigger %d of %s did not fire: %s", op->idx,
               op->function_id, err ? err->msg : "?");
    else if (op->fired) {
        sbd_ingest_committed(s->sbd->ingest, &op->batch);
        SB_LOGK(SB_DEBUG, "cron_fired", ((struct sb_lf[]){ LF_S("function_id", op->function_id) }),
                "cron trigger fired");
    }
    sbd_ingest_free(&op->batch);
    free(op->function_id);
    free(op);
    pthread_mutex_lock(&s->bg.lock);
    s->firing = 0;
    pthread_cond_broadcast(&s->bg.cond);
    pthread_mutex_unlock(&s->bg.lock);
}

struct due {
    char *function_id; /* a cron trigger (function, idx) */
    int idx;
    char *deferred_id; /* or a deferred start (defer.c) */
};

struct scan_ctx {
    int64_t now, earliest;
    struct due *due;
    size_t ndue;
};

static int on_row(void *ctx, const struct sbd_cron_rec *c)
{
    struct scan_ctx *sc = ctx;
    if (c->next_at <= sc->now) {
        struct due *nd = realloc(sc->due, (sc->ndue + 1) * sizeof *nd);
        if (nd) {
            sc->due = nd;
            nd[sc->ndue] = (struct due){ .function_id = strdup(c->function_id), .idx = c->idx };
            if (nd[sc->ndue].function_id)
                sc->ndue++;
        }
    } else if (c->next_at < sc->earliest) {
        sc->earliest = c->next_at;
    }
    return 0;
}

static int on_deferred(void *ctx, const char *id)
{
    struct scan_ctx *sc = ctx;
    struct due *nd = realloc(sc->due, (sc->ndue + 1) * sizeof *nd);
    if (nd) {
        sc->due = nd;
        nd[sc->ndue] = (struct due){ .deferred_id = strdup(id) };
        if (nd[sc->ndue].deferred_id)
            sc->ndue++;
    }
    return 0;
}

static void deferred_fired(void *ctx)
{
    struct sbd_scheduler *s = ctx;
    pthread_mutex_lock(&s->bg.lock);
    s->firing = 0;
    pthread_cond_broadcast(&s->bg.cond);
    pthread_mutex_unlock(&s->bg.lock);
}

/* A writer op firing d (NULL when out of memory or stopping). */
static struct sbd_wop *fire_op_new(struct sbd_scheduler *s, struct due *d)
{
    if (d->deferred_id) {
        struct sbd_wop *w =
            sbd_ingest_fire_deferred_new(s->sbd->ingest, d->deferred_id, deferred_fired, s);
        free(d->deferred_id);
        return w;
    }
    struct fire_op *op = calloc(1, sizeof *op);
    if (!op) {
        free(d->function_id);
        return NULL;
    }
    op->wop.apply = fire_apply_in_txn;
    op->wop.done = fire_done;
    op->s = s;
    op->function_id = d->function_id;
    op->idx = d->idx;
    return &op->wop;
}

static void *scheduler_main(void *arg)
{
    struct sbd_scheduler *s = arg;
    pthread_mutex_lock(&s->bg.lock);
    while (!s->bg.stop) {
        s->kicked = 0;
        pthread_mutex_unlock(&s->bg.lock);
        struct scan_ctx sc = { sb_now_ms(), INT64_MAX, NULL, 0 };
        struct sbd_store *st = sbd_store_reader();
        if (st) {
            int64_t deferred_next = INT64_MAX;
            struct sb_err serr = { 0 };
            int crc = sbd_store_crons_scan(st, on_row, &sc, &serr);
            int drc = sbd_store_deferred_due(st, sc.now, on_deferred, &sc, &deferred_next, &serr);
            if (crc < 0 || drc < 0) {
                /* What was found due still fires (each fire re-reads its row
                 * in its own transaction); what was not read is looked at
                 * again shortly, not after a wait computed from half a table. */
                SB_LOG(SB_WARN, "scheduler_scan_failed",
                       "cannot read the cron and deferred-start tables (%s): retrying in %d ms",
                       sb_strerror(crc < 0 ? crc : drc), SCAN_RETRY_MS);
                sc.earliest = sc.now + SCAN_RETRY_MS;
            } else if (deferred_next < sc.earliest) {
                sc.earliest = deferred_next;
            }
        }
        pthread_mutex_lock(&s->bg.lock);
        for (size_t i = 0; i < sc.ndue; i++) {
            if (s->bg.stop) {
                free(sc.due[i].function_id);
                free(sc.due[i].deferred_id);
                continue;
            }
            struct sbd_wop *op = fire_op_new(s, &sc.due[i]);
            if (!op)
                continue;
            s->firing = 1;
            pthread_mutex_unlock(&s->bg.lock);
            sbd_writer_submit(s->sbd->writer, op);
            pthread_mutex_lock(&s->bg.lock);
            while (s->firing) /* one at a time: the next scan sees its result */
                pthread_cond_wait(&s->bg.cond, &s->bg.lock);
        }
        free(sc.due);
        if (sc.ndue > 0 || s->kicked || s->bg.stop)
            continue;
        int64_t wait = sc.earliest == INT64_MAX ? RESCAN_MS : sc.earliest - sb_now_ms();
        if (wait > RESCAN_MS)
            wait = RESCAN_MS;
        sb_bg_wait_ms(&s->bg, wait);
    }
    pthread_mutex_unlock(&s->bg.lock);
    return NULL;
}

int sbd_scheduler_start(struct sbd *sbd, struct sbd_scheduler **out, struct sb_err *err)
{
    struct sbd_scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    s->sbd = sbd;
    pthread_mutex_init(&s->kick_lock, NULL);
    int rc = sb_bg_start(&s->bg, scheduler_main, s, "cron scheduler", err);
    if (rc) {
        pthread_mutex_destroy(&s->kick_lock);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sbd_scheduler_stop(struct sbd_scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->kick_lock);
    s->stopped = true;
    pthread_mutex_unlock(&s->kick_lock);
    sb_bg_stop(&s->bg);
}

void sbd_scheduler_free(struct sbd_scheduler *s)
{
    if (!s)
        return;
    sbd_scheduler_stop(s);
    pthread_mutex_destroy(&s->kick_lock);
    free(s);
}

void sbd_scheduler_kick(struct sbd_scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->kick_lock);
    if (!s->stopped) {
        pthread_mutex_lock(&s->bg.lock);
        s->kicked = 1;
        pthread_cond_broadcast(&s->bg.cond);
        pthread_mutex_unlock(&s->bg.lock);
    }
    pthread_mutex_unlock(&s->kick_lock);
}
