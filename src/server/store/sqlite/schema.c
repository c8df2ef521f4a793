/* schema.c - the SQLite backend's schema and its migrations.
 *
 * The schema version lives in SQLite's user_version. Migrations run in one
 * transaction at start: version N -> N+1 for each step in `migrations`. A
 * database whose version is higher than SBD_STORE_SCHEMA_VERSION was written by
 * a newer sysbusd; we refuse to touch it (SB_ECONFIG) rather than guess.
 * Table meanings and invariants: docs/internals/store.md. */
#include "sq.h"

#include <stdio.h>

static const char *const migrations[] = {
    /* 0 -> 1: initial schema */
    "CREATE TABLE apps ("
    "  id TEXT PRIMARY KEY,"
    "  url TEXT NOT NULL,"
    "  sdk TEXT, framework TEXT, app_version TEXT,"
    "  checksum TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  synced_at INTEGER,"
    "  sync_error TEXT, sync_error_at INTEGER,"
    "  deleted_at INTEGER"
    ");"
    "CREATE INDEX apps_url ON apps(url);"
    "CREATE TABLE functions ("
    "  id TEXT PRIMARY KEY,"
    "  app_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  config TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  removed_at INTEGER"
    ");"
    "CREATE INDEX functions_app ON functions(app_id);"
    "CREATE TABLE events ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  dedupe_key TEXT"
    ") WITHOUT ROWID;"
    "CREATE INDEX events_dedupe ON events(dedupe_key, received_at) WHERE dedupe_key IS NOT NULL;"
    "CREATE INDEX events_name ON events(name, id);"
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY,"
    "  function_id TEXT NOT NULL,"
    "  app_id TEXT NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  updated_at INTEGER,"
    "  ended_at INTEGER,"
    "  output TEXT,"
    "  error TEXT,"
    "  req_version INTEGER NOT NULL DEFAULT -1"
    ") WITHOUT ROWID;"
    "CREATE INDEX runs_event ON runs(event_id);"
    "CREATE INDEX runs_function ON runs(function_id, id);"
    "CREATE INDEX runs_status ON runs(status, id);"
    "CREATE INDEX runs_ended ON runs(ended_at) WHERE ended_at IS NOT NULL;"
    "CREATE TABLE steps ("
    "  run_id TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  seq INTEGER,"
    "  name TEXT, op TEXT,"
    "  status INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL,"
    "  output TEXT,"
    "  error TEXT,"
    "  started_at INTEGER, ended_at INTEGER,"
    "  PRIMARY KEY (run_id, hash)"
    ") WITHOUT ROWID;"
    "CREATE TABLE queue ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id TEXT NOT NULL,"
    "  step_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  transport_failures INTEGER NOT NULL DEFAULT 0,"
    "  transport_since INTEGER,"
    "  last_error TEXT,"
    "  flags INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX queue_run ON queue(run_id);",
    /* 1 -> 2: waits (waitForEvent, invoke), cancellations, cron triggers,
     * flow control keys */
    "CREATE TABLE waits ("
    "  item_id INTEGER PRIMARY KEY," /* the queue item that times the wait out */
    "  run_id TEXT NOT NULL,"
    "  step_hash TEXT NOT NULL,"
    "  event_name TEXT," /* waitForEvent: the awaited event */
    "  expression TEXT,"
    "  child_run_id TEXT," /* step.invoke: the invoked run */
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX waits_event ON waits(event_name) WHERE event_name IS NOT NULL;"
    "CREATE INDEX waits_child ON waits(child_run_id) WHERE child_run_id IS NOT NULL;"
    "CREATE INDEX waits_run ON waits(run_id);"
    /* runs to cancel (cancelOn, bulk cancellations): written in the
     * transaction that decided it, deleted in the one that ends the run */
    "CREATE TABLE cancel_requests ("
    "  run_id TEXT PRIMARY KEY,"
    "  reason TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    /* cron triggers: when each fires next (advanced in the firing transaction) */
    "CREATE TABLE crons ("
    "  function_id TEXT NOT NULL,"
    "  idx INTEGER NOT NULL," /* the trigger's position in the function */
    "  expression TEXT NOT NULL,"
    "  next_at INTEGER NOT NULL,"
    "  PRIMARY KEY (function_id, idx)"
    ") WITHOUT ROWID;"
    /* flow control at run start: idempotency (24 h) and singleton keys */
    "CREATE TABLE flow_keys ("
    "  kind INTEGER NOT NULL," /* 1 idempotency, 2 singleton */
    "  key TEXT NOT NULL,"
    "  run_id TEXT,"
    "  expires_at INTEGER NOT NULL," /* 0: until run_id ends */
    "  PRIMARY KEY (kind, key)"
    ") WITHOUT ROWID;"
    "CREATE INDEX flow_keys_run ON flow_keys(run_id);"
    "CREATE TABLE rate_hits (key TEXT NOT NULL, at INTEGER NOT NULL);"
    "CREATE INDEX rate_hits_key ON rate_hits(key, at);"
    "CREATE TABLE cancellations ("
    "  id TEXT PRIMARY KEY,"
    "  app_id TEXT, function_id TEXT,"
    "  started_after INTEGER, started_before INTEGER,"
    "  expression TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  run_count INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 2 -> 3: deferred starts (debounce, batchEvents) and runs of several
     * events */
    "CREATE TABLE deferred ("
    "  id TEXT PRIMARY KEY,"   /* keys a batch's run_events until its run starts */
    "  kind INTEGER NOT NULL," /* 1 debounce, 2 batch */
    "  function_id TEXT NOT NULL,"
    "  app_id TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  event_id TEXT NOT NULL," /* debounce: the latest event; batch: the first */
    "  size INTEGER NOT NULL,"  /* events so far */
    "  first_at INTEGER NOT NULL,"
    "  due_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE UNIQUE INDEX deferred_key ON deferred(kind, function_id, key);"
    "CREATE INDEX deferred_due ON deferred(due_at);"
    /* the events of a batched run, in arrival order (runs.event_id is the first) */
    "CREATE TABLE run_events ("
    "  run_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq)"
    ") WITHOUT ROWID;"
    "CREATE INDEX run_events_event ON run_events(event_id);",
    /* 3 -> 4: call leases: a call that takes a concurrency slot is marked
     * before it is made, so after a crash its slot stays taken (the worker
     * may still be running it) */
    ("ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE queue ADD COLUMN lease_keys TEXT;"), /* JSON array of slot keys */
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])
_Static_assert(NMIGRATIONS == SBD_STORE_SCHEMA_VERSION, "one migration per schema version");

