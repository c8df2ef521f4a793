/* config.c - declarative settings: flags > env > file > default (see config.h).
 * Owns the parsing of every layer (flags, environment, the INI-like config
 * file with its [section] prefixes and free-form MAP sections); --help and
 * the redacted dump are in config_help.c. Not thread-safe: binaries parse
 * once, at start. */
#include "config.h"
#include "config_internal.h"
#include "clock.h"
#include "secretfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *sb_env(const char *name)
{
    const char *v = getenv(name);
    return v;
}

static void *field(void *settings, const struct sb_opt *o)
{
    return (char *)settings + o->offset;
}

static void list_clear(struct sb_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int list_add(struct sb_strlist *l, const char *s, size_t n)
{
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return SB_ENOMEM;
    l->v = nv;
    l->v[l->n] = strndup(s, n);
    if (!l->v[l->n])
        return SB_ENOMEM;
    l->n++;
    return 0;
}

static void map_clear(struct sb_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->key[i]);
        free(m->val[i]);
    }
    free(m->key);
    free(m->val);
    m->key = m->val = NULL;
    m->n = 0;
}

const char *sb_strmap_get(const struct sb_strmap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0)
            return m->val[i];
    return NULL;
}

/* Sets key (klen bytes) to val (vlen bytes): replaces an entry of the same
 * name, else appends one. */
static int map_put(struct sb_strmap *m, const char *key, size_t klen, const char *val, size_t vlen)
{
    char *v = strndup(val, vlen);
    if (!v)
        return SB_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        if (strlen(m->key[i]) == klen && strncmp(m->key[i], key, klen) == 0) {
            free(m->val[i]);
            m->val[i] = v;
            return 0;
        }
    }
    char *k = strndup(key, klen);
    char **nk = realloc(m->key, (m->n + 1) * sizeof *nk);
    if (nk)
        m->key = nk;
    char **nv = nk ? realloc(m->val, (m->n + 1) * sizeof *nv) : NULL;
    if (nv)
        m->val = nv;
    if (!k || !nk || !nv) {
        free(k);
        free(v);
        return SB_ENOMEM;
    }
    m->key[m->n] = k;
    m->val[m->n] = v;
    m->n++;
    return 0;
}

/* o's extras, or NULL. */
static const struct sb_opt_ext *ext_of(const struct sb_config_ext *ext, const struct sb_opt *o)
{
    for (size_t i = 0; ext && i < ext->nopts; i++)
        if (strcmp(ext->opts[i].name, o->name) == 0)
            return &ext->opts[i];
    return NULL;
}

/* Runs o's validator on one value; fills err naming the setting and source. */
static int check_value(const struct sb_config_ext *ext, const struct sb_opt *o, const char *key,
                       const char *value, const char *source, struct sb_err *err)
{
    char why[256] = "";
    const struct sb_opt_ext *x = ext_of(ext, o);
    if (!x || !x->check || x->check(key, value, why, sizeof why) == 0)
        return 0;
    if (o->flags & SB_OPTF_SECRET)
        return sb_err_set(err, SB_EINVAL, "--%s (%s): the value %s", o->name, source, why);
    if (key)
        return sb_err_set(err, SB_EINVAL, "--%s (%s): %s = '%s' %s", o->name, source, key, value,
                          why);
    return sb_err_set(err, SB_EINVAL, "--%s (%s): '%s' %s", o->name, source, value, why);
}

