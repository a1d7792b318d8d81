/* gatehouse — the admin console's authorisation (see
 * include/gatehouse/admin.h). Pure: the callers read the records and the
 * clock; this file only decides. */
#include <string.h>

#include "gatehouse/admin.h"
#include "gatehouse/error.h"

static const char *const action_names[GH_ADM_NACTIONS] = {
    [GH_ADM_CONSOLE]         = "admin.console",
    [GH_ADM_USER_VIEW]       = "admin.user_view",
    [GH_ADM_AUDIT_VIEW]      = "admin.audit_view",
    [GH_ADM_REVIEW_VIEW]     = "admin.review_view",
    [GH_ADM_USER_DISABLE]    = "user.disable",
    [GH_ADM_USER_ENABLE]     = "user.enable",
    [GH_ADM_USER_PWRESET]    = "password.must_change",
    [GH_ADM_USER_MFARESET]   = "mfa.reset",
    [GH_ADM_USER_LOGOUT]     = "session.end_all",
    [GH_ADM_ROLE_GRANT]      = "role.grant",
    [GH_ADM_ROLE_REVOKE]     = "role.revoke",
    [GH_ADM_INVITE_CREATE]   = "invite.create",
    [GH_ADM_INVITE_DECIDE]   = "invite.decide",
    [GH_ADM_REVIEW_COMPLETE] = "review.complete",
    [GH_ADM_TENANT_CREATE]   = "tenant.add",
    [GH_ADM_TENANT_SETTINGS] = "tenant.settings",
    [GH_ADM_TENANT_SIGNIN]   = "tenant.signin",
    [GH_ADM_BREAKGLASS]      = "breakglass",
    [GH_ADM_TOKEN_MANAGE]    = "apitoken.manage",
    [GH_ADM_TOKEN_CREATE]    = "apitoken.create",
};

/* Which roles may ask for each action at all (before tenant scope,
 * platform-role and step-up checks). */
#define R_ALL  (GH_ADM_R_ADMIN | GH_ADM_R_MANAGER | GH_ADM_R_SPACEADMIN | \
                GH_ADM_R_AUDITOR)
#define R_READ (GH_ADM_R_ADMIN | GH_ADM_R_MANAGER | GH_ADM_R_AUDITOR)
#define R_MGR  (GH_ADM_R_ADMIN | GH_ADM_R_MANAGER)

static const unsigned action_roles[GH_ADM_NACTIONS] = {
    [GH_ADM_CONSOLE]         = R_ALL,
    [GH_ADM_USER_VIEW]       = R_ALL,
    [GH_ADM_AUDIT_VIEW]      = R_READ,
    [GH_ADM_REVIEW_VIEW]     = R_READ,
    [GH_ADM_USER_DISABLE]    = R_MGR,
    [GH_ADM_USER_ENABLE]     = R_MGR,
    [GH_ADM_USER_PWRESET]    = R_MGR,
    [GH_ADM_USER_MFARESET]   = R_MGR,
    [GH_ADM_USER_LOGOUT]     = R_MGR,
    [GH_ADM_ROLE_GRANT]      = R_MGR,
    [GH_ADM_ROLE_REVOKE]     = R_MGR,
    [GH_ADM_INVITE_CREATE]   = GH_ADM_R_ADMIN | GH_ADM_R_MANAGER |
                               GH_ADM_R_SPACEADMIN,
    [GH_ADM_INVITE_DECIDE]   = R_MGR,
    [GH_ADM_REVIEW_COMPLETE] = R_MGR,
    [GH_ADM_TENANT_CREATE]   = GH_ADM_R_ADMIN,
    [GH_ADM_TENANT_SETTINGS] = R_MGR,
    [GH_ADM_TENANT_SIGNIN]   = R_MGR,
    [GH_ADM_BREAKGLASS]      = GH_ADM_R_ADMIN,
    [GH_ADM_TOKEN_MANAGE]    = GH_ADM_R_ADMIN,
    [GH_ADM_TOKEN_CREATE]    = GH_ADM_R_ADMIN,
};

static int is_view(gh_adm_action_t a)
{
    return a == GH_ADM_CONSOLE || a == GH_ADM_USER_VIEW ||
           a == GH_ADM_AUDIT_VIEW || a == GH_ADM_REVIEW_VIEW;
}

const char *gh_adm_action_name(gh_adm_action_t action)
{
    if ((unsigned)action >= GH_ADM_NACTIONS)
        return "admin.unknown";
    return action_names[action];
}

int gh_adm_platform_role(const char *role)
{
    return role != NULL && (strcmp(role, "gatehouse-admin") == 0 ||
                            strcmp(role, "auditor") == 0);
}

