/* cancel.c - cancel requests for the runs a rule matches (see cancel.h). */
#include "cancel.h"
#include "common/json.h"
#include "expr/expr.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cancel_ctx {
    struct sbd_store *st;
    const struct sbd_cancel_match *m;
    char (**ids)[SB_ULID_SIZE];
    size_t *nids;
    struct sb_err *err;
};

static bool run_matches(const struct sbd_cancel_match *m, int64_t created_at, const char *trigger)
{
    if (m->timeout_ms > 0 && created_at + m->timeout_ms < m->now)
        return false; /* the rule applies only this long after the run started */
    if (!m->expr)
        return true;
    json_t *ev = trigger ? sb_json_parse(trigger, strlen(trigger), NULL) : NULL;
    struct sbd_expr_var vars[] = { { "event", ev }, { "async", m->async } };
    bool ok = sbd_expr_test(m->expr, vars, m->async ? 2 : 1);
    json_decref(ev);
    return ok;
}

static int cancel_one_in_txn(void *ctx, const char *run_id, int64_t created_at, const char *trigger)
{
    struct cancel_ctx *cc = ctx;
    if (!run_matches(cc->m, created_at, trigger))
        return 0;
    bool added;
    int rc =
        sbd_store_cancel_request_put(cc->st, run_id, cc->m->reason, cc->m->now, &added, cc->err);
    if (rc || !added)
        return rc;
    char(*n)[SB_ULID_SIZE] = realloc(*cc->ids, (*cc->nids + 1) * sizeof *n);
    if (!n)
        return sb_err_set(cc->err, SB_ENOMEM, "out of memory");
    *cc->ids = n;
    snprintf(n[(*cc->nids)++], SB_ULID_SIZE, "%s", run_id);
    return 0;
}

int sbd_cancel_matching_in_txn(struct sbd_store *st, const struct sbd_cancel_match *m,
                               char (**ids)[SB_ULID_SIZE], size_t *nids, struct sb_err *err)
{
    struct cancel_ctx cc = { st, m, ids, nids, err };
    return sbd_store_running_runs(st, m->app_id, m->function_id, m->after, m->before,
                                  cancel_one_in_txn, &cc, err);
}
