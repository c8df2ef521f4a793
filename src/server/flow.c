/* flow.c - flow control at run start (see flow.h). */
#include "flow.h"
#include "common/json.h"
#include "expr/expr.h"
#include "registry.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEMPOTENCY_MS (24LL * 3600 * 1000)

char *sbd_flow_key(const char *scope, const struct sb_expr *expr, const json_t *event)
{
    char *v = NULL;
    if (expr) {
        struct sb_expr_var var = { "event", event };
        json_t *val = sb_expr_eval(expr, &var, 1, NULL);
        v = json_is_string(val) ? strdup(json_string_value(val))
                                : sb_json_dumps(val ? val : json_null(), NULL);
        json_decref(val);
        if (!v)
            return NULL;
    }
    size_t n = strlen(scope) + (v ? strlen(v) : 0) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\x1f%s", scope, v ? v : "");
    free(v);
    return k;
}

int64_t sbd_flow_priority_s(const struct fn *f, const json_t *event)
{
    if (!f->flow.priority)
        return 0;
    struct sb_expr_var var = { "event", event };
    json_t *v = sb_expr_eval(f->flow.priority, &var, 1, NULL);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    json_decref(v);
    if (d > 600)
        d = 600;
    if (d < -600)
        d = -600;
    return (int64_t)d;
}

int sbd_flow_admit(struct sb_store *st, const struct fn *f, const char *run_id, const json_t *event,
                   int64_t now, char (**cancels)[SB_ULID_SIZE], size_t *ncancels, const char **why,
                   struct sb_err *err)
{
    const struct flow_config *fl = &f->flow;
    int rc = 0;
    char *held = NULL;
    int64_t expires = 0;
    if (fl->idempotency) {
        char *k = sbd_flow_key(f->id, fl->idempotency, event);
        if (!k)
            return sb_err_set(err, SB_ENOMEM, "out of memory");
        rc = sb_store_flow_key_get(st, FLOW_IDEMPOTENCY, k, &held, &expires, err);
        free(held);
        if (rc == 0 && expires > now) {
            free(k);
            *why = "idempotency";
            return FLOW_SKIP;
        }
        if (rc && rc != SB_ENOTFOUND) { /* fail closed: no second run for a key we cannot see */
            free(k);
            return rc;
        }
        rc = sb_store_flow_key_put(st, FLOW_IDEMPOTENCY, k, run_id, now + IDEMPOTENCY_MS, err);
        free(k);
        if (rc)
            return rc;
    }
    if (fl->rate_limit) {
        char *k = sbd_flow_key(f->id, fl->rate_limit_key, event);
        if (!k)
            return sb_err_set(err, SB_ENOMEM, "out of memory");
        int64_t hits = 0;
        rc = sb_store_rate_count(st, k, now - fl->rate_limit_period_ms + 1, &hits, err);
        if (rc) { /* fail closed: an unknown count admits nothing (the event is retried) */
            free(k);
            return rc;
        }
        if (hits >= fl->rate_limit_n) {
            free(k);
            *why = "rateLimit";
            return FLOW_SKIP;
        }
        rc = sb_store_rate_hit(st, k, now, err);
        free(k);
        if (rc)
            return rc;
    }
    if (fl->singleton) {
        char *k = sbd_flow_key(f->id, fl->singleton_key, event);
        if (!k)
            return sb_err_set(err, SB_ENOMEM, "out of memory");
        held = NULL;
        rc = sb_store_flow_key_get(st, FLOW_SINGLETON, k, &held, &expires, err);
        if (rc && rc != SB_ENOTFOUND) { /* fail closed, as above */
            free(k);
            return rc;
        }
        rc = 0;
        if (held) {
            if (!fl->singleton_cancel) {
                free(held);
                free(k);
                *why = "singleton";
                return FLOW_SKIP;
            }
            /* mode "cancel": the running one goes, this one starts */
            bool added;
            rc = sb_store_cancel_request_put(st, held, "singleton", now, &added, err);
            if (!rc && added) {
                char(*nc)[SB_ULID_SIZE] = realloc(*cancels, (*ncancels + 1) * sizeof *nc);
                if (!nc) {
                    rc = sb_err_set(err, SB_ENOMEM, "out of memory");
                } else {
                    *cancels = nc;
                    snprintf(nc[(*ncancels)++], SB_ULID_SIZE, "%s", held);
                }
            }
        }
        free(held);
        if (!rc) /* held until this run ends (released by sb_store_run_finish) */
            rc = sb_store_flow_key_put(st, FLOW_SINGLETON, k, run_id, 0, err);
        free(k);
    }
    return rc;
}
