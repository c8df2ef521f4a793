/* store.c - the encrypted secret store (see store.h). Owns the on-disk format
 * below, the master key, and every write of the store file. Does not own the
 * audit trail (audit.c) or leases (lease.c).
 *
 * Directory layout (DIR: mode 0700 when created by `secrets init`; refused if
 * group/other may write it):
 *   secrets.db       the sealed store, mode 0600
 *   secrets.db.tmp   a write in progress; never read, replaced by the next write
 *   master.key       the key file (mode 0600, exactly 32 random bytes), unless
 *                    the store is passphrase-protected or --key-file puts it
 *                    elsewhere
 *   audit.log        the audit trail (audit.c)
 *   lock             flock()ed by whoever has the store open (daemon, init)
 *
 * secrets.db, all integers little-endian:
 *   off  len  field
 *     0    8  magic "SBSECRT1"
 *     8    1  format version, 1
 *     9    1  key source: 1 = key file, 2 = Argon2id passphrase
 *    10    2  reserved, 0
 *    12    4  Argon2id opslimit (0 with a key file)
 *    16    8  Argon2id memlimit in bytes (0 with a key file)
 *    24   16  Argon2id salt (zeros with a key file)
 *    40    8  generation, +1 on every write
 *    48   24  XChaCha20-Poly1305 (IETF) nonce, random for every write
 *    72    n  ciphertext of the payload, then its 16-byte Poly1305 tag
 * The 72 header bytes are the AEAD's associated data: changing any byte of
 * the file makes it fail to open. The salt and Argon2id parameters stay the
 * same for the life of a store; the nonce is new for every write (192 random
 * bits, so random nonces are safe).
 *
 * Payload (plaintext; exists only in guarded memory):
 *   u32 count (<= 1000)
 *   count times: u8 name_len (1..128), name ([A-Za-z0-9_.-]),
 *                i64 created_ms, i64 updated_ms (Unix ms),
 *                u32 value_len (1..65536), value (UTF-8, no NUL)
 *   strictly ascending by name (bytewise), nothing after the last entry;
 *   at most 16 MiB in all.
 *
 * Writes are atomic (sb_write_file_atomic, under the store's lock): the whole
 * image goes to secrets.db.tmp (O_TRUNC, 0600), fsync, rename over
 * secrets.db, fsync of the directory; the daemon answers only after that. A crash at any point
 * leaves either the old or the new file.
 */
#include "secrets/store.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#define MAGIC "SBSECRT1"
#define FORMAT_VERSION 1
#define NONCE_OFF 48
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KDF_OPSLIMIT 3u
#define KDF_MEMLIMIT (64ull << 20)
#define KDF_MEMLIMIT_MAX (1ull << 30)

_Static_assert(NONCE_OFF + NONCE_LEN == SECRETS_HEADER_LEN, "header layout");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == SECRETS_KEY_LEN, "key size");

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- files --------------------------------------------------------------- */

void secrets_key_path(const char *dir, const char *key_file, char *out, size_t outsz)
{
    if (key_file && *key_file)
        snprintf(out, outsz, "%s", key_file);
    else
        snprintf(out, outsz, "%s/%s", dir, SECRETS_KEY_FILE);
}

