/* gatehouse — the admin API, /.gatehouse/api/v1/: JSON over the same
 * decisions (authz/admin.c), the same thread-pool jobs and the same audit
 * records as the console (admin.c).
 *
 *   GET    tenants
 *   GET    users?tenant=&q=&after=&limit=     cursor pages
 *   GET    users/{id}
 *   POST   users/{id}/{disable|enable|logout|pwreset|mfareset}
 *   POST   users/{id}/roles                   {"role": R, "until": "YYYY-MM-DD"}
 *   DELETE users/{id}/roles/{role}
 *   GET    invitations
 *   POST   invitations                        {"email","name","roles","tenant"}
 *   POST   invitations/{id}/{approve|reject}
 *   GET    tenants/{name}
 *   POST   tenants                            {"name","display"}
 *   GET    reviews?tenant=&days=&after=&limit=
 *   POST   reviews/{tenant}/{complete|disable-flagged}?days=
 *   GET    audit?actor=&target=&action=&from=&to=&limit=&before=
 *   GET    breakglass
 *   POST   breakglass/{request|approve|end}
 *   GET    tokens
 *   POST   tokens                             {"email","name","days"}
 *   DELETE tokens/{id}
 *
 * Who: "Authorization: Bearer ghk_..." (an API token, `gatehouse api-token
 * create`), or the console's session cookie; a cookie-authenticated write
 * must also carry the CSRF cookie's value in X-CSRF-Token (not an
 * X-Gatehouse- name: those are stripped from every request) and come
 * from this origin. Errors are {"status": N, "message": "..."}.
 */
#include <time.h>

#include <jansson.h>

#include "ngx_http_gatehouse.h"
#include "ngx_http_gatehouse_admin.h"

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/saml.h"
#include "gatehouse/util.h"

#define GH_API_PREFIX     GH_PREFIX "api/v1/"
#define GH_API_PAGE_MAX   200
#define GH_API_PAGE_DFLT  50
#define GH_API_SCAN       2000
#define GH_API_BODY_MAX   8192


/* ---- answers ---- */

static ngx_int_t
gh_api_json(ngx_http_request_t *r, ngx_uint_t status, json_t *o)
{
    return gh_send_json(r, status, o);
}


static ngx_int_t
gh_api_error(ngx_http_request_t *r, ngx_uint_t status, const char *message)
{
    r->keepalive = 0;   /* the body may be unread */
    return gh_api_json(r, status, json_pack("{s:i,s:s}", "status",
                                            (int) status, "message",
                                            message));
}


/* A decision that is not GH_ADM_ALLOW, as an error. */
static ngx_int_t
gh_api_refuse(ngx_http_request_t *r, int d, const char *why)
{
    char  msg[96];

    switch (d) {
    case GH_ADM_HIDDEN:
        return gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found");
    case GH_ADM_MFA:
        return gh_api_error(r, NGX_HTTP_FORBIDDEN,
                            "mfa_required: sign in with a second factor");
    case GH_ADM_STEPUP:
        return gh_api_error(r, NGX_HTTP_FORBIDDEN,
                            "step_up_required: this action needs a second "
                            "factor proven within 15 minutes (the console, "
                            "not an API token)");
    default:
        ngx_snprintf((u_char *) msg, sizeof(msg) - 1, "forbidden: %s%Z", why);
        return gh_api_error(r, NGX_HTTP_FORBIDDEN, msg);
    }
}


/* ---- who is asking ---- */

typedef struct {
    gh_adm_actor_t  a;
    gh_user_t       user;                /* the actor (the token's user) */
    gh_session_t    session;
    ngx_uint_t      token;               /* authenticated by an API token */
    char            ref[40];             /* audit: session or token ref */
} gh_api_who_t;


static ngx_int_t
gh_api_header(ngx_http_request_t *r, const char *name, ngx_str_t *out)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i, n = ngx_strlen(name), found = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == n
                && ngx_strncasecmp(h[i].key.data, (u_char *) name, n) == 0)
            {
                if (found++) {
                    return NGX_ERROR;    /* twice: refuse, never guess */
                }
                *out = h[i].value;
            }
        }
    }
    return found ? NGX_OK : NGX_DECLINED;
}


/* The caller: an API token or a session. NGX_OK, or NGX_DECLINED with
 * *answer sent. */
static ngx_int_t
gh_api_who(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, ngx_int_t *answer)
{
    gh_apitoken_t  t;
    ngx_str_t      auth;
    gh_adm_req_t   rq;
    const char    *why;
    ngx_int_t      rc;
    int            d, grc;
    int64_t        now = gh_now();

    ngx_memzero(w, sizeof(*w));
    rc = gh_api_header(r, "Authorization", &auth);
    if (rc == NGX_ERROR) {
        *answer = gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                               "one Authorization header");
        return NGX_DECLINED;
    }
    if (rc == NGX_OK) {
        if (auth.len <= 7
            || ngx_strncasecmp(auth.data, (u_char *) "Bearer ", 7) != 0)
        {
            *answer = gh_api_error(r, NGX_HTTP_UNAUTHORIZED,
                                   "expected a Bearer token");
            return NGX_DECLINED;
        }
        grc = gh_apitoken_resolve(gh_store, (const char *) auth.data + 7,
                                  auth.len - 7, now, &t);
        if (grc == 0) {
            grc = gh_user_get(gh_store, t.uid, &w->user);
        }
        if (grc == 0 && gh_user_off(&w->user, now)) {
            grc = GH_EDISABLED;
        }
        if (grc != 0) {
            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "gatehouse: api token refused: %s",
                          gh_strerror(grc));
            *answer = grc == GH_ESTORE || grc == GH_ENOMEM
                      ? gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "the store is unavailable")
                      : gh_api_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "invalid, expired or revoked token");
            return NGX_DECLINED;
        }
        /* a token stands for a second factor, never a fresh one */
        ngx_cpystrn((u_char *) w->session.uid, (u_char *) w->user.id,
                    sizeof(w->session.uid));
        ngx_cpystrn((u_char *) w->session.tenant, (u_char *) w->user.tenant,
                    sizeof(w->session.tenant));
        ngx_cpystrn((u_char *) w->session.amr, (u_char *) "token+otp",
                    sizeof(w->session.amr));
        w->session.mfa_at = 0;
        w->token = 1;
        ngx_snprintf((u_char *) w->ref, sizeof(w->ref) - 1, "token:%s%Z",
                     t.id);
    } else if (ctx->authenticated) {
        w->user = ctx->user;
        w->session = ctx->session;
        gh_audit_session_ref(ctx->key, w->ref);
    } else {
        *answer = gh_api_error(r, NGX_HTTP_UNAUTHORIZED,
                               "no valid session or token");
        return NGX_DECLINED;
    }
    gh_adm_actor(&w->a, &w->user, &w->session,
                 gh_mfa_tenant_level(w->user.tenant), now);
    gh_admin_breakglass_use(r, w->user.id, w->user.email);
    ngx_memzero(&rq, sizeof(rq));
    rq.action = GH_ADM_CONSOLE;
    d = gh_adm_decide(&w->a, &rq, now, &why);
    if (d != GH_ADM_ALLOW) {
        *answer = gh_api_refuse(r, d, why);
        return NGX_DECLINED;
    }
    return NGX_OK;
}


/* A cookie-authenticated write must prove it comes from our own pages:
 * X-CSRF-Token equal to the CSRF cookie, and no foreign Origin. */
static ngx_int_t
gh_api_csrf(ngx_http_request_t *r, gh_api_who_t *w)
{
    ngx_str_t   hdr, cookie, origin, *host;
    static const char https[] = "https://";

    if (w->token) {
        return NGX_OK;
    }
    if (gh_api_header(r, "X-CSRF-Token", &hdr) != NGX_OK
        || gh_cookie(r, GH_CSRF_COOKIE, &cookie) != NGX_OK
        || hdr.len != GH_TOKEN_LEN || cookie.len != GH_TOKEN_LEN
        || !gh_ct_equal(hdr.data, cookie.data, hdr.len))
    {
        return NGX_DECLINED;
    }
    switch (gh_api_header(r, "Origin", &origin)) {
    case NGX_DECLINED:
        return NGX_OK;
    case NGX_OK:
        host = r->headers_in.host ? &r->headers_in.host->value : NULL;
        if (host != NULL && origin.len == sizeof(https) - 1 + host->len
            && ngx_strncasecmp(origin.data, (u_char *) https,
                               sizeof(https) - 1) == 0
            && ngx_strncasecmp(origin.data + sizeof(https) - 1, host->data,
                               host->len) == 0)
        {
            return NGX_OK;
        }
        return NGX_DECLINED;
    default:
        return NGX_DECLINED;
    }
}


/* The decision for action on tenant (NULL: none). With plain set, every
 * refusal is answered now (a read, or a write its thread does not decide
 * again): NGX_OK means allowed. Without it, only a refusal that needs the
 * asker to act (a second factor, a fresh one) or must reveal nothing
 * (another tenant's) is answered now; a plain refusal goes on to the
 * thread, which decides again and audits it: NGX_OK with the decision
 * (GH_ADM_ALLOW or GH_ADM_DENY) in *answer. NGX_DECLINED: the refusal is
 * in *answer. */
