/* checkpoint.c - POST /v1/checkpoint/{runId}/async: a v4 SDK reports steps
 * it ran inside a call (engine/checkpoint.c has the mechanism). Body:
 * {run_id, fn_id, qi_id, steps: [ops], request_id, generation_id, ts}.
 * Authenticated like registration (the SDK's hashed signing key). */
#include "api.h"
#include "common/json.h"
#include "common/ulid.h"
#include "server/engine/engine.h"
#include "server/sbd.h"

#include <stdlib.h>
#include <string.h>

void h_checkpoint(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    const char *run_id = sb_req_param(req, 0);
    if (!sb_ulid_valid(run_id)) {
        sb_reply_error(req, 404, "NOT_FOUND", "no such run: %s", run_id);
        return;
    }
    json_t *body = api_body_json(req);
    if (!body)
        return;
    json_t *steps = json_object_get(body, "steps");
    json_t *qi = json_object_get(body, "qi_id");
    int64_t qi_id = 0;
    bool qi_ok = json_is_string(qi) ? (qi_id = strtoll(json_string_value(qi), NULL, 10)) > 0
                                    : sb_json_as_int(qi, &qi_id) && qi_id > 0;
    if (!json_is_object(body) || !json_is_array(steps) || !qi_ok) {
        json_decref(body);
        sb_reply_error(req, 400, "INVALID_CHECKPOINT",
                       "a checkpoint needs qi_id (the call's queue item) and steps (an array)");
        return;
    }
    json_incref(steps);
    json_decref(body);
    sb_req_suspend(req);
    sbd_engine_checkpoint(sbd->engine, run_id, qi_id, steps, req);
}