int secrets_check_private(int fd, const char *path, const char *what, struct sb_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return sb_err_errno(err, SB_EIO, "cannot stat %s %s", what, path);
    if (!S_ISREG(st.st_mode))
        return sb_err_set(err, SB_ECONFIG, "%s %s is not a regular file", what, path);
    if (st.st_mode & 077)
        return sb_err_set(err, SB_ECONFIG,
                          "%s %s is accessible by group/other (mode %04o); fix: chmod 600 %s", what,
                          path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

static int check_dir(const char *dir, struct sb_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return sb_err_set(err, SB_ECONFIG,
                              "no store at %s (create one with: secrets init --store %s)", dir,
                              dir);
        return sb_err_errno(err, SB_EIO, "cannot stat store directory %s", dir);
    }
    if (!S_ISDIR(st.st_mode))
        return sb_err_set(err, SB_ECONFIG, "store path %s is not a directory", dir);
    if (st.st_mode & 022)
        return sb_err_set(err, SB_ECONFIG,
                          "store directory %s is writable by group/other (mode %04o); fix: "
                          "chmod 700 %s",
                          dir, (unsigned)(st.st_mode & 07777), dir);
    return 0;
}

static int take_lock(const char *dir, int *fd_out, struct sb_err *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open lock file %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return sb_err_set(err, SB_EBUSY,
                              "store %s is in use by another secrets process (lock %s)", dir, path);
        errno = e;
        return sb_err_errno(err, SB_EIO, "cannot lock %s", path);
    }
    *fd_out = fd;
    return 0;
}

/* Reads a whole private file (mode checked) of at most max bytes. into:
 * guarded memory when guarded, else malloc. */
static int read_private(const char *path, const char *what, size_t max, bool guarded,
                        unsigned char **out, size_t *len, struct sb_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return sb_err_set(err, SB_ECONFIG, "%s %s does not exist", what, path);
        return sb_err_errno(err, SB_EIO, "cannot open %s %s", what, path);
    }
    int rc = secrets_check_private(fd, path, what, err);
    struct stat st;
    if (!rc && fstat(fd, &st) != 0)
        rc = sb_err_errno(err, SB_EIO, "cannot stat %s", path);
    if (!rc && (size_t)st.st_size > max)
        rc = sb_err_set(err, SB_ESTORE, "%s %s is larger than %zu bytes", what, path, max);
    unsigned char *buf = NULL;
    size_t n = rc ? 0 : (size_t)st.st_size;
    if (!rc) {
        buf = guarded ? sodium_malloc(n + 1) : malloc(n + 1);
        if (!buf)
            rc = sb_err_set(err, SB_ENOMEM, "no memory to read %s", path);
    }
    size_t got = 0;
    while (!rc && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = sb_err_errno(err, SB_EIO, "cannot read %s", path);
        else if (r == 0)
            break;
        else
            got += (size_t)r;
    }
    close(fd);
    if (rc) {
        if (guarded)
            sodium_free(buf);
        else
            free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return 0;
}

