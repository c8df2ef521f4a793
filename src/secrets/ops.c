/* ops.c - one handler per protocol op, and the request dispatch (see ops.h).
 * Each handler answers exactly once, through reply_ok/reply_error or, for a
 * granted lease, lease_answer; operations on secrets and leases are audited
 * before they are answered. The wire format is specified in proto.c. */
#include "secrets/ops.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "secrets/client.h"
#include "secrets/proto.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SB_VERSION
#define SB_VERSION "dev"
#endif

/* One request being handled: where, for whom, and where its answer goes. */
struct call {
    struct secrets_service *s;
    const struct secrets_peer *peer;
    struct secrets_answer *ans;
};

/* ---- answers ------------------------------------------------------------- */

void secrets_answer_release(struct secrets_answer *a)
{
    if (a->guarded)
        sodium_free(a->line);
    else
        free(a->line);
    *a = (struct secrets_answer){ 0 };
}

/* Takes obj (NULL: out of memory) and makes it the answer line. */
static void answer_json(struct secrets_answer *a, json_t *obj)
{
    size_t len = 0;
    char *s = obj ? sb_json_dumps(obj, &len) : NULL;
    json_decref(obj);
    char *line = s ? realloc(s, len + 1) : NULL;
    if (!line) {
        free(s);
        *a = (struct secrets_answer){ 0 }; /* nothing sensible to send */
        return;
    }
    line[len++] = '\n';
    *a = (struct secrets_answer){ .line = line, .len = len };
}

/* Takes obj (adds ok:true) and queues it as the answer. */
static void reply_ok(struct secrets_answer *a, json_t *obj)
{
    if (obj)
        json_object_set_new(obj, "ok", json_true());
    answer_json(a, obj);
}

static void reply_error(struct secrets_answer *a, int code, const char *msg)
{
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s}", "code", secrets_wire_code(code), "message",
                                      msg ? msg : sb_strerror(code)));
    }
    answer_json(a, o);
}

void secrets_answer_error(struct secrets_answer *ans, int code, const char *msg)
{
    reply_error(ans, code, msg);
}

static void iso(int64_t ms, char out[40])
{
    sb_time_format_iso(ms, out, 40);
}

/* ---- audit --------------------------------------------------------------- */

int secrets_service_audit(struct secrets_service *s, const struct secrets_peer *peer,
                          struct secrets_audit_event *e)
{
    e->peer_uid = peer->uid;
    e->peer_pid = peer->pid;
    struct sb_err err = { 0 };
    int rc = secrets_audit_append(&s->audit, e, sb_now_ms(), &err);
    if (rc)
        SB_LOGK(SB_ERROR, "audit_write_failed",
                ((struct sb_lf[]){ LF_S("action", e->action), LF_S("path", s->audit.path) }), "%s",
                err.msg);
    return rc;
}

/* The caller's audit line; a failure is logged (by secrets_service_audit)
 * and returned, so a lease can be withheld. */
static int audit(struct call *k, struct secrets_audit_event *e)
{
    return secrets_service_audit(k->s, k->peer, e);
}

static struct secrets_audit_event event(const char *action, const struct secrets_request *r)
{
    return (struct secrets_audit_event){ .action = action,
                                         .secret_name = r->name,
                                         .client_id = r->client_id,
                                         .lease_id = r->lease_id,
                                         .peer_uid = -1,
                                         .peer_pid = -1,
                                         .ttl = -1,
                                         .count = -1 };
}

/* ---- ops ----------------------------------------------------------------- */

static void op_status(struct call *k)
{
    int64_t now = sb_now_ms();
    secrets_leases_expire(&k->s->leases, now);
    json_t *o = json_object();
    json_object_set_new(o, "daemon", json_string("running"));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "version", json_string(SB_VERSION));
    json_object_set_new(o, "store", json_string(k->s->store.dir));
    json_object_set_new(o, "socket", json_string(k->s->socket_path));
    json_object_set_new(o, "key_source",
                        json_string(k->s->store.kdf.source == SECRETS_KEY_FROM_PASSPHRASE
                                        ? "passphrase"
                                        : "key_file"));
    json_object_set_new(o, "secrets", json_integer((json_int_t)k->s->store.n));
    json_object_set_new(o, "active_leases", json_integer((json_int_t)k->s->leases.n));
    json_object_set_new(o, "uptime_s", json_integer((sb_mono_ms() - k->s->started_mono) / 1000));
    reply_ok(k->ans, o);
}

