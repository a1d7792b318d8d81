/* gatehouse — the second factor in the gateway: /.gatehouse/mfa (the code
 * after the password, and step-up) and /.gatehouse/mfa/enroll, plus the
 * per-worker table of tenant settings (MFA level, networks, session
 * lifetimes) the decision reads.
 *
 * Everything that writes (a code accepted, a counter moved, a session
 * replaced, an enrolment stored) runs in the thread pool through
 * authn/mfa.c; the event loop only reads (the user's factor record, one
 * LMDB read) and renders pages. The master key is read from the data
 * directory by each job that needs it and wiped after.
 */
#include "ngx_http_gatehouse.h"

#include "gatehouse/admin.h"
#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/mfa.h"
#include "gatehouse/netset.h"
#include "gatehouse/otp.h"
#include "gatehouse/redirect.h"
#include "gatehouse/util.h"


/* ---- the per-worker tenant table: what decisions read of the tenant
 * records (MFA level, networks, session lifetimes), only for tenants that
 * set anything but the defaults ---- */

typedef struct {
    char          name[GH_TENANT_MAX + 1];
    int           level;
    gh_netset_t  *nets;          /* compiled; NULL: the policy file's */
    int64_t       idle, lifetime;
} gh_level_t;

typedef struct {
    gh_level_t  *v;
    size_t       n, cap;
} gh_levels_t;

static gh_levels_t  gh_levels;
static uint64_t     gh_levels_ver;
static ngx_uint_t   gh_levels_loaded;


static void
gh_levels_free(gh_levels_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        gh_netset_free(l->v[i].nets);
    }
    free(l->v);
    ngx_memzero(l, sizeof(*l));
}


static int
gh_levels_collect(const gh_tenant_t *t, void *arg)
{
    gh_levels_t  *l = arg;
    gh_level_t   *nv, *e;

    if (t->mfa == GH_MFA_OPTIONAL && !t->networks_set && t->idle == 0
        && t->lifetime == 0)
    {
        return 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        nv = realloc(l->v, l->cap * sizeof(*nv));
        if (nv == NULL) {
            return GH_ENOMEM;
        }
        l->v = nv;
    }
    e = &l->v[l->n];
    ngx_memzero(e, sizeof(*e));
    ngx_cpystrn((u_char *) e->name, (u_char *) t->name, sizeof(e->name));
    e->level = t->mfa;
    e->idle = t->idle;
    e->lifetime = t->lifetime;
    l->n++;
    if (!t->networks_set) {
        return 0;
    }
    e->nets = gh_netset_new();
    if (e->nets == NULL) {
        return GH_ENOMEM;
    }
    /* stored canonical and checked at decode: a failure here is a fault */
    if (gh_netset_add_list(e->nets, t->networks, GH_TENANT_NETS_COUNT,
                           NULL, 0) <= 0
        || gh_netset_compile(e->nets) != 0)
    {
        return GH_ESTORE;
    }
    return 0;
}


/* Every change of a tenant's MFA level, networks or lifetimes bumps the
 * policy version: rebuild the table whenever it moves. A failed read
 * fails closed (the caller answers 503). */
ngx_int_t
gh_tenant_table_refresh(gh_store_t *st, uint64_t ver, ngx_log_t *log)
{
    gh_levels_t  fresh;
    int          rc;

    if (gh_levels_loaded && ver == gh_levels_ver) {
        return NGX_OK;
    }
    ngx_memzero(&fresh, sizeof(fresh));
    rc = gh_tenant_list(st, gh_levels_collect, &fresh);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "gatehouse: cannot read the tenants' settings: %s",
                      gh_strerror(rc));
        gh_levels_free(&fresh);
        return NGX_ERROR;
    }
    gh_levels_free(&gh_levels);
    gh_levels = fresh;
    gh_levels_ver = ver;
    gh_levels_loaded = 1;
    return NGX_OK;
}


