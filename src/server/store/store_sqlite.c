/* store_sqlite.c - the SQLite store: connections, transactions, writes and
 * the reads the engine needs. API-shaped reads live in store_views.c.
 *
 * Durability: WAL with synchronous=FULL, so COMMIT returns after the WAL is
 * fsync'd; the writer thread batches many operations into one transaction so
 * one fsync serves them all. Readers use their own connections (WAL lets them
 * read while the writer writes). */
#include "store_internal.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const stmt_sql[STMT__COUNT] = {
#define SB_X_SQL(name, sql) sql,
    SB_STMT_LIST(SB_X_SQL)
#undef SB_X_SQL
};

const char *run_status_name(int status)
{
    switch (status) {
    case RUN_RUNNING: return "Running";
    case RUN_COMPLETED: return "Completed";
    case RUN_FAILED: return "Failed";
    case RUN_CANCELLED: return "Cancelled";
    }
    return "Unknown";
}

int run_status_parse(const char *name)
{
    for (int i = 0; i <= RUN_CANCELLED; i++)
        if (strcasecmp(name, run_status_name(i)) == 0)
            return i;
    return -1;
}

/* ---- connections ---- */

static char *store_path; /* set once before threads start */

void sb_store_set_dir(const char *dir)
{
    free(store_path);
    size_t n = strlen(dir) + 32;
    store_path = malloc(n);
    if (store_path)
        snprintf(store_path, n, "%s/sysbus.db", dir);
}

static int open_conn(const char *path, int readonly, struct sb_store **out, struct sb_err *err)
{
    struct sb_store *st = calloc(1, sizeof *st);
    if (!st)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* each connection is used by one thread */
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        sb_err_set(err, SB_ESTORE, "cannot open database %s: %s", path,
                   st->db ? sqlite3_errmsg(st->db) : "out of memory");
        sqlite3_close(st->db);
        free(st);
        return SB_ESTORE;
    }
    st->readonly = readonly;
    sqlite3_busy_timeout(st->db, 10000);
    /* Page caches are small on purpose: the writer appends at the right
     * edge of its B-trees and readers look rows up by key, so a few MB hold
     * the working set; memory stays flat however many runs are stored
     * (bench/rss.sh). */
    const char *pragmas = readonly ? "PRAGMA query_only=1; PRAGMA cache_size=-1024;"
                                   : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                     "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-4096;"
                                     "PRAGMA wal_autocheckpoint=2000;";
    char *msg = NULL;
    if (sqlite3_exec(st->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        sb_err_set(err, SB_ESTORE, "cannot configure database %s: %s", path, msg);
        sqlite3_free(msg);
        sqlite3_close(st->db);
        free(st);
        return SB_ESTORE;
    }
    *out = st;
    return 0;
}

int sb_store_open(const char *dir, struct sb_store **out, struct sb_err *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sb_err_errno(err, SB_EIO, "cannot create data directory %s", dir);
    sb_store_set_dir(dir);
    if (!store_path)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    struct sb_store *st;
    int rc = open_conn(store_path, 0, &st, err);
    if (rc)
        return rc;
    if ((rc = sb_store_migrate(st, err))) {
        sb_store_close(st);
        return rc;
    }
    /* The connection's counters decide whether events look for waits and
     * whether the start replays cancellations: a failed read must fail the
     * open, not leave them at 0 (which would ignore every open wait). */
    int64_t singletons = 0;
    if ((rc = sb_store_query_int64(st, sb_store_stmt(st, STMT_WAIT_COUNT), &st->open_waits, err)) ||
        (rc = sb_store_query_int64(st, sb_store_stmt(st, STMT_CANCEL_REQ_COUNT), &st->open_cancels,
                                   err)) ||
        (rc = sb_store_query_int64(st, sb_store_stmt(st, STMT_SINGLETON_ANY), &singletons, err))) {
        sb_store_close(st);
        return rc;
    }
    st->singletons = singletons > 0;
    *out = st;
    return 0;
}

void sb_store_close(struct sb_store *st)
{
    if (!st)
        return;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    free(st);
}

/* Readers: one per thread, kept in a list so shutdown can close them all. */
struct reader_node {
    struct sb_store *st;
    struct reader_node *next;
};
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t readers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reader_node *readers;

