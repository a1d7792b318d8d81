/* Unit tests for the SAML checks that are ours (authn/saml.c): DOCTYPE
 * refusal before parsing, xs:dateTime parsing, the validity window with
 * skew, the signature and digest algorithms (SHA-1 only when allowed), the
 * tenant's sign-in setting, and the store primitive that consumes a
 * request id once and accepts an assertion id once. */
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
#include "gatehouse/saml.h"
#include "gatehouse/store.h"

#define S(x) (x), strlen(x)

static void test_doctype_and_entities_refused(void **state)
{
    (void)state;
    assert_int_equal(gh_saml_doc_safe(S("<samlp:Response/>")), 0);
    assert_int_equal(gh_saml_doc_safe(S("<?xml version=\"1.0\"?>\n<a/>")), 0);
    assert_int_equal(gh_saml_doc_safe(S("\xEF\xBB\xBF <a><!-- c --></a>")), 0);
    assert_int_equal(gh_saml_doc_safe(S("<a><![CDATA[x]]></a>")), 0);
    assert_int_equal(gh_saml_doc_safe(S("<!DOCTYPE a><a/>")), GH_EDENIED);
    assert_int_equal(gh_saml_doc_safe(S("<?xml version=\"1.0\"?><!DOCTYPE a "
                                        "[<!ENTITY x \"y\">]><a>&x;</a>")),
                     GH_EDENIED);
    assert_int_equal(gh_saml_doc_safe(S("<a/><!ENTITY x \"y\">")), GH_EDENIED);
    assert_int_equal(gh_saml_doc_safe(S("<a/><!ELEMENT a ANY>")), GH_EDENIED);
    /* not XML text we accept at all */
    assert_int_equal(gh_saml_doc_safe(S("")), GH_EINVAL);
    assert_int_equal(gh_saml_doc_safe(S("hello <a/>")), GH_EINVAL);
    assert_int_equal(gh_saml_doc_safe("<\0a/>", 5), GH_EINVAL);   /* UTF-16 */
}

