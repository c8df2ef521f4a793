/* qid.h - queue item ids: one counter for the whole process, shared by
 * ingest (a new run's first item, the discovery item of a resolved wait)
 * and the engine (every later item).
 *
 * The store's queue rows are keyed by these ids (store.h, "Single writer"
 * 2): the counter starts past the largest id the store holds, read once at
 * start (daemon.c, before any thread runs), and only counts up, so an id is
 * never handed out twice in the store's life. Any thread takes ids
 * (atomic); nothing else about the queue lives here. */
#ifndef SBD_QID_H
#define SBD_QID_H

#include <stdint.h>

#include "common/err.h"

struct sbd_store;

struct sbd_qids {
    int64_t next; /* atomic: the next id handed out */
};

/* Starts q past the largest queue id in st: 0, or the store's error (err).
 * Before other threads use q. */
int sbd_qids_load(struct sbd_qids *q, struct sbd_store *st, struct sb_err *err);
/* A new queue item id (any thread). */
int64_t sbd_qid_new(struct sbd_qids *q);

#endif
