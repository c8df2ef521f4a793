/* api.c - the CLI's requests: to sysbusd's REST API (bearer = the signing
 * key) and plain GETs to workers, through the one HTTP client wrapper, each
 * with a timeout; failures become stable error codes with a fix. */
#include "cli.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int do_request(const char *method, const char *url, const char *auth, const char *body,
                      long timeout_ms, struct api_res *r)
{
    memset(r, 0, sizeof *r);
    const char *headers[] = { "Content-Type: application/json", auth, NULL };
    struct sb_httpc_req req = { .method = method,
                                .url = url,
                                .headers = headers,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .connect_timeout_ms = timeout_ms,
                                .timeout_ms = timeout_ms };
    struct sb_httpc_resp resp = { 0 };
    struct sb_err err = { 0 };
    int rc = sb_httpc_do(&req, &resp, &err);
    r->ms = resp.total_ms;
    if (rc != 0) {
        r->code = rc == SB_ETIMEOUT ? "TIMEOUT" : "SERVER_UNREACHABLE";
        snprintf(r->message, sizeof r->message, "%.390s", err.msg); /* names the URL */
        sb_httpc_resp_free(&resp);
        return -1;
    }
    r->status = resp.status;
    const char *date = sb_httpc_resp_header(&resp, "Date");
    if (!date || sb_time_parse_http(date, &r->date_ms) != 0)
        r->date_ms = 0;
    r->json = sb_json_parse_ints(resp.body.data ? resp.body.data : "", resp.body.len, NULL);
    if (r->status >= 200 && r->status < 300) {
        sb_httpc_resp_free(&resp);
        return 0;
    }
    const char *msg = r->json ? sb_json_str(r->json, "error") : NULL;
    char shown[1024]; /* `sysbus send` posts to /e/<key>: never print the key */
    sb_redact_path(url, shown, sizeof shown);
    snprintf(r->message, sizeof r->message, "%s %.150s: HTTP %ld%s%.200s", method, shown,
             r->status, msg ? ": " : "", msg ? msg : "");
    r->code = r->status == 401 || r->status == 403 ? "UNAUTHORIZED"
              : r->status == 404                   ? "NOT_FOUND"
              : r->status == 409                   ? "CONFLICT"
              : r->status < 500                    ? "BAD_REQUEST"
                                                   : "SERVER_ERROR";
    sb_httpc_resp_free(&resp);
    return -1;
}

int cli_api(struct cli *c, const char *method, const char *path, const char *body,
            struct api_res *r)
{
    char url[2048], auth[400] = "";
    snprintf(url, sizeof url, "%s%s", c->url, path);
    if (c->key && *c->key)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
    return do_request(method, url, auth[0] ? auth : NULL, body, c->timeout_ms, r);
}

int cli_probe(const char *url, long timeout_ms, struct api_res *r)
{
    int rc = do_request("GET", url, NULL, NULL, timeout_ms, r);
    if (rc && r->status == 0)
        r->code = "WORKER_UNREACHABLE";
    return rc;
}

void api_res_free(struct api_res *r)
{
    json_decref(r->json);
    r->json = NULL;
}

int cli_fail_api(struct cli *c, struct api_res *r)
{
    const char *code = r->code ? r->code : "SERVER_ERROR";
    const char *fix = "see the error message";
    if (strcmp(code, "SERVER_UNREACHABLE") == 0 || strcmp(code, "TIMEOUT") == 0)
        fix = "start sysbusd, or point --url / SYSBUS_URL at it";
    else if (strcmp(code, "UNAUTHORIZED") == 0)
        fix = "pass the server's signing key in SYSBUS_SIGNING_KEY (or --signing-key)";
    else if (strcmp(code, "NOT_FOUND") == 0)
        fix = "check the id (list them with: sysbus runs / sysbus events / sysbus apps)";
    else if (strcmp(code, "SERVER_ERROR") == 0)
        fix = "look at sysbusd's log; sysbus status shows what is down";
    int rc = cli_fail(c, code, fix, "%s", r->message);
    api_res_free(r);
    return rc;
}

int64_t cli_fn_retries(const json_t *fn)
{
    int64_t n = 4;
    const json_t *v = sb_json_path(json_object_get(fn, "config"), "steps.step.retries.attempts");
    return v && sb_json_as_int(v, &n) ? n : 4;
}

void cli_query(char *path, size_t pathsz, const char *name, const char *value)
{
    if (!value)
        return;
    size_t n = strlen(path);
    n += (size_t)snprintf(path + n, n < pathsz ? pathsz - n : 0,
                          "%c%s=", strchr(path, '?') ? '&' : '?', name);
    for (const unsigned char *p = (const unsigned char *)value; *p && n + 4 < pathsz; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            path[n++] = (char)*p;
        else
            n += (size_t)snprintf(path + n, pathsz - n, "%%%02X", *p);
    }
    path[n < pathsz ? n : pathsz - 1] = '\0';
}

int cli_opt(int argc, char **argv, int *i, const char *name, const char **out)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[++*i];
    return 1;
}

long cli_num(const char *s, long max)
{
    char *end;
    long n = s ? strtol(s, &end, 10) : -1;
    if (!s || *end || n < 1 || n > max)
        return -1;
    return n;
}
