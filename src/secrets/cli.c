/* cli.c - the `secrets` client commands (add, lease, revoke, leases, list, rm,
 * audit, status): turn options into one request through client.c and print
 * the answer, as text or (--json) as one canonical JSON document. Failures
 * are one line on stderr, "secrets: <message>", and the documented exit code.
 *
 * Values: read from stdin straight into guarded memory (no stdio buffers),
 * and a leased value is written to stdout with write(2) from guarded memory.
 * --value's text sits in argv; main.c wipes it there after parsing. */
#include "secrets/cli.h"
#include "common/clock.h"
#include "common/json.h"
#include "secrets/client.h"
#include "secrets/proto.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int secrets_fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "secrets: %s\n", msg);
    return secrets_exit_code(code);
}

int secrets_usage_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "secrets: %s\n", msg);
    return 2;
}

int secrets_store_dir(const struct secrets_opts *o, char *out, size_t outsz)
{
    const char *xdg = sb_env("XDG_DATA_HOME"), *home = sb_env("HOME");
    int n;
    if (o->store && *o->store)
        n = snprintf(out, outsz, "%s", o->store);
    else if (xdg && *xdg)
        n = snprintf(out, outsz, "%s/sysbus/secrets", xdg);
    else if (home && *home)
        n = snprintf(out, outsz, "%s/.local/share/sysbus/secrets", home);
    else
        return SB_ECONFIG;
    return n < 0 || (size_t)n >= outsz ? SB_ECONFIG : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Prints v as one canonical JSON line; takes v. */
static int print_json(json_t *v)
{
    char *s = sb_json_dumps(v, NULL);
    json_decref(v);
    if (!s)
        return secrets_fail(SB_ENOMEM, "cannot encode the output");
    printf("%s\n", s);
    free(s);
    return 0;
}

/* The text printers read answers that come from whoever listens on the
 * socket: a missing string prints as "-", and a duration in seconds is taken
 * only within 0..10 years, so no answer can make them print NULL or overflow. */
static const char *text_of(const json_t *obj, const char *key)
{
    const char *s = sb_json_str(obj, key);
    return s ? s : "-";
}

static int64_t ms_of_seconds(const json_t *obj, const char *key)
{
    int64_t s = json_integer_value(json_object_get(obj, key));
    const int64_t max = 10LL * 366 * 86400;
    return (s < 0 ? 0 : s > max ? max : s) * 1000;
}

static int socket_of(const struct secrets_opts *o, char *out, size_t outsz)
{
    struct sb_err err = { 0 };
    int rc = secrets_socket_path(o->socket, out, outsz, &err);
    return rc ? secrets_fail(rc, "%s", err.msg) : 0;
}

static int timeout_of(const struct secrets_opts *o)
{
    return o->timeout_ms > 0 ? (int)o->timeout_ms : SECRETS_DEFAULT_TIMEOUT_MS;
}

static void request_init(struct secrets_request *r, enum secrets_op op,
                         const struct secrets_opts *o)
{
    memset(r, 0, sizeof *r);
    r->op = op;
    snprintf(r->client_id, sizeof r->client_id, "%s",
             o->client_id && *o->client_id ? o->client_id : "cli");
}

/* One metadata request; on success *answer (new ref) without its "ok". */
static int call(const struct secrets_opts *o, const struct secrets_request *r, json_t **answer)
{
    char sock[256];
    int rc = socket_of(o, sock, sizeof sock);
    if (rc)
        return rc;
    struct sb_err err = { 0 };
    rc = secrets_call(sock, r, timeout_of(o), answer, &err);
    if (rc)
        return secrets_fail(rc, "%s", err.msg);
    json_object_del(*answer, "ok");
    return 0;
}

static int check_client_id(const struct secrets_opts *o)
{
    if (o->client_id && *o->client_id && !secrets_client_id_valid(o->client_id))
        return secrets_fail(SB_EINVAL,
                            "invalid --client-id (allowed: letters, digits and _.:@/+=-; 1 to "
                            "%d bytes)",
                            SECRETS_CLIENT_ID_MAX);
    return 0;
}

static int check_name(const char *name)
{
    if (!secrets_name_valid(name))
        return secrets_fail(SB_EINVAL,
                            "invalid secret name (allowed: letters, digits, '_', '.', '-'; 1 to "
                            "%d bytes)",
                            SECRETS_NAME_MAX);
    return 0;
}

/* ---- add ----------------------------------------------------------------- */

/* The first line of stdin into guarded memory (prompting without echo on a
 * terminal). */
static int read_stdin_value(struct secrets_gbuf *v, const char *name)
{
    struct termios saved;
    bool tty = isatty(0) && tcgetattr(0, &saved) == 0;
    if (tty) {
        struct termios quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
        fprintf(stderr, "value for %s: ", name);
    }
    int rc = 0;
    for (;;) {
        size_t room = SECRETS_VALUE_MAX + 2 - v->len;
        if (room == 0)
            break;
        if (room > 4096)
            room = 4096;
        if ((rc = secrets_gbuf_reserve(v, room)))
            break;
        ssize_t r = read(0, v->data + v->len, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = SB_EIO;
            break;
        }
        if (r == 0)
            break;
        v->len += (size_t)r;
        v->data[v->len] = '\0';
        if (memchr(v->data + v->len - (size_t)r, '\n', (size_t)r))
            break;
    }
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (rc)
        return rc;
    char *nl = v->data ? memchr(v->data, '\n', v->len) : NULL;
    size_t keep = nl ? (size_t)(nl - v->data) : v->len;
    if (keep > 0 && v->data[keep - 1] == '\r')
        keep--;
    if (v->data) {
        sodium_memzero(v->data + keep, v->len - keep); /* the rest of stdin */
        v->len = keep;
    }
    return 0;
}

int secrets_cmd_add(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)npos;
    const char *name = pos[0];
    int rc = check_name(name);
    if (rc || (rc = check_client_id(o)))
        return rc;
    char sock[256];
    if ((rc = socket_of(o, sock, sizeof sock)))
        return rc;
    struct secrets_gbuf v = SECRETS_GBUF_INIT(SECRETS_VALUE_MAX + 2);
    const char *value;
    size_t len;
    if (o->value) {
        value = o->value;
        len = strlen(o->value);
    } else {
        if ((rc = read_stdin_value(&v, name))) {
            secrets_gbuf_free(&v);
            return secrets_fail(rc, "cannot read the value from stdin");
        }
        value = v.data ? v.data : "";
        len = v.len;
    }
    struct sb_err err = { 0 };
    if ((rc = secrets_value_check(value, len, &err))) {
        secrets_gbuf_free(&v);
        return secrets_fail(rc, "%s", err.msg);
    }
    bool created = false;
    rc = secrets_add(sock, name, value, len, o->client_id, timeout_of(o), &created, &err);
    secrets_gbuf_free(&v);
    if (rc)
        return secrets_fail(rc, "%s", err.msg);
    if (o->json)
        return print_json(json_pack("{s:s, s:b}", "name", name, "created", created));
    printf("%s %s\n", created ? "added" : "updated", name);
    return 0;
}

