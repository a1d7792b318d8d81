/* Unit tests for authn/redirect.c: the post-login `rd` target check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "gatehouse/redirect.h"

static const char *const hosts[] = {
    "allowed.example",
    "ported.example:8443",
    "explicit443.example:443",
};
#define NHOSTS (sizeof hosts / sizeof hosts[0])

static int
ok(const char *rd)
{
    return gh_redirect_ok(rd, strlen(rd), hosts, NHOSTS);
}

static void
hostile_targets_are_refused(void **state)
{
    static const char *const bad[] = {
        "//evil.example",
        "https://evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil",
        "http:evil",
        "%2F%2Fevil",
        "/%2F%2Fevil",
        "/%2f%2fevil",
        "/%5cevil",
        "/%5Cevil",
        "/a\tb",
        "/a\rb",
        "/a\nb",
        "/a b",
        "/a\x7f" "b",
        "/a\xc3\xa9",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,x",
        "https://allowed.example@evil.example/",
        "https://user@allowed.example/",
        "https://allowed.example.evil.example/",
        "https://evil.example/allowed.example",
        "https://allowed.example./",
        "https://xallowed.example/",
        "http://allowed.example/",
        "https:/allowed.example/",
        "https:allowed.example/",
        "https://allowed.example\\@evil.example/",
        "https://allowed.example%2f@evil.example/",
        "https://allowed.example%2F.evil.example/",
        "https://allowed.example?@evil.example/",
        "https://allowed.example#@evil.example/",
        "https://allowed.example:/",
        "https://allowed.example:0/",
        "https://allowed.example:65536/",
        "https://allowed.example:123456/",
        "https://allowed.example:8443/",   /* entry has no port: 443 only */
        "https://ported.example/",         /* entry requires :8443 */
        "https://ported.example:443/",
        "https://[::1]/",
        "https://allowed.example//evil.example",
        "https://allowed.example/%2f%2fevil",
        "/./",
        "/.//evil.example",
        "/a/../b",
        "/a/..",
        "/%2e/x",
        "/a//b",
        "",
        "evil.example",
        "?x=1",
        "#f",
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ok(bad[i])) {
            print_error("accepted hostile rd: \"%s\"\n", bad[i]);
            fail();
        }
    }
}

static void
embedded_nul_is_refused(void **state)
{
    static const char rd[] = "/a\0//evil";

    assert_false(gh_redirect_ok(rd, sizeof rd - 1, hosts, NHOSTS));
}

static void
same_origin_paths_are_accepted(void **state)
{
    static const char *const good[] = {
        "/",
        "/app?x=1#f",
        "/a/b/c",
        "/a/b/c/",
        "/?next=//evil.example",          /* query is data, not a path */
        "/a#//x",
        "/.well-known/x",
        "/...",
        "/a%2fb",
        "/%41",
    };
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!ok(good[i])) {
            print_error("refused good rd: \"%s\"\n", good[i]);
            fail();
        }
    }
}

static void
allowed_absolute_urls_are_accepted(void **state)
{
    static const char *const good[] = {
        "https://allowed.example/x",
        "https://allowed.example",
        "https://allowed.example/",
        "https://allowed.example:443/x",
        "https://ported.example:8443/x",
        "https://explicit443.example/x",
        "https://explicit443.example:443/x",
        "https://allowed.example/x?y=https://evil.example",
    };
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!ok(good[i])) {
            print_error("refused good rd: \"%s\"\n", good[i]);
            fail();
        }
    }
}

/* RFC 3986: scheme and host are case-insensitive; browsers fold them. */
static void
scheme_and_host_compare_case_insensitively(void **state)
{
    assert_true(ok("HTTPS://ALLOWED.EXAMPLE/ok"));
    assert_true(ok("hTtPs://Allowed.Example/ok"));
    assert_true(ok("https://PORTED.example:8443/"));
}

static void
absolute_url_refused_when_allow_list_empty(void **state)
{
    assert_false(gh_redirect_ok("https://allowed.example/", 24, NULL, 0));
    assert_true(gh_redirect_ok("/x", 2, NULL, 0));
}

static void
malformed_allow_list_entries_match_nothing(void **state)
{
    static const char *const weird[] = {
        NULL, "", "https://allowed.example", "allowed.example/", "*.example",
        "allowed.example:", "allowed.example:99999",
    };
    const char *rd = "https://allowed.example/";

    assert_false(gh_redirect_ok(rd, strlen(rd), weird,
                                sizeof weird / sizeof weird[0]));
}

static void
length_limit_is_gh_rd_max(void **state)
{
    char buf[GH_RD_MAX + 2];

    memset(buf, 'a', sizeof buf);
    buf[0] = '/';
    assert_true(gh_redirect_ok(buf, GH_RD_MAX, hosts, NHOSTS));
    assert_false(gh_redirect_ok(buf, GH_RD_MAX + 1, hosts, NHOSTS));
}

static void
null_input_is_refused(void **state)
{
    assert_false(gh_redirect_ok(NULL, 0, hosts, NHOSTS));
    assert_false(gh_redirect_ok(NULL, 5, hosts, NHOSTS));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostile_targets_are_refused),
        cmocka_unit_test(embedded_nul_is_refused),
        cmocka_unit_test(same_origin_paths_are_accepted),
        cmocka_unit_test(allowed_absolute_urls_are_accepted),
        cmocka_unit_test(scheme_and_host_compare_case_insensitively),
        cmocka_unit_test(absolute_url_refused_when_allow_list_empty),
        cmocka_unit_test(malformed_allow_list_entries_match_nothing),
        cmocka_unit_test(length_limit_is_gh_rd_max),
        cmocka_unit_test(null_input_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
