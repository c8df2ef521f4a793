/* expr_check.c - refuses, at compile time, every parsed expression that uses
 * something outside the supported CEL subset (expr.h) or that can never
 * work: an unknown function, method or macro, a call with the wrong number
 * of arguments, a variable the caller does not provide, an operator applied
 * to a literal of the wrong type, 'in' with a literal that is not a list on
 * its right, a condition that can never be a bool (or a priority that can
 * never be a number). Without this, such an
 * expression would be accepted and then fail at every evaluation, which
 * reads as "never matches".
 *
 * Types are tracked only as far as literals make them certain: a field of
 * an event is "any" and accepted everywhere, since only its value decides.
 * The walk recurses once per level of the tree, whose height the parser has
 * already bounded (EXPR_MAX_DEPTH). */
#include "expr_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is known of a value before evaluation. */
enum vtype { VT_ANY, VT_BOOL, VT_NUM, VT_STR, VT_LIST, VT_NULL };

struct checker {
    const char *src;
    unsigned flags;
    struct sb_err *err;
};

/* The supported calls: arguments as a function (f(x)) and as a method
 * (x.f()), -1 where that form does not exist. */
static const struct builtin {
    const char *name;
    int fn_args;
    int method_args;
} builtins[] = {
    { "size", 1, 0 },        { "has", 1, -1 },      { "string", 1, -1 },   { "int", 1, -1 },
    { "startsWith", -1, 1 }, { "endsWith", -1, 1 }, { "contains", -1, 1 },
};

/* CEL's macros, named as such in the refusal. */
static const char *const macros[] = { "all", "exists", "exists_one", "map", "filter" };

static int refuse(const struct checker *c, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(const struct checker *c, size_t pos, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sb_err_set(c->err, SB_EINVAL, "%s at column %zu", msg, expr_column(c->src, pos));
}

static const char *vt_name(enum vtype t)
{
    static const char *const names[] = { "value", "bool", "number", "string", "list", "null" };
    return names[t];
}

static enum vtype literal_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_TRUE:
    case JSON_FALSE: return VT_BOOL;
    case JSON_INTEGER:
    case JSON_REAL: return VT_NUM;
    case JSON_STRING: return VT_STR;
    case JSON_ARRAY: return VT_LIST;
    case JSON_NULL: return VT_NULL;
    default: return VT_ANY;
    }
}

/* Is t (possibly "any") one of the allowed types a or b? */
static bool fits(enum vtype t, enum vtype a, enum vtype b)
{
    return t == VT_ANY || t == a || t == b;
}

static int check(const struct checker *c, const struct sbd_expr_node *n, enum vtype *out);

static const char *op_text(enum sbd_expr_tok_kind op)
{
    switch (op) {
    case T_PLUS: return "+";
    case T_MINUS: return "-";
    case T_STAR: return "*";
    case T_SLASH: return "/";
    case T_PERCENT: return "%";
    case T_AND: return "&&";
    case T_OR: return "||";
    default: return "?";
    }
}

static bool is_literal_zero(const struct sbd_expr_node *n)
{
    return n->kind == N_LIT && json_is_number(n->lit) && json_number_value(n->lit) == 0;
}

/* + on two known types: numbers, strings or lists, both the same. */
static int check_plus(const struct checker *c, const struct sbd_expr_node *n, enum vtype a,
                      enum vtype b, enum vtype *out)
{
    for (int i = 0; i < 2; i++) {
        enum vtype t = i ? b : a;
        if (t == VT_BOOL || t == VT_NULL)
            return refuse(c, n->pos, "'+' applied to a %s", vt_name(t));
    }
    if (a != VT_ANY && b != VT_ANY && a != b)
        return refuse(c, n->pos, "'+' cannot add a %s and a %s", vt_name(a), vt_name(b));
    *out = a != VT_ANY ? a : b;
    return 0;
}