/* ---- lease --------------------------------------------------------------- */

int secrets_cmd_lease(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)npos;
    const char *name = pos[0];
    int rc = check_name(name);
    if (rc || (rc = check_client_id(o)))
        return rc;
    int64_t ttl = 0;
    if (o->ttl && secrets_ttl_parse(o->ttl, &ttl) != 0)
        return secrets_usage_fail("invalid --ttl '%s' (examples: 30s, 20m, 1h, 24h, or seconds)",
                                  o->ttl);
    char sock[256];
    if ((rc = socket_of(o, sock, sizeof sock)))
        return rc;
    struct secrets_lease l;
    struct sb_err err = { 0 };
    rc = secrets_lease(sock, name, ttl, o->client_id && *o->client_id ? o->client_id : "cli",
                       timeout_of(o), &l, &err);
    if (rc)
        return secrets_fail(rc, "%s", err.msg);
    int out_rc = 0;
    if (o->json) {
        /* built in guarded memory: it holds the value */
        struct secrets_gbuf b = SECRETS_GBUF_INIT(SECRETS_VALUE_MAX * 6 + 4096);
        char exp[40], num[64];
        sb_time_format_iso(l.expires_at * 1000, exp, sizeof exp);
        snprintf(num, sizeof num, ",\"ttl\":%lld", (long long)l.ttl);
        int e = secrets_gbuf_puts(&b, "{\"client_id\":");
        e = e ? e : secrets_gbuf_json_str(&b, l.client_id, strlen(l.client_id));
        e = e ? e : secrets_gbuf_puts(&b, ",\"expires_at\":");
        e = e ? e : secrets_gbuf_json_str(&b, exp, strlen(exp));
        e = e ? e : secrets_gbuf_puts(&b, ",\"lease_id\":");
        e = e ? e : secrets_gbuf_json_str(&b, l.lease_id, strlen(l.lease_id));
        e = e ? e : secrets_gbuf_puts(&b, ",\"secret_name\":");
        e = e ? e : secrets_gbuf_json_str(&b, l.secret_name, strlen(l.secret_name));
        e = e ? e : secrets_gbuf_puts(&b, num);
        e = e ? e : secrets_gbuf_puts(&b, ",\"value\":");
        e = e ? e : secrets_gbuf_json_str(&b, l.value, l.value_len);
        e = e ? e : secrets_gbuf_puts(&b, "}\n");
        if (e)
            out_rc = secrets_fail(e, "cannot encode the output");
        else if (write_all(1, b.data, b.len) != 0)
            out_rc = secrets_fail(SB_EIO, "cannot write to stdout: %s", strerror(errno));
        secrets_gbuf_free(&b);
    } else if (write_all(1, l.value, l.value_len) != 0) {
        out_rc = secrets_fail(SB_EIO, "cannot write to stdout: %s", strerror(errno));
    }
    secrets_lease_clear(&l);
    return out_rc;
}

/* ---- revoke -------------------------------------------------------------- */

