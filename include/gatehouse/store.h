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

#define GH_STORE_SCHEMA   7   /* 3: password lifecycle and throttling;
                                 4: second factors; 5: SAML records;
                                 6: admin records (invitations, API
                                 tokens, reviews, break-glass);
                                 7: an index of each user's sessions.
                                 An older store (from schema 2) is
                                 upgraded in place when opened writable */
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

/* Keep the decoded session and user records that gh_session_read returns,
 * keyed by their raw stored bytes (so a hit is exact and any write misses):
 * for a process that resolves the same sessions over and over (an nginx
 * worker). 0 or GH_ENOMEM. */
int gh_store_read_cache(gh_store_t *st);

/* 0 when a read transaction can be opened and the schema record read. */
int gh_store_check(gh_store_t *st);

/* Small string settings in the meta database (e.g. "argon2.opslimit").
 * get: GH_ENOTFOUND when unset; GH_ETOOBIG when cap is too small. */
int gh_meta_get(gh_store_t *st, const char *key, char *out, size_t cap);
int gh_meta_set(gh_store_t *st, const char *key, const char *value);

/* ---- tenants ---- */

/* A tenant's password settings as stored: the profile and the parameters
 * an operator overrode, GH_PWSET_DEFAULT for the others. pwpolicy.h turns
 * them (and the tenant's MFA requirement) into the rules in force. */
enum { GH_PWPROFILE_NIST = 0, GH_PWPROFILE_CLASSES = 1 };
#define GH_PWSET_DEFAULT  (-1)
#define GH_PWSET_MAXVAL   100000   /* any stored parameter; pwpolicy.h
                                      narrows each one */

typedef struct {
    int profile;          /* GH_PWPROFILE_* */
    int min_length;       /* code points */
    int max_length;       /* code points */
    int min_classes;      /* of lower, upper, digit, other */
    int history;          /* no reuse of the last N (current included) */
    int max_age_days;     /* 0: passwords never expire */
    int blocklist;        /* 0 off, 1 on */
} gh_pwsettings_t;

/* nist, every parameter left to the profile. */
void gh_pwsettings_default(gh_pwsettings_t *s);

/* A tenant's second-factor requirement. optional (the default): users may
 * enrol, and those who did are asked at sign-in; required: nobody gets a
 * session without one (enrolment right after the password); off: no
 * enrolment and no second step (an app that requires MFA is then out of
 * reach for the tenant). */
enum { GH_MFA_OPTIONAL = 0, GH_MFA_REQUIRED = 1, GH_MFA_OFF = 2 };

/* "optional", "required", "off"; and back (-1 for anything else). */
const char *gh_mfa_level_name(int level);
int gh_mfa_level_parse(const char *s);

/* A tenant's networks as stored: canonical text, networks separated by
 * ",", each an address or ADDR/PREFIX the netset parser accepts. */
#define GH_TENANT_NETS_MAX   1024   /* bytes of the text */
#define GH_TENANT_NETS_COUNT 64     /* networks in one list */
/* Bounds of a tenant's session lifetimes (seconds). */
#define GH_TENANT_IDLE_MIN     60
#define GH_TENANT_LIFETIME_MAX (3650LL * 86400)

typedef struct {
    char    name[GH_TENANT_MAX + 1];
    char    display[GH_NAME_MAX + 1];
    int64_t created;
    gh_pwsettings_t pw;
    int     mfa;          /* GH_MFA_* */
    /* Access settings; the policy file's tenant section where unset
     * (`policy apply` copies what the file states into the record). */
    int     networks_set; /* 0: the policy file's networks */
    char    networks[GH_TENANT_NETS_MAX + 1];  /* when set; never empty */
    int64_t idle;         /* seconds; 0: the policy file's */
    int64_t lifetime;     /* seconds; 0: the policy file's */
} gh_tenant_t;

/* GH_EINVAL for a bad name, GH_EEXIST when it exists. */
int gh_tenant_add(gh_store_t *st, const char *name, const char *display);
int gh_tenant_get(gh_store_t *st, const char *name, gh_tenant_t *out);
/* Calls cb for each tenant in name order; a non-zero return from cb stops
 * the walk and is returned. */
int gh_tenant_list(gh_store_t *st, int (*cb)(const gh_tenant_t *, void *),
                   void *arg);
/* Replace the tenant's password settings. GH_ENOTFOUND for an unknown
 * tenant, GH_EINVAL for a profile or value out of the stored range (the
 * rules themselves are checked by gh_pwsettings_check, pwpolicy.h). */