static void reader_key_init(void)
{
    pthread_key_create(&reader_key, NULL);
}

struct sb_store *sb_store_reader(void)
{
    pthread_once(&reader_once, reader_key_init);
    struct sb_store *st = pthread_getspecific(reader_key);
    if (st)
        return st;
    struct sb_err err = { 0 };
    if (!store_path || open_conn(store_path, 1, &st, &err) != 0) {
        SB_LOG(SB_ERROR, "store_reader_open", "cannot open a read connection: %s", err.msg);
        return NULL;
    }
    struct reader_node *n = malloc(sizeof *n);
    if (!n) {
        sb_store_close(st);
        return NULL;
    }
    n->st = st;
    pthread_mutex_lock(&readers_lock);
    n->next = readers;
    readers = n;
    pthread_mutex_unlock(&readers_lock);
    pthread_setspecific(reader_key, st);
    return st;
}

void sb_store_close_readers(void)
{
    pthread_mutex_lock(&readers_lock);
    while (readers) {
        struct reader_node *n = readers;
        readers = n->next;
        sb_store_close(n->st);
        free(n);
    }
    pthread_mutex_unlock(&readers_lock);
}

/* ---- statements ---- */

sqlite3_stmt *sb_store_stmt(struct sb_store *st, enum sb_stmt_id id)
{
    sqlite3_stmt *s = st->stmt[id];
    if (!s) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
            SQLITE_OK) {
            SB_LOG(SB_ERROR, "store_prepare", "cannot prepare statement %d: %s", (int)id,
                   sqlite3_errmsg(st->db));
            return NULL;
        }
        st->stmt[id] = s;
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

void sb_store_bind_text(sqlite3_stmt *s, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, idx);
}

int sb_store_next_row(struct sb_store *st, sqlite3_stmt *s, struct sb_err *err)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    int code;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = SB_EBUSY; break;
    case SQLITE_TOOBIG: code = SB_ETOOBIG; break;
    case SQLITE_NOMEM: code = SB_ENOMEM; break;
    case SQLITE_IOERR:
    case SQLITE_FULL: code = SB_EIO; break;
    /* a change that breaks a rule of the store is refused again if sent
     * again: permanent, like one too large (the engine then ends the run) */
    case SQLITE_CONSTRAINT: code = SB_EINVAL; break;
    default: code = SB_ESTORE; break;
    }
    /* sqlite3_errmsg describes rc only until the next call on the
     * connection (the caller's reset), so it is copied now */
    return sb_err_set(err, code, "database: %s", sqlite3_errmsg(st->db));
}

int sb_store_exec_stmt(struct sb_store *st, sqlite3_stmt *s, struct sb_err *err)
{
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable: %s", sqlite3_errmsg(st->db));
    int rc;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
    }
    sqlite3_reset(s);
    return rc;
}

int sb_store_query_int64(struct sb_store *st, sqlite3_stmt *s, int64_t *out, struct sb_err *err)
{
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable: %s", sqlite3_errmsg(st->db));
    int rc = sb_store_next_row(st, s, err);
    if (rc > 0)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == 0)
        rc = sb_err_set(err, SB_ESTORE, "database: a query of one row gave none");
    sqlite3_reset(s);
    return rc > 0 ? 0 : rc;
}

const char *sb_store_col_text(sqlite3_stmt *s, int col, int *rc)
{
    /* the type must be read before the conversion (after it, it is
     * undefined) */
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(s, col);
    if (!t)
        *rc = SB_ENOMEM;
    return t;
}

const char *sb_store_col_req(sqlite3_stmt *s, int col, int *rc)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL) {
        *rc = SB_ESTORE;
        return "";
    }
    const char *t = (const char *)sqlite3_column_text(s, col);
    if (!t) {
        *rc = SB_ENOMEM;
        return "";
    }
    return t;
}

char *sb_store_col_dup(sqlite3_stmt *s, int col, int *rc)
{
    const char *t = sb_store_col_text(s, col, rc);
    char *d = t ? strdup(t) : NULL;
    if (t && !d)
        *rc = SB_ENOMEM;
    return d;
}

int sb_store_col_error(struct sb_err *err, int rc)
{
    return sb_err_set(err, rc, "%s",
                      rc == SB_ENOMEM ? "out of memory reading a stored row"
                                      : "a stored row has NULL where the schema allows none");
}

