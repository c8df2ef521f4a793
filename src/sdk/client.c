/* client.c - the SDK's requests to the server: registration (once, and in
 * the background with backoff until the server answers), event sends, and
 * API reads (use_api). All through the one HTTP client wrapper. */
#include "sdk_internal.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bearer header with k's hashed form, as the official SDKs send it. */
static void auth_header_for(const struct sb_signing_key *k, char *out, size_t outsz)
{
    snprintf(out, outsz, "Authorization: Bearer %s", k->hashed);
}

void sdk_auth_header(const sysbus_app *app, char *out, size_t outsz)
{
    if (app->has_key && !app->dev)
        auth_header_for(&app->key, out, outsz);
    else
        out[0] = '\0';
}

/* One HTTP exchange with the given Authorization header ("" = none). */
static int send_once(const char *method, const char *url, const char *body, long timeout_ms,
                     const char *auth, struct sb_httpc_resp *resp, struct sb_err *err)
{
    const char *headers[] = { "Content-Type: application/json",
                              "X-Inngest-Sdk: " SDK_NAME ":v" SYSBUS_VERSION,
                              "X-Inngest-Framework: sysbus", auth[0] ? auth : NULL, NULL };
    struct sb_httpc_req req = { .method = method,
                                .url = url,
                                .headers = headers,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = timeout_ms };
    return sb_httpc_do(&req, resp, err);
}

/* One request to the server with the SDK's headers; the reply's JSON body
 * (new ref, NULL when not JSON) and status. -1 when unreachable. A 401 or
 * 403 to the key's bearer is asked again with the fallback key's, as the
 * official SDKs do during a rotation (the server may know only one).
 * Messages name the URL with the event key redacted (sb_redact_path): it
 * must not reach errbuf and the log lines made from it. */
static int server_request(sysbus_app *app, const char *method, const char *url, const char *body,
                          long timeout_ms, int *status, json_t **json, char *errbuf, size_t errlen)
{
    char shown[1024];
    sb_redact_path(url, shown, sizeof shown);
    char auth[SB_SIGKEY_MAX + 40];
    sdk_auth_header(app, auth, sizeof auth);
    struct sb_httpc_resp resp = { 0 };
    struct sb_err err = { 0 };
    *status = 0;
    *json = NULL;
    int rc = send_once(method, url, body, timeout_ms, auth, &resp, &err);
    if (rc == 0 && (resp.status == 401 || resp.status == 403) && auth[0] && app->has_fallback) {
        sb_httpc_resp_free(&resp);
        memset(&resp, 0, sizeof resp);
        auth_header_for(&app->key_fallback, auth, sizeof auth);
        rc = send_once(method, url, body, timeout_ms, auth, &resp, &err);
    }
    if (rc != 0) {
        snprintf(errbuf, errlen, "%s", err.msg);
        sb_httpc_resp_free(&resp);
        return -1;
    }
    *status = (int)resp.status;
    *json = sb_json_parse_input(resp.body.data ? resp.body.data : "", resp.body.len,
                                SB_JSON_INTS | SB_JSON_EMBEDDED, NULL);
    if (*status < 200 || *status > 299) {
        const char *msg = *json ? sb_json_str(*json, "error") : NULL;
        snprintf(errbuf, errlen, "%s %s: HTTP %d: %.200s", method, shown, *status,
                 msg ? msg : (resp.body.data ? resp.body.data : ""));
    }
    sb_httpc_resp_free(&resp);
    return 0;
}

int sdk_register_once(sysbus_app *app, int *status, char *errbuf, size_t errlen)
{
    json_t *body = sdk_register_body(app);
    char *text = sb_json_dumps(body, NULL);
    json_decref(body);
    char url[600];
    snprintf(url, sizeof url, "%s/fn/register", app->base_url);
    json_t *reply = NULL;
    int rc = server_request(app, "POST", url, text, 15000, status, &reply, errbuf, errlen);
    free(text);
    json_decref(reply);
    if (rc != 0 || *status != 200)
        return -1;
    __atomic_store_n(&app->last_registered, sb_now_ms(), __ATOMIC_RELAXED);
    return 0;
}