int gh_tenant_set_pwsettings(gh_store_t *st, const char *name,
                             const gh_pwsettings_t *pw);
/* Set the tenant's GH_MFA_* level and bump the policy version in the same
 * transaction, so every worker applies it to the next request.
 * GH_ENOTFOUND for an unknown tenant, GH_EINVAL for a bad level. */
int gh_tenant_set_mfa(gh_store_t *st, const char *name, int level);
/* Check and canonicalise a list of networks ("10.0.0.0/8, 192.0.2.1": at
 * most GH_TENANT_NETS_COUNT, separated by commas and/or spaces, each one
 * gh_netset_add accepts) into out (cap bytes): 0, or GH_EINVAL (an empty
 * list among them) / GH_ETOOBIG. */
int gh_tenant_networks_canon(const char *list, char *out, size_t cap);
/* 1 when idle and lifetime (seconds, 0: unset) may stand in a record:
 * each within GH_TENANT_IDLE_MIN..GH_TENANT_LIFETIME_MAX, idle no longer
 * than lifetime. */
int gh_tenant_session_ok(int64_t idle, int64_t lifetime);
/* Set the tenant's networks (list: as gh_tenant_networks_canon accepts) or
 * unset them (list NULL: the policy file's apply again), and bump the
 * policy version in the same transaction. GH_ENOTFOUND, GH_EINVAL. */
int gh_tenant_set_networks(gh_store_t *st, const char *name,
                           const char *list);
/* Set the tenant's session idle and/or lifetime in seconds: 0 unsets
 * (the policy file's), GH_TENANT_KEEP leaves the stored value. The result
 * must hold GH_TENANT_IDLE_MIN <= each set value <=
 * GH_TENANT_LIFETIME_MAX and idle <= lifetime when both are set (GH_EINVAL,
 * nothing written). Bumps the policy version. GH_ENOTFOUND. */
#define GH_TENANT_KEEP (-1)
/* For show and audit: the networks ("policy file" when unset) and
 * "idle 30m, lifetime 12h" ("policy file" for an unset one). */
const char *gh_tenant_networks_text(const gh_tenant_t *t);
void gh_tenant_session_text(const gh_tenant_t *t, char *out, size_t cap);
int gh_tenant_set_session(gh_store_t *st, const char *name, int64_t idle,
                          int64_t lifetime);

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
    int64_t expires;                     /* 0: never; from this second on
                                            the account counts as disabled
                                            (a break-glass approval) */
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
/* One page of users in email order for a listing that must stay cheap
 * with 100,000 users: those after `after` ("" or NULL: from the start)
 * whose email begins with `prefix` (NULL: any) and, with tenant set, of
 * that tenant. At most `limit` users go to cb and at most `scan` index
 * entries are read; `next` gets the email to pass as `after` for the next
 * page, "" when there is none. */
typedef struct {
    const char *tenant;
    const char *prefix;
    const char *after;
    unsigned    limit;
    unsigned    scan;
} gh_user_page_t;
int gh_user_page(gh_store_t *st, const gh_user_page_t *pg,
                 int (*cb)(const gh_user_t *, void *), void *arg,
                 char next[GH_EMAIL_MAX + 1]);
/* Disable or enable. Disabling deletes every session of the user in the same
 * transaction, so the user's next request is refused. Enabling clears an
 * end (expires). */
int gh_user_set_disabled(gh_store_t *st, const char *id, int disabled);
/* Enable until `expires` (epoch seconds, > 0): from then on the account
 * counts as disabled everywhere (gh_user_off) with nothing left to run. */
int gh_user_enable_until(gh_store_t *st, const char *id, int64_t expires);
/* 1 when u may not act at now: disabled, or past its end. */
int gh_user_off(const gh_user_t *u, int64_t now);

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

/* ---- JWT signing keys (see jwt.h) ---- */

/* A signing key. It is published in the JWKS from creation until
 * retire_at (0: not retiring); it signs from sign_from until a newer key's
 * sign_from. The private key is sealed with the master key (seal.h). */
typedef struct {
    char    kid[44];
    char    x[44];
    char    y[44];
    char    pub_pem[256];
    char    sealed[640];
    int64_t created;
    int64_t sign_from;
    int64_t retire_at;
} gh_jwtkey_t;

