/* gatehouse — the password login step and the password change.
 *
 * Every attempt the throttle lets through, with a well-sized password,
 * does exactly one Argon2id verification — against the user's hash, or
 * against a dummy hash made with the same parameters when there is no
 * user, no credential or no valid email — so neither the result nor the
 * time taken says which case it was (OpenSSH's fakepw()). Disabled users
 * verify their real hash and are then denied, for the same reason. The
 * throttle itself keys on the submitted email string, not on whether the
 * account exists, so its refusals say nothing either.
 *
 * Passwords are verified and hashed in their NFC form (pwpolicy.h).
 */
#include <stdlib.h>
#include <string.h>

#include "gatehouse/error.h"
#include "gatehouse/login.h"
#include "gatehouse/mfa.h"
#include "gatehouse/saml.h"

#define DUMMY_PW_BYTES 32
#define DUMMY_PW_TEXT  (4 * ((DUMMY_PW_BYTES + 2) / 3) + 1)
#define DAY            86400

/* Load the hashing parameters and make the dummy hash from a random
 * password nobody ever sees. Returns 0, a params error (GH_EINVAL for
 * malformed meta), a store error or GH_ECRYPTO. */
int
gh_login_ctx_init(gh_login_ctx_t *ctx, gh_store_t *st)
{
    uint8_t raw[DUMMY_PW_BYTES];
    char pw[DUMMY_PW_TEXT];
    int rc, n;

    if (ctx == NULL || st == NULL)
        return GH_EINVAL;
    memset(ctx, 0, sizeof *ctx);
    gh_throttle_conf_default(&ctx->throttle);
    gh_random(raw, sizeof raw);
    n = gh_b64url_encode(raw, sizeof raw, pw, sizeof pw);
    if (n < 0) {
        rc = n;
        goto out;
    }
    rc = gh_pwhash_params_load(st, &ctx->params);
    if (rc != 0)
        goto out;
    rc = gh_password_hash(&ctx->params, pw, (size_t)n, ctx->dummy_hash);
out:
    if (rc != 0)
        memset(ctx, 0, sizeof *ctx);
    gh_wipe(raw, sizeof raw);
    gh_wipe(pw, sizeof pw);
    return rc;
}

/* Upgrade the stored hash after a successful verification when it was made
 * with other parameters (only if the password did not change meanwhile).
 * Returns 1 when upgraded, 0 otherwise: a failure here must not turn a
 * correct password into a failed login. */
static int
maybe_rehash(gh_store_t *st, const gh_login_ctx_t *ctx, const char *uid,
             const char *hash, const char *pw, size_t pw_len)
{
    char fresh[GH_HASH_MAX];
    int done = 0;

    if (!gh_password_needs_rehash(hash, &ctx->params))
        goto out;
    if (gh_password_hash(&ctx->params, pw, pw_len, fresh) != 0)
        goto out;
    if (gh_credential_rehash(st, uid, hash, fresh) != 0)
        goto out;
    done = 1;
out:
    gh_wipe(fresh, sizeof fresh);
    return done;
}

/* GH_LOGIN_* for a verified credential: an administrator's reset, or a
 * password older than the tenant's maximum age. */
static int
restriction(const gh_credential_t *c, const gh_pwsettings_t *pw, int64_t now)
{
    gh_pwpolicy_t p;

    if (c->must_change)
        return GH_LOGIN_MUST_CHANGE;
    gh_pwpolicy_resolve(pw, 0, &p);   /* expiry does not depend on MFA */
    if (p.max_age_days > 0 &&
        now - c->updated >= (int64_t)p.max_age_days * DAY)
        return GH_LOGIN_EXPIRED;
    return GH_LOGIN_FULL;
}

