/* Unit tests for authn/pwpolicy.c, authn/blocklist.c and authn/unicode.c:
 * profiles, parameters, the blocklist, Unicode, context, history and the
 * verdict sentences. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/password.h"
#include "gatehouse/pwpolicy.h"

static gh_blocklist_t *bl;          /* john-data + a small operator file */
static char extra_path[64];

static int
group_setup(void **state)
{
    const char *paths[2];
    char err[256];
    FILE *f;
    int fd;

    strcpy(extra_path, "/tmp/gh-test-blocklist-XXXXXX");
    fd = mkstemp(extra_path);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
        return -1;
    fputs("#!comment: an operator's list\n"
          "Acme Rocket Sled 2024\n"
          "\n"
          "Grüße aus Köln\n"          /* precomposed */
          "\xff\xfe not utf-8\n"
          "correcthorsebatterystaple\r\n", f);
    fclose(f);
    paths[0] = GH_BLOCKLIST_DEFAULT;
    paths[1] = extra_path;
    return gh_blocklist_load(&bl, paths, 2, err, sizeof err) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
    gh_blocklist_free(bl);
    unlink(extra_path);
    return 0;
}

/* A password of n code points: "a" repeated, with a middle that keeps it
 * out of any list. */
static char *
pw_of(unsigned n, const char *unit)
{
    size_t u = strlen(unit);
    char *s = malloc(n * u + 1);
    unsigned i;

    for (i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[n * u] = '\0';
    return s;
}

static int
check(const gh_pwpolicy_t *p, const char *pw, const gh_pwcontext_t *cx,
      gh_verdict_t *v)
{
    return gh_pwpolicy_check(p, bl, pw, strlen(pw), cx, v);
}

static void
policy(int profile, int mfa, gh_pwpolicy_t *p)
{
    gh_pwsettings_t s;

    gh_pwsettings_default(&s);
    s.profile = profile;
    gh_pwpolicy_resolve(&s, mfa, p);
}

/* ---- profiles and parameters ---- */

static void
profile_defaults_are_as_documented(void **state)
{
    gh_pwpolicy_t p;

    policy(GH_PWPROFILE_NIST, 0, &p);
    assert_int_equal(p.min_length, 15);
    assert_int_equal(p.max_length, 256);
    assert_int_equal(p.min_classes, 0);
    assert_int_equal(p.history, 5);
    assert_int_equal(p.max_age_days, 0);
    assert_int_equal(p.blocklist, 1);
    policy(GH_PWPROFILE_NIST, 1, &p);
    assert_int_equal(p.min_length, 8);
    policy(GH_PWPROFILE_CLASSES, 0, &p);
    assert_int_equal(p.min_length, 8);
    assert_int_equal(p.min_classes, 3);
    assert_int_equal(p.blocklist, 1);
    policy(GH_PWPROFILE_CLASSES, 1, &p);
    assert_int_equal(p.min_length, 8);
    gh_pwpolicy_resolve(NULL, 0, &p);
    assert_int_equal(p.profile, GH_PWPROFILE_NIST);
    assert_string_equal(gh_pwprofile_name(GH_PWPROFILE_CLASSES), "classes");
    assert_int_equal(gh_pwprofile_parse("nist"), GH_PWPROFILE_NIST);
    assert_int_equal(gh_pwprofile_parse("NIST"), -1);
    assert_null(gh_pwprofile_name(7));
}

static void
each_parameter_overrides_its_profile(void **state)
{
    gh_pwsettings_t s;
    gh_pwpolicy_t p;

    gh_pwsettings_default(&s);
    s.min_length = 20;
    s.max_length = 64;
    s.min_classes = 2;
    s.history = 0;
    s.max_age_days = 90;
    s.blocklist = 0;
    gh_pwpolicy_resolve(&s, 1, &p);   /* an override beats MFA's 8 too */
    assert_int_equal(p.min_length, 20);
    assert_int_equal(p.max_length, 64);
    assert_int_equal(p.min_classes, 2);
    assert_int_equal(p.history, 0);
    assert_int_equal(p.max_age_days, 90);
    assert_int_equal(p.blocklist, 0);
}

static void
settings_out_of_range_are_refused(void **state)
{
    gh_pwsettings_t s;
    char err[128];

    gh_pwsettings_default(&s);
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), 0);
    s.min_length = 7;                                     /* below 8 */
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    assert_non_null(strstr(err, "minimum length"));
    gh_pwsettings_default(&s);
    s.max_length = 63;                                    /* NIST: >= 64 */
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    s.max_length = 257;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    gh_pwsettings_default(&s);
    s.min_classes = 5;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    gh_pwsettings_default(&s);
    s.history = 25;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    gh_pwsettings_default(&s);
    s.max_age_days = 3651;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    gh_pwsettings_default(&s);
    s.blocklist = 2;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    gh_pwsettings_default(&s);
    s.min_length = 100;
    s.max_length = 64;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
    assert_non_null(strstr(err, "above the maximum"));
    gh_pwsettings_default(&s);
    s.profile = 9;
    assert_int_equal(gh_pwsettings_check(&s, 0, err, sizeof err), GH_EINVAL);
}

