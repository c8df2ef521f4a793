/* run_state.c - GET /v0/runs/{id}/batch and GET /v0/runs/{id}/actions: a
 * run's events and its memoized steps, fetched by an SDK when a call was too
 * large to carry them (ctx.use_api). Authenticated like registration. The
 * store is read directly: a call is only dispatched after the commit of
 * everything it depends on. */
#include "api.h"
#include "common/buf.h"
#include "common/ulid.h"
#include "server/store/store.h"

#include <stdlib.h>
#include <string.h>

/* The run's state: 0, or the read's error after answering 404 or 503. */
static int load(struct sb_req *req, struct run_state *rs)
{
    const char *id = sb_req_param(req, 0);
    struct sb_store *st = sb_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection to the store" };
    int rc = !sb_ulid_valid(id) ? SB_ENOTFOUND
             : st               ? sb_store_run_state(st, id, rs, &err)
                                : SB_EUNAVAIL;
    if (rc == SB_ENOTFOUND) {
        sb_reply_json(req, 404, json_pack("{s:s, s:i}", "error", "run not found", "status", 404));
        return rc;
    }
    if (rc) { /* never a part of the steps: the SDK would rerun the rest */
        sb_reply_json(req, 503,
                      json_pack("{s:s++, s:s, s:i}", "error", "cannot read the run: ", err.msg,
                                "code", "STORE_ERROR", "status", 503));
        return rc;
    }
    return 0;
}

static void reply_buf(struct sb_req *req, struct sb_buf *b)
{
    size_t len;
    char *text = sb_buf_steal(b, &len);
    if (text)
        sb_reply_raw(req, 200, "application/json", text, len);
    else
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
}

void h_run_batch(struct sb_req *req)
{
    struct run_state rs;
    if (load(req, &rs))
        return;
    /* no cap: the run's events as sysbusd stored them, each bounded when it
     * was accepted (--max-body), their number by the batch's maxSize */
    struct sb_buf b = SB_BUF_INIT(0);
    if (rs.events) { /* a batch: all its events */
        sb_buf_puts(&b, rs.events);
    } else {
        sb_buf_putc(&b, '[');
        sb_buf_puts(&b, rs.event);
        sb_buf_putc(&b, ']');
    }
    sb_run_state_free(&rs);
    reply_buf(req, &b);
}

/* steps[i] starts with its hash: compare elements as strings */
static int hash_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

void h_run_actions(struct sb_req *req)
{
    struct run_state rs;
    if (load(req, &rs))
        return;
    /* {"<hash>": <memoized value>, ...}, keys sorted (canonical form) */
    if (rs.nsteps > 1)
        qsort(rs.steps, rs.nsteps, sizeof rs.steps[0], hash_cmp);
    /* no cap: the memoized values as sysbusd stored them, each bounded when
     * it was accepted (a worker's answer or a checkpoint's body, both
     * capped); this page is the SDK's only way to get them, so it must hold
     * them all */
    struct sb_buf b = SB_BUF_INIT(0);
    sb_buf_putc(&b, '{');
    for (size_t i = 0; i < rs.nsteps; i++) {
        sb_buf_printf(&b, "%s\"%s\":", i ? "," : "", rs.steps[i].hash);
        sb_buf_puts(&b, rs.steps[i].output);
    }
    sb_buf_putc(&b, '}');
    sb_run_state_free(&rs);
    reply_buf(req, &b);
}
