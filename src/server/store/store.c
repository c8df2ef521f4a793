/* store.c - choosing and opening the store: the table of backends this build
 * has, the store URL (--store, or --data-dir's shorthand), the writable
 * connection, and one read-only connection per reading thread.
 *
 * The backend is picked once, by sbd_store_open, from the URL's scheme; from
 * then on every connection carries its ops (store.h), and readers open
 * through the same backend and URL. `active` and `active_url` are written by
 * sbd_store_open before other threads start and only read after. The reader
 * list is guarded by readers_lock. A backend built only on some machines is
 * added to `backends` under its #ifdef here, and nowhere else. */
#include "store.h"
#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern const struct sbd_store_ops sq_store_ops; /* sqlite/conn.c */
#ifdef SBD_STORE_POSTGRES
extern const struct sbd_store_ops pgs_store_ops; /* postgres/conn.c */
#endif

static const struct sbd_store_ops *const backends[] = {
    &sq_store_ops,
#ifdef SBD_STORE_POSTGRES
    &pgs_store_ops,
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static const struct sbd_store_ops *active; /* set once by sbd_store_open */
static char *active_url;

/* "sqlite, ..." into buf: the schemes this build has. */
static const char *scheme_names(char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NBACKENDS && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%s://", i ? ", " : "", backends[i]->scheme);
    return buf;
}

/* The backend for url's scheme; NULL with err (SB_EINVAL) when none. The
 * URL itself is never quoted back: another backend's may hold a password. */
static const struct sbd_store_ops *backend_for(const char *url, struct sb_err *err)
{
    char names[128];
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) {
        sb_err_set(err, SB_EINVAL,
                   "a store is a URL (scheme://...), e.g. sqlite:///var/lib/sysbus/sysbus.db; "
                   "this build has %s",
                   scheme_names(names, sizeof names));
        return NULL;
    }
    size_t n = (size_t)(sep - url);
    for (size_t i = 0; i < NBACKENDS; i++) {
        if (strlen(backends[i]->scheme) == n && strncmp(backends[i]->scheme, url, n) == 0) {
            if (!sep[3]) {
                sb_err_set(err, SB_EINVAL, "the store URL %.*s:// names no store", (int)n, url);
                return NULL;
            }
            return backends[i];
        }
    }
    sb_err_set(err, SB_EINVAL, "unknown store scheme '%.*s': this build has %s",
               (int)(n > 32 ? 32 : n), url, scheme_names(names, sizeof names));
    return NULL;
}

int sbd_store_url(const char *store, const char *data_dir, char **url, struct sb_err *err)
{
    *url = NULL;
    char *u;
    if (store && *store) {
        u = strdup(store);
    } else {
        size_t n = strlen(data_dir) + sizeof "sqlite:///sysbus.db";
        if ((u = malloc(n)))
            snprintf(u, n, "sqlite://%s/sysbus.db", data_dir);
    }
    if (!u)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    if (!backend_for(u, err)) {
        free(u);
        return SB_EINVAL;
    }
    *url = u;
    return 0;
}

int sbd_store_open(const char *url, struct sbd_store **out, struct sb_err *err)
{
    const struct sbd_store_ops *ops = backend_for(url, err);
    if (!ops)
        return SB_EINVAL;
    char *copy = strdup(url);
    if (!copy)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    int rc = ops->open(url, out, err);
    if (rc) {
        free(copy);
        return rc;
    }
    free(active_url);
    active = ops;
    active_url = copy;
    return 0;
}

int sbd_store_backup(const char *url, const char *path, struct sb_err *err)
{
    const struct sbd_store_ops *ops = backend_for(url, err);
    if (!ops)
        return SB_EINVAL;
    struct stat sb; /* a backup never replaces a file (the backend renames into place) */
    if (stat(path, &sb) == 0)
        return sb_err_set(err, SB_EEXISTS, "%s exists already: choose a new file", path);
    return ops->backup(url, path, err);
}

int sbd_store_restore(const char *url, const char *path, bool force, struct sb_err *err)
{
    const struct sbd_store_ops *ops = backend_for(url, err);
    return ops ? ops->restore(url, path, force, err) : SB_EINVAL;
}

int sbd_store_export(const char *url, FILE *out, struct sb_err *err)
{
    const struct sbd_store_ops *ops = backend_for(url, err);
    return ops ? ops->export_to(url, out, err) : SB_EINVAL;
}

const char *sbd_store_err_public(const struct sb_err *err)
{
    if (!err || !err->msg[0])
        return err && err->code ? sb_strerror(err->code) : "store error";
    if (!strstr(err->msg, "database (") && !strstr(err->msg, "(database ") &&
        !strstr(err->msg, "PostgreSQL ("))
        return err->msg;
    switch (err->code) { /* a message about the server: its gist only */
    case SB_EUNAVAIL: return "the database is unavailable (sysbusd's log says why)";
    case SB_EBUSY: return "the database is busy (sysbusd's log says why)";
    case SB_ETIMEOUT: return "the database did not answer in time (sysbusd's log says why)";
    default: return "the database refused the change (sysbusd's log says why)";
    }
}

void sbd_store_close(struct sbd_store *st)
{
    if (st)
        st->ops->close(st);
}

const char *sbd_store_kind(void)
{
    return active ? active->scheme : NULL;
}

/* Readers: one per thread, kept in a list so shutdown can close them all. */
struct reader_node {
    struct sbd_store *st;
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

struct sbd_store *sbd_store_reader(void)
{
    pthread_once(&reader_once, reader_key_init);
    struct sbd_store *st = pthread_getspecific(reader_key);
    if (st)
        return st;
    struct sb_err err = { 0 };
    if (!active) {
        SB_LOG(SB_ERROR, "store_reader_open", "cannot open a read connection: no store is open");
        return NULL;
    }
    if (active->open_reader(active_url, &st, &err) != 0) {
        SB_LOG(SB_ERROR, "store_reader_open", "cannot open a read connection: %s", err.msg);
        return NULL;
    }
    struct reader_node *n = malloc(sizeof *n);
    if (!n) {
        sbd_store_close(st);
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

void sbd_store_close_readers(void)
{
    pthread_mutex_lock(&readers_lock);
    while (readers) {
        struct reader_node *n = readers;
        readers = n->next;
        sbd_store_close(n->st);
        free(n);
    }
    pthread_mutex_unlock(&readers_lock);
}

bool sbd_store_url_has_password(const char *url)
{
    const char *auth = strstr(url, "://");
    if (!auth)
        return false;
    auth += 3;
    size_t n = strcspn(auth, "/?#"); /* the authority: [user[:password]@]host[:port] */
    const char *at = memrchr(auth, '@', n);
    if (at && memchr(auth, ':', (size_t)(at - auth)))
        return true;
    const char *q = strchr(auth, '?'); /* or as a parameter: ...?password=... */
    for (const char *p = q ? q + 1 : NULL; p && *p; p += strcspn(p, "&"), p += *p == '&')
        if (strncmp(p, "password=", 9) == 0)
            return true;
    return false;
}