int sysbus_register(sysbus_app *app, char *errbuf, size_t errlen)
{
    int status;
    return sdk_register_once(app, &status, errbuf, errlen);
}

int64_t sysbus_last_registration(const sysbus_app *app)
{
    return __atomic_load_n(&app->last_registered, __ATOMIC_RELAXED);
}

static void *register_main(void *arg)
{
    sysbus_app *app = arg;
    int64_t delay = 250;
    pthread_mutex_lock(&app->lock);
    while (!app->stopping) {
        pthread_mutex_unlock(&app->lock);
        char err[400];
        int status;
        int rc = sdk_register_once(app, &status, err, sizeof err);
        if (rc == 0) {
            SB_LOG(SB_INFO, "registered", "registered %zu functions with %s", app->nfns,
                   app->base_url);
            pthread_mutex_lock(&app->lock);
            break;
        }
        SB_LOGK(SB_WARN, "register_failed",
                ((struct sb_lf[]){ LF_I("retry_in_ms", delay), LF_I("status", status) }),
                "registration failed (retrying): %s", err);
        pthread_mutex_lock(&app->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (delay % 1000) * 1000000;
        ts.tv_sec += delay / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!app->stopping && pthread_cond_timedwait(&app->cond, &app->lock, &ts) == 0)
            ;
        delay = delay * 2 > 30000 ? 30000 : delay * 2;
    }
    pthread_mutex_unlock(&app->lock);
    return NULL;
}

int sdk_register_thread_start(sysbus_app *app)
{
    if (pthread_create(&app->reg_thread, NULL, register_main, app) != 0)
        return -1;
    app->reg_thread_started = true;
    return 0;
}

void sdk_register_thread_stop(sysbus_app *app)
{
    pthread_mutex_lock(&app->lock);
    app->stopping = true;
    pthread_cond_broadcast(&app->cond);
    pthread_mutex_unlock(&app->lock);
    if (app->reg_thread_started)
        pthread_join(app->reg_thread, NULL);
    app->reg_thread_started = false;
}

json_t *sdk_api_get(sysbus_app *app, const char *path, char *errbuf, size_t errlen)
{
    char url[600];
    snprintf(url, sizeof url, "%s%s", app->base_url, path);
    int status;
    json_t *reply = NULL;
    if (server_request(app, "GET", url, NULL, 30000, &status, &reply, errbuf, errlen) != 0 ||
        status != 200) {
        json_decref(reply);
        return NULL;
    }
    return reply;
}

json_t *sysbus_send_events(sysbus_app *app, const json_t *events, char *errbuf, size_t errlen)
{
    return sysbus_send_events_status(app, events, NULL, errbuf, errlen);
}

json_t *sysbus_send_events_status(sysbus_app *app, const json_t *events, int *http_status,
                                  char *errbuf, size_t errlen)
{
    char url[700];
    snprintf(url, sizeof url, "%s/e/%s", app->base_url,
             app->event_key && *app->event_key ? app->event_key : "dev");
    int status = 0;
    if (http_status)
        *http_status = 0;
    char *text = sb_json_dumps(events, NULL);
    if (!text) {
        snprintf(errbuf, errlen, "events are not serializable JSON");
        return NULL;
    }
    json_t *reply = NULL;
    int rc = server_request(app, "POST", url, text, 30000, &status, &reply, errbuf, errlen);
    if (http_status)
        *http_status = status;
    free(text);
    json_t *ids = reply ? json_object_get(reply, "ids") : NULL;
    if (rc != 0 || status != 200 || !json_is_array(ids)) {
        if (rc == 0 && status == 200)
            snprintf(errbuf, errlen, "the server's answer has no ids");
        json_decref(reply);
        return NULL;
    }
    json_incref(ids);
    json_decref(reply);
    return ids;
}
