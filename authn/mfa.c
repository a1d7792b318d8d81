/* gatehouse — second factor: enrolment and verification. See
 * include/gatehouse/mfa.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gatehouse/error.h"
#include "gatehouse/mfa.h"
#include "gatehouse/seal.h"
#include "gatehouse/util.h"

int gh_mfa_login_step(gh_store_t *st, const gh_user_t *u, int *step)
{
    gh_tenant_t t;
    gh_mfa_t *m;
    int rc;

    if (st == NULL || u == NULL || step == NULL)
        return GH_EINVAL;
    *step = GH_MFA_STEP_NONE;
    rc = gh_tenant_get(st, u->tenant, &t);
    if (rc != 0)
        return rc;
    if (t.mfa == GH_MFA_OFF)
        return 0;
    m = malloc(sizeof *m);
    if (m == NULL)
        return GH_ENOMEM;
    rc = gh_mfa_get(st, u->id, m);
    if (rc == 0 && m->has_active)
        *step = GH_MFA_STEP_VERIFY;
    else if ((rc == 0 || rc == GH_ENOTFOUND) && t.mfa == GH_MFA_REQUIRED)
        *step = GH_MFA_STEP_ENROL;
    if (rc == GH_ENOTFOUND)
        rc = 0;
    gh_wipe(m, sizeof *m);
    free(m);
    return rc;
}

/* The label a user's secrets are sealed under: a blob moved to another
 * user's record does not open. */
static void seal_label(const char *uid, char out[64])
{
    snprintf(out, 64, "otp:%s", uid);
}

struct enrol_arg {
    const gh_otp_factor_t *f;
    int64_t                until;
    int                    replace;
};

static int enrol_fn(gh_mfa_t *m, int have, const gh_user_t *u, void *arg)
{
    struct enrol_arg *a = arg;

    (void)have;
    (void)u;
    if (m->has_active && !a->replace)
        return GH_EEXIST;
    m->pending = *a->f;
    m->has_pending = 1;
    m->pending_until = a->until;
    return 1;
}

int gh_mfa_enrol_start(gh_store_t *st, const uint8_t mk[32], const char *uid,
                       const gh_otp_params_t *params, int replace,
                       int64_t now, gh_mfa_enrolment_t *out)
{
    uint8_t secret[GH_OTP_SECRET_MAX];
    char label[64];
    gh_otp_factor_t f;
    struct enrol_arg a;
    gh_user_t u;
    gh_tenant_t t;
    size_t n;
    int rc;

    if (st == NULL || mk == NULL || uid == NULL || params == NULL ||
        out == NULL || gh_otp_params_check(params) != 0)
        return GH_EINVAL;
    memset(out, 0, sizeof *out);
    rc = gh_user_get(st, uid, &u);
    if (rc != 0)
        return rc;
    if (gh_user_off(&u, now))
        return GH_EDISABLED;
    rc = gh_tenant_get(st, u.tenant, &t);
    if (rc != 0)
        return rc;
    if (t.mfa == GH_MFA_OFF)
        return GH_EDENIED;

    n = gh_otp_secret_size(params->algo);
    gh_random(secret, n);
    memset(&f, 0, sizeof f);
    f.type = params->type;
    f.algo = params->algo;
    f.digits = params->digits;
    f.period = params->period;
    f.created = now;
    seal_label(uid, label);
    rc = gh_seal(mk, label, secret, n, f.sealed, sizeof f.sealed);
    if (rc == 0 && gh_base32(secret, n, out->secret_b32,
                             sizeof out->secret_b32) < 0)
        rc = GH_ETOOBIG;
    if (rc == 0)
        rc = gh_otpauth_uri(params, t.display[0] ? t.display : GH_MFA_ISSUER,
                            u.email, out->secret_b32, 0, out->uri,
                            sizeof out->uri);
    gh_wipe(secret, sizeof secret);
    if (rc == 0) {
        a.f = &f;
        a.until = now + GH_MFA_ENROL_TTL;
        a.replace = replace;
        rc = gh_mfa_update(st, uid, enrol_fn, &a, NULL);
        if (rc == 1)
            rc = 0;
    }
    if (rc != 0)
        gh_wipe(out, sizeof *out);
    else
        out->params = *params;
    return rc;
}

