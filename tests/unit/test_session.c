/* Unit tests for authn/session.c: cookie tokens, lifetime, resolution. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <pthread.h>
#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/session.h"
#include "gatehouse/store.h"

#define T0 1700000000

static const gh_session_policy_t pol = { 600, 3600 };   /* idle, lifetime */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

typedef struct {
    char        dir[64];
    gh_store_t *st;
    gh_user_t   user;
} fixture_t;

static int
add_user(gh_store_t *st, const char *tenant, const char *email, gh_user_t *out)
{
    gh_user_t in;
    char id[GH_ID_HEXLEN + 1];
    int rc;

    memset(&in, 0, sizeof in);
    snprintf(in.tenant, sizeof in.tenant, "%s", tenant);
    snprintf(in.email, sizeof in.email, "%s", email);
    snprintf(in.name, sizeof in.name, "Test User");
    rc = gh_user_add(st, &in, id);
    if (rc != 0)
        return rc;
    return gh_user_get(st, id, out);
}

static int
store_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/gh-test-session-XXXXXX");
    if (mkdtemp(f->dir) == NULL ||
        gh_store_open(&f->st, f->dir, GH_STORE_CREATE) != 0 ||
        gh_tenant_add(f->st, "acme", "Acme") != 0 ||
        add_user(f->st, "acme", "alice@acme.example", &f->user) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
store_teardown(void **state)
{
    fixture_t *f = *state;

    gh_clock_set(0);
    gh_store_close(f->st);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ---- tokens ---- */

static void
new_token_is_43_base64url_chars_and_maps_to_its_key(void **state)
{
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32], again[32];
    size_t i;

    gh_token_new(tok, key);
    assert_int_equal(strlen(tok), GH_TOKEN_LEN);
    for (i = 0; i < GH_TOKEN_LEN; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-_", tok[i]));
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, again), 0);
    assert_memory_equal(key, again, 32);
}

static void
two_new_tokens_differ(void **state)
{
    char a[GH_TOKEN_LEN + 1], b[GH_TOKEN_LEN + 1];
    uint8_t ka[32], kb[32];

    gh_token_new(a, ka);
    gh_token_new(b, kb);
    assert_string_not_equal(a, b);
    assert_memory_not_equal(ka, kb, 32);
}

static void
store_key_is_sha256_of_raw_bytes_not_of_text(void **state)
{
    /* 32 zero bytes encode to 43 'A's. */
    char tok[GH_TOKEN_LEN + 1];
    uint8_t raw[32] = { 0 }, want[32], key[32];

    memset(tok, 'A', GH_TOKEN_LEN);
    tok[GH_TOKEN_LEN] = '\0';
    gh_sha256(raw, sizeof raw, want);
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, key), 0);
    assert_memory_equal(key, want, 32);
}

static void
malformed_cookies_are_refused(void **state)
{
    char good[GH_TOKEN_LEN + 1], buf[GH_TOKEN_LEN + 8];
    uint8_t key[32], zero[32] = { 0 };
    static const char bad_chars[] = "=+/ .\t\n\r%\\\"';,\x7f\x80\xff";
    size_t i;

    gh_token_new(good, key);

    /* empty and NULL */
    assert_int_equal(gh_token_key("", 0, key), GH_EINVAL);
    assert_memory_equal(key, zero, 32);
    assert_int_equal(gh_token_key(NULL, GH_TOKEN_LEN, key), GH_EINVAL);

    /* 42 and 44 characters */
    assert_int_equal(gh_token_key(good, GH_TOKEN_LEN - 1, key), GH_EINVAL);
    memcpy(buf, good, GH_TOKEN_LEN);
    buf[GH_TOKEN_LEN] = 'A';
    buf[GH_TOKEN_LEN + 1] = '\0';
    assert_int_equal(gh_token_key(buf, GH_TOKEN_LEN + 1, key), GH_EINVAL);

    /* padding: 43 + '=' and '=' in place of the last character */
    buf[GH_TOKEN_LEN] = '=';
    assert_int_equal(gh_token_key(buf, GH_TOKEN_LEN + 1, key), GH_EINVAL);
    memcpy(buf, good, GH_TOKEN_LEN);
    buf[GH_TOKEN_LEN - 1] = '=';
    assert_int_equal(gh_token_key(buf, GH_TOKEN_LEN, key), GH_EINVAL);

    /* every position, every character outside the alphabet */
    for (i = 0; i < sizeof bad_chars - 1; i++) {
        size_t pos = (i * 7) % GH_TOKEN_LEN;

        memcpy(buf, good, GH_TOKEN_LEN);
        buf[pos] = bad_chars[i];
        assert_int_equal(gh_token_key(buf, GH_TOKEN_LEN, key), GH_EINVAL);
        assert_memory_equal(key, zero, 32);
    }

    /* embedded NUL */
    memcpy(buf, good, GH_TOKEN_LEN);
    buf[10] = '\0';
    assert_int_equal(gh_token_key(buf, GH_TOKEN_LEN, key), GH_EINVAL);

    /* non-canonical: the last character carries 2 bits that must be zero */
    memset(buf, 'A', GH_TOKEN_LEN);
    buf[GH_TOKEN_LEN - 1] = 'B';
    assert_int_equal(gh_token_key(buf, GH_TOKEN_LEN, key), GH_EINVAL);
}

