/* conn.c - the PostgreSQL backend's connections: the postgres:// URL, opening
 * a session and setting it up, reconnecting after the server went away,
 * transactions, and the backend's ops table.
 *
 * URLs: any libpq connection URI (postgres://user:pass@host:port/db?...,
 * PG* environment variables fill in what it leaves out), plus two parameters
 * of our own: answer_timeout=SECONDS (how long a statement may go
 * unanswered, exec.c) and schema=NAME (default "sysbus"): the store's tables
 * live in that schema of the database, so one database can hold other
 * things too. The
 * URL is never written to a log or an error (it may hold a password):
 * messages name host:port/db; a URL libpq cannot parse is SB_EINVAL with
 * libpq's reason, its quoted parts (pieces of the URL) elided; libpq's
 * connection errors have the password masked should they quote it. A
 * connection attempt gives up after 10 s unless the URL says otherwise
 * (connect_timeout).
 *
 * Durability: COMMIT returns after PostgreSQL has made the transaction
 * durable (synchronous_commit, the server's setting; on by default). The
 * writer thread batches many operations into one transaction.
 *
 * Sessions: every connection sets its search_path to the schema and a lock
 * timeout; readers are read-only. The writable connection takes a session
 * advisory lock for the schema (single writer, see pgs.h): a second sysbusd
 * on the same store is refused at start. When the server goes away, the
 * next statement outside a transaction reconnects and sets the session up
 * again (the writer re-takes its lock and re-reads its tally first; exec.c
 * runs a statement that failed on a dead session once more); inside one,
 * statements fail with SB_EUNAVAIL until the writer rolls back. */
#include "pgs.h"
#include "common/clock.h"
#include "common/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PGS_DEFAULT_SCHEMA "sysbus"
#define PGS_LOCK_TIMEOUT "10s"   /* as the SQLite backend's busy timeout */
#define PGS_CONNECT_TIMEOUT "10" /* seconds */
/* A server that stops answering, or a network that drops, is noticed in
 * about 25 s on both sides: libpq's keepalives and TCP_USER_TIMEOUT on
 * ours, the session's tcp_keepalives_* on the server's (which then ends a
 * session of ours that is gone, and frees its lock). */
#define PGS_KEEPALIVE_IDLE "10"
#define PGS_KEEPALIVE_INTERVAL "5"
#define PGS_KEEPALIVE_COUNT "3"
#define PGS_TCP_USER_TIMEOUT "30000" /* ms */
/* How long a reconnected writer waits for its lock (held by its own
 * session the server has not yet seen die, or by another sysbusd) before it
 * gives up the process: past the server's keepalive time, the holder is
 * another sysbusd, and this one must not go on calling workers. */
#define PGS_LOCK_LOST_MAX_MS 90000
/* How long a writer whose COMMIT answer was lost asks what became of it. */
#define PGS_IN_DOUBT_MAX_MS 60000

#define PGS_OP_ENTRY(ret, name, params, args) .name = pgs_##name,
#define PGS_VOP_ENTRY(name, params, args) .name = pgs_##name,
const struct sbd_store_ops pgs_store_ops = { .scheme = "postgres",
                                             .open = pgs_open,
                                             .open_reader = pgs_open_reader,
                                             .close = pgs_close,
                                             .backup = pgs_backup,
                                             .restore = pgs_restore,
                                             .export_to = pgs_export,
                                             SBD_STORE_OPS(PGS_OP_ENTRY, PGS_VOP_ENTRY) };
#undef PGS_OP_ENTRY
#undef PGS_VOP_ENTRY

/* ---- the URL ---- */