static void
description_names_every_rule(void **state)
{
    gh_pwpolicy_t p;
    char d[256];

    policy(GH_PWPROFILE_CLASSES, 0, &p);
    gh_pwpolicy_describe(&p, d, sizeof d);
    assert_string_equal(d, "classes: 8 to 256 characters with at least 3 of: "
                        "lower case, upper case, digits, others, blocklist "
                        "on, no reuse of the last 5, no expiry");
    policy(GH_PWPROFILE_NIST, 0, &p);
    p.max_age_days = 30;
    p.history = 0;
    gh_pwpolicy_describe(&p, d, sizeof d);
    assert_string_equal(d, "nist: 15 to 256 characters, blocklist on, no "
                        "history, expires after 30 days");
}

/* ---- lengths: the table of the issue ---- */

static void
lengths_table_for_both_profiles(void **state)
{
    static const struct {
        int      profile, mfa;
        unsigned len;
        int      ok;
    } t[] = {
        { GH_PWPROFILE_NIST, 0,   7, 0 }, { GH_PWPROFILE_NIST, 0,   8, 0 },
        { GH_PWPROFILE_NIST, 0,  14, 0 }, { GH_PWPROFILE_NIST, 0,  15, 1 },
        { GH_PWPROFILE_NIST, 0,  64, 1 }, { GH_PWPROFILE_NIST, 0, 256, 1 },
        { GH_PWPROFILE_NIST, 0, 257, 0 },
        { GH_PWPROFILE_NIST, 1,   7, 0 }, { GH_PWPROFILE_NIST, 1,   8, 1 },
        { GH_PWPROFILE_NIST, 1,  14, 1 }, { GH_PWPROFILE_NIST, 1,  15, 1 },
        { GH_PWPROFILE_NIST, 1,  64, 1 }, { GH_PWPROFILE_NIST, 1, 256, 1 },
        { GH_PWPROFILE_NIST, 1, 257, 0 },
        { GH_PWPROFILE_CLASSES, 0,   7, 0 }, { GH_PWPROFILE_CLASSES, 0,   8, 1 },
        { GH_PWPROFILE_CLASSES, 0,  14, 1 }, { GH_PWPROFILE_CLASSES, 0,  15, 1 },
        { GH_PWPROFILE_CLASSES, 0,  64, 1 }, { GH_PWPROFILE_CLASSES, 0, 256, 1 },
        { GH_PWPROFILE_CLASSES, 0, 257, 0 },
    };
    gh_pwpolicy_t p;
    gh_verdict_t v;
    char want[96];
    size_t i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        /* "Xy7" repeated and cut: three classes, no list word */
        char *pw = pw_of(t[i].len, "x");
        unsigned k;

        for (k = 0; k < t[i].len; k++)
            pw[k] = "Xy7q"[k % 4];
        policy(t[i].profile, t[i].mfa, &p);
        assert_int_equal(check(&p, pw, NULL, &v), t[i].ok ? 0 : GH_EDENIED);
        if (!t[i].ok) {
            assert_int_equal(v.n, 1);
            if (t[i].len < p.min_length) {
                snprintf(want, sizeof want, "too short: %u of at least %u "
                         "characters", t[i].len, p.min_length);
                assert_int_equal(v.rules, GH_PWR_SHORT);
            } else {
                snprintf(want, sizeof want, "too long: %u of at most 256 "
                         "characters", t[i].len);
                assert_int_equal(v.rules, GH_PWR_LONG);
            }
            assert_string_equal(v.text[0], want);
        } else {
            assert_int_equal(v.n, 0);
        }
        free(pw);
    }
}

/* ---- Unicode ---- */

