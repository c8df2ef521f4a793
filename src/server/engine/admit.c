/* admit.c - what may hold a due call back, decided by the engine just before
 * the call is made:
 * - concurrency: at most `limit` calls in flight per key. A call over the
 *   limit is parked on the key's slot (a heap by due time, so priority and
 *   FIFO order hold) and handed back to the queue when a call of that key
 *   ends. Runs that sleep or wait hold no slot: the limit counts calls.
 * - throttle: run starts per period per key (GCRA: one start every
 *   period/limit, limit + burst at once). A start over the rate is moved to
 *   when it fits; nothing is dropped.
 * - timeouts.start: a run not started that long after it was queued is
 *   cancelled; timeouts.finish: a run still going that long after its first
 *   call is cancelled (a QF_DEADLINE queue row, so it survives restarts).
 * Slots and throttle state live in memory, and what must survive a crash is
 * stored before the call is made (lease.c): the slots a call takes, and a
 * throttle key's new theoretical arrival time.
 *
 * Engine thread only (admit_throttle_restore and admit_slot, through
 * lease_restore, also run at start, before the engine thread exists). A
 * slot's parked heap holds only items of runs in the table, each in no other
 * heap (heap.h). */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "server/flow.h"
#include "server/metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_EVERY_MS 1000

/* One concurrency or throttle key in use. */
struct slot {
    struct slot *hnext;
    int64_t limit;           /* concurrency: the latest limit seen for the key */
    int64_t inflight;        /* concurrency: calls holding the slot */
    struct sbd_iheap parked; /* concurrency: calls waiting for it */
    int64_t tat;             /* throttle: theoretical arrival time of the next start */
    char key[];
};

/* ---- the slot table ---- */

static size_t hash_key(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static void slots_grow(struct sbd_engine *e)
{
    size_t nb = e->nslot_buckets ? e->nslot_buckets * 2 : 64;
    struct slot **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < e->nslot_buckets; i++) {
        for (struct slot *s = e->slots[i], *next; s; s = next) {
            next = s->hnext;
            size_t k = hash_key(s->key) & (nb - 1);
            s->hnext = b[k];
            b[k] = s;
        }
    }
    free(e->slots);
    e->slots = b;
    e->nslot_buckets = nb;
}

static struct slot *slot_get(struct sbd_engine *e, const char *key)
{
    if (e->nslot_buckets) {
        for (struct slot *s = e->slots[hash_key(key) & (e->nslot_buckets - 1)]; s; s = s->hnext)
            if (strcmp(s->key, key) == 0)
                return s;
    }
    if (e->nslots + 1 > e->nslot_buckets)
        slots_grow(e);
    if (!e->nslot_buckets)
        return NULL;
    size_t len = strlen(key);
    struct slot *s = calloc(1, sizeof *s + len + 1);
    if (!s)
        return NULL;
    memcpy(s->key, key, len + 1);
    size_t k = hash_key(key) & (e->nslot_buckets - 1);
    s->hnext = e->slots[k];
    e->slots[k] = s;
    e->nslots++;
    return s;
}

struct slot *admit_slot(struct sbd_engine *e, const char *key)
{
    return slot_get(e, key);
}

const char *admit_slot_key(const struct slot *s)
{
    return s->key;
}

const char *admit_parked_key(const struct sbd_engine *e, const struct sbd_item *it)
{
    if (!it->heap || it->heap == &e->queue)
        return NULL;
    const struct slot *s =
        (const struct slot *)((const char *)it->heap - offsetof(struct slot, parked));
    return s->key;
}

void admit_slot_hold(struct slot *s)
{
    s->inflight++;
}

void admit_slot_unhold(struct sbd_engine *e, struct slot *s)
{
    s->inflight--;
    struct sbd_item *next = iheap_top(&s->parked);
    if (next && s->inflight < s->limit) {
        iheap_remove(next);
        engine_heap_push(e, next); /* admitted again when it comes up */
    }
}

void admit_throttle_restore(struct sbd_engine *e, const char *key, int64_t tat)
{
    struct slot *s = slot_get(e, key);
    if (s && tat > s->tat)
        s->tat = tat;
}

static bool slot_idle(const struct slot *s, int64_t now)
{
    return s->inflight == 0 && s->parked.n == 0 && s->tat <= now;
}

/* ---- per-run keys ---- */

/* Evaluates the run's concurrency and throttle keys once (the run must be
 * loaded). A key that cannot be built (out of memory) stays NULL: the limit
 * is then not applied to this run rather than blocking it forever. */