static bool schema_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !(islower((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* Splits url into what libpq connects with (*conninfo, malloc'd) and our
 * schema parameter (into schema). SB_EINVAL with err for a bad schema name
 * or a URL that is not postgres://. */
static int parse_url(const char *url, char **conninfo, char schema[64], int *answer_timeout_ms,
                     struct sb_err *err)
{
    static const char prefix[] = "postgres://";
    if (strncmp(url, prefix, sizeof prefix - 1) != 0)
        return sb_err_set(err, SB_EINVAL, "a PostgreSQL store URL starts with postgres://");
    char *out = malloc(strlen(url) + 1);
    if (!out)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    snprintf(schema, 64, "%s", PGS_DEFAULT_SCHEMA);
    *answer_timeout_ms = PGS_ANSWER_TIMEOUT_MS;
    const char *q = strchr(url, '?');
    size_t base = q ? (size_t)(q - url) : strlen(url);
    memcpy(out, url, base);
    size_t k = base;
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n >= 7 && strncmp(p, "schema=", 7) == 0) {
            if (!schema_name_ok(p + 7, n - 7)) {
                free(out);
                return sb_err_set(err, SB_EINVAL,
                                  "the store URL's schema must be a lower-case identifier "
                                  "(letters, digits, _; at most 63)");
            }
            snprintf(schema, 64, "%.*s", (int)(n - 7), p + 7);
        } else if (n >= 15 && strncmp(p, "answer_timeout=", 15) == 0) {
            char v[16] = "";
            snprintf(v, sizeof v, "%.*s", (int)(n - 15 < 15 ? n - 15 : 15), p + 15);
            char *end;
            long sec = strtol(v, &end, 10);
            if (!*v || *end || sec < 1 || sec > 3600) {
                free(out);
                return sb_err_set(err, SB_EINVAL,
                                  "the store URL's answer_timeout is a number of seconds, 1 to "
                                  "3600");
            }
            *answer_timeout_ms = (int)sec * 1000;
        } else if (n) {
            out[k] = k == base ? '?' : '&';
            k++;
            memcpy(out + k, p, n);
            k += n;
        }
        p += n + (p[n] == '&');
    }
    out[k] = '\0';
    *conninfo = out;
    return 0;
}

/* ---- sessions ---- */

/* The server pid of the session holding the writer's lock (0 when it
 * cannot be told): pg_locks shows a two-key advisory lock as classid, objid
 * (the second key as an unsigned oid) and objsubid 2. */
static int writer_lock_holder(struct pgs_conn *c)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT pid FROM pg_locks WHERE locktype='advisory' AND granted AND objsubid=2 "
             "AND classid=%d AND objid::bigint=(hashtext('writer:%s')::bigint & 4294967295)",
             PGS_LOCK_CLASS, c->schema);
    PGresult *r = PQexec(c->db, sql);
    int pid =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return pid;
}

static int take_writer_lock(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, hashtext('writer:%s'))",
             PGS_LOCK_CLASS, c->schema);
    PGresult *r = PQexec(c->db, sql);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        const char *m = PQresultErrorMessage(r);
        rc = sb_err_set(err, SB_EUNAVAIL, "database (%s): cannot take the store's lock: %.*s",
                        c->where, (int)strcspn(m, "\n"), m);
    } else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        /* the holder's pid says which session to look at: after a crash of
         * its host, the server keeps a dead session (and its lock) until
         * its TCP keepalives notice, or pg_terminate_backend(pid) */
        int pid = writer_lock_holder(c);
        char who[64] = "";
        if (pid > 0)
            snprintf(who, sizeof who, "; held by the PostgreSQL session of pid %d", pid);
        rc = sb_err_set(err, SB_ECONFIG,
                        "another sysbusd already writes this store (database %s, schema %s%s): "
                        "several sysbusd on one store are not supported yet",
                        c->where, c->schema, who);
    }
    PQclear(r);
    return rc;
}

/* Single writer: the tally starts from the database and is kept by this
 * connection from then on; a failed read fails the open or the reconnect. */
