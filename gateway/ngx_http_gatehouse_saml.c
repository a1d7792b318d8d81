/* gatehouse — SAML 2.0 sign-in in the gateway:
 *
 *   GET  /.gatehouse/saml/<tenant>/metadata   the tenant's SP metadata
 *   GET  /.gatehouse/saml/<tenant>/login?rd=  signed AuthnRequest, 302 to
 *                                             the IdP
 *   POST /.gatehouse/saml/<tenant>/acs        the IdP's Response: session
 *   GET  /.gatehouse/saml/<tenant>/slo?SAML…  the IdP's LogoutRequest (or
 *                                             its LogoutResponse)
 *   POST /.gatehouse/saml/<tenant>/slo        sign out here and at the IdP
 *
 * The AuthnRequest (RSA signing, the request id's durable write) and the
 * Response (lasso parsing, signature checks, the consumed request and
 * assertion ids, the session) run in the thread pool through
 * authn/saml.c; the event loop only reads the metadata and answers.
 * RelayState is never read: the return path is the one stored with the
 * request id.
 */
#include "ngx_http_gatehouse.h"

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/saml.h"
#include "gatehouse/util.h"

#define GH_SAML_COOKIE   "__Host-gatehouse-saml"
#define GH_SAML_NONCE    32     /* characters: 16 random bytes, hex */

typedef struct {
    char                 base[GH_SAML_BASE_MAX + 1];
    char                 rd[GH_SAML_RD_MAX + 1];
    char                 nonce[GH_SAML_NONCE + 1];
    const char          *keypath;         /* mcf->master_key */
    ngx_str_t            response;        /* acs: SAMLResponse, decoded */
    char                *url;             /* login: malloc'd by the thread */
    char                 token[GH_TOKEN_LEN + 1];
    gh_saml_result_t     res;
    int64_t              until;           /* acs: the session's end */
    ngx_str_t            query;           /* slo: the raw query string */
    const char          *reason;          /* slo: why refused */
} gh_saml_job_t;


/* The public base (https://host[:port]) entity ids and endpoints are made
 * of: gatehouse_public_url when it is an https URL; never the Host header
 * (a client chooses it). */
static ngx_int_t
gh_saml_base(ngx_http_request_t *r, char out[GH_SAML_BASE_MAX + 1])
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_str_t                        u;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    u = mcf->public_url;
    while (u.len > 0 && u.data[u.len - 1] == '/') {
        u.len--;
    }
    if (u.len <= sizeof("https://") - 1 || u.len > GH_SAML_BASE_MAX
        || ngx_strncmp(u.data, "https://", sizeof("https://") - 1) != 0)
    {
        return NGX_DECLINED;
    }
    ngx_memcpy(out, u.data, u.len);
    out[u.len] = '\0';
    return NGX_OK;
}


static gh_job_t *
gh_saml_job(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *tenant)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    gh_job_t                        *job;
    gh_saml_job_t                   *sj;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    job = ngx_pcalloc(r->pool, sizeof(*job));
    sj = ngx_pcalloc(r->pool, sizeof(*sj));
    if (job == NULL || sj == NULL || tenant->len > GH_TENANT_MAX
        || gh_saml_base(r, sj->base) != NGX_OK)
    {
        return NULL;
    }
    job->ext = sj;
    job->request = r;
    gh_job_who(job, ctx);
    ngx_memcpy(job->tenant, tenant->data, tenant->len);
    job->tenant[tenant->len] = '\0';
    sj->keypath = (const char *) mcf->master_key.data;
    return job;
}


/* From a content handler that read no body: post the job; the request
 * lives on until finish finalizes it. */
static ngx_int_t
gh_saml_run(ngx_http_request_t *r, gh_job_t *job,
    void (*thread)(void *data, ngx_log_t *log),
    void (*finish)(ngx_http_request_t *r, gh_job_t *job))
{
    job->finish = finish;
    if (gh_job_post(r, job, thread) != NGX_OK) {
        return gh_send_busy(r);
    }
    r->main->count++;
    return NGX_DONE;
}


/* The tenant signs in with SAML: else nothing here works for it. */
static int
gh_saml_enabled(const char *tenant)
{
    int  signin;

    if (gh_store == NULL
        || gh_saml_signin_get(gh_store, tenant, &signin) != 0)
    {
        return GH_ESTORE;
    }
    return signin == GH_SIGNIN_SAML ? 0 : GH_ENOTFOUND;
}


