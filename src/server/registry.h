/* registry.h - the in-memory set of registered functions, for trigger
 * matching (ingest threads) and call building (engine).
 *
 * The registry publishes immutable snapshots. A reader takes a reference
 * (sbd_registry_acquire), uses it without locks, and releases it. A sync
 * builds a new snapshot after its write has committed and publishes it
 * atomically, so a reader sees either the whole old or the whole new function
 * set of an app. Functions are refcounted individually so snapshots share the
 * unchanged ones. Removed functions stay in the snapshot (runs in progress
 * still need their URL) but never match triggers. */
#ifndef SBD_REGISTRY_H
#define SBD_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/expr/expr.h"

enum sbd_trigger_kind { TRIGGER_EVENT, TRIGGER_CRON };

struct sbd_trigger {
    enum sbd_trigger_kind kind;
    char *event;           /* exact name, or prefix when wildcard */
    bool wildcard;         /* the trigger was "prefix/" followed by a star */
    char *expression;      /* `if` expression or NULL */
    struct sbd_expr *expr; /* compiled expression (NULL when none) */
    char *cron;
    int64_t jitter_ms; /* cron: fire up to this much after the tick */
};

/* cancelOn: an event that cancels running runs of the function. */
struct sbd_cancel_rule {
    char *event;
    char *expression; /* `if` (event = the run's trigger, async = the new event) */
    struct sbd_expr *expr;
    int64_t timeout_ms; /* only within this long after the run started (0 = always) */
};

enum sbd_concurrency_scope { SCOPE_FN, SCOPE_ENV, SCOPE_ACCOUNT };

/* A concurrency constraint: at most `limit` calls in flight per key value. */
struct sbd_concurrency_limit {
    int64_t limit;
    enum sbd_concurrency_scope scope; /* fn: per function; env/account: shared by key */
    struct sbd_expr *key;             /* NULL: one per function (scope fn only) */
};

/* A function's flow-control settings (registry_flow.c). Key expressions are
 * evaluated with `event` = the triggering event; NULL key = one per
 * function. Decided at ingest (flow.c): idempotency, rateLimit, singleton,
 * priority; debounce and batchEvents defer the start (defer.c). Decided by
 * the engine before a call (admit.c): concurrency, throttle, timeouts. */
struct sbd_flow_config {
    struct sbd_expr *idempotency; /* one run per key value per 24 h */
    bool rate_limit;
    int64_t rate_limit_n, rate_limit_period_ms;
    struct sbd_expr *rate_limit_key;
    bool singleton;
    bool singleton_cancel; /* mode "cancel" (else "skip") */
    struct sbd_expr *singleton_key;
    struct sbd_expr *priority; /* priority.run: seconds of advantage, -600..600 */
    struct sbd_concurrency_limit concurrency[2];
    size_t nconcurrency;
    bool throttle; /* GCRA: limit starts per period, plus burst at once */
    int64_t throttle_limit, throttle_period_ms, throttle_burst;
    struct sbd_expr *throttle_key;
    int64_t start_timeout_ms;  /* timeouts.start: queued longer -> cancelled (0 = none) */
    int64_t finish_timeout_ms; /* timeouts.finish: running longer -> cancelled (0 = none) */
    /* deferred starts (defer.c): a run starts when the debounce or batch is due */
    bool debounce;
    int64_t debounce_period_ms, debounce_timeout_ms; /* timeout 0 = none */
    struct sbd_expr *debounce_key;
    bool batch;
    int64_t batch_max, batch_timeout_ms;
    struct sbd_expr *batch_key, *batch_if; /* batch_if false: the event runs alone */
};

/* Parses the flow-control fields of a registered function object into fl
 * (zeroed by the caller); xflags (0 or SBD_EXPR_UNCHECKED) are added to those
 * of each expression. SB_EINVAL with a message naming fid. */
int sbd_flow_config_parse(struct sbd_flow_config *fl, const json_t *obj, const char *fid,
                          unsigned xflags, struct sb_err *err);
void sbd_flow_config_free(struct sbd_flow_config *fl);

struct sbd_fn {
    int refs; /* atomic */
    char *id; /* "<app>-<slug>" as registered */
    char *app_id;
    char *name;
    char *url_base; /* step URL without stepId, ending in '?' or '&' */
    int retries;    /* retries (max attempts = retries + 1) */
    bool removed;
    struct sbd_trigger *triggers;
    size_t ntriggers;
    struct sbd_cancel_rule *cancels;
    size_t ncancels;
    struct sbd_flow_config flow;
    json_t *config; /* the function object as registered (owned) */
};

struct sbd_reg_snap {
    int refs;            /* atomic */
    struct sbd_fn **fns; /* sorted by id */
    size_t n;
};

struct sbd_registry;

int sbd_registry_new(struct sbd_registry **out);
void sbd_registry_free(struct sbd_registry *r);

struct sbd_reg_snap *sbd_registry_acquire(struct sbd_registry *r);
void sbd_snap_release(struct sbd_reg_snap *s);
/* Function by id (borrowed from the snapshot) or NULL. */
const struct sbd_fn *sbd_snap_find(const struct sbd_reg_snap *s, const char *id);
/* Calls cb for every live function with an event trigger matching ev (its
 * name, then its `if` expression evaluated with `event` = the event, whose
 * body is parsed only when an expression needs it, and kept in ev for the
 * rules after: event.h). A function is reported at most once per event. */
struct sbd_event;
void sbd_snap_match(const struct sbd_reg_snap *s, struct sbd_event *ev,
                    void (*cb)(void *ctx, const struct sbd_fn *f), void *ctx);

/* Calls cb for every function (live or not) with a cancel rule on `name`. */
void sbd_snap_cancel_rules(const struct sbd_reg_snap *s, const char *name,
                           void (*cb)(void *ctx, const struct sbd_fn *f,
                                      const struct sbd_cancel_rule *c),
                           void *ctx);

/* Parses one function object of a register body. default_url is used when
 * the function has no step URL. Returns a fn with refs = 1, or NULL with err
 * naming the function and the problem. */
struct sbd_fn *sbd_fn_parse(const json_t *obj, const char *app_id, struct sb_err *err);
/* sbd_fn_parse for a function read back from the store, accepted by this or
 * an earlier sysbusd: its expressions are not checked against the supported
 * subset (SBD_EXPR_UNCHECKED), so one accepted before the check existed keeps
 * behaving as it did instead of the function disappearing at a restart. */
struct sbd_fn *sbd_fn_parse_stored(const json_t *obj, const char *app_id, struct sb_err *err);
void sbd_fn_ref(struct sbd_fn *f);
void sbd_fn_unref(struct sbd_fn *f);

/* Replaces every function of app_id by fns (n of them, references taken),
 * marking the previous ones that are not in fns as removed. Publishes. */
int sbd_registry_replace_app(struct sbd_registry *r, const char *app_id, struct sbd_fn **fns,
                             size_t n);
/* Marks every function of app_id removed. Publishes. */
int sbd_registry_remove_app(struct sbd_registry *r, const char *app_id);
/* Adds one function during the start-up load (before readers exist). */
int sbd_registry_load_fn(struct sbd_registry *r, struct sbd_fn *f);

#endif
