/* views.h - the REST API's JSON for what the store holds: runs (with a
 * running run's queue), steps, events, apps, functions, cancellations, built
 * from the store's records (views.c). Used by the handlers in api/ and by the
 * long-poll waiters (server/waiters.c).
 *
 * Each returns a new reference, or NULL with err filled: err->code
 * SB_ENOTFOUND when the one run or event asked for does not exist, any other
 * code when the store could not be read (the API answers 503 STORE_ERROR; a
 * list is never cut short). Times are ISO 8601 strings (null when not set),
 * stored JSON is embedded as JSON (its text when it does not parse, a
 * {"sysbus_note"} object when it is nested too deeply to embed). */
#ifndef SBD_API_VIEWS_H
#define SBD_API_VIEWS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"
#include "server/store/store.h"

/* A run; *status (when not NULL) = its enum sbd_run_status. */
json_t *api_view_run(struct sbd_store *st, const char *run_id, int *status, struct sb_err *err);
json_t *api_view_run_steps(struct sbd_store *st, const char *run_id, struct sb_err *err);
/* Runs matching f; *running (when not NULL) = how many of them are Running. */
json_t *api_view_runs(struct sbd_store *st, const struct sbd_run_filter *f, size_t *running,
                      struct sb_err *err);
json_t *api_view_event(struct sbd_store *st, const char *event_id, struct sb_err *err);
json_t *api_view_events(struct sbd_store *st, const struct sbd_event_filter *f, struct sb_err *err);
json_t *api_view_apps(struct sbd_store *st, struct sb_err *err);
json_t *api_view_functions(struct sbd_store *st, const char *app_id, bool include_removed,
                           struct sb_err *err);
json_t *api_view_cancellations(struct sbd_store *st, int limit, struct sb_err *err);

#endif
