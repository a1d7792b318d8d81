/* Unit tests for authn/login.c: the password login step. */
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

#include "gatehouse/error.h"
#include "gatehouse/login.h"
#include "gatehouse/store.h"

#define T0 1700000000
#define T0MS (T0 * 1000LL)
#define PW "correct horse battery staple"

static const gh_pwhash_params_t cheap = { 1, 8u * 1024 * 1024 };
static const gh_session_policy_t pol = { 600, 3600 };

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

typedef struct {
    char           dir[64];
    gh_store_t    *st;
    gh_login_ctx_t ctx;
    char           alice[GH_ID_HEXLEN + 1];   /* enabled, password PW */
    char           bob[GH_ID_HEXLEN + 1];     /* no password */
} fixture_t;

static int
add_user(gh_store_t *st, const char *email, const char *pw,
         char id[GH_ID_HEXLEN + 1])
{
    gh_user_t in;
    char h[GH_HASH_MAX];
    int rc;

    memset(&in, 0, sizeof in);
    strcpy(in.tenant, "acme");
    snprintf(in.email, sizeof in.email, "%s", email);
    strcpy(in.name, "Test User");
    rc = gh_user_add(st, &in, id);
    if (rc != 0 || pw == NULL)
        return rc;
    rc = gh_password_hash(&cheap, pw, strlen(pw), h);
    if (rc != 0)
        return rc;
    return gh_credential_set(st, id, h);
}

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/gh-test-login-XXXXXX");
    if (mkdtemp(f->dir) == NULL ||
        gh_store_open(&f->st, f->dir, GH_STORE_CREATE) != 0 ||
        gh_pwhash_params_save(f->st, &cheap) != 0 ||
        gh_login_ctx_init(&f->ctx, f->st) != 0 ||
        gh_tenant_add(f->st, "acme", "Acme") != 0 ||
        add_user(f->st, "alice@acme.example", PW, f->alice) != 0 ||
        add_user(f->st, "bob@acme.example", NULL, f->bob) != 0) {
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

static int
login(fixture_t *f, const char *email, const char *pw, gh_login_result_t *res)
{
    return gh_login_password(f->st, &f->ctx, email, strlen(email),
                             pw, strlen(pw), NULL, T0MS, res);
}

static void
ctx_init_uses_stored_params_and_makes_dummy_hash(void **state)
{
    fixture_t *f = *state;

    assert_int_equal(f->ctx.params.opslimit, cheap.opslimit);
    assert_int_equal(f->ctx.params.memlimit, cheap.memlimit);
    assert_true(strncmp(f->ctx.dummy_hash, "$argon2id$", 10) == 0);
    assert_int_equal(gh_password_needs_rehash(f->ctx.dummy_hash, &cheap), 0);
}

static void
correct_password_creates_session_that_resolves(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(login(f, "alice@acme.example", PW, &res), 0);
    assert_string_equal(res.user.id, f->alice);
    assert_int_equal(res.rehashed, 0);
    assert_int_equal(strlen(res.token), GH_TOKEN_LEN);
    assert_int_equal(gh_session_resolve(f->st, res.token, GH_TOKEN_LEN, &pol,
                                        T0 + 1, &s, &u, NULL), 0);
    assert_string_equal(u.id, f->alice);
    assert_string_equal(s.amr, "pwd");
    assert_int_equal(s.created, T0);
}

static void
email_is_normalised_before_lookup(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    assert_int_equal(login(f, "  Alice@ACME.example ", PW, &res), 0);
    assert_string_equal(res.user.id, f->alice);
}

static void
wrong_password_is_denied(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    assert_int_equal(login(f, "alice@acme.example", PW "x", &res), GH_EDENIED);
    assert_string_equal(res.token, "");
    assert_string_equal(res.user.id, "");
    assert_int_equal(login(f, "alice@acme.example", "", &res), GH_EDENIED);
}

static void
unknown_user_is_denied(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    assert_int_equal(login(f, "mallory@acme.example", PW, &res), GH_EDENIED);
    assert_string_equal(res.token, "");
}

static void
malformed_email_is_denied(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    assert_int_equal(login(f, "not-an-email", PW, &res), GH_EDENIED);
    assert_int_equal(login(f, "", PW, &res), GH_EDENIED);
    assert_int_equal(login(f, "alice@acme.example\r\nX: y", PW, &res),
                     GH_EDENIED);
    assert_int_equal(gh_login_password(f->st, &f->ctx, NULL, 0, PW, strlen(PW),
                                       NULL, T0MS, &res), GH_EDENIED);
}

static void
user_without_password_is_denied(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    assert_int_equal(login(f, "bob@acme.example", "", &res), GH_EDENIED);
    assert_int_equal(login(f, "bob@acme.example", PW, &res), GH_EDENIED);
}

static void
disabled_user_with_correct_password_is_denied(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    assert_int_equal(gh_user_set_disabled(f->st, f->alice, 1), 0);
    assert_int_equal(login(f, "alice@acme.example", PW, &res), GH_EDENIED);
    assert_string_equal(res.token, "");
    assert_int_equal(gh_user_set_disabled(f->st, f->alice, 0), 0);
    assert_int_equal(login(f, "alice@acme.example", PW, &res), 0);
}

/* Every failure looks the same to the caller: GH_EDENIED, nothing else. */
static void
denials_are_indistinguishable(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    int a, b, c, d;

    a = login(f, "alice@acme.example", "nope", &res);
    b = login(f, "nobody@acme.example", "nope", &res);
    c = login(f, "bob@acme.example", "nope", &res);
    assert_int_equal(gh_user_set_disabled(f->st, f->alice, 1), 0);
    d = login(f, "alice@acme.example", PW, &res);
    assert_int_equal(a, GH_EDENIED);
    assert_int_equal(b, a);
    assert_int_equal(c, a);
    assert_int_equal(d, a);
}

static void
password_longer_than_max_is_denied(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    char *pw = malloc(GH_PASSWORD_MAX + 2);

    assert_non_null(pw);
    memset(pw, 'p', GH_PASSWORD_MAX + 1);
    pw[GH_PASSWORD_MAX + 1] = '\0';
    assert_int_equal(login(f, "alice@acme.example", pw, &res), GH_EDENIED);
    free(pw);
}

static void
hash_is_upgraded_when_params_grow(void **state)
{
    fixture_t *f = *state;
    gh_pwhash_params_t more = { 2, 16u * 1024 * 1024 };
    gh_login_ctx_t ctx2;
    gh_login_result_t res;
    char before[GH_HASH_MAX], after[GH_HASH_MAX];

    assert_int_equal(gh_credential_get(f->st, f->alice, before), 0);
    assert_int_equal(gh_pwhash_params_save(f->st, &more), 0);
    assert_int_equal(gh_login_ctx_init(&ctx2, f->st), 0);
    assert_int_equal(ctx2.params.opslimit, 2);

    /* a wrong password never rewrites the hash */
    assert_int_equal(gh_login_password(f->st, &ctx2, "alice@acme.example", 18,
                                       "bad", 3, NULL, T0MS, &res), GH_EDENIED);
    assert_int_equal(gh_credential_get(f->st, f->alice, after), 0);
    assert_string_equal(after, before);

    assert_int_equal(gh_login_password(f->st, &ctx2, "alice@acme.example", 18,
                                       PW, strlen(PW), NULL, T0MS, &res), 0);
    assert_int_equal(res.rehashed, 1);
    assert_int_equal(gh_credential_get(f->st, f->alice, after), 0);
    assert_string_not_equal(after, before);
    assert_int_equal(gh_password_needs_rehash(after, &more), 0);
    assert_int_equal(gh_password_verify(after, PW, strlen(PW)), 0);

    /* the next login finds nothing to upgrade */
    assert_int_equal(gh_login_password(f->st, &ctx2, "alice@acme.example", 18,
                                       PW, strlen(PW), NULL, T0MS, &res), 0);
    assert_int_equal(res.rehashed, 0);
}

/* ---- throttling through the login ---- */

static int
login_at(fixture_t *f, const char *email, const char *pw, const gh_addr_t *a,
         int64_t ms, gh_login_result_t *res)
{
    return gh_login_password(f->st, &f->ctx, email, strlen(email), pw,
                             strlen(pw), a, ms, res);
}

static void
fifth_failure_backs_off_known_and_unknown_alike(void **state)
{
    fixture_t *f = *state;
    static const char *const who[] = { "alice@acme.example",
                                       "nobody@acme.example" };
    gh_login_result_t res;
    int i, w;

    for (w = 0; w < 2; w++) {
        for (i = 1; i <= 5; i++) {
            assert_int_equal(login_at(f, who[w], "nope", NULL, T0MS, &res),
                             GH_EDENIED);
            assert_int_equal(res.retry_after, 0);
            assert_int_equal(res.failures, i);
        }
        /* refused without evaluation: even the right password */
        assert_int_equal(login_at(f, who[w], PW, NULL, T0MS + 500, &res),
                         GH_EDENIED);
        assert_int_equal(res.retry_after, 1);
        assert_string_equal(res.reason, "account_backoff");
        assert_string_equal(res.token, "");
    }
    /* after the back-off, the right password works and resets */
    assert_int_equal(login_at(f, who[0], PW, NULL, T0MS + 1000, &res), 0);
    assert_int_equal(login_at(f, who[0], "nope", NULL, T0MS + 1001, &res),
                     GH_EDENIED);
    assert_int_equal(res.failures, 1);
}

static void
lockout_is_reported_once_and_refuses_everything(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    int64_t t = T0MS;
    int i, locks = 0;

    f->ctx.throttle.lockout = 7;
    for (i = 0; i < 7; i++) {
        assert_int_equal(login_at(f, "alice@acme.example", "nope", NULL, t,
                                  &res), GH_EDENIED);
        assert_int_equal(res.retry_after, 0);
        locks += res.locked_now;
        t += 3600 * 1000;
    }
    assert_int_equal(locks, 1);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, t, &res),
                     GH_EDENIED);
    assert_string_equal(res.reason, "account_locked");
    assert_int_equal(gh_throttle_unlock(f->st, "alice@acme.example"), 0);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, t, &res), 0);
}

