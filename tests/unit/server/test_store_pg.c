/* Unit tests for the PostgreSQL store backend (src/server/store/postgres/),
 * against a real server: set SYSBUS_TEST_PG_URL to a libpq URL of a
 * database the test may create schemas in (e.g.
 * postgres://postgres@127.0.0.1:55432/postgres); without it, or in a build
 * without libpq, the test says so and passes. Each test works in a schema of
 * its own (sbtest_<pid>_<n>, dropped after), so several runs may share a
 * database.
 *
 * Covered: a fresh schema is created and migrated, reopened without a
 * migration, refused when newer than this binary; a second writer is
 * refused; schema= selects the schema and a bad name is refused; the URL's
 * password is in no error; a COMMIT after a failed statement is an error,
 * not a commit; a session the server ended is reconnected by the next
 * operation; every statement's parameters and columns have the types the
 * backend reads; the main records read back as written; the connection's
 * tally survives rollbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/store/store.h"

#ifdef SBD_STORE_POSTGRES
#include <libpq-fe.h>

#include "server/store/postgres/pgs.h"

static const char *base_url; /* SYSBUS_TEST_PG_URL */
static char schema[64];      /* this test's schema */
static char url[1024];       /* base_url with schema=<schema> */
static PGconn *admin;        /* the test's own session, to look and to meddle */
static int serial;

/* base_url with our schema parameter for schema name. */
static void url_for(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s%sschema=%s", base_url, strchr(base_url, '?') ? "&" : "?", name);
}

static void admin_exec(const char *sql)
{
    PGresult *r = PQexec(admin, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    PQclear(r);
}

/* The first value of sql's result (malloc'd; NULL for no row or NULL). */
static char *admin_value(const char *sql)
{
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    char *v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static int setup(void **state)
{
    (void)state;
    snprintf(schema, sizeof schema, "sbtest_%d_%d", (int)getpid(), ++serial);
    url_for(url, sizeof url, schema);
    admin = PQconnectdb(base_url);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to SYSBUS_TEST_PG_URL: %s", PQerrorMessage(admin));
        return -1;
    }
    PQclear(PQexec(admin, "SET client_min_messages TO warning"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
    PGresult *r = PQexec(admin, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(admin);
    admin = NULL;
    return ok ? 0 : -1;
}

static struct sbd_store *open_store(void)
{
    struct sbd_store *st = NULL;
    struct sb_err err = { 0 };
    if (sbd_store_open(url, &st, &err) != 0)
        fail_msg("open %s: %s", schema, err.msg);
    return st;
}

/* A value of this test's meta table. */
static char *meta(const char *key)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT value FROM \"%s\".meta WHERE key='%s'", schema, key);
    return admin_value(sql);
}

/* ---- opening and the schema ---- */

static void a_fresh_schema_is_created_and_migrated(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    assert_string_equal(sbd_store_kind(), "postgres");
    int version = -1;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_schema_version(st, &version, &err), 0);
    assert_int_equal(version, SBD_STORE_SCHEMA_VERSION);
    char sql[200], *v;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables WHERE schemaname='%s'", schema);
    v = admin_value(sql);
    assert_string_equal(v, "15"); /* meta and the 14 tables of docs/internals/store.md */
    free(v);
    char *bus = meta("bus_id");
    assert_non_null(bus);
    assert_int_equal(strlen(bus), SB_ULID_SIZE - 1);
    free(bus);
    sbd_store_close(st);
}

static void reopening_does_not_migrate_again(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    struct sbd_ev_rec ev = { .id = "01REOPEN000000000000000000", .name = "a/b", .body = "{}" };
    bool inserted;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    sbd_store_close(st);
    char sql[200];
    /* a migration would rewrite the version's row (a new xmin) */
    snprintf(sql, sizeof sql, "SELECT xmin::text FROM \"%s\".meta WHERE key='schema_version'",
             schema);
    char *xmin = admin_value(sql), *bus = meta("bus_id");

    st = open_store();
    char *xmin2 = admin_value(sql), *bus2 = meta("bus_id");
    assert_string_equal(xmin, xmin2);
    assert_string_equal(bus, bus2);
    free(xmin), free(xmin2), free(bus), free(bus2);
    int64_t max_id = -1;
    assert_int_equal(sbd_store_queue_max_id(st, &max_id, &err), 0);
    assert_int_equal(max_id, 0);
    bool held = true;
    int64_t due = 0;
    assert_int_equal(sbd_store_event_held(st, ev.id, &held, &due, &err), 0);
    assert_false(held);
    sbd_store_close(st);
}

static void a_newer_schema_is_refused_naming_both_versions(void **state)
{
    (void)state;
    sbd_store_close(open_store());
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE \"%s\".meta SET value='99' WHERE key='schema_version'",
             schema);
    admin_exec(sql);
    struct sbd_store *st = NULL;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), SB_ECONFIG);
    assert_null(st);
    assert_non_null(strstr(err.msg, "schema version 99"));
    assert_non_null(strstr(err.msg, "only up to 4"));
    assert_non_null(strstr(err.msg, "newer sysbusd"));
    char *v = meta("schema_version"); /* left as it was */
    assert_string_equal(v, "99");
    free(v);
}

