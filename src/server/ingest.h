/* ingest.h - storing events and starting the runs they trigger, for every
 * source of events: the event API (api/events.c), the lifecycle events of a
 * run's end (lifecycle.c), step.invoke (engine/invoke.c) and cron triggers
 * (cron/scheduler.c); and starting the run of a deferred start that came due
 * (the scheduler).
 *
 * A batch goes through three stages: prepare (match each event against the
 * registry: which functions it starts; any thread), apply (inside the
 * writer's transaction: store each event unless it is a duplicate, decide
 * each run's start by flow control, store the runs that start with their
 * first queue items, resolve the open waits it satisfies, record the
 * cancellations its cancelOn rules ask for), and committed (after the
 * commit, on the writer thread: announce what happened).
 *
 * Ingest stands below the engine, the scheduler and the waiters: it calls
 * none of them. What a commit did reaches them through a table of
 * notifications (struct sbd_ingest_notify) that the composition root
 * (daemon.c) fills in; the table, what each entry carries and who listens:
 * docs/internals/ingest.md. Nothing is announced before its commit. */
#ifndef SBD_INGEST_H
#define SBD_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"
#include "event.h"
#include "waits.h"

struct sbd_store;
struct sbd_registry;
struct sbd_reg_snap;
struct sbd_qids;
struct sbd_fn;
struct sbd_wop;

/* A run an ingest commit created, as the runs_created notification hands
 * it on. */
struct sbd_new_run {
    char run_id[SB_ULID_SIZE];
    char event_id[SB_ULID_SIZE];
    char *function_id; /* owned by whoever takes the run */
    char *event;       /* canonical event JSON, owned; NULL = load it from the store */
    int64_t qid;       /* its first queue item (stepId=step) */
    int64_t due_at;
};

/* After a commit, on the writer thread, in this order: deferred_changed,
 * events_held, runs_created, waits_resolved, cancels. Each gets ctx. A listener keeps it short and
 * never blocks (posts to its own thread and returns): the writer's next batch waits for it. An
 * entry may be NULL (nobody listens). */
struct sbd_ingest_notify {
    /* A debounce or batch row was written: the earliest due time it set. */
    void (*deferred_changed)(void *ctx, int64_t due_at);
    /* Runs were held by a debounce or batch instead of starting: a debounce
     * may have let go of the event it held before, which then starts no run
     * (someone may be waiting for that event's runs to end). */
    void (*events_held)(void *ctx);
    /* Runs stored with their first queue items: the listener takes
     * runs[0..n)'s strings (not the array). */
    void (*runs_created)(void *ctx, struct sbd_new_run *runs, size_t n);
    /* Waits resolved in the store: the listener takes the array and its
     * strings (sbd_wait_resolutions_free). */
    void (*waits_resolved)(void *ctx, struct sbd_wait_resolution *res, size_t n);
    /* Runs with a durable cancel request to carry out (ids borrowed). */
    void (*cancels)(void *ctx, char (*ids)[SB_ULID_SIZE], size_t n);
};

struct sbd_ingest;

/* The ingest context: the registry it matches events against, the queue
 * ids it hands out, and the table it announces commits through (borrowed,
 * with its ctx, for the context's life). SB_ENOMEM. */
int sbd_ingest_create(struct sbd_registry *registry, struct sbd_qids *qids,
                      const struct sbd_ingest_notify *notify, void *ctx, struct sbd_ingest **out,
                      struct sb_err *err);
void sbd_ingest_destroy(struct sbd_ingest *in);

struct sbd_ingest_run {
    char run_id[SB_ULID_SIZE];
    char *function_id, *app_id;
    int64_t qid;
    bool skipped;                /* flow control decided it does not start (flow.c) */
    bool deferred;               /* held by a debounce or batch (defer.c): no run now */
    bool load_events;            /* a batch: the run's events are loaded from the store */
    char event_id[SB_ULID_SIZE]; /* the run's event when not this one (a batch) */
    int64_t due_at;              /* its first call (earlier with priority.run) */
};

struct sbd_ingest_event {
    struct sbd_event ev; /* owned */
    bool duplicate;      /* set by apply */
    struct sbd_ingest_run *runs;
    size_t nruns;
};

struct sbd_ingest_batch {
    struct sbd_ingest_event *events;
    size_t n;
    struct sbd_reg_snap *snap;     /* registry at prepare time (flow control, cancel rules) */
    char (*cancels)[SB_ULID_SIZE]; /* runs to cancel (cancelOn, singleton), set by apply */
    size_t ncancels;
    int64_t received_at;
    struct sbd_wait_resolution *resolved;
    size_t nresolved;
    size_t new_runs, duplicates; /* set by committed */
    bool emitted;                /* events sysbusd emitted itself (metrics) */
    int64_t defer_due;           /* earliest deferred start changed by apply (0: none) */
};

/* Takes ownership of evs[0..n) (not of the array). SB_ENOMEM. */
int sbd_ingest_init(struct sbd_ingest_batch *b, struct sbd_event *evs, size_t n,
                    int64_t received_at);
/* A batch of the one event ev (taken) that starts one run of f, without
 * matching triggers, flow control or cancelOn (a cron tick, an invocation):
 * *run_id (may be NULL) is the run's id. SB_ENOMEM (ev is then cleared). */
int sbd_ingest_init_run(struct sbd_ingest *in, struct sbd_ingest_batch *b, struct sbd_event *ev,
                        const struct sbd_fn *f, int64_t now, char run_id[SB_ULID_SIZE]);
/* Decides which functions each event starts (a registry snapshot). */
int sbd_ingest_prepare(struct sbd_ingest *in, struct sbd_ingest_batch *b);
/* Writer thread, inside the transaction: stores the batch (see the top).
 * 0, or the error that fails the transaction; a retried apply starts the
 * batch afresh. */
int sbd_ingest_apply_in_txn(struct sbd_store *st, struct sbd_ingest *in, struct sbd_ingest_batch *b,
                            struct sb_err *err);
/* Writer thread, after the commit: counts and announces what apply did. */
void sbd_ingest_committed(struct sbd_ingest *in, struct sbd_ingest_batch *b);
void sbd_ingest_free(struct sbd_ingest_batch *b);

/* Writer thread, in a transaction: a new Running run and its first queue
 * item (stepId=step). */
int sbd_ingest_insert_run_in_txn(struct sbd_store *st, const char *run_id, const char *function_id,
                                 const char *app_id, const char *event_id, int64_t created_at,
                                 int64_t qid, int64_t due_at, struct sb_err *err);
/* After a commit that recorded cancel requests outside a batch (a bulk
 * cancellation): announces them (the cancels notification). */
void sbd_ingest_announce_cancels(struct sbd_ingest *in, char (*ids)[SB_ULID_SIZE], size_t n);

/* A writer op that starts the run of deferred row id (defer.h) if it is
 * still due and its function still exists, announcing it after the commit;
 * done(ctx) is called after it committed or failed. NULL when out of
 * memory. */
struct sbd_wop *sbd_ingest_fire_deferred_new(struct sbd_ingest *in, const char *id,
                                             void (*done)(void *ctx), void *ctx);

#endif
