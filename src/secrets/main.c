/* main.c - `secrets`: the command table (each command's option table, usage
 * and help text, built on the shared config loader) and dispatch. The
 * commands are in cli.c (client) and serve.c (serve, init). See
 * docs/secrets.md. */
#include "secrets/cli.h"
#include "secrets/client.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#ifndef SB_VERSION
#define SB_VERSION "dev"
#endif

#define O(field) offsetof(struct secrets_opts, field)
#define OPT_SOCKET                                                                         \
    {                                                                                      \
        .name = "socket", .type = SB_OPT_STR, .offset = O(socket), .metavar = "PATH",      \
        .help = "The daemon's socket (default $XDG_RUNTIME_DIR/sysbus/secrets.sock, else " \
                "/run/sysbus/secrets.sock)"                                                \
    }
#define OPT_TIMEOUT                                                                             \
    {                                                                                           \
        .name = "timeout", .type = SB_OPT_DURATION, .offset = O(timeout_ms), .def = "5s",       \
        .metavar = "DURATION",                                                                  \
        .help = "Give up on the daemon after this long (30s, 500ms; a bare number is seconds)", \
        .min = 1, .max = 3600000, .bare_unit_ms = 1000                                          \
    }
#define OPT_JSON                                                                  \
    {                                                                             \
        .name = "json", .type = SB_OPT_BOOL, .offset = O(json), .def = "false",   \
        .help = "Print one JSON document instead of text", .flags = SB_OPTF_NOENV \
    }
#define OPT_CLIENT_ID                                                                     \
    {                                                                                     \
        .name = "client-id", .type = SB_OPT_STR, .offset = O(client_id), .metavar = "ID", \
        .help = "Who is asking, recorded in leases and the audit trail (default cli)"     \
    }
#define OPT_STORE                                                                  \
    {                                                                              \
        .name = "store", .type = SB_OPT_STR, .offset = O(store), .metavar = "DIR", \
        .help = "Store directory (default $XDG_DATA_HOME/sysbus/secrets, else "    \
                "~/.local/share/sysbus/secrets)"                                   \
    }
#define OPT_KEY_FILE                                                                      \
    {                                                                                     \
        .name = "key-file", .type = SB_OPT_STR, .offset = O(key_file), .metavar = "FILE", \
        .help = "Master key file, 32 bytes, mode 0600 (default STORE/master.key)"         \
    }
#define OPT_PASSPHRASE                                                                         \
    {                                                                                          \
        .name = "passphrase-file", .type = SB_OPT_STR, .offset = O(passphrase_file),           \
        .metavar = "FILE",                                                                     \
        .help = "File whose first line is the store's passphrase (Argon2id); a passphrase is " \
                "never taken from the command line"                                            \
    }

