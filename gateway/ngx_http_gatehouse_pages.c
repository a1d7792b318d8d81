/* gatehouse — what the gateway sends itself: the login page, JSON answers,
 * cookies, and the demo echo backend; plus the two small parsers they need
 * (cookies, urlencoded forms). Every value that came from a client is
 * escaped for the context it lands in (HTML, JSON). */
#include "ngx_http_gatehouse.h"

#include <jansson.h>

#include "gatehouse/error.h"
#include "gatehouse/util.h"

/* Headers on every page gatehouse itself serves. The CSP allows nothing but
 * our inline style and form posts to ourselves. Referrer-Policy is
 * same-origin, not no-referrer: under no-referrer a browser sends
 * "Origin: null" with a form post, and the same-origin check of every form
 * (gh_csrf_check) would refuse our own pages in Chromium. */
static const struct {
    const char  *name;
    const char  *value;
} gh_page_headers[] = {
    { "Cache-Control", "no-store" },
    { "X-Content-Type-Options", "nosniff" },
    { "X-Frame-Options", "DENY" },
    { "Referrer-Policy", "same-origin" },
    { "Content-Security-Policy",
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
      "frame-ancestors 'none'; base-uri 'none'" },
};


static ngx_int_t
gh_add_header(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
    return NGX_OK;
}


static ngx_int_t gh_send_body(ngx_http_request_t *r, ngx_str_t *body);

/* Public data (the JWKS): cacheable, and nothing of a page's framing
 * headers, which only matter for HTML. */