/* ---- lifetime ---- */

static void
session_live_until_idle_boundary(void **state)
{
    gh_session_t s = { .created = T0, .last_seen = T0 };

    assert_int_equal(gh_session_live(&s, &pol, T0), 0);
    assert_int_equal(gh_session_live(&s, &pol, T0 + 599), 0);
    assert_int_equal(gh_session_live(&s, &pol, T0 + 600), GH_EEXPIRED);
    assert_int_equal(gh_session_live(&s, &pol, T0 + 601), GH_EEXPIRED);
}

static void
session_expires_at_lifetime_even_when_active(void **state)
{
    gh_session_t s = { .created = T0, .last_seen = T0 + 3500 };

    assert_int_equal(gh_session_live(&s, &pol, T0 + 3599), 0);
    assert_int_equal(gh_session_live(&s, &pol, T0 + 3600), GH_EEXPIRED);
}

static void
session_expired_on_nonpositive_policy_or_overflow(void **state)
{
    gh_session_t s = { .created = T0, .last_seen = T0 };
    gh_session_policy_t zero = { 0, 3600 }, neg = { 600, -1 };
    gh_session_t huge = { .created = INT64_MAX - 10, .last_seen = INT64_MAX - 10 };

    assert_int_equal(gh_session_live(&s, &zero, T0), GH_EEXPIRED);
    assert_int_equal(gh_session_live(&s, &neg, T0), GH_EEXPIRED);
    assert_int_equal(gh_session_live(&huge, &pol, T0), GH_EEXPIRED);
}

static void
null_policy_means_defaults(void **state)
{
    gh_session_t s = { .created = T0, .last_seen = T0 };

    assert_int_equal(gh_session_live(&s, NULL, T0 + GH_SESSION_IDLE_DEFAULT - 1), 0);
    assert_int_equal(gh_session_live(&s, NULL, T0 + GH_SESSION_IDLE_DEFAULT),
                     GH_EEXPIRED);
}

static void
touch_needed_after_min_60s_or_tenth_of_idle(void **state)
{
    gh_session_t s = { .created = T0, .last_seen = T0 };
    gh_session_policy_t short_idle = { 100, 3600 }, tiny = { 5, 3600 };

    /* idle 600 -> every 60 s */
    assert_int_equal(gh_session_needs_touch(&s, &pol, T0), 0);
    assert_int_equal(gh_session_needs_touch(&s, &pol, T0 + 59), 0);
    assert_int_equal(gh_session_needs_touch(&s, &pol, T0 + 60), 1);
    /* idle 100 -> every 10 s */
    assert_int_equal(gh_session_needs_touch(&s, &short_idle, T0 + 9), 0);
    assert_int_equal(gh_session_needs_touch(&s, &short_idle, T0 + 10), 1);
    /* idle 5 -> at least 1 s */
    assert_int_equal(gh_session_needs_touch(&s, &tiny, T0), 0);
    assert_int_equal(gh_session_needs_touch(&s, &tiny, T0 + 1), 1);
    /* clock stepped back: never */
    assert_int_equal(gh_session_needs_touch(&s, &pol, T0 - 1000), 0);
}

/* ---- create / resolve (store) ---- */

static void
created_session_resolves_to_its_user(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    gh_session_t s;
    gh_user_t u;
    uint8_t key[32], want[32];

    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(strlen(tok), GH_TOKEN_LEN);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0 + 1,
                                        &s, &u, key), 0);
    assert_string_equal(s.uid, f->user.id);
    assert_string_equal(s.tenant, "acme");
    assert_string_equal(s.amr, "pwd");
    assert_int_equal(s.created, T0);
    assert_int_equal(s.last_seen, T0);
    assert_string_equal(u.id, f->user.id);
    assert_string_equal(u.email, "alice@acme.example");
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, want), 0);
    assert_memory_equal(key, want, 32);
}

static void
store_holds_hash_not_token(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32];
    gh_session_t s;

    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, key), 0);
    assert_int_equal(gh_session_get(f->st, key, &s), 0);
    /* the raw token bytes (first 32 of its text, as a guess) are no key */
    assert_int_equal(gh_session_get(f->st, (const uint8_t *)tok, &s),
                     GH_ENOTFOUND);
}

