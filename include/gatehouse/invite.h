/* gatehouse — invitations (records in the store's "admin" database).
 *
 * A space-admin or a manager invites an email with proposed roles: the
 * invitation is pending and nothing else exists (no user, no role). A
 * manager other than the inviter approves it: the user is created with
 * those roles and no password, and a one-time link token is made; the
 * store keeps only the token's SHA-256. The link sets the password (under
 * the tenant's rules) once, before it expires (GH_INVITE_TTL by default);
 * a tenant that requires MFA asks for enrolment at the first sign-in.
 *
 * Writes are durable LMDB commits: thread pool or CLI only.
 */
#ifndef GATEHOUSE_INVITE_H
#define GATEHOUSE_INVITE_H

#include <stdint.h>
#include "gatehouse/store.h"
#include "gatehouse/util.h"

#define GH_INVITE_TTL        (7 * 24 * 3600)   /* link lifetime, seconds */
#define GH_INVITE_TOKEN_LEN  43                /* base64url of 32 bytes */
#define GH_INVITE_SCAN       1000              /* records a listing reads */

enum {
    GH_INVITE_PENDING  = 0,
    GH_INVITE_APPROVED = 1,   /* link issued, not used yet */
    GH_INVITE_REJECTED = 2,
    GH_INVITE_USED     = 3,
};

typedef struct {
    char    id[GH_ID_HEXLEN + 1];
    char    tenant[GH_TENANT_MAX + 1];
    char    email[GH_EMAIL_MAX + 1];     /* normalised */
    char    name[GH_NAME_MAX + 1];
    char    roles[GH_ROLES_MAX + 1];     /* proposed, comma-separated */
    int     state;                       /* GH_INVITE_* */
    char    inviter[GH_ID_HEXLEN + 1];   /* user id */
    char    inviter_email[GH_EMAIL_MAX + 1];
    char    decider_email[GH_EMAIL_MAX + 1];
    char    uid[GH_ID_HEXLEN + 1];       /* the user made at approval */
    char    token_hash[65];              /* hex SHA-256 of the link token */
    int64_t created, decided, expires, used;
} gh_invite_t;

/* "pending", "approved", "rejected", "used". */
const char *gh_invite_state_name(int state);

/* Store a new pending invitation (in->id is set to a fresh id). GH_EINVAL
 * for a malformed field, GH_EEXIST when the email belongs to a user or to
 * another open (pending or approved) invitation, GH_EBADTENANT. */
int gh_invite_add(gh_store_t *st, gh_invite_t *in);
int gh_invite_get(gh_store_t *st, const char *id, gh_invite_t *out);
/* Walk at most GH_INVITE_SCAN records (of one tenant when tenant is not
 * NULL); non-zero from cb stops and is returned. */
int gh_invite_list(gh_store_t *st, const char *tenant,
                   int (*cb)(const gh_invite_t *, void *), void *arg);

/* Decide a pending invitation. Approve: make the user (tenant, email,
 * name, roles; no password), store the token's hash and expiry, all in
 * this order; reject: record the decision. GH_EDENIED when it is no longer
 * pending, or when decider_uid is the inviter (four eyes). token (approve
 * only) receives the link token, shown once. */
int gh_invite_decide(gh_store_t *st, const char *id, int approve,
                     const char *decider_uid, const char *decider_email,
                     int64_t now, int64_t ttl,
                     char token[GH_INVITE_TOKEN_LEN + 1]);

/* The approved, unexpired invitation a link token opens (read only).
 * GH_ENOTFOUND for an unknown or used token, GH_EEXPIRED past expiry. */
int gh_invite_by_token(gh_store_t *st, const char *token, size_t len,
                       int64_t now, gh_invite_t *out);
/* Use the token once: approved -> used, atomically (a second use is
 * GH_ENOTFOUND). */
int gh_invite_consume(gh_store_t *st, const char *token, size_t len,
                      int64_t now, gh_invite_t *out);


/* ---- access reviews (same database) ---- */

/* When the user last signed in with a password (written by the login
 * thread). get: 0 with *when, GH_ENOTFOUND (when = 0) if never. */
int gh_lastlogin_set(gh_store_t *st, const char *uid, int64_t when);
int gh_lastlogin_get(gh_store_t *st, const char *uid, int64_t *when);

/* "Review completed" for a tenant: who and when, how many flagged. */
int gh_review_record(gh_store_t *st, const char *tenant,
                     const char *reviewer, int64_t when, unsigned flagged);
/* The latest record; GH_ENOTFOUND when the tenant was never reviewed. */
int gh_review_last(gh_store_t *st, const char *tenant, char *reviewer,
                   size_t cap, int64_t *when);

/* ---- API tokens for /.gatehouse/api/v1/ (same database) ----
 * A token acts as the user it was made for, with that user's roles as
 * they are at each request (a disabled user's tokens stop working). It
 * counts as a second factor for entering the API, never as a fresh one:
 * actions that need a step-up are refused to tokens. */

#define GH_APITOKEN_PREFIX    "ghk_"
#define GH_APITOKEN_LEN       47              /* "ghk_" + 43 */
#define GH_APITOKEN_NAME_MAX  63

typedef struct {
    char    id[17];                      /* first 16 hex of the hash */
    char    uid[GH_ID_HEXLEN + 1];
    char    name[GH_APITOKEN_NAME_MAX + 1];
    int64_t created, expires;
} gh_apitoken_t;

/* A new token for uid, valid until expires; token (shown once) and its
 * id. */
int gh_apitoken_create(gh_store_t *st, const char *uid, const char *name,
                       int64_t now, int64_t expires,
                       char token[GH_APITOKEN_LEN + 1], char id[17]);
/* GH_ENOTFOUND for an unknown or malformed token, GH_EEXPIRED. */
int gh_apitoken_resolve(gh_store_t *st, const char *token, size_t len,
                        int64_t now, gh_apitoken_t *out);
int gh_apitoken_list(gh_store_t *st,
                     int (*cb)(const gh_apitoken_t *, void *), void *arg);
/* Delete the token whose id this is; out gets what it was. */
int gh_apitoken_revoke(gh_store_t *st, const char *id, gh_apitoken_t *out);

/* ---- break-glass (same database) ----
 * One emergency account (set up with the CLI, disabled). An administrator
 * requests it, a second administrator approves: the account is enabled
 * and holds gatehouse-admin until `until` (a role binding with an end:
 * it ends by itself on the request path). */

#define GH_BG_TTL  (4 * 3600)    /* default lifetime of an approval */

enum { GH_BG_OFF = 0, GH_BG_REQUESTED = 1, GH_BG_ON = 2 };

typedef struct {
    char    uid[GH_ID_HEXLEN + 1];          /* the emergency account */
    int     state;                          /* GH_BG_* */
    char    requester[GH_ID_HEXLEN + 1];
    char    requester_email[GH_EMAIL_MAX + 1];
    char    approver_email[GH_EMAIL_MAX + 1];
    int64_t requested, until;
} gh_breakglass_t;

/* GH_ENOTFOUND when no account was set up. */
int gh_breakglass_get(gh_store_t *st, gh_breakglass_t *out);
/* One write transaction: fn(b, have) changes the record (have = 0: none
 * yet, b zeroed); fn < 0 aborts and is returned. */
int gh_breakglass_update(gh_store_t *st,
                         int (*fn)(gh_breakglass_t *b, int have, void *arg),
                         void *arg, gh_breakglass_t *out);

#endif
