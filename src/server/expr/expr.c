/* expr.c - compiler (lexer + Pratt parser to an AST) and evaluator of the
 * CEL subset described in expr.h. The AST is immutable after compilation, so
 * evaluation needs no locks. Values are jansson values; every number is a
 * double, as in JavaScript. */
#include "expr.h"
#include "common/json.h"

#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

enum tok_kind {
    T_END,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_DOT,
    T_COMMA,
    T_QUESTION,
    T_COLON,
    T_NOT,
    T_AND,
    T_OR,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
};

struct token {
    enum tok_kind kind;
    size_t pos;
    char *text; /* identifier or decoded string (owned by the lexer copy) */
    double num;
};

enum node_kind {
    N_LIT,
    N_VAR,
    N_FIELD,
    N_INDEX,
    N_LIST,
    N_UNARY,
    N_BINARY,
    N_COND,
    N_CALL,
    N_METHOD,
};

struct node {
    enum node_kind kind;
    enum tok_kind op;       /* N_UNARY / N_BINARY */
    json_t *lit;            /* N_LIT */
    char *name;             /* N_VAR, N_FIELD, N_CALL, N_METHOD */
    struct node *a, *b, *c; /* operands; N_METHOD: a = receiver */
    struct node **args;     /* N_LIST, N_CALL, N_METHOD */
    size_t nargs;
};

struct sb_expr {
    char *source;
    struct node *root;
};

/* ---- lexer ---- */

struct parser {
    const char *src;
    size_t pos;
    struct token tok;
    int depth;
    struct sb_err *err;
    int failed;
};

static int fail(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sb_err_set(p->err, SB_EINVAL, "position %zu: %s", pos + 1, msg);
    return -1;
}

static int lex_string(struct parser *p, char quote)
{
    size_t start = p->pos++;
    size_t cap = 32, n = 0;
    char *out = malloc(cap);
    if (!out)
        return fail(p, start, "out of memory");
    for (;;) {
        char c = p->src[p->pos];
        if (c == '\0') {
            free(out);
            return fail(p, start, "unterminated string");
        }
        p->pos++;
        if (c == quote)
            break;
        if (c == '\\') {
            char e = p->src[p->pos++];
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '\\':
            case '\'':
            case '"': c = e; break;
            default:
                free(out);
                return fail(p, p->pos - 2, "unknown escape '\\%c' in a string", e ? e : ' ');
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *no = realloc(out, cap);
            if (!no) {
                free(out);
                return fail(p, start, "out of memory");
            }
            out = no;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    p->tok.kind = T_STRING;
    p->tok.text = out;
    return 0;
}

static int next(struct parser *p)
{
    free(p->tok.text);
    p->tok.text = NULL;
    const char *s = p->src;
    while (isspace((unsigned char)s[p->pos]))
        p->pos++;
    p->tok.pos = p->pos;
    char c = s[p->pos];
    if (c == '\0') {
        p->tok.kind = T_END;
        return 0;
    }
    if (isalpha((unsigned char)c) || c == '_') {
        size_t start = p->pos;
        while (isalnum((unsigned char)s[p->pos]) || s[p->pos] == '_')
            p->pos++;
        p->tok.kind = T_IDENT;
        p->tok.text = strndup(s + start, p->pos - start);
        return p->tok.text ? 0 : fail(p, start, "out of memory");
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[p->pos + 1]))) {
        char *end;
        p->tok.num = strtod(s + p->pos, &end);
        p->pos = (size_t)(end - s);
        if (s[p->pos] == 'u' || s[p->pos] == 'U') /* CEL uint suffix */
            p->pos++;
        p->tok.kind = T_NUMBER;
        return 0;
    }
    if (c == '\'' || c == '"')
        return lex_string(p, c);
    p->pos++;
    char d = s[p->pos];
    switch (c) {
    case '(': p->tok.kind = T_LPAREN; return 0;
    case ')': p->tok.kind = T_RPAREN; return 0;
    case '[': p->tok.kind = T_LBRACK; return 0;
    case ']': p->tok.kind = T_RBRACK; return 0;
    case '.': p->tok.kind = T_DOT; return 0;
    case ',': p->tok.kind = T_COMMA; return 0;
    case '?': p->tok.kind = T_QUESTION; return 0;
    case ':': p->tok.kind = T_COLON; return 0;
    case '+': p->tok.kind = T_PLUS; return 0;
    case '-': p->tok.kind = T_MINUS; return 0;
    case '*': p->tok.kind = T_STAR; return 0;
    case '/': p->tok.kind = T_SLASH; return 0;
    case '%': p->tok.kind = T_PERCENT; return 0;
    case '!':
        if (d == '=') {
            p->pos++;
            p->tok.kind = T_NE;
        } else {
            p->tok.kind = T_NOT;
        }
        return 0;
    case '=':
        if (d == '=') {
            p->pos++;
            p->tok.kind = T_EQ;
            return 0;
        }
        return fail(p, p->pos - 1, "'=' is not an operator (use '==')");
    case '<':
        if (d == '=')
            p->pos++;
        p->tok.kind = d == '=' ? T_LE : T_LT;
        return 0;
    case '>':
        if (d == '=')
            p->pos++;
        p->tok.kind = d == '=' ? T_GE : T_GT;
        return 0;
    case '&':
        if (d == '&') {
            p->pos++;
            p->tok.kind = T_AND;
            return 0;
        }
        return fail(p, p->pos - 1, "'&' is not an operator (use '&&')");
    case '|':
        if (d == '|') {
            p->pos++;
            p->tok.kind = T_OR;
            return 0;
        }
        return fail(p, p->pos - 1, "'|' is not an operator (use '||')");
    }
    return fail(p, p->pos - 1, "unexpected character '%c'", c);
}

