/* httpd.c - libmicrohttpd glue: routing, bounded bodies, suspend/resume,
 * and the defences against hostile clients (a connection cap per peer
 * address, request framing checks, answers before the body when the headers
 * already decide, rate-limited MHD log lines; the deadlines per connection
 * are in httpd_conn.c). See docs/internals/http.md.
 *
 * Threads: MHD's pool threads run the access handler; sb_reply_* may run on
 * any thread. A request moves NEW -> HANDLING -> (READY | SUSPENDED -> READY)
 * -> QUEUED; transitions happen under the request's lock, so a reply from
 * another thread either finds the request still in its handler (the handler's
 * caller then queues it) or suspended (it resumes the connection, and MHD
 * calls the access handler again, which queues it). The watchdog thread
 * reports stuck requests and expires connections (httpd_conn.h). */
#include "httpd.h"
#include "httpd_conn.h"
#include "httpd_framing.h"
#include "buf.h"
#include "clock.h"
#include "json.h"
#include "log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 4
#define MAX_HEADERS 8
#define CONN_LIMIT 4096 /* connections at once, all peers */
#define PEER_CONNS_DEFAULT 256
#define HEADER_TIMEOUT_MS_DEFAULT 30000
#define BODY_TIMEOUT_MS_DEFAULT 60000
#define LOG_PATH_MAX 160 /* a logged path is cut here */

enum req_state { REQ_NEW, REQ_HANDLING, REQ_SUSPEND_WANTED, REQ_SUSPENDED, REQ_READY, REQ_QUEUED };

struct sb_httpd {
    struct MHD_Daemon *mhd;
    struct sb_httpd_config cfg;
    int port;
    pthread_mutex_t wlock;  /* guards the watch list */
    struct sb_req *watched; /* suspended requests, not yet sent */
    int64_t nwatched;
    pthread_t watchdog;
    bool watchdog_started;
    int stopping;              /* atomic: the watchdog ends */
    int64_t tick_ms;           /* watchdog period */
    struct sb_conns conns;     /* deadlines per connection */
    struct sb_log_limit limit; /* MHD's lines and our own per-client lines */
    /* While MHD_start_daemon runs, its messages are kept here (guarded by
     * limit.lock) for the one error that sb_httpd_start returns. */
    bool starting;
    char start_msg[512];
};

#define STUCK_SUSPENDED_MS (11 * 60 * 1000)
#define STUCK_READY_MS 2000

struct sb_req {
    struct sb_httpd *d;
    struct MHD_Connection *conn;
    pthread_mutex_t lock; /* guards state (a reply may come from any thread) */
    const struct sb_route *route;
    const char *method; /* MHD-owned, valid for the request */
    char *path;
    char *params[MAX_PARAMS];
    struct sb_buf body;
    int early_status; /* 400/404/405/413 decided before the handler */
    char early_msg[160];
    bool body_done; /* the final access call has come */
    char allowed[64];
    enum req_state state;
    int status;
    char *resp;
    size_t resp_len;
    const char *ctype;
    char *hdr_name[MAX_HEADERS], *hdr_value[MAX_HEADERS];
    int nhdr;
    void *user;
    void (*user_free)(void *);
    char peer[64];
    /* watch list (d->wlock) */
    struct sb_req *wprev, *wnext;
    bool on_watch, reported;
    int64_t suspended_at, ready_at; /* mono ms; atomic */
};

static void watch_add(struct sb_req *r)
{
    struct sb_httpd *d = r->d;
    __atomic_store_n(&r->suspended_at, sb_mono_ms(), __ATOMIC_RELAXED);
    pthread_mutex_lock(&d->wlock);
    r->wprev = NULL;
    r->wnext = d->watched;
    if (d->watched)
        d->watched->wprev = r;
    d->watched = r;
    r->on_watch = true;
    d->nwatched++;
    pthread_mutex_unlock(&d->wlock);
}

static void watch_remove(struct sb_req *r)
{
    struct sb_httpd *d = r->d;
    pthread_mutex_lock(&d->wlock);
    if (r->on_watch) {
        if (r->wprev)
            r->wprev->wnext = r->wnext;
        else
            d->watched = r->wnext;
        if (r->wnext)
            r->wnext->wprev = r->wprev;
        r->on_watch = false;
        d->nwatched--;
    }
    pthread_mutex_unlock(&d->wlock);
}