static ngx_int_t
gh_api_decide(ngx_http_request_t *r, gh_api_who_t *w,
    gh_adm_action_t action, const char *tenant, ngx_uint_t plain,
    ngx_int_t *answer)
{
    gh_adm_req_t  rq;
    const char   *why;
    int           d;

    ngx_memzero(&rq, sizeof(rq));
    rq.action = action;
    rq.tenant = tenant;
    d = gh_adm_decide(&w->a, &rq, gh_now(), &why);
    if (d != GH_ADM_ALLOW && (plain || d != GH_ADM_DENY)) {
        *answer = gh_api_refuse(r, d, why);
        return NGX_DECLINED;
    }
    *answer = d;
    return NGX_OK;
}

#define gh_api_allowed(r, w, action, tenant, answer)                         \
    gh_api_decide(r, w, action, tenant, 1, answer)
#define gh_api_predecide(r, w, action, tenant, answer)                       \
    gh_api_decide(r, w, action, tenant, 0, answer)


/* ---- reads ---- */

static json_t *
gh_api_user_json(const gh_user_t *u, int64_t now, int mfa, int64_t last)
{
    json_t    *o, *b;
    unsigned   i;

    b = json_array();
    for (i = 0; b != NULL && i < u->nbindings && i < GH_BINDINGS_MAX; i++) {
        json_array_append_new(b, json_pack("{s:s,s:I,s:b}",
            "role", u->bindings[i].role,
            "until", (json_int_t) u->bindings[i].until,
            "active", u->bindings[i].until == 0
                      || u->bindings[i].until > now));
    }
    o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I,s:o}", "id", u->id,
                  "email", u->email, "name", u->name, "tenant", u->tenant,
                  "disabled", u->disabled, "created",
                  (json_int_t) u->created, "roles", b ? b : json_array());
    if (o != NULL && mfa >= 0) {
        json_object_set_new(o, "mfa", json_boolean(mfa));
        json_object_set_new(o, "last_login", last ? json_integer(last)
                                                   : json_null());
    }
    return o;
}


static int
gh_api_collect_user(const gh_user_t *u, void *arg)
{
    json_t  *a = arg;

    return json_array_append_new(a, gh_api_user_json(u, gh_now(), -1, 0))
           ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_api_users(ngx_http_request_t *r, gh_api_who_t *w)
{
    gh_user_page_t  pg;
    json_t         *arr;
    char            q[GH_EMAIL_MAX + 1], after[GH_EMAIL_MAX + 1];
    char            tenant[GH_TENANT_MAX + 1], next[GH_EMAIL_MAX + 1], l[8];
    ngx_int_t       hq, ha, ht, hl, limit = GH_API_PAGE_DFLT;
    int             rc;

    hq = gh_admin_arg(r, "q", GH_EMAIL_MAX, q);
    ha = gh_admin_arg(r, "after", GH_EMAIL_MAX, after);
    ht = gh_admin_arg(r, "tenant", GH_TENANT_MAX, tenant);
    hl = gh_admin_arg(r, "limit", 4, l);
    if (hq == NGX_ERROR || ha == NGX_ERROR || ht == NGX_ERROR
        || hl == NGX_ERROR)
    {
        return gh_api_error(r, NGX_HTTP_BAD_REQUEST, "malformed query");
    }
    if (hl == NGX_OK) {
        limit = ngx_atoi((u_char *) l, ngx_strlen(l));
        if (limit < 1 || limit > GH_API_PAGE_MAX) {
            return gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                                "limit: 1 to 200");
        }
    }
    if (ht != NGX_OK
        && !(w->a.roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR)))
    {
        ngx_cpystrn((u_char *) tenant, (u_char *) w->user.tenant,
                    sizeof(tenant));
        ht = NGX_OK;
    }
    if (gh_api_allowed(r, w, GH_ADM_USER_VIEW, ht == NGX_OK ? tenant : NULL,
                       &hl) != NGX_OK)
    {
        return hl;
    }
    arr = json_array();
    if (arr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memzero(&pg, sizeof(pg));
    pg.tenant = ht == NGX_OK ? tenant : NULL;
    pg.prefix = hq == NGX_OK ? q : NULL;
    pg.after = ha == NGX_OK ? after : NULL;
    pg.limit = (unsigned) limit;
    pg.scan = GH_API_SCAN;
    rc = gh_user_page(gh_store, &pg, gh_api_collect_user, arr, next);
    if (rc != 0) {
        json_decref(arr);
        return rc == GH_EBADTENANT
               ? gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found")
               : gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                              "the store is unavailable");
    }
    return gh_api_json(r, NGX_HTTP_OK, json_pack("{s:o,s:s?}", "users", arr,
                       "next", next[0] ? next : NULL));
}


/* The target user of a path, and the decision to act on them. NGX_OK, or
 * NGX_DECLINED with *answer sent. */
static ngx_int_t
gh_api_target(ngx_http_request_t *r, gh_api_who_t *w, ngx_str_t *id,
    gh_adm_action_t action, const char *role, gh_user_t *u, ngx_int_t *answer)
{
    gh_adm_req_t  rq;
    const char   *why;
    char          sid[GH_ID_HEXLEN + 1];
    int           rc, d;

    if (id->len != GH_ID_HEXLEN) {
        *answer = gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found");
        return NGX_DECLINED;
    }
    ngx_memcpy(sid, id->data, GH_ID_HEXLEN);
    sid[GH_ID_HEXLEN] = '\0';
    rc = gh_user_get(gh_store, sid, u);
    if (rc != 0) {
        *answer = rc == GH_ENOTFOUND || rc == GH_EINVAL
                  ? gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found")
                  : gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "the store is unavailable");
        return NGX_DECLINED;
    }
    ngx_memzero(&rq, sizeof(rq));
    rq.action = action;
    rq.tenant = u->tenant;
    rq.uid = u->id;
    rq.target_roles = gh_adm_roles(u, gh_now());
    rq.role = role;
    d = gh_adm_decide(&w->a, &rq, gh_now(), &why);
    if (d != GH_ADM_ALLOW) {
        *answer = gh_api_refuse(r, d, why);
        return NGX_DECLINED;
    }
    return NGX_OK;
}


static ngx_int_t
gh_api_user(ngx_http_request_t *r, gh_api_who_t *w, ngx_str_t *id)
{
    gh_user_t   *u;
    gh_mfa_t    *m;
    json_t      *o;
    ngx_int_t    answer;
    ngx_uint_t   live, pending;
    int64_t      last = 0, now = gh_now();
    int          rc, mfa;

    u = ngx_palloc(r->pool, sizeof(*u));
    m = ngx_palloc(r->pool, sizeof(*m));
    if (u == NULL || m == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_api_target(r, w, id, GH_ADM_USER_VIEW, NULL, u, &answer)
        != NGX_OK)
    {
        return answer;
    }
    rc = gh_mfa_get(gh_store, u->id, m);
    mfa = rc == 0 && m->has_active;
    gh_wipe(m, sizeof(*m));
    if ((rc != 0 && rc != GH_ENOTFOUND)
        || gh_admin_session_count(r, u, now, &live, &pending) != NGX_OK)
    {
        return gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the store is unavailable");
    }
    (void) gh_lastlogin_get(gh_store, u->id, &last);
    o = gh_api_user_json(u, now, mfa, last);
    if (o != NULL) {
        json_object_set_new(o, "sessions", json_pack("{s:I,s:I}",
                            "active", (json_int_t) live,
                            "pending", (json_int_t) pending));
        json_object_set_new(o, "expires", u->expires
                            ? json_integer(u->expires) : json_null());
        json_object_set_new(o, "state", json_string(
            u->disabled ? "disabled"
            : gh_user_off(u, now) ? "expired" : "enabled"));
    }
    return gh_api_json(r, NGX_HTTP_OK, o);
}


static json_t *
gh_api_tenant_json(const gh_tenant_t *t)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "name", t->name, "display",
                     t->display, "mfa", gh_mfa_level_name(t->mfa),
                     "password_profile", t->pw.profile == GH_PWPROFILE_CLASSES
                                         ? "classes" : "nist");
}


static int
gh_api_collect_tenant(const gh_tenant_t *t, void *arg)
{
    void         **a = arg;
    json_t        *arr = a[0];
    gh_api_who_t  *w = a[1];

    if (!(w->a.roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR))
        && ngx_strcmp(t->name, w->user.tenant) != 0)
    {
        return 0;
    }
    return json_array_append_new(arr, gh_api_tenant_json(t)) ? GH_ENOMEM
                                                              : 0;
}


static int
gh_api_collect_domain(const char *domain, const char *tenant, void *arg)
{
    return json_array_append_new(arg, json_string(domain)) ? GH_ENOMEM : 0;
}


/* One tenant's settings beyond the list's: networks, session lifetimes
 * (null: the policy file's), sign-in method and email domains. */