static const struct sb_opt add_opts[] = {
    { .name = "value",
      .type = SB_OPT_STR,
      .offset = O(value),
      .metavar = "V",
      .help = "The value. Visible to other users in the process list and kept in shell "
              "history: prefer stdin",
      .flags = SB_OPTF_NOENV | SB_OPTF_SECRET },
    OPT_CLIENT_ID,
    OPT_SOCKET,
    OPT_TIMEOUT,
    OPT_JSON,
};
static const struct sb_opt lease_opts[] = {
    { .name = "ttl",
      .type = SB_OPT_STR,
      .offset = O(ttl),
      .metavar = "TTL",
      .help = "How long the lease lasts: 30s, 20m, 1h, 24h or bare seconds (default 1h, at "
              "most 24h)",
      .flags = SB_OPTF_NOENV },
    OPT_CLIENT_ID,
    OPT_SOCKET,
    OPT_TIMEOUT,
    OPT_JSON,
};
static const struct sb_opt revoke_opts[] = {
    { .name = "all",
      .type = SB_OPT_BOOL,
      .offset = O(all),
      .def = "false",
      .help = "Revoke every active lease (the killswitch)",
      .flags = SB_OPTF_NOENV },
    OPT_CLIENT_ID,
    OPT_SOCKET,
    OPT_TIMEOUT,
    OPT_JSON,
};
static const struct sb_opt plain_opts[] = { OPT_SOCKET, OPT_TIMEOUT, OPT_JSON };
static const struct sb_opt rm_opts[] = { OPT_CLIENT_ID, OPT_SOCKET, OPT_TIMEOUT, OPT_JSON };
static const struct sb_opt audit_opts[] = {
    { .name = "tail",
      .type = SB_OPT_INT,
      .offset = O(tail),
      .metavar = "N",
      .help = "Only the last N entries (1..10000; default all, at most the last 10000)",
      .flags = SB_OPTF_NOENV,
      .min = 1,
      .max = 10000 },
    OPT_SOCKET,
    OPT_TIMEOUT,
};
static const struct sb_opt init_opts[] = { OPT_STORE, OPT_KEY_FILE, OPT_PASSPHRASE, OPT_JSON };
static const struct sb_opt serve_opts[] = {
    OPT_SOCKET,
    OPT_STORE,
    OPT_KEY_FILE,
    OPT_PASSPHRASE,
    { .name = "allow-uid",
      .type = SB_OPT_LIST,
      .offset = O(allow_uid),
      .metavar = "UID",
      .help = "A user (number or name) allowed to connect (default: the daemon's own uid "
              "only; root is not implied)" },
    { .name = "allow-gid",
      .type = SB_OPT_LIST,
      .offset = O(allow_gid),
      .metavar = "GID",
      .help = "A group (number or name) whose members may connect (the peer's primary group, "
              "as SO_PEERCRED reports it)" },
    { .name = "socket-group",
      .type = SB_OPT_STR,
      .offset = O(socket_group),
      .metavar = "GROUP",
      .help = "Group owner of the socket file (mode 0660), so that group can reach it" },
    { .name = "client-timeout",
      .type = SB_OPT_DURATION,
      .offset = O(client_timeout_ms),
      .def = "5s",
      .metavar = "DURATION",
      .help = "A connection must send its request and take its answer within this",
      .min = 10,
      .max = 600000,
      .bare_unit_ms = 1000 },
    { .name = "max-conns-per-uid",
      .type = SB_OPT_INT,
      .offset = O(max_conns_per_uid),
      .def = "16",
      .metavar = "N",
      .help = "Connections one uid may hold at once (of 64 in all; the last 4 are kept for "
              "the daemon's own uid and root)",
      .min = 1,
      .max = 64 },
    { .name = "log-level",
      .type = SB_OPT_STR,
      .offset = O(log_level),
      .def = "info",
      .metavar = "LEVEL",
      .help = "debug, info, warn or error" },
};

#define EXIT_CODES                                                                              \
    "Exit codes: 0 ok; 1 error (not found, refused, store problem); 2 bad usage; 64 bad data\n" \
    "(name, value, TTL above 24h); 65 timeout; 66 I/O error; 67 protocol error; 69 daemon\n"    \
    "unavailable; 70 internal error."

struct command {
    const char *name;
    secrets_cmd_fn run;
    size_t minpos, maxpos;
    const struct sb_opt *opts;
    size_t nopts;
    const char *usage;
    const char *summary;
    const char *details; /* printed before the exit codes */
};

