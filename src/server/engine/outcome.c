/* outcome.c - what a worker's answer means (see engine_internal.h).
 *
 * Classification, in order:
 *  - no HTTP response (refused, reset, empty reply, connect timeout) and HTTP
 *    502/503/504: RES_TRANSPORT, the worker could not be reached; this never
 *    spends the function's retries by itself.
 *  - the response timed out after the request was sent: a retriable error
 *    (the step took longer than the call timeout).
 *  - 2xx without X-Inngest-Sdk: not an SDK (wrong URL?): retriable error.
 *  - 200: RES_DONE with the body as the function's return value.
 *  - 206: RES_OPS, an array of at most OUTCOME_MAX_OPS step operations (a
 *    single object is accepted), each with an "op" name.
 *  - a body nested deeper than the JSON envelope allows (json.h): a final
 *    error, ResponseTooDeep (the same code would answer the same again).
 *  - anything else: RES_ERROR; X-Inngest-No-Retry decides retriability when
 *    present, else 5xx and 401/403/404/408/429 are retriable, other 4xx not.
 *
 * No state of its own: the engine thread calls it on a finished call. */
#include "engine_internal.h"
#include "backoff.h"
#include "common/clock.h"
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *outcome_error_json(const char *name, const char *msg)
{
    /* messages quote what the worker sent, cut at a byte limit: make them
     * valid UTF-8 so that the error can always be encoded */
    char *m = strdup(msg ? msg : "");
    if (!m)
        return NULL;
    sb_utf8_scrub(m);
    json_t *o = json_pack("{s:s, s:s}", "name", name, "message", m);
    free(m);
    char *s = o ? sb_json_dumps(o, NULL) : NULL;
    json_decref(o);
    return s;
}

void outcome_free(struct sbd_call_result *res)
{
    free(res->message);
    free(res->output);
    free(res->error);
    json_decref(res->ops);
    memset(res, 0, sizeof *res);
}

static void set_error(struct sbd_call_result *out, bool retriable, const char *name,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set_error(struct sbd_call_result *out, bool retriable, const char *name,
                      const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    out->kind = RES_ERROR;
    out->retriable = retriable;
    out->message = strdup(msg);
    out->error = outcome_error_json(name, msg);
}

/* A readable one-line excerpt of a body that is not what we expected. */
static void excerpt(const struct sb_buf *b, char *out, size_t outsz)
{
    size_t n = b->len < outsz - 1 ? b->len : outsz - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[i] = (ch < 0x20 || ch >= 0x7f) ? ' ' : (char)ch;
    }
    out[n] = '\0';
}

/* No HTTP answer: curl's error, a response timeout, or a body over the cap. */
static void classify_no_response(CURLcode code, bool timed_out_after_send, const struct sbd_call *c,
                                 struct sbd_call_result *out)
{
    if (code == CURLE_WRITE_ERROR) {
        set_error(out, false, "ResponseTooLarge", "the worker's response is larger than %zu bytes",
                  c->resp.max);
        return;
    }
    if (timed_out_after_send) {
        set_error(out, true, "StepTimeout", "the worker did not answer within the call timeout");
        return;
    }
    out->kind = RES_TRANSPORT;
    char msg[300];
    snprintf(msg, sizeof msg, "cannot reach worker: %s", curl_easy_strerror(code));
    out->message = strdup(msg);
}

/* A 206: an array of step operations (or one op object). body stays the
 * caller's. */
static void classify_ops(const struct sbd_call *c, json_t *body, struct sbd_call_result *out)
{
    json_t *ops = json_is_object(body) ? json_pack("[O]", body) : json_incref(body);
    bool ok = json_is_array(ops) && json_array_size(ops) > 0;
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        if (!json_is_object(op) || sb_json_name(json_object_get(op, "op"), "op", 64, NULL) != 0)
            ok = false;
    }
    if (ok && json_array_size(ops) > OUTCOME_MAX_OPS) {
        set_error(out, false, "InvalidResponse",
                  "the worker sent %zu step operations in one response; at most %d",
                  json_array_size(ops), OUTCOME_MAX_OPS);
        json_decref(ops);
        return;
    }
    if (ok) {
        out->kind = RES_OPS;
        out->retriable = c->no_retry != 1;
        out->ops = ops;
        return;
    }
    json_decref(ops);
    char ex[160];
    excerpt(&c->resp, ex, sizeof ex);
    set_error(out, true, "InvalidResponse",
              "the worker answered 206 without a list of step operations: %s", ex);
}