static json_t *
gh_api_tenant_full(const gh_tenant_t *t)
{
    json_t  *o, *doms;
    int      signin;

    o = gh_api_tenant_json(t);
    doms = json_array();
    if (o == NULL || doms == NULL
        || gh_saml_signin_get(gh_store, t->name, &signin) != 0
        || gh_saml_domains(gh_store, t->name, gh_api_collect_domain, doms)
           != 0)
    {
        json_decref(o);
        json_decref(doms);
        return NULL;
    }
    json_object_set_new(o, "networks", t->networks_set
                        ? json_string(t->networks) : json_null());
    json_object_set_new(o, "idle", t->idle ? json_integer(t->idle)
                                           : json_null());
    json_object_set_new(o, "lifetime", t->lifetime
                        ? json_integer(t->lifetime) : json_null());
    json_object_set_new(o, "signin", json_string(gh_signin_name(signin)));
    json_object_set_new(o, "domains", doms);
    return o;
}


/* One tenant: the caller's own, or any for administrators and auditors
 * (another tenant is 404 to everyone else). */
static ngx_int_t
gh_api_tenant(ngx_http_request_t *r, gh_api_who_t *w, ngx_str_t *name)
{
    gh_tenant_t   t;
    json_t       *o;
    char          n[GH_TENANT_MAX + 1];
    ngx_int_t     answer;
    int           rc;

    if (name->len > GH_TENANT_MAX) {
        return gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found");
    }
    ngx_memcpy(n, name->data, name->len);
    n[name->len] = '\0';
    if (gh_api_allowed(r, w, GH_ADM_USER_VIEW, n, &answer) != NGX_OK) {
        return answer;
    }
    rc = gh_tenant_get(gh_store, n, &t);
    if (rc != 0) {
        return rc == GH_ENOTFOUND || rc == GH_EINVAL
               ? gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found")
               : gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                              "the store is unavailable");
    }
    o = gh_api_tenant_full(&t);
    return o != NULL ? gh_api_json(r, NGX_HTTP_OK, o)
                     : gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "the store is unavailable");
}


static ngx_int_t
gh_api_tenants(ngx_http_request_t *r, gh_api_who_t *w)
{
    json_t  *arr = json_array();
    void    *a[2];
    int      rc;

    if (arr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    a[0] = arr;
    a[1] = w;
    rc = gh_tenant_list(gh_store, gh_api_collect_tenant, a);
    if (rc != 0) {
        json_decref(arr);
        return gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the store is unavailable");
    }
    return gh_api_json(r, NGX_HTTP_OK, json_pack("{s:o}", "tenants", arr));
}


static int
gh_api_collect_invite(const gh_invite_t *iv, void *arg)
{
    json_t  *arr = arg;

    return json_array_append_new(arr, json_pack(
               "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", iv->id,
               "tenant", iv->tenant, "email", iv->email, "roles", iv->roles,
               "state", gh_invite_state_name(iv->state),
               "invited_by", iv->inviter_email,
               "decided_by", iv->decider_email,
               "created", (json_int_t) iv->created,
               "expires", (json_int_t) iv->expires))
           ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_api_invitations(ngx_http_request_t *r, gh_api_who_t *w)
{
    json_t     *arr;
    ngx_int_t   answer;
    int         all, rc;

    all = (w->a.roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR)) != 0;
    if (gh_api_allowed(r, w, GH_ADM_USER_VIEW, all ? NULL : w->user.tenant,
                       &answer) != NGX_OK)
    {
        return answer;
    }
    arr = json_array();
    if (arr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = gh_invite_list(gh_store, all ? NULL : w->user.tenant,
                        gh_api_collect_invite, arr);
    if (rc != 0) {
        json_decref(arr);
        return gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the store is unavailable");
    }
    return gh_api_json(r, NGX_HTTP_OK, json_pack("{s:o}", "invitations",
                                                 arr));
}


/* ---- writes ---- */

static ngx_int_t
gh_api_job(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, void *ext, void (*thread)(void *, ngx_log_t *),
    void (*finish)(ngx_http_request_t *, gh_job_t *))
{
    gh_job_t  *job;

    job = ngx_pcalloc(r->pool, sizeof(*job));
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    job->ext = ext;
    job->request = r;
    gh_job_who(job, ctx);
    ngx_cpystrn((u_char *) job->uid, (u_char *) w->user.id,
                sizeof(job->uid));
    job->finish = finish;
    if (gh_job_post(r, job, thread) != NGX_OK) {
        return gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the gateway is busy, try again");
    }
    return NGX_DONE;
}


/* gh_api_job for a job that carries the caller: their decision inputs,
 * session and audit reference are copied into it first. */
static ngx_int_t
gh_api_post(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, void *ext, gh_adm_actor_t *actor, gh_session_t *session,
    char *ref, size_t ref_size, void (*thread)(void *, ngx_log_t *),
    void (*finish)(ngx_http_request_t *, gh_job_t *))
{
    *actor = w->a;
    *session = w->session;
    ngx_cpystrn((u_char *) ref, (u_char *) w->ref, ref_size);
    return gh_api_job(r, ctx, w, ext, thread, finish);
}


static void
gh_api_user_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_admin_job_t  *aj = job->ext;
    ngx_int_t        rc;

    if (aj->decision != GH_ADM_ALLOW) {
        rc = gh_api_refuse(r, aj->decision, aj->why);
    } else if (job->rc == GH_ENOTFOUND) {
        rc = gh_api_error(r, NGX_HTTP_CONFLICT, aj->role[0]
                          ? "the user does not hold that role"
                          : "the user has no password");
    } else if (job->rc == GH_EINVAL || job->rc == GH_ETOOBIG) {
        rc = gh_api_error(r, NGX_HTTP_BAD_REQUEST, "bad role");
    } else if (job->rc != 0) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable, try again");
    } else {
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:s,s:s,s:s}",
                         "action", gh_admin_actions[aj->which].name,
                         "target", aj->email, "before", aj->before,
                         "after", aj->after));
    }
    ngx_http_finalize_request(r, rc);
}


static void
gh_api_inv_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_inv_job_t  *ij = job->ext;
    ngx_int_t      rc;

    if (ij->decision != GH_ADM_ALLOW) {
        rc = gh_api_refuse(r, ij->decision, ij->why);
    } else if (job->rc == GH_EDENIED) {
        rc = gh_api_error(r, NGX_HTTP_CONFLICT,
                          ngx_strcmp(ij->why, "four_eyes") == 0
                          ? "another manager must decide"
                          : "already decided");
    } else if (job->rc == GH_EEXIST) {
        rc = gh_api_error(r, NGX_HTTP_CONFLICT,
                          "the email has an account or an open invitation");
    } else if (job->rc == GH_EINVAL || job->rc == GH_EBADEMAIL
               || job->rc == GH_EBADTENANT)
    {
        rc = gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                          "check the email, the name and the tenant");
    } else if (job->rc != 0) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable, try again");
    } else if (ij->op == 1) {
        char  link[sizeof(GH_PREFIX "join?token=") + GH_INVITE_TOKEN_LEN];

        ngx_snprintf((u_char *) link, sizeof(link), GH_PREFIX
                     "join?token=%s%Z", ij->token);
        /* the link is in this answer only; the store keeps its hash */
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:s,s:s}", "id",
                         ij->inv.id, "state", "approved", "link", link));
        gh_wipe(link, sizeof(link));
    } else {
        rc = gh_api_json(r, ij->op == 0 ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                         json_pack("{s:s,s:s}", "id", ij->inv.id, "state",
                                   ij->op == 0 ? "pending" : "rejected"));
    }
    gh_wipe(ij->token, sizeof(ij->token));
    ngx_http_finalize_request(r, rc);
}


/* ---- access reviews ---- */

#define GH_API_REVIEW_PAGES  50          /* pages a flagged count reads */

typedef struct {
    gh_api_who_t    *w;
    json_t          *arr;                /* the list, or NULL */
    gh_rev_job_t    *rj;                 /* collecting flagged ids, or
                                            NULL */
    gh_mfa_t        *mfa;                /* scratch */
    int64_t          now, days;
    ngx_uint_t       rows, flagged, refused, more;
} gh_api_rev_t;


/* One person of the tenant: role holders only, with last sign-in, second
 * factor and the flag; into the list, or (flagged, and the actor may
 * disable them) into the bulk job's ids. */
