/* Unit tests for authz/policy.c: the decision order of policy.h as a table,
 * explain output, the YAML schema's errors, and the shipped example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"
#include "gatehouse/policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char fixture[] =
    "version: 1\n"
    "roles: [admin, finance, ops]\n"
    "tenants:\n"
    "  acme:\n"
    "    display: ACME Corp\n"
    "    signin: password+otp\n"
    "    mfa: optional\n"
    "    password_profile: classes\n"
    "    session: {idle: 30m, lifetime: 12h}\n"
    "  strict:\n"
    "    mfa: required\n"
    "  netted:\n"
    "    networks: [192.168.0.0/16]\n"
    "apps:\n"
    "  demo:\n"
    "    display: Demo backend\n"
    "    tenants: [acme, strict, netted, b]\n"
    "    rules:\n"
    "      - name: staff\n"
    "        effect: allow\n"
    "        roles: [member, manager]\n"
    "        methods: [GET, HEAD]\n"
    "      - name: writers\n"
    "        effect: allow\n"
    "        roles: [manager]\n"
    "        methods: [POST]\n"
    "      - name: block-secret\n"
    "        effect: deny\n"
    "        paths: [/secret]\n"
    "      - name: admin-area\n"
    "        effect: allow\n"
    "        roles: [admin]\n"
    "        paths: [/admin]\n"
    "      - name: finance-mfa\n"
    "        effect: allow\n"
    "        roles: [finance]\n"
    "        paths: [/finance]\n"
    "        mfa: required\n"
    "      - name: office\n"
    "        effect: allow\n"
    "        roles: [ops]\n"
    "        methods: \"*\"\n"
    "        networks: [10.0.0.0/8, \"2001:db8::/32\"]\n"
    "  x:\n"
    "    tenants: [a]\n"
    "    rules:\n"
    "      - effect: allow\n"
    "        roles: [admin]\n"
    "  ci:\n"
    "    tenants: [acme]\n"
    "    paths_case_insensitive: true\n"
    "    rules:\n"
    "      - {name: deny-admin, effect: deny, paths: [/Admin]}\n"
    "      - {name: all, effect: allow, roles: [member]}\n"
    "  multi:\n"
    "    tenants: \"*\"\n"
    "    rules:\n"
    "      - {name: any-member, effect: allow, roles: [member]}\n"
    "  open:\n"
    "    tenants: [acme]\n"
    "    visitors: true\n"
    "    rules:\n"
    "      - {name: public, effect: allow, methods: [GET]}\n"
    "  closed:\n"
    "    tenants: [acme]\n"
    "    rules:\n"
    "      - {name: public, effect: allow, methods: [GET]}\n"
    "  apinet:\n"
    "    tenants: [acme]\n"
    "    networks: [10.1.0.0/16]\n"
    "    rules: [{effect: allow}]\n";

static gh_policy_t *compile_ok(const char *yaml)
{
    gh_policy_t *p = NULL;
    char err[256];
    int rc = gh_policy_compile(yaml, strlen(yaml), &p, err, sizeof err);

    if (rc != 0)
        fail_msg("compile failed (%d): %s", rc, err);
    assert_non_null(p);
    return p;
}

static int setup(void **state)
{
    *state = compile_ok(fixture);
    return 0;
}

static int teardown(void **state)
{
    gh_policy_free(*state);
    return 0;
}

/* Explain lines joined with '\n'. */
struct lines {
    char buf[8192];
    size_t n;
};

static void collect(const char *line, void *arg)
{
    struct lines *l = arg;
    int k = snprintf(l->buf + l->n, sizeof l->buf - l->n, "%s\n", line);

    assert_true(k > 0 && (size_t)k < sizeof l->buf - l->n);
    l->n += (size_t)k;
}

#define R(...) ((const char *const[]){ __VA_ARGS__ })
#define NR(...) (sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

struct row {
    const char        *what;
    const char        *app, *tenant;
    const char *const *roles;
    size_t             nroles;
    unsigned           method;
    const char        *path;
    const char        *addr;     /* NULL: no address */
    int                mfa;
    int                allow;
    const char        *reason, *rule;
};

