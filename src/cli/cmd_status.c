/* cmd_status.c - `sysbus status`: every part of the system, each check with
 * a short timeout and its latency; ok only when every check is ok (exit 1
 * otherwise). Checks: sysbusd's /health; each registered app's worker (its
 * serve URL answers, last sync and sync error); talon's /health when
 * SYSBUS_TALON_URL or --talon is set; the worker Deployment's ready
 * replicas when kubectl is installed and has a current context. */
#include "cli.h"
#include "common/json.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static json_t *check(const char *name, bool ok, double ms, const char *detail)
{
    return json_pack("{s:s, s:b, s:f, s:s}", "name", name, "ok", ok, "latency_ms",
                     (double)(long)(ms * 10) / 10, "detail", detail ? detail : "");
}

/* Runs argv with a time limit; its stdout into out. 0 = exit 0. */
static int run_cmd(char *const argv[], int timeout_s, char *out, size_t outsz)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2); /* its complaints become our check's detail */
        close(fd[0]);
        close(fd[1]);
        alarm((unsigned)timeout_s); /* never hangs: SIGALRM ends it */
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < outsz && (k = read(fd[0], out + n, outsz - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[1024];
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path = colon ? colon + 1 : NULL;
    }
    return false;
}

static void kube_check(struct cli *c, json_t *checks, const char *ns, const char *deploy)
{
    if (!in_path("kubectl"))
        return;
    char out[65536];
    char *ctx_argv[] = { "kubectl", "config", "current-context", NULL };
    if (run_cmd(ctx_argv, 2, out, sizeof out) != 0)
        return; /* no cluster configured: not part of this system */
    char *argv[] = { "kubectl",  "get", "deployment", (char *)deploy,         "-n",
                     (char *)ns, "-o",  "json",       "--request-timeout=2s", NULL };
    int rc = run_cmd(argv, 4, out, sizeof out);
    json_t *d = rc == 0 ? json_loads(out, 0, NULL) : NULL;
    json_int_t want = json_integer_value(json_object_get(json_object_get(d, "spec"), "replicas"));
    json_int_t ready =
        json_integer_value(json_object_get(json_object_get(d, "status"), "readyReplicas"));
    char detail[200];
    if (!d)
        snprintf(detail, sizeof detail, "kubectl get deployment %s -n %s failed", deploy, ns);
    else
        snprintf(detail, sizeof detail, "%lld/%lld replicas ready", (long long)ready,
                 (long long)want);
    bool ok = d && want > 0 && ready >= want;
    json_array_append_new(checks, check("kubernetes", ok, 0, detail));
    if (!ok)
        cli_next(c, "see why the pods are not ready", "kubectl -n %s describe deployment %s", ns,
                 deploy);
    json_decref(d);
}

/* One registered app's worker: its health endpoint (GET / on its origin, as
 * system-bus-worker serves it), else its serve URL; ok when it answers and,
 * when it reports a status, that status is running or ok. */
static void worker_check(struct cli *c, json_t *checks, json_t *app, long timeout_ms)
{
    const char *url = sb_json_str(app, "url");
    const char *sync_error = sb_json_str(app, "sync_error");
    char health[600];
    const char *slash = url ? strchr(url + (strncmp(url, "https://", 8) ? 7 : 8), '/') : NULL;
    snprintf(health, sizeof health, "%.*s/",
             (int)(slash ? slash - url : (long)strlen(url ? url : "")), url ? url : "");
    struct api_res p;
    const char *probed = health;
    int prc = cli_probe(health, timeout_ms, &p);
    const char *hstatus = prc == 0 ? sb_json_str(p.json, "status") : NULL;
    if (prc != 0 || !hstatus) { /* no health endpoint: the serve URL answers? */
        api_res_free(&p);
        probed = url;
        prc = cli_probe(url, timeout_ms, &p);
    }
    char name[300], detail[900];
    snprintf(name, sizeof name, "worker %s", sb_json_str(app, "id"));
    snprintf(detail, sizeof detail, "%s%s%s; last sync %s%s%s", prc == 0 ? probed : p.message,
             hstatus ? " status " : "", hstatus ? hstatus : "",
             sb_json_str(app, "synced_at") ? sb_json_str(app, "synced_at") : "never",
             sync_error ? "; sync error: " : "", sync_error ? sync_error : "");
    bool ok =
        prc == 0 && (!hstatus || strcmp(hstatus, "running") == 0 || strcmp(hstatus, "ok") == 0);
    json_array_append_new(checks, check(name, ok, p.ms, detail));
    if (prc != 0)
        cli_next(c, "re-sync or prune the unreachable apps", "sysbus refresh --all");
    api_res_free(&p);
}

/* sysbusd's /health and, when it answers, every registered app's worker. */
static void server_checks(struct cli *c, json_t *checks, long timeout_ms)
{
    struct api_res r;
    int rc = cli_api(c, "GET", "/health", NULL, &r);
    json_array_append_new(checks, check("sysbusd", rc == 0, r.ms, rc == 0 ? c->url : r.message));
    api_res_free(&r);
    if (rc != 0) {
        cli_next(c, "start the server", "sysbusd --dev");
        return;
    }
    if (cli_api(c, "GET", "/v1/apps", NULL, &r) != 0) {
        json_array_append_new(checks, check("apps", false, r.ms, r.message));
        api_res_free(&r);
        return;
    }
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r.json, "data"), i, a)
        worker_check(c, checks, a, timeout_ms);
    api_res_free(&r);
}

static void talon_check(json_t *checks, const char *talon, long timeout_ms)
{
    char url[600];
    snprintf(url, sizeof url, "%s/health", talon);
    struct api_res p;
    int prc = cli_probe(url, timeout_ms, &p);
    json_array_append_new(checks, check("talon", prc == 0, p.ms, prc == 0 ? url : p.message));
    api_res_free(&p);
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    const char *talon = getenv("SYSBUS_TALON_URL"), *timeout = "1500";
    const char *ns = "joelclaw", *deploy = "system-bus-worker";
    for (int i = 0; i < argc; i++) {
        int o = cli_opt(argc, argv, &i, "--talon", &talon);
        if (!o)
            o = cli_opt(argc, argv, &i, "--check-timeout", &timeout);
        if (!o)
            o = cli_opt(argc, argv, &i, "--namespace", &ns);
        if (!o)
            o = cli_opt(argc, argv, &i, "--deployment", &deploy);
        if (o <= 0)
            return cli_usage(c, o < 0 ? "option needs a value" : "unknown option", argv[i]);
    }
    long t = cli_num(timeout, 60000);
    if (t < 0)
        return cli_usage(c, "--check-timeout must be 1..60000 ms", timeout);
    long saved = c->timeout_ms;
    c->timeout_ms = t;
    json_t *checks = json_array();
    server_checks(c, checks, t);
    if (talon && *talon)
        talon_check(checks, talon, t);
    kube_check(c, checks, ns, deploy);
    c->timeout_ms = saved;
    if (cli_checks_ok(checks))
        cli_next(c, "recent runs", "sysbus runs --count 3");
    return cli_checks_done(c, checks, "see the failed checks in error.details.checks",
                           "not every check is ok");
}
