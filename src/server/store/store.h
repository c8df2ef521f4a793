/* store.h - sysbusd's durable state behind one interface: the records, the
 * operations, and the contract every store backend implements.
 *
 * What it owns: apps, functions, events, runs, steps and the queue (the due
 * calls of unfinished runs), flow-control state, waits, crons, their schema
 * and its migrations. What it does not own: the transaction policy (the
 * writer thread groups operations into one transaction, see writer.h), the
 * in-memory caches (engine, registry), the REST JSON (api/views.c builds it
 * from the records read here).
 *
 * The seam: a backend lives in its own folder (src/server/store/sqlite/) and
 * fills one struct sbd_store_ops; store.c picks it once, at start, from the
 * scheme of the store URL (--store, SYSBUS_STORE; --data-dir DIR stands for
 * sqlite://DIR/sysbus.db). Every connection a backend hands out begins with a
 * struct sbd_store (its ops), through which the sbd_store_* calls below
 * dispatch. The operations are one list, SBD_STORE_OPS: it generates the
 * table's members, the sbd_store_<name> functions, and each backend's
 * prototypes, so an operation is declared in one place. Nothing here names
 * SQL or a database library: records in, records out. The contract in prose,
 * and how to add a backend: docs/internals/store.md.
 *
 * Connections: one writable connection, used only by the writer thread (and
 * by start-up code before threads run); any number of read-only connections,
 * one per reading thread (sbd_store_reader() gives the calling thread its own).
 * Every operation takes the connection it runs on. A read connection sees
 * what is committed; two reads are not one snapshot.
 *
 * Records: write records borrow their strings for the call. Reads give
 * malloc'd records (each has a *_free below) or call back with records whose
 * strings are valid during the callback. Times are milliseconds since the
 * Unix epoch; in a write record a time <= 0 of a column that may be unset
 * means "not set"; read records of the API's views give SBD_STORE_NO_TIME for
 * one that is not set.
 *
 * Reads: a read that fails part way (an I/O error, a busy database past its
 * timeout, out of memory) returns its error, never the rows read so far:
 * operations returning int give a negative SB_E* with err filled (scans with
 * a callback stop calling it; the caller must not act on what it saw), and
 * one-row reads keep SB_ENOTFOUND for "no such row", distinct from a failed
 * read. See docs/internals/store.md, "Row scans and read errors".
 *
 * Invariants: a run's status and its queue rows change in the same
 * transaction; a Running run always has at least one queue row (start-up
 * repairs any run that does not).
 *
 * Single writer. The SQLite backend relies on being the only writer of its
 * database, and says so where it does; a backend with several writers (e.g.
 * several sysbusd processes on one database) must provide instead:
 *  1. has_waits, wait_for_child and run_finish skip work on counters kept by
 *     the writable connection (open waits, open cancel requests, whether a
 *     singleton key was ever written). Another writer's commits never reach
 *     such a counter: answer from the database (or from a count every writer
 *     updates in its own transactions). has_waits may say true when no wait
 *     is open (that costs one query), never false when one is; run_finish
 *     must delete the run's singleton keys, cancel request and waits whoever
 *     wrote them.
 *  2. Queue ids are allocated by the engine counting up from queue_max_id,
 *     read once at start, and queue_put replaces a row of the same id: unique
 *     only with one writer. Several writers need disjoint id ranges (or ids
 *     from the database) before they may share a queue table.
 *  3. Flow control reads then writes in one transaction (flow_key_get then
 *     flow_key_put, rate_count then rate_hit, deferred_find then
 *     deferred_put, event_find_dedupe then event_insert, running_runs then
 *     cancel_request_put): correct because one writer's transactions are
 *     serial. With several writers those pairs must be serializable for the
 *     key they touch (a lock per key, SELECT ... FOR UPDATE, or a
 *     serializable transaction retried on conflict), or every key must have
 *     one owning writer.
 *  4. The writer's savepoints are one level deep, and rolling one back (or
 *     the whole transaction) must also undo what its operations did to any
 *     state the connection keeps besides the database (the counters above). */
#ifndef SBD_STORE_H
#define SBD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/ulid.h"

struct sbd_store;

/* The version of the store's schema this binary writes (every backend
 * migrates its tables to it; a store with a higher version is refused). */
#define SBD_STORE_SCHEMA_VERSION 4

/* A time a read record does not have (a NULL column). */
#define SBD_STORE_NO_TIME INT64_MIN

/* How long rate-limit hits are kept (the longest rateLimit period). */
#define SBD_STORE_RATE_KEEP_MS 86400000LL

enum sbd_run_status { RUN_RUNNING = 0, RUN_COMPLETED = 1, RUN_FAILED = 2, RUN_CANCELLED = 3 };
const char *run_status_name(int status); /* "Running" ... ("Unknown" past the enum) */
int run_status_parse(const char *name);  /* -1 when unknown (case-insensitive) */

enum sbd_step_status { STEP_RUNNING = 0, STEP_COMPLETED = 1, STEP_FAILED = 2 };
const char *step_status_name(int status); /* "Completed", "Failed", else "Running" */

/* Queue item flags (queue.flags): what a due item does. */
enum sbd_qitem_flag {
    QF_PARALLEL = 1,  /* a call with disable_immediate_execution (parallel mode) */
    QF_SLEEP = 2,     /* no call: when due, the sleep step (step_id) completes */
    QF_WAIT = 4,      /* no call: when due, the waitForEvent step times out (null) */
    QF_INVOKE = 8,    /* no call: when due, the step.invoke times out (an error) */
    QF_DEADLINE = 16, /* no call: when due, the run passed timeouts.finish (cancelled) */
};

