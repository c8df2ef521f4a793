/* flow.c - flow control at run start (see flow.h): one decision per run,
 * its keys made once. Writer thread, in the ingest transaction, except
 * sbd_flow_key (any thread: the engine's admission uses it too). */
#include "flow.h"
#include "common/crypto.h"
#include "common/json.h"
#include "defer.h"
#include "event.h"
#include "expr/expr.h"
#include "registry.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEMPOTENCY_MS (24LL * 3600 * 1000)
#define PRIORITY_MAX_S 600

/* A key value longer than this is stored as its digest: a value comes from
 * the event (any size the event API took), and a store indexes keys (a
 * PostgreSQL btree entry holds at most about 2.7 kB). */
#define FLOW_KEY_VALUE_MAX 256

/* v, or "#sha256:<hex>" of it when it is longer than FLOW_KEY_VALUE_MAX
 * (taken; NULL when out of memory). */
static char *short_value(char *v)
{
    if (!v || strlen(v) <= FLOW_KEY_VALUE_MAX)
        return v;
    uint8_t d[SB_SHA256_LEN];
    sb_sha256(v, strlen(v), d);
    char *h = malloc(sizeof "#sha256:" + 2 * SB_SHA256_LEN);
    if (h) {
        memcpy(h, "#sha256:", 8);
        sb_hex_encode(d, sizeof d, h + 8);
    }
    free(v);
    return h;
}

char *sbd_flow_key(const char *scope, const struct sbd_expr *expr, const json_t *event)
{
    char *v = NULL;
    if (expr) {
        struct sbd_expr_var var = { "event", event };
        json_t *val = sbd_expr_eval(expr, &var, 1, NULL);
        v = json_is_string(val) ? strdup(json_string_value(val))
                                : sb_json_dumps(val ? val : json_null(), NULL);
        json_decref(val);
        if (!(v = short_value(v)))
            return NULL;
    }
    size_t n = strlen(scope) + (v ? strlen(v) : 0) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\x1f%s", scope, v ? v : "");
    free(v);
    return k;
}

/* Does f have a rule decided at run start? Without one a run starts as it
 * is: no parse of its event, no key, no store access. */
static bool has_start_rules(const struct sbd_flow_config *fl)
{
    return fl->priority || fl->debounce || fl->batch || fl->idempotency || fl->rate_limit ||
           fl->singleton;
}

/* priority.run for event: seconds of advantage in -600..600 (0 when the
 * expression does not give a number). */
static int64_t priority_s(const struct sbd_expr *priority, const json_t *event)
{
    struct sbd_expr_var var = { "event", event };
    json_t *v = sbd_expr_eval(priority, &var, 1, NULL);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    json_decref(v);
    if (d > PRIORITY_MAX_S)
        d = PRIORITY_MAX_S;
    if (d < -PRIORITY_MAX_S)
        d = -PRIORITY_MAX_S;
    return (int64_t)d;
}

/* Does the event go to a debounce or batch? A batch's `if` that is false
 * lets the event run on its own (and, as it always has, past a debounce of
 * the same function too). */
static bool defers(const struct sbd_flow_config *fl, const json_t *event)
{
    if (!fl->debounce && !fl->batch)
        return false;
    struct sbd_expr_var var = { "event", event };
    return !(fl->batch && fl->batch_if && !sbd_expr_test(fl->batch_if, &var, 1));
}

/* The keys of one run start, each made once (NULL: the rule is not f's). */
struct flow_keys {
    char *defer, *idempotency, *rate, *singleton;
};

static void flow_keys_free(struct flow_keys *k)
{
    free(k->defer);
    free(k->idempotency);
    free(k->rate);
    free(k->singleton);
}

static int flow_keys_make(const struct sbd_fn *f, const json_t *event, struct flow_keys *k,
                          struct sb_err *err)
{
    const struct sbd_flow_config *fl = &f->flow;
    memset(k, 0, sizeof *k);
    bool ok = true;
    if (defers(fl, event))
        ok &= (k->defer = sbd_flow_key(f->id, fl->debounce ? fl->debounce_key : fl->batch_key,
                                       event)) != NULL;
    if (fl->idempotency)
        ok &= (k->idempotency = sbd_flow_key(f->id, fl->idempotency, event)) != NULL;
    if (fl->rate_limit)
        ok &= (k->rate = sbd_flow_key(f->id, fl->rate_limit_key, event)) != NULL;
    if (fl->singleton)
        ok &= (k->singleton = sbd_flow_key(f->id, fl->singleton_key, event)) != NULL;
    if (ok)
        return 0;
    flow_keys_free(k);
    return sb_err_set(err, SB_ENOMEM, "out of memory");
}