static int
gh_api_review_row(const gh_user_t *u, void *arg)
{
    gh_api_rev_t  *rv = arg;
    gh_adm_req_t   rq;
    json_t        *roles;
    const char    *act[GH_BINDINGS_MAX], *why;
    int64_t        last = 0;
    size_t         n, i;
    int            rc, mfa, flag;

    n = gh_user_active_roles(u, rv->now, act);
    if (n == 0) {
        return 0;                        /* the review covers role holders */
    }
    rc = gh_lastlogin_get(gh_store, u->id, &last);
    if (rc != 0 && rc != GH_ENOTFOUND) {
        return rc;
    }
    flag = gh_review_flag(u, last, rv->now, rv->days);
    rv->rows++;
    rv->flagged += flag;
    if (rv->rj != NULL) {
        if (!flag) {
            return 0;
        }
        ngx_memzero(&rq, sizeof(rq));
        rq.action = GH_ADM_USER_DISABLE;
        rq.tenant = u->tenant;
        rq.uid = u->id;
        rq.target_roles = gh_adm_roles(u, rv->now);
        if (gh_adm_decide(&rv->w->a, &rq, rv->now, &why) != GH_ADM_ALLOW) {
            rv->refused++;               /* e.g. a manager, without a
                                            fresh second factor */
        } else if (rv->rj->nids == GH_REVIEW_PAGE) {
            rv->more = 1;
        } else {
            ngx_memcpy(rv->rj->ids[rv->rj->nids++], u->id, GH_ID_HEXLEN + 1);
        }
        return 0;
    }
    rc = gh_mfa_get(gh_store, u->id, rv->mfa);
    mfa = rc == 0 && rv->mfa->has_active;
    gh_wipe(rv->mfa, sizeof(*rv->mfa));
    if (rc != 0 && rc != GH_ENOTFOUND) {
        return rc;
    }
    roles = json_array();
    for (i = 0; roles != NULL && i < n; i++) {
        json_array_append_new(roles, json_string(act[i]));
    }
    return json_array_append_new(rv->arr, json_pack(
               "{s:s,s:s,s:s,s:o,s:o,s:b,s:b,s:b}", "id", u->id,
               "email", u->email, "name", u->name,
               "roles", roles ? roles : json_array(),
               "last_login", last ? json_integer(last) : json_null(),
               "mfa", mfa, "disabled", u->disabled, "flagged", flag))
           ? GH_ENOMEM : 0;
}


/* A whole-number query argument in lo..hi (dflt when absent). NGX_OK or
 * NGX_ERROR. */
static ngx_int_t
gh_api_num(ngx_http_request_t *r, const char *name, ngx_int_t lo,
    ngx_int_t hi, ngx_int_t dflt, ngx_int_t *out)
{
    char       v[20];
    ngx_int_t  rc;

    *out = dflt;
    rc = gh_admin_arg(r, name, sizeof(v) - 1, v);
    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }
    if (rc != NGX_OK) {
        return NGX_ERROR;
    }
    *out = ngx_atoi((u_char *) v, ngx_strlen(v));
    return *out >= lo && *out <= hi ? NGX_OK : NGX_ERROR;
}


/* The review's tenant (the path's, or the query's, or the caller's own)
 * and days, and the decision for action on it. NGX_OK, or NGX_DECLINED
 * with *answer sent. */
static ngx_int_t
gh_api_review_args(ngx_http_request_t *r, gh_api_who_t *w, ngx_str_t *path,
    gh_adm_action_t action, char *tenant, int64_t *days, ngx_int_t *answer)
{
    ngx_int_t     n;

    if (path != NULL) {
        if (path->len == 0 || path->len > GH_TENANT_MAX) {
            *answer = gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found");
            return NGX_DECLINED;
        }
        ngx_memcpy(tenant, path->data, path->len);
        tenant[path->len] = '\0';
    } else {
        n = gh_admin_arg(r, "tenant", GH_TENANT_MAX, tenant);
        if (n == NGX_ERROR) {
            *answer = gh_api_error(r, NGX_HTTP_BAD_REQUEST, "bad tenant");
            return NGX_DECLINED;
        }
        if (n == NGX_DECLINED) {
            ngx_cpystrn((u_char *) tenant, (u_char *) w->user.tenant,
                        GH_TENANT_MAX + 1);
        }
    }
    if (gh_api_num(r, "days", 1, 3650, GH_REVIEW_DAYS, &n) != NGX_OK) {
        *answer = gh_api_error(r, NGX_HTTP_BAD_REQUEST, "days: 1 to 3650");
        return NGX_DECLINED;
    }
    *days = n;
    return gh_api_allowed(r, w, action, tenant, answer);
}


static ngx_int_t
gh_api_store_error(ngx_http_request_t *r, int rc)
{
    return rc == GH_EBADTENANT || rc == GH_ENOTFOUND
           ? gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found")
           : gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable");
}


/* GET reviews?tenant=&days=&after=&limit=: a page of the tenant's role
 * holders, and the last completed review. */
static ngx_int_t
gh_api_reviews(ngx_http_request_t *r, gh_api_who_t *w)
{
    gh_api_rev_t    rv;
    gh_user_page_t  pg;
    json_t         *lastrev;
    char            tenant[GH_TENANT_MAX + 1], after[GH_EMAIL_MAX + 1];
    char            next[GH_EMAIL_MAX + 1], who[GH_EMAIL_MAX + 1];
    int64_t         days, when;
    ngx_int_t       answer, ha, limit;
    int             rc;

    if (gh_api_review_args(r, w, NULL, GH_ADM_REVIEW_VIEW, tenant, &days,
                           &answer) != NGX_OK)
    {
        return answer;
    }
    ha = gh_admin_arg(r, "after", GH_EMAIL_MAX, after);
    if (ha == NGX_ERROR
        || gh_api_num(r, "limit", 1, GH_API_PAGE_MAX, GH_API_PAGE_DFLT,
                      &limit) != NGX_OK)
    {
        return gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                            "malformed query (limit: 1 to 200)");
    }
    ngx_memzero(&rv, sizeof(rv));
    rv.w = w;
    rv.now = gh_now();
    rv.days = days;
    rv.mfa = ngx_palloc(r->pool, sizeof(*rv.mfa));
    rv.arr = json_array();
    if (rv.mfa == NULL || rv.arr == NULL) {
        json_decref(rv.arr);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memzero(&pg, sizeof(pg));
    pg.tenant = tenant;
    pg.after = ha == NGX_OK ? after : NULL;
    pg.limit = (unsigned) limit;
    pg.scan = GH_API_SCAN;
    rc = gh_user_page(gh_store, &pg, gh_api_review_row, &rv, next);
    if (rc != 0) {
        json_decref(rv.arr);
        return gh_api_store_error(r, rc);
    }
    rc = gh_review_last(gh_store, tenant, who, sizeof(who), &when);
    lastrev = rc == 0 ? json_pack("{s:s,s:I}", "by", who, "at",
                                  (json_int_t) when)
                      : json_null();
    return gh_api_json(r, NGX_HTTP_OK, json_pack(
               "{s:s,s:I,s:o,s:I,s:o,s:s?}", "tenant", tenant,
               "days", (json_int_t) days, "people", rv.arr,
               "flagged", (json_int_t) rv.flagged, "last_review", lastrev,
               "next", next[0] ? next : NULL));
}


/* The tenant's flagged people, every page up to GH_API_REVIEW_PAGES: the
 * count into rj->flagged and, when collecting, the first GH_REVIEW_PAGE
 * the actor may disable into rj->ids (rv->more: call again). */
static int
gh_api_review_scan(gh_api_rev_t *rv, gh_rev_job_t *rj, int collect)
{
    gh_user_page_t  pg;
    char            next[GH_EMAIL_MAX + 1], after[GH_EMAIL_MAX + 1];
    ngx_uint_t      i;
    int             rc;

    rv->rj = rj;
    rv->now = gh_now();
    rv->days = rj->days;
    ngx_memzero(&pg, sizeof(pg));
    pg.tenant = rj->tenant;
    pg.limit = GH_API_PAGE_MAX;
    pg.scan = GH_API_SCAN;
    for (i = 0; i < GH_API_REVIEW_PAGES; i++) {
        rc = gh_user_page(gh_store, &pg, gh_api_review_row, rv, next);
        if (rc != 0) {
            return rc;
        }
        if (next[0] == '\0') {
            break;
        }
        ngx_memcpy(after, next, sizeof(after));
        pg.after = after;
    }
    if (i == GH_API_REVIEW_PAGES) {
        rv->more = 1;
    }
    rj->flagged = (unsigned) rv->flagged;
    if (!collect) {
        rj->nids = 0;
    }
    return 0;
}


/* The console's review job, and what the event loop left out of it. */
typedef struct {
    gh_rev_job_t  rj;                    /* first: job->ext points here */
    ngx_uint_t    refused, more;
} gh_api_revjob_t;


static void
gh_api_rev_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_rev_job_t     *rj = job->ext;
    gh_api_revjob_t  *rv = (gh_api_revjob_t *) rj;
    ngx_int_t         rc;

    if (rj->decision != GH_ADM_ALLOW
        && (rj->complete || rj->disabled == 0))
    {
        rc = gh_api_refuse(r, rj->decision, rj->why);
    } else if (job->rc != 0 && (rj->complete || rj->disabled == 0)) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable, try again");
    } else if (rj->complete) {
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:s,s:I}",
                         "tenant", rj->tenant, "state", "completed",
                         "flagged", (json_int_t) rj->flagged));
    } else {
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:I,s:I,s:b}",
                         "tenant", rj->tenant,
                         "disabled", (json_int_t) rj->disabled,
                         "skipped", (json_int_t) (rj->skipped + rv->refused),
                         "more", rv->more));
    }
    ngx_http_finalize_request(r, rc);
}


/* ---- the audit log ---- */

#define GH_API_AUDIT_DFLT   50
#define GH_API_AUDIT_DAYS   30           /* default `from`: 30 days ago */