static void a_second_writer_is_refused(void **state)
{
    (void)state;
    struct sbd_store *st = open_store(), *second = NULL, *reader = NULL;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &second, &err), SB_ECONFIG);
    assert_null(second);
    assert_non_null(strstr(err.msg, "another sysbusd already writes this store"));
    assert_non_null(strstr(err.msg, schema));
    char holder[48]; /* which session to look at (or to end, after a host crash) */
    snprintf(holder, sizeof holder, "session of pid %d", PQbackendPID(pgs_conn(st)->db));
    assert_non_null(strstr(err.msg, holder));
    /* readers are not writers */
    assert_int_equal(st->ops->open_reader(url, &reader, &err), 0);
    int64_t q = -1, running = -1;
    assert_int_equal(sbd_store_counts(reader, &q, &running, &err), 0);
    sbd_store_close(reader);
    sbd_store_close(st); /* the lock goes with the session */
    assert_int_equal(sbd_store_open(url, &second, &err), 0);
    sbd_store_close(second);
}

static void the_url_schema_selects_the_schema_and_bad_names_are_refused(void **state)
{
    (void)state;
    struct sbd_store *st = open_store(), *other = NULL;
    struct sb_err err = { 0 };
    char sql[200], other_schema[80], other_url[1100];
    snprintf(sql, sizeof sql, "SELECT to_regclass('\"%s\".runs')::text", schema);
    char *v = admin_value(sql);
    assert_non_null(v);
    free(v);
    /* another schema is another store: its own tables, its own writer */
    snprintf(other_schema, sizeof other_schema, "%s_b", schema);
    url_for(other_url, sizeof other_url, other_schema);
    assert_int_equal(sbd_store_open(other_url, &other, &err), 0);
    snprintf(sql, sizeof sql, "SELECT to_regclass('\"%s\".runs')::text", other_schema);
    v = admin_value(sql);
    assert_non_null(v);
    free(v);
    sbd_store_close(other);
    snprintf(sql, sizeof sql, "DROP SCHEMA \"%s\" CASCADE", other_schema);
    admin_exec(sql);
    sbd_store_close(st);

    static const char *const bad[] = { "Upper",
                                       "a-b",
                                       "x%22;drop",
                                       "",
                                       "9lives",
                                       "a234567890123456789012345678901234567890123456789012345"
                                       "678901234" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char bad_url[1100];
        url_for(bad_url, sizeof bad_url, bad[i]);
        err = (struct sb_err){ 0 };
        assert_int_equal(sbd_store_open(bad_url, &other, &err), SB_EINVAL);
        assert_non_null(strstr(err.msg, "schema"));
    }
}

/* A user that may only read and write the tables of a schema made for it
 * (a DBA's usual grant) opens it: opening creates nothing in a store that
 * has its version. Needs a user of SYSBUS_TEST_PG_URL that may create roles
 * (skipped otherwise). */