static void op_add(struct call *k, const struct secrets_request *r)
{
    struct sb_err err = { 0 };
    bool created = false;
    int rc = secrets_store_put(&k->s->store, r->name, r->value, r->value_len, sb_now_ms(), &created,
                               &err);
    if (rc && rc != SB_EINVAL && rc != SB_ETOOBIG)
        SB_LOGK(SB_ERROR, "store_write_failed", ((struct sb_lf[]){ LF_S("secret_name", r->name) }),
                "%s", err.msg);
    struct secrets_audit_event e = event("add", r);
    e.success = rc == 0;
    e.reason = err.msg;
    int arc = audit(k, &e);
    if (rc) {
        reply_error(k->ans, rc, err.msg);
    } else if (arc) {
        reply_error(k->ans, SB_EIO,
                    "the secret was stored but the audit trail could not be written");
    } else {
        SB_LOGK(SB_INFO, "secret_stored",
                ((struct sb_lf[]){ LF_S("secret_name", r->name), LF_B("created", created),
                                   LF_I("peer_uid", k->peer->uid) }),
                "stored %s", r->name);
        reply_ok(k->ans, json_pack("{s:s, s:b}", "name", r->name, "created", created));
    }
}

/* The lease answer: built in guarded memory because it holds the value. */
static int lease_answer(struct secrets_answer *a, const struct secrets_lease_rec *l,
                        const struct secrets_entry *e)
{
    struct secrets_gbuf b = SECRETS_GBUF_INIT(SECRETS_VALUE_MAX * 6 + 4096);
    char exp[40], num[64];
    iso(l->expires_ms, exp);
    snprintf(num, sizeof num, ",\"ttl\":%lld", (long long)l->ttl_s);
    int rc = secrets_gbuf_puts(&b, "{\"client_id\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, l->client_id, strlen(l->client_id));
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"expires_at\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, exp, strlen(exp));
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"lease_id\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, l->id, strlen(l->id));
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"ok\":true,\"secret_name\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, l->name, strlen(l->name));
    if (!rc)
        rc = secrets_gbuf_puts(&b, num);
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"value\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, e->value, e->value_len);
    if (!rc)
        rc = secrets_gbuf_puts(&b, "}\n");
    if (rc) {
        secrets_gbuf_free(&b);
        return rc;
    }
    a->line = b.data; /* ownership moves to the answer */
    a->len = b.len;
    a->guarded = true;
    return 0;
}

static void op_lease(struct call *k, const struct secrets_request *r)
{
    int64_t now = sb_now_ms();
    int64_t ttl = r->has_ttl ? r->ttl : SECRETS_DEFAULT_TTL_S;
    struct secrets_audit_event e = event("lease", r);
    e.ttl = ttl;
    char reason[200];
    if (ttl > SECRETS_MAX_TTL_S) {
        snprintf(reason, sizeof reason, "ttl %llds is above the maximum %ds (24h)", (long long)ttl,
                 SECRETS_MAX_TTL_S);
        e.reason = reason;
        audit(k, &e);
        SB_LOGK(SB_WARN, "lease_refused",
                ((struct sb_lf[]){ LF_S("secret_name", r->name), LF_I("ttl", ttl),
                                   LF_I("peer_uid", k->peer->uid) }),
                "%s", reason);
        reply_error(k->ans, SB_EINVAL, reason);
        return;
    }
    const struct secrets_entry *entry = secrets_store_get(&k->s->store, r->name);
    if (!entry) {
        snprintf(reason, sizeof reason, "no secret named %s", r->name);
        e.reason = reason;
        audit(k, &e);
        reply_error(k->ans, SB_ENOTFOUND, reason);
        return;
    }
    const struct secrets_lease_rec *l = NULL;
    int rc = secrets_leases_add(&k->s->leases, r->name, r->client_id, ttl, now, k->peer->uid,
                                k->peer->pid, &l);
    if (rc) {
        e.reason = rc == SB_EBUSY ? "too many active leases" : "out of memory";
        audit(k, &e);
        reply_error(k->ans, rc, e.reason);
        return;
    }
    char id[SB_ULID_SIZE];
    memcpy(id, l->id, sizeof id);
    e.lease_id = id;
    e.success = true;
    if (audit(k, &e) != 0) {
        /* fail closed: no value leaves without its audit line */
        secrets_leases_revoke(&k->s->leases, id, now);
        reply_error(k->ans, SB_EIO, "the audit trail could not be written; lease withheld");
        return;
    }
    if (lease_answer(k->ans, l, entry) != 0) {
        secrets_leases_revoke(&k->s->leases, id, now);
        reply_error(k->ans, SB_ENOMEM, "no memory for the answer");
        return;
    }
    SB_LOGK(SB_INFO, "lease_granted",
            ((struct sb_lf[]){ LF_S("lease_id", id), LF_S("secret_name", r->name),
                               LF_S("client_id", r->client_id), LF_I("ttl", ttl),
                               LF_I("peer_uid", k->peer->uid), LF_I("peer_pid", k->peer->pid) }),
            "leased %s for %llds", r->name, (long long)ttl);
}

static void op_revoke(struct call *k, const struct secrets_request *r)
{
    int rc = secrets_leases_revoke(&k->s->leases, r->lease_id, sb_now_ms());
    char reason[120];
    snprintf(reason, sizeof reason, "no active lease %s (unknown or expired)", r->lease_id);
    struct secrets_audit_event e = event("revoke", r);
    e.success = rc == 0;
    e.reason = reason;
    audit(k, &e);
    if (rc)
        reply_error(k->ans, rc, reason);
    else
        reply_ok(k->ans, json_pack("{s:s}", "lease_id", r->lease_id));
}

static void op_revoke_all(struct call *k, const struct secrets_request *r)
{
    size_t n = secrets_leases_revoke_all(&k->s->leases, sb_now_ms());
    struct secrets_audit_event e = event("revoke_all", r);
    e.success = true;
    e.count = (long long)n;
    audit(k, &e);
    SB_LOGK(SB_WARN, "killswitch",
            ((struct sb_lf[]){ LF_I("revoked", n), LF_I("peer_uid", k->peer->uid) }),
            "every lease revoked (%zu)", n);
    reply_ok(k->ans, json_pack("{s:I}", "revoked", (json_int_t)n));
}

static void op_rm(struct call *k, const struct secrets_request *r)
{
    struct sb_err err = { 0 };
    int rc = secrets_store_remove(&k->s->store, r->name, &err);
    if (rc && rc != SB_ENOTFOUND)
        SB_LOGK(SB_ERROR, "store_write_failed", ((struct sb_lf[]){ LF_S("secret_name", r->name) }),
                "%s", err.msg);
    size_t n = rc ? 0 : secrets_leases_revoke_name(&k->s->leases, r->name, sb_now_ms());
    struct secrets_audit_event e = event("rm", r);
    e.success = rc == 0;
    e.reason = err.msg;
    if (!rc)
        e.count = (long long)n;
    int arc = audit(k, &e);
    if (rc)
        reply_error(k->ans, rc, err.msg);
    else if (arc)
        reply_error(k->ans, SB_EIO,
                    "the secret was removed but the audit trail could not be written");
    else
        reply_ok(k->ans, json_pack("{s:s, s:I}", "name", r->name, "revoked_leases", (json_int_t)n));
}

static void op_leases(struct call *k)
{
    int64_t now = sb_now_ms();
    secrets_leases_expire(&k->s->leases, now);
    json_t *arr = json_array();
    for (size_t i = 0; i < k->s->leases.n; i++) {
        const struct secrets_lease_rec *l = &k->s->leases.v[i];
        char created[40], exp[40];
        iso(l->created_ms, created);
        iso(l->expires_ms, exp);
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:I}", "lease_id", l->id,
                      "secret_name", l->name, "client_id", l->client_id[0] ? l->client_id : NULL,
                      "created_at", created, "expires_at", exp, "ttl", (json_int_t)l->ttl_s,
                      "remaining_s", (json_int_t)((l->expires_ms - now + 999) / 1000), "peer_uid",
                      (json_int_t)l->peer_uid, "peer_pid", (json_int_t)l->peer_pid));
    }
    reply_ok(k->ans, json_pack("{s:o}", "leases", arr));
}

