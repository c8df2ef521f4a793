/* events.c - POST /e/{key}: event ingest.
 *
 * The body is one event or an array of up to 5000. Each is validated and
 * normalized ({name, data, id, ts, user, v}); its id is a ULID, derived from
 * the x-inngest-event-id-seed header when present (so an SDK's retried send
 * gets the same ids), else fresh. The events, the runs of every function they
 * trigger, and each run's first queue item go to the writer as one operation;
 * the reply {"ids":[...],"status":200} is sent only after that commit.
 * Duplicates (same seeded id, or same user `id` within 24 h) are answered
 * with the original id and start nothing. */
#include "api.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ulid.h"
#include "server/engine/engine.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/sbd.h"
#include "server/store/writer.h"

#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 5000
#define MAX_NAME 512
#define MAX_ID 512
#define DEDUPE_WINDOW_MS (24LL * 3600 * 1000)

struct ingest_run {
    char run_id[SB_ULID_SIZE];
    char *function_id, *app_id;
    int64_t qid;
};

struct ingest_event {
    char id[SB_ULID_SIZE];
    char *name, *body, *dedupe_key;
    int64_t ts;
    bool duplicate;
    struct ingest_run *runs;
    size_t nruns;
};

struct ingest_op {
    struct wop wop;
    struct sb_req *req;
    struct sbd *sbd;
    int64_t received_at;
    struct ingest_event *events;
    size_t n;
};

static void ingest_free(struct ingest_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        struct ingest_event *ev = &op->events[i];
        for (size_t j = 0; j < ev->nruns; j++) {
            free(ev->runs[j].function_id);
            free(ev->runs[j].app_id);
        }
        free(ev->runs);
        free(ev->name);
        free(ev->body);
        free(ev->dedupe_key);
    }
    free(op->events);
    free(op);
}

static int ingest_apply(struct sb_store *st, struct wop *w, struct sb_err *err)
{
    struct ingest_op *op = (struct ingest_op *)w;
    for (size_t i = 0; i < op->n; i++) {
        struct ingest_event *ev = &op->events[i];
        ev->duplicate = false;
        if (ev->dedupe_key) {
            char existing[SB_ULID_SIZE];
            if (sb_store_event_find_dedupe(st, ev->dedupe_key,
                                           op->received_at - DEDUPE_WINDOW_MS, existing) == 0) {
                memcpy(ev->id, existing, sizeof ev->id);
                ev->duplicate = true;
                continue;
            }
        }
        struct ev_rec rec = { .name = ev->name, .body = ev->body, .ts = ev->ts,
                              .received_at = op->received_at, .dedupe_key = ev->dedupe_key };
        memcpy(rec.id, ev->id, sizeof rec.id);
        bool inserted;
        int rc = sb_store_event_insert(st, &rec, &inserted, err);
        if (rc)
            return rc;
        if (!inserted) {
            ev->duplicate = true;
            continue;
        }
        for (size_t j = 0; j < ev->nruns; j++) {
            struct ingest_run *ir = &ev->runs[j];
            struct run_rec run = { .function_id = ir->function_id, .app_id = ir->app_id,
                                   .created_at = op->received_at };
            memcpy(run.id, ir->run_id, sizeof run.id);
            memcpy(run.event_id, ev->id, sizeof run.event_id);
            if ((rc = sb_store_run_insert(st, &run, err)))
                return rc;
            struct qitem_rec q = { .id = ir->qid, .run_id = ir->run_id, .step_id = "step",
                                   .due_at = op->received_at };
            if ((rc = sb_store_queue_put(st, &q, err)))
                return rc;
        }
    }
    return 0;
}

