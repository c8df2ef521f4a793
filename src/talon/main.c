/* main.c - talon's command line: parses the settings and runs one mode:
 * supervise (supervise.c), `validate`, `restart`, --status, --dry-run or
 * --check. The one-shot modes print one JSON document on stdout and exit
 * with the codes of talon.h (documented in --help and docs/talon.md). */
#include "common/clock.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"
#include "talon/envfile.h"
#include "talon/inject.h"
#include "talon/probes.h"
#include "talon/proc.h"
#include "talon/spawn.h"
#include "talon/talon.h"

#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        printf("%s\n", text);
    free(text);
    fflush(stdout);
}

/* `talon validate`: the config as JSON, plus what can be checked without
 * starting anything: the env file and the probe file parse. */
static int cmd_validate(struct talon_settings *s)
{
    struct sb_err err = { 0 };
    int rc = TALON_EXIT_OK;
    if (!s->worker_command) {
        fprintf(stderr, "talon: [worker] command is required\n");
        rc = TALON_EXIT_FAIL;
    }
    if (s->worker_env_file) {
        struct talon_envfile ef = { 0 };
        if (talon_envfile_load(s->worker_env_file, &ef, &err) != 0) {
            fprintf(stderr, "talon: [worker] env_file: %s\n", err.msg);
            rc = TALON_EXIT_FAIL;
        }
        talon_envfile_free(&ef);
    }
    int probes = 0;
    if (s->probes_file && !s->worker_only) {
        struct talon_probe_set ps = { 0 };
        if (talon_probes_load(s->probes_file, (int)s->worker_http_timeout_secs, &ps, &err) != 0) {
            fprintf(stderr, "talon: [probes] file: %s\n", err.msg);
            rc = TALON_EXIT_FAIL;
        }
        probes = (int)ps.n;
        talon_probes_free(&ps);
    }
    json_t *doc = json_pack("{s:s?, s:o, s:i}", "config_file", s->config, "settings",
                            talon_settings_json(s), "probe_count", probes);
    json_object_set_new(doc, "ok", json_boolean(rc == TALON_EXIT_OK));
    print_json(doc);
    json_decref(doc);
    return rc;
}

/* The command's words and where it resolves, into plan. */
static void plan_command(const struct talon_settings *s, json_t *plan)
{
    char **argv = NULL;
    struct sb_err err = { 0 };
    if (talon_split_words(s->worker_command, &argv, &err) != 0) {
        json_object_set_new(plan, "command_error", json_string(err.msg));
        return;
    }
    json_t *words = json_array();
    for (char **w = argv; *w; w++)
        json_array_append_new(words, json_string(*w));
    json_object_set_new(plan, "command", words);
    char path[4096];
    if (talon_resolve_command(argv[0], s->worker_path, s->worker_dir, path, sizeof path, &err) == 0)
        json_object_set_new(plan, "command_path", json_string(path));
    else
        json_object_set_new(plan, "command_error", json_string(err.msg));
    talon_words_free(argv);
}

