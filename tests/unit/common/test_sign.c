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

#define HEX "8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3c"
#define HASH "83b93c23d48fc6ad1be182af708f60a5c995a5bbbf4379f41d940aab622d0202"

/* The server and the SDK may hold the same key in different forms (bare hex
 * from `openssl rand -hex 32`, signkey-prod-<hex> from Inngest's UI): every
 * bearer form matches every configured form, and both forms sign alike. */
static void every_form_of_a_key_matches_every_other(void **state)
{
    (void)state;
    const char *configured[] = { HEX, "signkey-prod-" HEX, KEY, "signkey-branch_2-" HEX };
    const char *bearers[] = { HEX,
                              HASH,
                              "signkey-prod-" HEX,
                              "signkey-prod-" HASH,
                              KEY,
                              "signkey-test-" HASH,
                              "signkey-x-" HASH };
    char sig0[160];
    for (size_t i = 0; i < sizeof configured / sizeof *configured; i++) {
        struct sb_signing_key k;
        assert_int_equal(sb_signing_key_init(&k, configured[i], NULL), 0);
        for (size_t j = 0; j < sizeof bearers / sizeof *bearers; j++)
            assert_true(sb_signing_key_matches_bearer(&k, bearers[j]));
        char sig[160];
        sb_sign_body(&k, "body", 4, 1000, sig, sizeof sig);
        if (i == 0)
            memcpy(sig0, sig, sizeof sig);
        assert_string_equal(sig, sig0);
    }
    struct sb_signing_key bare;
    sb_signing_key_init(&bare, HEX, NULL);
    assert_string_equal(bare.hashed, HASH);
    assert_int_equal(bare.prefix_len, 0);
}

static void a_wrong_key_matches_in_no_form(void **state)
{
    (void)state;
    struct sb_signing_key k;
    sb_signing_key_init(&k, "signkey-prod-" HEX, NULL);
    const char *wrong[] = {
        "8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3d", "signkey-prod-8a9f3b2c1d0e4f5a6b7c8d9e0f1a2b3d",
        "signkey-prod-" HASH "00", "signkey-prod-", "signkey-", "", "signkey-prod-" HEX "x",
        /* a prefix is stripped once only, and must be a word */
        "signkey-a-signkey-prod-" HEX, "signkey-p.d-" HEX, "signkey--" HEX, "Signkey-prod-" HEX
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        assert_false(sb_signing_key_matches_bearer(&k, wrong[i]));
}

static void prefix_is_signkey_word_dash(void **state)
{
    (void)state;
    assert_int_equal(sb_signing_key_prefix_len("signkey-prod-ab"), 13);
    assert_int_equal(sb_signing_key_prefix_len("signkey-a_1-ab"), 12);
    assert_int_equal(sb_signing_key_prefix_len("signkey--ab"), 0);
    assert_int_equal(sb_signing_key_prefix_len("signkey-prod"), 0);
    assert_int_equal(sb_signing_key_prefix_len("ab"), 0);
    struct sb_signing_key k;
    struct sb_err err = { 0 };
    assert_int_equal(sb_signing_key_init(&k, "signkey-p.d-" HEX, &err), SB_EINVAL);
}

/* Rotation: a call signed with either key verifies, the answer is signed with
 * the key that verified it, and a third key is refused. */
static void verify_any_tries_the_fallback(void **state)
{
    (void)state;
    struct sb_signing_key k1, k2, k3;
    sb_signing_key_init(&k1, "signkey-prod-" HEX, NULL);
    sb_signing_key_init(&k2, "signkey-prod-00112233445566778899aabbccddeeff", NULL);
    sb_signing_key_init(&k3, "ffeeddccbbaa99887766554433221100", NULL);
    char s1[160], s2[160], s3[160];
    sb_sign_body(&k1, "b", 1, 1000, s1, sizeof s1);
    sb_sign_body(&k2, "b", 1, 1000, s2, sizeof s2);
    sb_sign_body(&k3, "b", 1, 1000, s3, sizeof s3);
    struct sb_err err = { 0 };
    assert_ptr_equal(sb_sign_verify_any(&k2, &k1, s2, "b", 1, 1000, 300, &err), &k2);
    assert_ptr_equal(sb_sign_verify_any(&k2, &k1, s1, "b", 1, 1000, 300, &err), &k1);
    assert_null(sb_sign_verify_any(&k2, &k1, s3, "b", 1, 1000, 300, &err));
    assert_non_null(strstr(err.msg, "fallback"));
    assert_null(sb_sign_verify_any(&k2, NULL, s1, "b", 1, 1000, 300, &err));
    assert_string_equal(err.msg, "signature does not match");
    /* a stale signature says so, whichever key made it */
    assert_null(sb_sign_verify_any(&k2, &k1, s1, "b", 1, 2000, 300, &err));
    assert_non_null(strstr(err.msg, "away from this clock"));
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
        cmocka_unit_test(every_form_of_a_key_matches_every_other),
        cmocka_unit_test(a_wrong_key_matches_in_no_form),
        cmocka_unit_test(prefix_is_signkey_word_dash),
        cmocka_unit_test(verify_any_tries_the_fallback),
        cmocka_unit_test(step_ids_hash_like_the_sdk),
        cmocka_unit_test(base64_decodes_with_and_without_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