static void
length_counts_code_points_after_nfc(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;
    char *pre = pw_of(14, "\xc3\xa9");        /* é precomposed, 14 x */
    char *dec = pw_of(14, "e\xcc\x81");       /* e + combining acute */
    char *emoji = pw_of(15, "\xf0\x9f\x94\x91");   /* 🔑 */
    char *c1, *c2;
    size_t n1, n2;

    policy(GH_PWPROFILE_NIST, 0, &p);
    /* decomposed, 28 code points as typed, 14 after NFC: too short, as
     * the precomposed spelling */
    assert_int_equal(check(&p, pre, NULL, &v), GH_EDENIED);
    assert_string_equal(v.text[0], "too short: 14 of at least 15 characters");
    assert_int_equal(check(&p, dec, NULL, &v), GH_EDENIED);
    assert_string_equal(v.text[0], "too short: 14 of at least 15 characters");
    /* 15 four-byte emoji are 15 characters */
    assert_int_equal(check(&p, emoji, NULL, &v), 0);
    /* both spellings hash to the same bytes */
    assert_int_equal(gh_pw_canonical(pre, strlen(pre), &c1, &n1), 0);
    assert_int_equal(gh_pw_canonical(dec, strlen(dec), &c2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c2, n1);
    gh_pw_free(c1, n1);
    gh_pw_free(c2, n2);
    free(pre);
    free(dec);
    free(emoji);
}

static void
emoji_sequence_counts_each_code_point(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;
    /* family: man ZWJ woman ZWJ girl = 5 code points, one glyph; x3 = 15 */
    char *fam = pw_of(3, "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9"
                         "\xe2\x80\x8d\xf0\x9f\x91\xa7");

    policy(GH_PWPROFILE_NIST, 0, &p);
    assert_int_equal(check(&p, fam, NULL, &v), 0);
    free(fam);
}

static void
invalid_utf8_is_refused_with_a_clear_message(void **state)
{
    static const char *const bad[] = {
        "correct horse \xff battery",
        "overlong \xc0\xaf slash here",
        "surrogate \xed\xa0\x80 inside it",
        "truncated at the end \xe2\x82",
    };
    gh_pwpolicy_t p;
    gh_verdict_t v;
    char *c;
    size_t i, n;

    policy(GH_PWPROFILE_NIST, 0, &p);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(check(&p, bad[i], NULL, &v), GH_EDENIED);
        assert_int_equal(v.rules, GH_PWR_UTF8);
        assert_string_equal(v.text[0], "not valid UTF-8 text");
    }
    /* a login may still try such bytes as they are */
    assert_int_equal(gh_pw_canonical(bad[0], strlen(bad[0]), &c, &n), 0);
    assert_int_equal(n, strlen(bad[0]));
    assert_memory_equal(c, bad[0], n);
    gh_pw_free(c, n);
}

static void
control_characters_are_refused_spaces_are_not(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;
    static const char nul[] = "sixteen chars\0abc";

    policy(GH_PWPROFILE_NIST, 0, &p);
    assert_int_equal(check(&p, "tab\tinside a long phrase", NULL, &v),
                     GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_CONTROL);
    assert_string_equal(v.text[0], "contains control characters");
    assert_int_equal(check(&p, "c1 control \xc2\x85 in a phrase", NULL, &v),
                     GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_CONTROL);
    assert_int_equal(gh_pwpolicy_check(&p, bl, nul, sizeof nul - 1, NULL, &v),
                     GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_CONTROL);
    assert_int_equal(check(&p, "   spaces   are   fine   ", NULL, &v), 0);
    assert_int_equal(check(&p, "ünïcödé wörds ärë fïnë", NULL, &v), 0);
}

/* ---- classes ---- */

static void
each_class_combination(void **state)
{
    /* one sample per class: lower, upper, digit, other */
    static const char *const sample[4] = { "abcd", "WXYZ", "2468", "!#%&" };
    gh_pwpolicy_t p;
    gh_verdict_t v;
    char pw[40], want[128];
    unsigned mask, k, n;

    policy(GH_PWPROFILE_CLASSES, 0, &p);
    for (mask = 1; mask < 16; mask++) {
        pw[0] = '\0';
        n = 0;
        for (k = 0; k < 4; k++) {
            if (mask & (1u << k)) {
                strcat(pw, sample[k]);
                strcat(pw, sample[k]);   /* 8 per class: long enough */
                n++;
            }
        }
        if (n >= 3) {
            assert_int_equal(check(&p, pw, NULL, &v), 0);
        } else {
            assert_int_equal(check(&p, pw, NULL, &v), GH_EDENIED);
            assert_true(v.rules & GH_PWR_CLASSES);
            snprintf(want, sizeof want, "too few kinds of characters: %u of "
                     "at least 3 (lower case, upper case, digits, others)", n);
            assert_string_equal(v.text[v.n - 1 - ((v.rules & GH_PWR_BLOCKLIST)
                                                  ? 1 : 0)], want);
        }
    }
    /* the nist profile has no composition rule */
    policy(GH_PWPROFILE_NIST, 0, &p);
    assert_int_equal(check(&p, "all lower case words here", NULL, &v), 0);
}

