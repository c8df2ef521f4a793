/* engine_internal.h - the engine's data structures and the contracts between
 * its files (engine.h is its face to the rest of sysbusd; the mechanism is in
 * docs/internals/engine.md). The files:
 *   engine.c      the thread: loop, dispatch of due items, start and stop
 *   inbox.c       the inbox: posting from other threads, one table of kinds
 *   runs.c        the run table, queue items, memoized values, unloading
 *   heap.c        the min-heap of items (the queue, each slot's parked calls)
 *   admit.c       concurrency, throttle and timeouts before a call
 *   lease.c       concurrency slots that survive a crash
 *   call.c        a call's request body, headers and curl handle
 *   outcome.c     what a worker's answer means
 *   decide.c      a result becomes the run's next state (the op table)
 *   runop.c       the write that records one change of a run
 *   repair.c      a run whose change was not stored
 *   wait.c        step.waitForEvent
 *   invoke.c      step.invoke
 *   checkpoint.c  v4 async checkpoints
 *   backoff.c     retry delays
 *   check.c       the invariants below, checked in full (tests, debug builds)
 *
 * Threads. Everything here belongs to the engine thread, except:
 *  - the inbox (inbox_head/tail, inbox_closed: inbox_lock) and the stat_*
 *    counters (atomics), which any thread uses (queue ids come from the
 *    process's counter, server/qid.h);
 *  - functions named *_in_txn: they run on the writer thread inside its
 *    batch transaction and touch the store and their op only (an op carries
 *    copies of what it writes, never a pointer into a run it dereferences);
 *  - the writers' done callbacks (runop_done, lease_done): writer thread,
 *    after the commit; they answer requests and post to the inbox.
 * Each file's header says which of its functions run where.
 *
 * Invariants (asserted where they change; engine_check walks them all):
 *  - a run in the table that has not ended has at least one item or a
 *    commit pending (committing > 0); committing is never negative;
 *  - an ended run has no items: its end dropped them;
 *  - an item is in at most one heap (item->heap: the queue or one slot's
 *    parked heap), and one in a heap has no call in flight and no lease
 *    being written; an item with a call is its call's item;
 *  - a run's deadline item is not in run->items; inflight counts the items
 *    with a call, nitems every item (deadlines too), loaded_runs the runs
 *    whose heavy state is in memory. */
#ifndef SBD_ENGINE_INTERNAL_H
#define SBD_ENGINE_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/ulid.h"
#include "engine.h"
#include "heap.h"
#include "server/ingest.h"
#include "server/waits.h"
#include "server/registry.h"
#include "server/store/store.h"
#include "server/store/writer.h"

#define ITEM_PARALLEL QF_PARALLEL
#define ITEM_SLEEP QF_SLEEP
#define ITEM_WAIT QF_WAIT
#define ITEM_INVOKE QF_INVOKE
#define ITEM_DEADLINE QF_DEADLINE
/* memory only, never stored: a run to read back from the store (repair.c) */
#define ITEM_REBUILD 0x100

#define FLOW_KEYS 3 /* per run: two concurrency keys and a throttle key */

struct slot;

struct sbd_call;
struct sbd_run;

/* A queue row in memory: one due (or in flight) call of a run. */
struct sbd_item {
    int64_t id;
    int64_t due_at;         /* wall ms */
    struct sbd_iheap *heap; /* the heap it is in (queue or a slot), or NULL */
    size_t heap_idx;
    struct sbd_run *run;
    struct sbd_item *next; /* in run->items */
    char step_id[48];      /* "step" or a step hash */
    int attempt;           /* 0-based, per step */
    int transport_failures;
    int64_t transport_since; /* ms of the first of the current streak, 0 = none */
    int64_t started_at;      /* first dispatch of attempt 0 (step duration) */
    int64_t dispatched_at;   /* last dispatch (wall ms): a wait counts events after it */
    int64_t progress_at;     /* last checkpoint of this call (wall ms), 0 = none */
    int flags;
    char *last_error;      /* canonical JSON, owned */
    struct sbd_call *call; /* non-NULL while in flight */
    struct slot *held[2];  /* concurrency slots its call counts in (admit.c) */
    int64_t throttle_tat;  /* a throttle admitted it: the key's new tat, stored with its lease */
    bool throttled;        /* waiting in the queue for its throttle key (describe) */
    bool leasing;          /* its lease is being written (lease.c): not in a heap */
    bool leased;           /* its lease is stored: the call may be made */
    bool lease_row;        /* the lease is on its queue row (slots), to clear at the end */
};

