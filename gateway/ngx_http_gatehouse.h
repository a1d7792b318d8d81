/* gatehouse — nginx glue: types shared by the module's two files.
 *
 * ngx_http_gatehouse_module.c  directives, phases, sessions, thread tasks
 * ngx_http_gatehouse_pages.c   what we send: HTML pages, JSON, cookies,
 *                              form parsing, the demo echo backend
 *
 * Everything that is not nginx plumbing lives in libgatehouse (core/,
 * authn/, authz/); this directory only translates between the two.
 */
#ifndef NGX_HTTP_GATEHOUSE_H
#define NGX_HTTP_GATEHOUSE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "gatehouse/store.h"
#include "gatehouse/session.h"
#include "gatehouse/netset.h"
#include "gatehouse/policy.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/throttle.h"
#include "gatehouse/login.h"
#include "gatehouse/mfa.h"

#define GH_PREFIX           "/.gatehouse/"
#define GH_PASSWORD_PAGE    GH_PREFIX "account/password"
#define GH_MFA_PAGE         GH_PREFIX "mfa"
#define GH_MFA_ENROL_PAGE   GH_PREFIX "mfa/enroll"
#define GH_CSRF_COOKIE      "__Host-gatehouse-csrf"
#define GH_FORM_MAX         16384     /* bytes of a login form body */
#define GH_FIELD_MAX        2048      /* one decoded form field */
#define GH_TOUCH_PENDING_MAX  64      /* last_seen writes queued per worker */

typedef struct {
    ngx_str_t            data;            /* gatehouse_data */
    ngx_str_t            master_key;      /* DATA/master.key, NUL-terminated:
                                             made once at configuration */
    ngx_str_t            pool_name;       /* gatehouse_thread_pool */
    ngx_thread_pool_t   *pool;
    time_t               idle;            /* gatehouse_session_idle */
    time_t               lifetime;        /* gatehouse_session_lifetime */
    ngx_array_t         *allowed_hosts;   /* gatehouse_redirect_hosts */
    const char         **hosts;           /* the same, NUL-terminated */
    ngx_uint_t           nhosts;
    ngx_array_t         *strip;           /* gatehouse_strip_header, lower-case */
    ngx_array_t         *trusted;         /* gatehouse_trusted_proxies */
    gh_netset_t         *trusted_set;     /* the same, compiled */
    ngx_open_file_t     *decision_log;    /* gatehouse_decision_log */
    ngx_str_t            public_url;      /* gatehouse_public_url (JWT iss) */
    time_t               jwt_lifetime;    /* gatehouse_jwt_lifetime */
    ngx_array_t         *metrics_from;    /* gatehouse_metrics_allow */
    gh_netset_t         *metrics_allow;   /* the same, compiled */
    ngx_str_t            blocklist_path;  /* gatehouse_password_blocklist */
    gh_blocklist_t      *blocklist;       /* john-data's list + that file,
                                             loaded at configuration time */
    gh_throttle_conf_t   throttle;        /* gatehouse_login_throttle */
    ngx_flag_t           throttle_set;
    ngx_int_t            totp_window;     /* gatehouse_mfa_totp_window */
    ngx_int_t            hotp_window;     /* gatehouse_mfa_hotp_window */
    ngx_flag_t           used;            /* some server turned us on */
} ngx_http_gatehouse_main_conf_t;

typedef struct {
    ngx_flag_t           enable;          /* gatehouse on|off */
    ngx_str_t            app;             /* gatehouse_app */
    ngx_str_t            audience;        /* gatehouse_jwt_audience */
    ngx_flag_t           hsts;            /* gatehouse_hsts */
    ngx_flag_t           echo;            /* gatehouse_echo (demo backend) */
} ngx_http_gatehouse_loc_conf_t;

