/* gatehouse — the store: one LMDB environment with named databases and a
 * narrow, typed API. Nothing outside core/ sees an MDB_* type, a cursor or a
 * serialised record, so a second backend (PostgreSQL) can slot in later.
 *
 * Threading: the environment is opened with MDB_NOTLS, so any thread may
 * call any function; each call runs in its own short transaction. Open the
 * store in each nginx worker after fork, never before (LMDB's rule).
 * Every write commits durably (fsync) before returning: call writes from a
 * thread-pool thread, never from an nginx event loop.
 *
 * Records returned to callers are copies: valid after the transaction ends.
 */
#ifndef GATEHOUSE_STORE_H
#define GATEHOUSE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "gatehouse/util.h"

#define GH_STORE_SCHEMA   2
#define GH_STORE_FILE     "gatehouse.mdb"   /* directory under the data dir */

typedef struct gh_store gh_store_t;

enum {
    GH_STORE_CREATE = 1 << 0,   /* create the environment and databases */
    GH_STORE_RDONLY = 1 << 1,   /* read-only environment (health checks) */
    GH_STORE_NOSYNC = 1 << 2,   /* no fsync at commit: benchmarks and bulk
                                   loads only, never a live gateway */
};

/* Open (or with GH_STORE_CREATE, create) the store under datadir/GH_STORE_FILE.
 * Checks the schema version (GH_ESCHEMA on mismatch; GH_ENOTINIT when the
 * environment does not exist and GH_STORE_CREATE is not given) and clears
 * stale readers (mdb_reader_check). */
int gh_store_open(gh_store_t **out, const char *datadir, unsigned flags);
void gh_store_close(gh_store_t *st);

/* 0 when a read transaction can be opened and the schema record read. */
int gh_store_check(gh_store_t *st);

/* Small string settings in the meta database (e.g. "argon2.opslimit").
 * get: GH_ENOTFOUND when unset; GH_ETOOBIG when cap is too small. */
int gh_meta_get(gh_store_t *st, const char *key, char *out, size_t cap);
int gh_meta_set(gh_store_t *st, const char *key, const char *value);

/* ---- tenants ---- */

typedef struct {
    char    name[GH_TENANT_MAX + 1];
    char    display[GH_NAME_MAX + 1];
    int64_t created;
} gh_tenant_t;

/* GH_EINVAL for a bad name, GH_EEXIST when it exists. */
int gh_tenant_add(gh_store_t *st, const char *name, const char *display);
int gh_tenant_get(gh_store_t *st, const char *name, gh_tenant_t *out);
/* Calls cb for each tenant in name order; a non-zero return from cb stops
 * the walk and is returned. */
int gh_tenant_list(gh_store_t *st, int (*cb)(const gh_tenant_t *, void *),
                   void *arg);

/* ---- users ---- */

#define GH_ROLE_NAME_MAX  63    /* [a-z0-9._:-] */
#define GH_BINDINGS_MAX   32    /* roles one user may hold */

/* A role binding: the user holds role within their tenant until `until`
 * (epoch seconds, exclusive; 0 = no end). Bindings live in the user record,
 * so the one read that fetches the user on each request also fetches them
 * fresh: a grant or revoke applies to the next request. */
typedef struct {
    char    role[GH_ROLE_NAME_MAX + 1];
    int64_t until;
} gh_binding_t;

typedef struct {
    char    id[GH_ID_HEXLEN + 1];        /* stable, never reused */
    char    tenant[GH_TENANT_MAX + 1];
    char    email[GH_EMAIL_MAX + 1];     /* normalised, unique in the store */
    char    name[GH_NAME_MAX + 1];
    char    roles[GH_ROLES_MAX + 1];     /* on add: initial roles, comma-
                                            separated; on read: every bound
                                            role, expired or not */
    gh_binding_t bindings[GH_BINDINGS_MAX];
    unsigned     nbindings;
    int     disabled;
    int64_t created;
    int64_t updated;
} gh_user_t;

/* Add a user. in->tenant must exist (GH_EBADTENANT), in->email must be
 * normalised and unused (GH_EEXIST). A fresh id is written to id_out
 * (and in->id is ignored). */