int secrets_cmd_revoke(struct secrets_opts *o, char **pos, size_t npos)
{
    if (o->all == (npos == 1))
        return secrets_usage_fail("revoke takes one lease id, or --all (see secrets revoke "
                                  "--help)");
    int rc = check_client_id(o);
    if (rc)
        return rc;
    struct secrets_request r;
    json_t *a = NULL;
    if (o->all) {
        request_init(&r, SECRETS_OP_REVOKE_ALL, o);
        if ((rc = call(o, &r, &a)))
            return rc;
        if (o->json)
            return print_json(a);
        printf("revoked %lld active lease(s)\n",
               (long long)json_integer_value(json_object_get(a, "revoked")));
        json_decref(a);
        return 0;
    }
    request_init(&r, SECRETS_OP_REVOKE, o);
    if (strlen(pos[0]) >= sizeof r.lease_id)
        return secrets_fail(SB_EINVAL, "invalid lease id");
    snprintf(r.lease_id, sizeof r.lease_id, "%s", pos[0]);
    if ((rc = call(o, &r, &a)))
        return rc;
    if (o->json)
        return print_json(a);
    printf("revoked %s\n", pos[0]);
    json_decref(a);
    return 0;
}

/* ---- leases / list ------------------------------------------------------- */

int secrets_cmd_leases(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)pos, (void)npos;
    struct secrets_request r;
    request_init(&r, SECRETS_OP_LEASES, o);
    json_t *a = NULL;
    int rc = call(o, &r, &a);
    if (rc)
        return rc;
    if (o->json)
        return print_json(a);
    json_t *arr = json_object_get(a, "leases");
    printf("%-26s  %-24s  %-20s  %-24s  %s\n", "LEASE_ID", "SECRET", "CLIENT", "EXPIRES_AT",
           "REMAINING");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *l = json_array_get(arr, i);
        char left[32];
        sb_duration_format(ms_of_seconds(l, "remaining_s"), left, sizeof left);
        printf("%-26s  %-24s  %-20s  %-24s  %s\n", text_of(l, "lease_id"),
               text_of(l, "secret_name"), text_of(l, "client_id"), text_of(l, "expires_at"), left);
    }
    json_decref(a);
    return 0;
}

int secrets_cmd_list(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)pos, (void)npos;
    struct secrets_request r;
    request_init(&r, SECRETS_OP_LIST, o);
    json_t *a = NULL;
    int rc = call(o, &r, &a);
    if (rc)
        return rc;
    if (o->json)
        return print_json(a);
    json_t *arr = json_object_get(a, "secrets");
    printf("%-32s  %-24s  %-24s  %s\n", "NAME", "CREATED", "UPDATED", "LEASES");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i);
        printf("%-32s  %-24s  %-24s  %lld\n", text_of(s, "name"), text_of(s, "created_at"),
               text_of(s, "updated_at"),
               (long long)json_integer_value(json_object_get(s, "active_leases")));
    }
    json_decref(a);
    return 0;
}

/* ---- rm / audit / status ------------------------------------------------- */

int secrets_cmd_rm(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)npos;
    int rc = check_name(pos[0]);
    if (rc || (rc = check_client_id(o)))
        return rc;
    struct secrets_request r;
    request_init(&r, SECRETS_OP_RM, o);
    snprintf(r.name, sizeof r.name, "%s", pos[0]);
    json_t *a = NULL;
    if ((rc = call(o, &r, &a)))
        return rc;
    if (o->json)
        return print_json(a);
    printf("removed %s (%lld active lease(s) revoked)\n", pos[0],
           (long long)json_integer_value(json_object_get(a, "revoked_leases")));
    json_decref(a);
    return 0;
}

int secrets_cmd_audit(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)pos, (void)npos;
    struct secrets_request r;
    request_init(&r, SECRETS_OP_AUDIT, o);
    r.tail = o->tail;
    json_t *a = NULL;
    int rc = call(o, &r, &a);
    if (rc)
        return rc;
    json_t *arr = json_object_get(a, "entries");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char *s = sb_json_dumps(json_array_get(arr, i), NULL);
        if (s)
            printf("%s\n", s);
        free(s);
    }
    json_decref(a);
    return 0;
}

int secrets_cmd_status(struct secrets_opts *o, char **pos, size_t npos)
{
    (void)pos, (void)npos;
    struct secrets_request r;
    request_init(&r, SECRETS_OP_STATUS, o);
    json_t *a = NULL;
    int rc = call(o, &r, &a);
    if (rc)
        return rc;
    if (o->json)
        return print_json(a);
    char up[32];
    sb_duration_format(ms_of_seconds(a, "uptime_s"), up, sizeof up);
    printf("daemon:        running (pid %lld, version %s)\n"
           "socket:        %s\n"
           "store:         %s (%s)\n"
           "secrets:       %lld\n"
           "active leases: %lld\n"
           "uptime:        %s\n",
           (long long)json_integer_value(json_object_get(a, "pid")), text_of(a, "version"),
           text_of(a, "socket"), text_of(a, "store"), text_of(a, "key_source"),
           (long long)json_integer_value(json_object_get(a, "secrets")),
           (long long)json_integer_value(json_object_get(a, "active_leases")), up);
    json_decref(a);
    return 0;
}
