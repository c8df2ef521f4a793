/* expr_eval.c - the evaluator of compiled expressions (see expr.h): walks
 * the immutable AST built by expr.c. Values are jansson values; every number
 * is a double, as in JavaScript. */
#include "expr_internal.h"
#include "common/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- evaluation ---- */

struct env {
    const struct sbd_expr_var *vars;
    size_t nvars;
    struct sb_err *err;
};

static json_t *eval(const struct sbd_expr_node *n, const struct env *env);

static json_t *rt_error(const struct env *env, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *rt_error(const struct env *env, const char *fmt, ...)
{
    if (env->err) {
        va_list ap;
        va_start(ap, fmt);
        env->err->code = SB_EINVAL;
        vsnprintf(env->err->msg, sizeof env->err->msg, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static bool values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b) != 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "map";
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    default: return "null";
    }
}

/* Length of a string in Unicode code points (CEL's size). */
static size_t utf8_len(const char *s, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            len++;
    return len;
}

static json_t *call(const struct sbd_expr_node *n, const struct env *env)
{
    /* has(a.b): does the field exist? (no evaluation error when it does not) */
    if (n->kind == N_CALL && strcmp(n->name, "has") == 0) {
        if (n->nargs != 1 || n->args[0]->kind != N_FIELD)
            return rt_error(env, "has() takes one field selection, e.g. has(event.data.x)");
        json_t *obj = eval(n->args[0]->a, env);
        if (!obj)
            return NULL;
        bool found = json_is_object(obj) && json_object_get(obj, n->args[0]->name) != NULL;
        json_decref(obj);
        return json_boolean(found);
    }
    /* receiver (method) or first argument (global) */
    size_t base = n->kind == N_METHOD ? 0 : 1;
    size_t nparams = n->nargs + (n->kind == N_METHOD ? 1 : 0);
    json_t *args[3] = { NULL, NULL, NULL };
    if (nparams > 3)
        return rt_error(env, "%s(): too many arguments", n->name);
    json_t *result = NULL;
    if (n->kind == N_METHOD && !(args[0] = eval(n->a, env)))
        return NULL;
    for (size_t i = 0; i < n->nargs; i++)
        if (!(args[i + 1 - base] = eval(n->args[i], env)))
            goto done;
    const char *fn = n->name;
    if (strcmp(fn, "size") == 0 && nparams == 1) {
        json_t *v = args[0];
        if (json_is_string(v))
            result = json_real((double)utf8_len(json_string_value(v), json_string_length(v)));
        else if (json_is_array(v))
            result = json_real((double)json_array_size(v));
        else if (json_is_object(v))
            result = json_real((double)json_object_size(v));
        else
            rt_error(env, "size() of a %s", type_name(v));
    } else if ((strcmp(fn, "startsWith") == 0 || strcmp(fn, "endsWith") == 0 ||
                strcmp(fn, "contains") == 0) &&
               nparams == 2) {
        if (!json_is_string(args[0]) || !json_is_string(args[1])) {
            rt_error(env, "%s() needs strings", fn);
        } else {
            const char *s = json_string_value(args[0]), *t = json_string_value(args[1]);
            size_t sl = json_string_length(args[0]), tl = json_string_length(args[1]);
            bool r;
            if (fn[0] == 's')
                r = tl <= sl && memcmp(s, t, tl) == 0;
            else if (fn[0] == 'e')
                r = tl <= sl && memcmp(s + sl - tl, t, tl) == 0;
            else
                r = tl == 0 || memmem(s, sl, t, tl) != NULL;
            result = json_boolean(r);
        }
    } else if (strcmp(fn, "string") == 0 && nparams == 1) {
        if (json_is_string(args[0])) {
            result = json_incref(args[0]);
        } else {
            char *text = sb_json_dumps(args[0], NULL);
            result = text ? json_string(text) : NULL;
            free(text);
        }
    } else if (strcmp(fn, "int") == 0 && nparams == 1) {
        if (json_is_number(args[0]))
            result = json_real(trunc(json_number_value(args[0])));
        else if (json_is_string(args[0])) {
            char *end;
            double d = strtod(json_string_value(args[0]), &end);
            result = *end == '\0' && end != json_string_value(args[0]) ? json_real(trunc(d)) : NULL;
            if (!result)
                rt_error(env, "int(): '%s' is not a number", json_string_value(args[0]));
        } else {
            rt_error(env, "int() of a %s", type_name(args[0]));
        }
    } else {
        rt_error(env, "unknown function %s() with %zu argument(s)", fn, nparams);
    }
done:
    for (int i = 0; i < 3; i++)
        json_decref(args[i]);
    return result;
}

static json_t *compare(enum sbd_expr_tok_kind op, const json_t *a, const json_t *b)
{
    if (op == T_EQ)
        return json_boolean(values_equal(a, b));
    if (op == T_NE)
        return json_boolean(!values_equal(a, b));
    int c;
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        c = x < y ? -1 : x > y ? 1 : 0;
    } else if (json_is_string(a) && json_is_string(b)) {
        c = strcmp(json_string_value(a), json_string_value(b));
    } else {
        return json_false(); /* different types are never ordered */
    }
    bool r = op == T_LT ? c < 0 : op == T_LE ? c <= 0 : op == T_GT ? c > 0 : c >= 0;
    return json_boolean(r);
}