/* The walk above is in key order (byte order of the names): search it. */
static const gh_level_t *
gh_tenant_entry(const char *tenant)
{
    size_t  lo = 0, hi = gh_levels.n, mid;
    int     c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = ngx_strcmp(tenant, gh_levels.v[mid].name);
        if (c == 0) {
            return &gh_levels.v[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}


int
gh_mfa_tenant_level(const char *tenant)
{
    const gh_level_t  *e = gh_tenant_entry(tenant);

    return e != NULL ? e->level : GH_MFA_OPTIONAL;
}


const gh_netset_t *
gh_tenant_nets(const char *tenant)
{
    const gh_level_t  *e = gh_tenant_entry(tenant);

    return e != NULL ? e->nets : NULL;
}


void
gh_tenant_lifetimes(const char *tenant, int64_t *idle, int64_t *lifetime)
{
    const gh_level_t  *e = gh_tenant_entry(tenant);

    *idle = e != NULL ? e->idle : 0;
    *lifetime = e != NULL ? e->lifetime : 0;
}


/* ---- pages ---- */

/* A small writer into one pool buffer sized by the caller. */
typedef struct {
    u_char  *start, *p;
} gh_buf_t;

#define gh_lit(b, s)  ((b)->p = ngx_cpymem((b)->p, s, sizeof(s) - 1))

static void
gh_esc(gh_buf_t *b, const char *s)
{
    ngx_str_t  v;

    v.data = (u_char *) s;
    v.len = ngx_strlen(s);
    b->p = gh_html(b->p, &v);
}


static void
gh_esc_str(gh_buf_t *b, ngx_str_t *s)
{
    b->p = gh_html(b->p, s);
}


static ngx_int_t
gh_buf_init(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_buf_t *b, size_t extra)
{
    size_t  cap;

    cap = 6144 + extra + 6 * (ctx->message.len + 2 * ctx->rd.len
                              + ctx->csrf.len);
    b->start = ngx_pnalloc(r->pool, cap);
    if (b->start == NULL) {
        return NGX_ERROR;
    }
    b->p = b->start;
    return NGX_OK;
}


static ngx_int_t
gh_buf_send(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_buf_t *b, ngx_uint_t status, const char *title, ngx_str_t *cookie)
{
    ngx_str_t  inner;

    inner.data = b->start;
    inner.len = b->p - b->start;
    return gh_send_page(r, ctx, status, title, &inner, cookie);
}


static void
gh_message(gh_buf_t *b, ngx_http_gatehouse_ctx_t *ctx)
{
    if (ctx->message.len) {
        gh_lit(b, "<p class=\"msg\" role=\"alert\" id=\"message\">");
        gh_esc_str(b, &ctx->message);
        gh_lit(b, "</p>");
    }
}


/* The hidden fields every form carries: rd and the CSRF token. */
static void
gh_hidden(gh_buf_t *b, ngx_http_gatehouse_ctx_t *ctx)
{
    gh_lit(b, "<input type=\"hidden\" name=\"rd\" value=\"");
    gh_esc_str(b, &ctx->rd);
    gh_lit(b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    gh_esc_str(b, &ctx->csrf);
    gh_lit(b, "\">");
}


static const char gh_code_input[] =
    "<label for=\"code\">Code</label>"
    "<input id=\"code\" name=\"code\" inputmode=\"numeric\" "
    "autocomplete=\"one-time-code\" required autofocus maxlength=\"32\">";

static const char gh_signout[] =
    "<form method=\"post\" action=\"" GH_PREFIX "logout\">"
    "<button type=\"submit\" style=\"background:#6b7280\">Sign out</button>"
    "</form>";


/* The second step: one code field. */
static ngx_int_t
gh_send_mfa_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status)
{
    gh_buf_t  b;

    if (gh_buf_init(r, ctx, &b, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_message(&b, ctx);
    gh_lit(&b, "<p class=\"hint\">Enter the code from your authenticator "
           "app. Lost it? Enter one of your recovery codes instead.</p>"
           "<form method=\"post\" action=\"" GH_MFA_PAGE "\" "
           "autocomplete=\"off\">");
    gh_lit(&b, gh_code_input);
    gh_hidden(&b, ctx);
    gh_lit(&b, "<button type=\"submit\">Verify</button></form>");
    gh_lit(&b, gh_signout);
    return gh_buf_send(r, ctx, &b, status, "Two-step verification", NULL);
}


/* Enrolment, step 1: the kind of factor. */
static ngx_int_t
gh_send_enrol_start(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status)
{
    gh_buf_t  b;

    if (gh_buf_init(r, ctx, &b, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_message(&b, ctx);
    gh_lit(&b, "<p class=\"hint\">Protect your account with a second step: "
           "an authenticator app (time-based codes) or a counter-based "
           "token. The defaults suit every common app.</p>"
           "<form method=\"post\" action=\"" GH_MFA_ENROL_PAGE "\">"
           "<input type=\"hidden\" name=\"action\" value=\"start\">"
           "<label for=\"type\">Type</label><select id=\"type\" name=\"type\">"
           "<option value=\"totp\" selected>Time-based (TOTP)</option>"
           "<option value=\"hotp\">Counter-based (HOTP)</option></select>"
           "<label for=\"algorithm\">Algorithm</label>"
           "<select id=\"algorithm\" name=\"algorithm\">"
           "<option value=\"sha1\" selected>SHA-1 (every app)</option>"
           "<option value=\"sha256\">SHA-256</option>"
           "<option value=\"sha512\">SHA-512</option></select>"
           "<label for=\"digits\">Digits</label>"
           "<select id=\"digits\" name=\"digits\">"
           "<option value=\"6\" selected>6</option>"
           "<option value=\"8\">8</option></select>");
    gh_hidden(&b, ctx);
    gh_lit(&b, "<button type=\"submit\">Continue</button></form>");
    gh_lit(&b, gh_signout);
    return gh_buf_send(r, ctx, &b, status, "Set up two-step verification",
                       NULL);
}


/* Enrolment, step 2: the secret (URI, QR code, base32) and a code that
 * proves the app has it. With e == NULL (a wrong code), only the form. */
static ngx_int_t
gh_send_enrol_confirm(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, gh_mfa_enrolment_t *e, ngx_str_t *svg)
{
    gh_buf_t  b;

    if (gh_buf_init(r, ctx, &b, (e ? 6 * sizeof(e->uri) + 6 * sizeof(
                                      e->secret_b32) : 0)
                                 + (svg ? svg->len : 0)) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_message(&b, ctx);
    if (e != NULL) {
        gh_lit(&b, "<p class=\"hint\">Scan this code with your authenticator "
               "app, or enter the key by hand.</p><div class=\"qr\">");
        if (svg != NULL) {
            b.p = ngx_cpymem(b.p, svg->data, svg->len);
        }
        gh_lit(&b, "</div><p class=\"hint\">Key: <code id=\"secret\">");
        gh_esc(&b, e->secret_b32);
        gh_lit(&b, "</code></p><p class=\"hint\">Link: <code "
               "id=\"otpauth-uri\">");
        gh_esc(&b, e->uri);
        gh_lit(&b, "</code></p>");
    }
    gh_lit(&b, "<p class=\"hint\">Then enter the code the app shows.</p>"
           "<form method=\"post\" action=\"" GH_MFA_ENROL_PAGE "\" "
           "autocomplete=\"off\">"
           "<input type=\"hidden\" name=\"action\" value=\"activate\">");
    gh_lit(&b, gh_code_input);
    gh_hidden(&b, ctx);
    gh_lit(&b, "<button type=\"submit\">Turn on</button></form>"
           "<p class=\"hint\"><a href=\"" GH_MFA_ENROL_PAGE "\">Start "
           "over with a new key</a></p>");
    return gh_buf_send(r, ctx, &b, status, "Set up two-step verification",
                       NULL);
}


/* A page with a notice, an optional list, and a link on to rd (with the
 * new session's cookie). */
static ngx_int_t
gh_send_continue(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    const char *title, const char *text, const char *list_id,
    char (*items)[GH_RECOVERY_LEN + 1], ngx_uint_t nitems, ngx_str_t *cookie)
{
    gh_buf_t    b;
    ngx_uint_t  i;

    if (gh_buf_init(r, ctx, &b, nitems * 64) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_lit(&b, "<p id=\"notice\">");
    gh_esc(&b, text);
    gh_lit(&b, "</p>");
    if (nitems) {
        gh_lit(&b, "<ol class=\"codes\" id=\"");
        gh_esc(&b, list_id);
        gh_lit(&b, "\">");
        for (i = 0; i < nitems; i++) {
            gh_lit(&b, "<li>");
            gh_esc(&b, items[i]);
            gh_lit(&b, "</li>");
        }
        gh_lit(&b, "</ol>");
    }
    gh_lit(&b, "<a class=\"button\" id=\"continue\" href=\"");
    gh_esc_str(&b, &ctx->rd);
    gh_lit(&b, "\">Continue</a>");
    return gh_buf_send(r, ctx, &b, NGX_HTTP_OK, title, cookie);
}


/* ---- jobs ---- */

typedef struct {
    int                  mode;            /* GH_MFA_VERIFY | ACTIVATE, or
                                             -1: start an enrolment */
    ngx_str_t            code;
    gh_session_t         old;
    gh_otp_params_t      params;          /* start */
    int                  replace;         /* start: the session has otp */
    int                  totp_window, hotp_window;
    const char          *keypath;         /* mcf->master_key */
    gh_mfa_res_t         res;
    gh_mfa_enrolment_t   enrol;
    char                *svg;             /* malloc'd by the thread */
    size_t               svg_len;
} gh_mfa_job_t;


static int
gh_mfa_key(gh_mfa_job_t *mj, uint8_t mk[GH_MASTER_KEY_BYTES])
{
    return gh_master_key_load(mj->keypath, mk);
}


static void
gh_mfa_thread_start(void *data, ngx_log_t *log)
{
    gh_job_t      *job = data;
    gh_mfa_job_t  *mj = job->ext;
    uint8_t        mk[GH_MASTER_KEY_BYTES];
    char           detail[96];
    static const char *const algos[] = { "SHA1", "SHA256", "SHA512" };

    job->rc = gh_store == NULL ? GH_ESTORE : gh_mfa_key(mj, mk);
    if (job->rc == 0) {
        job->rc = gh_mfa_enrol_start(gh_store, mk, job->uid, &mj->params,
                                     mj->replace, gh_now(), &mj->enrol);
    }
    gh_wipe(mk, sizeof(mk));
    if (job->rc == 0
        && gh_qr_svg(mj->enrol.uri, &mj->svg, &mj->svg_len) != 0)
    {
        mj->svg = NULL;   /* the page still shows the key and the link */
    }
    if (job->rc == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "%s %s, %d digits%Z",
                     mj->params.type == GH_OTP_TOTP ? "totp" : "hotp",
                     algos[mj->params.algo], mj->params.digits);
        gh_job_audit(job, job->actor, job->tenant, "mfa_enrol_started",
                     detail);
    }
}


static void
gh_mfa_thread_verify(void *data, ngx_log_t *log)
{
    gh_job_t      *job = data;
    gh_mfa_job_t  *mj = job->ext;
    gh_mfa_req_t   rq;
    gh_mfa_res_t  *res = &mj->res;
    uint8_t        mk[GH_MASTER_KEY_BYTES];
    char           detail[128];
    const char    *event;

    job->rc = gh_store == NULL || !gh_login_ready ? GH_ESTORE
                                                  : gh_mfa_key(mj, mk);
    if (job->rc == 0) {
        ngx_memzero(&rq, sizeof(rq));
        rq.mode = mj->mode;
        rq.uid = job->uid;
        rq.code = (const char *) mj->code.data;
        rq.code_len = mj->code.len;
        rq.addr = &job->addr;
        rq.now_ms = gh_throttle_now_ms();
        rq.totp_window = mj->totp_window;
        rq.hotp_window = mj->hotp_window;
        rq.throttle = &gh_login.throttle;
        rq.old_key = job->old_key;
        rq.old = &mj->old;
        job->rc = gh_mfa_verify(gh_store, mk, &rq, res);
    }
    gh_wipe(mk, sizeof(mk));
    gh_wipe(mj->code.data, mj->code.len);

    /* the audit trail (never the code) */
    if (job->rc == 0) {
        if (mj->mode == GH_MFA_ACTIVATE) {
            event = "mfa_enrolled";
            ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                         "%d recovery codes issued%Z", res->recovery_left);
        } else if (res->used_recovery) {
            event = "mfa_recovery_used";
            ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                         "%d recovery code%s left%Z", res->recovery_left,
                         res->recovery_left == 1 ? "" : "s");
        } else {
            event = "mfa_success";
            ngx_snprintf((u_char *) detail, sizeof(detail) - 1, "%s%Z",
                         res->flags & GH_SESSION_PWCHANGE
                         ? "must change the password next" : "ok");
        }
        gh_job_audit(job, job->actor, job->tenant, event, detail);
    } else if (job->rc == GH_EDENIED) {
        event = res->retry_after > 0 ? "mfa_throttled"
                : res->resync_next ? "mfa_resync" : "mfa_failure";
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1, "%s%s%Z",
                     res->reason,
                     mj->mode == GH_MFA_ACTIVATE ? " (enrolment)" : "");
        gh_job_audit(job, job->actor, job->tenant, event, detail);
    }
}


/* The return target after the second step: the password page when the
 * session must change it first, else rd. */
static ngx_int_t
gh_mfa_next(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    unsigned flags, ngx_str_t *loc)
{
    if (flags & GH_SESSION_PWCHANGE) {
        return gh_password_location(r, ctx, loc);
    }
    *loc = ctx->rd;
    return NGX_OK;
}


static void
gh_mfa_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_mfa_job_t              *mj = job->ext;
    gh_mfa_res_t              *res = &mj->res;
    ngx_str_t                  cookie, loc;
    ngx_int_t                  rc;
    char                       text[160];

    ctx = gh_ctx(r);

    if (job->rc == 0) {
        rc = gh_session_cookie(r, res->token, &cookie);
        if (rc != NGX_OK || gh_mfa_next(r, ctx, res->flags, &loc) != NGX_OK) {
            gh_wipe(res->recovery, sizeof(res->recovery));
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: second factor %s user=%s",
                      mj->mode == GH_MFA_ACTIVATE ? "enrolled" : "ok",
                      job->uid);
        ctx->rd = loc;
        if (mj->mode == GH_MFA_ACTIVATE) {
            rc = gh_send_continue(r, ctx, "Save your recovery codes",
                     "Two-step verification is on. Each of these codes "
                     "signs you in once if you lose your authenticator. "
                     "Keep them somewhere safe: they are shown only now.",
                     "recovery-codes", res->recovery, GH_RECOVERY_CODES,
                     &cookie);
            gh_wipe(res->recovery, sizeof(res->recovery));
            ngx_http_finalize_request(r, rc);
            return;
        }
        if (res->used_recovery) {
            ngx_snprintf((u_char *) text, sizeof(text) - 1,
                         "You signed in with a recovery code. You have %d "
                         "recovery code%s left.%Z", res->recovery_left,
                         res->recovery_left == 1 ? "" : "s");
            ngx_http_finalize_request(r,
                gh_send_continue(r, ctx, "Recovery code used", text,
                                 NULL, NULL, 0, &cookie));
            return;
        }
        ngx_http_finalize_request(r,
            gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc,
                    &cookie, 1));
        return;
    }

    if (job->rc == GH_EDENIED) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: second factor refused user=%s: %s",
                      job->uid, res->reason);
        if (res->retry_after > 0) {
            ctx->retry_after = (time_t) res->retry_after;
            gh_wait_message(r, ctx, "attempts", ctx->retry_after);
            rc = NGX_HTTP_TOO_MANY_REQUESTS;
        } else if (res->resync_next) {
            ngx_str_set(&ctx->message, "Your token has moved ahead. Enter "
                        "the next code it shows to catch up.");
            rc = NGX_HTTP_UNAUTHORIZED;
        } else if (ngx_strcmp(res->reason, "enrolment_expired") == 0
                   || ngx_strcmp(res->reason, "no_factor") == 0)
        {
            ngx_str_set(&ctx->message, "This setup expired. Start again.");
            ngx_http_finalize_request(r,
                gh_send_enrol_start(r, ctx, NGX_HTTP_BAD_REQUEST));
            return;
        } else {
            ngx_str_set(&ctx->message, "That code is not valid.");
            rc = NGX_HTTP_UNAUTHORIZED;
        }
        ngx_http_finalize_request(r, mj->mode == GH_MFA_ACTIVATE
            ? gh_send_enrol_confirm(r, ctx, rc, NULL, NULL)
            : gh_send_mfa_page(r, ctx, rc));
        return;
    }

    gh_job_failed(r, job->rc, "second factor could not be checked",
                  "the second factor cannot be checked now, try again");
}


