/* cli.h - what the sysbus CLI's files share: the invocation (global
 * options), the JSON envelope every command prints, and requests to sysbusd
 * and to workers, each with a timeout and a stable error code. */
#ifndef SYSBUS_CLI_H
#define SYSBUS_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli {
    const char *url;       /* sysbusd */
    const char *key;       /* signing key (bearer for the REST API) */
    const char *event_key; /* for send */
    bool human;            /* tables instead of JSON */
    long timeout_ms;       /* per request */
    char command[512];     /* "sysbus runs --count 3": echoed in the envelope */
    json_t *next;          /* next_actions */
};

/* ---- envelope.c ---- */
/* Prints {"ok":true, command, result, next_actions}; takes result. Returns 0. */
int cli_ok(struct cli *c, json_t *result);
/* Prints the failure envelope; returns the exit code (1, or 2 for USAGE). */
int cli_fail(struct cli *c, const char *code, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A USAGE failure (exit 2): msg, and the offending argument when not NULL. */
int cli_usage(struct cli *c, const char *msg, const char *arg);
/* The same with error.details (taken), e.g. the checks that failed. */
int cli_fail_details(struct cli *c, const char *code, const char *fix, json_t *details,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Checks ([{name, ok, ...}]): whether all are ok; and the envelope for them
 * ({ok, checks} or UNHEALTHY with error.details.checks), taking checks. */
bool cli_checks_ok(const json_t *checks);
int cli_checks_done(struct cli *c, json_t *checks, const char *fix, const char *fail_msg);
/* Adds a next action: a ready command line and what it does. */
void cli_next(struct cli *c, const char *description, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Shell-quotes s (single quotes) into out. */
void cli_quote(const char *s, char *out, size_t outsz);

/* ---- api.c ---- */
struct api_res {
    long status;       /* 0: no answer */
    json_t *json;      /* the body parsed, or NULL */
    double ms;         /* latency */
    int64_t date_ms;   /* the answer's Date header (0: none) */
    const char *code;  /* on failure: SERVER_UNREACHABLE, UNAUTHORIZED, NOT_FOUND, ... */
    char message[400]; /* on failure */
};
/* A request to sysbusd (path like "/v1/runs"); 0 on a 2xx answer, else -1
 * with code and message set. Free with api_res_free. */
int cli_api(struct cli *c, const char *method, const char *path, const char *body,
            struct api_res *r);
/* A GET to any URL (a worker), no credentials, with its own timeout. */
int cli_probe(const char *url, long timeout_ms, struct api_res *r);
void api_res_free(struct api_res *r);
/* Fails the command with r's code and a fix for it, frees r; returns the
 * exit code. */
int cli_fail_api(struct cli *c, struct api_res *r);
/* A registered function's retries (an item of GET /v1/functions): its
 * config's steps.step.retries.attempts, else the default 4. */
int64_t cli_fn_retries(const json_t *fn);
/* Appends a query parameter (URL-encoded) to path. */
void cli_query(char *path, size_t pathsz, const char *name, const char *value);

/* ---- commands (cmd_*.c): argv starts after the command name ---- */
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_functions(struct cli *c, int argc, char **argv);
int cmd_apps(struct cli *c, int argc, char **argv);
int cmd_runs(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_events(struct cli *c, int argc, char **argv);
int cmd_send(struct cli *c, int argc, char **argv);
int cmd_cancel(struct cli *c, int argc, char **argv);
int cmd_refresh(struct cli *c, int argc, char **argv);
int cmd_doctor(struct cli *c, int argc, char **argv);

/* why.c: for a Running run (GET /v1/runs/{id} data), why it is not
 * progressing: {reason, message, until?, ...} (new ref); NULL otherwise. */
json_t *cli_why(struct cli *c, const json_t *run);

/* Option parsing for commands: when argv[*i] is `name`, takes its value
 * (argv[*i+1]) into *out and returns 1; -1 when the value is missing. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **out);
/* A positive integer option value, or -1. */
long cli_num(const char *s, long max);

#endif
