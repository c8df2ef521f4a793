/* sq.h - the SQLite backend's private header (src/server/store/sqlite/
 * only): the connection, the statements it prepares, the helpers every file
 * of the backend uses, and the prototypes of its operations (sq_<op>, one per
 * entry of SBD_STORE_OPS, generated from that list; conn.c puts them in the
 * backend's table). Nothing outside this folder includes it or sqlite3.h.
 *
 * Files: conn.c (connections, statements, row scans, transactions, the ops
 * table), schema.c (schema and migrations), runs.c (events, runs, steps,
 * retention, the engine's run reads), apps.c (apps and functions), queue.c
 * (queue rows and leases), waits.c (waits), flow.c (cancellations, crons,
 * flow keys, deferred starts), views.c (the API's record reads).
 *
 * Single writer: this backend is the only writer of its database file (one
 * process, one writable connection; sysbusd's data directory is its own).
 * What relies on that is listed in store.h ("Single writer") and marked
 * "single writer" where it is done here. */
#ifndef SBD_STORE_SQ_H
#define SBD_STORE_SQ_H

#include <sqlite3.h>

#include "server/store/store.h"

/* Every statement the store runs, prepared once per connection on first use.
 * Enum values are bound as parameters (their names are in the code that
 * binds them), never written into the SQL as numbers. */