static int exec_simple(struct sb_store *st, enum sb_stmt_id id, struct sb_err *err)
{
    return sb_store_exec_stmt(st, sb_store_stmt(st, id), err);
}

/* ---- transactions ---- */

int sb_store_begin(struct sb_store *st, struct sb_err *err)
{
    return exec_simple(st, STMT_BEGIN, err);
}
int sb_store_commit(struct sb_store *st, struct sb_err *err)
{
    return exec_simple(st, STMT_COMMIT, err);
}
void sb_store_rollback(struct sb_store *st)
{
    exec_simple(st, STMT_ROLLBACK, NULL);
}
int sb_store_savepoint(struct sb_store *st)
{
    return exec_simple(st, STMT_SAVEPOINT, NULL);
}
void sb_store_release(struct sb_store *st)
{
    exec_simple(st, STMT_RELEASE, NULL);
}

void sb_store_rollback_savepoint(struct sb_store *st)
{
    exec_simple(st, STMT_ROLLBACK_TO, NULL);
    exec_simple(st, STMT_RELEASE, NULL);
}

/* ---- writes ---- */

void sb_store_bind_opt_int64(sqlite3_stmt *s, int idx, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(s, idx, v);
    else
        sqlite3_bind_null(s, idx);
}

int sb_store_event_insert(struct sb_store *st, const struct ev_rec *ev, bool *inserted,
                          struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_EVENT_INSERT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ev->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, ev->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, ev->ts);
    sqlite3_bind_int64(s, 5, ev->received_at);
    sb_store_bind_text(s, 6, ev->dedupe_key);
    int rc = sb_store_exec_stmt(st, s, err);
    if (!rc)
        *inserted = sqlite3_changes(st->db) > 0;
    return rc;
}

int sb_store_event_find_dedupe(struct sb_store *st, const char *key, int64_t since_ms,
                               char out_id[SB_ULID_SIZE], struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_EVENT_DEDUPE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since_ms);
    int rc = sb_store_next_row(st, s, err);
    if (rc > 0) {
        int crc = 0;
        snprintf(out_id, SB_ULID_SIZE, "%s", sb_store_col_req(s, 0, &crc));
        rc = crc ? sb_store_col_error(err, crc) : 0;
    } else if (rc == 0) {
        rc = SB_ENOTFOUND;
    }
    sqlite3_reset(s);
    return rc;
}

int sb_store_run_insert(struct sb_store *st, const struct run_rec *run, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_RUN_INSERT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, run->function_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, run->app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, run->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, run->created_at);
    sqlite3_bind_int64(s, 6, run->created_at);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_run_finish(struct sb_store *st, const char *run_id, int status, const char *output,
                        const char *error, int64_t started_at, int64_t ended_at, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_RUN_FINISH);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, status);
    sb_store_bind_text(s, 2, output);
    sb_store_bind_text(s, 3, error);
    sqlite3_bind_int64(s, 4, ended_at);
    sqlite3_bind_int64(s, 5, ended_at);
    sqlite3_bind_int64(s, 6, started_at > 0 ? started_at : ended_at);
    sqlite3_bind_text(s, 7, run_id, -1, SQLITE_STATIC);
    int rc = sb_store_exec_stmt(st, s, err);
    if (rc)
        return rc;
    s = sb_store_stmt(st, STMT_QUEUE_DEL_RUN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    if ((rc = sb_store_exec_stmt(st, s, err)))
        return rc;
    if (st->singletons) { /* its singleton key, if any, is free again */
        s = sb_store_stmt(st, STMT_FLOW_DEL_RUN);
        if (!s)
            return sb_err_set(err, SB_ESTORE, "statement unavailable");
        sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
        if ((rc = sb_store_exec_stmt(st, s, err)))
            return rc;
    }
    if (st->open_cancels > 0) { /* its cancel request, if any, is done */
        s = sb_store_stmt(st, STMT_CANCEL_REQ_DEL);
        if (!s)
            return sb_err_set(err, SB_ESTORE, "statement unavailable");
        sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
        if ((rc = sb_store_exec_stmt(st, s, err)))
            return rc;
        st->open_cancels -= sqlite3_changes(st->db);
    }
    if (st->open_waits > 0) { /* an ended run waits for nothing */
        s = sb_store_stmt(st, STMT_WAIT_DEL_RUN);
        if (!s)
            return sb_err_set(err, SB_ESTORE, "statement unavailable");
        sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
        if ((rc = sb_store_exec_stmt(st, s, err)))
            return rc;
        st->open_waits -= sqlite3_changes(st->db);
    }
    return 0;
}

