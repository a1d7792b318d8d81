/* gatehouse — password hashing with Argon2id (libsodium).
 *
 * Hashing and verification cost ~100-200 ms of CPU and 64 MiB of memory by
 * default: call them only from a thread-pool thread or the CLI, never from an
 * nginx event loop.
 */
#ifndef GATEHOUSE_PASSWORD_H
#define GATEHOUSE_PASSWORD_H

#include <stddef.h>
#include "gatehouse/store.h"

#define GH_PASSWORD_MAX        1024  /* bytes accepted on input */
#define GH_ARGON2_OPS_DEFAULT     3
#define GH_ARGON2_MEM_DEFAULT  (64u * 1024 * 1024)
#define GH_ARGON2_OPS_MIN         1
#define GH_ARGON2_MEM_MIN      (8u * 1024)     /* libsodium's floor */

typedef struct {
    unsigned long long opslimit;   /* passes */
    size_t             memlimit;   /* bytes */
} gh_pwhash_params_t;

/* The defaults (3 passes, 64 MiB). */
void gh_pwhash_params_default(gh_pwhash_params_t *p);

/* Parameters recorded in the store's meta ("argon2.opslimit",
 * "argon2.memlimit"), falling back to the defaults when unset. */
int gh_pwhash_params_load(gh_store_t *st, gh_pwhash_params_t *p);
int gh_pwhash_params_save(gh_store_t *st, const gh_pwhash_params_t *p);

/* Hash pw (len bytes, may contain NUL) into a PHC string. */
int gh_password_hash(const gh_pwhash_params_t *p, const char *pw, size_t len,
                     char out[GH_HASH_MAX]);

/* 0 when pw matches hash, GH_EDENIED when it does not or hash is malformed. */
int gh_password_verify(const char *hash, const char *pw, size_t len);

/* 1 when hash was made with parameters different from p (rehash on login). */
int gh_password_needs_rehash(const char *hash, const gh_pwhash_params_t *p);

#endif