struct sbd_memo {
    char hash[48];
    char *value; /* canonical JSON, owned */
};

/* An unfinished run. "Light" fields are always present; the "heavy" state
 * (event, memoized steps) is loaded when a call is built and dropped when
 * the run will sleep for a while. */
struct sbd_run {
    char id[SB_ULID_SIZE];
    char event_id[SB_ULID_SIZE];
    char *function_id;
    struct sbd_run *hnext; /* run table chain */
    struct sbd_item *items;
    int committing; /* writes submitted, not yet committed */
    bool cancelled, ended;
    /* heavy */
    bool loaded;
    char *event;
    char *events; /* a batch: JSON array of its events (NULL: [event]) */
    struct sbd_memo *memo;
    size_t nmemo, capmemo;
    int req_version;
    int load_failures;      /* store reads of its state failed in a row (engine.c) */
    int64_t load_logged_at; /* wall ms of the last run_load_failed log line */
    int64_t handoff_us;     /* mono time a response was processed (metrics) */
    /* pending cancellation callbacks */
    struct sbd_cancel_req *cancels;
    /* flow control (admit.c) */
    struct sbd_item *deadline; /* timeouts.finish timer (not in items), or NULL */
    bool deadline_saved;       /* its queue row is written (or being written) */
    char *flow_keys[FLOW_KEYS];
    bool flow_keys_ready;
    /* its changes that were not stored (repair.c) */
    bool out_of_step;      /* memory is ahead of the store: rebuild when idle */
    int commit_failures;   /* in a row, for the backoff */
    char *unstorable;      /* a change could never be stored: why; the run ends with it */
    int unstorable_status; /* Failed, or Cancelled for a cancellation */
    bool abandoned;        /* not even that end could be stored */
};

struct sbd_cancel_req {
    struct sbd_cancel_req *next;
    void (*cb)(void *ctx, int rc, int status);
    void *ctx;
};

/* The largest answer a worker may give: past it the call fails with
 * ResponseTooLarge (outcome.c). */
#define CALL_MAX_RESPONSE (32u << 20)
/* The largest memoized value (a step's output or error, decide.c). It comes
 * from one answer, but its canonical form can be longer than the answer's
 * text (1e20 is written out as 21 digits); past it the run fails with
 * OutputNotStorable instead of growing without bound. */
#define MEMO_MAX_BYTES (4 * (size_t)CALL_MAX_RESPONSE)

/* One HTTP call in flight. */
struct sbd_call {
    CURL *h;
    struct sbd_item *item;
    /* request body, no cap of its own: built by sysbusd from the run's
     * state, whose parts are bounded where they entered (events by
     * --max-body, memoized values by MEMO_MAX_BYTES), and past
     * USE_API_BYTES (call.c) the steps go by reference instead */
    struct sb_buf req;
    struct sb_buf resp; /* response body, capped at CALL_MAX_RESPONSE */
    struct curl_slist *headers;
    char url[4096];
    int64_t sent_us;
    /* response headers of interest */
    int no_retry; /* -1 absent, 0 false, 1 true */
    char retry_after[64];
    int req_version; /* INT32_MIN when absent */
    bool has_sdk_header;
};

/* ---- the inbox: what other threads hand to the engine thread ----
 * A message is a kind and that kind's payload (the union member named after
 * it). engine.c dispatches every kind through one table (inbox_dispatch): a
 * row per kind with the handler that runs on the engine thread and the
 * answer given instead once the engine has stopped (the inbox is closed:
 * whoever waits is answered at once, e.g. 503). Either takes ownership of the
 * payload; the dispatcher frees the message itself. */
