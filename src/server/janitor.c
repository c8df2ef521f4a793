/* janitor.c - retention purge thread (see janitor.h). */
#include "janitor.h"
#include "common/clock.h"
#include "common/log.h"
#include "sbd.h"
#include "store/store.h"
#include "store/writer.h"

#include <pthread.h>
#include <stdlib.h>

#define PURGE_BATCH 500

struct sb_janitor {
    struct sbd *sbd;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    int busy;       /* a purge op is in the writer */
    int deleted;    /* rows deleted by the last op */
};

struct purge_op {
    struct wop wop;
    struct sb_janitor *j;
    int64_t before;
    int deleted;
};

static int purge_apply(struct sb_store *st, struct wop *w, struct sb_err *err)
{
    struct purge_op *op = (struct purge_op *)w;
    return sb_store_purge(st, op->before, PURGE_BATCH, &op->deleted, err);
}

static void purge_done(struct wop *w, int rc, const struct sb_err *err)
{
    struct purge_op *op = (struct purge_op *)w;
    struct sb_janitor *j = op->j;
    if (rc)
        SB_LOG(SB_WARN, "purge_failed", "retention purge failed: %s", err ? err->msg : "?");
    else if (op->deleted > 0)
        SB_LOG(SB_DEBUG, "purged", "retention purge removed %d rows", op->deleted);
    pthread_mutex_lock(&j->lock);
    j->busy = 0;
    j->deleted = rc ? 0 : op->deleted;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    free(op);
}

static void wait_ms(struct sb_janitor *j, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cond, &j->lock, &ts);
}

static void *janitor_main(void *arg)
{
    struct sb_janitor *j = arg;
    pthread_mutex_lock(&j->lock);
    while (!j->stop) {
        wait_ms(j, j->sbd->cfg.purge_interval_ms);
        /* batches until one comes back short */
        while (!j->stop) {
            struct purge_op *op = calloc(1, sizeof *op);
            if (!op)
                break;
            op->wop.apply = purge_apply;
            op->wop.done = purge_done;
            op->j = j;
            op->before = sb_now_ms() - j->sbd->cfg.retention_ms;
            j->busy = 1;
            pthread_mutex_unlock(&j->lock);
            sb_writer_submit(j->sbd->writer, &op->wop);
            pthread_mutex_lock(&j->lock);
            while (j->busy)
                pthread_cond_wait(&j->cond, &j->lock);
            if (j->deleted < PURGE_BATCH)
                break;
            wait_ms(j, 20); /* let other commits through */
        }
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

int sb_janitor_start(struct sbd *sbd, struct sb_janitor **out, struct sb_err *err)
{
    struct sb_janitor *j = calloc(1, sizeof *j);
    if (!j)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    j->sbd = sbd;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    if (pthread_create(&j->thread, NULL, janitor_main, j) != 0) {
        free(j);
        return sb_err_errno(err, SB_EIO, "cannot start the janitor thread");
    }
    *out = j;
    return 0;
}

void sb_janitor_stop(struct sb_janitor *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    pthread_join(j->thread, NULL);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j);
}