int gh_user_add(gh_store_t *st, const gh_user_t *in,
                char id_out[GH_ID_HEXLEN + 1]);
int gh_user_get(gh_store_t *st, const char *id, gh_user_t *out);
int gh_user_by_email(gh_store_t *st, const char *email, gh_user_t *out);
/* Walk users (of one tenant, or all when tenant is NULL) in email order. */
int gh_user_list(gh_store_t *st, const char *tenant,
                 int (*cb)(const gh_user_t *, void *), void *arg);
/* Disable or enable. Disabling deletes every session of the user in the same
 * transaction, so the user's next request is refused. */
int gh_user_set_disabled(gh_store_t *st, const char *id, int disabled);

/* Grant role to the user until `until` (0 = no end); granting a role the
 * user holds replaces its end date. GH_EINVAL for a bad role name,
 * GH_ETOOBIG past GH_BINDINGS_MAX, GH_ENOTFOUND for an unknown user. */
int gh_role_grant(gh_store_t *st, const char *uid, const char *role,
                  int64_t until);
/* GH_ENOTFOUND when the user does not hold the role. */
int gh_role_revoke(gh_store_t *st, const char *uid, const char *role);
/* The roles of u in force at now (until == 0 or until > now): pointers
 * into u, at most GH_BINDINGS_MAX. Returns the count. */
size_t gh_user_active_roles(const gh_user_t *u, int64_t now,
                            const char *out[GH_BINDINGS_MAX]);

/* ---- the access policy (YAML text, see policy.h) ---- */

/* Store a new policy text (already validated by the caller) and bump the
 * policy version, in one transaction. version_out may be NULL. */
int gh_policy_put(gh_store_t *st, const char *text, size_t len,
                  uint64_t *version_out);
/* A malloc'd, NUL-terminated copy of the live text (caller frees) and its
 * version. GH_ENOTFOUND when no policy was ever stored. */
int gh_policy_get(gh_store_t *st, char **text, size_t *len,
                  uint64_t *version);
/* Only the version: what workers read on each request to notice a change.
 * 0 when no policy was ever stored. */
int gh_policy_version(gh_store_t *st, uint64_t *version);

/* ---- credentials (Argon2id PHC strings) ---- */

#define GH_HASH_MAX 160   /* >= crypto_pwhash_STRBYTES (128) */

int gh_credential_set(gh_store_t *st, const char *uid, const char *hash);
/* GH_ENOTFOUND when the user has no password. */
int gh_credential_get(gh_store_t *st, const char *uid, char out[GH_HASH_MAX]);

/* The login read: user and credential by email in one read transaction.
 * GH_ENOTFOUND when no such user; hash_out is "" when the user has none. */
int gh_login_lookup(gh_store_t *st, const char *email, gh_user_t *user,
                    char hash_out[GH_HASH_MAX]);

/* ---- sessions (keyed by SHA-256 of the cookie value) ---- */

#define GH_AMR_MAX 31

typedef struct {
    char    uid[GH_ID_HEXLEN + 1];
    char    tenant[GH_TENANT_MAX + 1];
    char    amr[GH_AMR_MAX + 1];   /* methods used, e.g. "pwd", "pwd+otp" */
    int64_t created;               /* = auth_time for now */
    int64_t last_seen;
} gh_session_t;

int gh_session_put(gh_store_t *st, const uint8_t key[32], const gh_session_t *s);
int gh_session_get(gh_store_t *st, const uint8_t key[32], gh_session_t *s);
/* GH_ENOTFOUND when absent. */
int gh_session_del(gh_store_t *st, const uint8_t key[32]);
/* Move last_seen forward to now if the session still exists (never back). */
int gh_session_touch(gh_store_t *st, const uint8_t key[32], int64_t now);
/* Session and its user in one read transaction. GH_ENOTFOUND when either is
 * missing. Expiry is not judged here (see authn/session.h). */
int gh_session_read(gh_store_t *st, const uint8_t key[32], gh_session_t *s,
                    gh_user_t *u);
/* Delete every session of uid; returns the number deleted or an error. */
int gh_session_del_user(gh_store_t *st, const char *uid);

#endif
