/* peers.c - connection admission and the per-uid rate limiter (see peers.h).
 *
 * The limiter's invariant, which the unit tests check: for every key, the
 * events it was given equal the lines it let through (hit returning true, or
 * a summary from due) plus the suppressed counts those lines carry. A key
 * whose interval has lapsed with nothing held is free for another uid. */
#include "secrets/peers.h"

bool secrets_peer_allowed(const struct secrets_admission *a, const struct secrets_peer *p)
{
    if (p->uid < 0)
        return false; /* no credentials: nothing to check them against */
    for (size_t k = 0; k < a->n_allow_uids; k++)
        if ((long long)a->allow_uids[k] == p->uid)
            return true;
    for (size_t k = 0; k < a->n_allow_gids; k++)
        if (p->gid >= 0 && (long long)a->allow_gids[k] == p->gid)
            return true;
    return false;
}

enum secrets_admit secrets_admit(const struct secrets_admission *a, const struct secrets_peer *p,
                                 size_t open_total, size_t open_uid)
{
    if (!secrets_peer_allowed(a, p))
        return SECRETS_ADMIT_NOT_ALLOWED;
    if (open_uid >= a->per_uid)
        return SECRETS_ADMIT_UID_FULL;
    bool operator= p->uid == 0 || p->uid == a->owner_uid;
    size_t limit = operator|| a->reserved >= a->max_conns ? a->max_conns
                                                          : a->max_conns - a->reserved;
    return open_total >= limit ? SECRETS_ADMIT_FULL : SECRETS_ADMIT_OK;
}

/* ---- rate limit ---------------------------------------------------------- */

static bool key_idle(const struct secrets_ratelimit *r, const struct secrets_rl_key *k, int64_t now)
{
    return !k->used || (k->held == 0 && now - k->last_ms >= r->interval_ms);
}

/* p's key: its own, else a free one (claimed, marked fresh), else the shared
 * one. *fresh tells that the key had no recent line, so this event gets one. */
static struct secrets_rl_key *key_for(struct secrets_ratelimit *r, long long uid, int64_t now,
                                      bool *fresh)
{
    struct secrets_rl_key *idle = NULL;
    *fresh = false;
    for (size_t i = 0; i < SECRETS_RATELIMIT_KEYS; i++) {
        struct secrets_rl_key *k = &r->keys[i];
        if (k->used && k->uid == uid)
            return k;
        if (!idle && key_idle(r, k, now))
            idle = k;
    }
    if (!idle) {
        idle = &r->other;
        if (idle->used)
            return idle;
    }
    *idle = (struct secrets_rl_key){ .used = true, .uid = uid };
    *fresh = true;
    return idle;
}

bool secrets_ratelimit_hit(struct secrets_ratelimit *r, const struct secrets_peer *p, int64_t now,
                           struct secrets_rl_line *out)
{
    bool fresh;
    struct secrets_rl_key *k = key_for(r, p->uid, now, &fresh);
    if (fresh || now - k->last_ms >= r->interval_ms) {
        *out = (struct secrets_rl_line){ .peer = *p, .suppressed = k->held };
        k->held = 0;
        k->last_ms = now;
        return true;
    }
    k->held++;
    k->last = *p;
    return false;
}

static bool take_due(struct secrets_ratelimit *r, struct secrets_rl_key *k, int64_t now, bool all,
                     struct secrets_rl_line *out)
{
    if (!k->used || k->held == 0 || (!all && now - k->last_ms < r->interval_ms))
        return false;
    /* the latest held event is the one this line records; the rest ride on it */
    *out = (struct secrets_rl_line){ .peer = k->last, .suppressed = k->held - 1 };
    k->held = 0;
    k->last_ms = now;
    return true;
}

bool secrets_ratelimit_due(struct secrets_ratelimit *r, int64_t now, bool all,
                           struct secrets_rl_line *out)
{
    for (size_t i = 0; i < SECRETS_RATELIMIT_KEYS; i++)
        if (take_due(r, &r->keys[i], now, all, out))
            return true;
    return take_due(r, &r->other, now, all, out);
}

int64_t secrets_ratelimit_next(const struct secrets_ratelimit *r)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i <= SECRETS_RATELIMIT_KEYS; i++) {
        const struct secrets_rl_key *k = i < SECRETS_RATELIMIT_KEYS ? &r->keys[i] : &r->other;
        if (k->used && k->held > 0 && k->last_ms + r->interval_ms < next)
            next = k->last_ms + r->interval_ms;
    }
    return next;
}