int gh_mfa_recovery_left(const gh_mfa_t *m)
{
    unsigned i;
    int n = 0;

    for (i = 0; i < m->nrecovery && i < GH_MFA_RECOVERY_MAX; i++)
        n += m->recovery[i][0] != '\0';
    return n;
}

struct verify_arg {
    const gh_mfa_req_t *rq;
    const uint8_t      *mk;
    gh_mfa_res_t       *res;
    char                code[GH_OTP_CODE_MAX + 1];
    size_t              code_len;
    int                 recovery;      /* the input is recovery-shaped */
};

/* gh_unseal needs room for the tag past the plaintext. */
#define SECRET_BUF (GH_OTP_SECRET_MAX + 16)

/* Unseal f's secret into secret; *n its length. */
static int open_secret(const struct verify_arg *a, const gh_otp_factor_t *f,
                       uint8_t secret[SECRET_BUF], size_t *n)
{
    char label[64];
    int rc;

    seal_label(a->rq->uid, label);
    rc = gh_unseal(a->mk, label, f->sealed, secret, SECRET_BUF, n);
    if (rc == 0 && (*n < GH_OTP_SECRET_MIN || *n > GH_OTP_SECRET_MAX))
        rc = GH_ESTORE;
    return rc;
}

/* The counter window a code may come from, before `next` is applied. */
static void window(const struct verify_arg *a, const gh_otp_factor_t *f,
                   uint64_t *from, uint64_t *to)
{
    const gh_mfa_req_t *rq = a->rq;

    if (f->type == GH_OTP_TOTP) {
        uint64_t t = (uint64_t)(rq->now_ms / 1000) / (uint64_t)f->period;
        uint64_t w = (uint64_t)rq->totp_window;

        *from = t > w ? t - w : 0;
        *to = t + w;
    } else {
        *from = f->next;
        *to = f->next + (uint64_t)(rq->hotp_window > 0 ? rq->hotp_window - 1
                                                      : 0);
    }
}

/* The OTP check against factor f (the active one, or the pending one on
 * activation): 0 and f->next moved past the code; 1 when a HOTP code far
 * ahead was noted for resynchronisation; GH_EDENIED otherwise. */
static int check_code(struct verify_arg *a, gh_mfa_t *m, gh_otp_factor_t *f)
{
    gh_otp_params_t p = { f->type, f->algo, f->digits, f->period };
    uint8_t secret[SECRET_BUF];
    uint64_t from, to, c;
    int64_t now = a->rq->now_ms / 1000;
    size_t n;
    int rc;

    if (a->code_len != (size_t)f->digits) {
        a->res->reason = "bad_code";
        return GH_EDENIED;
    }
    rc = open_secret(a, f, secret, &n);
    if (rc != 0) {
        gh_wipe(secret, sizeof secret);
        return rc == GH_EDENIED ? GH_ECRYPTO : rc;
    }
    window(a, f, &from, &to);
    rc = gh_otp_match(&p, secret, n, a->code, a->code_len, from, to, &c);
    if (rc == 0 && c < f->next) {
        a->res->reason = "replay";
        rc = GH_EDENIED;
    } else if (rc == 0) {
        f->next = c + 1;
        m->resync = 0;
        m->resync_until = 0;
    } else if (rc == GH_EDENIED && f->type == GH_OTP_HOTP &&
               f == &m->active) {
        /* HOTP resynchronisation: the second of two consecutive codes */
        if (m->resync != 0 && m->resync_until > now &&
            gh_otp_match(&p, secret, n, a->code, a->code_len, m->resync + 1,
                         m->resync + 1, &c) == 0) {
            f->next = c + 1;
            m->resync = 0;
            m->resync_until = 0;
            rc = 0;
        } else if (gh_otp_match(&p, secret, n, a->code, a->code_len, to + 1,
                                f->next + GH_OTP_RESYNC_WINDOW, &c) == 0) {
            m->resync = c;
            m->resync_until = now + GH_MFA_RESYNC_TTL;
            a->res->reason = "resync_next";
            a->res->resync_next = 1;
            rc = 1;
        } else {
            a->res->reason = "bad_code";
            rc = GH_EDENIED;
        }
    } else if (rc == GH_EDENIED) {
        a->res->reason = "bad_code";
    }
    gh_wipe(secret, sizeof secret);
    return rc;
}

