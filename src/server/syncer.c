/* syncer.c - periodic and on-demand app syncs (see syncer.h). The request
 * queue is guarded by s->bg.lock; the PUTs run on the syncer thread. */
#include "syncer.h"
#include "common/bgthread.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"
#include "metrics.h"
#include "sbd.h"
#include "store/store.h"
#include "store/writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sync_req {
    struct sync_req *next;
    char *url;
    void (*cb)(void *ctx, int rc, long status, const char *message);
    void *ctx;
};

struct sbd_syncer {
    struct sbd *sbd;
    struct sb_bg bg; /* bg.lock also guards the request queue */
    struct sync_req *head, *tail;
};

/* Records (or clears) a sync error on the apps with this URL. */
struct sync_error_op {
    struct sbd_wop wop;
    char *url, *error;
    int64_t now;
};

static int sync_error_apply(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct sync_error_op *op = (struct sync_error_op *)w;
    return sbd_store_app_sync_error(st, op->url, op->error, op->now, err);
}

static void sync_error_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct sync_error_op *op = (struct sync_error_op *)w;
    (void)rc, (void)err;
    free(op->url);
    free(op->error);
    free(op);
}

static void record_sync_error(struct sbd *sbd, const char *url, const char *error)
{
    struct sync_error_op *op = calloc(1, sizeof *op);
    if (!op)
        return;
    op->wop.apply = sync_error_apply;
    op->wop.done = sync_error_done;
    op->url = strdup(url);
    op->error = strdup(error);
    op->now = sb_now_ms();
    if (!op->url || !op->error) {
        sync_error_done(&op->wop, 0, NULL);
        return;
    }
    sbd_writer_submit(sbd->writer, &op->wop);
}

int sbd_sync_put(struct sbd *sbd, const char *url, long *status, char *msg, size_t msgsz)
{
    json_t *b = json_pack("{s:s}", "url", url);
    size_t blen = 0;
    char *body = sb_json_dumps(b, &blen);
    json_decref(b);
    if (!body) {
        snprintf(msg, msgsz, "out of memory");
        return SB_ENOMEM;
    }
    char sighdr[200] = "";
    if (sbd->signed_mode) {
        char sig[160];
        sb_sign_body(&sbd->signing_key, body, blen, sb_now_ms() / 1000, sig, sizeof sig);
        snprintf(sighdr, sizeof sighdr, "X-Inngest-Signature: %s", sig);
    }
    const char *headers[] = {
        "Content-Type: application/json",
        sbd->signed_mode ? "X-Inngest-Server-Kind: cloud" : "X-Inngest-Server-Kind: dev",
        sighdr[0] ? sighdr : NULL,
        NULL,
    };
    struct sb_httpc_req req = { .method = "PUT",
                                .url = url,
                                .headers = headers,
                                .body = body,
                                .body_len = blen,
                                .connect_timeout_ms = 3000,
                                .timeout_ms = 15000,
                                .max_response = 1 << 20 };
    struct sb_httpc_resp resp = { 0 };
    struct sb_err err = { 0 };
    int rc = sb_httpc_do(&req, &resp, &err);
    free(body);
    if (rc) {
        snprintf(msg, msgsz, "Unable to reach SDK URL %s: %s", url, err.msg);
        sb_httpc_resp_free(&resp);
        return rc;
    }
    *status = resp.status;
    json_t *r = sb_json_parse_input(sb_buf_cstr(&resp.body), resp.body.len, 0, NULL);
    const char *m = sb_json_str(r, "message");
    if (!m)
        m = sb_json_str(r, "error");
    snprintf(msg, msgsz, "%s", m ? m : (resp.status == 200 ? "synced" : "sync failed"));
    json_decref(r);
    sb_httpc_resp_free(&resp);
    return 0;
}

static void sync_one(struct sbd_syncer *s, struct sync_req *rq)
{
    long status = 0;
    char msg[600];
    int rc = sbd_sync_put(s->sbd, rq->url, &status, msg, sizeof msg);
    if (rc || status >= 300) {
        SBD_COUNT(sync_failures);
        char err[700];
        if (rc)
            snprintf(err, sizeof err, "%s", msg);
        else
            snprintf(err, sizeof err, "sync of %s answered %ld: %s", rq->url, status, msg);
        sb_utf8_scrub(err); /* the cuts above may split a character of the worker's text */
        SB_LOGK(SB_WARN, "app_sync_failed", ((struct sb_lf[]){ LF_S("url", rq->url) }), "%s", err);
        record_sync_error(s->sbd, rq->url, err);
    }
    if (rq->cb)
        rq->cb(rq->ctx, rc, status, msg);
}