static void run_keys(struct sbd_run *r, const struct sbd_fn *f)
{
    if (r->flow_keys_ready)
        return;
    json_t *ev = r->event ? sb_json_parse(r->event, strlen(r->event), NULL) : NULL;
    static const char *const scope_names[] = { [SCOPE_ENV] = "env", [SCOPE_ACCOUNT] = "account" };
    for (size_t i = 0; i < f->flow.nconcurrency; i++) {
        const struct sbd_concurrency_limit *c = &f->flow.concurrency[i];
        char scope[600];
        snprintf(scope, sizeof scope, "c\x1f%s",
                 c->scope == SCOPE_FN ? f->id : scope_names[c->scope]);
        r->flow_keys[i] = sbd_flow_key(scope, c->key, ev);
    }
    if (f->flow.throttle) {
        char scope[600];
        snprintf(scope, sizeof scope, "t\x1f%s", f->id);
        r->flow_keys[2] = sbd_flow_key(scope, f->flow.throttle_key, ev);
    }
    json_decref(ev);
    r->flow_keys_ready = true;
}

void admit_run_free(struct sbd_run *r)
{
    for (int i = 0; i < FLOW_KEYS; i++) {
        free(r->flow_keys[i]);
        r->flow_keys[i] = NULL;
    }
    r->flow_keys_ready = false;
}

/* ---- admission ---- */

/* Whether it is the run's first call, not yet made: what throttle and
 * timeouts.start apply to. */
static bool run_not_started(const struct sbd_run *r, const struct sbd_item *it)
{
    return !r->deadline && it->attempt == 0 && it->started_at == 0 && r->nmemo == 0 &&
           strcmp(it->step_id, "step") == 0;
}

static void cancel_timed_out(struct sbd_engine *e, struct sbd_run *r, const char *which, int64_t ms)
{
    char d[32], msg[160];
    sb_duration_format(ms, d, sizeof d);
    snprintf(msg, sizeof msg, "the run did not %s within timeouts.%s (%s)",
             strcmp(which, "start") == 0 ? "start" : "finish", which, d);
    SB_LOGK(SB_INFO, "run_timed_out",
            ((struct sb_lf[]){ LF_S("run_id", r->id), LF_S("timeout", which) }), "run %s: %s",
            r->id, msg);
    SBD_COUNT(runs_timed_out);
    r->cancelled = true;
    decide_fail(e, r, NULL, RUN_CANCELLED, 0, "FunctionTimedOut", "%s", msg);
}

/* GCRA: may a run start now? If not, *at is when it may. */
static bool throttle_take(struct slot *s, const struct sbd_flow_config *fl, int64_t now,
                          int64_t *at)
{
    int64_t interval = fl->throttle_period_ms / fl->throttle_limit;
    if (interval < 1)
        interval = 1;
    int64_t tolerance = (fl->throttle_limit + fl->throttle_burst - 1) * interval;
    int64_t tat = s->tat > now ? s->tat : now;
    if (tat - now > tolerance) {
        *at = tat - tolerance;
        return false;
    }
    s->tat = tat + interval;
    return true;
}

enum sbd_admit_verdict admit_call(struct sbd_engine *e, struct sbd_item *it, const struct sbd_fn *f,
                                  int64_t now)
{
    struct sbd_run *r = it->run;
    const struct sbd_flow_config *fl = &f->flow;
    bool first = run_not_started(r, it);
    int64_t start_deadline = 0;
    if (first && fl->start_timeout_ms > 0) {
        start_deadline = sb_ulid_time(r->id) + fl->start_timeout_ms;
        if (now > start_deadline) {
            cancel_timed_out(e, r, "start", fl->start_timeout_ms);
            return ADMIT_TIMED_OUT;
        }
    }
    if (fl->nconcurrency > 0 || (first && fl->throttle))
        run_keys(r, f);
    /* concurrency: check every key before taking anything */
    struct slot *take[2] = { NULL, NULL };
    for (size_t i = 0; i < fl->nconcurrency; i++) {
        if (fl->concurrency[i].limit <= 0 || !r->flow_keys[i])
            continue; /* 0 = no limit */
        struct slot *s = slot_get(e, r->flow_keys[i]);
        if (!s)
            continue;
        s->limit = fl->concurrency[i].limit;
        if (s->inflight >= s->limit) {
            iheap_push(&s->parked, it);
            SBD_COUNT(calls_parked);
            bool busy = false;
            for (const struct sbd_item *x = r->items; x; x = x->next)
                busy = busy || x->call || x->leasing;
            if (!busy)
                engine_run_unload(e, r); /* reloaded when handed back */
            return ADMIT_PARKED;
        }
        take[i] = s;
    }
    if (first && fl->throttle && r->flow_keys[2]) {
        struct slot *s = slot_get(e, r->flow_keys[2]);
        int64_t at;
        if (s && !throttle_take(s, fl, now, &at)) {
            /* back in the queue when it fits, or at the start timeout */
            it->due_at = start_deadline && start_deadline + 1 < at ? start_deadline + 1 : at;
            SBD_COUNT(runs_throttled);
            it->throttled = true;
            return ADMIT_LATER;
        }
        it->throttled = false;
        if (s)
            it->throttle_tat = s->tat; /* stored before the call (lease.c) */
    }
    for (int i = 0; i < 2; i++) {
        if (take[i]) {
            admit_slot_hold(take[i]);
            it->held[i] = take[i];
        }
    }
    if (first && fl->finish_timeout_ms > 0 && !r->deadline)
        engine_deadline_new(e, r, now + fl->finish_timeout_ms);
    return ADMIT_GO;
}