int sb_store_run_progress(struct sb_store *st, const char *run_id, int64_t now, int req_version,
                          struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_RUN_PROGRESS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int(s, 3, req_version);
    sqlite3_bind_text(s, 4, run_id, -1, SQLITE_STATIC);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_step_put(struct sb_store *st, const struct step_rec *r, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_STEP_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, r->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->hash, -1, SQLITE_STATIC);
    if (r->seq >= 0)
        sqlite3_bind_int64(s, 3, r->seq);
    else
        sqlite3_bind_null(s, 3);
    sb_store_bind_text(s, 4, r->name);
    sb_store_bind_text(s, 5, r->op);
    sqlite3_bind_int(s, 6, r->status);
    sqlite3_bind_int(s, 7, r->attempts);
    sb_store_bind_text(s, 8, r->output);
    sb_store_bind_text(s, 9, r->error);
    sb_store_bind_opt_int64(s, 10, r->started_at);
    sb_store_bind_opt_int64(s, 11, r->ended_at);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_app_upsert(struct sb_store *st, const struct app_rec *a, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_APP_UPSERT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->url, -1, SQLITE_STATIC);
    sb_store_bind_text(s, 3, a->sdk);
    sb_store_bind_text(s, 4, a->framework);
    sb_store_bind_text(s, 5, a->app_version);
    sb_store_bind_text(s, 6, a->checksum);
    sqlite3_bind_int64(s, 7, a->now);
    sqlite3_bind_int64(s, 8, a->now);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_app_sync_error(struct sb_store *st, const char *url, const char *error, int64_t now,
                            struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_APP_SYNC_ERROR);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sb_store_bind_text(s, 1, error);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_text(s, 3, url, -1, SQLITE_STATIC);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_app_delete(struct sb_store *st, const char *app_id, int64_t now, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_APP_DELETE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, app_id, -1, SQLITE_STATIC);
    int rc = sb_store_exec_stmt(st, s, err);
    if (rc)
        return rc;
    s = sb_store_stmt(st, STMT_APP_FNS_REMOVE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, app_id, -1, SQLITE_STATIC);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_function_put(struct sb_store *st, const struct fn_rec *f, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_FN_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, f->config, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, f->now);
    sqlite3_bind_int64(s, 6, f->now);
    return sb_store_exec_stmt(st, s, err);
}

int sb_store_functions_prune(struct sb_store *st, const char *app_id, const char *const *keep,
                             size_t n, int64_t now, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_FN_LIST_APP);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
    char **drop = NULL;
    size_t ndrop = 0;
    int rc;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sb_store_col_req(s, 0, &crc);
        if (crc) {
            rc = sb_store_col_error(err, crc);
            break;
        }
        size_t i = 0;
        while (i < n && strcmp(keep[i], id) != 0)
            i++;
        if (i < n)
            continue;
        char **nd = realloc(drop, (ndrop + 1) * sizeof *nd);
        if (!nd || !(nd[ndrop] = strdup(id))) {
            drop = nd ? nd : drop;
            rc = sb_err_set(err, SB_ENOMEM, "out of memory");
            break;
        }
        drop = nd;
        ndrop++;
    }
    sqlite3_reset(s);
    for (size_t i = 0; i < ndrop; i++) {
        if (!rc) {
            sqlite3_stmt *u = sb_store_stmt(st, STMT_FN_REMOVE);
            if (!u) {
                rc = sb_err_set(err, SB_ESTORE, "statement unavailable");
            } else {
                sqlite3_bind_int64(u, 1, now);
                sqlite3_bind_text(u, 2, drop[i], -1, SQLITE_STATIC);
                rc = sb_store_exec_stmt(st, u, err);
            }
        }
        free(drop[i]);
    }
    free(drop);
    return rc;
}