static void a_user_without_create_rights_opens_a_migrated_schema(void **state)
{
    (void)state;
    sbd_store_close(open_store());
    char role[80], sql[400], dml_url[1300];
    snprintf(role, sizeof role, "%s_dml", schema);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN PASSWORD 'dml-pw'", role);
    PGresult *r = PQexec(admin, sql);
    bool made = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!made) {
        printf("    (skipped: the test's user cannot create a role)\n");
        return;
    }
    snprintf(sql, sizeof sql,
             "GRANT USAGE ON SCHEMA \"%s\" TO %s; GRANT SELECT,INSERT,UPDATE,DELETE ON ALL "
             "TABLES IN SCHEMA \"%s\" TO %s",
             schema, role, schema, role);
    admin_exec(sql);
    snprintf(dml_url, sizeof dml_url, "%s&user=%s&password=dml-pw", url, role);
    struct sbd_store *st = NULL;
    struct sb_err err = { 0 };
    int rc = sbd_store_open(dml_url, &st, &err);
    if (rc == 0) {
        int64_t q = -1, running = -1;
        assert_int_equal(sbd_store_counts(st, &q, &running, &err), 0);
        sbd_store_close(st);
    }
    snprintf(sql, sizeof sql, "DROP OWNED BY %s; DROP ROLE %s", role, role);
    admin_exec(sql);
    if (rc != 0)
        fail_msg("the DML-only user could not open the store: %s", err.msg);
}

static void the_urls_password_is_in_no_error(void **state)
{
    (void)state;
    struct sbd_store *st = NULL;
    struct sb_err err = { 0 };
    /* port 1: nothing listens there */
    assert_int_equal(sbd_store_open("postgres://bus:Pw9secret7@127.0.0.1:1/bus", &st, &err),
                     SB_EUNAVAIL);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    assert_null(strstr(err.msg, "Pw9secret7"));
    err = (struct sb_err){ 0 };
    assert_int_equal(
        sbd_store_open("postgres://bus:Pw9secret7@127.0.0.1:1/bus?schema=Bad", &st, &err),
        SB_EINVAL);
    assert_null(strstr(err.msg, "Pw9secret7"));
    err = (struct sb_err){ 0 };
    assert_int_equal(
        sbd_store_open("postgres://bus:Pw9secret7@127.0.0.1:1/bus?nosuchparam=1", &st, &err),
        SB_EINVAL); /* a URL to change, not a server to wait for */
    assert_non_null(strstr(err.msg, "not a PostgreSQL URL"));
    assert_null(strstr(err.msg, "Pw9secret7"));
    err = (struct sb_err){ 0 };
    /* libpq quotes the whole URL in this one */
    assert_int_equal(sbd_store_open("postgres://bus:Pw9secret7@[nope/bus", &st, &err), SB_EINVAL);
    assert_null(strstr(err.msg, "Pw9secret7"));
}

/* ---- transactions and sessions ---- */

static void put_event_and_run(struct sbd_store *st, const char *ev_id, const char *run_id,
                              int *rc_second_run, struct sb_err *err)
{
    struct sbd_ev_rec ev = { .name = "a/b", .body = "{}", .ts = 1, .received_at = 1 };
    snprintf(ev.id, sizeof ev.id, "%s", ev_id);
    bool inserted;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, err), 0);
    struct sbd_run_rec run = { .function_id = "app-f", .app_id = "app", .created_at = 1 };
    snprintf(run.id, sizeof run.id, "%s", run_id);
    snprintf(run.event_id, sizeof run.event_id, "%s", ev_id);
    assert_int_equal(sbd_store_run_insert(st, &run, err), 0);
    if (rc_second_run) /* the same id again: a constraint */
        *rc_second_run = sbd_store_run_insert(st, &run, err);
}

static int one_event(void *ctx, const struct sbd_ev_rec *e)
{
    (void)e;
    ++*(int *)ctx;
    return 0;
}

static void a_commit_after_a_failed_statement_is_an_error(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    int rc2 = 0, n = 0;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    put_event_and_run(st, "01EVA000000000000000000000", "01RUNA00000000000000000000", &rc2, &err);
    assert_int_equal(rc2, SB_EINVAL);
    /* PostgreSQL answers this COMMIT with ROLLBACK, and no error */
    assert_int_not_equal(sbd_store_commit(st, &err), 0);
    assert_non_null(strstr(err.msg, "rolled back"));
    sbd_store_rollback(st); /* what the writer does next */
    assert_int_equal(sbd_store_event_get(st, "01EVA000000000000000000000", one_event, &n, &err),
                     SB_ENOTFOUND);

    /* the writer's way: the failed operation's savepoint is rolled back and
     * the transaction goes on */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_savepoint(st, &err), 0);
    put_event_and_run(st, "01EVB000000000000000000000", "01RUNB00000000000000000000", NULL, &err);
    sbd_store_release(st);
    assert_int_equal(sbd_store_savepoint(st, &err), 0);
    put_event_and_run(st, "01EVC000000000000000000000", "01RUNC00000000000000000000", &rc2, &err);
    assert_int_equal(rc2, SB_EINVAL);
    sbd_store_rollback_savepoint(st);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_event_get(st, "01EVB000000000000000000000", one_event, &n, &err), 0);
    assert_int_equal(sbd_store_event_get(st, "01EVC000000000000000000000", one_event, &n, &err),
                     SB_ENOTFOUND);
    sbd_store_close(st);
}

