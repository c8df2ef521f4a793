/* main.c - sysbus, the operator CLI: global options, the command table with
 * each command's help, and dispatch. Every command prints one envelope
 * (envelope.c) and exits 0 only on success. See docs/sysbus.md. */
#include "cli.h"
#include "common/httpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "dev"
#endif

struct command {
    const char *name;
    int (*run)(struct cli *c, int argc, char **argv);
    const char *summary;
    const char *usage;
};

static const struct command commands[] = {
    { "status", cmd_status, "health of sysbusd, every worker, talon and the cluster",
      "sysbus status [--check-timeout MS] [--talon URL] [--namespace NS] [--deployment NAME]\n"
      "  Each check has a timeout (default 1500 ms) and reports its latency; exit 1 unless\n"
      "  every check is ok. Talon is checked when --talon or SYSBUS_TALON_URL is set, the\n"
      "  worker Deployment (default joelclaw/system-bus-worker) when kubectl has a context." },
    { "doctor", cmd_doctor, "check the wiring between sysbusd and its workers, with fixes",
      "sysbus doctor\n"
      "  Checks: the server answers; clocks agree (Date headers, 5 minute window); per app:\n"
      "  the worker answers, worker and server agree on dev/signed mode and keys, the worker\n"
      "  serves as many functions as are registered, and sysbusd reaches the worker which\n"
      "  registers back (a re-sync). Each failed check carries its fix; exit 1 unless all ok." },
    { "functions", cmd_functions, "registered functions with their triggers",
      "sysbus functions [--app ID]" },
    { "apps", cmd_apps, "registered apps, and whether their workers answer", "sysbus apps" },
    { "refresh", cmd_refresh, "re-sync apps with their workers",
      "sysbus refresh [--app ID | --all] [--prune --yes]\n"
      "  Asks sysbusd to re-sync each app (default: all) and reports per app\n"
      "  {app, url, action: refreshed|clean|unreachable|pruned, added, removed, functionCount}.\n"
      "  --prune --yes deletes the apps whose workers cannot be reached." },
    { "runs", cmd_runs, "recent runs, newest first; stuck ones flagged",
      "sysbus runs [--count N] [--status Running|Completed|Failed|Cancelled] [--function ID]\n"
      "            [--hours H]\n"
      "  A run that is Running without progress for 10 minutes has \"stuck\": true." },
    { "run", cmd_run, "one run with its step trace", "sysbus run <run-id>" },
    { "events", cmd_events, "recent events", "sysbus events [--name NAME] [--count N]" },
    { "send", cmd_send, "send an event (and follow the runs it starts)",
      "sysbus send <event> [-d JSON | -d @file] [--follow] [--timeout SECONDS]\n"
      "  --follow prints one JSON line per step and run change until every run ended\n"
      "  (default timeout 300 s), then the envelope. Signed servers need --event-key." },
    { "cancel", cmd_cancel, "cancel a running run", "sysbus cancel <run-id>" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: sysbus [global options] <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nglobal options:\n"
                 "  --url URL           sysbusd (default $SYSBUS_URL or http://127.0.0.1:8288)\n"
                 "  --signing-key KEY   for the REST API of a signed server; prefer\n"
                 "                      $SYSBUS_SIGNING_KEY (a flag shows in ps to every user)\n"
                 "  --event-key KEY     for send on a signed server; prefer $SYSBUS_EVENT_KEY\n"
                 "  --timeout-ms MS     per request (default 10000)\n"
                 "  --human             aligned text instead of the JSON envelope\n"
                 "  --help, --version\n"
                 "\nEvery command prints one JSON envelope: {ok, command, result, next_actions}\n"
                 "or {ok:false, command, error:{code, message}, fix, next_actions}; the exit code\n"
                 "is 0 only when ok (2 for bad usage). `sysbus <command> --help` for details.\n");
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int main(int argc, char **argv)
{
    struct cli c = { .url = env_or("SYSBUS_URL", "http://127.0.0.1:8288"),
                     .key = env_or("SYSBUS_SIGNING_KEY", NULL),
                     .event_key = env_or("SYSBUS_EVENT_KEY", NULL),
                     .timeout_ms = 10000 };
    size_t n = (size_t)snprintf(c.command, sizeof c.command, "sysbus");
    for (int i = 1; i < argc && n < sizeof c.command; i++)
        n += (size_t)snprintf(c.command + n, sizeof c.command - n, " %s", argv[i]);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("sysbus %s\n", SB_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--human") == 0) {
            c.human = true;
        } else if (cli_opt(argc, argv, &i, "--url", &v) > 0) {
            c.url = v;
        } else if (cli_opt(argc, argv, &i, "--signing-key", &v) > 0) {
            c.key = v;
        } else if (cli_opt(argc, argv, &i, "--event-key", &v) > 0) {
            c.event_key = v;
        } else if (cli_opt(argc, argv, &i, "--timeout-ms", &v) > 0) {
            if ((c.timeout_ms = cli_num(v, 3600000)) < 0)
                return cli_fail(&c, "USAGE", "see: sysbus --help",
                                "--timeout-ms must be 1..3600000");
        } else {
            return cli_fail(&c, "USAGE", "see: sysbus --help", "unknown or incomplete option: %s",
                            argv[i]);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return cli_fail(&c, "USAGE", "see: sysbus --help", "no command given");
    }
    const struct command *cmd = NULL;
    for (size_t k = 0; k < NCOMMANDS; k++)
        if (strcmp(commands[k].name, argv[i]) == 0)
            cmd = &commands[k];
    if (!cmd)
        return cli_fail(&c, "USAGE", "see: sysbus --help", "unknown command: %s", argv[i]);
    for (int k = i + 1; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            printf("%s\n\n%s\n", cmd->summary, cmd->usage);
            json_decref(c.next);
            return 0;
        }
    }
    size_t len = strlen(c.url);
    char *url = strdup(c.url);
    while (url && len > 0 && url[len - 1] == '/')
        url[--len] = '\0';
    c.url = url ? url : c.url;
    sb_httpc_global_init();
    int rc = cmd->run(&c, argc - i - 1, argv + i + 1);
    json_decref(c.next);
    free(url);
    return rc;
}