/* --dry-run: what talon would do, started nothing, leased nothing. */
static int cmd_dry_run(struct talon_settings *s)
{
    struct sb_err err = { 0 };
    char cwd[PATH_MAX] = "", url[2048];
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    json_t *plan = json_object();
    plan_command(s, plan);
    json_object_set_new(plan, "dir", json_string(s->worker_dir ? s->worker_dir : cwd));
    json_object_set_new(plan, "port", json_integer(s->worker_port));
    json_object_set_new(plan, "alt_port", json_integer(s->worker_alt_port));
    talon_url_for_port(s->worker_health_endpoint, (int)s->worker_port, (int)s->worker_port, url,
                       sizeof url);
    json_object_set_new(plan, "health_endpoint", json_string(url));
    talon_url_for_port(s->worker_sync_endpoint, (int)s->worker_port, (int)s->worker_port, url,
                       sizeof url);
    json_object_set_new(plan, "sync_endpoint", json_string(url));
    struct talon_env env = { 0 };
    int rc = talon_env_build(s, (int)s->worker_port, false, &env, &err);
    if (rc == 0)
        json_object_set_new(plan, "env", talon_env_plan(&env));
    else
        json_object_set_new(plan, "env_error", json_string(err.msg));
    talon_env_free(&env);
    json_t *secrets = json_object(), *optional = json_array();
    for (size_t i = 0; i < s->nsecret_maps; i++) {
        json_object_set_new(secrets, s->secret_maps[i].name, json_string(s->secret_maps[i].env));
        if (s->secret_maps[i].optional)
            json_array_append_new(optional, json_string(s->secret_maps[i].name));
    }
    json_object_set_new(plan, "secrets", secrets);
    json_object_set_new(plan, "optional_secrets", optional);
    json_object_set_new(plan, "log_stdout",
                        s->worker_log_stdout ? json_string(s->worker_log_stdout) : json_null());
    json_object_set_new(plan, "log_stderr",
                        s->worker_log_stderr ? json_string(s->worker_log_stderr) : json_null());
    json_object_set_new(plan, "probes_file",
                        s->probes_file ? json_string(s->probes_file) : json_null());
    json_object_set_new(plan, "watchdog", json_boolean(!s->worker_only));
    json_object_set_new(plan, "health_bind", json_string(s->health_bind));
    json_object_set_new(plan, "state_dir", json_string(s->health_state_dir));
    json_object_set_new(plan, "log_file",
                        s->health_log_file ? json_string(s->health_log_file) : json_null());
    json_object_set_new(plan, "bus", s->bus_url ? json_string(s->bus_url) : json_null());
    bool ok = rc == 0 && !json_object_get(plan, "command_error");
    json_object_set_new(plan, "ok", json_boolean(ok));
    print_json(plan);
    json_decref(plan);
    return ok ? TALON_EXIT_OK : TALON_EXIT_FAIL;
}

/* One HTTP call to the running talon; prints its JSON answer. */
static int call_talon(const struct talon_settings *s, const char *method, const char *path,
                      long timeout_ms)
{
    struct sb_err err = { 0 };
    char base[512], url[600];
    if (talon_health_url(s, base, sizeof base, &err) != 0) {
        fprintf(stderr, "talon: %s\n", err.msg);
        return TALON_EXIT_FAIL;
    }
    snprintf(url, sizeof url, "%s%s", base, path);
    sb_httpc_global_init();
    static const char *const json_headers[] = { "Content-Type: application/json", NULL };
    struct sb_httpc_req req = { .method = method,
                                .url = url,
                                .headers = json_headers,
                                .body = strcmp(method, "POST") == 0 ? "{}" : NULL,
                                .body_len = strcmp(method, "POST") == 0 ? 2 : 0,
                                .connect_timeout_ms = 3000,
                                .timeout_ms = timeout_ms };
    struct sb_httpc_resp resp = { 0 };
    if (sb_httpc_do(&req, &resp, &err) != 0) {
        fprintf(stderr, "talon: no talon answers at %s: %s\n", url, err.msg);
        sb_httpc_resp_free(&resp);
        return TALON_EXIT_FAIL;
    }
    json_t *doc = sb_json_parse_ints(resp.body.data ? resp.body.data : "", resp.body.len, &err);
    int rc = TALON_EXIT_FAIL;
    if (doc) {
        print_json(doc);
        if (resp.status == 200 && json_is_true(json_object_get(doc, "ok")))
            rc = TALON_EXIT_OK;
    } else {
        fprintf(stderr, "talon: %s answered %ld with no JSON\n", url, resp.status);
    }
    json_decref(doc);
    sb_httpc_resp_free(&resp);
    return rc;
}

