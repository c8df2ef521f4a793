/* registry_flow.c - parses a registered function's flow-control settings
 * (idempotency, rateLimit, singleton, priority, concurrency, throttle,
 * timeouts, debounce, batchEvents) into struct sbd_flow_config. Shapes follow what the inngest SDK
 * sends: the function options as the user wrote them. */
#include "registry.h"
#include "common/clock.h"
#include "common/json.h"

#include <string.h>

#define MAX_PERIOD_MS (7LL * 86400000) /* a week */

/* An optional expression over `event`: absent or null = none; else it must
 * compile with flags (SBD_EXPR_COND, SBD_EXPR_NUM: what it must be able to be). */
static int parse_expr_opt(const json_t *v, const char *fid, unsigned xf, const char *what,
                          unsigned flags, struct sbd_expr **out, struct sb_err *err)
{
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return sb_err_set(err, SB_EINVAL, "function '%s': %s must be an expression string", fid,
                          what);
    struct sb_err xerr = { 0 };
    if (!(*out = sbd_expr_compile_as(json_string_value(v), SBD_EXPR_EVENT | flags | xf, &xerr)))
        return sb_err_set(err, SB_EINVAL, "function '%s': %s: %s in '%.200s'", fid, what, xerr.msg,
                          json_string_value(v));
    return 0;
}

/* An optional key expression (any value). */
static int parse_key(const json_t *v, const char *fid, unsigned xf, const char *what,
                     struct sbd_expr **out, struct sb_err *err)
{
    return parse_expr_opt(v, fid, xf, what, 0, out, err);
}

/* An optional duration string ("10s", "1h30m"): absent or null = 0. */
static int parse_duration(const json_t *v, const char *fid, const char *what, int64_t min_ms,
                          int64_t max_ms, int64_t *out, struct sb_err *err)
{
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || sb_duration_parse(json_string_value(v), 0, out) != 0 ||
        *out < min_ms || *out > max_ms) {
        char lo[32], hi[32];
        sb_duration_format(min_ms, lo, sizeof lo);
        sb_duration_format(max_ms, hi, sizeof hi);
        return sb_err_set(err, SB_EINVAL, "function '%s': %s must be a duration from %s to %s", fid,
                          what, lo, hi);
    }
    return 0;
}

static int parse_rate_limit(struct sbd_flow_config *fl, const json_t *rl, const char *fid,
                            unsigned xf, struct sb_err *err)
{
    if (!rl || json_is_null(rl))
        return 0;
    if (!json_is_object(rl) || !sb_json_get_int(rl, "limit", &fl->rate_limit_n) ||
        fl->rate_limit_n < 1)
        return sb_err_set(err, SB_EINVAL, "function '%s': rateLimit needs an integer limit >= 1",
                          fid);
    if (parse_duration(json_object_get(rl, "period"), fid, "rateLimit.period", 1000, 86400000,
                       &fl->rate_limit_period_ms, err))
        return SB_EINVAL;
    if (!fl->rate_limit_period_ms)
        return sb_err_set(err, SB_EINVAL, "function '%s': rateLimit needs a period", fid);
    fl->rate_limit = true;
    return parse_key(json_object_get(rl, "key"), fid, xf, "rateLimit.key", &fl->rate_limit_key,
                     err);
}

static int parse_singleton(struct sbd_flow_config *fl, const json_t *sg, const char *fid,
                           unsigned xf, struct sb_err *err)
{
    if (!sg || json_is_null(sg))
        return 0;
    const char *mode = sb_json_str(sg, "mode");
    if (!json_is_object(sg) || !mode || (strcmp(mode, "skip") && strcmp(mode, "cancel")))
        return sb_err_set(err, SB_EINVAL,
                          "function '%s': singleton.mode must be \"skip\" or \"cancel\"", fid);
    fl->singleton = true;
    fl->singleton_cancel = strcmp(mode, "cancel") == 0;
    return parse_key(json_object_get(sg, "key"), fid, xf, "singleton.key", &fl->singleton_key, err);
}

