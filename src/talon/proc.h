/* proc.h - running commands without a shell: splitting a command line into
 * words as a shell would (quotes and backslashes honoured, no expansion), and
 * running a short-lived command with a fixed environment, optional stdin and
 * a timeout (killed, with its process group, when it overruns). Used for
 * script probes, heal and notify commands; talon's worker (long-lived) is
 * spawned by children.c, which uses talon_split_words too. Owned by proc.c. */
#ifndef TALON_PROC_H
#define TALON_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* Splits line into a NULL-terminated argv (malloc'd; free with
 * talon_words_free). Errors (SB_EINVAL, naming the problem): unterminated
 * quote, trailing backslash, empty command. */
int talon_split_words(const char *line, char ***argv_out, struct sb_err *err);
void talon_words_free(char **argv);

/* The most of a command's output talon keeps: the last bytes it printed. */
#define TALON_OUTPUT_MAX 8192

struct talon_cmd_result {
    int exit_code;        /* exit status, or -1 when killed by a signal */
    int signal;           /* terminating signal, 0 if none */
    bool timed_out;       /* killed because it overran */
    struct sb_buf output; /* stdout+stderr: its last TALON_OUTPUT_MAX bytes (the
                           * buffer's max), NUL-terminated */
};

/* Runs argv[0] (looked up in the PATH entry of envp) with envp, writes
 * stdin_data (may be NULL) to its stdin, waits at most timeout_ms. Returns 0
 * when the command ran (whatever its exit code) or SB_E* when it could not be
 * started (err names the command). result->output must be freed. */
int talon_run_command(char *const argv[], char *const envp[], const char *stdin_data,
                      int timeout_ms, struct talon_cmd_result *result, struct sb_err *err);
void talon_cmd_result_free(struct talon_cmd_result *r);

#endif
