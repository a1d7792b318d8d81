/* gatehouse — what the admin console (admin.c) shares with the admin API
 * (api.c): its thread-pool jobs, which decide again on the records read
 * in the thread, act, and write the audit record (job->uid: the actor). */
#ifndef NGX_HTTP_GATEHOUSE_ADMIN_H
#define NGX_HTTP_GATEHOUSE_ADMIN_H

#include "ngx_http_gatehouse.h"
#include "gatehouse/admin.h"
#include "gatehouse/invite.h"

#include <jansson.h>

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

/* An access review's write: "review completed" or a bulk disable of
 * flagged accounts, each re-decided and re-checked as flagged in the
 * thread (job->uid: the actor). */
#define GH_REVIEW_DAYS   90     /* inactive after N days: flagged */
#define GH_REVIEW_PAGE   50     /* people a page (and a bulk action) */

typedef struct {
    int              complete;
    gh_adm_actor_t   actor;
    gh_session_t     session;
    char             session_ref[33];
    char             tenant[GH_TENANT_MAX + 1];
    char             ids[GH_REVIEW_PAGE][GH_ID_HEXLEN + 1];
    ngx_uint_t       nids, disabled, skipped;
    unsigned         flagged;
    int64_t          days;
    const char      *via;                /* audit detail; NULL: console */
    int              decision;
    const char      *why;
} gh_rev_job_t;

/* One break-glass step (two different administrators, each with a fresh
 * second factor). */
typedef struct {
    int              op;                 /* 0 request, 1 approve, 2 end */
    gh_adm_actor_t   actor;
    gh_session_t     session;
    char             session_ref[33];
    const char      *via;                /* audit detail; NULL: console */
    int              decision;
    const char      *why;
    gh_breakglass_t  bg;
    char             email[GH_EMAIL_MAX + 1];   /* the emergency account */
    int64_t          now;
    int              expired;            /* an approval had run out */
    const char      *actor_uid, *actor_email;
} gh_bg_job_t;

/* A read of the audit log: the newest `limit` matches (a ring) of the
 * records from `from` to `to` and, with before > 0, of sequence numbers
 * below it; at most GH_AUDIT_VIEW_SCAN records are read. */
#define GH_AUDIT_VIEW_ROWS   100
#define GH_AUDIT_VIEW_SCAN   50000
#define GH_AUDIT_FILTER_MAX  128

typedef struct {
    char        datadir[NGX_MAX_PATH];
    char        actor[GH_AUDIT_FILTER_MAX + 1];
    char        target[GH_AUDIT_FILTER_MAX + 1];
    char        action[GH_AUDIT_FILTER_MAX + 1];
    char        tenant[GH_TENANT_MAX + 1];  /* "": every tenant */
    int64_t     from, to;
    int64_t     before;                     /* seq cursor; 0: none */
    ngx_uint_t  limit;                      /* 1 .. GH_AUDIT_VIEW_ROWS */
    ngx_uint_t  scanned, matched, truncated;
    json_t     *rows[GH_AUDIT_VIEW_ROWS];   /* a ring of the newest */
    ngx_uint_t  next;
} gh_aud_job_t;

/* Make, or revoke, an API token (administrators; making one needs a
 * fresh second factor). The token is in `token` only until the answer is
 * sent: wipe it then. */
typedef struct {
    int              op;                 /* 0 create, 1 revoke */
    gh_adm_actor_t   actor;
    gh_session_t     session;
    char             session_ref[40];
    const char      *via;                /* audit detail */
    char             email[GH_EMAIL_MAX + 1];      /* create: the owner */
    char             name[GH_APITOKEN_NAME_MAX + 1];
    int64_t          days, expires;
    char             id[17];
    char             token[GH_APITOKEN_LEN + 1];
    int              decision;
    const char      *why;
} gh_tok_job_t;

#define GH_TOKEN_DAYS_MAX  365

/* One tenant setting (console form or API call): GH_TEN_* order is the
 * console's form table order. */
enum {
    GH_TEN_CREATE, GH_TEN_PROFILE, GH_TEN_MFA, GH_TEN_NETWORKS,
    GH_TEN_SESSION, GH_TEN_SIGNIN, GH_TEN_DOMAIN_ADD, GH_TEN_DOMAIN_DEL,
    GH_TEN_NOPS
};

