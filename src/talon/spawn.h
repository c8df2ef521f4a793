/* spawn.h - one worker process: fork/exec without a shell, in its own
 * process group, with a given environment and directory; stdin /dev/null,
 * stdout appended to a file (or talon's stdout), stderr through a pipe that
 * talon copies to a file (or its own stderr) while keeping the last
 * TALON_TAIL_MAX bytes in memory for reports. Owned by spawn.c; only the
 * main loop's thread touches a struct talon_child. */
#ifndef TALON_SPAWN_H
#define TALON_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define TALON_TAIL_MAX 4096

struct talon_child {
    pid_t pid;
    int port;
    int err_fd;         /* read end of the stderr pipe (non-blocking), -1 at EOF */
    int err_out_fd;     /* where stderr is copied: the log_stderr file or 2 */
    int64_t started_ms; /* monotonic */
    char tail[TALON_TAIL_MAX];
    size_t tail_len;
    bool exited;
    int wstatus; /* waitpid status once exited */
};

struct talon_spawn_req {
    char *const *argv;                     /* argv[0] is looked up in path when it has no '/' */
    char *const *envp;                     /* the complete environment */
    const char *path;                      /* PATH for the lookup (the worker's fixed PATH) */
    const char *dir;                       /* NULL = talon's working directory */
    const char *stdout_file, *stderr_file; /* NULL = talon's own */
    int port;
};

/* Starts the process. The exec happens before this returns: a command that
 * cannot be found or run, or a directory that cannot be entered, is an
 * error here (err says which), not an exit status later. *out is malloc'd
 * (talon_child_free). */
int talon_child_spawn(const struct talon_spawn_req *r, struct talon_child **out,
                      struct sb_err *err);
/* Resolves argv0 against path into out (absolute or containing '/').
 * Returns 0 or SB_ENOTFOUND naming the PATH searched. */
int talon_resolve_command(const char *argv0, const char *path, const char *dir, char *out,
                          size_t outsz, struct sb_err *err);
/* Copies what the stderr pipe holds (without blocking) to the output and the
 * tail; at EOF closes the pipe. */
void talon_child_pump(struct talon_child *c);
/* Reaps the child if it exited (WNOHANG); returns true when it has. */
bool talon_child_reap(struct talon_child *c);
/* "exit 1", "signal 11", "running" */
void talon_child_describe(const struct talon_child *c, char *out, size_t outsz);
/* The tail as text (NUL-terminated copy in out, outsz >= TALON_TAIL_MAX+1). */
void talon_child_tail(const struct talon_child *c, char *out, size_t outsz);
/* SIGTERM to the process; SIGKILL to its whole group. */
void talon_child_term(struct talon_child *c);
void talon_child_kill(struct talon_child *c);
/* Closes fds; the child must have been reaped (or is left to exit). */
void talon_child_free(struct talon_child *c);

#endif