static void
address_limit_spans_accounts(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    gh_addr_t a, b;
    char email[64];
    int i;

    assert_int_equal(gh_addr_parse("198.51.100.4", 12, &a), 0);
    assert_int_equal(gh_addr_parse("198.51.100.5", 12, &b), 0);
    f->ctx.throttle.addr_limit = 4;
    for (i = 0; i < 4; i++) {
        snprintf(email, sizeof email, "user%d@acme.example", i);
        assert_int_equal(login_at(f, email, "nope", &a, T0MS, &res),
                         GH_EDENIED);
        assert_int_equal(res.retry_after, 0);
    }
    assert_int_equal(login_at(f, "alice@acme.example", PW, &a, T0MS, &res),
                     GH_EDENIED);
    assert_string_equal(res.reason, "address_limit");
    assert_int_equal(res.retry_after, 600);
    /* from elsewhere alice is fine; a success does not count against b */
    assert_int_equal(login_at(f, "alice@acme.example", PW, &b, T0MS, &res), 0);
}

static void
internal_reasons_tell_the_audit_what_happened(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;

    login_at(f, "alice@acme.example", "nope", NULL, T0MS, &res);
    assert_string_equal(res.reason, "bad_password");
    assert_string_equal(res.tenant, "acme");
    login_at(f, "nobody@acme.example", "nope", NULL, T0MS, &res);
    assert_string_equal(res.reason, "unknown_user");
    assert_string_equal(res.tenant, "");
    login_at(f, "bob@acme.example", "nope", NULL, T0MS, &res);
    assert_string_equal(res.reason, "no_password");
    login_at(f, "not an email", "nope", NULL, T0MS, &res);
    assert_string_equal(res.reason, "invalid_email");
    assert_int_equal(gh_user_set_disabled(f->st, f->alice, 1), 0);
    login_at(f, "alice@acme.example", PW, NULL, T0MS, &res);
    assert_string_equal(res.reason, "disabled_account");
}