/* Ends the session of st on the server, and waits until it is gone. */
static void terminate(struct sbd_store *st)
{
    char sql[160];
    int pid = PQbackendPID(pgs_conn(st)->db);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    admin_exec(sql);
    snprintf(sql, sizeof sql, "SELECT 1 FROM pg_stat_activity WHERE pid=%d", pid);
    for (int i = 0; i < 500; i++) {
        char *v = admin_value(sql);
        free(v);
        if (!v)
            return;
        usleep(10000);
    }
    fail_msg("session %d did not end", pid);
}

static void a_terminated_session_is_reconnected_by_the_next_operation(void **state)
{
    (void)state;
    struct sbd_store *st = open_store(), *reader = NULL, *second = NULL;
    struct sb_err err = { 0 };
    assert_int_equal(st->ops->open_reader(url, &reader, &err), 0);
    int64_t q = -1, running = -1;
    assert_int_equal(sbd_store_counts(reader, &q, &running, &err), 0); /* prepared */
    int old = PQbackendPID(pgs_conn(reader)->db);
    terminate(reader);
    assert_int_equal(sbd_store_counts(reader, &q, &running, &err), 0);
    assert_int_not_equal(PQbackendPID(pgs_conn(reader)->db), old);

    terminate(st); /* the writer: its BEGIN reconnects, with its lock */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    put_event_and_run(st, "01EVD000000000000000000000", "01RUND00000000000000000000", NULL, &err);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_open(url, &second, &err), SB_ECONFIG);

    /* inside a transaction the work is lost: every statement fails until
     * the rollback, and the next transaction has a new session */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    terminate(st);
    int64_t max_id;
    assert_int_equal(sbd_store_queue_max_id(st, &max_id, &err), SB_EUNAVAIL);
    assert_int_equal(sbd_store_queue_del(st, 1, &err), SB_EUNAVAIL);
    assert_int_not_equal(sbd_store_commit(st, &err), 0);
    sbd_store_rollback(st);
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_queue_del(st, 1, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_counts(reader, &q, &running, &err), 0);
    assert_int_equal(running, 1);
    sbd_store_close(reader);
    sbd_store_close(st);
}

/* A writer whose session ended while another sysbusd took the store must
 * not write behind the new one's back: it stays refused until the lock is
 * free again. */
static void a_writer_that_lost_its_lock_writes_nothing(void **state)
{
    (void)state;
    struct sbd_store *st = open_store(), *other = NULL;
    struct sb_err err = { 0 };
    terminate(st);
    assert_int_equal(sbd_store_open(url, &other, &err), 0); /* the lock was free */
    for (int i = 0; i < 2; i++) {                           /* not once: every time */
        err = (struct sb_err){ 0 };
        assert_int_equal(sbd_store_begin(st, &err), SB_ECONFIG);
        assert_non_null(strstr(err.msg, "another sysbusd already writes this store"));
        int64_t max_id;
        assert_int_equal(sbd_store_queue_max_id(st, &max_id, &err), SB_ECONFIG);
    }
    sbd_store_close(other);
    assert_int_equal(sbd_store_begin(st, &err), 0);
    put_event_and_run(st, "01EVE000000000000000000000", "01RUNE00000000000000000000", NULL, &err);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_open(url, &other, &err), SB_ECONFIG); /* its lock again */
    sbd_store_close(st);
}

/* ---- the statements ---- */

static const char *const statements[] = {
#define X_SQL(name, sql) sql,
    PGS_STMT_LIST(X_SQL)
#undef X_SQL
};

/* Every statement prepares, its parameters are typed text or bigint (an
 * integer one would overflow at a time in ms; one the server cannot type
 * fails to prepare), and no column is a boolean (read as 0/1). */