/* Adds one MAP entry after checking it. */
static int map_entry(const struct sb_config_ext *ext, const struct sb_opt *o, struct sb_strmap *m,
                     const char *key, size_t klen, const char *val, size_t vlen, const char *source,
                     struct sb_err *err)
{
    while (klen && isspace((unsigned char)*key))
        key++, klen--;
    while (klen && isspace((unsigned char)key[klen - 1]))
        klen--;
    while (vlen && isspace((unsigned char)*val))
        val++, vlen--;
    while (vlen && isspace((unsigned char)val[vlen - 1]))
        vlen--;
    if (!klen || !vlen)
        return sb_err_set(err, SB_EINVAL, "--%s (%s): '%.*s=%.*s' needs a name and a value",
                          o->name, source, (int)klen, key, (int)vlen, val);
    char k[256], v[1024];
    if (klen >= sizeof k || vlen >= sizeof v)
        return sb_err_set(err, SB_EINVAL, "--%s (%s): entry '%.40s...' is too long", o->name,
                          source, key);
    memcpy(k, key, klen);
    k[klen] = '\0';
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    int rc = check_value(ext, o, k, v, source, err);
    return rc ? rc : map_put(m, k, klen, v, vlen);
}

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = { "1", "true", "yes", "on" }, *no[] = { "0", "false", "no", "off" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, 0;
    }
    return SB_EINVAL;
}

/* Adds the comma-separated items of value (blanks around items dropped). */
static int list_add_csv(const struct sb_config_ext *ext, const struct sb_opt *o,
                        struct sb_strlist *l, const char *value, const char *source,
                        struct sb_err *err)
{
    for (const char *p = value; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        while (n && isspace((unsigned char)*p))
            p++, n--;
        size_t m = n;
        while (m && isspace((unsigned char)p[m - 1]))
            m--;
        if (m) {
            char item[1024];
            snprintf(item, sizeof item, "%.*s", (int)m, p);
            int crc = check_value(ext, o, NULL, item, source, err);
            if (crc)
                return crc;
            if (list_add(l, p, m))
                return SB_ENOMEM;
        }
        p += n + (c ? 1 : 0);
        if (!c)
            break;
    }
    return 0;
}

/* The apply_* functions parse one value of their type into the setting's
 * field f; source ("flag", "environment variable X", "config file",
 * "default") goes into the error, which names the setting. */

static int apply_str(const struct sb_config_ext *ext, const struct sb_opt *o, char **f,
                     const char *value, const char *source, struct sb_err *err)
{
    int crc = check_value(ext, o, NULL, value, source, err);
    if (crc)
        return crc;
    char *copy = strdup(value);
    if (!copy)
        return SB_ENOMEM;
    free(*f);
    *f = copy;
    return 0;
}

static int apply_bool(const struct sb_opt *o, bool *f, const char *value, const char *source,
                      struct sb_err *err)
{
    if (parse_bool(value, f))
        return sb_err_set(err, SB_EINVAL, "--%s (%s): '%s' is not a boolean (use true/false)",
                          o->name, source, value);
    return 0;
}

static int apply_int(const struct sb_opt *o, int64_t *f, const char *value, const char *source,
                     struct sb_err *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end != '\0')
        return sb_err_set(err, SB_EINVAL, "--%s (%s): '%s' is not an integer", o->name, source,
                          value);
    if (o->min < o->max && (v < o->min || v > o->max))
        return sb_err_set(err, SB_EINVAL, "--%s (%s): %lld is out of range %lld..%lld", o->name,
                          source, v, (long long)o->min, (long long)o->max);
    *f = v;
    return 0;
}

static int apply_duration(const struct sb_opt *o, int64_t *f, const char *value, const char *source,
                          struct sb_err *err)
{
    int64_t ms;
    if (sb_duration_parse(value, o->bare_unit_ms, &ms))
        return sb_err_set(err, SB_EINVAL,
                          "--%s (%s): '%s' is not a duration (examples: 500ms, 15s, 2h, 7d)",
                          o->name, source, value);
    if (o->min < o->max && (ms < o->min || ms > o->max)) {
        char lo[32], hi[32];
        sb_duration_format(o->min, lo, sizeof lo);
        sb_duration_format(o->max, hi, sizeof hi);
        return sb_err_set(err, SB_EINVAL, "--%s (%s): '%s' is out of range %s..%s", o->name, source,
                          value, lo, hi);
    }
    *f = ms;
    return 0;
}

/* A flag (append) adds one item, commas allowed inside; elsewhere the
 * value is a comma-separated list that replaces the list. */