static void ingest_done(struct wop *w, int rc, const struct sb_err *err)
{
    struct ingest_op *op = (struct ingest_op *)w;
    if (rc) {
        sb_reply_error(op->req, rc == SB_EUNAVAIL ? 503 : 500, "STORE_ERROR",
                       "events not stored: %s", err ? err->msg : "store error");
        ingest_free(op);
        return;
    }
    /* Hand the new runs to the engine, then acknowledge. */
    size_t total = 0;
    for (size_t i = 0; i < op->n; i++)
        if (!op->events[i].duplicate)
            total += op->events[i].nruns;
    struct new_run *runs = total ? calloc(total, sizeof *runs) : NULL;
    size_t k = 0;
    json_t *ids = json_array();
    uint64_t dups = 0;
    for (size_t i = 0; i < op->n; i++) {
        struct ingest_event *ev = &op->events[i];
        json_array_append_new(ids, json_string(ev->id));
        if (ev->duplicate) {
            dups++;
            continue;
        }
        for (size_t j = 0; runs && j < ev->nruns; j++, k++) {
            struct ingest_run *ir = &ev->runs[j];
            memcpy(runs[k].run_id, ir->run_id, sizeof runs[k].run_id);
            memcpy(runs[k].event_id, ev->id, sizeof runs[k].event_id);
            runs[k].function_id = ir->function_id;
            ir->function_id = NULL;
            runs[k].event = strdup(ev->body);
            runs[k].qid = ir->qid;
            runs[k].due_at = op->received_at;
        }
    }
    if (runs) {
        sb_engine_add_runs(op->sbd->engine, runs, k);
        free(runs);
    }
    SBD_COUNT_N(events_received, op->n - dups);
    SBD_COUNT_N(events_duplicate, dups);
    SBD_COUNT_N(runs_started, k);
    sb_reply_json(op->req, 200, json_pack("{s:o, s:i}", "ids", ids, "status", 200));
    ingest_free(op);
}

/* Parses "<ms>,<base64 of 10 bytes>". */
static bool parse_seed(const char *h, int64_t *ms, uint8_t entropy[10])
{
    if (!h)
        return false;
    const char *comma = strchr(h, ',');
    if (!comma)
        return false;
    char *end;
    long long v = strtoll(h, &end, 10);
    if (end != comma || v <= 0)
        return false;
    uint8_t buf[16];
    if (sb_base64_decode(comma + 1, strlen(comma + 1), buf, sizeof buf) != 10)
        return false;
    memcpy(entropy, buf, 10);
    *ms = v;
    return true;
}

struct match_ctx {
    struct ingest_event *ev;
    struct sbd *sbd;
    int64_t now;
    int failed;
};

static void add_match(void *ctx, const struct fn *f)
{
    struct match_ctx *mc = ctx;
    struct ingest_event *ev = mc->ev;
    struct ingest_run *nr = realloc(ev->runs, (ev->nruns + 1) * sizeof *nr);
    if (!nr) {
        mc->failed = 1;
        return;
    }
    ev->runs = nr;
    struct ingest_run *r = &nr[ev->nruns++];
    memset(r, 0, sizeof *r);
    sb_ulid_new(mc->now, r->run_id);
    r->function_id = strdup(f->id);
    r->app_id = strdup(f->app_id);
    r->qid = sb_engine_alloc_qid(mc->sbd->engine);
    if (!r->function_id || !r->app_id)
        mc->failed = 1;
}

/* Validates one event and builds its normalized form. Replies 400 and
 * returns -1 on bad input (index i names it). */
