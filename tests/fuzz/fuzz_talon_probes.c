/* Fuzz target: talon's probe file parser and its shell-like word splitter
 * (src/talon/probes.c, proc.c), the two parsers of operator-written text.
 * Invariants: a parsed probe set is complete for its type (the parser never
 * returns a half-filled probe), a failed parse returns an empty set and a
 * message, and splitting is stable: words re-quoted with single quotes split
 * back into the same words. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "talon/probes.h"
#include "talon/proc.h"

static void check_probes(const uint8_t *data, size_t size)
{
    struct talon_probe_set set;
    struct sb_err err = { 0 };
    if (talon_probes_parse((const char *)data, size, "fuzz.ini", 0, &set, &err) != 0) {
        if (set.n != 0 || set.v != NULL || err.msg[0] == '\0')
            abort();
        return;
    }
    if (set.n > TALON_PROBES_MAX)
        abort();
    for (size_t i = 0; i < set.n; i++) {
        const struct talon_probe *p = &set.v[i];
        if (!p->name[0] || p->timeout_secs < 1 || p->failure_threshold < 1)
            abort();
        if (p->type == TALON_PROBE_HTTP && !p->url)
            abort();
        if (p->type == TALON_PROBE_TCP && (!p->host || p->port < 1 || p->port > 65535))
            abort();
        if (p->type == TALON_PROBE_SCRIPT && (!p->argv || !p->argv[0] || !p->argv[0][0]))
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(set.v[j].name, p->name) == 0)
                abort();
    }
    talon_probes_free(&set);
}

static void check_words(const uint8_t *data, size_t size)
{
    char line[2048];
    if (size >= sizeof line)
        size = sizeof line - 1;
    memcpy(line, data, size);
    line[size] = '\0';
    char **argv = NULL;
    struct sb_err err = { 0 };
    if (talon_split_words(line, &argv, &err) != 0) {
        if (argv || !err.msg[0])
            abort();
        return;
    }
    if (!argv[0] || !argv[0][0])
        abort();
    struct sb_buf b = SB_BUF_INIT(0); /* the fuzzer's input requoted: a few bytes a byte */
    for (char **w = argv; *w; w++) {
        sb_buf_puts(&b, w == argv ? "'" : " '");
        for (const char *c = *w; *c; c++)
            sb_buf_puts(&b, *c == '\'' ? "'\\''" : (char[]){ *c, 0 });
        sb_buf_putc(&b, '\'');
    }
    char **again = NULL;
    if (talon_split_words(sb_buf_cstr(&b), &again, &err) != 0)
        abort();
    size_t i = 0;
    for (; argv[i]; i++)
        if (!again[i] || strcmp(argv[i], again[i]) != 0)
            abort();
    if (again[i])
        abort();
    talon_words_free(again);
    talon_words_free(argv);
    sb_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_probes(data, size);
    check_words(data, size);
    return 0;
}
