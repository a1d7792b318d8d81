/* Unit tests for authn/throttle.c: the back-off, the lockout, the address
 * window, and their life in the store. */
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
#include "gatehouse/throttle.h"

#define T0 1700000000000LL     /* ms */
#define S  1000LL

static gh_throttle_conf_t C;

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

typedef struct {
    char        dir[64];
    gh_store_t *st;
} fixture_t;

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);

    gh_throttle_conf_default(&C);
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/gh-test-throttle-XXXXXX");
    if (mkdtemp(f->dir) == NULL ||
        gh_store_open(&f->st, f->dir, GH_STORE_CREATE) != 0) {
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

static gh_addr_t
addr(const char *text)
{
    gh_addr_t a;

    assert_int_equal(gh_addr_parse(text, strlen(text), &a), 0);
    return a;
}

/* ---- the rule on records ---- */

static void
defaults_are_the_documented_numbers(void **state)
{
    gh_throttle_conf_t c;

    gh_throttle_conf_default(&c);
    assert_int_equal(c.free_failures, 5);
    assert_int_equal(c.lockout, 100);
    assert_int_equal(c.delay_first, 1000);
    assert_int_equal(c.delay_max, 15 * 60 * 1000);
    assert_int_equal(c.addr_limit, 30);
    assert_int_equal(c.addr_window, 10 * 60 * 1000);
    assert_int_equal(gh_throttle_conf_check(&c), 0);
    c.lockout = 101;                         /* NIST: at most 100 */
    assert_int_equal(gh_throttle_conf_check(&c), GH_EINVAL);
    c.lockout = 4;                           /* below the free failures */
    assert_int_equal(gh_throttle_conf_check(&c), GH_EINVAL);
    gh_throttle_conf_default(&c);
    c.free_failures = 0;
    assert_int_equal(gh_throttle_conf_check(&c), GH_EINVAL);
}

static void
backoff_doubles_from_the_fifth_failure_and_caps(void **state)
{
    gh_throttle_conf_default(&C);
    assert_int_equal(gh_throttle_delay(&C, 4), 0);
    assert_int_equal(gh_throttle_delay(&C, 5), 1 * S);
    assert_int_equal(gh_throttle_delay(&C, 6), 2 * S);
    assert_int_equal(gh_throttle_delay(&C, 7), 4 * S);
    assert_int_equal(gh_throttle_delay(&C, 14), 512 * S);
    assert_int_equal(gh_throttle_delay(&C, 15), 900 * S);   /* 1024 capped */
    assert_int_equal(gh_throttle_delay(&C, 99), 900 * S);
    assert_int_equal(gh_throttle_delay(&C, UINT32_MAX), 900 * S);
}

static void
five_failures_then_refused_without_evaluation(void **state)
{
    gh_throttle_rec_t acct;
    gh_throttle_verdict_t v;
    int i;

    memset(&acct, 0, sizeof acct);
    for (i = 1; i <= 5; i++) {
        gh_throttle_judge(&C, &acct, NULL, T0, &v);
        assert_true(v.allowed);
        assert_int_equal(v.failures, i);
    }
    /* the 5th failure closed the account for 1 s */
    gh_throttle_judge(&C, &acct, NULL, T0 + 10, &v);
    assert_false(v.allowed);
    assert_string_equal(v.why, "account_backoff");
    assert_int_equal(v.retry_after, 1);
    assert_int_equal(acct.fails, 5);            /* a refusal counts nothing */
    gh_throttle_judge(&C, &acct, NULL, T0 + 1 * S, &v);
    assert_true(v.allowed);                     /* 6th attempt, then 2 s */
    gh_throttle_judge(&C, &acct, NULL, T0 + 2 * S, &v);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after, 1);
    gh_throttle_judge(&C, &acct, NULL, T0 + 2500, &v);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after, 1);         /* rounded up, at least 1 */
    gh_throttle_judge(&C, &acct, NULL, T0 + 3 * S, &v);
    assert_true(v.allowed);
    assert_int_equal(v.failures, 7);
}