static int read_tally(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_tally t = { 0 };
    int64_t singletons = 0;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, FLOW_SINGLETON);
    int rc = pgs_query_int64(st, PGS_WAIT_COUNT, NULL, &t.open_waits, err);
    if (!rc)
        rc = pgs_query_int64(st, PGS_CANCEL_REQ_COUNT, NULL, &t.open_cancels, err);
    if (!rc)
        rc = pgs_query_int64(st, PGS_SINGLETON_ANY, &p, &singletons, err);
    t.singletons = singletons > 0;
    if (!rc) /* all of it or none: a count read short would be below the truth */
        pgs_conn(st)->tally = t;
    return rc;
}

static int set_up(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    char sql[400];
    /* the server ends a slow statement (statement_timeout, SB_ETIMEOUT) well
     * before the client gives up on a server that does not answer at all */
    snprintf(sql, sizeof sql,
             "SET search_path TO \"%s\"; SET lock_timeout TO '%s'; SET client_min_messages TO "
             "warning; SET tcp_keepalives_idle TO %s; SET tcp_keepalives_interval TO %s; "
             "SET tcp_keepalives_count TO %s; SET statement_timeout TO %d;%s",
             c->schema, PGS_LOCK_TIMEOUT, PGS_KEEPALIVE_IDLE, PGS_KEEPALIVE_INTERVAL,
             PGS_KEEPALIVE_COUNT, c->answer_timeout_ms / 2,
             c->readonly ? " SET default_transaction_read_only TO on;" : "");
    return pgs_exec_sql(st, sql, err);
}

static void describe(struct pgs_conn *c)
{
    const char *host = PQhost(c->db);
    snprintf(c->where, sizeof c->where, "%.60s:%.8s/%.60s", host && *host ? host : "local",
             PQport(c->db) ? PQport(c->db) : "", PQdb(c->db) ? PQdb(c->db) : "");
}

/* What the server says besides results (a WARNING, a NOTICE) goes to the
 * log, not to stderr as libpq's default would. */
static void on_notice(void *arg, const char *msg)
{
    const struct pgs_conn *c = arg;
    SB_LOG(SB_WARN, "store_notice", "PostgreSQL (%s): %.*s", c->where, (int)strcspn(msg, "\n"),
           msg);
}

/* libpq's parse error with every "quoted" part elided into out: libpq
 * quotes pieces of the URL in those (the whole URL, a token it could not
 * decode), and any of them may hold the password. */
static void elide_quoted(const char *msg, char *out, size_t n)
{
    size_t k = 0;
    bool quoted = false;
    for (const char *p = msg; *p && *p != '\n' && k + 4 < n; p++) {
        if (*p == '"') {
            quoted = !quoted;
            if (quoted) {
                memcpy(out + k, "\"...", 4);
                k += 4;
            }
        }
        if (!quoted)
            out[k++] = *p;
    }
    out[k] = '\0';
}

/* SB_EINVAL with err when libpq cannot parse c->conninfo: a URL to change,
 * not a server to wait for. */
static int check_url(const struct pgs_conn *c, struct sb_err *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(c->conninfo, &msg);
    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    char why[300];
    elide_quoted(msg ? msg : "out of memory", why, sizeof why);
    PQfreemem(msg);
    return sb_err_set(err, SB_EINVAL,
                      "the store URL is not a PostgreSQL URL libpq accepts "
                      "(postgres://user:password@host:port/database?param=value): %s",
                      why);
}

/* The first line of msg into out, each occurrence of secret (when not
 * empty) as "***". */
static void redact(const char *msg, const char *secret, char *out, size_t n)
{
    size_t len = strcspn(msg, "\n"), sn = secret ? strlen(secret) : 0, k = 0;
    for (size_t i = 0; i < len && k + 4 < n;) {
        if (sn && i + sn <= len && strncmp(msg + i, secret, sn) == 0) {
            memcpy(out + k, "***", 3);
            k += 3;
            i += sn;
        } else {
            out[k++] = msg[i++];
        }
    }
    out[k] = '\0';
}

/* Fills err with what libpq says of a failed connection, the URL's password
 * replaced by "***" should the message quote it. */