/* ---- AST ---- */

static void node_free(struct node *n)
{
    if (!n)
        return;
    json_decref(n->lit);
    free(n->name);
    node_free(n->a);
    node_free(n->b);
    node_free(n->c);
    for (size_t i = 0; i < n->nargs; i++)
        node_free(n->args[i]);
    free(n->args);
    free(n);
}

static struct node *node_new(struct parser *p, enum node_kind kind)
{
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        fail(p, p->tok.pos, "out of memory");
    else
        n->kind = kind;
    return n;
}

static int push_arg(struct parser *p, struct node *n, struct node *arg)
{
    struct node **na = realloc(n->args, (n->nargs + 1) * sizeof *na);
    if (!na) {
        node_free(arg);
        return fail(p, p->tok.pos, "out of memory");
    }
    n->args = na;
    n->args[n->nargs++] = arg;
    return 0;
}

/* ---- parser (precedence climbing) ---- */

static struct node *parse_expr(struct parser *p);

static int expect(struct parser *p, enum tok_kind k, const char *what)
{
    if (p->tok.kind != k)
        return fail(p, p->tok.pos, "expected %s", what);
    return next(p);
}

/* Comma-separated expressions up to `close`; the opening token is consumed. */
static int parse_args(struct parser *p, struct node *n, enum tok_kind close, const char *what)
{
    if (p->tok.kind == close)
        return next(p);
    for (;;) {
        struct node *arg = parse_expr(p);
        if (!arg || push_arg(p, n, arg))
            return -1;
        if (p->tok.kind == T_COMMA) {
            if (next(p))
                return -1;
            if (p->tok.kind == close) /* trailing comma */
                return next(p);
            continue;
        }
        return expect(p, close, what);
    }
}

static struct node *parse_primary(struct parser *p)
{
    struct node *n = NULL;
    switch (p->tok.kind) {
    case T_NUMBER:
        if ((n = node_new(p, N_LIT)))
            n->lit = json_real(p->tok.num);
        break;
    case T_STRING:
        if ((n = node_new(p, N_LIT)))
            n->lit = json_string(p->tok.text);
        break;
    case T_IDENT: {
        const char *id = p->tok.text;
        if (strcmp(id, "true") == 0 || strcmp(id, "false") == 0 || strcmp(id, "null") == 0) {
            if ((n = node_new(p, N_LIT)))
                n->lit = id[0] == 't' ? json_true() : id[0] == 'f' ? json_false() : json_null();
            break;
        }
        char *name = strdup(id);
        if (!name) {
            fail(p, p->tok.pos, "out of memory");
            return NULL;
        }
        if (next(p)) {
            free(name);
            return NULL;
        }
        if (p->tok.kind == T_LPAREN) { /* global call: size(x), has(a.b) */
            n = node_new(p, N_CALL);
            if (!n) {
                free(name);
                return NULL;
            }
            n->name = name;
            if (next(p) || parse_args(p, n, T_RPAREN, "')' after the arguments")) {
                node_free(n);
                return NULL;
            }
            return n;
        }
        n = node_new(p, N_VAR);
        if (!n) {
            free(name);
            return NULL;
        }
        n->name = name;
        return n;
    }
    case T_LPAREN:
        if (next(p))
            return NULL;
        n = parse_expr(p);
        if (n && expect(p, T_RPAREN, "')'")) {
            node_free(n);
            return NULL;
        }
        return n;
    case T_LBRACK:
        n = node_new(p, N_LIST);
        if (!n || next(p) || parse_args(p, n, T_RBRACK, "']' at the end of the list")) {
            node_free(n);
            return NULL;
        }
        return n;
    case T_END: fail(p, p->tok.pos, "unexpected end of the expression"); return NULL;
    default: fail(p, p->tok.pos, "expected a value"); return NULL;
    }
    if (!n || !n->lit || next(p)) {
        if (n && !n->lit)
            fail(p, p->tok.pos, "out of memory");
        node_free(n);
        return NULL;
    }
    return n;
}