static void op_list(struct call *k)
{
    int64_t now = sb_now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < k->s->store.n; i++) {
        const struct secrets_entry *e = &k->s->store.v[i];
        char created[40], updated[40];
        iso(e->created_ms, created);
        iso(e->updated_ms, updated);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:I}", "name", e->name, "created_at", created,
                           "updated_at", updated, "active_leases",
                           (json_int_t)secrets_leases_count(&k->s->leases, e->name, now)));
    }
    reply_ok(k->ans, json_pack("{s:o}", "secrets", arr));
}

static void op_audit(struct call *k, const struct secrets_request *r)
{
    json_t *entries = NULL;
    struct sb_err err = { 0 };
    size_t n = r->tail > 0 ? (size_t)r->tail : SECRETS_AUDIT_TAIL_MAX;
    int rc = secrets_audit_tail(&k->s->audit, n, &entries, &err);
    if (rc) {
        SB_LOG(SB_ERROR, "audit_read_failed", "%s", err.msg);
        reply_error(k->ans, rc, err.msg);
        return;
    }
    reply_ok(k->ans, json_pack("{s:o}", "entries", entries));
}

/* ---- requests ------------------------------------------------------------ */

void secrets_handle_line(struct secrets_service *s, const struct secrets_peer *peer,
                         const char *line, size_t len, struct secrets_answer *ans)
{
    struct call call = { s, peer, ans }, *k = &call;
    struct secrets_request r;
    struct sb_err err = { 0 };
    int rc = secrets_request_parse(line, len, &r, &err);
    if (rc == SB_EPROTO || rc == SB_ENOMEM || (rc && r.op == SECRETS_OP_NONE)) {
        SB_LOGK(SB_WARN, "bad_request", ((struct sb_lf[]){ LF_I("peer_uid", k->peer->uid) }), "%s",
                err.msg);
        reply_error(k->ans, rc, err.msg);
        secrets_request_clear(&r);
        return;
    }
    const char *opname = secrets_op_name(r.op);
    SB_LOGK(SB_DEBUG, "request",
            ((struct sb_lf[]){ LF_S("op", opname), LF_S("secret_name", r.name),
                               LF_S("client_id", r.client_id), LF_I("peer_uid", k->peer->uid) }),
            "%s", opname);
    if (rc) {
        /* refused field values: operations on secrets and leases are audited */
        if (r.op == SECRETS_OP_ADD || r.op == SECRETS_OP_LEASE || r.op == SECRETS_OP_RM ||
            r.op == SECRETS_OP_REVOKE) {
            struct secrets_audit_event e = event(opname, &r);
            e.reason = err.msg;
            if (r.op == SECRETS_OP_LEASE && r.has_ttl)
                e.ttl = r.ttl;
            audit(k, &e);
        }
        reply_error(k->ans, rc, err.msg);
        secrets_request_clear(&r);
        return;
    }
    switch (r.op) {
    case SECRETS_OP_STATUS: op_status(k); break;
    case SECRETS_OP_ADD: op_add(k, &r); break;
    case SECRETS_OP_LEASE: op_lease(k, &r); break;
    case SECRETS_OP_REVOKE: op_revoke(k, &r); break;
    case SECRETS_OP_REVOKE_ALL: op_revoke_all(k, &r); break;
    case SECRETS_OP_LEASES: op_leases(k); break;
    case SECRETS_OP_LIST: op_list(k); break;
    case SECRETS_OP_RM: op_rm(k, &r); break;
    case SECRETS_OP_AUDIT: op_audit(k, &r); break;
    case SECRETS_OP_NONE: reply_error(k->ans, SB_EPROTO, "no op"); break;
    }
    secrets_request_clear(&r);
}
