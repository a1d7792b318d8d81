/* Unit tests for authn/mfa.c over a real store: enrolment, activation,
 * the replay rule (counter at or below the last accepted one), windows,
 * recovery codes, HOTP resynchronisation, the login step, the pending
 * session's short life, and the secret sealed at rest. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <cmocka.h>

#include <liboath/oath.h>

#include "gatehouse/error.h"
#include "gatehouse/login.h"
#include "gatehouse/mfa.h"
#include "gatehouse/store.h"

#define T0 1700000000LL

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

typedef struct {
    char                dir[64];
    gh_store_t         *st;
    uint8_t             mk[32];
    gh_throttle_conf_t  thr;
    char                uid[GH_ID_HEXLEN + 1];
    uint8_t             skey[32];      /* the user's current session */
    gh_session_t        sess;
} fixture_t;

static int
new_session(fixture_t *f, unsigned flags)
{
    char token[GH_TOKEN_LEN + 1];

    memset(&f->sess, 0, sizeof f->sess);
    strcpy(f->sess.uid, f->uid);
    strcpy(f->sess.tenant, "acme");
    strcpy(f->sess.amr, "pwd");
    f->sess.created = f->sess.last_seen = T0;
    f->sess.flags = flags;
    gh_token_new(token, f->skey);
    return gh_session_put(f->st, f->skey, &f->sess);
}

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    gh_user_t in;

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/gh-test-mfa-XXXXXX");
    memset(&in, 0, sizeof in);
    strcpy(in.tenant, "acme");
    strcpy(in.email, "ann@acme.example");
    gh_random(f->mk, sizeof f->mk);
    gh_throttle_conf_default(&f->thr);
    if (mkdtemp(f->dir) == NULL ||
        gh_store_open(&f->st, f->dir, GH_STORE_CREATE) != 0 ||
        gh_tenant_add(f->st, "acme", "Acme Corp") != 0 ||
        gh_user_add(f->st, &in, f->uid) != 0 || new_session(f, 0) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    gh_store_close(f->st);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Decode base32 (no padding) with liboath into secret; returns length. */
static size_t
b32dec(const char *b32, uint8_t *secret)
{
    char *out = NULL;
    size_t n = 0;

    assert_int_equal(oath_base32_decode(b32, strlen(b32), &out, &n), OATH_OK);
    memcpy(secret, out, n);
    free(out);
    return n;
}

static int
submit(fixture_t *f, int mode, const char *code, int64_t now,
       gh_mfa_res_t *res)
{
    gh_mfa_req_t rq;
    int rc;

    memset(&rq, 0, sizeof rq);
    rq.mode = mode;
    rq.uid = f->uid;
    rq.code = code;
    rq.code_len = strlen(code);
    rq.now_ms = now * 1000;
    rq.totp_window = 1;
    rq.hotp_window = 10;
    rq.throttle = &f->thr;
    rq.old_key = f->skey;
    rq.old = &f->sess;
    rc = gh_mfa_verify(f->st, f->mk, &rq, res);
    if (rc == 0) {
        /* follow the session the way the browser would */
        assert_int_equal(gh_token_key(res->token, strlen(res->token),
                                      f->skey), 0);
        assert_int_equal(gh_session_get(f->st, f->skey, &f->sess), 0);
    }
    return rc;
}

/* Enrol a factor with params and activate it at now; secret out. */
static size_t
enrol(fixture_t *f, const gh_otp_params_t *p, int64_t now, uint8_t *secret,
      gh_mfa_res_t *res)
{
    gh_mfa_enrolment_t e;
    char code[GH_OTP_CODE_MAX + 1];
    size_t n;

    assert_int_equal(gh_mfa_enrol_start(f->st, f->mk, f->uid, p, 0, now, &e),
                     0);
    n = b32dec(e.secret_b32, secret);
    assert_int_equal(n, gh_otp_secret_size(p->algo));
    assert_non_null(strstr(e.uri, "issuer=Acme%20Corp"));
    assert_int_equal(gh_otp_code(p, secret, n, p->type == GH_OTP_TOTP
                                 ? (uint64_t)now / 30 : 0, code), 0);
    assert_int_equal(submit(f, GH_MFA_ACTIVATE, code, now, res), 0);
    return n;
}

static void
test_totp_activate_verify_replay(void **state)
{
    fixture_t *f = *state;
    gh_otp_params_t p = { GH_OTP_TOTP, GH_OTP_SHA1, 6, 30 };
    uint8_t secret[64];
    char code[GH_OTP_CODE_MAX + 1];
    gh_mfa_res_t res;
    gh_mfa_t m;
    size_t n;
    int step;

    n = enrol(f, &p, T0, secret, &res);
    assert_int_equal(res.recovery_left, 10);
    assert_string_equal(f->sess.amr, "pwd+otp");
    assert_int_equal(f->sess.mfa_at, T0);
    assert_int_equal(gh_mfa_get(f->st, f->uid, &m), 0);
    assert_true(m.has_active);
    assert_false(m.has_pending);
    /* the record holds no clear secret */
    assert_null(memmem(&m, sizeof m, secret, 8));

    /* the login step now asks for the factor */
    {
        gh_user_t u;
        assert_int_equal(gh_user_get(f->st, f->uid, &u), 0);
        assert_int_equal(gh_mfa_login_step(f->st, &u, &step), 0);
        assert_int_equal(step, GH_MFA_STEP_VERIFY);
    }

    /* the activation code (step T0/30) cannot be used again */
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(gh_otp_code(&p, secret, n, T0 / 30, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 5, &res), GH_EDENIED);
    assert_string_equal(res.reason, "replay");
    /* the next step's code works, once */
    assert_int_equal(gh_otp_code(&p, secret, n, T0 / 30 + 1, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 5, &res), 0);
    assert_int_equal(f->sess.flags & GH_SESSION_MFA, 0);
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 6, &res), GH_EDENIED);
    /* outside the window of one step: refused */
    assert_int_equal(gh_otp_code(&p, secret, n, T0 / 30 + 5, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 6, &res), GH_EDENIED);
    assert_string_equal(res.reason, "bad_code");
    /* malformed input */
    assert_int_equal(submit(f, GH_MFA_VERIFY, "12ab56", T0 + 6, &res),
                     GH_EDENIED);
    assert_string_equal(res.reason, "malformed");
}

