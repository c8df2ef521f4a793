/* call.c - one call to a worker: the request body (built directly in
 * canonical JSON, so it can be signed as sent), headers, and the curl easy
 * handle added to the engine's multi handle. Engine thread only.
 *
 * Body (keys in canonical order):
 *   {"ctx":{"attempt":A,"disable_immediate_execution":B,"env":E,
 *           "max_attempts":M,"run_id":R,"stack":{"current":N,"stack":[h...]},
 *           "step_id":S,"use_api":false},
 *    "event":EV,"events":[EV],"steps":{h:V,...},"use_api":false,"version":V}
 * ctx.fn_id is left out on purpose: it would switch v4 SDKs to checkpoint
 * mode (docs/internals/engine.md). */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sign.h"
#include "server/metrics.h"
#include "server/sbd.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int memo_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct sbd_memo *const *)a)->hash,
                  (*(const struct sbd_memo *const *)b)->hash);
}

/* Above this size the worker fetches events and steps from the API instead
 * (ctx.use_api: GET /v0/runs/{id}/batch and /actions). */
#define USE_API_BYTES (4u << 20)

int call_build_body(const struct sbd_run *r, const struct sbd_item *it, int max_attempts,
                    const char *env_name, const char *fn_id, struct sb_buf *b)
{
    int rc = 0;
    size_t state = strlen(r->event) + (r->events ? strlen(r->events) : strlen(r->event));
    for (size_t i = 0; i < r->nmemo; i++)
        state += strlen(r->memo[i].value) + 48;
    bool use_api = state > USE_API_BYTES;
    rc |= sb_buf_printf(b, "{\"ctx\":{\"attempt\":%d,\"disable_immediate_execution\":%s,\"env\":",
                        it->attempt, (it->flags & ITEM_PARALLEL) ? "true" : "false");
    rc |= sb_json_write_str(b, env_name);
    if (fn_id) { /* v4 SDKs then run several steps per call (checkpoint.c) */
        rc |= sb_buf_puts(b, ",\"fn_id\":");
        rc |= sb_json_write_str(b, fn_id);
    }
    rc |= sb_buf_printf(b,
                        ",\"max_attempts\":%d,\"qi_id\":\"%lld\",\"run_id\":\"%s\","
                        "\"stack\":{\"current\":%zu,\"stack\":[",
                        max_attempts, (long long)it->id, r->id, r->nmemo);
    for (size_t i = 0; i < r->nmemo; i++) {
        rc |= sb_buf_puts(b, i ? ",\"" : "\"");
        rc |= sb_buf_puts(b, r->memo[i].hash);
        rc |= sb_buf_putc(b, '"');
    }
    rc |= sb_buf_puts(b, "]},\"step_id\":");
    rc |= sb_json_write_str(b, it->step_id);
    rc |= sb_buf_printf(b, ",\"use_api\":%s},\"event\":", use_api ? "true" : "false");
    rc |= sb_buf_puts(b, r->event);
    if (use_api) { /* the SDK fetches events and steps itself */
        SBD_COUNT(use_api_calls);
        rc |= sb_buf_printf(b, ",\"events\":[],\"steps\":{},\"use_api\":true,\"version\":%d}",
                            r->req_version);
        return rc ? SB_ENOMEM : 0;
    }
    if (r->events) { /* a batch */
        rc |= sb_buf_puts(b, ",\"events\":");
        rc |= sb_buf_puts(b, r->events);
    } else {
        rc |= sb_buf_puts(b, ",\"events\":[");
        rc |= sb_buf_puts(b, r->event);
        rc |= sb_buf_putc(b, ']');
    }
    rc |= sb_buf_puts(b, ",\"steps\":{");
    if (r->nmemo > 0) {
        const struct sbd_memo *small[32];
        const struct sbd_memo **sorted = r->nmemo <= 32 ? small : malloc(r->nmemo * sizeof *sorted);
        if (!sorted)
            return SB_ENOMEM;
        for (size_t i = 0; i < r->nmemo; i++)
            sorted[i] = &r->memo[i];
        qsort(sorted, r->nmemo, sizeof *sorted, memo_cmp);
        for (size_t i = 0; i < r->nmemo; i++) {
            rc |= sb_buf_puts(b, i ? ",\"" : "\"");
            rc |= sb_buf_puts(b, sorted[i]->hash);
            rc |= sb_buf_puts(b, "\":");
            rc |= sb_buf_puts(b, sorted[i]->value);
        }
        if (sorted != small)
            free(sorted);
    }
    rc |= sb_buf_printf(b, "},\"use_api\":false,\"version\":%d}", r->req_version);
    return rc ? SB_ENOMEM : 0;
}

/* ---- curl callbacks ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct sbd_call *c = ud;
    return sb_buf_append(&c->resp, p, sz * n) == 0 ? sz * n : 0;
}

static void header_value(const char *p, size_t len, size_t namelen, char *out, size_t outsz)
{
    const char *v = p + namelen + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t n = (size_t)(end - v);
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool header_is(const char *p, size_t len, const char *name)
{
    size_t nl = strlen(name);
    return len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct sbd_call *c = ud;
    size_t len = sz * n;
    char v[64];
    if (header_is(p, len, "x-inngest-no-retry")) {
        header_value(p, len, strlen("x-inngest-no-retry"), v, sizeof v);
        c->no_retry = strcasecmp(v, "true") == 0 ? 1 : strcasecmp(v, "false") == 0 ? 0 : -1;
    } else if (header_is(p, len, "retry-after")) {
        header_value(p, len, strlen("retry-after"), c->retry_after, sizeof c->retry_after);
    } else if (header_is(p, len, "x-inngest-req-version")) {
        header_value(p, len, strlen("x-inngest-req-version"), v, sizeof v);
        char *end;
        long rv = strtol(v, &end, 10);
        if (*v && *end == '\0' && rv >= -1 && rv < 100)
            c->req_version = (int)rv;
    } else if (header_is(p, len, "x-inngest-sdk")) {
        c->has_sdk_header = true;
    }
    return len;
}

/* ---- lifecycle ---- */

