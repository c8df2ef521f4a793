/* stories.c - example functions in the spirit of the original worker,
 * written the way a user should write theirs: side effects only inside
 * steps, plain data between them, failures that say what to fix.
 *
 * story-pipeline (story/submitted {title, text, author}): normalize the
 * text, count its words, pause, build a summary, then announce it with a
 * story/published event. heartbeat (cron, host role): records that the
 * host worker is alive. */
#include "registry.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

static json_t *normalize(sysbus_ctx *c, void *arg)
{
    const json_t *event = arg;
    const json_t *data = json_object_get(event, "data");
    const char *title = json_string_value(json_object_get(data, "title"));
    const char *text = json_string_value(json_object_get(data, "text"));
    if (!title || !text) /* bad input: retrying cannot help */
        return sysbus_fail(c, SYSBUS_NO_RETRY, "story/submitted needs data.title and data.text");
    /* collapse runs of whitespace */
    char *out = sysbus_alloc(c, strlen(text) + 1);
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (isspace((unsigned char)*p)) {
            if (n > 0 && out[n - 1] != ' ')
                out[n++] = ' ';
        } else {
            out[n++] = *p;
        }
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return json_pack("{s:s, s:s}", "title", title, "text", out);
}

static json_t *count_words(sysbus_ctx *c, void *arg)
{
    (void)c;
    const char *text = json_string_value(json_object_get(arg, "text"));
    int words = 0;
    for (const char *p = text; p && *p; p++)
        if (!isspace((unsigned char)*p) && (p == text || isspace((unsigned char)p[-1])))
            words++;
    return json_integer(words);
}

static json_t *summarize(sysbus_ctx *c, void *arg)
{
    const char *text = json_string_value(json_object_get(arg, "text"));
    const char *end = strpbrk(text, ".!?");
    size_t len = end ? (size_t)(end - text) + 1 : strlen(text);
    if (len > 200)
        len = 200;
    char *s = sysbus_alloc(c, len + 1);
    memcpy(s, text, len);
    s[len] = '\0';
    return json_string(s);
}

json_t *story_pipeline(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    const json_t *story = sysbus_step_run(c, "normalize", normalize, (void *)event);
    const json_t *words = sysbus_step_run(c, "count-words", count_words, (void *)story);
    sysbus_step_sleep(c, "let-it-settle", "1s");
    const json_t *summary = sysbus_step_run(c, "summarize", summarize, (void *)story);
    json_t *published = sysbus_keep(
        c, json_pack("{s:s, s:{s:O, s:O, s:O}}", "name", "story/published", "data", "title",
                     json_object_get(story, "title"), "summary", summary, "words", words));
    sysbus_step_send_event(c, "announce", published);
    return json_pack("{s:O, s:O, s:O}", "title", json_object_get(story, "title"), "words", words,
                     "summary", summary);
}

static json_t *beat(sysbus_ctx *c, void *arg)
{
    (void)c;
    (void)arg;
    return json_pack("{s:I}", "at_ms", (json_int_t)time(NULL) * 1000);
}

json_t *heartbeat(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    return json_deep_copy(sysbus_step_run(c, "beat", beat, NULL));
}