static void
test_recovery_codes_single_use(void **state)
{
    fixture_t *f = *state;
    gh_otp_params_t p = { GH_OTP_TOTP, GH_OTP_SHA256, 8, 30 };
    uint8_t secret[64];
    char codes[GH_RECOVERY_CODES][GH_RECOVERY_LEN + 1];
    gh_mfa_res_t res;

    enrol(f, &p, T0, secret, &res);
    memcpy(codes, res.recovery, sizeof codes);
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, codes[2], T0 + 60, &res), 0);
    assert_true(res.used_recovery);
    assert_int_equal(res.recovery_left, 9);
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, codes[2], T0 + 61, &res),
                     GH_EDENIED);
    /* a recovery code cannot activate an enrolment */
    assert_int_equal(submit(f, GH_MFA_ACTIVATE, codes[3], T0 + 61, &res),
                     GH_EDENIED);
}

static void
test_hotp_lookahead_and_resync(void **state)
{
    fixture_t *f = *state;
    gh_otp_params_t p = { GH_OTP_HOTP, GH_OTP_SHA1, 6, 30 };
    uint8_t secret[64];
    char code[GH_OTP_CODE_MAX + 1];
    gh_mfa_res_t res;
    size_t n;

    n = enrol(f, &p, T0, secret, &res);          /* counter 0 used */
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(gh_otp_code(&p, secret, n, 10, code), 0);   /* 1 + 9 */
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0, &res), 0);
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(gh_otp_code(&p, secret, n, 5, code), 0);    /* behind */
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0, &res), GH_EDENIED);
    /* 100 ahead: resync, then only the very next code finishes it */
    assert_int_equal(gh_otp_code(&p, secret, n, 111, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0, &res), GH_EDENIED);
    assert_true(res.resync_next);
    /* not the next one (113 after 111): no session; 113 becomes the
     * candidate and 114, the one after it, finishes */
    assert_int_equal(gh_otp_code(&p, secret, n, 113, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0, &res), GH_EDENIED);
    assert_true(res.resync_next);
    assert_int_equal(gh_otp_code(&p, secret, n, 114, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 10, &res), 0);
    /* and 114 is spent */
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 11, &res),
                     GH_EDENIED);
    /* the resync window expires */
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(gh_otp_code(&p, secret, n, 300, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0, &res), GH_EDENIED);
    assert_true(res.resync_next);
    assert_int_equal(gh_otp_code(&p, secret, n, 301, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + GH_MFA_RESYNC_TTL + 1,
                            &res), GH_EDENIED);
}