int sq_bus_id(struct sbd_store *st, char out[SB_ULID_SIZE], struct sb_err *err)
{
    (void)st, (void)out, (void)err;
    return SB_ENOTFOUND; /* the file in its data directory is the bus */
}

int sq_schema_version(struct sbd_store *st, int *version, struct sb_err *err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(sq_conn(st)->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return sb_err_set(err, SB_ESTORE, "cannot read schema version: %s",
                          sqlite3_errmsg(sq_conn(st)->db));
    int64_t v;
    int rc = sq_query_int64(st, s, &v, err);
    sqlite3_finalize(s);
    if (!rc)
        *version = (int)v;
    return rc;
}

int sq_migrate(struct sbd_store *st, struct sb_err *err)
{
    sqlite3 *db = sq_conn(st)->db;
    int v;
    int rc = sq_schema_version(st, &v, err);
    if (rc)
        return rc;
    if (v > SBD_STORE_SCHEMA_VERSION)
        return sb_err_set(err, SB_ECONFIG,
                          "the database has schema version %d but this sysbusd knows only up "
                          "to %d: it was written by a newer sysbusd; run that version (or a "
                          "newer one) instead",
                          v, SBD_STORE_SCHEMA_VERSION);
    if (v == SBD_STORE_SCHEMA_VERSION)
        return 0;
    char *msg = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    for (int i = v; i < SBD_STORE_SCHEMA_VERSION; i++) {
        if (sqlite3_exec(db, migrations[i], NULL, NULL, &msg) != SQLITE_OK)
            goto fail_tx;
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", SBD_STORE_SCHEMA_VERSION);
    if (sqlite3_exec(db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        goto fail_tx;
    return 0;
fail_tx:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
fail:
    sb_err_set(err, SB_ESTORE, "schema migration from version %d failed: %s", v,
               msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return SB_ESTORE;
}