static int connect_error(const struct pgs_conn *c, const char *what, struct sb_err *err)
{
    PQconninfoOption *opts = PQconninfoParse(c->conninfo, NULL);
    const char *password = NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0)
            password = o->val;
    char msg[400];
    redact(PQerrorMessage(c->db), password, msg, sizeof msg);
    PQconninfoFree(opts);
    return sb_err_set(err, SB_EUNAVAIL, "%s PostgreSQL (%s): %s", what, c->where, msg);
}

static int connect_session(struct pgs_conn *c, struct sb_err *err)
{
    int rc = check_url(c, err);
    if (rc)
        return rc;
    /* Keys before dbname are defaults the URL may override, those after it
     * are ours: a connection attempt to a host that does not answer gives
     * up after 10 s (libpq's default waits for the kernel's TCP timeout,
     * minutes, with the writer thread stuck in it). */
    const char *keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval",
                           "keepalives_count", "tcp_user_timeout", "dbname",
                           "fallback_application_name", "client_encoding", NULL };
    const char *vals[] = { PGS_CONNECT_TIMEOUT, PGS_KEEPALIVE_IDLE, PGS_KEEPALIVE_INTERVAL,
                           PGS_KEEPALIVE_COUNT, PGS_TCP_USER_TIMEOUT, c->conninfo, "sysbusd",
                           "UTF8", NULL };
    c->db = PQconnectdbParams(keys, vals, 1);
    if (!c->db)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    describe(c);
    PQsetNoticeProcessor(c->db, on_notice, c);
    return PQstatus(c->db) == CONNECTION_OK ? 0 : connect_error(c, "cannot connect to", err);
}

/* The writer's lock after a reconnect. Found held, it is most often our own
 * old session, which the server ends once its keepalives fail: a transient
 * error (the batch is retried, runs wait), not the start's refusal, which
 * would fail every run it touched for good. Held for longer than that, the
 * holder is another sysbusd: this process stops at once (exit 3, as at
 * start), since its engine would otherwise go on calling workers for runs
 * the other one now owns. */
static int retake_writer_lock(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    int rc = take_writer_lock(st, err);
    if (rc != SB_ECONFIG) {
        if (rc == 0)
            c->lock_lost_at = 0;
        return rc;
    }
    int64_t now = sb_mono_ms();
    if (!c->lock_lost_at)
        c->lock_lost_at = now;
    if (now - c->lock_lost_at > PGS_LOCK_LOST_MAX_MS) {
        SB_LOG(SB_ERROR, "store_lock_lost",
               "the store's lock is still held by another session after %d s: %s; stopping",
               PGS_LOCK_LOST_MAX_MS / 1000, err->msg);
        _exit(3);
    }
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return sb_err_set(err, SB_EUNAVAIL, "waiting for the store's lock after a reconnect: %.400s",
                      why);
}

/* Reconnects a connection whose server went away (or whose set-up did not
 * complete), outside a transaction, and sets its session up again: the
 * writer's lock before anything else, then its tally. c->ready only when
 * all of it is done: a writer whose lock another sysbusd took meanwhile
 * stays not ready (SB_ECONFIG at each try) and writes nothing. */
static int reconnect(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    bool reset = PQstatus(c->db) != CONNECTION_OK;
    c->ready = false;
    if (reset) {
        PQreset(c->db);
        memset(c->prepared, 0, sizeof c->prepared);
        if (PQstatus(c->db) != CONNECTION_OK)
            return connect_error(c, "cannot reconnect to", err);
    }
    int rc = set_up(st, err);
    if (!rc && !c->readonly)
        rc = retake_writer_lock(st, err);
    c->ready = rc == 0; /* the tally's own statements may run now */
    if (!rc && !c->readonly && (rc = read_tally(st, err)))
        c->ready = false;
    if (!rc && reset)
        SB_LOG(SB_INFO, "store_reconnected", "reconnected to PostgreSQL (%s)", c->where);
    return rc;
}

