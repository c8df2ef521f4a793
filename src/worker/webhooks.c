/* webhooks.c - the webhook gateway (see webhooks.h): signature checks per
 * provider, then one event per accepted delivery, sent synchronously so the
 * provider gets 200 only when the bus has the event. When the bus refuses it
 * for good (4xx about the delivery itself) the provider gets 4xx and stops;
 * when the bus is unreachable or says try later, 502, and it retries. */
#include "webhooks.h"
#include "common/crypto.h"
#include "common/json.h"
#include "common/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_BODY_MAX (5u << 20) /* larger deliveries get 413 */

const char *webhook_signature_header(const char *provider)
{
    if (strcmp(provider, "github") == 0)
        return "X-Hub-Signature-256";
    if (strcmp(provider, "vercel") == 0)
        return "x-vercel-signature";
    return "X-Webhook-Signature";
}

void webhook_secret_env(const char *provider, char *out, size_t outsz)
{
    if (strcmp(provider, "github") == 0 || strcmp(provider, "vercel") == 0) {
        snprintf(out, outsz, "%s_WEBHOOK_SECRET", strcmp(provider, "github") ? "VERCEL" : "GITHUB");
        return;
    }
    size_t n = (size_t)snprintf(out, outsz, "WEBHOOK_SECRET_");
    for (const char *p = provider; *p && n + 1 < outsz; p++)
        out[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    out[n] = '\0';
}

enum webhook_verdict webhook_verify(const char *provider, const char *secret, const char *signature,
                                    const char *body, size_t len)
{
    if (!secret || !*secret)
        return WEBHOOK_NO_SECRET;
    if (!signature || !*signature)
        return WEBHOOK_NO_SIGNATURE;
    uint8_t mac[SB_SHA256_LEN];
    size_t maclen;
    if (strcmp(provider, "vercel") == 0) {
        sb_hmac_sha1(secret, strlen(secret), body, len, mac);
        maclen = SB_SHA1_LEN;
    } else {
        if (strncmp(signature, "sha256=", 7) == 0)
            signature += 7;
        else if (strcmp(provider, "github") == 0)
            return WEBHOOK_BAD_SIGNATURE; /* GitHub always sends the prefix */
        sb_hmac_sha256(secret, strlen(secret), body, len, NULL, 0, mac);
        maclen = SB_SHA256_LEN;
    }
    char want[2 * SB_SHA256_LEN + 1];
    sb_hex_encode(mac, maclen, want);
    if (strlen(signature) != 2 * maclen)
        return WEBHOOK_BAD_SIGNATURE;
    char got[2 * SB_SHA256_LEN + 1];
    for (size_t i = 0; i < 2 * maclen; i++)
        got[i] = (char)tolower((unsigned char)signature[i]);
    return sb_ct_equal(got, want, 2 * maclen) ? WEBHOOK_OK : WEBHOOK_BAD_SIGNATURE;
}

static bool valid_provider(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 64)
        return false;
    for (; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

static void reply_error(sysbus_http *req, int status, const char *code, const char *msg)
{
    sysbus_http_reply(req, status,
                      json_pack("{s:s, s:s, s:i}", "error", msg, "code", code, "status", status));
}

bool webhook_refusal_is_final(int bus_status)
{
    /* 4xx is about the delivery itself (too large, an id too long, bad
     * JSON): sent again it is refused again, so the provider must not
     * retry. 401/403 (a wrong event key), 404/408/429 and 5xx or no answer
     * can heal: 502, and the provider retries. */
    return bus_status >= 400 && bus_status < 500 && bus_status != 401 && bus_status != 403 &&
           bus_status != 404 && bus_status != 408 && bus_status != 429;
}

static void on_webhook(sysbus_http *req, void *user)
{
    sysbus_app *app = user;
    const char *provider = sysbus_http_param(req, 0);
    if (!provider || !valid_provider(provider)) {
        reply_error(req, 404, "UNKNOWN_PROVIDER", "a provider is 1-64 of [a-z0-9-]");
        return;
    }
    char env[96];
    webhook_secret_env(provider, env, sizeof env);
    size_t len = 0;
    const char *body = sysbus_http_body(req, &len);
    const char *sig = sysbus_http_header(req, webhook_signature_header(provider));
    char msg[200];
    switch (webhook_verify(provider, getenv(env), sig, body ? body : "", len)) {
    case WEBHOOK_OK: break;
    case WEBHOOK_NO_SECRET:
        snprintf(msg, sizeof msg, "no secret configured for provider '%s' (set %s)", provider, env);
        reply_error(req, 404, "UNKNOWN_PROVIDER", msg);
        return;
    case WEBHOOK_NO_SIGNATURE:
        snprintf(msg, sizeof msg, "missing %s header", webhook_signature_header(provider));
        reply_error(req, 401, "MISSING_SIGNATURE", msg);
        return;
    case WEBHOOK_BAD_SIGNATURE:
        SB_LOGK(SB_WARN, "webhook_bad_signature", ((struct sb_lf[]){ LF_S("provider", provider) }),
                "a %s delivery had a bad signature", provider);
        reply_error(req, 401, "BAD_SIGNATURE", "the signature does not match the body");
        return;
    }
    struct sb_err perr = { 0 };
    json_t *payload = sb_json_parse_input(body ? body : "", len, SB_JSON_INTS, &perr);
    if (!payload) {
        snprintf(msg, sizeof msg, "the body is not accepted: %.150s", perr.msg);
        reply_error(req, 400, perr.code == SB_ETOOBIG ? "TOO_DEEP" : "INVALID_JSON", msg);
        return;
    }
    char name[100];
    snprintf(name, sizeof name, "%s/webhook.received", provider);
    json_t *headers = json_object();
    static const char *const keep[] = { "X-GitHub-Event", "X-GitHub-Delivery", "User-Agent",
                                        "Content-Type" };
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        const char *v = sysbus_http_header(req, keep[i]);
        if (v)
            json_object_set_new(headers, keep[i], json_string(v));
    }
    json_t *ev = json_pack("{s:s, s:{s:s, s:o, s:o}}", "name", name, "data", "provider", provider,
                           "headers", headers, "payload", payload);
    const char *delivery = sysbus_http_header(req, "X-GitHub-Delivery");
    if (delivery && *delivery) /* a redelivery dedupes to the same event */
        json_object_set_new(ev, "id", json_string(delivery));
    char err[400];
    int status = 0;
    json_t *ids = sysbus_send_events_status(app, ev, &status, err, sizeof err);
    json_decref(ev);
    if (!ids) {
        SB_LOGK(SB_ERROR, "webhook_not_forwarded",
                ((struct sb_lf[]){ LF_S("provider", provider), LF_I("status", status) }),
                "a %s delivery could not be sent: %s", provider, err);
        if (webhook_refusal_is_final(status)) {
            snprintf(msg, sizeof msg, "the event bus refused the delivery (HTTP %d): %.120s",
                     status, err);
            reply_error(req, status == 413 ? 413 : 400, "REJECTED_BY_BUS", msg);
        } else {
            reply_error(req, 502, "BUS_UNAVAILABLE", "the event bus did not accept the delivery");
        }
        return;
    }
    sysbus_http_reply(req, 200, json_pack("{s:s, s:o}", "event", name, "ids", ids));
}

void webhooks_install(sysbus_app *app)
{
    sysbus_route(app, "POST", "/webhooks/{}", on_webhook, app, WEBHOOK_BODY_MAX);
}