static int apply_list(const struct sb_config_ext *ext, const struct sb_opt *o, struct sb_strlist *l,
                      const char *value, int append, const char *source, struct sb_err *err)
{
    if (append) {
        int crc = check_value(ext, o, NULL, value, source, err);
        return crc ? crc : list_add(l, value, strlen(value));
    }
    list_clear(l);
    return list_add_csv(ext, o, l, value, source, err);
}

/* A flag (append): one NAME=VALUE; elsewhere a comma-separated list of
 * them. Either way entries merge into the map (see config.h). */
static int apply_map(const struct sb_config_ext *ext, const struct sb_opt *o, struct sb_strmap *m,
                     const char *value, int append, const char *source, struct sb_err *err)
{
    for (const char *p = value; *p;) {
        const char *c = append ? NULL : strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t blank = 0;
        while (blank < n && isspace((unsigned char)p[blank]))
            blank++;
        if (blank < n) {
            if (!eq)
                return sb_err_set(err, SB_EINVAL, "--%s (%s): '%.*s' is not NAME=VALUE", o->name,
                                  source, (int)n, p);
            int rc = map_entry(ext, o, m, p, (size_t)(eq - p), eq + 1, n - (size_t)(eq - p) - 1,
                               source, err);
            if (rc)
                return rc;
        }
        p += n + (c ? 1 : 0);
        if (!c)
            break;
    }
    return 0;
}

/* Parses value into o's field of settings (append: it came from a flag,
 * which adds to a list instead of replacing it). */
static int apply(const struct sb_config_ext *ext, const struct sb_opt *o, void *settings,
                 const char *value, int append, const char *source, struct sb_err *err)
{
    void *f = field(settings, o);
    switch (o->type) {
    case SB_OPT_STR: return apply_str(ext, o, f, value, source, err);
    case SB_OPT_BOOL: return apply_bool(o, f, value, source, err);
    case SB_OPT_INT: return apply_int(o, f, value, source, err);
    case SB_OPT_DURATION: return apply_duration(o, f, value, source, err);
    case SB_OPT_LIST: return apply_list(ext, o, f, value, append, source, err);
    case SB_OPT_MAP: return apply_map(ext, o, f, value, append, source, err);
    }
    return SB_EINVAL;
}

/* Compares two names of length n with '-' and '_' as the same character. */
static bool name_eq(const char *a, const char *b, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        char x = a[j] == '_' ? '-' : a[j], y = b[j] == '_' ? '-' : b[j];
        if (x != y)
            return false;
    }
    return true;
}

const struct sb_opt *sb_config_find_opt(const struct sb_config_spec *spec, const char *name,
                                      size_t len)
{
    for (size_t i = 0; i < spec->nopts; i++) {
        const char *n = spec->opts[i].name;
        if (strlen(n) == len && name_eq(n, name, len))
            return &spec->opts[i];
    }
    return NULL;
}

/* The SB_OPTF_FILEVALUE setting whose file companion is called name (len
 * bytes, "<setting>-file"), or NULL. */
static const struct sb_opt *find_file_opt(const struct sb_config_spec *spec, const char *name,
                                          size_t len)
{
    if (len <= 5 || !name_eq(name + len - 5, "-file", 5))
        return NULL;
    const struct sb_opt *o = sb_config_find_opt(spec, name, len - 5);
    return o && (o->flags & SB_OPTF_FILEVALUE) ? o : NULL;
}

/* Sets o (a FILEVALUE setting) from the secret file at path, as apply()
 * would from text; source says where the path came from. A LIST file holds
 * one value a line (commas separate too). */
