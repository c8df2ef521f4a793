/* store.h - sysbusd's durable state behind one interface.
 *
 * What it owns: apps, functions, events, runs, steps and the queue (the due
 * calls of unfinished runs), their schema and its migrations. What it does not
 * own: transactions policy (the writer thread groups operations into one
 * transaction, see writer.h) and in-memory caches (engine, registry).
 *
 * Connections: one writable connection, used only by the writer thread (and
 * by start-up code before threads run); any number of read-only connections,
 * one per reading thread (sb_store_reader() gives the calling thread its own).
 * Every function takes the connection it runs on.
 *
 * Reads: a read that fails part way (an I/O error, SQLITE_BUSY past the busy
 * timeout, out of memory) returns its error, never the rows read so far:
 * functions returning int give a negative SB_E* (scans with a callback stop
 * calling it), views returning json_t * give NULL with err filled. See
 * docs/internals/store.md, "Row scans and read errors".
 *
 * Schema and invariants: see docs/internals/store.md. A run's status and its
 * queue rows change in the same transaction; a Running run always has at least
 * one queue row (start-up repairs any run that does not). */
#ifndef SBD_STORE_H
#define SBD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sb_store;

enum run_status { RUN_RUNNING = 0, RUN_COMPLETED = 1, RUN_FAILED = 2, RUN_CANCELLED = 3 };
const char *run_status_name(int status); /* "Running" ... */
int run_status_parse(const char *name);  /* -1 when unknown (case-insensitive) */

enum step_status { STEP_RUNNING = 0, STEP_COMPLETED = 1, STEP_FAILED = 2 };

/* Queue item flags (queue.flags): what a due item does. */
enum qitem_flag {
    QF_PARALLEL = 1,  /* a call with disable_immediate_execution (parallel mode) */
    QF_SLEEP = 2,     /* no call: when due, the sleep step (step_id) completes */
    QF_WAIT = 4,      /* no call: when due, the waitForEvent step times out (null) */
    QF_INVOKE = 8,    /* no call: when due, the step.invoke times out (an error) */
    QF_DEADLINE = 16, /* no call: when due, the run passed timeouts.finish (cancelled) */
};

/* ---- records passed to write operations (strings borrowed) ---- */
struct ev_rec {
    char id[SB_ULID_SIZE];
    const char *name;
    const char *body; /* normalized event, canonical JSON */
    int64_t ts, received_at;
    const char *dedupe_key; /* user-supplied id, or NULL */
};

struct run_rec {
    char id[SB_ULID_SIZE];
    const char *function_id, *app_id;
    char event_id[SB_ULID_SIZE];
    int64_t created_at;
};

struct step_rec {
    const char *run_id;
    const char *hash;
    int64_t seq; /* -1 while not memoized */
    const char *name, *op;
    int status; /* enum step_status */
    int attempts;
    const char *output; /* memoized value (JCS) or NULL */
    const char *error;  /* last error (JCS) or NULL */
    int64_t started_at, ended_at;
};

struct qitem_rec {
    int64_t id;
    const char *run_id;
    const char *step_id; /* "step" or a step hash */
    int attempt;
    int64_t due_at, started_at;
    int transport_failures;
    int64_t transport_since;
    const char *last_error; /* JCS or NULL */
    int flags;
    /* filled by scans only (ignored by sb_store_queue_put, which clears a
     * lease): */
    const char *function_id, *event_id;
    int64_t lease_until;    /* a call was made under a lease until then (0 = none) */
    const char *lease_keys; /* JSON array of the concurrency slot keys it took */
};

struct app_rec {
    const char *id, *url, *sdk, *framework, *app_version, *checksum;
    int64_t now;
};

struct fn_rec {
    const char *id, *app_id, *name, *config; /* config: canonical JSON */
    int64_t now;
};

/* ---- lifecycle ---- */
/* Opens (creating DIR and the database when missing) the writable store and
 * migrates it. SB_ECONFIG when the database is newer than this binary; an
 * SB_E* when the counts this connection keeps (open waits, cancel requests,
 * singleton keys) cannot be read. */
int sb_store_open(const char *dir, struct sb_store **out, struct sb_err *err);
/* The calling thread's read-only connection (opened on first use; closed by
 * sb_store_close_readers). NULL on failure. */
struct sb_store *sb_store_reader(void);
void sb_store_set_dir(const char *dir); /* where readers open the database */
void sb_store_close(struct sb_store *st);
void sb_store_close_readers(void);
int sb_store_schema_version(struct sb_store *st);
#define SB_STORE_SCHEMA_VERSION 4

