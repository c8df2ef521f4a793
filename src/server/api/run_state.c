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
static int load(struct sb_req *req, struct sbd_run_state *rs)
{
    const char *id = sb_req_param(req, 0);
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection to the store" };
    int rc = !sb_ulid_valid(id) ? SB_ENOTFOUND
             : st               ? sbd_store_run_state(st, id, rs, &err)
                                : SB_EUNAVAIL;
    if (rc == SB_ENOTFOUND) {
        sb_reply_json(req, 404, json_pack("{s:s, s:i}", "error", "run not found", "status", 404));
        return rc;
    }
    if (rc) { /* never a part of the steps: the SDK would rerun the rest */
        sb_reply_json(req, 503,
                      json_pack("{s:s++, s:s, s:i}", "error", "cannot read the run: ", sbd_store_err_public(&err),
                                "code", "STORE_ERROR", "status", 503));
        return rc;
    }
    return 0;
}

/* The replies copy what the store read, already in memory: the run's
 * events as sysbusd stored them (each bounded by --max-body when accepted,
 * their number by the batch's maxSize) or its memoized values (each bounded
 * by the worker's answer cap). Each buffer's maximum is the size of that
 * copy, reserved at once: it cannot grow past it, and a failure is one
 * clear 500, never a reply cut short. This page is the SDK's only way to
 * get them, so there is no smaller cap that would not fail the run. */

/* Appends s unless an earlier append failed; returns the first failure. */
static int put(struct sb_buf *b, int rc, const char *s)
{
    return rc ? rc : sb_buf_puts(b, s);
}

/* Replies with b's text, or 500 when building it failed (rc); frees b. */
static void reply_buf(struct sb_req *req, struct sb_buf *b, int rc)
{
    size_t len;
    char *text = rc ? NULL : sb_buf_steal(b, &len);
    if (text)
        sb_reply_raw(req, 200, "application/json", text, len);
    else
        sb_reply_error(req, 500, "INTERNAL", "%s",
                       rc == SB_ETOOBIG ? "the reply outgrew the run's state" : "out of memory");
    sb_buf_free(b);
}

void h_run_batch(struct sb_req *req)
{
    struct sbd_run_state rs;
    if (load(req, &rs))
        return;
    size_t need = rs.events ? strlen(rs.events) : strlen(rs.event) + 2;
    struct sb_buf b = SB_BUF_INIT(need);
    int rc = sb_buf_reserve(&b, need);
    if (rs.events) { /* a batch: all its events */
        rc = put(&b, rc, rs.events);
    } else {
        rc = put(&b, rc, "[");
        rc = put(&b, rc, rs.event);
        rc = put(&b, rc, "]");
    }
    sbd_run_state_free(&rs);
    reply_buf(req, &b, rc);
}

/* steps[i] starts with its hash: compare elements as strings */
static int hash_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

void h_run_actions(struct sb_req *req)
{
    struct sbd_run_state rs;
    if (load(req, &rs))
        return;
    /* {"<hash>": <memoized value>, ...}, keys sorted (canonical form) */
    if (rs.nsteps > 1)
        qsort(rs.steps, rs.nsteps, sizeof rs.steps[0], hash_cmp);
    size_t need = 2; /* {} */
    for (size_t i = 0; i < rs.nsteps; i++)
        need += 4 + strlen(rs.steps[i].hash) + strlen(rs.steps[i].output); /* ,"": */
    struct sb_buf b = SB_BUF_INIT(need);
    int rc = sb_buf_reserve(&b, need);
    rc = put(&b, rc, "{");
    for (size_t i = 0; i < rs.nsteps; i++) {
        rc = put(&b, rc, i ? ",\"" : "\"");
        rc = put(&b, rc, rs.steps[i].hash);
        rc = put(&b, rc, "\":");
        rc = put(&b, rc, rs.steps[i].output);
    }
    rc = put(&b, rc, "}");
    sbd_run_state_free(&rs);
    reply_buf(req, &b, rc);
}
