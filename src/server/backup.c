/* backup.c - `sysbusd backup`, `sysbusd restore` and `sysbusd migrate`: the
 * command lines of the store's backup, restore and move to PostgreSQL (the
 * mechanism is each backend's: store.h, struct sbd_store_ops backup,
 * restore, export_to; docs/sysbusd.md, "Backup and restore", "Moving to
 * PostgreSQL").
 *
 * backup and restore name the store as sysbusd does (--store, SYSBUS_STORE,
 * --store-file, or --data-dir / SYSBUS_DATA_DIR for SQLite), so the
 * environment that runs the server backs it up (not its config file, whose
 * other settings these commands do not have). Exit codes follow sysbusd's: 0 done, 1 a
 * runtime failure (the store or the file could not be read or written),
 * 2 bad usage (no file named, a file that is not a backup, a store holding
 * data without --force), 3 a backup newer than this binary, 4 the store is
 * in use (restore while a sysbusd runs on it). */
#include "backup.h"
#include "common/config.h"
#include "store/store.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct backup_settings {
    char *store, *data_dir, *file, *to;
    bool force;
};

#define S(field) offsetof(struct backup_settings, field)

static const struct sb_opt backup_opts[] = {
    { "data-dir", SB_OPT_STR, S(data_dir), ".sysbus", "DIR",
      "Directory of the SQLite store: --store sqlite://DIR/sysbus.db", 0, 0, 0, 0, NULL, 0 },
    { "store", SB_OPT_STR, S(store), NULL, "URL",
      "The store, as sysbusd's --store (give a password in SYSBUS_STORE or --store-file)",
      SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "to", SB_OPT_STR, S(file), NULL, "FILE", "The backup file to write (must not exist)", 0, 0,
      0, 0, "SYSBUS_BACKUP_TO", 0 },
};

static const struct sb_opt restore_opts[] = {
    { "data-dir", SB_OPT_STR, S(data_dir), ".sysbus", "DIR",
      "Directory of the SQLite store: --store sqlite://DIR/sysbus.db", 0, 0, 0, 0, NULL, 0 },
    { "store", SB_OPT_STR, S(store), NULL, "URL",
      "The store, as sysbusd's --store (give a password in SYSBUS_STORE or --store-file)",
      SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "from", SB_OPT_STR, S(file), NULL, "FILE", "The backup file to restore", 0, 0, 0, 0,
      "SYSBUS_RESTORE_FROM", 0 },
    { "force", SB_OPT_BOOL, S(force), "false", NULL,
      "Replace the data of a store that holds some (it is lost)", 0, 0, 0, 0, NULL, 0 },
};

static const struct sb_opt migrate_opts[] = {
    { "from", SB_OPT_STR, S(store), NULL, "URL",
      "The SQLite store to move: sqlite:///path/sysbus.db (no sysbusd may run on it)",
      SB_OPTF_FILEVALUE, 0, 0, 0, "SYSBUS_MIGRATE_FROM", 0 },
    { "to", SB_OPT_STR, S(to), NULL, "URL",
      "The PostgreSQL store to fill: postgres://user@host:port/db?schema=NAME (give a password "
      "in SYSBUS_MIGRATE_TO, --to-file or ~/.pgpass)",
      SB_OPTF_FILEVALUE, 0, 0, 0, "SYSBUS_MIGRATE_TO", 0 },
    { "force", SB_OPT_BOOL, S(force), "false", NULL,
      "Replace the data of a target store that holds some (it is lost)", 0, 0, 0, 0, NULL, 0 },
};

#define FOOTER                                                                                  \
    "Exit codes: 0 done; 1 the store or the file could not be read or written; 2 bad usage,\n" \
    "a file that is not a backup, or a store holding data (restore without --force); 3 a\n"    \
    "backup newer than this binary; 4 the store is in use by a sysbusd (restore).\n"           \
    "Docs: docs/sysbusd.md, \"Backup and restore\""

static const struct sb_config_spec backup_spec = {
    .prog = "sysbusd backup",
    .env_prefix = "SYSBUS",
    .usage = "sysbusd backup --to FILE [--store URL | --data-dir DIR]",
    .summary = "Writes a consistent copy of the store to FILE while sysbusd may be running: a\n"
               "SQLite database for a SQLite store, an export of every table (one snapshot)\n"
               "for a PostgreSQL store. FILE is written beside itself and renamed into place.",
    .footer = FOOTER,
    .opts = backup_opts,
    .nopts = sizeof backup_opts / sizeof backup_opts[0],
};

static const struct sb_config_spec restore_spec = {
    .prog = "sysbusd restore",
    .env_prefix = "SYSBUS",
    .usage = "sysbusd restore --from FILE [--store URL | --data-dir DIR] [--force]",
    .summary = "Fills a store from a file `sysbusd backup` wrote, of the same kind of store. No\n"
               "sysbusd may run on the store meanwhile; a store holding data is refused unless\n"
               "--force. All or nothing.",
    .footer = FOOTER,
    .opts = restore_opts,
    .nopts = sizeof restore_opts / sizeof restore_opts[0],
};

