/* Fuzz target: cron expressions (registration input) and next-fire search.
 * Invariant: a next fire time is strictly after the given instant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/cron/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char spec[300];
    if (size >= sizeof spec)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    struct sbd_cron *c = sbd_cron_parse(spec, NULL);
    if (c) {
        int64_t after = 1795798800000;
        int64_t t = sbd_cron_next(c, after);
        if (t != -1 && t <= after)
            abort();
        sbd_cron_free(c);
    }
    return 0;
}