static void
success_resets_the_account(void **state)
{
    gh_throttle_rec_t acct, ad;
    gh_throttle_verdict_t v;
    int i;

    memset(&acct, 0, sizeof acct);
    memset(&ad, 0, sizeof ad);
    for (i = 0; i < 5; i++)
        gh_throttle_judge(&C, &acct, &ad, T0, &v);
    gh_throttle_judge(&C, &acct, &ad, T0 + S, &v);
    assert_true(v.allowed);
    assert_int_equal(ad.fails, 6);
    gh_throttle_judge_success(&C, &acct, &ad, T0 + S);
    assert_int_equal(acct.fails, 0);
    assert_int_equal(acct.until, 0);
    assert_int_equal(ad.fails, 5);              /* the success taken back */
    gh_throttle_judge(&C, &acct, &ad, T0 + S + 1, &v);
    assert_true(v.allowed);
    assert_int_equal(v.failures, 1);
}

static void
lockout_after_n_failures_holds_until_unlocked(void **state)
{
    gh_throttle_rec_t acct;
    gh_throttle_verdict_t v;
    int64_t t = T0;
    unsigned i;

    C.lockout = 100;
    memset(&acct, 0, sizeof acct);
    for (i = 1; i <= 100; i++) {
        gh_throttle_judge(&C, &acct, NULL, t, &v);
        assert_true(v.allowed);
        assert_int_equal(v.locks, i == 100);
        t = acct.until > t ? acct.until : t;
    }
    assert_true(acct.locked);
    /* a week later, still locked */
    gh_throttle_judge(&C, &acct, NULL, t + 7 * 24 * 3600 * S, &v);
    assert_false(v.allowed);
    assert_string_equal(v.why, "account_locked");
    assert_int_equal(v.retry_after, 900);
    assert_false(gh_throttle_expired(&C, GH_THROTTLE_ACCOUNT, &acct,
                                     t + 365 * 24 * 3600 * S));
    /* the attempt that reached the limit succeeded: no lock after all */
    memset(&acct, 0, sizeof acct);
    acct.fails = 99;
    gh_throttle_judge(&C, &acct, NULL, t, &v);
    assert_true(v.allowed && v.locks && acct.locked);
    gh_throttle_judge_success(&C, &acct, NULL, t);
    assert_false(acct.locked);
}

static void
small_counts_are_forgotten_after_a_quiet_day(void **state)
{
    gh_throttle_rec_t acct;
    gh_throttle_verdict_t v;
    int i;

    memset(&acct, 0, sizeof acct);
    for (i = 0; i < 4; i++)
        gh_throttle_judge(&C, &acct, NULL, T0, &v);
    assert_false(gh_throttle_expired(&C, GH_THROTTLE_ACCOUNT, &acct,
                                     T0 + 3600 * S));
    assert_true(gh_throttle_expired(&C, GH_THROTTLE_ACCOUNT, &acct,
                                    T0 + 25 * 3600 * S));
    gh_throttle_judge(&C, &acct, NULL, T0 + 25 * 3600 * S, &v);
    assert_int_equal(v.failures, 1);            /* a fresh start */
    /* a count in back-off is not forgotten */
    memset(&acct, 0, sizeof acct);
    for (i = 0; i < 5; i++)
        gh_throttle_judge(&C, &acct, NULL, T0, &v);
    assert_false(gh_throttle_expired(&C, GH_THROTTLE_ACCOUNT, &acct,
                                     T0 + 30 * 24 * 3600 * S));
}

