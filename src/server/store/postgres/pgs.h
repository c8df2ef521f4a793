/* pgs.h - the PostgreSQL backend's private header (src/server/store/postgres/
 * only): the connection, the statements it prepares, the helpers every file
 * of the backend uses, and the prototypes of its operations (pgs_<op>, one
 * per entry of SBD_STORE_OPS, generated from that list; conn.c puts them in
 * the backend's table). Nothing outside this folder includes it or
 * libpq-fe.h.
 *
 * Files: conn.c (URLs, connections, sessions, the ops table, transactions),
 * exec.c (the statement cache, parameters, the one place a statement is
 * run, error mapping, column reads), schema.c (schema, migrations, the bus
 * id), and one file per group of operations as in the SQLite backend:
 * runs.c, apps.c, queue.c, waits.c, flow.c, views.c.
 *
 * Single writer, for now: the writable connection holds a session advisory
 * lock on the store's schema for its whole life, so a second sysbusd on the
 * same store is refused at start instead of corrupting the first one's
 * counters and queue ids (store.h, "Single writer"). What several replicas
 * need instead is docs/internals/store.md's. */
#ifndef SBD_STORE_PGS_H
#define SBD_STORE_PGS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "server/store/store.h"

/* The columns of the API's run and event records (views.c). */
#define PGS_RUN_COLS                                                                          \
    "r.id,r.function_id,r.app_id,r.event_id,r.status,r.created_at,r.started_at,r.updated_at," \
    "r.ended_at,r.output,r.error"
#define PGS_EVENT_COLS "id,name,body,ts,received_at,dedupe_key"

/* Every statement the store runs, prepared once per session on first use
 * (named "s<id>"). Parameters are sent as text and typed by the server from
 * their use; enum values are parameters (their names are in the code that
 * binds them), never numbers written into the SQL. Translated from the
 * SQLite backend's SQ_STMT_LIST, with what PostgreSQL wants said:
 *  - a parameter the server cannot type from its use is cast: one only
 *    tested with IS NULL (::text), one compared with a literal 0 (::bigint;
 *    it would be typed integer, too small for a time in ms);
 *  - a boolean result is ::int, read as SQLite's 0/1;
 *  - INSERT OR REPLACE is ON CONFLICT(key) DO UPDATE setting every column
 *    (those the statement does not name to their defaults), and the old
 *    row's columns in DO UPDATE are qualified with the table's name;
 *  - ORDER BY ends on a unique key where SQLite's order came from an index
 *    (PostgreSQL gives ties in any order), and NULLS FIRST where SQLite
 *    sorted NULLs first (PostgreSQL sorts them last). */
