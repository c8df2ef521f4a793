/* peers.h - who may hold one of the secrets daemon's connections, and how
 * refusals are recorded without letting a refused peer flood the audit trail
 * or the log.
 *
 * Admission happens at accept, from SO_PEERCRED. A peer whose uid is not in
 * the allow list and whose primary gid is not either is refused and closed at
 * once: it never takes a slot. An allowed peer gets a slot if its uid holds
 * fewer than per_uid connections and, unless it is the daemon's owner (its
 * own uid) or root, if more than `reserved` slots are free: the reserve keeps
 * a way in for the operator while other uids fill the table. (The reserve
 * admits nobody by itself: root still needs to be allowed.)
 *
 * The rate limiter keys events by uid and lets at most one line per uid per
 * interval through. Events held back are counted; the count goes out with
 * that uid's next line, or with a summary line once the interval has passed
 * (secrets_ratelimit_due), so a flood costs at most one line per uid per
 * interval and no event goes uncounted.
 *
 * Owned by the daemon's single loop; no threads. No allocation. */
#ifndef SECRETS_PEERS_H
#define SECRETS_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The process on the other end of a connection; -1 = unknown. */
struct secrets_peer {
    long long uid, gid, pid;
};

struct secrets_admission {
    const uid_t *allow_uids;
    size_t n_allow_uids;
    const gid_t *allow_gids; /* matched against the peer's primary gid */
    size_t n_allow_gids;
    long long owner_uid; /* the daemon's own uid: may use the reserve */
    size_t max_conns;    /* slots in all */
    size_t reserved;     /* of which only the owner and root may take the last ones */
    size_t per_uid;      /* connections one uid may hold at once */
};

enum secrets_admit {
    SECRETS_ADMIT_OK = 0,
    SECRETS_ADMIT_NOT_ALLOWED, /* neither uid nor gid is allowed (or no credentials) */
    SECRETS_ADMIT_UID_FULL,    /* this uid holds per_uid connections */
    SECRETS_ADMIT_FULL,        /* no slot this peer may take */
};

/* Whether the uid/gid allow lists let p in. An unknown uid (-1) never is. */
bool secrets_peer_allowed(const struct secrets_admission *a, const struct secrets_peer *p);
/* The decision for a new connection of p while open_total connections are
 * open, open_uid of them p's uid's. */
enum secrets_admit secrets_admit(const struct secrets_admission *a, const struct secrets_peer *p,
                                 size_t open_total, size_t open_uid);

/* ---- rate limit ---------------------------------------------------------- */

#define SECRETS_RATELIMIT_KEYS 64

struct secrets_rl_key {
    bool used;
    long long uid;
    int64_t last_ms;          /* when this uid's last line went out */
    long long held;           /* events since then that got no line */
    struct secrets_peer last; /* the latest held event's peer */
};

/* Zero-initialise, then set interval_ms. When more than
 * SECRETS_RATELIMIT_KEYS uids are being limited at once, the rest share the
 * `other` key (their held events are counted there). */
struct secrets_ratelimit {
    int64_t interval_ms;
    struct secrets_rl_key keys[SECRETS_RATELIMIT_KEYS];
    struct secrets_rl_key other;
};

/* One line to write: it records the event of `peer` and stands in for
 * `suppressed` further events (of the same uid, or of any uid for the shared
 * key) that had no line of their own since the previous one. */
struct secrets_rl_line {
    struct secrets_peer peer;
    long long suppressed;
};

/* Counts one event of p at now (monotonic ms). true: write a line for it now
 * (*out filled, suppressed = the events held back since the uid's previous
 * line). false: held back and counted. */
bool secrets_ratelimit_hit(struct secrets_ratelimit *r, const struct secrets_peer *p, int64_t now,
                           struct secrets_rl_line *out);
/* A summary line that is due: a key with held events whose interval has
 * passed at now, or any key with held events when all is true (at shutdown).
 * true with *out (peer = the latest held event's, suppressed = held - 1) and
 * the key's count reset; false when none is due. Call until false. */
bool secrets_ratelimit_due(struct secrets_ratelimit *r, int64_t now, bool all,
                           struct secrets_rl_line *out);
/* When the next summary line falls due (monotonic ms), or INT64_MAX. */
int64_t secrets_ratelimit_next(const struct secrets_ratelimit *r);

#endif
