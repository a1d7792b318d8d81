/* gatehouse — what the admin console (admin.c) shares with the admin API
 * (api.c): its thread-pool jobs, which decide again on the records read
 * in the thread, act, and write the audit record. */
#ifndef NGX_HTTP_GATEHOUSE_ADMIN_H
#define NGX_HTTP_GATEHOUSE_ADMIN_H

#include "ngx_http_gatehouse.h"
#include "gatehouse/admin.h"
#include "gatehouse/invite.h"

#define GH_ADMIN_TEXT_MAX    1024   /* an audit before/after text */
#define GH_ADMIN_NACTIONS    7

/* The actions on a person: name (console form, API path) and decision. */
typedef struct {
    const char       *name;
    gh_adm_action_t   action;
} gh_admin_action_t;

extern const gh_admin_action_t gh_admin_actions[GH_ADMIN_NACTIONS];

/* One action on one person (job->uid: the actor). */
typedef struct {
    ngx_uint_t          which;           /* index in gh_admin_actions */
    gh_adm_actor_t      actor;           /* from the request (tenant MFA
                                            level read on the event loop) */
    gh_session_t        session;         /* the actor's (an API token's:
                                            second factor, never fresh) */
    char                target[GH_ID_HEXLEN + 1];
    char                role[GH_ROLE_NAME_MAX + 1];
    int64_t             until;
    const char         *via;             /* audit detail; NULL: console */
    int                 decision;        /* the thread's */
    const char         *why;
    char                email[GH_EMAIL_MAX + 1];
    char                before[GH_ADMIN_TEXT_MAX];
    char                after[GH_ADMIN_TEXT_MAX];
    char                session_ref[33];
} gh_admin_job_t;

/* One invitation step. */
typedef struct {
    int                 op;              /* 0 create, 1 approve, 2 reject */
    gh_adm_actor_t      actor;
    gh_session_t        session;
    char                session_ref[33];
    gh_invite_t         inv;             /* create: the new one; decide:
                                            as read */
    char                id[GH_ID_HEXLEN + 1];
    char                token[GH_INVITE_TOKEN_LEN + 1];
    const char         *via;
    int                 decision;
    const char         *why;
} gh_inv_job_t;

/* On the event loop, before an invitation job: the decision for the
 * action and every proposed role (create: each known to the live
 * policy). GH_ADM_* with *why. */
int gh_inv_roles_check(const gh_adm_actor_t *a, gh_adm_action_t action,
    const char *tenant, const char *roles, const char **why);

/* A query argument, percent-decoded and lower-cased into out (at most
 * max bytes, printable ASCII; max <= GH_EMAIL_MAX). NGX_DECLINED when
 * absent or empty, NGX_ERROR when malformed. */
ngx_int_t gh_admin_arg(ngx_http_request_t *r, const char *name, size_t max,
    char *out);

/* A critical log line when uid is the break-glass account. */
void gh_admin_breakglass_use(ngx_http_request_t *r, const char *uid,
    const char *email);

/* Thread-pool handlers (gh_job_post) for the two jobs. */
void gh_admin_thread(void *data, ngx_log_t *log);
void gh_inv_thread(void *data, ngx_log_t *log);

#endif
