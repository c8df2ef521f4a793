/* event.c - an event on its way into the store (see event.h). */
#include "event.h"
#include "common/json.h"

#include <stdlib.h>
#include <string.h>

const json_t *sbd_event_json(struct sbd_event *ev)
{
    if (!ev->parsed) {
        ev->parsed = true;
        ev->json = ev->body ? sb_json_parse(ev->body, strlen(ev->body), NULL) : NULL;
    }
    return ev->json;
}

void sbd_event_clear(struct sbd_event *ev)
{
    free(ev->name);
    free(ev->body);
    free(ev->dedupe_key);
    json_decref(ev->json);
    memset(ev, 0, sizeof *ev);
}

void sbd_events_free(struct sbd_event *evs, size_t n)
{
    for (size_t i = 0; evs && i < n; i++)
        sbd_event_clear(&evs[i]);
    free(evs);
}
