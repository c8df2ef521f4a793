/* expr.c - the compiler (lexer + precedence-climbing parser to an AST) of the
 * CEL subset described in expr.h; expr_check.c refuses what the subset does
 * not support, expr_eval.c evaluates the AST. The AST is immutable after
 * compilation, so evaluation needs no locks. Both the parser's recursion and
 * the tree's height are bounded by EXPR_MAX_DEPTH: a node that would be
 * taller is refused as it is built, so nothing recurses deeper later. */
#include "expr_internal.h"
#include "common/json.h"

#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct token {
    enum sbd_expr_tok_kind kind;
    size_t pos;
    char *text; /* identifier or decoded string (owned by the lexer copy) */
    double num;
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

/* Records the first failure of a parse (later ones follow from it) and
 * returns SB_EINVAL, which every parser step passes up. */
static int fail(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return SB_EINVAL;
    p->failed = 1;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sb_err_set(p->err, SB_EINVAL, "%s at column %zu", msg, expr_column(p->src, pos));
}

size_t expr_column(const char *src, size_t pos)
{
    size_t col = 1;
    for (size_t i = 0; i < pos && src[i]; i++)
        if (((unsigned char)src[i] & 0xC0) != 0x80)
            col++;
    return col;
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

/* An identifier at p->pos: [A-Za-z_][A-Za-z0-9_]*. */
static int lex_ident(struct parser *p)
{
    const char *s = p->src;
    size_t start = p->pos;
    while (isalnum((unsigned char)s[p->pos]) || s[p->pos] == '_')
        p->pos++;
    p->tok.kind = T_IDENT;
    p->tok.text = strndup(s + start, p->pos - start);
    return p->tok.text ? 0 : fail(p, start, "out of memory");
}

/* A number at p->pos, as strtod reads it; a CEL uint suffix (u, U) is
 * accepted and dropped (every number is a double here). */
static int lex_number(struct parser *p)
{
    const char *s = p->src;
    char *end;
    p->tok.num = strtod(s + p->pos, &end);
    p->pos = (size_t)(end - s);
    if (s[p->pos] == 'u' || s[p->pos] == 'U')
        p->pos++;
    p->tok.kind = T_NUMBER;
    return 0;
}

/* The token of a one-character punctuation mark or arithmetic operator, or
 * T_END when c is not one. */
static enum sbd_expr_tok_kind single_char_token(char c)
{
    switch (c) {
    case '(': return T_LPAREN;
    case ')': return T_RPAREN;
    case '[': return T_LBRACK;
    case ']': return T_RBRACK;
    case '.': return T_DOT;
    case ',': return T_COMMA;
    case '?': return T_QUESTION;
    case ':': return T_COLON;
    case '+': return T_PLUS;
    case '-': return T_MINUS;
    case '*': return T_STAR;
    case '/': return T_SLASH;
    case '%': return T_PERCENT;
    default: return T_END;
    }
}

/* The operators of one or two characters: first, the second character
 * that makes the longer one, and the token of each (T_END: no such
 * token, so a lone '=', '&' or '|' is refused with the one meant). */
static const struct {
    char first, second;
    enum sbd_expr_tok_kind alone, doubled;
} two_char_ops[] = {
    { '!', '=', T_NOT, T_NE }, { '<', '=', T_LT, T_LE },   { '>', '=', T_GT, T_GE },
    { '=', '=', T_END, T_EQ }, { '&', '&', T_END, T_AND }, { '|', '|', T_END, T_OR },
};

/* A comparison or logical operator whose first character c was consumed. */
static int lex_operator(struct parser *p, char c)
{
    size_t at = p->pos - 1;
    for (size_t i = 0; i < sizeof two_char_ops / sizeof two_char_ops[0]; i++) {
        if (two_char_ops[i].first != c)
            continue;
        if (p->src[p->pos] == two_char_ops[i].second) {
            p->pos++;
            p->tok.kind = two_char_ops[i].doubled;
            return 0;
        }
        if (two_char_ops[i].alone != T_END) {
            p->tok.kind = two_char_ops[i].alone;
            return 0;
        }
        return fail(p, at, "'%c' is not an operator (use '%c%c')", c, c, two_char_ops[i].second);
    }
    return fail(p, at, "unexpected character '%c'", c);
}

/* Reads the next token into p->tok (the previous one's text is freed). */
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
    if (isalpha((unsigned char)c) || c == '_')
        return lex_ident(p);
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[p->pos + 1])))
        return lex_number(p);
    if (c == '\'' || c == '"')
        return lex_string(p, c);
    p->pos++;
    enum sbd_expr_tok_kind k = single_char_token(c);
    if (k != T_END) {
        p->tok.kind = k;
        return 0;
    }
    return lex_operator(p, c);
}