static void
gh_api_aud_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_aud_job_t  *aj = job->ext;
    json_t        *arr, *rec = NULL;
    ngx_uint_t     i, n;
    ngx_int_t      rc;

    if (job->rc != 0 && job->rc != GH_ENOTINIT) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the audit log cannot be read now");
        goto out;
    }
    arr = json_array();
    n = gh_aud_count(aj);
    for (i = 0; arr != NULL && i < n; i++) {
        rec = gh_aud_row(aj, i);
        json_array_append(arr, rec);
    }
    if (arr == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto out;
    }
    /* more matches than the page: continue below the oldest shown */
    rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:o,s:o,s:b}",
             "records", arr,
             "next", aj->matched > aj->limit && rec != NULL
                     ? json_integer(json_integer_value(
                           json_object_get(rec, "seq")))
                     : json_null(),
             "truncated", aj->truncated));
out:
    gh_aud_free(aj);
    ngx_http_finalize_request(r, rc);
}


static ngx_int_t gh_api_job(ngx_http_request_t *r,
    ngx_http_gatehouse_ctx_t *ctx, gh_api_who_t *w, void *ext,
    void (*thread)(void *, ngx_log_t *),
    void (*finish)(ngx_http_request_t *, gh_job_t *));
static int64_t gh_api_until(const char *p);


/* GET audit?actor=&target=&action=&from=&to=&limit=&before=: newest
 * first, read in the thread pool like the console's viewer, with its
 * visibility (a manager: records whose actor is of their tenant). */
static ngx_int_t
gh_api_audit(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    gh_aud_job_t                    *aj;
    const char                      *tenant;
    char                             d[16];
    ngx_int_t                        limit, before, rc;
    int64_t                          now = gh_now();

    tenant = (w->a.roles & (GH_ADM_R_ADMIN | GH_ADM_R_AUDITOR))
             ? NULL : w->user.tenant;
    if (gh_api_allowed(r, w, GH_ADM_AUDIT_VIEW, tenant, &rc) != NGX_OK) {
        return rc;
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    aj = ngx_pcalloc(r->pool, sizeof(*aj));
    if (aj == NULL || mcf->data.len >= sizeof(aj->datadir)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(aj->datadir, mcf->data.data, mcf->data.len);
    if (tenant != NULL) {
        ngx_cpystrn((u_char *) aj->tenant, (u_char *) tenant,
                    sizeof(aj->tenant));
    }
    if (gh_aud_arg(r, "actor", aj->actor) != NGX_OK
        || gh_aud_arg(r, "target", aj->target) != NGX_OK
        || gh_aud_arg(r, "action", aj->action) != NGX_OK
        || gh_api_num(r, "limit", 1, GH_AUDIT_VIEW_ROWS, GH_API_AUDIT_DFLT,
                      &limit) != NGX_OK
        || gh_api_num(r, "before", 1, NGX_MAX_INT_T_VALUE, 0, &before)
           != NGX_OK)
    {
        return gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                            "malformed filter (limit: 1 to 100; before: a "
                            "sequence number)");
    }
    aj->limit = (ngx_uint_t) limit;
    aj->before = before;
    aj->from = now - GH_API_AUDIT_DAYS * 86400;
    aj->to = now + 60;
    rc = gh_admin_arg(r, "from", 10, d);
    if (rc == NGX_OK) {
        aj->from = gh_api_until(d) - 86400;
    }
    if (rc == NGX_ERROR || (rc == NGX_OK && aj->from < 0)) {
        aj->from = -1;
    }
    rc = gh_admin_arg(r, "to", 10, d);
    if (rc == NGX_OK) {
        aj->to = gh_api_until(d);
    }
    if (rc == NGX_ERROR || aj->from < 0 || aj->to < 0 || aj->from >= aj->to) {
        return gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                            "dates: YYYY-MM-DD, from not after to");
    }
    rc = gh_api_job(r, ctx, w, aj, gh_aud_thread, gh_api_aud_finish);
    if (rc == NGX_DONE) {
        r->main->count++;       /* finalized by gh_api_aud_finish */
    }
    return rc;
}


/* ---- break-glass ---- */

static ngx_int_t
gh_api_breakglass(ngx_http_request_t *r, gh_api_who_t *w)
{
    gh_breakglass_t  bg;
    gh_user_t        acct;
    int64_t          now = gh_now();
    int              rc, on;

    if (!(w->a.roles & GH_ADM_R_ADMIN)) {
        return gh_api_refuse(r, GH_ADM_DENY, "not_allowed");
    }
    rc = gh_breakglass_get(gh_store, &bg);
    if (rc == GH_ENOTFOUND) {
        return gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s}", "state",
                                                     "not_set_up"));
    }
    if (rc != 0 || gh_user_get(gh_store, bg.uid, &acct) != 0) {
        return gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the store is unavailable");
    }
    on = bg.state == GH_BG_ON && bg.until > now;
    return gh_api_json(r, NGX_HTTP_OK, json_pack(
               "{s:s,s:s,s:s?,s:o,s:s?,s:o}", "state",
               on ? "on" : bg.state == GH_BG_REQUESTED ? "requested" : "off",
               "account", acct.email,
               "requested_by", bg.state != GH_BG_OFF && bg.requester_email[0]
                               ? bg.requester_email : NULL,
               "requested_at", bg.state != GH_BG_OFF
                               ? json_integer(bg.requested) : json_null(),
               "approved_by", on ? bg.approver_email : NULL,
               "until", on ? json_integer(bg.until) : json_null()));
}


static void
gh_api_bg_finish(ngx_http_request_t *r, gh_job_t *job)
{
    static const char *const state[] = { "requested", "on", "off" };
    gh_bg_job_t  *bj = job->ext;
    ngx_int_t     rc;

    if (bj->decision != GH_ADM_ALLOW) {
        rc = gh_api_refuse(r, bj->decision, bj->why);
    } else if (job->rc == GH_EDENIED) {
        rc = gh_api_error(r, NGX_HTTP_FORBIDDEN,
                          "forbidden: same_administrator: a second "
                          "administrator must approve");
    } else if (job->rc == GH_ENOTFOUND || job->rc == GH_EEXIST) {
        rc = gh_api_error(r, NGX_HTTP_CONFLICT,
                          "nothing to do in this state (no account set up, "
                          "nothing requested, or already on)");
    } else if (job->rc != 0) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable, try again");
    } else {
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:s,s:o}",
                         "state", state[bj->op], "account", bj->email,
                         "until", bj->op == 1 ? json_integer(bj->bg.until)
                                              : json_null()));
    }
    ngx_http_finalize_request(r, rc);
}


/* ---- tenants and tokens ---- */

static int
gh_api_collect_token(const gh_apitoken_t *t, void *arg)
{
    gh_user_t  u;

    /* never the secret: the store has only its hash */
    return json_array_append_new(arg, json_pack("{s:s,s:s,s:s,s:I,s:I}",
               "id", t->id,
               "email", gh_user_get(gh_store, t->uid, &u) == 0 ? u.email
                                                               : "?",
               "name", t->name, "created", (json_int_t) t->created,
               "expires", (json_int_t) t->expires))
           ? GH_ENOMEM : 0;
}


static ngx_int_t
gh_api_tokens(ngx_http_request_t *r, gh_api_who_t *w)
{
    json_t     *arr;
    ngx_int_t   answer;

    if (gh_api_allowed(r, w, GH_ADM_TOKEN_MANAGE, NULL, &answer) != NGX_OK) {
        return answer;
    }
    arr = json_array();
    if (arr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_apitoken_list(gh_store, gh_api_collect_token, arr) != 0) {
        json_decref(arr);
        return gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the store is unavailable");
    }
    return gh_api_json(r, NGX_HTTP_OK, json_pack("{s:o}", "tokens", arr));
}


static void
gh_api_tok_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_tok_job_t  *tj = job->ext;
    ngx_int_t      rc;

    if (tj->decision != GH_ADM_ALLOW) {
        rc = gh_api_refuse(r, tj->decision, tj->why);
    } else if (job->rc == GH_ENOTFOUND || job->rc == GH_EDISABLED) {
        rc = gh_api_error(r, NGX_HTTP_NOT_FOUND, tj->op == 0
                          ? "no enabled account has that email"
                          : "no such token");
    } else if (job->rc != 0) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable, try again");
    } else if (tj->op == 1) {
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:s}", "id",
                         tj->id, "state", "revoked"));
    } else {
        /* shown once: the store keeps only its hash */
        rc = gh_api_json(r, NGX_HTTP_CREATED, json_pack(
                 "{s:s,s:s,s:s,s:s,s:I}", "id", tj->id, "token", tj->token,
                 "email", tj->email, "name", tj->name,
                 "expires", (json_int_t) tj->expires));
    }
    gh_wipe(tj->token, sizeof(tj->token));
    ngx_http_finalize_request(r, rc);
}


