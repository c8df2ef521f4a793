/* writer.c - group-commit writer thread (see writer.h).
 * Shared state (the op queue, stop flag, stats) is guarded by w->lock. */
#include "writer.h"
#include "common/clock.h"
#include "common/log.h"

#include <pthread.h>
#include <stdlib.h>

struct sbd_writer {
    struct sbd_store *st;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sbd_wop *head, *tail;
    uint64_t queued;
    int max_batch;
    int stopping, stopped;
    struct sbd_writer_stats stats;
};

static void run_batch(struct sbd_writer *w, struct sbd_wop *batch, uint64_t n)
{
    struct sb_err err = { 0 };
    int64_t t0 = sb_mono_us();
    int rc = sbd_store_begin(w->st, &err);
    int *results = calloc(n, sizeof *results);
    struct sb_err *errs = calloc(n, sizeof *errs);
    uint64_t i = 0, failed = 0;
    if (!results || !errs)
        rc = sb_err_set(&err, SB_ENOMEM, "out of memory");
    if (!rc) {
        for (struct sbd_wop *op = batch; op; op = op->next, i++) {
            if ((results[i] = sbd_store_savepoint(w->st, &errs[i])) != 0) {
                failed++;
                continue;
            }
            results[i] = op->apply(w->st, op, &errs[i]);
            if (results[i]) {
                failed++;
                sbd_store_rollback_savepoint(w->st);
                SB_LOG(SB_WARN, "store_op_failed", "write operation failed: %s", errs[i].msg);
            } else {
                sbd_store_release(w->st);
            }
        }
        rc = sbd_store_commit(w->st, &err);
        if (rc)
            sbd_store_rollback(w->st);
    }
    int64_t dt = sb_mono_us() - t0;
    if (rc)
        SB_LOG(SB_ERROR, "store_commit_failed", "commit of %llu operations failed: %s",
               (unsigned long long)n, err.msg);

    pthread_mutex_lock(&w->lock);
    w->stats.batches++;
    w->stats.ops += n;
    w->stats.failed_ops += rc ? n : failed;
    w->stats.failed_commits += rc ? 1 : 0;
    w->stats.commit_us_total += (uint64_t)dt;
    if (n > w->stats.max_batch)
        w->stats.max_batch = n;
    w->queued -= n;
    pthread_mutex_unlock(&w->lock);

    i = 0;
    for (struct sbd_wop *op = batch, *next; op; op = next, i++) {
        next = op->next; /* done() may free op */
        if (rc)
            op->done(op, rc, &err);
        else
            op->done(op, results ? results[i] : SB_ENOMEM, errs ? &errs[i] : &err);
    }
    free(results);
    free(errs);
}

static void *writer_main(void *arg)
{
    struct sbd_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if (!w->head && w->stopping)
            break;
        /* take up to max_batch ops */
        struct sbd_wop *batch = w->head, *last = w->head;
        uint64_t n = 1;
        while (last->next && n < (uint64_t)w->max_batch) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->lock);
        run_batch(w, batch, n);
        pthread_mutex_lock(&w->lock);
    }
    w->stopped = 1;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int sbd_writer_start(struct sbd_store *st, int max_batch, struct sbd_writer **out,
                     struct sb_err *err)
{
    struct sbd_writer *w = calloc(1, sizeof *w);
    if (!w)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    w->st = st;
    w->max_batch = max_batch > 0 ? max_batch : 4096;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        free(w);
        return sb_err_errno(err, SB_EIO, "cannot start the writer thread");
    }
    *out = w;
    return 0;
}

void sbd_writer_submit(struct sbd_writer *w, struct sbd_wop *op)
{
    op->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->stopped) {
        pthread_mutex_unlock(&w->lock);
        struct sb_err err;
        sb_err_set(&err, SB_EUNAVAIL, "the store is shutting down");
        op->done(op, SB_EUNAVAIL, &err);
        return;
    }
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    w->queued++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void sbd_writer_stop(struct sbd_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

void sbd_writer_stats(struct sbd_writer *w, struct sbd_writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}

uint64_t sbd_writer_backlog(struct sbd_writer *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t n = w->queued;
    pthread_mutex_unlock(&w->lock);
    return n;
}
