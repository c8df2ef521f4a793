/* Fuzz target: the secrets daemon's request parser (src/secrets/proto.c),
 * which reads untrusted bytes from anyone allowed on the socket, and the
 * scanner the client reads answers with. Invariants: no crash or leak on any
 * input; a request that parses re-encodes to a line that parses to the same
 * request (fields and value byte for byte); every string the scanner accepts
 * decodes (or is refused) without overrunning its buffer. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/proto.h"

static int decode_all(void *ctx, const char *key, enum secrets_jtype t, const char *raw,
                      size_t rawlen)
{
    (void)ctx, (void)key;
    if (t == SECRETS_J_STRING) {
        char small[8];
        secrets_json_unescape(raw, rawlen, small, sizeof small, NULL);
        char *big = malloc(rawlen + 1);
        size_t n = 0;
        if (secrets_json_unescape(raw, rawlen, big, rawlen + 1, &n) == 0 &&
            !secrets_utf8_valid(big, n))
            abort(); /* decoded text must be valid UTF-8 */
        free(big);
    } else if (t == SECRETS_J_NUMBER) {
        int64_t v;
        secrets_json_int(raw, rawlen, &v);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = 1;
    }
    const char *text = (const char *)data;
    secrets_json_scan(text, size, decode_all, NULL, NULL);

    struct secrets_request r;
    struct sb_err err;
    if (secrets_request_parse(text, size, &r, &err) != 0) {
        if (r.value)
            abort(); /* a refused request never keeps a value */
        secrets_request_clear(&r);
        return 0;
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
    return 0;
}