static void
test_enrolment_rules(void **state)
{
    fixture_t *f = *state;
    gh_otp_params_t p = { GH_OTP_TOTP, GH_OTP_SHA1, 6, 30 };
    gh_mfa_enrolment_t e;
    uint8_t secret[64];
    char code[GH_OTP_CODE_MAX + 1];
    gh_mfa_res_t res;
    gh_user_t u;
    int step;

    /* required tenant, no factor: enrol after the password */
    assert_int_equal(gh_tenant_set_mfa(f->st, "acme", GH_MFA_REQUIRED), 0);
    assert_int_equal(gh_user_get(f->st, f->uid, &u), 0);
    assert_int_equal(gh_mfa_login_step(f->st, &u, &step), 0);
    assert_int_equal(step, GH_MFA_STEP_ENROL);
    /* an enrolment past its time cannot be activated */
    assert_int_equal(gh_mfa_enrol_start(f->st, f->mk, f->uid, &p, 0, T0, &e),
                     0);
    b32dec(e.secret_b32, secret);
    assert_int_equal(gh_otp_code(&p, secret, 20, (T0 + GH_MFA_ENROL_TTL) / 30,
                                 code), 0);
    assert_int_equal(submit(f, GH_MFA_ACTIVATE, code, T0 + GH_MFA_ENROL_TTL,
                            &res), GH_EDENIED);
    assert_string_equal(res.reason, "enrolment_expired");
    enrol(f, &p, T0, secret, &res);
    /* a second enrolment needs the factor proven (replace) */
    assert_int_equal(gh_mfa_enrol_start(f->st, f->mk, f->uid, &p, 0, T0, &e),
                     GH_EEXIST);
    assert_int_equal(gh_mfa_enrol_start(f->st, f->mk, f->uid, &p, 1, T0, &e),
                     0);
    /* off: no enrolment, no step */
    assert_int_equal(gh_tenant_set_mfa(f->st, "acme", GH_MFA_OFF), 0);
    assert_int_equal(gh_mfa_enrol_start(f->st, f->mk, f->uid, &p, 1, T0, &e),
                     GH_EDENIED);
    assert_int_equal(gh_mfa_login_step(f->st, &u, &step), 0);
    assert_int_equal(step, GH_MFA_STEP_NONE);
    /* a revoked session cannot finish the step */
    assert_int_equal(gh_tenant_set_mfa(f->st, "acme", GH_MFA_OPTIONAL), 0);
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(gh_session_del(f->st, f->skey), 0);
    assert_int_equal(gh_otp_code(&p, secret, 20, T0 / 30 + 1, code), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 1, &res),
                     GH_ENOTFOUND);
    /* and the code it tried was not spent */
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 1, &res), 0);
    /* a disabled user cannot */
    assert_int_equal(new_session(f, GH_SESSION_MFA), 0);
    assert_int_equal(gh_user_set_disabled(f->st, f->uid, 1), 0);
    assert_int_equal(submit(f, GH_MFA_VERIFY, code, T0 + 1, &res),
                     GH_EDISABLED);
}

static void
test_pending_session_is_short_lived(void **state)
{
    gh_session_t s;
    gh_session_policy_t pol = { 3600, 12 * 3600 };

    (void)state;
    memset(&s, 0, sizeof s);
    s.created = s.last_seen = T0;
    s.flags = GH_SESSION_MFA;
    assert_int_equal(gh_session_live(&s, &pol, T0 + GH_MFA_PENDING_TTL - 1), 0);
    assert_int_equal(gh_session_live(&s, &pol, T0 + GH_MFA_PENDING_TTL),
                     GH_EEXPIRED);
    s.flags = 0;
    assert_int_equal(gh_session_live(&s, &pol, T0 + GH_MFA_PENDING_TTL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_totp_activate_verify_replay,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_codes_single_use,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotp_lookahead_and_resync,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrolment_rules, setup,
                                        teardown),
        cmocka_unit_test(test_pending_session_is_short_lived),
    };

    if (gh_otp_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