static const struct row table[] = {
    /* 1 */
    { "unknown app is denied", "nope", "acme", R("member"), 1, GH_M_GET, "/",
      "10.0.0.1", 0, 0, "unknown_app", NULL },
    /* 2 tenant isolation, same-named roles */
    { "tenant b's admin never passes app x of tenant a", "x", "b", R("admin"), 1,
      GH_M_GET, "/", "10.0.0.1", 1, 0, "tenant_not_allowed", NULL },
    { "tenant a's admin passes app x", "x", "a", R("admin"), 1, GH_M_GET, "/",
      "10.0.0.1", 0, 1, "allowed", "rule-1" },
    { "tenants '*' admits any tenant", "multi", "zzz", R("member"), 1, GH_M_GET, "/",
      "10.0.0.1", 0, 1, "allowed", "any-member" },
    /* 3 networks at tenant and app level */
    { "tenant network refuses outside address", "demo", "netted", R("member"), 1,
      GH_M_GET, "/", "10.0.0.1", 0, 0, "network_not_allowed", NULL },
    { "tenant network admits inside address", "demo", "netted", R("member"), 1,
      GH_M_GET, "/", "192.168.4.4", 0, 1, "allowed", "staff" },
    { "tenant network refuses a missing address", "demo", "netted", R("member"), 1,
      GH_M_GET, "/", NULL, 0, 0, "network_not_allowed", NULL },
    { "app network refuses outside address", "apinet", "acme", R("member"), 1,
      GH_M_GET, "/", "10.2.0.1", 0, 0, "network_not_allowed", NULL },
    { "app network admits inside address", "apinet", "acme", R("member"), 1,
      GH_M_GET, "/", "::ffff:10.1.2.3", 0, 1, "allowed", "rule-1" },
    /* 4 visitors */
    { "visitor refused by an app closed to visitors", "closed", "acme", R("visitor"), 1,
      GH_M_GET, "/", "10.0.0.1", 0, 0, "visitors_not_allowed", NULL },
    { "user with no role is a visitor", "closed", "acme", NULL, 0, GH_M_GET, "/",
      "10.0.0.1", 0, 0, "visitors_not_allowed", NULL },
    { "user with only unknown roles is a visitor", "demo", "acme", R("ghost"), 1,
      GH_M_GET, "/", "10.0.0.1", 0, 0, "visitors_not_allowed", NULL },
    { "visitor admitted by an open app", "open", "acme", R("visitor"), 1, GH_M_GET, "/",
      "10.0.0.1", 0, 1, "allowed", "public" },
    { "visitor in an open app still needs a matching rule", "open", "acme",
      R("visitor"), 1, GH_M_POST, "/", "10.0.0.1", 0, 0, "no_matching_rule", NULL },
    { "member with visitor too is not a visitor", "closed", "acme",
      R("visitor", "member"), 2, GH_M_GET, "/", "10.0.0.1", 0, 1, "allowed", "public" },
    /* 5 tenant MFA */
    { "tenant requiring mfa refuses a one-factor session", "demo", "strict",
      R("member"), 1, GH_M_GET, "/", "10.0.0.1", 0, 0, "mfa_required", NULL },
    { "tenant requiring mfa admits a two-factor session", "demo", "strict",
      R("member"), 1, GH_M_GET, "/", "10.0.0.1", 1, 1, "allowed", "staff" },
    /* 6 deny wins */
    { "deny rule wins over an earlier allow", "demo", "acme", R("member"), 1, GH_M_GET,
      "/secret/x", "10.0.0.1", 0, 0, "denied_by_rule", "block-secret" },
    { "deny rule applies on its prefix only", "demo", "acme", R("member"), 1, GH_M_GET,
      "/secrets", "10.0.0.1", 0, 1, "allowed", "staff" },
    /* 7, 9 allow and default deny, methods */
    { "member reads", "demo", "acme", R("member"), 1, GH_M_HEAD, "/x", "10.0.0.1", 0, 1,
      "allowed", "staff" },
    { "member may not post: default deny", "demo", "acme", R("member"), 1, GH_M_POST,
      "/", "10.0.0.1", 0, 0, "no_matching_rule", NULL },
    { "manager may post", "demo", "acme", R("manager"), 1, GH_M_POST, "/", "10.0.0.1",
      0, 1, "allowed", "writers" },
    { "unlisted method is denied", "demo", "acme", R("member"), 1, GH_M_OTHER, "/",
      "10.0.0.1", 0, 0, "no_matching_rule", NULL },
    /* paths and the '/' boundary */
    { "prefix covers itself", "demo", "acme", R("admin"), 1, GH_M_GET, "/admin",
      "10.0.0.1", 0, 1, "allowed", "admin-area" },
    { "prefix covers below it", "demo", "acme", R("admin"), 1, GH_M_GET, "/admin/x/y",
      "10.0.0.1", 0, 1, "allowed", "admin-area" },
    { "prefix stops at a '/' boundary", "demo", "acme", R("admin"), 1, GH_M_GET,
      "/administrator", "10.0.0.1", 0, 0, "no_matching_rule", NULL },
    { "case-sensitive app: /ADMIN is not /admin", "demo", "acme", R("admin"), 1,
      GH_M_GET, "/ADMIN", "10.0.0.1", 0, 0, "no_matching_rule", NULL },
    { "case-insensitive app: /admin/x hits /Admin", "ci", "acme", R("member"), 1,
      GH_M_GET, "/admin/x", "10.0.0.1", 0, 0, "denied_by_rule", "deny-admin" },
    { "case-insensitive app: /ADMIN hits /Admin", "ci", "acme", R("member"), 1,
      GH_M_GET, "/ADMIN", "10.0.0.1", 0, 0, "denied_by_rule", "deny-admin" },
    { "case-insensitive app: other paths allowed", "ci", "acme", R("member"), 1,
      GH_M_GET, "/AdminX", "10.0.0.1", 0, 1, "allowed", "all" },
    /* rule networks */
    { "rule network admits v4", "demo", "acme", R("ops"), 1, GH_M_DELETE, "/",
      "10.9.9.9", 0, 1, "allowed", "office" },
    { "rule network admits v6", "demo", "acme", R("ops"), 1, GH_M_GET, "/",
      "2001:db8::1", 0, 1, "allowed", "office" },
    { "rule network refuses others", "demo", "acme", R("ops"), 1, GH_M_GET, "/",
      "192.0.2.1", 0, 0, "no_matching_rule", NULL },
    { "rule network refuses a missing address", "demo", "acme", R("ops"), 1, GH_M_GET,
      "/", NULL, 0, 0, "no_matching_rule", NULL },
    /* 8 rule MFA */
    { "mfa rule without a second factor", "demo", "acme", R("finance"), 1, GH_M_GET,
      "/finance", "10.0.0.1", 0, 0, "mfa_required", "finance-mfa" },
    { "mfa rule with a second factor", "demo", "acme", R("finance"), 1, GH_M_GET,
      "/finance", "10.0.0.1", 1, 1, "allowed", "finance-mfa" },
    { "another allow wins over an mfa-only match", "demo", "acme",
      R("finance", "member"), 2, GH_M_GET, "/finance", "10.0.0.1", 0, 1, "allowed",
      "staff" },
    /* unknown roles */
    { "unknown role in the request is ignored", "demo", "acme", R("ghost", "member"), 2,
      GH_M_GET, "/", "10.0.0.1", 0, 1, "allowed", "staff" },
    { "a role named like a policy role only by prefix grants nothing", "demo", "acme",
      R("admin2", "member"), 2, GH_M_GET, "/admin", "10.0.0.1", 0, 1, "allowed", "staff" },
};

