/* gatehouse — the admin console, /.gatehouse/admin/: server-rendered HTML
 * that works without JavaScript.
 *
 *   GET  admin/            people: search (email prefix) and cursor
 *                          pagination over the email index, one bounded
 *                          page per request (gh_user_page)
 *   GET  admin/user?id=    one person: roles, state, second factor, and
 *                          the forms that act on them
 *   POST admin/user        one action (disable, enable, force a password
 *                          change, reset MFA, end sessions, grant, revoke)
 *
 * Who may do what is decided by authz/admin.c (gh_adm_decide) on the event
 * loop, from the session's user record read this request, and again in the
 * thread on the records read inside the write, so a role revoked in
 * between is honoured. Reads of one record or one bounded page run on the
 * event loop; every write and every audit record runs in the thread pool.
 * Every form carries the CSRF token and is refused from another Origin.
 */
#include <time.h>

#include <jansson.h>

#include "ngx_http_gatehouse.h"
#include "ngx_http_gatehouse_admin.h"

#include "gatehouse/admin.h"
#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/invite.h"
#include "gatehouse/password.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/saml.h"
#include "gatehouse/util.h"

#define GH_ADMIN_HOME        GH_PREFIX "admin/"
#define GH_ADMIN_USER        GH_PREFIX "admin/user"
#define GH_ADMIN_INVITES     GH_PREFIX "admin/invites"
#define GH_JOIN_PAGE         GH_PREFIX "join"
#define GH_HTTP_GONE         410    /* a used or expired link */
#define GH_ADMIN_PAGE_SIZE   50     /* people on one page */
#define GH_ADMIN_SCAN        2000   /* index entries one page may read */
#define GH_ADMIN_TOKENS      GH_PREFIX "admin/tokens"


static ngx_int_t gh_tok_endpoint(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, gh_adm_actor_t *a);


/* ---- a growing HTML buffer in the request pool ---- */

typedef struct {
    ngx_pool_t  *pool;
    u_char      *start, *p, *end;
    ngx_uint_t   failed;
} gh_ab_t;


static ngx_int_t
gh_ab_init(gh_ab_t *b, ngx_pool_t *pool, size_t cap)
{
    b->pool = pool;
    b->failed = 0;
    b->start = ngx_pnalloc(pool, cap);
    if (b->start == NULL) {
        return NGX_ERROR;
    }
    b->p = b->start;
    b->end = b->start + cap;
    return NGX_OK;
}


static ngx_uint_t
gh_ab_room(gh_ab_t *b, size_t n)
{
    size_t   used, cap;
    u_char  *nb;

    if (b->failed) {
        return 0;
    }
    if ((size_t) (b->end - b->p) >= n) {
        return 1;
    }
    used = b->p - b->start;
    cap = 2 * (b->end - b->start);
    if (cap < used + n) {
        cap = used + n + 4096;
    }
    nb = ngx_pnalloc(b->pool, cap);
    if (nb == NULL) {
        b->failed = 1;
        return 0;
    }
    ngx_memcpy(nb, b->start, used);
    b->start = nb;
    b->p = nb + used;
    b->end = nb + cap;
    return 1;
}


static void
gh_ab_raw(gh_ab_t *b, const char *s)
{
    size_t  n = ngx_strlen(s);

    if (gh_ab_room(b, n)) {
        b->p = ngx_cpymem(b->p, s, n);
    }
}


static void
gh_ab_escn(gh_ab_t *b, const u_char *s, size_t n)
{
    ngx_str_t  v;

    if (gh_ab_room(b, 6 * n)) {
        v.data = (u_char *) s;
        v.len = n;
        b->p = gh_html(b->p, &v);
    }
}


static void
gh_ab_esc(gh_ab_t *b, const char *s)
{
    gh_ab_escn(b, (const u_char *) s, ngx_strlen(s));
}


/* s percent-encoded for a query value (then HTML-escaped: the result goes
 * into an attribute). */
static void
gh_ab_q(gh_ab_t *b, const char *s)
{
    ngx_str_t  in, out;

    in.data = (u_char *) s;
    in.len = ngx_strlen(s);
    if (gh_urlencode(b->pool, &in, &out) != NGX_OK) {
        b->failed = 1;
        return;
    }
    gh_ab_escn(b, out.data, out.len);
}


static void
gh_ab_int(gh_ab_t *b, int64_t n)
{
    if (gh_ab_room(b, NGX_INT64_LEN)) {
        b->p = ngx_sprintf(b->p, "%L", n);
    }
}


static void
gh_ab_date(gh_ab_t *b, int64_t t)
{
    struct tm  tm;
    time_t     tt = (time_t) t;
    char       s[32];

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL
        || strftime(s, sizeof(s), "%Y-%m-%d %H:%M UTC", &tm) == 0)
    {
        gh_ab_raw(b, "-");
        return;
    }
    gh_ab_raw(b, s);
}


static const char gh_admin_style[] =
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f3f4f6;color:#111827;"
    "font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    "header{display:flex;gap:1.5rem;align-items:center;padding:.7rem 1.5rem;"
    "background:#111827;color:#f9fafb}"
    "header a{color:#bfdbfe;text-decoration:none}"
    "header .who{margin-left:auto;font-size:.85rem;color:#d1d5db}"
    "main{max-width:80rem;margin:1.5rem auto;padding:1.5rem;background:#fff;overflow-x:auto;"
    "border-radius:.75rem;box-shadow:0 10px 30px rgba(0,0,0,.06)}"
    "h1{margin:0 0 1rem;font-size:1.35rem}h2{font-size:1.1rem;"
    "margin:1.5rem 0 .5rem}"
    "table{width:100%;border-collapse:collapse;font-size:.9rem}"
    "th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid "
    "#e5e7eb;vertical-align:top}"
    "th{background:#f9fafb;font-weight:600}"
    "input,select{padding:.4rem .55rem;border:1px solid #d1d5db;"
    "border-radius:.4rem;font-size:.9rem}"
    "button{padding:.4rem .8rem;border:0;border-radius:.4rem;"
    "background:#1d4ed8;color:#fff;font-weight:600;cursor:pointer}"
    "button.danger{background:#b91c1c}button.muted{background:#6b7280}"
    "form.inline{display:inline-block;margin:0 .4rem .4rem 0}"
    ".msg{padding:.6rem .75rem;border-radius:.5rem;background:#fef2f2;"
    "color:#991b1b}.ok{padding:.6rem .75rem;border-radius:.5rem;"
    "background:#ecfdf5;color:#065f46}"
    ".tag{display:inline-block;padding:0 .45rem;margin:0 .2rem .2rem 0;"
    "border-radius:.3rem;background:#e0e7ff;color:#3730a3;font-size:.8rem}"
    ".off{color:#b91c1c;font-weight:600}.hint{color:#6b7280;font-size:.85rem}"
    "nav.pages{margin-top:1rem}";


/* The page around inner: header with navigation and the actor, the title,
 * the CSRF cookie when fresh. */
static ngx_int_t
gh_admin_send(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, const char *title, gh_ab_t *inner)
{
    gh_ab_t     b;
    ngx_str_t   body, cookie;
    ngx_uint_t  n = 0;

    if (inner->failed
        || gh_ab_init(&b, r->pool, (inner->p - inner->start) + 4096)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_ab_raw(&b, "<!doctype html>\n<html lang=\"en\"><head>"
              "<meta charset=\"utf-8\"><meta name=\"viewport\" "
              "content=\"width=device-width,initial-scale=1\"><title>");
    gh_ab_esc(&b, title);
    gh_ab_raw(&b, " &middot; gatehouse admin</title><style>");
    gh_ab_raw(&b, gh_admin_style);
    gh_ab_raw(&b, "</style></head><body><header><strong>gatehouse "
              "admin</strong><nav><a href=\"" GH_ADMIN_HOME "\" "
              "id=\"nav-people\">People</a> &middot; <a href=\""
              GH_ADMIN_INVITES "\" id=\"nav-invites\">Invitations</a>"
              " &middot; <a href=\"" GH_ADMIN_HOME "review\" "
              "id=\"nav-review\">Access review</a> &middot; <a href=\""
              GH_ADMIN_HOME "breakglass\" id=\"nav-bg\">Break-glass</a>"
              " &middot; <a href=\"" GH_ADMIN_HOME "audit\" "
              "id=\"nav-audit\">Audit log</a> &middot; <a href=\""
              GH_ADMIN_HOME "tenants\" id=\"nav-tenants\">Tenants</a>");
    if (gh_adm_roles(&ctx->user, gh_now()) & GH_ADM_R_ADMIN) {
        gh_ab_raw(&b, " &middot; <a href=\"" GH_ADMIN_TOKENS "\" "
                  "id=\"nav-tokens\">API tokens</a>");
    }
    gh_ab_raw(&b, "</nav><span class=\"who\">");
    gh_ab_esc(&b, ctx->user.email);
    gh_ab_raw(&b, " &middot; ");
    gh_ab_esc(&b, ctx->user.tenant);
    gh_ab_raw(&b, "</span></header><main><h1>");
    gh_ab_esc(&b, title);
    gh_ab_raw(&b, "</h1>");
    if (gh_ab_room(&b, inner->p - inner->start)) {
        b.p = ngx_cpymem(b.p, inner->start, inner->p - inner->start);
    }
    gh_ab_raw(&b, "</main></body></html>\n");
    if (b.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    body.data = b.start;
    body.len = b.p - b.start;
    if (ctx->csrf_new) {
        if (gh_cookie_header(r->pool, GH_CSRF_COOKIE, &ctx->csrf, 0, &cookie)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        n = 1;
    }
    return gh_send(r, status, "text/html; charset=utf-8", &body, NULL,
                   n ? &cookie : NULL, n);
}


/* A refusal page (403, 404, 400) with a short reason. */
static ngx_int_t
gh_admin_refuse(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, const char *text)
{
    gh_ab_t  b;

    r->keepalive = 0;   /* the body may be unread */
    if (gh_ab_init(&b, r->pool, 1024) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_ab_raw(&b, "<p class=\"msg\" role=\"alert\" id=\"message\">");
    gh_ab_esc(&b, text);
    gh_ab_raw(&b, "</p><p><a href=\"" GH_ADMIN_HOME "\">Back to people</a>"
              "</p>");
    return gh_admin_send(r, ctx, status,
                         status == NGX_HTTP_NOT_FOUND ? "Not found"
                         : status == NGX_HTTP_BAD_REQUEST ? "Bad request"
                         : "Not allowed", &b);
}


/* ---- who is asking ---- */

static ngx_int_t
gh_admin_redirect(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    const char *page, const char *back)
{
    ngx_str_t  rd, loc;

    r->keepalive = 0;
    rd.data = (u_char *) back;
    rd.len = ngx_strlen(back);
    gh_set_rd(r, ctx, &rd);
    if (gh_page_location(r, ctx, page, &loc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL, 0);
}


/* The answer to a decision that is not GH_ADM_ALLOW: the second-factor
 * page for GH_ADM_MFA and GH_ADM_STEPUP (back to `back` afterwards), 404
 * for another tenant's object, 403 otherwise. */
static ngx_int_t
gh_admin_answer(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    int d, const char *why, const char *back)
{
    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "gatehouse: admin console refused user=%s: %s",
                  ctx->user.id, why);
    switch (d) {
    case GH_ADM_MFA:
    case GH_ADM_STEPUP:
        return gh_admin_redirect(r, ctx, GH_MFA_PAGE, back);
    case GH_ADM_HIDDEN:
        return gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                               "No such person.");
    default:
        return gh_admin_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                               ngx_strcmp(why, "self") == 0
                               ? "You cannot change your own account or "
                                 "roles here: ask another administrator."
                               : ngx_strcmp(why, "read_only") == 0
                               ? "Your role may look, not change."
                               : "You are not allowed to do this.");
    }
}


static void
gh_admin_actor(ngx_http_gatehouse_ctx_t *ctx, gh_adm_actor_t *a)
{
    gh_adm_actor(a, &ctx->user, &ctx->session,
                 gh_mfa_tenant_level(ctx->user.tenant), gh_now());
}


/* Post a console write job for the signed-in actor: the job carries the
 * actor's session and its audit reference, finish runs on the event loop;
 * a full thread pool finalizes the request with 503. The common tail of
 * the body handlers. */
static void
gh_admin_post(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_job_t *job, void *ext, gh_session_t *session, char *session_ref,
    void (*thread)(void *, ngx_log_t *),
    void (*finish)(ngx_http_request_t *, gh_job_t *))
{
    *session = ctx->session;
    gh_audit_session_ref(ctx->key, session_ref);
    job->ext = ext;
    job->request = r;
    gh_job_who(job, ctx);
    ngx_cpystrn((u_char *) job->uid, (u_char *) ctx->user.id,
                sizeof(job->uid));
    job->finish = finish;
    if (gh_job_post(r, job, thread) != NGX_OK) {
        ngx_http_finalize_request(r,
            gh_send_busy(r));
    }
}


/* Every console or API request of the break-glass account: a critical
 * line in the error log (its actions are audited as anyone's). One LMDB
 * read. */
void
gh_admin_breakglass_use(ngx_http_request_t *r, const char *uid,
    const char *email)
{
    gh_breakglass_t  bg;

    if (gh_breakglass_get(gh_store, &bg) == 0
        && ngx_strcmp(bg.uid, uid) == 0)
    {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, 0,
                      "gatehouse: break-glass account %s in use: %V %V",
                      email, &r->method_name, &r->uri);
    }
}


/* A password sign-in of the break-glass account (the login thread):
 * critical in the error log and in the audit log. */
void
gh_admin_breakglass_login(ngx_log_t *log, const char *uid, const char *email)
{
    gh_breakglass_t   bg;
    gh_audit_event_t  ev;

    if (gh_breakglass_get(gh_store, &bg) != 0
        || ngx_strcmp(bg.uid, uid) != 0)
    {
        return;
    }
    ngx_log_error(NGX_LOG_CRIT, log, 0, "gatehouse: break-glass account %s "
                  "signed in", email);
    ngx_memzero(&ev, sizeof(ev));
    ev.user = email;
    ev.action = "breakglass.use";
    ev.target = email;
    ev.result = "success";
    ev.detail = "critical: sign-in";
    (void) gh_audit_event(&ev);
}


/* A signed-in session that may enter the console at all; otherwise the
 * answer to send (NGX_DECLINED: go on). */
static ngx_int_t
gh_admin_gate(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a, ngx_int_t *answer)
{
    gh_adm_req_t  rq;
    const char   *why;
    int           d;

    if (!ctx->authenticated) {
        r->keepalive = 0;
        if (!gh_wants_html(r)) {
            *answer = gh_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                    "unauthenticated", "no valid session");
        } else {
            *answer = gh_admin_redirect(r, ctx, ctx->mfa_pending
                                        ? GH_MFA_PAGE : GH_PREFIX "login",
                                        GH_ADMIN_HOME);
        }
        return NGX_OK;
    }
    if (gh_csrf_prepare(r, ctx) != NGX_OK) {
        *answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_OK;
    }
    gh_admin_actor(ctx, a);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_CONSOLE;
    d = gh_adm_decide(a, &rq, gh_now(), &why);
    if (d != GH_ADM_ALLOW) {
        *answer = gh_admin_answer(r, ctx, d, why, GH_ADMIN_HOME);
        return NGX_OK;
    }
    gh_admin_breakglass_use(r, ctx->user.id, ctx->user.email);
    return NGX_DECLINED;
}


/* A query argument, percent-decoded, at most max bytes, printable ASCII
 * only (emails, ids, tenant names). NGX_DECLINED when absent or empty,
 * NGX_ERROR when malformed. Shared with the API. */
ngx_int_t
gh_admin_arg(ngx_http_request_t *r, const char *name, size_t max,
    char *out)
{
    ngx_str_t  v;
    u_char     buf[GH_EMAIL_MAX + 1], *dst, *src;
    size_t     n, i;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_DECLINED;
    }
    if (v.len > 3 * max || max > GH_EMAIL_MAX) {
        return NGX_ERROR;
    }
    dst = buf;
    src = v.data;
    ngx_unescape_uri(&dst, &src, v.len, 0);
    n = dst - buf;
    if (n == 0 || n > max) {
        return NGX_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (buf[i] <= 0x20 || buf[i] >= 0x7f) {
            return NGX_ERROR;
        }
        out[i] = (char) ngx_tolower(buf[i]);
    }
    out[n] = '\0';
    return NGX_OK;
}


/* ---- the people list ---- */

typedef struct {
    gh_ab_t    *b;
    ngx_uint_t  n;
    ngx_uint_t  visitors;    /* the visitors view: no role but visitor */
    int64_t     now;
} gh_list_t;


static void
gh_ab_roles(gh_ab_t *b, const gh_user_t *u, int64_t now)
{
    const char  *act[GH_BINDINGS_MAX];
    size_t       n, i;

    n = gh_user_active_roles(u, now, act);
    for (i = 0; i < n; i++) {
        gh_ab_raw(b, "<span class=\"tag\">");
        gh_ab_esc(b, act[i]);
        gh_ab_raw(b, "</span>");
    }
    if (n == 0) {
        gh_ab_raw(b, "<span class=\"hint\">none</span>");
    }
}


/* The visitors view's header: what visitors reach, from the live policy. */
typedef struct {
    gh_ab_t            *b;
    const gh_policy_t  *p;
    ngx_uint_t          n;
} gh_vis_apps_t;


static int
gh_vis_app(const char *app, void *arg)
{
    gh_vis_apps_t  *v = arg;

    if (gh_policy_app_visitors(v->p, app)) {
        gh_ab_raw(v->b, v->n++ ? ", <code>" : "<code>");
        gh_ab_esc(v->b, app);
        gh_ab_raw(v->b, "</code>");
    }
    return 0;
}


static void
gh_admin_visitor_apps(gh_ab_t *b)
{
    gh_vis_apps_t  v;

    v.b = b;
    v.p = gh_policy_live();
    v.n = 0;
    gh_ab_raw(b, "<p class=\"hint\" id=\"visitors\">Visitors: people "
              "with no role but <code>visitor</code>, or none. They reach "
              "only the apps open to visitors: <span id=\"visitor-apps\">");
    if (v.p != NULL) {
        (void) gh_policy_apps(v.p, gh_vis_app, &v);
    }
    if (v.n == 0) {
        gh_ab_raw(b, "none in the live policy, so they reach no app");
    }
    gh_ab_raw(b, "</span>. Give someone a role to let them further.</p>");
}