static const struct sb_config_spec migrate_spec = {
    .prog = "sysbusd migrate",
    .env_prefix = "SYSBUS",
    .usage = "sysbusd migrate --from sqlite:///path/sysbus.db --to postgres://... [--force]",
    .summary = "Moves a bus from a SQLite store into a PostgreSQL one: apps, functions, events,\n"
               "runs, steps, the queue, waits and flow-control state, in one transaction, each\n"
               "table's row count checked. Stop sysbusd first (the source is locked meanwhile,\n"
               "and its schema brought to this binary's version); start it on the PostgreSQL\n"
               "store after, and its runs go on there. The source's data is left as it was. A\n"
               "target holding data is refused unless --force.",
    .footer = FOOTER,
    .opts = migrate_opts,
    .nopts = sizeof migrate_opts / sizeof migrate_opts[0],
};

static int exit_code(int rc)
{
    switch (rc) {
    case 0: return 0;
    case SB_EINVAL:
    case SB_EEXISTS:
    case SB_ENOTFOUND: return 2;
    case SB_ECONFIG: return 3;
    case SB_EBUSY: return 4;
    default: return 1;
    }
}

/* The SQLite store from (locked, and migrated to this binary's schema, for
 * the whole move) exported to a private temporary file, restored into to. */
static int migrate(const char *from, const char *to, bool force, struct sb_err *err)
{
    struct stat sb;
    if (strncmp(from, "sqlite://", 9) != 0)
        return sb_err_set(err, SB_EINVAL, "--from: sysbusd migrate moves a sqlite:// store");
    if (strncmp(to, "postgres://", 11) != 0)
        return sb_err_set(err, SB_EINVAL,
                          "--to: sysbusd migrate fills a postgres:// store (between SQLite "
                          "stores, use backup and restore)");
    if (stat(from + 9, &sb) != 0)
        return sb_err_errno(err, SB_ENOTFOUND, "--from: cannot open %s", from + 9);
    struct sbd_store *src = NULL;
    int rc = sbd_store_open(from, &src, err);
    if (rc == SB_ECONFIG && strstr(err->msg, "another sysbusd")) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return sb_err_set(err, SB_EBUSY, "%.400s: stop it before migrating", why);
    }
    if (rc)
        return rc;
    const char *dir = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/sysbus-migrate-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp); /* 0600: the export holds every event */
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        rc = sb_err_errno(err, SB_EIO, "cannot create a temporary file in %s", tmp);
        if (fd >= 0)
            close(fd);
    } else {
        rc = sbd_store_export(from, f, err);
        if (fclose(f) != 0 && !rc)
            rc = sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
        if (!rc)
            rc = sbd_store_restore(to, tmp, force, err);
        unlink(tmp);
    }
    sbd_store_close(src);
    return rc;
}

static int migrate_main(int argc, char **argv)
{
    struct backup_settings s = { 0 };
    struct sb_err err = { 0 };
    char *pos[1];
    size_t npos;
    int rc = sb_config_parse(&migrate_spec, &s, argc, argv, pos, 0, &npos, &err);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(&migrate_spec, stdout);
        sb_config_free(&migrate_spec, &s);
        return 0;
    }
    if (!rc && (!s.store || !s.to))
        rc = sb_err_set(&err, SB_EINVAL, "--from URL and --to URL are required");
    if (rc) {
        fprintf(stderr, "sysbusd migrate: %s\n", err.msg);
        sb_config_free(&migrate_spec, &s);
        return 2;
    }
    rc = migrate(s.store, s.to, s.force, &err);
    if (rc)
        fprintf(stderr, "sysbusd migrate: %s\n", err.msg);
    else
        fprintf(stderr, "sysbusd migrate: moved %s into the PostgreSQL store\n", s.store);
    sb_config_free(&migrate_spec, &s);
    return exit_code(rc);
}

int sbd_backup_main(int argc, char **argv)
{
    if (strcmp(argv[0], "migrate") == 0)
        return migrate_main(argc, argv);
    bool restore = strcmp(argv[0], "restore") == 0;
    const struct sb_config_spec *spec = restore ? &restore_spec : &backup_spec;
    struct backup_settings s = { 0 };
    struct sb_err err = { 0 };
    char *pos[1];
    size_t npos;
    int rc = sb_config_parse(spec, &s, argc, argv, pos, 0, &npos, &err);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(spec, stdout);
        sb_config_free(spec, &s);
        return 0;
    }
    char *url = NULL;
    if (!rc && !s.file)
        rc = sb_err_set(&err, SB_EINVAL, "%s FILE is required", restore ? "--from" : "--to");
    if (!rc)
        rc = sbd_store_url(s.store, s.data_dir, &url, &err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", spec->prog, err.msg);
        sb_config_free(spec, &s);
        return 2;
    }
    rc = restore ? sbd_store_restore(url, s.file, s.force, &err)
                 : sbd_store_backup(url, s.file, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", spec->prog, err.msg);
    else
        fprintf(stderr, "%s: %s %s\n", spec->prog, restore ? "restored the store from" : "wrote",
                s.file);
    free(url);
    sb_config_free(spec, &s);
    return exit_code(rc);
}
