/* schema.c - the PostgreSQL backend's schema, its migrations and the bus id.
 *
 * The store's tables live in their own schema (conn.c: the URL's schema=,
 * default "sysbus"), with a `meta` table holding schema_version and bus_id
 * (a ULID made when the schema is created: which bus this is, for tools and
 * for the replicas to come). The tables are the SQLite backend's (same names,
 * columns and meanings: docs/internals/store.md) with PostgreSQL types:
 * integers are BIGINT, and ids and keys are TEXT COLLATE "C", so that ULIDs
 * and keys order bytewise as they do in SQLite whatever the database's
 * locale.
 *
 * Migrations run at open in one transaction holding an advisory lock on the
 * schema (two sysbusd of different versions starting at once never migrate
 * together); a schema whose version is higher than SBD_STORE_SCHEMA_VERSION
 * was written by a newer sysbusd and is refused (SB_ECONFIG). */
#include "pgs.h"
#include "common/clock.h"
#include "common/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID "TEXT COLLATE \"C\""

/* Each step brings the schema to version `to`. A new schema runs them all.
 * The first is the whole of version 4 (the SQLite backend's four
 * migrations, which PostgreSQL stores never went through). */
static const struct {
    int to;
    const char *sql;
} migrations[] = {
    { 4, "CREATE TABLE apps ("
         "  id " ID " PRIMARY KEY, url TEXT NOT NULL,"
         "  sdk TEXT, framework TEXT, app_version TEXT, checksum TEXT,"
         "  created_at BIGINT NOT NULL, synced_at BIGINT,"
         "  sync_error TEXT, sync_error_at BIGINT, deleted_at BIGINT);"
         "CREATE INDEX apps_url ON apps(url);"
         "CREATE TABLE functions ("
         "  id " ID " PRIMARY KEY, app_id " ID " NOT NULL, name TEXT NOT NULL,"
         "  config TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
         "  removed_at BIGINT);"
         "CREATE INDEX functions_app ON functions(app_id);"
         "CREATE TABLE events ("
         "  id " ID " PRIMARY KEY, name " ID " NOT NULL, body TEXT NOT NULL,"
         "  ts BIGINT NOT NULL, received_at BIGINT NOT NULL, dedupe_key " ID ");"
         "CREATE INDEX events_dedupe ON events(dedupe_key, received_at)"
         "  WHERE dedupe_key IS NOT NULL;"
         "CREATE INDEX events_name ON events(name, id);"
         "CREATE TABLE runs ("
         "  id " ID " PRIMARY KEY, function_id " ID " NOT NULL, app_id " ID " NOT NULL,"
         "  event_id " ID " NOT NULL, status BIGINT NOT NULL, created_at BIGINT NOT NULL,"
         "  started_at BIGINT, updated_at BIGINT, ended_at BIGINT,"
         "  output TEXT, error TEXT, req_version BIGINT NOT NULL DEFAULT -1);"
         "CREATE INDEX runs_event ON runs(event_id);"
         "CREATE INDEX runs_function ON runs(function_id, id);"
         "CREATE INDEX runs_status ON runs(status, id);"
         "CREATE INDEX runs_ended ON runs(ended_at) WHERE ended_at IS NOT NULL;"
         "CREATE TABLE steps ("
         "  run_id " ID " NOT NULL, hash " ID " NOT NULL, seq BIGINT,"
         "  name TEXT, op TEXT, status BIGINT NOT NULL, attempts BIGINT NOT NULL,"
         "  output TEXT, error TEXT, started_at BIGINT, ended_at BIGINT,"
         "  PRIMARY KEY (run_id, hash));"
         "CREATE TABLE queue ("
         "  id BIGINT PRIMARY KEY, run_id " ID " NOT NULL, step_id " ID " NOT NULL,"
         "  attempt BIGINT NOT NULL, due_at BIGINT NOT NULL, started_at BIGINT,"
         "  transport_failures BIGINT NOT NULL DEFAULT 0, transport_since BIGINT,"
         "  last_error TEXT, flags BIGINT NOT NULL DEFAULT 0,"
         "  lease_until BIGINT NOT NULL DEFAULT 0, lease_keys TEXT);"
         "CREATE INDEX queue_run ON queue(run_id);"
         "CREATE TABLE waits ("
         "  item_id BIGINT PRIMARY KEY, run_id " ID " NOT NULL, step_hash " ID " NOT NULL,"
         "  event_name " ID ", expression TEXT, child_run_id " ID ","
         "  created_at BIGINT NOT NULL);"
         "CREATE INDEX waits_event ON waits(event_name) WHERE event_name IS NOT NULL;"
         "CREATE INDEX waits_child ON waits(child_run_id) WHERE child_run_id IS NOT NULL;"
         "CREATE INDEX waits_run ON waits(run_id);"
         "CREATE TABLE cancel_requests ("
         "  run_id " ID " PRIMARY KEY, reason TEXT NOT NULL, created_at BIGINT NOT NULL);"
         "CREATE TABLE crons ("
         "  function_id " ID " NOT NULL, idx BIGINT NOT NULL, expression TEXT NOT NULL,"
         "  next_at BIGINT NOT NULL, PRIMARY KEY (function_id, idx));"
         "CREATE TABLE flow_keys ("
         "  kind BIGINT NOT NULL, key " ID " NOT NULL, run_id " ID ","
         "  expires_at BIGINT NOT NULL, PRIMARY KEY (kind, key));"
         "CREATE INDEX flow_keys_run ON flow_keys(run_id);"
         "CREATE TABLE rate_hits (key " ID " NOT NULL, at BIGINT NOT NULL);"
         "CREATE INDEX rate_hits_key ON rate_hits(key, at);"
         "CREATE TABLE cancellations ("
         "  id " ID " PRIMARY KEY, app_id " ID ", function_id " ID ","
         "  started_after BIGINT, started_before BIGINT, expression TEXT,"
         "  created_at BIGINT NOT NULL, run_count BIGINT NOT NULL);"
         "CREATE TABLE deferred ("
         "  id " ID " PRIMARY KEY, kind BIGINT NOT NULL, function_id " ID " NOT NULL,"
         "  app_id " ID " NOT NULL, key " ID " NOT NULL, event_id " ID " NOT NULL,"
         "  size BIGINT NOT NULL, first_at BIGINT NOT NULL, due_at BIGINT NOT NULL);"
         "CREATE UNIQUE INDEX deferred_key ON deferred(kind, function_id, key);"
         "CREATE INDEX deferred_due ON deferred(due_at);"
         "CREATE TABLE run_events ("
         "  run_id " ID " NOT NULL, seq BIGINT NOT NULL, event_id " ID " NOT NULL,"
         "  PRIMARY KEY (run_id, seq));"
         "CREATE INDEX run_events_event ON run_events(event_id);" },
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

/* The version in meta; 0 when the schema or its meta table does not exist. */
static int read_version(struct sbd_store *st, int *version, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT to_regclass('\"%s\".meta') IS NOT NULL", c->schema);
    PGresult *r = PQexec(c->db, sql);
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                  strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK
                 ? 0
                 : sb_err_set(err, SB_ESTORE, "database (%s): cannot read the schema: %s",
                              c->where, PQresultErrorMessage(r));
    PQclear(r);
    if (rc || !exists) {
        *version = 0;
        return rc;
    }
    r = PQexec(c->db, "SELECT value FROM meta WHERE key='schema_version'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = sb_err_set(err, SB_ESTORE, "database (%s): cannot read the schema version: %s",
                        c->where, PQresultErrorMessage(r));
    else if (PQntuples(r) == 0)
        *version = 0;
    else if (sscanf(PQgetvalue(r, 0, 0), "%d%c", version, &(char){ 0 }) != 1 || *version < 0)
        rc = sb_err_set(err, SB_ESTORE, "database (%s): the schema version is not a number",
                        c->where);
    PQclear(r);
    return rc;
}

int pgs_schema_version(struct sbd_store *st, int *version, struct sb_err *err)
{
    int rc = pgs_session_ready(st, err); /* a lost session is reconnected first */
    return rc ? rc : read_version(st, version, err);
}

int pgs_bus_id(struct sbd_store *st, char out[SB_ULID_SIZE], struct sb_err *err)
{
    PGresult *r = NULL;
    int rc = pgs_run_sql(st, "SELECT value FROM meta WHERE key='bus_id'", NULL, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != SB_ULID_SIZE - 1)
        rc = PQntuples(r) == 0 ? SB_ENOTFOUND
                               : sb_err_set(err, SB_ESTORE, "the store's bus id is not a ULID");
    else
        memcpy(out, PQgetvalue(r, 0, 0), SB_ULID_SIZE);
    PQclear(r);
    return rc;
}

/* Inside the migration's transaction: the steps from version v on, then the
 * version and (once) the bus id. */
static int migrate_in_txn(struct sbd_store *st, int v, struct sb_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < NMIGRATIONS && !rc; i++)
        if (migrations[i].to > v)
            rc = pgs_exec_sql(st, migrations[i].sql, err);
    if (rc)
        return rc;
    char bus[SB_ULID_SIZE], sql[400];
    sb_ulid_new(sb_now_ms(), bus);
    snprintf(sql, sizeof sql,
             "INSERT INTO meta(key,value) VALUES('schema_version','%d') ON CONFLICT(key) DO "
             "UPDATE SET value=excluded.value;"
             "INSERT INTO meta(key,value) VALUES('bus_id','%s') ON CONFLICT(key) DO NOTHING;",
             SBD_STORE_SCHEMA_VERSION, bus);
    return pgs_exec_sql(st, sql, err);
}

