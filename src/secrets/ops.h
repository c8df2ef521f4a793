/* ops.h - the secrets daemon's request handling: one request line in, one
 * answer line out, over the store, the lease table and the audit trail, with
 * one handler per protocol op. No sockets and no peer admission here
 * (daemon.c and peers.c own those): a line reaches this code only from a peer
 * that was let in. That split is what lets the fuzz target drive the real
 * request path against a real store without a socket.
 *
 * Memory: an answer that carries a value (lease) is built in guarded memory;
 * the others go through jansson. Nothing logs or audits a value. */
#ifndef SECRETS_OPS_H
#define SECRETS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "secrets/audit.h"
#include "secrets/lease.h"
#include "secrets/peers.h"
#include "secrets/store.h"

/* What the handlers work on. The caller opens store and audit, zeroes leases,
 * and keeps it for as long as it serves. */
struct secrets_service {
    struct secrets_store store;
    struct secrets_audit audit;
    struct secrets_leases leases;
    const char *socket_path; /* reported by status */
    int64_t started_mono;    /* for status' uptime */
};

/* One answer line, newline included. line is NULL when no answer could be
 * built (no memory): the connection should then be closed. guarded: line is
 * sodium_malloc'd (it holds a value) and must go back through
 * secrets_answer_release, which wipes it. */
struct secrets_answer {
    char *line;
    size_t len;
    bool guarded;
};

/* Parses and handles one request line (len bytes, without its newline; any
 * bytes) from peer, and fills *ans (previously empty) with the answer. Never
 * fails as such: every refusal is an error answer, and operations on secrets
 * and leases are audited (a lease whose audit line cannot be written is
 * withheld). */
void secrets_handle_line(struct secrets_service *s, const struct secrets_peer *peer,
                         const char *line, size_t len, struct secrets_answer *ans);
/* An error answer {"ok":false,"error":{code,message}} (msg NULL: the code's
 * text) into *ans, for refusals made outside the handlers. */
void secrets_answer_error(struct secrets_answer *ans, int code, const char *msg);
/* Releases (wiping when guarded) the answer; *ans is empty again. */
void secrets_answer_release(struct secrets_answer *ans);

/* Appends e to the audit trail as peer's (peer_uid/peer_pid are set from it).
 * A failure is logged here and returned (SB_EIO/SB_ENOMEM). */
int secrets_service_audit(struct secrets_service *s, const struct secrets_peer *peer,
                          struct secrets_audit_event *e);

#endif
