/* inject.h - the worker's environment, built fresh for every start, in this
 * order (a later layer replaces a variable of an earlier one):
 *   1. [worker] pass_env: those variables of talon's own environment;
 *   2. talon's defaults: WORKER_ROLE=host, SYSBUS_DRAIN_GRACE=<drain>s;
 *   3. [worker] env_file (its PATH and PORT are ignored, with a warning);
 *   4. PATH = [worker] path, PORT = the port this worker gets;
 *   5. the [secrets] mappings: each secret leased from the secrets daemon
 *      (all of one start's leases within [secrets] timeout_secs, TTL
 *      [secrets] ttl, client id "talon") and put in the worker's
 *      environment only.
 * Fail closed: when a required mapping cannot be leased the build fails
 * (SB_EUNAVAIL) and the caller starts nothing, so no worker ever runs with
 * part of its secrets (a worker without INNGEST_SIGNING_KEY would come up
 * unsigned). A mapping marked optional that cannot be leased is left out
 * and the worker starts without it. Either way the failure is named in
 * secret_failures and the log (by name and error, never a value).
 * Secret values live in sodium_malloc memory and are wiped by
 * talon_env_free, which the caller runs right after the fork. talon's own
 * environment is never modified. Owned by inject.c. */
#ifndef TALON_INJECT_H
#define TALON_INJECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "talon/settings.h"

struct talon_env {
    char **envp;   /* NULL-terminated "NAME=VALUE" */
    bool *guarded; /* envp[i] is sodium memory (a secret) */
    char **source; /* where envp[i] came from, e.g. "env file /x:3", "secret name" */
    size_t n, cap;
    json_t *secret_failures; /* [name] of every lease that failed */
    json_t *unavailable;     /* [{name, env, code, error}] of the required ones */
};

/* Builds the environment for a worker on port. lease=false (--dry-run)
 * leases nothing: secrets appear with their source and an empty value.
 * Returns 0; SB_EUNAVAIL when a required secret could not be leased (err
 * says "secrets unavailable: NAME (CODE: error), ...", out->unavailable
 * lists them; out->envp must not be used); SB_EINVAL/SB_EIO when the env
 * file is bad (err names file:line). out must be zeroed; free it with
 * talon_env_free either way. */
int talon_env_build(const struct talon_settings *s, int port, bool lease, struct talon_env *out,
                    struct sb_err *err);
/* [{name, source}] in order: names only, never values. New reference. */
json_t *talon_env_plan(const struct talon_env *e);
/* Wipes the secret values and frees everything. */
void talon_env_free(struct talon_env *e);

#endif
