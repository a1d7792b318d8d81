/* gatehouse — password hashing with Argon2id (libsodium).
 *
 * Only Argon2id hashes are produced; verification accepts whatever libsodium
 * can parse, but anything that is not an Argon2id string with the current
 * parameters is reported as needing a rehash, so it is upgraded on the next
 * successful login.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gatehouse/error.h"
#include "gatehouse/password.h"

_Static_assert(GH_HASH_MAX >= crypto_pwhash_STRBYTES,
               "GH_HASH_MAX must hold a libsodium PHC string");
_Static_assert(GH_ARGON2_MEM_MIN >= crypto_pwhash_MEMLIMIT_MIN,
               "GH_ARGON2_MEM_MIN below libsodium's floor");

#define META_OPS  "argon2.opslimit"
#define META_MEM  "argon2.memlimit"
#define ARGON2ID_PREFIX "$argon2id$"
#define PARAM_TEXT_MAX 32   /* a decimal uint64 is at most 20 digits */

/* 0 once libsodium is usable. sodium_init() is thread-safe and idempotent
 * (returns 1 when already done), so calling it on every entry is enough. */
static int
pw_init(void)
{
    return sodium_init() < 0 ? GH_ECRYPTO : 0;
}

/* 1 when p is within what we accept and libsodium can honour. */
static int
params_valid(const gh_pwhash_params_t *p)
{
    return p->opslimit >= GH_ARGON2_OPS_MIN &&
           p->opslimit <= crypto_pwhash_OPSLIMIT_MAX &&
           p->memlimit >= GH_ARGON2_MEM_MIN &&
           p->memlimit <= crypto_pwhash_MEMLIMIT_MAX;
}

void
gh_pwhash_params_default(gh_pwhash_params_t *p)
{
    p->opslimit = GH_ARGON2_OPS_DEFAULT;
    p->memlimit = GH_ARGON2_MEM_DEFAULT;
}

/* Parse a meta value: decimal digits only (strtoull alone would accept
 * leading space, '+' and '-' — and "-1" would wrap to a huge limit).
 * Returns 0 or GH_EINVAL. */
static int
parse_u64(const char *s, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return GH_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return GH_EINVAL;
    *out = v;
    return 0;
}

/* Read one numeric meta key into *out; leaves *out alone when unset.
 * Returns 0, GH_EINVAL for a malformed value, or the store's error. */
static int
meta_u64(gh_store_t *st, const char *key, unsigned long long *out)
{
    char buf[PARAM_TEXT_MAX];
    int rc;

    rc = gh_meta_get(st, key, buf, sizeof buf);
    if (rc == GH_ENOTFOUND)
        return 0;
    if (rc == GH_ETOOBIG)
        return GH_EINVAL;   /* longer than any valid number */
    if (rc != 0)
        return rc;
    return parse_u64(buf, out);
}

/* Parameters from the store's meta, defaults for unset keys. Returns 0,
 * GH_EINVAL when a recorded value is malformed or out of range (refusing is
 * safer than silently hashing with weaker parameters), or a store error. */
int
gh_pwhash_params_load(gh_store_t *st, gh_pwhash_params_t *p)
{
    gh_pwhash_params_t tmp;
    unsigned long long ops, mem;
    int rc;

    if (st == NULL || p == NULL)
        return GH_EINVAL;
    gh_pwhash_params_default(&tmp);
    ops = tmp.opslimit;
    mem = tmp.memlimit;

    rc = meta_u64(st, META_OPS, &ops);
    if (rc != 0)
        goto out;
    rc = meta_u64(st, META_MEM, &mem);
    if (rc != 0)
        goto out;
    if (mem > SIZE_MAX) {
        rc = GH_EINVAL;
        goto out;
    }
    tmp.opslimit = ops;
    tmp.memlimit = (size_t)mem;
    if (!params_valid(&tmp)) {
        rc = GH_EINVAL;
        goto out;
    }
    *p = tmp;
    rc = 0;
out:
    return rc;
}

/* Record p in the store's meta. GH_EINVAL for out-of-range parameters. */
int
gh_pwhash_params_save(gh_store_t *st, const gh_pwhash_params_t *p)
{
    char buf[PARAM_TEXT_MAX];
    int rc;

    if (st == NULL || p == NULL || !params_valid(p))
        return GH_EINVAL;
    snprintf(buf, sizeof buf, "%llu", p->opslimit);
    rc = gh_meta_set(st, META_OPS, buf);
    if (rc != 0)
        goto out;
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->memlimit);
    rc = gh_meta_set(st, META_MEM, buf);
out:
    return rc;
}

/* Argon2id PHC string for pw (len bytes, may contain NUL) with params p.
 * Returns 0, GH_ETOOBIG above GH_PASSWORD_MAX, GH_EINVAL for bad params,
 * GH_ECRYPTO when libsodium fails (typically cannot allocate memlimit). */
int
gh_password_hash(const gh_pwhash_params_t *p, const char *pw, size_t len,
                 char out[GH_HASH_MAX])
{
    int rc;

    if (p == NULL || out == NULL || (pw == NULL && len > 0))
        return GH_EINVAL;
    out[0] = '\0';
    if (len > GH_PASSWORD_MAX)
        return GH_ETOOBIG;
    if (!params_valid(p))
        return GH_EINVAL;
    rc = pw_init();
    if (rc != 0)
        goto out;
    if (crypto_pwhash_str_alg(out, len > 0 ? pw : "", len, p->opslimit,
                              p->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        out[0] = '\0';
        rc = GH_ECRYPTO;
        goto out;
    }
    rc = 0;
out:
    return rc;
}

/* 1 when hash is a NUL-terminated string short enough for libsodium to
 * read without running past crypto_pwhash_STRBYTES. */
static int
hash_shape_ok(const char *hash)
{
    size_t n = strnlen(hash, crypto_pwhash_STRBYTES);

    return n > 0 && n < crypto_pwhash_STRBYTES;
}

/* 0 when pw matches hash; GH_EDENIED for a mismatch, a malformed hash, a
 * password over GH_PASSWORD_MAX or a library failure — the caller must not
 * be able to treat any of these as anything but "no". */
int
gh_password_verify(const char *hash, const char *pw, size_t len)
{
    if (hash == NULL || (pw == NULL && len > 0))
        return GH_EDENIED;
    if (len > GH_PASSWORD_MAX || !hash_shape_ok(hash))
        return GH_EDENIED;
    if (pw_init() != 0)
        return GH_EDENIED;
    if (crypto_pwhash_str_verify(hash, len > 0 ? pw : "", len) != 0)
        return GH_EDENIED;
    return 0;
}

/* 1 when hash is not an Argon2id string made with exactly p (including a
 * malformed or other-algorithm hash: upgrade it), 0 when it is current. */
int
gh_password_needs_rehash(const char *hash, const gh_pwhash_params_t *p)
{
    if (hash == NULL || p == NULL || !hash_shape_ok(hash))
        return 1;
    if (strncmp(hash, ARGON2ID_PREFIX, sizeof ARGON2ID_PREFIX - 1) != 0)
        return 1;
    if (pw_init() != 0)
        return 1;
    return crypto_pwhash_str_needs_rehash(hash, p->opslimit, p->memlimit) != 0;
}
