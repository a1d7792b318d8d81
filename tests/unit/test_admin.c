/* gh_adm_decide: who may do what in the admin console. Each test removes
 * one protection's premise and expects the refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "gatehouse/admin.h"

#define NOW 1800000000

static gh_adm_actor_t actor(const char *tenant, unsigned roles)
{
    gh_adm_actor_t a;

    memset(&a, 0, sizeof a);
    a.uid = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    a.tenant = tenant;
    a.roles = roles;
    a.tenant_mfa = GH_MFA_OPTIONAL;
    return a;
}

static gh_adm_req_t req(gh_adm_action_t act, const char *tenant)
{
    gh_adm_req_t r;

    memset(&r, 0, sizeof r);
    r.action = act;
    r.tenant = tenant;
    r.uid = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    return r;
}

static int decide(const gh_adm_actor_t *a, const gh_adm_req_t *r)
{
    return gh_adm_decide(a, r, NOW, NULL);
}

static void member_and_visitor_get_no_console(void **state)
{
    gh_adm_actor_t a = actor("acme", 0);
    gh_adm_req_t r = req(GH_ADM_CONSOLE, NULL);
    const char *why;

    (void)state;
    assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_DENY);
    assert_string_equal(why, "not_admin");
    r = req(GH_ADM_USER_VIEW, "acme");
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
}

static void manager_acts_in_own_tenant_only(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_MANAGER);
    gh_adm_req_t r;
    const char *why;
    static const gh_adm_action_t acts[] = {
        GH_ADM_USER_VIEW, GH_ADM_USER_DISABLE, GH_ADM_USER_ENABLE,
        GH_ADM_ROLE_GRANT, GH_ADM_ROLE_REVOKE, GH_ADM_USER_LOGOUT,
        GH_ADM_AUDIT_VIEW, GH_ADM_INVITE_DECIDE, GH_ADM_TENANT_SETTINGS,
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        r = req(acts[i], "acme");
        r.role = "member";
        assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
        r.tenant = "globex";
        assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_HIDDEN);
        assert_string_equal(why, "other_tenant");
    }
    r = req(GH_ADM_TENANT_CREATE, NULL);
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    r = req(GH_ADM_BREAKGLASS, NULL);
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
}

static void gatehouse_admin_reaches_every_tenant(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_ADMIN);
    gh_adm_req_t r = req(GH_ADM_USER_DISABLE, "globex");

    (void)state;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r = req(GH_ADM_ROLE_GRANT, "globex");
    r.role = "auditor";
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r = req(GH_ADM_TENANT_CREATE, NULL);
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
}

static void manager_cannot_touch_platform_roles_or_their_holders(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_MANAGER);
    gh_adm_req_t r = req(GH_ADM_ROLE_GRANT, "acme");
    const char *why;

    (void)state;
    r.role = "gatehouse-admin";
    assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_DENY);
    assert_string_equal(why, "platform_role");
    r.role = "auditor";
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    r = req(GH_ADM_USER_DISABLE, "acme");
    r.target_roles = GH_ADM_R_ADMIN;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    r.target_roles = GH_ADM_R_AUDITOR;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    r.target_roles = 0;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
}

static void space_admin_only_invites(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_SPACEADMIN);
    gh_adm_req_t r = req(GH_ADM_INVITE_CREATE, "acme");
    static const gh_adm_action_t no[] = {
        GH_ADM_USER_DISABLE, GH_ADM_ROLE_GRANT, GH_ADM_ROLE_REVOKE,
        GH_ADM_INVITE_DECIDE, GH_ADM_AUDIT_VIEW, GH_ADM_TENANT_SETTINGS,
        GH_ADM_USER_PWRESET, GH_ADM_USER_MFARESET,
    };
    size_t i;

    (void)state;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r.tenant = "globex";
    assert_int_equal(decide(&a, &r), GH_ADM_HIDDEN);
    for (i = 0; i < sizeof no / sizeof no[0]; i++) {
        r = req(no[i], "acme");
        r.role = "member";
        assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    }
}

static void auditor_reads_everything_and_writes_nothing(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_AUDITOR);
    gh_adm_req_t r;
    const char *why;
    int act;

    (void)state;
    r = req(GH_ADM_USER_VIEW, "globex");
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r = req(GH_ADM_AUDIT_VIEW, "globex");
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r = req(GH_ADM_REVIEW_VIEW, "acme");
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    for (act = GH_ADM_USER_DISABLE; act < GH_ADM_NACTIONS; act++) {
        r = req((gh_adm_action_t)act, "acme");
        r.role = "member";
        assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_DENY);
        assert_string_equal(why, "read_only");
        r.tenant = "globex";
        assert_int_not_equal(decide(&a, &r), GH_ADM_ALLOW);
    }
}

static void tenant_requiring_mfa_requires_it_for_the_console(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_MANAGER);
    gh_adm_req_t r = req(GH_ADM_USER_VIEW, "acme");

    (void)state;
    a.tenant_mfa = GH_MFA_REQUIRED;
    assert_int_equal(decide(&a, &r), GH_ADM_MFA);
    a.has_mfa = 1;
    a.mfa_at = NOW - 3600;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
}

static void granting_manager_needs_a_fresh_second_factor(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_MANAGER);
    gh_adm_req_t r = req(GH_ADM_ROLE_GRANT, "acme");
    const char *why;

    (void)state;
    r.role = "manager";
    assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_STEPUP);
    assert_string_equal(why, "step_up_required");
    a.has_mfa = 1;
    a.mfa_at = NOW - GH_ADM_FRESH - 1;            /* stale */
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    a.mfa_at = NOW + 3600;                        /* from the future */
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    a.mfa_at = NOW - 60;                          /* fresh */
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    a.has_mfa = 0;                                /* a time, but no otp */
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    /* an ordinary role needs no step-up */
    r.role = "member";
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
}

