/* sbd.h - sysbusd's process context: the settings and every component,
 * created by daemon.c in dependency order and passed to the HTTP handlers
 * as the application context. Components never reach each other through
 * globals. Those above ingest (the API, the engine, the scheduler) go
 * through this struct; ingest and what it calls (flow, defer, waits,
 * cancel, event, qid) do not see it: ingest is given its registry, queue
 * ids and notification table when daemon.c creates it. */
#ifndef SBD_SBD_H
#define SBD_SBD_H

#include "common/ulid.h"
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/sign.h"
#include "qid.h"
#include "settings.h"

struct sbd_store;
struct sbd_writer;
struct sbd_registry;
struct sbd_engine;
struct sbd_waiters;
struct sbd_syncer;
struct sb_httpd;
struct sbd_janitor;
struct sbd_scheduler;
struct sbd_ingest;

struct sbd {
    struct sbd_settings cfg;
    bool signed_mode;                  /* !cfg.dev: sign calls, require keys */
    struct sb_signing_key signing_key; /* signs calls and syncs; accepted as a bearer */
    bool has_signing_key;
    struct sb_signing_key signing_key_fallback; /* rotation: also accepted as a bearer */
    bool has_signing_key_fallback;
    struct sbd_store *store; /* writable connection: writer thread only */
    struct sbd_qids qids;    /* queue item ids, loaded before the threads start */
    struct sbd_writer *writer;
    struct sbd_registry *registry;
    struct sbd_ingest *ingest; /* announces its commits through daemon.c's table */
    struct sbd_engine *engine;
    struct sbd_waiters *waiters;
    struct sbd_syncer *syncer;
    struct sbd_janitor *janitor;
    struct sbd_scheduler *scheduler;
    struct sb_httpd *httpd;
    int64_t started_at_ms;
    char bus_id[SB_ULID_SIZE]; /* the store's bus id ("" when it keeps none: SQLite) */
};

/* Opens the writable store of sbd's settings into sbd->store (daemon.c):
 * 0, or the open's error (SB_EUNAVAIL: the store's server cannot be reached
 * now, worth waiting for). sbd_start opens it when this was not called. */
int sbd_open_store(struct sbd *sbd, struct sb_err *err);
/* Starts every component (daemon.c) on sbd's settings, keys and mode as
 * main.c set them. On failure returns the SB_E* code with err filled and
 * *stage naming the step (a log event: "store_open_failed", "start_failed",
 * "listen_failed"); the process then exits. */
int sbd_start(struct sbd *sbd, const char **stage, struct sb_err *err);
/* Stops them in reverse order and closes the store. */
void sbd_stop(struct sbd *sbd);

#endif