static void decision_table_follows_the_order_in_policy_h(void **state)
{
    const gh_policy_t *p = *state;
    size_t i;

    for (i = 0; i < N(table); i++) {
        const struct row *t = &table[i];
        gh_addr_t addr;
        gh_request_t req;
        gh_decision_t d, dx;
        struct lines l = { .n = 0 };

        memset(&req, 0, sizeof req);
        req.tenant = t->tenant;
        req.roles = t->roles;
        req.nroles = t->nroles;
        req.method = t->method;
        req.path = t->path;
        req.path_len = strlen(t->path);
        req.mfa = t->mfa;
        {
            /* what `policy apply` copies into the tenant record */
            const gh_policy_tenant_t *pt = gh_policy_tenant(p, t->tenant);
            req.tenant_mfa_required = pt != NULL && pt->mfa_required;
        }
        if (t->addr) {
            assert_int_equal(gh_addr_parse(t->addr, strlen(t->addr), &addr), 0);
            req.addr = &addr;
        }
        assert_int_equal(gh_policy_decide(p, t->app, &req, &d, NULL, NULL), 0);
        if (d.allow != t->allow || strcmp(d.reason, t->reason) != 0 ||
            (t->rule == NULL) != (d.rule == NULL) ||
            (t->rule && strcmp(t->rule, d.rule) != 0))
            fail_msg("row %zu (%s): got %s %s %s", i + 1, t->what,
                     d.allow ? "allow" : "deny", d.reason, d.rule ? d.rule : "-");
        /* explain reaches the same decision and ends with it */
        assert_int_equal(gh_policy_decide(p, t->app, &req, &dx, collect, &l), 0);
        assert_int_equal(dx.allow, d.allow);
        assert_string_equal(dx.reason, d.reason);
        assert_true(dx.rule == d.rule);
        assert_non_null(strstr(l.buf, "decision: "));
        assert_non_null(strstr(l.buf, d.reason));
    }
}

static void rule_order_does_not_change_the_outcome(void **state)
{
    static const char a[] =
        "version: 1\n"
        "apps:\n"
        "  demo:\n"
        "    tenants: [acme]\n"
        "    rules:\n"
        "      - {name: allow-all, effect: allow}\n"
        "      - {name: no-post, effect: deny, methods: [POST]}\n";
    static const char b[] =
        "version: 1\n"
        "apps:\n"
        "  demo:\n"
        "    tenants: [acme]\n"
        "    rules:\n"
        "      - {name: no-post, effect: deny, methods: [POST]}\n"
        "      - {name: allow-all, effect: allow}\n";
    const char *docs[] = { a, b };
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        gh_policy_t *p = compile_ok(docs[i]);
        gh_request_t req = { .tenant = "acme", .roles = R("member"), .nroles = 1,
                             .method = GH_M_POST, .path = "/", .path_len = 1 };
        gh_decision_t d;
        assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
        assert_false(d.allow);
        assert_string_equal(d.rule, "no-post");
        req.method = GH_M_GET;
        assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
        assert_true(d.allow);
        assert_string_equal(d.rule, "allow-all");
        gh_policy_free(p);
    }
}

static void global_networks_apply_to_every_app(void **state)
{
    static const char y[] =
        "version: 1\n"
        "networks: [10.0.0.0/8, \"::1/128\"]\n"
        "apps:\n"
        "  demo: {tenants: \"*\", rules: [{effect: allow}]}\n";
    gh_policy_t *p = compile_ok(y);
    gh_addr_t a;
    gh_request_t req = { .tenant = "t", .roles = R("member"), .nroles = 1,
                         .method = GH_M_GET, .path = "/", .path_len = 1, .addr = &a };
    gh_decision_t d;

    (void)state;
    gh_addr_parse("::1", 3, &a);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_true(d.allow);
    gh_addr_parse("11.0.0.1", 8, &a);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_false(d.allow);
    assert_string_equal(d.reason, "network_not_allowed");
    gh_policy_free(p);
}

static gh_netset_t *nets_of(const char *list)
{
    gh_netset_t *s = gh_netset_new();

    assert_non_null(s);
    assert_true(gh_netset_add_list(s, list, 64, NULL, 0) > 0);
    assert_int_equal(gh_netset_compile(s), 0);
    return s;
}

static void explain_collect(const char *line, void *arg)
{
    char *buf = arg;
    size_t n = strlen(buf);

    snprintf(buf + n, 1024 - n, "%s\n", line);
}

/* The tenant record's networks (req->tenant_nets) replace the file's tenant
 * networks at step 3; the global and app lists still apply. */