static int
gh_list_row(const gh_user_t *u, void *arg)
{
    gh_list_t   *l = arg;
    gh_ab_t     *b = l->b;
    const char  *act[GH_BINDINGS_MAX];
    size_t       n, i;

    if (l->visitors) {
        n = gh_user_active_roles(u, l->now, act);
        for (i = 0; i < n; i++) {
            if (ngx_strcmp(act[i], "visitor") != 0) {
                return 0;
            }
        }
    }
    gh_ab_raw(b, "<tr><td><a class=\"person\" href=\"" GH_ADMIN_USER "?id=");
    gh_ab_esc(b, u->id);
    gh_ab_raw(b, "\">");
    gh_ab_esc(b, u->email);
    gh_ab_raw(b, "</a></td><td>");
    gh_ab_esc(b, u->name);
    gh_ab_raw(b, "</td><td>");
    gh_ab_esc(b, u->tenant);
    gh_ab_raw(b, "</td><td>");
    gh_ab_roles(b, u, l->now);
    gh_ab_raw(b, u->disabled ? "</td><td class=\"off\">disabled</td></tr>"
                 : gh_user_off(u, l->now) ? "</td><td class=\"off\">ended"
                                            "</td></tr>"
                 : "</td><td>enabled</td></tr>");
    l->n++;
    return b->failed ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_admin_people(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    gh_ab_t         b;
    gh_list_t       l;
    gh_user_page_t  pg;
    gh_adm_req_t    rq;
    const char     *why;
    char            q[GH_EMAIL_MAX + 1], after[GH_EMAIL_MAX + 1];
    char            tenant[GH_TENANT_MAX + 1], next[GH_EMAIL_MAX + 1];
    char            vis[2];
    ngx_int_t       hq, ha, ht;
    int             d, rc;

    hq = gh_admin_arg(r, "q", GH_EMAIL_MAX, q);
    ha = gh_admin_arg(r, "after", GH_EMAIL_MAX, after);
    ht = gh_admin_arg(r, "tenant", GH_TENANT_MAX, tenant);
    l.visitors = gh_admin_arg(r, "visitors", 1, vis) == NGX_OK
                 && vis[0] == '1';
    if (hq == NGX_ERROR || ha == NGX_ERROR || ht == NGX_ERROR) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                               "Malformed search.");
    }
    /* a tenant's own people, unless a platform role asks for all */
    if (ht != NGX_OK && !(a->roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR))) {
        ngx_cpystrn((u_char *) tenant, (u_char *) ctx->user.tenant,
                    sizeof(tenant));
        ht = NGX_OK;
    }
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_USER_VIEW;
    rq.tenant = ht == NGX_OK ? tenant : NULL;
    d = gh_adm_decide(a, &rq, gh_now(), &why);
    if (d != GH_ADM_ALLOW) {
        return gh_admin_answer(r, ctx, d, why, GH_ADMIN_HOME);
    }

    if (gh_ab_init(&b, r->pool, 16384) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_ab_raw(&b, "<form method=\"get\" action=\"" GH_ADMIN_HOME "\" "
              "id=\"search\"><label>Email starts with <input name=\"q\" "
              "id=\"q\" value=\"");
    if (hq == NGX_OK) {
        gh_ab_esc(&b, q);
    }
    gh_ab_raw(&b, "\"></label> ");
    if (a->roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR)) {
        gh_ab_raw(&b, "<label>Tenant <input name=\"tenant\" value=\"");
        if (ht == NGX_OK) {
            gh_ab_esc(&b, tenant);
        }
        gh_ab_raw(&b, "\"></label> ");
    }
    gh_ab_raw(&b, l.visitors ? "<input type=\"hidden\" name=\"visitors\" "
              "value=\"1\">" : "");
    gh_ab_raw(&b, "<button type=\"submit\">Search</button> <a href=\""
              GH_ADMIN_HOME "?visitors=1\" id=\"visitors-view\">Visitors "
              "only</a></form><table id=\"people\"><thead><tr><th>Email</th><th>Name</th>"
              "<th>Tenant</th><th>Roles in force</th><th>State</th></tr>"
              "</thead><tbody>");

    ngx_memzero(&pg, sizeof(pg));
    pg.tenant = ht == NGX_OK ? tenant : NULL;
    pg.prefix = hq == NGX_OK ? q : NULL;
    pg.after = ha == NGX_OK ? after : NULL;
    pg.limit = GH_ADMIN_PAGE_SIZE;
    pg.scan = GH_ADMIN_SCAN;
    l.b = &b;
    l.n = 0;
    l.now = gh_now();
    if (l.visitors) {
        gh_admin_visitor_apps(&b);
    }
    rc = gh_user_page(gh_store, &pg, gh_list_row, &l, next);
    if (rc == GH_EBADTENANT) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND, "No such tenant.");
    }
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: admin people list: %s", gh_strerror(rc));
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    gh_ab_raw(&b, "</tbody></table>");
    if (l.n == 0) {
        gh_ab_raw(&b, "<p class=\"hint\" id=\"empty\">Nobody on this page."
                  "</p>");
    }
    gh_ab_raw(&b, "<nav class=\"pages\">");
    if (ha == NGX_OK) {
        gh_ab_raw(&b, "<a href=\"" GH_ADMIN_HOME "?");
        if (hq == NGX_OK) {
            gh_ab_raw(&b, "q=");
            gh_ab_q(&b, q);
            gh_ab_raw(&b, "&amp;");
        }
        if (ht == NGX_OK) {
            gh_ab_raw(&b, "tenant=");
            gh_ab_q(&b, tenant);
        }
        gh_ab_raw(&b, "\" id=\"first\">First page</a> ");
    }
    if (next[0] != '\0') {
        gh_ab_raw(&b, "<a href=\"" GH_ADMIN_HOME "?after=");
        gh_ab_q(&b, next);
        if (hq == NGX_OK) {
            gh_ab_raw(&b, "&amp;q=");
            gh_ab_q(&b, q);
        }
        if (ht == NGX_OK) {
            gh_ab_raw(&b, "&amp;tenant=");
            gh_ab_q(&b, tenant);
        }
        if (l.visitors) {
            gh_ab_raw(&b, "&amp;visitors=1");
        }
        gh_ab_raw(&b, "\" id=\"next\">Next page</a>");
    }
    gh_ab_raw(&b, "</nav>");
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "People", &b);
}


/* ---- one person ---- */

static void
gh_ab_form_start(gh_ab_t *b, ngx_http_gatehouse_ctx_t *ctx,
    const gh_user_t *u, const char *action)
{
    gh_ab_raw(b, "<form class=\"inline\" method=\"post\" action=\""
              GH_ADMIN_USER "\"><input type=\"hidden\" name=\"csrf\" "
              "value=\"");
    gh_ab_escn(b, ctx->csrf.data, ctx->csrf.len);
    gh_ab_raw(b, "\"><input type=\"hidden\" name=\"id\" value=\"");
    gh_ab_esc(b, u->id);
    gh_ab_raw(b, "\"><input type=\"hidden\" name=\"action\" value=\"");
    gh_ab_raw(b, action);
    gh_ab_raw(b, "\">");
}


/* ---- a person's sessions (through the store's index by user) ---- */

#define GH_ADMIN_SESS_ROWS  20     /* sessions listed; all are counted */

typedef struct {
    gh_ab_t             *b;
    gh_session_policy_t  pol;
    int64_t              now;
    ngx_uint_t           live, pending;
} gh_sess_list_t;


static int
gh_sess_row(const uint8_t key[32], const gh_session_t *s, void *arg)
{
    gh_sess_list_t  *l = arg;

    if (gh_session_live(s, &l->pol, l->now) != 0) {
        return 0;                        /* over: grants nothing */
    }
    if (s->flags & (GH_SESSION_PWCHANGE | GH_SESSION_MFA)) {
        l->pending++;                    /* half a sign-in */
        return 0;
    }
    if (l->live++ >= GH_ADMIN_SESS_ROWS || l->b == NULL) {
        return 0;
    }
    gh_ab_raw(l->b, "<tr><td>");
    gh_ab_date(l->b, s->created);
    gh_ab_raw(l->b, "</td><td>");
    gh_ab_date(l->b, s->last_seen);
    gh_ab_raw(l->b, "</td><td>");
    gh_ab_esc(l->b, s->amr);
    gh_ab_raw(l->b, "</td><td>");
    gh_ab_date(l->b, s->mfa_at);
    gh_ab_raw(l->b, "</td></tr>");
    return 0;
}


/* Walk u's sessions: count (and, with l->b, list) those in force. */
static ngx_int_t
gh_admin_sessions_walk(ngx_http_request_t *r, const gh_user_t *u,
    int64_t now, gh_sess_list_t *l)
{
    l->now = now;
    l->live = 0;
    l->pending = 0;
    gh_session_policy_of(ngx_http_get_module_main_conf(r,
                             ngx_http_gatehouse_module), u->tenant, &l->pol);
    if (gh_session_list_user(gh_store, u->id, gh_sess_row, l) != 0
        || (l->b != NULL && l->b->failed))
    {
        return NGX_ERROR;
    }
    return NGX_OK;
}


ngx_int_t
gh_admin_session_count(ngx_http_request_t *r, const gh_user_t *u,
    int64_t now, ngx_uint_t *live, ngx_uint_t *pending)
{
    gh_sess_list_t  l;

    l.b = NULL;
    if (gh_admin_sessions_walk(r, u, now, &l) != NGX_OK) {
        return NGX_ERROR;
    }
    *live = l.live;
    *pending = l.pending;
    return NGX_OK;
}


/* The person's sessions in force: a count, and the first rows. */
static ngx_int_t
gh_admin_sessions(ngx_http_request_t *r, gh_ab_t *b, const gh_user_t *u,
    int64_t now)
{
    gh_sess_list_t  l;
    gh_ab_t         rows;

    if (gh_ab_init(&rows, r->pool, 2048) != NGX_OK) {
        return NGX_ERROR;
    }
    l.b = &rows;
    if (gh_admin_sessions_walk(r, u, now, &l) != NGX_OK) {
        return NGX_ERROR;
    }
    gh_ab_raw(b, "<h2>Sessions</h2><p id=\"sessions\">");
    gh_ab_int(b, (int64_t) l.live);
    gh_ab_raw(b, l.live == 1 ? " active session" : " active sessions");
    if (l.pending) {
        gh_ab_raw(b, ", ");
        gh_ab_int(b, (int64_t) l.pending);
        gh_ab_raw(b, " waiting for a second factor or a password change");
    }
    if (l.live > GH_ADMIN_SESS_ROWS) {
        gh_ab_raw(b, " (the first 20 are listed)");
    }
    gh_ab_raw(b, ".</p>");
    if (l.live == 0) {
        return NGX_OK;
    }
    gh_ab_raw(b, "<table id=\"session-list\"><thead><tr><th>Signed in</th>"
              "<th>Last seen</th><th>Method</th><th>Second factor</th></tr>"
              "</thead><tbody>");
    if (gh_ab_room(b, rows.p - rows.start)) {
        b->p = ngx_cpymem(b->p, rows.start, rows.p - rows.start);
    }
    gh_ab_raw(b, "</tbody></table>");
    return NGX_OK;
}


static ngx_int_t
gh_admin_person(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    gh_ab_t        b;
    gh_adm_req_t   rq;
    gh_user_t     *u;
    gh_mfa_t      *m;
    const char    *why;
    char           id[GH_ID_HEXLEN + 1], done[24];
    char           back[sizeof(GH_ADMIN_USER "?id=") + GH_ID_HEXLEN];
    int            d, rc, mfa_on = 0;
    unsigned       i;
    int64_t        now = gh_now(), last = 0;

    if (gh_admin_arg(r, "id", GH_ID_HEXLEN, id) != NGX_OK) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                               "Which person? (id missing or malformed)");
    }
    u = ngx_palloc(r->pool, sizeof(*u));
    m = ngx_palloc(r->pool, sizeof(*m));
    if (u == NULL || m == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = gh_user_get(gh_store, id, u);
    if (rc == GH_ENOTFOUND || rc == GH_EINVAL) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND, "No such person.");
    }
    if (rc != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_USER_VIEW;
    rq.tenant = u->tenant;
    rq.uid = u->id;
    ngx_sprintf((u_char *) back, GH_ADMIN_USER "?id=%s%Z", u->id);
    d = gh_adm_decide(a, &rq, now, &why);
    if (d != GH_ADM_ALLOW) {
        return gh_admin_answer(r, ctx, d, why, back);
    }
    rc = gh_mfa_get(gh_store, u->id, m);
    mfa_on = rc == 0 && m->has_active;
    gh_wipe(m, sizeof(*m));
    if (rc != 0 && rc != GH_ENOTFOUND) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }

    if (gh_ab_init(&b, r->pool, 16384) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_admin_arg(r, "done", sizeof(done) - 1, done) == NGX_OK) {
        gh_ab_raw(&b, "<p class=\"ok\" id=\"done\">Done: ");
        gh_ab_esc(&b, done);
        gh_ab_raw(&b, ".</p>");
    }
    gh_ab_raw(&b, "<table id=\"person\"><tr><th>Email</th><td id=\"email\">");
    gh_ab_esc(&b, u->email);
    gh_ab_raw(&b, "</td></tr><tr><th>Name</th><td>");
    gh_ab_esc(&b, u->name);
    gh_ab_raw(&b, "</td></tr><tr><th>Tenant</th><td>");
    gh_ab_esc(&b, u->tenant);
    gh_ab_raw(&b, "</td></tr><tr><th>State</th><td id=\"state\">");
    if (u->disabled || gh_user_off(u, now)) {
        gh_ab_raw(&b, u->disabled ? "<span class=\"off\">disabled</span>"
                                  : "<span class=\"off\">ended</span> ");
    } else {
        gh_ab_raw(&b, "enabled");
    }
    if (!u->disabled && u->expires != 0) {
        gh_ab_raw(&b, u->expires > now ? " until " : "");
        gh_ab_date(&b, u->expires);
    }
    gh_ab_raw(&b, "</td></tr><tr><th>Second factor</th><td id=\"mfa\">");
    gh_ab_raw(&b, mfa_on ? "enrolled" : "none");
    gh_ab_raw(&b, "</td></tr><tr><th>Created</th><td>");
    gh_ab_date(&b, u->created);
    gh_ab_raw(&b, "</td></tr><tr><th>Last sign-in</th><td id=\"last\">");
    if (gh_lastlogin_get(gh_store, u->id, &last) == 0) {
        gh_ab_date(&b, last);
    } else {
        gh_ab_raw(&b, "never (or before this was recorded)");
    }
    gh_ab_raw(&b, "</td></tr></table>");

    gh_ab_raw(&b, "<h2>Roles</h2><table id=\"roles\"><thead><tr><th>Role"
              "</th><th>Until</th><th></th></tr></thead><tbody>");
    for (i = 0; i < u->nbindings && i < GH_BINDINGS_MAX; i++) {
        gh_ab_raw(&b, "<tr><td>");
        gh_ab_esc(&b, u->bindings[i].role);
        gh_ab_raw(&b, "</td><td>");
        if (u->bindings[i].until == 0) {
            gh_ab_raw(&b, "no end");
        } else {
            gh_ab_date(&b, u->bindings[i].until);
            if (u->bindings[i].until <= now) {
                gh_ab_raw(&b, " <span class=\"off\">ended</span>");
            }
        }
        gh_ab_raw(&b, "</td><td>");
        gh_ab_form_start(&b, ctx, u, "revoke");
        gh_ab_raw(&b, "<input type=\"hidden\" name=\"role\" value=\"");
        gh_ab_esc(&b, u->bindings[i].role);
        gh_ab_raw(&b, "\"><button type=\"submit\" class=\"danger\" "
                  "name=\"revoke\">Revoke</button></form></td></tr>");
    }
    gh_ab_raw(&b, "</tbody></table>");
    gh_ab_form_start(&b, ctx, u, "grant");
    gh_ab_raw(&b, "<label>Role <input name=\"role\" id=\"grant-role\" "
              "required maxlength=\"63\"></label> <label>Until (optional, "
              "YYYY-MM-DD, UTC) <input name=\"until\" id=\"grant-until\" "
              "maxlength=\"10\"></label> <button type=\"submit\" "
              "id=\"grant\">Grant</button></form>"
              "<p class=\"hint\">Granting manager or gatehouse-admin asks "
              "for your second factor again when it is older than 15 "
              "minutes. Changes apply to the person's next request.</p>");

    if (gh_admin_sessions(r, &b, u, now) != NGX_OK) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }

    gh_ab_raw(&b, "<h2>Account</h2>");
    if (u->disabled) {
        gh_ab_form_start(&b, ctx, u, "enable");
        gh_ab_raw(&b, "<button type=\"submit\" id=\"enable\">Enable"
                  "</button></form>");
    } else {
        gh_ab_form_start(&b, ctx, u, "disable");
        gh_ab_raw(&b, "<button type=\"submit\" class=\"danger\" "
                  "id=\"disable\">Disable (ends every session)</button>"
                  "</form>");
    }
    gh_ab_form_start(&b, ctx, u, "logout");
    gh_ab_raw(&b, "<button type=\"submit\" class=\"muted\" id=\"logout\">"
              "End all sessions</button></form>");
    gh_ab_form_start(&b, ctx, u, "pwreset");
    gh_ab_raw(&b, "<button type=\"submit\" class=\"muted\" id=\"pwreset\">"
              "Force a password change</button></form>");
    gh_ab_form_start(&b, ctx, u, "mfareset");
    gh_ab_raw(&b, "<button type=\"submit\" class=\"muted\" id=\"mfareset\">"
              "Reset second factor</button></form>");
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "Person", &b);
}


/* ---- actions (thread pool) ---- */

/* gh_admin_actions[] and gh_admin_job_t: ngx_http_gatehouse_admin.h */
const gh_admin_action_t gh_admin_actions[GH_ADMIN_NACTIONS] = {
    { "disable",  GH_ADM_USER_DISABLE },
    { "enable",   GH_ADM_USER_ENABLE },
    { "pwreset",  GH_ADM_USER_PWRESET },
    { "mfareset", GH_ADM_USER_MFARESET },
    { "logout",   GH_ADM_USER_LOGOUT },
    { "grant",    GH_ADM_ROLE_GRANT },
    { "revoke",   GH_ADM_ROLE_REVOKE },
};


/* "enabled; roles: a, b (until 2027-01-01)" for before/after. */
static void
gh_admin_state(const gh_user_t *u, int mfa, char *out, size_t cap)
{
    u_char    *p = (u_char *) out, *end = (u_char *) out + cap - 1;
    unsigned   i;

    p = ngx_slprintf(p, end, "%s; roles:",
                     u->disabled ? "disabled" : "enabled");
    for (i = 0; i < u->nbindings && i < GH_BINDINGS_MAX; i++) {
        p = ngx_slprintf(p, end, " %s", u->bindings[i].role);
        if (u->bindings[i].until) {
            p = ngx_slprintf(p, end, " (until %L)", u->bindings[i].until);
        }
    }
    if (mfa >= 0) {
        p = ngx_slprintf(p, end, "; mfa: %s", mfa ? "enrolled" : "none");
    }
    *p = '\0';
}


/* In a job's thread: the actor (job->uid) as stored now, and the decision
 * for action on tenant taken again on it. A store error is job->rc, with
 * GH_ADM_DENY and "error". */
int
gh_admin_redecide(gh_job_t *job, const gh_adm_actor_t *asked,
    const gh_session_t *s, gh_adm_action_t action, const char *tenant,
    gh_user_t *actor, int64_t now, const char **why)
{
    gh_adm_actor_t  a;
    gh_adm_req_t    rq;

    *why = "error";
    job->rc = gh_store == NULL ? GH_ESTORE
              : gh_user_get(gh_store, job->uid, actor);
    if (job->rc != 0) {
        return GH_ADM_DENY;
    }
    gh_adm_actor(&a, actor, s, asked->tenant_mfa, now);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = action;
    rq.tenant = tenant;
    return gh_adm_decide(&a, &rq, now, why);
}


/* The audit record of a job's administrative step: rc 0 success,
 * GH_EDENIED denied (why), anything else a failure. */
void
gh_admin_record(gh_job_t *job, const gh_user_t *actor,
    const char *session_ref, const char *action, const char *target, int rc,
    const char *why, const char *detail, const char *before,
    const char *after)
{
    gh_audit_event_t  ev;

    ngx_memzero(&ev, sizeof(ev));
    ev.user = actor->email;
    ev.tenant = actor->tenant;
    ev.addr = (const char *) job->addr_text;
    ev.session = session_ref;
    ev.request_id = (const char *) job->request_id;
    ev.action = action;
    ev.target = target;
    ev.result = rc == 0 ? "success" : rc == GH_EDENIED ? "denied"
                                                       : "failure";
    ev.reason = rc == 0 ? NULL : rc == GH_EDENIED ? why : gh_strerror(rc);
    ev.detail = detail;
    ev.before = before;
    ev.after = after;
    (void) gh_audit_event(&ev);
}


/* A console form's body, once its CSRF token and Origin are checked; the
 * request is finalized otherwise. */
static ngx_http_gatehouse_ctx_t *
gh_admin_form(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    ngx_int_t                  rc;

    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }
    if (gh_form_body(r, body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return NULL;
    }
    if (gh_csrf_check(r, ctx, body) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: admin form refused: csrf check failed");
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                            "This form expired or came from another site. "
                            "Reload the page and try again."));
        return NULL;
    }
    return ctx;
}