int secrets_read_passphrase(const char *path, char **pass, size_t *len, struct sb_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sb_err_errno(err, SB_ECONFIG, "cannot open passphrase file %s", path);
    /* a regular file must be private; a pipe (--passphrase-file <(...)) is fine */
    struct stat pst;
    if (fstat(fd, &pst) == 0 && S_ISREG(pst.st_mode)) {
        int prc = secrets_check_private(fd, path, "passphrase file", err);
        if (prc) {
            close(fd);
            return prc;
        }
    }
    enum { CAP = 4096 };
    char *buf = sodium_malloc(CAP + 1);
    if (!buf) {
        close(fd);
        return sb_err_set(err, SB_ENOMEM, "no memory for the passphrase");
    }
    size_t n = 0;
    while (n < CAP) {
        ssize_t r = read(fd, buf + n, CAP - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = sb_err_errno(err, SB_EIO, "cannot read passphrase file %s", path);
            close(fd);
            sodium_free(buf);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    char *nl = memchr(buf, '\n', n);
    if (nl)
        n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    sodium_memzero(buf + n, CAP + 1 - n);
    if (n == 0) {
        sodium_free(buf);
        return sb_err_set(err, SB_EINVAL, "passphrase file %s is empty", path);
    }
    *pass = buf;
    *len = n;
    return 0;
}

/* ---- sealing ------------------------------------------------------------- */

static void header_write(unsigned char *h, const struct secrets_kdf *kdf, uint64_t generation)
{
    memset(h, 0, SECRETS_HEADER_LEN);
    memcpy(h, MAGIC, 8);
    h[8] = FORMAT_VERSION;
    h[9] = (unsigned char)kdf->source;
    if (kdf->source == SECRETS_KEY_FROM_PASSPHRASE) {
        put_u32(h + 12, kdf->opslimit);
        put_u64(h + 16, kdf->memlimit);
        memcpy(h + 24, kdf->salt, 16);
    }
    put_u64(h + 40, generation);
    randombytes_buf(h + NONCE_OFF, NONCE_LEN);
}

int secrets_header_read(const unsigned char *file, size_t flen, struct secrets_kdf *kdf,
                        uint64_t *generation, struct sb_err *err)
{
    if (flen < SECRETS_HEADER_LEN + TAG_LEN || memcmp(file, MAGIC, 8) != 0)
        return sb_err_set(err, SB_ESTORE, "not a secrets store file (bad magic or too short)");
    if (file[8] != FORMAT_VERSION)
        return sb_err_set(err, SB_ESTORE, "store format version %u is not supported (1 is)",
                          file[8]);
    memset(kdf, 0, sizeof *kdf);
    kdf->source = (enum secrets_key_source)file[9];
    if (kdf->source == SECRETS_KEY_FROM_PASSPHRASE) {
        kdf->opslimit = get_u32(file + 12);
        kdf->memlimit = get_u64(file + 16);
        memcpy(kdf->salt, file + 24, 16);
        /* the header is authenticated only after the key is derived, so
         * bound what a tampered header can make us spend */
        if (kdf->opslimit < crypto_pwhash_OPSLIMIT_MIN || kdf->opslimit > 64 ||
            kdf->memlimit < crypto_pwhash_MEMLIMIT_MIN || kdf->memlimit > KDF_MEMLIMIT_MAX)
            return sb_err_set(err, SB_ESTORE, "store header has out-of-range Argon2id parameters");
    } else if (kdf->source != SECRETS_KEY_FROM_FILE) {
        return sb_err_set(err, SB_ESTORE, "store header has unknown key source %u", file[9]);
    }
    if (generation)
        *generation = get_u64(file + 40);
    return 0;
}

int secrets_seal(const unsigned char *key, const struct secrets_kdf *kdf, uint64_t generation,
                 const char *plain, size_t plen, unsigned char **file, size_t *flen,
                 struct sb_err *err)
{
    size_t n = SECRETS_HEADER_LEN + plen + TAG_LEN;
    unsigned char *f = malloc(n);
    if (!f)
        return sb_err_set(err, SB_ENOMEM, "no memory to seal the store");
    header_write(f, kdf, generation);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(f + SECRETS_HEADER_LEN, &clen,
                                               (const unsigned char *)plain, plen, f,
                                               SECRETS_HEADER_LEN, NULL, f + NONCE_OFF, key);
    *file = f;
    *flen = SECRETS_HEADER_LEN + (size_t)clen;
    return 0;
}

int secrets_unseal(const unsigned char *key, const unsigned char *file, size_t flen, char **plain,
                   size_t *plen, struct sb_err *err)
{
    struct secrets_kdf kdf;
    int rc = secrets_header_read(file, flen, &kdf, NULL, err);
    if (rc)
        return rc;
    size_t clen = flen - SECRETS_HEADER_LEN;
    char *p = sodium_malloc(clen - TAG_LEN + 1);
    if (!p)
        return sb_err_set(err, SB_ENOMEM, "no memory to open the store");
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            (unsigned char *)p, &mlen, NULL, file + SECRETS_HEADER_LEN, clen, file,
            SECRETS_HEADER_LEN, file + NONCE_OFF, key) != 0) {
        sodium_free(p);
        return sb_err_set(err, SB_EAUTH,
                          "the store cannot be decrypted: wrong %s, or the file was altered",
                          kdf.source == SECRETS_KEY_FROM_PASSPHRASE ? "passphrase" : "key file");
    }
    p[mlen] = '\0';
    *plain = p;
    *plen = (size_t)mlen;
    return 0;
}

