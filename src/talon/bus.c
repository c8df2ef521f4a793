/* bus.c - sending talon's events to sysbusd (see bus.h). */
#include "talon/bus.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"
#include "secrets/client.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int talon_bus_send(const struct talon_settings *s, const char *name, json_t *data,
                   struct sb_err *err)
{
    if (!s->bus_url)
        return sb_err_set(err, SB_ENOTFOUND, "no [bus] url configured");
    struct secrets_lease l;
    memset(&l, 0, sizeof l);
    const char *key = s->bus_event_key;
    int rc = 0;
    if (!key) {
        char sock[256];
        if ((rc = secrets_socket_path(s->secrets_socket, sock, sizeof sock, err)) ||
            (rc = secrets_lease(sock, s->bus_event_key_secret, 300, "talon",
                                (int)(s->secrets_timeout_secs * 1000), &l, err)))
            return rc;
        key = l.value;
    }
    size_t ul = strlen(s->bus_url);
    while (ul && s->bus_url[ul - 1] == '/')
        ul--;
    size_t urlsz = ul + strlen(key) + 8;
    char *url = sodium_malloc(urlsz); /* it holds the key */
    json_t *ev = json_pack("[{s:s, s:O}]", "name", name, "data", data);
    size_t blen = 0;
    char *body = ev ? sb_json_dumps(ev, &blen) : NULL;
    json_decref(ev);
    if (!url || !body) {
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, urlsz, "%.*s/e/%s", (int)ul, s->bus_url, key);
    const char *hdrs[] = { "Content-Type: application/json", NULL };
    struct sb_httpc_req req = { .method = "POST",
                                .url = url,
                                .headers = hdrs,
                                .body = body,
                                .body_len = blen,
                                .connect_timeout_ms = s->worker_http_timeout_secs * 1000,
                                .timeout_ms = s->worker_http_timeout_secs * 1000,
                                .max_response = 64 * 1024 };
    struct sb_httpc_resp resp = { 0 };
    struct sb_err herr = { 0 };
    rc = sb_httpc_do(&req, &resp, &herr);
    if (rc) /* herr names the URL with the key redacted */
        sb_err_set(err, rc, "cannot reach the bus: %s", herr.msg);
    else if (resp.status < 200 || resp.status >= 300)
        rc = sb_err_set(err, SB_EPROTO, "%.*s answered %ld: %.200s", (int)ul, s->bus_url,
                        resp.status, resp.body.data ? resp.body.data : "");
    sb_httpc_resp_free(&resp);
out:
    free(body);
    if (url)
        sodium_free(url);
    if (l.value)
        secrets_lease_clear(&l);
    return rc;
}

void talon_bus_report(const struct talon_settings *s, const char *name, json_t *data)
{
    if (!s->bus_url)
        return;
    struct sb_err err = { 0 };
    if (talon_bus_send(s, name, data, &err) != 0)
        SB_LOGK(SB_WARN, "bus_send_failed",
                ((struct sb_lf[]){ LF_S("event", name), LF_S("error", err.msg) }),
                "cannot send %s to the bus: %s", name, err.msg);
    else
        SB_LOGK(SB_INFO, "bus_event_sent", ((struct sb_lf[]){ LF_S("event", name) }),
                "sent %s to the bus", name);
}