int gh_jwtkey_add(gh_store_t *st, const gh_jwtkey_t *k);
int gh_jwtkey_retire(gh_store_t *st, const char *kid, int64_t retire_at);
int gh_jwtkey_list(gh_store_t *st, int (*cb)(const gh_jwtkey_t *, void *),
                   void *arg);
/* The policy and key-set versions in one read (what workers check on each
 * request to notice an applied policy or a key rotation). */
int gh_store_versions(gh_store_t *st, uint64_t *policy, uint64_t *keys);

/* ---- credentials (Argon2id PHC strings) ---- */

#define GH_HASH_MAX 160   /* >= crypto_pwhash_STRBYTES (128) */

#define GH_PW_HISTORY_MAX 24   /* earlier hashes a credential can keep */

/* A user's credential: the current hash, when it was set, whether the user
 * must replace it at the next login, and the hashes of earlier passwords
 * (newest first) for the history rule. Hashes are Argon2id PHC strings of
 * the NFC form of the password (pwpolicy.h). */
typedef struct {
    char     hash[GH_HASH_MAX];
    int64_t  updated;        /* seconds: when this password was set */
    int      must_change;    /* an administrator's reset: change at login */
    unsigned nhistory;
    char     history[GH_PW_HISTORY_MAX][GH_HASH_MAX];
} gh_credential_t;

/* Set a password hash with no history (init, tests): updated = now, the
 * must-change flag cleared, earlier hashes left as they are. */
int gh_credential_set(gh_store_t *st, const char *uid, const char *hash);
/* GH_ENOTFOUND when the user has no password. */
int gh_credential_get(gh_store_t *st, const char *uid, char out[GH_HASH_MAX]);
/* The whole record; GH_ENOTFOUND when the user has no password. */
int gh_credential_read(gh_store_t *st, const char *uid, gh_credential_t *out);

/* Replace the hash by `fresh` only (same password, new Argon2id
 * parameters): updated, flag and history stay. GH_EDENIED when the current
 * hash is no longer `old`. */
int gh_credential_rehash(gh_store_t *st, const char *uid, const char *old,
                         const char *fresh);

/* The login read: user and credential by email in one read transaction.
 * GH_ENOTFOUND when no such user; hash_out is "" when the user has none. */
int gh_login_lookup(gh_store_t *st, const char *email, gh_user_t *user,
                    char hash_out[GH_HASH_MAX]);
/* The same with the whole credential (hash "" when none) and the user's
 * tenant's password settings, one read transaction. */
int gh_login_read(gh_store_t *st, const char *email, gh_user_t *user,
                  gh_credential_t *cred, gh_pwsettings_t *pw);

/* ---- sessions (keyed by SHA-256 of the cookie value) ---- */

#define GH_AMR_MAX 31

/* Session flags. A GH_SESSION_PWCHANGE session proves the password but
 * may do nothing except change it (or sign out): the gateway treats it as
 * no session anywhere else. */
#define GH_SESSION_PWCHANGE  (1u << 0)
/* A GH_SESSION_MFA session proves the password only and waits for the
 * second factor (or its enrolment): it reaches /.gatehouse/mfa (and the
 * enrolment page, when the user has no factor yet) and logout; elsewhere
 * it is no session. It lives GH_MFA_PENDING_TTL seconds at most. */
#define GH_SESSION_MFA       (1u << 1)
#define GH_SESSION_FLAGS     (GH_SESSION_PWCHANGE | GH_SESSION_MFA)
#define GH_MFA_PENDING_TTL   300