static void
create_refuses_bad_amr(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    char amr[GH_AMR_MAX + 2];

    memset(amr, 'a', sizeof amr - 1);
    amr[sizeof amr - 1] = '\0';
    assert_int_equal(gh_session_create(f->st, &f->user, amr, T0, tok), GH_ETOOBIG);
    assert_string_equal(tok, "");
    assert_int_equal(gh_session_create(f->st, &f->user, "", T0, tok), GH_EINVAL);
    assert_int_equal(gh_session_create(f->st, &f->user, NULL, T0, tok), GH_EINVAL);
}

static void
resolve_refuses_malformed_token_without_store_access(void **state)
{
    fixture_t *f = *state;
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(gh_session_resolve(f->st, "", 0, &pol, T0, &s, &u, NULL),
                     GH_EINVAL);
    assert_int_equal(gh_session_resolve(f->st, "abc=", 4, &pol, T0, &s, &u, NULL),
                     GH_EINVAL);
}

static void
resolve_refuses_unknown_token(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32];
    gh_session_t s;
    gh_user_t u;

    gh_token_new(tok, key);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), GH_ENOTFOUND);
}

static void
resolve_refuses_idle_and_lifetime_expired_sessions(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32], want[32];
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol,
                                        T0 + 599, &s, &u, NULL), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol,
                                        T0 + 600, &s, &u, key), GH_EEXPIRED);
    /* the key is handed back so the gateway can delete the dead session */
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, want), 0);
    assert_memory_equal(key, want, 32);
    assert_string_equal(u.id, "");

    /* kept alive by touches, it still dies at the lifetime */
    assert_int_equal(gh_session_touch(f->st, want, T0 + 3500), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol,
                                        T0 + 3599, &s, &u, NULL), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol,
                                        T0 + 3600, &s, &u, NULL), GH_EEXPIRED);
}

static void
disabled_users_session_is_refused_on_next_request(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), 0);
    assert_int_equal(gh_user_set_disabled(f->st, f->user.id, 1), 0);
    /* disabling deletes the user's sessions in the same transaction */
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), GH_ENOTFOUND);
    /* re-enabling does not bring the old session back */
    assert_int_equal(gh_user_set_disabled(f->st, f->user.id, 0), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), GH_ENOTFOUND);
}

static void
session_of_user_disabled_behind_our_back_is_refused(void **state)
{
    /* A session written after the user was disabled (e.g. a race with
     * another node) must still be refused at resolve time. */
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(gh_user_set_disabled(f->st, f->user.id, 1), 0);
    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0,
                                        &s, &u, NULL), GH_EDISABLED);
}

static void
session_of_account_past_its_end_is_refused(void **state)
{
    /* An account enabled until a deadline (break-glass) loses its session
     * at the deadline, with nothing run then. */
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(gh_user_enable_until(f->st, f->user.id, T0 + 60), 0);
    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol,
                                        T0 + 59, &s, &u, NULL), 0);
    assert_int_equal(u.expires, T0 + 60);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol,
                                        T0 + 60, &s, &u, NULL), GH_EDISABLED);
}

static void
session_whose_tenant_differs_from_user_is_refused(void **state)
{
    fixture_t *f = *state;
    gh_session_t s = { .created = T0, .last_seen = T0 }, out;
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32];
    gh_user_t u;

    assert_int_equal(gh_tenant_add(f->st, "other", "Other"), 0);
    memcpy(s.uid, f->user.id, sizeof s.uid);
    strcpy(s.tenant, "other");
    strcpy(s.amr, "pwd");
    gh_token_new(tok, key);
    assert_int_equal(gh_session_put(f->st, key, &s), 0);
    assert_int_equal(gh_session_resolve(f->st, tok, GH_TOKEN_LEN, &pol, T0,
                                        &out, &u, NULL), GH_ENOTFOUND);
}

/* ---- the gateway's read: gh_session_resolve_key / gh_request_read ---- */

/* The request path keeps one read transaction between requests (reset,
 * renewed): every read must still see every write committed before it. */