/* ---- login: the AuthnRequest ---- */

static void
gh_saml_thread_login(void *data, ngx_log_t *log)
{
    gh_job_t       *job = data;
    gh_saml_job_t  *sj = job->ext;
    uint8_t         mk[GH_MASTER_KEY_BYTES];

    job->rc = gh_saml_enabled(job->tenant);
    if (job->rc == 0) {
        job->rc = gh_master_key_load(sj->keypath, mk);
    }
    if (job->rc == 0) {
        job->rc = gh_saml_login_start(gh_store, mk, job->tenant, sj->base,
                                      sj->rd, sj->nonce, gh_now(), &sj->url);
    }
    gh_wipe(mk, sizeof(mk));
}


static void
gh_saml_login_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_saml_job_t  *sj = job->ext;
    ngx_str_t       loc, cookie;
    ngx_int_t       rc;

    if (job->rc == 0 && sj->url != NULL) {
        loc.len = ngx_strlen(sj->url);
        loc.data = ngx_pnalloc(r->pool, loc.len);
        cookie.data = ngx_pnalloc(r->pool, 128);
        if (loc.data == NULL || cookie.data == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        } else {
            ngx_memcpy(loc.data, sj->url, loc.len);
            /* SameSite=None: the IdP's POST to the ACS is cross-site and
             * must carry it back */
            cookie.len = ngx_sprintf(cookie.data, GH_SAML_COOKIE "=%s; "
                                     "Path=/; Secure; HttpOnly; "
                                     "SameSite=None; Max-Age=%d",
                                     sj->nonce, GH_SAML_REQUEST_TTL)
                         - cookie.data;
            rc = gh_send(r, NGX_HTTP_MOVED_TEMPORARILY, "text/plain", NULL,
                         &loc, &cookie, 1);
        }
    } else if (job->rc == GH_ENOTFOUND) {
        rc = gh_send_error(r, NGX_HTTP_NOT_FOUND, "saml_not_configured",
                           "this organisation does not sign in with SAML");
    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: saml login for tenant %s could not start: "
                      "%s", job->tenant, gh_strerror(job->rc));
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "single sign-on is unavailable, try again later");
    }
    free(sj->url);
    sj->url = NULL;
    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
gh_saml_login(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *tenant)
{
    gh_job_t       *job;
    gh_saml_job_t  *sj;
    uint8_t         raw[GH_SAML_NONCE / 2];
    ngx_int_t       rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "use GET");
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (gh_rd_from_args(r, ctx) != NGX_OK || ctx->rd.len > GH_SAML_RD_MAX) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    job = gh_saml_job(r, ctx, tenant);
    if (job == NULL) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "single sign-on needs gatehouse_public_url "
                             "https://...");
    }
    sj = job->ext;
    ngx_memcpy(sj->rd, ctx->rd.data, ctx->rd.len);
    sj->rd[ctx->rd.len] = '\0';
    gh_random(raw, sizeof(raw));
    ngx_hex_dump((u_char *) sj->nonce, raw, sizeof(raw));
    sj->nonce[GH_SAML_NONCE] = '\0';
    return gh_saml_run(r, job, gh_saml_thread_login, gh_saml_login_finish);
}


/* ---- acs: the Response ---- */