static void every_statement_has_the_types_the_backend_reads(void **state)
{
    (void)state;
    sbd_store_close(open_store());
    char sql[160];
    snprintf(sql, sizeof sql, "SET search_path TO \"%s\"", schema);
    admin_exec(sql);
    for (size_t i = 0; i < sizeof statements / sizeof *statements; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%zu", i);
        PGresult *r = PQprepare(admin, name, statements[i], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("statement %zu does not prepare: %s\n%s", i, PQerrorMessage(admin),
                     statements[i]);
        PQclear(r);
        PGresult *d = PQdescribePrepared(admin, name);
        assert_int_equal(PQresultStatus(d), PGRES_COMMAND_OK);
        for (int k = 0; k < PQnparams(d); k++) {
            Oid t = PQparamtype(d, k);
            if (t != 20 && t != 25) /* int8, text */
                fail_msg("statement %zu: $%d has type %u\n%s", i, k + 1, t, statements[i]);
        }
        for (int k = 0; k < PQnfields(d); k++)
            if (PQftype(d, k) == 16) /* bool */
                fail_msg("statement %zu: column %d is a boolean\n%s", i, k, statements[i]);
        PQclear(d);
    }
}

/* ---- the records ---- */

#define EV1 "01EVREC0000000000000000001"
#define EV2 "01EVREC0000000000000000002"
#define RUN1 "01RUNREC000000000000000001"

struct seen {
    int n;
    struct sbd_qitem_rec q;
    struct sbd_wait_rec w;
    char run_id[SB_ULID_SIZE], step_id[48], function_id[48], event_id[SB_ULID_SIZE];
    char lease_keys[64], event_name[32], expression[64], trigger[64];
    int64_t rows;
    int flags;
};

static int seen_queue(void *ctx, const struct sbd_qitem_rec *q)
{
    struct seen *s = ctx;
    s->n++;
    s->q = *q;
    snprintf(s->run_id, sizeof s->run_id, "%s", q->run_id);
    snprintf(s->step_id, sizeof s->step_id, "%s", q->step_id);
    snprintf(s->function_id, sizeof s->function_id, "%s", q->function_id);
    snprintf(s->event_id, sizeof s->event_id, "%s", q->event_id);
    snprintf(s->lease_keys, sizeof s->lease_keys, "%s", q->lease_keys ? q->lease_keys : "-");
    return 0;
}

static int seen_wait(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                     int flags)
{
    struct seen *s = ctx;
    s->n++;
    s->w = *w;
    snprintf(s->event_name, sizeof s->event_name, "%s", w->event_name);
    snprintf(s->expression, sizeof s->expression, "%s", w->expression ? w->expression : "-");
    snprintf(s->trigger, sizeof s->trigger, "%s", trigger);
    s->rows = rows;
    s->flags = flags;
    return 0;
}

static int seen_step(void *ctx, const struct sbd_step_rec *st)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(st->hash, "h1");
    assert_int_equal(st->seq, 0);
    assert_string_equal(st->name, "first");
    assert_string_equal(st->op, "StepRun");
    assert_int_equal(st->status, STEP_COMPLETED);
    assert_int_equal(st->attempts, 2);
    assert_string_equal(st->output, "{\"data\":{\"x\":1}}");
    assert_null(st->error);
    assert_int_equal(st->started_at, 1010);
    assert_int_equal(st->ended_at, 1020);
    return 0;
}

static int seen_run(void *ctx, const struct sbd_run_info *r)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(r->id, RUN1);
    assert_string_equal(r->function_id, "app-f");
    assert_string_equal(r->app_id, "app");
    assert_string_equal(r->event_id, EV1);
    assert_int_equal(r->created_at, 1000);
    snprintf(s->run_id, sizeof s->run_id, "%d", r->status);
    s->q.started_at = r->started_at;
    s->q.due_at = r->ended_at;
    snprintf(s->trigger, sizeof s->trigger, "%s", r->output ? r->output : "-");
    return 0;
}

static int seen_event(void *ctx, const struct sbd_ev_rec *e)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(e->id, EV1);
    assert_string_equal(e->name, "rec/one");
    assert_string_equal(e->body, "{\"name\":\"rec/one\",\"data\":{}}");
    assert_int_equal(e->ts, 990);
    assert_int_equal(e->received_at, 1000);
    assert_string_equal(e->dedupe_key, "user-7");
    return 0;
}