typedef struct {
    int              op;                 /* GH_TEN_* */
    gh_adm_actor_t   actor;
    gh_session_t     session;
    char             session_ref[33];
    char             tenant[GH_TENANT_MAX + 1];
    char             display[GH_NAME_MAX + 1];
    int              value;              /* profile, MFA level, sign-in */
    char             text[GH_TENANT_NETS_MAX + 1];  /* networks ("" unset)
                                                       or a domain */
    int64_t          idle, lifetime;     /* 0: the policy file's */
    ngx_uint_t       unread;             /* the fields did not read */
    const char      *via;                /* audit detail; NULL: console */
    int              decision;
    const char      *why;
    ngx_uint_t       status;             /* with err: the refusal */
    char             before[GH_TENANT_NETS_MAX + 1];
    char             after[GH_TENANT_NETS_MAX + 1];
    char             err[160];
} gh_ten_job_t;

/* The GH_TEN_* op a form action or API path names ("profile", "mfa",
 * "networks", "session", "signin", "domain-add", "domain-del",
 * "create"), or -1; the decision it needs; the index of a value of a
 * choice op (profile: nist|classes, mfa: optional|required|off, signin:
 * password|password+otp|saml), or -1. */
int gh_ten_op(const u_char *name, size_t len);
gh_adm_action_t gh_ten_action(int op);
int gh_ten_value(int op, const u_char *v, size_t len);
void gh_ten_thread(void *data, ngx_log_t *log);

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

/* How many of u's sessions are in force at now (live), and how many wait
 * for a second factor or a password change (pending). */
ngx_int_t gh_admin_session_count(ngx_http_request_t *r, const gh_user_t *u,
    int64_t now, ngx_uint_t *live, ngx_uint_t *pending);

/* A critical log line when uid is the break-glass account. */
void gh_admin_breakglass_use(ngx_http_request_t *r, const char *uid,
    const char *email);

/* In a job's thread: the actor (job->uid) as stored now and the decision
 * for action on tenant (NULL: none), taken again. A store error is
 * job->rc, with GH_ADM_DENY and "error". */
int gh_admin_redecide(gh_job_t *job, const gh_adm_actor_t *asked,
    const gh_session_t *s, gh_adm_action_t action, const char *tenant,
    gh_user_t *actor, int64_t now, const char **why);

/* The audit record of a job's administrative step by actor: rc 0
 * success, GH_EDENIED denied (why), anything else a failure. */
void gh_admin_record(gh_job_t *job, const gh_user_t *actor,
    const char *session_ref, const char *action, const char *target, int rc,
    const char *why, const char *detail, const char *before,
    const char *after);

/* Flagged in a review: enabled, and no sign-in for `days` (never signed
 * in: an account older than that). */
int gh_review_flag(const gh_user_t *u, int64_t last, int64_t now,
    int64_t days);

/* An audit filter argument (actor, target, action): printable, kept as
 * typed; "" when absent, NGX_ERROR when malformed. */
ngx_int_t gh_aud_arg(ngx_http_request_t *r, const char *name, char *out);

/* The ring of an audit read: how many it holds, the i-th newest, and
 * dropping them (every finish must). */
ngx_uint_t gh_aud_count(const gh_aud_job_t *aj);
json_t *gh_aud_row(const gh_aud_job_t *aj, ngx_uint_t i);
void gh_aud_free(gh_aud_job_t *aj);

/* A token's fields (decoded text) into tj: email (normalised), name
 * (printable, at most GH_APITOKEN_NAME_MAX), days (1 to
 * GH_TOKEN_DAYS_MAX; empty: 90). NULL, or what is wrong. */
const char *gh_tok_fields(gh_tok_job_t *tj, const u_char *email,
    size_t elen, const u_char *name, size_t nlen, const u_char *days,
    size_t dlen);

/* Thread-pool handlers (gh_job_post) for the jobs. */
void gh_admin_thread(void *data, ngx_log_t *log);
void gh_inv_thread(void *data, ngx_log_t *log);
void gh_rev_thread(void *data, ngx_log_t *log);
void gh_bg_thread(void *data, ngx_log_t *log);
void gh_aud_thread(void *data, ngx_log_t *log);
void gh_tok_thread(void *data, ngx_log_t *log);

#endif
