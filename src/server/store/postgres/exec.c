/* exec.c - the PostgreSQL backend's one way to run a statement: the
 * per-session statement cache, parameters, the mapping of server errors to
 * SB_E* codes, and column reads (see pgs.h).
 *
 * Statements are prepared on first use in a session, named "s<id>", and
 * forgotten when the session is replaced (a reconnect, conn.c); SQL built
 * at run time (the API's list filters) goes as text with parameters, its
 * values as parameters too. Every statement is sent and its answer awaited
 * for at most the session's answer timeout (await_result): a server that
 * does not answer costs its session, never a thread. Every value goes as text and comes back as text: the
 * server types parameters from their use in the SQL, and a result is read
 * in full before any of it is used, so a callback may run other statements
 * on the same connection. A statement that fails because the session is
 * gone is run once more on a new one when no transaction was open. */
#include "pgs.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stmt_sql[PGS__COUNT] = {
#define PGS_X_SQL(name, sql) sql,
    PGS_STMT_LIST(PGS_X_SQL)
#undef PGS_X_SQL
};

/* ---- parameters ---- */

void pgs_text(struct pgs_params *p, const char *v)
{
    assert(p->n < PGS_MAX_PARAMS);
    p->val[p->n++] = v;
}

void pgs_int(struct pgs_params *p, int64_t v)
{
    assert(p->n < PGS_MAX_PARAMS);
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
    p->val[p->n] = p->num[p->n];
    p->n++;
}

void pgs_opt_time(struct pgs_params *p, int64_t v)
{
    if (v > 0)
        pgs_int(p, v);
    else
        pgs_text(p, NULL);
}

/* ---- errors ---- */

/* The SB_E* for a failed result (NULL: libpq could not even make one). */
static int code_for(PGconn *db, const PGresult *r)
{
    if (!r || PQstatus(db) == CONNECTION_BAD)
        return SB_EUNAVAIL;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state || strlen(state) != 5)
        return SB_ESTORE;
    static const struct {
        const char *prefix;
        int code;
    } map[] = {
        /* a change that breaks a rule of the store is refused again if sent
         * again: permanent (the engine then ends the run) */
        { "23", SB_EINVAL },      /* integrity constraint */
        { "22", SB_EINVAL },      /* data exception (a value out of range, bad text) */
        { "40001", SB_EBUSY },    /* serialization failure */
        { "40P01", SB_EBUSY },    /* deadlock */
        { "55P03", SB_EBUSY },    /* lock not available (lock_timeout) */
        { "57014", SB_ETIMEOUT }, /* query cancelled (statement_timeout) */
        { "53100", SB_EIO },      /* disk full */
        { "53200", SB_ENOMEM },   /* out of memory */
        { "53300", SB_EUNAVAIL }, /* too many connections */
        { "54", SB_ETOOBIG },     /* program limit exceeded */
        { "08", SB_EUNAVAIL },    /* connection exception */
        { "57P", SB_EUNAVAIL },   /* the server shutting down or restarting */
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(state, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].code;
    return SB_ESTORE;
}

/* Fills err from a failed result or connection; returns its code. */
static int fail(struct sbd_store *st, const PGresult *r, const char *what, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    int code = code_for(c->db, r);
    if (c->answer_timed_out)
        return sb_err_set(err, SB_EUNAVAIL,
                          "database (%s): %sno answer within %d s; the session was closed", c->where,
                          what, c->answer_timeout_ms / 1000);
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(c->db);
    int n = (int)strcspn(msg, "\n");
    return sb_err_set(err, code, "database (%s): %s%.*s", c->where, what, n,
                      *msg ? msg : "no answer");
}

/* ---- statements ---- */

/* Waits until libpq holds the whole answer of what was sent: 0, or -1 when
 * the session failed or nothing came within its answer timeout. */
static int wait_answer(struct pgs_conn *c, int64_t deadline)
{
    while (PQisBusy(c->db)) {
        int64_t left = deadline - sb_mono_ms();
        struct pollfd pfd = { .fd = PQsocket(c->db), .events = POLLIN };
        int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            c->answer_timed_out = true;
        if (n <= 0 || !PQconsumeInput(c->db))
            return -1;
    }
    return 0;
}

/* The answer of the query just sent (PQsend*: 1, else 0), as PQexec gives
 * it: the last result, or the first that failed. A server that does not
 * answer within the session's answer timeout loses the session: its socket
 * is shut down, libpq marks it bad, the statement fails SB_EUNAVAIL and the
 * next one reconnects (pgs_session_ready; a COMMIT whose answer was lost is
 * settled there). NULL when even that gave no result. */
static PGresult *await_result(struct pgs_conn *c, int sent)
{
    c->answer_timed_out = false;
    if (!sent)
        return NULL;
    int64_t deadline = sb_mono_ms() + c->answer_timeout_ms;
    PGresult *keep = NULL, *r;
    for (;;) {
        if (wait_answer(c, deadline) != 0 && PQstatus(c->db) != CONNECTION_BAD) {
            if (c->answer_timed_out)
                SB_LOG(SB_WARN, "store_no_answer",
                       "PostgreSQL (%s) gave no answer within %d s: closing the session", c->where,
                       c->answer_timeout_ms / 1000);
            shutdown(PQsocket(c->db), SHUT_RDWR);
            PQconsumeInput(c->db); /* sees the end of the stream: the session is bad */
        }
        if (!(r = PQgetResult(c->db)))
            break;
        ExecStatusType ks = keep ? PQresultStatus(keep) : PGRES_COMMAND_OK;
        if (keep && ks != PGRES_COMMAND_OK && ks != PGRES_TUPLES_OK) {
            PQclear(r); /* the first failure is the answer */
        } else {
            PQclear(keep);
            keep = r;
        }
        if (PQstatus(c->db) == CONNECTION_BAD && PQisBusy(c->db))
            break;
    }
    return keep;
}