#define PGS_STMT_LIST(X)                                                                           \
    X(BEGIN, "BEGIN")                                                                              \
    X(COMMIT, "COMMIT")                                                                            \
    X(XACT_ID, "SELECT pg_current_xact_id_if_assigned()::text")                                    \
    X(XACT_STATUS, "SELECT pg_xact_status($1::text::xid8)")                                        \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SAVEPOINT, "SAVEPOINT op")                                                                   \
    X(RELEASE, "RELEASE op")                                                                       \
    X(ROLLBACK_TO, "ROLLBACK TO op")                                                               \
    X(EVENT_INSERT, "INSERT INTO events(id,name,body,ts,received_at,dedupe_key) VALUES($1,$2,"     \
                    "$3,$4,$5,$6) ON CONFLICT(id) DO NOTHING")                                     \
    X(EVENT_DEDUPE, "SELECT id FROM events WHERE dedupe_key=$1 AND received_at>=$2 ORDER BY "      \
                    "received_at,id LIMIT 1")                                                      \
    X(RUN_INSERT, "INSERT INTO runs(id,function_id,app_id,event_id,status,created_at,"             \
                  "updated_at) VALUES($1,$2,$3,$4,$5,$6,$7)")                                      \
    X(RUN_FINISH, "UPDATE runs SET status=$1,output=$2,error=$3,ended_at=$4,updated_at=$5,"        \
                  "started_at=COALESCE(started_at,$6) WHERE id=$7")                                \
    X(RUN_PROGRESS, "UPDATE runs SET started_at=COALESCE(started_at,$1),updated_at=$2,"            \
                    "req_version=$3 WHERE id=$4")                                                  \
    X(QUEUE_DEL_RUN, "DELETE FROM queue WHERE run_id=$1")                                          \
    X(STEP_PUT, "INSERT INTO steps(run_id,hash,seq,name,op,status,attempts,output,error,"          \
                "started_at,ended_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON "              \
                "CONFLICT(run_id,hash) DO UPDATE SET seq=excluded.seq,"                            \
                "name=COALESCE(excluded.name,steps.name),op=COALESCE(excluded.op,steps.op),"       \
                "status=excluded.status,attempts=excluded.attempts,output=excluded.output,"        \
                "error=COALESCE(excluded.error,steps.error),"                                      \
                "started_at=COALESCE(steps.started_at,excluded.started_at),"                       \
                "ended_at=excluded.ended_at")                                                      \
    X(QUEUE_PUT, "INSERT INTO queue(id,run_id,step_id,attempt,due_at,started_at,"                  \
                 "transport_failures,transport_since,last_error,flags) VALUES($1,$2,$3,$4,$5,"     \
                 "$6,$7,$8,$9,$10) ON CONFLICT(id) DO UPDATE SET run_id=excluded.run_id,"          \
                 "step_id=excluded.step_id,attempt=excluded.attempt,due_at=excluded.due_at,"       \
                 "started_at=excluded.started_at,"                                                 \
                 "transport_failures=excluded.transport_failures,"                                 \
                 "transport_since=excluded.transport_since,last_error=excluded.last_error,"        \
                 "flags=excluded.flags,lease_until=0,lease_keys=NULL")                             \
    X(QUEUE_DEL, "DELETE FROM queue WHERE id=$1")                                                  \
    X(QUEUE_LEASE, "UPDATE queue SET lease_until=$1,lease_keys=$2 WHERE id=$3")                    \
    X(APP_UPSERT, "INSERT INTO apps(id,url,sdk,framework,app_version,checksum,created_at,"         \
                  "synced_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT(id) DO UPDATE SET "      \
                  "url=excluded.url,sdk=excluded.sdk,framework=excluded.framework,"                \
                  "app_version=excluded.app_version,checksum=excluded.checksum,"                   \
                  "synced_at=excluded.synced_at,sync_error=NULL,sync_error_at=NULL,"               \
                  "deleted_at=NULL")                                                               \
    X(APP_SYNC_ERROR, "UPDATE apps SET sync_error=$1,sync_error_at=$2 WHERE url=$3")               \
    X(APP_DELETE, "UPDATE apps SET deleted_at=$1 WHERE id=$2")                                     \
    X(APP_FNS_REMOVE, "UPDATE functions SET removed_at=$1 WHERE app_id=$2 AND removed_at IS "      \
                      "NULL")                                                                      \
    X(FN_PUT, "INSERT INTO functions(id,app_id,name,config,created_at,updated_at) VALUES($1,$2,"   \
              "$3,$4,$5,$6) ON CONFLICT(id) DO UPDATE SET app_id=excluded.app_id,"                 \
              "name=excluded.name,config=excluded.config,updated_at=excluded.updated_at,"          \
              "removed_at=NULL")                                                                   \
    X(FN_LIST_APP, "SELECT id FROM functions WHERE app_id=$1 AND removed_at IS NULL")              \
    X(FN_REMOVE, "UPDATE functions SET removed_at=$1 WHERE id=$2")                                 \
    X(PURGE_STEPS, "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE ended_at<$1 "     \
                   "ORDER BY ended_at,id LIMIT $2)")                                               \
    X(PURGE_RUN_EVENTS, "DELETE FROM run_events WHERE run_id IN (SELECT id FROM runs WHERE "       \
                        "ended_at<$1 ORDER BY ended_at,id LIMIT $2)")                              \
    X(PURGE_RUNS, "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE ended_at<$1 ORDER "     \
                  "BY ended_at,id LIMIT $2)")                                                      \
    X(PURGE_EVENTS, "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.id<$1 "     \
                    "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.event_id=e.id) AND NOT "         \
                    "EXISTS (SELECT 1 FROM run_events re WHERE re.event_id=e.id) AND NOT "         \
                    "EXISTS (SELECT 1 FROM deferred d WHERE d.event_id=e.id) LIMIT $2)")           \
    X(QUEUE_MAX, "SELECT COALESCE(MAX(id),0) FROM queue")                                          \
    X(QUEUE_SCAN, "SELECT q.id,q.run_id,q.step_id,q.attempt,q.due_at,q.started_at,"                \
                  "q.transport_failures,q.transport_since,q.last_error,q.flags,r.function_id,"     \
                  "r.event_id,q.lease_until,q.lease_keys FROM queue q JOIN runs r ON "             \
                  "r.id=q.run_id ORDER BY q.due_at,q.id")                                          \
    X(QUEUE_SCAN_RUN, "SELECT q.id,q.run_id,q.step_id,q.attempt,q.due_at,q.started_at,"            \
                      "q.transport_failures,q.transport_since,q.last_error,q.flags,"               \
                      "r.function_id,r.event_id,q.lease_until,q.lease_keys FROM queue q JOIN "     \
                      "runs r ON r.id=q.run_id WHERE q.run_id=$1 AND r.status=$2 ORDER BY "        \
                      "q.due_at,q.id")                                                             \
    X(DEFERRED_FIND, "SELECT id,function_id,app_id,key,event_id,size,first_at,due_at,kind FROM "   \
                     "deferred WHERE kind=$1 AND function_id=$2 AND key=$3")                       \
    X(DEFERRED_GET, "SELECT id,function_id,app_id,key,event_id,size,first_at,due_at,kind FROM "    \
                    "deferred WHERE id=$1")                                                        \
    X(DEFERRED_PUT, "INSERT INTO deferred(id,kind,function_id,app_id,key,event_id,size,"           \
                    "first_at,due_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT(id) DO "      \
                    "UPDATE SET kind=excluded.kind,function_id=excluded.function_id,"              \
                    "app_id=excluded.app_id,key=excluded.key,event_id=excluded.event_id,"          \
                    "size=excluded.size,first_at=excluded.first_at,due_at=excluded.due_at")        \
    /* deferred_put replaces a row of the same (kind, function, key) too, as                       \
     * SQLite's INSERT OR REPLACE does (ON CONFLICT names one constraint) */                       \
    X(DEFERRED_DEL_KEY, "DELETE FROM deferred WHERE kind=$1 AND function_id=$2 AND key=$3 AND "    \
                        "id<>$4")                                                                  \
    X(DEFERRED_DEL, "DELETE FROM deferred WHERE id=$1")                                            \
    X(DEFERRED_DUE, "SELECT id,due_at FROM (SELECT id,due_at FROM deferred WHERE due_at<=$1 "      \
                    "UNION ALL (SELECT id,due_at FROM deferred WHERE due_at>$1 ORDER BY "          \
                    "due_at,id LIMIT 1)) d ORDER BY due_at,id")                                    \
    X(DEFERRED_HELD, "(SELECT due_at FROM deferred WHERE kind=$2 AND event_id=$1 UNION ALL "       \
                     "SELECT d.due_at FROM run_events re JOIN deferred d ON d.id=re.run_id "       \
                     "WHERE re.event_id=$1) LIMIT 1")                                              \
    X(RUN_EVENTS_MOVE, "UPDATE run_events SET run_id=$1 WHERE run_id=$2")                          \
    X(RUN_EVENT_ADD, "INSERT INTO run_events(run_id,seq,event_id) VALUES($1,$2,$3) ON "            \
                     "CONFLICT(run_id,seq) DO UPDATE SET event_id=excluded.event_id")              \
    X(RUN_STATE_EVENTS, "SELECT e.body FROM run_events re JOIN events e ON e.id=re.event_id "      \
                        "WHERE re.run_id=$1 ORDER BY re.seq")                                      \
    X(ORPHANS, "SELECT r.id FROM runs r WHERE r.status=$1 AND NOT EXISTS (SELECT 1 FROM queue "    \
               "q WHERE q.run_id=r.id AND (q.flags & $2)=0)")                                      \
    X(RUN_STATE, "SELECT r.function_id,r.status,r.req_version,e.body FROM runs r JOIN events e "   \
                 "ON e.id=r.event_id WHERE r.id=$1")                                               \
    X(RUN_STATE_STEPS, "SELECT hash,output FROM steps WHERE run_id=$1 AND seq IS NOT NULL "        \
                       "ORDER BY seq")                                                             \
    X(COUNT_QUEUE, "SELECT COUNT(*) FROM queue")                                                   \
    X(COUNT_RUNNING, "SELECT COUNT(*) FROM runs WHERE status=$1")                                  \
    X(FN_SCAN, "SELECT f.id,f.app_id,f.config,(f.removed_at IS NOT NULL)::int,a.url FROM "         \
               "functions f LEFT JOIN apps a ON a.id=f.app_id ORDER BY f.id")                      \
    X(APP_SCAN, "SELECT id,url,checksum FROM apps WHERE deleted_at IS NULL")                       \
    X(APPS_AT_URL, "SELECT id FROM apps WHERE url=$1 AND id<>$2 AND deleted_at IS NULL")           \
    X(APP_GET, "SELECT checksum,url FROM apps WHERE id=$1 AND deleted_at IS NULL")                 \
    X(WAIT_PUT, "INSERT INTO waits(item_id,run_id,step_hash,event_name,expression,child_run_id,"   \
                "created_at) VALUES($1,$2,$3,$4,$5,$6,$7) ON CONFLICT(item_id) DO UPDATE SET "     \
                "run_id=excluded.run_id,step_hash=excluded.step_hash,"                             \
                "event_name=excluded.event_name,expression=excluded.expression,"                   \
                "child_run_id=excluded.child_run_id,created_at=excluded.created_at")               \
    X(WAIT_CHILD, "SELECT w.item_id,w.run_id,w.step_hash,w.created_at,(SELECT COUNT(*) FROM "      \
                  "queue q WHERE q.run_id=w.run_id AND (q.flags & $1)=0),COALESCE((SELECT "        \
                  "q.flags FROM queue q WHERE q.id=w.item_id),0) FROM waits w WHERE "              \
                  "w.child_run_id=$2")                                                             \
    X(WAIT_DEL, "DELETE FROM waits WHERE item_id=$1")                                              \
    X(WAIT_DEL_RUN, "DELETE FROM waits WHERE run_id=$1")                                           \
    X(WAIT_COUNT, "SELECT COUNT(*) FROM waits")                                                    \
    X(WAITS_FOR, "SELECT w.item_id,w.run_id,w.step_hash,w.event_name,w.expression,w.created_at,"   \
                 "e.body,(SELECT COUNT(*) FROM queue q WHERE q.run_id=w.run_id AND (q.flags & "    \
                 "$1)=0),COALESCE((SELECT q.flags FROM queue q WHERE q.id=w.item_id),0) FROM "     \
                 "waits w JOIN runs r ON r.id=w.run_id JOIN events e ON e.id=r.event_id WHERE "    \
                 "w.event_name=$2 ORDER BY w.item_id")                                             \
    X(EVENTS_SINCE, "SELECT id,body FROM events WHERE name=$1 AND id>=$2 ORDER BY id")             \
    X(NEXT_SEQ, "SELECT COALESCE(MAX(seq),-1)+1 FROM steps WHERE run_id=$1")                       \
    X(RUN_TRIGGER, "SELECT r.function_id,e.name,e.body FROM runs r JOIN events e ON "              \
                   "e.id=r.event_id WHERE r.id=$1")                                                \
    X(RUNNING_OF, "SELECT r.id,r.created_at,e.body FROM runs r JOIN events e ON "                  \
                  "e.id=r.event_id WHERE r.status=$5 AND ($1::text IS NULL OR r.function_id=$1) "  \
                  "AND ($2::text IS NULL OR r.app_id=$2) AND ($3::bigint=0 OR r.created_at>=$3) "  \
                  "AND ($4::bigint=0 OR r.created_at<$4) ORDER BY r.id")                           \
    X(FLOW_GET, "SELECT run_id,expires_at FROM flow_keys WHERE kind=$1 AND key=$2")                \
    X(FLOW_PUT, "INSERT INTO flow_keys(kind,key,run_id,expires_at) VALUES($1,$2,$3,$4) ON "        \
                "CONFLICT(kind,key) DO UPDATE SET run_id=excluded.run_id,"                         \
                "expires_at=excluded.expires_at")                                                  \
    X(FLOW_DEL_RUN, "DELETE FROM flow_keys WHERE run_id=$1 AND expires_at=0")                      \
    X(THROTTLE_PUT, "INSERT INTO flow_keys(kind,key,run_id,expires_at) VALUES($1,$2,NULL,$3) "     \
                    "ON CONFLICT(kind,key) DO UPDATE SET "                                         \
                    "expires_at=GREATEST(flow_keys.expires_at,excluded.expires_at)")               \
    X(THROTTLE_SCAN, "SELECT key,expires_at FROM flow_keys WHERE kind=$1 AND expires_at>$2")       \
    X(RATE_COUNT, "SELECT COUNT(*) FROM rate_hits WHERE key=$1 AND at>=$2")                        \
    X(RATE_HIT, "INSERT INTO rate_hits(key,at) VALUES($1,$2)")                                     \
    X(PURGE_FLOW, "DELETE FROM flow_keys WHERE expires_at>0 AND expires_at<$1")                    \
    X(PURGE_RATE, "DELETE FROM rate_hits WHERE at<$1")                                             \
    X(CRON_GET, "SELECT expression,next_at FROM crons WHERE function_id=$1 AND idx=$2")            \
    X(CRON_PUT, "INSERT INTO crons(function_id,idx,expression,next_at) VALUES($1,$2,$3,$4) ON "    \
                "CONFLICT(function_id,idx) DO UPDATE SET expression=excluded.expression,"          \
                "next_at=excluded.next_at")                                                        \
    X(CRON_DEL, "DELETE FROM crons WHERE function_id=$1 AND idx>=$2")                              \
    X(CRON_PRUNE, "DELETE FROM crons WHERE function_id NOT IN (SELECT id FROM functions WHERE "    \
                  "removed_at IS NULL)")                                                           \
    X(CRON_SCAN, "SELECT function_id,idx,expression,next_at FROM crons ORDER BY next_at,"          \
                 "function_id,idx")                                                                \
    X(CANCEL_REQ_PUT, "INSERT INTO cancel_requests(run_id,reason,created_at) VALUES($1,$2,$3) "    \
                      "ON CONFLICT(run_id) DO NOTHING")                                            \
    X(CANCEL_REQ_DEL, "DELETE FROM cancel_requests WHERE run_id=$1")                               \
    X(CANCEL_REQ_COUNT, "SELECT COUNT(*) FROM cancel_requests")                                    \
    X(SINGLETON_ANY, "SELECT (EXISTS (SELECT 1 FROM flow_keys WHERE kind=$1))::int")               \
    X(CANCEL_REQ_SCAN, "SELECT run_id,reason FROM cancel_requests")                                \
    X(CANCELLATION_PUT, "INSERT INTO cancellations(id,app_id,function_id,started_after,"           \
                        "started_before,expression,created_at,run_count) VALUES($1,$2,$3,$4,$5,"   \
                        "$6,$7,$8)")                                                               \
    /* the API's reads (views.c); runs_list and events_list build theirs */                        \
    X(VIEW_RUN, "SELECT " PGS_RUN_COLS " FROM runs r WHERE r.id=$1")                               \
    X(RUN_STATUS, "SELECT status FROM runs WHERE id=$1")                                           \
    X(VIEW_QUEUE, "SELECT q.step_id,q.attempt,q.due_at,q.started_at,q.transport_failures,"         \
                  "q.transport_since,q.last_error,q.flags,w.event_name,w.expression,"              \
                  "w.child_run_id,q.run_id,q.id FROM queue q LEFT JOIN waits w ON w.item_id=q.id " \
                  "WHERE q.run_id=$1 ORDER BY q.due_at,q.id")                                      \
    X(VIEW_STEPS, "SELECT hash,name,op,status,attempts,output,error,started_at,ended_at,seq,"      \
                  "run_id FROM steps WHERE run_id=$1 ORDER BY seq IS NULL,seq,"                    \
                  "started_at NULLS FIRST,hash")                                                   \
    X(VIEW_EVENT, "SELECT " PGS_EVENT_COLS " FROM events WHERE id=$1")                             \
    X(VIEW_APPS, "SELECT a.id,a.url,a.sdk,a.framework,a.app_version,a.checksum,a.created_at,"      \
                 "a.synced_at,a.sync_error,a.sync_error_at,(SELECT COUNT(*) FROM functions f "     \
                 "WHERE f.app_id=a.id AND f.removed_at IS NULL) FROM apps a WHERE "                \
                 "a.deleted_at IS NULL ORDER BY a.id")                                             \
    X(VIEW_FUNCTIONS, "SELECT id,app_id,name,config,created_at,updated_at,removed_at FROM "        \
                      "functions WHERE ($1::text IS NULL OR app_id=$1) AND ($2::bigint<>0 OR "     \
                      "removed_at IS NULL) ORDER BY app_id,id")                                    \
    X(VIEW_CANCELLATIONS, "SELECT id,app_id,function_id,started_after,started_before,expression,"  \
                          "created_at,run_count FROM cancellations ORDER BY id DESC LIMIT $1")

