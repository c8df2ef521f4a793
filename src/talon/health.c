/* health.c - talon's health server (see health.h). h->lock guards worker,
 * pending and closing; claimed belongs to the main loop. */
#include "talon/health.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_WAITERS 64

struct talon_health {
    struct sb_httpd *httpd;
    struct talon_watchdog *wd;
    int wake_fd;
    pthread_mutex_t lock;
    json_t *worker;
    struct sb_req *pending[MAX_WAITERS];
    size_t npending;
    bool closing;
    struct sb_req *claimed[MAX_WAITERS]; /* main loop only */
    size_t nclaimed;
};

json_t *talon_health_doc(struct talon_health *h, int *ok)
{
    pthread_mutex_lock(&h->lock);
    json_t *w = h->worker ? json_deep_copy(h->worker) : json_object();
    pthread_mutex_unlock(&h->lock);
    json_t *doc = h->wd ? talon_watchdog_snapshot(h->wd) : NULL;
    if (!doc)
        doc = json_pack("{s:s, s:i, s:i, s:i, s:[], s:I}", "state", h->wd ? "Unknown" : "Disabled",
                        "consecutive_failures", 0, "probe_count", 0, "failed_probe_count", 0,
                        "failed_probes", "updated_at_unix", (json_int_t)(sb_now_ms() / 1000));
    json_object_update(doc, w);
    json_decref(w);
    const char *wstate = sb_json_str(doc, "worker_state");
    const char *state = sb_json_str(doc, "state");
    *ok = wstate && strcmp(wstate, "running") == 0 && state && strcmp(state, "Failed") != 0 &&
          strcmp(state, "Critical") != 0;
    json_object_set_new(doc, "ok", json_boolean(*ok));
    json_object_set_new(doc, "watchdog", json_boolean(h->wd != NULL));
    return doc;
}

static void h_health(struct sb_req *req)
{
    struct talon_health *h = sb_req_app(req);
    int ok;
    json_t *doc = talon_health_doc(h, &ok);
    sb_reply_json(req, ok ? 200 : 503, doc);
}

static bool loopback(const char *peer)
{
    return strcmp(peer, "127.0.0.1") == 0 || strncmp(peer, "127.", 4) == 0 ||
           strcmp(peer, "::1") == 0 || strncmp(peer, "::ffff:127.", 11) == 0;
}

static void h_restart(struct sb_req *req)
{
    struct talon_health *h = sb_req_app(req);
    const char *peer = sb_req_peer(req);
    if (!loopback(peer)) {
        sb_reply_error(req, 403, "FORBIDDEN", "restart is only accepted from loopback (not %s)",
                       peer);
        return;
    }
    /* A web page cannot send this without a CORS preflight, so a browser on
     * the host cannot trigger restarts. */
    const char *ct = sb_req_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        sb_reply_error(
            req, 415, "UNSUPPORTED_MEDIA_TYPE",
            "POST /restart takes Content-Type: application/json (talon restart sends it)");
        return;
    }
    sb_req_suspend(req);
    pthread_mutex_lock(&h->lock);
    bool queued = !h->closing && h->npending < MAX_WAITERS;
    if (queued)
        h->pending[h->npending++] = req;
    pthread_mutex_unlock(&h->lock);
    if (!queued) {
        sb_reply_error(req, 503, "UNAVAILABLE", "talon is stopping or too many restarts wait");
        return;
    }
    uint64_t one = 1;
    ssize_t w = write(h->wake_fd, &one, sizeof one);
    (void)w;
}

static const struct sb_route routes[] = {
    { "GET", "/health", h_health, 0, 0 },
    { "POST", "/restart", h_restart, 0, 4096 },
};

int talon_health_start(const char *host, int port, struct talon_watchdog *wd,
                       struct talon_health **out, struct sb_err *err)
{
    struct talon_health *h = calloc(1, sizeof *h);
    if (!h)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    h->wd = wd;
    pthread_mutex_init(&h->lock, NULL);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->wake_fd < 0) {
        int rc = sb_err_errno(err, SB_EIO, "eventfd");
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    struct sb_httpd_config cfg = { .host = host,
                                   .port = port,
                                   .threads = 2,
                                   .body_max = 4096,
                                   .idle_timeout_s = 60,
                                   .routes = routes,
                                   .nroutes = sizeof routes / sizeof routes[0],
                                   .app = h };
    int rc = sb_httpd_start(&cfg, &h->httpd, err);
    if (rc) {
        close(h->wake_fd);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int talon_health_port(const struct talon_health *h)
{
    return sb_httpd_port(h->httpd);
}

void talon_health_publish(struct talon_health *h, json_t *worker_status)
{
    pthread_mutex_lock(&h->lock);
    json_decref(h->worker);
    h->worker = worker_status;
    pthread_mutex_unlock(&h->lock);
}

int talon_health_wake_fd(const struct talon_health *h)
{
    return h->wake_fd;
}

size_t talon_health_claim(struct talon_health *h)
{
    uint64_t v;
    while (read(h->wake_fd, &v, sizeof v) > 0)
        ;
    pthread_mutex_lock(&h->lock);
    size_t n = 0;
    while (h->npending && h->nclaimed < MAX_WAITERS) {
        h->claimed[h->nclaimed++] = h->pending[--h->npending];
        n++;
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

void talon_health_restart_done(struct talon_health *h, json_t *outcome)
{
    bool ok = json_is_true(json_object_get(outcome, "ok"));
    bool busy = json_is_true(json_object_get(outcome, "busy"));
    bool stopping = json_is_true(json_object_get(outcome, "stopping"));
    int status = ok ? 200 : busy ? 409 : stopping ? 503 : 500;
    for (size_t i = 0; i < h->nclaimed; i++)
        sb_reply_json(h->claimed[i], status, json_deep_copy(outcome));
    h->nclaimed = 0;
}

void talon_health_stop(struct talon_health *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->closing = true;
    while (h->npending && h->nclaimed < MAX_WAITERS)
        h->claimed[h->nclaimed++] = h->pending[--h->npending];
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < h->nclaimed; i++)
        sb_reply_error(h->claimed[i], 503, "STOPPING", "talon is shutting down");
    if (h->nclaimed)
        sb_sleep_ms(200); /* let MHD send those answers before it closes */
    h->nclaimed = 0;
    sb_httpd_stop(h->httpd);
    close(h->wake_fd);
    json_decref(h->worker);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
