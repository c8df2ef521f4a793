/* waiters.h - long-poll reads: GET /v1/runs/{id}?wait_ms=N and
 * GET /v1/events/{id}/runs?wait_ms=N answer as soon as the run (or every run
 * of the event) has ended, or at the deadline with the current state.
 *
 * One thread owns the waiting requests. sbd_waiters_notify (called by the
 * writer thread when a run's end is committed, and through ingest's
 * events_held notification when a debounce may have let go of an event)
 * wakes it; it re-reads the store for the waiters on that run or event and
 * answers those that are done. A new waiter is checked once right after it is added, so an end that
 * committed between the handler's first read and the registration is not
 * missed. */
#ifndef SBD_WAITERS_H
#define SBD_WAITERS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

struct sbd;
struct sb_req;
struct sbd_waiters;

enum sbd_waiter_kind { WAIT_RUN, WAIT_EVENT_RUNS };

int sbd_waiters_start(struct sbd *sbd, struct sbd_waiters **out, struct sb_err *err);
/* Answers every waiting request with its current state and stops. */
void sbd_waiters_stop(struct sbd_waiters *w);
/* Takes over req (which the caller has suspended). */
void sbd_waiters_add(struct sbd_waiters *w, struct sb_req *req, enum sbd_waiter_kind kind,
                     const char *id, int64_t deadline_ms);
/* Run run_id of event event_id ended. event_id NULL: a run of several events
 * (a batch), so every event waiter re-checks. */
void sbd_waiters_notify(struct sbd_waiters *w, const char *run_id, const char *event_id);

/* The replies themselves, shared with the non-waiting handlers. Each returns
 * 0 with *body (new reference, the 200 answer) and *ended: whether the
 * awaited condition holds (the run ended / every run of the event ended and
 * none is to come). Or, with *body NULL and err saying why: SB_ENOTFOUND (the
 * run or event does not exist), another negative code when the store could
 * not be read (never a partial answer). */
int sbd_read_run(const char *run_id, json_t **body, bool *ended, struct sb_err *err);
int sbd_read_event_runs(const char *event_id, json_t **body, bool *ended, struct sb_err *err);
/* Answers req for a read of `what` (run, event) `id` that failed with rc:
 * 404 NOT_FOUND for SB_ENOTFOUND, else 503 STORE_ERROR with err's message
 * (the client may retry). */
void sbd_reply_read_error(struct sb_req *req, const char *what, const char *id, int rc,
                          const struct sb_err *err);

#endif