enum pgs_stmt_id {
#define PGS_X_ENUM(name, sql) PGS_##name,
    PGS_STMT_LIST(PGS_X_ENUM)
#undef PGS_X_ENUM
        PGS__COUNT
};

/* What the writable connection counts so that common operations can skip a
 * query (single writer: store.h, "Single writer" 1). Never below the truth. */
struct pgs_tally {
    int64_t open_waits;   /* rows in `waits` */
    int64_t open_cancels; /* rows in `cancel_requests` */
    bool singletons;      /* singleton keys may exist */
};

/* A connection (writable or read-only). */
struct pgs_conn {
    struct sbd_store base; /* first: what the sbd_store_* calls dispatch through */
    PGconn *db;
    bool readonly;
    bool in_txn;     /* between begin and commit/rollback */
    bool ready;      /* session set up (the writer: holding its lock, tally read) */
    int64_t lock_lost_at; /* the writer: since when a reconnect finds its lock held (0: not) */
    char *conninfo;  /* what libpq connects with (the URL without our parameters) */
    char schema[64]; /* the store's schema (an identifier checked at open) */
    char where[160]; /* "host:port/db" for messages (never the password) */
    int answer_timeout_ms; /* a statement unanswered this long: the session is dead (exec.c) */
    bool answer_timed_out; /* the last statement was given up on (for its message) */
    struct pgs_tally tally;
    /* the tally when the transaction and the savepoint began: rolling back
     * restores it (store.h, "Single writer" 4) */
    struct pgs_tally tally_at_begin, tally_at_savepoint;
    bool prepared[PGS__COUNT];
};