#define SQ_STMT_LIST(X)                                                                           \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                   \
    X(COMMIT, "COMMIT")                                                                           \
    X(ROLLBACK, "ROLLBACK")                                                                       \
    X(SAVEPOINT, "SAVEPOINT op")                                                                  \
    X(RELEASE, "RELEASE op")                                                                      \
    X(ROLLBACK_TO, "ROLLBACK TO op")                                                              \
    X(EVENT_INSERT, "INSERT INTO events(id,name,body,ts,received_at,dedupe_key) "                 \
                    "VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING")                             \
    X(EVENT_DEDUPE, "SELECT id FROM events WHERE dedupe_key=? AND received_at>=? "                \
                    "ORDER BY received_at LIMIT 1")                                               \
    X(RUN_INSERT, "INSERT INTO runs(id,function_id,app_id,event_id,status,created_at,"            \
                  "updated_at) VALUES(?,?,?,?,?,?,?)")                                            \
    X(RUN_FINISH, "UPDATE runs SET status=?,output=?,error=?,ended_at=?,updated_at=?,"            \
                  "started_at=COALESCE(started_at,?) WHERE id=?")                                 \
    X(RUN_PROGRESS, "UPDATE runs SET started_at=COALESCE(started_at,?),updated_at=?,"             \
                    "req_version=? WHERE id=?")                                                   \
    X(QUEUE_DEL_RUN, "DELETE FROM queue WHERE run_id=?")                                          \
    X(STEP_PUT, "INSERT INTO steps(run_id,hash,seq,name,op,status,attempts,output,error,"         \
                "started_at,ended_at) VALUES(?,?,?,?,?,?,?,?,?,?,?) "                             \
                "ON CONFLICT(run_id,hash) DO UPDATE SET seq=excluded.seq,"                        \
                "name=COALESCE(excluded.name,name),op=COALESCE(excluded.op,op),"                  \
                "status=excluded.status,attempts=excluded.attempts,output=excluded.output,"       \
                "error=COALESCE(excluded.error,error),"                                           \
                "started_at=COALESCE(started_at,excluded.started_at),"                            \
                "ended_at=excluded.ended_at")                                                     \
    X(QUEUE_PUT, "INSERT OR REPLACE INTO queue(id,run_id,step_id,attempt,due_at,started_at,"      \
                 "transport_failures,transport_since,last_error,flags) "                          \
                 "VALUES(?,?,?,?,?,?,?,?,?,?)")                                                   \
    X(QUEUE_DEL, "DELETE FROM queue WHERE id=?")                                                  \
    X(QUEUE_LEASE, "UPDATE queue SET lease_until=?,lease_keys=? WHERE id=?")                      \
    X(APP_UPSERT, "INSERT INTO apps(id,url,sdk,framework,app_version,checksum,created_at,"        \
                  "synced_at) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "             \
                  "url=excluded.url,sdk=excluded.sdk,framework=excluded.framework,"               \
                  "app_version=excluded.app_version,checksum=excluded.checksum,"                  \
                  "synced_at=excluded.synced_at,sync_error=NULL,sync_error_at=NULL,"              \
                  "deleted_at=NULL")                                                              \
    X(APP_SYNC_ERROR, "UPDATE apps SET sync_error=?,sync_error_at=? WHERE url=?")                 \
    X(APP_DELETE, "UPDATE apps SET deleted_at=? WHERE id=?")                                      \
    X(APP_FNS_REMOVE, "UPDATE functions SET removed_at=? WHERE app_id=? AND "                     \
                      "removed_at IS NULL")                                                       \
    X(FN_PUT, "INSERT INTO functions(id,app_id,name,config,created_at,updated_at) "               \
              "VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET app_id=excluded.app_id,"         \
              "name=excluded.name,config=excluded.config,updated_at=excluded.updated_at,"         \
              "removed_at=NULL")                                                                  \
    X(FN_LIST_APP, "SELECT id FROM functions WHERE app_id=? AND removed_at IS NULL")              \
    X(FN_REMOVE, "UPDATE functions SET removed_at=? WHERE id=?")                                  \
    X(PURGE_STEPS, "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE "                \
                   "ended_at<? ORDER BY ended_at LIMIT ?)")                                       \
    X(PURGE_RUN_EVENTS, "DELETE FROM run_events WHERE run_id IN (SELECT id FROM runs WHERE "      \
                        "ended_at<? ORDER BY ended_at LIMIT ?)")                                  \
    X(PURGE_RUNS, "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE ended_at<? "           \
                  "ORDER BY ended_at LIMIT ?)")                                                   \
    X(PURGE_EVENTS, "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE "            \
                    "e.id<? AND NOT EXISTS (SELECT 1 FROM runs r WHERE "                          \
                    "r.event_id=e.id) AND NOT EXISTS (SELECT 1 FROM run_events re WHERE "         \
                    "re.event_id=e.id) AND NOT EXISTS (SELECT 1 FROM deferred d WHERE "           \
                    "d.event_id=e.id) LIMIT ?)")                                                  \
    X(QUEUE_MAX, "SELECT COALESCE(MAX(id),0) FROM queue")                                         \
    X(QUEUE_SCAN, "SELECT q.id,q.run_id,q.step_id,q.attempt,q.due_at,q.started_at,"               \
                  "q.transport_failures,q.transport_since,q.last_error,q.flags,"                  \
                  "r.function_id,r.event_id,q.lease_until,q.lease_keys FROM queue q JOIN runs r " \
                  "ON r.id=q.run_id "                                                             \
                  "ORDER BY q.due_at,q.id")                                                       \
    X(QUEUE_SCAN_RUN, "SELECT q.id,q.run_id,q.step_id,q.attempt,q.due_at,q.started_at,"           \
                      "q.transport_failures,q.transport_since,q.last_error,q.flags,"              \
                      "r.function_id,r.event_id,q.lease_until,q.lease_keys FROM queue q JOIN "    \
                      "runs r ON r.id=q.run_id "                                                  \
                      "WHERE q.run_id=? AND r.status=?")                                          \
    X(DEFERRED_FIND, "SELECT id,function_id,app_id,key,event_id,size,first_at,due_at,kind "       \
                     "FROM deferred WHERE kind=? AND function_id=? AND key=?")                    \
    X(DEFERRED_GET, "SELECT id,function_id,app_id,key,event_id,size,first_at,due_at,kind "        \
                    "FROM deferred WHERE id=?")                                                   \
    X(DEFERRED_PUT, "INSERT OR REPLACE INTO deferred(id,kind,function_id,app_id,key,"             \
                    "event_id,size,first_at,due_at) VALUES(?,?,?,?,?,?,?,?,?)")                   \
    X(DEFERRED_DEL, "DELETE FROM deferred WHERE id=?")                                            \
    X(DEFERRED_DUE, "SELECT id,due_at FROM deferred ORDER BY due_at")                             \
    X(DEFERRED_HELD, "SELECT due_at FROM deferred WHERE kind=?2 AND event_id=?1 UNION ALL "       \
                     "SELECT d.due_at FROM run_events re JOIN deferred d ON d.id=re.run_id "      \
                     "WHERE re.event_id=?1 LIMIT 1")                                              \
    X(RUN_EVENTS_MOVE, "UPDATE run_events SET run_id=? WHERE run_id=?")                           \
    X(RUN_EVENT_ADD, "INSERT OR REPLACE INTO run_events(run_id,seq,event_id) VALUES(?,?,?)")      \
    X(RUN_STATE_EVENTS, "SELECT e.body FROM run_events re JOIN events e ON e.id=re.event_id "     \
                        "WHERE re.run_id=? ORDER BY re.seq")                                      \
    X(ORPHANS, "SELECT r.id FROM runs r WHERE r.status=?1 AND NOT EXISTS "                        \
               "(SELECT 1 FROM queue q WHERE q.run_id=r.id AND (q.flags & ?2)=0)")                \
    X(RUN_STATE, "SELECT r.function_id,r.status,r.req_version,e.body FROM runs r "                \
                 "JOIN events e ON e.id=r.event_id WHERE r.id=?")                                 \
    X(RUN_STATE_STEPS, "SELECT hash,output FROM steps WHERE run_id=? AND seq IS NOT NULL "        \
                       "ORDER BY seq")                                                            \
    X(COUNT_QUEUE, "SELECT COUNT(*) FROM queue")                                                  \
    X(COUNT_RUNNING, "SELECT COUNT(*) FROM runs WHERE status=?")                                  \
    X(FN_SCAN, "SELECT f.id,f.app_id,f.config,f.removed_at IS NOT NULL,a.url FROM "               \
               "functions f LEFT JOIN apps a ON a.id=f.app_id")                                   \
    X(APP_SCAN, "SELECT id,url,checksum FROM apps WHERE deleted_at IS NULL")                      \
    X(APPS_AT_URL, "SELECT id FROM apps WHERE url=? AND id<>? AND deleted_at IS NULL")            \
    X(APP_GET, "SELECT checksum,url FROM apps WHERE id=? AND deleted_at IS NULL")                 \
    X(WAIT_PUT, "INSERT OR REPLACE INTO waits(item_id,run_id,step_hash,event_name,"               \
                "expression,child_run_id,created_at) VALUES(?,?,?,?,?,?,?)")                      \
    X(WAIT_CHILD, "SELECT w.item_id,w.run_id,w.step_hash,w.created_at,"                           \
                  "(SELECT COUNT(*) FROM queue q WHERE q.run_id=w.run_id AND (q.flags & ?1)=0),"  \
                  "COALESCE((SELECT q.flags FROM queue q WHERE q.id=w.item_id),0) "               \
                  "FROM waits w WHERE w.child_run_id=?2")                                         \
    X(WAIT_DEL, "DELETE FROM waits WHERE item_id=?")                                              \
    X(WAIT_DEL_RUN, "DELETE FROM waits WHERE run_id=?")                                           \
    X(WAIT_COUNT, "SELECT COUNT(*) FROM waits")                                                   \
    X(WAITS_FOR, "SELECT w.item_id,w.run_id,w.step_hash,w.event_name,w.expression,"               \
                 "w.created_at,e.body,(SELECT COUNT(*) FROM queue q WHERE q.run_id=w.run_id "     \
                 "AND (q.flags & ?1)=0),"                                                         \
                 "COALESCE((SELECT q.flags FROM queue q WHERE q.id=w.item_id),0) "                \
                 "FROM waits w JOIN runs r ON r.id=w.run_id JOIN events e ON e.id=r.event_id "    \
                 "WHERE w.event_name=?2 ORDER BY w.item_id")                                      \
    X(EVENTS_SINCE, "SELECT id,body FROM events WHERE name=? AND id>=? ORDER BY id")              \
    X(NEXT_SEQ, "SELECT COALESCE(MAX(seq),-1)+1 FROM steps WHERE run_id=?")                       \
    X(RUN_TRIGGER, "SELECT r.function_id,e.name,e.body FROM runs r JOIN events e ON "             \
                   "e.id=r.event_id WHERE r.id=?")                                                \
    X(RUNNING_OF, "SELECT r.id,r.created_at,e.body FROM runs r JOIN events e ON "                 \
                  "e.id=r.event_id WHERE r.status=?5 AND (?1 IS NULL OR r.function_id=?1) "       \
                  "AND (?2 IS NULL OR r.app_id=?2) AND (?3=0 OR r.created_at>=?3) "               \
                  "AND (?4=0 OR r.created_at<?4) ORDER BY r.id")                                  \
    X(FLOW_GET, "SELECT run_id,expires_at FROM flow_keys WHERE kind=? AND key=?")                 \
    X(FLOW_PUT, "INSERT OR REPLACE INTO flow_keys(kind,key,run_id,expires_at) "                   \
                "VALUES(?,?,?,?)")                                                                \
    X(FLOW_DEL_RUN, "DELETE FROM flow_keys WHERE run_id=? AND expires_at=0")                      \
    X(THROTTLE_PUT, "INSERT INTO flow_keys(kind,key,run_id,expires_at) VALUES(?,?,NULL,?) "       \
                    "ON CONFLICT(kind,key) DO UPDATE SET "                                        \
                    "expires_at=MAX(expires_at,excluded.expires_at)")                             \
    X(THROTTLE_SCAN, "SELECT key,expires_at FROM flow_keys WHERE kind=? AND expires_at>?")        \
    X(RATE_COUNT, "SELECT COUNT(*) FROM rate_hits WHERE key=? AND at>=?")                         \
    X(RATE_HIT, "INSERT INTO rate_hits(key,at) VALUES(?,?)")                                      \
    X(PURGE_FLOW, "DELETE FROM flow_keys WHERE expires_at>0 AND expires_at<?")                    \
    X(PURGE_RATE, "DELETE FROM rate_hits WHERE at<?")                                             \
    X(CRON_GET, "SELECT expression,next_at FROM crons WHERE function_id=? AND idx=?")             \
    X(CRON_PUT, "INSERT OR REPLACE INTO crons(function_id,idx,expression,next_at) "               \
                "VALUES(?,?,?,?)")                                                                \
    X(CRON_DEL, "DELETE FROM crons WHERE function_id=? AND idx>=?")                               \
    X(CRON_PRUNE, "DELETE FROM crons WHERE function_id NOT IN (SELECT id FROM functions "         \
                  "WHERE removed_at IS NULL)")                                                    \
    X(CRON_SCAN, "SELECT function_id,idx,expression,next_at FROM crons ORDER BY next_at")         \
    X(CANCEL_REQ_PUT, "INSERT INTO cancel_requests(run_id,reason,created_at) VALUES(?,?,?) "      \
                      "ON CONFLICT(run_id) DO NOTHING")                                           \
    X(CANCEL_REQ_DEL, "DELETE FROM cancel_requests WHERE run_id=?")                               \
    X(CANCEL_REQ_COUNT, "SELECT COUNT(*) FROM cancel_requests")                                   \
    X(SINGLETON_ANY, "SELECT EXISTS (SELECT 1 FROM flow_keys WHERE kind=?)")                      \
    X(CANCEL_REQ_SCAN, "SELECT run_id,reason FROM cancel_requests")                               \
    X(CANCELLATION_PUT, "INSERT INTO cancellations(id,app_id,function_id,started_after,"          \
                        "started_before,expression,created_at,run_count) "                        \
                        "VALUES(?,?,?,?,?,?,?,?)")