static void tenant_record_networks_replace_the_files(void **state)
{
    const gh_policy_t *p = *state;
    gh_netset_t *rec = nets_of("10.0.0.0/8, 2001:db8::/32");
    gh_addr_t in, out, filein;
    gh_request_t req = { .tenant = "netted", .roles = R("member"), .nroles = 1,
                         .method = GH_M_GET, .path = "/", .path_len = 1 };
    gh_decision_t d;
    char lines[1024] = "";

    gh_addr_parse("10.0.0.1", 8, &in);
    gh_addr_parse("172.16.0.1", 10, &out);
    gh_addr_parse("192.168.4.4", 11, &filein);
    /* without a record: the file's 192.168.0.0/16 */
    req.addr = &in;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_string_equal(d.reason, "network_not_allowed");
    /* with one: inside it allowed, outside refused, the file's no longer */
    req.tenant_nets = rec;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_true(d.allow);
    assert_string_equal(d.reason, "allowed");
    req.addr = &out;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, explain_collect, lines), 0);
    assert_false(d.allow);
    assert_string_equal(d.reason, "network_not_allowed");
    assert_non_null(strstr(lines, "172.16.0.1 is not in tenant netted's networks"));
    req.addr = &filein;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_string_equal(d.reason, "network_not_allowed");
    req.addr = NULL;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_string_equal(d.reason, "network_not_allowed");
    /* a tenant the file leaves open is restricted by its record */
    req.tenant = "acme";
    req.addr = &out;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_string_equal(d.reason, "network_not_allowed");
    req.addr = &in;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_true(d.allow);
    /* ... and the app's own list still applies on top */
    gh_addr_parse("10.2.0.1", 8, &in);
    assert_int_equal(gh_policy_decide(p, "apinet", &req, &d, NULL, NULL), 0);
    assert_string_equal(d.reason, "network_not_allowed");
    gh_netset_free(rec);
}

static void global_networks_apply_over_the_tenant_record(void **state)
{
    static const char y[] =
        "version: 1\n"
        "networks: [10.0.0.0/8]\n"
        "apps:\n"
        "  demo: {tenants: \"*\", rules: [{effect: allow}]}\n";
    gh_policy_t *p = compile_ok(y);
    gh_netset_t *any = nets_of("0.0.0.0/0");
    gh_addr_t a;
    gh_request_t req = { .tenant = "t", .roles = R("member"), .nroles = 1,
                         .method = GH_M_GET, .path = "/", .path_len = 1,
                         .addr = &a, .tenant_nets = any };
    gh_decision_t d;

    (void)state;
    gh_addr_parse("11.0.0.1", 8, &a);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_string_equal(d.reason, "network_not_allowed");
    gh_addr_parse("10.0.0.1", 8, &a);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_true(d.allow);
    gh_netset_free(any);
    gh_policy_free(p);
}

/* What `policy apply` copies: the networks a tenant section states, as
 * text; NULL when it states none. */
static void tenant_section_keeps_its_networks_as_text(void **state)
{
    const gh_policy_t *p = *state;
    static const char y[] =
        "version: 1\n"
        "tenants:\n"
        "  a: {networks: [10.0.0.0/8, \"2001:db8::/32\"]}\n"
        "  b: {networks: []}\n"
        "apps:\n"
        "  demo: {tenants: \"*\", rules: [{effect: allow}]}\n";
    gh_policy_t *q = compile_ok(y);

    assert_string_equal(gh_policy_tenant(p, "netted")->networks_text,
                        "192.168.0.0/16");
    assert_null(gh_policy_tenant(p, "acme")->networks_text);
    assert_string_equal(gh_policy_tenant(q, "a")->networks_text,
                        "10.0.0.0/8,2001:db8::/32");
    assert_string_equal(gh_policy_tenant(q, "b")->networks_text, "");
    gh_policy_free(q);
}

static void malformed_requests_are_refused_and_denied(void **state)
{
    const gh_policy_t *p = *state;
    const char *many[GH_USER_ROLES_MAX + 1];
    gh_request_t ok = { .tenant = "acme", .roles = R("member"), .nroles = 1,
                        .method = GH_M_GET, .path = "/", .path_len = 1 };
    gh_request_t req;
    gh_decision_t d;
    size_t i;

    for (i = 0; i < N(many); i++)
        many[i] = "member";
    assert_int_equal(gh_policy_decide(p, "demo", &ok, &d, NULL, NULL), 0);
    assert_true(d.allow);

    req = ok;
    req.roles = many;
    req.nroles = GH_USER_ROLES_MAX;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    req.nroles = GH_USER_ROLES_MAX + 1;
    d.allow = 1;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), GH_EINVAL);
    assert_false(d.allow);

    req = ok;
    req.method = GH_M_GET | GH_M_POST;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), GH_EINVAL);
    req = ok;
    req.method = 0;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), GH_EINVAL);
    req = ok;
    req.path = "admin";
    req.path_len = 5;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), GH_EINVAL);
    req = ok;
    req.tenant = "ACME";
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), GH_EINVAL);
    req = ok;
    req.tenant = NULL;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), GH_EINVAL);
    assert_int_equal(gh_policy_decide(p, NULL, &ok, &d, NULL, NULL), GH_EINVAL);
    assert_int_equal(gh_policy_decide(NULL, "demo", &ok, &d, NULL, NULL), GH_EINVAL);
}