static int check_binary(const struct checker *c, const struct sbd_expr_node *n, enum vtype *out)
{
    enum vtype a, b;
    if (check(c, n->a, &a) || check(c, n->b, &b))
        return SB_EINVAL;
    switch (n->op) {
    case T_AND:
    case T_OR:
        for (int i = 0; i < 2; i++) {
            enum vtype t = i ? b : a;
            if (!fits(t, VT_BOOL, VT_BOOL))
                return refuse(c, n->pos, "'%s' needs bools, not a %s", op_text(n->op), vt_name(t));
        }
        *out = VT_BOOL;
        return 0;
    case T_IDENT: /* in */
        if (!fits(b, VT_LIST, VT_LIST))
            return refuse(c, n->pos, "'in' needs a list (or a map) on its right, not a %s",
                          vt_name(b));
        *out = VT_BOOL;
        return 0;
    case T_PLUS: return check_plus(c, n, a, b, out);
    case T_MINUS:
    case T_STAR:
    case T_SLASH:
    case T_PERCENT:
        for (int i = 0; i < 2; i++) {
            enum vtype t = i ? b : a;
            if (!fits(t, VT_NUM, VT_NUM))
                return refuse(c, n->pos, "'%s' needs numbers, not a %s", op_text(n->op),
                              vt_name(t));
        }
        if ((n->op == T_SLASH || n->op == T_PERCENT) && is_literal_zero(n->b))
            return refuse(c, n->pos, "%s by zero", n->op == T_SLASH ? "division" : "modulus");
        *out = VT_NUM;
        return 0;
    default: /* comparisons: values of different types compare false, not an error */
        *out = VT_BOOL;
        return 0;
    }
}

static const struct builtin *find_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

static bool is_macro(const char *name)
{
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
        if (strcmp(macros[i], name) == 0)
            return true;
    return false;
}

/* The name and argument count of a call against the table. */
static int check_call_shape(const struct checker *c, const struct sbd_expr_node *n)
{
    bool method = n->kind == N_METHOD;
    const struct builtin *b = find_builtin(n->name);
    if (!b && is_macro(n->name))
        return refuse(c, n->pos, "unsupported macro '%s'", n->name);
    if (!b)
        return refuse(c, n->pos, "unsupported %s call '%s'", method ? "method" : "function",
                      n->name);
    int want = method ? b->method_args : b->fn_args;
    if (want < 0 && method)
        return refuse(c, n->pos, "unsupported method call '%s' (write %s(x))", n->name, n->name);
    if (want < 0)
        return refuse(c, n->pos, "unsupported function call '%s' (write x.%s(...))", n->name,
                      n->name);
    if (n->nargs != (size_t)want)
        return refuse(c, n->pos, "%s() takes %d argument%s, not %zu", n->name, want,
                      want == 1 ? "" : "s", n->nargs);
    if (strcmp(n->name, "has") == 0 && n->args[0]->kind != N_FIELD)
        return refuse(c, n->pos, "has() needs a field selection, as in has(event.data.x)");
    return 0;
}

/* int('abc') can only fail: a literal string must be a whole number. */
static bool literal_is_number_text(const struct sbd_expr_node *n)
{
    const char *s = json_string_value(n->lit);
    char *end;
    strtod(s, &end);
    return end != s && *end == '\0';
}