enum sbd_flow_key_kind { FLOW_IDEMPOTENCY = 1, FLOW_SINGLETON = 2, FLOW_THROTTLE = 3 };
enum sbd_deferred_kind { DEFER_DEBOUNCE = 1, DEFER_BATCH = 2 };

/* ---- records ---- */
struct sbd_ev_rec {
    char id[SB_ULID_SIZE];
    const char *name;
    const char *body; /* normalized event, canonical JSON */
    int64_t ts, received_at;
    const char *dedupe_key; /* user-supplied id, or NULL */
};

struct sbd_run_rec {
    char id[SB_ULID_SIZE];
    const char *function_id, *app_id;
    char event_id[SB_ULID_SIZE];
    int64_t created_at;
};

/* A run as the API shows it (read back; strings valid during the callback). */
struct sbd_run_info {
    const char *id, *function_id, *app_id, *event_id;
    int status; /* enum sbd_run_status */
    int64_t created_at, started_at, updated_at, ended_at;
    const char *output, *error; /* JCS or NULL */
};

struct sbd_step_rec {
    const char *run_id;
    const char *hash;
    int64_t seq; /* -1 while not memoized */
    const char *name, *op;
    int status; /* enum sbd_step_status */
    int attempts;
    const char *output; /* memoized value (JCS) or NULL */
    const char *error;  /* last error (JCS) or NULL */
    int64_t started_at, ended_at;
};

struct sbd_qitem_rec {
    int64_t id;
    const char *run_id;
    const char *step_id; /* "step" or a step hash */
    int attempt;
    int64_t due_at, started_at;
    int transport_failures;
    int64_t transport_since;
    const char *last_error; /* JCS or NULL */
    int flags;
    /* filled by queue_scan and queue_scan_run only (ignored by queue_put,
     * which clears a lease): */
    const char *function_id, *event_id;
    int64_t lease_until;    /* a call was made under a lease until then (0 = none) */
    const char *lease_keys; /* JSON array of the concurrency slot keys it took */
};

struct sbd_app_rec {
    const char *id, *url, *sdk, *framework, *app_version, *checksum;
    int64_t now;
};

/* An app as the API shows it (read back). */
struct sbd_app_info {
    const char *id, *url, *sdk, *framework, *app_version, *checksum;
    int64_t created_at, synced_at;
    const char *sync_error;
    int64_t sync_error_at;
    int64_t function_count; /* functions not removed */
};

struct sbd_fn_rec {
    const char *id, *app_id, *name, *config; /* config: canonical JSON */
    int64_t now;
};

/* A function as the API shows it (read back). */
struct sbd_fn_info {
    const char *id, *app_id, *name, *config;
    int64_t created_at, updated_at, removed_at;
};

/* A wait (step.waitForEvent or step.invoke). */
struct sbd_wait_rec {
    int64_t item_id; /* the queue item that times the wait out */
    const char *run_id, *step_hash;
    const char *event_name, *expression; /* waitForEvent */
    const char *child_run_id;            /* step.invoke */
    int64_t created_at;
};
void sbd_wait_rec_free(struct sbd_wait_rec *w); /* frees run_id and step_hash */

/* A bulk cancellation (written, and read back for the API). */
struct sbd_cancellation_rec {
    char id[SB_ULID_SIZE];
    const char *app_id, *function_id, *expression;
    int64_t started_after, started_before, created_at; /* 0: unbounded */
    int64_t run_count;
};

/* An open debounce or batch. */
struct sbd_deferred_rec {
    char id[SB_ULID_SIZE];            /* keys a batch's run_events until its run starts */
    int kind;                         /* enum sbd_deferred_kind */
    char *function_id, *app_id, *key; /* malloc'd when read */
    char event_id[SB_ULID_SIZE];
    int64_t size, first_at, due_at;
};
void sbd_deferred_rec_free(struct sbd_deferred_rec *d);

struct sbd_cron_rec {
    const char *function_id;
    int idx;
    const char *expression;
    int64_t next_at;
};