/* A 2xx answer: the function's result (200) or its step operations (206).
 * body (NULL when empty or not JSON) stays the caller's. */
static void classify_success(long status, const struct sbd_call *c, json_t *body,
                             struct sbd_call_result *out)
{
    char ex[160];
    if (!c->has_sdk_header) {
        excerpt(&c->resp, ex, sizeof ex);
        set_error(out, true, "NotAnSDK",
                  "HTTP %ld from the function URL without an X-Inngest-Sdk header: is the "
                  "URL an Inngest-compatible worker? body: %s",
                  status, ex);
    } else if (status == 200) {
        if (c->resp.len && !body) {
            excerpt(&c->resp, ex, sizeof ex);
            set_error(out, true, "InvalidResponse",
                      "the worker answered 200 with a body "
                      "that is not JSON: %s",
                      ex);
        } else if (!(out->output = sb_json_dumps(body ? body : json_null(), NULL))) {
            set_error(out, true, "InternalError", "cannot encode the function's result");
        } else {
            out->kind = RES_DONE;
        }
    } else if (status == 206) {
        classify_ops(c, body, out);
    } else {
        set_error(out, true, "InvalidResponse", "unexpected HTTP %ld from the worker", status);
    }
}

/* Any other status: an error, retriable or not. body (NULL when empty or
 * not JSON) stays the caller's; an error object in it is completed in
 * place with a name and a message. */
static void classify_error(long status, const struct sbd_call *c, json_t *body,
                           struct sbd_call_result *out)
{
    if (status == 401) {
        /* the SDK rejected our signature: a configuration problem */
        set_error(out, true, "Unauthorized",
                  "the worker rejected the call's signature (HTTP 401): sysbusd's --signing-key "
                  "must be the worker's INNGEST_SIGNING_KEY, and both must run signed (or both "
                  "in dev mode)");
        return;
    }
    bool retriable;
    if (c->no_retry >= 0)
        retriable = c->no_retry == 0;
    else
        retriable = status >= 500 || status == 401 || status == 403 || status == 404 ||
                    status == 408 || status == 429;
    out->kind = RES_ERROR;
    out->retriable = retriable;
    if (json_is_object(body) && (sb_json_str(body, "message") || sb_json_str(body, "error"))) {
        const char *m = sb_json_str(body, "message");
        if (!m)
            m = sb_json_str(body, "error");
        if (!json_object_get(body, "name"))
            json_object_set_new(body, "name", json_string("Error"));
        if (!json_object_get(body, "message"))
            json_object_set_new(body, "message", json_string(m));
        out->error = sb_json_dumps(body, NULL);
        char msg[600];
        snprintf(msg, sizeof msg, "HTTP %ld: %s", status, m);
        out->message = strdup(msg);
    } else {
        char ex[160];
        excerpt(&c->resp, ex, sizeof ex);
        char msg[300];
        snprintf(msg, sizeof msg, "the worker answered HTTP %ld%s%s", status, ex[0] ? ": " : "",
                 ex);
        out->message = strdup(msg);
        out->error = outcome_error_json("Error", msg);
    }
}

void outcome_parse(CURLcode code, bool timed_out_after_send, long status, struct sbd_call *c,
                   struct sbd_call_result *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_ms = -1;
    out->status = (int)status;
    out->req_version = c->req_version;
    if (code != CURLE_OK) {
        classify_no_response(code, timed_out_after_send, c, out);
        return;
    }
    if (status == 502 || status == 503 || status == 504) {
        out->kind = RES_TRANSPORT;
        char msg[100];
        snprintf(msg, sizeof msg, "worker unavailable (HTTP %ld)", status);
        out->message = strdup(msg);
        return;
    }
    if (c->retry_after[0])
        out->retry_after_ms = sbd_retry_after_ms(c->retry_after, sb_now_ms());
    struct sb_err perr = { 0 };
    json_t *body = c->resp.len ? sb_json_parse_input(c->resp.data, c->resp.len, 0, &perr) : NULL;
    if (!body && perr.code == SB_ETOOBIG) {
        /* the same code would answer the same again: not retriable */
        set_error(out, false, "ResponseTooDeep", "the worker's response (HTTP %ld) is refused: %s",
                  status, perr.msg);
        return;
    }
    if (status >= 200 && status < 300)
        classify_success(status, c, body, out);
    else
        classify_error(status, c, body, out);
    json_decref(body);
}