/* ---- transactions (writer connection) ---- */
int sb_store_begin(struct sb_store *st, struct sb_err *err);
int sb_store_commit(struct sb_store *st, struct sb_err *err);
void sb_store_rollback(struct sb_store *st);
int sb_store_savepoint(struct sb_store *st);
void sb_store_release(struct sb_store *st);
void sb_store_rollback_savepoint(struct sb_store *st);

/* ---- writes (inside a transaction) ---- */
/* Inserts; *inserted = false when an event with that id already exists. */
int sb_store_event_insert(struct sb_store *st, const struct ev_rec *ev, bool *inserted,
                          struct sb_err *err);
/* Id of an event with this dedupe key received at or after since_ms: 0,
 * SB_ENOTFOUND when there is none, or another SB_E* (err filled) when the
 * store could not be read (the caller must not take that as "new event"). */
int sb_store_event_find_dedupe(struct sb_store *st, const char *key, int64_t since_ms,
                               char out_id[SB_ULID_SIZE], struct sb_err *err);
int sb_store_run_insert(struct sb_store *st, const struct run_rec *run, struct sb_err *err);
/* Ends a run: status, output/error (JCS or NULL), and deletes its queue rows. */
int sb_store_run_finish(struct sb_store *st, const char *run_id, int status, const char *output,
                        const char *error, int64_t started_at, int64_t ended_at,
                        struct sb_err *err);
/* Records progress: started_at (first time only), updated_at, req_version. */
int sb_store_run_progress(struct sb_store *st, const char *run_id, int64_t now, int req_version,
                          struct sb_err *err);
int sb_store_step_put(struct sb_store *st, const struct step_rec *s, struct sb_err *err);
int sb_store_queue_put(struct sb_store *st, const struct qitem_rec *q, struct sb_err *err);
int sb_store_queue_del(struct sb_store *st, int64_t id, struct sb_err *err);
int sb_store_app_upsert(struct sb_store *st, const struct app_rec *a, struct sb_err *err);
int sb_store_app_sync_error(struct sb_store *st, const char *url, const char *error, int64_t now,
                            struct sb_err *err);
int sb_store_app_delete(struct sb_store *st, const char *app_id, int64_t now, struct sb_err *err);
/* Ids (malloc'd array of malloc'd strings) of live apps at url other than
 * except_id. On error *ids is NULL and *n 0 (never a partial list). */
int sb_store_apps_at_url(struct sb_store *st, const char *url, const char *except_id, char ***ids,
                         size_t *n, struct sb_err *err);
/* A live app's checksum (malloc'd, NULL when it has none) and URL
 * (malloc'd); either out pointer may be NULL when not wanted. 0,
 * SB_ENOTFOUND (no such live app), or another SB_E* with err (both NULL). */
int sb_store_app_get(struct sb_store *st, const char *app_id, char **checksum, char **url,
                     struct sb_err *err);
int sb_store_function_put(struct sb_store *st, const struct fn_rec *f, struct sb_err *err);
/* Marks removed every function of app_id not in keep (n ids); when the list
 * of the app's functions cannot be read, nothing is marked. */
int sb_store_functions_prune(struct sb_store *st, const char *app_id, const char *const *keep,
                             size_t n, int64_t now, struct sb_err *err);
/* Deletes up to limit ended runs (with their steps) that ended before
 * before_ms, and up to limit events received before before_ms that no longer
 * have runs. *deleted = rows removed. */
int sb_store_purge(struct sb_store *st, int64_t before_ms, int limit, int *deleted,
                   struct sb_err *err);

/* ---- waits (step.waitForEvent), writer connection ---- */
struct wait_rec {
    int64_t item_id; /* the queue item that times the wait out */
    const char *run_id, *step_hash;
    const char *event_name, *expression; /* waitForEvent */
    const char *child_run_id;            /* step.invoke */
    int64_t created_at;
};
int sb_store_wait_put(struct sb_store *st, const struct wait_rec *w, struct sb_err *err);
/* Deletes the wait of item_id; *deleted = false when it was gone already
 * (an event resolved it first). */