enum sbd_inbox_kind {
    MSG_NEW_RUNS,       /* runs an ingest created (any thread, after its commit) */
    MSG_COMMITTED,      /* a run_update committed or failed (writer thread) */
    MSG_CANCEL,         /* cancel a run (HTTP, or the start-up replay) */
    MSG_REPAIR,         /* a Running run without queue rows (start-up scan) */
    MSG_WAITS_RESOLVED, /* waits an ingest or a child's end resolved (writer thread) */
    MSG_CHECKPOINT,     /* steps a v4 SDK completed inside a call (HTTP) */
    MSG_LEASED,         /* a call's lease was written, or not (writer thread) */
    MSG_DESCRIBE,       /* what the engine holds of a run (HTTP) */
    MSG_KINDS
};

struct sbd_inbox_msg {
    struct sbd_inbox_msg *next;
    enum sbd_inbox_kind kind;
    union {
        struct {
            struct sbd_new_run *runs; /* owned array */
            size_t n;
        } new_runs;
        struct {
            struct sbd_run_update *op; /* owned */
            int rc;                    /* the commit's result */
        } committed;
        struct {
            char run_id[SB_ULID_SIZE];
            struct sbd_cancel_req *req; /* owned; answered when the cancellation commits */
        } cancel;
        struct {
            char run_id[SB_ULID_SIZE];
        } repair;
        struct {
            struct sbd_wait_resolution *res; /* owned array */
            size_t n;
        } waits_resolved;
        struct {
            char run_id[SB_ULID_SIZE];
            int64_t qi_id;      /* the call's item */
            json_t *steps;      /* owned */
            struct sb_req *req; /* answered after the commit */
        } checkpoint;
        struct {
            char run_id[SB_ULID_SIZE];
            int64_t qi_id; /* the call's item */
            int rc;        /* the lease write's result */
        } leased;
        struct {
            char run_id[SB_ULID_SIZE];
            void (*cb)(void *ctx, json_t *desc);
            void *ctx;
        } describe;
    };
};

struct sbd_engine {
    struct sbd *sbd;
    pthread_t thread;
    CURLM *multi;
    int epfd;              /* epoll over curl's sockets and wakefd */
    int wakefd;            /* eventfd: inbox posts and stop */
    int64_t curl_timer_ms; /* curl's requested timeout (mono ms), -1 = none */
    int stop;
    bool inbox_closed;      /* inbox_lock: the thread is gone; posts are answered at once */
    struct sbd_iheap queue; /* items by (due_at, id) */
    /* concurrency and throttle keys in use (admit.c) */
    struct slot **slots;
    size_t nslot_buckets, nslots;
    int64_t next_sweep_at;
    struct ghost *ghosts; /* slots held by calls in flight at the last stop (lease.c) */
    size_t nghosts;
    /* run table */
    struct sbd_run **buckets;
    size_t nbuckets, nruns;
    size_t nitems;
    int64_t inflight;
    int64_t loaded_runs;
    CURL **idle_handles; /* reusable easy handles */
    size_t nidle, capidle;
    struct sbd_reg_snap *snap; /* registry snapshot in use */
    /* inbox */
    pthread_mutex_t inbox_lock;
    struct sbd_inbox_msg *inbox_head, *inbox_tail;
    /* stats for other threads */
    int64_t stat_items, stat_inflight, stat_runs; /* atomic */
};

/* ---- inbox.c: the inbox and its dispatch table ---- */
/* A message of kind, zeroed (NULL when out of memory). Any thread. */
struct sbd_inbox_msg *engine_inbox_msg(enum sbd_inbox_kind kind);
/* Hands m (owned) to the engine thread; answers it at once with its kind's
 * stopped answer when the engine has stopped. Any thread. */
void engine_inbox_post(struct sbd_engine *e, struct sbd_inbox_msg *m);
/* Writes the eventfd: the loop wakes up. Any thread. */
void engine_wake(struct sbd_engine *e);
/* Handles every queued message. Engine thread. */
void engine_inbox_drain(struct sbd_engine *e);
/* After the engine thread is gone: answers every queued message and every
 * later post at once. */
