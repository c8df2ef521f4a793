/* lease.c - the in-memory lease table (see lease.h). A lease is live while
 * now < expires_ms; an expired lease behaves as if it did not exist even
 * before secrets_leases_expire removes it. Linear scans: the table is small
 * and bounded (SECRETS_MAX_LEASES). */
#include "secrets/lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int secrets_leases_add(struct secrets_leases *t, const char *name, const char *client_id,
                       int64_t ttl_s, int64_t now_ms, long long peer_uid, long long peer_pid,
                       const struct secrets_lease_rec **out)
{
    secrets_leases_expire(t, now_ms);
    if (t->n >= SECRETS_MAX_LEASES)
        return SB_EBUSY;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct secrets_lease_rec *nv = realloc(t->v, cap * sizeof *nv);
        if (!nv)
            return SB_ENOMEM;
        t->v = nv;
        t->cap = cap;
    }
    struct secrets_lease_rec *r = &t->v[t->n++];
    memset(r, 0, sizeof *r);
    sb_ulid_new(now_ms, r->id);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->client_id, sizeof r->client_id, "%s", client_id ? client_id : "");
    r->created_ms = now_ms;
    r->ttl_s = ttl_s;
    r->expires_ms = now_ms + ttl_s * 1000;
    r->peer_uid = peer_uid;
    r->peer_pid = peer_pid;
    *out = r;
    return 0;
}

static void drop(struct secrets_leases *t, size_t i)
{
    t->v[i] = t->v[--t->n];
}

size_t secrets_leases_expire(struct secrets_leases *t, int64_t now_ms)
{
    size_t dropped = 0;
    for (size_t i = 0; i < t->n;) {
        if (t->v[i].expires_ms <= now_ms) {
            drop(t, i);
            dropped++;
        } else {
            i++;
        }
    }
    return dropped;
}

int secrets_leases_revoke(struct secrets_leases *t, const char *id, int64_t now_ms)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].id, id) != 0)
            continue;
        bool live = t->v[i].expires_ms > now_ms;
        drop(t, i);
        return live ? 0 : SB_ENOTFOUND;
    }
    return SB_ENOTFOUND;
}

size_t secrets_leases_revoke_all(struct secrets_leases *t, int64_t now_ms)
{
    secrets_leases_expire(t, now_ms);
    size_t n = t->n;
    t->n = 0;
    return n;
}

size_t secrets_leases_revoke_name(struct secrets_leases *t, const char *name, int64_t now_ms)
{
    secrets_leases_expire(t, now_ms);
    size_t revoked = 0;
    for (size_t i = 0; i < t->n;) {
        if (strcmp(t->v[i].name, name) == 0) {
            drop(t, i);
            revoked++;
        } else {
            i++;
        }
    }
    return revoked;
}

size_t secrets_leases_count(const struct secrets_leases *t, const char *name, int64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].expires_ms > now_ms && (!name || strcmp(t->v[i].name, name) == 0))
            n++;
    return n;
}

void secrets_leases_free(struct secrets_leases *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}