enum sq_stmt_id {
#define SQ_X_ENUM(name, sql) STMT_##name,
    SQ_STMT_LIST(SQ_X_ENUM)
#undef SQ_X_ENUM
        STMT__COUNT
};

/* What the writable connection counts so that common operations can skip a
 * query (single writer: see store.h, "Single writer" 1). Never below the
 * truth: a counter that says 0 while rows exist would make events ignore
 * open waits. */
struct sq_tally {
    int64_t open_waits;   /* rows in `waits` */
    int64_t open_cancels; /* rows in `cancel_requests` */
    bool singletons;      /* singleton keys may exist */
};

/* A connection (writable or read-only). */
struct sq_conn {
    struct sbd_store base; /* first: what the sbd_store_* calls dispatch through */
    sqlite3 *db;
    int readonly;
    int lock_fd; /* the writer's lock on <path>.lock (sq_writer_lock), or -1 */
    struct sq_tally tally;
    /* the tally when the transaction and the savepoint began: rolling back
     * restores it (store.h, "Single writer" 4) */
    struct sq_tally tally_at_begin, tally_at_savepoint;
    sqlite3_stmt *stmt[STMT__COUNT];
};

static inline struct sq_conn *sq_conn(struct sbd_store *st)
{
    return (struct sq_conn *)st;
}