ngx_int_t
gh_send_cacheable(ngx_http_request_t *r, const char *ctype, ngx_str_t *body,
    ngx_uint_t max_age)
{
    ngx_str_t  v;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = body->len;
    r->headers_out.content_type.data = (u_char *) ctype;
    r->headers_out.content_type.len = ngx_strlen(ctype);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    v.data = ngx_pnalloc(r->pool, sizeof("public, max-age=") + NGX_INT_T_LEN);
    if (v.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    v.len = ngx_sprintf(v.data, "public, max-age=%ui", max_age) - v.data;
    if (gh_add_header(r, "Cache-Control", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_str_set(&v, "nosniff");
    if (gh_add_header(r, "X-Content-Type-Options", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return gh_send_body(r, body);
}


ngx_int_t
gh_send(ngx_http_request_t *r, ngx_uint_t status, const char *ctype,
    ngx_str_t *body, ngx_str_t *location, ngx_str_t *cookies,
    ngx_uint_t ncookies)
{
    ngx_str_t     v;
    ngx_uint_t    i;
    size_t        len;

    len = body ? body->len : 0;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) ctype;
    r->headers_out.content_type.len = ngx_strlen(ctype);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    for (i = 0; i < sizeof(gh_page_headers) / sizeof(gh_page_headers[0]);
         i++)
    {
        v.data = (u_char *) gh_page_headers[i].value;
        v.len = ngx_strlen(gh_page_headers[i].value);
        if (gh_add_header(r, gh_page_headers[i].name, &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (location != NULL) {
        if (gh_add_header(r, "Location", location) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    for (i = 0; i < ncookies; i++) {
        if (gh_add_header(r, "Set-Cookie", &cookies[i]) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return gh_send_body(r, body);
}


/* Send the headers already set and the body (may be NULL or empty). */
static ngx_int_t
gh_send_body(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;
    ngx_int_t     rc;
    size_t        len;

    len = body ? body->len : 0;
    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        rc = ngx_http_send_header(r);
        return rc == NGX_ERROR ? rc : NGX_OK;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    b->last = ngx_cpymem(b->last, body->data, len);
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;
    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }
    return ngx_http_output_filter(r, &out);
}


/* Serialise a jansson value into the request pool and send it. */
ngx_int_t
gh_send_json(ngx_http_request_t *r, ngx_uint_t status, json_t *obj)
{
    ngx_str_t   body;
    char       *s;
    size_t      n;

    if (obj == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    n = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, n + 1);
    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(body.data, s, n);
    body.data[n] = '\n';
    body.len = n + 1;
    free(s);
    return gh_send(r, status, "application/json", &body, NULL, NULL, 0);
}


ngx_int_t
gh_send_error(ngx_http_request_t *r, ngx_uint_t status, const char *code,
    const char *reason)
{
    return gh_send_json(r, status,
                        json_pack("{s:s, s:s}", "error", code,
                                  "reason", reason));
}


void
gh_job_failed(ngx_http_request_t *r, int jrc, const char *what,
    const char *reason)
{
    if (jrc == GH_EDISABLED || jrc == GH_ENOTFOUND) {
        ngx_http_finalize_request(r,
            gh_send_error(r, NGX_HTTP_UNAUTHORIZED, "unauthenticated",
                          "no valid session"));
        return;
    }
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "gatehouse: %s: %s",
                  what, gh_strerror(jrc));
    ngx_http_finalize_request(r,
        gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable", reason));
}


/* The identity as the backend would see it, plus the session's deadlines. */
ngx_int_t
gh_send_whoami(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    time_t idle, time_t lifetime)
{
    json_t      *roles, *obj;
    const char  *active[GH_BINDINGS_MAX];
    size_t       i, n;
    int64_t      idle_end, abs_end;

    /* the roles in force now, as the backend's X-Gatehouse-Roles */
    roles = json_array();
    if (roles == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    n = gh_user_active_roles(&ctx->user, (int64_t) ngx_time(), active);
    for (i = 0; i < n; i++) {
        json_array_append_new(roles, json_string(active[i]));
    }

    idle_end = (int64_t) ngx_time() + idle;
    abs_end = ctx->session.created + lifetime;

    obj = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:s}",
                    "user", ctx->user.id,
                    "email", ctx->user.email,
                    "name", ctx->user.name,
                    "tenant", ctx->user.tenant,
                    "roles", roles,
                    "auth", ctx->session.amr,
                    "auth_time", (json_int_t) ctx->session.created,
                    "mfa_time", (json_int_t) ctx->session.mfa_at,
                    "expires", (json_int_t) (idle_end < abs_end
                                             ? idle_end : abs_end),
                    "request_id", (const char *) ctx->request_id);
    return gh_send_json(r, NGX_HTTP_OK, obj);
}


/* Append s to the buffer at p, HTML-escaped; returns the new end. The
 * caller sized the buffer for the worst case (6 bytes a character). */
u_char *
gh_html(u_char *p, ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        switch (s->data[i]) {
        case '<':  p = ngx_cpymem(p, "&lt;", 4); break;
        case '>':  p = ngx_cpymem(p, "&gt;", 4); break;
        case '&':  p = ngx_cpymem(p, "&amp;", 5); break;
        case '"':  p = ngx_cpymem(p, "&quot;", 6); break;
        case '\'': p = ngx_cpymem(p, "&#39;", 5); break;
        default:
            /* control characters never reach a page */
            *p++ = s->data[i] < 0x20 || s->data[i] == 0x7f ? '?' : s->data[i];
        }
    }
    return p;
}


/* The look shared by the sign-in and change-password pages. */
#define GH_PAGE_STYLE                                                        \
    "*{box-sizing:border-box}"                                               \
    "body{margin:0;min-height:100vh;display:flex;align-items:center;"        \
    "justify-content:center;background:#f3f4f6;color:#111827;"               \
    "font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"    \
    "main{width:100%;max-width:24rem;padding:2rem;background:#fff;"          \
    "border-radius:.75rem;box-shadow:0 10px 30px rgba(0,0,0,.08)}"           \
    "h1{margin:0 0 1.5rem;font-size:1.4rem;font-weight:600}"                 \
    "label{display:block;margin:1rem 0 .3rem;font-size:.9rem;color:#374151}" \
    "input{width:100%;padding:.6rem .75rem;border:1px solid #d1d5db;"        \
    "border-radius:.5rem;font-size:1rem}"                                    \
    "input:focus{outline:2px solid #2563eb;border-color:#2563eb}"            \
    "button{margin-top:1.5rem;width:100%;padding:.7rem;border:0;"            \
    "border-radius:.5rem;background:#1d4ed8;color:#fff;font-size:1rem;"      \
    "font-weight:600;cursor:pointer}"                                        \
    "button:hover{background:#1e40af}"                                       \
    ".msg{padding:.6rem .75rem;border-radius:.5rem;background:#fef2f2;"      \
    "color:#991b1b;font-size:.9rem}"                                         \
    "footer{margin-top:1.5rem;font-size:.75rem;color:#6b7280;text-align:center}"

static const char gh_login_head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<title>Sign in &middot; gatehouse</title><style>"
    GH_PAGE_STYLE
    "</style></head><body><main><h1>Sign in</h1>";

static const char gh_login_form[] =
    "<form method=\"post\" action=\"" GH_PREFIX "login\" autocomplete=\"on\">"
    "<label for=\"username\">Email</label>"
    "<input id=\"username\" name=\"username\" type=\"email\" "
    "autocomplete=\"username\" required autofocus value=\"";

static const char gh_login_tail[] =
    "<footer>Protected by gatehouse</footer></main></body></html>\n";


/* Retry-After on a 429 (ctx->retry_after seconds). */
static ngx_int_t
gh_retry_after(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_str_t  v;

    if (ctx->retry_after <= 0) {
        return NGX_OK;
    }
    v.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (v.data == NULL) {
        return NGX_ERROR;
    }
    v.len = ngx_sprintf(v.data, "%T", ctx->retry_after) - v.data;
    return gh_add_header(r, "Retry-After", &v);
}


/* Send one of our form pages: Retry-After when throttled, and the CSRF
 * cookie when this response made a fresh token. */
static ngx_int_t
gh_send_form_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *body)
{
    ngx_str_t  cookie;

    if (gh_retry_after(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!ctx->csrf_new) {
        return gh_send(r, status, "text/html; charset=utf-8", body, NULL,
                       NULL, 0);
    }
    if (gh_cookie_header(r->pool, GH_CSRF_COOKIE, &ctx->csrf, 0, &cookie)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return gh_send(r, status, "text/html; charset=utf-8", body, NULL,
                   &cookie, 1);
}


ngx_int_t
gh_send_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status, const char *title, ngx_str_t *inner,
    ngx_str_t *cookie)
{
    static const char head[] =
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,"
        "initial-scale=1\"><title>";
    static const char style[] =
        " &middot; gatehouse</title><style>" GH_PAGE_STYLE
        ".hint{font-size:.85rem;color:#4b5563}"
        "code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;"
        "word-break:break-all}"
        "select{width:100%;padding:.5rem;border:1px solid #d1d5db;"
        "border-radius:.5rem;font-size:1rem}"
        ".qr{display:flex;justify-content:center;margin:1rem 0}"
        ".qr svg{max-width:100%;height:auto}"
        "ol.codes{font-family:ui-monospace,Menlo,Consolas,monospace;"
        "font-size:1.05rem}"
        "a.button{display:block;margin-top:1.5rem;padding:.7rem;"
        "border-radius:.5rem;background:#1d4ed8;color:#fff;"
        "text-align:center;text-decoration:none;font-weight:600}"
        "</style></head><body><main><h1>";
    ngx_str_t   body, t, cookies[2];
    ngx_uint_t  n = 0;
    u_char     *p;

    t.data = (u_char *) title;
    t.len = ngx_strlen(title);
    body.data = ngx_pnalloc(r->pool, sizeof(head) + sizeof(style)
                            + 12 * t.len + inner->len
                            + sizeof(gh_login_tail) + 16);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    p = ngx_cpymem(body.data, head, sizeof(head) - 1);
    p = gh_html(p, &t);
    p = ngx_cpymem(p, style, sizeof(style) - 1);
    p = gh_html(p, &t);
    p = ngx_cpymem(p, "</h1>", 5);
    p = ngx_cpymem(p, inner->data, inner->len);
    p = ngx_cpymem(p, gh_login_tail, sizeof(gh_login_tail) - 1);
    body.len = p - body.data;

    if (gh_retry_after(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ctx->csrf_new) {
        if (gh_cookie_header(r->pool, GH_CSRF_COOKIE, &ctx->csrf, 0,
                             &cookies[n]) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        n++;
    }
    if (cookie != NULL) {
        cookies[n++] = *cookie;
    }
    return gh_send(r, status, "text/html; charset=utf-8", &body, NULL,
                   n ? cookies : NULL, n);
}


ngx_int_t
gh_send_login_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status)
{
    ngx_str_t   body;
    u_char     *p;
    size_t      cap;

    cap = sizeof(gh_login_head) + sizeof(gh_login_form)
          + sizeof(gh_login_tail) + 1024
          + 6 * (ctx->message.len + ctx->username.len + ctx->rd.len
                 + ctx->csrf.len);
    body.data = ngx_pnalloc(r->pool, cap);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, gh_login_head, sizeof(gh_login_head) - 1);
    if (ctx->message.len) {
        p = ngx_cpymem(p, "<p class=\"msg\" role=\"alert\" id=\"message\">",
                       sizeof("<p class=\"msg\" role=\"alert\" id=\"message\">")
                       - 1);
        p = gh_html(p, &ctx->message);
        p = ngx_cpymem(p, "</p>", 4);
    }
    p = ngx_cpymem(p, gh_login_form, sizeof(gh_login_form) - 1);
    p = gh_html(p, &ctx->username);
    /* email first (home-realm discovery): the password field comes on
     * the next page, unless the email leads to an identity provider */
    p = ctx->email_first
        ? ngx_sprintf(p, "\"><input type=\"hidden\" name=\"rd\" value=\"")
        : ngx_sprintf(p,
            "\"><label for=\"password\">Password</label>"
            "<input id=\"password\" name=\"password\" type=\"password\" "
            "autocomplete=\"current-password\" required%s>"
            "<input type=\"hidden\" name=\"rd\" value=\"",
            ctx->username.len ? " autofocus" : "");
    p = gh_html(p, &ctx->rd);
    p = ngx_sprintf(p, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    p = gh_html(p, &ctx->csrf);
    p = ngx_sprintf(p, "\"><button type=\"submit\">%s</button></form>",
                    ctx->email_first ? "Continue" : "Sign in");
    p = ngx_cpymem(p, gh_login_tail, sizeof(gh_login_tail) - 1);
    body.len = p - body.data;

    return gh_send_form_page(r, ctx, status, &body);
}


static const char gh_pw_head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<title>Change your password &middot; gatehouse</title><style>"
    GH_PAGE_STYLE
    ".msg ul{margin:.3rem 0 0;padding-left:1.2rem}"
    ".rules{font-size:.85rem;color:#4b5563}"
    "</style></head><body><main><h1>Change your password</h1>";

static const char gh_pw_form[] =
    "<form method=\"post\" action=\"" GH_PASSWORD_PAGE "\" autocomplete=\"off\">"
    "<label for=\"current\">Current password</label>"
    "<input id=\"current\" name=\"current\" type=\"password\" "
    "autocomplete=\"current-password\" required autofocus>"
    "<label for=\"new\">New password</label>"
    "<input id=\"new\" name=\"new\" type=\"password\" "
    "autocomplete=\"new-password\" required>"
    "<label for=\"confirm\">New password, again</label>"
    "<input id=\"confirm\" name=\"confirm\" type=\"password\" "
    "autocomplete=\"new-password\" required>"
    "<input type=\"hidden\" name=\"rd\" value=\"";

static const char gh_pw_tail[] =
    "<form method=\"post\" action=\"" GH_PREFIX "logout\">"
    "<button type=\"submit\" style=\"background:#6b7280\">Sign out</button>"
    "</form><footer>Protected by gatehouse</footer></main></body></html>\n";


/* The change-password form: the notice (and every rule the last attempt
 * failed, one per line, in the words of pwpolicy.h), the rules in force,
 * the three fields, the hidden return target and CSRF token. */
ngx_int_t
gh_send_password_page(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t status)
{
    ngx_str_t   body, line;
    ngx_uint_t  i, n;
    u_char     *p;
    size_t      cap;

    n = ctx->verdict != NULL ? ctx->verdict->n : 0;
    cap = sizeof(gh_pw_head) + sizeof(gh_pw_form) + sizeof(gh_pw_tail) + 1024
          + 6 * (ctx->message.len + ctx->policy_text.len + ctx->rd.len
                 + ctx->csrf.len + n * GH_VERDICT_TEXT) + 16 * n;
    body.data = ngx_pnalloc(r->pool, cap);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, gh_pw_head, sizeof(gh_pw_head) - 1);
    if (ctx->message.len || n) {
        p = ngx_cpymem(p, "<div class=\"msg\" role=\"alert\" id=\"message\">",
                       sizeof("<div class=\"msg\" role=\"alert\" "
                              "id=\"message\">") - 1);
        p = gh_html(p, &ctx->message);
        if (n) {
            p = ngx_cpymem(p, "<ul id=\"verdict\">", 17);
            for (i = 0; i < n; i++) {
                line.data = (u_char *) ctx->verdict->text[i];
                line.len = ngx_strlen(ctx->verdict->text[i]);
                p = ngx_cpymem(p, "<li>", 4);
                p = gh_html(p, &line);
                p = ngx_cpymem(p, "</li>", 5);
            }
            p = ngx_cpymem(p, "</ul>", 5);
        }
        p = ngx_cpymem(p, "</div>", 6);
    }
    if (ctx->policy_text.len) {
        p = ngx_cpymem(p, "<p class=\"rules\" id=\"rules\">Password rules: ",
                       sizeof("<p class=\"rules\" id=\"rules\">Password "
                              "rules: ") - 1);
        p = gh_html(p, &ctx->policy_text);
        p = ngx_cpymem(p, "</p>", 4);
    }
    p = ngx_cpymem(p, gh_pw_form, sizeof(gh_pw_form) - 1);
    p = gh_html(p, &ctx->rd);
    p = ngx_sprintf(p, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    p = gh_html(p, &ctx->csrf);
    p = ngx_sprintf(p, "\"><button type=\"submit\">Change password</button>"
                       "</form>");
    p = ngx_cpymem(p, gh_pw_tail, sizeof(gh_pw_tail) - 1);
    body.len = p - body.data;

    return gh_send_form_page(r, ctx, status, &body);
}


/* The value of cookie `name`, matched case-sensitively: a sibling host may
 * plant "__HOST-gatehouse" (browsers enforce the __Host- prefix only as
 * written), which nginx's case-insensitive lookup would take for ours —
 * cookie tossing. Pairs end at ';' or ',' as nginx reads them. Two
 * different values under the name give none (NGX_DECLINED): never guess
 * which session is meant. */
ngx_int_t
gh_cookie(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    ngx_table_elt_t  **h;
    ngx_uint_t         i, found;
    size_t             n;
    u_char            *p, *end, *q, *v, *ve;

    n = ngx_strlen(name);
    found = 0;
    h = r->headers_in.cookies.elts;
    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        p = h[i]->value.data;
        end = p + h[i]->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ';'
                               || *p == ','))
            {
                p++;
            }
            for (q = p; q < end && *q != ';' && *q != ','; q++) {
                /* void */
            }
            if ((size_t) (q - p) > n && ngx_strncmp(p, name, n) == 0) {
                for (v = p + n; v < q && (*v == ' ' || *v == '\t'); v++) {
                    /* void */
                }
                if (v < q && *v == '=') {
                    for (v++; v < q && (*v == ' ' || *v == '\t'); v++) {
                        /* void */
                    }
                    for (ve = q; ve > v && (ve[-1] == ' ' || ve[-1] == '\t');
                         ve--)
                    {
                        /* void */
                    }
                    if (found && (value->len != (size_t) (ve - v)
                                  || ngx_memcmp(value->data, v, ve - v) != 0))
                    {
                        return NGX_DECLINED;
                    }
                    value->data = v;
                    value->len = ve - v;
                    found = 1;
                }
            }
            p = q;
        }
    }
    return found ? NGX_OK : NGX_DECLINED;
}


/* __Host- cookies must be Secure, Path=/ and carry no Domain: the browser
 * then refuses any attempt by a sibling host to plant one. */
ngx_int_t
gh_cookie_header(ngx_pool_t *pool, const char *name, ngx_str_t *value,
    ngx_uint_t expire, ngx_str_t *out)
{
    static const char  attrs[] = "; Path=/; Secure; HttpOnly; SameSite=Lax";
    static const char  gone[] = "; Max-Age=0";
    size_t             nlen;
    u_char            *p;

    nlen = ngx_strlen(name);
    out->data = ngx_pnalloc(pool, nlen + 1 + value->len + sizeof(attrs)
                                  + sizeof(gone));
    if (out->data == NULL) {
        return NGX_ERROR;
    }
    p = ngx_cpymem(out->data, name, nlen);
    *p++ = '=';
    if (value->len) {
        p = ngx_cpymem(p, value->data, value->len);   /* data may be NULL */
    }
    p = ngx_cpymem(p, attrs, sizeof(attrs) - 1);
    if (expire) {
        p = ngx_cpymem(p, gone, sizeof(gone) - 1);
    }
    out->len = p - out->data;
    return NGX_OK;
}


static ngx_int_t
gh_hexval(u_char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}


int
gh_str_index(const u_char *v, size_t len, const char *const *values, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (len == ngx_strlen(values[i])
            && ngx_strncmp(v, values[i], len) == 0)
        {
            return i;
        }
    }
    return -1;
}


int
gh_form_choice(ngx_pool_t *pool, ngx_str_t *body, const char *field,
    const char *const *values, int n, int dflt)
{
    ngx_str_t  v;

    if (gh_form_field(pool, body, field, 16, &v) != NGX_OK) {
        return dflt;
    }
    return gh_str_index(v.data, v.len, values, n);
}


ngx_int_t
gh_form_field(ngx_pool_t *pool, ngx_str_t *body, const char *name,
    size_t max, ngx_str_t *out)
{
    u_char     *p, *end, *amp, *eq, *dst;
    size_t      nlen;
    ngx_int_t   hi, lo;

    nlen = ngx_strlen(name);
    p = body->data;
    end = body->data + body->len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }
        eq = ngx_strlchr(p, amp, '=');
        if (eq != NULL && (size_t) (eq - p) == nlen
            && ngx_strncmp(p, name, nlen) == 0)
        {
            /* decoding never grows: the raw length bounds the output */
            if ((size_t) (amp - eq - 1) > 3 * max) {
                return NGX_ERROR;
            }
            out->data = ngx_pnalloc(pool, (amp - eq) + 1);
            if (out->data == NULL) {
                return NGX_ERROR;
            }
            dst = out->data;
            for (p = eq + 1; p < amp; p++) {
                if (*p == '+') {
                    *dst++ = ' ';
                } else if (*p == '%') {
                    if (amp - p < 3) {
                        return NGX_ERROR;
                    }
                    hi = gh_hexval(p[1]);
                    lo = gh_hexval(p[2]);
                    if (hi < 0 || lo < 0) {
                        return NGX_ERROR;
                    }
                    *dst++ = (u_char) (hi << 4 | lo);
                    p += 2;
                } else {
                    *dst++ = *p;
                }
            }
            out->len = dst - out->data;
            *dst = '\0';
            if (out->len > max) {
                gh_wipe(out->data, out->len);
                return NGX_ERROR;
            }
            return NGX_OK;
        }
        p = amp + 1;
    }
    return NGX_DECLINED;
}


ngx_int_t
gh_urlencode(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             i;
    u_char             c, *p;

    out->data = ngx_pnalloc(pool, in->len * 3 + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }
    p = out->data;
    for (i = 0; i < in->len; i++) {
        c = in->data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~' || c == '/')
        {
            *p++ = c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }
    out->len = p - out->data;
    return NGX_OK;
}


/* The demo backend: answers with what it received, so a person (or a test)
 * sees exactly which identity headers the gateway forwarded. Repeated
 * headers are joined with ", ". */
ngx_int_t
gh_echo_handler(ngx_http_request_t *r)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i;
    ngx_int_t         rc;
    json_t           *headers, *old, *obj;
    char              name[256];
    size_t            n;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    headers = json_object();
    if (headers == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            n = ngx_min(h[i].key.len, sizeof(name) - 1);
            ngx_strlow((u_char *) name, h[i].key.data, n);
            name[n] = '\0';
            old = json_object_get(headers, name);
            if (old != NULL) {
                char   *joined;
                size_t  olen = json_string_length(old);

                joined = malloc(olen + 2 + h[i].value.len + 1);
                if (joined == NULL) {
                    json_decref(headers);
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
                memcpy(joined, json_string_value(old), olen);
                memcpy(joined + olen, ", ", 2);
                memcpy(joined + olen + 2, h[i].value.data, h[i].value.len);
                json_object_set_new(headers, name,
                    json_stringn(joined, olen + 2 + h[i].value.len));
                free(joined);
            } else {
                json_object_set_new(headers, name,
                    json_stringn((const char *) h[i].value.data,
                                 h[i].value.len));
            }
        }
    }

    obj = json_pack("{s:s%, s:s%, s:o}",
                    "method", (const char *) r->method_name.data,
                    r->method_name.len,
                    "path", (const char *) r->unparsed_uri.data,
                    r->unparsed_uri.len,
                    "headers", headers);
    return gh_send_json(r, NGX_HTTP_OK, obj);
}


/* The 403 answer: a reason code and the request id — enough for a person
 * to ask an administrator, nothing about the policy itself. */
ngx_int_t
gh_send_forbidden(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_uint_t html)
{
    static const char  head[] =
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<title>Access denied &middot; gatehouse</title><style>"
        "body{margin:0;min-height:100vh;display:flex;align-items:center;"
        "justify-content:center;background:#f3f4f6;color:#111827;"
        "font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
        "main{max-width:28rem;padding:2rem;background:#fff;border-radius:.75rem;"
        "box-shadow:0 10px 30px rgba(0,0,0,.08)}"
        "h1{margin:0 0 1rem;font-size:1.4rem}code{background:#f3f4f6;"
        "padding:.1rem .3rem;border-radius:.25rem}"
        "</style></head><body><main><h1>Access denied</h1>"
        "<p>You are signed in, but this page is not open to you.</p>"
        "<p>Reason: <code id=\"reason\">";
    static const char  mid[] = "</code><br>Request: <code id=\"request-id\">";
    static const char  tail[] =
        "</code></p><p>Ask an administrator if you need access.</p>"
        "</main></body></html>\n";
    const char        *reason;
    ngx_str_t          body;
    u_char            *p;
    size_t             rlen;

    reason = ctx->reason ? ctx->reason : "denied";
    if (!html) {
        return gh_send_json(r, NGX_HTTP_FORBIDDEN,
                            json_pack("{s:s, s:s, s:s}", "error", "forbidden",
                                      "reason", reason,
                                      "request_id",
                                      (const char *) ctx->request_id));
    }

    /* reason codes are static [a-z_] strings and the id is hex: no escaping
     * needed, but the buffer is sized for them exactly */
    rlen = ngx_strlen(reason);
    body.data = ngx_pnalloc(r->pool, sizeof(head) + rlen + sizeof(mid) + 32
                                     + sizeof(tail));
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    p = ngx_cpymem(body.data, head, sizeof(head) - 1);
    p = ngx_cpymem(p, reason, rlen);
    p = ngx_cpymem(p, mid, sizeof(mid) - 1);
    p = ngx_cpymem(p, ctx->request_id, 32);
    p = ngx_cpymem(p, tail, sizeof(tail) - 1);
    body.len = p - body.data;
    return gh_send(r, NGX_HTTP_FORBIDDEN, "text/html; charset=utf-8", &body,
                   NULL, NULL, 0);
}
