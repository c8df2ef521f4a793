/* Fuzz target: the canonical JSON writer. Invariant: canonical output parses
 * back to a value whose canonical output is identical (idempotence). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = sb_json_parse((const char *)data, size, NULL);
    if (!v)
        return 0;
    size_t len;
    char *once = sb_json_dumps(v, &len);
    if (once) {
        json_t *w = sb_json_parse(once, len, NULL);
        if (!w)
            abort();
        char *twice = sb_json_dumps(w, NULL);
        if (!twice || strcmp(once, twice) != 0)
            abort();
        free(twice);
        json_decref(w);
    }
    free(once);
    json_decref(v);
    return 0;
}