void
gh_admin_thread(void *data, ngx_log_t *log)
{
    gh_job_t          *job = data;
    gh_admin_job_t    *aj = job->ext;
    gh_user_t          actor, target;
    gh_adm_actor_t     a;
    gh_adm_req_t       rq;
    gh_pwchange_t      chg;
    gh_audit_event_t   ev;
    gh_adm_action_t    act = gh_admin_actions[aj->which].action;
    int64_t            now = gh_now();
    char               tbuf[GH_EMAIL_MAX + GH_ROLE_NAME_MAX + 16];
    int                rc, n;

    aj->decision = GH_ADM_DENY;
    aj->why = "error";
    if (gh_store == NULL) {
        job->rc = GH_ESTORE;
        return;
    }
    /* 1. both records as they are now, and the decision again */
    rc = gh_user_get(gh_store, job->uid, &actor);
    if (rc == 0) {
        rc = gh_user_get(gh_store, aj->target, &target);
    }
    if (rc != 0) {
        job->rc = rc;
        aj->decision = GH_ADM_HIDDEN;
        aj->why = "not_found";
        return;
    }
    ngx_cpystrn((u_char *) aj->email, (u_char *) target.email,
                sizeof(aj->email));
    gh_adm_actor(&a, &actor, &aj->session, aj->actor.tenant_mfa, now);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = act;
    rq.tenant = target.tenant;
    rq.uid = target.id;
    rq.target_roles = gh_adm_roles(&target, now);
    rq.role = aj->role[0] ? aj->role : NULL;
    aj->decision = gh_adm_decide(&a, &rq, now, &aj->why);
    gh_admin_state(&target, -1, aj->before, sizeof(aj->before));

    /* 2. the change */
    if (aj->decision == GH_ADM_ALLOW) {
        switch (act) {
        case GH_ADM_USER_DISABLE:
            rc = gh_user_set_disabled(gh_store, target.id, 1);
            break;
        case GH_ADM_USER_ENABLE:
            rc = gh_user_set_disabled(gh_store, target.id, 0);
            break;
        case GH_ADM_USER_LOGOUT:
            n = gh_session_del_user(gh_store, target.id);
            rc = n < 0 ? n : 0;
            break;
        case GH_ADM_USER_PWRESET:
            ngx_memzero(&chg, sizeof(chg));
            chg.must_change = 1;
            chg.now = now;
            n = gh_credential_change(gh_store, target.id, &chg);
            rc = n < 0 ? n : 0;
            break;
        case GH_ADM_USER_MFARESET:
            rc = gh_mfa_del(gh_store, target.id);
            if (rc == GH_ENOTFOUND) {
                rc = 0;
            }
            if (rc == 0) {
                n = gh_session_del_user(gh_store, target.id);
                rc = n < 0 ? n : 0;
            }
            break;
        case GH_ADM_ROLE_GRANT:
            rc = gh_role_grant(gh_store, target.id, aj->role, aj->until);
            break;
        case GH_ADM_ROLE_REVOKE:
            rc = gh_role_revoke(gh_store, target.id, aj->role);
            break;
        default:
            rc = GH_EINVAL;
        }
        job->rc = rc;
        if (rc == 0 && gh_user_get(gh_store, target.id, &target) == 0) {
            gh_admin_state(&target, -1, aj->after, sizeof(aj->after));
        } else {
            ngx_cpystrn((u_char *) aj->after, (u_char *) aj->before,
                        sizeof(aj->after));
        }
    } else {
        job->rc = GH_EDENIED;
        ngx_cpystrn((u_char *) aj->after, (u_char *) aj->before,
                    sizeof(aj->after));
    }

    /* 3. the audit record, whatever happened */
    if (aj->role[0]) {
        ngx_snprintf((u_char *) tbuf, sizeof(tbuf) - 1, "%s role %s%Z",
                     target.email, aj->role);
    } else {
        ngx_cpystrn((u_char *) tbuf, (u_char *) target.email, sizeof(tbuf));
    }
    ngx_memzero(&ev, sizeof(ev));
    ev.user = actor.email;
    ev.tenant = actor.tenant;
    ev.addr = job->addr_text;
    ev.session = aj->session_ref;
    ev.request_id = job->request_id;
    ev.action = gh_adm_action_name(act);
    ev.target = tbuf;
    ev.result = job->rc == 0 ? "success"
                : job->rc == GH_EDENIED ? "denied" : "failure";
    ev.reason = job->rc == GH_EDENIED ? aj->why
                : job->rc == 0 ? NULL : gh_strerror(job->rc);
    ev.detail = aj->via ? aj->via : "admin console";
    ev.before = aj->before;
    ev.after = aj->after;
    if (gh_audit_event(&ev) != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "gatehouse: audit record of %s could not be written",
                      ev.action);
    }
}


static void
gh_admin_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_admin_job_t            *aj = job->ext;
    ngx_str_t                  loc;
    char                       back[sizeof(GH_ADMIN_USER "?id=")
                                    + GH_ID_HEXLEN + 32];

    ngx_sprintf((u_char *) back, GH_ADMIN_USER "?id=%s%Z", aj->target);
    if (aj->decision != GH_ADM_ALLOW) {
        ngx_http_finalize_request(r,
            gh_admin_answer(r, ctx, aj->decision, aj->why, back));
        return;
    }
    if (job->rc == GH_ENOTFOUND) {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                            aj->role[0] ? "The person does not hold that "
                                          "role."
                                        : "The person has no password to "
                                          "reset."));
        return;
    }
    if (job->rc == GH_ETOOBIG || job->rc == GH_EINVAL) {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                            "That role cannot be granted (bad name, or "
                            "too many roles)."));
        return;
    }
    if (job->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: admin action failed: %s",
                      gh_strerror(job->rc));
        ngx_http_finalize_request(r,
            gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                          "the store is unavailable, try again"));
        return;
    }
    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "gatehouse: admin %s by user=%s on user=%s",
                  gh_admin_actions[aj->which].name, job->uid, aj->target);
    ngx_sprintf((u_char *) back, GH_ADMIN_USER "?id=%s&done=%s%Z",
                aj->target, gh_admin_actions[aj->which].name);
    loc.data = (u_char *) back;
    loc.len = ngx_strlen(back);
    ngx_http_finalize_request(r,
        gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL, 0));
}


/* "YYYY-MM-DD" -> the first second after that day (UTC): a grant "until
 * 2027-01-31" holds through the 31st. */
static int64_t
gh_admin_until(ngx_str_t *v)
{
    struct tm  tm;
    u_char    *p = v->data;
    ngx_uint_t i;

    if (v->len != 10 || p[4] != '-' || p[7] != '-') {
        return -1;
    }
    for (i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (p[i] < '0' || p[i] > '9')) {
            return -1;
        }
    }
    ngx_memzero(&tm, sizeof(tm));
    tm.tm_year = ngx_atoi(p, 4) - 1900;
    tm.tm_mon = ngx_atoi(p + 5, 2) - 1;
    tm.tm_mday = ngx_atoi(p + 8, 2);
    if (tm.tm_year < 70 || tm.tm_year > 1100 || tm.tm_mon < 0
        || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
    {
        return -1;
    }
    return (int64_t) timegm(&tm) + 86400;
}


static void
gh_admin_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body, v;
    gh_adm_actor_t             a;
    gh_adm_req_t               rq;
    gh_job_t                  *job;
    gh_admin_job_t            *aj;
    gh_user_t                 *target;
    const char                *why;
    char                       back[sizeof(GH_ADMIN_USER "?id=")
                                    + GH_ID_HEXLEN];
    ngx_uint_t                 i, n;
    ngx_int_t                  rc;
    int                        d;

    ctx = gh_admin_form(r, &body);
    if (ctx == NULL) {
        return;
    }

    job = ngx_pcalloc(r->pool, sizeof(*job));
    aj = ngx_pcalloc(r->pool, sizeof(*aj));
    target = ngx_palloc(r->pool, sizeof(*target));
    if (job == NULL || aj == NULL || target == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the fields */
    n = GH_ADMIN_NACTIONS;
    if (gh_form_field(r->pool, &body, "action", 16, &v) != NGX_OK) {
        v.len = 0;
    }
    for (i = 0; i < n; i++) {
        if (v.len == ngx_strlen(gh_admin_actions[i].name)
            && ngx_strncmp(v.data, gh_admin_actions[i].name, v.len) == 0)
        {
            break;
        }
    }
    if (i == n
        || gh_form_field(r->pool, &body, "id", GH_ID_HEXLEN, &v) != NGX_OK
        || v.len != GH_ID_HEXLEN)
    {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                            "Unknown action or person."));
        return;
    }
    aj->which = i;
    ngx_memcpy(aj->target, v.data, GH_ID_HEXLEN);
    aj->target[GH_ID_HEXLEN] = '\0';
    if (gh_admin_actions[i].action == GH_ADM_ROLE_GRANT
        || gh_admin_actions[i].action == GH_ADM_ROLE_REVOKE)
    {
        if (gh_form_field(r->pool, &body, "role", GH_ROLE_NAME_MAX, &v)
            != NGX_OK || v.len == 0)
        {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                "Name a role."));
            return;
        }
        ngx_memcpy(aj->role, v.data, v.len);
        aj->role[v.len] = '\0';
        if (gh_admin_actions[i].action == GH_ADM_ROLE_GRANT
            && !gh_live_role_known(aj->role))
        {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                "The access policy does not define that "
                                "role."));
            return;
        }
    }
    if (gh_admin_actions[i].action == GH_ADM_ROLE_GRANT
        && gh_form_field(r->pool, &body, "until", 10, &v) == NGX_OK
        && v.len > 0)
    {
        aj->until = gh_admin_until(&v);
        if (aj->until <= gh_now()) {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                "The end date must be a future day, "
                                "YYYY-MM-DD."));
            return;
        }
    }

    /* the decision on the event loop: step-up and refusals answer here */
    gh_admin_actor(ctx, &a);
    rc = gh_user_get(gh_store, aj->target, target);
    if (rc != 0) {
        ngx_http_finalize_request(r, rc == GH_ENOTFOUND || rc == GH_EINVAL
            ? gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND, "No such person.")
            : gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                            "the store is unavailable"));
        return;
    }
    ngx_memzero(&rq, sizeof(rq));
    rq.action = gh_admin_actions[i].action;
    rq.tenant = target->tenant;
    rq.uid = target->id;
    rq.target_roles = gh_adm_roles(target, gh_now());
    rq.role = aj->role[0] ? aj->role : NULL;
    d = gh_adm_decide(&a, &rq, gh_now(), &why);
    ngx_sprintf((u_char *) back, GH_ADMIN_USER "?id=%s%Z", aj->target);
    if (d == GH_ADM_MFA || d == GH_ADM_STEPUP || d == GH_ADM_HIDDEN) {
        ngx_http_finalize_request(r, gh_admin_answer(r, ctx, d, why, back));
        return;
    }
    /* allowed, or refused: the thread decides again and audits either */
    aj->actor = a;
    gh_admin_post(r, ctx, job, aj, &aj->session, aj->session_ref,
                  gh_admin_thread, gh_admin_finish);
}


/* ---- invitations ---- */

/* gh_inv_job_t: ngx_http_gatehouse_admin.h */


/* Every proposed role must be known to the live policy and allowed to the
 * actor as a grant in that tenant (a platform role only for an
 * administrator; manager needs a fresh second factor). The decision for
 * the first role refused, or GH_ADM_ALLOW. */
static int
gh_inv_roles_decide(const gh_adm_actor_t *a, gh_adm_action_t action,
    const char *tenant, const char *roles, int64_t now, const char **why,
    ngx_uint_t check_known)
{
    gh_adm_req_t  rq;
    char          one[GH_ROLE_NAME_MAX + 1];
    const char   *p = roles, *e;
    size_t        n;
    int           d;

    ngx_memzero(&rq, sizeof(rq));
    rq.action = action;
    rq.tenant = tenant;
    d = gh_adm_decide(a, &rq, now, why);
    while (d == GH_ADM_ALLOW && *p != '\0') {
        e = strchr(p, ',');
        n = e ? (size_t) (e - p) : ngx_strlen(p);
        if (n == 0 || n > GH_ROLE_NAME_MAX) {
            *why = "bad_role";
            return GH_ADM_DENY;
        }
        ngx_memcpy(one, p, n);
        one[n] = '\0';
        if (check_known && !gh_live_role_known(one)) {
            *why = "unknown_role";
            return GH_ADM_DENY;
        }
        rq.role = one;
        if (gh_adm_platform_role(one) && !(a->roles & GH_ADM_R_ADMIN)) {
            *why = "platform_role";
            return GH_ADM_DENY;
        }
        if (action == GH_ADM_INVITE_DECIDE) {
            /* approving grants: the same rules as a grant */
            rq.action = GH_ADM_ROLE_GRANT;
            d = gh_adm_decide(a, &rq, now, why);
            rq.action = action;
        }
        p = e ? e + 1 : p + n;
    }
    return d;
}


static int
gh_inv_row(const gh_invite_t *iv, void *arg)
{
    void                     **a = arg;
    gh_ab_t                   *b = a[0];
    ngx_http_gatehouse_ctx_t  *ctx = a[1];

    gh_ab_raw(b, "<tr class=\"invite\"><td>");
    gh_ab_esc(b, iv->email);
    gh_ab_raw(b, "</td><td>");
    gh_ab_esc(b, iv->tenant);
    gh_ab_raw(b, "</td><td>");
    gh_ab_esc(b, iv->roles);
    gh_ab_raw(b, "</td><td>");
    gh_ab_esc(b, iv->inviter_email);
    gh_ab_raw(b, "</td><td class=\"state\">");
    gh_ab_raw(b, gh_invite_state_name(iv->state));
    if (iv->state == GH_INVITE_APPROVED) {
        gh_ab_raw(b, " (link until ");
        gh_ab_date(b, iv->expires);
        gh_ab_raw(b, ")");
    }
    if (iv->decider_email[0]) {
        gh_ab_raw(b, " by ");
        gh_ab_esc(b, iv->decider_email);
    }
    gh_ab_raw(b, "</td><td>");
    if (iv->state == GH_INVITE_PENDING) {
        gh_ab_raw(b, "<form class=\"inline\" method=\"post\" action=\""
                  GH_ADMIN_INVITES "\"><input type=\"hidden\" name=\"csrf\" "
                  "value=\"");
        gh_ab_escn(b, ctx->csrf.data, ctx->csrf.len);
        gh_ab_raw(b, "\"><input type=\"hidden\" name=\"id\" value=\"");
        gh_ab_esc(b, iv->id);
        gh_ab_raw(b, "\"><button type=\"submit\" name=\"action\" "
                  "value=\"approve\" class=\"approve\">Approve</button> "
                  "<button type=\"submit\" name=\"action\" value=\"reject\" "
                  "class=\"danger reject\">Reject</button></form>");
    }
    gh_ab_raw(b, "</td></tr>");
    return b->failed ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_admin_invites(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a, const char *notice, const char *token)
{
    gh_ab_t       b;
    gh_adm_req_t  rq;
    const char   *why;
    void         *arg[2];
    ngx_str_t    *host;
    int           d, rc, all;

    all = (a->roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR)) != 0;
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_USER_VIEW;
    rq.tenant = all ? NULL : ctx->user.tenant;
    d = gh_adm_decide(a, &rq, gh_now(), &why);
    if (d != GH_ADM_ALLOW) {
        return gh_admin_answer(r, ctx, d, why, GH_ADMIN_INVITES);
    }
    if (gh_ab_init(&b, r->pool, 16384) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (notice != NULL) {
        gh_ab_raw(&b, "<p class=\"ok\" id=\"done\">");
        gh_ab_esc(&b, notice);
        gh_ab_raw(&b, "</p>");
    }
    if (token != NULL) {
        host = r->headers_in.host ? &r->headers_in.host->value : NULL;
        gh_ab_raw(&b, "<p>Give this link to the person (it is shown only "
                  "now, works once, and expires in 7 days):</p><p><code "
                  "id=\"invite-link\">https://");
        if (host != NULL) {
            gh_ab_escn(&b, host->data, host->len);
        }
        gh_ab_raw(&b, GH_JOIN_PAGE "?token=");
        gh_ab_esc(&b, token);
        gh_ab_raw(&b, "</code></p>");
    }
    if (!(a->roles & GH_ADM_R_AUDITOR) || (a->roles & ~GH_ADM_R_AUDITOR)) {
        gh_ab_raw(&b, "<h2>Invite someone</h2><form method=\"post\" "
                  "action=\"" GH_ADMIN_INVITES "\" id=\"invite-form\">"
                  "<input type=\"hidden\" name=\"action\" value=\"create\">"
                  "<input type=\"hidden\" name=\"csrf\" value=\"");
        gh_ab_escn(&b, ctx->csrf.data, ctx->csrf.len);
        gh_ab_raw(&b, "\"><label>Email <input name=\"email\" id=\"inv-email\" "
                  "required maxlength=\"254\"></label> <label>Name <input "
                  "name=\"name\" id=\"inv-name\" maxlength=\"127\"></label> "
                  "<label>Roles (comma-separated) <input name=\"roles\" "
                  "id=\"inv-roles\" value=\"member\" maxlength=\"512\">"
                  "</label> ");
        if (a->roles & GH_ADM_R_ADMIN) {
            gh_ab_raw(&b, "<label>Tenant <input name=\"tenant\" "
                      "id=\"inv-tenant\" value=\"");
            gh_ab_esc(&b, ctx->user.tenant);
            gh_ab_raw(&b, "\" maxlength=\"63\"></label> ");
        }
        gh_ab_raw(&b, "<button type=\"submit\" id=\"invite\">Invite</button>"
                  "</form><p class=\"hint\">Nothing happens until a manager "
                  "other than the one who invited approves.</p>");
    }
    gh_ab_raw(&b, "<h2>Invitations</h2><table id=\"invites\"><thead><tr>"
              "<th>Email</th><th>Tenant</th><th>Roles</th><th>Invited by"
              "</th><th>State</th><th></th></tr></thead><tbody>");
    arg[0] = &b;
    arg[1] = ctx;
    rc = gh_invite_list(gh_store, all ? NULL : ctx->user.tenant, gh_inv_row,
                        arg);
    if (rc != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    gh_ab_raw(&b, "</tbody></table>");
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "Invitations", &b);
}


void
gh_inv_thread(void *data, ngx_log_t *log)
{
    gh_job_t          *job = data;
    gh_inv_job_t      *ij = job->ext;
    gh_user_t          actor;
    gh_adm_actor_t     a;
    gh_audit_event_t   ev;
    char               before[96], after[96];
    int64_t            now = gh_now();
    const char        *action;

    ij->decision = GH_ADM_DENY;
    ij->why = "error";
    if (gh_store == NULL) {
        job->rc = GH_ESTORE;
        return;
    }
    job->rc = gh_user_get(gh_store, job->uid, &actor);
    if (job->rc != 0) {
        return;
    }
    gh_adm_actor(&a, &actor, &ij->session, ij->actor.tenant_mfa, now);
    before[0] = after[0] = '\0';
    if (ij->op == 0) {
        action = "invite.create";
        ij->decision = gh_inv_roles_decide(&a, GH_ADM_INVITE_CREATE,
                                           ij->inv.tenant, ij->inv.roles,
                                           now, &ij->why, 0);
        if (ij->decision == GH_ADM_ALLOW) {
            ngx_cpystrn((u_char *) ij->inv.inviter, (u_char *) actor.id,
                        sizeof(ij->inv.inviter));
            ngx_cpystrn((u_char *) ij->inv.inviter_email,
                        (u_char *) actor.email,
                        sizeof(ij->inv.inviter_email));
            ij->inv.created = now;
            job->rc = gh_invite_add(gh_store, &ij->inv);
            ngx_cpystrn((u_char *) before, (u_char *) "none",
                        sizeof(before));
            ngx_cpystrn((u_char *) after, (u_char *) (job->rc == 0
                        ? "pending" : "none"), sizeof(after));
        } else {
            job->rc = GH_EDENIED;
        }
    } else {
        action = ij->op == 1 ? "invite.approve" : "invite.reject";
        job->rc = gh_invite_get(gh_store, ij->id, &ij->inv);
        if (job->rc != 0) {
            ij->decision = GH_ADM_HIDDEN;
            ij->why = "not_found";
            return;
        }
        ij->decision = gh_inv_roles_decide(&a, GH_ADM_INVITE_DECIDE,
                                           ij->inv.tenant,
                                           ij->op == 1 ? ij->inv.roles : "",
                                           now, &ij->why, 0);
        ngx_sprintf((u_char *) before, "%s%Z",
                    gh_invite_state_name(ij->inv.state));
        if (ij->decision == GH_ADM_ALLOW) {
            job->rc = gh_invite_decide(gh_store, ij->id, ij->op == 1,
                                       actor.id, actor.email, now,
                                       GH_INVITE_TTL,
                                       ij->op == 1 ? ij->token : NULL);
            if (job->rc == GH_EDENIED) {
                ij->why = ij->inv.state != GH_INVITE_PENDING
                          ? "not_pending" : "four_eyes";
            }
            ngx_sprintf((u_char *) after, "%s%Z", job->rc == 0
                        ? (ij->op == 1 ? "approved, link issued"
                                       : "rejected") : before);
        } else {
            job->rc = GH_EDENIED;
        }
    }
    if (after[0] == '\0') {
        ngx_cpystrn((u_char *) after, (u_char *) before, sizeof(after));
    }

    ngx_memzero(&ev, sizeof(ev));
    ev.user = actor.email;
    ev.tenant = actor.tenant;
    ev.addr = job->addr_text;
    ev.session = ij->session_ref;
    ev.request_id = job->request_id;
    ev.action = action;
    ev.target = ij->inv.email;
    ev.result = job->rc == 0 ? "success"
                : job->rc == GH_EDENIED ? "denied" : "failure";
    ev.reason = job->rc == 0 ? NULL
                : job->rc == GH_EDENIED ? ij->why : gh_strerror(job->rc);
    ev.detail = ij->via ? ij->via : ij->inv.roles;
    ev.before = before;
    ev.after = after;
    if (gh_audit_event(&ev) != 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "gatehouse: audit record of %s could not be written",
                      action);
    }
}