static void
gh_saml_thread_acs(void *data, ngx_log_t *log)
{
    gh_job_t          *job = data;
    gh_saml_job_t     *sj = job->ext;
    gh_saml_result_t  *res = &sj->res;
    uint8_t            mk[GH_MASTER_KEY_BYTES];
    char               email[GH_EMAIL_MAX + 1], detail[256];
    gh_user_t          u;
    int                rc;

    res->reason = "internal";
    job->rc = gh_saml_enabled(job->tenant);
    if (job->rc == GH_ENOTFOUND) {
        res->reason = "saml_not_configured";
        job->rc = GH_EDENIED;
    }
    if (job->rc == 0) {
        job->rc = gh_master_key_load(sj->keypath, mk);
    }
    if (job->rc == 0) {
        job->rc = gh_saml_acs(gh_store, mk, job->tenant, sj->base,
                              (const char *) sj->response.data,
                              sj->response.len,
                              sj->nonce[0] ? sj->nonce : NULL, gh_now(),
                              GH_SAML_SKEW_DEFAULT, res);
    }
    gh_wipe(mk, sizeof(mk));

    /* existing users of this tenant only: no provisioning */
    if (job->rc == 0) {
        rc = gh_email_normalize(res->email, strlen(res->email), email);
        if (rc != 0) {
            res->reason = "bad_email";
            job->rc = GH_EDENIED;
        } else {
            rc = gh_user_by_email(gh_store, email, &u);
            if (rc == GH_ENOTFOUND || (rc == 0
                && ngx_strcmp(u.tenant, job->tenant) != 0))
            {
                res->reason = "unknown_user";
                job->rc = GH_EDENIED;
            } else if (rc != 0) {
                job->rc = rc;
            } else if (gh_user_off(&u, gh_now())) {
                res->reason = "disabled";
                job->rc = GH_EDENIED;
            } else {
                job->rc = gh_session_start(gh_store, &u, "saml", 0, gh_now(),
                                           sj->token);
                if (job->rc == 0) {
                    uint8_t  key[32];

                    ngx_cpystrn((u_char *) job->uid, (u_char *) u.id,
                                sizeof(job->uid));
                    /* for single logout; losing it loses only SLO */
                    if (gh_token_key(sj->token, GH_TOKEN_LEN, key) == 0) {
                        (void) gh_saml_session_put(gh_store, job->tenant,
                                                   key, res, sj->until);
                    }
                }
            }
        }
    }
    free(res->slo_state);
    res->slo_state = NULL;
    if (job->rc == 0 && job->drop_old) {
        (void) gh_session_del(gh_store, job->old_key);
    }
    if (job->rc == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "saml; assertion %s%Z", res->assertion_id);
        gh_job_audit(job, u.email, job->tenant, "login", detail);
    } else {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1, "saml: %s%s%s%Z",
                     res->reason, res->email[0] ? "; subject " : "",
                     res->email);
        gh_job_audit(job, "-", job->tenant, "login_failure", detail);
    }
}


static void
gh_saml_acs_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_saml_job_t             *sj = job->ext;
    ngx_str_t                  cookies[2], rd;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);
    gh_wipe(sj->nonce, sizeof(sj->nonce));
    if (job->rc == 0) {
        rd.data = (u_char *) sj->res.rd;
        rd.len = ngx_strlen(sj->res.rd);
        gh_set_rd(r, ctx, &rd);    /* checked again before it is used */
        ngx_str_set(&rd, "");
        if (gh_session_cookie(r, sj->token, &cookies[0]) != NGX_OK
            || gh_cookie_header(r->pool, GH_SAML_COOKIE, &rd, 1,
                                &cookies[1]) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: saml login ok user=%s tenant=%s",
                      job->uid, job->tenant);
        rc = gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &ctx->rd,
                     cookies, 2);
    } else if (job->rc == GH_EDENIED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: saml response refused for tenant %s: %s",
                      job->tenant, sj->res.reason);
        rc = gh_send_error(r, NGX_HTTP_FORBIDDEN, sj->res.reason,
                           "the sign-in response was refused");
    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: saml response for tenant %s not judged: "
                      "%s", job->tenant, gh_strerror(job->rc));
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "single sign-on is unavailable, try again later");
    }
    gh_wipe(sj->token, sizeof(sj->token));
    ngx_http_finalize_request(r, rc);
}


