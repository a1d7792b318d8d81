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
                             pw, strlen(pw), T0, res);
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
                                       T0, &res), GH_EDENIED);
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
                                       "bad", 3, T0, &res), GH_EDENIED);
    assert_int_equal(gh_credential_get(f->st, f->alice, after), 0);
    assert_string_equal(after, before);

    assert_int_equal(gh_login_password(f->st, &ctx2, "alice@acme.example", 18,
                                       PW, strlen(PW), T0, &res), 0);
    assert_int_equal(res.rehashed, 1);
    assert_int_equal(gh_credential_get(f->st, f->alice, after), 0);
    assert_string_not_equal(after, before);
    assert_int_equal(gh_password_needs_rehash(after, &more), 0);
    assert_int_equal(gh_password_verify(after, PW, strlen(PW)), 0);

    /* the next login finds nothing to upgrade */
    assert_int_equal(gh_login_password(f->st, &ctx2, "alice@acme.example", 18,
                                       PW, strlen(PW), T0, &res), 0);
    assert_int_equal(res.rehashed, 0);
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
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
