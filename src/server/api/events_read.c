/* events_read.c - events: GET /v1/events, GET /v1/events/{id}
 * (GET /v1/events/{id}/runs is in runs.c, with the other long-poll). */
#include "api.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/ulid.h"
#include "server/store/store.h"
#include "server/waiters.h"
#include "views.h"

#include <string.h>

static int query_time(struct sb_req *req, const char *name, int64_t *out)
{
    const char *v = sb_req_query(req, name);
    *out = 0;
    if (!v || !*v)
        return 0;
    if (sb_time_parse_iso(v, out) == 0)
        return 0;
    sb_reply_error(req, 400, "BAD_QUERY", "%s must be an RFC 3339 time, e.g. 2026-11-27T17:00:00Z",
                   name);
    return SB_EINVAL;
}

void h_events_list(struct sb_req *req)
{
    int64_t limit;
    struct sbd_event_filter f = { 0 };
    if (api_query_int(req, "limit", 20, 1, 1000, &limit) ||
        query_time(req, "received_after", &f.after_ms) ||
        query_time(req, "received_before", &f.before_ms))
        return;
    f.limit = (int)limit;
    const char *name = sb_req_query(req, "name");
    const char *cursor = sb_req_query(req, "cursor");
    f.name = name && *name ? name : NULL;
    f.cursor = cursor && *cursor ? cursor : NULL;
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *evs = st ? api_view_events(st, &f, &err) : NULL;
    if (!evs) {
        api_store_error(req, "events", &err);
        return;
    }
    size_t n = json_array_size(evs);
    json_t *next = n == (size_t)limit
                       ? json_incref(json_object_get(json_array_get(evs, n - 1), "internal_id"))
                       : json_null();
    sb_reply_json(req, 200,
                  json_pack("{s:o, s:{s:o, s:I}}", "data", evs, "metadata", "next_cursor", next,
                            "count", (json_int_t)n));
}

void h_event_get(struct sb_req *req)
{
    const char *id = sb_req_param(req, 0);
    if (!sb_ulid_valid(id)) {
        sb_reply_error(req, 404, "NOT_FOUND", "no such event: %s", id);
        return;
    }
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *ev = st ? api_view_event(st, id, &err) : NULL;
    if (!ev) {
        sbd_reply_read_error(req, "event", id, err.code, &err);
        return;
    }
    sb_reply_json(req, 200, json_pack("{s:o}", "data", ev));
}
