/* pg_fixture.h - what the PostgreSQL store's unit tests (test_store_pg.c,
 * test_store_pg_records.c) share: SYSBUS_TEST_PG_URL (without it, or in a
 * build without libpq, a test says so and passes), a schema of its own per
 * test (sbtest_<pid>_<n>, dropped in teardown, so several runs may share a
 * database), and the test's own session to look at the store and meddle
 * with it. Included by those files only; its helpers are static inline so
 * that a file may leave some unused. */
#ifndef SB_TEST_PG_FIXTURE_H
#define SB_TEST_PG_FIXTURE_H

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
static inline void url_for(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s%sschema=%s", base_url, strchr(base_url, '?') ? "&" : "?", name);
}

static inline void admin_exec(const char *sql)
{
    PGresult *r = PQexec(admin, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    PQclear(r);
}

/* The first value of sql's result (malloc'd; NULL for no row or NULL). */
static inline char *admin_value(const char *sql)
{
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(admin));
    char *v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static inline int setup(void **state)
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

static inline int teardown(void **state)
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

static inline struct sbd_store *open_store(void)
{
    struct sbd_store *st = NULL;
    struct sb_err err = { 0 };
    if (sbd_store_open(url, &st, &err) != 0)
        fail_msg("open %s: %s", schema, err.msg);
    return st;
}

/* A value of this test's meta table. */
static inline char *meta(const char *key)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT value FROM \"%s\".meta WHERE key='%s'", schema, key);
    return admin_value(sql);
}

/* SYSBUS_TEST_PG_URL into base_url; false (after saying why) when it is not
 * set: the test is skipped. */
static inline bool pg_wanted(const char *prog)
{
    base_url = getenv("SYSBUS_TEST_PG_URL");
    if (base_url && *base_url)
        return true;
    printf("%s: skipped: set SYSBUS_TEST_PG_URL to a PostgreSQL URL "
           "(e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it\n",
           prog);
    return false;
}

#else
/* built without libpq: main says so and passes */
#define PG_SKIPPED_MAIN(prog)                                                                \
    int main(void)                                                                           \
    {                                                                                        \
        printf("%s: skipped: this build has no PostgreSQL store (libpq not found)\n", prog); \
        return 0;                                                                            \
    }
#endif

#endif
