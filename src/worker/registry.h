/* registry.h - system-bus-worker's one table of functions. Each entry names
 * the roles that serve it, so a function cannot be missing from one role's
 * list; the table is checked for duplicate ids before anything is served. */
#ifndef WORKER_REGISTRY_H
#define WORKER_REGISTRY_H

#include <stddef.h>

#include "sysbus.h"

enum worker_role { ROLE_HOST = 1, ROLE_CLUSTER = 2, ROLE_BOTH = 3 };

struct worker_fn {
    const char *id;
    unsigned roles; /* enum worker_role bits */
    sysbus_handler handler;
    /* sets triggers, retries and options on the defined function */
    void (*configure)(sysbus_fn *f);
};

/* Every function of the worker (registry.c), NULL-id terminated. */
extern const struct worker_fn worker_functions[];

/* The ids that appear more than once, comma-separated, into out ("" when
 * none). Returns how many ids are duplicated. */
int worker_duplicate_ids(const struct worker_fn *fns, char *out, size_t outsz);

/* Defines the functions of role on app; returns how many. */
size_t worker_define(sysbus_app *app, const struct worker_fn *fns, unsigned role);

/* diag.c: the diagnostic functions' handlers and configuration. */
json_t *diag_three_steps(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_flaky(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_slow(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_sleep(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_wait(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_parallel(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_invoke(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_send(sysbus_ctx *c, const json_t *event, void *user);
json_t *diag_env(sysbus_ctx *c, const json_t *event, void *user);
/* Opens SYSBUS_DIAG_LOG (when set); call once before serving. */
int diag_log_open(void);

/* stories.c: the example functions. */
json_t *story_pipeline(sysbus_ctx *c, const json_t *event, void *user);
json_t *heartbeat(sysbus_ctx *c, const json_t *event, void *user);

#endif