static void
kept_read_transaction_sees_each_write_on_the_next_request(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32];
    uint64_t vers[2], ver;
    gh_session_t s;
    gh_user_t u;
    const char *active[GH_BINDINGS_MAX];

    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, key), 0);
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 1, &s, &u,
                                            vers), 0);
    assert_string_equal(u.id, f->user.id);
    assert_int_equal(vers[0], 0);
    assert_int_equal(gh_user_active_roles(&u, T0 + 1, active), 0);

    /* a grant and a policy apply show on the next read */
    assert_int_equal(gh_role_grant(f->st, f->user.id, "member", 0), 0);
    assert_int_equal(gh_policy_put(f->st, "version: 1\n", 11, &ver), 0);
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 2, &s, &u,
                                            vers), 0);
    assert_int_equal(vers[0], ver);
    assert_int_equal(gh_user_active_roles(&u, T0 + 2, active), 1);
    assert_string_equal(active[0], "member");

    /* so do a revoke, and a logout (the session deleted) */
    assert_int_equal(gh_role_revoke(f->st, f->user.id, "member"), 0);
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 3, &s, &u,
                                            vers), 0);
    assert_int_equal(gh_user_active_roles(&u, T0 + 3, active), 0);
    assert_int_equal(gh_session_del(f->st, key), 0);
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 4, &s, &u,
                                            vers), GH_ENOTFOUND);
    assert_int_equal(vers[0], ver);   /* the versions are still read */
    assert_string_equal(u.id, "");
    assert_string_equal(s.uid, "");

    /* and disabling the user, with a fresh session */
    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, key), 0);
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 5, &s, &u,
                                            vers), 0);
    assert_int_equal(gh_user_set_disabled(f->st, f->user.id, 1), 0);
    assert_int_not_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 6, &s,
                                                &u, vers), 0);
    /* versions alone, without a session */
    assert_int_equal(gh_request_read(f->st, NULL, NULL, NULL, &vers[0],
                                     &vers[1]), 0);
    assert_int_equal(vers[0], ver);
}

typedef struct {
    gh_store_t *st;
    int         rc;
} elsewhere_t;

static void *
request_read_elsewhere(void *p)
{
    elsewhere_t *e = p;
    uint64_t v[2];

    e->rc = gh_request_read(e->st, NULL, NULL, NULL, &v[0], &v[1]);
    return NULL;
}

static void
kept_read_transaction_is_refused_to_another_thread(void **state)
{
    fixture_t *f = *state;
    elsewhere_t e = { f->st, 12345 };
    uint64_t v[2];
    pthread_t t;

    assert_int_equal(gh_request_read(f->st, NULL, NULL, NULL, &v[0], &v[1]),
                     0);
    assert_int_equal(pthread_create(&t, NULL, request_read_elsewhere, &e), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(e.rc, GH_ESTORE);
    /* and the owner goes on */
    assert_int_equal(gh_request_read(f->st, NULL, NULL, NULL, &v[0], &v[1]),
                     0);
}

static void
resolve_key_refuses_an_expired_session_and_zeroes_the_outputs(void **state)
{
    fixture_t *f = *state;
    char tok[GH_TOKEN_LEN + 1];
    uint8_t key[32];
    uint64_t vers[2];
    gh_session_t s;
    gh_user_t u;

    assert_int_equal(gh_session_create(f->st, &f->user, "pwd", T0, tok), 0);
    assert_int_equal(gh_token_key(tok, GH_TOKEN_LEN, key), 0);
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0 + 600, &s,
                                            &u, vers), GH_EEXPIRED);
    assert_string_equal(u.id, "");
    assert_string_equal(s.uid, "");
    assert_int_equal(gh_session_resolve_key(f->st, key, &pol, T0, NULL, &u,
                                            vers), GH_EINVAL);
}

int
main(void)
{
#define STORE_TEST(t) cmocka_unit_test_setup_teardown(t, store_setup, store_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_token_is_43_base64url_chars_and_maps_to_its_key),
        cmocka_unit_test(two_new_tokens_differ),
        cmocka_unit_test(store_key_is_sha256_of_raw_bytes_not_of_text),
        cmocka_unit_test(malformed_cookies_are_refused),
        cmocka_unit_test(session_live_until_idle_boundary),
        cmocka_unit_test(session_expires_at_lifetime_even_when_active),
        cmocka_unit_test(session_expired_on_nonpositive_policy_or_overflow),
        cmocka_unit_test(null_policy_means_defaults),
        cmocka_unit_test(touch_needed_after_min_60s_or_tenth_of_idle),
        STORE_TEST(created_session_resolves_to_its_user),
        STORE_TEST(store_holds_hash_not_token),
        STORE_TEST(create_refuses_bad_amr),
        STORE_TEST(resolve_refuses_malformed_token_without_store_access),
        STORE_TEST(resolve_refuses_unknown_token),
        STORE_TEST(resolve_refuses_idle_and_lifetime_expired_sessions),
        STORE_TEST(disabled_users_session_is_refused_on_next_request),
        STORE_TEST(session_of_user_disabled_behind_our_back_is_refused),
        STORE_TEST(session_of_account_past_its_end_is_refused),
        STORE_TEST(session_whose_tenant_differs_from_user_is_refused),
        STORE_TEST(kept_read_transaction_sees_each_write_on_the_next_request),
        STORE_TEST(resolve_key_refuses_an_expired_session_and_zeroes_the_outputs),
        STORE_TEST(kept_read_transaction_is_refused_to_another_thread),
    };
#undef STORE_TEST

    return cmocka_run_group_tests(tests, NULL, NULL);
}
