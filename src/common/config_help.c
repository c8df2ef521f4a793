/* config_help.c - what the settings table shows of itself: --help (with
 * each setting's environment variable and file companion), the redacted
 * dump of the values in force, and which secret settings were given as
 * flags (see config.h). Parsing is config.c's. */
#include "config.h"
#include "config_internal.h"
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The help line of o's -file companion. */
static void print_file_help(const struct sb_config_spec *spec, const struct sb_opt *o, FILE *out)
{
    char left[96], envname[136];
    snprintf(left, sizeof left, "  --%s-file PATH", o->name);
    fprintf(out,
            "%-34s Read --%s from a file (not group-writable, not readable by others; "
            "trailing newline ignored%s)",
            left, o->name, o->type == SB_OPT_LIST ? "; one value a line" : "");
    if (!(o->flags & SB_OPTF_NOENV)) {
        if (o->env) {
            const char *bar = strchr(o->env, '|');
            snprintf(envname, sizeof envname, "%.*s_FILE",
                     (int)(bar ? (size_t)(bar - o->env) : strlen(o->env)), o->env);
        } else {
            sb_config_derived_env(spec, o, "_FILE", envname, sizeof envname);
        }
        fprintf(out, " [env %s]", envname);
    }
    fputc('\n', out);
}

size_t sb_config_secret_flags(const struct sb_config_spec *spec, int argc, char **argv,
                              const char **names, size_t max)
{
    size_t n = 0;
    for (int a = 1; a < argc && strcmp(argv[a], "--") != 0; a++) {
        if (strncmp(argv[a], "--", 2) != 0)
            continue;
        const char *name = argv[a] + 2;
        const char *eq = strchr(name, '=');
        const struct sb_opt *o = sb_config_find_opt(spec, name, eq ? (size_t)(eq - name) : strlen(name));
        if (!o || !(o->flags & SB_OPTF_SECRET))
            continue;
        bool dup = false;
        for (size_t i = 0; i < n && i < max; i++)
            dup = dup || strcmp(names[i], o->name) == 0;
        if (!dup) {
            if (n < max)
                names[n] = o->name;
            n++;
        }
    }
    return n;
}

void sb_config_warn_secret_flags(const struct sb_config_spec *spec, int argc, char **argv)
{
    const char *names[8];
    size_t n = sb_config_secret_flags(spec, argc, argv, names, 8);
    for (size_t i = 0; i < n && i < 8; i++) {
        const struct sb_opt *o = sb_config_find_opt(spec, names[i], strlen(names[i]));
        char env[136] = "";
        if (o->env) {
            const char *bar = strchr(o->env, '|');
            snprintf(env, sizeof env, "%.*s", (int)(bar ? (size_t)(bar - o->env) : strlen(o->env)),
                     o->env);
        } else if (!(o->flags & SB_OPTF_NOENV)) {
            sb_config_derived_env(spec, o, "", env, sizeof env);
        }
        char instead[200];
        if (o->flags & SB_OPTF_FILEVALUE)
            snprintf(instead, sizeof instead, "%s%s--%s-file PATH", env, env[0] ? " or " : "",
                     o->name);
        else
            snprintf(instead, sizeof instead, "%s", env[0] ? env : "the config file");
        SB_LOGK(SB_WARN, "secret_on_command_line", ((struct sb_lf[]){ LF_S("flag", o->name) }),
                "--%s was given on the command line, where every user of this machine can read "
                "it (/proc/PID/cmdline, ps): use %s instead",
                o->name, instead);
    }
}

void sb_config_print_help(const struct sb_config_spec *spec, FILE *out)
{
    fprintf(out, "Usage: %s\n\n", spec->usage);
    if (spec->summary)
        fprintf(out, "%s\n\n", spec->summary);
    fprintf(out, "Options (precedence: flag > environment > config file > default):\n");
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *o = &spec->opts[i];
        char left[96];
        int n;
        if (o->short_flag)
            n = snprintf(left, sizeof left, "  -%c, --%s", o->short_flag, o->name);
        else
            n = snprintf(left, sizeof left, "  --%s", o->name);
        if (o->type != SB_OPT_BOOL && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar ? o->metavar : "VALUE");
        fprintf(out, "%-34s %s", left, o->help);
        if (o->def && !(o->flags & SB_OPTF_SECRET))
            fprintf(out, " (default: %s)", o->def);
        if (o->type == SB_OPT_LIST || o->type == SB_OPT_MAP)
            fprintf(out, " (repeatable)");
        char envname[128];
        if (!(o->flags & SB_OPTF_NOENV)) {
            if (o->env) {
                fprintf(out, " [env ");
                for (const char *p = o->env; *p; p++)
                    fputs(*p == '|' ? ", " : (char[]){ *p, 0 }, out);
                fprintf(out, "]");
            } else {
                sb_config_derived_env(spec, o, "", envname, sizeof envname);
                fprintf(out, " [env %s]", envname);
            }
        }
        fputc('\n', out);
        if (o->flags & SB_OPTF_FILEVALUE)
            print_file_help(spec, o, out);
    }
    fprintf(out, "  %-32s %s\n", "-h, --help", "Show this help and exit");
    if (spec->footer)
        fprintf(out, "\n%s\n", spec->footer);
}

json_t *sb_config_dump(const struct sb_config_spec *spec, const void *settings)
{
    json_t *o = json_object();
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *opt = &spec->opts[i];
        const void *f = (const char *)settings + opt->offset;
        json_t *v = NULL;
        switch (opt->type) {
        case SB_OPT_STR: {
            const char *s = *(char *const *)f;
            v = !s                              ? json_null()
                : (opt->flags & SB_OPTF_SECRET) ? json_string("<redacted>")
                                                : json_string(s);
            break;
        }
        case SB_OPT_INT:
        case SB_OPT_DURATION: v = json_integer(*(const int64_t *)f); break;
        case SB_OPT_BOOL: v = json_boolean(*(const bool *)f); break;
        case SB_OPT_LIST: {
            const struct sb_strlist *l = f;
            v = json_array();
            for (size_t j = 0; j < l->n; j++)
                json_array_append_new(
                    v, json_string((opt->flags & SB_OPTF_SECRET) ? "<redacted>" : l->v[j]));
            break;
        }
        case SB_OPT_MAP: {
            const struct sb_strmap *m = f;
            v = json_object();
            for (size_t j = 0; j < m->n; j++)
                json_object_set_new(
                    v, m->key[j],
                    json_string((opt->flags & SB_OPTF_SECRET) ? "<redacted>" : m->val[j]));
            break;
        }
        }
        json_object_set_new(o, opt->name, v ? v : json_null());
    }
    return o;
}

