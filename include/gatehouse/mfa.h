/* gatehouse — the second factor: enrolment, verification, recovery codes.
 *
 * A user has at most one active OTP factor (TOTP or HOTP, otp.h) and at
 * most one pending enrolment. Secrets are sealed under the master key
 * (seal.h, label "otp:<uid>"): the store never holds them in clear.
 *
 * Replay: every accepted code moves the factor's `next` counter past the
 * code's counter in the same LMDB write transaction that accepts it and
 * issues the session; a code for a counter below `next` is refused. LMDB
 * serialises write transactions, so two submissions of one code give
 * exactly one success.
 *
 * Throttling: OTP failures count on the same per-account and per-address
 * counters as password failures (throttle.h). A correct password followed
 * by a second step does not reset them; only the completed second step
 * does.
 *
 * Everything here runs Argon2-free but writes durably: call from a
 * thread-pool thread or the CLI.
 */
#ifndef GATEHOUSE_MFA_H
#define GATEHOUSE_MFA_H

#include "gatehouse/netset.h"
#include "gatehouse/otp.h"
#include "gatehouse/session.h"
#include "gatehouse/store.h"
#include "gatehouse/throttle.h"

#define GH_MFA_ENROL_TTL   900    /* seconds an enrolment stays open */
#define GH_MFA_RESYNC_TTL  300    /* seconds to give the second HOTP code */
#define GH_MFA_ISSUER      "gatehouse"

/* What comes after a correct password. */
enum {
    GH_MFA_STEP_NONE = 0,     /* a full session */
    GH_MFA_STEP_VERIFY,       /* the user has a factor: ask for a code */
    GH_MFA_STEP_ENROL,        /* the tenant requires one, the user has none */
};

/* The step for user u: from the tenant's level and the user's record.
 * Returns 0 and *step, or a store error (callers refuse). */
int gh_mfa_login_step(gh_store_t *st, const gh_user_t *u, int *step);

typedef struct {
    gh_otp_params_t params;
    char            secret_b32[GH_OTP_B32_MAX];
    char            uri[GH_OTP_URI_MAX];
} gh_mfa_enrolment_t;

/* Start an enrolment for uid: a fresh secret of gh_otp_secret_size()
 * bytes, sealed and stored as the pending factor (replacing any earlier
 * pending one) for GH_MFA_ENROL_TTL. `replace`: the caller proved the
 * current factor in this session; without it a user who has an active
 * factor is refused (GH_EEXIST). GH_EDENIED when the tenant's level is
 * off, GH_EINVAL for bad params. out (wipe it after use) gets the base32
 * secret and the otpauth URI (issuer: the tenant's display name, account:
 * the email). */
int gh_mfa_enrol_start(gh_store_t *st, const uint8_t mk[32], const char *uid,
                       const gh_otp_params_t *params, int replace,
                       int64_t now, gh_mfa_enrolment_t *out);

/* A code submitted to the second step or to confirm an enrolment. */
enum { GH_MFA_VERIFY = 0, GH_MFA_ACTIVATE = 1 };

typedef struct {
    int                       mode;         /* GH_MFA_VERIFY | ACTIVATE */
    const char               *uid;
    const char               *code;         /* as typed */
    size_t                    code_len;
    const gh_addr_t          *addr;         /* for the throttle, may be NULL */
    int64_t                   now_ms;
    int                       totp_window;  /* steps either side */
    int                       hotp_window;  /* look-ahead */
    const gh_throttle_conf_t *throttle;
    /* the session making the request: replaced by a fresh one (new
     * cookie) with "+otp" added to its methods, the same start time, its
     * flags minus GH_SESSION_MFA, and mfa_at = now */
    const uint8_t            *old_key;
    const gh_session_t       *old;
} gh_mfa_req_t;

typedef struct {
    const char *reason;          /* "ok", "bad_code", "replay", "no_factor",
                                    "enrolment_expired", "resync_next",
                                    "recovery_used", "malformed",
                                    or a throttle reason (audit only) */
    int64_t     retry_after;     /* > 0: throttled */
    int         used_recovery;   /* a recovery code was spent */
    int         recovery_left;   /* unused recovery codes after this */
    int         resync_next;     /* HOTP: ask for the following code */
    unsigned    flags;           /* the new session's flags */
    gh_user_t   user;
    char        token[GH_TOKEN_LEN + 1];   /* the new session's cookie */
    /* activation only: the recovery codes, shown once (wipe after use) */
    char        recovery[GH_RECOVERY_CODES][GH_RECOVERY_LEN + 1];
} gh_mfa_res_t;

/* Check a code (or, in VERIFY mode, a recovery code) and on success
 * replace the session, all in one write transaction. Returns 0;
 * GH_EDENIED for any refusal (res->reason, res->retry_after,
 * res->resync_next); GH_EDISABLED / GH_ENOTFOUND for an account or
 * session that is gone; or a store/crypto error (refuse with 503). */
int gh_mfa_verify(gh_store_t *st, const uint8_t mk[32], const gh_mfa_req_t *rq,
                  gh_mfa_res_t *res);

/* Unused recovery codes of a record. */
int gh_mfa_recovery_left(const gh_mfa_t *m);

#endif