void engine_inbox_close(struct sbd_engine *e);
/* Writer thread, from runop.c's done callback: MSG_COMMITTED. */
void engine_post_committed(struct sbd_engine *e, struct sbd_run_update *op, int rc);
/* Start-up scan (sbd_engine_start's thread): MSG_REPAIR for run_id. */
void engine_post_repair(struct sbd_engine *e, const char *run_id);
/* Every kind has its row (sbd_engine_start asserts it). */
bool inbox_table_complete(void);

/* ---- runs.c: the run table, items, the queue (engine thread) ---- */
/* Puts it in the queue (nothing when it is in a heap already). */
void engine_heap_push(struct sbd_engine *e, struct sbd_item *it);
/* Takes it out of the queue or the slot it is parked on. */
void engine_heap_remove(struct sbd_engine *e, struct sbd_item *it);
struct sbd_run *engine_run_find(struct sbd_engine *e, const char *id);
struct sbd_run *engine_run_add(struct sbd_engine *e, const char *id);
/* Frees a run that has ended and has no pending commit. */
void engine_run_free(struct sbd_engine *e, struct sbd_run *r);
struct sbd_item *engine_item_new(struct sbd_engine *e, struct sbd_run *r, int64_t id,
                                 const char *step_id);
void engine_item_free(struct sbd_engine *e, struct sbd_item *it);
void engine_run_unload(struct sbd_engine *e, struct sbd_run *r);
/* Memoizes value for hash in a loaded run (replacing an earlier value).
 * SB_ENOMEM leaves the run as it was: a caller inside a change marks the
 * change alloc_failed (the writer refuses it; the run is rebuilt from the
 * store), one outside any change unloads the run. */
int engine_memo_put(struct sbd_engine *e, struct sbd_run *r, const char *hash, const char *value);
/* Makes the run's idle items dispatchable (after a commit). */
void engine_run_schedule(struct sbd_engine *e, struct sbd_run *r);
/* Frees all the run's items, its deadline included. */
void engine_run_drop_items(struct sbd_engine *e, struct sbd_run *r);
/* Adds a queue row read from the store to its run (the deadline one goes to
 * r->deadline); not put in the queue. */
struct sbd_item *engine_item_load(struct sbd_engine *e, struct sbd_run *r,
                                  const struct sbd_qitem_rec *q);
/* Creates the run's timeouts.finish timer, due at due_at (not yet stored). */
void engine_deadline_new(struct sbd_engine *e, struct sbd_run *r, int64_t due_at);

/* ---- check.c: the invariants above, in full (engine thread) ---- */
/* 0 when every invariant of the file header and heap.h holds, else
 * SB_EINTERNAL with err naming the first one broken. O(runs + items). */
int engine_check(const struct sbd_engine *e, struct sb_err *err);
/* engine_check, logging and aborting when it fails. */
void engine_check_or_abort(const struct sbd_engine *e);
/* At every turn of the engine loop in a build with CHECK_INVARIANTS=1;
 * nothing otherwise. */
#ifdef SBD_CHECK_INVARIANTS
#define ENGINE_CHECK(e) engine_check_or_abort(e)
#else
#define ENGINE_CHECK(e) ((void)(e))
#endif
/* A stranded run would never go on: it has not ended, yet has no item and
 * no commit pending. Never true of a run in the table. */
static inline bool engine_run_stranded(const struct sbd_run *r)
{
    return !r->ended && r->committing == 0 && !r->items;
}

/* ---- admit.c: concurrency, throttle and timeouts before a call (engine thread) ---- */
enum sbd_admit_verdict {
    ADMIT_GO,        /* make the call now (it holds its concurrency slots) */
    ADMIT_PARKED,    /* waits on a full concurrency key: handed back later */
    ADMIT_LATER,     /* throttled: it->due_at was moved; put it back in the queue */
    ADMIT_TIMED_OUT, /* waited longer than timeouts.start: the run was cancelled */
};
enum sbd_admit_verdict admit_call(struct sbd_engine *e, struct sbd_item *it, const struct sbd_fn *f,
                                  int64_t now);
/* The call of it ended (or was aborted): frees its slots, hands back a
 * parked call for each. */