static void
address_window_limits_failures_across_accounts(void **state)
{
    gh_throttle_rec_t acct, ad;
    gh_throttle_verdict_t v;
    unsigned i;

    memset(&ad, 0, sizeof ad);
    for (i = 0; i < C.addr_limit; i++) {
        memset(&acct, 0, sizeof acct);          /* a different account */
        gh_throttle_judge(&C, &acct, &ad, T0 + i, &v);
        assert_true(v.allowed);
    }
    memset(&acct, 0, sizeof acct);
    gh_throttle_judge(&C, &acct, &ad, T0 + 60 * S, &v);
    assert_false(v.allowed);
    assert_string_equal(v.why, "address_limit");
    assert_int_equal(v.retry_after, 540);       /* the window's rest */
    assert_int_equal(acct.fails, 0);            /* nothing counted */
    gh_throttle_judge(&C, &acct, &ad, T0 + 600 * S, &v);
    assert_true(v.allowed);                     /* a new window */
    assert_int_equal(ad.fails, 1);
    assert_true(gh_throttle_expired(&C, GH_THROTTLE_ADDRESS, &ad,
                                    T0 + 1200 * S));
    /* off: no limit */
    C.addr_limit = 0;
    for (i = 0; i < 100; i++) {
        gh_throttle_judge(&C, NULL, &ad, T0 + 700 * S, &v);
        assert_true(v.allowed);
    }
}

static void
the_longer_wait_wins_when_both_refuse(void **state)
{
    gh_throttle_rec_t acct, ad;
    gh_throttle_verdict_t v;

    memset(&acct, 0, sizeof acct);
    memset(&ad, 0, sizeof ad);
    acct.fails = 5;
    acct.until = T0 + 2 * S;
    ad.since = T0;
    ad.fails = C.addr_limit;
    gh_throttle_judge(&C, &acct, &ad, T0, &v);
    assert_false(v.allowed);
    assert_string_equal(v.why, "account_backoff");
    assert_int_equal(v.retry_after, 600);
}

/* ---- in the store ---- */

static void
begin_counts_before_evaluation_so_parallel_guesses_stop(void **state)
{
    fixture_t *f = *state;
    gh_throttle_verdict_t v;
    gh_throttle_rec_t r;
    gh_addr_t a = addr("192.0.2.7");
    int i;

    /* five guesses "in flight" at once: each is counted as it starts */
    for (i = 1; i <= 5; i++) {
        assert_int_equal(gh_throttle_begin(f->st, &C, "victim@example.com", &a,
                                           T0, &v), 0);
        assert_true(v.allowed);
        assert_int_equal(v.failures, i);
    }
    assert_int_equal(gh_throttle_begin(f->st, &C, "victim@example.com", &a,
                                       T0 + 1, &v), 0);
    assert_false(v.allowed);
    assert_int_equal(gh_throttle_account(f->st, "victim@example.com", &r), 0);
    assert_int_equal(r.fails, 5);
    /* unlock forgets it */
    assert_int_equal(gh_throttle_unlock(f->st, "victim@example.com"), 0);
    assert_int_equal(gh_throttle_account(f->st, "victim@example.com", &r),
                     GH_ENOTFOUND);
    assert_int_equal(gh_throttle_unlock(f->st, "victim@example.com"),
                     GH_ENOTFOUND);
    assert_int_equal(gh_throttle_begin(f->st, &C, "victim@example.com", &a,
                                       T0 + 2, &v), 0);
    assert_true(v.allowed);
    assert_int_equal(v.failures, 1);
}

static void
success_in_the_store_deletes_the_account_record(void **state)
{
    fixture_t *f = *state;
    gh_throttle_verdict_t v;
    gh_throttle_rec_t r;
    gh_addr_t a = addr("2001:db8::1");

    assert_int_equal(gh_throttle_begin(f->st, &C, "u@example.com", &a, T0, &v),
                     0);
    assert_int_equal(gh_throttle_success(f->st, &C, "u@example.com", &a, T0),
                     0);
    assert_int_equal(gh_throttle_account(f->st, "u@example.com", &r),
                     GH_ENOTFOUND);
}