static void test_time_parse(void **state)
{
    int64_t t;

    (void)state;
    assert_int_equal(gh_saml_time_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(gh_saml_time_parse("2026-11-22T18:00:05Z", &t), 0);
    assert_int_equal(t, 1795370405);
    assert_int_equal(gh_saml_time_parse("2026-11-22T18:00:05.123Z", &t), 0);
    assert_int_equal(t, 1795370405);
    /* no zone, another zone, junk, out of range: refused */
    assert_int_equal(gh_saml_time_parse("2026-11-22T18:00:05", &t), GH_EINVAL);
    assert_int_equal(gh_saml_time_parse("2026-11-22T18:00:05+01:00", &t),
                     GH_EINVAL);
    assert_int_equal(gh_saml_time_parse("2026-13-22T18:00:05Z", &t), GH_EINVAL);
    assert_int_equal(gh_saml_time_parse("2026-11-22T18:00:05.Z", &t), GH_EINVAL);
    assert_int_equal(gh_saml_time_parse("2026-11-22T18:00:05Zjunk", &t),
                     GH_EINVAL);
    assert_int_equal(gh_saml_time_parse(NULL, &t), GH_EINVAL);
}

static void test_window_with_skew(void **state)
{
    const char *nb = "2026-11-22T18:00:00Z", *na = "2026-11-22T18:05:00Z";
    int64_t start = 1795370400, end = start + 300;

    (void)state;
    assert_int_equal(gh_saml_window_ok(nb, na, 1, start + 10, 60), 0);
    /* within the skew on both sides */
    assert_int_equal(gh_saml_window_ok(nb, na, 1, start - 59, 60), 0);
    assert_int_equal(gh_saml_window_ok(nb, na, 1, end + 59, 60), 0);
    /* past it: an expired but genuinely signed assertion is refused */
    assert_int_equal(gh_saml_window_ok(nb, na, 1, end + 60, 60), GH_EEXPIRED);
    assert_int_equal(gh_saml_window_ok(nb, na, 1, start - 61, 60), GH_EDENIED);
    /* skew 0 */
    assert_int_equal(gh_saml_window_ok(nb, na, 1, end, 0), GH_EEXPIRED);
    /* the end is required when asked */
    assert_int_equal(gh_saml_window_ok(nb, NULL, 1, start, 60), GH_EINVAL);
    assert_int_equal(gh_saml_window_ok(NULL, NULL, 0, start, 60), 0);
    assert_int_equal(gh_saml_window_ok("yesterday", na, 1, start, 60),
                     GH_EINVAL);
}

static void test_algorithms(void **state)
{
    (void)state;
    assert_true(gh_saml_sigalg_ok(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", 0));
    assert_true(gh_saml_digest_ok("http://www.w3.org/2001/04/xmlenc#sha256", 0));
    assert_false(gh_saml_sigalg_ok("http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                                   0));
    assert_false(gh_saml_digest_ok("http://www.w3.org/2000/09/xmldsig#sha1", 0));
    assert_true(gh_saml_sigalg_ok("http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                                  1));
    assert_true(gh_saml_digest_ok("http://www.w3.org/2000/09/xmldsig#sha1", 1));
    /* never: MD5, HMAC (a key the attacker may know), unknown, absent */
    assert_false(gh_saml_sigalg_ok(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-md5", 1));
    assert_false(gh_saml_sigalg_ok("http://www.w3.org/2000/09/xmldsig#hmac-sha1",
                                   1));
    assert_false(gh_saml_sigalg_ok(NULL, 1));
    assert_false(gh_saml_digest_ok("", 1));
}

static void test_signin_names(void **state)
{
    (void)state;
    assert_int_equal(gh_signin_parse("saml"), GH_SIGNIN_SAML);
    assert_int_equal(gh_signin_parse("password+otp"), GH_SIGNIN_PASSWORD_OTP);
    assert_int_equal(gh_signin_parse("password"), GH_SIGNIN_PASSWORD);
    assert_int_equal(gh_signin_parse("SAML"), -1);
    assert_string_equal(gh_signin_name(GH_SIGNIN_SAML), "saml");
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void test_consume_once_and_mark_once(void **state)
{
    char dir[] = "/tmp/gh-saml-XXXXXX", *v = NULL;
    gh_store_t *st = NULL;
    size_t n;
    int signin;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(gh_store_open(&st, dir, GH_STORE_CREATE), 0);
    assert_int_equal(gh_tenant_add(st, "acme", "Acme"), 0);

    /* the sign-in setting: password until set, unknown tenants refused */
    assert_int_equal(gh_saml_signin_get(st, "acme", &signin), 0);
    assert_int_equal(signin, GH_SIGNIN_PASSWORD);
    assert_int_equal(gh_saml_signin_set(st, "acme", GH_SIGNIN_SAML), 0);
    assert_int_equal(gh_saml_signin_get(st, "acme", &signin), 0);
    assert_int_equal(signin, GH_SIGNIN_SAML);
    assert_int_equal(gh_saml_signin_set(st, "nosuch", GH_SIGNIN_SAML),
                     GH_EBADTENANT);

    assert_int_equal(gh_kv_put(st, "req:acme:_r1", S("{\"exp\":1}"), 1), 0);
    assert_int_equal(gh_kv_put(st, "req:acme:_r1", S("{}"), 1), GH_EEXIST);
    /* consumed with the assertion marked, in one transaction */
    assert_int_equal(gh_kv_consume(st, "req:acme:_r1", &v, &n, "asr:acme:_a1",
                                   S("{\"exp\":2}")), 0);
    assert_string_equal(v, "{\"exp\":1}");
    free(v);
    /* the same request again: gone */
    assert_int_equal(gh_kv_consume(st, "req:acme:_r1", &v, &n, "asr:acme:_a2",
                                   S("{}")), GH_ENOTFOUND);
    assert_null(v);
    /* ... and nothing was written for it */
    assert_int_equal(gh_kv_get(st, "asr:acme:_a2", &v, NULL), GH_ENOTFOUND);
    /* the same assertion under another request: refused, and that request
     * stays outstanding (nothing written) */
    assert_int_equal(gh_kv_put(st, "req:acme:_r2", S("{\"exp\":1}"), 1), 0);
    assert_int_equal(gh_kv_consume(st, "req:acme:_r2", &v, &n, "asr:acme:_a1",
                                   S("{}")), GH_EEXIST);
    assert_null(v);
    assert_int_equal(gh_kv_get(st, "req:acme:_r2", &v, NULL), 0);
    free(v);
    /* unsolicited: only the mark */
    assert_int_equal(gh_kv_consume(st, NULL, NULL, NULL, "asr:acme:_a3",
                                   S("{}")), 0);
    assert_int_equal(gh_kv_consume(st, NULL, NULL, NULL, "asr:acme:_a3",
                                   S("{}")), GH_EEXIST);
    gh_store_close(st);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int collect_domain(const char *domain, const char *tenant, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);

    snprintf(out + n, 256 - n, "%s=%s;", domain, tenant);
    return 0;
}

/* The console's domains: an add never takes another tenant's domain (the
 * operator's set moves it), a removal only the tenant's own. */
static void test_domain_add_refuses_another_tenants(void **state)
{
    char dir[] = "/tmp/gh-saml-XXXXXX", seen[256] = "", t[GH_TENANT_MAX + 1];
    gh_store_t *st = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(gh_store_open(&st, dir, GH_STORE_CREATE), 0);
    assert_int_equal(gh_tenant_add(st, "acme", "Acme"), 0);
    assert_int_equal(gh_tenant_add(st, "beta", "Beta"), 0);
    assert_int_equal(gh_saml_discovery_on(st), 0);

    assert_int_equal(gh_saml_domain_add(st, "acme", "Acme.Example"), 0);
    assert_int_equal(gh_saml_discovery_on(st), 1);
    assert_int_equal(gh_saml_domain_add(st, "acme", "acme.example"), 0);
    assert_int_equal(gh_saml_domain_add(st, "beta", "ACME.example"), GH_EEXIST);
    assert_int_equal(gh_saml_domain_tenant(st, "x@acme.example", 14, t), 0);
    assert_string_equal(t, "acme");
    assert_int_equal(gh_saml_domain_add(st, "beta", "no-dot"), GH_EINVAL);
    assert_int_equal(gh_saml_domain_add(st, "beta", "a b.example"), GH_EINVAL);
    assert_int_equal(gh_saml_domain_add(st, "nosuch", "n.example"), GH_EBADTENANT);
    assert_int_equal(gh_saml_domain_add(st, "beta", "beta.example"), 0);

    assert_int_equal(gh_saml_domains(st, NULL, collect_domain, seen), 0);
    assert_string_equal(seen, "acme.example=acme;beta.example=beta;");
    seen[0] = '\0';
    assert_int_equal(gh_saml_domains(st, "beta", collect_domain, seen), 0);
    assert_string_equal(seen, "beta.example=beta;");

    /* beta cannot remove acme's; acme can */
    assert_int_equal(gh_saml_domain_del(st, "beta", "acme.example"), GH_ENOTFOUND);
    assert_int_equal(gh_saml_domain_tenant(st, "x@acme.example", 14, t), 0);
    assert_int_equal(gh_saml_domain_del(st, "acme", "ACME.example"), 0);
    assert_int_equal(gh_saml_domain_tenant(st, "x@acme.example", 14, t),
                     GH_ENOTFOUND);
    assert_int_equal(gh_saml_domain_del(st, "acme", "acme.example"), GH_ENOTFOUND);
    /* the operator's set still moves one */
    assert_int_equal(gh_saml_domain_set(st, "acme", "beta.example"), 0);
    assert_int_equal(gh_saml_domain_tenant(st, "x@beta.example", 14, t), 0);
    assert_string_equal(t, "acme");
    gh_store_close(st);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doctype_and_entities_refused),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_window_with_skew),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_signin_names),
        cmocka_unit_test(test_consume_once_and_mark_once),
        cmocka_unit_test(test_domain_add_refuses_another_tenants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
