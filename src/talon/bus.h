/* bus.h - events talon sends to sysbusd ([bus] url): POST <url>/e/<key>
 * with [{name, data}] through the one HTTP client, under
 * [worker] http_timeout_secs. The key is [bus] event_key, or the secret
 * [bus] event_key_secret leased for the call (wiped after). Owned by bus.c. */
#ifndef TALON_BUS_H
#define TALON_BUS_H

#include <jansson.h>

#include "common/err.h"
#include "talon/settings.h"

/* Sends one event. Returns 0 when sysbusd answered 2xx; SB_ENOTFOUND when
 * no [bus] is configured; else an SB_E* code with err filled. data is
 * borrowed. Never logs the key. */
int talon_bus_send(const struct talon_settings *s, const char *name, json_t *data,
                   struct sb_err *err);
/* talon_bus_send for a report that must not stop anything: logs the
 * outcome (bus_event_sent, or bus_send_failed with the error) and returns
 * nothing; does nothing when no [bus] url is configured. data is borrowed. */
void talon_bus_report(const struct talon_settings *s, const char *name, json_t *data);

#endif