static void
gh_saml_acs_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_job_t                  *job;
    gh_saml_job_t             *sj;
    ngx_str_t                  body, tenant, nonce;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);
    tenant.data = ctx != NULL ? ctx->username.data : NULL;
    tenant.len = ctx != NULL ? ctx->username.len : 0;
    if (ctx == NULL || tenant.len == 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ngx_str_null(&ctx->username);
    rc = gh_body_read(r, GH_SAML_POST_MAX + 4096, 1, &body);
    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, gh_send_error(r,
            NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "too_large",
            "the sign-in response is too large"));
        return;
    }
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    job = gh_saml_job(r, ctx, &tenant);
    if (job == NULL) {
        ngx_http_finalize_request(r, gh_send_error(r,
            NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
            "single sign-on needs gatehouse_public_url https://..."));
        return;
    }
    sj = job->ext;
    {
        ngx_http_gatehouse_main_conf_t  *mcf;

        mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
        sj->until = gh_now() + mcf->lifetime;
    }
    if (gh_form_field(r->pool, &body, "SAMLResponse", GH_SAML_POST_MAX,
                      &sj->response) != NGX_OK || sj->response.len == 0)
    {
        ngx_http_finalize_request(r, gh_send_error(r, NGX_HTTP_BAD_REQUEST,
            "no_response", "SAMLResponse is missing or malformed"));
        return;
    }
    /* a session the browser already has is replaced, never kept */
    if (ctx->authenticated || ctx->pwchange || ctx->mfa_pending) {
        job->drop_old = 1;
        ngx_memcpy(job->old_key, ctx->key, sizeof(job->old_key));
    }
    if (gh_cookie(r, GH_SAML_COOKIE, &nonce) == NGX_OK
        && nonce.len == GH_SAML_NONCE)
    {
        ngx_memcpy(sj->nonce, nonce.data, nonce.len);
        sj->nonce[nonce.len] = '\0';
    }
    job->finish = gh_saml_acs_finish;
    if (gh_job_post(r, job, gh_saml_thread_acs) != NGX_OK) {
        ngx_http_finalize_request(r, gh_send_busy(r));
    }
}


static ngx_int_t
gh_saml_acs_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *tenant)
{
    ngx_int_t  rc;

    if (!(r->method & NGX_HTTP_POST)) {
        r->keepalive = 0;
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "the IdP posts here (HTTP-POST binding)");
    }
    /* the tenant rides in ctx->username (unused on this endpoint) until
     * the body is read */
    ctx->username = *tenant;
    rc = ngx_http_read_client_request_body(r, gh_saml_acs_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }
    return NGX_DONE;
}


/* ---- slo: single logout over HTTP-Redirect ---- */

static void
gh_saml_end_session(const uint8_t key[32], void *arg)
{
    gh_job_t  *job = arg;

    if (gh_session_del(gh_store, key) == 0) {
        gh_job_audit(job, "-", job->tenant, "logout",
                     "saml: the identity provider's logout request");
    }
}


static void
gh_saml_thread_slo(void *data, ngx_log_t *log)
{
    gh_job_t       *job = data;
    gh_saml_job_t  *sj = job->ext;
    uint8_t         mk[GH_MASTER_KEY_BYTES];
    char           *q = NULL;

    sj->reason = "internal";
    job->rc = gh_saml_enabled(job->tenant);
    if (job->rc == 0) {
        job->rc = gh_master_key_load(sj->keypath, mk);
    }
    if (job->rc == 0 && sj->query.len > GH_SAML_POST_MAX) {
        sj->reason = "too_large";
        job->rc = GH_EDENIED;
    }
    if (job->rc == 0 && (q = malloc(sj->query.len + 1)) == NULL) {
        job->rc = GH_ENOMEM;
    }
    if (job->rc == 0) {
        ngx_memcpy(q, sj->query.data, sj->query.len);
        q[sj->query.len] = '\0';
        job->rc = gh_saml_slo(gh_store, mk, job->tenant, sj->base, q,
                              gh_saml_end_session, job, &sj->url,
                              &sj->reason);
    }
    free(q);
    gh_wipe(mk, sizeof(mk));
    if (job->rc == GH_EDENIED) {
        gh_job_audit(job, "-", job->tenant, "logout_refused", sj->reason);
    }
}


/* SP-initiated: this session ends now, then the IdP is told. */
static void
gh_saml_thread_logout(void *data, ngx_log_t *log)
{
    gh_job_t       *job = data;
    gh_saml_job_t  *sj = job->ext;
    uint8_t         mk[GH_MASTER_KEY_BYTES];

    job->rc = gh_store != NULL ? gh_session_del(gh_store, job->old_key)
                               : GH_ESTORE;
    if (job->rc == 0 || job->rc == GH_ENOTFOUND) {
        gh_job_audit(job, job->actor, job->tenant, "logout", "saml");
        job->rc = gh_master_key_load(sj->keypath, mk);
        if (job->rc == 0) {
            job->rc = gh_saml_logout_start(gh_store, mk, job->tenant,
                                           sj->base, job->old_key, &sj->url);
        }
        gh_wipe(mk, sizeof(mk));
        if (job->rc == GH_ENOTFOUND) {
            job->rc = 0;        /* signed out here; the IdP is not told */
        }
    }
}