static void
gh_mfa_start_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_mfa_job_t              *mj = job->ext;
    ngx_str_t                  svg, *psvg = NULL;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);
    if (mj->svg != NULL) {
        svg.data = (u_char *) mj->svg;
        svg.len = mj->svg_len;
        psvg = &svg;
    }
    if (job->rc == 0) {
        rc = gh_send_enrol_confirm(r, ctx, NGX_HTTP_OK, &mj->enrol, psvg);
    } else if (job->rc == GH_EEXIST) {
        rc = gh_send_error(r, NGX_HTTP_FORBIDDEN, "mfa_enrolled",
                           "a second factor is already set up: verify it "
                           "first at " GH_MFA_PAGE);
    } else if (job->rc == GH_EDENIED) {
        rc = gh_send_error(r, NGX_HTTP_FORBIDDEN, "mfa_off",
                           "second factors are turned off for your "
                           "organisation");
    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: enrolment could not start: %s",
                      gh_strerror(job->rc));
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "setup is unavailable, try again later");
    }
    free(mj->svg);
    mj->svg = NULL;
    gh_wipe(&mj->enrol, sizeof(mj->enrol));
    ngx_http_finalize_request(r, rc);
}


/* A job for this request with its gh_mfa_job_t. */
static gh_job_t *
gh_mfa_job(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    gh_job_t                        *job;
    gh_mfa_job_t                    *mj;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    job = ngx_pcalloc(r->pool, sizeof(*job));
    mj = ngx_pcalloc(r->pool, sizeof(*mj));
    if (job == NULL || mj == NULL) {
        return NULL;
    }
    job->ext = mj;
    job->request = r;
    gh_job_who(job, ctx);
    ngx_cpystrn((u_char *) job->uid, (u_char *) ctx->user.id,
                sizeof(job->uid));
    ngx_cpystrn((u_char *) job->tenant, (u_char *) ctx->user.tenant,
                sizeof(job->tenant));
    ngx_cpystrn((u_char *) job->actor, (u_char *) ctx->user.email,
                sizeof(job->actor));
    ngx_memcpy(job->old_key, ctx->key, sizeof(job->old_key));
    mj->old = ctx->session;
    mj->totp_window = (int) mcf->totp_window;
    mj->hotp_window = (int) mcf->hotp_window;
    mj->keypath = (const char *) mcf->master_key.data;
    return job;
}


