/* secretfile.h - reading a secret (a key, a token) from a file, the way to
 * hand a daemon a secret without putting it in argv (/proc/PID/cmdline is
 * readable by every user) or in a config file that many may read.
 *
 * Policy, one for every binary: a regular file that other users can read,
 * write or execute, or that its group can write, is refused (as ssh refuses
 * an unprotected key): the secret would already be exposed, and running
 * anyway would hide that. Group read is allowed, because that is how
 * Kubernetes hands a Secret volume to a pod with fsGroup (0440) and how an
 * /etc file is shared with one service group (root:sysbus 0640). A pipe or
 * character device (a process substitution, /dev/stdin) has no mode to
 * judge and is read as it is. */
#ifndef SB_SECRETFILE_H
#define SB_SECRETFILE_H

#include <stddef.h>

#include "err.h"

#define SB_SECRET_FILE_MAX (64 * 1024)

/* Reads path into *out (NUL-terminated, malloc'd; wipe with sb_secret_free)
 * with trailing "\n"/"\r\n" removed. Errors (SB_EIO, SB_ECONFIG) name the
 * path and never the content: missing or unreadable, not a file, too open
 * (see above), empty, over SB_SECRET_FILE_MAX, or with a NUL byte. */
int sb_secret_file_read(const char *path, char **out, struct sb_err *err);

/* Wipes and frees a value from sb_secret_file_read (NULL is fine). */
void sb_secret_free(char *s);

#endif