static void
an_ipv6_slash64_shares_one_counter(void **state)
{
    fixture_t *f = *state;
    gh_throttle_verdict_t v;
    char text[64];
    gh_addr_t a;
    unsigned i;

    C.addr_limit = 3;
    for (i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "2001:db8:1:2::%x", i + 1);
        a = addr(text);
        assert_int_equal(gh_throttle_begin(f->st, &C, NULL, &a, T0, &v), 0);
        assert_true(v.allowed);
    }
    a = addr("2001:db8:1:2:ffff::9");
    assert_int_equal(gh_throttle_begin(f->st, &C, NULL, &a, T0, &v), 0);
    assert_false(v.allowed);
    a = addr("2001:db8:1:3::1");               /* another /64 */
    assert_int_equal(gh_throttle_begin(f->st, &C, NULL, &a, T0, &v), 0);
    assert_true(v.allowed);
    /* IPv4 addresses are each their own */
    a = addr("192.0.2.1");
    for (i = 0; i < 3; i++)
        assert_int_equal(gh_throttle_begin(f->st, &C, NULL, &a, T0, &v), 0);
    a = addr("192.0.2.2");
    assert_int_equal(gh_throttle_begin(f->st, &C, NULL, &a, T0, &v), 0);
    assert_true(v.allowed);
}

static void
stale_records_are_swept(void **state)
{
    fixture_t *f = *state;
    gh_throttle_verdict_t v;
    gh_throttle_rec_t r;
    char email[64];
    int i, left = 0;

    /* a spray: one failure each for 40 addresses that do not exist */
    for (i = 0; i < 40; i++) {
        snprintf(email, sizeof email, "nobody%d@example.com", i);
        assert_int_equal(gh_throttle_begin(f->st, &C, email, NULL, T0, &v), 0);
    }
    /* two days later, later writes clean them up, a few at a time */
    for (i = 0; i < 40; i++)
        assert_int_equal(gh_throttle_begin(f->st, &C, "someone@example.com",
                                           NULL, T0 + 48 * 3600 * S, &v), 0);
    for (i = 0; i < 40; i++) {
        snprintf(email, sizeof email, "nobody%d@example.com", i);
        left += gh_throttle_account(f->st, email, &r) == 0;
    }
    assert_true(left < 10);
}

static void
bad_arguments_are_refused(void **state)
{
    fixture_t *f = *state;
    gh_throttle_verdict_t v;
    gh_throttle_key_t k = { 'z', "x", 1 };
    gh_throttle_rec_t r;
    char long_email[300];

    assert_int_equal(gh_throttle_get(f->st, &k, &r), GH_EINVAL);
    memset(long_email, 'a', sizeof long_email - 1);
    long_email[sizeof long_email - 1] = '\0';
    assert_int_equal(gh_throttle_begin(f->st, &C, long_email, NULL, T0, &v),
                     GH_EINVAL);
    assert_int_equal(gh_throttle_unlock(f->st, ""), GH_EINVAL);
    /* nothing to count: allowed */
    assert_int_equal(gh_throttle_begin(f->st, &C, NULL, NULL, T0, &v), 0);
    assert_true(v.allowed);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(defaults_are_the_documented_numbers),
        T(backoff_doubles_from_the_fifth_failure_and_caps),
        T(five_failures_then_refused_without_evaluation),
        T(success_resets_the_account),
        T(lockout_after_n_failures_holds_until_unlocked),
        T(small_counts_are_forgotten_after_a_quiet_day),
        T(address_window_limits_failures_across_accounts),
        T(the_longer_wait_wins_when_both_refuse),
        T(begin_counts_before_evaluation_so_parallel_guesses_stop),
        T(success_in_the_store_deletes_the_account_record),
        T(an_ipv6_slash64_shares_one_counter),
        T(stale_records_are_swept),
        T(bad_arguments_are_refused),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