int pgs_session_ready(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    if (PQstatus(c->db) == CONNECTION_OK && c->ready)
        return 0;
    if (c->in_txn)
        return sb_err_set(err, SB_EUNAVAIL,
                          "database (%s): the connection was lost during a transaction", c->where);
    return reconnect(st, err);
}

static int open_conn(const char *url, bool readonly, struct sbd_store **out, struct sb_err *err)
{
    struct pgs_conn *c = calloc(1, sizeof *c);
    if (!c)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    c->base.ops = &pgs_store_ops;
    c->readonly = readonly;
    snprintf(c->where, sizeof c->where, "?");
    int rc = parse_url(url, &c->conninfo, c->schema, &c->answer_timeout_ms, err);
    if (!rc)
        rc = connect_session(c, err);
    if (!rc)
        rc = set_up(&c->base, err);
    c->ready = readonly; /* a reader is set up; the writer is once it holds its lock */
    if (rc) {
        pgs_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* What sysbusd stores is UTF-8 (from JSON); a database in another encoding
 * would refuse, at some later event, any character outside its own set. */
static int check_encoding(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    const char *enc = PQparameterStatus(c->db, "server_encoding");
    if (enc && strcmp(enc, "UTF8") == 0)
        return 0;
    return sb_err_set(err, SB_ECONFIG,
                      "the database (%s) is in encoding %.40s: the store needs a UTF8 database "
                      "(CREATE DATABASE ... ENCODING 'UTF8')",
                      c->where, enc ? enc : "unknown");
}

int pgs_open(const char *url, struct sbd_store **out, struct sb_err *err)
{
    struct sbd_store *st = NULL;
    int rc = open_conn(url, false, &st, err);
    if (rc)
        return rc;
    /* the lock first: a second sysbusd must not even migrate */
    if (!(rc = check_encoding(st, err)) && !(rc = take_writer_lock(st, err)))
        pgs_conn(st)->ready = true;
    if (rc || (rc = pgs_migrate(st, err)) || (rc = read_tally(st, err))) {
        pgs_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int pgs_open_reader(const char *url, struct sbd_store **out, struct sb_err *err)
{
    return open_conn(url, true, out, err);
}

void pgs_close(struct sbd_store *st)
{
    if (!st)
        return;
    struct pgs_conn *c = pgs_conn(st);
    PQfinish(c->db); /* ends the session: its advisory lock goes with it */
    free(c->conninfo);
    free(c);
}

/* ---- transactions ---- */

/* A rollback restores the tally the transaction (or savepoint) started
 * with: rows a rolled-back operation deleted are back, and a counter it
 * lowered must come back with them. */
int pgs_begin(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    int rc = pgs_exec(st, PGS_BEGIN, NULL, NULL, err);
    /* after BEGIN: it may have reconnected, which re-reads the tally */
    c->tally_at_begin = c->tally;
    c->in_txn = rc == 0;
    return rc;
}

/* Ends what is left of a transaction (nothing when COMMIT ended it, or the
 * session is gone and the server rolled it back): a ROLLBACK outside one
 * would only draw a warning. */
static void end_txn(struct pgs_conn *c)
{
    PGTransactionStatusType t = PQtransactionStatus(c->db);
    if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR)
        pgs_exec(&c->base, PGS_ROLLBACK, NULL, NULL, NULL);
    c->in_txn = false;
    c->tally = c->tally_at_begin;
}

int pgs_xact_outcome(struct sbd_store *st, const char *xid, bool *committed, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, xid);
    PGresult *r;
    int rc = pgs_run_row(st, PGS_XACT_STATUS, &p, &r, err);
    if (rc)
        return rc;
    const char *v = pgs_col_text(r, 0, 0);
    if (!v)
        rc = SB_ENOTFOUND;
    else if (strcmp(v, "in progress") == 0)
        rc = SB_EBUSY;
    else
        *committed = strcmp(v, "committed") == 0;
    PQclear(r);
    return rc;
}

/* The COMMIT of transaction xid was sent and its answer lost with the
 * connection: it may have committed. Ask a new session what became of it,
 * for up to PGS_IN_DOUBT_MAX_MS: committed is a commit (0: acknowledged,
 * and the tally was read again), aborted is an error (nothing
 * acknowledged). Reporting a commit as failed would leave its new runs
 * unannounced until the next start, and reporting a failure as a commit
 * would acknowledge what is not stored: when the server cannot say, the
 * process stops (exit 1) and its start finds the store as it is. */
static int commit_in_doubt(struct sbd_store *st, const char *xid, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    c->in_txn = false;
    int64_t deadline = sb_mono_ms() + PGS_IN_DOUBT_MAX_MS;
    struct sb_err e = { 0 };
    while (sb_mono_ms() < deadline) {
        bool committed = false;
        int rc = pgs_session_ready(st, &e);
        if (!rc)
            rc = pgs_xact_outcome(st, xid, &committed, &e);
        if (!rc) {
            SB_LOG(SB_WARN, "store_commit_in_doubt_resolved",
                   "the answer to COMMIT was lost; the server says the transaction %s",
                   committed ? "committed" : "was rolled back");
            return committed ? 0
                             : sb_err_set(err, SB_EUNAVAIL,
                                          "database (%s): the connection was lost at COMMIT, "
                                          "which did not commit",
                                          c->where);
        }
        if (rc == SB_ENOTFOUND)
            break;
        struct timespec ts = { 0, 200 * 1000000L };
        nanosleep(&ts, NULL);
    }
    SB_LOG(SB_ERROR, "store_commit_in_doubt",
           "the answer to COMMIT was lost and the server cannot say whether transaction %s "
           "committed (%s); stopping, so that the next start reads the store as it is",
           xid, e.msg[0] ? e.msg : "it no longer knows the transaction");
    _exit(1);
}

int pgs_commit(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    /* the transaction's id, to ask about it should the answer to COMMIT be
     * lost (NULL: it wrote nothing, and a lost COMMIT loses nothing) */
    char xid[32] = "";
    PGresult *r = NULL;
    int rc = 0;
    if (PQtransactionStatus(c->db) != PQTRANS_INERROR) /* else COMMIT answers ROLLBACK */
        rc = pgs_run(st, PGS_XACT_ID, NULL, &r, err);
    if (!rc) {
        if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            snprintf(xid, sizeof xid, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        rc = pgs_run(st, PGS_COMMIT, NULL, &r, err);
        if (rc == SB_EUNAVAIL && xid[0] && PQstatus(c->db) != CONNECTION_OK)
            return commit_in_doubt(st, xid, err);
    }
    /* COMMIT of a transaction a failed statement aborted answers ROLLBACK,
     * without an error: that is not a commit, and nothing may be
     * acknowledged for it. A COMMIT whose answer was lost with the
     * connection is settled by commit_in_doubt. */
    if (!rc && strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = sb_err_set(
            err, SB_ESTORE,
            "database (%s): the transaction was rolled back (a statement in it had failed)",
            c->where);
    PQclear(r);
    if (rc) /* not committed: what the transaction did is gone */
        end_txn(c);
    c->in_txn = false;
    return rc;
}

void pgs_rollback(struct sbd_store *st)
{
    end_txn(pgs_conn(st));
}

int pgs_savepoint(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    c->tally_at_savepoint = c->tally;
    return pgs_exec(st, PGS_SAVEPOINT, NULL, NULL, err);
}

void pgs_release(struct sbd_store *st)
{
    pgs_exec(st, PGS_RELEASE, NULL, NULL, NULL);
}

void pgs_rollback_savepoint(struct sbd_store *st)
{
    struct pgs_conn *c = pgs_conn(st);
    pgs_exec(st, PGS_ROLLBACK_TO, NULL, NULL, NULL);
    pgs_exec(st, PGS_RELEASE, NULL, NULL, NULL);
    c->tally = c->tally_at_savepoint;
}