/* One concurrency constraint: a number or {limit, key?, scope?}. */
static int parse_one_concurrency(struct sbd_concurrency_limit *c, const json_t *v, const char *fid,
                                 unsigned xf, struct sb_err *err)
{
    c->scope = SCOPE_FN;
    if (json_is_number(v)) {
        if (!sb_json_as_int(v, &c->limit) || c->limit < 0)
            return sb_err_set(err, SB_EINVAL, "function '%s': concurrency must be >= 0", fid);
        return 0;
    }
    if (!json_is_object(v) || !sb_json_get_int(v, "limit", &c->limit) || c->limit < 0)
        return sb_err_set(err, SB_EINVAL, "function '%s': concurrency needs an integer limit >= 0",
                          fid);
    const char *scope = sb_json_str(v, "scope");
    if (scope && strcmp(scope, "fn") == 0)
        c->scope = SCOPE_FN;
    else if (scope && strcmp(scope, "env") == 0)
        c->scope = SCOPE_ENV;
    else if (scope && strcmp(scope, "account") == 0)
        c->scope = SCOPE_ACCOUNT;
    else if (scope)
        return sb_err_set(err, SB_EINVAL,
                          "function '%s': concurrency.scope must be \"fn\", \"env\" or "
                          "\"account\"",
                          fid);
    if (parse_key(json_object_get(v, "key"), fid, xf, "concurrency.key", &c->key, err))
        return SB_EINVAL;
    if (c->scope != SCOPE_FN && !c->key)
        return sb_err_set(err, SB_EINVAL,
                          "function '%s': a concurrency limit with scope \"%s\" needs a key", fid,
                          scope);
    return 0;
}

static int parse_concurrency(struct sbd_flow_config *fl, const json_t *v, const char *fid,
                             unsigned xf, struct sb_err *err)
{
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return parse_one_concurrency(&fl->concurrency[fl->nconcurrency++], v, fid, xf, err);
    if (json_array_size(v) > 2)
        return sb_err_set(err, SB_EINVAL, "function '%s': at most 2 concurrency limits", fid);
    size_t i;
    const json_t *c;
    json_array_foreach(v, i, c)
    {
        if (parse_one_concurrency(&fl->concurrency[fl->nconcurrency++], c, fid, xf, err))
            return SB_EINVAL;
    }
    return 0;
}

static int parse_throttle(struct sbd_flow_config *fl, const json_t *t, const char *fid, unsigned xf,
                          struct sb_err *err)
{
    if (!t || json_is_null(t))
        return 0;
    if (!json_is_object(t) || !sb_json_get_int(t, "limit", &fl->throttle_limit) ||
        fl->throttle_limit < 1)
        return sb_err_set(err, SB_EINVAL, "function '%s': throttle needs an integer limit >= 1",
                          fid);
    if (parse_duration(json_object_get(t, "period"), fid, "throttle.period", 1000, MAX_PERIOD_MS,
                       &fl->throttle_period_ms, err))
        return SB_EINVAL;
    if (!fl->throttle_period_ms)
        return sb_err_set(err, SB_EINVAL, "function '%s': throttle needs a period", fid);
    const json_t *burst = json_object_get(t, "burst");
    if (burst && !json_is_null(burst) &&
        (!sb_json_as_int(burst, &fl->throttle_burst) || fl->throttle_burst < 0))
        return sb_err_set(err, SB_EINVAL, "function '%s': throttle.burst must be >= 0", fid);
    fl->throttle = true;
    return parse_key(json_object_get(t, "key"), fid, xf, "throttle.key", &fl->throttle_key, err);
}

static int parse_timeouts(struct sbd_flow_config *fl, const json_t *t, const char *fid,
                          struct sb_err *err)
{
    if (!t || json_is_null(t))
        return 0;
    if (!json_is_object(t))
        return sb_err_set(err, SB_EINVAL, "function '%s': timeouts must be an object", fid);
    if (parse_duration(json_object_get(t, "start"), fid, "timeouts.start", 1, 366 * 86400000LL,
                       &fl->start_timeout_ms, err) ||
        parse_duration(json_object_get(t, "finish"), fid, "timeouts.finish", 1, 366 * 86400000LL,
                       &fl->finish_timeout_ms, err))
        return SB_EINVAL;
    return 0;
}