/* The schema (unless it exists) and its meta table, for a store of version
 * 0. Nothing is created in a store that has its version: a user that may
 * only read and write the tables of a schema made for it opens it (CREATE
 * ... IF NOT EXISTS checks the right to create before it looks). */
static int create_schema(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT to_regnamespace('\"%s\"') IS NOT NULL", c->schema);
    PGresult *r = PQexec(c->db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        int rc = sb_err_set(err, SB_ESTORE, "database (%s): cannot read the schema: %s", c->where,
                            PQresultErrorMessage(r));
        PQclear(r);
        return rc;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    snprintf(sql, sizeof sql,
             "%s%s%s CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
             exists ? "" : "CREATE SCHEMA \"", exists ? "" : c->schema, exists ? "" : "\";");
    return pgs_exec_sql(st, sql, err);
}

int pgs_migrate(struct sbd_store *st, struct sb_err *err)
{
    struct pgs_conn *c = pgs_conn(st);
    _Static_assert(NMIGRATIONS > 0, "a schema");
    if (migrations[NMIGRATIONS - 1].to != SBD_STORE_SCHEMA_VERSION)
        return sb_err_set(err, SB_EINTERNAL, "the PostgreSQL schema lags the store's version");
    char sql[400];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, hashtext('migrate:%s'))",
             PGS_LOCK_CLASS, c->schema);
    int v = 0, rc = pgs_exec_sql(st, sql, err);
    if (!rc)
        rc = read_version(st, &v, err);
    if (!rc && v == 0)
        rc = create_schema(st, err);
    if (!rc && v > SBD_STORE_SCHEMA_VERSION)
        rc = sb_err_set(err, SB_ECONFIG,
                        "the store (database %s, schema %s) has schema version %d but this "
                        "sysbusd knows only up to %d: it was written by a newer sysbusd; run "
                        "that version (or a newer one) instead",
                        c->where, c->schema, v, SBD_STORE_SCHEMA_VERSION);
    if (!rc && v < SBD_STORE_SCHEMA_VERSION)
        rc = migrate_in_txn(st, v, err);
    if (!rc)
        rc = pgs_exec_sql(st, "COMMIT", err);
    if (rc) {
        pgs_exec_sql(st, "ROLLBACK", NULL);
        if (v < SBD_STORE_SCHEMA_VERSION && rc != SB_ECONFIG) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            sb_err_set(err, rc, "schema migration from version %d failed: %.400s", v, why);
        }
    }
    return rc;
}