static void
gh_inv_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_inv_job_t              *ij = job->ext;
    ngx_int_t                  rc;

    if (ij->decision != GH_ADM_ALLOW) {
        rc = gh_admin_answer(r, ctx, ij->decision, ij->why,
                             GH_ADMIN_INVITES);
    } else if (job->rc == GH_EDENIED) {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_CONFLICT,
                             ngx_strcmp(ij->why, "four_eyes") == 0
                             ? "Another manager must decide on an "
                               "invitation you made."
                             : "This invitation was already decided.");
    } else if (job->rc == GH_EEXIST) {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_CONFLICT,
                             "That email already has an account or an "
                             "open invitation.");
    } else if (job->rc == GH_EINVAL || job->rc == GH_EBADEMAIL
               || job->rc == GH_EBADTENANT)
    {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                             "Check the email, the name and the tenant.");
    } else if (job->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: invitation failed: %s",
                      gh_strerror(job->rc));
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "the store is unavailable, try again");
    } else {
        gh_adm_actor_t  a;

        gh_admin_actor(ctx, &a);
        rc = gh_admin_invites(r, ctx, &a,
                              ij->op == 0 ? "Invitation recorded: it waits "
                                            "for a manager's approval."
                              : ij->op == 1 ? "Approved."
                              : "Rejected.",
                              ij->op == 1 ? ij->token : NULL);
    }
    gh_wipe(ij->token, sizeof(ij->token));
    ngx_http_finalize_request(r, rc);
}


static void
gh_inv_body(ngx_http_request_t *r)
{
    static const char *const ops[] = { "create", "approve", "reject" };
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body, v;
    gh_adm_actor_t             a;
    gh_job_t                  *job;
    gh_inv_job_t              *ij;
    const char                *why;
    int                        i, d;

    ctx = gh_admin_form(r, &body);
    if (ctx == NULL) {
        return;
    }
    job = ngx_pcalloc(r->pool, sizeof(*job));
    ij = ngx_pcalloc(r->pool, sizeof(*ij));
    if (job == NULL || ij == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    i = gh_form_choice(r->pool, &body, "action", ops, 3, -1);
    if (i < 0) {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST, "Unknown action."));
        return;
    }
    ij->op = (int) i;
    gh_admin_actor(ctx, &a);

    if (ij->op == 0) {
        /* email (normalised), name, roles, tenant */
        if (gh_form_field(r->pool, &body, "email", GH_EMAIL_MAX, &v) != NGX_OK
            || gh_email_normalize((const char *) v.data, v.len,
                                  ij->inv.email) != 0)
        {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                "Enter a valid email address."));
            return;
        }
        if (gh_form_field(r->pool, &body, "name", GH_NAME_MAX, &v) == NGX_OK) {
            ngx_memcpy(ij->inv.name, v.data, v.len);
            ij->inv.name[v.len] = '\0';
        }
        if (gh_form_field(r->pool, &body, "roles", 512, &v) == NGX_OK) {
            for (i = 0; (size_t) i < v.len; i++) {
                if (v.data[i] != ' ') {
                    ij->inv.roles[ngx_strlen(ij->inv.roles)] =
                        (char) v.data[i];
                }
            }
        }
        if ((a.roles & GH_ADM_R_ADMIN)
            && gh_form_field(r->pool, &body, "tenant", GH_TENANT_MAX, &v)
               == NGX_OK && v.len > 0)
        {
            ngx_memcpy(ij->inv.tenant, v.data, v.len);
            ij->inv.tenant[v.len] = '\0';
        } else {
            ngx_cpystrn((u_char *) ij->inv.tenant,
                        (u_char *) ctx->user.tenant, sizeof(ij->inv.tenant));
        }
        d = gh_inv_roles_decide(&a, GH_ADM_INVITE_CREATE, ij->inv.tenant,
                                ij->inv.roles, gh_now(), &why, 1);
        if (d != GH_ADM_ALLOW) {
            ngx_http_finalize_request(r,
                ngx_strcmp(why, "unknown_role") == 0
                || ngx_strcmp(why, "bad_role") == 0
                ? gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                  "The access policy does not define one "
                                  "of those roles.")
                : gh_admin_answer(r, ctx, d, why, GH_ADMIN_INVITES));
            return;
        }
    } else {
        if (gh_form_field(r->pool, &body, "id", GH_ID_HEXLEN, &v) != NGX_OK
            || v.len != GH_ID_HEXLEN)
        {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                "Which invitation?"));
            return;
        }
        ngx_memcpy(ij->id, v.data, GH_ID_HEXLEN);
        ij->id[GH_ID_HEXLEN] = '\0';
        if (gh_invite_get(gh_store, ij->id, &ij->inv) != 0) {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                "No such invitation."));
            return;
        }
        d = gh_inv_roles_decide(&a, GH_ADM_INVITE_DECIDE, ij->inv.tenant,
                                ij->op == 1 ? ij->inv.roles : "", gh_now(),
                                &why, 0);
        if (d == GH_ADM_MFA || d == GH_ADM_STEPUP || d == GH_ADM_HIDDEN) {
            ngx_http_finalize_request(r,
                gh_admin_answer(r, ctx, d, why, GH_ADMIN_INVITES));
            return;
        }
    }

    ij->actor = a;
    gh_admin_post(r, ctx, job, ij, &ij->session, ij->session_ref,
                  gh_inv_thread, gh_inv_finish);
}


/* The same check for the API (admin.h): roles known to the live policy
 * when inviting. */
int
gh_inv_roles_check(const gh_adm_actor_t *a, gh_adm_action_t action,
    const char *tenant, const char *roles, const char **why)
{
    return gh_inv_roles_decide(a, action, tenant, roles, gh_now(), why,
                               action == GH_ADM_INVITE_CREATE);
}


/* ---- the invitee's page: /.gatehouse/join?token= (no session) ---- */

typedef struct {
    ngx_str_t            token;
    ngx_str_t            password;
    const gh_blocklist_t *blocklist;
    gh_invite_t          inv;
    gh_verdict_t         verdict;
    char                 verdict_text[GH_VERDICT_MAX * GH_VERDICT_TEXT];
} gh_join_job_t;


static ngx_int_t
gh_join_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *token, const gh_invite_t *iv,
    const char *msg)
{
    gh_ab_t  b;

    if (gh_ab_init(&b, r->pool, 4096) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (msg != NULL) {
        gh_ab_raw(&b, "<p class=\"msg\" role=\"alert\" id=\"message\">");
        gh_ab_esc(&b, msg);
        gh_ab_raw(&b, "</p>");
    }
    if (iv != NULL && token != NULL) {
        gh_ab_raw(&b, "<p class=\"hint\">Welcome, <strong id=\"join-email\">");
        gh_ab_esc(&b, iv->email);
        gh_ab_raw(&b, "</strong>. Choose your password.</p><form method=\""
                  "post\" action=\"" GH_JOIN_PAGE "\" autocomplete=\"off\">"
                  "<input type=\"hidden\" name=\"token\" value=\"");
        gh_ab_escn(&b, token->data, token->len);
        gh_ab_raw(&b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
        gh_ab_escn(&b, ctx->csrf.data, ctx->csrf.len);
        gh_ab_raw(&b, "\"><label for=\"password\">New password</label>"
                  "<input id=\"password\" name=\"password\" type=\"password\""
                  " autocomplete=\"new-password\" required>"
                  "<button type=\"submit\" id=\"join\">Set password</button>"
                  "</form>");
    }
    if (b.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    {
        ngx_str_t  inner;

        inner.data = b.start;
        inner.len = b.p - b.start;
        return gh_send_page(r, ctx, status, "Join", &inner, NULL);
    }
}


/* The token of a query or form: exactly GH_INVITE_TOKEN_LEN base64url
 * characters, else NGX_DECLINED. */
static ngx_int_t
gh_join_token(ngx_str_t *v)
{
    ngx_uint_t  i;
    u_char      c;

    if (v->len != GH_INVITE_TOKEN_LEN) {
        return NGX_DECLINED;
    }
    for (i = 0; i < v->len; i++) {
        c = v->data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_DECLINED;
        }
    }
    return NGX_OK;
}


static void
gh_join_thread(void *data, ngx_log_t *log)
{
    gh_job_t            *job = data;
    gh_join_job_t       *jj = job->ext;
    gh_tenant_t          t;
    gh_user_t            u;
    gh_pwpolicy_t        pol;
    gh_pwcontext_t       cx;
    gh_pwhash_params_t   hp;
    gh_pwchange_t        chg;
    gh_audit_event_t     ev;
    char                *canon = NULL, hash[GH_HASH_MAX];
    size_t               clen = 0;
    int64_t              now = gh_now();
    int                  rc;

    hash[0] = '\0';
    rc = gh_store == NULL ? GH_ESTORE
         : gh_invite_by_token(gh_store, (const char *) jj->token.data,
                              jj->token.len, now, &jj->inv);
    if (rc == 0) {
        rc = gh_tenant_get(gh_store, jj->inv.tenant, &t);
    }
    if (rc == 0) {
        rc = gh_user_get(gh_store, jj->inv.uid, &u);
    }
    if (rc == 0) {
        gh_pwpolicy_resolve(&t.pw, t.mfa == GH_MFA_REQUIRED, &pol);
        ngx_memzero(&cx, sizeof(cx));
        cx.email = u.email;
        cx.name = u.name;
        cx.tenant = t.name;
        cx.tenant_display = t.display;
        rc = gh_pwpolicy_check(&pol, jj->blocklist,
                               (const char *) jj->password.data,
                               jj->password.len, &cx, &jj->verdict);
        if (rc == GH_EDENIED) {
            gh_verdict_join(&jj->verdict, jj->verdict_text,
                            sizeof(jj->verdict_text));
        }
    }
    if (rc == 0) {
        rc = gh_pw_canonical((const char *) jj->password.data,
                             jj->password.len, &canon, &clen);
    }
    if (rc == 0) {
        rc = gh_pwhash_params_load(gh_store, &hp);
    }
    if (rc == 0) {
        rc = gh_password_hash(&hp, canon, clen, hash);
    }
    gh_pw_free(canon, clen);
    gh_wipe(jj->password.data, jj->password.len);
    if (rc == 0) {
        /* the link works once: used before the password is stored */
        rc = gh_invite_consume(gh_store, (const char *) jj->token.data,
                               jj->token.len, now, &jj->inv);
    }
    if (rc == 0) {
        ngx_memzero(&chg, sizeof(chg));
        chg.hash = hash;
        chg.keep = pol.history;
        chg.now = now;
        rc = gh_credential_change(gh_store, jj->inv.uid, &chg);
        rc = rc < 0 ? rc : 0;
    }
    gh_wipe(hash, sizeof(hash));
    job->rc = rc;

    if (jj->inv.email[0]) {
        ngx_memzero(&ev, sizeof(ev));
        ev.user = jj->inv.email;
        ev.tenant = jj->inv.tenant;
        ev.addr = job->addr_text;
        ev.request_id = job->request_id;
        ev.action = "invite.accept";
        ev.target = jj->inv.email;
        ev.result = rc == 0 ? "success" : rc == GH_EDENIED ? "denied"
                                                           : "failure";
        ev.reason = rc == 0 ? NULL : rc == GH_EDENIED ? "password_policy"
                                                      : gh_strerror(rc);
        ev.before = "approved";
        ev.after = rc == 0 ? "used: password set" : "approved";
        if (gh_audit_event(&ev) != 0) {
            ngx_log_error(NGX_LOG_ERR, log, 0, "gatehouse: audit record of "
                          "invite.accept could not be written");
        }
    }
}


static void
gh_join_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_join_job_t             *jj = job->ext;
    gh_ab_t                    b;
    ngx_str_t                  inner;
    ngx_int_t                  rc;

    if (job->rc == 0) {
        if (gh_ab_init(&b, r->pool, 1024) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        gh_ab_raw(&b, "<p id=\"notice\">Your password is set. Sign in with "
                  "your email address; if your organisation requires a "
                  "second step, you will set it up next.</p><a class=\""
                  "button\" id=\"continue\" href=\"" GH_PREFIX "login\">"
                  "Sign in</a>");
        inner.data = b.start;
        inner.len = b.p - b.start;
        rc = b.failed ? NGX_HTTP_INTERNAL_SERVER_ERROR
             : gh_send_page(r, ctx, NGX_HTTP_OK, "Welcome", &inner, NULL);
    } else if (job->rc == GH_EDENIED) {
        rc = gh_join_page(r, ctx, NGX_HTTP_BAD_REQUEST, &jj->token, &jj->inv,
                          jj->verdict_text[0] ? jj->verdict_text
                          : "That password is not accepted.");
    } else if (job->rc == GH_ENOTFOUND || job->rc == GH_EEXPIRED) {
        rc = gh_join_page(r, ctx, GH_HTTP_GONE, NULL, NULL,
                          "This link is not valid: it was used, it expired, "
                          "or it was never issued. Ask your manager for a "
                          "new invitation.");
    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: joining failed: %s", gh_strerror(job->rc));
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "try again later");
    }
    ngx_http_finalize_request(r, rc);
}


static void
gh_join_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_http_gatehouse_ctx_t        *ctx;
    ngx_str_t                        body;
    gh_job_t                        *job;
    gh_join_job_t                   *jj;
    ngx_int_t                        rc;

    ctx = gh_ctx(r);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_form_body(r, &body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    job = ngx_pcalloc(r->pool, sizeof(*job));
    jj = ngx_pcalloc(r->pool, sizeof(*jj));
    if (job == NULL || jj == NULL || gh_csrf_prepare(r, ctx) != NGX_OK) {
        gh_wipe(body.data, body.len);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_form_field(r->pool, &body, "token", GH_INVITE_TOKEN_LEN,
                      &jj->token) != NGX_OK
        || gh_join_token(&jj->token) != NGX_OK)
    {
        gh_wipe(body.data, body.len);
        ngx_http_finalize_request(r,
            gh_join_page(r, ctx, NGX_HTTP_BAD_REQUEST, NULL, NULL,
                         "This link is malformed."));
        return;
    }
    if (gh_csrf_check(r, ctx, &body) != NGX_OK) {
        gh_wipe(body.data, body.len);
        ngx_http_finalize_request(r,
            gh_join_page(r, ctx, NGX_HTTP_FORBIDDEN, NULL, NULL,
                         "This form expired or came from another site. "
                         "Open the link again."));
        return;
    }
    if (gh_form_field(r->pool, &body, "password", GH_PASSWORD_MAX,
                      &jj->password) != NGX_OK)
    {
        ngx_str_set(&jj->password, "");
    }
    gh_wipe(body.data, body.len);
    jj->blocklist = mcf->blocklist;
    job->ext = jj;
    job->request = r;
    gh_job_who(job, ctx);
    job->finish = gh_join_finish;
    if (gh_job_post(r, job, gh_join_thread) != NGX_OK) {
        gh_wipe(jj->password.data, jj->password.len);
        ngx_http_finalize_request(r,
            gh_send_busy(r));
    }
}


ngx_int_t
gh_join_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    gh_invite_t  *iv;
    ngx_str_t     token;
    ngx_int_t     rc;
    int           grc;

    if (r->method == NGX_HTTP_POST) {
        return gh_read_form(r, gh_join_body);
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "use GET or POST");
    }
    if (gh_csrf_prepare(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ngx_http_arg(r, (u_char *) "token", 5, &token) != NGX_OK
        || gh_join_token(&token) != NGX_OK)
    {
        return gh_join_page(r, ctx, NGX_HTTP_BAD_REQUEST, NULL, NULL,
                            "This link is malformed.");
    }
    iv = ngx_palloc(r->pool, sizeof(*iv));
    if (iv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    grc = gh_invite_by_token(gh_store, (const char *) token.data, token.len,
                             gh_now(), iv);
    if (grc == GH_ENOTFOUND || grc == GH_EEXPIRED) {
        return gh_join_page(r, ctx, GH_HTTP_GONE, NULL, NULL,
                            "This link is not valid: it was used, it "
                            "expired, or it was never issued. Ask your "
                            "manager for a new invitation.");
    }
    if (grc != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    return gh_join_page(r, ctx, NGX_HTTP_OK, &token, iv, NULL);
}


/* ---- access review: /.gatehouse/admin/review (and review.csv) ---- */

#define GH_REVIEW_CSV_PAGE  500

typedef struct {
    ngx_http_request_t        *r;
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_ab_t                   *b;
    int64_t                    now, days;
    ngx_uint_t                 csv, can_disable, rows, flagged;
    int                        err;
} gh_review_t;


/* Flagged: enabled, and no sign-in for `days` (or, never signed in, an
 * account older than that). Shared with the API. */
int
gh_review_flag(const gh_user_t *u, int64_t last, int64_t now, int64_t days)
{
    int64_t  since = last ? last : u->created;

    return !u->disabled && now - since > days * 86400;
}


static void
gh_csv(gh_ab_t *b, const char *s)
{
    /* a cell: quoted, quotes doubled, and a leading = + - @ defused so a
     * spreadsheet never runs it as a formula */
    const char  *p;
    char         one[2] = { 0, 0 };

    gh_ab_raw(b, "\"");
    if (*s == '=' || *s == '+' || *s == '-' || *s == '@') {
        gh_ab_raw(b, "'");
    }
    for (p = s; *p; p++) {
        if (*p == '"') {
            gh_ab_raw(b, "\"\"");
        } else if ((unsigned char) *p >= 0x20) {
            one[0] = *p;
            gh_ab_raw(b, one);
        }
    }
    gh_ab_raw(b, "\"");
}


static int
gh_review_row(const gh_user_t *u, void *arg)
{
    gh_review_t  *rv = arg;
    gh_ab_t      *b = rv->b;
    gh_mfa_t     *m;
    const char   *act[GH_BINDINGS_MAX];
    int64_t       last = 0;
    size_t        n, i;
    int           rc, mfa, flag;
    char          roles[GH_ROLES_MAX + 1];
    u_char       *q;

    n = gh_user_active_roles(u, rv->now, act);
    if (n == 0) {
        return 0;                       /* the review covers role holders */
    }
    rc = gh_lastlogin_get(gh_store, u->id, &last);
    if (rc != 0 && rc != GH_ENOTFOUND) {
        rv->err = rc;
        return rc;
    }
    m = ngx_palloc(rv->r->pool, sizeof(*m));
    if (m == NULL) {
        return GH_ENOMEM;
    }
    rc = gh_mfa_get(gh_store, u->id, m);
    mfa = rc == 0 && m->has_active;
    gh_wipe(m, sizeof(*m));
    if (rc != 0 && rc != GH_ENOTFOUND) {
        rv->err = rc;
        return rc;
    }
    flag = gh_review_flag(u, last, rv->now, rv->days);
    rv->rows++;
    rv->flagged += flag;
    q = (u_char *) roles;
    for (i = 0; i < n; i++) {
        q = ngx_slprintf(q, (u_char *) roles + sizeof(roles) - 1, "%s%s",
                         i ? "," : "", act[i]);
    }
    *q = '\0';

    if (rv->csv) {
        gh_csv(b, u->email);
        gh_ab_raw(b, ",");
        gh_csv(b, u->name);
        gh_ab_raw(b, ",");
        gh_csv(b, roles);
        gh_ab_raw(b, ",");
        if (last) {
            gh_ab_date(b, last);
        } else {
            gh_ab_raw(b, "never");
        }
        gh_ab_raw(b, mfa ? ",enrolled," : ",none,");
        gh_ab_raw(b, u->disabled ? "disabled," : "enabled,");
        gh_ab_raw(b, flag ? "inactive\r\n" : "\r\n");
        return b->failed ? GH_ENOMEM : 0;
    }
    gh_ab_raw(b, flag ? "<tr class=\"flagged\"><td>" : "<tr><td>");
    if (flag && rv->can_disable) {
        gh_ab_raw(b, "<input type=\"checkbox\" name=\"id\" checked "
                  "form=\"bulk\" value=\"");
        gh_ab_esc(b, u->id);
        gh_ab_raw(b, "\">");
    }
    gh_ab_raw(b, "</td><td><a href=\"" GH_ADMIN_USER "?id=");
    gh_ab_esc(b, u->id);
    gh_ab_raw(b, "\">");
    gh_ab_esc(b, u->email);
    gh_ab_raw(b, "</a></td><td>");
    gh_ab_esc(b, roles);
    gh_ab_raw(b, "</td><td>");
    if (last) {
        gh_ab_date(b, last);
    } else {
        gh_ab_raw(b, "never");
    }
    gh_ab_raw(b, mfa ? "</td><td>enrolled</td><td>" : "</td><td>none</td><td>");
    gh_ab_raw(b, u->disabled ? "<span class=\"off\">disabled</span>"
                             : flag ? "<span class=\"off\">inactive</span>"
                                    : "active");
    gh_ab_raw(b, "</td></tr>");
    return b->failed ? GH_ENOMEM : 0;
}


/* tenant and days from the query, and the decision to view. NGX_OK, or
 * NGX_DECLINED with *answer set. */
static ngx_int_t
gh_review_args(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a, char *tenant, int64_t *days, ngx_int_t *answer)
{
    gh_adm_req_t  rq;
    const char   *why;
    char          d[8];
    ngx_int_t     n;
    int           dec;

    if (gh_admin_arg(r, "tenant", GH_TENANT_MAX, tenant) != NGX_OK) {
        ngx_cpystrn((u_char *) tenant, (u_char *) ctx->user.tenant,
                    GH_TENANT_MAX + 1);
    }
    *days = GH_REVIEW_DAYS;
    if (gh_admin_arg(r, "days", 4, d) == NGX_OK) {
        n = ngx_atoi((u_char *) d, ngx_strlen(d));
        if (n < 1 || n > 3650) {
            *answer = gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                      "Days: a number from 1 to 3650.");
            return NGX_DECLINED;
        }
        *days = n;
    }
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_REVIEW_VIEW;
    rq.tenant = tenant;
    dec = gh_adm_decide(a, &rq, gh_now(), &why);
    if (dec != GH_ADM_ALLOW) {
        *answer = gh_admin_answer(r, ctx, dec, why, GH_ADMIN_HOME "review");
        return NGX_DECLINED;
    }
    return NGX_OK;
}


static ngx_int_t
gh_admin_review(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a, ngx_uint_t csv)
{
    gh_ab_t         b;
    gh_review_t     rv;
    gh_user_page_t  pg;
    gh_adm_req_t    rq;
    const char     *why;
    char            tenant[GH_TENANT_MAX + 1], after[GH_EMAIL_MAX + 1];
    char            next[GH_EMAIL_MAX + 1], who[GH_EMAIL_MAX + 1];
    char            done[8];
    int64_t         days, when;
    ngx_int_t       answer, ha;
    ngx_str_t       body;
    int             rc;

    if (gh_review_args(r, ctx, a, tenant, &days, &answer) != NGX_OK) {
        return answer;
    }
    ha = gh_admin_arg(r, "after", GH_EMAIL_MAX, after);
    if (ha == NGX_ERROR) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST, "Bad cursor.");
    }
    if (gh_ab_init(&b, r->pool, 16384) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memzero(&rv, sizeof(rv));
    rv.r = r;
    rv.ctx = ctx;
    rv.b = &b;
    rv.now = gh_now();
    rv.days = days;
    rv.csv = csv;
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_USER_DISABLE;
    rq.tenant = tenant;
    rv.can_disable = gh_adm_decide(a, &rq, rv.now, &why) != GH_ADM_DENY
                     && ngx_strcmp(why, "other_tenant") != 0;

    if (csv) {
        gh_ab_raw(&b, "email,name,roles,last_login,mfa,state,flag\r\n");
    } else {
        if (gh_admin_arg(r, "done", 7, done) == NGX_OK) {
            gh_ab_raw(&b, "<p class=\"ok\" id=\"done\">Done: ");
            gh_ab_esc(&b, done);
            gh_ab_raw(&b, ".</p>");
        }
        rc = gh_review_last(gh_store, tenant, who, sizeof(who), &when);
        gh_ab_raw(&b, "<p id=\"last-review\">Tenant <strong>");
        gh_ab_esc(&b, tenant);
        gh_ab_raw(&b, "</strong>. ");
        if (rc == 0) {
            gh_ab_raw(&b, "Last review completed ");
            gh_ab_date(&b, when);
            gh_ab_raw(&b, " by ");
            gh_ab_esc(&b, who);
            gh_ab_raw(&b, ".");
        } else {
            gh_ab_raw(&b, "Never reviewed.");
        }
        gh_ab_raw(&b, "</p><form method=\"get\" action=\"" GH_ADMIN_HOME
                  "review\"><label>Tenant <input name=\"tenant\" value=\"");
        gh_ab_esc(&b, tenant);
        gh_ab_raw(&b, "\"></label> <label>Inactive after (days) <input "
                  "name=\"days\" id=\"days\" value=\"");
        gh_ab_int(&b, days);
        gh_ab_raw(&b, "\" maxlength=\"4\"></label> <button type=\"submit\">"
                  "Show</button> <a id=\"csv\" href=\"" GH_ADMIN_HOME
                  "review.csv?tenant=");
        gh_ab_q(&b, tenant);
        gh_ab_raw(&b, "&amp;days=");
        gh_ab_int(&b, days);
        gh_ab_raw(&b, "\">Export CSV</a></form>"
                  "<table id=\"review\"><thead><tr><th></th><th>Email</th>"
                  "<th>Roles</th><th>Last sign-in</th><th>Second factor</th>"
                  "<th>State</th></tr></thead><tbody>");
    }

    ngx_memzero(&pg, sizeof(pg));
    pg.tenant = tenant;
    pg.after = ha == NGX_OK ? after : NULL;
    pg.limit = csv ? GH_REVIEW_CSV_PAGE : GH_REVIEW_PAGE;
    pg.scan = GH_ADMIN_SCAN;
    rc = gh_user_page(gh_store, &pg, gh_review_row, &rv, next);
    if (rc == GH_EBADTENANT) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND, "No such tenant.");
    }
    if (rc != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    if (csv) {
        if (next[0] != '\0') {
            gh_ab_raw(&b, "# more: add &after=");
            gh_ab_q(&b, next);
            gh_ab_raw(&b, "\r\n");
        }
        if (b.failed) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        body.data = b.start;
        body.len = b.p - b.start;
        return gh_send(r, NGX_HTTP_OK, "text/csv; charset=utf-8", &body,
                       NULL, NULL, 0);
    }
    gh_ab_raw(&b, "</tbody></table>");
    if (next[0] != '\0') {
        gh_ab_raw(&b, "<nav class=\"pages\"><a id=\"next\" href=\""
                  GH_ADMIN_HOME "review?tenant=");
        gh_ab_q(&b, tenant);
        gh_ab_raw(&b, "&amp;after=");
        gh_ab_q(&b, next);
        gh_ab_raw(&b, "\">Next page</a></nav>");
    }
    if (rv.can_disable) {
        gh_ab_raw(&b, "<form method=\"post\" id=\"bulk\" action=\""
                  GH_ADMIN_HOME "review?tenant=");
        gh_ab_q(&b, tenant);
        gh_ab_raw(&b, "&amp;days=");
        gh_ab_int(&b, days);
        gh_ab_raw(&b, "\"><input type=\"hidden\" name=\"action\" "
                  "value=\"disable\"><input type=\"hidden\" name=\"csrf\" "
                  "value=\"");
        gh_ab_escn(&b, ctx->csrf.data, ctx->csrf.len);
        gh_ab_raw(&b, "\"><button type=\"submit\" class=\"danger\" "
                  "id=\"disable-flagged\">Disable the checked accounts"
                  "</button></form>");
    }
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_REVIEW_COMPLETE;
    rq.tenant = tenant;
    if (gh_adm_decide(a, &rq, rv.now, &why) == GH_ADM_ALLOW) {
        gh_ab_raw(&b, "<form method=\"post\" action=\"" GH_ADMIN_HOME
                  "review?tenant=");
        gh_ab_q(&b, tenant);
        gh_ab_raw(&b, "\"><input type=\"hidden\" name=\"action\" "
                  "value=\"complete\"><input type=\"hidden\" name=\"flagged\""
                  " value=\"");
        gh_ab_int(&b, (int64_t) rv.flagged);
        gh_ab_raw(&b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
        gh_ab_escn(&b, ctx->csrf.data, ctx->csrf.len);
        gh_ab_raw(&b, "\"><button type=\"submit\" id=\"complete\">Record "
                  "this review as completed</button></form>");
    }
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "Access review", &b);
}


