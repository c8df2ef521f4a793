/* cli.h - what the `secrets` command files share: the settings every
 * command's option table fills (main.c owns the tables and dispatch), the
 * commands themselves (cli.c: client commands; serve.c: serve and init) and
 * the one way they report a failure. */
#ifndef SECRETS_CLI_H
#define SECRETS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* Filled by sb_config_parse from the command's option table; strings are
 * owned by the config (sb_config_free). value is wiped before it is freed. */
struct secrets_opts {
    char *socket;
    int64_t timeout_ms;
    bool json;
    char *store;
    char *key_file;
    char *passphrase_file;
    char *value;
    char *ttl;
    char *client_id;
    bool all;
    int64_t tail;
    struct sb_strlist allow_uid, allow_gid;
    char *socket_group;
    int64_t client_timeout_ms;
    int64_t max_conns_per_uid;
    char *log_level;
};

/* argv after the command name, options removed. Each returns the exit code. */
typedef int (*secrets_cmd_fn)(struct secrets_opts *o, char **pos, size_t npos);

int secrets_cmd_add(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_lease(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_revoke(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_leases(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_list(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_rm(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_audit(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_status(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_serve(struct secrets_opts *o, char **pos, size_t npos);
int secrets_cmd_init(struct secrets_opts *o, char **pos, size_t npos);

/* Prints "secrets: <message>" on stderr; returns secrets_exit_code(code). */
int secrets_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for bad usage; returns 2. */
int secrets_usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The store directory: o->store, else $XDG_DATA_HOME/sysbus/secrets, else
 * $HOME/.local/share/sysbus/secrets. 0 or SB_ECONFIG. */
int secrets_store_dir(const struct secrets_opts *o, char *out, size_t outsz);

#endif