int sb_store_wait_delete(struct sb_store *st, int64_t item_id, bool *deleted, struct sb_err *err);
/* True when any wait is open (cheap: a counter kept by this connection). */
bool sb_store_has_waits(struct sb_store *st);
/* Open waits for an event name, with the body of each waiting run's trigger
 * event and the number of queue rows its run has. Strings valid during fn.
 * The waits are read in full before fn is first called: when the read
 * fails, fn is not called and the error (negative SB_E*, err) is returned;
 * otherwise the first nonzero return of fn. */
int sb_store_waits_for(struct sb_store *st, const char *event_name,
                       int (*fn)(void *ctx, const struct wait_rec *w, const char *trigger_event,
                                 int64_t run_queue_rows, int flags),
                       void *ctx, struct sb_err *err);
/* The wait (step.invoke) whose child is child_run_id, if any: fills *w
 * (strings malloc'd, free with sb_wait_rec_free) and *run_queue_rows, *flags.
 * SB_ENOTFOUND when nobody waits for it; another SB_E* when the store could
 * not be read. */
int sb_store_wait_for_child(struct sb_store *st, const char *child_run_id, struct wait_rec *w,
                            int64_t *run_queue_rows, int *flags);
void sb_wait_rec_free(struct wait_rec *w);
/* Events named `name` stored with an id >= min_id, in order: 0 after the
 * last, the first nonzero return of fn, or a negative SB_E* when the scan
 * failed (fn may have seen some events; the caller must not conclude that
 * none of the rest matched). */
int sb_store_events_since(struct sb_store *st, const char *name, const char *min_id,
                          int (*fn)(void *ctx, const char *id, const char *body), void *ctx);
/* The run's function id and its trigger event's name and body (malloc'd).
 * SB_ENOTFOUND when the run does not exist, another SB_E* when the store
 * could not be read. */
int sb_store_run_trigger(struct sb_store *st, const char *run_id, char **function_id,
                         char **event_name, char **event_body);
/* Next stack position for a run's memoized steps (max seq + 1, >= 0), or a
 * negative SB_E* when it could not be read. (An int64_t rather than an out
 * parameter so that existing call sites keep their shape; a position is never
 * negative, so an error cannot be taken for one: wait_resolve_in_txn refuses
 * a negative seq.) */
int64_t sb_store_next_seq(struct sb_store *st, const char *run_id);

/* ---- cancellations, writer connection ---- */
/* Running runs of function_id created in [after, before) (0 = unbounded),
 * with their trigger event body. Read in full before fn is first called:
 * when the read fails, fn is not called and the negative SB_E* returned
 * (with err). */
int sb_store_running_runs(struct sb_store *st, const char *app_id, const char *function_id,
                          int64_t after, int64_t before,
                          int (*fn)(void *ctx, const char *run_id, int64_t created_at,
                                    const char *trigger_event),
                          void *ctx, struct sb_err *err);
/* Records that run_id must be cancelled; *added = false if it already was. */
int sb_store_cancel_request_put(struct sb_store *st, const char *run_id, const char *reason,
                                int64_t now, bool *added, struct sb_err *err);
/* Every pending cancel request (at start): 0, fn's first nonzero return, or
 * a negative SB_E* with err when the scan failed. */
int sb_store_cancel_requests_scan(struct sb_store *st,
                                  int (*fn)(void *ctx, const char *run_id, const char *reason),
                                  void *ctx, struct sb_err *err);
struct cancellation_rec {
    char id[SB_ULID_SIZE];
    const char *app_id, *function_id, *expression;
    int64_t started_after, started_before, created_at;
    int64_t run_count;
};
int sb_store_cancellation_put(struct sb_store *st, const struct cancellation_rec *c,
                              struct sb_err *err);
/* Newest first; NULL with err when the store could not be read. */
json_t *sb_store_cancellations_json(struct sb_store *st, int limit, struct sb_err *err);

/* ---- flow control at run start (writer connection) ---- */
enum flow_key_kind { FLOW_IDEMPOTENCY = 1, FLOW_SINGLETON = 2, FLOW_THROTTLE = 3 };
/* The run holding a key (malloc'd, may be NULL) and when the key expires
 * (0: when that run ends). SB_ENOTFOUND when nobody holds it; another SB_E*
 * with err when the store could not be read (a caller deciding whether a
 * run may start must then not start it). */
int sb_store_flow_key_get(struct sb_store *st, int kind, const char *key, char **run_id,
                          int64_t *expires_at, struct sb_err *err);
int sb_store_flow_key_put(struct sb_store *st, int kind, const char *key, const char *run_id,
                          int64_t expires_at, struct sb_err *err);
