/* httpd.h - the HTTP server glue over libmicrohttpd, shared by sysbusd, the
 * worker SDK and talon.
 *
 * Routes are data: a table of (method, path pattern, handler, auth tag, body
 * limit). "{}" in a pattern captures one path segment. A request's body is
 * read whole (up to its route's limit, else 413) before the handler runs.
 * What the headers alone decide is answered before any body byte is read:
 * a declared Content-Length over the limit (413), ambiguous framing (400:
 * Content-Length with Transfer-Encoding, either one twice, a coding other
 * than chunked), an unknown route (404/405) when a body would follow; the
 * connection is closed after such an answer.
 *
 * Against hostile clients (docs/internals/http.md): at most
 * max_conns_per_peer connections per client address (4096 in all); a
 * request's headers must be complete within header_timeout_ms of the
 * connection being ready for it (accepted, or the previous response sent)
 * and its body within body_timeout_ms of the headers, however slowly the
 * bytes trickle; libmicrohttpd's log lines are rate-limited per message.
 *
 * Every request gets exactly one reply through sb_reply_*. A handler may
 * reply at once, or call sb_req_suspend() and reply later from any thread
 * (the connection is suspended meanwhile and holds no thread): that is how
 * an event is acknowledged only after its group commit, and how long-polls
 * wait. The request and its memory stay valid until the reply is sent. */
#ifndef SB_HTTPD_H
#define SB_HTTPD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sb_httpd;
struct sb_req;

typedef void (*sb_route_fn)(struct sb_req *req);

struct sb_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/runs/{}" */
    sb_route_fn handler;
    int auth;        /* meaning defined by the application's authorize() */
    size_t body_max; /* 0 = the daemon default */
};

struct sb_httpd_config {
    const char *host;            /* numeric address or name, e.g. "127.0.0.1" */
    int port;                    /* 0 = pick a free port (see sb_httpd_port) */
    int threads;                 /* MHD thread pool size (>= 1) */
    size_t body_max;             /* default request body limit */
    unsigned idle_timeout_s;     /* MHD's timeout, reset by every byte */
    unsigned max_conns_per_peer; /* per client address; 0 = 1024 */
    unsigned header_timeout_ms;  /* ready -> headers complete (0 = 30 s); also
                                    how long a kept-alive connection idles */
    unsigned body_timeout_ms;    /* headers -> whole body (0 = 60 s) */
    const struct sb_route *routes;
    size_t nroutes;
    /* Called before the handler. Returns 0 to proceed; otherwise it must have
     * replied (e.g. 401). May be NULL. */
    int (*authorize)(struct sb_req *req, const struct sb_route *route);
    /* For requests that match no route (may be NULL: plain 404/405). It must
     * reply. allowed is the Allow header value when the path exists. When a
     * body was announced, it runs before the body is read (and sees none). */
    void (*fallback)(struct sb_req *req, const char *allowed);
    /* Called once per request with the status of its reply (metrics), not
     * for a refused second reply; runs with the request locked, so it must
     * not reply. May be NULL. */
    void (*on_reply)(struct sb_req *req, int status);
    void *app; /* application context, sb_req_app() */
};

/* Returns 0, SB_ECONFIG (the host does not resolve) or SB_EIO (cannot
 * listen: err says why, naming the address and port). */
int sb_httpd_start(const struct sb_httpd_config *cfg, struct sb_httpd **out, struct sb_err *err);
int sb_httpd_port(const struct sb_httpd *d);
/* Requests suspended now (waiting for a reply from another thread). */
int64_t sb_httpd_suspended(struct sb_httpd *d);
/* Stops accepting, closes connections, joins threads. Suspended requests
 * must have been answered first. */
void sb_httpd_stop(struct sb_httpd *d);

/* ---- request accessors (valid until the reply is sent) ---- */
const char *sb_req_method(const struct sb_req *r);
const char *sb_req_path(const struct sb_req *r);
const char *sb_req_param(const struct sb_req *r, int i); /* i-th "{}" capture */
const char *sb_req_query(const struct sb_req *r, const char *key);
const char *sb_req_header(const struct sb_req *r, const char *name);
const char *sb_req_body(const struct sb_req *r, size_t *len);
const struct sb_route *sb_req_route(const struct sb_req *r);
void *sb_req_app(const struct sb_req *r);
/* Per-request user data, freed with free_fn when the request ends. */
void sb_req_set_user(struct sb_req *r, void *user, void (*free_fn)(void *));
void *sb_req_user(const struct sb_req *r);
/* Peer address as text ("127.0.0.1"); "" when unknown. */
const char *sb_req_peer(const struct sb_req *r);

/* ---- replies: exactly one per request, from any thread ---- */
/* Adds a response header (before the reply call). Copies both strings. */
void sb_reply_header(struct sb_req *r, const char *name, const char *value);
/* body is stolen (decref'd); NULL sends "null". */
void sb_reply_json(struct sb_req *r, int status, json_t *body);
/* body is malloc'd and stolen; ctype may be NULL (application/json). */
void sb_reply_raw(struct sb_req *r, int status, const char *ctype, char *body, size_t len);
/* {"error": <msg>, "status": status} (+ "code" when code is not NULL). A
 * 5xx is logged (http_error, path redacted) once, if it is the reply. */
void sb_reply_error(struct sb_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The handler will reply later, from any thread. */
void sb_req_suspend(struct sb_req *r);

#endif