static struct node *parse_postfix(struct parser *p)
{
    struct node *n = parse_primary(p);
    while (n) {
        if (p->tok.kind == T_DOT) {
            if (next(p))
                goto fail;
            if (p->tok.kind != T_IDENT) {
                fail(p, p->tok.pos, "expected a field name after '.'");
                goto fail;
            }
            char *name = strdup(p->tok.text);
            if (!name || next(p)) {
                free(name);
                goto fail;
            }
            struct node *m = node_new(p, p->tok.kind == T_LPAREN ? N_METHOD : N_FIELD);
            if (!m) {
                free(name);
                goto fail;
            }
            m->name = name;
            m->a = n;
            n = m;
            if (m->kind == N_METHOD && (next(p) || parse_args(p, m, T_RPAREN, "')'")))
                goto fail;
        } else if (p->tok.kind == T_LBRACK) {
            struct node *ix = node_new(p, N_INDEX);
            if (!ix)
                goto fail;
            ix->a = n;
            n = ix;
            if (next(p) || !(ix->b = parse_expr(p)) || expect(p, T_RBRACK, "']'"))
                goto fail;
        } else {
            break;
        }
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

static struct node *parse_unary(struct parser *p)
{
    if (p->tok.kind == T_NOT || p->tok.kind == T_MINUS) {
        if (++p->depth > MAX_DEPTH) {
            fail(p, p->tok.pos, "expression nested too deeply");
            return NULL;
        }
        enum tok_kind op = p->tok.kind;
        struct node *n = node_new(p, N_UNARY);
        if (!n || next(p) || !(n->a = parse_unary(p))) {
            node_free(n);
            return NULL;
        }
        n->op = op;
        p->depth--;
        return n;
    }
    return parse_postfix(p);
}

static int precedence(enum tok_kind k)
{
    switch (k) {
    case T_OR: return 1;
    case T_AND: return 2;
    case T_EQ:
    case T_NE:
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE: return 3;
    case T_PLUS:
    case T_MINUS: return 4;
    case T_STAR:
    case T_SLASH:
    case T_PERCENT: return 5;
    case T_IDENT: return 3; /* only "in" gets here, checked by the caller */
    default: return 0;
    }
}

static bool is_in(const struct parser *p)
{
    return p->tok.kind == T_IDENT && strcmp(p->tok.text, "in") == 0;
}

static struct node *parse_binary(struct parser *p, int min_prec)
{
    struct node *lhs = parse_unary(p);
    while (lhs) {
        enum tok_kind op = p->tok.kind;
        if (op == T_IDENT && !is_in(p))
            break;
        int prec = precedence(op);
        if (prec == 0 || prec < min_prec)
            break;
        struct node *n = node_new(p, N_BINARY);
        if (!n || next(p)) {
            node_free(n);
            node_free(lhs);
            return NULL;
        }
        n->op = op; /* T_IDENT means "in" */
        n->a = lhs;
        lhs = n;
        if (!(n->b = parse_binary(p, prec + 1))) {
            node_free(lhs);
            return NULL;
        }
    }
    return lhs;
}

static struct node *parse_expr(struct parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->tok.pos, "expression nested too deeply");
        return NULL;
    }
    struct node *n = parse_binary(p, 1);
    if (n && p->tok.kind == T_QUESTION) {
        struct node *c = node_new(p, N_COND);
        if (!c || next(p)) {
            node_free(c);
            node_free(n);
            return NULL;
        }
        c->a = n;
        n = c;
        if (!(c->b = parse_expr(p)) || expect(p, T_COLON, "':' in 'cond ? a : b'") ||
            !(c->c = parse_expr(p))) {
            node_free(n);
            return NULL;
        }
    }
    p->depth--;
    return n;
}

