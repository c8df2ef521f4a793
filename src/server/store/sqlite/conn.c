/* conn.c - the SQLite backend's connections: opening the database a
 * sqlite:// URL names, the statement cache, the one place statements are
 * stepped, column reads, transactions, and the backend's ops table.
 *
 * Durability: WAL with synchronous=FULL, so COMMIT returns after the WAL is
 * fsync'd; the writer thread batches many operations into one transaction so
 * one fsync serves them all. Readers use their own connections (WAL lets them
 * read while the writer writes).
 *
 * URLs: sqlite://PATH, PATH taken literally (no percent-decoding, no query):
 * sqlite:///var/lib/sysbus/sysbus.db is absolute, sqlite://.sysbus/sysbus.db
 * relative to the working directory. The file's directory is created (one
 * level, mode 0700) when missing, as --data-dir always was. */
#include "sq.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const stmt_sql[STMT__COUNT] = {
#define SQ_X_SQL(name, sql) sql,
    SQ_STMT_LIST(SQ_X_SQL)
#undef SQ_X_SQL
};

#define SQ_OP_ENTRY(ret, name, params, args) .name = sq_##name,
#define SQ_VOP_ENTRY(name, params, args) .name = sq_##name,
const struct sbd_store_ops sq_store_ops = { .scheme = "sqlite",
                                            .open = sq_open,
                                            .open_reader = sq_open_reader,
                                            .close = sq_close,
                                            .backup = sq_backup,
                                            .restore = sq_restore,
                                            .export_to = sq_export,
                                            SBD_STORE_OPS(SQ_OP_ENTRY, SQ_VOP_ENTRY) };
#undef SQ_OP_ENTRY
#undef SQ_VOP_ENTRY

/* ---- connections ---- */

/* The file a sqlite:// URL names: a pointer into url, or NULL (err filled)
 * when it names none. */
const char *sq_url_path(const char *url, struct sb_err *err)
{
    static const char prefix[] = "sqlite://";
    if (strncmp(url, prefix, sizeof prefix - 1) != 0 || !url[sizeof prefix - 1]) {
        sb_err_set(err, SB_EINVAL,
                   "a SQLite store URL is sqlite:///absolute/path.db or sqlite://relative/path.db");
        return NULL;
    }
    return url + sizeof prefix - 1;
}

/* Creates the directory of path when missing (one level, 0700). */
static int make_parent(const char *path, struct sb_err *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    size_t n = (size_t)(slash - path);
    char *dir = strndup(path, n);
    if (!dir)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    int rc = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = sb_err_errno(err, SB_EIO, "cannot create data directory %s", dir);
    free(dir);
    return rc;
}

int sq_writer_lock(const char *path, int *fd, struct sb_err *err)
{
    char lpath[4096];
    if (snprintf(lpath, sizeof lpath, "%s.lock", path) >= (int)sizeof lpath)
        return sb_err_set(err, SB_EINVAL, "store path too long");
    int f = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0)
        return sb_err_errno(err, SB_EIO, "cannot open lock file %s", lpath);
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(f, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(f);
        if (e != EWOULDBLOCK) {
            errno = e;
            return sb_err_errno(err, SB_EIO, "cannot lock %s", lpath);
        }
        return sb_err_set(err, SB_EBUSY, "another process (pid %s) is using the store %s",
                          *pid ? pid : "?", path);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        close(f);
        return sb_err_errno(err, SB_EIO, "cannot write lock file %s", lpath);
    }
    *fd = f;
    return 0;
}

static int open_conn(const char *path, int readonly, struct sbd_store **out, struct sb_err *err)
{
    struct sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    c->lock_fd = -1;
    c->base.ops = &sq_store_ops;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* each connection is used by one thread */
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        sb_err_set(err, SB_ESTORE, "cannot open database %s: %s", path,
                   c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return SB_ESTORE;
    }
    c->readonly = readonly;
    sqlite3_busy_timeout(c->db, 10000);
    /* Page caches are small on purpose: the writer appends at the right
     * edge of its B-trees and readers look rows up by key, so a few MB hold
     * the working set; memory stays flat however many runs are stored
     * (bench/rss.sh). */
    const char *pragmas = readonly ? "PRAGMA query_only=1; PRAGMA cache_size=-1024;"
                                   : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                     "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-4096;"
                                     "PRAGMA wal_autocheckpoint=2000;";
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        sb_err_set(err, SB_ESTORE, "cannot configure database %s: %s", path, msg);
        sqlite3_free(msg);
        sqlite3_close(c->db);
        free(c);
        return SB_ESTORE;
    }
    *out = &c->base;
    return 0;
}

/* Single writer: the tally starts from the database and is kept by this
 * connection from then on. A failed read must fail the open, not leave it at
 * 0 (which would ignore every open wait). */
static int read_tally(struct sbd_store *st, struct sb_err *err)
{
    struct sq_tally *t = &sq_conn(st)->tally;
    int64_t singletons = 0;
    sqlite3_stmt *s;
    int rc = sq_query_int64(st, sq_stmt(st, STMT_WAIT_COUNT), &t->open_waits, err);
    if (!rc)
        rc = sq_query_int64(st, sq_stmt(st, STMT_CANCEL_REQ_COUNT), &t->open_cancels, err);
    if (!rc && (s = sq_stmt(st, STMT_SINGLETON_ANY)))
        sqlite3_bind_int(s, 1, FLOW_SINGLETON);
    if (!rc)
        rc = sq_query_int64(st, s, &singletons, err);
    t->singletons = singletons > 0;
    return rc;
}