static void
unicode_letters_have_their_class(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;

    policy(GH_PWPROFILE_CLASSES, 0, &p);
    /* Ä (upper) ö (lower) ٣ (Arabic-Indic digit): three classes */
    assert_int_equal(check(&p, "\xc3\x84\xc3\xb6\xd9\xa3\xc3\x84\xc3\xb6"
                               "\xd9\xa3xx", NULL, &v), 0);
    /* CJK letters have no case: "other" */
    assert_int_equal(check(&p, "\xe6\x97\xa5\xe6\x9c\xac" "abcDEF", NULL, &v),
                     0);
}

/* ---- the blocklist ---- */

static void
blocklist_is_loaded_and_answers_fast(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;
    int i, hits = 0;

    assert_true(gh_blocklist_size(bl) > 3000);
    assert_true(gh_blocklist_contains(bl, "password", 8));
    assert_true(gh_blocklist_contains(bl, "PassWord", 8));       /* case */
    assert_true(gh_blocklist_contains(bl, "123456", 6));
    assert_false(gh_blocklist_contains(bl, "#!comment:", 10));
    assert_false(gh_blocklist_contains(bl, "not a listed phrase at all", 26));
    for (i = 0; i < 100000; i++)
        hits += gh_blocklist_contains(bl, "iloveyou", 8);
    assert_int_equal(hits, 100000);
    policy(GH_PWPROFILE_CLASSES, 0, &p);
    assert_int_equal(check(&p, "Password1", NULL, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_BLOCKLIST);
    assert_string_equal(v.text[0], "found in a list of common passwords");
}

static void
blocklist_core_catches_decorated_entries(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;

    policy(GH_PWPROFILE_NIST, 0, &p);
    assert_int_equal(check(&p, "Password123456789!", NULL, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_BLOCKLIST);
    assert_int_equal(check(&p, "!!!!!!monkey!!!!!!!!", NULL, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_BLOCKLIST);
    /* a short core is not looked up ("abc" inside digits is a password
     * of its own) */
    assert_false(gh_blocklist_contains(bl, "12345abc67890", 13));
}

static void
operator_blocklist_entries_count_too(void **state)
{
    gh_pwpolicy_t p;
    gh_verdict_t v;

    policy(GH_PWPROFILE_NIST, 0, &p);
    assert_int_equal(check(&p, "acme rocket sled 2024", NULL, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_BLOCKLIST);
    /* listed precomposed, typed decomposed and upper-case */
    assert_int_equal(check(&p, "GRU\xcc\x88SSE AUS KO\xcc\x88LN", NULL, &v),
                     GH_EDENIED);
    assert_true(v.rules & GH_PWR_BLOCKLIST);
    assert_true(gh_blocklist_contains(bl, "CorrectHorseBatteryStaple", 25));
    /* the blocklist can be turned off */
    p.blocklist = 0;
    assert_int_equal(gh_pwpolicy_check(&p, NULL, "acme rocket sled 2024", 21,
                                       NULL, &v), 0);
    p.blocklist = 1;
    assert_int_equal(gh_pwpolicy_check(&p, NULL, "acme rocket sled 2024", 21,
                                       NULL, &v), GH_EINVAL);
}

static void
missing_blocklist_file_is_an_error(void **state)
{
    const char *paths[] = { "/nonexistent/list.txt" };
    gh_blocklist_t *b = NULL;
    char err[256];

    assert_int_equal(gh_blocklist_load(&b, paths, 1, err, sizeof err), GH_EIO);
    assert_null(b);
    assert_non_null(strstr(err, "/nonexistent/list.txt"));
}

/* ---- context ---- */

static void
context_words_are_refused(void **state)
{
    gh_pwcontext_t cx = { "alice.smith@example.com", "Alice Smith", "acme-corp",
                          "Acme Corporation", NULL };
    gh_pwpolicy_t p;
    gh_verdict_t v;

    policy(GH_PWPROFILE_NIST, 1, &p);   /* min 8 */
    assert_int_equal(check(&p, "alice.smith", &cx, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_EMAIL | GH_PWR_NAME);
    assert_string_equal(v.text[0], "contains your email name");
    assert_string_equal(v.text[1], "contains your name");
    assert_int_equal(check(&p, "AliceSmith2024!", &cx, &v), GH_EDENIED);
    assert_true(v.rules & GH_PWR_EMAIL);
    assert_int_equal(check(&p, "smith12345678", &cx, &v), GH_EDENIED);
    assert_true(v.rules & GH_PWR_NAME);
    assert_int_equal(check(&p, "Acme Corporation!", &cx, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_TENANT);
    assert_string_equal(v.text[0], "contains the organisation's name");
    assert_int_equal(check(&p, "acme-corp-2024", &cx, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_TENANT);
    /* a word that merely appears inside a longer phrase is fine */
    assert_int_equal(check(&p, "alice went to the smithy", &cx, &v), 0);
    /* parts shorter than three characters are not context */
    cx.name = "Al Bo";
    assert_int_equal(check(&p, "albo albo albo", &cx, &v), 0);
}

static void
every_failed_rule_is_listed_and_joined(void **state)
{
    gh_pwcontext_t cx = { "password@example.com", NULL, "demo", "Demo", NULL };
    gh_pwpolicy_t p;
    gh_verdict_t v;
    char line[512];

    policy(GH_PWPROFILE_CLASSES, 0, &p);
    p.min_length = 12;
    assert_int_equal(check(&p, "password", &cx, &v), GH_EDENIED);
    assert_int_equal(v.rules, GH_PWR_SHORT | GH_PWR_CLASSES | GH_PWR_BLOCKLIST |
                     GH_PWR_EMAIL);
    gh_verdict_join(&v, line, sizeof line);
    assert_string_equal(line, "too short: 8 of at least 12 characters; too few "
                        "kinds of characters: 1 of at least 3 (lower case, "
                        "upper case, digits, others); found in a list of "
                        "common passwords; contains your email name");
    /* truncated at a sentence boundary, never mid-sentence */
    gh_verdict_join(&v, line, 60);
    assert_string_equal(line, "too short: 8 of at least 12 characters");
}

/* ---- history ---- */

static void
history_refuses_the_last_n(void **state)
{
    static const gh_pwhash_params_t cheap = { 1, 8u * 1024 * 1024 };
    static const char *const old[] = {
        "current pass phrase", "previous pass phrase", "older pass phrase",
        "oldest pass phrase" };
    gh_credential_t *c = calloc(1, sizeof *c);
    gh_pwcontext_t cx = { NULL, NULL, NULL, NULL, c };
    gh_pwpolicy_t p;
    gh_verdict_t v;
    unsigned i;

    assert_non_null(c);
    assert_int_equal(gh_password_hash(&cheap, old[0], strlen(old[0]), c->hash),
                     0);
    for (i = 1; i < 4; i++)
        assert_int_equal(gh_password_hash(&cheap, old[i], strlen(old[i]),
                                          c->history[i - 1]), 0);
    c->nhistory = 3;

    policy(GH_PWPROFILE_NIST, 0, &p);
    p.history = 3;          /* the current one and the two before it */
    assert_int_equal(check(&p, old[0], &cx, &v), GH_EDENIED);
    assert_string_equal(v.text[0], "used before (one of your last 3 passwords)");
    assert_int_equal(check(&p, old[2], &cx, &v), GH_EDENIED);
    assert_int_equal(check(&p, old[3], &cx, &v), 0);   /* 4th: forgotten */
    assert_int_equal(check(&p, "a brand new pass phrase", &cx, &v), 0);
    p.history = 1;
    assert_int_equal(check(&p, old[0], &cx, &v), GH_EDENIED);
    assert_string_equal(v.text[0], "the same as your current password");
    assert_int_equal(check(&p, old[1], &cx, &v), 0);
    p.history = 0;
    assert_int_equal(check(&p, old[0], &cx, &v), 0);
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(profile_defaults_are_as_documented),
        cmocka_unit_test(each_parameter_overrides_its_profile),
        cmocka_unit_test(settings_out_of_range_are_refused),
        cmocka_unit_test(description_names_every_rule),
        cmocka_unit_test(lengths_table_for_both_profiles),
        cmocka_unit_test(length_counts_code_points_after_nfc),
        cmocka_unit_test(emoji_sequence_counts_each_code_point),
        cmocka_unit_test(invalid_utf8_is_refused_with_a_clear_message),
        cmocka_unit_test(control_characters_are_refused_spaces_are_not),
        cmocka_unit_test(each_class_combination),
        cmocka_unit_test(unicode_letters_have_their_class),
        cmocka_unit_test(blocklist_is_loaded_and_answers_fast),
        cmocka_unit_test(blocklist_core_catches_decorated_entries),
        cmocka_unit_test(operator_blocklist_entries_count_too),
        cmocka_unit_test(missing_blocklist_file_is_an_error),
        cmocka_unit_test(context_words_are_refused),
        cmocka_unit_test(every_failed_rule_is_listed_and_joined),
        cmocka_unit_test(history_refuses_the_last_n),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
