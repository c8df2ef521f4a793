/* health.c - GET /health (JSON), GET /metrics (Prometheus text), GET /dev
 * (answered so that inngest v3 SDKs probing for a dev server find JSON). */
#include "api.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "server/engine/engine.h"
#include "server/metrics.h"
#include "server/sbd.h"
#include "server/store/store.h"
#include "server/store/writer.h"

#include <stdlib.h>

void h_health(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    struct sbd_store *st = sbd_store_reader();
    int64_t queue_rows = -1, running = -1;
    bool store_ok = st && sbd_store_counts(st, &queue_rows, &running, NULL) == 0 && queue_rows >= 0;
    struct sbd_engine_stats es;
    sbd_engine_stats(sbd->engine, &es);
    json_t *o = json_pack(
        "{s:b, s:s, s:s, s:I, s:s, s:{s:b, s:s, s:i, s:s}, s:{s:I, s:I, s:I, s:I}}", "ok", store_ok,
        "service", "sysbusd", "version", SB_VERSION, "uptime_s",
        (json_int_t)((sb_now_ms() - sbd->started_at_ms) / 1000), "mode",
        sbd->cfg.dev ? "dev" : "signed", "store", "ok", store_ok, "kind",
        sbd_store_kind() ? sbd_store_kind() : "none", "schema_version", SBD_STORE_SCHEMA_VERSION,
        "data_dir", sbd->cfg.data_dir, "queue", "depth", (json_int_t)es.queue_items, "inflight",
        (json_int_t)es.inflight, "runs_running", (json_int_t)running, "writer_backlog",
        (json_int_t)sbd_writer_backlog(sbd->writer));
    if (o && sbd->bus_id[0]) /* the bus the data directory is bound to (busid.h) */
        json_object_set_new(json_object_get(o, "store"), "bus_id", json_string(sbd->bus_id));
    sb_reply_json(req, store_ok ? 200 : 503, o);
}

void h_metrics(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    struct sbd_engine_stats es;
    sbd_engine_stats(sbd->engine, &es);
    struct sbd_writer_stats ws;
    sbd_writer_stats(sbd->writer, &ws);
    struct sbd_gauges g = { .queue_depth = es.queue_items,
                            .inflight = es.inflight,
                            .running_runs = es.runs,
                            .writer_backlog = (int64_t)sbd_writer_backlog(sbd->writer),
                            .uptime_s = (sb_now_ms() - sbd->started_at_ms) / 1000,
                            .http_suspended = sb_httpd_suspended(sbd->httpd),
                            .commits = ws.batches,
                            .commit_us_total = ws.commit_us_total };
    struct sb_buf b = SB_BUF_INIT(0); /* sysbusd's own counters: a fixed set, no input */
    sbd_metrics_render(&b, &g);
    size_t len;
    char *text = sb_buf_steal(&b, &len);
    sb_reply_raw(req, 200, "text/plain; version=0.0.4", text, len);
}

void h_dev(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    sb_reply_json(req, 200,
                  json_pack("{s:s, s:s, s:b}", "service", "sysbusd", "version", SB_VERSION, "dev",
                            sbd->cfg.dev));
}