/* Per-request state, from the access phase on. */
typedef struct {
    unsigned             stripped:1;      /* identity headers removed */
    unsigned             authenticated:1;
    unsigned             store_failed:1;  /* could not decide: fail closed */
    unsigned             csrf_new:1;      /* csrf cookie must be set */
    unsigned             decided:1;       /* a policy decision was made */
    unsigned             allowed:1;
    unsigned             pwchange:1;      /* a live session that may only
                                             change its password: treated
                                             as no session elsewhere */
    unsigned             mfa_pending:1;   /* a live session waiting for its
                                             second factor: the same */
    unsigned             email_first:1;   /* the login page asks for the
                                             email alone (home-realm
                                             discovery is in use) */
    ngx_uint_t           status;          /* refusal: 400, 401, 403, 503 */
    const char          *reason;          /* refusal/decision code (static) */
    u_char               rule[GH_RULE_NAME_MAX + 1];
    gh_addr_t            addr;            /* the client, see gh_client_addr */
    u_char               addr_text[GH_ADDR_TEXT_MAX];
    char                 roles_text[GH_ROLES_MAX + 1];  /* active roles */
    u_char               request_id[33];
    gh_user_t            user;
    gh_session_t         session;
    uint8_t              key[32];         /* store key of the session */
    ngx_str_t            csrf;            /* this response's csrf token */
    ngx_str_t            message;         /* login page notice */
    ngx_str_t            username;        /* echoed back into the form */
    ngx_str_t            rd;              /* validated return target */
    time_t               retry_after;     /* 429: seconds, for Retry-After */
    const gh_verdict_t  *verdict;         /* password refused: the rules */
    ngx_str_t            policy_text;     /* the password rules, for the
                                             change page */
} ngx_http_gatehouse_ctx_t;

extern ngx_module_t  ngx_http_gatehouse_module;

/* A request-bound task: login, logout, password change, second factor. The request is blocked while the
 * thread works, so its pool (and the inputs in it) stay valid; the thread
 * touches nothing but this struct and the store. */
typedef struct gh_job_s gh_job_t;
struct gh_job_s {
    ngx_http_request_t  *request;
    void               (*finish)(ngx_http_request_t *r, gh_job_t *job);
    int                  rc;
    /* login and password change: who asks, from where (copies: the
     * thread reads nothing of the request but this struct) */
    ngx_str_t            email;
    ngx_str_t            password;        /* login; the new one at change */
    gh_login_result_t    result;
    gh_addr_t            addr;
    char                 addr_text[GH_ADDR_TEXT_MAX];
    char                 request_id[33];
    /* password change */
    ngx_str_t            current;
    char                 uid[GH_ID_HEXLEN + 1];
    char                 tenant[GH_TENANT_MAX + 1];
    char                 amr[GH_AMR_MAX + 1];
    char                 actor[GH_EMAIL_MAX + 1];
    int                  mfa;             /* read from the policy on the
                                             event loop: the thread must not
                                             touch the worker's policy */
    const gh_blocklist_t *blocklist;
    gh_pwchange_res_t    change;
    /* both: a session to delete (logout, or the one replaced at login) */
    unsigned             drop_old:1;
    uint8_t              old_key[32];
    void                *ext;             /* a job's own data (mfa.c) */
};



/* ---- module.c: per-worker state and the request plumbing ---- */

extern gh_store_t      *gh_store;
extern gh_login_ctx_t   gh_login;       /* its throttle: the configured one */
extern ngx_uint_t       gh_login_ready;

ngx_http_gatehouse_ctx_t *gh_ctx(ngx_http_request_t *r);
ngx_uint_t gh_wants_html(ngx_http_request_t *r);
/* Run thread(job) in the thread pool; job->finish answers afterwards on
 * the event loop. */
ngx_int_t gh_job_post(ngx_http_request_t *r, gh_job_t *job,
    void (*thread)(void *data, ngx_log_t *log));
void gh_job_who(gh_job_t *job, ngx_http_gatehouse_ctx_t *ctx);
void gh_job_audit(gh_job_t *job, const char *actor, const char *tenant,
    const char *event, const char *detail);
ngx_int_t gh_csrf_prepare(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx);
ngx_int_t gh_csrf_check(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *body);
void gh_set_rd(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *rd);
/* The whole request body copied into out (NUL-terminated), at most max
 * bytes; a part in a temporary file is read when files is set. NGX_OK,
 * NGX_DECLINED when larger (or in a file, without files), NGX_ERROR. */