/* Throttle: the key's theoretical arrival time (GCRA) is at least tat
 * (kept as the row's expiry: a time in the past means an idle key). */
int sb_store_throttle_put(struct sb_store *st, const char *key, int64_t tat, struct sb_err *err);
/* Calls fn for every throttle key whose tat is after now: 0, or a negative
 * SB_E* with err when the scan failed part way. */
int sb_store_throttles_scan(struct sb_store *st, int64_t now,
                            void (*fn)(void *ctx, const char *key, int64_t tat), void *ctx,
                            struct sb_err *err);
/* Rate limit: 0 with *count = how many hits `key` had at or after since_ms,
 * or SB_E* with err (*count untouched: there is no count to admit by). */
int sb_store_rate_count(struct sb_store *st, const char *key, int64_t since_ms, int64_t *count,
                        struct sb_err *err);
int sb_store_rate_hit(struct sb_store *st, const char *key, int64_t at, struct sb_err *err);

/* ---- deferred starts: debounce and batchEvents (store_flow.c) ---- */
enum deferred_kind { DEFER_DEBOUNCE = 1, DEFER_BATCH = 2 };
struct deferred_rec {
    char id[SB_ULID_SIZE]; /* keys a batch's run_events until its run starts */
    int kind;
    char *function_id, *app_id, *key; /* malloc'd when read */
    char event_id[SB_ULID_SIZE];
    int64_t size, first_at, due_at;
};
void sb_deferred_rec_free(struct deferred_rec *d);
/* The open one of kind for (function, key): 0, SB_ENOTFOUND, or another
 * SB_E* when the store could not be read. */
int sb_store_deferred_find(struct sb_store *st, int kind, const char *function_id, const char *key,
                           struct deferred_rec *out);
/* By id: 0, SB_ENOTFOUND, or another SB_E* (store error). */
int sb_store_deferred_get(struct sb_store *st, const char *id, struct deferred_rec *out);
/* Inserts or replaces (by id). */
int sb_store_deferred_put(struct sb_store *st, const struct deferred_rec *d, struct sb_err *err);
int sb_store_deferred_delete(struct sb_store *st, const char *id, struct sb_err *err);
/* Calls fn for each row due at or before now (id); *earliest = the first
 * due_at after now (INT64_MAX when none). 0, fn's first nonzero return, or a
 * negative SB_E* when the scan failed (*earliest is then not to be used). */
int sb_store_deferred_due(struct sb_store *st, int64_t now, int (*fn)(void *ctx, const char *id),
                          void *ctx, int64_t *earliest);
/* 1 when event_id is held by a pending debounce or batch (*due_at: when it
 * starts a run), 0 when not, a negative SB_E* when the store could not be
 * read. */
int sb_store_event_held(struct sb_store *st, const char *event_id, int64_t *due_at);
/* The events added under from_id now belong to run to_id. */
int sb_store_run_events_move(struct sb_store *st, const char *from_id, const char *to_id,
                             struct sb_err *err);
/* Adds event_id as event seq (0-based) of run_id (a batch). */
int sb_store_run_event_add(struct sb_store *st, const char *run_id, int64_t seq,
                           const char *event_id, struct sb_err *err);

/* ---- cron triggers ---- */
struct cron_rec {
    const char *function_id;
    int idx;
    const char *expression;
    int64_t next_at;
};
/* Current row of a cron trigger: 0 with *next_at and *expr (malloc'd),
 * SB_ENOTFOUND, or another SB_E* (store error). */
int sb_store_cron_get(struct sb_store *st, const char *function_id, int idx, char **expr,
                      int64_t *next_at);
int sb_store_cron_put(struct sb_store *st, const struct cron_rec *c, struct sb_err *err);
/* Deletes the cron rows of function_id from index `from` on (0 = all). */
int sb_store_cron_delete(struct sb_store *st, const char *function_id, int from,
                         struct sb_err *err);
/* Deletes the cron rows of functions that are removed or whose app is. */
int sb_store_cron_prune(struct sb_store *st, struct sb_err *err);
/* Every cron row (any connection): 0, fn's first nonzero return, or a
 * negative SB_E* when the scan failed. */
int sb_store_crons_scan(struct sb_store *st, int (*fn)(void *ctx, const struct cron_rec *c),
                        void *ctx);

