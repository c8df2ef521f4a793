/* Fuzz target: the functions of a registration body (POST /fn/register), as
 * parsed by the registry; then trigger matching on the parsed functions. */
#include <stdint.h>
#include <stdlib.h>

#include "common/json.h"
#include "server/event.h"
#include "server/registry.h"

static void count(void *ctx, const struct sbd_fn *f)
{
    (void)f;
    (*(int *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = sb_json_parse((const char *)data, size, NULL);
    if (!body)
        return 0;
    json_t *fns = json_object_get(body, "functions");
    struct sbd_registry *reg;
    if (sbd_registry_new(&reg) != 0)
        abort();
    struct sbd_fn *parsed[16];
    size_t n = 0;
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f)
    {
        if (n == 16)
            break;
        struct sb_err err;
        struct sbd_fn *p = sbd_fn_parse(f, "app", &err);
        if (p)
            parsed[n++] = p;
    }
    sbd_registry_replace_app(reg, "app", parsed, n);
    struct sbd_reg_snap *s = sbd_registry_acquire(reg);
    int hits = 0;
    const char *name = sb_json_str(body, "probe");
    /* name and body borrowed from the input: only the parsed tree is freed */
    struct sbd_event ev = { .name = (char *)(name ? name : "a/b"),
                            .body = (char *)sb_json_str(body, "event_body") };
    sbd_snap_match(s, &ev, count, &hits);
    json_decref(ev.json);
    sbd_snap_release(s);
    for (size_t k = 0; k < n; k++)
        sbd_fn_unref(parsed[k]);
    sbd_registry_free(reg);
    json_decref(body);
    return 0;
}
