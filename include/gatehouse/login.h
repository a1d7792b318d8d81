/* gatehouse — the password login step and the password change, shared by
 * the gateway and tests.
 *
 * Unknown user, wrong password, missing credential and disabled account all
 * take the same path: one Argon2id verification (against a dummy hash when
 * there is nothing real to verify) and the same GH_EDENIED result, so neither
 * the answer nor its timing tells them apart. Before any of that, the
 * throttle (throttle.h) may refuse the attempt outright, by the submitted
 * email string and the client address — identically for accounts that
 * exist and accounts that do not. res->reason says what really happened,
 * for the audit trail only: it must never reach the client.
 *
 * Runs Argon2id and durable writes: call from a thread-pool thread or the
 * CLI only.
 */
#ifndef GATEHOUSE_LOGIN_H
#define GATEHOUSE_LOGIN_H

#include "gatehouse/netset.h"
#include "gatehouse/password.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/session.h"
#include "gatehouse/throttle.h"

typedef struct {
    gh_pwhash_params_t params;
    char               dummy_hash[GH_HASH_MAX];  /* made with params */
    gh_throttle_conf_t throttle;                 /* defaults; the gateway
                                                    may override */
} gh_login_ctx_t;

/* Load the hashing parameters from the store and make the dummy hash
 * (one Argon2id computation); default throttle settings. */
int gh_login_ctx_init(gh_login_ctx_t *ctx, gh_store_t *st);

/* Why a signed-in session is restricted to changing its password. */
enum { GH_LOGIN_FULL = 0, GH_LOGIN_MUST_CHANGE, GH_LOGIN_EXPIRED };

typedef struct {
    gh_user_t   user;
    char        token[GH_TOKEN_LEN + 1];
    int         rehashed;      /* 1 when the stored hash was upgraded */
    int         restricted;    /* GH_LOGIN_*: != FULL means the session is
                                  GH_SESSION_PWCHANGE */
    int         mfa_step;      /* GH_MFA_STEP_* (mfa.h): != NONE means the
                                  session is GH_SESSION_MFA, waiting for
                                  the second factor or its enrolment */
    const char *reason;        /* static: "ok", or the internal reason of a
                                  refusal (audit only) */
    int64_t     retry_after;   /* > 0: throttled, answer 429 */
    uint32_t    failures;      /* the account's consecutive failures */
    int         locked_now;    /* this failure locked the account */
    char        tenant[GH_TENANT_MAX + 1];  /* the account's tenant when the
                                               email names a user (audit) */
} gh_login_result_t;

/* Check email + password from client address addr (NULL: none) at now_ms
 * (gh_throttle_now_ms()); on success create a session ("pwd"; restricted
 * when the password must be changed or has expired) and fill res.
 * Returns 0; GH_EDENIED for any refusal — throttled (res->retry_after >
 * 0), bad email, unknown user, no credential, wrong password, disabled
 * account, password longer than GH_PASSWORD_MAX; GH_EINVAL for missing
 * arguments; or a store error, which the gateway answers with 503 and
 * never lets through. res->user, token and restricted are zeroed unless 0
 * is returned. */
int gh_login_password(gh_store_t *st, const gh_login_ctx_t *ctx,
                      const char *email, size_t email_len,
                      const char *pw, size_t pw_len, const gh_addr_t *addr,
                      int64_t now_ms, gh_login_result_t *res);

/* A signed-in user changes their password. */
typedef struct {
    const char           *uid;
    const char           *amr;          /* of the new session */
    const char           *current;
    size_t                current_len;
    const char           *fresh;
    size_t                fresh_len;
    const gh_addr_t      *addr;         /* for the throttle, may be NULL */
    int                   mfa_required; /* the tenant's live requirement */
    const gh_blocklist_t *blocklist;
    int64_t               now_ms;
} gh_pwchange_req_t;

typedef struct {
    gh_user_t    user;
    gh_verdict_t verdict;               /* refused by the policy: n > 0 */
    const char  *reason;                /* "ok", "bad_current",
                                           "policy", or a throttle reason */
    int64_t      retry_after;           /* > 0: throttled */
    int          ended;                 /* the user's other sessions ended */
    char         token[GH_TOKEN_LEN + 1];  /* the new session's cookie */
} gh_pwchange_res_t;

/* The current password is checked first (throttled like a login, by the
 * user's email and the address: a stolen session cannot guess it any
 * faster), then the tenant's policy (with the history); then, in one store
 * transaction, the new hash is stored, every session of the user ends and
 * a fresh one (returned in res->token) replaces the one making the change.
 * Returns 0, GH_EDENIED (see res->reason), or an error. */
int gh_login_change_password(gh_store_t *st, const gh_login_ctx_t *ctx,
                             const gh_pwchange_req_t *rq,
                             gh_pwchange_res_t *res);

#endif
