/* routes.c - the route table and authentication of sysbusd's API.
 * Who may call what is declared here, per route, not in the handlers. */
#include "api.h"
#include "server/store/store.h"
#include "common/crypto.h"
#include "common/json.h"
#include "server/metrics.h"
#include "server/sbd.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KB (size_t)1024

const struct sb_route sbd_routes[] = {
    { "GET", "/health", h_health, AUTH_NONE, 0 },
    { "GET", "/metrics", h_metrics, AUTH_METRICS, 0 },
    { "GET", "/dev", h_dev, AUTH_NONE, 0 },
    { "POST", "/e/{}", h_events_post, AUTH_EVENT_KEY, 0 },
    { "POST", "/fn/register", h_register, AUTH_SIGNING, 0 },
    { "POST", "/v1/checkpoint/{}/async", h_checkpoint, AUTH_SIGNING, 0 },
    { "GET", "/v0/runs/{}/batch", h_run_batch, AUTH_SIGNING, 0 },
    { "GET", "/v0/runs/{}/actions", h_run_actions, AUTH_SIGNING, 0 },
    { "GET", "/v1/apps", h_apps_list, AUTH_API, 0 },
    { "POST", "/v1/apps", h_apps_add, AUTH_API, 64 * KB },
    { "DELETE", "/v1/apps/{}", h_app_delete, AUTH_API, 0 },
    { "POST", "/v1/apps/{}/sync", h_app_sync, AUTH_API, 64 * KB },
    { "GET", "/v1/functions", h_functions_list, AUTH_API, 0 },
    { "GET", "/v1/events", h_events_list, AUTH_API, 0 },
    { "GET", "/v1/events/{}", h_event_get, AUTH_API, 0 },
    { "GET", "/v1/events/{}/runs", h_event_runs, AUTH_API, 0 },
    { "GET", "/v1/runs", h_runs_list, AUTH_API, 0 },
    { "GET", "/v1/runs/{}", h_run_get, AUTH_API, 0 },
    { "DELETE", "/v1/runs/{}", h_run_cancel, AUTH_API, 0 },
    { "GET", "/v1/runs/{}/steps", h_run_steps, AUTH_API, 0 },
    { "POST", "/v1/cancellations", h_cancellations_post, AUTH_API, 64 * KB },
    { "GET", "/v1/cancellations", h_cancellations_list, AUTH_API, 0 },
};
const size_t sbd_nroutes = sizeof sbd_routes / sizeof sbd_routes[0];

static int bearer_ok(struct sb_req *req, struct sbd *sbd)
{
    const char *auth = sb_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !sbd->has_signing_key)
        return 0;
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    /* during a rotation workers may hold the old key or the new one */
    return sb_signing_key_matches_bearer(&sbd->signing_key, tok) |
           (sbd->has_signing_key_fallback &&
            sb_signing_key_matches_bearer(&sbd->signing_key_fallback, tok));
}

static int event_key_ok(struct sb_req *req, struct sbd *sbd)
{
    const char *key = sb_req_param(req, 0);
    size_t kl = key ? strlen(key) : 0;
    int ok = 0;
    for (size_t i = 0; i < sbd->cfg.event_keys.n; i++) {
        const char *k = sbd->cfg.event_keys.v[i];
        if (strlen(k) == kl)
            ok |= sb_ct_equal(k, key, kl);
    }
    return ok;
}

int api_authorize(struct sb_req *req, const struct sb_route *route)
{
    struct sbd *sbd = sb_req_app(req);
    if (sbd->cfg.dev)
        return 0;
    switch ((enum sbd_api_auth)route->auth) {
    case AUTH_NONE: return 0;
    case AUTH_EVENT_KEY:
        if (event_key_ok(req, sbd))
            return 0;
        sb_reply_error(req, 401, "EVENT_KEY_NOT_FOUND", "Event key not found");
        return SB_EAUTH;
    case AUTH_METRICS:
        if (sbd->cfg.metrics_public)
            return 0;
        /* fall through */
    case AUTH_SIGNING:
    case AUTH_API:
        if (bearer_ok(req, sbd))
            return 0;
        sb_reply_header(req, "WWW-Authenticate", "Bearer");
        sb_reply_error(req, 401, "UNAUTHORIZED",
                       "missing or wrong bearer token: send 'Authorization: Bearer <signing "
                       "key>' (plain or hashed form)");
        return SB_EAUTH;
    }
    return 0;
}

void api_on_reply(struct sb_req *req, int status)
{
    (void)req;
    SBD_COUNT(http_requests);
    if (status >= 500)
        SBD_COUNT(http_5xx);
    else if (status >= 400)
        SBD_COUNT(http_4xx);
}

int api_query_int(struct sb_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out)
{
    const char *v = sb_req_query(req, name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || n < min || n > max) {
        sb_reply_error(req, 400, "BAD_QUERY", "query parameter '%s' must be an integer %lld..%lld",
                       name, (long long)min, (long long)max);
        return SB_EINVAL;
    }
    *out = n;
    return 0;
}

void api_store_error(struct sb_req *req, const char *what, const struct sb_err *err)
{
    if (err->code == SB_ENOTFOUND)
        sb_reply_error(req, 404, "NOT_FOUND", "no such %s", what);
    else
        sb_reply_error(req, 503, "STORE_ERROR", "cannot read %s from the store: %s", what,
                       sbd_store_err_public(err));
}

json_t *api_body_json(struct sb_req *req)
{
    size_t len;
    const char *body = sb_req_body(req, &len);
    struct sb_err err = { 0 };
    if (len == 0) {
        sb_reply_error(req, 400, "EMPTY_BODY", "request body is empty; send JSON");
        return NULL;
    }
    json_t *v = sb_json_parse_input(body, len, 0, &err);
    if (!v)
        sb_reply_error(req, 400, err.code == SB_ETOOBIG ? "TOO_DEEP" : "INVALID_JSON", "%s",
                       err.msg);
    return v;
}
