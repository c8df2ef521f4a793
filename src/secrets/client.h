/* client.h - the one secrets client: finds the daemon's socket, sends one
 * request, reads one answer, always under a timeout. Used by the `secrets`
 * client commands and by talon (which leases the secrets it injects).
 *
 * Errors come back as SB_E* codes with err filled:
 *   SB_EUNAVAIL  daemon not running / socket missing / connection refused
 *   SB_ETIMEOUT  no answer within timeout_ms
 *   SB_EPROTO    the answer was not a valid protocol message
 *   SB_ENOTFOUND no such secret / lease
 *   SB_EINVAL    the daemon refused the request (bad name, TTL above max...)
 *   SB_EAUTH     the daemon refused this peer (uid/gid not allowed)
 *   SB_EIO, SB_EINTERNAL as usual
 * secrets_exit_code() maps them to the documented exit codes. */
#ifndef SECRETS_CLIENT_H
#define SECRETS_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SECRETS_DEFAULT_TIMEOUT_MS 5000
#define SECRETS_DEFAULT_TTL_S 3600
#define SECRETS_MAX_TTL_S 86400

/* A leased value. `value` lives in guarded memory (sodium_malloc: mlocked,
 * excluded from core dumps) and is wiped by secrets_lease_clear. */
struct secrets_lease {
    char lease_id[64];
    char secret_name[128];
    char client_id[128];
    char *value;
    size_t value_len;
    int64_t expires_at; /* unix seconds */
    int64_t ttl;        /* seconds */
};

/* Socket path: flag (may be NULL) > $SECRETS_SOCKET > $XDG_RUNTIME_DIR/sysbus/secrets.sock
 * > /run/sysbus/secrets.sock. Returns 0 or SB_EINVAL (path too long). */
int secrets_socket_path(const char *flag, char *out, size_t outlen, struct sb_err *err);

/* Leases `name` for ttl_s seconds (0 = default) as client_id (NULL = "cli").
 * timeout_ms 0 = SECRETS_DEFAULT_TIMEOUT_MS. On success fills *out. */
int secrets_lease(const char *socket_path, const char *name, int64_t ttl_s, const char *client_id,
                  int timeout_ms, struct secrets_lease *out, struct sb_err *err);
void secrets_lease_clear(struct secrets_lease *l);

/* Maps an SB_E* code to the documented exit code (0, 1, 2, 64, 65, 66, 67, 69, 70). */
int secrets_exit_code(int code);

/* ---- beyond the lease (used by the `secrets` client commands) ---- */

struct secrets_request; /* proto.h */
struct secrets_gbuf;    /* proto.h */

/* Stores value (value_len bytes, UTF-8, no NUL, 1..64 KiB) under name,
 * replacing an existing value. client_id may be NULL. *created (may be NULL)
 * tells whether the name was new. The value is copied only into guarded
 * memory on its way to the socket. */
int secrets_add(const char *socket_path, const char *name, const char *value, size_t value_len,
                const char *client_id, int timeout_ms, bool *created, struct sb_err *err);
/* Revokes one lease. SB_ENOTFOUND for an unknown or expired lease. */
int secrets_revoke(const char *socket_path, const char *lease_id, const char *client_id,
                   int timeout_ms, struct sb_err *err);
/* Any request whose answer carries no secret value (everything but lease,
 * which is refused with SB_EINVAL): on success *answer is the answer object
 * (new reference, {"ok":true,...}); on a refusal the daemon's code and
 * message come back in err. */
int secrets_call(const char *socket_path, const struct secrets_request *req, int timeout_ms,
                 json_t **answer, struct sb_err *err);
/* The transport under all of the above: connects, sends req, reads one
 * answer line (newline stripped) into resp (guarded; caller frees with
 * secrets_gbuf_free), all within timeout_ms. Does not interpret the answer. */
int secrets_exchange(const char *socket_path, const struct secrets_request *req, int timeout_ms,
                     struct secrets_gbuf *resp, struct sb_err *err);

#endif
