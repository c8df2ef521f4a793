/* backup.c - the SQLite store's backup and restore (sysbusd backup|restore).
 *
 * A backup is a SQLite database file: SQLite's online backup API copies
 * every page of the store inside one read transaction, so the copy is one
 * consistent snapshot even while sysbusd writes (WAL: the writer is never
 * blocked). It is written beside the target as <path>.partial, checked
 * (integrity_check, a sysbusd schema), fsync'd and renamed into place.
 *
 * A restore checks the file the same way, takes the store's writer lock (so
 * that no sysbusd runs on it while it is replaced, and none starts until it
 * is done), refuses a store holding data unless forced, and copies the file
 * into it with the same API. A backup of an older schema is restored as it
 * is: the next sysbusd migrates it, as it would the original. */
#include "sq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* A failed SQLite call on path: SB_EINVAL when the file is not a database
 * or is damaged (what a file given to restore may be), else SB_ESTORE. */
static int db_error(struct sb_err *err, sqlite3 *db, const char *what, const char *path)
{
    int ec = db ? sqlite3_errcode(db) : SQLITE_NOMEM;
    return sb_err_set(err, ec == SQLITE_CORRUPT || ec == SQLITE_NOTADB ? SB_EINVAL : SB_ESTORE,
                      "%s %s: %s", what, path, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Creates path (0600: a backup holds every event) unless it exists. */
int sq_create_private(const char *path, struct sb_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? sb_err_set(err, SB_EEXISTS,
                                            "%s exists: another backup to the same file is "
                                            "running, or one was cut short (remove it)",
                                            path)
                               : sb_err_errno(err, SB_EIO, "cannot create %s", path);
    close(fd);
    return 0;
}

static int open_db(const char *path, int flags, sqlite3 **db, struct sb_err *err)
{
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        int rc = db_error(err, *db, "cannot open", path);
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 10000);
    return 0;
}

static int query_text(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    int rc = -1;
    if (sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, size, "%s", t ? (const char *)t : "");
        rc = 0;
    }
    sqlite3_finalize(s);
    return rc;
}

/* The database at db (file path, for messages) is whole and a sysbusd
 * store of a schema this binary can open. */
static int check_store_file(sqlite3 *db, const char *path, struct sb_err *err)
{
    char v[256];
    if (query_text(db, "PRAGMA integrity_check", v, sizeof v) != 0)
        return db_error(err, db, "cannot check", path);
    if (strcmp(v, "ok") != 0)
        return sb_err_set(err, SB_EINVAL, "%s is damaged (integrity_check: %.200s)", path, v);
    if (query_text(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='runs'", v,
                   sizeof v) != 0 ||
        strcmp(v, "1") != 0)
        return sb_err_set(err, SB_EINVAL, "%s is not a sysbusd store (it has no runs table)", path);
    if (query_text(db, "PRAGMA user_version", v, sizeof v) != 0)
        return db_error(err, db, "cannot read the schema version of", path);
    if (atoi(v) > SBD_STORE_SCHEMA_VERSION)
        return sb_err_set(err, SB_ECONFIG,
                          "%s has schema version %s, newer than this sysbusd's (%d): use a "
                          "sysbusd at least as new as the one that wrote it",
                          path, v, SBD_STORE_SCHEMA_VERSION);
    return 0;
}

/* Copies every page of src into dst in one step (one read transaction on
 * src: a consistent snapshot). */
static int copy_db(sqlite3 *dst, sqlite3 *src, const char *path, struct sb_err *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b)
        return db_error(err, dst, "cannot start copying into", path);
    int step;
    for (int tries = 0; (step = sqlite3_backup_step(b, -1)) == SQLITE_BUSY ||
                        step == SQLITE_LOCKED;
         tries++) {
        if (tries >= 100)
            break;
        sqlite3_sleep(100);
    }
    sqlite3_backup_finish(b);
    if (step != SQLITE_DONE)
        return sb_err_set(err, step == SQLITE_BUSY ? SB_EBUSY : SB_ESTORE, "cannot copy into %s: %s",
                          path, sqlite3_errstr(step));
    return 0;
}

