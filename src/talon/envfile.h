/* envfile.h - the worker's env file: "KEY=VALUE" lines, '#' comments, an
 * optional "export " prefix, one pair of matching single or double quotes
 * around a value stripped (no escapes, no expansion). An unquoted value ends
 * at " #" (a comment) and loses trailing blanks. A later line for the same
 * KEY replaces the earlier one. Errors name file:line. Owned by envfile.c;
 * values may be secrets: they are never logged (only names and lines). */
#ifndef TALON_ENVFILE_H
#define TALON_ENVFILE_H

#include <stddef.h>

#include "common/err.h"

struct talon_envvar {
    char *name;
    char *value;
    int line; /* where it was set */
};

struct talon_envfile {
    struct talon_envvar *v;
    size_t n;
};

/* Reads path into out (zeroed by the caller). Returns 0, SB_EIO (cannot
 * read, err names the file) or SB_EINVAL (err = "path:line: why"). out
 * holds what was read so far either way; free it with talon_envfile_free. */
int talon_envfile_load(const char *path, struct talon_envfile *out, struct sb_err *err);
/* Parses one line (no newline) into a name and value (malloc'd, *name NULL
 * for blank and comment lines). Returns 0 or SB_EINVAL with why filled. */
int talon_envfile_parse_line(const char *line, char **name, char **value, char *why, size_t whylen);
/* The entry for name, or NULL. */
const struct talon_envvar *talon_envfile_get(const struct talon_envfile *f, const char *name);
void talon_envfile_free(struct talon_envfile *f);

#endif