int sb_store_purge(struct sb_store *st, int64_t before_ms, int limit, int *deleted,
                   struct sb_err *err)
{
    /* expired idempotency keys and rate-limit hits older than the longest
     * period (a day): they expire on their own clock, not the retention's */
    int64_t now = sb_now_ms();
    sqlite3_stmt *fs = sb_store_stmt(st, STMT_PURGE_FLOW);
    if (fs)
        sqlite3_bind_int64(fs, 1, now);
    int frc = sb_store_exec_stmt(st, fs, err);
    if (frc)
        return frc;
    sqlite3_stmt *rs = sb_store_stmt(st, STMT_PURGE_RATE);
    if (rs)
        sqlite3_bind_int64(rs, 1, now - 86400000);
    if ((frc = sb_store_exec_stmt(st, rs, err)))
        return frc;
    static const enum sb_stmt_id order[] = { STMT_PURGE_STEPS, STMT_PURGE_RUN_EVENTS,
                                             STMT_PURGE_RUNS, STMT_PURGE_EVENTS };
    /* Event ids are ULIDs, whose prefix is the time they were made: events
     * are purged by id range, which needs no index of its own. */
    static const uint8_t zero[10];
    char cutoff[SB_ULID_SIZE];
    sb_ulid_from_parts(before_ms, zero, cutoff);
    *deleted = 0;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        sqlite3_stmt *s = sb_store_stmt(st, order[i]);
        if (!s)
            return sb_err_set(err, SB_ESTORE, "statement unavailable");
        if (order[i] == STMT_PURGE_EVENTS)
            sqlite3_bind_text(s, 1, cutoff, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(s, 1, before_ms);
        sqlite3_bind_int(s, 2, limit);
        int rc = sb_store_exec_stmt(st, s, err);
        if (rc)
            return rc;
        if (order[i] == STMT_PURGE_RUNS || order[i] == STMT_PURGE_EVENTS)
            *deleted += sqlite3_changes(st->db);
    }
    return 0;
}

/* ---- engine reads ---- */

void sb_run_state_free(struct run_state *rs)
{
    free(rs->function_id);
    free(rs->event);
    free(rs->events);
    for (size_t i = 0; i < rs->nsteps; i++)
        free(rs->steps[i].output);
    free(rs->steps);
    memset(rs, 0, sizeof *rs);
}

/* The events of a batched run as a JSON array into out->events (left NULL
 * for a run of one event). */
static int run_state_events(struct sb_store *st, const char *run_id, struct run_state *out,
                            struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_RUN_STATE_EVENTS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    struct sb_buf b = { 0 };
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int n = 0, brc = 0, crc = 0, rc;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
        brc |= sb_buf_puts(&b, n++ ? "," : "[");
        brc |= sb_buf_puts(&b, sb_store_col_req(s, 0, &crc));
    }
    sqlite3_reset(s);
    if (!rc && crc)
        rc = sb_store_col_error(err, crc);
    if (!rc && n && (brc || sb_buf_puts(&b, "]") != 0 || !(out->events = sb_buf_steal(&b, NULL))))
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    sb_buf_free(&b);
    return rc;
}

/* The memoized steps, in stack order, into out->steps. */
static int run_state_steps(struct sb_store *st, const char *run_id, struct run_state *out,
                           struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_RUN_STATE_STEPS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
        if (out->nsteps == cap) {
            cap = cap ? cap * 2 : 8;
            void *p = realloc(out->steps, cap * sizeof *out->steps);
            if (!p) {
                rc = sb_err_set(err, SB_ENOMEM, "out of memory");
                break;
            }
            out->steps = p;
        }
        int crc = 0;
        snprintf(out->steps[out->nsteps].hash, sizeof out->steps[0].hash, "%s",
                 sb_store_col_req(s, 0, &crc));
        const char *o = sb_store_col_text(s, 1, &crc);
        char *copy = crc ? NULL : strdup(o ? o : "null");
        if (!copy) {
            rc = sb_store_col_error(err, crc ? crc : SB_ENOMEM);
            break;
        }
        out->steps[out->nsteps++].output = copy;
    }
    sqlite3_reset(s);
    return rc;
}