int secrets_derive_key(const char *pass, size_t passlen, const struct secrets_kdf *kdf,
                       unsigned char *key, struct sb_err *err)
{
    if (crypto_pwhash(key, SECRETS_KEY_LEN, pass, passlen, kdf->salt, kdf->opslimit,
                      (size_t)kdf->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return sb_err_set(err, SB_ENOMEM, "Argon2id key derivation failed (out of memory?)");
    return 0;
}

/* ---- payload ------------------------------------------------------------- */

int secrets_payload_encode(const struct secrets_entry *v, size_t n, char **plain, size_t *plen,
                           struct sb_err *err)
{
    size_t total = 4;
    for (size_t i = 0; i < n; i++)
        total += 1 + strlen(v[i].name) + 8 + 8 + 4 + v[i].value_len;
    if (n > SECRETS_MAX_SECRETS || total > SECRETS_PAYLOAD_MAX)
        return sb_err_set(err, SB_ETOOBIG, "the store is full (at most %d secrets, %u MiB)",
                          SECRETS_MAX_SECRETS, SECRETS_PAYLOAD_MAX >> 20);
    unsigned char *p = sodium_malloc(total + 1);
    if (!p)
        return sb_err_set(err, SB_ENOMEM, "no memory to encode the store");
    size_t o = 0;
    put_u32(p, (uint32_t)n), o += 4;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(v[i].name);
        p[o++] = (unsigned char)nl;
        memcpy(p + o, v[i].name, nl), o += nl;
        put_u64(p + o, (uint64_t)v[i].created_ms), o += 8;
        put_u64(p + o, (uint64_t)v[i].updated_ms), o += 8;
        put_u32(p + o, (uint32_t)v[i].value_len), o += 4;
        memcpy(p + o, v[i].value, v[i].value_len), o += v[i].value_len;
    }
    *plain = (char *)p;
    *plen = o;
    return 0;
}

void secrets_entries_free(struct secrets_entry *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        sodium_free(v[i].value);
    free(v);
}

int secrets_payload_decode(const char *plain, size_t plen, struct secrets_entry **out, size_t *nout,
                           struct sb_err *err)
{
    const unsigned char *p = (const unsigned char *)plain;
    size_t o = 0;
#define NEED(k)                                                            \
    do {                                                                   \
        if (plen - o < (size_t)(k)) {                                      \
            rc = sb_err_set(err, SB_ESTORE, "store payload is truncated"); \
            goto fail;                                                     \
        }                                                                  \
    } while (0)
    int rc = 0;
    struct secrets_entry *v = NULL;
    size_t n = 0;
    if (plen < 4)
        return sb_err_set(err, SB_ESTORE, "store payload is truncated");
    uint32_t count = get_u32(p);
    o = 4;
    if (count > SECRETS_MAX_SECRETS)
        return sb_err_set(err, SB_ESTORE, "store payload holds %u secrets (at most %d)", count,
                          SECRETS_MAX_SECRETS);
    v = calloc(count ? count : 1, sizeof *v);
    if (!v)
        return sb_err_set(err, SB_ENOMEM, "no memory to load the store");
    for (; n < count; n++) {
        struct secrets_entry *e = &v[n];
        NEED(1);
        size_t nl = p[o++];
        NEED(nl + 20);
        if (nl == 0 || nl > SECRETS_NAME_MAX) {
            rc = sb_err_set(err, SB_ESTORE, "store payload has a bad name length");
            goto fail;
        }
        memcpy(e->name, p + o, nl), o += nl;
        e->name[nl] = '\0';
        e->created_ms = (int64_t)get_u64(p + o), o += 8;
        e->updated_ms = (int64_t)get_u64(p + o), o += 8;
        uint32_t vl = get_u32(p + o);
        o += 4;
        if (!secrets_name_valid(e->name) || (n > 0 && strcmp(v[n - 1].name, e->name) >= 0)) {
            rc = sb_err_set(err, SB_ESTORE, "store payload has a bad or unordered name");
            goto fail;
        }
        if (vl == 0 || vl > SECRETS_VALUE_MAX) {
            rc = sb_err_set(err, SB_ESTORE, "store payload has a bad value length");
            goto fail;
        }
        NEED(vl);
        e->value = secrets_guarded_dup((const char *)p + o, vl);
        if (!e->value) {
            rc = sb_err_set(err, SB_ENOMEM, "no memory to load the store");
            goto fail;
        }
        e->value_len = vl;
        o += vl;
    }
    if (o != plen) {
        rc = sb_err_set(err, SB_ESTORE, "store payload has trailing bytes");
        goto fail;
    }
#undef NEED
    *out = v;
    *nout = n;
    return 0;
fail:
    secrets_entries_free(v, count); /* calloc'd: entries not reached hold NULL */
    return rc;
}

/* ---- the store ----------------------------------------------------------- */

/* Encrypts the store (with `v` as its table) and writes it atomically. */
static int save(struct secrets_store *s, const struct secrets_entry *v, size_t n,
                struct sb_err *err)
{
    char *plain = NULL;
    size_t plen = 0;
    int rc = secrets_payload_encode(v, n, &plain, &plen, err);
    if (rc)
        return rc;
    unsigned char *file = NULL;
    size_t flen = 0;
    sodium_mprotect_readonly(s->key);
    rc = secrets_seal(s->key, &s->kdf, s->generation + 1, plain, plen, &file, &flen, err);
    sodium_mprotect_noaccess(s->key);
    sodium_free(plain);
    if (rc)
        return rc;
    rc = sb_write_file_atomic(s->db_path, file, flen, 0600, err);
    free(file);
    if (rc)
        return rc;
    s->generation++;
    return 0;
}

/* The store directory is 0700; parents it creates are 0755. */
static int mkdirs(const char *dir, struct sb_err *err)
{
    char parent[PATH_MAX];
    if (snprintf(parent, sizeof parent, "%s", dir) >= (int)sizeof parent)
        return sb_err_set(err, SB_EINVAL, "store path is too long");
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        int rc = sb_mkdir_p(parent, 0755, err);
        if (rc)
            return rc;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sb_err_errno(err, SB_EIO, "cannot create store directory %s", dir);
    return 0;
}

static int create_key_file(const char *path, unsigned char *key, struct sb_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return sb_err_set(err, SB_EEXISTS,
                              "key file %s already exists (refusing to overwrite it)", path);
        return sb_err_errno(err, SB_EIO, "cannot create key file %s", path);
    }
    randombytes_buf(key, SECRETS_KEY_LEN);
    if (fchmod(fd, 0600) != 0 || sb_write_all(fd, key, SECRETS_KEY_LEN) != 0 || fsync(fd) != 0) {
        int rc = sb_err_errno(err, SB_EIO, "cannot write key file %s", path);
        close(fd);
        unlink(path);
        return rc;
    }
    close(fd);
    return sb_fsync_parent(path, err);
}