/* What the engine needs to build a call for a run. Strings malloc'd. */
struct sbd_run_state {
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
void sbd_run_state_free(struct sbd_run_state *rs);

struct sbd_run_filter {
    int status;              /* -1 = any */
    const char *function_id; /* NULL = any */
    const char *app_id;      /* NULL = any */
    const char *event_id;    /* NULL = any (else its runs, a batch's too) */
    int64_t since_ms;        /* 0 = any */
    const char *cursor;      /* run id: return runs older than it */
    int limit;
};

struct sbd_event_filter {
    const char *name;
    int64_t after_ms, before_ms; /* 0 = unbounded */
    const char *cursor;
    int limit;
};

/* The id of the oldest event a purge of everything before before_ms keeps:
 * event ids are ULIDs, whose prefix is the time they were made, so events
 * are purged by id range, which needs no index of its own. */
void sbd_store_purge_cutoff(int64_t before_ms, char out[SB_ULID_SIZE]);

/* ---- the operations ----
 * OP(return type, name, (parameters), (arguments)) and, for those returning
 * nothing, VOP(name, (parameters), (arguments)). The first parameter is
 * always `struct sbd_store *st`, the connection. Each generates the member
 * `name` of struct sbd_store_ops and the function sbd_store_<name>. */
/* The list is kept out of clang-format, which would read its parameter
 * lists as expressions. */
/* clang-format off */
#define SBD_STORE_OPS(OP, VOP)                                                                     \
    /* -- schema and transactions (writer connection) -- */                                        \
    /* The stored schema's version into *version; SB_E* with err when it                           \
     * cannot be read. */                                                                          \
    OP(int, schema_version, (struct sbd_store *st, int *version, struct sb_err *err),              \
       (st, version, err))                                                                         \
    /* The store's bus id (a ULID made when it was created) into out: 0;                           \
     * SB_ENOTFOUND (err untouched) when the backend keeps none (SQLite: the                       \
     * file in its data directory is the bus); another SB_E* with err. */                          \
    OP(int, bus_id, (struct sbd_store *st, char out[SB_ULID_SIZE], struct sb_err *err),           \
       (st, out, err))                                                                             \
    /* A transaction holding the store's write lock until commit or rollback. */                   \
    OP(int, begin, (struct sbd_store *st, struct sb_err *err), (st, err))                          \
    OP(int, commit, (struct sbd_store *st, struct sb_err *err), (st, err))                         \
    VOP(rollback, (struct sbd_store *st), (st))                                                    \
    /* One level of savepoint inside the transaction (one per writer op). */                       \
    OP(int, savepoint, (struct sbd_store *st, struct sb_err *err), (st, err))                      \
    VOP(release, (struct sbd_store *st), (st))                                                     \
    /* Undoes everything since the savepoint, and releases it. */                                  \
    VOP(rollback_savepoint, (struct sbd_store *st), (st))                                          \
                                                                                                   \
    /* -- events and runs (inside a transaction) -- */                                             \
    /* Inserts; *inserted = false when an event with that id already exists. */                    \
    OP(int, event_insert,                                                                          \
       (struct sbd_store *st, const struct sbd_ev_rec *ev, bool *inserted, struct sb_err *err),    \
       (st, ev, inserted, err))                                                                    \
    /* Id of an event with this dedupe key received at or after since_ms: 0,                       \
     * SB_ENOTFOUND when there is none, or another SB_E* (err filled) when the                     \
     * store could not be read (the caller must not take that as "new event"). */                  \
    OP(int, event_find_dedupe,                                                                     \
       (struct sbd_store *st, const char *key, int64_t since_ms, char out_id[SB_ULID_SIZE],        \
        struct sb_err *err),                                                                       \
       (st, key, since_ms, out_id, err))                                                           \
    /* A new run, Running. */                                                                      \
    OP(int, run_insert, (struct sbd_store *st, const struct sbd_run_rec *run, struct sb_err *err), \
       (st, run, err))                                                                             \
    /* Ends a run: status, output/error (JCS or NULL), and deletes its queue                       \
     * rows, its waits, its cancel request and the singleton key it held. */                       \
    OP(int, run_finish,                                                                            \
       (struct sbd_store *st, const char *run_id, int status, const char *output,                  \
        const char *error, int64_t started_at, int64_t ended_at, struct sb_err *err),              \
       (st, run_id, status, output, error, started_at, ended_at, err))                             \
    /* Records progress: started_at (first time only), updated_at, req_version. */                 \
    OP(int, run_progress,                                                                          \
       (struct sbd_store *st, const char *run_id, int64_t now, int req_version,                    \
        struct sb_err *err),                                                                       \
       (st, run_id, now, req_version, err))                                                        \
    /* Inserts or updates the step (run_id, hash): name, op and error keep                         \
     * their old value when NULL, started_at its first one. */                                     \
    OP(int, step_put, (struct sbd_store *st, const struct sbd_step_rec *s, struct sb_err *err),    \
       (st, s, err))                                                                               \
    /* Inserts or replaces the queue row q->id (clearing its lease). */                            \
    OP(int, queue_put, (struct sbd_store *st, const struct sbd_qitem_rec *q, struct sb_err *err),  \
       (st, q, err))                                                                               \
    OP(int, queue_del, (struct sbd_store *st, int64_t id, struct sb_err *err), (st, id, err))      \
    /* Marks queue row id as a call in flight holding the concurrency slots                        \
     * keys_json until `until` (keys_json NULL, until 0: clears the mark). */                      \
    OP(int, queue_lease,                                                                           \
       (struct sbd_store *st, int64_t id, int64_t until, const char *keys_json,                    \
        struct sb_err *err),                                                                       \
       (st, id, until, keys_json, err))                                                            \
    /* Deletes up to limit ended runs (with their steps and batch events) that                     \
     * ended before before_ms, and up to limit events made before before_ms                        \
     * that no run, batch or deferred start refers to; also expired flow keys                      \
     * and rate hits older than SBD_STORE_RATE_KEEP_MS. *deleted = runs and                        \
     * events removed. */                                                                          \
    OP(int, purge,                                                                                 \
       (struct sbd_store *st, int64_t before_ms, int limit, int *deleted, struct sb_err *err),     \
       (st, before_ms, limit, deleted, err))                                                       \
                                                                                                   \
    /* -- apps and functions -- */                                                                 \
    /* Inserts or updates an app (clearing its sync error and deletion). */                        \
    OP(int, app_upsert, (struct sbd_store *st, const struct sbd_app_rec *a, struct sb_err *err),   \
       (st, a, err))                                                                               \
    /* Records why syncing the apps at url failed (error NULL: clears it). */                      \
    OP(int, app_sync_error,                                                                        \
       (struct sbd_store *st, const char *url, const char *error, int64_t now,                     \
        struct sb_err *err),                                                                       \
       (st, url, error, now, err))                                                                 \
    /* Marks the app deleted and its functions removed. */                                         \
    OP(int, app_delete,                                                                            \
       (struct sbd_store *st, const char *app_id, int64_t now, struct sb_err *err),                \
       (st, app_id, now, err))                                                                     \
    /* Ids (malloc'd array of malloc'd strings) of live apps at url other than                     \
     * except_id. On error *ids is NULL and *n 0 (never a partial list). */                        \
    OP(int, apps_at_url,                                                                           \
       (struct sbd_store *st, const char *url, const char *except_id, char ***ids, size_t *n,      \
        struct sb_err *err),                                                                       \
       (st, url, except_id, ids, n, err))                                                          \
    /* A live app's checksum (malloc'd, NULL when it has none) and URL                             \
     * (malloc'd); either out pointer may be NULL when not wanted. 0,                              \
     * SB_ENOTFOUND (no such live app), or another SB_E* with err (both NULL). */                  \
    OP(int, app_get,                                                                               \
       (struct sbd_store *st, const char *app_id, char **checksum, char **url,                     \
        struct sb_err *err),                                                                       \
       (st, app_id, checksum, url, err))                                                           \
    /* Inserts or updates a function (no longer removed). */                                       \
    OP(int, function_put, (struct sbd_store *st, const struct sbd_fn_rec *f, struct sb_err *err),  \
       (st, f, err))                                                                               \
    /* Marks removed every function of app_id not in keep (n ids); when the list                   \
     * of the app's functions cannot be read, nothing is marked. */                                \
    OP(int, functions_prune,                                                                       \
       (struct sbd_store *st, const char *app_id, const char *const *keep, size_t n, int64_t now,  \
        struct sb_err *err),                                                                       \
       (st, app_id, keep, n, now, err))                                                            \
    /* Every function row (removed ones too) with its app's URL (NULL when                         \
     * the app is gone), for the registry's start-up load: 0, fn's first                           \
     * nonzero return, or a negative SB_E* with err when the scan failed. */                       \
    OP(int, functions_scan,                                                                        \
       (struct sbd_store *st,                                                                      \
        int (*fn)(void *ctx, const char *id, const char *app_id, const char *config, bool removed, \
                  const char *app_url),                                                            \
        void *ctx, struct sb_err *err),                                                            \
       (st, fn, ctx, err))                                                                         \
    /* Every live app: as functions_scan. */                                                       \
    OP(int, apps_scan,                                                                             \
       (struct sbd_store *st,                                                                      \
        int (*fn)(void *ctx, const char *id, const char *url, const char *checksum), void *ctx,    \
        struct sb_err *err),                                                                       \
       (st, fn, ctx, err))                                                                         \
                                                                                                   \
    /* -- waits (step.waitForEvent, step.invoke), writer connection -- */                          \
    /* Inserts or replaces the wait of w->item_id. */                                              \
    OP(int, wait_put, (struct sbd_store *st, const struct sbd_wait_rec *w, struct sb_err *err),    \
       (st, w, err))                                                                               \
    /* Deletes the wait of item_id; *deleted = false when it was gone already                      \
     * (an event resolved it first). */                                                            \
    OP(int, wait_delete,                                                                           \
       (struct sbd_store *st, int64_t item_id, bool *deleted, struct sb_err *err),                 \
       (st, item_id, deleted, err))                                                                \
    /* False only when no wait is open (cheap: asked for every event; see                          \
     * "Single writer" 1). The one operation without an error: a backend                           \
     * that must ask its database and cannot answers true (the caller then                         \
     * runs waits_for, whose error it sees). */                                                    \
    OP(bool, has_waits, (struct sbd_store *st), (st))                                              \
    /* Open waits for an event name, with the body of each waiting run's                           \
     * trigger event, the number of queue rows its run has and the flags of                        \
     * the wait's own item (0 when gone). Strings valid during fn. The waits                       \
     * are read in full before fn is first called: when the read fails, fn is                      \
     * not called and the error (negative SB_E*, err) is returned; otherwise                       \
     * the first nonzero return of fn. */                                                          \
    OP(int, waits_for,                                                                             \
       (struct sbd_store *st, const char *event_name,                                              \
        int (*fn)(void *ctx, const struct sbd_wait_rec *w, const char *trigger_event,              \
                  int64_t run_queue_rows, int flags),                                              \
        void *ctx, struct sb_err *err),                                                            \
       (st, event_name, fn, ctx, err))                                                             \
    /* The wait (step.invoke) whose child is child_run_id, if any: fills *w                        \
     * (strings malloc'd, free with sbd_wait_rec_free) and *run_queue_rows,                        \
     * *flags. SB_ENOTFOUND when nobody waits for it (err untouched: the                           \
     * common case, at every run's end); another SB_E* with err when the                           \
     * store could not be read. */                                                                 \
    OP(int, wait_for_child,                                                                        \
       (struct sbd_store *st, const char *child_run_id, struct sbd_wait_rec *w,                    \
        int64_t *run_queue_rows, int *flags, struct sb_err *err),                                  \
       (st, child_run_id, w, run_queue_rows, flags, err))                                          \
    /* Events named `name` stored with an id >= min_id, in order: 0 after the                      \
     * last, the first nonzero return of fn, or a negative SB_E* with err when                     \
     * the scan failed (fn may have seen some events; the caller must not                          \
     * conclude that none of the rest matched). */                                                 \
    OP(int, events_since,                                                                          \
       (struct sbd_store *st, const char *name, const char *min_id,                                \
        int (*fn)(void *ctx, const char *id, const char *body), void *ctx,                         \
        struct sb_err *err),                                                                       \
       (st, name, min_id, fn, ctx, err))                                                           \
    /* The run's function id and its trigger event's name and body (malloc'd).                     \
     * SB_ENOTFOUND when the run does not exist (err untouched), another SB_E*                     \
     * with err when the store could not be read. */                                               \
    OP(int, run_trigger,                                                                           \
       (struct sbd_store *st, const char *run_id, char **function_id, char **event_name,           \
        char **event_body, struct sb_err *err),                                                    \
       (st, run_id, function_id, event_name, event_body, err))                                     \
    /* The next stack position for a run's memoized steps (max seq + 1, 0 for                      \
     * a run without any) into *seq; SB_E* with err when it could not be read                      \
     * (*seq untouched: there is no position to memoize at). */                                    \
    OP(int, next_seq,                                                                              \
       (struct sbd_store *st, const char *run_id, int64_t *seq, struct sb_err *err),               \
       (st, run_id, seq, err))                                                                     \
                                                                                                   \
    /* -- cancellations, writer connection -- */                                                   \
    /* Running runs of function_id and app_id (NULL = any) created in                              \
     * [after, before) (0 = unbounded), with their trigger event body, in id                       \
     * order. Read in full before fn is first called: when the read fails, fn                      \
     * is not called and the negative SB_E* returned (with err). */                                \
    OP(int, running_runs,                                                                          \
       (struct sbd_store *st, const char *app_id, const char *function_id, int64_t after,          \
        int64_t before,                                                                            \
        int (*fn)(void *ctx, const char *run_id, int64_t created_at, const char *trigger_event),   \
        void *ctx, struct sb_err *err),                                                            \
       (st, app_id, function_id, after, before, fn, ctx, err))                                     \
    /* Records that run_id must be cancelled; *added = false if it already was. */                 \
    OP(int, cancel_request_put,                                                                    \
       (struct sbd_store *st, const char *run_id, const char *reason, int64_t now, bool *added,    \
        struct sb_err *err),                                                                       \
       (st, run_id, reason, now, added, err))                                                      \
    /* Every pending cancel request (at start): 0, fn's first nonzero return,                      \
     * or a negative SB_E* with err when the scan failed. */                                       \
    OP(int, cancel_requests_scan,                                                                  \
       (struct sbd_store *st, int (*fn)(void *ctx, const char *run_id, const char *reason),        \
        void *ctx, struct sb_err *err),                                                            \
       (st, fn, ctx, err))                                                                         \
    OP(int, cancellation_put,                                                                      \
       (struct sbd_store *st, const struct sbd_cancellation_rec *c, struct sb_err *err), (st, c, err)) \
                                                                                                   \
    /* -- flow control at run start (writer connection) -- */                                      \
    /* The run holding a key of kind (enum sbd_flow_key_kind; malloc'd, NULL for a                 \
     * throttle key) and when the key expires (0: when that run ends).                             \
     * SB_ENOTFOUND when nobody holds it; another SB_E* with err when the                          \
     * store could not be read (a caller deciding whether a run may start must                     \
     * then not start it). */                                                                      \
    OP(int, flow_key_get,                                                                          \
       (struct sbd_store *st, int kind, const char *key, char **run_id, int64_t *expires_at,       \
        struct sb_err *err),                                                                       \
       (st, kind, key, run_id, expires_at, err))                                                   \
    /* Inserts or replaces a key (expires_at 0: held until run_id ends). */                        \
    OP(int, flow_key_put,                                                                          \
       (struct sbd_store *st, int kind, const char *key, const char *run_id, int64_t expires_at,   \
        struct sb_err *err),                                                                       \
       (st, kind, key, run_id, expires_at, err))                                                   \
    /* Throttle: the key's theoretical arrival time (GCRA) is at least tat                         \
     * (kept as the key's expiry: a time in the past means an idle key). */                        \
    OP(int, throttle_put,                                                                          \
       (struct sbd_store *st, const char *key, int64_t tat, struct sb_err *err),                   \
       (st, key, tat, err))                                                                        \
    /* Calls fn for every throttle key whose tat is after now: 0, or a negative                    \
     * SB_E* with err when the scan failed part way. */                                            \
    OP(int, throttles_scan,                                                                        \
       (struct sbd_store *st, int64_t now, void (*fn)(void *ctx, const char *key, int64_t tat),    \
        void *ctx, struct sb_err *err),                                                            \
       (st, now, fn, ctx, err))                                                                    \
    /* Rate limit: 0 with *count = how many hits `key` had at or after                             \
     * since_ms, or SB_E* with err (*count untouched: there is no count to                         \
     * admit by). */                                                                               \
    OP(int, rate_count,                                                                            \
       (struct sbd_store *st, const char *key, int64_t since_ms, int64_t *count,                   \
        struct sb_err *err),                                                                       \
       (st, key, since_ms, count, err))                                                            \
    OP(int, rate_hit, (struct sbd_store *st, const char *key, int64_t at, struct sb_err *err),     \
       (st, key, at, err))                                                                         \
                                                                                                   \
    /* -- deferred starts: debounce and batchEvents -- */                                          \
    /* The open one of kind (enum sbd_deferred_kind) for (function, key): 0 with                   \
     * *out (free with sbd_deferred_rec_free), SB_ENOTFOUND (err untouched),                       \
     * or another SB_E* with err when the store could not be read. */                              \
    OP(int, deferred_find,                                                                         \
       (struct sbd_store *st, int kind, const char *function_id, const char *key,                  \
        struct sbd_deferred_rec *out, struct sb_err *err),                                         \
       (st, kind, function_id, key, out, err))                                                     \
    /* By id: as deferred_find. */                                                                 \
    OP(int, deferred_get,                                                                          \
       (struct sbd_store *st, const char *id, struct sbd_deferred_rec *out, struct sb_err *err),   \
       (st, id, out, err))                                                                         \
    /* Inserts or replaces (by id). */                                                             \
    OP(int, deferred_put,                                                                          \
       (struct sbd_store *st, const struct sbd_deferred_rec *d, struct sb_err *err), (st, d, err)) \
    OP(int, deferred_delete, (struct sbd_store *st, const char *id, struct sb_err *err),           \
       (st, id, err))                                                                              \
    /* Calls fn for each row due at or before now (id); *earliest = the first                      \
     * due_at after now (INT64_MAX when none). 0, fn's first nonzero return,                       \
     * or a negative SB_E* with err when the scan failed (*earliest is then                        \
     * not to be used). */                                                                         \
    OP(int, deferred_due,                                                                          \
       (struct sbd_store *st, int64_t now, int (*fn)(void *ctx, const char *id), void *ctx,        \
        int64_t *earliest, struct sb_err *err),                                                    \
       (st, now, fn, ctx, earliest, err))                                                          \
    /* Whether event_id is held by a pending debounce or batch: 0 with *held                       \
     * (and, when held, *due_at: when it starts a run), or SB_E* with err when                     \
     * the store could not be read (*held untouched). */                                           \
    OP(int, event_held,                                                                            \
       (struct sbd_store *st, const char *event_id, bool *held, int64_t *due_at,                   \
        struct sb_err *err),                                                                       \
       (st, event_id, held, due_at, err))                                                          \
    /* The events added under from_id now belong to run to_id. */                                  \
    OP(int, run_events_move,                                                                       \
       (struct sbd_store *st, const char *from_id, const char *to_id, struct sb_err *err),         \
       (st, from_id, to_id, err))                                                                  \
    /* Adds event_id as event seq (0-based) of run_id (a batch). */                                \
    OP(int, run_event_add,                                                                         \
       (struct sbd_store *st, const char *run_id, int64_t seq, const char *event_id,               \
        struct sb_err *err),                                                                       \
       (st, run_id, seq, event_id, err))                                                           \
                                                                                                   \
    /* -- cron triggers -- */                                                                      \
    /* Current row of a cron trigger: 0 with *next_at and *expr (malloc'd),                        \
     * SB_ENOTFOUND (err untouched), or another SB_E* with err. */                                 \
    OP(int, cron_get,                                                                              \
       (struct sbd_store *st, const char *function_id, int idx, char **expr, int64_t *next_at,     \
        struct sb_err *err),                                                                       \
       (st, function_id, idx, expr, next_at, err))                                                 \
    /* Inserts or replaces (function_id, idx). */                                                  \
    OP(int, cron_put, (struct sbd_store *st, const struct sbd_cron_rec *c, struct sb_err *err),    \
       (st, c, err))                                                                               \
    /* Deletes the cron rows of function_id from index `from` on (0 = all). */                     \
    OP(int, cron_delete,                                                                           \
       (struct sbd_store *st, const char *function_id, int from, struct sb_err *err),              \
       (st, function_id, from, err))                                                               \
    /* Deletes the cron rows of functions that are removed or whose app is. */                     \
    OP(int, cron_prune, (struct sbd_store *st, struct sb_err *err), (st, err))                     \
    /* Every cron row, in next_at order (any connection): 0, fn's first                            \
     * nonzero return, or a negative SB_E* with err when the scan failed. */                       \
    OP(int, crons_scan,                                                                            \
       (struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_cron_rec *c), void *ctx,       \
        struct sb_err *err),                                                                       \
       (st, fn, ctx, err))                                                                         \
                                                                                                   \
    /* -- the engine's reads (any connection) -- */                                                \
    /* Largest queue id in use (0 when empty) into *max_id; SB_E* with err. */                     \
    OP(int, queue_max_id, (struct sbd_store *st, int64_t *max_id, struct sb_err *err),             \
       (st, max_id, err))                                                                          \
    /* Calls fn for every queue row, in due order (then id). Strings valid                         \
     * during the call. 0, fn's first nonzero return, or a negative SB_E* with                     \
     * err when the scan failed part way (fn has then seen only some rows: the                     \
     * caller must not act as if it had the whole queue). */                                       \
    OP(int, queue_scan,                                                                            \
       (struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_qitem_rec *q), void *ctx,      \
        struct sb_err *err),                                                                       \
       (st, fn, ctx, err))                                                                         \
    /* The same for the rows of one run, when it is Running (none otherwise). */                   \
    OP(int, queue_scan_run,                                                                        \
       (struct sbd_store *st, const char *run_id, int (*fn)(void *ctx, const struct sbd_qitem_rec *q), \
        void *ctx, struct sb_err *err),                                                            \
       (st, run_id, fn, ctx, err))                                                                 \
    /* Running runs that have no queue row other than a deadline (to repair at                     \
     * start): 0, or a negative SB_E* with err when the scan failed part way. */                   \
    OP(int, orphan_runs,                                                                           \
       (struct sbd_store *st, void (*fn)(void *ctx, const char *run_id), void *ctx,                \
        struct sb_err *err),                                                                       \
       (st, fn, ctx, err))                                                                         \
    /* 0 with *out filled (free with sbd_run_state_free); SB_ENOTFOUND when the                    \
     * run does not exist; another SB_E* with err when the store could not be                      \
     * read. All or nothing: on any error *out holds nothing to free, never a                      \
     * list cut short (a call made with memoized steps missing would run                           \
     * completed steps again). */                                                                  \
    OP(int, run_state,                                                                             \
       (struct sbd_store *st, const char *run_id, struct sbd_run_state *out, struct sb_err *err),  \
       (st, run_id, out, err))                                                                     \
    /* A run's status (enum sbd_run_status): 0, SB_ENOTFOUND (err filled) when the                 \
     * run does not exist, or another SB_E* with err. */                                           \
    OP(int, run_status,                                                                            \
       (struct sbd_store *st, const char *run_id, int *status, struct sb_err *err),                \
       (st, run_id, status, err))                                                                  \
    /* Counts for /health and /metrics: queue rows, running runs; SB_E* with                       \
     * err when they could not be read. */                                                         \
    OP(int, counts,                                                                                \
       (struct sbd_store *st, int64_t *queue_rows, int64_t *running, struct sb_err *err),          \
       (st, queue_rows, running, err))                                                             \
                                                                                                   \
    /* -- the API's reads (any connection; api/views.c makes the JSON) --                          \
     * One-row reads call fn once: 0 (or fn's return), SB_ENOTFOUND with err                       \
     * ("no such run: ID") when the row does not exist, or another SB_E* with                      \
     * err. Lists call fn per row: 0, fn's first nonzero return, or a                              \
     * negative SB_E* with err when the scan failed part way (the caller then                      \
     * drops what it collected: a page is never cut short). Strings valid                          \
     * during fn; unset times are SBD_STORE_NO_TIME. */                                            \
    OP(int, run_get,                                                                               \
       (struct sbd_store *st, const char *run_id, int (*fn)(void *ctx, const struct sbd_run_info *r), \
        void *ctx, struct sb_err *err),                                                            \
       (st, run_id, fn, ctx, err))                                                                 \
    /* The queue rows of a run, in due order, each with its wait (fields NULL                      \
     * when it has none; function_id, event_id and the lease not filled). */                       \
    OP(int, run_queue,                                                                             \
       (struct sbd_store *st, const char *run_id,                                                  \
        int (*fn)(void *ctx, const struct sbd_qitem_rec *q, const struct sbd_wait_rec *w), void *ctx, \
        struct sb_err *err),                                                                       \
       (st, run_id, fn, ctx, err))                                                                 \
    /* The steps of a run: memoized ones in stack order, then the others by                        \
     * start. seq -1 when not memoized. */                                                         \
    OP(int, run_steps,                                                                             \
       (struct sbd_store *st, const char *run_id, int (*fn)(void *ctx, const struct sbd_step_rec *s), \
        void *ctx, struct sb_err *err),                                                            \
       (st, run_id, fn, ctx, err))                                                                 \
    /* Runs matching f, newest first, at most f->limit. */                                         \
    OP(int, runs_list,                                                                             \
       (struct sbd_store *st, const struct sbd_run_filter *f,                                      \
        int (*fn)(void *ctx, const struct sbd_run_info *r), void *ctx, struct sb_err *err),        \
       (st, f, fn, ctx, err))                                                                      \
    OP(int, event_get,                                                                             \
       (struct sbd_store *st, const char *event_id, int (*fn)(void *ctx, const struct sbd_ev_rec *e), \
        void *ctx, struct sb_err *err),                                                            \
       (st, event_id, fn, ctx, err))                                                               \
    /* Events matching f, newest first, at most f->limit. */                                       \
    OP(int, events_list,                                                                           \
       (struct sbd_store *st, const struct sbd_event_filter *f,                                    \
        int (*fn)(void *ctx, const struct sbd_ev_rec *e), void *ctx, struct sb_err *err),          \
       (st, f, fn, ctx, err))                                                                      \
    /* Live apps by id. */                                                                         \
    OP(int, apps_list,                                                                             \
       (struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_app_info *a), void *ctx,       \
        struct sb_err *err),                                                                       \
       (st, fn, ctx, err))                                                                         \
    /* Functions of app_id (NULL = every app), by app then id; removed ones                        \
     * only when include_removed. */                                                               \
    OP(int, functions_list,                                                                        \
       (struct sbd_store *st, const char *app_id, bool include_removed,                            \
        int (*fn)(void *ctx, const struct sbd_fn_info *f), void *ctx, struct sb_err *err),         \
       (st, app_id, include_removed, fn, ctx, err))                                                \
    /* Bulk cancellations, newest first, at most limit. */                                         \
    OP(int, cancellations_list,                                                                    \
       (struct sbd_store *st, int limit, int (*fn)(void *ctx, const struct sbd_cancellation_rec *c), \
        void *ctx, struct sb_err *err),                                                            \
       (st, limit, fn, ctx, err))
