/* audit.h - the secrets audit trail: an append-only file of JSON lines in the
 * store directory (audit.log, mode 0600), one line per security-relevant
 * event (refused connections: at most one per uid per second, carrying the
 * count of those held back), each fsync'd before the daemon answers. Line
 * format in audit.c.
 * Owned by the daemon's single loop; not thread-safe. */
#ifndef SECRETS_AUDIT_H
#define SECRETS_AUDIT_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SECRETS_AUDIT_FILE "audit.log"

struct secrets_audit {
    int fd; /* O_APPEND */
    char path[PATH_MAX + 16];
};

/* One event. Strings may be NULL or "" (written as null). Never a value. */
struct secrets_audit_event {
    const char *action; /* add, lease, revoke, revoke_all, rm, connect */
    const char *secret_name;
    const char *client_id;
    const char *lease_id;
    bool success;
    long long peer_uid, peer_pid; /* -1 = unknown */
    const char *reason;           /* why it failed; only written on failure */
    long long ttl;                /* lease: requested seconds; -1 = not written */
    long long count;              /* revoke_all, rm: leases revoked; -1 = not written */
    long long suppressed;         /* connect: refusals this line stands for besides its own
                                     (rate limit); written for connect only */
};

/* Opens (creating, 0600) DIR/audit.log for appending; refuses a file with
 * group/other permissions (SB_ECONFIG naming the chmod). */
int secrets_audit_open(struct secrets_audit *a, const char *dir, struct sb_err *err);
/* Appends one line with one write(2) and fsyncs it. SB_EIO on failure. */
int secrets_audit_append(struct secrets_audit *a, const struct secrets_audit_event *e,
                         int64_t now_ms, struct sb_err *err);
/* The last n entries (n <= SECRETS_AUDIT_TAIL_MAX), oldest first, as a new
 * JSON array of objects. Lines that do not parse (a write torn by a crash)
 * are skipped. Reads at most the last 8 MiB of the file. */
int secrets_audit_tail(const struct secrets_audit *a, size_t n, json_t **entries,
                       struct sb_err *err);
void secrets_audit_close(struct secrets_audit *a);

#endif
