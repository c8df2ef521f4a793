/* lifecycle.c - events emitted when a run ends (see lifecycle.h). */
#include "lifecycle.h"
#include "common/json.h"
#include "common/ulid.h"
#include "sbd.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define LIFECYCLE_PREFIX "inngest/function."

/* One event {data, id, name, ts, user} in canonical form. */
static int make_event(struct parsed_event *pe, const char *name, json_t *data, int64_t now)
{
    memset(pe, 0, sizeof *pe);
    sb_ulid_new(now, pe->id);
    json_t *ev = json_pack("{s:s, s:O, s:s, s:I, s:{}}", "name", name, "data", data, "id", pe->id,
                           "ts", (json_int_t)now, "user");
    pe->body = ev ? sb_json_dumps(ev, NULL) : NULL;
    json_decref(ev);
    pe->name = strdup(name);
    pe->ts = now;
    return pe->body && pe->name ? 0 : SB_ENOMEM;
}

static json_t *parse_or_null(const char *text)
{
    json_t *v = text ? sb_json_parse(text, strlen(text), NULL) : NULL;
    return v ? v : json_null();
}

int sbd_lifecycle_emit(struct sb_store *st, struct sbd *sbd, const char *run_id, int status,
                       const char *output, const char *error, int64_t now,
                       struct ingest_batch *batch, struct sb_err *err)
{
    memset(batch, 0, sizeof *batch);
    char *fn_id, *ev_name, *ev_body;
    int rc = sb_store_run_trigger(st, run_id, &fn_id, &ev_name, &ev_body);
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
    json_t *trigger = parse_or_null(ev_body);
    json_t *data = json_pack("{s:s, s:s, s:O, s:[O]}", "function_id", fn_id, "run_id", run_id,
                             "event", trigger, "events", trigger);
    if (status == RUN_COMPLETED)
        json_object_set_new(data, "result", parse_or_null(output));
    else
        json_object_set_new(data, "error", parse_or_null(error));
    struct parsed_event evs[2];
    size_t n = 0;
    rc = make_event(&evs[n++], LIFECYCLE_PREFIX "finished", data, now);
    if (!rc && status == RUN_FAILED)
        rc = make_event(&evs[n++], LIFECYCLE_PREFIX "failed", data, now);
    else if (!rc && status == RUN_CANCELLED)
        rc = make_event(&evs[n++], LIFECYCLE_PREFIX "cancelled", data, now);
    json_decref(data);
    json_decref(trigger);
    free(fn_id), free(ev_name), free(ev_body);
    if (rc || sbd_ingest_init(batch, evs, n, now) != 0) {
        for (size_t i = 0; i < n; i++) {
            free(evs[i].name);
            free(evs[i].body);
        }
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    batch->emitted = true;
    if (sbd_ingest_prepare(sbd, batch) != 0)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    return sbd_ingest_apply(st, sbd, batch, err);
}
