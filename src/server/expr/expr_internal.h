/* expr_internal.h - what the expression compiler (expr.c), its checker
 * (expr_check.c) and evaluator (expr_eval.c) share: token kinds (also the
 * operators of the AST), node kinds and the immutable AST. */
#ifndef SBD_EXPR_INTERNAL_H
#define SBD_EXPR_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "expr.h"

enum sbd_expr_tok_kind {
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

enum sbd_expr_node_kind {
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

struct sbd_expr_node {
    enum sbd_expr_node_kind kind;
    enum sbd_expr_tok_kind op;       /* N_UNARY / N_BINARY */
    size_t pos;                      /* byte offset in the source, for messages */
    int height;                      /* 1 + the height of the tallest operand */
    json_t *lit;                     /* N_LIT */
    char *name;                      /* N_VAR, N_FIELD, N_CALL, N_METHOD */
    struct sbd_expr_node *a, *b, *c; /* operands; N_METHOD: a = receiver */
    struct sbd_expr_node **args;     /* N_LIST, N_CALL, N_METHOD */
    size_t nargs;
};

struct sbd_expr {
    char *source;
    struct sbd_expr_node *root;
};

/* The most levels an expression tree (and the parser's recursion) may have:
 * evaluation and freeing recurse once per level. */
#define EXPR_MAX_DEPTH 64

/* 1-based column (in characters) of byte offset pos of src. */
size_t expr_column(const char *src, size_t pos);

/* Refuses a parsed tree that uses anything outside the supported subset
 * (see expr.h) or that could only fail when evaluated: an unknown function,
 * method or macro, a wrong argument count, a variable flags do not allow, an
 * operator applied to a literal of the wrong type, a condition (flags &
 * SBD_EXPR_COND) that cannot be a bool, a number (SBD_EXPR_NUM) that cannot
 * be a number. Returns 0, or SB_EINVAL with err
 * ("<what> at column N"). Recursion is bounded by the tree's height. */
int expr_check(const struct sbd_expr_node *root, const char *src, unsigned flags,
               struct sb_err *err);

#endif