int secrets_store_create(const char *dir, const char *key_file, const char *passphrase_file,
                         struct sb_err *err)
{
    if (sodium_init() < 0)
        return sb_err_set(err, SB_EINTERNAL, "libsodium failed to initialize");
    int rc = mkdirs(dir, err);
    if (rc || (rc = check_dir(dir, err)))
        return rc;
    int lock_fd = -1;
    if ((rc = take_lock(dir, &lock_fd, err)))
        return rc;
    char db[PATH_MAX + 16], keypath[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/%s", dir, SECRETS_DB_FILE);
    secrets_key_path(dir, key_file, keypath, sizeof keypath);
    unsigned char *key = sodium_malloc(SECRETS_KEY_LEN);
    struct secrets_kdf kdf = { .source = SECRETS_KEY_FROM_FILE };
    unsigned char *file = NULL;
    size_t flen = 0;
    if (!key) {
        rc = sb_err_set(err, SB_ENOMEM, "no memory for the key");
        goto out;
    }
    if (access(db, F_OK) == 0) {
        rc = sb_err_set(err, SB_EEXISTS, "a store already exists at %s (refusing to overwrite it)",
                        db);
        goto out;
    }
    if (passphrase_file && *passphrase_file) {
        char *pass = NULL;
        size_t plen = 0;
        if ((rc = secrets_read_passphrase(passphrase_file, &pass, &plen, err)))
            goto out;
        kdf.source = SECRETS_KEY_FROM_PASSPHRASE;
        kdf.opslimit = KDF_OPSLIMIT;
        kdf.memlimit = KDF_MEMLIMIT;
        randombytes_buf(kdf.salt, sizeof kdf.salt);
        rc = secrets_derive_key(pass, plen, &kdf, key, err);
        sodium_free(pass);
        if (rc)
            goto out;
    } else if ((rc = create_key_file(keypath, key, err))) {
        goto out;
    }
    char empty[4] = { 0, 0, 0, 0 };
    if ((rc = secrets_seal(key, &kdf, 1, empty, sizeof empty, &file, &flen, err)))
        goto out;
    rc = sb_write_file_atomic(db, file, flen, 0600, err);
out:
    free(file);
    sodium_free(key);
    close(lock_fd);
    return rc;
}

int secrets_store_open(struct secrets_store *s, const char *dir, const char *key_file,
                       const char *passphrase_file, struct sb_err *err)
{
    memset(s, 0, sizeof *s);
    s->lock_fd = -1;
    if (sodium_init() < 0)
        return sb_err_set(err, SB_EINTERNAL, "libsodium failed to initialize");
    if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir)
        return sb_err_set(err, SB_EINVAL, "store path is too long");
    snprintf(s->db_path, sizeof s->db_path, "%s/%s", dir, SECRETS_DB_FILE);
    int rc = check_dir(dir, err);
    if (rc || (rc = take_lock(dir, &s->lock_fd, err)))
        return rc;
    unsigned char *file = NULL;
    size_t flen = 0;
    char *plain = NULL;
    size_t plen = 0;
    rc = read_private(s->db_path, "store file", SECRETS_HEADER_LEN + SECRETS_PAYLOAD_MAX + TAG_LEN,
                      false, &file, &flen, err);
    if (rc == SB_ECONFIG && access(s->db_path, F_OK) != 0)
        rc = sb_err_set(err, SB_ECONFIG,
                        "no store at %s (create one with: secrets init --store %s)", dir, dir);
    if (rc || (rc = secrets_header_read(file, flen, &s->kdf, &s->generation, err)))
        goto fail;
    s->key = sodium_malloc(SECRETS_KEY_LEN);
    if (!s->key) {
        rc = sb_err_set(err, SB_ENOMEM, "no memory for the key");
        goto fail;
    }
    if (s->kdf.source == SECRETS_KEY_FROM_PASSPHRASE) {
        if (!passphrase_file || !*passphrase_file) {
            rc = sb_err_set(err, SB_ECONFIG,
                            "store %s is passphrase-protected: give --passphrase-file or "
                            "SECRETS_PASSPHRASE_FILE",
                            dir);
            goto fail;
        }
        char *pass = NULL;
        size_t passlen = 0;
        if ((rc = secrets_read_passphrase(passphrase_file, &pass, &passlen, err)))
            goto fail;
        rc = secrets_derive_key(pass, passlen, &s->kdf, s->key, err);
        sodium_free(pass);
        if (rc)
            goto fail;
    } else {
        char keypath[PATH_MAX + 16];
        secrets_key_path(dir, key_file, keypath, sizeof keypath);
        unsigned char *k = NULL;
        size_t klen = 0;
        if ((rc = read_private(keypath, "key file", 4096, true, &k, &klen, err)))
            goto fail;
        if (klen != SECRETS_KEY_LEN) {
            sodium_free(k);
            rc = sb_err_set(err, SB_ECONFIG, "key file %s is %zu bytes; a key file is %d bytes",
                            keypath, klen, SECRETS_KEY_LEN);
            goto fail;
        }
        memcpy(s->key, k, SECRETS_KEY_LEN);
        sodium_free(k);
    }
    rc = secrets_unseal(s->key, file, flen, &plain, &plen, err);
    sodium_mprotect_noaccess(s->key);
    if (rc || (rc = secrets_payload_decode(plain, plen, &s->v, &s->n, err)))
        goto fail;
    s->cap = s->n;
    sodium_free(plain);
    free(file);
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->db_path);
    unlink(tmp); /* a write that a crash interrupted */
    return 0;