static ngx_uint_t
gh_has_otp(ngx_http_gatehouse_ctx_t *ctx)
{
    return ctx->authenticated && ngx_strstr(ctx->session.amr, "otp") != NULL;
}


/* The shared start of both POST handlers: body, rd, CSRF. NGX_OK with
 * body filled, or NGX_DECLINED after answering. */
static ngx_int_t
gh_mfa_form(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *body, ngx_uint_t enrol)
{
    ngx_str_t  rd;
    ngx_int_t  rc;

    if (gh_form_body(r, body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return NGX_DECLINED;
    }
    rc = gh_form_field(r->pool, body, "rd", GH_RD_MAX, &rd);
    gh_set_rd(r, ctx, rc == NGX_OK ? &rd : NULL);
    if (gh_csrf_prepare(r, ctx) != NGX_OK) {
        gh_wipe(body->data, body->len);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DECLINED;
    }
    if (gh_csrf_check(r, ctx, body) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: second factor form refused: csrf check "
                      "failed");
        ngx_str_set(&ctx->message, "This form expired or came from another "
                    "site. Please try again.");
        gh_wipe(body->data, body->len);
        ngx_http_finalize_request(r, enrol
            ? gh_send_enrol_start(r, ctx, NGX_HTTP_FORBIDDEN)
            : gh_send_mfa_page(r, ctx, NGX_HTTP_FORBIDDEN));
        return NGX_DECLINED;
    }
    return NGX_OK;
}