int sb_store_run_state(struct sb_store *st, const char *run_id, struct run_state *out,
                       struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = sb_store_stmt(st, STMT_RUN_STATE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int rc = sb_store_next_row(st, s, err);
    if (rc <= 0) {
        sqlite3_reset(s);
        return rc ? rc : sb_err_set(err, SB_ENOTFOUND, "run %s not found", run_id);
    }
    snprintf(out->id, sizeof out->id, "%s", run_id);
    int crc = 0;
    out->function_id = sb_store_col_dup(s, 0, &crc);
    out->status = sqlite3_column_int(s, 1);
    out->req_version = sqlite3_column_int(s, 2);
    out->event = sb_store_col_dup(s, 3, &crc);
    sqlite3_reset(s);
    if (!out->function_id || !out->event)
        rc = sb_store_col_error(err, crc ? crc : SB_ESTORE);
    else if (!(rc = run_state_events(st, run_id, out, err)))
        rc = run_state_steps(st, run_id, out, err);
    /* all or nothing: a run state missing some of its memoized steps would
     * make the worker run completed steps again */
    if (rc)
        sb_run_state_free(out);
    return rc;
}

int sb_store_counts(struct sb_store *st, int64_t *queue_rows, int64_t *running, struct sb_err *err)
{
    int rc = sb_store_query_int64(st, sb_store_stmt(st, STMT_COUNT_QUEUE), queue_rows, err);
    return rc ? rc : sb_store_query_int64(st, sb_store_stmt(st, STMT_COUNT_RUNNING), running, err);
}

int sb_store_functions_scan(struct sb_store *st,
                            int (*fn)(void *ctx, const char *id, const char *app_id,
                                      const char *config, bool removed, const char *app_url),
                            void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_FN_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sb_store_col_req(s, 0, &crc);
        const char *app_id = sb_store_col_req(s, 1, &crc);
        const char *config = sb_store_col_req(s, 2, &crc);
        const char *url = sb_store_col_text(s, 4, &crc);
        if (crc) {
            rc = sb_store_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, id, app_id, config, sqlite3_column_int(s, 3) != 0, url)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sb_store_apps_scan(struct sb_store *st,
                       int (*fn)(void *ctx, const char *id, const char *url, const char *checksum),
                       void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sb_store_stmt(st, STMT_APP_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sb_store_col_req(s, 0, &crc);
        const char *url = sb_store_col_req(s, 1, &crc);
        const char *checksum = sb_store_col_text(s, 2, &crc);
        if (crc) {
            rc = sb_store_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, id, url, checksum)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sb_store_apps_at_url(struct sb_store *st, const char *url, const char *except_id, char ***ids,
                         size_t *n, struct sb_err *err)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *s = sb_store_stmt(st, STMT_APPS_AT_URL);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, except_id, -1, SQLITE_STATIC);
    int rc, crc = 0;
    while ((rc = sb_store_next_row(st, s, err)) > 0) {
        char **nv = realloc(*ids, (*n + 1) * sizeof *nv);
        char *id = sb_store_col_dup(s, 0, &crc);
        if (nv)
            *ids = nv;
        if (!nv || !id) {
            free(id);
            rc = sb_store_col_error(err, crc ? crc : SB_ENOMEM);
            break;
        }
        (*ids)[(*n)++] = id;
    }
    sqlite3_reset(s);
    if (rc) { /* no partial list: the caller would act on it */
        for (size_t i = 0; i < *n; i++)
            free((*ids)[i]);
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int sb_store_app_get(struct sb_store *st, const char *app_id, char **checksum, char **url,
                     struct sb_err *err)
{
    if (checksum)
        *checksum = NULL;
    if (url)
        *url = NULL;
    sqlite3_stmt *s = sb_store_stmt(st, STMT_APP_GET);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
    int rc = sb_store_next_row(st, s, err);
    if (rc == 0)
        rc = sb_err_set(err, SB_ENOTFOUND, "no app %s", app_id);
    if (rc > 0) {
        int crc = 0;
        char *c = checksum ? sb_store_col_dup(s, 0, &crc) : NULL;
        char *u = url ? sb_store_col_dup(s, 1, &crc) : NULL;
        if (crc || (url && !u)) {
            free(c);
            free(u);
            rc = sb_store_col_error(err, crc ? crc : SB_ESTORE);
        } else {
            if (checksum)
                *checksum = c;
            if (url)
                *url = u;
            rc = 0;
        }
    }
    sqlite3_reset(s);
    return rc;
}