static int apply_file(const struct sb_config_ext *ext, const struct sb_opt *o, void *settings,
                      const char *path, int append, const char *source, struct sb_err *err)
{
    char *v;
    struct sb_err ferr = { 0 };
    int rc = sb_secret_file_read(path, &v, &ferr);
    if (rc)
        return sb_err_set(err, rc, "--%s-file (%s): %s", o->name, source, ferr.msg);
    char src[700];
    snprintf(src, sizeof src, "file %s, from %s", path, source);
    if (o->type == SB_OPT_LIST) {
        for (char *p = v; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ',';
        struct sb_strlist *l = field(settings, o);
        if (!append)
            list_clear(l);
        rc = list_add_csv(ext, o, l, v, src, err);
    } else {
        rc = apply(ext, o, settings, v, 0, src, err);
    }
    sb_secret_free(v);
    return rc;
}

void sb_config_derived_env(const struct sb_config_spec *spec, const struct sb_opt *o,
                           const char *suffix, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "%s_", spec->env_prefix);
    for (const char *p = o->name; *p && n + 1 < outsz; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    snprintf(out + n, outsz - n, "%s", suffix);
}

/* The environment variable that is set for o (first of its names, each
 * followed by suffix: "" for the value, "_FILE" for its file), or NULL. */
static const char *env_for(const struct sb_config_spec *spec, const struct sb_opt *o,
                           const char *suffix, char *name, size_t namesz)
{
    if (o->flags & SB_OPTF_NOENV)
        return NULL;
    if (!o->env) {
        sb_config_derived_env(spec, o, suffix, name, namesz);
        return sb_env(name);
    }
    for (const char *p = o->env; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        snprintf(name, namesz, "%.*s%s", (int)n, p, suffix);
        const char *v = sb_env(name);
        if (v)
            return v;
        p += n + (bar ? 1 : 0);
    }
    return NULL;
}

/* The MAP setting that collects the free-form keys of [section], or NULL. */
static const struct sb_opt *section_map(const struct sb_config_spec *spec,
                                        const struct sb_config_ext *ext, const char *section)
{
    size_t nl = strlen(section);
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *o = &spec->opts[i];
        const struct sb_opt_ext *x = ext_of(ext, o);
        if (o->type == SB_OPT_MAP && x && x->section && strlen(x->section) == nl &&
            name_eq(x->section, section, nl))
            return o;
    }
    return NULL;
}

/* Does any setting live in [section] ("section-..." or a MAP collecting it)? */
static bool section_known(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                          const char *section)
{
    size_t nl = strlen(section);
    if (section_map(spec, ext, section))
        return true;
    for (size_t i = 0; i < spec->nopts; i++) {
        const char *n = spec->opts[i].name;
        if (strlen(n) > nl && n[nl] == '-' && name_eq(n, section, nl))
            return true;
    }
    return false;
}

static void trim(char **p, size_t *n)
{
    while (*n && isspace((unsigned char)**p))
        (*p)++, (*n)--;
    while (*n && isspace((unsigned char)(*p)[*n - 1]))
        (*n)--;
}

/* Reads an INI-like config file (format in config.h). */
/* A "[section]" line (p at its '['): the name into section (size sz), or
 * an error naming the line. */
static int file_section(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                        char *p, char *section, size_t sz, const char *path, int lineno,
                        struct sb_err *err)
{
    char *close = strchr(p, ']');
    char *name = p + 1;
    size_t nl = close ? (size_t)(close - name) : 0;
    trim(&name, &nl);
    const char *rest = close ? close + 1 : "";
    while (isspace((unsigned char)*rest))
        rest++;
    if (!close || !nl || nl >= sz || (*rest && *rest != '#' && *rest != ';'))
        return sb_err_set(err, SB_EINVAL, "%s:%d: expected '[section]'", path, lineno);
    snprintf(section, sz, "%.*s", (int)nl, name);
    if (!section_known(spec, ext, section))
        return sb_err_set(err, SB_EINVAL, "%s:%d: unknown section [%s]", path, lineno, section);
    return 0;
}

/* A "name = value" line (p at the name) in section ("" before any): the
 * value (trimmed, one pair of quotes removed) goes to the setting
 * "<section>-<name>", its -file companion, or the section's MAP. */
