/* settings.h - sysbusd's settings: one declarative table (settings.c) drives
 * flags, SYSBUS_* environment variables, the config file and --help. */
#ifndef SBD_SETTINGS_H
#define SBD_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct sbd_settings {
    char *config;
    char *host;
    int64_t port;
    char *data_dir;
    char *store; /* store URL; NULL: sqlite://<data_dir>/sysbus.db */
    int64_t store_wait_ms; /* at start, how long to keep trying a store that cannot be reached */
    char *signing_key;
    char *signing_key_fallback; /* still accepted from workers during a rotation */
    struct sb_strlist event_keys;
    bool dev;
    char *log_level;
    int64_t http_threads;
    int64_t max_body; /* bytes, request bodies */
    int64_t http_max_conns_per_peer;
    int64_t http_header_timeout_ms; /* ready -> request headers complete */
    int64_t http_body_timeout_ms;   /* headers -> whole body */
    int64_t retry_base_ms;          /* first retry delay; the table scales from it */
    int64_t transport_window_ms;    /* how long transport failures are retried for free */
    int64_t transport_backoff_max_ms;
    int64_t connect_timeout_ms;
    int64_t call_timeout_ms;
    int64_t orphan_hold_ms;
    int64_t max_inflight;
    int64_t sync_interval_ms; /* 0 = no periodic re-sync */
    int64_t retention_ms;
    int64_t purge_interval_ms;
    int64_t max_batch; /* operations per group commit */
    bool metrics_public;
    char *env_name;  /* ctx.env sent to workers */
    bool checkpoint; /* offer v4 checkpointing (ctx.fn_id) */
};

extern const struct sb_config_spec sbd_config_spec;

#endif