/* ---- restricted sessions ---- */

static void
must_change_gives_a_restricted_session(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    gh_session_t s;
    gh_user_t u;
    gh_pwchange_t chg;

    memset(&chg, 0, sizeof chg);
    chg.must_change = 1;
    chg.now = T0;
    assert_int_equal(gh_credential_change(f->st, f->alice, &chg), 0);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, T0MS, &res), 0);
    assert_int_equal(res.restricted, GH_LOGIN_MUST_CHANGE);
    assert_int_equal(gh_session_resolve(f->st, res.token, strlen(res.token),
                                        &pol, T0, &s, &u, NULL), 0);
    assert_int_equal(s.flags, GH_SESSION_PWCHANGE);
}

static void
expired_password_gives_a_restricted_session(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    gh_pwsettings_t pw;
    gh_session_t s;
    gh_user_t u;
    char h[GH_HASH_MAX];

    gh_pwsettings_default(&pw);
    pw.max_age_days = 30;
    assert_int_equal(gh_tenant_set_pwsettings(f->st, "acme", &pw), 0);
    /* the password was set at T0 */
    gh_clock_set(T0);
    assert_int_equal(gh_credential_get(f->st, f->alice, h), 0);
    assert_int_equal(gh_credential_set(f->st, f->alice, h), 0);
    /* 29 days later: fine; 30 days later: expired */
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL,
                              (T0 + 29 * 86400LL) * 1000, &res), 0);
    assert_int_equal(res.restricted, GH_LOGIN_FULL);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL,
                              (T0 + 30 * 86400LL) * 1000 + 5, &res), 0);
    assert_int_equal(res.restricted, GH_LOGIN_EXPIRED);
    assert_int_equal(gh_session_resolve(f->st, res.token, strlen(res.token),
                                        &pol, T0 + 30 * 86400LL, &s, &u,
                                        NULL), 0);
    assert_int_equal(s.flags, GH_SESSION_PWCHANGE);
    gh_clock_set(0);
}