struct sb_expr *sb_expr_compile(const char *src, struct sb_err *err)
{
    if (!src || strlen(src) > SB_EXPR_MAX_SOURCE) {
        sb_err_set(err, SB_EINVAL, "expression missing or longer than %d bytes",
                   SB_EXPR_MAX_SOURCE);
        return NULL;
    }
    struct parser p = { .src = src, .err = err };
    struct node *root = NULL;
    if (next(&p) == 0) {
        root = parse_expr(&p);
        if (root && p.tok.kind != T_END) {
            fail(&p, p.tok.pos, "unexpected text after the expression");
            node_free(root);
            root = NULL;
        }
    }
    free(p.tok.text);
    if (!root)
        return NULL;
    struct sb_expr *e = calloc(1, sizeof *e);
    if (!e || !(e->source = strdup(src))) {
        free(e);
        node_free(root);
        sb_err_set(err, SB_ENOMEM, "out of memory");
        return NULL;
    }
    e->root = root;
    return e;
}

void sb_expr_free(struct sb_expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    free(e->source);
    free(e);
}

const char *sb_expr_source(const struct sb_expr *e)
{
    return e->source;
}

/* ---- evaluation ---- */

struct env {
    const struct sb_expr_var *vars;
    size_t nvars;
    struct sb_err *err;
};

static json_t *eval(const struct node *n, const struct env *env);

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

static json_t *call(const struct node *n, const struct env *env)
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

static json_t *compare(enum tok_kind op, const json_t *a, const json_t *b)
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

static json_t *arith(enum tok_kind op, const json_t *a, const json_t *b, const struct env *env)
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

static json_t *eval(const struct node *n, const struct env *env)
{
    switch (n->kind) {
    case N_LIT: return json_incref(n->lit);
    case N_VAR:
        for (size_t i = 0; i < env->nvars; i++)
            if (strcmp(env->vars[i].name, n->name) == 0)
                return env->vars[i].value ? json_incref((json_t *)env->vars[i].value) : json_null();
        return rt_error(env, "unknown variable '%s'", n->name);
    case N_FIELD: {
        json_t *obj = eval(n->a, env);
        if (!obj)
            return NULL;
        json_t *v = json_is_object(obj) ? json_object_get(obj, n->name) : NULL;
        json_t *r = v ? json_incref(v) : json_null();
        json_decref(obj);
        return r;
    }
    case N_INDEX: {
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
    case N_LIST: {
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
    case N_UNARY: {
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
    case N_COND: {
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
    case N_CALL:
    case N_METHOD: return call(n, env);
    case N_BINARY: break;
    }
    /* binary */
    if (n->op == T_AND || n->op == T_OR) {
        json_t *a = eval(n->a, env);
        if (!a)
            return NULL;
        if (!json_is_boolean(a)) {
            json_decref(a);
            return rt_error(env, "'%s' applied to a non-bool", n->op == T_AND ? "&&" : "||");
        }
        bool av = json_is_true(a);
        json_decref(a);
        if (n->op == T_AND ? !av : av)
            return json_boolean(av);
        json_t *b = eval(n->b, env);
        if (b && !json_is_boolean(b)) {
            json_decref(b);
            return rt_error(env, "'%s' applied to a non-bool", n->op == T_AND ? "&&" : "||");
        }
        return b;
    }
    json_t *a = eval(n->a, env);
    if (!a)
        return NULL;
    json_t *b = eval(n->b, env);
    if (!b) {
        json_decref(a);
        return NULL;
    }
    json_t *r;
    if (n->op == T_IDENT) { /* in */
        if (json_is_array(b)) {
            bool found = false;
            size_t i;
            json_t *el;
            json_array_foreach(b, i, el)
            {
                if (values_equal(a, el)) {
                    found = true;
                    break;
                }
            }
            r = json_boolean(found);
        } else if (json_is_object(b) && json_is_string(a)) {
            r = json_boolean(json_object_get(b, json_string_value(a)) != NULL);
        } else {
            r = rt_error(env, "'in' needs a list or a map on its right, not a %s", type_name(b));
        }
    } else if (n->op >= T_EQ && n->op <= T_GE) {
        r = compare(n->op, a, b);
    } else {
        r = arith(n->op, a, b, env);
    }
    json_decref(a);
    json_decref(b);
    return r;
}

json_t *sb_expr_eval(const struct sb_expr *e, const struct sb_expr_var *vars, size_t nvars,
                     struct sb_err *err)
{
    struct env env = { vars, nvars, err };
    return eval(e->root, &env);
}

bool sb_expr_test(const struct sb_expr *e, const struct sb_expr_var *vars, size_t nvars)
{
    json_t *v = sb_expr_eval(e, vars, nvars, NULL);
    bool t = json_is_true(v);
    json_decref(v);
    return t;
}