static int file_setting(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                        void *settings, char *p, const char *section, const char *path,
                        int lineno, struct sb_err *err)
{
    char *eq = strchr(p, '=');
    char *key = p;
    size_t kl = eq ? (size_t)(eq - p) : 0;
    trim(&key, &kl);
    if (!eq || !kl)
        return sb_err_set(err, SB_EINVAL, "%s:%d: expected 'name = value'", path, lineno);
    char *v = eq + 1;
    while (isspace((unsigned char)*v))
        v++;
    size_t vl = strlen(v);
    while (vl && isspace((unsigned char)v[vl - 1]))
        v[--vl] = '\0';
    if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
        v[vl - 1] = '\0';
        v++;
    }
    char full[300], src[600];
    if (section[0]) {
        snprintf(full, sizeof full, "%s-%.*s", section, (int)kl, key);
        snprintf(src, sizeof src, "config file %s:%d, [%s] %.*s", path, lineno, section, (int)kl,
                 key);
    } else {
        snprintf(full, sizeof full, "%.*s", (int)kl, key);
        snprintf(src, sizeof src, "config file %s:%d", path, lineno);
    }
    const struct sb_opt *o = sb_config_find_opt(spec, full, strlen(full));
    if (o && !(o->flags & (SB_OPTF_CONFIGFILE | SB_OPTF_NOFILE)))
        return apply(ext, o, settings, v, 0, src, err);
    const struct sb_opt *fo = find_file_opt(spec, full, strlen(full));
    if (fo && !(fo->flags & SB_OPTF_NOFILE))
        return apply_file(ext, fo, settings, v, 0, src, err);
    const struct sb_opt *m = section[0] ? section_map(spec, ext, section) : NULL;
    if (m)
        return map_entry(ext, m, (struct sb_strmap *)field(settings, m), key, kl, v, strlen(v), src,
                         err);
    if (section[0])
        return sb_err_set(err, SB_EINVAL, "%s:%d: unknown key '%.*s' in [%s]", path, lineno,
                          (int)kl, key, section);
    return sb_err_set(err, SB_EINVAL, "%s:%d: unknown setting '%.*s'", path, lineno, (int)kl, key);
}

static int load_file(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                     void *settings, const char *path, struct sb_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sb_err_errno(err, SB_EIO, "cannot open config file %s", path);
    char line[4096], section[128] = "";
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        size_t ll = strlen(line);
        if (ll == sizeof line - 1 && line[ll - 1] != '\n' && !feof(f)) {
            rc = sb_err_set(err, SB_EINVAL, "%s:%d: line longer than %zu bytes", path, lineno,
                            sizeof line - 2);
            break;
        }
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == ';' || *p == '\0')
            continue;
        if (*p == '[')
            rc = file_section(spec, ext, p, section, sizeof section, path, lineno, err);
        else
            rc = file_setting(spec, ext, settings, p, section, path, lineno, err);
    }
    fclose(f);
    return rc;
}

int sb_config_set(const struct sb_config_spec *spec, void *settings, const char *name,
                  const char *value, struct sb_err *err)
{
    const struct sb_opt *o = sb_config_find_opt(spec, name, strlen(name));
    if (!o)
        return sb_err_set(err, SB_EINVAL, "unknown setting '%s'", name);
    return apply(NULL, o, settings, value, o->type == SB_OPT_LIST || o->type == SB_OPT_MAP, "flag",
                 err);
}

int sb_config_parse(const struct sb_config_spec *spec, void *settings, int argc, char **argv,
                    char **pos, size_t maxpos, size_t *npos, struct sb_err *err)
{
    return sb_config_parse_ext(spec, NULL, settings, argc, argv, pos, maxpos, npos, err);
}

/* Layer 1: every setting's default. */
static int apply_defaults(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                          void *settings, struct sb_err *err)
{
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *o = &spec->opts[i];
        int rc;
        if (o->def && (rc = apply(ext, o, settings, o->def, 0, "default", err)))
            return rc;
    }
    return 0;
}