static int check_call(const struct checker *c, const struct sbd_expr_node *n, enum vtype *out)
{
    if (check_call_shape(c, n))
        return SB_EINVAL;
    /* the receiver (a method) or the first argument, then the second */
    enum vtype t[2] = { VT_ANY, VT_ANY };
    size_t k = 0;
    if (n->kind == N_METHOD && check(c, n->a, &t[k++]))
        return SB_EINVAL;
    for (size_t i = 0; i < n->nargs; i++, k++)
        if (check(c, n->args[i], &t[k]))
            return SB_EINVAL;
    const char *fn = n->name;
    if (strcmp(fn, "size") == 0) {
        if (!fits(t[0], VT_STR, VT_LIST))
            return refuse(c, n->pos, "size() of a %s", vt_name(t[0]));
        *out = VT_NUM;
    } else if (strcmp(fn, "has") == 0) {
        *out = VT_BOOL;
    } else if (strcmp(fn, "string") == 0) {
        *out = VT_STR;
    } else if (strcmp(fn, "int") == 0) {
        if (!fits(t[0], VT_NUM, VT_STR))
            return refuse(c, n->pos, "int() of a %s", vt_name(t[0]));
        if (n->args[0]->kind == N_LIT && t[0] == VT_STR && !literal_is_number_text(n->args[0]))
            return refuse(c, n->pos, "int(): '%.60s' is not a number",
                          json_string_value(n->args[0]->lit));
        *out = VT_NUM;
    } else { /* startsWith, endsWith, contains */
        for (int i = 0; i < 2; i++)
            if (!fits(t[i], VT_STR, VT_STR))
                return refuse(c, n->pos, "%s() needs strings, not a %s", fn, vt_name(t[i]));
        *out = VT_BOOL;
    }
    return 0;
}

static int check_var(const struct checker *c, const struct sbd_expr_node *n)
{
    if ((strcmp(n->name, "event") == 0 && (c->flags & SBD_EXPR_EVENT)) ||
        (strcmp(n->name, "async") == 0 && (c->flags & SBD_EXPR_ASYNC)))
        return 0;
    const char *known = (c->flags & SBD_EXPR_EVENT) && (c->flags & SBD_EXPR_ASYNC)
                            ? "event and async"
                        : (c->flags & SBD_EXPR_ASYNC) ? "async"
                                                      : "event";
    return refuse(c, n->pos, "unknown variable '%s' (this expression can use %s)", n->name, known);
}

static int check(const struct checker *c, const struct sbd_expr_node *n, enum vtype *out)
{
    enum vtype t = VT_ANY;
    *out = VT_ANY;
    switch (n->kind) {
    case N_LIT: *out = literal_type(n->lit); return 0;
    case N_VAR: return check_var(c, n);
    case N_FIELD: return check(c, n->a, &t);
    case N_INDEX: return check(c, n->a, &t) || check(c, n->b, &t) ? SB_EINVAL : 0;
    case N_LIST:
        for (size_t i = 0; i < n->nargs; i++)
            if (check(c, n->args[i], &t))
                return SB_EINVAL;
        *out = VT_LIST;
        return 0;
    case N_UNARY: {
        if (check(c, n->a, &t))
            return SB_EINVAL;
        enum vtype want = n->op == T_NOT ? VT_BOOL : VT_NUM;
        if (!fits(t, want, want))
            return refuse(c, n->pos, "'%s' applied to a %s", n->op == T_NOT ? "!" : "-",
                          vt_name(t));
        *out = want;
        return 0;
    }
    case N_COND: {
        enum vtype b, e;
        if (check(c, n->a, &t) || check(c, n->b, &b) || check(c, n->c, &e))
            return SB_EINVAL;
        if (!fits(t, VT_BOOL, VT_BOOL))
            return refuse(c, n->pos, "the condition of '?:' is a %s, not a bool", vt_name(t));
        *out = b == e ? b : VT_ANY;
        return 0;
    }
    case N_BINARY: return check_binary(c, n, out);
    case N_CALL:
    case N_METHOD: return check_call(c, n, out);
    }
    return refuse(c, n->pos, "unsupported construct");
}

int expr_check(const struct sbd_expr_node *root, const char *src, unsigned flags,
               struct sb_err *err)
{
    struct checker c = { src, flags, err };
    enum vtype t;
    if (check(&c, root, &t))
        return SB_EINVAL;
    if ((flags & SBD_EXPR_COND) && !fits(t, VT_BOOL, VT_BOOL))
        return refuse(&c, 0, "the expression is a %s, not a condition (true or false)", vt_name(t));
    if ((flags & SBD_EXPR_NUM) && !fits(t, VT_NUM, VT_NUM))
        return refuse(&c, 0, "the expression is a %s, not a number", vt_name(t));
    return 0;
}
