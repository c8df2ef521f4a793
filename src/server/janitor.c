/* janitor.c - retention purge thread (see janitor.h). */
#include "janitor.h"
#include "common/bgthread.h"
#include "common/clock.h"
#include "common/log.h"
#include "sbd.h"
#include "store/store.h"
#include "store/writer.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#define PURGE_BATCH 500

struct sbd_janitor {
    struct sbd *sbd;
    struct sb_bg bg;
    int busy;    /* a purge op is in the writer (bg.lock) */
    int deleted; /* rows deleted by the last op (bg.lock) */
};

struct purge_op {
    struct sbd_wop wop;
    struct sbd_janitor *j;
    int64_t before;
    int deleted;
};

static int purge_apply(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct purge_op *op = (struct purge_op *)w;
    return sbd_store_purge(st, op->before, PURGE_BATCH, &op->deleted, err);
}

static void purge_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct purge_op *op = (struct purge_op *)w;
    struct sbd_janitor *j = op->j;
    if (rc)
        SB_LOG(SB_WARN, "purge_failed", "retention purge failed: %s", err ? err->msg : "?");
    else if (op->deleted > 0)
        SB_LOG(SB_DEBUG, "purged", "retention purge removed %d rows", op->deleted);
    pthread_mutex_lock(&j->bg.lock);
    j->busy = 0;
    j->deleted = rc ? 0 : op->deleted;
    pthread_cond_broadcast(&j->bg.cond);
    pthread_mutex_unlock(&j->bg.lock);
    free(op);
}

/* Memory freed after a burst is handed back to the system this often. */
#define TRIM_INTERVAL_MS 10000

static void *janitor_main(void *arg)
{
    struct sbd_janitor *j = arg;
    int64_t next_purge = sb_mono_ms() + j->sbd->cfg.purge_interval_ms;
    pthread_mutex_lock(&j->bg.lock);
    while (!j->bg.stop) {
        int64_t wait = next_purge - sb_mono_ms();
        sb_bg_wait_ms(&j->bg, wait < TRIM_INTERVAL_MS ? (wait > 0 ? wait : 0) : TRIM_INTERVAL_MS);
        if (j->bg.stop)
            break;
        malloc_trim(0);
        if (sb_mono_ms() < next_purge)
            continue;
        next_purge = sb_mono_ms() + j->sbd->cfg.purge_interval_ms;
        /* batches until one comes back short */
        while (!j->bg.stop) {
            struct purge_op *op = calloc(1, sizeof *op);
            if (!op)
                break;
            op->wop.apply = purge_apply;
            op->wop.done = purge_done;
            op->j = j;
            op->before = sb_now_ms() - j->sbd->cfg.retention_ms;
            j->busy = 1;
            pthread_mutex_unlock(&j->bg.lock);
            sbd_writer_submit(j->sbd->writer, &op->wop);
            pthread_mutex_lock(&j->bg.lock);
            while (j->busy)
                pthread_cond_wait(&j->bg.cond, &j->bg.lock);
            if (j->deleted < PURGE_BATCH)
                break;
            sb_bg_wait_ms(&j->bg, 20); /* let other commits through */
        }
    }
    pthread_mutex_unlock(&j->bg.lock);
    return NULL;
}

int sbd_janitor_start(struct sbd *sbd, struct sbd_janitor **out, struct sb_err *err)
{
    struct sbd_janitor *j = calloc(1, sizeof *j);
    if (!j)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    j->sbd = sbd;
    int rc = sb_bg_start(&j->bg, janitor_main, j, "janitor", err);
    if (rc) {
        free(j);
        return rc;
    }
    *out = j;
    return 0;
}

void sbd_janitor_stop(struct sbd_janitor *j)
{
    if (!j)
        return;
    sb_bg_stop(&j->bg);
    free(j);
}