static void sensitive_actions_need_step_up(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_ADMIN);
    gh_adm_req_t r;

    (void)state;
    r = req(GH_ADM_ROLE_GRANT, "acme");
    r.role = "gatehouse-admin";
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    r = req(GH_ADM_USER_DISABLE, "acme");
    r.target_roles = GH_ADM_R_MANAGER;
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    r.target_roles = GH_ADM_R_SPACEADMIN;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r = req(GH_ADM_TENANT_SIGNIN, "acme");
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    r = req(GH_ADM_BREAKGLASS, NULL);
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    a.has_mfa = 1;
    a.mfa_at = NOW;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
}

static void only_administrators_manage_api_tokens(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_MANAGER | GH_ADM_R_AUDITOR);
    gh_adm_req_t r = req(GH_ADM_TOKEN_MANAGE, NULL);
    const char *why;

    (void)state;
    r.uid = NULL;
    assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_DENY);
    assert_string_equal(why, "not_allowed");
    r.action = GH_ADM_TOKEN_CREATE;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    a.has_mfa = 1;                               /* fresh: still no */
    a.mfa_at = NOW;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    a = actor("acme", GH_ADM_R_ADMIN);
    r.action = GH_ADM_TOKEN_MANAGE;              /* list, revoke */
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    r.action = GH_ADM_TOKEN_CREATE;              /* a token: never fresh */
    assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_STEPUP);
    assert_string_equal(why, "step_up_required");
    a.has_mfa = 1;
    a.mfa_at = NOW - GH_ADM_FRESH - 1;
    assert_int_equal(decide(&a, &r), GH_ADM_STEPUP);
    a.mfa_at = NOW - 60;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
    assert_string_equal(gh_adm_action_name(GH_ADM_TOKEN_CREATE),
                        "apitoken.create");
}