static void explain_says_why_each_rule_did_not_match(void **state)
{
    const gh_policy_t *p = *state;
    gh_addr_t addr;
    gh_request_t req = { .tenant = "acme", .roles = R("member", "ghost"), .nroles = 2,
                         .method = GH_M_POST, .path = "/x", .path_len = 2,
                         .addr = &addr };
    gh_decision_t d;
    struct lines l = { .n = 0 };
    static const char *want[] = {
        "role ghost is not defined by the policy; ignored\n",
        "rule staff: method POST not in [GET, HEAD]\n",
        "rule writers: roles [member] do not include any of [manager]\n",
        "rule admin-area: roles [member] do not include any of [admin]\n",
        "rule admin-area: path /x is not under [/admin]\n",
        "rule block-secret: path /x is not under [/secret]\n",
        "rule office: address 192.0.2.9 is not in the rule's networks\n",
        "decision: deny (no_matching_rule)\n",
    };
    size_t i;

    gh_addr_parse("192.0.2.9", 9, &addr);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, collect, &l), 0);
    for (i = 0; i < N(want); i++)
        if (strstr(l.buf, want[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want[i], l.buf);
    /* rules are listed in file order */
    assert_true(strstr(l.buf, "rule staff:") < strstr(l.buf, "rule writers:"));
    assert_true(strstr(l.buf, "rule writers:") < strstr(l.buf, "rule office:"));

    l.n = 0;
    req.tenant = "zed";
    assert_int_equal(gh_policy_decide(p, "x", &req, &d, collect, &l), 0);
    assert_string_equal(l.buf, "tenant zed is not among app x's tenants [a]\n"
                               "decision: deny (tenant_not_allowed)\n");

    l.n = 0;
    req.tenant = "acme";
    req.roles = R("finance");
    req.nroles = 1;
    req.method = GH_M_GET;
    req.path = "/finance/q1";
    req.path_len = strlen(req.path);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, collect, &l), 0);
    assert_non_null(strstr(l.buf, "rule finance-mfa: requires a second factor\n"));
    assert_non_null(strstr(l.buf, "decision: deny (mfa_required) by rule finance-mfa\n"));

    l.n = 0;
    req.roles = R("member");
    req.path = "/";
    req.path_len = 1;
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, collect, &l), 0);
    assert_non_null(strstr(l.buf, "rule staff: matches (allow)\n"));
    assert_non_null(strstr(l.buf, "decision: allow (allowed) by rule staff\n"));

    l.n = 0;
    assert_int_equal(gh_policy_decide(p, "closed", &req, &d, collect, &l), 0);
    assert_true(d.allow);
    req.nroles = 0;
    l.n = 0;
    assert_int_equal(gh_policy_decide(p, "closed", &req, &d, collect, &l), 0);
    assert_non_null(strstr(l.buf, "user holds no role and app closed does not admit "
                                  "visitors\n"));
}

static void explain_escapes_request_text(void **state)
{
    const gh_policy_t *p = *state;
    gh_request_t req = { .tenant = "acme", .roles = R("admin"), .nroles = 1,
                         .method = GH_M_GET, .path = "/a\nb\\c", .path_len = 6 };
    gh_decision_t d;
    struct lines l = { .n = 0 };

    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, collect, &l), 0);
    assert_non_null(strstr(l.buf, "path /a\\x0ab\\x5cc is not under [/admin]\n"));
}

static void lookups_report_roles_tenants_and_apps(void **state)
{
    const gh_policy_t *p = *state;
    const gh_policy_tenant_t *t;

    assert_true(gh_policy_role_known(p, "member"));
    assert_true(gh_policy_role_known(p, "gatehouse-admin"));
    assert_true(gh_policy_role_known(p, "auditor"));
    assert_true(gh_policy_role_known(p, "finance"));
    assert_false(gh_policy_role_known(p, "ghost"));
    assert_false(gh_policy_role_known(p, ""));

    t = gh_policy_tenant(p, "acme");
    assert_non_null(t);
    assert_string_equal(t->name, "acme");
    assert_string_equal(t->display, "ACME Corp");
    assert_int_equal(t->signin, GH_SIGNIN_PASSWORD_OTP);
    assert_int_equal(t->mfa_required, 0);
    assert_string_equal(t->password_profile, "classes");
    assert_int_equal(t->idle, 1800);
    assert_int_equal(t->lifetime, 43200);
    assert_non_null(t->networks);
    assert_int_equal(gh_netset_count(t->networks), 0);

    t = gh_policy_tenant(p, "strict");
    assert_non_null(t);
    assert_string_equal(t->display, "strict");
    assert_int_equal(t->signin, GH_SIGNIN_PASSWORD);
    assert_int_equal(t->mfa_required, 1);
    assert_string_equal(t->password_profile, "nist");
    assert_int_equal(t->idle, 0);
    assert_null(gh_policy_tenant(p, "b"));
    assert_int_equal(gh_netset_count(gh_policy_tenant(p, "netted")->networks), 1);

    /* which apps admit visitors (the console's visitors view) */
    assert_int_equal(gh_policy_app_visitors(p, "open"), 1);
    assert_int_equal(gh_policy_app_visitors(p, "closed"), 0);
    assert_int_equal(gh_policy_app_visitors(p, "ghost"), 0);
    assert_int_equal(gh_policy_app_visitors(p, NULL), 0);
    assert_int_equal(gh_policy_app_visitors(NULL, "open"), 0);
}

static int count_cb(const gh_policy_tenant_t *t, void *arg)
{
    char *s = arg;

    strcat(s, t->name);
    strcat(s, ",");
    return 0;
}

static int app_cb(const char *app, void *arg)
{
    char *s = arg;

    strcat(s, app);
    strcat(s, ",");
    return strcmp(app, "ci") == 0 ? 7 : 0;
}

static void walkers_go_in_file_order_and_stop_on_request(void **state)
{
    const gh_policy_t *p = *state;
    char s[256] = "";

    assert_int_equal(gh_policy_tenants(p, count_cb, s), 0);
    assert_string_equal(s, "acme,strict,netted,");
    s[0] = '\0';
    assert_int_equal(gh_policy_apps(p, app_cb, s), 7);
    assert_string_equal(s, "demo,x,ci,");
}

