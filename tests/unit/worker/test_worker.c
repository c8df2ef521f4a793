/* Unit tests for system-bus-worker's parts: webhook signatures (GitHub's
 * published test vector, Vercel's SHA-1 scheme, the generic header, and
 * every way a signature can be wrong) and the registry's duplicate check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "worker/registry.h"
#include "worker/webhooks.h"

static void github_vector(void **state)
{
    (void)state;
    /* docs.github.com, "Validating webhook deliveries": testing the signature */
    const char *secret = "It's a Secret to Everybody", *body = "Hello, World!";
    const char *sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_int_equal(webhook_verify("github", secret, sig, body, strlen(body)), WEBHOOK_OK);
    /* the hex without its prefix, another body, another secret, a cut signature */
    assert_int_equal(webhook_verify("github", secret, sig + 7, body, strlen(body)),
                     WEBHOOK_BAD_SIGNATURE);
    assert_int_equal(webhook_verify("github", secret, sig, "Hello, World?", 13),
                     WEBHOOK_BAD_SIGNATURE);
    assert_int_equal(webhook_verify("github", "other", sig, body, strlen(body)),
                     WEBHOOK_BAD_SIGNATURE);
    assert_int_equal(webhook_verify("github", secret, "sha256=7571", body, strlen(body)),
                     WEBHOOK_BAD_SIGNATURE);
    assert_int_equal(webhook_verify("github", secret, NULL, body, strlen(body)),
                     WEBHOOK_NO_SIGNATURE);
    assert_int_equal(webhook_verify("github", NULL, sig, body, strlen(body)), WEBHOOK_NO_SECRET);
    /* the same vector through the generic header, with and without prefix */
    assert_int_equal(webhook_verify("acme", secret, sig, body, strlen(body)), WEBHOOK_OK);
    assert_int_equal(webhook_verify("acme", secret, sig + 7, body, strlen(body)), WEBHOOK_OK);
}

static void vercel_sha1(void **state)
{
    (void)state;
    /* HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog") (RFC 2104 style
     * example, as published for HMAC-SHA1) */
    const char *body = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(webhook_verify("vercel", "key", "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9",
                                    body, strlen(body)),
                     WEBHOOK_OK);
    assert_int_equal(webhook_verify("vercel", "key", "DE7C9B85B8B78AA6BC8A7A36F70A90701C9DB4D9",
                                    body, strlen(body)),
                     WEBHOOK_OK);
    assert_int_equal(webhook_verify("vercel", "kex", "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9",
                                    body, strlen(body)),
                     WEBHOOK_BAD_SIGNATURE);
}

static void secret_names(void **state)
{
    (void)state;
    char env[64];
    webhook_secret_env("github", env, sizeof env);
    assert_string_equal(env, "GITHUB_WEBHOOK_SECRET");
    webhook_secret_env("vercel", env, sizeof env);
    assert_string_equal(env, "VERCEL_WEBHOOK_SECRET");
    webhook_secret_env("my-crm", env, sizeof env);
    assert_string_equal(env, "WEBHOOK_SECRET_MY_CRM");
}

static void duplicate_ids_are_named(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(worker_duplicate_ids(worker_functions, out, sizeof out), 0);
    assert_string_equal(out, "");
    const struct worker_fn dup[] = {
        { "a", ROLE_HOST, NULL, NULL },    { "b", ROLE_HOST, NULL, NULL },
        { "a", ROLE_CLUSTER, NULL, NULL }, { "c", ROLE_BOTH, NULL, NULL },
        { "b", ROLE_BOTH, NULL, NULL },    { "a", ROLE_BOTH, NULL, NULL },
        { NULL, 0, NULL, NULL },
    };
    assert_int_equal(worker_duplicate_ids(dup, out, sizeof out), 2);
    assert_string_equal(out, "a, b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(github_vector),
        cmocka_unit_test(vercel_sha1),
        cmocka_unit_test(secret_names),
        cmocka_unit_test(duplicate_ids_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
