/* defer.c - deferred run starts: debounce and batchEvents (see defer.h). */
#include "defer.h"
#include "registry.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* A new row of kind for f and key, under the id of the run it replaces. */
static int deferred_new(struct sbd_deferred_rec *d, int kind, const struct sbd_fn *f,
                        const char *run_id, const char *key, int64_t now, struct sb_err *err)
{
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", run_id);
    d->kind = kind;
    d->first_at = now;
    d->function_id = strdup(f->id);
    d->app_id = strdup(f->app_id);
    d->key = strdup(key);
    if (d->function_id && d->app_id && d->key)
        return 0;
    sbd_deferred_rec_free(d);
    return sb_err_set(err, SB_ENOMEM, "out of memory");
}

/* The open row of kind for (f, key), or a new one (*found false). */
static int deferred_open(struct sbd_store *st, int kind, const struct sbd_fn *f, const char *run_id,
                         const char *key, int64_t now, struct sbd_deferred_rec *d, bool *found,
                         struct sb_err *err)
{
    int rc = sbd_store_deferred_find(st, kind, f->id, key, d, err);
    *found = rc == 0;
    if (rc == SB_ENOTFOUND)
        return deferred_new(d, kind, f, run_id, key, now, err);
    if (rc)
        return sb_err_set(err, rc, "cannot read a %s",
                          kind == DEFER_DEBOUNCE ? "debounce" : "batch");
    return 0;
}

int sbd_defer_debounce_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                              const char *event_id, const char *key, int64_t now, int64_t *due_at,
                              struct sb_err *err)
{
    const struct sbd_flow_config *fl = &f->flow;
    struct sbd_deferred_rec d;
    bool found;
    int rc = deferred_open(st, DEFER_DEBOUNCE, f, run_id, key, now, &d, &found, err);
    if (rc)
        return rc;
    snprintf(d.event_id, sizeof d.event_id, "%s", event_id); /* the latest event wins */
    d.size++;
    d.due_at = now + fl->debounce_period_ms;
    if (fl->debounce_timeout_ms > 0)
        d.due_at = min64(d.due_at, d.first_at + fl->debounce_timeout_ms);
    rc = sbd_store_deferred_put(st, &d, err);
    *due_at = d.due_at;
    sbd_deferred_rec_free(&d);
    return rc;
}

int sbd_defer_batch_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                           const char *event_id, const char *key, int64_t now, bool *full,
                           int64_t *due_at, char first_event_id[SB_ULID_SIZE], struct sb_err *err)
{
    const struct sbd_flow_config *fl = &f->flow;
    struct sbd_deferred_rec d;
    bool found;
    *full = false;
    int rc = deferred_open(st, DEFER_BATCH, f, run_id, key, now, &d, &found, err);
    if (rc)
        return rc;
    if (!found) {
        d.due_at = now + fl->batch_timeout_ms;
        snprintf(d.event_id, sizeof d.event_id, "%s", event_id); /* the first event */
    }
    if ((rc = sbd_store_run_event_add(st, d.id, d.size, event_id, err)))
        goto out;
    d.size++;
    if (d.size >= fl->batch_max) { /* full: the run starts now, in this transaction */
        rc = sbd_store_deferred_delete(st, d.id, err);
        if (!rc && strcmp(d.id, run_id) != 0)
            rc = sbd_store_run_events_move(st, d.id, run_id, err);
        memcpy(first_event_id, d.event_id, SB_ULID_SIZE);
        *full = true;
    } else {
        rc = sbd_store_deferred_put(st, &d, err);
        *due_at = d.due_at;
    }
out:
    sbd_deferred_rec_free(&d);
    return rc;
}

int sbd_defer_take_in_txn(struct sbd_store *st, const char *id, int64_t now, bool *taken,
                          struct sbd_deferred_rec *d, struct sb_err *err)
{
    *taken = false;
    int rc = sbd_store_deferred_get(st, id, d, err);
    if (rc == SB_ENOTFOUND)
        return 0; /* fired by a full batch meanwhile */
    if (rc)
        return sb_err_set(err, rc, "cannot read deferred start %s", id);
    if (d->due_at > now) { /* a debounce moved meanwhile */
        sbd_deferred_rec_free(d);
        return 0;
    }
    if ((rc = sbd_store_deferred_delete(st, d->id, err))) {
        sbd_deferred_rec_free(d);
        return rc;
    }
    *taken = true;
    return 0;
}
