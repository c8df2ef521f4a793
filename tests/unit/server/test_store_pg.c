/* Unit tests for the PostgreSQL store backend (src/server/store/postgres/),
 * against a real server: set SYSBUS_TEST_PG_URL to a libpq URL of a
 * database the test may create schemas in (e.g.
 * postgres://postgres@127.0.0.1:55432/postgres); without it, or in a build
 * without libpq, the test says so and passes. Each test works in a schema of
 * its own (sbtest_<pid>_<n>, dropped after), so several runs may share a
 * database.
 *
 * Covered here: a fresh schema is created and migrated, reopened without a
 * migration, refused when newer than this binary; a second writer is
 * refused; schema= selects the schema and a bad name is refused; a user with
 * only DML rights opens a migrated schema; the URL's password is in no
 * error; a COMMIT after a failed statement is an error, not a commit; a
 * session the server ended is reconnected by the next operation, and a
 * writer that lost its lock meanwhile writes nothing; every statement's
 * parameters and columns have the types the backend reads. The records'
 * round trip: test_store_pg_records.c; the shared set-up: pg_fixture.h. */
#include "pg_fixture.h"

#ifdef SBD_STORE_POSTGRES

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

/* A database in another encoding than UTF8 is refused at open (it would
 * refuse, at some later event, any character outside its own set). */
static void a_database_not_in_utf8_is_refused(void **state)
{
    (void)state;
    char db[64], sql[256], u[1200];
    snprintf(db, sizeof db, "latin1_%d", (int)getpid());
    snprintf(sql, sizeof sql,
             "CREATE DATABASE %s ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
             db);
    admin_exec(sql);
    const char *slash = strrchr(base_url, '/'), *q = strchr(slash, '?');
    snprintf(u, sizeof u, "%.*s/%s%s", (int)(slash - base_url), base_url, db, q ? q : "");
    struct sbd_store *st = NULL;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(u, &st, &err), SB_ECONFIG);
    assert_non_null(strstr(err.msg, "encoding LATIN1"));
    snprintf(sql, sizeof sql, "DROP DATABASE %s", db);
    admin_exec(sql);
}

/* A COMMIT whose answer is lost is settled by asking the server what became
 * of the transaction (pgs_xact_outcome): committed, rolled back, or still
 * in progress, by its id. */
static void the_outcome_of_a_transaction_is_asked_by_its_id(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    char xid[2][32];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sbd_store_begin(st, &err), 0);
        put_event_and_run(st, i ? "01EVY000000000000000000000" : "01EVX000000000000000000000",
                          i ? "01RUNY00000000000000000000" : "01RUNX00000000000000000000", NULL,
                          &err);
        PGresult *r;
        assert_int_equal(pgs_run(st, PGS_XACT_ID, NULL, &r, &err), 0);
        assert_false(PQgetisnull(r, 0, 0));
        snprintf(xid[i], sizeof xid[i], "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        bool committed = true;
        assert_int_equal(pgs_xact_outcome(st, xid[i], &committed, &err), SB_EBUSY);
        if (i == 0)
            assert_int_equal(sbd_store_commit(st, &err), 0);
        else
            sbd_store_rollback(st);
    }
    bool committed = false;
    assert_int_equal(pgs_xact_outcome(st, xid[0], &committed, &err), 0);
    assert_true(committed);
    assert_int_equal(pgs_xact_outcome(st, xid[1], &committed, &err), 0);
    assert_false(committed);
    sbd_store_close(st);
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
 * free again, with a transient error (the holder is most often its own old
 * session, which the server ends soon: runs must wait, not fail); a holder
 * that stays longer than PGS_LOCK_LOST_MAX_MS stops the process (not
 * tested here: it exits). */
static void a_writer_that_lost_its_lock_writes_nothing(void **state)
{
    (void)state;
    struct sbd_store *st = open_store(), *other = NULL;
    struct sb_err err = { 0 };
    terminate(st);
    assert_int_equal(sbd_store_open(url, &other, &err), 0); /* the lock was free */
    for (int i = 0; i < 2; i++) {                           /* not once: every time */
        err = (struct sb_err){ 0 };
        assert_int_equal(sbd_store_begin(st, &err), SB_EUNAVAIL);
        assert_non_null(strstr(err.msg, "waiting for the store's lock after a reconnect"));
        assert_non_null(strstr(err.msg, "another sysbusd already writes this store"));
        int64_t max_id;
        assert_int_equal(sbd_store_queue_max_id(st, &max_id, &err), SB_EUNAVAIL);
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

int main(void)
{
    if (!pg_wanted("test_store_pg"))
        return 0;
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
        T(the_outcome_of_a_transaction_is_asked_by_its_id),
        T(a_database_not_in_utf8_is_refused),
        T(a_terminated_session_is_reconnected_by_the_next_operation),
        T(a_writer_that_lost_its_lock_writes_nothing),
        T(every_statement_has_the_types_the_backend_reads),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else
PG_SKIPPED_MAIN("test_store_pg")
#endif