/* The backend's table (conn.c). */
extern const struct sbd_store_ops sq_store_ops;

/* The operations, sq_<name> for each entry of SBD_STORE_OPS. */
#define SQ_OP_PROTO(ret, name, params, args) ret sq_##name params;
#define SQ_VOP_PROTO(name, params, args) void sq_##name params;
SBD_STORE_OPS(SQ_OP_PROTO, SQ_VOP_PROTO)
#undef SQ_OP_PROTO
#undef SQ_VOP_PROTO
int sq_open(const char *url, struct sbd_store **out, struct sb_err *err);
int sq_open_reader(const char *url, struct sbd_store **out, struct sb_err *err);
void sq_close(struct sbd_store *st);
int sq_backup(const char *url, const char *path, struct sb_err *err);
int sq_restore(const char *url, const char *path, bool force, struct sb_err *err);
int sq_export(const char *url, FILE *out, struct sb_err *err);
/* Creates the file path, mode 0600, unless it exists (SB_EEXISTS). */
int sq_create_private(const char *path, struct sb_err *err);
/* The file a sqlite:// URL names (a pointer into url), or NULL with err. */
const char *sq_url_path(const char *url, struct sb_err *err);
/* The lock one writer of the database at path holds for its life: an
 * exclusive flock on <path>.lock, which names the holder's pid. 0 with *fd;
 * SB_EBUSY when another process holds it (err names its pid); SB_EIO. */