int sq_open(const char *url, struct sbd_store **out, struct sb_err *err)
{
    const char *path = sq_url_path(url, err);
    if (!path)
        return SB_EINVAL;
    int rc = make_parent(path, err);
    struct sbd_store *st = NULL;
    int lock_fd = -1;
    if (!rc && (rc = sq_writer_lock(path, &lock_fd, err)) == SB_EBUSY) {
        /* one writer (store.h, "Single writer"): a second sysbusd on the
         * same file must not start (exit 3, as for a newer store) */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        rc = sb_err_set(err, SB_ECONFIG,
                        "%.400s: another sysbusd already runs on this data directory", why);
    }
    if (rc || (rc = open_conn(path, 0, &st, err))) {
        if (lock_fd >= 0)
            close(lock_fd);
        return rc;
    }
    sq_conn(st)->lock_fd = lock_fd;
    /* the counts decide whether events look for waits and whether the start
     * replays cancellations */
    if ((rc = sq_migrate(st, err)) || (rc = read_tally(st, err))) {
        sq_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int sq_open_reader(const char *url, struct sbd_store **out, struct sb_err *err)
{
    const char *path = sq_url_path(url, err);
    return path ? open_conn(path, 1, out, err) : SB_EINVAL;
}

void sq_close(struct sbd_store *st)
{
    if (!st)
        return;
    struct sq_conn *c = sq_conn(st);
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* frees the writer's lock */
    free(c);
}

/* ---- statements ---- */

sqlite3_stmt *sq_stmt(struct sbd_store *st, enum sq_stmt_id id)
{
    struct sq_conn *c = sq_conn(st);
    sqlite3_stmt *s = c->stmt[id];
    if (!s) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
            SQLITE_OK) {
            SB_LOG(SB_ERROR, "store_prepare", "cannot prepare statement %d: %s", (int)id,
                   sqlite3_errmsg(c->db));
            return NULL;
        }
        c->stmt[id] = s;
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

void sq_bind_text(sqlite3_stmt *s, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, idx);
}

void sq_bind_opt_int64(sqlite3_stmt *s, int idx, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(s, idx, v);
    else
        sqlite3_bind_null(s, idx);
}

int64_t sq_changes(struct sbd_store *st)
{
    return sqlite3_changes(sq_conn(st)->db);
}

int sq_next_row(struct sbd_store *st, sqlite3_stmt *s, struct sb_err *err)
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
    return sb_err_set(err, code, "database: %s", sqlite3_errmsg(sq_conn(st)->db));
}

int sq_exec(struct sbd_store *st, sqlite3_stmt *s, struct sb_err *err)
{
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable: %s",
                          sqlite3_errmsg(sq_conn(st)->db));
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
    }
    sqlite3_reset(s);
    return rc;
}

int sq_query_int64(struct sbd_store *st, sqlite3_stmt *s, int64_t *out, struct sb_err *err)
{
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable: %s",
                          sqlite3_errmsg(sq_conn(st)->db));
    int rc = sq_next_row(st, s, err);
    if (rc > 0)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == 0)
        rc = sb_err_set(err, SB_ESTORE, "database: a query of one row gave none");
    sqlite3_reset(s);
    return rc > 0 ? 0 : rc;
}

const char *sq_col_text(sqlite3_stmt *s, int col, int *rc)
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

const char *sq_col_req(sqlite3_stmt *s, int col, int *rc)
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

char *sq_col_dup(sqlite3_stmt *s, int col, int *rc)
{
    const char *t = sq_col_text(s, col, rc);
    char *d = t ? strdup(t) : NULL;
    if (t && !d)
        *rc = SB_ENOMEM;
    return d;
}

int64_t sq_col_time(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? SBD_STORE_NO_TIME
                                                      : sqlite3_column_int64(s, col);
}

int sq_col_error(struct sb_err *err, int rc)
{
    return sb_err_set(err, rc, "%s",
                      rc == SB_ENOMEM ? "out of memory reading a stored row"
                                      : "a stored row has NULL where the schema allows none");
}

/* ---- transactions ---- */

static int exec_simple(struct sbd_store *st, enum sq_stmt_id id, struct sb_err *err)
{
    return sq_exec(st, sq_stmt(st, id), err);
}

/* A rollback restores the tally the transaction (or savepoint) started
 * with: rows a rolled-back operation deleted are back, and a counter it
 * lowered must come back with them. */
int sq_begin(struct sbd_store *st, struct sb_err *err)
{
    struct sq_conn *c = sq_conn(st);
    c->tally_at_begin = c->tally;
    return exec_simple(st, STMT_BEGIN, err);
}

int sq_commit(struct sbd_store *st, struct sb_err *err)
{
    return exec_simple(st, STMT_COMMIT, err);
}

void sq_rollback(struct sbd_store *st)
{
    struct sq_conn *c = sq_conn(st);
    exec_simple(st, STMT_ROLLBACK, NULL);
    c->tally = c->tally_at_begin;
}

int sq_savepoint(struct sbd_store *st, struct sb_err *err)
{
    struct sq_conn *c = sq_conn(st);
    c->tally_at_savepoint = c->tally;
    return exec_simple(st, STMT_SAVEPOINT, err);
}

void sq_release(struct sbd_store *st)
{
    exec_simple(st, STMT_RELEASE, NULL);
}

void sq_rollback_savepoint(struct sbd_store *st)
{
    struct sq_conn *c = sq_conn(st);
    exec_simple(st, STMT_ROLLBACK_TO, NULL);
    exec_simple(st, STMT_RELEASE, NULL);
    c->tally = c->tally_at_savepoint;
}