static inline struct pgs_conn *pgs_conn(struct sbd_store *st)
{
    return (struct pgs_conn *)st;
}

/* The backend's table (conn.c). */
extern const struct sbd_store_ops pgs_store_ops;

/* The operations, pgs_<name> for each entry of SBD_STORE_OPS. */
#define PGS_OP_PROTO(ret, name, params, args) ret pgs_##name params;
#define PGS_VOP_PROTO(name, params, args) void pgs_##name params;
SBD_STORE_OPS(PGS_OP_PROTO, PGS_VOP_PROTO)
#undef PGS_OP_PROTO
#undef PGS_VOP_PROTO
int pgs_open(const char *url, struct sbd_store **out, struct sb_err *err);
int pgs_open_reader(const char *url, struct sbd_store **out, struct sb_err *err);
void pgs_close(struct sbd_store *st);
int pgs_backup(const char *url, const char *path, struct sb_err *err);
int pgs_restore(const char *url, const char *path, bool force, struct sb_err *err);
int pgs_export(const char *url, FILE *out, struct sb_err *err);

/* ---- parameters (exec.c) ----
 * At most PGS_MAX_PARAMS per statement; strings are borrowed for the call,
 * numbers are written into the struct. A NULL string is SQL NULL. */
#define PGS_MAX_PARAMS 16
struct pgs_params {
    int n;
    const char *val[PGS_MAX_PARAMS];
    char num[PGS_MAX_PARAMS][24];
};
#define PGS_PARAMS_INIT \
    {                   \
        0               \
    }