/* fsync of path, and of its directory (the rename is durable). */
static int sync_file_and_dir(const char *path, struct sb_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int rc = sb_err_errno(err, SB_EIO, "cannot sync %s", path);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    close(fd);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

/* src (a store) into the new file tmp, as a single file checked whole. */
static int write_copy(sqlite3 *src, const char *tmp, struct sb_err *err)
{
    sqlite3 *dst = NULL;
    int rc = open_db(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst, err);
    if (!rc)
        rc = copy_db(dst, src, tmp, err);
    char mode[32];
    if (!rc && query_text(dst, "PRAGMA journal_mode=DELETE", mode, sizeof mode) != 0)
        rc = db_error(err, dst, "cannot finish", tmp);
    if (!rc)
        rc = check_store_file(dst, tmp, err);
    sqlite3_close(dst);
    return rc;
}

int sq_backup(const char *url, const char *path, struct sb_err *err)
{
    const char *spath = sq_url_path(url, err);
    if (!spath)
        return SB_EINVAL;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.partial", path) >= (int)sizeof tmp)
        return sb_err_set(err, SB_EINVAL, "backup path too long");
    sqlite3 *src = NULL;
    int rc = open_db(spath, SQLITE_OPEN_READONLY, &src, err);
    if (!rc)
        rc = check_store_file(src, spath, err);
    bool created = false;
    if (!rc && !(rc = sq_create_private(tmp, err))) {
        created = true;
        rc = write_copy(src, tmp, err);
    }
    sqlite3_close(src);
    if (!rc && (rc = sync_file_and_dir(tmp, err)) == 0 && rename(tmp, path) != 0)
        rc = sb_err_errno(err, SB_EIO, "cannot rename %s to %s", tmp, path);
    if (!rc)
        rc = sync_file_and_dir(path, err);
    if (rc && created)
        unlink(tmp);
    return rc;
}

/* What kind of file path is: 0 for a SQLite database, else SB_EINVAL. */
static int check_backup_kind(const char *path, struct sb_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sb_err_errno(err, errno == ENOENT ? SB_ENOTFOUND : SB_EIO, "cannot open %s", path);
    char head[16] = { 0 };
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n == 16 && memcmp(head, "SQLite format 3", 16) == 0)
        return 0;
    if (n >= (ssize_t)strlen(SBD_STORE_EXPORT_MAGIC) &&
        memcmp(head, SBD_STORE_EXPORT_MAGIC, strlen(SBD_STORE_EXPORT_MAGIC)) == 0)
        return sb_err_set(err, SB_EINVAL,
                          "%s is an export (a PostgreSQL store's backup): restore it into a "
                          "postgres:// store (--store)",
                          path);
    return sb_err_set(err, SB_EINVAL, "%s is not a sysbusd backup", path);
}

/* Whether the store at db holds any app, event or run (a store just created
 * holds none). */
static int store_has_data(sqlite3 *db, bool *has, struct sb_err *err)
{
    char v[32];
    *has = false;
    if (query_text(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='runs'", v,
                   sizeof v) != 0)
        return db_error(err, db, "cannot read", "the store");
    if (strcmp(v, "0") == 0)
        return 0;
    if (query_text(db,
                   "SELECT EXISTS(SELECT 1 FROM apps) OR EXISTS(SELECT 1 FROM events) OR "
                   "EXISTS(SELECT 1 FROM runs)",
                   v, sizeof v) != 0)
        return db_error(err, db, "cannot read", "the store");
    *has = strcmp(v, "1") == 0;
    return 0;
}

static int restore_into(const char *tpath, const char *path, bool force, struct sb_err *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = open_db(path, SQLITE_OPEN_READONLY, &src, err);
    if (!rc)
        rc = check_store_file(src, path, err);
    if (!rc)
        rc = open_db(tpath, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst, err);
    bool has = false;
    if (!rc)
        rc = store_has_data(dst, &has, err);
    if (!rc && has && !force)
        rc = sb_err_set(err, SB_EEXISTS,
                        "the store %s holds data already: restore into an empty store, or give "
                        "--force to replace its data",
                        tpath);
    if (!rc)
        rc = copy_db(dst, src, tpath, err);
    if (!rc)
        rc = check_store_file(dst, tpath, err);
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

int sq_restore(const char *url, const char *path, bool force, struct sb_err *err)
{
    const char *tpath = sq_url_path(url, err);
    if (!tpath)
        return SB_EINVAL;
    int rc = check_backup_kind(path, err);
    if (rc)
        return rc;
    const char *slash = strrchr(tpath, '/');
    if (slash && slash != tpath) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - tpath), tpath);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return sb_err_errno(err, SB_EIO, "cannot create data directory %s", dir);
    }
    int lock_fd = -1;
    if ((rc = sq_writer_lock(tpath, &lock_fd, err)) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        if (rc == SB_EBUSY)
            sb_err_set(err, SB_EBUSY, "%.400s: stop that sysbusd before restoring", why);
        return rc;
    }
    rc = restore_into(tpath, path, force, err);
    close(lock_fd);
    return rc;
}