static void
either_unicode_spelling_logs_in(void **state)
{
    fixture_t *f = *state;
    gh_login_result_t res;
    char *canon;
    size_t n;
    char h[GH_HASH_MAX], id[GH_ID_HEXLEN + 1];
    gh_user_t in;
    static const char pre[] = "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e";
    static const char dec[] = "cafe\xcc\x81 cre\xcc\x80me bru\xcc\x82le\xcc\x81"
                              "e";

    memset(&in, 0, sizeof in);
    strcpy(in.tenant, "acme");
    strcpy(in.email, "zoe@acme.example");
    assert_int_equal(gh_user_add(f->st, &in, id), 0);
    assert_int_equal(gh_pw_canonical(pre, strlen(pre), &canon, &n), 0);
    assert_int_equal(gh_password_hash(&cheap, canon, n, h), 0);
    gh_pw_free(canon, n);
    assert_int_equal(gh_credential_set(f->st, id, h), 0);
    assert_int_equal(login_at(f, "zoe@acme.example", pre, NULL, T0MS, &res), 0);
    assert_int_equal(login_at(f, "zoe@acme.example", dec, NULL, T0MS, &res), 0);
}

/* ---- the password change ---- */

static gh_blocklist_t *
john(void)
{
    const char *paths[] = { GH_BLOCKLIST_DEFAULT };
    gh_blocklist_t *b = NULL;
    char err[256];

    assert_int_equal(gh_blocklist_load(&b, paths, 1, err, sizeof err), 0);
    return b;
}

static int
change(fixture_t *f, const char *cur, const char *fresh,
       const gh_blocklist_t *bl, int64_t ms, gh_pwchange_res_t *res)
{
    gh_pwchange_req_t rq;

    memset(&rq, 0, sizeof rq);
    rq.uid = f->alice;
    rq.amr = "pwd";
    rq.current = cur;
    rq.current_len = strlen(cur);
    rq.fresh = fresh;
    rq.fresh_len = strlen(fresh);
    rq.blocklist = bl;
    rq.now_ms = ms;
    return gh_login_change_password(f->st, &f->ctx, &rq, res);
}

static void
change_ends_every_other_session_and_starts_a_new_one(void **state)
{
    fixture_t *f = *state;
    gh_blocklist_t *bl = john();
    gh_pwchange_res_t *res = calloc(1, sizeof *res);
    gh_login_result_t a, b;
    gh_session_t s;
    gh_user_t u;

    assert_non_null(res);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, T0MS, &a), 0);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, T0MS, &b), 0);
    assert_int_equal(change(f, PW, "a completely new pass phrase", bl, T0MS,
                            res), 0);
    assert_string_equal(res->reason, "ok");
    assert_int_equal(res->ended, 1);          /* two sessions, one replaced */
    assert_int_equal(gh_session_resolve(f->st, a.token, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), GH_ENOTFOUND);
    assert_int_equal(gh_session_resolve(f->st, b.token, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), GH_ENOTFOUND);
    assert_int_equal(gh_session_resolve(f->st, res->token, GH_TOKEN_LEN, &pol,
                                        T0, &s, &u, NULL), 0);
    assert_int_equal(s.flags, 0);
    /* the old password no longer works, the new one does */
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, T0MS, &a),
                     GH_EDENIED);
    assert_int_equal(login_at(f, "alice@acme.example",
                              "a completely new pass phrase", NULL, T0MS, &a),
                     0);
    gh_blocklist_free(bl);
    free(res);
}