static int skip(struct sbd_flow_start *out, const char *why)
{
    out->verdict = FLOW_SKIP;
    out->why = why;
    return 0;
}

/* debounce or batchEvents: held, or (a full batch) started now. */
static int defer_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                        const char *event_id, const char *key, int64_t now,
                        struct sbd_flow_start *out, struct sb_err *err)
{
    if (f->flow.debounce) {
        out->verdict = FLOW_HELD;
        return sbd_defer_debounce_in_txn(st, f, run_id, event_id, key, now, &out->held_until, err);
    }
    bool full = false;
    int rc = sbd_defer_batch_in_txn(st, f, run_id, event_id, key, now, &full, &out->held_until,
                                    out->event_id, err);
    if (full)
        out->batch_full = true;
    else
        out->verdict = FLOW_HELD;
    return rc;
}

static int idempotency_in_txn(struct sbd_store *st, const char *key, const char *run_id,
                              int64_t now, struct sbd_flow_start *out, struct sb_err *err)
{
    char *held = NULL;
    int64_t expires = 0;
    int rc = sbd_store_flow_key_get(st, FLOW_IDEMPOTENCY, key, &held, &expires, err);
    free(held);
    if (rc == 0 && expires > now)
        return skip(out, "idempotency");
    if (rc && rc != SB_ENOTFOUND) /* fail closed: no second run for a key we cannot see */
        return rc;
    return sbd_store_flow_key_put(st, FLOW_IDEMPOTENCY, key, run_id, now + IDEMPOTENCY_MS, err);
}

static int rate_limit_in_txn(struct sbd_store *st, const struct sbd_flow_config *fl,
                             const char *key, int64_t now, struct sbd_flow_start *out,
                             struct sb_err *err)
{
    int64_t hits = 0;
    int rc = sbd_store_rate_count(st, key, now - fl->rate_limit_period_ms + 1, &hits, err);
    if (rc) /* fail closed: an unknown count admits nothing (the event is retried) */
        return rc;
    if (hits >= fl->rate_limit_n)
        return skip(out, "rateLimit");
    return sbd_store_rate_hit(st, key, now, err);
}

static int singleton_in_txn(struct sbd_store *st, const struct sbd_flow_config *fl, const char *key,
                            const char *run_id, int64_t now, struct sbd_flow_start *out,
                            struct sb_err *err)
{
    char *held = NULL;
    int64_t expires = 0;
    int rc = sbd_store_flow_key_get(st, FLOW_SINGLETON, key, &held, &expires, err);
    if (rc && rc != SB_ENOTFOUND) { /* fail closed, as above */
        free(held);
        return rc;
    }
    rc = 0;
    if (held && !fl->singleton_cancel) {
        free(held);
        return skip(out, "singleton");
    }
    if (held) { /* mode "cancel": the running one goes, this one starts */
        bool added;
        rc = sbd_store_cancel_request_put(st, held, "singleton", now, &added, err);
        if (!rc && added)
            snprintf(out->cancel, sizeof out->cancel, "%s", held);
        free(held);
    }
    if (!rc) /* held until this run ends (released by sbd_store_run_finish) */
        rc = sbd_store_flow_key_put(st, FLOW_SINGLETON, key, run_id, 0, err);
    return rc;
}

int sbd_flow_start_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                          struct sbd_event *ev, int64_t now, struct sbd_flow_start *out,
                          struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    out->verdict = FLOW_START;
    out->due_at = now;
    if (!f || !has_start_rules(&f->flow))
        return 0;
    const struct sbd_flow_config *fl = &f->flow;
    const json_t *event = sbd_event_json(ev);
    if (fl->priority) /* an earlier place in the queue */
        out->due_at = now - 1000 * priority_s(fl->priority, event);
    struct flow_keys k;
    int rc = flow_keys_make(f, event, &k, err);
    if (rc)
        return rc;
    if (k.defer)
        rc = defer_in_txn(st, f, run_id, ev->id, k.defer, now, out, err);
    if (!rc && out->verdict == FLOW_START && k.idempotency)
        rc = idempotency_in_txn(st, k.idempotency, run_id, now, out, err);
    if (!rc && out->verdict == FLOW_START && k.rate)
        rc = rate_limit_in_txn(st, fl, k.rate, now, out, err);
    if (!rc && out->verdict == FLOW_START && k.singleton)
        rc = singleton_in_txn(st, fl, k.singleton, run_id, now, out, err);
    flow_keys_free(&k);
    return rc;
}
