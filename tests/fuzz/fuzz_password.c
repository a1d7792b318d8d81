/* Fuzz password and email input (authn/pwpolicy.c, authn/unicode.c,
 * core/util.c): what the login and change-password forms hand to the
 * library before any hashing. Properties: canonical and folded forms stay
 * within a bounded growth; a folded form is idempotent; the policy check
 * gives a verdict (never a crash) for any bytes; a normalised email is
 * itself normal. */
#include <string.h>

#include "fuzz.h"
#include "gatehouse/error.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *c = NULL, *f = NULL, *f2 = NULL;
    size_t cl = 0, fl = 0, fl2 = 0;
    char email[GH_EMAIL_MAX + 1], email2[GH_EMAIL_MAX + 1];
    gh_pwsettings_t set;
    gh_pwpolicy_t pol;
    gh_pwcontext_t cx;
    gh_verdict_t v;
    int rc;

    if (size > 4096)
        return 0;
    if (gh_pw_canonical(s, size, &c, &cl) == 0) {
        FUZZ_CHECK(c != NULL);
        gh_pw_free(c, cl);
    }
    if (gh_pw_fold(s, size, &f, &fl) == 0) {
        FUZZ_CHECK(f != NULL);
        FUZZ_CHECK(memchr(f, '\0', fl) == NULL);
        rc = gh_pw_fold(f, fl, &f2, &fl2);
        FUZZ_CHECK(rc == 0 && fl2 == fl && memcmp(f, f2, fl) == 0);
        gh_pw_free(f2, fl2);
        gh_pw_free(f, fl);
    }

    memset(&set, 0, sizeof set);
    gh_pwpolicy_resolve(&set, 0, &pol);
    pol.blocklist = 0;
    memset(&cx, 0, sizeof cx);
    cx.email = "alice@example.com";
    cx.name = "Alice Example";
    cx.tenant = "demo";
    rc = gh_pwpolicy_check(&pol, NULL, s, size, &cx, &v);
    FUZZ_CHECK(rc == 0 || rc == GH_EDENIED);
    FUZZ_CHECK((rc == 0) == (v.n == 0));

    if (gh_email_normalize(s, size, email) == 0) {
        FUZZ_CHECK(gh_email_normalize(email, strlen(email), email2) == 0);
        FUZZ_CHECK(strcmp(email, email2) == 0);
    }
    return 0;
}