static void nobody_changes_their_own_account(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_ADMIN);
    gh_adm_req_t r = req(GH_ADM_USER_DISABLE, "acme");
    const char *why;

    (void)state;
    r.uid = a.uid;
    assert_int_equal(gh_adm_decide(&a, &r, NOW, &why), GH_ADM_DENY);
    assert_string_equal(why, "self");
    r = req(GH_ADM_USER_VIEW, "acme");
    r.uid = a.uid;
    assert_int_equal(decide(&a, &r), GH_ADM_ALLOW);
}

static void roles_come_from_bindings_in_force(void **state)
{
    gh_user_t u;
    gh_session_t s;
    gh_adm_actor_t a;

    (void)state;
    memset(&u, 0, sizeof u);
    memset(&s, 0, sizeof s);
    strcpy(u.id, "cccccccccccccccccccccccccccccccc");
    strcpy(u.tenant, "acme");
    strcpy(u.bindings[0].role, "manager");
    u.bindings[0].until = NOW - 1;                /* ended */
    strcpy(u.bindings[1].role, "auditor");
    u.bindings[1].until = 0;
    strcpy(u.bindings[2].role, "member");
    u.nbindings = 3;
    assert_int_equal(gh_adm_roles(&u, NOW), GH_ADM_R_AUDITOR);
    u.bindings[0].until = NOW + 10;
    assert_int_equal(gh_adm_roles(&u, NOW),
                     GH_ADM_R_AUDITOR | GH_ADM_R_MANAGER);
    u.disabled = 1;
    assert_int_equal(gh_adm_roles(&u, NOW), 0);
    u.disabled = 0;
    strcpy(s.amr, "pwd");
    s.mfa_at = NOW;                               /* no otp in amr */
    gh_adm_actor(&a, &u, &s, GH_MFA_OPTIONAL, NOW);
    assert_int_equal(a.has_mfa, 0);
    assert_int_equal(a.mfa_at, 0);
    strcpy(s.amr, "pwd+otp");
    gh_adm_actor(&a, &u, &s, GH_MFA_OPTIONAL, NOW);
    assert_int_equal(a.has_mfa, 1);
    assert_int_equal(a.mfa_at, NOW);
}

static void malformed_requests_are_refused(void **state)
{
    gh_adm_actor_t a = actor("acme", GH_ADM_R_ADMIN);
    gh_adm_req_t r = req(GH_ADM_USER_VIEW, "acme");

    (void)state;
    assert_int_equal(decide(NULL, &r), GH_ADM_DENY);
    assert_int_equal(decide(&a, NULL), GH_ADM_DENY);
    r.action = GH_ADM_NACTIONS;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    r.action = (gh_adm_action_t)-1;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    r = req(GH_ADM_USER_VIEW, "acme");
    a.tenant = NULL;
    assert_int_equal(decide(&a, &r), GH_ADM_DENY);
    assert_string_equal(gh_adm_action_name(GH_ADM_ROLE_GRANT), "role.grant");
    assert_string_equal(gh_adm_action_name(GH_ADM_NACTIONS), "admin.unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(member_and_visitor_get_no_console),
        cmocka_unit_test(manager_acts_in_own_tenant_only),
        cmocka_unit_test(gatehouse_admin_reaches_every_tenant),
        cmocka_unit_test(manager_cannot_touch_platform_roles_or_their_holders),
        cmocka_unit_test(space_admin_only_invites),
        cmocka_unit_test(auditor_reads_everything_and_writes_nothing),
        cmocka_unit_test(tenant_requiring_mfa_requires_it_for_the_console),
        cmocka_unit_test(granting_manager_needs_a_fresh_second_factor),
        cmocka_unit_test(sensitive_actions_need_step_up),
        cmocka_unit_test(only_administrators_manage_api_tokens),
        cmocka_unit_test(nobody_changes_their_own_account),
        cmocka_unit_test(roles_come_from_bindings_in_force),
        cmocka_unit_test(malformed_requests_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
