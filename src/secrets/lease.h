/* lease.h - the daemon's lease table: which client holds which secret until
 * when. In memory only (a restart forgets every lease; they are an audit and
 * revocation handle, the value has already been handed out). Expired leases
 * are dropped by secrets_leases_expire, which the daemon calls before every
 * read of the table and once a second. Owned by the daemon's single loop. */
#ifndef SECRETS_LEASE_H
#define SECRETS_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "common/ulid.h"
#include "secrets/proto.h"

#define SECRETS_MAX_LEASES 100000

struct secrets_lease_rec {
    char id[SB_ULID_SIZE];
    char name[SECRETS_NAME_MAX + 1];
    char client_id[SECRETS_CLIENT_ID_MAX + 1];
    int64_t created_ms, expires_ms;
    int64_t ttl_s;
    long long peer_uid, peer_pid;
};

struct secrets_leases {
    struct secrets_lease_rec *v; /* unordered; removal swaps in the last */
    size_t n, cap;
};

/* Adds a lease of name for ttl_s seconds from now_ms. *out (borrowed until
 * the table changes) is the new record. SB_EBUSY when the table is full,
 * SB_ENOMEM. */
int secrets_leases_add(struct secrets_leases *t, const char *name, const char *client_id,
                       int64_t ttl_s, int64_t now_ms, long long peer_uid, long long peer_pid,
                       const struct secrets_lease_rec **out);
/* Drops leases whose expiry is <= now_ms; returns how many. */
size_t secrets_leases_expire(struct secrets_leases *t, int64_t now_ms);
/* Revokes one live lease: 0, or SB_ENOTFOUND (unknown or already expired). */
int secrets_leases_revoke(struct secrets_leases *t, const char *id, int64_t now_ms);
/* Revokes every lease (the killswitch) / every lease of name; returns how
 * many live ones were revoked. */
size_t secrets_leases_revoke_all(struct secrets_leases *t, int64_t now_ms);
size_t secrets_leases_revoke_name(struct secrets_leases *t, const char *name, int64_t now_ms);
/* Live leases of name. */
size_t secrets_leases_count(const struct secrets_leases *t, const char *name, int64_t now_ms);
void secrets_leases_free(struct secrets_leases *t);

#endif
