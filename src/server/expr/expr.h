/* expr.h - the expression language of triggers, waits, cancellations and
 * flow-control keys: the subset of CEL that Inngest SDK users write.
 *
 *   event.data.plan in ['pro', 'team'] && event.data.amount >= 100
 *   async.data.id == event.data.id
 *   !has(event.data.test) || event.data.email.endsWith('@example.com')
 *   event.data.user_id                       (a key: any value)
 *
 * Supported, and nothing else: the variables the caller allows (event,
 * async); field access (a.b, a['b'], list[0]); literals (strings in '...' or
 * "..." with the escapes \n \t \r \\ \' \", numbers, true, false, null, lists
 * [..]); operators || && ! == != < <= > >= in, + - * / %, unary -, ?: ; the
 * calls size(x), x.size(), x.startsWith(s), x.endsWith(s), x.contains(s),
 * has(a.b), string(x), int(x). Everything else (other functions or methods
 * such as matches(), macros such as exists() or all(), map literals, other
 * escapes, 'in' without a left operand or with a literal that is not a list
 * on its right, an operator on a literal of the wrong type) is refused when
 * compiling, with the construct and its column: an expression that can
 * never work is never accepted. What depends on the data (a field holding a
 * string where a number is needed) can still fail when evaluated, and a
 * failed evaluation is not a match. A missing field is null (not an error).
 * Comparisons between different types are false; && and || short-circuit
 * and treat non-booleans as errors.
 *
 * An expression is compiled once (at registration, where an error is
 * reported with its column) and evaluated many times, read-only, from any
 * thread. Limits: 4096 bytes of source, 64 levels of nesting (of brackets,
 * calls and operators: a chain of N `||` is N levels). */
#ifndef SBD_EXPR_H
#define SBD_EXPR_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"

#define SBD_EXPR_MAX_SOURCE 4096

struct sbd_expr;

struct sbd_expr_var {
    const char *name;
    const json_t *value;
};

/* What an expression may use and must be (flags of sbd_expr_compile_as). */
#define SBD_EXPR_EVENT 0x1u /* may name `event` */
#define SBD_EXPR_ASYNC 0x2u /* may name `async` */
#define SBD_EXPR_COND 0x4u  /* is a condition: must be able to be a bool */
#define SBD_EXPR_NUM 0x8u   /* must be able to be a number (a priority) */
/* Only syntax and limits are checked, not the subset: for an expression an
 * earlier sysbusd accepted and stored, which keeps behaving as it did. */
#define SBD_EXPR_UNCHECKED 0x10u

/* Compiles src. NULL with err ("<what> at column N") when src is not in the
 * supported subset, names a variable flags do not allow, or can never be
 * true or false (SBD_EXPR_COND) or a number (SBD_EXPR_NUM). */
struct sbd_expr *sbd_expr_compile_as(const char *src, unsigned flags, struct sb_err *err);
/* A condition over event and async, as a waitForEvent `if`:
 * sbd_expr_compile_as(src, SBD_EXPR_EVENT | SBD_EXPR_ASYNC | SBD_EXPR_COND, err). */
struct sbd_expr *sbd_expr_compile(const char *src, struct sb_err *err);
void sbd_expr_free(struct sbd_expr *e);
const char *sbd_expr_source(const struct sbd_expr *e);

/* Evaluates e; returns a new reference, or NULL with err on a runtime error
 * (e.g. a type error in arithmetic). */
json_t *sbd_expr_eval(const struct sbd_expr *e, const struct sbd_expr_var *vars, size_t nvars,
                      struct sb_err *err);
/* True only when e evaluates to the boolean true (errors are false). */
bool sbd_expr_test(const struct sbd_expr *e, const struct sbd_expr_var *vars, size_t nvars);

#endif