/* ---- reads (any connection) ---- */
/* Largest queue id in use (0 when empty) into *max_id; SB_E* with err. */
int sb_store_queue_max_id(struct sb_store *st, int64_t *max_id, struct sb_err *err);
/* Marks queue row id as a call in flight holding the concurrency slots
 * keys_json until `until` (keys_json NULL, until 0: clears the mark). */
int sb_store_queue_lease(struct sb_store *st, int64_t id, int64_t until, const char *keys_json,
                         struct sb_err *err);
/* Calls fn for every queue row, in due order. Strings valid during the call.
 * 0, fn's first nonzero return, or a negative SB_E* with err when the scan
 * failed part way (fn has then seen only some rows: the caller must not act
 * as if it had the whole queue). */
int sb_store_queue_scan(struct sb_store *st, int (*fn)(void *ctx, const struct qitem_rec *q),
                        void *ctx, struct sb_err *err);
/* The same for the rows of one run (a Running one). */
int sb_store_queue_scan_run(struct sb_store *st, const char *run_id,
                            int (*fn)(void *ctx, const struct qitem_rec *q), void *ctx,
                            struct sb_err *err);
/* Running runs that have no queue row (to repair at start): 0, or a
 * negative SB_E* with err when the scan failed part way. */
int sb_store_orphan_runs(struct sb_store *st, void (*fn)(void *ctx, const char *run_id), void *ctx,
                         struct sb_err *err);

/* What the engine needs to build a call for a run. Strings malloc'd. */
struct run_state {
    char id[SB_ULID_SIZE];
    char *function_id;
    char *event;  /* canonical JSON */
    char *events; /* a batch: JSON array of its events; NULL = [event] */
    int status;
    int req_version;
    size_t nsteps;
    struct {
        char hash[41];
        char *output; /* canonical JSON of the memoized value */
    } * steps;        /* in stack (completion) order */
};
/* 0 with *out filled; SB_ENOTFOUND when the run does not exist; another
 * SB_E* with err when the store could not be read. All or nothing: on any
 * error *out holds nothing to free, never a list cut short (a call made with
 * memoized steps missing would run completed steps again). */
int sb_store_run_state(struct sb_store *st, const char *run_id, struct run_state *out,
                       struct sb_err *err);
void sb_run_state_free(struct run_state *rs);

/* API views, shaped as the REST API returns them. Each returns a new
 * reference, or NULL with err filled: err->code SB_ENOTFOUND when the one
 * run or event asked for does not exist, any other code when the store could
 * not be read (the API answers 503 STORE_ERROR; a list is never cut short). */
json_t *sb_store_run_json(struct sb_store *st, const char *run_id, struct sb_err *err);
json_t *sb_store_run_steps_json(struct sb_store *st, const char *run_id, struct sb_err *err);
struct run_filter {
    int status;              /* -1 = any */
    const char *function_id; /* NULL = any */
    const char *app_id;      /* NULL = any */
    const char *event_id;    /* NULL = any */
    int64_t since_ms;        /* 0 = any */
    const char *cursor;      /* run id: return runs older than it */
    int limit;
};
json_t *sb_store_runs_json(struct sb_store *st, const struct run_filter *f, struct sb_err *err);
json_t *sb_store_event_json(struct sb_store *st, const char *event_id, struct sb_err *err);
struct event_filter {
    const char *name;
    int64_t after_ms, before_ms; /* 0 = unbounded */
    const char *cursor;
    int limit;
};
json_t *sb_store_events_json(struct sb_store *st, const struct event_filter *f, struct sb_err *err);
json_t *sb_store_apps_json(struct sb_store *st, struct sb_err *err);
json_t *sb_store_functions_json(struct sb_store *st, const char *app_id, bool include_removed,
                                struct sb_err *err);
/* Counts for /health and /metrics: queue rows, running runs; SB_E* with err
 * when they could not be read. */
int sb_store_counts(struct sb_store *st, int64_t *queue_rows, int64_t *running, struct sb_err *err);

/* For the registry's start-up load: every function row (removed ones too).
 * Both scans: 0, fn's first nonzero return, or a negative SB_E* with err
 * when the scan failed part way. */
int sb_store_functions_scan(struct sb_store *st,
                            int (*fn)(void *ctx, const char *id, const char *app_id,
                                      const char *config, bool removed, const char *app_url),
                            void *ctx, struct sb_err *err);
int sb_store_apps_scan(struct sb_store *st,
                       int (*fn)(void *ctx, const char *id, const char *url, const char *checksum),
                       void *ctx, struct sb_err *err);

#endif
