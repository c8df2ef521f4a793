/* Unit tests for the secrets store (src/secrets/store.c): sealing round trips,
 * tamper and wrong-key detection, the payload's strict decoding, and a store
 * on disk (create, reopen, permissions, passphrase, lock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secrets/audit.h"
#include "secrets/store.h"

static const struct secrets_kdf keyfile_kdf = { .source = SECRETS_KEY_FROM_FILE };

static void seal_then_open_round_trips(void **state)
{
    (void)state;
    unsigned char key[SECRETS_KEY_LEN];
    randombytes_buf(key, sizeof key);
    const char plain[] = "\x00\x00\x00\x00 any bytes \xff";
    unsigned char *file = NULL;
    size_t flen = 0;
    assert_int_equal(secrets_seal(key, &keyfile_kdf, 7, plain, sizeof plain, &file, &flen, NULL),
                     0);
    assert_int_equal(flen, SECRETS_HEADER_LEN + sizeof plain + 16);
    /* the plaintext does not appear in the image */
    assert_null(memmem(file, flen, " any bytes ", 11));
    struct secrets_kdf kdf;
    uint64_t gen = 0;
    assert_int_equal(secrets_header_read(file, flen, &kdf, &gen, NULL), 0);
    assert_int_equal(kdf.source, SECRETS_KEY_FROM_FILE);
    assert_int_equal(gen, 7);
    char *out = NULL;
    size_t olen = 0;
    assert_int_equal(secrets_unseal(key, file, flen, &out, &olen, NULL), 0);
    assert_int_equal(olen, sizeof plain);
    assert_memory_equal(out, plain, olen);
    secrets_guarded_free(out);
    /* two seals of the same payload differ (a fresh nonce each time) */
    unsigned char *file2 = NULL;
    size_t flen2 = 0;
    assert_int_equal(secrets_seal(key, &keyfile_kdf, 7, plain, sizeof plain, &file2, &flen2, NULL),
                     0);
    assert_int_equal(flen2, flen);
    assert_memory_not_equal(file, file2, flen);
    free(file2);
    free(file);
}

static void any_changed_byte_or_wrong_key_fails_to_open(void **state)
{
    (void)state;
    unsigned char key[SECRETS_KEY_LEN], other[SECRETS_KEY_LEN];
    randombytes_buf(key, sizeof key);
    randombytes_buf(other, sizeof other);
    const char plain[] = "payload payload payload";
    unsigned char *file = NULL;
    size_t flen = 0;
    assert_int_equal(secrets_seal(key, &keyfile_kdf, 1, plain, sizeof plain, &file, &flen, NULL),
                     0);
    char *out = NULL;
    size_t olen = 0;
    struct sb_err err = { 0 };
    assert_int_equal(secrets_unseal(other, file, flen, &out, &olen, &err), SB_EAUTH);
    assert_non_null(strstr(err.msg, "wrong key file"));
    /* header (reserved, generation, nonce), ciphertext and tag bytes */
    size_t spots[] = { 10, 11, 40, 47, 48, 71, SECRETS_HEADER_LEN, flen / 2 + 20, flen - 1 };
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        file[spots[i]] ^= 0x01;
        int rc = secrets_unseal(key, file, flen, &out, &olen, NULL);
        if (rc != SB_EAUTH)
            fail_msg("flipping byte %zu: got %d, want SB_EAUTH", spots[i], rc);
        file[spots[i]] ^= 0x01;
    }
    /* magic, version and key source are checked before decryption */
    file[0] ^= 1;
    assert_int_equal(secrets_unseal(key, file, flen, &out, &olen, NULL), SB_ESTORE);
    file[0] ^= 1;
    file[8] = 2;
    assert_int_equal(secrets_unseal(key, file, flen, &out, &olen, NULL), SB_ESTORE);
    file[8] = 1;
    file[9] = 7;
    assert_int_equal(secrets_unseal(key, file, flen, &out, &olen, NULL), SB_ESTORE);
    file[9] = 1;
    /* truncation */
    assert_int_equal(secrets_unseal(key, file, flen - 1, &out, &olen, NULL), SB_EAUTH);
    assert_int_equal(secrets_unseal(key, file, SECRETS_HEADER_LEN + 15, &out, &olen, NULL),
                     SB_ESTORE);
    assert_int_equal(secrets_unseal(key, file, flen, &out, &olen, NULL), 0);
    secrets_guarded_free(out);
    free(file);
}

static void absurd_kdf_parameters_are_refused_before_deriving(void **state)
{
    (void)state;
    struct secrets_kdf kdf = { .source = SECRETS_KEY_FROM_PASSPHRASE,
                               .opslimit = 3,
                               .memlimit = 1ull << 40 };
    unsigned char key[SECRETS_KEY_LEN] = { 0 };
    unsigned char *file = NULL;
    size_t flen = 0;
    assert_int_equal(secrets_seal(key, &kdf, 1, "x", 1, &file, &flen, NULL), 0);
    struct secrets_kdf got;
    assert_int_equal(secrets_header_read(file, flen, &got, NULL, NULL), SB_ESTORE);
    free(file);
}

