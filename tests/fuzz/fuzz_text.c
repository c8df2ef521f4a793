/* Fuzz target: small text parsers fed by HTTP headers and payloads:
 * signature headers, Retry-After, durations, ISO and HTTP dates, base64,
 * ULIDs, signing keys and bearer tokens. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/sign.h"
#include "common/ulid.h"
#include "server/engine/backoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    static struct sb_signing_key key;
    static int init;
    if (!init) {
        sb_signing_key_init(&key, "signkey-test-8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3c", NULL);
        init = 1;
    }
    struct sb_err err;
    sb_sign_verify(&key, s, "body", 4, 1795800000, 300, &err);
    /* any bearer: stripped of at most one prefix, compared, never matched by
     * something that is not a form of the key */
    if (sb_signing_key_matches_bearer(&key, s) && !strstr(s, "8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3c") &&
        !strstr(s, "83b93c23d48fc6ad1be182af708f60a5c995a5bbbf4379f41d940aab622d0202"))
        abort();
    struct sb_signing_key any;
    sb_signing_key_init(&any, s, &err);
    int64_t ms = sbd_retry_after_ms(s, 1795800000000);
    if (ms != -1 && (ms < 1000 || ms > 86400000))
        abort();
    int64_t d;
    if (sb_duration_parse(s, 1, &d) == 0 && d < 0)
        abort();
    sb_time_parse_iso(s, &d);
    sb_time_parse_http(s, &d);
    uint8_t out[64];
    sb_base64_decode(s, strlen(s), out, sizeof out);
    if (sb_ulid_valid(s))
        (void)sb_ulid_time(s);
    free(s);
    return 0;
}