/* An event, its run, a step, a queue row with its lease, and a wait. */
static void write_run_records(struct sbd_store *st, struct sb_err *err)
{
    struct sbd_ev_rec ev = { .id = EV1,
                             .name = "rec/one",
                             .body = "{\"name\":\"rec/one\",\"data\":{}}",
                             .ts = 990,
                             .received_at = 1000,
                             .dedupe_key = "user-7" };
    bool inserted = false;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, err), 0);
    assert_true(inserted);
    struct sbd_run_rec run = {
        .id = RUN1, .function_id = "app-f", .app_id = "app", .event_id = EV1, .created_at = 1000
    };
    assert_int_equal(sbd_store_run_insert(st, &run, err), 0);
    assert_int_equal(sbd_store_run_progress(st, RUN1, 1005, 2, err), 0);
    struct sbd_step_rec step = { .run_id = RUN1,
                                 .hash = "h1",
                                 .seq = 0,
                                 .name = "first",
                                 .op = "StepRun",
                                 .status = STEP_COMPLETED,
                                 .attempts = 2,
                                 .output = "{\"data\":{\"x\":1}}",
                                 .started_at = 1010,
                                 .ended_at = 1020 };
    assert_int_equal(sbd_store_step_put(st, &step, err), 0);
    struct sbd_qitem_rec q = { .id = 42,
                               .run_id = RUN1,
                               .step_id = "h2",
                               .attempt = 3,
                               .due_at = 1796305610104,
                               .started_at = 1030,
                               .transport_failures = 1,
                               .transport_since = 1040,
                               .last_error = "{\"message\":\"x\"}",
                               .flags = QF_WAIT };
    assert_int_equal(sbd_store_queue_put(st, &q, err), 0);
    assert_int_equal(sbd_store_queue_lease(st, 42, 5000, "[\"k1\"]", err), 0);
    struct sbd_wait_rec w = { .item_id = 42,
                              .run_id = RUN1,
                              .step_hash = "h2",
                              .event_name = "rec/two",
                              .expression = "event.data.a == 1",
                              .created_at = 1050 };
    assert_int_equal(sbd_store_wait_put(st, &w, err), 0);
}