static void
gh_rev_audit(gh_job_t *job, gh_rev_job_t *rj, const gh_user_t *actor,
    const char *action, const char *target, int rc, const char *why,
    const char *before, const char *after)
{
    gh_admin_record(job, actor, rj->session_ref, action, target, rc, why,
                   rj->via ? rj->via : "access review", before, after);
}


void
gh_rev_thread(void *data, ngx_log_t *log)
{
    gh_job_t        *job = data;
    gh_rev_job_t    *rj = job->ext;
    gh_user_t        actor, t;
    gh_adm_actor_t   a;
    gh_adm_req_t     rq;
    int64_t          now = gh_now(), last;
    char             before[GH_ADMIN_TEXT_MAX], after[GH_ADMIN_TEXT_MAX];
    ngx_uint_t       i;
    int              rc, d;
    const char      *why;

    rj->decision = GH_ADM_DENY;
    rj->why = "error";
    job->rc = gh_store == NULL ? GH_ESTORE
              : gh_user_get(gh_store, job->uid, &actor);
    if (job->rc != 0) {
        return;
    }
    gh_adm_actor(&a, &actor, &rj->session, rj->actor.tenant_mfa, now);
    if (rj->complete) {
        ngx_memzero(&rq, sizeof(rq));
        rq.action = GH_ADM_REVIEW_COMPLETE;
        rq.tenant = rj->tenant;
        rj->decision = gh_adm_decide(&a, &rq, now, &rj->why);
        job->rc = rj->decision == GH_ADM_ALLOW
                  ? gh_review_record(gh_store, rj->tenant, actor.email, now,
                                     rj->flagged)
                  : GH_EDENIED;
        ngx_sprintf((u_char *) after, "completed; %ui flagged%Z",
                    (ngx_uint_t) rj->flagged);
        gh_rev_audit(job, rj, &actor, "review.complete", rj->tenant,
                     job->rc, rj->why, "", after);
        return;
    }
    /* bulk disable: each account decided, re-checked as flagged, and
     * audited on its own */
    rj->decision = GH_ADM_ALLOW;
    rj->why = "ok";
    job->rc = 0;
    for (i = 0; i < rj->nids; i++) {
        rc = gh_user_get(gh_store, rj->ids[i], &t);
        if (rc != 0) {
            rj->skipped++;
            continue;
        }
        ngx_memzero(&rq, sizeof(rq));
        rq.action = GH_ADM_USER_DISABLE;
        rq.tenant = t.tenant;
        rq.uid = t.id;
        rq.target_roles = gh_adm_roles(&t, now);
        d = gh_adm_decide(&a, &rq, now, &why);
        last = 0;
        if (d == GH_ADM_ALLOW && strcmp(t.tenant, rj->tenant) != 0) {
            d = GH_ADM_HIDDEN;
            why = "other_tenant";
        }
        if (d == GH_ADM_ALLOW) {
            rc = gh_lastlogin_get(gh_store, t.id, &last);
            if ((rc != 0 && rc != GH_ENOTFOUND)
                || !gh_review_flag(&t, last, now, rj->days))
            {
                d = GH_ADM_DENY;
                why = "not_inactive";
            }
        }
        gh_admin_state(&t, -1, before, sizeof(before));
        if (d != GH_ADM_ALLOW) {
            rj->skipped++;
            gh_rev_audit(job, rj, &actor, "user.disable", t.email,
                         GH_EDENIED, why, before, before);
            if (d == GH_ADM_HIDDEN || d == GH_ADM_DENY) {
                if (rj->decision == GH_ADM_ALLOW) {
                    rj->decision = d;
                    rj->why = why;
                }
            }
            continue;
        }
        rc = gh_user_set_disabled(gh_store, t.id, 1);
        if (rc == 0) {
            rj->disabled++;
            t.disabled = 1;
        } else {
            rj->skipped++;
            job->rc = rc;
        }
        gh_admin_state(&t, -1, after, sizeof(after));
        gh_rev_audit(job, rj, &actor, "user.disable", t.email, rc, NULL,
                     before, after);
    }
    ngx_log_error(NGX_LOG_NOTICE, log, 0, "gatehouse: access review: %ui "
                  "disabled, %ui skipped", rj->disabled, rj->skipped);
}


static void
gh_rev_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_rev_job_t              *rj = job->ext;
    ngx_str_t                  loc;
    u_char                    *p;

    if (rj->complete && rj->decision != GH_ADM_ALLOW) {
        ngx_http_finalize_request(r,
            gh_admin_answer(r, ctx, rj->decision, rj->why,
                            GH_ADMIN_HOME "review"));
        return;
    }
    if (!rj->complete && rj->disabled == 0 && rj->decision != GH_ADM_ALLOW) {
        ngx_http_finalize_request(r,
            gh_admin_answer(r, ctx, rj->decision, rj->why,
                            GH_ADMIN_HOME "review"));
        return;
    }
    if (job->rc != 0 && (rj->complete || rj->disabled == 0)) {
        ngx_http_finalize_request(r,
            gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                          "the store is unavailable, try again"));
        return;
    }
    loc.data = ngx_pnalloc(r->pool, 256);
    if (loc.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    p = ngx_snprintf(loc.data, 256, GH_ADMIN_HOME "review?tenant=%s&done=%s",
                     rj->tenant, rj->complete ? "review" : "");
    if (!rj->complete) {
        p = ngx_snprintf(p, 256 - (p - loc.data), "%ui", rj->disabled);
    }
    loc.len = p - loc.data;
    ngx_http_finalize_request(r,
        gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL, 0));
}


static void
gh_rev_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body, v;
    gh_adm_actor_t             a;
    gh_job_t                  *job;
    gh_rev_job_t              *rj;
    u_char                    *p, *end, *amp;
    ngx_int_t                  answer, n;
    ngx_uint_t                 i;
    int64_t                    days;

    ctx = gh_admin_form(r, &body);
    if (ctx == NULL) {
        return;
    }
    job = ngx_pcalloc(r->pool, sizeof(*job));
    rj = ngx_pcalloc(r->pool, sizeof(*rj));
    if (job == NULL || rj == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    gh_admin_actor(ctx, &a);
    if (gh_review_args(r, ctx, &a, rj->tenant, &days, &answer) != NGX_OK) {
        ngx_http_finalize_request(r, answer);
        return;
    }
    rj->days = days;
    if (gh_form_field(r->pool, &body, "action", 16, &v) != NGX_OK) {
        v.len = 0;
    }
    if (v.len == 8 && ngx_strncmp(v.data, "complete", 8) == 0) {
        rj->complete = 1;
        if (gh_form_field(r->pool, &body, "flagged", 9, &v) == NGX_OK) {
            n = ngx_atoi(v.data, v.len);
            rj->flagged = n > 0 ? (unsigned) n : 0;
        }
    } else if (v.len == 7 && ngx_strncmp(v.data, "disable", 7) == 0) {
        /* every id=<32 hex> field, at most a page of them */
        p = body.data;
        end = body.data + body.len;
        while (p < end) {
            amp = ngx_strlchr(p, end, '&');
            if (amp == NULL) {
                amp = end;
            }
            if (amp - p == 3 + GH_ID_HEXLEN && ngx_strncmp(p, "id=", 3) == 0) {
                if (rj->nids == GH_REVIEW_PAGE) {
                    ngx_http_finalize_request(r,
                        gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        "Too many accounts at once."));
                    return;
                }
                for (i = 0; i < GH_ID_HEXLEN; i++) {
                    if (!((p[3 + i] >= '0' && p[3 + i] <= '9')
                          || (p[3 + i] >= 'a' && p[3 + i] <= 'f')))
                    {
                        break;
                    }
                }
                if (i == GH_ID_HEXLEN) {
                    ngx_memcpy(rj->ids[rj->nids], p + 3, GH_ID_HEXLEN);
                    rj->ids[rj->nids++][GH_ID_HEXLEN] = '\0';
                }
            }
            p = amp + 1;
        }
        if (rj->nids == 0) {
            ngx_http_finalize_request(r,
                gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                "No account was checked."));
            return;
        }
    } else {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST, "Unknown action."));
        return;
    }
    rj->actor = a;
    gh_admin_post(r, ctx, job, rj, &rj->session, rj->session_ref,
                  gh_rev_thread, gh_rev_finish);
}


/* ---- break-glass: /.gatehouse/admin/breakglass (administrators) ---- */

#define GH_BG_PAGE  GH_ADMIN_HOME "breakglass"

static int
gh_bg_fn(gh_breakglass_t *b, int have, void *arg)
{
    gh_bg_job_t  *bj = arg;

    if (!have) {
        return GH_ENOTFOUND;
    }
    if (b->state == GH_BG_ON && b->until <= bj->now) {
        b->state = GH_BG_OFF;            /* expired: as if ended */
        bj->expired = 1;
    }
    switch (bj->op) {
    case 0:
        if (b->state == GH_BG_ON) {
            return GH_EEXIST;
        }
        b->state = GH_BG_REQUESTED;
        ngx_cpystrn((u_char *) b->requester, (u_char *) bj->actor_uid,
                    sizeof(b->requester));
        ngx_cpystrn((u_char *) b->requester_email,
                    (u_char *) bj->actor_email, sizeof(b->requester_email));
        b->approver_email[0] = '\0';
        b->requested = bj->now;
        b->until = 0;
        return 0;
    case 1:
        if (b->state != GH_BG_REQUESTED) {
            return GH_ENOTFOUND;
        }
        if (ngx_strcmp(b->requester, bj->actor_uid) == 0) {
            return GH_EDENIED;           /* two different administrators */
        }
        b->state = GH_BG_ON;
        ngx_cpystrn((u_char *) b->approver_email,
                    (u_char *) bj->actor_email, sizeof(b->approver_email));
        b->until = bj->now + GH_BG_TTL;
        return 0;
    default:
        b->state = GH_BG_OFF;
        b->until = 0;
        return 0;
    }
}


void
gh_bg_thread(void *data, ngx_log_t *log)
{
    static const char *const actions[] = {
        "breakglass.request", "breakglass.approve", "breakglass.end"
    };
    gh_job_t          *job = data;
    gh_bg_job_t       *bj = job->ext;
    gh_user_t          actor, acct;
    char               after[96];
    int                rc;

    bj->now = gh_now();
    bj->decision = gh_admin_redecide(job, &bj->actor, &bj->session,
                                     GH_ADM_BREAKGLASS, NULL, &actor,
                                     bj->now, &bj->why);
    if (job->rc != 0) {
        return;
    }
    bj->actor_uid = actor.id;
    bj->actor_email = actor.email;
    rc = bj->decision == GH_ADM_ALLOW
         ? gh_breakglass_update(gh_store, gh_bg_fn, bj, &bj->bg)
         : GH_EDENIED;
    if (rc == 0 && gh_user_get(gh_store, bj->bg.uid, &acct) == 0) {
        ngx_cpystrn((u_char *) bj->email, (u_char *) acct.email,
                    sizeof(bj->email));
    }
    if (rc == 0 && bj->op == 1) {
        /* enabled, and an administrator until the deadline only */
        rc = gh_role_grant(gh_store, bj->bg.uid, "gatehouse-admin",
                           bj->bg.until);
        if (rc == 0) {
            /* the account itself ends at the deadline too */
            rc = gh_user_enable_until(gh_store, bj->bg.uid, bj->bg.until);
        }
    } else if (rc == 0 && (bj->op == 2 || bj->expired)) {
        rc = gh_user_set_disabled(gh_store, bj->bg.uid, 1);
        if (rc == 0) {
            (void) gh_role_revoke(gh_store, bj->bg.uid, "gatehouse-admin");
        }
    }
    if (rc == GH_EDENIED && bj->decision == GH_ADM_ALLOW) {
        bj->why = "same_administrator";
    }
    job->rc = rc;
    ngx_snprintf((u_char *) after, sizeof(after) - 1, "%s%Z",
                 rc != 0 ? "unchanged"
                 : bj->op == 0 ? "requested"
                 : bj->op == 1 ? "on for 4 h" : "off");
    ngx_log_error(NGX_LOG_CRIT, log, 0, "gatehouse: break-glass %s by %s: "
                  "%s", actions[bj->op] + 11, actor.email,
                  rc == 0 ? "done" : rc == GH_EDENIED ? bj->why
                                   : gh_strerror(rc));
    gh_admin_record(job, &actor, bj->session_ref, actions[bj->op],
                   bj->email[0] ? bj->email : "break-glass account", rc,
                   bj->why, bj->via ? bj->via : "critical", NULL, after);
}