static struct secrets_entry entry(const char *name, const char *value)
{
    struct secrets_entry e = { .created_ms = 1, .updated_ms = 2 };
    snprintf(e.name, sizeof e.name, "%s", name);
    e.value = secrets_guarded_dup(value, strlen(value));
    e.value_len = strlen(value);
    return e;
}

static void payload_round_trips_and_decoding_is_strict(void **state)
{
    (void)state;
    struct secrets_entry in[2] = { entry("a", "one"), entry("b", "two\nlines") };
    char *plain = NULL;
    size_t plen = 0;
    assert_int_equal(secrets_payload_encode(in, 2, &plain, &plen, NULL), 0);
    struct secrets_entry *out = NULL;
    size_t n = 0;
    assert_int_equal(secrets_payload_decode(plain, plen, &out, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[1].name, "b");
    assert_int_equal(out[1].value_len, 9);
    assert_memory_equal(out[1].value, "two\nlines", 9);
    assert_int_equal(out[0].created_ms, 1);
    assert_int_equal(out[0].updated_ms, 2);
    secrets_entries_free(out, n);
    /* every truncation fails cleanly */
    for (size_t cut = 0; cut < plen; cut++) {
        out = NULL;
        assert_int_equal(secrets_payload_decode(plain, cut, &out, &n, NULL), SB_ESTORE);
    }
    /* trailing bytes */
    char *longer = secrets_guarded_dup(plain, plen + 1);
    assert_int_equal(secrets_payload_decode(longer, plen + 1, &out, &n, NULL), SB_ESTORE);
    secrets_guarded_free(longer);
    secrets_guarded_free(plain);
    /* names out of order */
    struct secrets_entry swapped[2] = { in[1], in[0] };
    assert_int_equal(secrets_payload_encode(swapped, 2, &plain, &plen, NULL), 0);
    assert_int_equal(secrets_payload_decode(plain, plen, &out, &n, NULL), SB_ESTORE);
    secrets_guarded_free(plain);
    secrets_guarded_free(in[0].value);
    secrets_guarded_free(in[1].value);
}

/* ---- on disk ---- */

static char dir[128];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/secrets-unit-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path(char *out, size_t n, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

static void a_store_survives_reopening(void **state)
{
    (void)state;
    char store[256];
    path(store, sizeof store, "s");
    struct sb_err err = { 0 };
    assert_int_equal(secrets_store_create(store, NULL, NULL, &err), 0);
    assert_int_equal(secrets_store_create(store, NULL, NULL, &err), SB_EEXISTS);
    assert_non_null(strstr(err.msg, "refusing to overwrite"));
    struct stat st;
    char f[300];
    snprintf(f, sizeof f, "%s/master.key", store);
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(stat(store, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    struct secrets_store s;
    assert_int_equal(secrets_store_open(&s, store, NULL, NULL, &err), 0);
    /* a second opener is refused while the first holds the lock */
    struct secrets_store s2;
    assert_int_equal(secrets_store_open(&s2, store, NULL, NULL, &err), SB_EBUSY);
    bool created = false;
    assert_int_equal(secrets_store_put(&s, "zeta", "z-value", 7, 100, &created, &err), 0);
    assert_true(created);
    assert_int_equal(secrets_store_put(&s, "alpha", "a-value", 7, 200, &created, &err), 0);
    assert_int_equal(secrets_store_put(&s, "zeta", "z2", 2, 300, &created, &err), 0);
    assert_false(created);
    assert_int_equal(secrets_store_put(&s, "bad name", "v", 1, 300, NULL, &err), SB_EINVAL);
    assert_int_equal(secrets_store_put(&s, "e", "", 0, 300, NULL, &err), SB_EINVAL);
    assert_int_equal(secrets_store_remove(&s, "nope", &err), SB_ENOTFOUND);
    assert_int_equal(secrets_store_put(&s, "gone", "g", 1, 400, NULL, &err), 0);
    assert_int_equal(secrets_store_remove(&s, "gone", &err), 0);
    secrets_store_close(&s);

    /* the plaintext is not on disk */
    snprintf(f, sizeof f, "%s/secrets.db", store);
    FILE *fp = fopen(f, "rb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_null(memmem(buf, n, "a-value", 7));
    assert_null(memmem(buf, n, "alpha", 5));

    assert_int_equal(secrets_store_open(&s, store, NULL, NULL, &err), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.v[0].name, "alpha"); /* sorted */
    const struct secrets_entry *z = secrets_store_get(&s, "zeta");
    assert_non_null(z);
    assert_int_equal(z->value_len, 2);
    assert_memory_equal(z->value, "z2", 2);
    assert_int_equal(z->created_ms, 100);
    assert_int_equal(z->updated_ms, 300);
    assert_null(secrets_store_get(&s, "gone"));
    secrets_store_close(&s);
}

static void group_or_other_access_is_refused_with_the_fix(void **state)
{
    (void)state;
    char store[256], f[300];
    path(store, sizeof store, "perm");
    struct sb_err err = { 0 };
    assert_int_equal(secrets_store_create(store, NULL, NULL, &err), 0);
    struct secrets_store s;
    static const char *files[] = { "master.key", "secrets.db" };
    for (int i = 0; i < 2; i++) {
        snprintf(f, sizeof f, "%s/%s", store, files[i]);
        assert_int_equal(chmod(f, 0640), 0);
        assert_int_equal(secrets_store_open(&s, store, NULL, NULL, &err), SB_ECONFIG);
        char fix[320];
        snprintf(fix, sizeof fix, "chmod 600 %s", f);
        if (!strstr(err.msg, fix))
            fail_msg("message lacks the fix: %s", err.msg);
        assert_int_equal(chmod(f, 0600), 0);
    }
    /* the audit file too */
    struct secrets_audit a;
    assert_int_equal(secrets_audit_open(&a, store, &err), 0);
    secrets_audit_close(&a);
    snprintf(f, sizeof f, "%s/audit.log", store);
    assert_int_equal(chmod(f, 0604), 0);
    assert_int_equal(secrets_audit_open(&a, store, &err), SB_ECONFIG);
    assert_non_null(strstr(err.msg, "chmod 600"));
    /* a key file of the wrong size */
    snprintf(f, sizeof f, "%s/master.key", store);
    assert_int_equal(truncate(f, 31), 0);
    assert_int_equal(secrets_store_open(&s, store, NULL, NULL, &err), SB_ECONFIG);
    assert_non_null(strstr(err.msg, "31 bytes"));
    /* another key: the store does not open */
    int fd = open(f, O_WRONLY | O_TRUNC);
    unsigned char k[32];
    randombytes_buf(k, sizeof k);
    assert_int_equal(write(fd, k, sizeof k), 32);
    close(fd);
    assert_int_equal(secrets_store_open(&s, store, NULL, NULL, &err), SB_EAUTH);
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    chmod(p, 0600); /* a passphrase file others can read is refused */
}

static void a_passphrase_store_needs_the_right_passphrase(void **state)
{
    (void)state;
    char store[256], good[256], bad[256], empty[256];
    path(store, sizeof store, "pass");
    path(good, sizeof good, "good.txt");
    path(bad, sizeof bad, "bad.txt");
    path(empty, sizeof empty, "empty.txt");
    write_file(good, "correct horse battery staple\n");
    write_file(bad, "correct horse battery stapler\n");
    write_file(empty, "\n");
    struct sb_err err = { 0 };
    assert_int_equal(secrets_store_create(store, NULL, empty, &err), SB_EINVAL);
    assert_int_equal(secrets_store_create(store, NULL, good, &err), 0);
    char f[300];
    snprintf(f, sizeof f, "%s/master.key", store);
    assert_int_equal(access(f, F_OK), -1); /* no key file */
    struct secrets_store s;
    assert_int_equal(secrets_store_open(&s, store, NULL, NULL, &err), SB_ECONFIG);
    assert_non_null(strstr(err.msg, "passphrase"));
    assert_int_equal(secrets_store_open(&s, store, NULL, bad, &err), SB_EAUTH);
    assert_non_null(strstr(err.msg, "wrong passphrase"));
    assert_int_equal(secrets_store_open(&s, store, NULL, good, &err), 0);
    assert_int_equal(s.kdf.source, SECRETS_KEY_FROM_PASSPHRASE);
    assert_int_equal(secrets_store_put(&s, "k", "v", 1, 1, NULL, &err), 0);
    secrets_store_close(&s);
    assert_int_equal(secrets_store_open(&s, store, NULL, good, &err), 0);
    assert_non_null(secrets_store_get(&s, "k"));
    secrets_store_close(&s);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seal_then_open_round_trips),
        cmocka_unit_test(any_changed_byte_or_wrong_key_fails_to_open),
        cmocka_unit_test(absurd_kdf_parameters_are_refused_before_deriving),
        cmocka_unit_test(payload_round_trips_and_decoding_is_strict),
        cmocka_unit_test_setup_teardown(a_store_survives_reopening, setup_dir, remove_dir),
        cmocka_unit_test_setup_teardown(group_or_other_access_is_refused_with_the_fix, setup_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(a_passphrase_store_needs_the_right_passphrase, setup_dir,
                                        remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