/* Post a code-checking job (verify or activate). */
static void
gh_mfa_post_code(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *body, int mode)
{
    gh_job_t      *job;
    gh_mfa_job_t  *mj;
    ngx_int_t      status;

    job = gh_mfa_job(r, ctx);
    if (job == NULL) {
        gh_wipe(body->data, body->len);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    mj = job->ext;
    mj->mode = mode;
    if (gh_form_field(r->pool, body, "code", 64, &mj->code) != NGX_OK
        || mj->code.len == 0)
    {
        gh_wipe(body->data, body->len);
        ngx_str_set(&ctx->message, "Enter the code.");
        ngx_http_finalize_request(r, mode == GH_MFA_ACTIVATE
            ? gh_send_enrol_confirm(r, ctx, NGX_HTTP_BAD_REQUEST, NULL, NULL)
            : gh_send_mfa_page(r, ctx, NGX_HTTP_BAD_REQUEST));
        return;
    }
    gh_wipe(body->data, body->len);
    job->finish = gh_mfa_finish;
    if (gh_job_post(r, job, gh_mfa_thread_verify) != NGX_OK) {
        gh_wipe(mj->code.data, mj->code.len);
        status = gh_send_busy(r);
        ngx_http_finalize_request(r, status);
    }
}


static void
gh_mfa_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body;

    ctx = gh_ctx(r);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_mfa_form(r, ctx, &body, 0) != NGX_OK) {
        return;
    }
    gh_mfa_post_code(r, ctx, &body, GH_MFA_VERIFY);
}