struct url_list {
    char **v;
    size_t n;
};

static int collect_url(void *ctx, const char *id, const char *url, const char *checksum)
{
    (void)id, (void)checksum;
    struct url_list *l = ctx;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], url) == 0)
            return 0;
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return 0;
    l->v = nv;
    if ((l->v[l->n] = strdup(url)))
        l->n++;
    return 0;
}

static void periodic(struct sbd_syncer *s)
{
    struct sbd_store *st = sbd_store_reader();
    if (!st)
        return;
    struct url_list l = { 0 };
    struct sb_err err = { 0 };
    if (sbd_store_apps_scan(st, collect_url, &l, &err) != 0) {
        /* a partial list would leave some apps unsynced for no visible
         * reason: this round is skipped whole, the next interval retries */
        SB_LOG(SB_WARN, "sync_scan_failed", "cannot list the apps to re-sync: %s", err.msg);
        for (size_t i = 0; i < l.n; i++)
            free(l.v[i]);
        free(l.v);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        pthread_mutex_lock(&s->bg.lock);
        int stop = s->bg.stop;
        pthread_mutex_unlock(&s->bg.lock);
        if (!stop) {
            struct sync_req rq = { .url = l.v[i] };
            sync_one(s, &rq);
        }
        free(l.v[i]);
    }
    free(l.v);
}

static void *syncer_main(void *arg)
{
    struct sbd_syncer *s = arg;
    int64_t interval = s->sbd->cfg.sync_interval_ms;
    int64_t next = sb_mono_ms() + (interval > 0 ? interval : 0);
    pthread_mutex_lock(&s->bg.lock);
    while (!s->bg.stop) {
        if (s->head) {
            struct sync_req *rq = s->head;
            s->head = rq->next;
            if (!s->head)
                s->tail = NULL;
            pthread_mutex_unlock(&s->bg.lock);
            sync_one(s, rq);
            free(rq->url);
            free(rq);
            pthread_mutex_lock(&s->bg.lock);
            continue;
        }
        int64_t now = sb_mono_ms();
        if (interval > 0 && now >= next) {
            pthread_mutex_unlock(&s->bg.lock);
            periodic(s);
            next = sb_mono_ms() + interval;
            pthread_mutex_lock(&s->bg.lock);
            continue;
        }
        sb_bg_wait_ms(&s->bg, interval > 0 ? next - now : 3600000);
    }
    while (s->head) {
        struct sync_req *rq = s->head;
        s->head = rq->next;
        if (rq->cb)
            rq->cb(rq->ctx, SB_EUNAVAIL, 0, "sysbusd is shutting down");
        free(rq->url);
        free(rq);
    }
    pthread_mutex_unlock(&s->bg.lock);
    return NULL;
}

int sbd_syncer_start(struct sbd *sbd, struct sbd_syncer **out, struct sb_err *err)
{
    struct sbd_syncer *s = calloc(1, sizeof *s);
    if (!s)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    s->sbd = sbd;
    int rc = sb_bg_start(&s->bg, syncer_main, s, "syncer", err);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sbd_syncer_stop(struct sbd_syncer *s)
{
    if (!s)
        return;
    sb_bg_stop(&s->bg);
    free(s);
}

void sbd_syncer_request(struct sbd_syncer *s, const char *url,
                        void (*cb)(void *ctx, int rc, long status, const char *message), void *ctx)
{
    struct sync_req *rq = calloc(1, sizeof *rq);
    if (!rq || !(rq->url = strdup(url))) {
        free(rq);
        cb(ctx, SB_ENOMEM, 0, "out of memory");
        return;
    }
    rq->cb = cb;
    rq->ctx = ctx;
    pthread_mutex_lock(&s->bg.lock);
    if (s->bg.stop) {
        pthread_mutex_unlock(&s->bg.lock);
        free(rq->url);
        free(rq);
        cb(ctx, SB_EUNAVAIL, 0, "sysbusd is shutting down");
        return;
    }
    if (s->tail)
        s->tail->next = rq;
    else
        s->head = rq;
    s->tail = rq;
    pthread_cond_signal(&s->bg.cond);
    pthread_mutex_unlock(&s->bg.lock);
}
