/* writer.h - the writer thread: the only code that writes to the store.
 *
 * Operations are submitted from any thread and applied in submission order.
 * The writer takes every operation queued at that moment (group commit), runs
 * them in one transaction, each inside its own savepoint (one failing
 * operation does not undo the others), commits, and only then calls each
 * operation's done() with its result. So done(rc == 0) means "durable": the
 * caller may acknowledge. If the commit itself fails, every operation of the
 * batch gets the error and nothing of it is acknowledged.
 *
 * done() runs on the writer thread: keep it short (post a message, resume a
 * connection); it may free the op. */
#ifndef SBD_WRITER_H
#define SBD_WRITER_H

#include <stdint.h>

#include "common/err.h"
#include "store.h"

struct sbd_wop {
    struct sbd_wop *next;
    /* Runs inside the batch transaction; returns 0 or an SB_E* code. */
    int (*apply)(struct sbd_store *st, struct sbd_wop *op, struct sb_err *err);
    /* After commit (rc 0) or failure (rc < 0, err says why). */
    void (*done)(struct sbd_wop *op, int rc, const struct sb_err *err);
};

struct sbd_writer;

struct sbd_writer_stats {
    uint64_t batches, ops, failed_ops, failed_commits;
    uint64_t commit_us_total;
    uint64_t max_batch;
};

int sbd_writer_start(struct sbd_store *st, int max_batch, struct sbd_writer **out,
                     struct sb_err *err);
/* Queues op. After stop, ops complete at once with SB_EUNAVAIL. */
void sbd_writer_submit(struct sbd_writer *w, struct sbd_wop *op);
/* Applies everything queued, then stops the thread. */
void sbd_writer_stop(struct sbd_writer *w);
void sbd_writer_stats(struct sbd_writer *w, struct sbd_writer_stats *out);
/* Operations queued and not yet committed. */
uint64_t sbd_writer_backlog(struct sbd_writer *w);

#endif