static json_t *arith(enum sbd_expr_tok_kind op, const json_t *a, const json_t *b,
                     const struct env *env)
{
    if (op == T_PLUS && json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        char *s = malloc(la + lb + 1);
        if (!s)
            return rt_error(env, "out of memory");
        memcpy(s, json_string_value(a), la);
        memcpy(s + la, json_string_value(b), lb);
        s[la + lb] = '\0';
        json_t *r = json_stringn_nocheck(s, la + lb);
        free(s);
        return r;
    }
    if (op == T_PLUS && json_is_array(a) && json_is_array(b)) {
        json_t *r = json_copy((json_t *)a);
        json_array_extend(r, (json_t *)b);
        return r;
    }
    if (!json_is_number(a) || !json_is_number(b))
        return rt_error(env, "arithmetic on a %s and a %s", type_name(a), type_name(b));
    double x = json_number_value(a), y = json_number_value(b), r;
    switch (op) {
    case T_PLUS: r = x + y; break;
    case T_MINUS: r = x - y; break;
    case T_STAR: r = x * y; break;
    case T_SLASH:
        if (y == 0)
            return rt_error(env, "division by zero");
        r = x / y;
        break;
    default:
        if (y == 0)
            return rt_error(env, "modulus by zero");
        r = fmod(x, y);
    }
    if (!isfinite(r))
        return rt_error(env, "arithmetic overflow");
    return json_real(r);
}

static json_t *eval_var(const struct sbd_expr_node *n, const struct env *env)
{
    for (size_t i = 0; i < env->nvars; i++)
        if (strcmp(env->vars[i].name, n->name) == 0)
            return env->vars[i].value ? json_incref((json_t *)env->vars[i].value) : json_null();
    return rt_error(env, "unknown variable '%s'", n->name);
}

static json_t *eval_field(const struct sbd_expr_node *n, const struct env *env)
{
    json_t *obj = eval(n->a, env);
    if (!obj)
        return NULL;
    json_t *v = json_is_object(obj) ? json_object_get(obj, n->name) : NULL;
    json_t *r = v ? json_incref(v) : json_null();
    json_decref(obj);
    return r;
}

static json_t *eval_index(const struct sbd_expr_node *n, const struct env *env)
{
    json_t *obj = eval(n->a, env), *key = obj ? eval(n->b, env) : NULL;
    json_t *r = NULL;
    if (obj && key) {
        json_t *v = NULL;
        if (json_is_object(obj) && json_is_string(key))
            v = json_object_get(obj, json_string_value(key));
        else if (json_is_array(obj) && json_is_number(key) && json_number_value(key) >= 0)
            v = json_array_get(obj, (size_t)json_number_value(key));
        r = v ? json_incref(v) : json_null();
    }
    json_decref(obj);
    json_decref(key);
    return r;
}

static json_t *eval_list(const struct sbd_expr_node *n, const struct env *env)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n->nargs; i++) {
        json_t *v = eval(n->args[i], env);
        if (!v) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, v);
    }
    return arr;
}