void admit_release(struct sbd_engine *e, struct sbd_item *it);
/* The run's timeouts.finish timer came due: cancels it. */
void admit_deadline_due(struct sbd_engine *e, struct sbd_item *it, const struct sbd_fn *f);
/* Once a second: cancels parked runs past timeouts.start, frees idle keys. */
void admit_sweep(struct sbd_engine *e, int64_t now);
void admit_run_free(struct sbd_run *r);
void admit_free(struct sbd_engine *e);
/* The slot of key (created when new; NULL when out of memory). */
struct slot *admit_slot(struct sbd_engine *e, const char *key);
const char *admit_slot_key(const struct slot *s);
/* The key of the concurrency slot it is parked on, or NULL. */
const char *admit_parked_key(const struct sbd_engine *e, const struct sbd_item *it);
/* One more call counts in s / one less (the first parked call is handed back). */
void admit_slot_hold(struct slot *s);
void admit_slot_unhold(struct sbd_engine *e, struct slot *s);
/* Walks every slot (check.c): its parked heap (iheap_check), its count and
 * the table's. 0 with *parked = the items parked on slots, or SB_EINTERNAL. */
int admit_check(const struct sbd_engine *e, size_t *parked, struct sb_err *err);

/* ---- lease.c: concurrency slots that survive a crash (engine thread; its
 * writes: lease.c) ---- */
/* After admit_call: true when the call must wait for its lease (written
 * now; MSG_LEASED puts it back in the queue with it->leased set). */
bool lease_begin(struct sbd_engine *e, struct sbd_item *it, int64_t now);
/* MSG_LEASED: the lease was written (the call is made) or not (retried). */
void engine_handle_leased(struct sbd_engine *e, struct sbd_inbox_msg *m);
/* The leased call of it ended: its lease is cleared in the store. */
void lease_end(struct sbd_engine *e, struct sbd_item *it);
/* At start: a queue row with a live lease holds its slots until
 * min(lease_until, now + --orphan-hold). */
void lease_restore(struct sbd_engine *e, const struct sbd_qitem_rec *q, int64_t now);
/* At start: a throttle key's stored theoretical arrival time. */
void admit_throttle_restore(struct sbd_engine *e, const char *key, int64_t tat);
/* Frees the slots of ghosts whose time is up. */
void lease_sweep(struct sbd_engine *e, int64_t now);
void lease_free(struct sbd_engine *e);

/* ---- call.c: one call to a worker (engine thread) ---- */
int call_start(struct sbd_engine *e, struct sbd_item *it, const struct sbd_fn *f);
void call_abort(struct sbd_engine *e, struct sbd_call *c);
void call_free(struct sbd_engine *e, struct sbd_call *c);
/* Builds the JSON request body of a call into b (canonical form). */
int call_build_body(const struct sbd_run *r, const struct sbd_item *it, int max_attempts,
                    const char *env_name, const char *fn_id, struct sb_buf *b);

/* ---- outcome.c: what an answer means (no state of its own) ---- */
enum sbd_res_kind { RES_TRANSPORT, RES_DONE, RES_OPS, RES_ERROR };
/* Step operations accepted in one response (Inngest's limit of steps per
 * run is 1,000 too). */
#define OUTCOME_MAX_OPS 1000
struct sbd_call_result {
    enum sbd_res_kind kind;
    int status;
    bool retriable;
    int64_t retry_after_ms; /* -1 when none */
    char *message;          /* short reason (transport text or error summary) */
    char *output;           /* RES_DONE: canonical JSON of the return value */
    char *error;            /* RES_ERROR: canonical JSON error object */
    json_t *ops;            /* RES_OPS: array of op objects (owned) */
    int req_version;        /* X-Inngest-Req-Version, INT32_MIN when absent */
};
/* Interprets a finished curl transfer (code) with the data captured in c.
 * call_timed_out_after_send: the response timeout hit after the request was
 * sent (a slow step, not an unreachable worker). */
void outcome_parse(CURLcode code, bool timed_out_after_send, long status, struct sbd_call *c,
                   struct sbd_call_result *out);
void outcome_free(struct sbd_call_result *res);
/* {"name":"Error","message":msg} in canonical form (malloc'd). */
char *outcome_error_json(const char *name, const char *msg);