static unsigned role_bit(const char *role)
{
    if (strcmp(role, "gatehouse-admin") == 0)
        return GH_ADM_R_ADMIN;
    if (strcmp(role, "manager") == 0)
        return GH_ADM_R_MANAGER;
    if (strcmp(role, "space-admin") == 0)
        return GH_ADM_R_SPACEADMIN;
    if (strcmp(role, "auditor") == 0)
        return GH_ADM_R_AUDITOR;
    return 0;
}

unsigned gh_adm_roles(const gh_user_t *u, int64_t now)
{
    const char *act[GH_BINDINGS_MAX];
    size_t n, i;
    unsigned bits = 0;

    if (u == NULL || gh_user_off(u, now))
        return 0;
    n = gh_user_active_roles(u, now, act);
    for (i = 0; i < n; i++)
        bits |= role_bit(act[i]);
    return bits;
}

void gh_adm_actor(gh_adm_actor_t *a, const gh_user_t *u,
                  const gh_session_t *s, int tenant_mfa, int64_t now)
{
    memset(a, 0, sizeof *a);
    if (u == NULL || s == NULL)
        return;
    a->uid = u->id;
    a->tenant = u->tenant;
    a->roles = gh_adm_roles(u, now);
    a->has_mfa = strstr(s->amr, "otp") != NULL;
    a->mfa_at = a->has_mfa ? s->mfa_at : 0;
    a->tenant_mfa = tenant_mfa;
}

/* The actions that need a second factor proven within GH_ADM_FRESH. */
static int sensitive(const gh_adm_req_t *rq)
{
    switch (rq->action) {
    case GH_ADM_ROLE_GRANT:
        return rq->role != NULL && (strcmp(rq->role, "manager") == 0 ||
                                    strcmp(rq->role, "gatehouse-admin") == 0);
    case GH_ADM_USER_DISABLE:
        return (rq->target_roles & (GH_ADM_R_MANAGER | GH_ADM_R_ADMIN)) != 0;
    case GH_ADM_TENANT_SIGNIN:
    case GH_ADM_BREAKGLASS:
    case GH_ADM_TOKEN_CREATE:
        return 1;
    default:
        return 0;
    }
}

static int fresh(const gh_adm_actor_t *a, int64_t now)
{
    /* a time from the future (clock stepped back) is not fresh either */
    return a->has_mfa && a->mfa_at > 0 && a->mfa_at <= now + 60 &&
           now - a->mfa_at <= GH_ADM_FRESH;
}

#define DECIDE(code, why) do { if (reason) *reason = (why); return (code); } \
                          while (0)

int gh_adm_decide(const gh_adm_actor_t *a, const gh_adm_req_t *rq,
                  int64_t now, const char **reason)
{
    unsigned mine;
    int admin, same;

    if (a == NULL || rq == NULL || (unsigned)rq->action >= GH_ADM_NACTIONS ||
        a->uid == NULL || a->tenant == NULL)
        DECIDE(GH_ADM_DENY, "invalid");
    mine = a->roles & R_ALL;
    if (mine == 0)
        DECIDE(GH_ADM_DENY, "not_admin");
    if (a->tenant_mfa == GH_MFA_REQUIRED && !a->has_mfa)
        DECIDE(GH_ADM_MFA, "mfa_required");
    admin = (mine & GH_ADM_R_ADMIN) != 0;

    /* 1. tenant scope: only platform roles cross tenants */
    same = rq->tenant == NULL || strcmp(rq->tenant, a->tenant) == 0;
    if (!admin && !same) {
        if (!((mine & GH_ADM_R_AUDITOR) && is_view(rq->action)))
            DECIDE(GH_ADM_HIDDEN, "other_tenant");
    }

    /* 2. the action, by role; what an auditor may not do is "read_only" */
    if ((mine & action_roles[rq->action]) == 0)
        DECIDE(GH_ADM_DENY, (mine & ~GH_ADM_R_AUDITOR) == 0 ? "read_only"
                                                            : "not_allowed");

    /* 3. platform roles and their holders are the administrators' */
    if (!admin && !is_view(rq->action)) {
        if (gh_adm_platform_role(rq->role))
            DECIDE(GH_ADM_DENY, "platform_role");
        if (rq->target_roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR))
            DECIDE(GH_ADM_DENY, "platform_role");
    }

    /* 4. nobody changes their own account or roles from the console: that
     * takes a second person (and keeps the last manager from locking the
     * tenant out by mistake) */
    if (rq->uid != NULL && strcmp(rq->uid, a->uid) == 0 &&
        !is_view(rq->action))
        DECIDE(GH_ADM_DENY, "self");

    /* 5. step-up */
    if (sensitive(rq) && !fresh(a, now))
        DECIDE(GH_ADM_STEPUP, "step_up_required");
    DECIDE(GH_ADM_ALLOW, "ok");
}