/* The config file's path from a flag (--config PATH or --config=PATH), or
 * NULL. */
static const char *config_flag(const struct sb_opt *o, int argc, char **argv)
{
    const char *path = NULL;
    size_t nl = strlen(o->name);
    for (int a = 1; a < argc && strcmp(argv[a], "--") != 0; a++) {
        if (strncmp(argv[a], "--", 2) != 0 || strncmp(argv[a] + 2, o->name, nl) != 0)
            continue;
        if (argv[a][2 + nl] == '=')
            path = argv[a] + 3 + nl;
        else if (argv[a][2 + nl] == '\0' && a + 1 < argc)
            path = argv[a + 1];
    }
    return path;
}

/* Layer 2: the config file; its path may come from a flag, the environment
 * or the extension's default file. */
static int apply_config_file(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                             void *settings, int argc, char **argv, struct sb_err *err)
{
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *o = &spec->opts[i];
        if (!(o->flags & SB_OPTF_CONFIGFILE))
            continue;
        char envname[128];
        const char *path = config_flag(o, argc, argv);
        if (!path)
            path = env_for(spec, o, "", envname, sizeof envname);
        if (!path && ext && ext->default_file && access(ext->default_file, F_OK) == 0)
            path = ext->default_file;
        int rc;
        if (path && *path && ((rc = apply(ext, o, settings, path, 0, "flag", err)) ||
                              (rc = load_file(spec, ext, settings, path, err))))
            return rc;
    }
    return 0;
}

/* Layer 3: the environment (a value, or for a FILEVALUE setting its _FILE
 * companion, never both). */
