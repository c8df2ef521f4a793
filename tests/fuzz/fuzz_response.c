/* Fuzz target: a worker's answer to a call (outcome.c). The first byte picks
 * the HTTP status and header flags; the rest is the body. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/engine/engine_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = { 200, 206, 400, 401, 404, 500, 502, 503 };
    if (size < 1)
        return 0;
    struct sbd_call c;
    memset(&c, 0, sizeof c);
    c.no_retry = (data[0] >> 3) % 3 - 1;
    c.has_sdk_header = (data[0] >> 5) & 1;
    c.req_version = INT_MIN;
    if ((data[0] >> 6) & 1)
        strcpy(c.retry_after, "Fri, 27 Nov 2026 17:01:00 GMT");
    c.resp.max = 1 << 20;
    if (sb_buf_append(&c.resp, data + 1, size - 1) != 0)
        return 0;
    struct sbd_call_result r;
    outcome_parse((data[0] >> 7) ? CURLE_RECV_ERROR : CURLE_OK, false, statuses[data[0] & 7], &c,
                  &r);
    if (r.kind == RES_DONE && !r.output)
        abort();
    if (r.kind == RES_ERROR && (!r.error || !r.message))
        abort();
    if (r.kind == RES_OPS && !json_is_array(r.ops))
        abort();
    outcome_free(&r);
    sb_buf_free(&c.resp);
    return 0;
}