static void
gh_bg_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_bg_job_t               *bj = job->ext;
    ngx_str_t                  loc;
    ngx_int_t                  rc;

    if (bj->decision != GH_ADM_ALLOW) {
        rc = gh_admin_answer(r, ctx, bj->decision, bj->why, GH_BG_PAGE);
    } else if (job->rc == GH_EDENIED) {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                             "A second administrator must approve: not "
                             "the one who asked.");
    } else if (job->rc == GH_ENOTFOUND || job->rc == GH_EEXIST) {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_CONFLICT,
                             "Nothing to do in this state (no account set "
                             "up, nothing requested, or already on).");
    } else if (job->rc != 0) {
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "the store is unavailable, try again");
    } else {
        ngx_str_set(&loc, GH_BG_PAGE);
        rc = gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL,
                     0);
    }
    ngx_http_finalize_request(r, rc);
}


static void
gh_bg_body(ngx_http_request_t *r)
{
    static const char *const ops[] = { "request", "approve", "end" };
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body;
    gh_adm_actor_t             a;
    gh_adm_req_t               rq;
    gh_job_t                  *job;
    gh_bg_job_t               *bj;
    const char                *why;
    int                        i, d;

    ctx = gh_admin_form(r, &body);
    if (ctx == NULL) {
        return;
    }
    i = gh_form_choice(r->pool, &body, "action", ops, 3, -1);
    if (i < 0) {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST, "Unknown action."));
        return;
    }
    gh_admin_actor(ctx, &a);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_BREAKGLASS;
    d = gh_adm_decide(&a, &rq, gh_now(), &why);
    if (d == GH_ADM_MFA || d == GH_ADM_STEPUP || d == GH_ADM_HIDDEN) {
        ngx_http_finalize_request(r, gh_admin_answer(r, ctx, d, why,
                                                     GH_BG_PAGE));
        return;
    }
    job = ngx_pcalloc(r->pool, sizeof(*job));
    bj = ngx_pcalloc(r->pool, sizeof(*bj));
    if (job == NULL || bj == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    bj->op = (int) i;
    bj->actor = a;
    gh_admin_post(r, ctx, job, bj, &bj->session, bj->session_ref,
                  gh_bg_thread, gh_bg_finish);
}


static void
gh_bg_form(gh_ab_t *b, ngx_http_gatehouse_ctx_t *ctx, const char *op,
    const char *label)
{
    gh_ab_raw(b, "<form class=\"inline\" method=\"post\" action=\""
              GH_BG_PAGE "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    gh_ab_escn(b, ctx->csrf.data, ctx->csrf.len);
    gh_ab_raw(b, "\"><input type=\"hidden\" name=\"action\" value=\"");
    gh_ab_raw(b, op);
    gh_ab_raw(b, "\"><button type=\"submit\" class=\"danger\" id=\"bg-");
    gh_ab_raw(b, op);
    gh_ab_raw(b, "\">");
    gh_ab_raw(b, label);
    gh_ab_raw(b, "</button></form>");
}


static ngx_int_t
gh_admin_breakglass(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    gh_breakglass_t  bg;
    gh_user_t        acct;
    gh_ab_t          b;
    int64_t          now = gh_now();
    int              rc, on;

    if (!(a->roles & GH_ADM_R_ADMIN)) {
        return gh_admin_answer(r, ctx, GH_ADM_DENY, "not_allowed",
                               GH_BG_PAGE);
    }
    if (gh_ab_init(&b, r->pool, 4096) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = gh_breakglass_get(gh_store, &bg);
    if (rc == GH_ENOTFOUND) {
        gh_ab_raw(&b, "<p id=\"bg-state\">No break-glass account is set "
                  "up. An operator names one with <code>gatehouse "
                  "breakglass setup --email E</code>.</p>");
        return gh_admin_send(r, ctx, NGX_HTTP_OK, "Break-glass", &b);
    }
    if (rc != 0 || gh_user_get(gh_store, bg.uid, &acct) != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    on = bg.state == GH_BG_ON && bg.until > now;
    gh_ab_raw(&b, "<p>Emergency account <strong>");
    gh_ab_esc(&b, acct.email);
    gh_ab_raw(&b, "</strong>: <span id=\"bg-state\">");
    gh_ab_raw(&b, on ? "on" : bg.state == GH_BG_REQUESTED ? "requested"
                   : "off");
    gh_ab_raw(&b, "</span>");
    if (bg.state == GH_BG_REQUESTED || on) {
        gh_ab_raw(&b, " &middot; requested by ");
        gh_ab_esc(&b, bg.requester_email);
        gh_ab_raw(&b, " ");
        gh_ab_date(&b, bg.requested);
    }
    if (on) {
        gh_ab_raw(&b, " &middot; approved by ");
        gh_ab_esc(&b, bg.approver_email);
        gh_ab_raw(&b, ", until ");
        gh_ab_date(&b, bg.until);
    }
    gh_ab_raw(&b, "</p><p class=\"hint\">Enabling needs a request by one "
              "administrator and the approval of another, each with a "
              "second factor proven within 15 minutes. It lasts 4 hours "
              "and every step is logged at critical level.</p>");
    if (!on && bg.state != GH_BG_REQUESTED) {
        gh_bg_form(&b, ctx, "request", "Request break-glass access");
    }
    if (bg.state == GH_BG_REQUESTED && !on) {
        gh_bg_form(&b, ctx, "approve", "Approve");
    }
    if (on || bg.state == GH_BG_REQUESTED) {
        gh_bg_form(&b, ctx, "end", "End now");
    }
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "Break-glass", &b);
}


/* ---- the audit log viewer: /.gatehouse/admin/audit ----
 * Filters: actor, target (substrings), action (prefix), from and to
 * (YYYY-MM-DD, UTC; default the last day). The log is read in the thread
 * pool, at most GH_AUDIT_VIEW_SCAN records from `from` on; the newest
 * GH_AUDIT_VIEW_ROWS matches are shown. A manager sees the records of
 * actors of their own tenant. */

static const char *
gh_aud_str(json_t *o, const char *k)
{
    json_t  *v = json_object_get(o, k);

    return json_is_string(v) ? json_string_value(v) : "";
}


static int
gh_aud_line(const char *line, size_t len, void *arg)
{
    gh_aud_job_t  *aj = arg;
    json_t        *o, *rec, *actor;
    json_int_t     t, seq;

    if (++aj->scanned > GH_AUDIT_VIEW_SCAN) {
        aj->truncated = 1;
        return 1;                        /* stop: bounded */
    }
    o = json_loadb(line, len, 0, NULL);
    rec = o ? json_object_get(o, "record") : NULL;
    if (!json_is_object(rec)) {
        json_decref(o);
        return 0;
    }
    actor = json_object_get(rec, "actor");
    t = json_integer_value(json_object_get(rec, "time"));
    seq = json_integer_value(json_object_get(rec, "seq"));
    if (t > aj->to || (aj->before > 0 && seq >= aj->before)) {
        json_decref(o);
        return 1;                        /* in time order: done */
    }
    if ((aj->tenant[0] && ngx_strcmp(gh_aud_str(actor, "tenant"),
                                     aj->tenant) != 0)
        || (aj->actor[0] && ngx_strstr(gh_aud_str(actor, "user"),
                                       aj->actor) == NULL)
        || (aj->target[0] && ngx_strstr(gh_aud_str(rec, "target"),
                                        aj->target) == NULL)
        || (aj->action[0] && ngx_strncmp(gh_aud_str(rec, "action"),
                                         aj->action,
                                         ngx_strlen(aj->action)) != 0))
    {
        json_decref(o);
        return 0;
    }
    json_incref(rec);
    json_decref(o);
    json_decref(aj->rows[aj->next]);
    aj->rows[aj->next] = rec;
    aj->next = (aj->next + 1) % aj->limit;
    aj->matched++;
    return 0;
}


void
gh_aud_thread(void *data, ngx_log_t *log)
{
    gh_job_t      *job = data;
    gh_aud_job_t  *aj = job->ext;
    int            rc;

    if (aj->limit == 0 || aj->limit > GH_AUDIT_VIEW_ROWS) {
        aj->limit = GH_AUDIT_VIEW_ROWS;  /* the ring's size */
    }
    rc = gh_audit_export(aj->datadir, aj->from, gh_aud_line, aj);
    job->rc = rc == 1 ? 0 : rc;
}


/* How many matches the ring holds, and the i-th newest (i < count). */
ngx_uint_t
gh_aud_count(const gh_aud_job_t *aj)
{
    return aj->matched < aj->limit ? aj->matched : aj->limit;
}


json_t *
gh_aud_row(const gh_aud_job_t *aj, ngx_uint_t i)
{
    return aj->rows[(aj->next + aj->limit - 1 - i) % aj->limit];
}


/* Drop the ring's records (every finish, whatever it answered). */
void
gh_aud_free(gh_aud_job_t *aj)
{
    ngx_uint_t  i;

    for (i = 0; i < GH_AUDIT_VIEW_ROWS; i++) {
        json_decref(aj->rows[i]);
        aj->rows[i] = NULL;
    }
}


static void
gh_aud_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_aud_job_t              *aj = job->ext;
    json_t                    *rec, *actor, *det;
    gh_ab_t                    b;
    ngx_uint_t                 i, n;
    ngx_int_t                  rc;

    if (job->rc != 0 && job->rc != GH_ENOTINIT) {
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "the audit log cannot be read now");
        goto out;
    }
    if (gh_ab_init(&b, r->pool, 16384) != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto out;
    }
    gh_ab_raw(&b, "<form method=\"get\" action=\"" GH_ADMIN_HOME "audit\" "
              "id=\"audit-filter\"><label>Actor <input name=\"actor\" "
              "value=\"");
    gh_ab_esc(&b, aj->actor);
    gh_ab_raw(&b, "\"></label> <label>Target <input name=\"target\" "
              "value=\"");
    gh_ab_esc(&b, aj->target);
    gh_ab_raw(&b, "\"></label> <label>Action <input name=\"action\" "
              "value=\"");
    gh_ab_esc(&b, aj->action);
    gh_ab_raw(&b, "\"></label> <label>From <input name=\"from\" "
              "placeholder=\"YYYY-MM-DD\"></label> <label>To <input "
              "name=\"to\" placeholder=\"YYYY-MM-DD\"></label> <button "
              "type=\"submit\">Filter</button></form><p class=\"hint\">");
    gh_ab_date(&b, aj->from);
    gh_ab_raw(&b, " to ");
    gh_ab_date(&b, aj->to);
    gh_ab_raw(&b, ": ");
    gh_ab_int(&b, (int64_t) aj->matched);
    gh_ab_raw(&b, " matching records, the newest 100 shown, newest first.");
    if (aj->truncated) {
        gh_ab_raw(&b, " <strong>Stopped after 50,000 records: narrow the "
                  "dates.</strong>");
    }
    gh_ab_raw(&b, "</p><table id=\"audit\"><thead><tr><th>Time</th><th>"
              "Actor</th><th>Action</th><th>Target</th><th>Result</th>"
              "<th>Before &rarr; after</th></tr></thead><tbody>");
    n = gh_aud_count(aj);
    for (i = 0; i < n; i++) {
        rec = gh_aud_row(aj, i);
        actor = json_object_get(rec, "actor");
        det = json_object_get(rec, "details");
        gh_ab_raw(&b, "<tr class=\"record\"><td>");
        gh_ab_date(&b, json_integer_value(json_object_get(rec, "time")));
        gh_ab_raw(&b, "</td><td>");
        gh_ab_esc(&b, gh_aud_str(actor, "user"));
        gh_ab_raw(&b, " <span class=\"hint\">");
        gh_ab_esc(&b, gh_aud_str(actor, "tenant"));
        gh_ab_raw(&b, " ");
        gh_ab_esc(&b, gh_aud_str(actor, "addr"));
        gh_ab_raw(&b, "</span></td><td>");
        gh_ab_esc(&b, gh_aud_str(rec, "action"));
        gh_ab_raw(&b, "</td><td>");
        gh_ab_esc(&b, gh_aud_str(rec, "target"));
        gh_ab_raw(&b, "</td><td>");
        gh_ab_esc(&b, gh_aud_str(rec, "result"));
        if (gh_aud_str(rec, "reason")[0]) {
            gh_ab_raw(&b, " (");
            gh_ab_esc(&b, gh_aud_str(rec, "reason"));
            gh_ab_raw(&b, ")");
        }
        gh_ab_raw(&b, "</td><td>");
        gh_ab_esc(&b, gh_aud_str(det, "before"));
        if (gh_aud_str(det, "after")[0]) {
            gh_ab_raw(&b, " &rarr; ");
            gh_ab_esc(&b, gh_aud_str(det, "after"));
        }
        gh_ab_raw(&b, "</td></tr>");
    }
    gh_ab_raw(&b, "</tbody></table>");
    rc = gh_admin_send(r, ctx, NGX_HTTP_OK, "Audit log", &b);
out:
    gh_aud_free(aj);
    ngx_http_finalize_request(r, rc);
}


/* A filter argument: printable, at most GH_AUDIT_FILTER_MAX bytes, kept
 * as typed (no case folding). Shared with the API. */
ngx_int_t
gh_aud_arg(ngx_http_request_t *r, const char *name, char *out)
{
    ngx_str_t  v;
    u_char     buf[3 * GH_AUDIT_FILTER_MAX + 1], *dst, *src;
    size_t     n, i;

    out[0] = '\0';
    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_OK;
    }
    if (v.len > sizeof(buf) - 1) {
        return NGX_ERROR;
    }
    dst = buf;
    src = v.data;
    ngx_unescape_uri(&dst, &src, v.len, NGX_UNESCAPE_URI);
    n = dst - buf;
    if (n > GH_AUDIT_FILTER_MAX) {
        return NGX_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (buf[i] < 0x20 || buf[i] == 0x7f) {
            return NGX_ERROR;
        }
        out[i] = (char) (buf[i] == '+' ? ' ' : buf[i]);
    }
    out[n] = '\0';
    return NGX_OK;
}


static ngx_int_t
gh_admin_audit(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    gh_adm_req_t                     rq;
    gh_job_t                        *job;
    gh_aud_job_t                    *aj;
    ngx_str_t                        day;
    const char                      *why;
    char                             d[16];
    int64_t                          now = gh_now();
    int                              dec;

    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_AUDIT_VIEW;
    rq.tenant = (a->roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR))
                ? NULL : ctx->user.tenant;
    dec = gh_adm_decide(a, &rq, now, &why);
    if (dec != GH_ADM_ALLOW) {
        return gh_admin_answer(r, ctx, dec, why, GH_ADMIN_HOME "audit");
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    job = ngx_pcalloc(r->pool, sizeof(*job));
    aj = ngx_pcalloc(r->pool, sizeof(*aj));
    if (job == NULL || aj == NULL || mcf->data.len >= sizeof(aj->datadir)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(aj->datadir, mcf->data.data, mcf->data.len);
    aj->datadir[mcf->data.len] = '\0';
    aj->limit = GH_AUDIT_VIEW_ROWS;
    if (gh_aud_arg(r, "actor", aj->actor) != NGX_OK
        || gh_aud_arg(r, "target", aj->target) != NGX_OK
        || gh_aud_arg(r, "action", aj->action) != NGX_OK)
    {
        return gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                               "Malformed filter.");
    }
    if (rq.tenant != NULL) {
        ngx_cpystrn((u_char *) aj->tenant, (u_char *) ctx->user.tenant,
                    sizeof(aj->tenant));
    }
    aj->from = now - 86400;
    aj->to = now + 60;
    if (gh_admin_arg(r, "from", 10, d) == NGX_OK) {
        day.data = (u_char *) d;
        day.len = ngx_strlen(d);
        aj->from = gh_admin_until(&day) - 86400;
    }
    if (gh_admin_arg(r, "to", 10, d) == NGX_OK) {
        day.data = (u_char *) d;
        day.len = ngx_strlen(d);
        aj->to = gh_admin_until(&day);
    }
    if (aj->from < 0 || aj->to < 0 || aj->from > aj->to) {
        return gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                               "Dates: YYYY-MM-DD, from not after to.");
    }
    job->ext = aj;
    job->request = r;
    gh_job_who(job, ctx);
    job->finish = gh_aud_finish;
    if (gh_job_post(r, job, gh_aud_thread) != NGX_OK) {
        return gh_send_busy(r);
    }
    r->main->count++;       /* finalized by gh_aud_finish */
    return NGX_DONE;
}


/* ---- tenants: /.gatehouse/admin/tenants ----
 * Administrators create tenants; a tenant's managers (and administrators)
 * set its password profile, MFA level, networks, session lifetimes,
 * sign-in method and email domains. The MFA level, networks, sign-in and
 * domains are sign-in settings: they need a fresh second factor
 * (GH_ADM_TENANT_SIGNIN). Networks and lifetimes go into the tenant record
 * (the policy file's tenant section applies where it sets none, and a
 * later `policy apply` copies what the file states over them); sign-in
 * and domains are the SAML records the CLI writes too. */

#define GH_TENANTS_PAGE  GH_ADMIN_HOME "tenants"
#define GH_TEN_DURATION_MAX  16      /* a duration field: "3650d" */

/* The forms, one table: the form's action, the decision it needs, the
 * audit action it writes. Index order is GH_TEN_* order
 * (ngx_http_gatehouse_admin.h). */
static const struct {
    const char       *name;
    gh_adm_action_t   action;
    const char       *audit;
} gh_ten_ops[GH_TEN_NOPS] = {
    { "create",     GH_ADM_TENANT_CREATE,   "tenant.add" },
    { "profile",    GH_ADM_TENANT_SETTINGS, "tenant.password_policy" },
    { "mfa",        GH_ADM_TENANT_SIGNIN,   "tenant.mfa" },
    { "networks",   GH_ADM_TENANT_SIGNIN,   "tenant.networks" },
    { "session",    GH_ADM_TENANT_SETTINGS, "tenant.session" },
    { "signin",     GH_ADM_TENANT_SIGNIN,   "tenant.signin" },
    { "domain-add", GH_ADM_TENANT_SIGNIN,   "tenant.domain" },
    { "domain-del", GH_ADM_TENANT_SIGNIN,   "tenant.domain" },
};

static const char *const gh_ten_levels[] = { "optional", "required", "off" };
static const char *const gh_ten_profiles[] = { "nist", "classes" };
/* index order is GH_SIGNIN_* order */
static const char *const gh_ten_signins[] = {
    "password", "password+otp", "saml"
};

/* gh_ten_job_t: ngx_http_gatehouse_admin.h */


int
gh_ten_op(const u_char *name, size_t len)
{
    int  i;

    for (i = 0; i < GH_TEN_NOPS; i++) {
        if (len == ngx_strlen(gh_ten_ops[i].name)
            && ngx_strncmp(name, gh_ten_ops[i].name, len) == 0)
        {
            return i;
        }
    }
    return -1;
}


gh_adm_action_t
gh_ten_action(int op)
{
    return gh_ten_ops[op].action;
}