/* The JSON body, bounded; NULL (after answering) when absent or bad. */
static json_t *
gh_api_body(ngx_http_request_t *r)
{
    ngx_str_t     body;
    ngx_int_t     rc;
    json_t       *o;

    if (gh_form_body(r, &body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return NULL;
    }
    o = body.len ? json_loadb((const char *) body.data, body.len,
                              JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        ngx_http_finalize_request(r,
            gh_api_error(r, NGX_HTTP_BAD_REQUEST, "expected a JSON object"));
        return NULL;
    }
    return o;
}


/* A string member, at most max bytes, printable; "" when absent; -1 when
 * malformed. */
static int
gh_api_str(json_t *o, const char *k, char *out, size_t max)
{
    json_t  *v = json_object_get(o, k);
    size_t   n, i;
    const char *s;

    out[0] = '\0';
    if (v == NULL) {
        return 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > max) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < 0x20) {
            return -1;
        }
    }
    ngx_memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}


/* Split rest at the first '/': head and tail (tail empty when none). */
static void
gh_api_split(ngx_str_t *rest, ngx_str_t *head, ngx_str_t *tail)
{
    u_char  *slash = ngx_strlchr(rest->data, rest->data + rest->len, '/');

    head->data = rest->data;
    head->len = slash ? (size_t) (slash - rest->data) : rest->len;
    tail->data = slash ? slash + 1 : rest->data + rest->len;
    tail->len = slash ? rest->len - head->len - 1 : 0;
}


static ngx_uint_t
gh_api_is(ngx_str_t *s, const char *lit)
{
    return s->len == ngx_strlen(lit) && ngx_strncmp(s->data, lit, s->len) == 0;
}


/* "YYYY-MM-DD" -> the first second after that day (UTC), or -1. */
static int64_t
gh_api_until(const char *p)
{
    struct tm   tm;
    ngx_uint_t  i;

    if (ngx_strlen(p) != 10 || p[4] != '-' || p[7] != '-') {
        return -1;
    }
    for (i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (p[i] < '0' || p[i] > '9')) {
            return -1;
        }
    }
    ngx_memzero(&tm, sizeof(tm));
    tm.tm_year = ngx_atoi((u_char *) p, 4) - 1900;
    tm.tm_mon = ngx_atoi((u_char *) p + 5, 2) - 1;
    tm.tm_mday = ngx_atoi((u_char *) p + 8, 2);
    if (tm.tm_year < 70 || tm.tm_year > 1100 || tm.tm_mon < 0
        || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
    {
        return -1;
    }
    return (int64_t) timegm(&tm) + 86400;
}


/* The rest of the path after the API prefix. */
static void
gh_api_rest(ngx_http_request_t *r, ngx_str_t *rest)
{
    rest->data = r->uri.data + sizeof(GH_API_PREFIX) - 1;
    rest->len = r->uri.len - (sizeof(GH_API_PREFIX) - 1);
}


/* POST reviews/{tenant}/complete|disable-flagged (?days=N): the flagged
 * people found on the event loop, then the console's review job. */
static ngx_int_t
gh_api_review_write(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, ngx_str_t *tenant, ngx_uint_t complete)
{
    gh_api_revjob_t  *rv;
    gh_rev_job_t     *rj;
    gh_api_rev_t      scan;
    ngx_int_t         answer;
    int               rc;

    rv = ngx_pcalloc(r->pool, sizeof(*rv));
    if (rv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    rj = &rv->rj;
    if (gh_api_review_args(r, w, tenant, complete ? GH_ADM_REVIEW_COMPLETE
                                                  : GH_ADM_USER_DISABLE,
                           rj->tenant, &rj->days, &answer) != NGX_OK)
    {
        return answer;
    }
    ngx_memzero(&scan, sizeof(scan));
    scan.w = w;
    rc = gh_api_review_scan(&scan, rj, !complete);
    if (rc != 0) {
        return gh_api_store_error(r, rc);
    }
    rv->refused = scan.refused;
    rv->more = scan.more;
    rj->complete = (int) complete;
    if (!complete && rj->nids == 0) {
        return gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:i,s:I,s:b}",
                           "tenant", rj->tenant, "disabled", 0,
                           "skipped", (json_int_t) rv->refused,
                           "more", rv->more));
    }
    rj->via = "access review; admin api";
    return gh_api_post(r, ctx, w, rj, &rj->actor, &rj->session,
                       rj->session_ref, sizeof(rj->session_ref),
                       gh_rev_thread, gh_api_rev_finish);
}


/* POST breakglass/request|approve|end: an API token is never a fresh
 * second factor, so request and approve need a console session. */
static ngx_int_t
gh_api_bg_write(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, ngx_str_t *op)
{
    static const char *const ops[] = { "request", "approve", "end" };
    gh_bg_job_t  *bj;
    ngx_int_t     answer;
    ngx_uint_t    i;

    for (i = 0; i < 3 && !gh_api_is(op, ops[i]); i++) { /* void */ }
    if (i == 3) {
        return gh_api_error(r, NGX_HTTP_NOT_FOUND, "no such resource");
    }
    if (gh_api_predecide(r, w, GH_ADM_BREAKGLASS, NULL, &answer) != NGX_OK)
    {
        return answer;
    }
    bj = ngx_pcalloc(r->pool, sizeof(*bj));
    if (bj == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    /* a plain refusal goes on to the thread, which audits it */
    bj->op = (int) i;
    bj->via = "critical; admin api";
    return gh_api_post(r, ctx, w, bj, &bj->actor, &bj->session,
                       bj->session_ref, sizeof(bj->session_ref),
                       gh_bg_thread, gh_api_bg_finish);
}


static void gh_api_tset_finish(ngx_http_request_t *r, gh_job_t *job);


/* POST tenants {"name","display"} (administrators): the console's
 * tenant job, op create. */
static ngx_int_t
gh_api_tenant_write(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, json_t *o)
{
    gh_ten_job_t  *tj;
    ngx_int_t      answer;

    tj = ngx_pcalloc(r->pool, sizeof(*tj));
    if (tj == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_api_str(o, "name", tj->tenant, GH_TENANT_MAX) != 0
        || tj->tenant[0] == '\0'
        || gh_api_str(o, "display", tj->display, GH_NAME_MAX) != 0)
    {
        return gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                            "expected {\"name\": \"a-z0-9-\", "
                            "\"display\": \"...\"}");
    }
    if (gh_api_predecide(r, w, GH_ADM_TENANT_CREATE, NULL, &answer)
        != NGX_OK)
    {
        return answer;
    }
    tj->op = GH_TEN_CREATE;
    tj->via = "admin api";
    return gh_api_post(r, ctx, w, tj, &tj->actor, &tj->session,
                       tj->session_ref, sizeof(tj->session_ref),
                       gh_ten_thread, gh_api_tset_finish);
}


/* The API's names of the GH_TEN_* ops (the last two: tenants/T/domains). */
static const char *const gh_api_ten_settings[GH_TEN_NOPS] = {
    "create", "profile", "mfa", "networks", "session", "signin", "domains",
    "domains"
};


static void
gh_api_tset_finish(ngx_http_request_t *r, gh_job_t *job)
{
    gh_ten_job_t  *tj = job->ext;
    ngx_int_t      rc;

    if (tj->decision != GH_ADM_ALLOW) {
        rc = gh_api_refuse(r, tj->decision, tj->why);
    } else if (job->rc != 0 && tj->err[0]) {
        rc = gh_api_error(r, tj->status, tj->err);
    } else if (tj->op == GH_TEN_CREATE && job->rc == GH_EEXIST) {
        rc = gh_api_error(r, NGX_HTTP_CONFLICT, "that tenant exists");
    } else if (tj->op == GH_TEN_CREATE
               && (job->rc == GH_EINVAL || job->rc == GH_EBADTENANT))
    {
        rc = gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                          "tenant names: 1 to 63 of a-z, 0-9 and -");
    } else if (job->rc == GH_ENOTFOUND) {
        rc = gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found");
    } else if (job->rc == GH_EINVAL || job->rc == GH_EBADTENANT) {
        rc = gh_api_error(r, NGX_HTTP_BAD_REQUEST, "malformed request");
    } else if (job->rc != 0) {
        rc = gh_api_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                          "the store is unavailable, try again");
    } else if (tj->op == GH_TEN_CREATE) {
        rc = gh_api_json(r, NGX_HTTP_CREATED, json_pack("{s:s,s:s}",
                         "name", tj->tenant, "display", tj->display));
    } else {
        rc = gh_api_json(r, NGX_HTTP_OK, json_pack("{s:s,s:s,s:s,s:s}",
                         "tenant", tj->tenant, "setting",
                         gh_api_ten_settings[tj->op],
                         "before", tj->before, "after", tj->after));
    }
    ngx_http_finalize_request(r, rc);
}


/* A duration member ("30m", "12h", "7d"; absent or "": the policy
 * file's, 0). */
static ngx_int_t
gh_api_duration(json_t *o, const char *k, int64_t *out)
{
    char  v[24];

    *out = 0;
    if (gh_api_str(o, k, v, sizeof(v) - 1) != 0) {
        return NGX_ERROR;
    }
    return v[0] == '\0' || gh_duration_parse(v, ngx_strlen(v), out) == 0
           ? NGX_OK : NGX_ERROR;
}


