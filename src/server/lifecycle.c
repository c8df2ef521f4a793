/* lifecycle.c - events emitted when a run ends (see lifecycle.h). */
#include "lifecycle.h"
#include "common/json.h"
#include "common/ulid.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define LIFECYCLE_PREFIX "inngest/function."

/* One event {data, id, name, ts, user} in canonical form: 0, SB_ENOMEM, or
 * SB_EINVAL when data cannot be encoded (nested too deeply). */
static int make_event(struct sbd_event *pe, const char *name, json_t *data, int64_t now)
{
    memset(pe, 0, sizeof *pe);
    sb_ulid_new(now, pe->id);
    json_t *ev = json_pack("{s:s, s:O, s:s, s:I, s:{}}", "name", name, "data", data, "id", pe->id,
                           "ts", (json_int_t)now, "user");
    /* no cap (it would fail the run's end): each part was capped where it entered */
    struct sb_buf b = SB_BUF_INIT(0);
    int rc = ev ? sb_json_write(&b, ev) : SB_ENOMEM;
    json_decref(ev);
    pe->body = rc ? NULL : sb_buf_steal(&b, NULL);
    sb_buf_free(&b);
    pe->name = strdup(name);
    pe->ts = now;
    if (rc)
        return rc;
    return pe->body && pe->name ? 0 : SB_ENOMEM;
}

static json_t *parse_or_null(const char *text)
{
    json_t *v = text ? sb_json_parse(text, strlen(text), NULL) : NULL;
    return v ? v : json_null();
}

/* The data of the lifecycle events: the run, its trigger event (trigger),
 * and its result or error. */
static json_t *lifecycle_data(const char *fn_id, const char *run_id, json_t *trigger, int status,
                              json_t *outcome)
{
    json_t *data = json_pack("{s:s, s:s, s:O, s:[O]}", "function_id", fn_id, "run_id", run_id,
                             "event", trigger, "events", trigger);
    if (data)
        json_object_set(data, status == RUN_COMPLETED ? "result" : "error", outcome);
    return data;
}

static void free_events(struct sbd_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sbd_event_clear(&evs[i]);
}

/* finished, and failed or cancelled, with data; SB_EINVAL when data cannot
 * be encoded. */
static int make_events(struct sbd_event evs[2], size_t *n, int status, json_t *data, int64_t now)
{
    *n = 0;
    if (!data)
        return SB_ENOMEM;
    int rc = make_event(&evs[(*n)++], LIFECYCLE_PREFIX "finished", data, now);
    if (!rc && status == RUN_FAILED)
        rc = make_event(&evs[(*n)++], LIFECYCLE_PREFIX "failed", data, now);
    else if (!rc && status == RUN_CANCELLED)
        rc = make_event(&evs[(*n)++], LIFECYCLE_PREFIX "cancelled", data, now);
    if (rc) {
        free_events(evs, *n);
        *n = 0;
    }
    return rc;
}

/* The events with the trigger and the outcome; when those cannot be
 * encoded (a value stored before the JSON envelope existed, nested deeper
 * than the writer allows), with the trigger named instead of embedded and
 * the outcome replaced by a note: the events are still sent. */
static int build_events(struct sbd_event evs[2], size_t *n, const char *fn_id, const char *run_id,
                        const char *ev_name, const char *ev_body, int status,
                        const char *outcome_text, int64_t now)
{
    json_t *trigger = parse_or_null(ev_body);
    json_t *outcome = parse_or_null(outcome_text);
    json_t *data = lifecycle_data(fn_id, run_id, trigger, status, outcome);
    int rc = make_events(evs, n, status, data, now);
    json_decref(data);
    json_decref(trigger);
    json_decref(outcome);
    if (rc != SB_EINVAL)
        return rc;
    trigger = json_pack("{s:s, s:{}, s:s}", "name", ev_name, "data", "sysbus_note",
                        "the event is nested too deeply to embed here");
    outcome = json_pack("{s:s, s:s}", "name", "OutputNotStorable", "message",
                        "the run's result or error is nested too deeply to embed here");
    data = trigger && outcome ? lifecycle_data(fn_id, run_id, trigger, status, outcome) : NULL;
    rc = make_events(evs, n, status, data, now);
    json_decref(data);
    json_decref(trigger);
    json_decref(outcome);
    return rc;
}

int sbd_lifecycle_emit_in_txn(struct sbd_store *st, struct sbd_ingest *in, const char *run_id,
                              int status, const char *output, const char *error, int64_t now,
                              struct sbd_ingest_batch *batch, struct sb_err *err)
{
    memset(batch, 0, sizeof *batch);
    char *fn_id, *ev_name, *ev_body;
    int rc = sbd_store_run_trigger(st, run_id, &fn_id, &ev_name, &ev_body, err);
    if (rc == SB_ENOTFOUND)
        return 0;
    if (rc)
        return sb_err_set(err, rc, "cannot read run %s for its lifecycle events", run_id);
    if (strcmp(ev_name, LIFECYCLE_PREFIX "finished") == 0 ||
        strcmp(ev_name, LIFECYCLE_PREFIX "failed") == 0 ||
        strcmp(ev_name, LIFECYCLE_PREFIX "cancelled") == 0) {
        free(fn_id), free(ev_name), free(ev_body);
        return 0; /* no lifecycle events about lifecycle-triggered runs */
    }
    struct sbd_event evs[2];
    size_t n = 0;
    rc = build_events(evs, &n, fn_id, run_id, ev_name, ev_body, status,
                      status == RUN_COMPLETED ? output : error, now);
    free(fn_id), free(ev_name), free(ev_body);
    if (rc)
        return sb_err_set(err, rc, "cannot build the lifecycle events of run %s: %s", run_id,
                          sb_strerror(rc));
    if (sbd_ingest_init(batch, evs, n, now) != 0) {
        free_events(evs, n);
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    batch->emitted = true;
    if (sbd_ingest_prepare(in, batch) != 0)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    return sbd_ingest_apply_in_txn(st, in, batch, err);
}
