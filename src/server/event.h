/* event.h - an event on its way into the store: what the event API's parser
 * (api/event_parse.c), the lifecycle events (lifecycle.c), step.invoke
 * (engine/invoke.c) and the cron scheduler make, and what ingest stores and
 * matches against triggers, flow control, waits and cancelOn.
 *
 * The body is the event in canonical JSON; it is what is stored, handed to
 * the engine and sent to workers. Rules that look inside the event (a
 * trigger's `if`, a flow-control key, a wait's `if`, cancelOn) need it as a
 * tree: sbd_event_json parses the body the first time one asks and keeps the
 * tree, so an event is parsed at most once however many rules read it, and
 * not at all when none does (the common case).
 *
 * Threads: an event belongs to one thread at a time. It moves with its batch
 * (ingest.h) from the thread that made it to the writer thread, through the
 * writer's queue, whose lock orders the two; the tree is never used by two
 * threads at once and never leaves its event. */
#ifndef SBD_EVENT_H
#define SBD_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ulid.h"

struct sbd_event {
    char id[SB_ULID_SIZE];
    char *name;       /* owned */
    char *body;       /* canonical JSON {data, id, name, ts, user, v?}, owned */
    char *dedupe_key; /* the user's `id` (deduplicates for 24 h), or NULL; owned */
    int64_t ts;
    json_t *json; /* body parsed by sbd_event_json (owned), NULL before */
    bool parsed;  /* sbd_event_json ran (json stays NULL for a body that did not parse) */
};

/* The body as a tree, parsed on the first call and kept in ev (borrowed:
 * valid until sbd_event_clear). NULL when the body is not JSON (never for an
 * event sysbusd made or accepted) or could not be parsed for lack of memory:
 * rules then see no event (`event` is null in their expressions), as before
 * the tree was kept. */
const json_t *sbd_event_json(struct sbd_event *ev);
/* Frees what ev owns and zeroes it. */
void sbd_event_clear(struct sbd_event *ev);
/* Clears evs[0..n) and frees the array (NULL: nothing). */
void sbd_events_free(struct sbd_event *evs, size_t n);

#endif