struct sbd_run_update;

/* ---- decide.c: a result becomes the run's next state (engine thread) ---- */
/* Canonical JSON of a value a worker sent: {key: v}, or v alone when key is
 * NULL (v NULL = null), in at most max bytes. 0 with *out (malloc'd);
 * SB_ETOOBIG past max, SB_EINVAL when nested too deeply to write, SB_ENOMEM;
 * *out is NULL then. */
int decide_encode_value(const char *key, const json_t *v, size_t max, char **out);
/* The step id of an op (its "id"): non-empty, at most 47 bytes, no quotes,
 * spaces or controls; NULL when it has none valid. Borrowed from op. */
const char *engine_op_step_id(const json_t *op);
/* Applies a call result to the run (in memory) and submits the writes. */
void decide_call_result(struct sbd_engine *e, struct sbd_item *it, struct sbd_call_result *res);
/* A timer item came due (a sleep, or a wait's timeout): its step completes
 * with null. */
void decide_timer(struct sbd_engine *e, struct sbd_item *it);
/* Ends a run with a status and error/output, submitting the write (op, or
 * a new one when NULL). A Failed run without an error gets a fixed one. */
void decide_finish(struct sbd_engine *e, struct sbd_run *r, struct sbd_run_update *op, int status,
                   const char *output, const char *error, int64_t started_at);
