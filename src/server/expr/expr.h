/* expr.h - the expression language of triggers, waits, cancellations and
 * flow-control keys: the subset of CEL that Inngest SDK users write.
 *
 *   event.data.plan in ['pro', 'team'] && event.data.amount >= 100
 *   async.data.id == event.data.id
 *   !has(event.data.test) || event.data.email.endsWith('@example.com')
 *   event.data.user_id                       (a key: any value)
 *
 * Supported: field access (a.b, a['b'], list[0]) on the variables given
 * (event, async, ...); literals (strings in '...' or "..." with \ escapes,
 * numbers, true, false, null, lists [..]); operators || && ! == != < <= > >=
 * in, + - * / %, unary -, ?: ; calls size(x), x.size(), x.startsWith(s),
 * x.endsWith(s), x.contains(s), has(a.b), string(x), int(x). A missing field
 * is null (not an error). Comparisons between different types are false;
 * && and || short-circuit and treat non-booleans as errors.
 *
 * An expression is compiled once (at registration, where a syntax error is
 * reported with its position) and evaluated many times, read-only, from any
 * thread. Limits: 4096 bytes of source, 64 levels of nesting. */
#ifndef SBD_EXPR_H
#define SBD_EXPR_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"

#define SB_EXPR_MAX_SOURCE 4096

struct sb_expr;

struct sb_expr_var {
    const char *name;
    const json_t *value;
};

/* Compiles src. NULL with err ("position N: ...") on a syntax error. */
struct sb_expr *sb_expr_compile(const char *src, struct sb_err *err);
void sb_expr_free(struct sb_expr *e);
const char *sb_expr_source(const struct sb_expr *e);

/* Evaluates e; returns a new reference, or NULL with err on a runtime error
 * (e.g. a type error in arithmetic). */
json_t *sb_expr_eval(const struct sb_expr *e, const struct sb_expr_var *vars, size_t nvars,
                     struct sb_err *err);
/* True only when e evaluates to the boolean true (errors are false). */
bool sb_expr_test(const struct sb_expr *e, const struct sb_expr_var *vars, size_t nvars);

#endif