static int apply_environment(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                             void *settings, struct sb_err *err)
{
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *o = &spec->opts[i];
        if (o->flags & SB_OPTF_CONFIGFILE)
            continue;
        char envname[128], fenvname[136], src[160];
        const char *v = env_for(spec, o, "", envname, sizeof envname);
        const char *fv = (o->flags & SB_OPTF_FILEVALUE)
                             ? env_for(spec, o, "_FILE", fenvname, sizeof fenvname)
                             : NULL;
        if (v && fv)
            return sb_err_set(err, SB_EINVAL, "--%s: both %s and %s are set; set one", o->name,
                              envname, fenvname);
        int rc = 0;
        if (v) {
            snprintf(src, sizeof src, "environment variable %s", envname);
            rc = apply(ext, o, settings, v, 0, src, err);
        } else if (fv) {
            snprintf(src, sizeof src, "environment variable %s", fenvname);
            rc = apply_file(ext, o, settings, fv, 0, src, err);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* The setting a flag names (arg starts with '-'), with *value when the flag
 * carries it (--name=value), *negated for --no-BOOL, *is_file for the -file
 * companion of a FILEVALUE setting; NULL when unknown. */
static const struct sb_opt *flag_opt(const struct sb_config_spec *spec, const char *arg,
                                     const char **value, int *negated, int *is_file)
{
    const struct sb_opt *o = NULL;
    if (arg[1] != '-') {
        for (size_t i = 0; arg[2] == '\0' && i < spec->nopts; i++)
            if (spec->opts[i].short_flag == arg[1])
                o = &spec->opts[i];
        return o;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    o = sb_config_find_opt(spec, name, nl);
    if (!o && (o = find_file_opt(spec, name, nl)))
        *is_file = 1;
    if (!o && nl > 3 && strncmp(name, "no-", 3) == 0) {
        o = sb_config_find_opt(spec, name + 3, nl - 3);
        if (o && o->type == SB_OPT_BOOL)
            *negated = 1;
        else
            o = NULL;
    }
    if (eq)
        *value = eq + 1;
    return o;
}

/* Applies one flag's value. seen (per setting): 1 = a LIST flag was used,
 * 2 = the value flag of a FILEVALUE setting, 4 = its -file flag; a LIST flag
 * replaces values from lower layers on first use. */
static int apply_flag(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                      void *settings, const struct sb_opt *o, const char *value, int is_file,
                      unsigned char *seen, struct sb_err *err)
{
    int append = 0;
    size_t idx = (size_t)(o - spec->opts);
    if ((o->flags & SB_OPTF_FILEVALUE) && o->type == SB_OPT_STR) {
        seen[idx] |= is_file ? 4 : 2;
        if (seen[idx] == 6)
            return sb_err_set(err, SB_EINVAL, "give --%s or --%s-file, not both", o->name,
                              o->name);
    }
    if (o->type == SB_OPT_LIST) {
        append = seen[idx] & 1;
        seen[idx] |= 1;
    }
    if (o->type == SB_OPT_MAP)
        append = 1; /* one NAME=VALUE per flag, merged into the map */
    if (o->type == SB_OPT_LIST && !append) {
        /* first flag use: replace, then append this one value */
        list_clear((struct sb_strlist *)field(settings, o));
        append = 1;
    }
    if (!is_file)
        return apply(ext, o, settings, value, append, "flag", err);
    char src[160];
    snprintf(src, sizeof src, "flag --%s-file", o->name);
    return apply_file(ext, o, settings, value, append, src, err);
}

/* Layer 4: the flags, and the positional arguments into pos. */
static int apply_flags(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                       void *settings, int argc, char **argv, char **pos, size_t maxpos,
                       size_t *npos, struct sb_err *err)
{
    unsigned char *seen = calloc(spec->nopts ? spec->nopts : 1, 1);
    if (!seen)
        return SB_ENOMEM;
    int rc = 0, only_pos = 0;
    for (int a = 1; a < argc && !rc; a++) {
        char *arg = argv[a];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (*npos >= maxpos)
                rc = sb_err_set(err, SB_EINVAL, "unexpected argument '%s'", arg);
            else
                pos[(*npos)++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            rc = SB_CONFIG_HELP;
            break;
        }
        const char *value = NULL;
        int negated = 0, is_file = 0;
        const struct sb_opt *o = flag_opt(spec, arg, &value, &negated, &is_file);
        if (!o) {
            rc = sb_err_set(err, SB_EINVAL, "unknown option '%s' (see %s --help)", arg, spec->prog);
            break;
        }
        if (o->type == SB_OPT_BOOL && !value)
            value = negated ? "false" : "true";
        if (!value && a + 1 >= argc) {
            rc = sb_err_set(err, SB_EINVAL, "option --%s%s needs a value (%s)", o->name,
                            is_file ? "-file" : "",
                            is_file ? "PATH" : o->metavar ? o->metavar : "VALUE");
            break;
        }
        if (!value)
            value = argv[++a];
        if (!(o->flags & SB_OPTF_CONFIGFILE)) /* that one is already applied */
            rc = apply_flag(spec, ext, settings, o, value, is_file, seen, err);
    }
    free(seen);
    return rc;
}

int sb_config_parse_ext(const struct sb_config_spec *spec, const struct sb_config_ext *ext,
                        void *settings, int argc, char **argv, char **pos, size_t maxpos,
                        size_t *npos, struct sb_err *err)
{
    *npos = 0;
    int rc;
    if ((rc = apply_defaults(spec, ext, settings, err)) ||
        (rc = apply_config_file(spec, ext, settings, argc, argv, err)) ||
        (rc = apply_environment(spec, ext, settings, err)))
        return rc;
    return apply_flags(spec, ext, settings, argc, argv, pos, maxpos, npos, err);
}

void sb_config_free(const struct sb_config_spec *spec, void *settings)
{
    for (size_t i = 0; i < spec->nopts; i++) {
        const struct sb_opt *o = &spec->opts[i];
        void *f = field(settings, o);
        if (o->type == SB_OPT_STR) {
            free(*(char **)f);
            *(char **)f = NULL;
        } else if (o->type == SB_OPT_LIST) {
            list_clear(f);
        } else if (o->type == SB_OPT_MAP) {
            map_clear(f);
        }
    }
}