ngx_int_t gh_body_read(ngx_http_request_t *r, size_t max, ngx_uint_t files,
    ngx_str_t *out);
ngx_int_t gh_form_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_int_t *response);
/* 503 "the gateway is busy": the thread pool refused a job. */
ngx_int_t gh_send_busy(ngx_http_request_t *r);
ngx_int_t gh_read_form(ngx_http_request_t *r,
    ngx_http_client_body_handler_pt handler);
ngx_int_t gh_session_cookie(ngx_http_request_t *r,
    char token[GH_TOKEN_LEN + 1], ngx_str_t *cookie);
void gh_wait_message(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    const char *what, time_t secs);
ngx_int_t gh_page_location(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, const char *page, ngx_str_t *loc);
ngx_int_t gh_password_location(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, ngx_str_t *loc);
/* rd from the query string (GET of one of our pages), validated. */
ngx_int_t gh_rd_from_args(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);

/* ---- mfa.c ---- */

/* Rebuild the per-worker tenant table (MFA levels, networks, session
 * lifetimes of the tenant records) when the policy version moved. */
ngx_int_t gh_tenant_table_refresh(gh_store_t *st, uint64_t ver,
    ngx_log_t *log);
/* The tenant's GH_MFA_* level (optional when not recorded). */
int gh_mfa_tenant_level(const char *tenant);
/* The tenant record's compiled networks, NULL when it sets none. */
const gh_netset_t *gh_tenant_nets(const char *tenant);
/* The tenant record's session idle and lifetime (0: not set). */
void gh_tenant_lifetimes(const char *tenant, int64_t *idle,
    int64_t *lifetime);
ngx_int_t gh_mfa_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);
ngx_int_t gh_mfa_enrol_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);

/* ---- saml.c ---- */

/* /.gatehouse/saml/<tenant>/...; ep: the path after /.gatehouse/. */
ngx_int_t gh_saml_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, ngx_str_t *ep);
/* The login form's home-realm discovery: NGX_OK with *status when it
 * answered (to the IdP, or asking for the password), NGX_DECLINED
 * otherwise. */
ngx_int_t gh_saml_discover(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, ngx_str_t *email, ngx_uint_t no_password,
    ngx_int_t *status);

/* ---- admin.c: the console, /.gatehouse/admin/ ---- */

ngx_int_t gh_admin_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);
/* /.gatehouse/api/v1/...: the admin API (api.c). */
ngx_int_t gh_api_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);
/* /.gatehouse/join: an invitee sets a password with a one-time link. */
ngx_int_t gh_join_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);
/* The worker's compiled live policy (module.c; event loop only). */
const gh_policy_t *gh_policy_live(void);
/* The session lifetimes in force for a tenant (module.c). */
void gh_session_policy_of(ngx_http_gatehouse_main_conf_t *mcf,
    const char *tenant, gh_session_policy_t *pol);
/* The login thread, after a password sign-in: critical log and audit
 * record when uid is the break-glass account. */
void gh_admin_breakglass_login(ngx_log_t *log, const char *uid,
    const char *email);
/* 1 when the live policy defines the role (or it is built in). */
int gh_live_role_known(const char *role);

/* ---- pages.c ---- */

/* Send a complete response: status, content type, body (may be empty),
 * optional Location and extra Set-Cookie values, with no-store caching and
 * the security headers of a gatehouse page. Returns what a content handler
 * returns. */
ngx_int_t gh_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *ctype, ngx_str_t *body, ngx_str_t *location,
    ngx_str_t *cookies, ngx_uint_t ncookies);

/* A public, cacheable answer (Cache-Control: public, max-age). */
ngx_int_t gh_send_cacheable(ngx_http_request_t *r, const char *ctype,
    ngx_str_t *body, ngx_uint_t max_age);

/* A jansson value (consumed), compact, newline-terminated; 500 when it is
 * NULL or cannot be serialised. */
ngx_int_t gh_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *obj);

/* A small JSON object {"error": code, "reason": reason}. */
ngx_int_t gh_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *reason);