static void
gh_saml_slo_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_saml_job_t  *sj = job->ext;
    ngx_str_t       loc, cookie, empty = ngx_string("");
    ngx_int_t       rc;

    if (job->rc == 0) {
        if (gh_cookie_header(r->pool, GH_COOKIE_NAME, &empty, 1, &cookie)
            != NGX_OK)
        {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        } else if (sj->url != NULL) {
            loc.len = ngx_strlen(sj->url);
            loc.data = ngx_pnalloc(r->pool, loc.len);
            if (loc.data == NULL) {
                rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            } else {
                ngx_memcpy(loc.data, sj->url, loc.len);
                rc = gh_send(r, NGX_HTTP_MOVED_TEMPORARILY, "text/plain",
                             NULL, &loc, &cookie, 1);
            }
        } else {
            ngx_str_set(&loc, "/");
            rc = gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc,
                         &cookie, 1);
        }
    } else if (job->rc == GH_EDENIED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: saml logout message refused for tenant "
                      "%s: %s", job->tenant, sj->reason);
        rc = gh_send_error(r, NGX_HTTP_FORBIDDEN, sj->reason,
                           "the logout message was refused");
    } else if (job->rc == GH_ENOTFOUND) {
        rc = gh_send_error(r, NGX_HTTP_NOT_FOUND, "saml_not_configured",
                           "this organisation does not sign in with SAML");
    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: saml logout for tenant %s failed: %s",
                      job->tenant, gh_strerror(job->rc));
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "single logout is unavailable, try again later");
    }
    free(sj->url);
    sj->url = NULL;
    ngx_http_finalize_request(r, rc);
}


static void
gh_saml_logout_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_job_t                  *job;
    ngx_str_t                  body, tenant;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);
    if (ctx == NULL || ctx->username.len == 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    tenant = ctx->username;
    ngx_str_null(&ctx->username);
    if (gh_form_body(r, &body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }
    if (gh_csrf_prepare(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_csrf_check(r, ctx, &body) != NGX_OK) {
        ngx_http_finalize_request(r, gh_send_error(r, NGX_HTTP_FORBIDDEN,
            "csrf", "this form expired or came from another site"));
        return;
    }
    if (!ctx->authenticated
        || ngx_strlen(ctx->user.tenant) != tenant.len
        || ngx_strncmp(ctx->user.tenant, tenant.data, tenant.len) != 0)
    {
        ngx_http_finalize_request(r, gh_send_error(r,
            NGX_HTTP_UNAUTHORIZED, "unauthenticated",
            "no session of this organisation"));
        return;
    }
    job = gh_saml_job(r, ctx, &tenant);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    ngx_cpystrn((u_char *) job->actor, (u_char *) ctx->user.email,
                sizeof(job->actor));
    ngx_memcpy(job->old_key, ctx->key, sizeof(job->old_key));
    job->finish = gh_saml_slo_finish;
    if (gh_job_post(r, job, gh_saml_thread_logout) != NGX_OK) {
        ngx_http_finalize_request(r, gh_send_busy(r));
    }
}


static ngx_int_t
gh_saml_slo_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *tenant)
{
    gh_job_t       *job;
    gh_saml_job_t  *sj;
    ngx_int_t       rc;

    if (r->method & NGX_HTTP_POST) {
        /* our own sign-out button: CSRF-checked, for this tenant's
         * session */
        ctx->username = *tenant;
        rc = gh_read_form(r, gh_saml_logout_body);
        return rc;
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) || r->args.len == 0) {
        return gh_send_error(r, NGX_HTTP_BAD_REQUEST, "no_message",
                             "expected a SAMLRequest or SAMLResponse");
    }
    job = gh_saml_job(r, ctx, tenant);
    if (job == NULL) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "single logout needs gatehouse_public_url "
                             "https://...");
    }
    sj = job->ext;
    sj->query = r->args;
    return gh_saml_run(r, job, gh_saml_thread_slo, gh_saml_slo_finish);
}


/* ---- metadata ---- */