int
gh_ten_value(int op, const u_char *v, size_t len)
{
    return gh_str_index(v, len, op == GH_TEN_PROFILE ? gh_ten_profiles
                                : op == GH_TEN_MFA ? gh_ten_levels
                                : gh_ten_signins,
                        op == GH_TEN_PROFILE ? 2 : 3);
}


/* A text field into dst (cap bytes with the NUL): "" when absent, NGX_ERROR
 * when too long or holding a NUL. */
static ngx_int_t
gh_ten_field(ngx_http_request_t *r, ngx_str_t *body, const char *field,
    char *dst, size_t cap)
{
    ngx_str_t  v;
    ngx_int_t  rc;

    dst[0] = '\0';
    rc = gh_form_field(r->pool, body, field, cap - 1, &v);
    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }
    if (rc != NGX_OK || ngx_strlchr(v.data, v.data + v.len, '\0') != NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(dst, v.data, v.len);
    dst[v.len] = '\0';
    return NGX_OK;
}


/* The tenant's setting op reads and changes, as audit text. */
static void
gh_ten_state(gh_ten_job_t *tj, const gh_tenant_t *t, char *out, size_t cap)
{
    int  signin;

    switch (tj->op) {
    case GH_TEN_PROFILE:
        ngx_cpystrn((u_char *) out, (u_char *) gh_pwprofile_name(t->pw.profile),
                    cap);
        break;
    case GH_TEN_MFA:
        ngx_cpystrn((u_char *) out, (u_char *) gh_mfa_level_name(t->mfa), cap);
        break;
    case GH_TEN_NETWORKS:
        ngx_cpystrn((u_char *) out, (u_char *) gh_tenant_networks_text(t),
                    cap);
        break;
    case GH_TEN_SESSION:
        gh_tenant_session_text(t, out, cap);
        break;
    case GH_TEN_SIGNIN:
        ngx_cpystrn((u_char *) out,
                    (u_char *) (gh_saml_signin_get(gh_store, t->name, &signin)
                                == 0 ? gh_signin_name(signin) : "unknown"),
                    cap);
        break;
    default:
        ngx_cpystrn((u_char *) out, (u_char *) "-", cap);
    }
}


/* Change what tj asks of tenant t (read just before). 0, or a GH_E* code
 * with tj->err and tj->status set when the asker can do something about
 * it. */
static int
gh_ten_apply(gh_ten_job_t *tj, const gh_tenant_t *t)
{
    gh_pwsettings_t  pw;
    char            *md = NULL;
    int              rc;

    switch (tj->op) {
    case GH_TEN_CREATE:
        rc = gh_tenant_add(gh_store, tj->tenant, tj->display);
        break;
    case GH_TEN_PROFILE:
        pw = t->pw;
        pw.profile = tj->value;
        rc = gh_pwsettings_check(&pw, t->mfa == GH_MFA_REQUIRED, tj->err,
                                 sizeof(tj->err));
        if (rc == 0) {
            rc = gh_tenant_set_pwsettings(gh_store, tj->tenant, &pw);
        }
        break;
    case GH_TEN_MFA:
        rc = gh_tenant_set_mfa(gh_store, tj->tenant, tj->value);
        break;
    case GH_TEN_NETWORKS:
        rc = gh_tenant_set_networks(gh_store, tj->tenant,
                                    tj->text[0] ? tj->text : NULL);
        if (rc == GH_EINVAL) {
            ngx_snprintf((u_char *) tj->err, sizeof(tj->err) - 1,
                         "Networks: addresses or networks such as "
                         "10.0.0.0/8 (no host bits), at most %d, separated "
                         "by commas; empty: the policy file's.%Z",
                         GH_TENANT_NETS_COUNT);
        }
        break;
    case GH_TEN_SESSION:
        rc = gh_tenant_set_session(gh_store, tj->tenant, tj->idle,
                                   tj->lifetime);
        if (rc == GH_EINVAL) {
            ngx_cpystrn((u_char *) tj->err, (u_char *) "Session lifetimes: "
                        "each from 1m to 3650d, idle no longer than the "
                        "lifetime; empty: the policy file's.",
                        sizeof(tj->err));
        }
        break;
    case GH_TEN_SIGNIN:
        if (tj->value == GH_SIGNIN_SAML) {
            rc = gh_saml_sp_metadata(gh_store, tj->tenant, "https://HOST",
                                     &md);
            free(md);
            if (rc == GH_ENOTFOUND) {
                tj->status = NGX_HTTP_CONFLICT;
                ngx_cpystrn((u_char *) tj->err, (u_char *) "This tenant has "
                            "no identity provider: an operator registers "
                            "one (gatehouse idp add) before SAML sign-in.",
                            sizeof(tj->err));
                return GH_EINVAL;
            }
            if (rc != 0) {
                return rc;
            }
        }
        rc = gh_saml_signin_set(gh_store, tj->tenant, tj->value);
        /* as `tenant set --signin password+otp`: a second factor for all */
        if (rc == 0 && tj->value == GH_SIGNIN_PASSWORD_OTP) {
            rc = gh_tenant_set_mfa(gh_store, tj->tenant, GH_MFA_REQUIRED);
        }
        break;
    case GH_TEN_DOMAIN_ADD:
        rc = gh_saml_domain_add(gh_store, tj->tenant, tj->text);
        if (rc == GH_EEXIST) {
            tj->status = NGX_HTTP_CONFLICT;
            ngx_cpystrn((u_char *) tj->err, (u_char *) "That domain belongs "
                        "to another tenant.", sizeof(tj->err));
        } else if (rc == GH_EINVAL) {
            ngx_cpystrn((u_char *) tj->err, (u_char *) "A domain: letters, "
                        "digits, '-' and '.', with a dot.", sizeof(tj->err));
        }
        break;
    default:
        rc = gh_saml_domain_del(gh_store, tj->tenant, tj->text);
        if (rc == GH_ENOTFOUND || rc == GH_EINVAL) {
            ngx_cpystrn((u_char *) tj->err, (u_char *) "The tenant has no "
                        "such domain.", sizeof(tj->err));
        }
    }
    if (rc != 0 && tj->err[0] && tj->status == 0) {
        tj->status = NGX_HTTP_BAD_REQUEST;
    }
    return rc;
}


void
gh_ten_thread(void *data, ngx_log_t *log)
{
    gh_job_t          *job = data;
    gh_ten_job_t      *tj = job->ext;
    gh_user_t          actor;
    gh_tenant_t        t;
    gh_adm_actor_t     a;
    gh_adm_req_t       rq;
    gh_audit_event_t   ev;
    int64_t            now = gh_now();
    int                rc;

    tj->decision = GH_ADM_DENY;
    tj->why = "error";
    job->rc = gh_store == NULL ? GH_ESTORE
              : gh_user_get(gh_store, job->uid, &actor);
    if (job->rc != 0) {
        return;
    }
    gh_adm_actor(&a, &actor, &tj->session, tj->actor.tenant_mfa, now);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = gh_ten_ops[tj->op].action;
    rq.tenant = tj->op == GH_TEN_CREATE ? NULL : tj->tenant;
    tj->decision = gh_adm_decide(&a, &rq, now, &tj->why);
    rc = tj->decision != GH_ADM_ALLOW ? GH_EDENIED : 0;
    if (rc == 0 && tj->unread) {
        rc = GH_EINVAL;
        tj->status = NGX_HTTP_BAD_REQUEST;
        ngx_cpystrn((u_char *) tj->err, (u_char *) "The form could not be "
                    "read: reload the page and try again.", sizeof(tj->err));
    }
    ngx_memzero(&t, sizeof(t));
    if (rc == 0 && tj->op != GH_TEN_CREATE) {
        rc = gh_tenant_get(gh_store, tj->tenant, &t);
    }
    if (rc == 0) {
        gh_ten_state(tj, &t, tj->before, sizeof(tj->before));
    }
    if (tj->op == GH_TEN_DOMAIN_DEL) {
        ngx_cpystrn((u_char *) tj->before, (u_char *) tj->text,
                    sizeof(tj->before));
    }
    if (rc == 0) {
        rc = gh_ten_apply(tj, &t);
    }
    job->rc = rc;
    if (rc != 0) {
        ngx_cpystrn((u_char *) tj->after, (u_char *) tj->before,
                    sizeof(tj->after));
    } else if (tj->op == GH_TEN_CREATE) {
        ngx_cpystrn((u_char *) tj->after, (u_char *) "created",
                    sizeof(tj->after));
    } else if (tj->op == GH_TEN_DOMAIN_ADD) {
        ngx_cpystrn((u_char *) tj->after, (u_char *) tj->text,
                    sizeof(tj->after));
    } else if (gh_tenant_get(gh_store, tj->tenant, &t) == 0) {
        gh_ten_state(tj, &t, tj->after, sizeof(tj->after));
    }
    ngx_memzero(&ev, sizeof(ev));
    ev.user = actor.email;
    ev.tenant = actor.tenant;
    ev.addr = job->addr_text;
    ev.session = tj->session_ref;
    ev.request_id = job->request_id;
    ev.action = gh_ten_ops[tj->op].audit;
    ev.target = tj->tenant;
    ev.result = rc == 0 ? "success" : rc == GH_EDENIED ? "denied"
                                                       : "failure";
    ev.reason = rc == 0 ? NULL : rc == GH_EDENIED ? tj->why
                                                  : gh_strerror(rc);
    ev.detail = tj->via != NULL ? tj->via : "admin console";
    ev.before = tj->before;
    ev.after = tj->after;
    (void) gh_audit_event(&ev);
}


static void
gh_ten_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_ten_job_t              *tj = job->ext;
    ngx_str_t                  loc;
    ngx_int_t                  rc;

    if (tj->decision != GH_ADM_ALLOW) {
        rc = gh_admin_answer(r, ctx, tj->decision, tj->why, GH_TENANTS_PAGE);
    } else if (job->rc != 0 && tj->err[0]) {
        rc = gh_admin_refuse(r, ctx, tj->status, tj->err);
    } else if (job->rc == GH_EEXIST) {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_CONFLICT,
                             "That tenant exists already.");
    } else if (job->rc == GH_EINVAL || job->rc == GH_ENOTFOUND
               || job->rc == GH_EBADTENANT)
    {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                             "Tenant names: 1 to 63 of a-z, 0-9 and -.");
    } else if (job->rc != 0) {
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "the store is unavailable, try again");
    } else {
        ngx_str_set(&loc, GH_TENANTS_PAGE);
        rc = gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL,
                     0);
    }
    ngx_http_finalize_request(r, rc);
}


/* A duration field: empty is 0 (the policy file's). */
static ngx_int_t
gh_ten_duration(ngx_http_request_t *r, ngx_str_t *body, const char *field,
    int64_t *out)
{
    char  v[GH_TEN_DURATION_MAX + 1];

    *out = 0;
    if (gh_ten_field(r, body, field, v, sizeof(v)) != NGX_OK) {
        return NGX_ERROR;
    }
    if (v[0] == '\0') {
        return NGX_OK;
    }
    return gh_duration_parse(v, ngx_strlen(v), out) == 0 ? NGX_OK : NGX_ERROR;
}


/* The op's own fields into tj: a message for the asker, or NULL. */
static const char *
gh_ten_fields(ngx_http_request_t *r, ngx_str_t *body, gh_ten_job_t *tj)
{
    switch (tj->op) {
    case GH_TEN_CREATE:
        return gh_ten_field(r, body, "display", tj->display,
                            sizeof(tj->display)) == NGX_OK
               ? NULL : "Names: at most 127 bytes.";
    case GH_TEN_PROFILE:
    case GH_TEN_MFA:
    case GH_TEN_SIGNIN:
        tj->value = gh_form_choice(r->pool, body, "value",
                                    tj->op == GH_TEN_PROFILE ? gh_ten_profiles
                                    : tj->op == GH_TEN_MFA ? gh_ten_levels
                                    : gh_ten_signins,
                                    tj->op == GH_TEN_PROFILE ? 2 : 3, -1);
        return tj->value < 0 ? "Choose a value from the list." : NULL;
    case GH_TEN_NETWORKS:
        return gh_ten_field(r, body, "networks", tj->text, sizeof(tj->text))
               == NGX_OK ? NULL : "That list of networks is too long.";
    case GH_TEN_SESSION:
        return gh_ten_duration(r, body, "idle", &tj->idle) == NGX_OK
               && gh_ten_duration(r, body, "lifetime", &tj->lifetime)
                  == NGX_OK
               ? NULL : "Durations such as 30m, 12h or 7d; empty: the "
                        "policy file's.";
    default:
        if (gh_ten_field(r, body, "domain", tj->text, GH_DOMAIN_MAX + 1)
            != NGX_OK || tj->text[0] == '\0')
        {
            return "Name a domain.";
        }
        /* as stored (and audited): domains are case-insensitive */
        ngx_strlow((u_char *) tj->text, (u_char *) tj->text,
                   ngx_strlen(tj->text));
        return NULL;
    }
}


static void
gh_ten_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body, v;
    gh_adm_actor_t             a;
    gh_adm_req_t               rq;
    gh_job_t                  *job;
    gh_ten_job_t              *tj;
    const char                *why, *bad;
    int                        op;
    int                        d;

    ctx = gh_admin_form(r, &body);
    if (ctx == NULL) {
        return;
    }
    job = ngx_pcalloc(r->pool, sizeof(*job));
    tj = ngx_pcalloc(r->pool, sizeof(*tj));
    if (job == NULL || tj == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_form_field(r->pool, &body, "action", 16, &v) != NGX_OK) {
        v.len = 0;
    }
    op = gh_ten_op(v.data, v.len);
    if (op < 0
        || gh_form_field(r->pool, &body, "tenant", GH_TENANT_MAX, &v)
           != NGX_OK || v.len == 0)
    {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                            "Unknown action or tenant."));
        return;
    }
    tj->op = op;
    ngx_memcpy(tj->tenant, v.data, v.len);
    tj->tenant[v.len] = '\0';
    /* who may ask comes first: a manager of another tenant learns nothing
     * from a form's errors */
    gh_admin_actor(ctx, &a);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = gh_ten_ops[tj->op].action;
    rq.tenant = tj->op == GH_TEN_CREATE ? NULL : tj->tenant;
    d = gh_adm_decide(&a, &rq, gh_now(), &why);
    if (d == GH_ADM_MFA || d == GH_ADM_STEPUP || d == GH_ADM_HIDDEN) {
        ngx_http_finalize_request(r, gh_admin_answer(r, ctx, d, why,
                                                     GH_TENANTS_PAGE));
        return;
    }
    bad = gh_ten_fields(r, &body, tj);
    if (bad != NULL && d == GH_ADM_ALLOW) {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST, bad));
        return;
    }
    /* refused here, the thread decides again (and audits); should it
     * allow after all, a form it could not read changes nothing */
    tj->unread = bad != NULL;
    tj->actor = a;
    gh_admin_post(r, ctx, job, tj, &tj->session, tj->session_ref,
                  gh_ten_thread, gh_ten_finish);
}


typedef struct {
    char  *domain, *tenant;
} gh_ten_dom_t;

typedef struct {
    gh_ab_t                   *b;
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_adm_actor_t            *a;
    ngx_array_t               *doms;     /* gh_ten_dom_t, read once */
    ngx_uint_t                 edit;
} gh_ten_list_t;


/* The opening of a settings form: CSRF token, action, tenant. */
static void
gh_ten_form(gh_ab_t *b, ngx_http_gatehouse_ctx_t *ctx, const char *tenant,
    const char *op)
{
    gh_ab_raw(b, "<form class=\"inline\" method=\"post\" action=\""
              GH_TENANTS_PAGE "\"><input type=\"hidden\" name=\"csrf\" "
              "value=\"");
    gh_ab_escn(b, ctx->csrf.data, ctx->csrf.len);
    gh_ab_raw(b, "\"><input type=\"hidden\" name=\"action\" value=\"");
    gh_ab_raw(b, op);
    gh_ab_raw(b, "\"><input type=\"hidden\" name=\"tenant\" value=\"");
    gh_ab_esc(b, tenant);
    gh_ab_raw(b, "\">");
}


static void
gh_ten_select(gh_ab_t *b, ngx_http_gatehouse_ctx_t *ctx, const char *tenant,
    const char *op, const char *const *values, int n, int current,
    const char *label)
{
    int  i;

    gh_ten_form(b, ctx, tenant, op);
    gh_ab_raw(b, "<select name=\"value\">");
    for (i = 0; i < n; i++) {
        gh_ab_raw(b, "<option value=\"");
        gh_ab_raw(b, values[i]);
        gh_ab_raw(b, i == current ? "\" selected>" : "\">");
        gh_ab_raw(b, values[i]);
        gh_ab_raw(b, "</option>");
    }
    gh_ab_raw(b, "</select> <button type=\"submit\">");
    gh_ab_raw(b, label);
    gh_ab_raw(b, "</button></form>");
}


/* A text input named field holding value, in its own form. */
static void
gh_ten_input(gh_ab_t *b, const char *field, const char *label,
    const char *value, size_t max)
{
    u_char  n[NGX_INT_T_LEN + 1];

    gh_ab_raw(b, "<label>");
    gh_ab_raw(b, label);
    gh_ab_raw(b, " <input name=\"");
    gh_ab_raw(b, field);
    gh_ab_raw(b, "\" value=\"");
    gh_ab_esc(b, value);
    gh_ab_raw(b, "\" maxlength=\"");
    *ngx_snprintf(n, NGX_INT_T_LEN, "%uz", max) = '\0';
    gh_ab_raw(b, (const char *) n);
    gh_ab_raw(b, "\"></label> ");
}


/* Every mapped domain, once per page (one read transaction), into the
 * request's pool: the rows pick theirs. */
static int
gh_ten_domain(const char *domain, const char *tenant, void *arg)
{
    gh_ten_list_t  *l = arg;
    gh_ten_dom_t   *d;
    size_t          n = ngx_strlen(domain), m = ngx_strlen(tenant);

    d = ngx_array_push(l->doms);
    if (d == NULL) {
        return GH_ENOMEM;
    }
    d->domain = ngx_pnalloc(l->doms->pool, n + m + 2);
    if (d->domain == NULL) {
        return GH_ENOMEM;
    }
    ngx_memcpy(d->domain, domain, n + 1);
    d->tenant = d->domain + n + 1;
    ngx_memcpy(d->tenant, tenant, m + 1);
    return 0;
}


static void
gh_ten_domains(gh_ten_list_t *l, const char *tenant)
{
    gh_ten_dom_t  *d = l->doms->elts;
    ngx_uint_t     i;

    gh_ab_raw(l->b, "<ul>");
    for (i = 0; i < l->doms->nelts; i++) {
        if (ngx_strcmp(d[i].tenant, tenant) != 0) {
            continue;
        }
        gh_ab_raw(l->b, "<li class=\"domain\">");
        gh_ab_esc(l->b, d[i].domain);
        if (l->edit) {
            gh_ten_form(l->b, l->ctx, tenant, "domain-del");
            gh_ab_raw(l->b, "<input type=\"hidden\" name=\"domain\" "
                      "value=\"");
            gh_ab_esc(l->b, d[i].domain);
            gh_ab_raw(l->b, "\"> <button type=\"submit\">Remove</button>"
                      "</form>");
        }
        gh_ab_raw(l->b, "</li>");
    }
    gh_ab_raw(l->b, "</ul>");
}


/* Networks, lifetimes, sign-in and domains of one tenant: forms for those
 * who may change them, text for the others. */