/* clang-format on */

/* A backend: how to open it, and one function per operation. */
struct sbd_store_ops {
    const char *scheme; /* the URL scheme it serves ("sqlite"), also /health's store.kind */
    /* Opens the writable store at url (creating and migrating it when needed)
     * into *out. SB_EINVAL for a URL it cannot use, SB_ECONFIG when the store
     * was written by a newer sysbusd, another SB_E* when it cannot be opened
     * or its start-up state read; err says why. */
    int (*open)(const char *url, struct sbd_store **out, struct sb_err *err);
    /* A read-only connection to the store open() opened. */
    int (*open_reader)(const char *url, struct sbd_store **out, struct sb_err *err);
    void (*close)(struct sbd_store *st);
    /* Copies the store at url, as one consistent snapshot taken while
     * sysbusd may be running, into a new file at path (written beside it and
     * renamed into place: a failed backup leaves no file at path). The file
     * is this backend's own format (SQLite's is checked after it was
     * written). sbd_store_backup has refused an existing path already. */
    int (*backup)(const char *url, const char *path, struct sb_err *err);
    /* Fills the store at url from a file backup() wrote. The store must not
     * be in use (SB_EBUSY: a sysbusd holds it) and must hold no data unless
     * force (SB_EEXISTS; with force its data is replaced). SB_EINVAL for a
     * file that is not such a backup, SB_ECONFIG for one of a newer schema. */
    int (*restore)(const char *url, const char *path, bool force, struct sb_err *err);
    /* Writes the store at url in the export format (SBD_STORE_EXPORT_MAGIC),
     * one consistent snapshot, to out: what `sysbusd migrate` moves. */
    int (*export_to)(const char *url, FILE *out, struct sb_err *err);
#define SBD_STORE_OP_MEMBER(ret, name, params, args) ret(*name) params;
#define SBD_STORE_VOP_MEMBER(name, params, args) void(*name) params;
    SBD_STORE_OPS(SBD_STORE_OP_MEMBER, SBD_STORE_VOP_MEMBER)
#undef SBD_STORE_OP_MEMBER
#undef SBD_STORE_VOP_MEMBER
};

