/* serve.c - the `secrets serve` and `secrets init` commands: turn options into
 * a daemon configuration (uids, gids and the socket's group may be names or
 * numbers) or a new store. The daemon itself is daemon.c; the store store.c. */
#include "secrets/cli.h"
#include "common/json.h"
#include "common/log.h"
#include "secrets/client.h"
#include "secrets/daemon.h"
#include "secrets/store.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool parse_id(const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > 0xfffffffeUL)
        return false;
    *out = v;
    return true;
}

static int uid_of(const char *s, uid_t *out)
{
    unsigned long v;
    if (parse_id(s, &v)) {
        *out = (uid_t)v;
        return 0;
    }
    struct passwd *pw = getpwnam(s);
    if (!pw)
        return secrets_usage_fail("--allow-uid: no user '%s'", s);
    *out = pw->pw_uid;
    return 0;
}

static int gid_of(const char *flag, const char *s, gid_t *out)
{
    unsigned long v;
    if (parse_id(s, &v)) {
        *out = (gid_t)v;
        return 0;
    }
    struct group *gr = getgrnam(s);
    if (!gr)
        return secrets_usage_fail("%s: no group '%s'", flag, s);
    *out = gr->gr_gid;
    return 0;
}

int secrets_cmd_serve(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)pos, (void)npos;
    int level = sb_log_level_parse(o->log_level ? o->log_level : "info");
    if (level < 0)
        return secrets_usage_fail("--log-level: '%s' is not one of debug, info, warn, error",
                                  o->log_level);
    sb_log_init("secrets", level, 2);
    char sock[256], dir[PATH_MAX];
    struct sb_err err = { 0 };
    int rc = secrets_socket_path(o->socket, sock, sizeof sock, &err);
    if (rc)
        return secrets_fail(rc, "%s", err.msg);
    if (secrets_store_dir(o, dir, sizeof dir) != 0)
        return secrets_fail(SB_ECONFIG, "no store directory: give --store (HOME is not set)");
    size_t nu = o->allow_uid.n ? o->allow_uid.n : 1, ng = o->allow_gid.n;
    uid_t *uids = calloc(nu, sizeof *uids);
    gid_t *gids = calloc(ng ? ng : 1, sizeof *gids);
    if (!uids || !gids) {
        free(uids), free(gids);
        return secrets_fail(SB_ENOMEM, "out of memory");
    }
    if (o->allow_uid.n == 0)
        uids[0] = getuid(); /* only the daemon's own user, root included only if it is root */
    for (size_t i = 0; !rc && i < o->allow_uid.n; i++)
        rc = uid_of(o->allow_uid.v[i], &uids[i]);
    for (size_t i = 0; !rc && i < ng; i++)
        rc = gid_of("--allow-gid", o->allow_gid.v[i], &gids[i]);
    gid_t sock_gid = 0;
    if (!rc && o->socket_group && *o->socket_group)
        rc = gid_of("--socket-group", o->socket_group, &sock_gid);
    if (rc) {
        free(uids), free(gids);
        return rc;
    }
    struct secrets_daemon_config cfg = {
        .socket_path = sock,
        .store_dir = dir,
        .key_file = o->key_file,
        .passphrase_file = o->passphrase_file,
        .allow_uids = uids,
        .n_allow_uids = nu,
        .allow_gids = gids,
        .n_allow_gids = ng,
        .socket_gid = o->socket_group && *o->socket_group ? (long long)sock_gid : -1,
        .client_timeout_ms = o->client_timeout_ms > 0 ? o->client_timeout_ms : 5000,
        .max_conns_per_uid = o->max_conns_per_uid > 0 ? (size_t)o->max_conns_per_uid : 0,
    };
    rc = secrets_daemon_run(&cfg, &err);
    free(uids), free(gids);
    return rc ? secrets_fail(rc, "%s", err.msg) : 0;
}

int secrets_cmd_init(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)pos, (void)npos;
    char dir[PATH_MAX];
    if (secrets_store_dir(o, dir, sizeof dir) != 0)
        return secrets_fail(SB_ECONFIG, "no store directory: give --store (HOME is not set)");
    struct sb_err err = { 0 };
    int rc = secrets_store_create(dir, o->key_file, o->passphrase_file, &err);
    if (rc)
        return secrets_fail(rc, "%s", err.msg);
    bool pass = o->passphrase_file && *o->passphrase_file;
    char key[PATH_MAX + 16];
    secrets_key_path(dir, o->key_file, key, sizeof key);
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s?}", "store", dir, "key_source",
                              pass ? "passphrase" : "key_file", "key_file", pass ? NULL : key);
        char *txt = j ? sb_json_dumps(j, NULL) : NULL;
        json_decref(j);
        if (!txt)
            return secrets_fail(SB_ENOMEM, "cannot encode the output");
        printf("%s\n", txt);
        free(txt);
        return 0;
    }
    if (pass)
        printf("created store %s (passphrase-protected, Argon2id)\n", dir);
    else
        printf("created store %s (key file %s: back it up; without it the store cannot be "
               "read)\n",
               dir, key);
    return 0;
}
