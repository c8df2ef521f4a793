/* events.c - POST /e/{key}: event ingest.
 *
 * The body is validated and normalized by event_parse.c (ids are ULIDs,
 * seeded from x-inngest-event-id-seed so an SDK's retried send gets the same
 * ids). The events, the runs of every function they trigger and each run's
 * first queue item are stored by ingest.c in one writer operation; the reply
 * {"ids":[...],"status":200} is sent only after that commit. Duplicates (same
 * seeded id, or same user `id` within 24 h) get the original id and start
 * nothing. */
#include "api.h"
#include "event_parse.h"
#include "common/buf.h"
#include "common/clock.h"
#include "server/ingest.h"
#include "server/sbd.h"
#include "server/store/writer.h"

#include <stdlib.h>
#include <string.h>

struct ingest_op {
    struct sbd_wop wop;
    struct sb_req *req;
    struct sbd *sbd;
    struct sbd_ingest_batch batch;
};

static void ingest_free(struct ingest_op *op)
{
    sbd_ingest_free(&op->batch);
    free(op);
}

static int ingest_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct ingest_op *op = (struct ingest_op *)w;
    return sbd_ingest_apply_in_txn(st, op->sbd->ingest, &op->batch, err);
}

static void ingest_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct ingest_op *op = (struct ingest_op *)w;
    if (rc) {
        /* a store that could not be read or written (busy, I/O, a read that
         * broke off) is a passing condition: 503, and the sender retries */
        bool transient = sb_err_transient(rc);
        sb_reply_error(op->req, transient ? 503 : 500, "STORE_ERROR", "events not stored: %s",
                       sbd_store_err_public(err));
        ingest_free(op);
        return;
    }
    /* hand the new runs to the engine, then acknowledge */
    sbd_ingest_committed(op->sbd->ingest, &op->batch);
    /* the answer, written directly: {"ids":[...],"status":200} */
    struct sb_buf reply = SB_BUF_INIT(0); /* sysbusd's own ULIDs, at most SBD_MAX_EVENTS */
    sb_buf_reserve(&reply, 16 + op->batch.n * 29);
    sb_buf_puts(&reply, "{\"ids\":[");
    for (size_t i = 0; i < op->batch.n; i++)
        sb_buf_printf(&reply, "%s\"%s\"", i ? "," : "", op->batch.events[i].ev.id);
    sb_buf_puts(&reply, "],\"status\":200}");
    size_t len;
    char *text = sb_buf_steal(&reply, &len);
    if (text)
        sb_reply_raw(op->req, 200, "application/json", text, len);
    else
        sb_reply_error(op->req, 500, "INTERNAL", "out of memory");
    ingest_free(op);
}

/* The answer to a body the parser refused: 400 for one that breaks a rule,
 * 413 for too many events, 500 otherwise; the rule is the stable code. */
static void reply_parse_error(struct sb_req *req, int rc, const char *rule,
                              const struct sb_err *err)
{
    int status = rc == SB_EINVAL ? 400 : rc == SB_ETOOBIG ? 413 : 500;
    sb_reply_error(req, status, rule ? rule : "INTERNAL", "%s", err->msg);
}

void h_events_post(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    size_t len;
    const char *body = sb_req_body(req, &len);
    int64_t now = sb_now_ms();
    struct sbd_event *parsed;
    size_t n;
    const char *rule = NULL;
    struct sb_err err = { 0 };
    int rc = sbd_events_parse(body, len, sb_req_header(req, "x-inngest-event-id-seed"), now,
                              &parsed, &n, &rule, &err);
    if (rc) {
        reply_parse_error(req, rc, rule, &err);
        return;
    }
    struct ingest_op *op = calloc(1, sizeof *op);
    if (!op || sbd_ingest_init(&op->batch, parsed, n, now) != 0) {
        if (op)
            free(op);
        sbd_events_free(parsed, n);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    free(parsed); /* the batch took the strings */
    op->wop.apply = ingest_apply_in_txn;
    op->wop.done = ingest_done;
    op->req = req;
    op->sbd = sbd;
    if (sbd_ingest_prepare(sbd->ingest, &op->batch) != 0) {
        ingest_free(op);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    sb_req_suspend(req);
    sbd_writer_submit(sbd->writer, &op->wop);
}
