/* metrics.h - sysbusd's counters and histograms, rendered as Prometheus text.
 * One global instance (sbd_metrics); every field is updated with atomic adds
 * from any thread, so there is no lock. */
#ifndef SBD_METRICS_H
#define SBD_METRICS_H

#include <stdint.h>

#include "common/buf.h"

#define SBD_HIST_BUCKETS 15

struct sbd_hist {
    uint64_t bucket[SBD_HIST_BUCKETS]; /* counts per upper bound (le), last = +Inf */
    uint64_t count;
    uint64_t sum_us;
};

struct sbd_metrics {
    uint64_t events_received, events_duplicate, events_emitted;
    uint64_t runs_started, runs_completed, runs_failed, runs_cancelled, runs_skipped;
    uint64_t calls_parked, runs_throttled, runs_timed_out, events_deferred;
    uint64_t step_calls, step_errors, transport_failures, use_api_calls;
    uint64_t http_requests, http_4xx, http_5xx;
    uint64_t syncs, sync_failures;
    uint64_t run_load_retries;    /* a run's state could not be read: its call waits */
    struct sbd_hist call_latency; /* request sent -> response received */
    struct sbd_hist step_handoff; /* response received -> next call sent (incl. commit) */
};

extern struct sbd_metrics sbd_metrics;

#define SBD_COUNT(field) __atomic_add_fetch(&sbd_metrics.field, 1, __ATOMIC_RELAXED)
#define SBD_COUNT_N(field, n) __atomic_add_fetch(&sbd_metrics.field, (n), __ATOMIC_RELAXED)

void sbd_hist_observe(struct sbd_hist *h, int64_t us);

struct sbd_gauges {
    int64_t queue_depth, inflight, running_runs, writer_backlog, uptime_s, http_suspended;
    uint64_t commits, commit_us_total;
};
/* Appends the Prometheus text exposition of the metrics and gauges to b. */
void sbd_metrics_render(struct sb_buf *b, const struct sbd_gauges *g);

#endif