static void
change_refuses_wrong_current_reuse_and_weak_passwords(void **state)
{
    fixture_t *f = *state;
    gh_blocklist_t *bl = john();
    gh_pwchange_res_t *res = calloc(1, sizeof *res);
    int i;

    assert_non_null(res);
    assert_int_equal(change(f, "wrong current", "another long pass phrase", bl,
                            T0MS, res), GH_EDENIED);
    assert_string_equal(res->reason, "bad_current");
    assert_int_equal(res->verdict.n, 0);
    assert_string_equal(res->token, "");
    /* the current password cannot be kept */
    assert_int_equal(change(f, PW, PW, bl, T0MS, res), GH_EDENIED);
    assert_string_equal(res->reason, "policy");
    assert_int_equal(res->verdict.rules, GH_PWR_HISTORY);
    /* weak: every rule listed */
    assert_int_equal(change(f, PW, "password", bl, T0MS, res), GH_EDENIED);
    assert_int_equal(res->verdict.rules, GH_PWR_SHORT | GH_PWR_BLOCKLIST);
    /* the one before the current one is remembered too */
    assert_int_equal(change(f, PW, "second long pass phrase", bl, T0MS, res), 0);
    assert_int_equal(change(f, "second long pass phrase", PW, bl, T0MS, res),
                     GH_EDENIED);
    assert_int_equal(res->verdict.rules, GH_PWR_HISTORY);
    /* a stolen session cannot guess the current password fast: throttled */
    for (i = 0; i < 5; i++)
        assert_int_equal(change(f, "guess", "x", bl, T0MS, res), GH_EDENIED);
    assert_int_equal(change(f, "second long pass phrase", "third long pass "
                            "phrase", bl, T0MS + 10, res), GH_EDENIED);
    assert_true(res->retry_after > 0);
    assert_int_equal(change(f, "second long pass phrase", "third long pass "
                            "phrase", bl, T0MS + 1000, res), 0);
    gh_blocklist_free(bl);
    free(res);
}

static void
change_from_a_restricted_session_clears_the_flag(void **state)
{
    fixture_t *f = *state;
    gh_blocklist_t *bl = john();
    gh_pwchange_res_t *res = calloc(1, sizeof *res);
    gh_credential_t *c = calloc(1, sizeof *c);
    gh_login_result_t a;
    gh_pwchange_t chg;

    assert_non_null(res);
    assert_non_null(c);
    memset(&chg, 0, sizeof chg);
    chg.must_change = 1;
    assert_int_equal(gh_credential_change(f->st, f->alice, &chg), 0);
    assert_int_equal(login_at(f, "alice@acme.example", PW, NULL, T0MS, &a), 0);
    assert_int_equal(a.restricted, GH_LOGIN_MUST_CHANGE);
    assert_int_equal(change(f, PW, "the chosen pass phrase", bl, T0MS, res), 0);
    assert_int_equal(gh_credential_read(f->st, f->alice, c), 0);
    assert_int_equal(c->must_change, 0);
    assert_int_equal(login_at(f, "alice@acme.example", "the chosen pass phrase",
                              NULL, T0MS, &a), 0);
    assert_int_equal(a.restricted, GH_LOGIN_FULL);
    gh_blocklist_free(bl);
    free(res);
    free(c);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(ctx_init_uses_stored_params_and_makes_dummy_hash),
        T(correct_password_creates_session_that_resolves),
        T(email_is_normalised_before_lookup),
        T(wrong_password_is_denied),
        T(unknown_user_is_denied),
        T(malformed_email_is_denied),
        T(user_without_password_is_denied),
        T(disabled_user_with_correct_password_is_denied),
        T(denials_are_indistinguishable),
        T(password_longer_than_max_is_denied),
        T(hash_is_upgraded_when_params_grow),
        T(fifth_failure_backs_off_known_and_unknown_alike),
        T(lockout_is_reported_once_and_refuses_everything),
        T(address_limit_spans_accounts),
        T(internal_reasons_tell_the_audit_what_happened),
        T(must_change_gives_a_restricted_session),
        T(expired_password_gives_a_restricted_session),
        T(either_unicode_spelling_logs_in),
        T(change_ends_every_other_session_and_starts_a_new_one),
        T(change_refuses_wrong_current_reuse_and_weak_passwords),
        T(change_from_a_restricted_session_clears_the_flag),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
