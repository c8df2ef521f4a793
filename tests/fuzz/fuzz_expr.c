/* Fuzz target: the expression compiler, its subset checker and evaluator.
 * The input is split at the first newline: the expression, then a JSON
 * event. Each expression is compiled as a condition, as a key and
 * unchecked (as a stored function's), and evaluated when it parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/expr/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t elen = nl ? (size_t)(nl - data) : size;
    char *src = malloc(elen + 1);
    if (!src)
        return 0;
    memcpy(src, data, elen);
    src[elen] = '\0';
    json_t *ev = nl ? sb_json_parse((const char *)nl + 1, size - elen - 1, NULL) : NULL;
    struct sb_err err;
    struct sbd_expr *cond = sbd_expr_compile(src, &err);
    struct sbd_expr *key = sbd_expr_compile_as(src, SBD_EXPR_EVENT | SBD_EXPR_ASYNC, &err);
    /* as a stored function's (subset unchecked): also what the checker refuses */
    struct sbd_expr *e =
        sbd_expr_compile_as(src, SBD_EXPR_EVENT | SBD_EXPR_ASYNC | SBD_EXPR_UNCHECKED, &err);
    if ((cond || key) && !e)
        abort(); /* the check only ever refuses more */
    sbd_expr_free(cond);
    sbd_expr_free(key);
    if (e) {
        struct sbd_expr_var vars[] = { { "event", ev }, { "async", ev } };
        json_t *v = sbd_expr_eval(e, vars, 2, &err);
        json_decref(v);
        sbd_expr_test(e, vars, 2);
        sbd_expr_free(e);
    }
    json_decref(ev);
    free(src);
    return 0;
}