/* POST tenants/{name}/{profile|mfa|signin} {"value"}, .../networks
 * {"networks"}, .../session {"idle","lifetime"}, .../domains {"domain"};
 * DELETE tenants/{name}/domains/{domain}. The console's tenant job: the
 * same decisions (networks, sign-in and domains need a fresh second
 * factor, which an API token never is), checks and audit records. */
static ngx_int_t
gh_api_tenant_setting(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, ngx_str_t *name, ngx_str_t *what, ngx_str_t *domain,
    ngx_uint_t del)
{
    gh_ten_job_t  *tj;
    json_t        *o = NULL;
    char           v[24];
    int            op;
    ngx_int_t      d, rc = NGX_OK;

    if (gh_api_is(what, "domains")) {
        op = del ? GH_TEN_DOMAIN_DEL : GH_TEN_DOMAIN_ADD;
        if ((del && (domain->len == 0 || domain->len > GH_DOMAIN_MAX))
            || (!del && domain->len))
        {
            return gh_api_error(r, NGX_HTTP_NOT_FOUND, "no such resource");
        }
    } else {
        op = gh_ten_op(what->data, what->len);
        if (del || domain->len || op < GH_TEN_PROFILE
            || op > GH_TEN_SIGNIN)
        {
            return gh_api_error(r, NGX_HTTP_NOT_FOUND, "no such resource");
        }
    }
    tj = ngx_pcalloc(r->pool, sizeof(*tj));
    if (tj == NULL || name->len == 0 || name->len > GH_TENANT_MAX) {
        return tj == NULL ? NGX_HTTP_INTERNAL_SERVER_ERROR
                          : gh_api_error(r, NGX_HTTP_NOT_FOUND, "not found");
    }
    tj->op = op;
    ngx_memcpy(tj->tenant, name->data, name->len);
    /* who may ask comes first: another tenant's manager learns nothing
     * from the body's errors; a plain refusal is audited by the thread */
    if (gh_api_predecide(r, w, gh_ten_action(op), tj->tenant, &d) != NGX_OK)
    {
        return d;
    }
    if (op == GH_TEN_DOMAIN_DEL) {
        ngx_memcpy(tj->text, domain->data, domain->len);
    } else {
        o = gh_api_body(r);
        if (o == NULL) {
            return NGX_DONE;             /* answered */
        }
        switch (op) {
        case GH_TEN_NETWORKS:
            rc = json_object_get(o, "networks") != NULL
                 && gh_api_str(o, "networks", tj->text,
                               GH_TENANT_NETS_MAX) == 0 ? NGX_OK : NGX_ERROR;
            break;
        case GH_TEN_SESSION:
            rc = gh_api_duration(o, "idle", &tj->idle) == NGX_OK
                 && gh_api_duration(o, "lifetime", &tj->lifetime) == NGX_OK
                 ? NGX_OK : NGX_ERROR;
            break;
        case GH_TEN_DOMAIN_ADD:
            rc = gh_api_str(o, "domain", tj->text, GH_DOMAIN_MAX) == 0
                 && tj->text[0] ? NGX_OK : NGX_ERROR;
            break;
        default:
            tj->value = gh_api_str(o, "value", v, sizeof(v) - 1) == 0
                        ? gh_ten_value(op, (u_char *) v, ngx_strlen(v)) : -1;
            rc = tj->value >= 0 ? NGX_OK : NGX_ERROR;
        }
        json_decref(o);
    }
    /* domains are case-insensitive: stored and audited in lower case */
    if (op == GH_TEN_DOMAIN_ADD || op == GH_TEN_DOMAIN_DEL) {
        ngx_strlow((u_char *) tj->text, (u_char *) tj->text,
                   ngx_strlen(tj->text));
    }
    if (rc != NGX_OK && d == GH_ADM_ALLOW) {
        return gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                            op == GH_TEN_SESSION
                            ? "expected {\"idle\": \"30m\", \"lifetime\": "
                              "\"12h\"} (empty: the policy file's)"
                            : op == GH_TEN_NETWORKS
                            ? "expected {\"networks\": \"10.0.0.0/8,...\"} "
                              "(empty: the policy file's)"
                            : op == GH_TEN_DOMAIN_ADD
                            ? "expected {\"domain\": \"example.com\"}"
                            : "expected {\"value\": ...} with a known value");
    }
    tj->unread = rc != NGX_OK;
    tj->via = "admin api";
    return gh_api_post(r, ctx, w, tj, &tj->actor, &tj->session,
                       tj->session_ref, sizeof(tj->session_ref),
                       gh_ten_thread, gh_api_tset_finish);
}


/* POST tokens {"email","name","days"} (o), or DELETE tokens/{id} (o
 * NULL): administrators; making one needs a fresh second factor. */
static ngx_int_t
gh_api_token_write(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    gh_api_who_t *w, json_t *o, ngx_str_t *id)
{
    gh_tok_job_t  *tj;
    json_t        *v;
    const char    *why;
    char           email[GH_EMAIL_MAX + 1], name[GH_APITOKEN_NAME_MAX + 1];
    char           days[24];
    ngx_int_t      answer;
    ngx_uint_t     i;

    tj = ngx_pcalloc(r->pool, sizeof(*tj));
    if (tj == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (o != NULL) {
        v = json_object_get(o, "days");
        days[0] = '\0';
        if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1
                          || json_integer_value(v) > GH_TOKEN_DAYS_MAX))
        {
            return gh_api_error(r, NGX_HTTP_BAD_REQUEST, "days: 1 to 365");
        }
        if (v != NULL) {
            ngx_snprintf((u_char *) days, sizeof(days) - 1, "%L%Z",
                         (int64_t) json_integer_value(v));
        }
        why = gh_api_str(o, "email", email, GH_EMAIL_MAX) != 0
              || email[0] == '\0' ? "a valid email address"
              : gh_api_str(o, "name", name, GH_APITOKEN_NAME_MAX) != 0
              ? "a name of at most 63 printable characters"
              : gh_tok_fields(tj, (u_char *) email, ngx_strlen(email),
                              (u_char *) name, ngx_strlen(name),
                              (u_char *) days, ngx_strlen(days));
        if (why != NULL) {
            return gh_api_error(r, NGX_HTTP_BAD_REQUEST, why);
        }
    } else {
        for (i = 0; i < id->len && i < 16; i++) {
            if (!((id->data[i] >= '0' && id->data[i] <= '9')
                  || (id->data[i] >= 'a' && id->data[i] <= 'f')))
            {
                break;
            }
        }
        if (id->len != 16 || i != 16) {
            return gh_api_error(r, NGX_HTTP_NOT_FOUND, "no such token");
        }
        tj->op = 1;
        ngx_memcpy(tj->id, id->data, 16);
    }
    if (gh_api_allowed(r, w, o != NULL ? GH_ADM_TOKEN_CREATE
                                       : GH_ADM_TOKEN_MANAGE, NULL, &answer)
        != NGX_OK)
    {
        return answer;
    }
    tj->via = "admin api";
    return gh_api_post(r, ctx, w, tj, &tj->actor, &tj->session,
                       tj->session_ref, sizeof(tj->session_ref),
                       gh_tok_thread, gh_api_tok_finish);
}


/* Every write, after the body (if any) is read: who, CSRF, the route,
 * the decision on the event loop, then the job. */
