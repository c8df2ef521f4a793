/* config.h - the one config loader: a declarative table of settings per binary.
 *
 * Each setting has a name ("retry-base"), from which its flag (--retry-base)
 * and environment variable (<PREFIX>_RETRY_BASE, or an explicit name) are
 * derived. Precedence: flags > environment > config file > default. The same
 * table prints --help and a redacted dump. getenv() is called only here.
 *
 * Value storage: the table gives the offset of each field in a settings struct
 * the binary owns. STR -> char * (owned by the config, freed by
 * sb_config_free), INT/DURATION -> int64_t (DURATION in ms), BOOL -> bool,
 * LIST -> struct sb_strlist (repeatable flag; comma-separated in env/file),
 * MAP -> struct sb_strmap (NAME=VALUE pairs: a repeatable flag "--x NAME=VALUE",
 * "A=1,B=2" in env, and/or a free-form config file section, see below).
 * Validators, MAP sections and a default config file come from an optional
 * struct sb_config_ext (sb_config_parse_ext).
 *
 * Config file format (INI-like): "name = value" lines, '#' or ';' comments,
 * one pair of matching quotes around a value stripped. A "[section]" header
 * prefixes the keys that follow: "[worker]" then "port = 3111" sets the
 * setting "worker-port" (flag --worker-port, env <PREFIX>_WORKER_PORT). In a
 * section that a MAP setting collects (sb_opt_ext.section), a key that is not a
 * setting of that section becomes an entry of the map. '-' and '_' are the
 * same in names. Unknown sections and keys, and bad values, are errors that
 * name file:line and the key. A MAP merges across layers: an entry of a
 * higher layer replaces the entry of the same name, others are kept. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

enum sb_opt_type { SB_OPT_STR, SB_OPT_INT, SB_OPT_BOOL, SB_OPT_DURATION, SB_OPT_LIST, SB_OPT_MAP };

enum {
    SB_OPTF_SECRET = 1,     /* redacted in dumps */
    SB_OPTF_CONFIGFILE = 2, /* this STR setting names the config file */
    SB_OPTF_NOENV = 4,      /* no environment variable */
    SB_OPTF_NOFILE = 8,     /* command line only: not accepted in a config file */
    /* STR or LIST: the value may also be read from a file named by the
     * companion "<name>-file" (flag --<name>-file PATH, env <ENV>_FILE for
     * each of the setting's env names, "<name>-file = PATH" in the config
     * file), with common/secretfile.h's permission policy and the trailing
     * newline stripped. The companion counts as the layer it is given in;
     * the value and its file in one layer (both env variables, both flags of
     * a STR) are an error. For secrets, so that they need not be in argv. */
    SB_OPTF_FILEVALUE = 16,
};

struct sb_strlist {
    char **v;
    size_t n;
};

/* NAME=VALUE pairs in the order first seen; names are unique. */
struct sb_strmap {
    char **key;
    char **val;
    size_t n;
};

/* The value of key in m, or NULL. */
const char *sb_strmap_get(const struct sb_strmap *m, const char *key);

/* A setting's validator: returns 0 when value is acceptable, else writes why
 * (a phrase, e.g. "is not an environment variable name") into why. key is
 * the entry name for a MAP, NULL otherwise. Called for STR values and for
 * each LIST item and MAP entry. */
typedef int (*sb_opt_check_fn)(const char *key, const char *value, char *why, size_t whylen);

struct sb_opt {
    const char *name; /* long flag without "--" */
    enum sb_opt_type type;
    size_t offset;       /* offsetof(settings struct, field) */
    const char *def;     /* default as text, NULL = unset */
    const char *metavar; /* "PORT", shown in --help */
    const char *help;
    unsigned flags;
    int64_t min, max;     /* INT/DURATION bounds when min < max */
    int64_t bare_unit_ms; /* DURATION: unit of a bare number (0 = refuse) */
    const char *env;      /* explicit env names, '|'-separated (first set wins); NULL = derived */
    char short_flag;      /* 'p' for -p, 0 = none */
};

struct sb_config_spec {
    const char *prog;       /* "sysbusd" */
    const char *env_prefix; /* "SYSBUS" */
    const char *usage;      /* "sysbusd [OPTIONS]" */
    const char *summary;    /* one paragraph */
    const char *footer;     /* exit codes, examples... (may be NULL) */
    const struct sb_opt *opts;
    size_t nopts;
};

/* Extras of a setting that most binaries do not need, kept out of struct
 * sb_opt so that every existing table stays as it is: the free-form section
 * a MAP collects and a validator. */
struct sb_opt_ext {
    const char *name;      /* the setting ("secret") */
    const char *section;   /* MAP: the config file section whose free-form keys fill it */
    sb_opt_check_fn check; /* NULL = any value of the type */
};

struct sb_config_ext {
    /* Config file read when it exists and neither the flag nor the
     * environment names one (NULL = none). */
    const char *default_file;
    const struct sb_opt_ext *opts;
    size_t nopts;
};

enum { SB_CONFIG_HELP = 1 }; /* sb_config_parse result when --help was given */

/* Fills settings from defaults, file, env and argv (argv[0] is skipped).
 * Non-flag arguments are collected in order into pos (argv pointers, at most
 * maxpos; more is an error) and *npos. "--" ends flags. Returns 0,
 * SB_CONFIG_HELP, or SB_EINVAL/SB_EIO/SB_ECONFIG with err naming the
 * setting (never a secret's value). */
int sb_config_parse(const struct sb_config_spec *spec, void *settings, int argc, char **argv,
                    char **pos, size_t maxpos, size_t *npos, struct sb_err *err);
/* sb_config_parse with extras (ext may be NULL): MAP sections, validators
 * and a default config file. */
int sb_config_parse_ext(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                        void *settings, int argc, char **argv, char **pos, size_t maxpos,
                        size_t *npos, struct sb_err *err);
/* Sets one setting from text as a flag would (used by subcommands/tests). */
int sb_config_set(const struct sb_config_spec *spec, void *settings, const char *name,
                  const char *value, struct sb_err *err);
void sb_config_print_help(const struct sb_config_spec *spec, FILE *out);
/* The SB_OPTF_SECRET settings whose value argv gives as a flag (readable by
 * every user of the machine in /proc/PID/cmdline): their names, at most max
 * stored in names, each once. Returns how many there are. A binary warns
 * about them once its logger is up (never naming the value). */
size_t sb_config_secret_flags(const struct sb_config_spec *spec, int argc, char **argv,
                              const char **names, size_t max);
/* Logs secret_on_command_line (a warning) for each of them, naming the flag,
 * never the value, and the environment variable (and -file companion, when
 * the setting has one) to use instead. Call once the logger is up. */
void sb_config_warn_secret_flags(const struct sb_config_spec *spec, int argc, char **argv);
/* Redacted view of the effective settings. New reference. */
json_t *sb_config_dump(const struct sb_config_spec *spec, const void *settings);
void sb_config_free(const struct sb_config_spec *spec, void *settings);

/* Reads one environment variable (the single getenv of the codebase).
 * Returns NULL when unset. */
const char *sb_env(const char *name);

#endif
