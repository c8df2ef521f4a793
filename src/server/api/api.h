/* api.h - sysbusd's HTTP API: the route table (routes.c) and the handlers,
 * one resource per file: events.c (event ingest), register.c (app sync),
 * apps.c (apps and functions), runs.c (runs and steps), events_read.c
 * (events), health.c (/health, /metrics, /dev); views.c makes the JSON of
 * what the store holds (views.h). Handlers get the struct sbd through
 * sb_req_app(). */
#ifndef SBD_API_H
#define SBD_API_H

#include <stdint.h>

#include "common/err.h"
#include "common/httpd.h"

enum sbd_api_auth {
    AUTH_NONE,      /* /health, /dev */
    AUTH_EVENT_KEY, /* POST /e/{key}: the key in the path */
    AUTH_SIGNING,   /* POST /fn/register: bearer signing key (plain or hashed) */
    AUTH_API,       /* REST API: bearer signing key */
    AUTH_METRICS,   /* /metrics: AUTH_API unless --metrics-public */
};

extern const struct sb_route sbd_routes[];
extern const size_t sbd_nroutes;

/* 0 when req may use route; SB_EAUTH after answering 401. */
int api_authorize(struct sb_req *req, const struct sb_route *route);
void api_on_reply(struct sb_req *req, int status);

/* Parses ?name=N as an integer in [min, max]; def when absent. Returns 0, or
 * SB_EINVAL after replying 400 when present but invalid. */
int api_query_int(struct sb_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out);
/* Answers a store read that failed: 404 NOT_FOUND ("no such <what>") when
 * err->code is SB_ENOTFOUND, else 503 STORE_ERROR naming what could not be
 * read and why (a store error is temporary: the client retries). */
void api_store_error(struct sb_req *req, const char *what, const struct sb_err *err);
/* Parses the request body as JSON (replies 400 and returns NULL on error). */
json_t *api_body_json(struct sb_req *req);

void h_events_post(struct sb_req *req);
void h_register(struct sb_req *req);
void h_apps_list(struct sb_req *req);
void h_apps_add(struct sb_req *req);
void h_app_delete(struct sb_req *req);
void h_app_sync(struct sb_req *req);
void h_functions_list(struct sb_req *req);
void h_events_list(struct sb_req *req);
void h_event_get(struct sb_req *req);
void h_event_runs(struct sb_req *req);
void h_runs_list(struct sb_req *req);
void h_run_get(struct sb_req *req);
void h_run_cancel(struct sb_req *req);
void h_run_steps(struct sb_req *req);
void h_cancellations_post(struct sb_req *req);
void h_cancellations_list(struct sb_req *req);
void h_checkpoint(struct sb_req *req);
void h_run_batch(struct sb_req *req);
void h_run_actions(struct sb_req *req);
void h_health(struct sb_req *req);
void h_metrics(struct sb_req *req);
void h_dev(struct sb_req *req);

#endif