fail:
    sodium_free(plain);
    free(file);
    secrets_store_close(s);
    return rc;
}

void secrets_store_close(struct secrets_store *s)
{
    secrets_entries_free(s->v, s->n);
    s->v = NULL;
    s->n = s->cap = 0;
    sodium_free(s->key);
    s->key = NULL;
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    s->lock_fd = -1;
}

/* Index of name, or (-1 - insertion point). */
static long find(const struct secrets_store *s, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->v[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1 - (long)lo;
}

const struct secrets_entry *secrets_store_get(const struct secrets_store *s, const char *name)
{
    long i = find(s, name);
    return i >= 0 ? &s->v[i] : NULL;
}

int secrets_store_put(struct secrets_store *s, const char *name, const char *value, size_t len,
                      int64_t now_ms, bool *created, struct sb_err *err)
{
    if (!secrets_name_valid(name))
        return sb_err_set(err, SB_EINVAL, "invalid secret name");
    int rc = secrets_value_check(value, len, err);
    if (rc)
        return rc;
    char *copy = secrets_guarded_dup(value, len);
    if (!copy)
        return sb_err_set(err, SB_ENOMEM, "no memory for the value");
    long i = find(s, name);
    if (i >= 0) {
        struct secrets_entry old = s->v[i];
        s->v[i].value = copy;
        s->v[i].value_len = len;
        s->v[i].updated_ms = now_ms;
        if ((rc = save(s, s->v, s->n, err))) {
            s->v[i] = old;
            sodium_free(copy);
            return rc;
        }
        sodium_free(old.value);
        if (created)
            *created = false;
        return 0;
    }
    if (s->n >= SECRETS_MAX_SECRETS) {
        sodium_free(copy);
        return sb_err_set(err, SB_ETOOBIG, "the store is full (at most %d secrets)",
                          SECRETS_MAX_SECRETS);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct secrets_entry *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv) {
            sodium_free(copy);
            return sb_err_set(err, SB_ENOMEM, "no memory for the table");
        }
        s->v = nv;
        s->cap = cap;
    }
    size_t at = (size_t)(-1 - i);
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof *s->v);
    struct secrets_entry *e = &s->v[at];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->created_ms = e->updated_ms = now_ms;
    e->value = copy;
    e->value_len = len;
    s->n++;
    if ((rc = save(s, s->v, s->n, err))) {
        sodium_free(copy);
        memmove(&s->v[at], &s->v[at + 1], (s->n - at - 1) * sizeof *s->v);
        s->n--;
        return rc;
    }
    if (created)
        *created = true;
    return 0;
}

int secrets_store_remove(struct secrets_store *s, const char *name, struct sb_err *err)
{
    long i = find(s, name);
    if (i < 0)
        return sb_err_set(err, SB_ENOTFOUND, "no secret named %s", name);
    struct secrets_entry gone = s->v[i];
    memmove(&s->v[i], &s->v[i + 1], (s->n - (size_t)i - 1) * sizeof *s->v);
    s->n--;
    int rc = save(s, s->v, s->n, err);
    if (rc) {
        memmove(&s->v[i + 1], &s->v[i], (s->n - (size_t)i) * sizeof *s->v);
        s->v[i] = gone;
        s->n++;
        return rc;
    }
    sodium_free(gone.value);
    return 0;
}
