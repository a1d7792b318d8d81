/* gatehouse — who may do what in the admin console and API.
 *
 * One pure decision (no store, no clock of its own): the actor's roles in
 * force, tenant and second-factor state against an action on a target
 * tenant. The console and the API call it before every read and every
 * write; the thread that writes calls it again on the records it read
 * inside its own transaction, so a role revoked in between is honoured.
 *
 *   gatehouse-admin  everything, every tenant
 *   manager          everything within their own tenant, except platform
 *                    roles (gatehouse-admin, auditor) and users who hold one
 *   space-admin      see people of their tenant and invite (an invitation
 *                    takes effect only when a manager approves it)
 *   auditor          read-only: users, roles, audit, reviews — of every
 *                    tenant (a platform role)
 *   API tokens       listed, made and revoked by gatehouse-admin only
 *   anyone else      no console (GH_ADM_DENY)
 *
 * A tenant that requires MFA requires it for the console too
 * (GH_ADM_MFA); sensitive actions (granting manager or gatehouse-admin,
 * disabling a manager or an administrator, changing a tenant's sign-in,
 * MFA level or networks, break-glass, creating an API token) need a
 * second factor proven within
 * GH_ADM_FRESH seconds (GH_ADM_STEPUP).
 */
#ifndef GATEHOUSE_ADMIN_H
#define GATEHOUSE_ADMIN_H

#include <stdint.h>
#include "gatehouse/store.h"

#define GH_ADM_FRESH  (15 * 60)   /* seconds a step-up lasts */

/* Roles that mean something to the console, as bits. */
enum {
    GH_ADM_R_ADMIN      = 1u << 0,   /* gatehouse-admin */
    GH_ADM_R_MANAGER    = 1u << 1,
    GH_ADM_R_SPACEADMIN = 1u << 2,
    GH_ADM_R_AUDITOR    = 1u << 3,
};

/* What is asked. */
typedef enum {
    GH_ADM_CONSOLE = 0,      /* enter the console at all */
    GH_ADM_USER_VIEW,        /* list people, a person's detail */
    GH_ADM_AUDIT_VIEW,
    GH_ADM_REVIEW_VIEW,
    GH_ADM_USER_DISABLE,
    GH_ADM_USER_ENABLE,
    GH_ADM_USER_PWRESET,     /* force a password change */
    GH_ADM_USER_MFARESET,
    GH_ADM_USER_LOGOUT,      /* end every session */
    GH_ADM_ROLE_GRANT,
    GH_ADM_ROLE_REVOKE,
    GH_ADM_INVITE_CREATE,
    GH_ADM_INVITE_DECIDE,    /* approve or reject */
    GH_ADM_REVIEW_COMPLETE,
    GH_ADM_TENANT_CREATE,
    GH_ADM_TENANT_SETTINGS,  /* password profile, session lifetimes */
    GH_ADM_TENANT_SIGNIN,    /* MFA level, sign-in method, networks */
    GH_ADM_BREAKGLASS,
    GH_ADM_TOKEN_MANAGE,     /* list and revoke API tokens (anyone's) */
    GH_ADM_TOKEN_CREATE,     /* make an API token: a fresh second factor,
                                so that a token cannot mint tokens */
    GH_ADM_NACTIONS
} gh_adm_action_t;

/* The decision. */
enum {
    GH_ADM_ALLOW    = 0,
    GH_ADM_DENY     = 1,     /* 403 */
    GH_ADM_HIDDEN   = 2,     /* another tenant's object: 404, so that a
                                manager learns nothing of it */
    GH_ADM_MFA      = 3,     /* a second factor first (tenant requires it) */
    GH_ADM_STEPUP   = 4,     /* a fresh second factor first */
};

typedef struct {
    const char *uid;
    const char *tenant;
    unsigned    roles;             /* GH_ADM_R_* in force */
    int         has_mfa;           /* the session proved a second factor */
    int64_t     mfa_at;            /* when (0: never) */
    int         tenant_mfa;        /* GH_MFA_* of the actor's tenant */
} gh_adm_actor_t;

typedef struct {
    gh_adm_action_t action;
    const char     *tenant;        /* the target's tenant; NULL: none
                                      (console, tenant create) */
    const char     *uid;           /* the target user, or NULL */
    unsigned        target_roles;  /* GH_ADM_R_* the target holds */
    const char     *role;          /* grant/revoke: the role */
} gh_adm_req_t;

/* GH_ADM_R_* bits of a user's roles in force at now. */
unsigned gh_adm_roles(const gh_user_t *u, int64_t now);

/* The actor of a session: roles from u at now, MFA state from s. */
void gh_adm_actor(gh_adm_actor_t *a, const gh_user_t *u,
                  const gh_session_t *s, int tenant_mfa, int64_t now);

/* Decide. reason (may be NULL) gets a short static code for the audit
 * record and the error message ("not_admin", "other_tenant",
 * "platform_role", "read_only", "self", "mfa_required",
 * "step_up_required", "ok"). */
int gh_adm_decide(const gh_adm_actor_t *a, const gh_adm_req_t *rq,
                  int64_t now, const char **reason);

/* 1 for a role only a gatehouse-admin may grant or revoke. */
int gh_adm_platform_role(const char *role);

/* The action's name for the audit log ("role.grant", "user.disable" …). */
const char *gh_adm_action_name(gh_adm_action_t action);

#endif