static CURL *take_handle(struct sbd_engine *e)
{
    if (e->nidle > 0)
        return e->idle_handles[--e->nidle];
    return curl_easy_init();
}

/* Idle easy handles kept for reuse. Each holds buffers of its own, so after
 * a burst with many calls in flight only this many are kept. */
#define MAX_IDLE_HANDLES 64

static void give_handle(struct sbd_engine *e, CURL *h)
{
    if (e->nidle >= MAX_IDLE_HANDLES) {
        curl_easy_cleanup(h);
        return;
    }
    if (e->nidle == e->capidle) {
        size_t nc = e->capidle ? e->capidle * 2 : 64;
        CURL **nh = realloc(e->idle_handles, nc * sizeof *nh);
        if (!nh) {
            curl_easy_cleanup(h);
            return;
        }
        e->idle_handles = nh;
        e->capidle = nc;
    }
    curl_easy_reset(h);
    e->idle_handles[e->nidle++] = h;
}

void call_free(struct sbd_engine *e, struct sbd_call *c)
{
    if (!c)
        return;
    if (c->h) {
        curl_multi_remove_handle(e->multi, c->h);
        give_handle(e, c->h);
    }
    curl_slist_free_all(c->headers);
    sb_buf_free(&c->req);
    sb_buf_free(&c->resp);
    free(c);
}

void call_abort(struct sbd_engine *e, struct sbd_call *c)
{
    struct sbd_item *it = c->item;
    it->call = NULL;
    call_free(e, c);
    e->inflight--;
    admit_release(e, it);
}

/* The request's headers (signed over the body when sysbusd runs signed). */
static void call_headers(struct sbd_call *c, const struct sbd *sbd, const struct sbd_run *r,
                         const struct sbd_item *it)
{
    char hdr[256];
    c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Expect:");
    c->headers = curl_slist_append(c->headers, sbd->signed_mode ? "X-Inngest-Server-Kind: cloud"
                                                                : "X-Inngest-Server-Kind: dev");
    snprintf(hdr, sizeof hdr, "X-Run-ID: %s", r->id);
    c->headers = curl_slist_append(c->headers, hdr);
    snprintf(hdr, sizeof hdr, "X-Inngest-Step-ID: %s", it->step_id);
    c->headers = curl_slist_append(c->headers, hdr);
    if (r->req_version >= 0) {
        snprintf(hdr, sizeof hdr, "x-inngest-req-version: %d", r->req_version);
        c->headers = curl_slist_append(c->headers, hdr);
    }
    if (sbd->signed_mode) {
        char sig[160];
        sb_sign_body(&sbd->signing_key, c->req.data, c->req.len, sb_now_ms() / 1000, sig,
                     sizeof sig);
        snprintf(hdr, sizeof hdr, "X-Inngest-Signature: %s", sig);
        c->headers = curl_slist_append(c->headers, hdr);
    }
}

int call_start(struct sbd_engine *e, struct sbd_item *it, const struct sbd_fn *f)
{
    struct sbd *sbd = e->sbd;
    struct sbd_run *r = it->run;
    struct sbd_call *c = calloc(1, sizeof *c);
    if (!c)
        return SB_ENOMEM;
    c->item = it;
    c->no_retry = -1;
    c->req_version = INT_MIN;
    c->resp.max = CALL_MAX_RESPONSE;
    if (call_build_body(r, it, f->retries + 1, sbd->cfg.env_name,
                        sbd->cfg.checkpoint ? f->id : NULL, &c->req) != 0) {
        call_free(e, c);
        return SB_ENOMEM;
    }
    snprintf(c->url, sizeof c->url, "%sstepId=%s", f->url_base, it->step_id);
    c->h = take_handle(e);
    if (!c->h) {
        call_free(e, c);
        return SB_ENOMEM;
    }
    call_headers(c, sbd, r, it);
    CURL *h = c->h;
    int64_t timeout = sbd->cfg.call_timeout_ms;
    if (f->flow.finish_timeout_ms > 0 && f->flow.finish_timeout_ms < timeout)
        timeout = f->flow.finish_timeout_ms;
    sb_httpc_setup_easy(h, sbd->cfg.connect_timeout_ms, timeout);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->req.data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sysbusd/" SB_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    /* many calls may be in flight: a modest receive buffer each */
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 8192L);
    if (curl_multi_add_handle(e->multi, h) != CURLM_OK) {
        call_free(e, c);
        return SB_EIO;
    }
    c->sent_us = sb_mono_us();
    it->dispatched_at = sb_now_ms();
    if (it->started_at == 0)
        it->started_at = it->dispatched_at;
    it->call = c;
    e->inflight++;
    SBD_COUNT(step_calls);
    if (r->handoff_us) {
        sbd_hist_observe(&sbd_metrics.step_handoff, c->sent_us - r->handoff_us);
        r->handoff_us = 0;
    }
    return 0;
}