/* Ends a run (Failed or Cancelled) with the error {name, message}. */
void decide_fail(struct sbd_engine *e, struct sbd_run *r, struct sbd_run_update *op, int status,
                 int64_t started_at, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* ---- wait.c: step.waitForEvent (engine thread, but *_in_txn) ---- */
/* A wait registered by a run_update. */
struct sbd_wait_reg {
    int64_t item_id; /* the item that times it out */
    char *hash, *event_name, *expr;
    char *trigger_event;             /* the run's event, for `event.` in the expression */
    char min_event_id[SB_ULID_SIZE]; /* events with an id >= this may match */
    int64_t seq;                     /* stack position if it resolves at once */
    int64_t discovery_qid;           /* discovery item to add if it resolves at once (0: none) */
    int flags;
    char *matched; /* out (apply): the event that resolved it at once */
};
/* Reads a WaitForEvent op into w (strings malloc'd). Returns 0; SB_EINVAL
 * for a bad op, SB_ENOMEM, with err saying why (w is then empty). */
int wait_parse_op(const json_t *op, int64_t now, struct sbd_wait_reg *w, int64_t *timeout_at,
                  struct sb_err *err);
void wait_reg_free(struct sbd_wait_reg *w);
/* In the writer's transaction (runop_apply_in_txn): registers w and resolves
 * it at once when a matching event arrived since the call was made. */
int wait_register_in_txn(struct sbd_store *st, struct sbd_run_update *op, struct sbd_wait_reg *w,
                         struct sb_err *err);
/* Engine memory follows a resolution made in the store. */
void wait_apply_resolution(struct sbd_engine *e, struct sbd_run *r, int64_t item_id,
                           const char *hash, const char *memo, int64_t discovery_qid, int flags);
/* Engine side, after the commit of a run_update with waits. */
void wait_after_commit(struct sbd_engine *e, struct sbd_run *r, struct sbd_run_update *op);
/* MSG_WAITS_RESOLVED: the runs' memory follows resolutions made in the store. */
void engine_handle_waits_resolved(struct sbd_engine *e, struct sbd_inbox_msg *m);

/* ---- invoke.c: step.invoke (engine thread, but *_in_txn) ---- */
struct sbd_invoke_reg {
    int64_t item_id; /* the parent's timeout item */
    char *hash;
    char child_run_id[SB_ULID_SIZE];
    struct sbd_ingest_batch child; /* the inngest/function.invoked event and the child run */
};
/* Prepares an invocation from an InvokeFunction op: the child's event and
 * run. Returns 0; SB_ENOTFOUND when the target function is not registered
 * (the step then fails with err's message, the run goes on); SB_EINVAL when
 * the op is malformed, SB_ENOMEM (the run fails with err's message). inv is
 * the caller's to free with invoke_reg_free in every case. */
int invoke_prepare(struct sbd_engine *e, struct sbd_run *r, const json_t *op, int64_t now,
                   struct sbd_invoke_reg *inv, int64_t *timeout_at, struct sb_err *err);
void invoke_reg_free(struct sbd_invoke_reg *inv);
/* In the transaction: stores the child event and run, and the parent's wait. */
int invoke_register_in_txn(struct sbd_store *st, struct sbd_run_update *op,
                           struct sbd_invoke_reg *inv, struct sb_err *err);
/* In the transaction that ends a run: resolves the run that invoked it. */
int invoke_resolve_parent_in_txn(struct sbd_store *st, struct sbd_run_update *op,
                                 struct sb_err *err);
/* The memo of a timed-out invocation. */
#define INVOKE_TIMEOUT_MEMO                                                           \
    "{\"error\":{\"message\":\"Timed out waiting for invoked function to complete\"," \
    "\"name\":\"InngestInvokeTimeoutError\"}}"

/* ---- checkpoint.c: v4 async checkpoints (engine thread) ---- */
/* MSG_CHECKPOINT: memoizes the steps; the request is answered after the
 * commit (200), or at once (409 stale, 400 refused, 503). */
void engine_handle_checkpoint(struct sbd_engine *e, struct sbd_inbox_msg *m);

/* ---- runop.c: the write operation for one run's state change (built on the
 * engine thread, applied in the writer's transaction) ---- */
struct sbd_run_update {
    struct sbd_wop wop;
    struct sbd_engine *e;
    struct sbd_run *run;
    char run_id[SB_ULID_SIZE];
    char event_id[SB_ULID_SIZE];
    bool batch;        /* the run has several events (batchEvents) */
    int finish_status; /* -1: not finishing */
    char *output, *error;
    int64_t started_at;
    int64_t now;
    int req_version;
    bool progress;
    struct sbd_step_rec *steps; /* strings owned */
    size_t nsteps;
    struct sbd_qitem_rec *puts; /* strings owned */
    size_t nputs;
    int64_t *dels;
    size_t ndels;
    int64_t handoff_from_us;
    struct sbd_ingest_batch lifecycle; /* events emitted by the run's end (lifecycle.c) */
    struct sbd_wait_reg *waits;        /* waits to register (owned) */
    size_t nwaits;
    struct sbd_invoke_reg *invokes; /* invocations to start (owned) */
    size_t ninvokes;
    struct sbd_wait_resolution *resolved; /* parents resolved by this run's end */
    size_t nresolved;
    int64_t wait_timeout_item;     /* a wait timing out: conflict if already resolved */
    struct sb_req *checkpoint_req; /* answered when this op commits */
    bool alloc_failed;             /* a part could not be allocated: apply refuses it */
    bool fallback;                 /* the end written after this run's state could not be */
    char *fail_msg;                /* why the commit failed (set by done) */
};
struct sbd_run_update *runop_new(struct sbd_engine *e, struct sbd_run *r);
/* Forgets the waits and invocations op would register (the run ends). */
void runop_drop_pending(struct sbd_run_update *op);
int runop_add_step(struct sbd_run_update *op, const struct sbd_step_rec *s);
int runop_put_item(struct sbd_run_update *op, const struct sbd_item *it);
int runop_del_item(struct sbd_run_update *op, int64_t id);
void runop_submit(struct sbd_run_update *op);
void runop_free(struct sbd_run_update *op);
/* Engine side of a commit: called on the engine thread for MSG_COMMITTED. */
void runop_committed(struct sbd_engine *e, struct sbd_run_update *op, int rc);

/* ---- repair.c: a run whose change was not stored (engine thread) ---- */
/* A change of r failed with rc: r is out of step with the store. */
void repair_note_failure(struct sbd_run *r, struct sbd_run_update *op, int rc);
/* Rebuilds r from the store (no change of it pending), or ends it when a
 * change could never be stored, or brings it back later (ITEM_REBUILD). */
void repair_rebuild(struct sbd_engine *e, struct sbd_run *r);
/* An ITEM_REBUILD item came due. */
void repair_rebuild_due(struct sbd_engine *e, struct sbd_item *it);

#endif