void pgs_text(struct pgs_params *p, const char *v);
void pgs_int(struct pgs_params *p, int64_t v);
/* v, or NULL when v <= 0 (an optional time). */
void pgs_opt_time(struct pgs_params *p, int64_t v);

/* ---- running statements (exec.c) ----
 * The one place the backend runs a statement: prepares it on first use in
 * this session, runs it with p (NULL: no parameters), and gives the whole
 * result. 0 with *res (PQclear it), or a negative code with err filled and
 * *res NULL:
 *  - SB_EUNAVAIL: the connection is gone or the server is shutting down
 *    (transient; outside a transaction the next statement reconnects);
 *  - SB_EBUSY: a lock timeout, a serialization failure or a deadlock;
 *  - SB_EINVAL: a constraint or a value the server refuses (permanent:
 *    sent again it is refused again);
 *  - SB_ETOOBIG, SB_ENOMEM, SB_EIO (disk full), SB_ETIMEOUT (cancelled);
 *  - SB_ESTORE: anything else.
 * After an error the result is gone: a caller never treats an error as "no
 * rows". */
int pgs_run(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p, PGresult **res,
            struct sb_err *err);
/* pgs_run for SQL built at run time (the API's list filters): sql holds
 * only this backend's literals and $n placeholders, every value goes in p.
 * Not prepared (each filter set is a different text). Errors as pgs_run. */