static int prepare(struct sbd_store *st, enum pgs_stmt_id id, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    char name[16];
    snprintf(name, sizeof name, "s%d", (int)id);
    PGresult *r = await_result(c, PQsendPrepare(c->db, name, stmt_sql[id], 0, NULL));
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = fail(st, r, "cannot prepare a statement: ", err);
    else
        c->prepared[id] = true;
    PQclear(r);
    return rc;
}

/* Runs statement id (or, when sql is not NULL, that text) once on the
 * current session: 0 with *res, or the error with err filled. */
static int run_once(struct sbd_store *st, enum pgs_stmt_id id, const char *sql,
                    const struct pgs_params *p, PGresult **res, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    int rc;
    if ((rc = pgs_session_ready(st, err)) ||
        (!sql && !c->prepared[id] && (rc = prepare(st, id, err))))
        return rc;
    int n = p ? p->n : 0;
    const char *const *vals = p ? p->val : NULL;
    PGresult *r;
    if (sql) {
        r = await_result(c, PQsendQueryParams(c->db, sql, n, NULL, vals, NULL, NULL, 0));
    } else {
        char name[16];
        snprintf(name, sizeof name, "s%d", (int)id);
        r = await_result(c, PQsendQueryPrepared(c->db, name, n, vals, NULL, NULL, 0));
    }
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        rc = fail(st, r, "", err);
        PQclear(r);
        return rc;
    }
    *res = r;
    return 0;
}

/* A session the server ended (a restart, pg_terminate_backend, a proxy's
 * idle timeout) shows only when a statement fails on it. Outside a
 * transaction nothing of the session's work goes with it: what ran outside
 * one is a read, BEGIN, or start-up work that is done again anyway. So the
 * statement is run once more, on a new session (pgs_session_ready
 * reconnects). Inside a transaction the writer must roll back first: the
 * error is the operation's. */
static int run_retrying(struct sbd_store *st, enum pgs_stmt_id id, const char *sql,
                        const struct pgs_params *p, PGresult **res, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    *res = NULL;
    int rc = run_once(st, id, sql, p, res, err);
    if (rc == SB_EUNAVAIL && !c->in_txn && PQstatus(c->db) == CONNECTION_BAD)
        rc = run_once(st, id, sql, p, res, err);
    return rc;
}

int pgs_run(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p, PGresult **res,
            struct sb_err *err)
{
    assert(id >= 0 && id < PGS__COUNT);
    return run_retrying(st, id, NULL, p, res, err);
}

int pgs_run_sql(struct sbd_store *st, const char *sql, const struct pgs_params *p, PGresult **res,
                struct sb_err *err)
{
    assert(sql);
    return run_retrying(st, PGS__COUNT, sql, p, res, err);
}

int pgs_run_row(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
                PGresult **res, struct sb_err *err)
{
    int rc = pgs_run(st, id, p, res, err);
    if (rc == 0 && PQntuples(*res) == 0) {
        PQclear(*res);
        *res = NULL;
        rc = SB_ENOTFOUND;
    }
    return rc;
}

int pgs_exec(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
             int64_t *changed, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, id, p, &r, err);
    if (rc)
        return rc;
    if (changed) {
        const char *n = PQcmdTuples(r);
        *changed = *n ? strtoll(n, NULL, 10) : 0;
    }
    PQclear(r);
    return 0;
}

int pgs_query_int64(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
                    int64_t *out, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, id, p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    if (PQntuples(r) != 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0))
        crc = SB_ESTORE;
    int64_t v = crc ? 0 : pgs_col_int(r, 0, 0, &crc);
    PQclear(r);
    if (crc)
        return sb_err_set(err, SB_ESTORE, "database: a query of one number gave none");
    *out = v;
    return 0;
}

int pgs_exec_sql(struct sbd_store *st, const char *sql, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    PGresult *r = await_result(c, PQsendQuery(c->db, sql));
    ExecStatusType s = PQresultStatus(r);
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = fail(st, r, "", err);
    PQclear(r);
    return rc;
}

/* ---- columns ---- */

const char *pgs_col_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

const char *pgs_col_req(const PGresult *r, int row, int col, int *rc)
{
    if (PQgetisnull(r, row, col)) {
        *rc = SB_ESTORE;
        return "";
    }
    return PQgetvalue(r, row, col);
}

char *pgs_col_dup(const PGresult *r, int row, int col, int *rc)
{
    const char *t = pgs_col_text(r, row, col);
    char *d = t ? strdup(t) : NULL;
    if (t && !d)
        *rc = SB_ENOMEM;
    return d;
}

int64_t pgs_col_int(const PGresult *r, int row, int col, int *rc)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const char *t = PQgetvalue(r, row, col);
    char *end;
    long long v = strtoll(t, &end, 10);
    if (end == t || *end) {
        *rc = SB_ESTORE;
        return 0;
    }
    return v;
}

int64_t pgs_col_time(const PGresult *r, int row, int col, int *rc)
{
    return PQgetisnull(r, row, col) ? SBD_STORE_NO_TIME : pgs_col_int(r, row, col, rc);
}

int pgs_col_error(struct sb_err *err, int rc)
{
    return sb_err_set(err, rc, "%s",
                      rc == SB_ENOMEM ? "out of memory reading a stored row"
                                      : "a stored row has a value the schema does not allow");
}
