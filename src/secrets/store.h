/* store.h - the encrypted secret store of the secrets daemon: the in-memory
 * table of secrets, the sealed file on disk (format specified in store.c),
 * the master key (key file or Argon2id passphrase), atomic writes, and the
 * permission checks on the files that hold key material.
 *
 * Not thread-safe: the daemon's single loop owns its store. Values and the
 * key live only in sodium_malloc memory; the key is kept PROT_NONE between
 * uses. */
#ifndef SECRETS_STORE_H
#define SECRETS_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "secrets/proto.h"

#define SECRETS_KEY_LEN 32
#define SECRETS_HEADER_LEN 72
#define SECRETS_MAX_SECRETS 1000
#define SECRETS_PAYLOAD_MAX (16u << 20)
#define SECRETS_DB_FILE "secrets.db"
#define SECRETS_KEY_FILE "master.key"

enum secrets_key_source { SECRETS_KEY_FROM_FILE = 1, SECRETS_KEY_FROM_PASSPHRASE = 2 };

/* How the master key is obtained; lives in the file header. */
struct secrets_kdf {
    enum secrets_key_source source;
    uint32_t opslimit; /* Argon2id only */
    uint64_t memlimit; /* bytes, Argon2id only */
    unsigned char salt[16];
};

struct secrets_entry {
    char name[SECRETS_NAME_MAX + 1];
    int64_t created_ms, updated_ms;
    char *value; /* sodium_malloc'd, NUL-terminated */
    size_t value_len;
};

struct secrets_store {
    char dir[PATH_MAX];
    char db_path[PATH_MAX + 16];
    unsigned char *key; /* guarded, PROT_NONE between uses */
    struct secrets_kdf kdf;
    uint64_t generation;
    struct secrets_entry *v; /* sorted by name; the array is plain heap, values are guarded */
    size_t n, cap;
    int lock_fd;
};

/* Where a key file is: key_file when given, else DIR/master.key. */
void secrets_key_path(const char *dir, const char *key_file, char *out, size_t outsz);

/* Creates a store in dir (made 0700 if missing): a new random key file
 * (0600; at key_file or DIR/master.key), or, when passphrase_file is given,
 * an Argon2id-protected store with no key file. Refuses (SB_EEXISTS) to
 * overwrite an existing store or key file. SB_EBUSY when a daemon holds the
 * store; SB_EIO/SB_ECONFIG/SB_EINVAL otherwise, err naming the file. */
int secrets_store_create(const char *dir, const char *key_file, const char *passphrase_file,
                         struct sb_err *err);

/* Opens and decrypts the store in dir, taking its lock for as long as it is
 * open. The header says whether the key comes from key_file (NULL = default
 * path) or from passphrase_file. Errors: SB_ECONFIG (no store, a file with
 * group/other permissions - the message says the chmod that fixes it -, a
 * missing passphrase, a key file of the wrong size), SB_EAUTH (the key or
 * passphrase does not open the store: wrong, or the file was tampered with),
 * SB_ESTORE (a corrupt store), SB_EBUSY (another daemon has it), SB_EIO.
 * On failure s holds nothing that needs closing. */
int secrets_store_open(struct secrets_store *s, const char *dir, const char *key_file,
                       const char *passphrase_file, struct sb_err *err);
/* Wipes and releases everything and drops the lock. */
void secrets_store_close(struct secrets_store *s);

/* The entry named name, or NULL. Borrowed until the next put/remove. */
const struct secrets_entry *secrets_store_get(const struct secrets_store *s, const char *name);
/* Sets name to value (copied into guarded memory) and writes the store
 * atomically before returning; on failure memory and disk are unchanged.
 * *created (may be NULL): whether the name was new. SB_ETOOBIG when the
 * store is full. */
int secrets_store_put(struct secrets_store *s, const char *name, const char *value, size_t len,
                      int64_t now_ms, bool *created, struct sb_err *err);
/* Removes name and writes the store. SB_ENOTFOUND when absent. */
int secrets_store_remove(struct secrets_store *s, const char *name, struct sb_err *err);

/* ---- the pieces, exposed for unit tests ---- */

/* Seals a payload into a complete file image (malloc'd, caller frees). */
int secrets_seal(const unsigned char *key, const struct secrets_kdf *kdf, uint64_t generation,
                 const char *plain, size_t plen, unsigned char **file, size_t *flen,
                 struct sb_err *err);
/* Reads and checks the header of a file image (magic, version, sane KDF
 * parameters). SB_ESTORE when it is not a store file. */
int secrets_header_read(const unsigned char *file, size_t flen, struct secrets_kdf *kdf,
                        uint64_t *generation, struct sb_err *err);
/* Opens a file image: *plain is guarded (free with secrets_guarded_free).
 * SB_EAUTH when authentication fails (wrong key, or any byte changed). */
int secrets_unseal(const unsigned char *key, const unsigned char *file, size_t flen, char **plain,
                   size_t *plen, struct sb_err *err);
/* Derives the key from a passphrase with the parameters in kdf. */
int secrets_derive_key(const char *pass, size_t passlen, const struct secrets_kdf *kdf,
                       unsigned char *key, struct sb_err *err);
/* Payload encoding of entries (sorted, unique) into guarded memory, and the
 * strict decoding back (entries malloc'd, values guarded). */
int secrets_payload_encode(const struct secrets_entry *v, size_t n, char **plain, size_t *plen,
                           struct sb_err *err);
int secrets_payload_decode(const char *plain, size_t plen, struct secrets_entry **v, size_t *n,
                           struct sb_err *err);
void secrets_entries_free(struct secrets_entry *v, size_t n);
/* Refuses (SB_ECONFIG) an open file (fd) whose mode gives group or other
 * any access, with the chmod that fixes it; what: "key file", ... */
int secrets_check_private(int fd, const char *path, const char *what, struct sb_err *err);
/* Reads the first line of a passphrase file into guarded memory. */
int secrets_read_passphrase(const char *path, char **pass, size_t *len, struct sb_err *err);

#endif