typedef struct {
    char    uid[GH_ID_HEXLEN + 1];
    char    tenant[GH_TENANT_MAX + 1];
    char    amr[GH_AMR_MAX + 1];   /* methods used, e.g. "pwd", "pwd+otp" */
    int64_t created;               /* = auth_time for now */
    int64_t last_seen;
    unsigned flags;                /* GH_SESSION_* */
    int64_t mfa_at;                /* when the second factor was last
                                      proven (0: never) */
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
/* The gateway's read of a request, in one read transaction: the policy and
 * key-set versions (as gh_store_versions), and when key is not NULL the
 * session and its user (as gh_session_read). The transaction is kept by the
 * handle between calls, so one thread only may call this on a handle (the
 * nginx worker's event loop). A session-level GH_ENOTFOUND leaves the
 * versions read; any other error is the store's. */
int gh_request_read(gh_store_t *st, const uint8_t key[32], gh_session_t *s,
                    gh_user_t *u, uint64_t *policy, uint64_t *keys);
/* Calls cb for each session of uid (key, record) in one read transaction,
 * expired or not; non-zero from cb stops and is returned. Through the
 * user's index: the cost is the user's sessions, not the store's. */
int gh_session_list_user(gh_store_t *st, const char *uid,
                         int (*cb)(const uint8_t key[32],
                                   const gh_session_t *s, void *arg),
                         void *arg);
/* Delete those sessions of uid for which dead() says 1 (sessions past
 * their lifetime: they are refused anyway, this reclaims their room); a
 * record that cannot be decoded is left alone. Returns the count; nothing
 * is written when it is 0. */
int gh_session_prune_user(gh_store_t *st, const char *uid,
                          int (*dead)(const gh_session_t *s, void *arg),
                          void *arg);
/* Delete every session of uid; returns the number deleted or an error. */
int gh_session_del_user(gh_store_t *st, const char *uid);
/* The same but for the session stored under keep (NULL: none kept). */
int gh_session_del_user_except(gh_store_t *st, const char *uid,
                               const uint8_t keep[32]);

/* ---- password changes ---- */

/* A password change (or an administrator's reset), and what goes with it,
 * in one write transaction: the new hash (the old one joins the history,
 * which keeps `keep` entries), the must-change flag, and the end of the
 * user's sessions — all of them, or all but keep_key; optionally a new
 * session created in the same transaction (so that a session never outlives
 * a failed change, and a change never leaves the old sessions behind). */
typedef struct {
    const char         *hash;         /* the new hash; NULL keeps the hash
                                         and only sets must_change */
    const char         *expect;       /* non-NULL: GH_EDENIED unless the
                                         current hash is still this one (a
                                         concurrent change wins) */
    int                 must_change;
    unsigned            keep;         /* earlier hashes kept, <= GH_PW_HISTORY_MAX */
    int64_t             now;          /* seconds */
    const uint8_t      *keep_key;     /* the one session to keep, or NULL */
    const uint8_t      *new_key;      /* a session to create, or NULL */
    const gh_session_t *new_session;  /* its record */
} gh_pwchange_t;
/* Returns the number of sessions ended (>= 0) or an error. */
int gh_credential_change(gh_store_t *st, const char *uid,
                         const gh_pwchange_t *c);

/* ---- login throttling counters (authn/throttle.c decides) ---- */

enum { GH_THROTTLE_ACCOUNT = 'a', GH_THROTTLE_ADDRESS = 'n' };
#define GH_THROTTLE_KEYS_MAX 4

/* One counter: for an account (keyed by the normalised email string as
 * submitted, whether or not such a user exists) or for a client address
 * (its 16 bytes). Times in milliseconds since the epoch. */
typedef struct {
    uint32_t fails;     /* consecutive failures / failures in the window */
    int64_t  since;     /* address: window start */
    int64_t  last;      /* the last failure */
    int64_t  until;     /* refused before this */
    int      locked;    /* account: until an administrator unlocks it */
} gh_throttle_rec_t;

typedef struct {
    int         kind;   /* GH_THROTTLE_* */
    const void *id;     /* email text or 16 address bytes */
    size_t      len;    /* 1..GH_EMAIL_MAX */
} gh_throttle_key_t;

/* One write transaction: read the n records (zero when absent), let fn
 * judge and change them, write back those it changed (deleting a record
 * left with fails == 0 and not locked), then delete up to `sweep` other
 * records for which expired() says 1 (cleaning up after address sprays,
 * from a random starting key), and commit. A non-zero return from fn
 * aborts and is returned. expired may be NULL. */
int gh_throttle_update(gh_store_t *st, const gh_throttle_key_t *keys,
                       size_t n,
                       int (*fn)(gh_throttle_rec_t *recs, void *arg),
                       int (*expired)(int kind, const gh_throttle_rec_t *r,
                                      void *arg),
                       unsigned sweep, void *arg);
/* Read one record (zeroed and GH_ENOTFOUND when absent). */
int gh_throttle_get(gh_store_t *st, const gh_throttle_key_t *key,
                    gh_throttle_rec_t *out);
/* Delete one record; GH_ENOTFOUND when absent. */
int gh_throttle_del(gh_store_t *st, const gh_throttle_key_t *key);

/* ---- second factors (authn/mfa.c decides) ---- */

#define GH_OTP_SEALED_MAX   160     /* gh_seal text of a 64-byte secret */
#define GH_MFA_RECOVERY_MAX 10
#define GH_MFA_HASH_LEN     64

/* One OTP factor: parameters (otp.h), the sealed secret, and `next`, the
 * lowest counter (HOTP) or time step (TOTP) still acceptable: a code is
 * accepted only for a counter >= next, and accepting it sets next past
 * it, so no code is ever accepted twice. */
typedef struct {
    int      type, algo, digits, period;
    char     sealed[GH_OTP_SEALED_MAX];
    uint64_t next;
    int64_t  created;
} gh_otp_factor_t;

/* A user's second-factor record. */
typedef struct {
    int              has_active;
    gh_otp_factor_t  active;
    int              has_pending;         /* an enrolment not confirmed */
    gh_otp_factor_t  pending;
    int64_t          pending_until;
    uint64_t         resync;              /* HOTP: a counter matched beyond
                                             the look-ahead, awaiting the
                                             next code (0: none) */
    int64_t          resync_until;
    char             salt[33];            /* hex, for the recovery hashes */
    unsigned         nrecovery;           /* slots; "" marks a used code */
    char             recovery[GH_MFA_RECOVERY_MAX][GH_MFA_HASH_LEN + 1];
} gh_mfa_t;

/* GH_ENOTFOUND when the user has no record. */
int gh_mfa_get(gh_store_t *st, const char *uid, gh_mfa_t *out);

/* What happens to sessions when an update succeeds: in the same write
 * transaction, delete one (it must still exist, else GH_ENOTFOUND and
 * nothing is written: a signed-out or revoked session cannot finish) and
 * create another. Either may be NULL. */
typedef struct {
    const uint8_t      *del_key;
    const uint8_t      *new_key;
    const gh_session_t *new_session;
} gh_mfa_sessop_t;

/* One write transaction: read the user (GH_ENOTFOUND, or GH_EDISABLED for
 * a disabled account) and their record (zeroed, have = 0, when absent),
 * let fn change it; fn returns < 0 to abort (returned as is), 0 to write
 * the record and apply op, 1 to write the record only (returned: 1). A
 * record left with no factor, no enrolment and no resync is deleted. */
int gh_mfa_update(gh_store_t *st, const char *uid,
                  int (*fn)(gh_mfa_t *m, int have, const gh_user_t *u,
                            void *arg),
                  void *arg, const gh_mfa_sessop_t *op);

/* Remove the user's record (administrator's reset). GH_ENOTFOUND when
 * there was none. */
int gh_mfa_del(gh_store_t *st, const char *uid);

/* ---- SAML records: small keyed values whose format authn/saml.c owns
 * (identity providers, SP keys, outstanding request ids, consumed
 * assertion ids, tenant sign-in and domains). Keys: 1..512 bytes of
 * text; values up to 256 KiB. ---- */

/* A malloc'd NUL-terminated copy (caller frees). GH_ENOTFOUND. */
int gh_kv_get(gh_store_t *st, const char *key, char **out, size_t *len);
/* Store; create_only: GH_EEXIST when the key exists. */
int gh_kv_put(gh_store_t *st, const char *key, const char *val, size_t len,
              int create_only);
/* GH_ENOTFOUND when absent. */
int gh_kv_del(gh_store_t *st, const char *key);
/* One write transaction: read and delete `take` (GH_ENOTFOUND when absent;
 * *taken gets a malloc'd copy) and create `mark` with val (GH_EEXIST when
 * it exists); either may be NULL. Nothing is written unless both succeed:
 * a request id is consumed once, an assertion id is accepted once, also
 * under concurrent posts (LMDB serialises writers). */
int gh_kv_consume(gh_store_t *st, const char *take, char **taken,
                  size_t *taken_len, const char *mark, const char *val,
                  size_t len);
/* Read-only walk of at most max records whose key starts with prefix, in
 * key order: cb gets the key and value (NUL-terminated copies, valid
 * during the call); non-zero from cb stops the walk and is returned. */
int gh_kv_walk(gh_store_t *st, const char *prefix,
               int (*cb)(const char *key, const char *val, void *arg),
               void *arg, unsigned max);
/* Delete, among at most max records whose key starts with prefix, those
 * for which expired(value, its length — not NUL-terminated, valid only
 * during the call) says 1. Returns the number deleted or an error. */
int gh_kv_sweep(gh_store_t *st, const char *prefix,
                int (*expired)(const char *val, size_t len, void *arg),
                void *arg, unsigned max);

#endif