static void report_stuck(struct sb_httpd *d, int64_t now)
{
    pthread_mutex_lock(&d->wlock);
    for (struct sb_req *r = d->watched; r; r = r->wnext) {
        if (r->reported)
            continue;
        int64_t susp = __atomic_load_n(&r->suspended_at, __ATOMIC_RELAXED);
        int64_t ready = __atomic_load_n(&r->ready_at, __ATOMIC_RELAXED);
        char path[LOG_PATH_MAX];
        if (ready && now - ready > STUCK_READY_MS) {
            r->reported = true;
            SB_LOG(SB_ERROR, "http_reply_not_sent",
                   "%s %s was answered %lld ms ago but its response has not been sent", r->method,
                   sb_redact_path(r->path, path, sizeof path), (long long)(now - ready));
        } else if (!ready && now - susp > STUCK_SUSPENDED_MS) {
            r->reported = true;
            SB_LOG(SB_ERROR, "http_stuck_suspended", "%s %s has waited %lld s for its answer",
                   r->method, sb_redact_path(r->path, path, sizeof path),
                   (long long)((now - susp) / 1000));
        }
    }
    pthread_mutex_unlock(&d->wlock);
}

/* Connections shut down for their deadlines, counted between the log lines
 * that report them (the watchdog's own; at most one line a second each). */
struct expired_tally {
    unsigned headers, body;
    char method[16], path[LOG_PATH_MAX]; /* the last body one */
};

static void report_expired(struct sb_httpd *d, int64_t now, const struct sb_conns_expired *e,
                           struct expired_tally *t)
{
    static const char ev_headers[] = "http_header_timeout", ev_body[] = "http_body_timeout";
    uint64_t dropped;
    t->headers += e->headers;
    t->body += e->body;
    if (e->body) {
        memcpy(t->method, e->method, sizeof t->method);
        snprintf(t->path, sizeof t->path, "%s", e->path);
    }
    if (t->headers && sb_log_limit_pass(&d->limit, ev_headers, now, &dropped)) {
        SB_LOGK(SB_WARN, ev_headers,
                ((struct sb_lf[]){ LF_I("connections", t->headers),
                                   LF_I("timeout_ms", d->conns.header_ms) }),
                "closed %u connection(s) that sent no complete request headers within %lld ms",
                t->headers, (long long)d->conns.header_ms);
        t->headers = 0;
    }
    if (t->body && sb_log_limit_pass(&d->limit, ev_body, now, &dropped)) {
        SB_LOGK(SB_WARN, ev_body,
                ((struct sb_lf[]){ LF_I("connections", t->body), LF_S("method", t->method),
                                   LF_S("path", t->path), LF_I("timeout_ms", d->conns.body_ms) }),
                "closed %u connection(s) whose request body was not complete within %lld ms "
                "(the last: %s %s)",
                t->body, (long long)d->conns.body_ms, t->method, t->path);
        t->body = 0;
    }
    /* Idle kept-alive connections closing is ordinary: debug only. */
    if (e->idle)
        SB_LOG(SB_DEBUG, "http_idle_closed",
               "closed %u kept-alive connection(s) with no new request within %lld ms", e->idle,
               (long long)d->conns.header_ms);
}

/* The watchdog: every tick, reports stuck requests and ends connections
 * past their deadlines; in between, drains lingering connections. */
static void *watchdog_main(void *arg)
{
    struct sb_httpd *d = arg;
    struct expired_tally tally = { 0 };
    int64_t next = sb_mono_ms() + d->tick_ms;
    while (!__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE)) {
        int64_t now = sb_mono_ms();
        if (now < next) {
            sb_conns_wait(&d->conns, next - now);
            continue;
        }
        next = now + d->tick_ms;
        report_stuck(d, now);
        struct sb_conns_expired e;
        sb_conns_expire(&d->conns, now, &e);
        report_expired(d, now, &e, &tally);
    }
    return NULL;
}

int64_t sb_httpd_suspended(struct sb_httpd *d)
{
    pthread_mutex_lock(&d->wlock);
    int64_t n = d->nwatched;
    pthread_mutex_unlock(&d->wlock);
    return n;
}

/* ---- routing ---- */