/* The first member of every backend's connection struct. */
struct sbd_store {
    const struct sbd_store_ops *ops;
};

/* sbd_store_<name>(st, ...): operation <name> on connection st. */
#define SBD_STORE_OP_CALL(ret, name, params, args) \
    static inline ret sbd_store_##name params      \
    {                                              \
        return st->ops->name args;                 \
    }
#define SBD_STORE_VOP_CALL(name, params, args) \
    static inline void sbd_store_##name params \
    {                                          \
        st->ops->name args;                    \
    }
SBD_STORE_OPS(SBD_STORE_OP_CALL, SBD_STORE_VOP_CALL)
#undef SBD_STORE_OP_CALL
#undef SBD_STORE_VOP_CALL

/* ---- opening (store.c) ---- */
/* The store URL sysbusd uses: `store` when set (--store, SYSBUS_STORE),
 * else sqlite://<data_dir>/sysbus.db. 0 with *url (malloc'd), or SB_EINVAL
 * with err naming the schemes this build has when the URL has no scheme this
 * build knows or nothing after it (a usage error), SB_ENOMEM. */
int sbd_store_url(const char *store, const char *data_dir, char **url, struct sb_err *err);
/* Whether url carries a password (scheme://user:password@host...), which
 * must then not be given on a command line. */