void admit_release(struct sbd_engine *e, struct sbd_item *it)
{
    lease_end(e, it);
    it->leasing = false;
    for (int i = 0; i < 2; i++) {
        struct slot *s = it->held[i];
        if (!s)
            continue;
        it->held[i] = NULL;
        admit_slot_unhold(e, s);
    }
}

/* A run the sweep found past its timeouts.start while parked. */
struct overdue {
    char run_id[SB_ULID_SIZE];
    int64_t timeout_ms;
};

void admit_sweep(struct sbd_engine *e, int64_t now)
{
    if (now < e->next_sweep_at)
        return;
    e->next_sweep_at = now + SWEEP_EVERY_MS;
    lease_sweep(e, now);
    struct overdue *late = NULL;
    size_t nlate = 0, caplate = 0;
    for (size_t b = 0; b < e->nslot_buckets; b++) {
        for (struct slot **pp = &e->slots[b]; *pp;) {
            struct slot *s = *pp;
            for (size_t i = 0; i < s->parked.n; i++) {
                struct sbd_run *r = s->parked.v[i]->run;
                const struct sbd_fn *f =
                    r->function_id ? sbd_snap_find(e->snap, r->function_id) : NULL;
                if (!f || f->flow.start_timeout_ms <= 0 || !run_not_started(r, s->parked.v[i]) ||
                    now <= sb_ulid_time(r->id) + f->flow.start_timeout_ms)
                    continue;
                if (nlate == caplate) {
                    size_t nc = caplate ? caplate * 2 : 16;
                    struct overdue *nl = realloc(late, nc * sizeof *nl);
                    if (!nl)
                        break; /* the next sweep gets the rest */
                    late = nl;
                    caplate = nc;
                }
                snprintf(late[nlate].run_id, SB_ULID_SIZE, "%s", r->id);
                late[nlate++].timeout_ms = f->flow.start_timeout_ms;
            }
            if (slot_idle(s, now)) {
                *pp = s->hnext;
                iheap_free(&s->parked);
                free(s);
                e->nslots--;
            } else {
                pp = &s->hnext;
            }
        }
    }
    /* cancelling frees items, which changes the heaps walked above */
    for (size_t i = 0; i < nlate; i++) {
        struct sbd_run *r = engine_run_find(e, late[i].run_id);
        if (r && !r->ended && r->committing == 0)
            cancel_timed_out(e, r, "start", late[i].timeout_ms);
    }
    free(late);
}

/* The timeouts.finish timer came due. */
void admit_deadline_due(struct sbd_engine *e, struct sbd_item *it, const struct sbd_fn *f)
{
    cancel_timed_out(e, it->run, "finish", f ? f->flow.finish_timeout_ms : 0);
}

void admit_free(struct sbd_engine *e)
{
    lease_free(e);
    for (size_t b = 0; b < e->nslot_buckets; b++) {
        for (struct slot *s = e->slots[b], *next; s; s = next) {
            next = s->hnext;
            iheap_free(&s->parked);
            free(s);
        }
    }
    free(e->slots);
    e->slots = NULL;
    e->nslot_buckets = e->nslots = 0;
}

int admit_check(const struct sbd_engine *e, size_t *parked, struct sb_err *err)
{
    size_t nslots = 0;
    *parked = 0;
    for (size_t b = 0; b < e->nslot_buckets; b++) {
        for (const struct slot *s = e->slots[b]; s; s = s->hnext) {
            nslots++;
            int rc = iheap_check(&s->parked, err);
            if (rc)
                return rc;
            if (s->inflight < 0)
                return sb_err_set(err, SB_EINTERNAL, "slot %s counts %lld calls", s->key,
                                  (long long)s->inflight);
            *parked += s->parked.n;
        }
    }
    if (nslots != e->nslots)
        return sb_err_set(err, SB_EINTERNAL, "%zu slots in the table, %zu counted", nslots,
                          e->nslots);
    return 0;
}