/* See login.h. */
int
gh_login_password(gh_store_t *st, const gh_login_ctx_t *ctx,
                  const char *email, size_t email_len,
                  const char *pw, size_t pw_len, const gh_addr_t *addr,
                  int64_t now_ms, gh_login_result_t *res)
{
    char norm[GH_EMAIL_MAX + 1];
    gh_credential_t *cred = NULL;
    gh_pwsettings_t pws;
    gh_throttle_verdict_t tv;
    gh_user_t user;
    const char *target;
    char *canon = NULL;
    size_t canon_len = 0;
    int rc, real = 0, verified, have_email = 0;
    int64_t now = now_ms / 1000;

    memset(&user, 0, sizeof user);
    if (res != NULL) {
        memset(res, 0, sizeof *res);
        res->reason = "error";
    }
    if (st == NULL || ctx == NULL || res == NULL || ctx->dummy_hash[0] == '\0' ||
        (email == NULL && email_len > 0) || (pw == NULL && pw_len > 0))
        return GH_EINVAL;
    cred = malloc(sizeof *cred);
    if (cred == NULL)
        return GH_ENOMEM;
    memset(cred, 0, sizeof *cred);

    if (email != NULL && gh_email_normalize(email, email_len, norm) == 0)
        have_email = 1;

    /* 1. the throttle, before anything about the account is looked at */
    rc = gh_throttle_begin(st, &ctx->throttle, have_email ? norm : NULL, addr,
                           now_ms, &tv);
    if (rc != 0)
        goto out;
    if (!tv.allowed) {
        res->reason = tv.why;
        res->retry_after = tv.retry_after;
        rc = GH_EDENIED;
        goto out;
    }
    res->failures = tv.failures;

    /* 2. refused before any lookup, so its timing depends on nothing
     *    secret; it also bounds Argon2id input (counted as a failure) */
    if (pw_len > GH_PASSWORD_MAX) {
        res->reason = "password_too_long";
        rc = GH_EDENIED;
        goto fail;
    }
    rc = gh_pw_canonical(pw, pw_len, &canon, &canon_len);
    if (rc != 0)
        goto out;

    /* 3. one verification, real or dummy */
    target = ctx->dummy_hash;
    res->reason = "invalid_email";
    if (have_email) {
        rc = gh_login_read(st, norm, &user, cred, &pws);
        if (rc != 0 && rc != GH_ENOTFOUND)
            goto out;
        res->reason = rc == GH_ENOTFOUND ? "unknown_user" : "no_password";
        if (rc == 0)
            memcpy(res->tenant, user.tenant, sizeof res->tenant);
        if (rc == 0 && cred->hash[0] != '\0') {
            target = cred->hash;
            real = 1;
        }
        /* A tenant that signs in with SAML has no password sign-in: its
         * users' stored passwords are never checked (the dummy hash keeps
         * the timing), so the answer — and the throttle, which counts the
         * attempt as a failure — says nothing about a guess. */
        if (rc == 0) {
            int signin;

            rc = gh_saml_signin_get(st, user.tenant, &signin);
            if (rc != 0)
                goto out;
            if (signin == GH_SIGNIN_SAML) {
                target = ctx->dummy_hash;
                real = 0;
                res->reason = "saml_tenant";
            }
        }
    }
    verified = gh_password_verify(target, canon, canon_len) == 0;
    if (real)
        res->reason = !verified ? "bad_password"
                      : gh_user_off(&user, now) ? "disabled_account" : "ok";
    if (!real || !verified || gh_user_off(&user, now)) {
        rc = GH_EDENIED;
        goto fail;
    }

    /* 4. the right password: the session starts — waiting for the second
     *    factor when there is one (or the tenant requires one). The
     *    counters forget only a complete sign-in: with a second step still
     *    to come, this attempt stays counted until that step succeeds, so
     *    a known password does not buy fresh guesses at the code. */
    rc = gh_mfa_login_step(st, &user, &res->mfa_step);
    if (rc != 0)
        goto out;
    if (res->mfa_step == GH_MFA_STEP_NONE) {
        rc = gh_throttle_success(st, &ctx->throttle, norm, addr, now_ms);
        if (rc != 0)
            goto out;
        res->failures = 0;
    }
    res->rehashed = maybe_rehash(st, ctx, user.id, cred->hash, canon,
                                 canon_len);
    res->restricted = restriction(cred, &pws, now);
    rc = gh_session_start(st, &user, "pwd",
                          (res->restricted != GH_LOGIN_FULL
                           ? GH_SESSION_PWCHANGE : 0) |
                          (res->mfa_step != GH_MFA_STEP_NONE
                           ? GH_SESSION_MFA : 0), now, res->token);
    if (rc != 0)
        goto out;
    res->user = user;
    res->reason = "ok";
    rc = 0;
    goto out;
fail:
    res->locked_now = tv.locks;
out:
    if (rc != 0) {
        gh_wipe(res->token, sizeof res->token);
        memset(&res->user, 0, sizeof res->user);
        res->restricted = GH_LOGIN_FULL;
        res->mfa_step = GH_MFA_STEP_NONE;
        res->rehashed = 0;
    }
    gh_pw_free(canon, canon_len);
    gh_wipe(cred, sizeof *cred);
    free(cred);
    return rc;
}

