/* metrics.c - Prometheus rendering of sbd_metrics (see metrics.h). */
#include "metrics.h"

#include <stddef.h>

struct sbd_metrics sbd_metrics;

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const int64_t bounds_us[SBD_HIST_BUCKETS - 1] = {
    100,   250,   500,    1000,   2500,    5000,    10000,
    25000, 50000, 100000, 250000, 1000000, 5000000, 30000000,
};

void sbd_hist_observe(struct sbd_hist *h, int64_t us)
{
    int i = 0;
    while (i < SBD_HIST_BUCKETS - 1 && us > bounds_us[i])
        i++;
    __atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_us, (uint64_t)(us > 0 ? us : 0), __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void counter(struct sb_buf *b, const char *name, const char *help, const uint64_t *v)
{
    sb_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                  (unsigned long long)load(v));
}

static void gauge(struct sb_buf *b, const char *name, const char *help, int64_t v)
{
    sb_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
                  (long long)v);
}

static void hist(struct sb_buf *b, const char *name, const char *help, const struct sbd_hist *h)
{
    sb_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < SBD_HIST_BUCKETS; i++) {
        cum += load(&h->bucket[i]);
        if (i < SBD_HIST_BUCKETS - 1)
            sb_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds_us[i] / 1e6,
                          (unsigned long long)cum);
        else
            sb_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    sb_buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, (double)load(&h->sum_us) / 1e6, name,
                  (unsigned long long)load(&h->count));
}

void sbd_metrics_render(struct sb_buf *b, const struct sbd_gauges *g)
{
    struct sbd_metrics *m = &sbd_metrics;
    counter(b, "sysbus_events_received_total", "Events accepted by the event API",
            &m->events_received);
    counter(b, "sysbus_events_duplicate_total", "Events dropped as duplicates (idempotent sends)",
            &m->events_duplicate);
    counter(b, "sysbus_events_emitted_total",
            "Events sysbusd emitted itself (inngest/function.finished, .failed, .cancelled)",
            &m->events_emitted);
    counter(b, "sysbus_runs_started_total", "Runs created", &m->runs_started);
    counter(b, "sysbus_runs_skipped_total",
            "Runs not started by flow control (idempotency, rateLimit, singleton skip)",
            &m->runs_skipped);
    counter(b, "sysbus_events_deferred_total",
            "Events held by a debounce or a batch (the run starts when it is due)",
            &m->events_deferred);
    counter(b, "sysbus_calls_parked_total",
            "Calls held back by a concurrency limit until a call of the same key ended",
            &m->calls_parked);
    counter(b, "sysbus_runs_throttled_total", "Run starts delayed by a throttle",
            &m->runs_throttled);
    counter(b, "sysbus_runs_timed_out_total", "Runs cancelled by timeouts.start or timeouts.finish",
            &m->runs_timed_out);
    counter(b, "sysbus_runs_completed_total", "Runs completed", &m->runs_completed);
    counter(b, "sysbus_runs_failed_total", "Runs failed", &m->runs_failed);
    counter(b, "sysbus_runs_cancelled_total", "Runs cancelled", &m->runs_cancelled);
    counter(b, "sysbus_step_calls_total", "Calls made to workers", &m->step_calls);
    counter(b, "sysbus_run_load_retries_total",
            "Calls put off because the run's state could not be read from the store",
            &m->run_load_retries);
    counter(b, "sysbus_use_api_calls_total",
            "Calls too large to carry the run's state (the worker fetched it, ctx.use_api)",
            &m->use_api_calls);
    counter(b, "sysbus_step_errors_total", "Calls answered with a function or step error",
            &m->step_errors);
    counter(b, "sysbus_transport_failures_total",
            "Calls that could not reach a worker (refused, reset, timeout, 502/503/504)",
            &m->transport_failures);
    counter(b, "sysbus_http_requests_total", "HTTP requests served", &m->http_requests);
    counter(b, "sysbus_http_client_errors_total", "HTTP requests answered 4xx", &m->http_4xx);
    counter(b, "sysbus_http_server_errors_total", "HTTP requests answered 5xx", &m->http_5xx);
    counter(b, "sysbus_app_syncs_total", "App syncs (registrations) accepted", &m->syncs);
    counter(b, "sysbus_app_sync_failures_total", "App sync PUTs that failed", &m->sync_failures);
    hist(b, "sysbus_call_latency_seconds", "Latency of calls to workers", &m->call_latency);
    hist(b, "sysbus_step_handoff_seconds",
         "From a step's response to the next call of the run (includes the durable commit)",
         &m->step_handoff);
    gauge(b, "sysbus_queue_depth", "Calls due or scheduled (queue items)", g->queue_depth);
    gauge(b, "sysbus_calls_inflight", "Calls to workers in flight", g->inflight);
    gauge(b, "sysbus_runs_running", "Runs not yet ended", g->running_runs);
    gauge(b, "sysbus_store_writer_backlog", "Write operations waiting for commit",
          g->writer_backlog);
    gauge(b, "sysbus_uptime_seconds", "Seconds since start", g->uptime_s);
    gauge(b, "sysbus_http_suspended_requests",
          "Requests waiting for an answer (group commit, long-poll, sync)", g->http_suspended);
    sb_buf_printf(b,
                  "# HELP sysbus_store_commits_total Group commits\n"
                  "# TYPE sysbus_store_commits_total counter\nsysbus_store_commits_total %llu\n",
                  (unsigned long long)g->commits);
    sb_buf_printf(b,
                  "# HELP sysbus_store_commit_seconds_total Time spent in group commits\n"
                  "# TYPE sysbus_store_commit_seconds_total counter\n"
                  "sysbus_store_commit_seconds_total %.6f\n",
                  (double)g->commit_us_total / 1e6);
}
