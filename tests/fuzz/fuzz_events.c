/* Fuzz target: the event API body parser (POST /e/{key}). Invariants: on
 * success every normalized body is canonical JSON with the same name, and
 * acceptance implies encodability: the event can be written again in each
 * shape sysbusd later wraps it in (the lifecycle event that embeds it twice,
 * a REST page of events, a waitForEvent memo, a call request). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/api/event_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first line (up to 64 bytes) is the seed header */
    char seed[65] = "";
    const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
    if (nl) {
        memcpy(seed, data, (size_t)(nl - data));
        seed[nl - data] = '\0';
        size -= (size_t)(nl - data) + 1;
        data = nl + 1;
    }
    struct sbd_event *evs;
    size_t n;
    const char *code;
    struct sb_err err;
    if (sbd_events_parse((const char *)data, size, seed[0] ? seed : NULL, 1795800000000, &evs, &n,
                         &code, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            json_t *v = sb_json_parse(evs[i].body, strlen(evs[i].body), NULL);
            if (!v || strcmp(sb_json_str(v, "name"), evs[i].name) != 0)
                abort();
            char *again = sb_json_dumps(v, NULL);
            if (!again || strcmp(again, evs[i].body) != 0)
                abort();
            free(again);
            /* inngest/function.finished of a run it triggered, in a page */
            json_t *life = json_pack("{s:[{s:{s:O, s:[O], s:O}, s:s}]}", "data", "data", "event", v,
                                     "events", v, "result", v, "name", "inngest/function.finished");
            json_t *call = json_pack("{s:O, s:[O], s:{s:{s:O}}}", "event", life, "events", life,
                                     "steps", "h", "data", life);
            char *out = call ? sb_json_dumps(call, NULL) : NULL;
            if (!out)
                abort();
            free(out);
            json_decref(call);
            json_decref(life);
            json_decref(v);
        }
        sbd_events_free(evs, n);
    }
    return 0;
}