static json_t *eval_unary(const struct sbd_expr_node *n, const struct env *env)
{
    json_t *v = eval(n->a, env);
    if (!v)
        return NULL;
    json_t *r;
    if (n->op == T_NOT)
        r = json_is_boolean(v) ? json_boolean(!json_is_true(v))
                               : rt_error(env, "'!' applied to a %s", type_name(v));
    else
        r = json_is_number(v) ? json_real(-json_number_value(v))
                              : rt_error(env, "'-' applied to a %s", type_name(v));
    json_decref(v);
    return r;
}

static json_t *eval_cond(const struct sbd_expr_node *n, const struct env *env)
{
    json_t *c = eval(n->a, env);
    if (!c)
        return NULL;
    if (!json_is_boolean(c)) {
        json_decref(c);
        return rt_error(env, "the condition of '?:' is not a bool");
    }
    bool t = json_is_true(c);
    json_decref(c);
    return eval(t ? n->b : n->c, env);
}

/* && and ||: the right side is evaluated only when it decides. */
static json_t *eval_logical(const struct sbd_expr_node *n, const struct env *env)
{
    const char *name = n->op == T_AND ? "&&" : "||";
    json_t *a = eval(n->a, env);
    if (!a)
        return NULL;
    if (!json_is_boolean(a)) {
        json_decref(a);
        return rt_error(env, "'%s' applied to a non-bool", name);
    }
    bool av = json_is_true(a);
    json_decref(a);
    if (n->op == T_AND ? !av : av)
        return json_boolean(av);
    json_t *b = eval(n->b, env);
    if (b && !json_is_boolean(b)) {
        json_decref(b);
        return rt_error(env, "'%s' applied to a non-bool", name);
    }
    return b;
}

/* a in b: b a list (equal element) or a map (a string key). */
static json_t *eval_in(const json_t *a, const json_t *b, const struct env *env)
{
    if (json_is_object(b) && json_is_string(a))
        return json_boolean(json_object_get(b, json_string_value(a)) != NULL);
    if (!json_is_array(b))
        return rt_error(env, "'in' needs a list or a map on its right, not a %s", type_name(b));
    size_t i;
    json_t *el;
    json_array_foreach(b, i, el)
    {
        if (values_equal(a, el))
            return json_true();
    }
    return json_false();
}

static json_t *eval_binary(const struct sbd_expr_node *n, const struct env *env)
{
    if (n->op == T_AND || n->op == T_OR)
        return eval_logical(n, env);
    json_t *a = eval(n->a, env);
    if (!a)
        return NULL;
    json_t *b = eval(n->b, env);
    if (!b) {
        json_decref(a);
        return NULL;
    }
    json_t *r = n->op == T_IDENT                 ? eval_in(a, b, env) /* in */
                : n->op >= T_EQ && n->op <= T_GE ? compare(n->op, a, b)
                                                 : arith(n->op, a, b, env);
    json_decref(a);
    json_decref(b);
    return r;
}

static json_t *eval(const struct sbd_expr_node *n, const struct env *env)
{
    switch (n->kind) {
    case N_LIT: return json_incref(n->lit);
    case N_VAR: return eval_var(n, env);
    case N_FIELD: return eval_field(n, env);
    case N_INDEX: return eval_index(n, env);
    case N_LIST: return eval_list(n, env);
    case N_UNARY: return eval_unary(n, env);
    case N_COND: return eval_cond(n, env);
    case N_CALL:
    case N_METHOD: return call(n, env);
    case N_BINARY: return eval_binary(n, env);
    }
    return rt_error(env, "unknown expression node");
}

json_t *sbd_expr_eval(const struct sbd_expr *e, const struct sbd_expr_var *vars, size_t nvars,
                      struct sb_err *err)
{
    struct env env = { vars, nvars, err };
    return eval(e->root, &env);
}

bool sbd_expr_test(const struct sbd_expr *e, const struct sbd_expr_var *vars, size_t nvars)
{
    json_t *v = sbd_expr_eval(e, vars, nvars, NULL);
    bool t = json_is_true(v);
    json_decref(v);
    return t;
}