static void
gh_enrol_body(ngx_http_request_t *r)
{
    static const char *const types[] = { "totp", "hotp" };
    static const char *const algos[] = { "sha1", "sha256", "sha512" };
    static const char *const digits[] = { "6", "8" };
    static const char *const actions[] = { "start", "activate" };
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body;
    gh_job_t                  *job;
    gh_mfa_job_t              *mj;
    int                        action, t, a, d;

    ctx = gh_ctx(r);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_mfa_form(r, ctx, &body, 1) != NGX_OK) {
        return;
    }
    action = gh_form_choice(r->pool, &body, "action", actions, 2, -1);
    if (action == 1) {
        gh_mfa_post_code(r, ctx, &body, GH_MFA_ACTIVATE);
        return;
    }
    t = gh_form_choice(r->pool, &body, "type", types, 2, 0);
    a = gh_form_choice(r->pool, &body, "algorithm", algos, 3, 0);
    d = gh_form_choice(r->pool, &body, "digits", digits, 2, 0);
    gh_wipe(body.data, body.len);
    if (action != 0 || t < 0 || a < 0 || d < 0
        || (t == GH_OTP_HOTP && a != GH_OTP_SHA1))
    {
        ngx_str_set(&ctx->message, "Choose a type, an algorithm and a "
                    "number of digits from the lists (counter-based tokens "
                    "use SHA-1).");
        ngx_http_finalize_request(r,
            gh_send_enrol_start(r, ctx, NGX_HTTP_BAD_REQUEST));
        return;
    }
    job = gh_mfa_job(r, ctx);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    mj = job->ext;
    mj->mode = -1;
    mj->params.type = t;
    mj->params.algo = a;
    mj->params.digits = d == 0 ? 6 : 8;
    mj->params.period = GH_OTP_PERIOD;
    mj->replace = gh_has_otp(ctx);
    job->finish = gh_mfa_start_finish;
    if (gh_job_post(r, job, gh_mfa_thread_start) != NGX_OK) {
        ngx_http_finalize_request(r,
            gh_send_busy(r));
    }
}