bool sbd_store_url_has_password(const char *url);
/* Opens the writable store at url with the backend of its scheme, and makes
 * that backend and url the ones sbd_store_reader() opens. Once, before other
 * threads use the store. Errors as sbd_store_url and ops->open. */
int sbd_store_open(const char *url, struct sbd_store **out, struct sb_err *err);
/* The calling thread's read-only connection (opened on first use; closed by
 * sbd_store_close_readers). NULL on failure (logged). */
struct sbd_store *sbd_store_reader(void);
/* The first line of the export format every backend writes (export_to)
 * and PostgreSQL's restore reads: docs/internals/store.md, "Export format". */
#define SBD_STORE_EXPORT_MAGIC "SYSBUS-EXPORT 1"

/* backup(), restore() and export_to() of url's backend (errors as there, and as
 * sbd_store_url for a URL of no known scheme). */
int sbd_store_backup(const char *url, const char *path, struct sb_err *err);
int sbd_store_restore(const char *url, const char *path, bool force, struct sb_err *err);
int sbd_store_export(const char *url, FILE *out, struct sb_err *err);
/* What a client is told of a store error: err's message, unless it is
 * about the database server, whose location a backend names in it
 * ("database (host:port/db)", "(database host:port/db",
 * "PostgreSQL (host:port/db)"): that stays in sysbusd's log, and the client
 * gets only the gist, by code. */
const char *sbd_store_err_public(const struct sb_err *err);
/* Closes st (NULL: nothing). */
void sbd_store_close(struct sbd_store *st);
/* Closes every thread's read connection (at shutdown, threads stopped). */
void sbd_store_close_readers(void);
/* The open store's scheme ("sqlite"), for /health; NULL before open. */
const char *sbd_store_kind(void);

#endif