int sq_writer_lock(const char *path, int *fd, struct sb_err *err);

/* Prepared statement id, reset and with bindings cleared; NULL on error. */
sqlite3_stmt *sq_stmt(struct sbd_store *st, enum sq_stmt_id id);
/* Binds helpers: NULL strings bind SQL NULL. */
void sq_bind_text(sqlite3_stmt *s, int idx, const char *v);
/* Binds v, or NULL when v <= 0 (an optional time). */
void sq_bind_opt_int64(sqlite3_stmt *s, int idx, int64_t v);
/* Rows the last statement on st changed. */
int64_t sq_changes(struct sbd_store *st);

/* The one place the store steps a statement (docs/internals/store.md, "Row
 * scans"): 1 when s is on a row, 0 when the scan is complete (SQLITE_DONE),
 * or a negative code with err filled: SB_EBUSY (busy or locked past the busy
 * timeout), SB_ETOOBIG, SB_ENOMEM, SB_EIO (I/O error, disk full), SB_EINVAL
 * (a constraint) or SB_ESTORE (anything else, e.g. a corrupt page). After an
 * error the scan is over and its rows so far must not be used: a caller
 * never treats an error as "no more rows". The caller still resets s. */
int sq_next_row(struct sbd_store *st, sqlite3_stmt *s, struct sb_err *err);
/* Runs a statement that returns no rows; its error (as above) on failure. */
int sq_exec(struct sbd_store *st, sqlite3_stmt *s, struct sb_err *err);
/* Runs s (NULL: a statement that could not be prepared), a query whose one
 * row holds one integer (COUNT, MAX): 0 with *out, or the error of
 * sq_next_row (SB_ESTORE when it gave no row). Resets s. */
int sq_query_int64(struct sbd_store *st, sqlite3_stmt *s, int64_t *out, struct sb_err *err);

/* Columns of the current row. sqlite3_column_text returns NULL both for SQL
 * NULL and when it runs out of memory converting a value; these tell them
 * apart. Each leaves *rc alone on success, so a row's columns can be read
 * and *rc checked once:
 *  - sq_col_text: a nullable column; NULL for SQL NULL; NULL with *rc =
 *    SB_ENOMEM when out of memory. Valid until the next step/reset.
 *  - sq_col_req: a NOT NULL column; never NULL: "" with *rc = SB_ENOMEM
 *    (out of memory) or SB_ESTORE (a NULL where the schema allows none), so
 *    callers may use the value before checking *rc.
 *  - sq_col_dup: sq_col_text as a malloc'd copy (a failed copy also sets
 *    SB_ENOMEM).
 *  - sq_col_time: an integer column, SBD_STORE_NO_TIME for SQL NULL. */
const char *sq_col_text(sqlite3_stmt *s, int col, int *rc);
const char *sq_col_req(sqlite3_stmt *s, int col, int *rc);
char *sq_col_dup(sqlite3_stmt *s, int col, int *rc);
int64_t sq_col_time(sqlite3_stmt *s, int col);
/* err filled for a row whose columns could not be read (rc from the above). */
int sq_col_error(struct sb_err *err, int rc);
/* Schema creation/migration (schema.c). */
int sq_migrate(struct sbd_store *st, struct sb_err *err);

#endif