/* 16 bytes from 32 lower-case hex characters; -1 when malformed. */
static int salt_decode(const char *hex, uint8_t out[16])
{
    int i, hi, lo;

    if (strlen(hex) != 32)
        return -1;
    for (i = 0; i < 16; i++) {
        hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0'
                                   : hex[2 * i + 1] - 'a' + 10;
        if (hi < 0 || hi > 15 || lo < 0 || lo > 15)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* A recovery code: spend the matching slot. Every slot is compared. */
static int check_recovery(struct verify_arg *a, gh_mfa_t *m)
{
    uint8_t salt[16];
    char h[GH_RECOVERY_HASH_LEN + 1];
    unsigned i;
    int hit = -1;

    if (salt_decode(m->salt, salt) != 0)
        return GH_ESTORE;
    if (gh_recovery_hash(salt, a->rq->code, a->rq->code_len, h) != 0) {
        a->res->reason = "bad_code";
        return GH_EDENIED;
    }
    for (i = 0; i < m->nrecovery && i < GH_MFA_RECOVERY_MAX; i++) {
        if (m->recovery[i][0] != '\0' &&
            gh_ct_equal(m->recovery[i], h, GH_RECOVERY_HASH_LEN) && hit < 0)
            hit = (int)i;
    }
    if (hit < 0) {
        a->res->reason = "bad_code";
        return GH_EDENIED;
    }
    m->recovery[hit][0] = '\0';
    a->res->used_recovery = 1;
    a->res->reason = "recovery_used";
    return 0;
}

static int verify_fn(gh_mfa_t *m, int have, const gh_user_t *u, void *arg)
{
    struct verify_arg *a = arg;
    gh_mfa_res_t *res = a->res;
    int64_t now = a->rq->now_ms / 1000;
    uint8_t salt[16];
    char hashes[GH_RECOVERY_CODES][GH_RECOVERY_HASH_LEN + 1];
    int rc, i;

    (void)u;
    if (a->rq->mode == GH_MFA_ACTIVATE) {
        if (!have || !m->has_pending) {
            res->reason = "no_factor";
            return GH_EDENIED;
        }
        if (m->pending_until <= now) {
            res->reason = "enrolment_expired";
            return GH_EDENIED;
        }
        if (a->recovery) {
            res->reason = "bad_code";
            return GH_EDENIED;
        }
        rc = check_code(a, m, &m->pending);
        if (rc != 0)
            return rc;
        m->active = m->pending;
        m->has_active = 1;
        memset(&m->pending, 0, sizeof m->pending);
        m->has_pending = 0;
        m->pending_until = 0;
        m->resync = 0;
        m->resync_until = 0;
        /* fresh recovery codes: the old ones (if any) die with the old
         * factor */
        gh_random(salt, sizeof salt);
        gh_hex(salt, sizeof salt, m->salt);
        gh_recovery_new(salt, res->recovery, hashes);
        for (i = 0; i < GH_RECOVERY_CODES; i++)
            memcpy(m->recovery[i], hashes[i], sizeof m->recovery[i]);
        m->nrecovery = GH_RECOVERY_CODES;
        gh_wipe(hashes, sizeof hashes);
        res->recovery_left = GH_RECOVERY_CODES;
        res->reason = "ok";
        return 0;
    }

    if (!have || !m->has_active) {
        res->reason = "no_factor";
        return GH_EDENIED;
    }
    rc = a->recovery ? check_recovery(a, m) : check_code(a, m, &m->active);
    if (rc == 0 && !a->recovery)
        res->reason = "ok";
    res->recovery_left = gh_mfa_recovery_left(m);
    return rc;
}

/* "pwd" -> "pwd+otp"; methods that have it already stay as they are. */
static int amr_add_otp(const char *amr, char out[GH_AMR_MAX + 1])
{
    int n;

    if (strstr(amr, "otp") != NULL)
        n = snprintf(out, GH_AMR_MAX + 1, "%s", amr);
    else
        n = snprintf(out, GH_AMR_MAX + 1, "%s+otp", amr);
    return n < 0 || n > GH_AMR_MAX ? GH_ETOOBIG : 0;
}

int gh_mfa_verify(gh_store_t *st, const uint8_t mk[32], const gh_mfa_req_t *rq,
                  gh_mfa_res_t *res)
{
    struct verify_arg a;
    gh_throttle_verdict_t tv;
    gh_session_t fresh;
    gh_mfa_sessop_t op;
    uint8_t key[32];
    int rc;

    if (res != NULL) {
        memset(res, 0, sizeof *res);
        res->reason = "error";
    }
    if (st == NULL || mk == NULL || rq == NULL || res == NULL ||
        rq->uid == NULL || rq->throttle == NULL || rq->old_key == NULL ||
        rq->old == NULL || (rq->code == NULL && rq->code_len > 0) ||
        (rq->mode != GH_MFA_VERIFY && rq->mode != GH_MFA_ACTIVATE))
        return GH_EINVAL;

    rc = gh_user_get(st, rq->uid, &res->user);
    if (rc != 0)
        return rc;
    if (gh_user_off(&res->user, rq->now_ms / 1000))
        return GH_EDISABLED;

    /* 1. the throttle, on the account's and the address's counters */
    rc = gh_throttle_begin(st, rq->throttle, res->user.email, rq->addr,
                           rq->now_ms, &tv);
    if (rc != 0)
        return rc;
    if (!tv.allowed) {
        res->reason = tv.why;
        res->retry_after = tv.retry_after;
        return GH_EDENIED;
    }

    /* 2. the code, its counter and the new session: one transaction */
    memset(&a, 0, sizeof a);
    a.rq = rq;
    a.mk = mk;
    a.res = res;
    if (rq->code_len > 64) {
        res->reason = "malformed";
        return GH_EDENIED;
    }
    a.recovery = rq->mode == GH_MFA_VERIFY &&
                 gh_recovery_shaped(rq->code, rq->code_len);
    if (!a.recovery &&
        gh_otp_clean(rq->code, rq->code_len, a.code, &a.code_len) != 0) {
        res->reason = "malformed";
        return GH_EDENIED;
    }

    memset(&fresh, 0, sizeof fresh);
    memcpy(fresh.uid, rq->old->uid, sizeof fresh.uid);
    memcpy(fresh.tenant, rq->old->tenant, sizeof fresh.tenant);
    if (strcmp(fresh.uid, rq->uid) != 0) {
        gh_wipe(&a, sizeof a);
        return GH_EINVAL;
    }
    rc = amr_add_otp(rq->old->amr, fresh.amr);
    if (rc != 0) {
        gh_wipe(&a, sizeof a);
        return rc;
    }
    fresh.created = rq->old->created;
    fresh.last_seen = rq->now_ms / 1000;
    fresh.flags = rq->old->flags & ~GH_SESSION_MFA;
    fresh.mfa_at = rq->now_ms / 1000;
    gh_token_new(res->token, key);
    op.del_key = rq->old_key;
    op.new_key = key;
    op.new_session = &fresh;

    rc = gh_mfa_update(st, rq->uid, verify_fn, &a, &op);
    gh_wipe(&a, sizeof a);
    gh_wipe(key, sizeof key);
    if (rc == 0) {
        res->flags = fresh.flags;
        /* 3. the whole sign-in succeeded: the counters forget */
        (void)gh_throttle_success(st, rq->throttle, res->user.email,
                                  rq->addr, rq->now_ms);
        return 0;
    }
    gh_wipe(res->token, sizeof res->token);
    gh_wipe(res->recovery, sizeof res->recovery);
    if (rc == 1)          /* resync noted: not a success */
        return GH_EDENIED;
    return rc;
}
