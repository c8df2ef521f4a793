/* envfile.c - the worker's env file parser (format in envfile.h). Values are
 * wiped before they are freed: an env file often holds keys. */
#include "talon/envfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVFILE_LINE_MAX (256 * 1024)
#define ENVFILE_VARS_MAX 4096

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    free(s);
}

int talon_envfile_parse_line(const char *line, char **name, char **value, char *why, size_t whylen)
{
    *name = *value = NULL;
    const char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
        p += 6;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    const char *n0 = p;
    if (!(isalpha((unsigned char)*p) || *p == '_')) {
        snprintf(why, whylen, "expected KEY=VALUE (KEY: letters, digits, '_')");
        return SB_EINVAL;
    }
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t nl = (size_t)(p - n0);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=') {
        snprintf(why, whylen, "expected KEY=VALUE after '%.*s'", (int)(nl < 64 ? nl : 64), n0);
        return SB_EINVAL;
    }
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *v0 = p;
    size_t vl;
    if (*p == '"' || *p == '\'') {
        const char *close = strchr(p + 1, *p);
        if (!close) {
            snprintf(why, whylen, "unterminated %s quote in the value of %.*s",
                     *p == '"' ? "double" : "single", (int)(nl < 64 ? nl : 64), n0);
            return SB_EINVAL;
        }
        const char *rest = close + 1;
        while (*rest == ' ' || *rest == '\t' || *rest == '\r')
            rest++;
        if (*rest && *rest != '#') {
            snprintf(why, whylen, "text after the closing quote in the value of %.*s",
                     (int)(nl < 64 ? nl : 64), n0);
            return SB_EINVAL;
        }
        v0 = p + 1;
        vl = (size_t)(close - v0);
    } else {
        const char *end = p;
        while (*end && !((*end == '#') && end > v0 && isspace((unsigned char)end[-1])))
            end++;
        while (end > v0 && isspace((unsigned char)end[-1]))
            end--;
        vl = (size_t)(end - v0);
    }
    *name = strndup(n0, nl);
    *value = strndup(v0, vl);
    if (!*name || !*value) {
        free(*name);
        free(*value);
        *name = *value = NULL;
        snprintf(why, whylen, "out of memory");
        return SB_ENOMEM;
    }
    return 0;
}

static int put(struct talon_envfile *f, char *name, char *value, int line)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->v[i].name, name) == 0) {
            free(name);
            wipe_free(f->v[i].value);
            f->v[i].value = value;
            f->v[i].line = line;
            return 0;
        }
    }
    if (f->n >= ENVFILE_VARS_MAX)
        return SB_ETOOBIG;
    struct talon_envvar *nv = realloc(f->v, (f->n + 1) * sizeof *nv);
    if (!nv)
        return SB_ENOMEM;
    f->v = nv;
    f->v[f->n++] = (struct talon_envvar){ name, value, line };
    return 0;
}

int talon_envfile_load(const char *path, struct talon_envfile *out, struct sb_err *err)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return sb_err_errno(err, SB_EIO, "cannot read env file %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while (!rc && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (len > ENVFILE_LINE_MAX) {
            rc = sb_err_set(err, SB_EINVAL, "%s:%d: line longer than %d bytes", path, lineno,
                            ENVFILE_LINE_MAX);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *name, *value, why[200];
        if ((rc = talon_envfile_parse_line(line, &name, &value, why, sizeof why))) {
            sb_err_set(err, rc, "%s:%d: %s", path, lineno, why);
            break;
        }
        if (name && (rc = put(out, name, value, lineno))) {
            free(name);
            wipe_free(value);
            sb_err_set(err, rc, "%s:%d: too many variables (at most %d)", path, lineno,
                       ENVFILE_VARS_MAX);
        }
    }
    if (!rc && ferror(fp))
        rc = sb_err_errno(err, SB_EIO, "cannot read env file %s", path);
    if (line) {
        memset(line, 0, cap);
        free(line);
    }
    fclose(fp);
    return rc;
}

const struct talon_envvar *talon_envfile_get(const struct talon_envfile *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0)
            return &f->v[i];
    return NULL;
}

void talon_envfile_free(struct talon_envfile *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].name);
        wipe_free(f->v[i].value);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}