static void the_run_records_read_back_as_written(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    write_run_records(st, &err);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    struct seen s = { 0 };
    assert_int_equal(sbd_store_event_get(st, EV1, seen_event, &s, &err), 0);
    char id[SB_ULID_SIZE];
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-7", 1000, id, &err), 0);
    assert_string_equal(id, EV1);
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-7", 1001, id, &err), SB_ENOTFOUND);
    assert_int_equal(sbd_store_run_get(st, RUN1, seen_run, &s, &err), 0);
    assert_string_equal(s.run_id, "0"); /* Running */
    assert_int_equal(s.q.started_at, 1005);
    assert_int_equal(s.q.due_at, SBD_STORE_NO_TIME); /* not ended */
    assert_int_equal(sbd_store_run_steps(st, RUN1, seen_step, &s, &err), 0);
    assert_int_equal(s.n, 3);

    memset(&s, 0, sizeof s);
    assert_int_equal(sbd_store_queue_scan(st, seen_queue, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.q.id, 42);
    assert_string_equal(s.run_id, RUN1);
    assert_string_equal(s.step_id, "h2");
    assert_int_equal(s.q.attempt, 3);
    assert_int_equal(s.q.due_at, 1796305610104);
    assert_int_equal(s.q.started_at, 1030);
    assert_int_equal(s.q.transport_failures, 1);
    assert_int_equal(s.q.transport_since, 1040);
    assert_int_equal(s.q.flags, QF_WAIT);
    assert_string_equal(s.function_id, "app-f");
    assert_string_equal(s.event_id, EV1);
    assert_int_equal(s.q.lease_until, 5000);
    assert_string_equal(s.lease_keys, "[\"k1\"]");
    int64_t max_id = 0;
    assert_int_equal(sbd_store_queue_max_id(st, &max_id, &err), 0);
    assert_int_equal(max_id, 42);

    memset(&s, 0, sizeof s);
    assert_true(sbd_store_has_waits(st));
    assert_int_equal(sbd_store_waits_for(st, "rec/two", seen_wait, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.w.item_id, 42);
    assert_string_equal(s.expression, "event.data.a == 1");
    assert_string_equal(s.trigger, "{\"name\":\"rec/one\",\"data\":{}}");
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.flags, QF_WAIT);
    int64_t seq = -1;
    assert_int_equal(sbd_store_next_seq(st, RUN1, &seq, &err), 0);
    assert_int_equal(seq, 1);

    struct sbd_run_state rs;
    assert_int_equal(sbd_store_run_state(st, RUN1, &rs, &err), 0);
    assert_string_equal(rs.function_id, "app-f");
    assert_int_equal(rs.req_version, 2);
    assert_int_equal(rs.nsteps, 1);
    assert_string_equal(rs.steps[0].hash, "h1");
    assert_string_equal(rs.steps[0].output, "{\"data\":{\"x\":1}}");
    assert_null(rs.events);
    sbd_run_state_free(&rs);
    assert_int_equal(sbd_store_run_state(st, "01NOSUCHRUN000000000000000", &rs, &err),
                     SB_ENOTFOUND);

    /* the end of the run takes its queue rows and waits with it */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(
        sbd_store_run_finish(st, RUN1, RUN_COMPLETED, "{\"ok\":1}", NULL, 0, 2000, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_false(sbd_store_has_waits(st));
    memset(&s, 0, sizeof s);
    assert_int_equal(sbd_store_run_get(st, RUN1, seen_run, &s, &err), 0);
    assert_string_equal(s.run_id, "1");
    assert_int_equal(s.q.due_at, 2000);
    assert_string_equal(s.trigger, "{\"ok\":1}");
    assert_int_equal(sbd_store_queue_scan(st, seen_queue, &s, &err), 0);
    assert_int_equal(s.n, 1); /* the run_get only */
    sbd_store_close(st);
}

static int seen_cron(void *ctx, const struct sbd_cron_rec *c)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(c->function_id, "app-cron");
    assert_int_equal(c->idx, 1);
    assert_string_equal(c->expression, "*/5 * * * *");
    assert_int_equal(c->next_at, 1796305610104);
    return 0;
}

static void seen_throttle(void *ctx, const char *key, int64_t tat)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(key, "t1");
    s->rows = tat;
}

static void the_flow_records_read_back_as_written(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_flow_key_put(st, FLOW_IDEMPOTENCY, "i1", RUN1, 90000, &err), 0);
    assert_int_equal(sbd_store_throttle_put(st, "t1", 1796305610104, &err), 0);
    assert_int_equal(sbd_store_throttle_put(st, "t1", 1000, &err), 0); /* never goes back */
    assert_int_equal(sbd_store_rate_hit(st, "r1", 100, &err), 0);
    assert_int_equal(sbd_store_rate_hit(st, "r1", 200, &err), 0);
    struct sbd_cron_rec c = { "app-cron", 1, "*/5 * * * *", 1796305610104 };
    assert_int_equal(sbd_store_cron_put(st, &c, &err), 0);
    struct sbd_deferred_rec d = { .id = "01DEFREC000000000000000001",
                                  .kind = DEFER_BATCH,
                                  .function_id = "app-f",
                                  .app_id = "app",
                                  .key = "k",
                                  .event_id = EV2,
                                  .size = 2,
                                  .first_at = 100,
                                  .due_at = 1796305610104 };
    assert_int_equal(sbd_store_deferred_put(st, &d, &err), 0);
    assert_int_equal(sbd_store_run_event_add(st, d.id, 0, EV2, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    char *run_id = NULL;
    int64_t expires = 0, count = 0;
    assert_int_equal(sbd_store_flow_key_get(st, FLOW_IDEMPOTENCY, "i1", &run_id, &expires, &err),
                     0);
    assert_string_equal(run_id, RUN1);
    assert_int_equal(expires, 90000);
    free(run_id);
    assert_int_equal(sbd_store_flow_key_get(st, FLOW_SINGLETON, "i1", &run_id, &expires, &err),
                     SB_ENOTFOUND);
    struct seen s = { 0 };
    assert_int_equal(sbd_store_throttles_scan(st, 1000, seen_throttle, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rows, 1796305610104);
    assert_int_equal(sbd_store_rate_count(st, "r1", 150, &count, &err), 0);
    assert_int_equal(count, 1);
    char *expr = NULL;
    int64_t next_at = 0;
    assert_int_equal(sbd_store_cron_get(st, "app-cron", 1, &expr, &next_at, &err), 0);
    assert_string_equal(expr, "*/5 * * * *");
    assert_int_equal(next_at, 1796305610104);
    free(expr);
    assert_int_equal(sbd_store_cron_get(st, "app-cron", 2, &expr, &next_at, &err), SB_ENOTFOUND);
    s.n = 0;
    assert_int_equal(sbd_store_crons_scan(st, seen_cron, &s, &err), 0);
    assert_int_equal(s.n, 1);

    struct sbd_deferred_rec got;
    assert_int_equal(sbd_store_deferred_find(st, DEFER_BATCH, "app-f", "k", &got, &err), 0);
    assert_string_equal(got.id, d.id);
    assert_int_equal(got.kind, DEFER_BATCH);
    assert_string_equal(got.app_id, "app");
    assert_string_equal(got.event_id, EV2);
    assert_int_equal(got.size, 2);
    assert_int_equal(got.first_at, 100);
    assert_int_equal(got.due_at, 1796305610104);
    sbd_deferred_rec_free(&got);
    bool held = false;
    int64_t due = 0;
    assert_int_equal(sbd_store_event_held(st, EV2, &held, &due, &err), 0);
    assert_true(held);
    assert_int_equal(due, 1796305610104);

    /* as SQLite's INSERT OR REPLACE: another id with the same key replaces it */
    snprintf(d.id, sizeof d.id, "%s", "01DEFREC000000000000000002");
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_deferred_put(st, &d, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_deferred_get(st, "01DEFREC000000000000000001", &got, &err),
                     SB_ENOTFOUND);
    assert_int_equal(sbd_store_deferred_find(st, DEFER_BATCH, "app-f", "k", &got, &err), 0);
    assert_string_equal(got.id, d.id);
    sbd_deferred_rec_free(&got);
    sbd_store_close(st);
}

static int count_one(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                     int flags)
{
    (void)w, (void)trigger, (void)rows, (void)flags;
    ++*(int *)ctx;
    return 0;
}

/* As test_store.c's test of the SQLite backend: a rolled-back delete leaves
 * its wait counted, or events would stop looking for it. */
static void rolled_back_deletes_leave_the_waits_counted(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    write_run_records(st, &err);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    bool deleted = false;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_savepoint(st, &err), 0);
    assert_int_equal(sbd_store_wait_delete(st, 42, &deleted, &err), 0);
    assert_true(deleted);
    assert_false(sbd_store_has_waits(st));
    sbd_store_rollback_savepoint(st);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_true(sbd_store_has_waits(st));
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_run_finish(st, RUN1, RUN_CANCELLED, NULL, NULL, 1, 2, &err), 0);
    assert_false(sbd_store_has_waits(st));
    sbd_store_rollback(st);
    assert_true(sbd_store_has_waits(st));
    int n = 0;
    assert_int_equal(sbd_store_waits_for(st, "rec/two", count_one, &n, &err), 0);
    assert_int_equal(n, 1);
    sbd_store_close(st);
}

int main(void)
{
    base_url = getenv("SYSBUS_TEST_PG_URL");
    if (!base_url || !*base_url) {
        printf("test_store_pg: skipped: set SYSBUS_TEST_PG_URL to a PostgreSQL URL "
               "(e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(a_fresh_schema_is_created_and_migrated),
        T(reopening_does_not_migrate_again),
        T(a_newer_schema_is_refused_naming_both_versions),
        T(a_second_writer_is_refused),
        T(the_url_schema_selects_the_schema_and_bad_names_are_refused),
        T(a_user_without_create_rights_opens_a_migrated_schema),
        T(the_urls_password_is_in_no_error),
        T(a_commit_after_a_failed_statement_is_an_error),
        T(a_terminated_session_is_reconnected_by_the_next_operation),
        T(a_writer_that_lost_its_lock_writes_nothing),
        T(every_statement_has_the_types_the_backend_reads),
        T(the_run_records_read_back_as_written),
        T(the_flow_records_read_back_as_written),
        T(rolled_back_deletes_leave_the_waits_counted),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* built without libpq */

int main(void)
{
    printf("test_store_pg: skipped: this build has no PostgreSQL store (libpq not found)\n");
    return 0;
}

#endif