/* ---- AST ---- */

static void node_free(struct sbd_expr_node *n)
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

/* A node of kind at byte offset pos (of its name or operator). */
static struct sbd_expr_node *node_at(struct parser *p, enum sbd_expr_node_kind kind, size_t pos)
{
    struct sbd_expr_node *n = calloc(1, sizeof *n);
    if (!n) {
        fail(p, p->tok.pos, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    n->height = 1;
    return n;
}

static struct sbd_expr_node *node_new(struct parser *p, enum sbd_expr_node_kind kind)
{
    return node_at(p, kind, p->tok.pos);
}

static int taller(int h, const struct sbd_expr_node *child)
{
    return child && child->height >= h ? child->height + 1 : h;
}

/* Records n's height once its operands are attached; refuses a tree taller
 * than EXPR_MAX_DEPTH (the caller frees n). */
static int seal(struct parser *p, struct sbd_expr_node *n)
{
    int h = taller(taller(taller(1, n->a), n->b), n->c);
    for (size_t i = 0; i < n->nargs; i++)
        h = taller(h, n->args[i]);
    n->height = h;
    if (h > EXPR_MAX_DEPTH)
        return fail(p, n->pos,
                    "expression nested too deeply: more than %d levels (a chain of N "
                    "'||' or '&&' is N levels; a long list of alternatives fits in "
                    "'x in [...]')",
                    EXPR_MAX_DEPTH);
    return 0;
}

/* Sealed n, or NULL (n freed) when it is too tall. */
static struct sbd_expr_node *sealed(struct parser *p, struct sbd_expr_node *n)
{
    if (n && seal(p, n)) {
        node_free(n);
        return NULL;
    }
    return n;
}

static int push_arg(struct parser *p, struct sbd_expr_node *n, struct sbd_expr_node *arg)
{
    struct sbd_expr_node **na = realloc(n->args, (n->nargs + 1) * sizeof *na);
    if (!na) {
        node_free(arg);
        return fail(p, p->tok.pos, "out of memory");
    }
    n->args = na;
    n->args[n->nargs++] = arg;
    return 0;
}

/* ---- parser (precedence climbing) ---- */

static struct sbd_expr_node *parse_expr(struct parser *p);

static int expect(struct parser *p, enum sbd_expr_tok_kind k, const char *what)
{
    if (p->tok.kind != k)
        return fail(p, p->tok.pos, "expected %s", what);
    return next(p);
}

/* Comma-separated expressions up to `close`; the opening token is consumed. */
static int parse_args(struct parser *p, struct sbd_expr_node *n, enum sbd_expr_tok_kind close,
                      const char *what)
{
    if (p->tok.kind == close)
        return next(p);
    for (;;) {
        struct sbd_expr_node *arg = parse_expr(p);
        if (!arg)
            return SB_EINVAL; /* parse_expr has failed the parse */
        int rc = push_arg(p, n, arg);
        if (rc)
            return rc;
        if (p->tok.kind != T_COMMA)
            return expect(p, close, what);
        if ((rc = next(p)))
            return rc;
        if (p->tok.kind == close) /* trailing comma */
            return next(p);
    }
}

/* A literal of the current token (a number, string, true, false or null). */
static struct sbd_expr_node *parse_literal(struct parser *p)
{
    json_t *lit;
    if (p->tok.kind == T_NUMBER) {
        if (!isfinite(p->tok.num)) {
            fail(p, p->tok.pos, "number out of range");
            return NULL;
        }
        lit = json_real(p->tok.num);
    } else if (p->tok.kind == T_STRING) {
        if (!(lit = json_string(p->tok.text))) {
            fail(p, p->tok.pos, "string is not valid UTF-8");
            return NULL;
        }
    } else {
        const char *id = p->tok.text;
        lit = id[0] == 't' ? json_true() : id[0] == 'f' ? json_false() : json_null();
    }
    struct sbd_expr_node *n = node_new(p, N_LIT);
    if (!n) {
        json_decref(lit);
        return NULL;
    }
    n->lit = lit;
    if (!lit)
        fail(p, p->tok.pos, "out of memory");
    if (!lit || next(p)) {
        node_free(n);
        return NULL;
    }
    return n;
}

static bool is_literal_word(const char *id)
{
    return strcmp(id, "true") == 0 || strcmp(id, "false") == 0 || strcmp(id, "null") == 0;
}

/* A variable, or a global call such as size(x): the identifier is current. */
static struct sbd_expr_node *parse_name(struct parser *p)
{
    size_t pos = p->tok.pos;
    if (strcmp(p->tok.text, "in") == 0) {
        fail(p, pos, "'in' needs a value on its left, as in x in [1, 2]");
        return NULL;
    }
    char *name = strdup(p->tok.text);
    if (!name) {
        fail(p, pos, "out of memory");
        return NULL;
    }
    if (next(p)) {
        free(name);
        return NULL;
    }
    struct sbd_expr_node *n = node_at(p, p->tok.kind == T_LPAREN ? N_CALL : N_VAR, pos);
    if (!n) {
        free(name);
        return NULL;
    }
    n->name = name;
    if (n->kind == N_CALL && (next(p) || parse_args(p, n, T_RPAREN, "')' after the arguments"))) {
        node_free(n);
        return NULL;
    }
    return sealed(p, n);
}

static struct sbd_expr_node *parse_primary(struct parser *p)
{
    struct sbd_expr_node *n = NULL;
    switch (p->tok.kind) {
    case T_NUMBER:
    case T_STRING: return parse_literal(p);
    case T_IDENT: return is_literal_word(p->tok.text) ? parse_literal(p) : parse_name(p);
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
        return sealed(p, n);
    case T_END: fail(p, p->tok.pos, "unexpected end of the expression"); return NULL;
    default: fail(p, p->tok.pos, "expected a value"); return NULL;
    }
}

/* .name or .name(args) after n (the '.' is current); the result owns n. */
static struct sbd_expr_node *parse_member(struct parser *p, struct sbd_expr_node *n)
{
    if (next(p))
        goto fail;
    if (p->tok.kind != T_IDENT) {
        fail(p, p->tok.pos, "expected a field name after '.'");
        goto fail;
    }
    size_t pos = p->tok.pos;
    char *name = strdup(p->tok.text);
    if (!name || next(p)) {
        if (!name)
            fail(p, pos, "out of memory");
        free(name);
        goto fail;
    }
    struct sbd_expr_node *m = node_at(p, p->tok.kind == T_LPAREN ? N_METHOD : N_FIELD, pos);
    if (!m) {
        free(name);
        goto fail;
    }
    m->name = name;
    m->a = n;
    if (m->kind == N_METHOD && (next(p) || parse_args(p, m, T_RPAREN, "')'"))) {
        node_free(m);
        return NULL;
    }
    return sealed(p, m);
fail:
    node_free(n);
    return NULL;
}

static struct sbd_expr_node *parse_postfix(struct parser *p)
{
    struct sbd_expr_node *n = parse_primary(p);
    while (n) {
        if (p->tok.kind == T_DOT) {
            n = parse_member(p, n);
        } else if (p->tok.kind == T_LBRACK) {
            struct sbd_expr_node *ix = node_new(p, N_INDEX);
            if (!ix) {
                node_free(n);
                return NULL;
            }
            ix->a = n;
            if (next(p) || !(ix->b = parse_expr(p)) || expect(p, T_RBRACK, "']'")) {
                node_free(ix);
                return NULL;
            }
            n = sealed(p, ix);
        } else {
            break;
        }
    }
    return n;
}

static struct sbd_expr_node *parse_unary(struct parser *p)
{
    if (p->tok.kind == T_NOT || p->tok.kind == T_MINUS) {
        if (++p->depth > EXPR_MAX_DEPTH) {
            fail(p, p->tok.pos, "expression nested too deeply: more than %d levels",
                 EXPR_MAX_DEPTH);
            return NULL;
        }
        enum sbd_expr_tok_kind op = p->tok.kind;
        struct sbd_expr_node *n = node_new(p, N_UNARY);
        if (!n || next(p) || !(n->a = parse_unary(p))) {
            node_free(n);
            return NULL;
        }
        n->op = op;
        p->depth--;
        return sealed(p, n);
    }
    return parse_postfix(p);
}

static int precedence(enum sbd_expr_tok_kind k)
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

static struct sbd_expr_node *parse_binary(struct parser *p, int min_prec)
{
    struct sbd_expr_node *lhs = parse_unary(p);
    while (lhs) {
        enum sbd_expr_tok_kind op = p->tok.kind;
        if (op == T_IDENT && !is_in(p))
            break;
        int prec = precedence(op);
        if (prec == 0 || prec < min_prec)
            break;
        struct sbd_expr_node *n = node_new(p, N_BINARY);
        if (!n || next(p)) {
            node_free(n);
            node_free(lhs);
            return NULL;
        }
        n->op = op; /* T_IDENT means "in" */
        n->a = lhs;
        if (!(n->b = parse_binary(p, prec + 1))) {
            node_free(n);
            return NULL;
        }
        lhs = sealed(p, n);
    }
    return lhs;
}

static struct sbd_expr_node *parse_expr(struct parser *p)
{
    if (++p->depth > EXPR_MAX_DEPTH) {
        fail(p, p->tok.pos, "expression nested too deeply: more than %d levels", EXPR_MAX_DEPTH);
        return NULL;
    }
    struct sbd_expr_node *n = parse_binary(p, 1);
    if (n && p->tok.kind == T_QUESTION) {
        struct sbd_expr_node *c = node_new(p, N_COND);
        if (!c || next(p)) {
            node_free(c);
            node_free(n);
            return NULL;
        }
        c->a = n;
        if (!(c->b = parse_expr(p)) || expect(p, T_COLON, "':' in 'cond ? a : b'") ||
            !(c->c = parse_expr(p))) {
            node_free(c);
            return NULL;
        }
        n = sealed(p, c);
    }
    p->depth--;
    return n;
}

struct sbd_expr *sbd_expr_compile_as(const char *src, unsigned flags, struct sb_err *err)
{
    if (!src) {
        sb_err_set(err, SB_EINVAL, "expression missing");
        return NULL;
    }
    size_t len = strlen(src);
    if (len > SBD_EXPR_MAX_SOURCE) {
        sb_err_set(err, SB_EINVAL, "expression of %zu bytes: at most %d", len, SBD_EXPR_MAX_SOURCE);
        return NULL;
    }
    struct parser p = { .src = src, .err = err };
    struct sbd_expr_node *root = NULL;
    if (next(&p) == 0) {
        root = parse_expr(&p);
        if (root && p.tok.kind != T_END) {
            fail(&p, p.tok.pos, "unexpected text after the expression");
            node_free(root);
            root = NULL;
        }
    }
    free(p.tok.text);
    if (root && !(flags & SBD_EXPR_UNCHECKED) && expr_check(root, src, flags, err) != 0) {
        node_free(root);
        root = NULL;
    }
    if (!root)
        return NULL;
    struct sbd_expr *e = calloc(1, sizeof *e);
    if (!e || !(e->source = strdup(src))) {
        free(e);
        node_free(root);
        sb_err_set(err, SB_ENOMEM, "out of memory");
        return NULL;
    }
    e->root = root;
    return e;
}

struct sbd_expr *sbd_expr_compile(const char *src, struct sb_err *err)
{
    return sbd_expr_compile_as(src, SBD_EXPR_EVENT | SBD_EXPR_ASYNC | SBD_EXPR_COND, err);
}

void sbd_expr_free(struct sbd_expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    free(e->source);
    free(e);
}

const char *sbd_expr_source(const struct sbd_expr *e)
{
    return e->source;
}