/* See login.h. */
int
gh_login_change_password(gh_store_t *st, const gh_login_ctx_t *ctx,
                         const gh_pwchange_req_t *rq, gh_pwchange_res_t *res)
{
    gh_credential_t *cred = NULL;
    gh_pwsettings_t pws;
    gh_throttle_verdict_t tv;
    gh_pwpolicy_t pol;
    gh_pwcontext_t cx;
    gh_pwchange_t chg;
    gh_session_t s;
    gh_tenant_t t;
    uint8_t key[32];
    char hash[GH_HASH_MAX], *canon = NULL, *cur = NULL;
    size_t canon_len = 0, cur_len = 0;
    int64_t now;
    int rc, verified;

    if (res != NULL) {
        memset(res, 0, sizeof *res);
        res->reason = "error";
    }
    memset(key, 0, sizeof key);
    memset(hash, 0, sizeof hash);
    if (st == NULL || ctx == NULL || rq == NULL || res == NULL ||
        rq->uid == NULL || rq->amr == NULL ||
        (rq->current == NULL && rq->current_len > 0) ||
        (rq->fresh == NULL && rq->fresh_len > 0))
        return GH_EINVAL;
    now = rq->now_ms / 1000;
    cred = malloc(sizeof *cred);
    if (cred == NULL)
        return GH_ENOMEM;

    rc = gh_user_get(st, rq->uid, &res->user);
    if (rc != 0)
        goto out;
    if (gh_user_off(&res->user, now)) {
        rc = GH_EDISABLED;
        goto out;
    }

    /* 1. the current password, throttled like a login */
    rc = gh_throttle_begin(st, &ctx->throttle, res->user.email, rq->addr,
                           rq->now_ms, &tv);
    if (rc != 0)
        goto out;
    if (!tv.allowed) {
        res->reason = tv.why;
        res->retry_after = tv.retry_after;
        rc = GH_EDENIED;
        goto out;
    }
    rc = gh_credential_read(st, rq->uid, cred);
    if (rc != 0 && rc != GH_ENOTFOUND)
        goto out;
    rc = gh_pw_canonical(rq->current, rq->current_len, &cur, &cur_len);
    if (rc != 0)
        goto out;
    verified = rq->current_len <= GH_PASSWORD_MAX &&
               gh_password_verify(cred->hash[0] ? cred->hash : ctx->dummy_hash,
                                  cur, cur_len) == 0 && cred->hash[0] != '\0';
    if (!verified) {
        res->reason = "bad_current";
        rc = GH_EDENIED;
        goto out;
    }
    rc = gh_throttle_success(st, &ctx->throttle, res->user.email, rq->addr,
                             rq->now_ms);
    if (rc != 0)
        goto out;

    /* 2. the tenant's policy, history included */
    rc = gh_tenant_get(st, res->user.tenant, &t);
    if (rc != 0) {
        rc = rc == GH_ENOTFOUND ? GH_ESTORE : rc;
        goto out;
    }
    pws = t.pw;
    gh_pwpolicy_resolve(&pws, rq->mfa_required, &pol);
    memset(&cx, 0, sizeof cx);
    cx.email = res->user.email;
    cx.name = res->user.name;
    cx.tenant = t.name;
    cx.tenant_display = t.display;
    cx.cred = cred;
    rc = gh_pwpolicy_check(&pol, rq->blocklist, rq->fresh, rq->fresh_len, &cx,
                           &res->verdict);
    if (rc == GH_EDENIED)
        res->reason = "policy";
    if (rc != 0)
        goto out;

    /* 3. store it, end every session, start the new one: one transaction */
    rc = gh_pw_canonical(rq->fresh, rq->fresh_len, &canon, &canon_len);
    if (rc != 0)
        goto out;
    rc = gh_password_hash(&ctx->params, canon, canon_len, hash);
    if (rc != 0)
        goto out;
    memset(&s, 0, sizeof s);
    memcpy(s.uid, res->user.id, sizeof s.uid);
    memcpy(s.tenant, res->user.tenant, sizeof s.tenant);
    if (strlen(rq->amr) == 0 || strlen(rq->amr) > GH_AMR_MAX) {
        rc = GH_EINVAL;
        goto out;
    }
    memcpy(s.amr, rq->amr, strlen(rq->amr) + 1);
    s.created = s.last_seen = now;
    gh_token_new(res->token, key);
    memset(&chg, 0, sizeof chg);
    chg.hash = hash;
    chg.expect = cred->hash;
    chg.must_change = 0;
    chg.keep = pol.history > 0 ? pol.history - 1 : 0;
    chg.now = now;
    chg.new_key = key;
    chg.new_session = &s;
    rc = gh_credential_change(st, rq->uid, &chg);
    if (rc < 0)
        goto out;
    res->ended = rc > 0 ? rc - 1 : 0;   /* not counting the one replaced */
    res->reason = "ok";
    rc = 0;
out:
    if (rc != 0)
        gh_wipe(res->token, sizeof res->token);
    gh_pw_free(canon, canon_len);
    gh_pw_free(cur, cur_len);
    gh_wipe(hash, sizeof hash);
    gh_wipe(key, sizeof key);
    if (cred != NULL) {
        gh_wipe(cred, sizeof *cred);
        free(cred);
    }
    return rc;
}