/* Matches path against pattern; fills params (malloc'd) on success. */
static int route_match(const char *pattern, const char *path, char **params)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(s, '/');
            size_t n = end ? (size_t)(end - s) : strlen(s);
            if (n == 0 || np >= MAX_PARAMS)
                goto fail;
            params[np++] = strndup(s, n);
            p += 2;
            s += n;
            continue;
        }
        if (*p != *s)
            goto fail;
        p++, s++;
    }
    /* tolerate one trailing slash on the request */
    if (*p == '\0' && (*s == '\0' || (s[0] == '/' && s[1] == '\0')))
        return 1;
fail:
    for (int i = 0; i < np; i++) {
        free(params[i]);
        params[i] = NULL;
    }
    return 0;
}

static void find_route(struct sb_httpd *d, struct sb_req *r)
{
    size_t used = 0;
    for (size_t i = 0; i < d->cfg.nroutes; i++) {
        const struct sb_route *rt = &d->cfg.routes[i];
        char *params[MAX_PARAMS] = { 0 };
        if (!route_match(rt->pattern, r->path, params))
            continue;
        if (strcmp(rt->method, r->method) == 0 && !r->route) {
            r->route = rt;
            memcpy(r->params, params, sizeof params);
            continue;
        }
        for (int j = 0; j < MAX_PARAMS; j++)
            free(params[j]);
        if (!strstr(r->allowed, rt->method) && used + strlen(rt->method) + 3 < sizeof r->allowed)
            used += (size_t)snprintf(r->allowed + used, sizeof r->allowed - used, "%s%s",
                                     used ? ", " : "", rt->method);
    }
    if (!r->route)
        r->early_status = r->allowed[0] ? 405 : 404;
}

/* ---- replies ---- */

static enum MHD_Result queue_reply(struct sb_req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->resp = NULL; /* MHD owns it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->ctype ? r->ctype : "application/json");
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

void sb_reply_header(struct sb_req *r, const char *name, const char *value)
{
    if (r->nhdr >= MAX_HEADERS)
        return;
    r->hdr_name[r->nhdr] = strdup(name);
    r->hdr_value[r->nhdr] = strdup(value);
    if (r->hdr_name[r->nhdr] && r->hdr_value[r->nhdr])
        r->nhdr++;
}

/* Takes status and body (stolen) as the reply of r, unless it has one
 * already: a second reply is refused, logged and freed, and counts nowhere.
 * errmsg (5xx errors) is logged as the request's one http_error line. Both
 * happen under r's lock, before the reply can reach MHD: once a suspended
 * request is resumed, MHD's thread may end it (and free r) at any time. */
static void reply_take(struct sb_req *r, int status, const char *ctype, char *body, size_t len,
                       const char *errmsg)
{
    struct sb_httpd *d = r->d;
    char path[LOG_PATH_MAX];
    pthread_mutex_lock(&r->lock);
    if (r->state == REQ_READY || r->state == REQ_QUEUED) {
        SB_LOGK(SB_ERROR, "http_double_reply",
                ((struct sb_lf[]){ LF_S("method", r->method),
                                   LF_S("path", sb_redact_path(r->path, path, sizeof path)),
                                   LF_I("status", status), LF_I("first_status", r->status) }),
                "second reply (%d) to %s %s ignored", status, r->method, path);
        pthread_mutex_unlock(&r->lock);
        free(body);
        return;
    }
    if (d->cfg.on_reply)
        d->cfg.on_reply(r, status);
    if (errmsg) {
        char msg[1024];
        SB_LOGK(SB_WARN, "http_error",
                ((struct sb_lf[]){ LF_S("method", r->method),
                                   LF_S("path", sb_redact_path(r->path, path, sizeof path)),
                                   LF_I("status", status) }),
                "%s", sb_redact_path(errmsg, msg, sizeof msg));
    }
    r->status = status;
    r->resp = body;
    r->resp_len = body ? len : 0;
    r->ctype = ctype;
    enum req_state prev = r->state;
    r->state = REQ_READY;
    if (prev == REQ_SUSPENDED) {
        __atomic_store_n(&r->ready_at, sb_mono_ms(), __ATOMIC_RELAXED);
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->lock);
}

void sb_reply_raw(struct sb_req *r, int status, const char *ctype, char *body, size_t len)
{
    reply_take(r, status, ctype, body, len, NULL);
}

static void reply_json_logged(struct sb_req *r, int status, json_t *body, const char *errmsg)
{
    size_t len = 0;
    char *text = sb_json_dumps(body ? body : json_null(), &len);
    json_decref(body);
    if (!text) {
        text = strdup("{\"error\":\"response could not be encoded\",\"status\":500}");
        len = text ? strlen(text) : 0;
        status = 500;
        errmsg = "response could not be encoded";
    }
    reply_take(r, status, "application/json", text, len, errmsg);
}

void sb_reply_json(struct sb_req *r, int status, json_t *body)
{
    reply_json_logged(r, status, body, NULL);
}

static json_t *error_body(int status, const char *code, const char *msg)
{
    json_t *o = json_pack("{s:s, s:i}", "error", msg, "status", status);
    if (o && code)
        json_object_set_new(o, "code", json_string(code));
    return o;
}

void sb_reply_error(struct sb_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_json_logged(r, status, error_body(status, code, msg), status >= 500 ? msg : NULL);
}

void sb_req_suspend(struct sb_req *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->state == REQ_HANDLING)
        r->state = REQ_SUSPEND_WANTED;
    pthread_mutex_unlock(&r->lock);
}