/* ---- endpoints ---- */

/* Not signed in at all: the login page (browsers) or 401. */
static ngx_int_t
gh_mfa_no_session(ngx_http_request_t *r, const char *back)
{
    ngx_str_t  loc;

    r->keepalive = 0;   /* the body may be unread */
    if (!gh_wants_html(r)) {
        return gh_send_error(r, NGX_HTTP_UNAUTHORIZED, "unauthenticated",
                             "sign in at " GH_PREFIX "login");
    }
    loc.data = (u_char *) back;
    loc.len = ngx_strlen(back);
    return gh_send(r, NGX_HTTP_MOVED_TEMPORARILY, "text/plain", NULL, &loc,
                   NULL, 0);
}


/* The user's factor record, read on the event loop (one LMDB read).
 * NGX_ERROR on a store failure. */
static ngx_int_t
gh_mfa_state(ngx_http_gatehouse_ctx_t *ctx, int *active)
{
    gh_mfa_t  *m;
    int        rc;

    m = malloc(sizeof(*m));
    if (m == NULL) {
        return NGX_ERROR;
    }
    rc = gh_mfa_get(gh_store, ctx->user.id, m);
    *active = rc == 0 && m->has_active;
    gh_wipe(m, sizeof(*m));
    free(m);
    return rc == 0 || rc == GH_ENOTFOUND ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
gh_redirect_with_rd(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    const char *page)
{
    ngx_str_t  loc;

    if (gh_page_location(r, ctx, page, &loc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL, 0);
}


/* GET: the code form (or on to enrolment when there is no factor yet);
 * POST: check the code. For a session waiting for its second factor, and
 * for a full session stepping up. */
ngx_int_t
gh_mfa_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_int_t  rc;
    int        active;

    if (!ctx->authenticated && !ctx->mfa_pending) {
        return gh_mfa_no_session(r, GH_PREFIX "login?rd=%2F.gatehouse%2Fmfa");
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return gh_read_form(r, gh_mfa_body);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (gh_rd_from_args(r, ctx) != NGX_OK
        || gh_csrf_prepare(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_has_otp(ctx)
        && ngx_time() - ctx->session.mfa_at <= GH_ADM_FRESH)
    {
        /* nothing to prove again (older than GH_ADM_FRESH: a step-up for
         * the admin console, so ask for a code) */
        return gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &ctx->rd,
                       NULL, 0);
    }
    if (gh_mfa_state(ctx, &active) != NGX_OK) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the session store is unavailable");
    }
    if (!active) {
        if (gh_mfa_tenant_level(ctx->user.tenant) == GH_MFA_OFF) {
            return gh_send_error(r, NGX_HTTP_FORBIDDEN, "mfa_off",
                                 "this needs a second factor, and second "
                                 "factors are turned off for your "
                                 "organisation");
        }
        return gh_redirect_with_rd(r, ctx, GH_MFA_ENROL_PAGE);
    }
    return gh_send_mfa_page(r, ctx, NGX_HTTP_OK);
}


/* Enrolment. Allowed for a signed-in user without a factor, for a session
 * waiting for the enrolment its tenant requires, and for a session that
 * proved the current factor (to replace it). Never for a password-only
 * session of a user who has a factor: that would let a stolen password
 * replace the second factor. */
ngx_int_t
gh_mfa_enrol_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_int_t  rc;
    int        active;

    if (!ctx->authenticated && !ctx->mfa_pending) {
        return gh_mfa_no_session(r, GH_PREFIX "login?rd=%2F.gatehouse%2Fmfa"
                                    "%2Fenroll");
    }
    if (gh_mfa_tenant_level(ctx->user.tenant) == GH_MFA_OFF) {
        r->keepalive = 0;
        return gh_send_error(r, NGX_HTTP_FORBIDDEN, "mfa_off",
                             "second factors are turned off for your "
                             "organisation");
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        /* the thread re-checks the factor inside its transaction */
        return gh_read_form(r, gh_enrol_body);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (gh_rd_from_args(r, ctx) != NGX_OK
        || gh_csrf_prepare(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_mfa_state(ctx, &active) != NGX_OK) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the session store is unavailable");
    }
    if (active && !gh_has_otp(ctx)) {
        /* prove the current factor first; a pending session goes on to
         * where it was going */
        if (ctx->mfa_pending) {
            return gh_redirect_with_rd(r, ctx, GH_MFA_PAGE);
        }
        ngx_str_set(&ctx->rd, GH_MFA_ENROL_PAGE);
        return gh_redirect_with_rd(r, ctx, GH_MFA_PAGE);
    }
    return gh_send_enrol_start(r, ctx, NGX_HTTP_OK);
}
