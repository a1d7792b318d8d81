/* gh_path_canonical: the decided path is the proxied path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/path.h"

static void plain_and_encoded_paths_decode(void **state)
{
    static const struct { const char *raw, *want; } ok[] = {
        { "/", "/" },
        { "/a/b/c", "/a/b/c" },
        { "/a%20b", "/a b" },
        { "/caf%C3%A9", "/caf\xc3\xa9" },
        { "/a.b/c..d/.e", "/a.b/c..d/.e" },
        { "/x/", "/x/" },
        { "/ADMIN", "/ADMIN" },
    };
    char out[64];
    size_t n, i;
    const char *why;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(gh_path_canonical(ok[i].raw, strlen(ok[i].raw), out,
                                           sizeof out, &n, &why), 0);
        assert_string_equal(out, ok[i].want);
        assert_int_equal(n, strlen(ok[i].want));
    }
}

static void ambiguous_paths_refused(void **state)
{
    static const char *bad[] = {
        "", "admin", "/x/../admin", "/%2e%2e/admin", "/%2E/admin",
        "/.%2e/admin", "//admin", "/admin%2F", "/admin%2fx", "/a%5cb",
        "/a\\b", "/a%00b", "/a/./b", "/a/.", "/a/..", "/.", "/..",
        "/a%", "/a%4", "/a%zz", "/a\tb", "/a\rb", "/a\nb", "/a%0ab",
        "/a%7f", "/a//b", "/admin;x", "/admin%3bx", "/a;b=c/d",
    };
    char out[64];
    size_t n, i;
    const char *why;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(gh_path_canonical(bad[i], strlen(bad[i]), out,
                                           sizeof out, &n, &why), GH_EINVAL);
        assert_non_null(why);
    }
}

static void overlong_path_refused(void **state)
{
    char raw[GH_PATH_MAX + 2], out[GH_PATH_MAX + 8];
    size_t n;
    const char *why;

    (void)state;
    memset(raw, 'a', sizeof raw);
    raw[0] = '/';
    assert_int_equal(gh_path_canonical(raw, GH_PATH_MAX + 1, out, sizeof out,
                                       &n, &why), GH_ETOOBIG);
    /* an output buffer too small is refused, never overrun */
    assert_int_equal(gh_path_canonical("/abcdef", 7, out, 4, &n, &why),
                     GH_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_and_encoded_paths_decode),
        cmocka_unit_test(ambiguous_paths_refused),
        cmocka_unit_test(overlong_path_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