/* --check: the probes once and the worker's health once. */
static int cmd_check(struct talon_settings *s)
{
    struct sb_err err = { 0 };
    if (sodium_init() < 0) {
        fprintf(stderr, "talon: libsodium failed to initialise\n");
        return TALON_EXIT_FAIL;
    }
    sb_httpc_global_init();
    json_t *out = json_object();
    bool ok = true;
    if (!s->worker_only) {
        struct talon_watchdog_config wc;
        talon_watchdog_config_from(s, &wc);
        json_t *rep = talon_watchdog_check_once(&wc, &err);
        if (rep) {
            ok = ok && json_is_true(json_object_get(rep, "ok"));
            json_object_set_new(out, "probes", rep);
        } else {
            ok = false;
            json_object_set_new(out, "probes_error", json_string(err.msg));
        }
    }
    char url[2048];
    talon_url_for_port(s->worker_health_endpoint, (int)s->worker_port, (int)s->worker_port, url,
                       sizeof url);
    struct sb_httpc_req req = { .method = "GET",
                                .url = url,
                                .connect_timeout_ms = s->worker_http_timeout_secs * 1000,
                                .timeout_ms = s->worker_http_timeout_secs * 1000 };
    struct sb_httpc_resp resp = { 0 };
    int64_t t0 = sb_mono_ms();
    int rc = sb_httpc_do(&req, &resp, &err);
    bool wok = rc == 0 && resp.status >= 200 && resp.status < 300;
    json_t *w =
        json_pack("{s:s, s:b, s:I}", "url", url, "ok", wok, "ms", (json_int_t)(sb_mono_ms() - t0));
    if (rc)
        json_object_set_new(w, "error", json_string(err.msg));
    else
        json_object_set_new(w, "status", json_integer(resp.status));
    sb_httpc_resp_free(&resp);
    json_object_set_new(out, "worker", w);
    ok = ok && wok;
    json_object_set_new(out, "ok", json_boolean(ok));
    print_json(out);
    json_decref(out);
    return ok ? TALON_EXIT_OK : TALON_EXIT_FAIL;
}

/* How long `talon restart` waits: the new worker's startup budget, the old
 * one's drain, and a margin. */
static long restart_timeout_ms(const struct talon_settings *s)
{
    int64_t budget = s->worker_health_interval_secs * s->worker_health_failures_before_restart;
    if (budget < 15)
        budget = 15;
    return (long)(budget + s->worker_drain_timeout_secs + 60) * 1000;
}

int main(int argc, char **argv)
{
    struct talon_settings s;
    memset(&s, 0, sizeof s);
    sb_log_init("talon", SB_INFO, 2);
    char *pos[1];
    size_t npos = 0;
    struct sb_err err = { 0 };
    bool validate = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "validate") == 0)
            validate = true;
    int rc = talon_settings_load(&s, argc, argv, pos, &npos, &err);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(&talon_config_spec, stdout);
        talon_settings_free(&s);
        return TALON_EXIT_OK;
    }
    if (rc) {
        fprintf(stderr, "talon: %s\n", err.msg);
        talon_settings_free(&s);
        return validate ? TALON_EXIT_FAIL : TALON_EXIT_CONFIG;
    }
    sb_log_init("talon", sb_log_level_parse(s.log_level), 2);
    sb_config_warn_secret_flags(&talon_config_spec, argc, argv);
    const char *cmd = npos ? pos[0] : NULL;
    if (cmd && strcmp(cmd, "validate") == 0)
        rc = cmd_validate(&s);
    else if (cmd && strcmp(cmd, "restart") == 0)
        rc = call_talon(&s, "POST", "/restart", restart_timeout_ms(&s));
    else if (s.status)
        rc = call_talon(&s, "GET", "/health", (s.worker_http_timeout_secs + 5) * 1000);
    else if (!s.worker_command) {
        fprintf(stderr, "talon: [worker] command is not set (config file: %s)\n",
                s.config ? s.config : "none found");
        rc = TALON_EXIT_CONFIG;
    } else if (s.dry_run)
        rc = cmd_dry_run(&s);
    else if (s.check)
        rc = cmd_check(&s);
    else
        rc = talon_supervise(&s);
    talon_settings_free(&s);
    return rc;
}