static void method_bits_are_case_sensitive_tokens(void **state)
{
    (void)state;
    assert_int_equal(gh_method_bit("GET", 3), GH_M_GET);
    assert_int_equal(gh_method_bit("OPTIONS", 7), GH_M_OPTIONS);
    assert_int_equal(gh_method_bit("PATCH", 5), GH_M_PATCH);
    assert_int_equal(gh_method_bit("get", 3), GH_M_OTHER);
    assert_int_equal(gh_method_bit("PROPFIND", 8), GH_M_OTHER);
    assert_int_equal(gh_method_bit("GETX", 3), GH_M_GET);
    assert_int_equal(gh_method_bit("", 0), 0);
    assert_int_equal(gh_method_bit("GE T", 4), 0);
    assert_int_equal(gh_method_bit("GET\r", 4), 0);
    assert_int_equal(gh_method_bit("G\0T", 3), 0);
}

/* ---- the schema's errors ---- */

static const struct {
    const char *yaml;
    const char *msg;    /* a substring of the error, position included */
} bad[] = {
    { "version: 1\nbogus: 2\n",
      "line 2, column 1: unknown key 'bogus' in the policy" },
    { "version: 1\napps:\n  demo:\n    tenants: [demo]\n    rules:\n"
      "      - effect: allow\n        rolez: [member]\n",
      "line 7, column 9: unknown key 'rolez' in rule 1 of app 'demo'" },
    { "version: 1\ntenants:\n  demo:\n    sigin: saml\n",
      "line 4, column 5: unknown key 'sigin' in tenant 'demo'" },
    { "version: 1\ntenants:\n  demo:\n    session: {idle: 1h, max: 2h}\n",
      "line 4, column 25: unknown key 'max' in session of tenant 'demo'" },
    { "version: 1\napps: [a]\n", "line 2, column 7: apps must be a mapping" },
    { "version: 1\nroles: admin\n", "line 2, column 8: roles must be a list" },
    { "version: 1\napps:\n  demo: {tenants: [a], visitors: yes}\n",
      "line 3, column 34: visitors of app 'demo' must be true or false" },
    { "version: 1\nnetworks: [10.0.0.1/8]\n",
      "line 2, column 12: bad network '10.0.0.1/8' in networks" },
    { "version: 1\ntenants:\n  t:\n    networks: [\"fe80::1%eth0\"]\n",
      "line 4, column 16: bad network 'fe80::1%eth0' in networks of tenant 't'" },
    { "version: 1\ntenants:\n  t:\n    session: {idle: 30x}\n",
      "line 4, column 21: session idle of tenant 't' must be a duration" },
    { "version: 1\ntenants:\n  t:\n    session: {lifetime: 0s}\n",
      "must be greater than 0" },
    { "version: 1\ntenants:\n  t:\n    session: {idle: 2h, lifetime: 1h}\n",
      "line 4, column 21: session idle of tenant 't' is longer than its lifetime" },
    { "version: 1\ntenants:\n  t:\n    session: {idle: 99999999999d}\n",
      "must be greater than 0 and at most 3650d" },
    { "version: 1\ntenants:\n  t:\n    signin: ldap\n",
      "signin of tenant 't' must be password, password+otp or saml" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n"
      "      - {effect: allow, methods: [GET, FETCH]}\n",
      "line 6, column 40: bad method 'FETCH'" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n"
      "      - {effect: allow, methods: [get]}\n", "bad method 'get'" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n"
      "      - {effect: allow, roles: [boss]}\n",
      "line 6, column 33: unknown role 'boss' in rule 1 of app 'a'" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n"
      "      - {name: r, effect: allow}\n      - {name: r, effect: deny}\n",
      "line 7, column 16: duplicate rule name 'r' in app 'a'" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n"
      "      - {effect: allow}\n      - {name: rule-1, effect: deny}\n",
      "duplicate rule name 'rule-1'" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n"
      "      - {effect: deny, mfa: required}\n",
      "line 6, column 24: mfa applies only to allow rules" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n      - {roles: [member]}\n",
      "line 6, column 9: rule 1 of app 'a' has no effect" },
    { "version: 1\napps:\n  a:\n    tenants: [t]\n    rules:\n      - {effect: permit}\n",
      "effect of rule 1 of app 'a' must be allow or deny" },
    { "roles: [a]\n", "line 1, column 1: missing required key 'version'" },
    { "version: 2\n", "line 1, column 10: unsupported version '2'" },
    { "version: 1\nversion: 1\n", "line 2, column 1: duplicate key 'version'" },
    { "version: 1\napps: {demo: [\n", "line 3, column 1: " },
    { "version: 1\n  roles: [a]\n", "line 2, column " },
    { "", "the policy is empty" },
    { "[1, 2]\n", "the policy must be a mapping" },
    { "version: 1\n---\nversion: 1\n", "line 2, column 1: a policy is one YAML document" },
    { "version: 1\nroles: &r [a]\nnetworks: *r\n", "line 3, column 11: aliases" },
    { "version: 1\nroles: [member]\n",
      "line 2, column 9: role 'member' is built in" },
    { "version: 1\nroles: [ops, ops]\n", "line 2, column 14: duplicate role 'ops'" },
    { "version: 1\nroles: [Ops]\n", "a role name is" },
    { "version: 1\ntenants:\n  Demo: {}\n", "line 3, column 3: a tenant name is" },
    { "version: 1\ntenants:\n  d: {}\n  d: {}\n", "line 4, column 3: duplicate tenant 'd'" },
    { "version: 1\napps:\n  Demo: {tenants: [a]}\n", "line 3, column 3: an app name is" },
    { "version: 1\napps:\n  a: {display: x}\n", "line 3, column 6: app 'a' has no tenants" },
    { "version: 1\napps:\n  a: {tenants: []}\n",
      "tenants of app 'a' must be a non-empty list" },
    { "version: 1\napps:\n  a: {tenants: [Acme]}\n", "bad tenant name 'Acme'" },
    { "version: 1\napps:\n  a: {tenants: [t, t]}\n", "duplicate tenant 't' in app 'a'" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, paths: [x]}]}\n",
      "bad path 'x'" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, paths: [/a/../b]}]}\n",
      "bad path '/a/../b'" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, paths: [/..]}]}\n",
      "bad path '/..'" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, paths: [/%2e]}]}\n",
      "bad path '/%2e'" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, paths: [\"/a\\tb\"]}]}\n",
      "bad path '/a?b'" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, roles: []}]}\n",
      "roles of rule 1 of app 'a' is empty" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, roles: [member, member]}]}\n",
      "duplicate role 'member' in rule 1" },
    { "version: 1\napps:\n  a: {tenants: [t], rules: [{name: \"has space\", effect: allow}]}\n",
      "a rule name is" },
    { "version: 1\ntenants:\n  t: {display: \"a\\nb\"}\n",
      "display of tenant 't' contains a control character" },
    { "version: 1\nbogus\x01: 1\n", "line 2, column 6: control characters are not allowed" },
};