int pgs_run_sql(struct sbd_store *st, const char *sql, const struct pgs_params *p, PGresult **res,
                struct sb_err *err);
/* pgs_run for a read of one row: 0 with *res holding it (the first, when
 * there are more), SB_ENOTFOUND with *res NULL and err untouched when there
 * is none ("no such row" is the common answer of the hot one-row reads:
 * store.h), or pgs_run's error. */
int pgs_run_row(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
                PGresult **res, struct sb_err *err);
/* pgs_run for a statement whose rows are not wanted; *changed (may be NULL)
 * = rows it inserted, updated or deleted. */
int pgs_exec(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
             int64_t *changed, struct sb_err *err);
/* pgs_run for a query whose one row holds one integer (COUNT, MAX): 0 with
 * *out, or the error (SB_ESTORE when it gave no row or a NULL). */
int pgs_query_int64(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
                    int64_t *out, struct sb_err *err);
/* Runs SQL text (no parameters, several statements allowed): schema
 * creation and session set-up only. Errors as pgs_run. */
int pgs_exec_sql(struct sbd_store *st, const char *sql, struct sb_err *err);

/* ---- columns of a result row (exec.c) ----
 * Text format; each leaves *rc alone on success, so a row's columns can be
 * read and *rc checked once:
 *  - pgs_col_text: a nullable column; NULL for SQL NULL. Valid until PQclear.
 *  - pgs_col_req: a NOT NULL column; never NULL: "" with *rc = SB_ESTORE for
 *    a NULL where the schema allows none.
 *  - pgs_col_dup: pgs_col_text as a malloc'd copy (SB_ENOMEM on failure).
 *  - pgs_col_int: an integer column (0 for NULL; *rc = SB_ESTORE when the
 *    text is not an integer).
 *  - pgs_col_time: an integer column, SBD_STORE_NO_TIME for SQL NULL. */
