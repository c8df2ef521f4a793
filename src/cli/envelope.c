/* envelope.c - the one output of every command: a JSON envelope
 * {ok, command, result | error + fix, next_actions}, or with --human the
 * same content as aligned text (tables for lists of records). */
#include "cli.h"
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_quote(const char *s, char *out, size_t outsz)
{
    size_t n = 0;
    if (outsz < 3) {
        if (outsz)
            out[0] = '\0';
        return;
    }
    out[n++] = '\'';
    for (; *s && n + 6 < outsz; s++) {
        if (*s == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *s;
        }
    }
    out[n++] = '\'';
    out[n] = '\0';
}

void cli_next(struct cli *c, const char *description, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (!c->next)
        c->next = json_array();
    json_array_append_new(c->next,
                          json_pack("{s:s, s:s}", "command", cmd, "description", description));
}

/* ---- --human ---- */

static void print_scalar(const json_t *v, int width)
{
    char buf[200];
    if (json_is_string(v))
        snprintf(buf, sizeof buf, "%s", json_string_value(v));
    else if (!v || json_is_null(v))
        snprintf(buf, sizeof buf, "-");
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, sizeof buf, "%s", s ? s : "?");
        free(s);
    }
    if (strlen(buf) > 60)
        strcpy(buf + 57, "...");
    printf("%-*s", width, buf);
}

/* A list of objects: one column per key of the first record. */
static void print_table(const json_t *rows)
{
    const json_t *first = json_array_get(rows, 0);
    const char *key;
    const json_t *v;
    int widths[32] = { 0 };
    const char *keys[32];
    int nk = 0;
    json_object_foreach((json_t *)first, key, v)
    {
        if (nk < 32 && !json_is_object(v) && !json_is_array(v))
            keys[nk++] = key;
    }
    for (int k = 0; k < nk; k++) {
        widths[k] = (int)strlen(keys[k]);
        size_t i;
        json_t *row;
        json_array_foreach((json_t *)rows, i, row)
        {
            const json_t *x = json_object_get(row, keys[k]);
            int w = json_is_string(x) ? (int)strlen(json_string_value(x)) : 8;
            if (w > 60)
                w = 60;
            if (w > widths[k])
                widths[k] = w;
        }
    }
    bool tty = isatty(1);
    for (int k = 0; k < nk; k++)
        printf("%s%-*s%s  ", tty ? "\033[1m" : "", widths[k], keys[k], tty ? "\033[0m" : "");
    printf("\n");
    size_t i;
    json_t *row;
    json_array_foreach((json_t *)rows, i, row)
    {
        for (int k = 0; k < nk; k++) {
            print_scalar(json_object_get(row, keys[k]), widths[k]);
            printf("  ");
        }
        printf("\n");
    }
}

static void print_human(const json_t *env)
{
    bool ok = json_is_true(json_object_get(env, "ok"));
    bool tty = isatty(1);
    if (!ok) {
        const json_t *e = json_object_get(env, "error");
        printf("%serror%s %s: %s\n", tty ? "\033[31m" : "", tty ? "\033[0m" : "",
               sb_json_str(e, "code"), sb_json_str(e, "message"));
        if (sb_json_str(env, "fix"))
            printf("fix: %s\n", sb_json_str(env, "fix"));
    } else {
        const json_t *r = json_object_get(env, "result");
        const json_t *list = json_is_array(r) ? r : NULL;
        if (!list && json_is_object(r)) { /* an object with one list: show the list */
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)r, k, v)
            {
                if (json_is_array(v) && json_is_object(json_array_get(v, 0)))
                    list = v;
            }
        }
        if (list && json_array_size(list) && json_is_object(json_array_get(list, 0)))
            print_table(list);
        else {
            char *s = json_dumps(r, JSON_INDENT(2) | JSON_ENCODE_ANY);
            printf("%s\n", s ? s : "null");
            free(s);
        }
    }
    const json_t *next = json_object_get(env, "next_actions");
    if (json_array_size(next))
        printf("\nnext:\n");
    size_t i;
    json_t *a;
    json_array_foreach((json_t *)next, i, a)
        printf("  %-50s  %s\n", sb_json_str(a, "command"), sb_json_str(a, "description"));
}

static void emit(struct cli *c, json_t *env)
{
    json_object_set_new(env, "next_actions", c->next ? c->next : json_array());
    c->next = NULL;
    if (c->human) {
        print_human(env);
    } else {
        char *s = json_dumps(env, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
        puts(s ? s : "{\"ok\":false}");
        free(s);
    }
    fflush(stdout);
    json_decref(env);
}

int cli_ok(struct cli *c, json_t *result)
{
    emit(c, json_pack("{s:b, s:s, s:o}", "ok", 1, "command", c->command, "result",
                      result ? result : json_null()));
    return 0;
}

static int fail_v(struct cli *c, const char *code, const char *fix, json_t *details,
                  const char *fmt, va_list ap)
{
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *env = json_pack("{s:b, s:s, s:{s:s, s:s}}", "ok", 0, "command", c->command, "error",
                            "message", msg, "code", code);
    if (details)
        json_object_set_new(json_object_get(env, "error"), "details", details);
    json_object_set_new(env, "fix", json_string(fix ? fix : "see the error message"));
    emit(c, env);
    return strcmp(code, "USAGE") == 0 ? 2 : 1;
}

int cli_fail(struct cli *c, const char *code, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(c, code, fix, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_usage(struct cli *c, const char *msg, const char *arg)
{
    return cli_fail(c, "USAGE", "see: sysbus <command> --help", "%s%s%s", msg, arg ? ": " : "",
                    arg ? arg : "");
}

int cli_fail_details(struct cli *c, const char *code, const char *fix, json_t *details,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(c, code, fix, details, fmt, ap);
    va_end(ap);
    return rc;
}

bool cli_checks_ok(const json_t *checks)
{
    size_t i;
    json_t *x;
    json_array_foreach((json_t *)checks, i, x)
    {
        if (!json_is_true(json_object_get(x, "ok")))
            return false;
    }
    return true;
}

int cli_checks_done(struct cli *c, json_t *checks, const char *fix, const char *fail_msg)
{
    if (!cli_checks_ok(checks))
        return cli_fail_details(c, "UNHEALTHY", fix, json_pack("{s:o}", "checks", checks), "%s",
                                fail_msg);
    return cli_ok(c, json_pack("{s:b, s:o}", "ok", 1, "checks", checks));
}