static int
gh_ten_access(gh_ten_list_t *l, const gh_tenant_t *t)
{
    char  idle[24] = "", life[24] = "", sess[96];
    int   signin, rc;

    rc = gh_saml_signin_get(gh_store, t->name, &signin);
    if (rc != 0) {
        return rc;
    }
    gh_ab_raw(l->b, "</td><td class=\"networks\">");
    if (l->edit) {
        gh_ten_form(l->b, l->ctx, t->name, "networks");
        gh_ten_input(l->b, "networks", "Networks",
                     t->networks_set ? t->networks : "", GH_TENANT_NETS_MAX);
        gh_ab_raw(l->b, "<button type=\"submit\">Set</button></form>");
    } else {
        gh_ab_esc(l->b, gh_tenant_networks_text(t));
    }
    gh_ab_raw(l->b, "</td><td class=\"session\">");
    if (l->edit) {
        if (t->idle > 0) {
            gh_duration_format(t->idle, idle, sizeof(idle));
        }
        if (t->lifetime > 0) {
            gh_duration_format(t->lifetime, life, sizeof(life));
        }
        gh_ten_form(l->b, l->ctx, t->name, "session");
        gh_ten_input(l->b, "idle", "Idle", idle, GH_TEN_DURATION_MAX);
        gh_ten_input(l->b, "lifetime", "Lifetime", life, GH_TEN_DURATION_MAX);
        gh_ab_raw(l->b, "<button type=\"submit\">Set</button></form>");
    } else {
        gh_tenant_session_text(t, sess, sizeof(sess));
        gh_ab_esc(l->b, sess);
    }
    gh_ab_raw(l->b, "</td><td class=\"signin\">");
    if (l->edit) {
        gh_ten_select(l->b, l->ctx, t->name, "signin", gh_ten_signins, 3,
                      signin, "Set");
    } else {
        gh_ab_raw(l->b, gh_signin_name(signin));
    }
    gh_ab_raw(l->b, "</td><td class=\"domains\">");
    gh_ten_domains(l, t->name);
    if (l->edit) {
        gh_ten_form(l->b, l->ctx, t->name, "domain-add");
        gh_ten_input(l->b, "domain", "Domain", "", GH_DOMAIN_MAX);
        gh_ab_raw(l->b, "<button type=\"submit\">Add</button></form>");
    }
    return 0;
}


static int
gh_ten_row(const gh_tenant_t *t, void *arg)
{
    gh_ten_list_t  *l = arg;
    gh_adm_req_t    rq;
    const char     *why;
    int             rc;

    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_USER_VIEW;
    rq.tenant = t->name;
    if (gh_adm_decide(l->a, &rq, gh_now(), &why) != GH_ADM_ALLOW) {
        return 0;
    }
    gh_ab_raw(l->b, "<tr class=\"tenant\" id=\"tenant-");
    gh_ab_esc(l->b, t->name);
    gh_ab_raw(l->b, "\"><td>");
    gh_ab_esc(l->b, t->name);
    gh_ab_raw(l->b, "</td><td>");
    gh_ab_esc(l->b, t->display);
    gh_ab_raw(l->b, "</td><td>");
    rq.action = GH_ADM_TENANT_SETTINGS;
    l->edit = gh_adm_decide(l->a, &rq, gh_now(), &why) == GH_ADM_ALLOW;
    if (l->edit) {
        gh_ten_select(l->b, l->ctx, t->name, "profile", gh_ten_profiles, 2,
                      t->pw.profile, "Set");
        gh_ab_raw(l->b, "</td><td>");
        gh_ten_select(l->b, l->ctx, t->name, "mfa", gh_ten_levels, 3, t->mfa,
                      "Set");
    } else {
        gh_ab_raw(l->b, gh_pwprofile_name(t->pw.profile));
        gh_ab_raw(l->b, "</td><td>");
        gh_ab_raw(l->b, gh_mfa_level_name(t->mfa));
    }
    rc = gh_ten_access(l, t);
    if (rc != 0) {
        return rc;
    }
    gh_ab_raw(l->b, "</td></tr>");
    return l->b->failed ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_admin_tenants(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    gh_ab_t         b;
    gh_ten_list_t   l;

    if (gh_ab_init(&b, r->pool, 16384) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_ab_raw(&b, "<table id=\"tenants\"><thead><tr><th>Tenant</th><th>"
              "Name</th><th>Password profile</th><th>Second factor</th>"
              "<th>Networks</th><th>Session</th><th>Sign-in</th>"
              "<th>Email domains</th></tr></thead><tbody>");
    ngx_memzero(&l, sizeof(l));
    l.b = &b;
    l.ctx = ctx;
    l.a = a;
    l.doms = ngx_array_create(r->pool, 8, sizeof(gh_ten_dom_t));
    if (l.doms == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_saml_domains(gh_store, NULL, gh_ten_domain, &l) != 0
        || gh_tenant_list(gh_store, gh_ten_row, &l) != 0)
    {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    gh_ab_raw(&b, "</tbody></table><p class=\"hint\">Changing the second "
              "factor level, networks, sign-in or email domains asks for a "
              "fresh second factor. Empty networks or lifetimes: the access "
              "policy file's tenant section applies. A later "
              "<code>gatehouse policy apply</code> copies the MFA level, "
              "password profile, networks and session lifetimes its file "
              "states over what is set here.</p>");
    if (a->roles & GH_ADM_R_ADMIN) {
        gh_ab_raw(&b, "<h2>New tenant</h2><form method=\"post\" action=\""
                  GH_TENANTS_PAGE "\"><input type=\"hidden\" name=\"csrf\" "
                  "value=\"");
        gh_ab_escn(&b, ctx->csrf.data, ctx->csrf.len);
        gh_ab_raw(&b, "\"><input type=\"hidden\" name=\"action\" "
                  "value=\"create\"><label>Identifier <input "
                  "name=\"tenant\" id=\"new-tenant\" maxlength=\"63\" "
                  "required></label> <label>Name <input name=\"display\" "
                  "maxlength=\"127\"></label> <button type=\"submit\" "
                  "id=\"create-tenant\">Create</button></form>");
    }
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "Tenants", &b);
}


/* ---- the endpoint ---- */

ngx_int_t
gh_admin_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    gh_adm_actor_t  a;
    ngx_int_t       answer, rc;
    ngx_uint_t      user_page, invites, review, csv, bg, audit, tenants;

    user_page = r->uri.len == sizeof(GH_ADMIN_USER) - 1
                && ngx_strncmp(r->uri.data, GH_ADMIN_USER, r->uri.len) == 0;
    invites = r->uri.len == sizeof(GH_ADMIN_INVITES) - 1
              && ngx_strncmp(r->uri.data, GH_ADMIN_INVITES, r->uri.len) == 0;
    review = r->uri.len == sizeof(GH_ADMIN_HOME "review") - 1
             && ngx_strncmp(r->uri.data, GH_ADMIN_HOME "review",
                            r->uri.len) == 0;
    csv = r->uri.len == sizeof(GH_ADMIN_HOME "review.csv") - 1
          && ngx_strncmp(r->uri.data, GH_ADMIN_HOME "review.csv",
                         r->uri.len) == 0;
    bg = r->uri.len == sizeof(GH_BG_PAGE) - 1
         && ngx_strncmp(r->uri.data, GH_BG_PAGE, r->uri.len) == 0;
    tenants = r->uri.len == sizeof(GH_TENANTS_PAGE) - 1
              && ngx_strncmp(r->uri.data, GH_TENANTS_PAGE, r->uri.len) == 0;
    audit = r->uri.len == sizeof(GH_ADMIN_HOME "audit") - 1
            && ngx_strncmp(r->uri.data, GH_ADMIN_HOME "audit",
                           r->uri.len) == 0;
    if (gh_admin_gate(r, ctx, &a, &answer) == NGX_OK) {
        return answer;
    }
    if (r->uri.len == sizeof(GH_ADMIN_TOKENS) - 1
        && ngx_strncmp(r->uri.data, GH_ADMIN_TOKENS, r->uri.len) == 0)
    {
        return gh_tok_endpoint(r, ctx, &a);
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (!(user_page || invites || review || bg || tenants)
            || r->method != NGX_HTTP_POST)
        {
            r->keepalive = 0;
            return gh_admin_refuse(r, ctx, NGX_HTTP_NOT_ALLOWED,
                                   "Method not allowed here.");
        }
        return gh_read_form(r, invites ? gh_inv_body
                               : review ? gh_rev_body
                               : bg ? gh_bg_body
                               : tenants ? gh_ten_body : gh_admin_body);
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (invites) {
        return gh_admin_invites(r, ctx, &a, NULL, NULL);
    }
    if (review || csv) {
        return gh_admin_review(r, ctx, &a, csv);
    }
    if (bg) {
        return gh_admin_breakglass(r, ctx, &a);
    }
    if (audit) {
        return gh_admin_audit(r, ctx, &a);
    }
    if (tenants) {
        return gh_admin_tenants(r, ctx, &a);
    }
    return user_page ? gh_admin_person(r, ctx, &a)
                     : gh_admin_people(r, ctx, &a);
}


/* ---- API tokens: /.gatehouse/admin/tokens (administrators) ----
 * List every token (never its secret: the store has only its hash), make
 * one for a person (a fresh second factor; the token is shown once, in
 * the answer), revoke one. The thread is the API's too. */

#define GH_TOKENS_PAGE  GH_ADMIN_TOKENS

void
gh_tok_thread(void *data, ngx_log_t *log)
{
    gh_job_t          *job = data;
    gh_tok_job_t      *tj = job->ext;
    gh_user_t          actor, owner;
    gh_apitoken_t      t;
    char               before[GH_EMAIL_MAX + 96], after[96];
    int64_t            now = gh_now();
    int                rc;

    tj->decision = gh_admin_redecide(job, &tj->actor, &tj->session,
                                     tj->op == 0 ? GH_ADM_TOKEN_CREATE
                                                 : GH_ADM_TOKEN_MANAGE,
                                     NULL, &actor, now, &tj->why);
    if (job->rc != 0) {
        return;
    }
    rc = tj->decision == GH_ADM_ALLOW ? 0 : GH_EDENIED;
    before[0] = '\0';
    if (rc == 0 && tj->op == 0) {
        rc = gh_user_by_email(gh_store, tj->email, &owner);
        if (rc == 0 && owner.disabled) {
            rc = GH_EDISABLED;
        }
        if (rc == 0) {
            tj->expires = now + tj->days * 86400;
            rc = gh_apitoken_create(gh_store, owner.id, tj->name, now,
                                    tj->expires, tj->token, tj->id);
        }
    } else if (rc == 0) {
        rc = gh_apitoken_revoke(gh_store, tj->id, &t);
        if (rc == 0) {
            ngx_snprintf((u_char *) before, sizeof(before) - 1,
                         "active; %s, %s%Z",
                         gh_user_get(gh_store, t.uid, &owner) == 0
                         ? owner.email : "?", t.name[0] ? t.name : "-");
        }
    }
    job->rc = rc;
    if (rc != 0) {
        ngx_cpystrn((u_char *) after, (u_char *) "unchanged", sizeof(after));
    } else if (tj->op == 0) {
        ngx_snprintf((u_char *) after, sizeof(after) - 1,
                     "token %s, %s, %L days%Z", tj->id,
                     tj->name[0] ? tj->name : "-", tj->days);
    } else {
        ngx_cpystrn((u_char *) after, (u_char *) "revoked", sizeof(after));
    }
    ngx_log_error(NGX_LOG_NOTICE, log, 0, "gatehouse: api token %s by %s: "
                  "%s", tj->op == 0 ? "create" : "revoke", actor.email,
                  rc == 0 ? "done" : rc == GH_EDENIED ? tj->why
                                   : gh_strerror(rc));
    gh_admin_record(job, &actor, tj->session_ref,
                   tj->op == 0 ? "apitoken.create" : "apitoken.revoke",
                   tj->op == 0 ? tj->email : tj->id, rc, tj->why, tj->via,
                   before, after);
}


/* A token form's fields into tj: email, name (printable, at most
 * GH_APITOKEN_NAME_MAX), days (1 to GH_TOKEN_DAYS_MAX, default 90). The
 * API and the console both call it with already-decoded text. NULL, or
 * what is wrong. */
const char *
gh_tok_fields(gh_tok_job_t *tj, const u_char *email, size_t elen,
    const u_char *name, size_t nlen, const u_char *days, size_t dlen)
{
    ngx_int_t  n = 90;
    size_t     i;

    if (gh_email_normalize((const char *) email, elen, tj->email) != 0) {
        return "a valid email address";
    }
    if (nlen > GH_APITOKEN_NAME_MAX) {
        return "a name of at most 63 characters";
    }
    for (i = 0; i < nlen; i++) {
        if (name[i] < 0x20 || name[i] == 0x7f) {
            return "a name of printable characters";
        }
    }
    ngx_memcpy(tj->name, name, nlen);
    tj->name[nlen] = '\0';
    if (dlen > 0) {
        n = dlen <= 3 ? ngx_atoi((u_char *) days, dlen) : NGX_ERROR;
        if (n < 1 || n > GH_TOKEN_DAYS_MAX) {
            return "days: 1 to 365";
        }
    }
    tj->days = n;
    return NULL;
}


static void
gh_tok_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_tok_job_t              *tj = job->ext;
    ngx_str_t                  loc;
    gh_ab_t                    b;
    ngx_int_t                  rc;

    if (tj->decision != GH_ADM_ALLOW) {
        rc = gh_admin_answer(r, ctx, tj->decision, tj->why, GH_TOKENS_PAGE);
    } else if (job->rc == GH_ENOTFOUND || job->rc == GH_EDISABLED) {
        rc = gh_admin_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                             tj->op == 0 ? "No enabled account has that "
                                           "email."
                                         : "No such token.");
    } else if (job->rc != 0) {
        rc = gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                           "the store is unavailable, try again");
    } else if (tj->op == 1) {
        ngx_str_set(&loc, GH_TOKENS_PAGE);
        rc = gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc, NULL,
                     0);
    } else if (gh_ab_init(&b, r->pool, 2048) != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    } else {
        /* shown once: the store keeps only its hash */
        gh_ab_raw(&b, "<p class=\"ok\">Token ");
        gh_ab_esc(&b, tj->id);
        gh_ab_raw(&b, " for ");
        gh_ab_esc(&b, tj->email);
        gh_ab_raw(&b, ", until ");
        gh_ab_date(&b, tj->expires);
        gh_ab_raw(&b, ". Copy it now: it is not shown again.</p><p><code "
                  "id=\"new-token\">");
        gh_ab_esc(&b, tj->token);
        gh_ab_raw(&b, "</code></p><p><a href=\"" GH_TOKENS_PAGE "\">Back to "
                  "API tokens</a></p>");
        rc = gh_admin_send(r, ctx, NGX_HTTP_OK, "API token", &b);
        if (!b.failed) {
            gh_wipe(b.start, b.p - b.start);
        }
    }
    gh_wipe(tj->token, sizeof(tj->token));
    ngx_http_finalize_request(r, rc);
}


static void
gh_tok_body(ngx_http_request_t *r)
{
    static const char *const ops[] = { "create", "revoke" };
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  body, e, n, d, v;
    gh_adm_actor_t             a;
    gh_adm_req_t               rq;
    gh_job_t                  *job;
    gh_tok_job_t              *tj;
    const char                *why;
    int                        op, dec;

    ctx = gh_admin_form(r, &body);
    if (ctx == NULL) {
        return;
    }
    op = gh_form_choice(r->pool, &body, "action", ops, 2, -1);
    job = ngx_pcalloc(r->pool, sizeof(*job));
    tj = ngx_pcalloc(r->pool, sizeof(*tj));
    if (job == NULL || tj == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    tj->op = op;
    why = "a known action";
    if (op == 0) {
        if (gh_form_field(r->pool, &body, "email", GH_EMAIL_MAX, &e)
            != NGX_OK)
        {
            e.len = 0;
        }
        if (gh_form_field(r->pool, &body, "name", GH_APITOKEN_NAME_MAX, &n)
            != NGX_OK)
        {
            n.len = 0;
        }
        if (gh_form_field(r->pool, &body, "days", 3, &d) != NGX_OK) {
            d.len = 0;
        }
        why = e.len ? gh_tok_fields(tj, e.data, e.len, n.data, n.len,
                                    d.data, d.len)
                    : "a valid email address";
    } else if (op == 1) {
        why = gh_form_field(r->pool, &body, "id", 16, &v) == NGX_OK
              && v.len == 16 ? NULL : "a token id";
        if (why == NULL) {
            ngx_memcpy(tj->id, v.data, 16);
        }
    }
    if (why != NULL) {
        ngx_http_finalize_request(r,
            gh_admin_refuse(r, ctx, NGX_HTTP_BAD_REQUEST, why));
        return;
    }
    gh_admin_actor(ctx, &a);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = op == 0 ? GH_ADM_TOKEN_CREATE : GH_ADM_TOKEN_MANAGE;
    dec = gh_adm_decide(&a, &rq, gh_now(), &why);
    if (dec != GH_ADM_ALLOW) {
        ngx_http_finalize_request(r, gh_admin_answer(r, ctx, dec, why,
                                                     GH_TOKENS_PAGE));
        return;
    }
    tj->actor = a;
    tj->via = "admin console";
    gh_admin_post(r, ctx, job, tj, &tj->session, tj->session_ref,
                  gh_tok_thread, gh_tok_finish);
}


typedef struct {
    gh_ab_t                   *b;
    ngx_http_gatehouse_ctx_t  *ctx;
} gh_tok_list_t;


static int
gh_tok_row(const gh_apitoken_t *t, void *arg)
{
    gh_tok_list_t  *tl = arg;
    gh_ab_t        *b = tl->b;
    gh_user_t       u;

    gh_ab_raw(b, "<tr class=\"token\"><td>");
    gh_ab_esc(b, t->id);
    gh_ab_raw(b, "</td><td>");
    gh_ab_esc(b, gh_user_get(gh_store, t->uid, &u) == 0 ? u.email : "?");
    gh_ab_raw(b, "</td><td>");
    gh_ab_esc(b, t->name[0] ? t->name : "-");
    gh_ab_raw(b, "</td><td>");
    gh_ab_date(b, t->created);
    gh_ab_raw(b, "</td><td>");
    gh_ab_date(b, t->expires);
    gh_ab_raw(b, "</td><td><form class=\"inline\" method=\"post\" action=\""
              GH_TOKENS_PAGE "\"><input type=\"hidden\" name=\"csrf\" "
              "value=\"");
    gh_ab_escn(b, tl->ctx->csrf.data, tl->ctx->csrf.len);
    gh_ab_raw(b, "\"><input type=\"hidden\" name=\"action\" value=\"revoke\">"
              "<input type=\"hidden\" name=\"id\" value=\"");
    gh_ab_esc(b, t->id);
    gh_ab_raw(b, "\"><button type=\"submit\" class=\"danger\">Revoke</button>"
              "</form></td></tr>");
    return b->failed ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_admin_tokens(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    gh_adm_req_t   rq;
    gh_tok_list_t  tl;
    gh_ab_t        b;
    const char    *why;
    int            d;

    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_TOKEN_MANAGE;
    d = gh_adm_decide(a, &rq, gh_now(), &why);
    if (d != GH_ADM_ALLOW) {
        return gh_admin_answer(r, ctx, d, why, GH_TOKENS_PAGE);
    }
    if (gh_ab_init(&b, r->pool, 8192) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    gh_ab_raw(&b, "<p class=\"hint\">A token acts as its person, with their "
              "roles at each request, on the admin API. Only its hash is "
              "kept: it is shown once, when made. Making one needs a second "
              "factor proven within 15 minutes.</p><table id=\"tokens\">"
              "<thead><tr><th>Id</th><th>Person</th><th>Name</th><th>Made"
              "</th><th>Expires</th><th></th></tr></thead><tbody>");
    tl.b = &b;
    tl.ctx = ctx;
    if (gh_apitoken_list(gh_store, gh_tok_row, &tl) != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the store is unavailable");
    }
    gh_ab_raw(&b, "</tbody></table><h2>New token</h2><form method=\"post\" "
              "action=\"" GH_TOKENS_PAGE "\" id=\"token-create\"><input "
              "type=\"hidden\" name=\"csrf\" value=\"");
    gh_ab_escn(&b, ctx->csrf.data, ctx->csrf.len);
    gh_ab_raw(&b, "\"><input type=\"hidden\" name=\"action\" value=\"create\">"
              "<label>Email <input name=\"email\" required></label> <label>"
              "Name <input name=\"name\" maxlength=\"63\"></label> <label>"
              "Days <input name=\"days\" value=\"90\" maxlength=\"3\">"
              "</label> <button type=\"submit\">Make token</button></form>");
    return gh_admin_send(r, ctx, NGX_HTTP_OK, "API tokens", &b);
}


/* The page's methods, after the console's gate. */
static ngx_int_t
gh_tok_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_adm_actor_t *a)
{
    ngx_int_t  rc;

    if (r->method == NGX_HTTP_POST) {
        return gh_read_form(r, gh_tok_body);
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        r->keepalive = 0;
        return gh_admin_refuse(r, ctx, NGX_HTTP_NOT_ALLOWED,
                               "Method not allowed here.");
    }
    rc = ngx_http_discard_request_body(r);
    return rc != NGX_OK ? rc : gh_admin_tokens(r, ctx, a);
}
