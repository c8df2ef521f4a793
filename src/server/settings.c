/* settings.c - the table of sysbusd settings (see settings.h). */
#include "settings.h"

#include <stddef.h>

#define S(field) offsetof(struct sbd_settings, field)
#define MS_DAY (86400000LL)

static const struct sb_opt opts[] = {
    { "config", SB_OPT_STR, S(config), NULL, "FILE",
      "Config file of 'name = value' lines (names as the flags)", SB_OPTF_CONFIGFILE, 0, 0, 0, NULL,
      'c' },
    { "host", SB_OPT_STR, S(host), "127.0.0.1", "ADDR", "Address to listen on", 0, 0, 0, 0, NULL,
      0 },
    { "port", SB_OPT_INT, S(port), "8288", "PORT", "Port to listen on (0 = any free port)", 0, 0,
      65535, 0, NULL, 'p' },
    { "data-dir", SB_OPT_STR, S(data_dir), ".sysbus", "DIR",
      "Directory of the SQLite store (created if missing): --store sqlite://DIR/sysbus.db", 0, 0, 0,
      0, NULL, 0 },
    { "store", SB_OPT_STR, S(store), NULL, "URL",
      "The store: sqlite:///absolute/path.db or sqlite://relative/path.db (relative to the "
      "working directory), or postgres://user@host:port/db?schema=NAME (builds with libpq; "
      "give a password in SYSBUS_STORE, --store-file or ~/.pgpass, not as a flag); without "
      "it, the SQLite store in --data-dir",
      SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "store-wait", SB_OPT_DURATION, S(store_wait_ms), "24h", "DURATION",
      "At start, how long to keep trying to reach a store whose server cannot be reached (a "
      "database still starting), with backoff, before giving up (exit 1); 0: give up at once. "
      "A bare number is seconds",
      0, 0, 30LL * 86400000, 1000, NULL, 0 },
    { "signing-key", SB_OPT_STR, S(signing_key), NULL, "KEY",
      "Signing key (signkey-<env>-<hex> or bare hex; workers may hold either form): signs "
      "calls to workers, authenticates workers and the REST API. Prefer the environment or "
      "--signing-key-file: a flag is visible to every user in the process list",
      SB_OPTF_SECRET | SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "signing-key-fallback", SB_OPT_STR, S(signing_key_fallback), NULL, "KEY",
      "Previous signing key during a rotation: still accepted from workers and the REST API; "
      "calls are signed with --signing-key",
      SB_OPTF_SECRET | SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "event-key", SB_OPT_LIST, S(event_keys), NULL, "KEY",
      "Event key accepted by POST /e/{key}; comma-separated in the environment",
      SB_OPTF_SECRET | SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "dev", SB_OPT_BOOL, S(dev), "false", NULL,
      "Development mode: no keys needed, calls unsigned, every endpoint open", 0, 0, 0, 0, NULL,
      0 },
    { "log-level", SB_OPT_STR, S(log_level), "info", "LEVEL", "debug, info, warn or error", 0, 0, 0,
      0, NULL, 0 },
    { "http-threads", SB_OPT_INT, S(http_threads), "2", "N", "HTTP server threads", 0, 1, 64, 0,
      NULL, 0 },
    { "max-body", SB_OPT_INT, S(max_body), "10485760", "BYTES",
      "Largest request body accepted (413 beyond)", 0, 1024, 1LL << 31, 0, NULL, 0 },
    { "http-max-conns-per-peer", SB_OPT_INT, S(http_max_conns_per_peer), "256", "N",
      "HTTP connections at once from one client address (4096 in all; behind a proxy or load "
      "balancer every client may share its address: raise it there)",
      0, 1, 4096, 0, NULL, 0 },
    { "http-header-timeout", SB_OPT_DURATION, S(http_header_timeout_ms), "30s", "DURATION",
      "A request's headers must be complete this long after its connection was accepted (or "
      "its previous response sent), however slowly they arrive; also the longest idle time "
      "of a kept-alive connection. A bare number is milliseconds",
      0, 100, 3600000, 1, NULL, 0 },
    { "http-body-timeout", SB_OPT_DURATION, S(http_body_timeout_ms), "60s", "DURATION",
      "A request's body must be complete this long after its headers. A bare number is "
      "milliseconds",
      0, 100, 3600000, 1, NULL, 0 },
    { "retry-base", SB_OPT_DURATION, S(retry_base_ms), "15s", "DURATION",
      "First retry delay; later ones follow Inngest's table (x2, x4, x8, x20 ... x480) plus "
      "jitter; a bare number is milliseconds",
      0, 1, 3600000, 1, NULL, 0 },
    { "transport-retry-window", SB_OPT_DURATION, S(transport_window_ms), "15m", "DURATION",
      "How long a worker that cannot be reached (refused, reset, 502/503/504) is retried "
      "without spending the function's retries",
      0, 0, 7 * MS_DAY, 1, NULL, 0 },
    { "transport-backoff-max", SB_OPT_DURATION, S(transport_backoff_max_ms), "5s", "DURATION",
      "Longest pause between transport retries", 0, 1, 3600000, 1, NULL, 0 },
    { "connect-timeout", SB_OPT_DURATION, S(connect_timeout_ms), "5s", "DURATION",
      "Connect timeout for calls to workers", 0, 1, 600000, 1, NULL, 0 },
    { "call-timeout", SB_OPT_DURATION, S(call_timeout_ms), "2h", "DURATION",
      "Response timeout for one call to a worker (a step may run this long)", 0, 1, 7 * MS_DAY, 1,
      NULL, 0 },
    { "orphan-hold", SB_OPT_DURATION, S(orphan_hold_ms), "5m", "DURATION",
      "After a restart, how long a call that was in flight when sysbusd stopped keeps its "
      "concurrency slot (the worker may still be running it; at most --call-timeout)",
      0, 0, 7 * MS_DAY, 1, NULL, 0 },
    { "max-inflight", SB_OPT_INT, S(max_inflight), "256", "N", "Calls to workers in flight at once",
      0, 1, 100000, 0, NULL, 0 },
    { "sync-interval", SB_OPT_DURATION, S(sync_interval_ms), "5s", "DURATION",
      "How often known app URLs are re-synced (0 = never)", 0, 0, MS_DAY, 1, NULL, 0 },
    { "retention", SB_OPT_DURATION, S(retention_ms), "7d", "DURATION",
      "How long ended runs, their steps and events are kept", 0, 1000, 3650 * MS_DAY, 0, NULL, 0 },
    { "purge-interval", SB_OPT_DURATION, S(purge_interval_ms), "1m", "DURATION",
      "How often the retention purge runs", 0, 10, MS_DAY, 1, NULL, 0 },
    { "max-batch", SB_OPT_INT, S(max_batch), "4096", "N", "Most operations in one group commit", 0,
      1, 100000, 0, NULL, 0 },
    { "metrics-public", SB_OPT_BOOL, S(metrics_public), "false", NULL,
      "Serve /metrics without the signing key", 0, 0, 0, 0, NULL, 0 },
    { "checkpoint", SB_OPT_BOOL, S(checkpoint), "true", NULL,
      "Let v4 SDKs run several steps per call, reporting each step through POST "
      "/v1/checkpoint/{runId}/async (--no-checkpoint: one step per call)",
      0, 0, 0, 0, NULL, 0 },
    { "env-name", SB_OPT_STR, S(env_name), "production", "NAME",
      "Environment name sent to workers as ctx.env", 0, 0, 0, 0, NULL, 0 },
};

const struct sb_config_spec sbd_config_spec = {
    .prog = "sysbusd",
    .env_prefix = "SYSBUS",
    .usage = "sysbusd [OPTIONS]\n"
             "       sysbusd backup|restore|migrate --help",
    .summary = "The sysbus durable execution server. Receives events (POST /e/{key}), registers\n"
               "apps (POST /fn/register), runs their functions step by step over HTTP, stores\n"
               "every step's output in its store (SQLite or PostgreSQL), and serves a REST API\n"
               "(/v1/...), /health and /metrics. Without --dev it needs a signing key and an\n"
               "event key.",
    .footer = "Exit codes: 0 stopped cleanly; 1 runtime failure; 2 bad usage or configuration\n"
              "(do not restart without changing it); 3 the store is newer than this binary, or\n"
              "another sysbusd writes it.\n"
              "Docs: docs/sysbusd.md",
    .opts = opts,
    .nopts = sizeof opts / sizeof opts[0],
};
