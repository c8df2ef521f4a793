/* Unit tests for common/sign and common/crypto: the Inngest signature and
 * key forms, with vectors computed by Node's crypto (as the JS SDK does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/crypto.h"
#include "common/sign.h"

#define KEY "signkey-test-8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3c"

static void signature_matches_the_sdk_vector(void **state)
{
    (void)state;
    struct sb_signing_key k;
    assert_int_equal(sb_signing_key_init(&k, KEY, NULL), 0);
    char sig[160];
    sb_sign_body(&k, "{\"a\":1}", 7, 1795800000, sig, sizeof sig);
    assert_string_equal(
        sig, "t=1795800000&s=27e11882a7b3124eb0e0ee1e52d0acd9df57034ea5bed6849215682f74bfcae2");
}

static void hashed_key_is_sha256_of_decoded_hex(void **state)
{
    (void)state;
    struct sb_signing_key k;
    assert_int_equal(sb_signing_key_init(&k, KEY, NULL), 0);
    assert_string_equal(
        k.hashed, "signkey-test-83b93c23d48fc6ad1be182af708f60a5c995a5bbbf4379f41d940aab622d0202");
    assert_true(sb_signing_key_matches_bearer(&k, KEY));
    assert_true(sb_signing_key_matches_bearer(&k, k.hashed));
    assert_false(sb_signing_key_matches_bearer(&k, "signkey-test-00"));
    assert_false(sb_signing_key_matches_bearer(&k, ""));
}

static void verify_accepts_fresh_and_rejects_stale_or_tampered(void **state)
{
    (void)state;
    struct sb_signing_key k;
    sb_signing_key_init(&k, KEY, NULL);
    char sig[160];
    sb_sign_body(&k, "body", 4, 1000, sig, sizeof sig);
    struct sb_err err = { 0 };
    assert_int_equal(sb_sign_verify(&k, sig, "body", 4, 1000 + 290, 300, &err), 0);
    assert_int_equal(sb_sign_verify(&k, sig, "body", 4, 1000 + 310, 300, &err), SB_EAUTH);
    assert_int_equal(sb_sign_verify(&k, sig, "bodY", 4, 1000, 300, &err), SB_EAUTH);
    assert_int_equal(sb_sign_verify(&k, "t=1000", "body", 4, 1000, 300, &err), SB_EAUTH);
    assert_int_equal(sb_sign_verify(&k, NULL, "body", 4, 1000, 300, &err), SB_EAUTH);
    /* s before t is fine (the SDK parses it as a query string) */
    char swapped[200];
    const char *s = strstr(sig, "&s=");
    snprintf(swapped, sizeof swapped, "%s&t=1000", s + 1);
    assert_int_equal(sb_sign_verify(&k, swapped, "body", 4, 1000, 300, &err), 0);
}

static void bad_keys_are_refused(void **state)
{
    (void)state;
    struct sb_signing_key k;
    struct sb_err err = { 0 };
    assert_int_equal(sb_signing_key_init(&k, "signkey-test-xyz", &err), SB_EINVAL);
    assert_int_equal(sb_signing_key_init(&k, "signkey-nodash", &err), SB_EINVAL);
    assert_int_equal(sb_signing_key_init(&k, "", &err), SB_EINVAL);
    assert_int_equal(sb_signing_key_init(&k, "abcd", &err), 0); /* bare hex */
}

static void step_ids_hash_like_the_sdk(void **state)
{
    (void)state;
    char h[41];
    sb_sha1_hex("first", 5, h);
    assert_string_equal(h, "e0996a37c13d44c3b06074939d43fa3759bd32c1");
    sb_sha1_hex("complete", 8, h);
    assert_string_equal(h, "0737c22d3bfae812339732d14d8c7dbd6dc4e09c");
}

static void base64_decodes_with_and_without_padding(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(sb_base64_decode("eii2YKXRVTJPuA==", 16, out, sizeof out), 10);
    assert_int_equal(out[0], 0x7a);
    assert_int_equal(sb_base64_decode("eii2YKXRVTJPuA", 14, out, sizeof out), 10);
    assert_int_equal(sb_base64_decode("not base64!", 11, out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature_matches_the_sdk_vector),
        cmocka_unit_test(hashed_key_is_sha256_of_decoded_hex),
        cmocka_unit_test(verify_accepts_fresh_and_rejects_stale_or_tampered),
        cmocka_unit_test(bad_keys_are_refused),
        cmocka_unit_test(step_ids_hash_like_the_sdk),
        cmocka_unit_test(base64_decodes_with_and_without_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