static ngx_int_t
gh_saml_metadata(ngx_http_request_t *r, ngx_str_t *tenant)
{
    char       t[GH_TENANT_MAX + 1], base[GH_SAML_BASE_MAX + 1], *xml = NULL;
    ngx_str_t  body;
    ngx_int_t  rc;
    int        err;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "use GET");
    }
    if (gh_saml_base(r, base) != NGX_OK) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "single sign-on needs gatehouse_public_url "
                             "https://...");
    }
    ngx_memcpy(t, tenant->data, tenant->len);
    t[tenant->len] = '\0';
    /* reads only (an LMDB read and the certificate's encoding) */
    err = gh_store != NULL ? gh_saml_sp_metadata(gh_store, t, base, &xml)
                           : GH_ESTORE;
    if (err == GH_ENOTFOUND) {
        return gh_send_error(r, NGX_HTTP_NOT_FOUND, "saml_not_configured",
                             "no SAML service provider for this organisation");
    }
    if (err != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    body.len = ngx_strlen(xml);
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        free(xml);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(body.data, xml, body.len);
    free(xml);
    return gh_send(r, NGX_HTTP_OK, "application/samlmetadata+xml", &body,
                   NULL, NULL, 0);
}


/* /.gatehouse/saml/<tenant>/<what>: ep is what follows /.gatehouse/. */
ngx_int_t
gh_saml_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *ep)
{
    ngx_str_t   tenant, what;
    u_char     *p, *end, *slash;
    ngx_int_t   rc;

    p = ep->data + sizeof("saml/") - 1;
    end = ep->data + ep->len;
    slash = ngx_strlchr(p, end, '/');
    if (slash == NULL || slash == p || slash - p > GH_TENANT_MAX) {
        goto not_found;
    }
    tenant.data = p;
    tenant.len = slash - p;
    for (p = tenant.data; p < slash; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-'))
        {
            goto not_found;
        }
    }
    what.data = slash + 1;
    what.len = end - what.data;
    if (what.len == sizeof("metadata") - 1
        && ngx_strncmp(what.data, "metadata", what.len) == 0)
    {
        return gh_saml_metadata(r, &tenant);
    }
    if (what.len == sizeof("login") - 1
        && ngx_strncmp(what.data, "login", what.len) == 0)
    {
        return gh_saml_login(r, ctx, &tenant);
    }
    if (what.len == sizeof("acs") - 1
        && ngx_strncmp(what.data, "acs", what.len) == 0)
    {
        return gh_saml_acs_endpoint(r, ctx, &tenant);
    }
    if (what.len == sizeof("slo") - 1
        && ngx_strncmp(what.data, "slo", what.len) == 0)
    {
        return gh_saml_slo_endpoint(r, ctx, &tenant);
    }

not_found:
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    return gh_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                         "no such gatehouse endpoint");
}


/* Home-realm discovery at the login form (event loop: one LMDB read).
 * The email's domain names a tenant: a SAML tenant's user goes to its
 * IdP (a password typed along is never checked); a password tenant's user
 * who gave no password gets the form back asking for it. NGX_DECLINED:
 * no domain matched (or no decision), the password login goes on. */
ngx_int_t
gh_saml_discover(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *email, ngx_uint_t no_password, ngx_int_t *status)
{
    char        tenant[GH_TENANT_MAX + 1];
    ngx_str_t   loc, rd;
    int         signin;
    u_char     *p;

    if (gh_store == NULL || email->len == 0
        || gh_saml_domain_tenant(gh_store, (const char *) email->data,
                                 email->len, tenant) != 0
        || gh_saml_signin_get(gh_store, tenant, &signin) != 0)
    {
        return NGX_DECLINED;
    }
    if (signin == GH_SIGNIN_SAML) {
        if (gh_urlencode(r->pool, &ctx->rd, &rd) != NGX_OK) {
            *status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_OK;
        }
        loc.data = ngx_pnalloc(r->pool, sizeof(GH_PREFIX "saml//login?rd=")
                               + GH_TENANT_MAX + rd.len);
        if (loc.data == NULL) {
            *status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_OK;
        }
        p = ngx_sprintf(loc.data, GH_PREFIX "saml/%s/login?rd=%V", tenant,
                        &rd);
        loc.len = p - loc.data;
        *status = gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc,
                          NULL, 0);
        return NGX_OK;
    }
    if (no_password) {
        ngx_str_set(&ctx->message, "Enter your password.");
        *status = gh_send_login_page(r, ctx, NGX_HTTP_OK);
        return NGX_OK;
    }
    return NGX_DECLINED;
}