static int parse_debounce(struct sbd_flow_config *fl, const json_t *d, const char *fid, unsigned xf,
                          struct sb_err *err)
{
    if (!d || json_is_null(d))
        return 0;
    if (!json_is_object(d))
        return sb_err_set(err, SB_EINVAL, "function '%s': debounce must be an object", fid);
    if (parse_duration(json_object_get(d, "period"), fid, "debounce.period", 1000, MAX_PERIOD_MS,
                       &fl->debounce_period_ms, err) ||
        parse_duration(json_object_get(d, "timeout"), fid, "debounce.timeout", 1000, MAX_PERIOD_MS,
                       &fl->debounce_timeout_ms, err))
        return SB_EINVAL;
    if (!fl->debounce_period_ms)
        return sb_err_set(err, SB_EINVAL, "function '%s': debounce needs a period", fid);
    fl->debounce = true;
    return parse_key(json_object_get(d, "key"), fid, xf, "debounce.key", &fl->debounce_key, err);
}

#define MAX_BATCH 1000

static int parse_batch(struct sbd_flow_config *fl, const json_t *b, const char *fid, unsigned xf,
                       struct sb_err *err)
{
    if (!b || json_is_null(b))
        return 0;
    if (!json_is_object(b) || !sb_json_get_int(b, "maxSize", &fl->batch_max) || fl->batch_max < 1 ||
        fl->batch_max > MAX_BATCH)
        return sb_err_set(err, SB_EINVAL,
                          "function '%s': batchEvents needs an integer maxSize from 1 to %d", fid,
                          MAX_BATCH);
    if (parse_duration(json_object_get(b, "timeout"), fid, "batchEvents.timeout", 1000,
                       MAX_PERIOD_MS, &fl->batch_timeout_ms, err))
        return SB_EINVAL;
    if (!fl->batch_timeout_ms)
        return sb_err_set(err, SB_EINVAL, "function '%s': batchEvents needs a timeout", fid);
    fl->batch = true;
    if (parse_key(json_object_get(b, "key"), fid, xf, "batchEvents.key", &fl->batch_key, err) ||
        parse_expr_opt(json_object_get(b, "if"), fid, xf, "batchEvents.if", SBD_EXPR_COND,
                       &fl->batch_if, err))
        return SB_EINVAL;
    return 0;
}

int sbd_flow_config_parse(struct sbd_flow_config *fl, const json_t *obj, const char *fid,
                          unsigned xf, struct sb_err *err)
{
    const json_t *pr = json_object_get(obj, "priority");
    if (parse_key(json_object_get(obj, "idempotency"), fid, xf, "idempotency", &fl->idempotency,
                  err) ||
        parse_rate_limit(fl, json_object_get(obj, "rateLimit"), fid, xf, err) ||
        parse_singleton(fl, json_object_get(obj, "singleton"), fid, xf, err) ||
        (pr && !json_is_null(pr) &&
         parse_expr_opt(json_object_get(pr, "run"), fid, xf, "priority.run", SBD_EXPR_NUM,
                        &fl->priority, err)) ||
        parse_concurrency(fl, json_object_get(obj, "concurrency"), fid, xf, err) ||
        parse_throttle(fl, json_object_get(obj, "throttle"), fid, xf, err) ||
        parse_timeouts(fl, json_object_get(obj, "timeouts"), fid, err) ||
        parse_debounce(fl, json_object_get(obj, "debounce"), fid, xf, err) ||
        parse_batch(fl, json_object_get(obj, "batchEvents"), fid, xf, err))
        return SB_EINVAL;
    if (fl->debounce && fl->batch)
        return sb_err_set(err, SB_EINVAL,
                          "function '%s': debounce and batchEvents cannot be used together", fid);
    return 0;
}

void sbd_flow_config_free(struct sbd_flow_config *fl)
{
    sbd_expr_free(fl->idempotency);
    sbd_expr_free(fl->rate_limit_key);
    sbd_expr_free(fl->singleton_key);
    sbd_expr_free(fl->priority);
    for (size_t i = 0; i < fl->nconcurrency; i++)
        sbd_expr_free(fl->concurrency[i].key);
    sbd_expr_free(fl->throttle_key);
    sbd_expr_free(fl->debounce_key);
    sbd_expr_free(fl->batch_key);
    sbd_expr_free(fl->batch_if);
    memset(fl, 0, sizeof *fl);
}