const char *pgs_col_text(const PGresult *r, int row, int col);
const char *pgs_col_req(const PGresult *r, int row, int col, int *rc);
char *pgs_col_dup(const PGresult *r, int row, int col, int *rc);
int64_t pgs_col_int(const PGresult *r, int row, int col, int *rc);
int64_t pgs_col_time(const PGresult *r, int row, int col, int *rc);
/* err filled for a row whose columns could not be read (rc from the above). */
int pgs_col_error(struct sb_err *err, int rc);

/* What became of transaction xid (pg_current_xact_id's text): 0 with
 * *committed, SB_EBUSY while it is still in progress,
 * SB_ENOTFOUND when the server no longer knows (too old), or the error of
 * the query (conn.c; for a COMMIT whose answer was lost). */
int pgs_xact_outcome(struct sbd_store *st, const char *xid, bool *committed, struct sb_err *err);

/* ---- schema (schema.c) ----
 * Creates or migrates the store's schema in one transaction under an
 * advisory lock (two sysbusd starting at once never migrate together);
 * SB_ECONFIG when the schema was written by a newer sysbusd. */
int pgs_migrate(struct sbd_store *st, struct sb_err *err);
/* The advisory locks' first key ("SBUS"); the second is
 * hashtext('writer:<schema>') or hashtext('migrate:<schema>'). */
#define PGS_LOCK_CLASS 1396855635

/* How long a statement may go unanswered before its session is taken for
 * dead (exec.c; the URL's answer_timeout=SECONDS): a server that accepted
 * the connection but does not answer (hung, stopped, its host frozen) must
 * fail the statement, not block the writer for ever. The server's own
 * statement_timeout, half of it, ends a merely slow statement first. */
#define PGS_ANSWER_TIMEOUT_MS 60000
/* The session set-up after every (re)connection: search path, timeouts,
 * read-only for readers, the writer's lock and tally (conn.c). */
int pgs_session_ready(struct sbd_store *st, struct sb_err *err);

#endif
