/* Fuzz target: the secrets daemon's request path, from the bytes a peer sends
 * to the answer it gets, against a real store in a temporary directory
 * (src/secrets/ops.c over proto.c, jscan.c, store.c, lease.c, audit.c), and
 * the scanner the client reads answers with.
 *
 * Each input is split at newlines into up to 8 request lines, handled in
 * order as the daemon would handle them on one connection. Invariants: no
 * crash, leak or sanitizer report on any input; every answer is exactly one
 * line of JSON with a boolean "ok" (a lease's is read with the scanner); after
 * each input the daemon state survives: the table is sorted and valid, a
 * status request still answers with the right count, and every so often the
 * store reopened from disk holds exactly what memory holds. Parsing alone
 * keeps its own invariants: a request that parses re-encodes to a line that
 * parses to the same request, and every string the scanner accepts decodes
 * (or is refused) without overrunning its buffer. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "secrets/ops.h"
#include "secrets/proto.h"

#define MAX_LINES 8
#define KEEP_SECRETS 8 /* more than this and the store is emptied (each write rewrites it) */
#define REOPEN_EVERY 64

static struct secrets_service svc;
static char dir[64];
static const struct secrets_peer me = { 1000, 1000, 4242 };

static void remove_store(void)
{
    static const char *files[] = { "secrets.db", "secrets.db.tmp", "master.key", "audit.log",
                                   "lock" };
    secrets_audit_close(&svc.audit);
    secrets_store_close(&svc.store);
    secrets_leases_free(&svc.leases);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void setup(void)
{
    if (sodium_init() < 0)
        abort();
    sb_log_init("secrets", SB_OFF, 2); /* refusals log warnings: not the point here */
    /* tmpfs when there is one: the store fsyncs every write */
    snprintf(dir, sizeof dir, "%s/fuzz-secrets-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    struct sb_err err = { 0 };
    if (!mkdtemp(dir) || secrets_store_create(dir, NULL, NULL, &err) != 0 ||
        secrets_store_open(&svc.store, dir, NULL, NULL, &err) != 0 ||
        secrets_audit_open(&svc.audit, dir, &err) != 0) {
        fprintf(stderr, "fuzz setup: %s\n", err.msg);
        abort();
    }
    svc.socket_path = "/nonexistent/fuzz.sock";
    atexit(remove_store);
}

/* ---- parser-only invariants ---------------------------------------------- */

static int decode_all(void *ctx, const char *key, enum secrets_jtype t, const char *raw,
                      size_t rawlen)
{
    (void)ctx;
    if (strlen(key) > SECRETS_JSON_KEY_MAX * 2 + 1)
        abort(); /* a member name beyond the envelope was reported */
    if (t == SECRETS_J_STRING) {
        char small[8];
        secrets_json_unescape(raw, rawlen, small, sizeof small, NULL);
        char *big = malloc(rawlen + 1);
        size_t n = 0;
        if (secrets_json_unescape(raw, rawlen, big, rawlen + 1, &n) == 0 &&
            !secrets_utf8_valid(big, n))
            abort(); /* decoded text must be valid UTF-8 */
        if (secrets_json_raw_has_nul(raw, rawlen) && memchr(big, '\0', n))
            abort(); /* \u0000 is never decoded into the text */
        free(big);
    } else if (t == SECRETS_J_NUMBER) {
        int64_t v;
        secrets_json_int(raw, rawlen, &v);
    }
    return 0;
}

static void parse_round_trip(const char *text, size_t size)
{
    secrets_json_scan(text, size, decode_all, NULL, NULL);
    sb_json_check_depth(text, size, SECRETS_JSON_DEPTH_MAX, NULL);
    struct secrets_request r;
    struct sb_err err;
    if (secrets_request_parse(text, size, &r, &err) != 0) {
        if (r.value)
            abort(); /* a refused request never keeps a value */
        secrets_request_clear(&r);
        return;
    }
    struct secrets_gbuf line = SECRETS_GBUF_INIT(SECRETS_REQUEST_MAX);
    if (secrets_request_encode(&r, &line) != 0)
        abort();
    struct secrets_request again;
    if (secrets_request_parse(line.data, line.len - 1, &again, &err) != 0)
        abort();
    bool named = r.op == SECRETS_OP_ADD || r.op == SECRETS_OP_LEASE || r.op == SECRETS_OP_RM;
    if (again.op != r.op || (named && strcmp(again.name, r.name) != 0) ||
        strcmp(again.client_id, r.client_id) != 0 || again.value_len != r.value_len ||
        (r.value && memcmp(again.value, r.value, r.value_len) != 0) ||
        (r.op == SECRETS_OP_LEASE && (again.has_ttl != r.has_ttl || again.ttl != r.ttl)) ||
        (r.op == SECRETS_OP_REVOKE && strcmp(again.lease_id, r.lease_id) != 0) ||
        (r.op == SECRETS_OP_AUDIT && again.tail != r.tail))
        abort();
    secrets_request_clear(&again);
    secrets_request_clear(&r);
    secrets_gbuf_free(&line);
}

/* ---- the request path ---------------------------------------------------- */

static int lease_field(void *ctx, const char *key, enum secrets_jtype t, const char *raw,
                       size_t rawlen)
{
    (void)raw, (void)rawlen;
    int *seen = ctx;
    if (strcmp(key, "ok") == 0 && t == SECRETS_J_TRUE)
        *seen |= 1;
    if (strcmp(key, "value") == 0 && t == SECRETS_J_STRING)
        *seen |= 2;
    return 0;
}

/* One answer must be one JSON line with a boolean "ok"; returns the parsed
 * answer (new reference) for a jansson-built one, NULL for a lease. */
static json_t *check_answer(const struct secrets_answer *a)
{
    if (!a->line || a->len == 0 || a->line[a->len - 1] != '\n' || memchr(a->line, '\n', a->len - 1))
        abort();
    if (a->guarded) {
        int seen = 0;
        if (secrets_json_scan(a->line, a->len - 1, lease_field, &seen, NULL) != 0 || seen != 3)
            abort(); /* only a granted lease is built in guarded memory */
        return NULL;
    }
    json_t *j = sb_json_parse_ints(a->line, a->len - 1, NULL);
    bool ok;
    if (!j || !json_is_object(j) || !sb_json_get_bool(j, "ok", &ok))
        abort();
    if (!ok && !sb_json_str(json_object_get(j, "error"), "code"))
        abort();
    return j;
}

static json_t *request(const char *line, size_t len)
{
    struct secrets_answer a = { 0 };
    secrets_handle_line(&svc, &me, line, len, &a);
    json_t *j = check_answer(&a);
    secrets_answer_release(&a);
    return j;
}

/* The state after an input: sorted, valid names; status agrees; and now and
 * then the store on disk holds exactly what memory holds. */
static void check_state(void)
{
    static unsigned inputs;
    const struct secrets_store *st = &svc.store;
    if (st->n > SECRETS_MAX_SECRETS || svc.leases.n > SECRETS_MAX_LEASES)
        abort();
    for (size_t i = 0; i < st->n; i++)
        if (!secrets_name_valid(st->v[i].name) ||
            (i > 0 && strcmp(st->v[i - 1].name, st->v[i].name) >= 0))
            abort();
    static const char status[] = "{\"op\":\"status\"}";
    json_t *j = request(status, sizeof status - 1);
    int64_t n = -1;
    if (!j || !json_is_true(json_object_get(j, "ok")) || !sb_json_get_int(j, "secrets", &n) ||
        n != (int64_t)st->n)
        abort();
    json_decref(j);
    if (++inputs % REOPEN_EVERY)
        return;
    /* a daemon restart: what is on disk must be what memory held */
    size_t before = st->n;
    char(*names)[SECRETS_NAME_MAX + 1] = calloc(before + 1, sizeof *names);
    unsigned char(*sums)[32] = calloc(before + 1, sizeof *sums);
    for (size_t i = 0; i < before; i++) {
        memcpy(names[i], st->v[i].name, sizeof names[i]);
        crypto_generichash(sums[i], 32, (const unsigned char *)st->v[i].value, st->v[i].value_len,
                           NULL, 0);
    }
    secrets_store_close(&svc.store);
    struct sb_err err = { 0 };
    if (secrets_store_open(&svc.store, dir, NULL, NULL, &err) != 0) {
        fprintf(stderr, "reopen: %s\n", err.msg);
        abort();
    }
    if (st->n != before)
        abort();
    for (size_t i = 0; i < before; i++) {
        unsigned char sum[32];
        crypto_generichash(sum, 32, (const unsigned char *)st->v[i].value, st->v[i].value_len, NULL,
                           0);
        if (strcmp(names[i], st->v[i].name) != 0 || memcmp(sum, sums[i], 32) != 0)
            abort();
    }
    free(names);
    free(sums);
}

/* Keeps each run cheap: a short audit file, a small store, few leases. */
static void trim_state(void)
{
    if (ftruncate(svc.audit.fd, 0) != 0)
        abort();
    while (svc.store.n > KEEP_SECRETS) {
        struct sb_err err;
        char name[SECRETS_NAME_MAX + 1];
        memcpy(name, svc.store.v[0].name, sizeof name);
        if (secrets_store_remove(&svc.store, name, &err) != 0)
            abort();
    }
    if (svc.leases.n > 256)
        secrets_leases_revoke_all(&svc.leases, sb_now_ms());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    const char *text = (const char *)data;
    parse_round_trip(text, size);

    trim_state();
    const char *p = text, *end = text + size;
    for (int k = 0; k < MAX_LINES && p < end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_decref(request(p, len));
        p += len + 1;
    }
    check_state();
    return 0;
}