#define OPTS(a) a, sizeof a / sizeof a[0]
static const struct command commands[] = {
    { "init", secrets_cmd_init, 0, 0, OPTS(init_opts),
      "secrets init [--store DIR] [--key-file FILE | --passphrase-file FILE] [--json]",
      "create an empty encrypted store and its key",
      "Creates STORE (mode 0700) with an empty store and a new random 32-byte key file\n"
      "(mode 0600), or, with --passphrase-file, a store whose key is derived from the\n"
      "passphrase with Argon2id (no key file). Refuses to overwrite an existing store or key." },
    { "serve", secrets_cmd_serve, 0, 0, OPTS(serve_opts),
      "secrets serve [--socket PATH] [--store DIR] [--allow-uid UID]... [--allow-gid GID]...",
      "run the daemon",
      "Serves the store on a Unix socket (mode 0660; its directory is created 0750 if\n"
      "missing) until SIGTERM or SIGINT, then removes the socket. Peers are checked with\n"
      "SO_PEERCRED against --allow-uid/--allow-gid when they connect; one refused is\n"
      "answered UNAUTHORIZED and closed at once. Logs JSON lines on stderr." },
    { "add", secrets_cmd_add, 1, 1, OPTS(add_opts),
      "secrets add <name> [--value V] [--client-id ID] [--json]",
      "store a secret (value from the first line of stdin)",
      "Stores <name> ([A-Za-z0-9_.-], 1-128 bytes), replacing its value if it exists. The\n"
      "value is the first line of stdin (prompted for, without echo, on a terminal) unless\n"
      "--value is given; 1 byte to 64 KiB of UTF-8; an empty value is refused (exit 64)." },
    { "lease", secrets_cmd_lease, 1, 1, OPTS(lease_opts),
      "secrets lease <name> [--ttl 1h] [--client-id ID] [--json]",
      "lease a secret: print its value",
      "Prints the value with no trailing newline, or with --json {lease_id, secret_name,\n"
      "value, expires_at, ttl, client_id}. A TTL above 24h is refused (exit 64) and audited." },
    { "revoke", secrets_cmd_revoke, 0, 1, OPTS(revoke_opts),
      "secrets revoke <lease-id> | secrets revoke --all", "revoke a lease, or every lease",
      "An unknown or expired lease is not found (exit 1). --all is the killswitch: every\n"
      "active lease is revoked, and that is audited." },
    { "leases", secrets_cmd_leases, 0, 0, OPTS(plain_opts), "secrets leases [--json]",
      "active leases (never values)", NULL },
    { "list", secrets_cmd_list, 0, 0, OPTS(plain_opts), "secrets list [--json]",
      "secret names with created/updated times and active lease counts (never values)", NULL },
    { "rm", secrets_cmd_rm, 1, 1, OPTS(rm_opts), "secrets rm <name> [--json]",
      "delete a secret (its active leases are revoked)", NULL },
    { "audit", secrets_cmd_audit, 0, 0, OPTS(audit_opts), "secrets audit [--tail N]",
      "the audit trail, one JSON object per line",
      "Fields: timestamp, action, secret_name, client_id, lease_id, success, peer_uid,\n"
      "peer_pid, and reason when success is false." },
    { "status", secrets_cmd_status, 0, 0, OPTS(plain_opts), "secrets status [--json]",
      "whether the daemon is up; store, secret count, active leases, uptime",
      "Exits 69 when the daemon is not running." },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: secrets <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nEvery client command finds the daemon with --socket or $SECRETS_SOCKET\n"
                 "(default $XDG_RUNTIME_DIR/sysbus/secrets.sock, else /run/sysbus/secrets.sock)\n"
                 "and gives up after --timeout (default 5s). `secrets <command> --help` for\n"
                 "details; docs/secrets.md for everything.\n\n" EXIT_CODES "\n");
}

/* The text of --value sits in our argv (and /proc/PID/cmdline): overwrite it
 * as soon as it has been copied. */
static void wipe_value_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return;
        if (strcmp(argv[i], "--value") == 0 && i + 1 < argc)
            sodium_memzero(argv[i + 1], strlen(argv[i + 1]));
        else if (strncmp(argv[i], "--value=", 8) == 0)
            sodium_memzero(argv[i] + 8, strlen(argv[i] + 8));
    }
}

int main(int argc, char **argv)
{
    /* no core dumps of a process that may hold a value */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (sodium_init() < 0) {
        fprintf(stderr, "secrets: libsodium failed to initialize\n");
        return 70;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("secrets %s\n", SB_VERSION);
        return 0;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            cmd = &commands[i];
    if (!cmd)
        return secrets_usage_fail("unknown command '%s' (see secrets --help)", argv[1]);

    char prog[32], footer[1024];
    snprintf(prog, sizeof prog, "secrets %s", cmd->name);
    snprintf(footer, sizeof footer, "%s%s" EXIT_CODES, cmd->details ? cmd->details : "",
             cmd->details ? "\n\n" : "");
    const struct sb_config_spec spec = { .prog = prog,
                                         .env_prefix = "SECRETS",
                                         .usage = cmd->usage,
                                         .summary = cmd->summary,
                                         .footer = footer,
                                         .opts = cmd->opts,
                                         .nopts = cmd->nopts };
    struct secrets_opts o = { 0 };
    char *pos[4];
    size_t npos = 0;
    struct sb_err err = { 0 };
    int rc = sb_config_parse(&spec, &o, argc - 1, argv + 1, pos, 4, &npos, &err);
    wipe_value_args(argc, argv);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(&spec, stdout);
        rc = 0;
    } else if (rc) {
        rc = secrets_usage_fail("%s", err.msg);
    } else if (npos < cmd->minpos || npos > cmd->maxpos) {
        rc = secrets_usage_fail("usage: %s", cmd->usage);
    } else {
        rc = cmd->run(&o, pos, npos);
    }
    if (o.value)
        sodium_memzero(o.value, strlen(o.value));
    sb_config_free(&spec, &o);
    return rc;
}
