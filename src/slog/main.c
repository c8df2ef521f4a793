/* main.c - slog, the operations log: the command table, top-level usage and
 * exit codes, and process setup. The commands live in commands.c, the file
 * format in entry.c, the file handling in logfile.c. See docs/slog.md. */
#include "slog.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "dev"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    { "write", slog_cmd_write, "append one entry (fsync'd; exit 1 with the reason if it cannot)" },
    { "tail", slog_cmd_tail, "print the last entries" },
    { "validate", slog_cmd_validate, "check every line of the log" },
    { "health", slog_cmd_health, "is the log alive? JSON report; exit 1 when it is not" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "Usage: slog <command> [options]\n\n"
                 "The operations log: one JSON line per entry {timestamp, sessionId, systemId,\n"
                 "action, tool, detail, reason}, appended under a lock and fsync'd. A write that\n"
                 "cannot be made fails loudly.\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nThe log: --file PATH, else $SLOG_FILE, else $XDG_STATE_HOME/sysbus/slog.jsonl,\n"
            "else ~/.local/state/sysbus/slog.jsonl.\n"
            "`slog <command> --help` for a command's options.\n\n"
            "Exit codes: 0 ok; 1 failed (the reason is on stderr); 2 bad usage.\n"
            "Docs: docs/slog.md\n");
}

int main(int argc, char **argv)
{
    /* Past RLIMIT_FSIZE, write(2) should fail with EFBIG (reported and rolled
     * back) instead of the process being killed mid-append. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return SLOG_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return SLOG_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("slog %s\n", SB_VERSION);
        return SLOG_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "slog: unknown command '%s'\n", name);
    usage(stderr);
    return SLOG_EXIT_USAGE;
}