static int normalize(struct sb_req *req, const json_t *in, size_t i, int64_t now,
                     struct ingest_event *ev)
{
    if (!json_is_object(in)) {
        sb_reply_error(req, 400, "INVALID_EVENT", "event %zu: must be a JSON object", i);
        return -1;
    }
    const char *name = sb_json_str(in, "name");
    if (!name || !*name) {
        sb_reply_error(req, 400, "MISSING_NAME", "event %zu: 'name' is required (a non-empty string)",
                       i);
        return -1;
    }
    if (strlen(name) > MAX_NAME) {
        sb_reply_error(req, 400, "INVALID_EVENT", "event %zu: 'name' is longer than %d bytes", i,
                       MAX_NAME);
        return -1;
    }
    json_t *data = json_object_get(in, "data");
    if (data && !json_is_null(data) && !json_is_object(data)) {
        sb_reply_error(req, 400, "INVALID_EVENT", "event %zu ('%s'): 'data' must be an object", i,
                       name);
        return -1;
    }
    json_t *user = json_object_get(in, "user");
    if (user && !json_is_null(user) && !json_is_object(user)) {
        sb_reply_error(req, 400, "INVALID_EVENT", "event %zu ('%s'): 'user' must be an object", i,
                       name);
        return -1;
    }
    json_t *idv = json_object_get(in, "id");
    if (idv && !json_is_null(idv) &&
        (!json_is_string(idv) || json_string_length(idv) > MAX_ID)) {
        sb_reply_error(req, 400, "INVALID_EVENT",
                       "event %zu ('%s'): 'id' must be a string of at most %d bytes", i, name,
                       MAX_ID);
        return -1;
    }
    json_t *tsv = json_object_get(in, "ts");
    int64_t ts = now;
    if (tsv && !json_is_null(tsv) && (!sb_json_as_int(tsv, &ts) || ts < 0)) {
        sb_reply_error(req, 400, "INVALID_EVENT",
                       "event %zu ('%s'): 'ts' must be a timestamp in milliseconds", i, name);
        return -1;
    }
    json_t *v = json_object_get(in, "v");
    if (v && !json_is_null(v) && !json_is_string(v)) {
        sb_reply_error(req, 400, "INVALID_EVENT", "event %zu ('%s'): 'v' must be a string", i,
                       name);
        return -1;
    }
    const char *uid = json_is_string(idv) && json_string_length(idv) > 0 ? json_string_value(idv)
                                                                         : NULL;
    json_t *norm = json_object();
    json_object_set_new(norm, "name", json_string(name));
    json_object_set_new(norm, "data", json_is_object(data) ? json_incref(data) : json_object());
    json_object_set_new(norm, "id", json_string(uid ? uid : ev->id));
    json_object_set_new(norm, "ts", json_integer(ts));
    json_object_set_new(norm, "user", json_is_object(user) ? json_incref(user) : json_object());
    if (json_is_string(v))
        json_object_set_new(norm, "v", json_incref(v));
    ev->body = sb_json_dumps(norm, NULL);
    json_decref(norm);
    ev->name = strdup(name);
    ev->dedupe_key = uid ? strdup(uid) : NULL;
    ev->ts = ts;
    if (!ev->body || !ev->name || (uid && !ev->dedupe_key)) {
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return -1;
    }
    return 0;
}

void h_events_post(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    json_t *body = api_body_json(req);
    if (!body)
        return;
    if (!json_is_object(body) && !json_is_array(body)) {
        json_decref(body);
        sb_reply_error(req, 400, "INVALID_EVENT", "body must be an event object or an array of events");
        return;
    }
    size_t n = json_is_array(body) ? json_array_size(body) : 1;
    if (n > MAX_EVENTS) {
        json_decref(body);
        sb_reply_error(req, 413, "TOO_MANY_EVENTS", "%zu events in one request; the limit is %d",
                       n, MAX_EVENTS);
        return;
    }
    struct ingest_op *op = calloc(1, sizeof *op);
    if (!op || (n && !(op->events = calloc(n, sizeof *op->events)))) {
        free(op);
        json_decref(body);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    op->wop.apply = ingest_apply;
    op->wop.done = ingest_done;
    op->req = req;
    op->sbd = sbd;
    op->received_at = sb_now_ms();
    op->n = n;
    int64_t seed_ms;
    uint8_t entropy[10];
    bool seeded = parse_seed(sb_req_header(req, "x-inngest-event-id-seed"), &seed_ms, entropy);
    struct reg_snap *snap = sb_registry_acquire(sbd->registry);
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        struct ingest_event *ev = &op->events[i];
        if (seeded) {
            /* as the Inngest server: index i+1 added to entropy bytes 6..9 */
            uint8_t e[10];
            memcpy(e, entropy, 10);
            uint32_t tail = ((uint32_t)e[6] << 24 | (uint32_t)e[7] << 16 | (uint32_t)e[8] << 8 |
                             e[9]) + (uint32_t)(i + 1);
            e[6] = (uint8_t)(tail >> 24), e[7] = (uint8_t)(tail >> 16);
            e[8] = (uint8_t)(tail >> 8), e[9] = (uint8_t)tail;
            sb_ulid_from_parts(seed_ms, e, ev->id);
        } else {
            sb_ulid_new(op->received_at, ev->id);
        }
        const json_t *in = json_is_array(body) ? json_array_get(body, i) : body;
        if (normalize(req, in, i, op->received_at, ev)) {
            bad = 1;
            op->n = i + 1; /* free what was built */
            break;
        }
        struct match_ctx mc = { ev, sbd, op->received_at, 0 };
        sb_snap_match(snap, ev->name, add_match, &mc);
        if (mc.failed) {
            sb_reply_error(req, 500, "INTERNAL", "out of memory");
            bad = 1;
            op->n = i + 1;
        }
    }
    sb_snap_release(snap);
    json_decref(body);
    if (bad) {
        ingest_free(op);
        return;
    }
    sb_req_suspend(req);
    sb_writer_submit(sbd->writer, &op->wop);
}