/* ---- MHD callbacks ---- */

static void early_reply(struct sb_req *r)
{
    struct sb_httpd *d = r->d;
    if (r->early_status == 413) {
        sb_reply_error(r, 413, "TOO_LARGE", "request body exceeds %zu bytes", r->body.max);
    } else if (r->early_status == 400) {
        sb_reply_error(r, 400, "BAD_FRAMING", "%s", r->early_msg);
    } else if (d->cfg.fallback) {
        d->cfg.fallback(r, r->early_status == 405 ? r->allowed : NULL);
    } else if (r->early_status == 405) {
        sb_reply_header(r, "Allow", r->allowed);
        sb_reply_error(r, 405, "METHOD_NOT_ALLOWED", "method %s not allowed on %s", r->method,
                       r->path);
    } else {
        sb_reply_error(r, 404, "NOT_FOUND", "no such endpoint: %s %s", r->method, r->path);
    }
}

/* Hands r's reply to MHD (state READY), suspends it (SUSPEND_WANTED), or,
 * when the handler did neither, answers 500 for it. After the handler (or an
 * early answer) on MHD's thread. */
static enum MHD_Result after_handler(struct sb_req *r)
{
    char path[LOG_PATH_MAX];
    pthread_mutex_lock(&r->lock);
    if (r->state == REQ_READY) {
        r->state = REQ_QUEUED;
        pthread_mutex_unlock(&r->lock);
        return queue_reply(r);
    }
    if (r->state == REQ_SUSPEND_WANTED) {
        r->state = REQ_SUSPENDED;
        watch_add(r);
        MHD_suspend_connection(r->conn);
        pthread_mutex_unlock(&r->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&r->lock);
    /* The handler neither replied nor suspended: a bug, answer anyway (this
     * line is the request's one log line: the 500 is not logged again). */
    SB_LOG(SB_ERROR, "http_no_reply", "handler for %s %s did not reply", r->method,
           sb_redact_path(r->path, path, sizeof path));
    reply_json_logged(r, 500, error_body(500, "INTERNAL", "internal error: no reply"), NULL);
    pthread_mutex_lock(&r->lock);
    if (r->state == REQ_READY) {
        r->state = REQ_QUEUED;
        pthread_mutex_unlock(&r->lock);
        return queue_reply(r);
    }
    pthread_mutex_unlock(&r->lock);
    return MHD_YES;
}

/* Whether the request has a body still to come (MHD has not read it yet). */
static bool body_pending(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
           (cl && strtoull(cl, NULL, 10) > 0);
}

/* The first access call: the headers are in, no byte of the body is read.
 * What the headers alone decide (bad framing 400, a declared length over
 * the limit 413, and 404/405 when a body would follow) is answered now:
 * MHD then reads no body and closes the connection after the answer, which
 * lingers so that a client busy sending its body still reads the answer. */
static enum MHD_Result on_headers(struct sb_httpd *d, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
    struct sb_req *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->d = d;
    r->conn = conn;
    pthread_mutex_init(&r->lock, NULL);
    r->method = method;
    r->path = strdup(url);
    r->state = REQ_NEW;
    if (!r->path) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        return MHD_NO;
    }
    *con_cls = r;
    find_route(d, r);
    r->body.max = (r->route && r->route->body_max) ? r->route->body_max : d->cfg.body_max;
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int framing = sb_httpd_check_framing(conn, r->early_msg, sizeof r->early_msg);
    if (framing)
        r->early_status = framing;
    else if (cl && strtoull(cl, NULL, 10) > r->body.max && r->early_status != 404 &&
             r->early_status != 405)
        r->early_status = 413;
    if (!r->early_status || !(framing || body_pending(conn))) {
        sb_conns_body(&d->conns, conn, r->method, r->path);
        return MHD_YES;
    }
    sb_conns_busy(&d->conns, conn);
    sb_conns_linger(&d->conns, conn);
    pthread_mutex_lock(&r->lock);
    r->state = REQ_HANDLING;
    pthread_mutex_unlock(&r->lock);
    early_reply(r);
    return after_handler(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct sb_httpd *d = cls;
    (void)version;
    struct sb_req *r = *con_cls;
    if (!r)
        return on_headers(d, conn, url, method, con_cls);
    if (*upload_size > 0) {
        if (!r->early_status && sb_buf_append(&r->body, upload, *upload_size) != 0) {
            r->early_status = 413;
            sb_buf_free(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->body_done) {
        r->body_done = true;
        sb_conns_busy(&d->conns, conn);
    }

    pthread_mutex_lock(&r->lock);
    enum req_state st = r->state;
    if (st == REQ_READY)
        r->state = REQ_QUEUED;
    else if (st == REQ_NEW)
        r->state = REQ_HANDLING;
    pthread_mutex_unlock(&r->lock);
    if (st == REQ_READY) {
        watch_remove(r);
        return queue_reply(r);
    }
    if (st != REQ_NEW) {
        char path[LOG_PATH_MAX];
        SB_LOG(SB_ERROR, "http_resumed_without_reply", "%s %s was resumed before its reply",
               r->method, sb_redact_path(r->path, path, sizeof path));
        return MHD_YES;
    }

    sb_buf_cstr(&r->body); /* NUL-terminate for handlers */
    if (r->early_status)
        early_reply(r);
    else if (!d->cfg.authorize || d->cfg.authorize(r, r->route) == 0)
        r->route->handler(r);
    return after_handler(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct sb_httpd *d = cls;
    (void)toe;
    /* first: the connection's entry borrows the request's path */
    sb_conns_request_done(&d->conns, conn);
    struct sb_req *r = *con_cls;
    if (!r)
        return;
    watch_remove(r);
    if (r->user_free)
        r->user_free(r->user);
    for (int i = 0; i < MAX_PARAMS; i++)
        free(r->params[i]);
    for (int i = 0; i < r->nhdr; i++) {
        free(r->hdr_name[i]);
        free(r->hdr_value[i]);
    }
    free(r->resp);
    free(r->path);
    sb_buf_free(&r->body);
    pthread_mutex_destroy(&r->lock);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd only logs problems, but a client can cause most of them at
 * will (one line for each connection over a limit, or closed with its
 * request unfinished): at most one line a second per message (its format
 * string), saying how many were left out since. A message may quote a
 * request's path, hence the redaction. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct sb_httpd *d = cls;
    char raw[512], msg[512];
    vsnprintf(raw, sizeof raw, fmt, ap);
    size_t n = strlen(raw);
    while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        raw[--n] = '\0';
    sb_redact_path(raw, msg, sizeof msg);
    pthread_mutex_lock(&d->limit.lock);
    bool starting = d->starting;
    if (starting)
        snprintf(d->start_msg, sizeof d->start_msg, "%s", msg);
    pthread_mutex_unlock(&d->limit.lock);
    if (starting)
        return; /* said once, in sb_httpd_start's error */
    uint64_t dropped = 0;
    if (!sb_log_limit_pass(&d->limit, fmt, sb_mono_ms(), &dropped))
        return;
    if (dropped)
        SB_LOGK(SB_WARN, "mhd", ((struct sb_lf[]){ LF_I("suppressed", dropped) }),
                "%s (and %llu more like it since the last one, not logged)", msg,
                (unsigned long long)dropped);
    else
        SB_LOG(SB_WARN, "mhd", "%s", msg);
}

static unsigned or_default(unsigned v, unsigned def)
{
    return v ? v : def;
}

static void httpd_free(struct sb_httpd *d)
{
    sb_conns_destroy(&d->conns);
    sb_log_limit_destroy(&d->limit);
    pthread_mutex_destroy(&d->wlock);
    free(d);
}

int sb_httpd_start(const struct sb_httpd_config *cfg, struct sb_httpd **out, struct sb_err *err)
{
    struct sb_httpd *d = calloc(1, sizeof *d);
    if (!d)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    d->cfg = *cfg;
    if (d->cfg.threads < 1)
        d->cfg.threads = 1;
    pthread_mutex_init(&d->wlock, NULL);
    unsigned header_ms = or_default(cfg->header_timeout_ms, HEADER_TIMEOUT_MS_DEFAULT);
    unsigned body_ms = or_default(cfg->body_timeout_ms, BODY_TIMEOUT_MS_DEFAULT);
    if (sb_conns_init(&d->conns, header_ms, body_ms, err) != 0) {
        pthread_mutex_destroy(&d->wlock);
        free(d);
        return SB_EIO;
    }
    sb_log_limit_init(&d->limit, 1000);
    /* a quarter of the shortest deadline, so none is overrun by much */
    unsigned shortest = header_ms < body_ms ? header_ms : body_ms;
    d->tick_ms = shortest / 4 < 50 ? 50 : shortest / 4 > 1000 ? 1000 : shortest / 4;

    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, portstr, &hints, &ai);
    if (gai != 0) {
        httpd_free(d);
        return sb_err_set(err, SB_ECONFIG, "cannot resolve listen address '%s': %s", cfg->host,
                          gai_strerror(gai));
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* a pool of one thread is no pool (MHD warns if asked for one) */
    struct MHD_OptionItem pool[] = {
        { d->cfg.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
          (intptr_t)d->cfg.threads, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    d->starting = true;
    /* The port argument only names the port in MHD's messages (the address
     * comes from MHD_OPTION_SOCK_ADDR); with 0, a taken port was reported as
     * "port 0". */
    d->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_access, d, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, d, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_ARRAY, pool,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_NOTIFY_CONNECTION, sb_conns_notify,
        &d->conns, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->idle_timeout_s ? cfg->idle_timeout_s : 120), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        or_default(cfg->max_conns_per_peer, PEER_CONNS_DEFAULT), MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_END);
    freeaddrinfo(ai);
    pthread_mutex_lock(&d->limit.lock);
    d->starting = false;
    pthread_mutex_unlock(&d->limit.lock);
    if (!d->mhd) {
        int rc =
            sb_err_set(err, SB_EIO, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
                       d->start_msg[0] ? d->start_msg : "address in use or not available here");
        httpd_free(d);
        return rc;
    }
    if (d->start_msg[0]) /* a warning from a start that went through */
        SB_LOG(SB_WARN, "mhd", "%s", d->start_msg);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    d->port = info ? info->port : cfg->port;
    if (pthread_create(&d->watchdog, NULL, watchdog_main, d) != 0) {
        MHD_stop_daemon(d->mhd);
        httpd_free(d);
        return sb_err_errno(err, SB_EIO, "cannot start the http watchdog thread");
    }
    d->watchdog_started = true;
    *out = d;
    return 0;
}

int sb_httpd_port(const struct sb_httpd *d)
{
    return d->port;
}

void sb_httpd_stop(struct sb_httpd *d)
{
    if (!d)
        return;
    __atomic_store_n(&d->stopping, 1, __ATOMIC_RELEASE);
    sb_conns_wake(&d->conns);
    if (d->watchdog_started)
        pthread_join(d->watchdog, NULL);
    MHD_stop_daemon(d->mhd);
    httpd_free(d);
}

/* ---- accessors ---- */

const char *sb_req_method(const struct sb_req *r)
{
    return r->method;
}
const char *sb_req_path(const struct sb_req *r)
{
    return r->path;
}
const struct sb_route *sb_req_route(const struct sb_req *r)
{
    return r->route;
}
void *sb_req_app(const struct sb_req *r)
{
    return r->d->cfg.app;
}
void *sb_req_user(const struct sb_req *r)
{
    return r->user;
}
const char *sb_req_peer(const struct sb_req *r)
{
    /* formatted on first use: most requests never ask */
    struct sb_req *m = (struct sb_req *)r;
    if (!m->peer[0]) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(m->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, m->peer,
                          sizeof m->peer);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, m->peer,
                          sizeof m->peer);
        }
    }
    return m->peer;
}

const char *sb_req_param(const struct sb_req *r, int i)
{
    return (i >= 0 && i < MAX_PARAMS) ? r->params[i] : NULL;
}

const char *sb_req_query(const struct sb_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *sb_req_header(const struct sb_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *sb_req_body(const struct sb_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

void sb_req_set_user(struct sb_req *r, void *user, void (*free_fn)(void *))
{
    r->user = user;
    r->user_free = free_fn;
}