static void
gh_api_write(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx = gh_ctx(r);
    gh_api_who_t              *w;
    gh_admin_job_t            *aj;
    gh_inv_job_t              *ij;
    gh_user_t                 *u;
    json_t                    *o = NULL;
    ngx_str_t                  rest, res, tail, id, verb, extra;
    ngx_int_t                  answer;
    ngx_uint_t                 i, del = r->method == NGX_HTTP_DELETE;
    char                       buf[512];
    const char                *why;
    int                        d;

    w = ngx_palloc(r->pool, sizeof(*w));
    u = ngx_palloc(r->pool, sizeof(*u));
    if (ctx == NULL || w == NULL || u == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_api_who(r, ctx, w, &answer) != NGX_OK) {
        ngx_http_finalize_request(r, answer);
        return;
    }
    if (gh_api_csrf(r, w) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: api write refused: csrf check failed");
        ngx_http_finalize_request(r, gh_api_error(r, NGX_HTTP_FORBIDDEN,
            "a session's write needs X-CSRF-Token (the CSRF cookie's "
            "value) and this origin"));
        return;
    }
    gh_api_rest(r, &rest);
    gh_api_split(&rest, &res, &tail);
    gh_api_split(&tail, &id, &extra);
    gh_api_split(&extra, &verb, &tail);

    if (gh_api_is(&res, "users") && id.len > 0) {
        aj = ngx_pcalloc(r->pool, sizeof(*aj));
        if (aj == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        if (gh_api_is(&verb, "roles")) {
            aj->which = del ? 6 : 5;                /* revoke : grant */
            if (del) {
                if (tail.len == 0 || tail.len > GH_ROLE_NAME_MAX) {
                    goto not_found;
                }
                ngx_memcpy(aj->role, tail.data, tail.len);
                aj->role[tail.len] = '\0';
            } else {
                if (tail.len) {
                    goto not_found;
                }
                o = gh_api_body(r);
                if (o == NULL) {
                    return;
                }
                if (gh_api_str(o, "role", aj->role, GH_ROLE_NAME_MAX) != 0
                    || aj->role[0] == '\0'
                    || gh_api_str(o, "until", buf, 10) != 0)
                {
                    json_decref(o);
                    goto bad;
                }
                json_decref(o);
                if (!gh_live_role_known(aj->role)) {
                    ngx_http_finalize_request(r, gh_api_error(r,
                        NGX_HTTP_BAD_REQUEST,
                        "the access policy does not define that role"));
                    return;
                }
                if (buf[0]) {
                    aj->until = gh_api_until(buf);
                    if (aj->until <= gh_now()) {
                        goto bad;
                    }
                }
            }
        } else if (!del && tail.len == 0) {
            for (i = 0; i < 5; i++) {
                if (gh_api_is(&verb, gh_admin_actions[i].name)) {
                    break;
                }
            }
            if (i == 5) {
                goto not_found;
            }
            aj->which = i;
        } else {
            goto not_found;
        }
        if (gh_api_target(r, w, &id, gh_admin_actions[aj->which].action,
                          aj->role[0] ? aj->role : NULL, u, &answer)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, answer);
            return;
        }
        ngx_memcpy(aj->target, u->id, sizeof(aj->target));
        aj->actor = w->a;
        aj->session = w->session;
        aj->via = "admin api";
        ngx_memcpy(aj->session_ref, w->ref, sizeof(aj->session_ref) - 1);
        answer = gh_api_job(r, ctx, w, aj, gh_admin_thread,
                            gh_api_user_finish);
        if (answer != NGX_DONE) {
            ngx_http_finalize_request(r, answer);
        }
        return;
    }

    if (gh_api_is(&res, "invitations") && !del) {
        ij = ngx_pcalloc(r->pool, sizeof(*ij));
        if (ij == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        if (id.len == 0) {
            ij->op = 0;
            o = gh_api_body(r);
            if (o == NULL) {
                return;
            }
            if (gh_api_str(o, "email", buf, GH_EMAIL_MAX) != 0
                || gh_email_normalize(buf, ngx_strlen(buf), ij->inv.email)
                   != 0
                || gh_api_str(o, "name", ij->inv.name, GH_NAME_MAX) != 0
                || gh_api_str(o, "roles", ij->inv.roles, 511) != 0
                || gh_api_str(o, "tenant", buf, GH_TENANT_MAX) != 0)
            {
                json_decref(o);
                goto bad;
            }
            json_decref(o);
            if (buf[0] && (w->a.roles & GH_ADM_R_ADMIN)) {
                ngx_cpystrn((u_char *) ij->inv.tenant, (u_char *) buf,
                            sizeof(ij->inv.tenant));
            } else {
                ngx_cpystrn((u_char *) ij->inv.tenant,
                            (u_char *) w->user.tenant,
                            sizeof(ij->inv.tenant));
            }
            if (ij->inv.roles[0] == '\0') {
                ngx_cpystrn((u_char *) ij->inv.roles, (u_char *) "member",
                            sizeof(ij->inv.roles));
            }
            d = gh_inv_roles_check(&w->a, GH_ADM_INVITE_CREATE,
                                   ij->inv.tenant, ij->inv.roles, &why);
        } else {
            if (id.len != GH_ID_HEXLEN || extra.len == 0 || tail.len
                || !(gh_api_is(&verb, "approve") || gh_api_is(&verb,
                                                              "reject")))
            {
                goto not_found;
            }
            ij->op = gh_api_is(&verb, "approve") ? 1 : 2;
            ngx_memcpy(ij->id, id.data, GH_ID_HEXLEN);
            ij->id[GH_ID_HEXLEN] = '\0';
            if (gh_invite_get(gh_store, ij->id, &ij->inv) != 0) {
                goto not_found;
            }
            d = gh_inv_roles_check(&w->a, GH_ADM_INVITE_DECIDE,
                                   ij->inv.tenant,
                                   ij->op == 1 ? ij->inv.roles : "", &why);
        }
        if (d != GH_ADM_ALLOW) {
            ngx_http_finalize_request(r,
                ngx_strcmp(why, "unknown_role") == 0
                || ngx_strcmp(why, "bad_role") == 0
                ? gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                               "the access policy does not define one of "
                               "those roles")
                : gh_api_refuse(r, d, why));
            return;
        }
        ij->actor = w->a;
        ij->session = w->session;
        ij->via = "admin api";
        ngx_memcpy(ij->session_ref, w->ref, sizeof(ij->session_ref) - 1);
        answer = gh_api_job(r, ctx, w, ij, gh_inv_thread, gh_api_inv_finish);
        if (answer != NGX_DONE) {
            ngx_http_finalize_request(r, answer);
        }
        return;
    }

    answer = NGX_DECLINED;
    if (gh_api_is(&res, "reviews") && !del && id.len > 0 && tail.len == 0
        && (gh_api_is(&verb, "complete")
            || gh_api_is(&verb, "disable-flagged")))
    {
        answer = gh_api_review_write(r, ctx, w, &id,
                                     gh_api_is(&verb, "complete"));
    } else if (gh_api_is(&res, "breakglass") && !del && id.len > 0
               && extra.len == 0)
    {
        answer = gh_api_bg_write(r, ctx, w, &id);
    } else if (gh_api_is(&res, "tenants") && id.len > 0 && verb.len > 0) {
        answer = gh_api_tenant_setting(r, ctx, w, &id, &verb, &tail, del);
    } else if (gh_api_is(&res, "tokens") && del && id.len > 0
               && extra.len == 0)
    {
        answer = gh_api_token_write(r, ctx, w, NULL, &id);
    } else if ((gh_api_is(&res, "tokens") || gh_api_is(&res, "tenants"))
               && !del && id.len == 0)
    {
        o = gh_api_body(r);
        if (o == NULL) {
            return;
        }
        answer = gh_api_is(&res, "tokens")
                 ? gh_api_token_write(r, ctx, w, o, NULL)
                 : gh_api_tenant_write(r, ctx, w, o);
        json_decref(o);
    }
    if (answer != NGX_DECLINED) {
        if (answer != NGX_DONE) {
            ngx_http_finalize_request(r, answer);
        }
        return;
    }

not_found:
    ngx_http_finalize_request(r, gh_api_error(r, NGX_HTTP_NOT_FOUND,
                                              "no such resource"));
    return;
bad:
    ngx_http_finalize_request(r, gh_api_error(r, NGX_HTTP_BAD_REQUEST,
                                              "malformed request"));
}


/* ---- the endpoint ---- */

ngx_int_t
gh_api_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    gh_api_who_t  *w;
    ngx_str_t      rest, res, tail, id, extra, ctype;
    ngx_int_t      answer, rc;

    if (r->method == NGX_HTTP_POST || r->method == NGX_HTTP_DELETE) {
        if (r->method == NGX_HTTP_POST) {
            /* JSON only: a cross-site form cannot send it without CORS */
            ctype = r->headers_in.content_type
                    ? r->headers_in.content_type->value : (ngx_str_t) {0, 0};
            if (r->headers_in.content_length_n > 0
                && (ctype.len < 16 || ngx_strncasecmp(ctype.data,
                        (u_char *) "application/json", 16) != 0))
            {
                return gh_api_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                    "send application/json");
            }
        }
        if (r->headers_in.content_length_n > GH_API_BODY_MAX) {
            return gh_api_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                "the body is too large");
        }
        r->request_body_in_single_buf = 1;
        rc = ngx_http_read_client_request_body(r, gh_api_write);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }
        return NGX_DONE;
    }
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return gh_api_error(r, NGX_HTTP_NOT_ALLOWED, "method not allowed");
    }
    w = ngx_palloc(r->pool, sizeof(*w));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gh_api_who(r, ctx, w, &answer) != NGX_OK) {
        return answer;
    }
    gh_api_rest(r, &rest);
    gh_api_split(&rest, &res, &tail);
    gh_api_split(&tail, &id, &extra);
    if (gh_api_is(&res, "tenants") && tail.len == 0) {
        return gh_api_tenants(r, w);
    }
    if (gh_api_is(&res, "users") && id.len == 0 && tail.len == 0) {
        return gh_api_users(r, w);
    }
    if (gh_api_is(&res, "users") && id.len > 0 && extra.len == 0
        && tail.len == id.len)
    {
        return gh_api_user(r, w, &id);
    }
    if (gh_api_is(&res, "invitations") && tail.len == 0) {
        return gh_api_invitations(r, w);
    }
    if (gh_api_is(&res, "tenants") && id.len > 0 && extra.len == 0
        && tail.len == id.len)
    {
        return gh_api_tenant(r, w, &id);
    }
    if (tail.len == 0) {
        if (gh_api_is(&res, "reviews")) {
            return gh_api_reviews(r, w);
        }
        if (gh_api_is(&res, "audit")) {
            return gh_api_audit(r, ctx, w);
        }
        if (gh_api_is(&res, "breakglass")) {
            return gh_api_breakglass(r, w);
        }
        if (gh_api_is(&res, "tokens")) {
            return gh_api_tokens(r, w);
        }
    }
    return gh_api_error(r, NGX_HTTP_NOT_FOUND, "no such resource");
}
