/* records.c - what every store backend shares that is not storage: the
 * names of run and step statuses, freeing the records reads hand out, and
 * the event-id cutoff of a retention purge. No backend code calls into a
 * database from here. */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *run_status_name(int status)
{
    switch (status) {
    case RUN_RUNNING: return "Running";
    case RUN_COMPLETED: return "Completed";
    case RUN_FAILED: return "Failed";
    case RUN_CANCELLED: return "Cancelled";
    }
    return "Unknown";
}

int run_status_parse(const char *name)
{
    for (int i = 0; i <= RUN_CANCELLED; i++)
        if (strcasecmp(name, run_status_name(i)) == 0)
            return i;
    return -1;
}

const char *step_status_name(int status)
{
    return status == STEP_COMPLETED ? "Completed" : status == STEP_FAILED ? "Failed" : "Running";
}

void sbd_wait_rec_free(struct sbd_wait_rec *w)
{
    free((char *)w->run_id);
    free((char *)w->step_hash);
    memset(w, 0, sizeof *w);
}

void sbd_deferred_rec_free(struct sbd_deferred_rec *d)
{
    free(d->function_id);
    free(d->app_id);
    free(d->key);
    d->function_id = d->app_id = d->key = NULL;
}

void sbd_run_state_free(struct sbd_run_state *rs)
{
    free(rs->function_id);
    free(rs->event);
    free(rs->events);
    for (size_t i = 0; i < rs->nsteps; i++)
        free(rs->steps[i].output);
    free(rs->steps);
    memset(rs, 0, sizeof *rs);
}

void sbd_store_purge_cutoff(int64_t before_ms, char out[SB_ULID_SIZE])
{
    /* the smallest id made at before_ms: every id below it was made earlier */
    static const uint8_t zero[10];
    sb_ulid_from_parts(before_ms, zero, out);
}