/* The failure tail of a thread-pool job run for a signed-in user: the
 * account was disabled or deleted meanwhile (GH_EDISABLED, GH_ENOTFOUND) ->
 * 401 "no valid session"; any other code is logged as "gatehouse: <what>:
 * <error>" and answered 503 with reason. Finalizes the request. */
void gh_job_failed(ngx_http_request_t *r, int jrc, const char *what,
    const char *reason);

/* The 403 page (HTML for browsers, JSON otherwise): reason code and
 * request id, never the policy. */
ngx_int_t gh_send_forbidden(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, ngx_uint_t html);

/* The login page, with ctx->message, ctx->username, ctx->rd, ctx->csrf. */
ngx_int_t gh_send_login_page(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, ngx_uint_t status);

/* The change-password page, with ctx->message, ctx->verdict,
 * ctx->policy_text, ctx->rd, ctx->csrf (and Retry-After when
 * ctx->retry_after). */
ngx_int_t gh_send_password_page(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, ngx_uint_t status);

/* The signed-in identity as JSON (whoami). */
ngx_int_t gh_send_whoami(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    time_t idle, time_t lifetime);

/* Demo backend: echoes method, path and received headers as JSON. */
ngx_int_t gh_echo_handler(ngx_http_request_t *r);

/* Value of the named cookie in the request, or NGX_DECLINED. */
ngx_int_t gh_cookie(ngx_http_request_t *r, const char *name, ngx_str_t *value);

/* "NAME=VALUE; Path=/; Secure; HttpOnly; SameSite=Lax[; Max-Age=0]". */
ngx_int_t gh_cookie_header(ngx_pool_t *pool, const char *name,
    ngx_str_t *value, ngx_uint_t expire, ngx_str_t *out);

/* Find field in an application/x-www-form-urlencoded body and decode it
 * (first occurrence wins). NGX_DECLINED when absent, NGX_ERROR when
 * malformed or longer than max. */
/* The index of a form field's value among values[0..n), dflt when the
 * field is absent, -1 when it is none of them. */
int gh_form_choice(ngx_pool_t *pool, ngx_str_t *body, const char *field,
    const char *const *values, int n, int dflt);
/* The index of v among values[0..n), or -1. */
int gh_str_index(const u_char *v, size_t len, const char *const *values,
    int n);
ngx_int_t gh_form_field(ngx_pool_t *pool, ngx_str_t *body, const char *name,
    size_t max, ngx_str_t *out);

/* Append s HTML-escaped at p (room: 6 bytes a character); the new end. */
u_char *gh_html(u_char *p, ngx_str_t *s);

/* One of our HTML pages: the shared look, the title as <h1>, inner (HTML,
 * already escaped) as the content; the CSRF cookie when fresh and an
 * extra Set-Cookie (may be NULL), Retry-After when ctx->retry_after. */
ngx_int_t gh_send_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, const char *title, ngx_str_t *inner,
    ngx_str_t *cookie);

/* Percent-encode everything but unreserved characters and '/'. */
ngx_int_t gh_urlencode(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out);

/* ---- jwt.c ---- */

/* Reload the signing keys (unsealed with the master key at keypath) when
 * the store's key-set version changed. */
ngx_int_t gh_jwt_keys_refresh(gh_store_t *st, uint64_t ver,
    const char *keypath, ngx_log_t *log);
void gh_jwt_exit(void);
/* $gatehouse_assertion for an allowed request. */
ngx_int_t gh_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_gatehouse_ctx_t *ctx);
ngx_int_t gh_jwks_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);
ngx_int_t gh_metrics_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx);

/* ---- audit.c (thread side: blocking LMDB writes) ---- */

/* The sign-out of the session stored under key (rc: the deletion's). */
void gh_audit_logout(const char *email, const char *tenant, const char *addr,
    const char *request_id, const uint8_t key[32], int rc);
/* gh_audit() with the actor's session (token: its cookie value, or NULL). */
void gh_audit_job(const char *actor, const char *tenant, const char *addr,
    const char *request_id, const char *event, const char *detail,
    const char *token);

#endif
