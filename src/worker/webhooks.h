/* webhooks.h - system-bus-worker's webhook gateway: POST /webhooks/{provider}
 * verifies the provider's signature and turns the delivery into the event
 * <provider>/webhook.received, answering once the bus accepted it. */
#ifndef WORKER_WEBHOOKS_H
#define WORKER_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "sysbus.h"

enum webhook_verdict {
    WEBHOOK_OK,
    WEBHOOK_NO_SECRET,     /* no secret configured for the provider */
    WEBHOOK_NO_SIGNATURE,  /* the signature header is missing */
    WEBHOOK_BAD_SIGNATURE, /* present but wrong */
};

/* Checks a delivery's signature header value for provider with secret:
 *   github   X-Hub-Signature-256: "sha256=" hex HMAC-SHA256(secret, body)
 *   vercel   x-vercel-signature:  hex HMAC-SHA1(secret, body)
 *   others   X-Webhook-Signature: hex HMAC-SHA256(secret, body), with or
 *            without a "sha256=" prefix
 * Constant-time comparison. */
enum webhook_verdict webhook_verify(const char *provider, const char *secret, const char *signature,
                                    const char *body, size_t len);
/* The header that carries provider's signature. */
const char *webhook_signature_header(const char *provider);
/* The environment variable holding provider's secret (GITHUB_WEBHOOK_SECRET,
 * VERCEL_WEBHOOK_SECRET, else WEBHOOK_SECRET_<PROVIDER>), into out. */
void webhook_secret_env(const char *provider, char *out, size_t outsz);

/* Is the bus's refusal of a delivery (its HTTP status, 0 = no answer)
 * final, so that the provider is answered 4xx instead of 502? */
bool webhook_refusal_is_final(int bus_status);

/* Adds the route to app. */
void webhooks_install(sysbus_app *app);

#endif