static void schema_errors_name_the_problem_and_its_position(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++) {
        gh_policy_t *p = NULL;
        char err[256];
        int rc = gh_policy_compile(bad[i].yaml, strlen(bad[i].yaml), &p, err, sizeof err);
        if (rc != GH_EINVAL || p != NULL)
            fail_msg("case %zu compiled (rc %d): %s", i + 1, rc, bad[i].yaml);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("case %zu: want \"%s\", got \"%s\"", i + 1, bad[i].msg, err);
        assert_null(strchr(err, '\n'));
    }
}

static void optional_sections_may_be_empty_or_null(void **state)
{
    static const char *ok[] = {
        "version: 1\n",
        "version: 1\nroles:\ntenants:\napps:\nnetworks:\n",
        "version: 1\nroles: []\ntenants: {}\napps: {}\nnetworks: []\n",
        "version: 1\ntenants:\n  t:\n",
        "version: 1\napps:\n  a: {tenants: \"*\", networks: [], rules: []}\n",
        "version: \"1\"\n",
        "version: 1\napps:\n  a: {tenants: [t], rules: [{effect: allow, methods: \"*\", "
        "mfa: any}]}\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < N(ok); i++)
        gh_policy_free(compile_ok(ok[i]));
}

static void oversized_policy_is_refused(void **state)
{
    size_t n = GH_POLICY_MAX_BYTES + 1;
    char *big = malloc(n);
    gh_policy_t *p = NULL;
    char err[128];

    (void)state;
    assert_non_null(big);
    memset(big, '#', n);
    assert_int_equal(gh_policy_compile(big, n, &p, err, sizeof err), GH_ETOOBIG);
    assert_null(p);
    assert_non_null(strstr(err, "larger than"));
    free(big);
}

static void compile_tolerates_small_error_buffers(void **state)
{
    gh_policy_t *p = NULL;
    char err[8];

    (void)state;
    assert_int_equal(gh_policy_compile("version: 2\n", 11, &p, err, sizeof err), GH_EINVAL);
    assert_true(strlen(err) < sizeof err);
    assert_int_equal(gh_policy_compile("version: 2\n", 11, &p, NULL, 0), GH_EINVAL);
}

static void example_policy_compiles_and_separates_admin_tools(void **state)
{
    FILE *f = fopen("conf/policy.example.yaml", "r");
    static char buf[65536];
    size_t n;
    gh_policy_t *p;
    gh_request_t req = { .tenant = "demo", .roles = R("member"), .nroles = 1,
                         .method = GH_M_GET, .path = "/", .path_len = 1 };
    gh_decision_t d;

    (void)state;
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = compile_ok(buf);
    assert_int_equal(gh_policy_decide(p, "demo", &req, &d, NULL, NULL), 0);
    assert_true(d.allow);
    assert_int_equal(gh_policy_decide(p, "admin-tools", &req, &d, NULL, NULL), 0);
    assert_false(d.allow);
    req.roles = R("admin");
    assert_int_equal(gh_policy_decide(p, "admin-tools", &req, &d, NULL, NULL), 0);
    assert_true(d.allow);
    req.tenant = "other";
    assert_int_equal(gh_policy_decide(p, "admin-tools", &req, &d, NULL, NULL), 0);
    assert_false(d.allow);
    assert_string_equal(d.reason, "tenant_not_allowed");
    gh_policy_free(p);
}

static uint32_t lcg(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    return *x >> 8;
}

static void discard(const char *line, void *arg)
{
    (void)line;
    (*(int *)arg)++;
}

/* The request path visits only the rules indexed under the user's roles;
 * explain scans every rule. On random policies and requests both must
 * reach the same decision. */
static void indexed_decision_agrees_with_full_scan(void **state)
{
    static const char *const meth[] = { "GET", "HEAD", "POST", "PUT", "DELETE" };
    static const unsigned mbit[] = { GH_M_GET, GH_M_HEAD, GH_M_POST, GH_M_PUT,
                                     GH_M_DELETE, GH_M_OTHER };
    static const char *const path[] = { "/", "/a", "/a/b", "/b", "/ab", "/c/d" };
    static char y[65536], rn[40][8];
    uint32_t x = 99;
    int round;

    (void)state;
    for (round = 0; round < 20; round++) {
        size_t n = 0, i, k;
        gh_policy_t *p;
        n += (size_t)snprintf(y + n, sizeof y - n, "version: 1\nroles: [");
        for (i = 0; i < 30; i++)
            n += (size_t)snprintf(y + n, sizeof y - n, "%sc%zu", i ? ", " : "", i);
        n += (size_t)snprintf(y + n, sizeof y - n, "]\napps:\n  a:\n    tenants: [t]\n"
                              "    visitors: true\n    rules:\n");
        for (i = 0; i < 60; i++) {
            int deny = lcg(&x) % 4 == 0;
            n += (size_t)snprintf(y + n, sizeof y - n, "      - effect: %s\n",
                                  deny ? "deny" : "allow");
            if (lcg(&x) % 5 != 0) {
                size_t nr = 1 + lcg(&x) % 3, first = lcg(&x) % 33;
                n += (size_t)snprintf(y + n, sizeof y - n, "        roles: [");
                for (k = 0; k < nr; k++) {   /* consecutive: never repeated */
                    size_t r = (first + k) % 36;
                    if (r < 30)
                        n += (size_t)snprintf(y + n, sizeof y - n, "%sc%zu", k ? ", " : "", r);
                    else
                        n += (size_t)snprintf(y + n, sizeof y - n, "%s%s", k ? ", " : "",
                                              r == 30 ? "member" : r == 31 ? "visitor" :
                                              r == 32 ? "manager" : r == 33 ? "auditor" :
                                              r == 34 ? "space-admin" : "gatehouse-admin");
                }
                n += (size_t)snprintf(y + n, sizeof y - n, "]\n");
            }
            if (lcg(&x) % 2)
                n += (size_t)snprintf(y + n, sizeof y - n, "        methods: [%s]\n",
                                      meth[lcg(&x) % 5]);
            if (lcg(&x) % 2)
                n += (size_t)snprintf(y + n, sizeof y - n, "        paths: [%s]\n",
                                      path[lcg(&x) % 6]);
            if (lcg(&x) % 4 == 0)
                n += (size_t)snprintf(y + n, sizeof y - n, "        networks: [10.0.0.0/9]\n");
            if (!deny && lcg(&x) % 4 == 0)
                n += (size_t)snprintf(y + n, sizeof y - n, "        mfa: required\n");
        }
        assert_true(n < sizeof y - 1);
        p = compile_ok(y);
        for (i = 0; i < 2000; i++) {
            const char *roles[6];
            gh_addr_t addr;
            gh_request_t req = { .tenant = "t", .roles = roles };
            gh_decision_t d1, d2;
            int lines = 0;
            req.nroles = lcg(&x) % 6;
            for (k = 0; k < req.nroles; k++) {
                size_t r = lcg(&x) % 34;
                snprintf(rn[r], sizeof rn[r], "c%zu", r);
                roles[k] = r < 30 ? rn[r] : r == 30 ? "member" : r == 31 ? "visitor" :
                           r == 32 ? "ghost" : "manager";
            }
            req.method = mbit[lcg(&x) % 6];
            req.path = path[lcg(&x) % 6];
            req.path_len = strlen(req.path);
            req.mfa = (int)(lcg(&x) % 2);
            addr.b[0] = 0;
            gh_addr_parse(lcg(&x) % 2 ? "10.1.1.1" : "10.200.1.1", lcg(&x) % 2 ? 8 : 10,
                          &addr);
            req.addr = &addr;
            assert_int_equal(gh_policy_decide(p, "a", &req, &d1, NULL, NULL), 0);
            assert_int_equal(gh_policy_decide(p, "a", &req, &d2, discard, &lines), 0);
            if (d1.allow != d2.allow || strcmp(d1.reason, d2.reason) != 0 ||
                d1.rule != d2.rule)
                fail_msg("round %d request %zu: %s/%s vs %s/%s", round, i, d1.reason,
                         d1.rule ? d1.rule : "-", d2.reason, d2.rule ? d2.rule : "-");
            assert_true(lines > 0);
        }
        gh_policy_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(decision_table_follows_the_order_in_policy_h,
                                        setup, teardown),
        cmocka_unit_test(rule_order_does_not_change_the_outcome),
        cmocka_unit_test(indexed_decision_agrees_with_full_scan),
        cmocka_unit_test(global_networks_apply_to_every_app),
        cmocka_unit_test_setup_teardown(tenant_record_networks_replace_the_files,
                                        setup, teardown),
        cmocka_unit_test(global_networks_apply_over_the_tenant_record),
        cmocka_unit_test_setup_teardown(tenant_section_keeps_its_networks_as_text,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_requests_are_refused_and_denied, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(explain_says_why_each_rule_did_not_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(explain_escapes_request_text, setup, teardown),
        cmocka_unit_test_setup_teardown(lookups_report_roles_tenants_and_apps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(walkers_go_in_file_order_and_stop_on_request,
                                        setup, teardown),
        cmocka_unit_test(method_bits_are_case_sensitive_tokens),
        cmocka_unit_test(schema_errors_name_the_problem_and_its_position),
        cmocka_unit_test(optional_sections_may_be_empty_or_null),
        cmocka_unit_test(oversized_policy_is_refused),
        cmocka_unit_test(compile_tolerates_small_error_buffers),
        cmocka_unit_test(example_policy_compiles_and_separates_admin_tools),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
