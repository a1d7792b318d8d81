/* gatehouse — nginx glue: directives, phase handlers, sessions, thread tasks.
 *
 * A request's way through (ARCHITECTURE.md §3):
 *   post-read  strip client-sent identity headers
 *   access     address -> app -> session -> decision; on allow, the
 *              $gatehouse_* variables carry the identity to proxy_set_header;
 *              /.gatehouse/ endpoints go to our own content handler
 *   content    login, logout, whoami, healthz under /.gatehouse/
 *   header     HSTS on every response of a gatehouse server
 *
 * Work that blocks — Argon2id and durable LMDB writes — runs in nginx's
 * thread pool; the event loop only reads the LMDB map.
 */
#include "ngx_http_gatehouse.h"
#include "ngx_http_gatehouse_admin.h"
#include "gatehouse/keys.h"
#include "gatehouse/saml.h"

#include <sys/resource.h>

#include <openssl/rand.h>
#include <openssl/crypto.h>

#include <jansson.h>

#include "gatehouse/audit.h"
#include "gatehouse/invite.h"
#include "gatehouse/error.h"
#include "gatehouse/login.h"
#include "gatehouse/path.h"
#include "gatehouse/redirect.h"

static ngx_int_t ngx_http_gatehouse_preconf(ngx_conf_t *cf);
static ngx_int_t ngx_http_gatehouse_postconf(ngx_conf_t *cf);
static void *ngx_http_gatehouse_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_gatehouse_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_gatehouse_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_gatehouse_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_gatehouse_init_process(ngx_cycle_t *cycle);
static void ngx_http_gatehouse_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_gatehouse_echo(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_gatehouse_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *gh_conf_set_str_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_gatehouse_post_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_gatehouse_access(ngx_http_request_t *r);
static ngx_int_t ngx_http_gatehouse_endpoint(ngx_http_request_t *r);
static ngx_int_t ngx_http_gatehouse_refuse(ngx_http_request_t *r);
static ngx_int_t ngx_http_gatehouse_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_gatehouse_log(ngx_http_request_t *r);
static void gh_dlog_flush(ngx_open_file_t *file, ngx_log_t *log);
static void gh_netset_cleanup(void *data);
static gh_netset_t *gh_conf_netset(ngx_conf_t *cf, ngx_array_t *values,
    const char **defaults, const char *what);

static const char  *gh_metrics_default[] = { "127.0.0.1/32", "::1/128", NULL };
static char *ngx_http_gatehouse_decision_log(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_gatehouse_login_throttle(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_gatehouse_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

/* Per-worker state: opened after fork (LMDB's rule), closed at exit. */
gh_store_t             *gh_store;
gh_login_ctx_t          gh_login;
ngx_uint_t              gh_login_ready;
static ngx_uint_t       gh_touch_pending;
static gh_policy_t     *gh_policy;          /* compiled live policy */
/* sessions over by the gateway's own lifetimes (a tenant only shortens
 * them) are refused anyway; they go at the user's next sign-in */
static gh_session_policy_t  gh_prune_pol;
static uint64_t         gh_policy_ver;      /* its store version */
static uint64_t         gh_policy_bad_ver;  /* a version that failed to compile */


static ngx_command_t  ngx_http_gatehouse_commands[] = {

    { ngx_string("gatehouse"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_gatehouse_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_loc_conf_t, enable),
      NULL },

    { ngx_string("gatehouse_app"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_loc_conf_t, app),
      NULL },

    { ngx_string("gatehouse_hsts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_loc_conf_t, hsts),
      NULL },

    { ngx_string("gatehouse_echo"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_gatehouse_echo,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("gatehouse_data"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, data),
      NULL },

    { ngx_string("gatehouse_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, pool_name),
      NULL },

    { ngx_string("gatehouse_session_idle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, idle),
      NULL },

    { ngx_string("gatehouse_session_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, lifetime),
      NULL },

    { ngx_string("gatehouse_redirect_hosts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      gh_conf_set_str_list,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, allowed_hosts),
      NULL },

    { ngx_string("gatehouse_trusted_proxies"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      gh_conf_set_str_list,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, trusted),
      NULL },

    { ngx_string("gatehouse_decision_log"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_gatehouse_decision_log,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("gatehouse_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, public_url),
      NULL },

    { ngx_string("gatehouse_jwt_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, jwt_lifetime),
      NULL },

    { ngx_string("gatehouse_metrics_allow"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      gh_conf_set_str_list,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, metrics_from),
      NULL },

    { ngx_string("gatehouse_jwt_audience"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_loc_conf_t, audience),
      NULL },

    { ngx_string("gatehouse_password_blocklist"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, blocklist_path),
      NULL },

    { ngx_string("gatehouse_login_throttle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_gatehouse_login_throttle,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("gatehouse_mfa_totp_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, totp_window),
      NULL },

    { ngx_string("gatehouse_mfa_hotp_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, hotp_window),
      NULL },

    { ngx_string("gatehouse_strip_header"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      gh_conf_set_str_list,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_gatehouse_main_conf_t, strip),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_gatehouse_module_ctx = {
    ngx_http_gatehouse_preconf,            /* preconfiguration */
    ngx_http_gatehouse_postconf,           /* postconfiguration */
    ngx_http_gatehouse_create_main_conf,   /* create main configuration */
    ngx_http_gatehouse_init_main_conf,     /* init main configuration */
    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */
    ngx_http_gatehouse_create_loc_conf,    /* create location configuration */
    ngx_http_gatehouse_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_gatehouse_module = {
    NGX_MODULE_V1,
    &ngx_http_gatehouse_module_ctx,        /* module context */
    ngx_http_gatehouse_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_gatehouse_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_gatehouse_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* ---- variables: what proxy_set_header forwards ---- */

enum {
    GH_VAR_USER, GH_VAR_EMAIL, GH_VAR_NAME, GH_VAR_TENANT, GH_VAR_ROLES,
    GH_VAR_AUTH, GH_VAR_REQUEST_ID, GH_VAR_APP, GH_VAR_CLIENT_ADDR,
    GH_VAR_ASSERTION
};

static ngx_http_variable_t  ngx_http_gatehouse_vars[] = {
    { ngx_string("gatehouse_user"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_email"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_EMAIL, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_name"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_NAME, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_tenant"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_TENANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_roles"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_ROLES, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_auth"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_AUTH, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_request_id"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_REQUEST_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_app"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_APP, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_client_addr"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_CLIENT_ADDR, NGX_HTTP_VAR_NOCACHEABLE, 0 },
    { ngx_string("gatehouse_assertion"), NULL, ngx_http_gatehouse_variable,
      GH_VAR_ASSERTION, 0, 0 },
      ngx_http_null_variable
};


/* Request ids: a random per-worker prefix (drawn once, after fork) and a
 * counter. Unique across workers and restarts without a system call or a
 * DRBG call per request (OpenSSL's RAND_bytes checks getpid() each time).
 * Ids are not secrets. */
static u_char    gh_reqid_prefix[17];
static uint64_t  gh_reqid_counter;

static ngx_int_t
gh_reqid_init(void)
{
    u_char  raw[8];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }
    ngx_hex_dump(gh_reqid_prefix, raw, sizeof(raw));
    gh_reqid_prefix[16] = '\0';
    gh_reqid_counter = 0;
    return NGX_OK;
}


/* A zeroed context but for its three big buffers (~6 KB of ~7): the two
 * role texts are made empty strings and the bindings are not read while
 * nbindings is 0. Zeroing the whole of it was a tenth of the module's cost
 * per request. */
#define GH_CTX_USER(f)  (offsetof(ngx_http_gatehouse_ctx_t, user)            \
                         + offsetof(gh_user_t, f))

static void
gh_ctx_clear(ngx_http_gatehouse_ctx_t *ctx)
{
#define GH_CTX_SIZE(f)  sizeof(((ngx_http_gatehouse_ctx_t *) 0)->f)
    static const size_t  skip[3][2] = {
        { offsetof(ngx_http_gatehouse_ctx_t, roles_text),
          GH_CTX_SIZE(roles_text) },
        { GH_CTX_USER(roles), GH_CTX_SIZE(user.roles) },
        { GH_CTX_USER(bindings), GH_CTX_SIZE(user.bindings) }
    };
    u_char      *p = (u_char *) ctx;
    size_t       at;
    ngx_uint_t   i;

    /* the skipped ranges, in order and inside the context */
    _Static_assert(offsetof(ngx_http_gatehouse_ctx_t, roles_text)
                   + GH_CTX_SIZE(roles_text) <= GH_CTX_USER(roles)
                   && GH_CTX_USER(roles) + GH_CTX_SIZE(user.roles)
                      <= GH_CTX_USER(bindings),
                   "gh_ctx_clear: context layout");

    at = 0;
    for (i = 0; i < 3; i++) {
        ngx_memzero(p + at, skip[i][0] - at);
        at = skip[i][0] + skip[i][1];
    }
    ngx_memzero(p + at, sizeof(*ctx) - at);
    ctx->roles_text[0] = '\0';
    ctx->user.roles[0] = '\0';
}


/* The request's context, created on first use with a fresh request id. */
ngx_http_gatehouse_ctx_t *
gh_ctx(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_gatehouse_module);
    if (ctx != NULL) {
        return ctx;
    }

    ctx = ngx_palloc(r->pool, sizeof(*ctx));
    if (ctx == NULL) {
        return NULL;
    }
    gh_ctx_clear(ctx);

    if (gh_reqid_prefix[0] == '\0' && gh_reqid_init() != NGX_OK) {
        return NULL;
    }
    ngx_sprintf(ctx->request_id, "%s%016xL", gh_reqid_prefix,
                ++gh_reqid_counter);
    ctx->request_id[32] = '\0';

    ngx_http_set_ctx(r->main, ctx, ngx_http_gatehouse_module);
    return ctx;
}


static ngx_int_t
ngx_http_gatehouse_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_gatehouse_ctx_t       *ctx;
    ngx_http_gatehouse_loc_conf_t  *lcf;
    const char                     *s;

    if (data == GH_VAR_REQUEST_ID) {
        ctx = gh_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
        s = (const char *) ctx->request_id;
        goto found;
    }

    if (data == GH_VAR_APP) {
        lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);
        if (lcf->app.len == 0) {
            v->not_found = 1;
            return NGX_OK;
        }
        v->data = lcf->app.data;
        v->len = lcf->app.len;
        goto set;
    }

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_gatehouse_module);
    if (data == GH_VAR_CLIENT_ADDR && ctx != NULL && ctx->addr_text[0]) {
        s = (const char *) ctx->addr_text;
        goto found;
    }
    if (ctx == NULL || !ctx->authenticated) {
        v->not_found = 1;
        return NGX_OK;
    }
    if (data == GH_VAR_ASSERTION) {
        return gh_jwt_variable(r, v, ctx);
    }

    switch (data) {
    case GH_VAR_USER:   s = ctx->user.id; break;
    case GH_VAR_EMAIL:  s = ctx->user.email; break;
    case GH_VAR_NAME:   s = ctx->user.name; break;
    case GH_VAR_TENANT: s = ctx->user.tenant; break;
    case GH_VAR_ROLES:  s = ctx->roles_text; break;
    case GH_VAR_AUTH:   s = ctx->session.amr; break;
    default:
        v->not_found = 1;
        return NGX_OK;
    }

found:
    v->data = (u_char *) s;
    v->len = ngx_strlen(s);

set:
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    return NGX_OK;
}


/* ---- configuration ---- */

static ngx_int_t
ngx_http_gatehouse_preconf(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_gatehouse_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}


static void *
ngx_http_gatehouse_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_gatehouse_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(*mcf));
    if (mcf == NULL) {
        return NULL;
    }
    mcf->idle = NGX_CONF_UNSET;
    mcf->lifetime = NGX_CONF_UNSET;
    mcf->allowed_hosts = NGX_CONF_UNSET_PTR;
    mcf->strip = NGX_CONF_UNSET_PTR;
    mcf->trusted = NGX_CONF_UNSET_PTR;
    mcf->metrics_from = NGX_CONF_UNSET_PTR;
    gh_throttle_conf_default(&mcf->throttle);
    mcf->jwt_lifetime = NGX_CONF_UNSET;
    mcf->totp_window = NGX_CONF_UNSET;
    mcf->hotp_window = NGX_CONF_UNSET;
    return mcf;
}


static char *
ngx_http_gatehouse_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_gatehouse_main_conf_t  *mcf = conf;
    ngx_str_t                       *h;
    ngx_uint_t                       i;
    u_char                          *p;

    ngx_conf_init_value(mcf->idle, GH_SESSION_IDLE_DEFAULT);
    ngx_conf_init_value(mcf->lifetime, GH_SESSION_LIFETIME_DEFAULT);
    if (mcf->idle <= 0 || mcf->lifetime <= 0) {
        return "gatehouse: session lifetimes must be positive";
    }

    if (mcf->pool_name.len == 0) {
        ngx_str_set(&mcf->pool_name, "gatehouse");
    }

    if (mcf->allowed_hosts == NGX_CONF_UNSET_PTR) {
        mcf->allowed_hosts = NULL;
    }
    if (mcf->strip == NGX_CONF_UNSET_PTR) {
        mcf->strip = NULL;
    }
    if (mcf->trusted == NGX_CONF_UNSET_PTR) {
        mcf->trusted = NULL;
    }

    /* Address lists, compiled once for the life of this configuration:
     * trusted proxies (none by default), metrics readers (loopback). */
    mcf->trusted_set = gh_conf_netset(cf, mcf->trusted, NULL,
                                      "trusted proxy");
    if (mcf->trusted_set == NULL) {
        return NGX_CONF_ERROR;
    }
    mcf->metrics_allow = gh_conf_netset(cf,
        mcf->metrics_from == NGX_CONF_UNSET_PTR ? NULL : mcf->metrics_from,
        gh_metrics_default, "metrics network");
    if (mcf->metrics_allow == NULL) {
        return NGX_CONF_ERROR;
    }

    /* JWT issuer and lifetime. */
    if (mcf->public_url.len == 0) {
        ngx_str_set(&mcf->public_url, "gatehouse");
    }
    ngx_conf_init_value(mcf->jwt_lifetime, 300);
    if (mcf->jwt_lifetime < 2 * 60) {
        return "gatehouse: gatehouse_jwt_lifetime must be at least 2m "
               "(tokens are re-signed a minute before they expire)";
    }

    /* Second-factor windows: how far from now (TOTP steps either side)
     * and ahead (HOTP counters) a code is accepted. */
    ngx_conf_init_value(mcf->totp_window, GH_OTP_TOTP_WINDOW);
    ngx_conf_init_value(mcf->hotp_window, GH_OTP_HOTP_WINDOW);
    if (mcf->totp_window < 0 || mcf->totp_window > 10) {
        return "gatehouse: gatehouse_mfa_totp_window must be 0 to 10";
    }
    if (mcf->hotp_window < 1 || mcf->hotp_window > 100) {
        return "gatehouse: gatehouse_mfa_hotp_window must be 1 to 100";
    }

    /* The redirect allow list as C strings, for gh_redirect_ok(). */
    if (mcf->allowed_hosts != NULL) {
        mcf->nhosts = mcf->allowed_hosts->nelts;
        mcf->hosts = ngx_pcalloc(cf->pool, sizeof(char *) * mcf->nhosts);
        if (mcf->hosts == NULL) {
            return NGX_CONF_ERROR;
        }
        h = mcf->allowed_hosts->elts;
        for (i = 0; i < mcf->nhosts; i++) {
            p = ngx_pnalloc(cf->pool, h[i].len + 1);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }
            ngx_memcpy(p, h[i].data, h[i].len);
            p[h[i].len] = '\0';
            mcf->hosts[i] = (const char *) p;
        }
    }

    /* Extra header names to strip, lower-cased once here. */
    if (mcf->strip != NULL) {
        h = mcf->strip->elts;
        for (i = 0; i < mcf->strip->nelts; i++) {
            ngx_strlow(h[i].data, h[i].data, h[i].len);
        }
    }
    return NGX_CONF_OK;
}


/* A compiled address set from a directive's values (or, when there are
 * none, from defaults, a NULL-terminated list), freed with the
 * configuration. NULL (after logging) on a malformed network. */
static gh_netset_t *
gh_conf_netset(ngx_conf_t *cf, ngx_array_t *values, const char **defaults,
    const char *what)
{
    ngx_pool_cleanup_t  *cln;
    gh_netset_t         *set;
    ngx_str_t           *v;
    ngx_uint_t           i;

    set = gh_netset_new();
    if (set == NULL) {
        return NULL;
    }
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        gh_netset_free(set);
        return NULL;
    }
    cln->handler = gh_netset_cleanup;
    cln->data = set;

    if (values != NULL && values->nelts > 0) {
        v = values->elts;
        for (i = 0; i < values->nelts; i++) {
            if (gh_netset_add(set, (const char *) v[i].data, v[i].len) != 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "gatehouse: invalid %s \"%V\"", what,
                                   &v[i]);
                return NULL;
            }
        }
    } else {
        for (i = 0; defaults != NULL && defaults[i] != NULL; i++) {
            if (gh_netset_add(set, defaults[i], ngx_strlen(defaults[i]))
                != 0)
            {
                return NULL;
            }
        }
    }
    return gh_netset_compile(set) == 0 ? set : NULL;
}


/* Like ngx_conf_set_str_array_slot, but every argument of the line counts
 * ("gatehouse_strip_header A B;" strips both), and lines add up. */
static char *
gh_conf_set_str_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **a;
    ngx_str_t     *value, *s;
    ngx_uint_t     i;

    a = (ngx_array_t **) ((char *) conf + cmd->offset);
    if (*a == NGX_CONF_UNSET_PTR || *a == NULL) {
        *a = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }
    value = cf->args->elts;
    for (i = 1; i < cf->args->nelts; i++) {
        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }
        *s = value[i];
    }
    return NGX_CONF_OK;
}


static void
gh_netset_cleanup(void *data)
{
    gh_netset_free(data);
}


/* "gatehouse_decision_log PATH|off": JSON lines, one per decided request. */
static char *
ngx_http_gatehouse_decision_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_gatehouse_main_conf_t  *mcf = conf;
    ngx_str_t                       *value;

    if (mcf->decision_log != NULL) {
        return "is duplicate";
    }
    value = cf->args->elts;
    if (ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }
    mcf->decision_log = ngx_conf_open_file(cf->cycle, &value[1]);
    if (mcf->decision_log == NULL) {
        return NGX_CONF_ERROR;
    }
    mcf->decision_log->flush = gh_dlog_flush;   /* buffered: see the log */
    return NGX_CONF_OK;
}


/* "gatehouse_login_throttle [failures=N] [lockout=N] [max_delay=TIME]
 *  [address=N/TIME|off]": the login throttle's numbers (throttle.h;
 * defaults 5, 100, 15m, 30/10m). */
static char *
ngx_http_gatehouse_login_throttle(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_gatehouse_main_conf_t  *mcf = conf;
    gh_throttle_conf_t               c;
    ngx_str_t                       *value, v, w;
    ngx_uint_t                       i;
    ngx_int_t                        n;
    time_t                           t;
    u_char                          *slash;

    if (mcf->throttle_set) {
        return "is duplicate";
    }
    c = mcf->throttle;
    value = cf->args->elts;
    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n == NGX_ERROR) {
                goto invalid;
            }
            c.free_failures = (unsigned) n;
        } else if (ngx_strncmp(value[i].data, "lockout=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR) {
                goto invalid;
            }
            c.lockout = (unsigned) n;
        } else if (ngx_strncmp(value[i].data, "max_delay=", 10) == 0) {
            v.data = value[i].data + 10;
            v.len = value[i].len - 10;
            t = ngx_parse_time(&v, 1);
            if (t == (time_t) NGX_ERROR || t < 1) {
                goto invalid;
            }
            c.delay_max = (int64_t) t * 1000;
        } else if (ngx_strcmp(value[i].data, "address=off") == 0) {
            c.addr_limit = 0;
        } else if (ngx_strncmp(value[i].data, "address=", 8) == 0) {
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;
            slash = ngx_strlchr(v.data, v.data + v.len, '/');
            if (slash == NULL) {
                goto invalid;
            }
            n = ngx_atoi(v.data, slash - v.data);
            w.data = slash + 1;
            w.len = v.data + v.len - w.data;
            t = ngx_parse_time(&w, 1);
            if (n == NGX_ERROR || n < 1 || t == (time_t) NGX_ERROR || t < 1) {
                goto invalid;
            }
            c.addr_limit = (unsigned) n;
            c.addr_window = (int64_t) t * 1000;
        } else {
            goto invalid;
        }
    }
    if (gh_throttle_conf_check(&c) != 0) {
        return "has inconsistent values: need 1 <= failures <= lockout "
               "<= 100, max_delay up to 24h, an address window of 1s to 24h";
    }
    mcf->throttle = c;
    mcf->throttle_set = 1;
    return NGX_CONF_OK;

invalid:
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "gatehouse: invalid \"%V\" in \"%V\"", &value[i],
                       &cmd->name);
    return NGX_CONF_ERROR;
}


static void
gh_blocklist_cleanup(void *data)
{
    gh_blocklist_free(data);
}


static void *
ngx_http_gatehouse_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_gatehouse_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(*lcf));
    if (lcf == NULL) {
        return NULL;
    }
    lcf->enable = NGX_CONF_UNSET;
    lcf->hsts = NGX_CONF_UNSET;
    lcf->echo = NGX_CONF_UNSET;
    return lcf;
}


static char *
ngx_http_gatehouse_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_gatehouse_loc_conf_t  *prev = parent;
    ngx_http_gatehouse_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->app, prev->app, "");
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    /* HSTS follows the module unless configured: a gatehouse server sends it
     * on every response, error pages included. */
    ngx_conf_merge_value(conf->hsts, prev->hsts, conf->enable);
    ngx_conf_merge_value(conf->echo, prev->echo, 0);
    return NGX_CONF_OK;
}


/* "gatehouse on|off": remember that some server uses us, so that the store
 * is opened in the workers and the thread pool exists. */
static char *
ngx_http_gatehouse_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    char                            *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }
    if (((ngx_http_gatehouse_loc_conf_t *) conf)->enable) {
        mcf = ngx_http_conf_get_module_main_conf(cf,
                                                 ngx_http_gatehouse_module);
        mcf->used = 1;
    }
    return NGX_CONF_OK;
}


static char *
ngx_http_gatehouse_echo(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = gh_echo_handler;
    ((ngx_http_gatehouse_loc_conf_t *) conf)->echo = 1;
    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_gatehouse_postconf(ngx_conf_t *cf)
{
    ngx_http_core_main_conf_t       *cmcf;
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_http_handler_pt             *h;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_gatehouse_module);

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_gatehouse_header_filter;

    if (!mcf->used) {
        return NGX_OK;
    }

    if (mcf->data.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "gatehouse: \"gatehouse_data\" is required");
        return NGX_ERROR;
    }

    /* The master key's path, for the jobs and the key reload that unseal
     * with it (each reads the file when it needs the key, then wipes it). */
    mcf->master_key.len = mcf->data.len + sizeof("/" GH_MASTER_KEY_FILE) - 1;
    if (mcf->master_key.len >= NGX_MAX_PATH) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "gatehouse: \"gatehouse_data\" is too long");
        return NGX_ERROR;
    }
    mcf->master_key.data = ngx_pnalloc(cf->pool, mcf->master_key.len + 1);
    if (mcf->master_key.data == NULL) {
        return NGX_ERROR;
    }
    ngx_sprintf(mcf->master_key.data, "%V/%s%Z", &mcf->data,
                GH_MASTER_KEY_FILE);

    /* The password blocklist, loaded once here in the master: the workers
     * share its pages; a list that cannot be read stops the start. */
    {
        ngx_pool_cleanup_t  *cln;
        const char          *paths[2];
        char                 err[512];
        size_t               n = 0;

        paths[n++] = GH_BLOCKLIST_DEFAULT;
        if (mcf->blocklist_path.len) {
            /* relative to nginx's prefix; the result is NUL-terminated */
            if (ngx_conf_full_name(cf->cycle, &mcf->blocklist_path, 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            paths[n++] = (const char *) mcf->blocklist_path.data;
        }
        if (gh_blocklist_load(&mcf->blocklist, paths, n, err, sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "gatehouse: %s", err);
            return NGX_ERROR;
        }
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            gh_blocklist_free(mcf->blocklist);
            mcf->blocklist = NULL;
            return NGX_ERROR;
        }
        cln->handler = gh_blocklist_cleanup;
        cln->data = mcf->blocklist;
    }

    /* Registers the pool name; nginx then requires a matching
     * "thread_pool NAME threads=N;" line in the main context (only the pool
     * named "default" is created implicitly). */
    if (ngx_thread_pool_add(cf, &mcf->pool_name) == NULL) {
        return NGX_ERROR;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_gatehouse_post_read;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_gatehouse_access;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    *h = ngx_http_gatehouse_log;

    return NGX_OK;
}


/* What every request of a keep-alive connection repeats: the text of the
 * client address (inet_ntop-like formatting) and the store key of the
 * session cookie (a base64 decode and a SHA-256), each kept with what it
 * was made from and used only when that is the same again. One entry per
 * connection slot of the worker, valid while the slot holds the same
 * connection (c->number), wiped when it closes. HTTP/2 streams have no
 * slot of their own and go without. */
typedef struct {
    ngx_atomic_uint_t  number;
    gh_addr_t          peer;
    u_char             peer_text[GH_ADDR_TEXT_MAX];
    u_char             token[GH_TOKEN_LEN];
    uint8_t            key[32];
    unsigned           has_peer:1;
    unsigned           has_key:1;
} gh_conn_memo_t;

static gh_conn_memo_t  *gh_memo;
static ngx_uint_t       gh_memo_n;

static void
gh_conn_memo_wipe(void *data)
{
    gh_conn_memo_t  *m = data;

    ngx_explicit_memzero(m, sizeof(*m));
}


/* The memo of r's connection, or NULL. */
static gh_conn_memo_t *
gh_conn_memo(ngx_http_request_t *r)
{
    ngx_connection_t    *c = r->connection;
    ngx_pool_cleanup_t  *cln;
    gh_conn_memo_t      *m;
    ngx_uint_t           i;

    if (gh_memo == NULL || c < ngx_cycle->connections
        || (i = c - ngx_cycle->connections) >= gh_memo_n)
    {
        return NULL;
    }
    m = &gh_memo[i];
    if (m->number != c->number) {
        cln = ngx_pool_cleanup_add(c->pool, 0);
        if (cln == NULL) {
            return NULL;
        }
        ngx_explicit_memzero(m, sizeof(*m));
        m->number = c->number;
        cln->handler = gh_conn_memo_wipe;
        cln->data = m;
    }
    return m;
}


/* The store key of a session cookie: the connection's last one when the
 * cookie is the same (compared in constant time), else gh_token_key. */
static int
gh_cookie_key(ngx_http_request_t *r, ngx_str_t *token, uint8_t key[32])
{
    gh_conn_memo_t  *m;
    int              rc;

    m = gh_conn_memo(r);
    if (m != NULL && m->has_key && token->len == GH_TOKEN_LEN
        && CRYPTO_memcmp(m->token, token->data, GH_TOKEN_LEN) == 0)
    {
        ngx_memcpy(key, m->key, 32);
        return 0;
    }
    rc = gh_token_key((const char *) token->data, token->len, key);
    if (rc == 0 && m != NULL) {
        ngx_memcpy(m->token, token->data, GH_TOKEN_LEN);
        ngx_memcpy(m->key, key, 32);
        m->has_key = 1;
    }
    return rc;
}


/* Open the store and make the dummy hash in each worker, after fork. A
 * worker that cannot open the store stays up and answers 503: it fails
 * closed, and healthz says so. */
static ngx_int_t
ngx_http_gatehouse_init_process(ngx_cycle_t *cycle)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    char                             dir[NGX_MAX_PATH];
    int                              rc;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_gatehouse_module);
    if (mcf == NULL || !mcf->used) {
        return NGX_OK;
    }

    mcf->pool = ngx_thread_pool_get(cycle, &mcf->pool_name);
    if (mcf->pool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "gatehouse: thread pool \"%V\" not found",
                      &mcf->pool_name);
        return NGX_ERROR;
    }

    if (mcf->data.len >= sizeof(dir)) {
        return NGX_ERROR;
    }
    ngx_memcpy(dir, mcf->data.data, mcf->data.len);
    dir[mcf->data.len] = '\0';

    if (gh_otp_init() != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "gatehouse: liboath failed to initialise; second "
                      "factors will be refused");
    }
    if (gh_saml_init() != 0) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "gatehouse: lasso failed to initialise; SAML sign-in "
                      "will be refused");
    }

    rc = gh_store_open(&gh_store, dir, 0);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "gatehouse: cannot open store in \"%s\": %s; "
                      "every request will be refused", dir, gh_strerror(rc));
        gh_store = NULL;
        return NGX_OK;
    }

    rc = gh_audit_open(dir);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "gatehouse: cannot open the audit log in \"%s\": %s",
                      dir, gh_strerror(rc));
    }
    gh_audit_use_store(gh_store);   /* its signing key signs checkpoints */

    if (gh_store_read_cache(gh_store) != 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "gatehouse: no memory for the record cache");
    }
    if (gh_memo == NULL) {
        gh_memo = ngx_calloc(cycle->connection_n * sizeof(gh_conn_memo_t),
                             cycle->log);
        gh_memo_n = gh_memo != NULL ? cycle->connection_n : 0;
    }

    rc = gh_login_ctx_init(&gh_login, gh_store);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "gatehouse: cannot prepare password login: %s",
                      gh_strerror(rc));
        return NGX_OK;
    }
    gh_login.throttle = mcf->throttle;
    gh_prune_pol.idle = mcf->idle;
    gh_prune_pol.lifetime = mcf->lifetime;
    gh_login_ready = 1;
    return NGX_OK;
}


static void
ngx_http_gatehouse_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_gatehouse_main_conf_t  *mcf;

    if (gh_store != NULL) {
        gh_store_close(gh_store);
        gh_store = NULL;
    }
    gh_wipe(&gh_login, sizeof(gh_login));
    gh_login_ready = 0;
    if (gh_memo != NULL) {
        /* wiped, not freed: a connection's cleanup may still point here */
        ngx_explicit_memzero(gh_memo, gh_memo_n * sizeof(gh_conn_memo_t));
    }
    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_gatehouse_module);
    if (mcf != NULL && mcf->decision_log != NULL) {
        gh_dlog_flush(mcf->decision_log, cycle->log);
    }
    gh_audit_close();
    gh_policy_free(gh_policy);
    gh_policy = NULL;
    gh_jwt_exit();
}


/* ---- post-read and access ---- */

/* 1 when a lower-case header name must never reach a backend from a
 * client: our prefix (with '_' read as '-', as some frameworks do), a
 * header some backends route or dispatch by instead of the request line the
 * gateway decided on (IIS/Symfony/Zend path overrides, method overrides),
 * or a configured name. */
static ngx_uint_t
gh_forbidden_header(ngx_http_gatehouse_main_conf_t *mcf, ngx_table_elt_t *h)
{
    static const char   prefix[] = "x-gatehouse-";
    static const char  *override[] = {
        "x-original-url", "x-rewrite-url", "x-original-uri", "x-override-url",
        "x-http-method-override", "x-http-method", "x-method-override"
    };
    ngx_str_t          *s;
    ngx_uint_t          i, k;
    u_char              c;

    for (k = 0; k < sizeof(override) / sizeof(override[0]); k++) {
        if (h->key.len != ngx_strlen(override[k])) {
            continue;
        }
        for (i = 0; i < h->key.len; i++) {
            c = ngx_tolower(h->key.data[i]);
            if ((c == '_' ? '-' : c) != (u_char) override[k][i]) {
                break;
            }
        }
        if (i == h->key.len) {
            return 1;
        }
    }

    if (h->key.len >= sizeof(prefix) - 1) {
        for (i = 0; i < sizeof(prefix) - 1; i++) {
            c = ngx_tolower(h->key.data[i]);
            if (c == '_') {
                c = '-';
            }
            if (c != (u_char) prefix[i]) {
                break;
            }
        }
        if (i == sizeof(prefix) - 1) {
            return 1;
        }
    }

    if (mcf->strip != NULL) {
        s = mcf->strip->elts;
        for (i = 0; i < mcf->strip->nelts; i++) {
            if (s[i].len == h->key.len
                && ngx_strncasecmp(s[i].data, h->key.data, h->key.len) == 0)
            {
                return 1;
            }
        }
    }
    return 0;
}


/* 1 for a Cookie header left empty once our cookies were taken out. */
static ngx_uint_t
gh_empty_cookie_header(ngx_http_gatehouse_main_conf_t *mcf,
    ngx_table_elt_t *h)
{
    return h->value.len == 0 && h->key.len == 6
           && ngx_strncasecmp(h->key.data, (u_char *) "cookie", 6) == 0;
}


/* Remove every request header for which drop() says 1. nginx's header
 * list has no delete, so when (rarely) one matches, the list is rebuilt
 * without it; the common case allocates nothing. Returns the number
 * removed or NGX_ERROR. */
static ngx_int_t
gh_drop_headers(ngx_http_request_t *r, ngx_http_gatehouse_main_conf_t *mcf,
    ngx_uint_t (*drop)(ngx_http_gatehouse_main_conf_t *, ngx_table_elt_t *))
{
    ngx_list_t        fresh;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *n;
    ngx_uint_t        i, found;

    found = 0;
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            found += drop(mcf, &h[i]);
        }
    }
    if (found == 0) {
        return 0;
    }

    if (ngx_list_init(&fresh, r->pool, 20, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (drop(mcf, &h[i])) {
                continue;
            }
            n = ngx_list_push(&fresh);
            if (n == NULL) {
                return NGX_ERROR;
            }
            *n = h[i];
        }
    }
    r->headers_in.headers = fresh;
    return found;
}


static ngx_int_t
gh_strip_identity_headers(ngx_http_request_t *r,
    ngx_http_gatehouse_main_conf_t *mcf)
{
    ngx_int_t  n;

    n = gh_drop_headers(r, mcf, gh_forbidden_header);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }
    if (n > 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "gatehouse: removed %i client-sent identity header(s)",
                      n);
    }
    return NGX_OK;
}


/* 1 when a cookie pair (leading blanks trimmed) is one of ours: the name
 * in any case, then optional blanks, then '=' or the end. nginx's own
 * cookie lookup and many backends match names case-insensitively and allow
 * "name =value", so strip every spelling of ours any of them could read. */
static ngx_uint_t
gh_own_cookie(u_char *p, size_t len)
{
    static const char  *own[] = { GH_COOKIE_NAME, GH_CSRF_COOKIE };
    ngx_uint_t          i;
    size_t              n, k;

    for (i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        n = ngx_strlen(own[i]);
        if (len < n || ngx_strncasecmp(p, (u_char *) own[i], n) != 0) {
            continue;
        }
        for (k = n; k < len && (p[k] == ' ' || p[k] == '\t'); k++) {
            /* void */
        }
        if (k == len || p[k] == '=') {
            return 1;
        }
    }
    return 0;
}


/* Rewrite one Cookie header without our cookies. Pairs end at ';' or ','
 * (nginx splits on both, so "a=b, __Host-gatehouse=t" carries a session);
 * the others are kept byte for byte with their separators. Returns 1 when
 * nothing is left, 0 otherwise, NGX_ERROR on allocation failure. */
static ngx_int_t
gh_filter_cookie_header(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    u_char  *p, *end, *q, *a, *out, *o;

    out = ngx_pnalloc(r->pool, h->value.len + 1);
    if (out == NULL) {
        return NGX_ERROR;
    }
    o = out;
    p = h->value.data;
    end = p + h->value.len;
    while (p < end) {
        for (q = p; q < end && *q != ';' && *q != ','; q++) {
            /* void */
        }
        for (a = p; a < q && (*a == ' ' || *a == '\t'); a++) {
            /* void */
        }
        if (a < q && gh_own_cookie(a, q - a)) {
            p = q < end ? q + 1 : q;          /* the pair and its separator */
            continue;
        }
        o = ngx_cpymem(o, p, (q < end ? q + 1 : q) - p);
        p = q < end ? q + 1 : q;
    }
    /* no separator or blank left dangling at either end */
    while (o > out && (o[-1] == ';' || o[-1] == ',' || o[-1] == ' '
                       || o[-1] == '\t'))
    {
        o--;
    }
    for (p = out; p < o && (*p == ';' || *p == ',' || *p == ' '
                            || *p == '\t'); p++)
    {
        /* void */
    }
    h->value.data = p;
    h->value.len = o - p;
    return o == p;
}


/* Our cookies stay between the browser and the gateway: a backend never
 * receives a session token it could replay. Other cookies pass unchanged
 * (re-joined with "; "). Walks the live header list (what the proxy
 * sends), not r->headers_in.cookies: once gh_drop_headers rebuilt the
 * list, those pointers name stale copies. */
static ngx_int_t
gh_strip_own_cookies(ngx_http_request_t *r,
    ngx_http_gatehouse_main_conf_t *mcf)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i, emptied;
    ngx_int_t         rc;

    emptied = 0;
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len != 6
                || ngx_strncasecmp(h[i].key.data, (u_char *) "cookie", 6)
                   != 0
                || ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    (u_char *) "__Host-gatehouse",
                                    sizeof("__Host-gatehouse") - 2) == NULL)
            {
                continue;
            }
            rc = gh_filter_cookie_header(r, &h[i]);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }
            emptied += rc;
        }
    }
    if (emptied && gh_drop_headers(r, mcf, gh_empty_cookie_header)
                   == NGX_ERROR)
    {
        return NGX_ERROR;
    }
    return NGX_OK;
}


static ngx_int_t
ngx_http_gatehouse_post_read(ngx_http_request_t *r)
{
    ngx_http_gatehouse_loc_conf_t   *lcf;
    ngx_http_gatehouse_main_conf_t  *mcf;

    /* Here r->loc_conf is the server's: strip on every gatehouse server
     * before anything (rewrite, other modules) can look at the headers. */
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);
    if (!lcf->enable) {
        return NGX_DECLINED;
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    if (gh_strip_identity_headers(r, mcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return NGX_DECLINED;
}


static void gh_post_touch(ngx_http_request_t *r,
    ngx_http_gatehouse_main_conf_t *mcf, ngx_http_gatehouse_ctx_t *ctx);
static ngx_int_t gh_policy_current(ngx_http_gatehouse_main_conf_t *mcf,
    uint64_t ver, uint64_t keys_ver, ngx_log_t *log);

/* Resolve the session cookie into ctx. Missing, malformed, unknown,
 * expired and disabled all leave ctx unauthenticated; a store failure sets
 * store_failed so the caller refuses rather than guesses. */
static void
gh_resolve_session(ngx_http_request_t *r, ngx_http_gatehouse_main_conf_t *mcf,
    ngx_http_gatehouse_ctx_t *ctx)
{
    gh_session_policy_t  pol;
    ngx_str_t            token;
    uint64_t             vers[2];
    ngx_uint_t           cookie;
    int                  rc;

    if (gh_store == NULL) {
        ctx->store_failed = 1;
        return;
    }

    /* One read transaction: the policy and key-set versions, and the
     * session with its user when there is a well-formed cookie. */
    pol.idle = mcf->idle;
    pol.lifetime = mcf->lifetime;
    rc = GH_EINVAL;
    cookie = gh_cookie(r, GH_COOKIE_NAME, &token) == NGX_OK;
    if (cookie) {
        rc = gh_cookie_key(r, &token, ctx->key);
        if (rc == 0) {
            rc = gh_session_resolve_key(gh_store, ctx->key, &pol,
                                        (int64_t) ngx_time(), &ctx->session,
                                        &ctx->user, vers);
        }
    }
    if (rc == GH_EINVAL
        && gh_request_read(gh_store, NULL, NULL, NULL, &vers[0], &vers[1])
           != 0)
    {
        rc = GH_ESTORE;
    }
    if (rc == 0 || rc == GH_EINVAL || rc == GH_ENOTFOUND
        || rc == GH_EEXPIRED || rc == GH_EDISABLED)
    {
        /* the store answered: the policy it holds now applies */
        if (gh_policy_current(mcf, vers[0], vers[1], r->connection->log)
            != NGX_OK)
        {
            ngx_memzero(&ctx->session, sizeof(ctx->session));
            ngx_memzero(&ctx->user, sizeof(ctx->user));
            ctx->store_failed = 1;
            return;
        }
        if (!cookie) {
            return;
        }
    }
    switch (rc) {
    case 0:
        /* A session that must first change its password is, everywhere
         * but the change page and logout, no session at all. */
        /* ... and one that waits for its second factor is no session
         * anywhere but the second-factor pages and logout */
        if (ctx->session.flags & GH_SESSION_MFA) {
            ctx->mfa_pending = 1;
        } else if (ctx->session.flags & GH_SESSION_PWCHANGE) {
            ctx->pwchange = 1;
        } else {
            ctx->authenticated = 1;
        }
        if (gh_session_needs_touch(&ctx->session, &pol, ngx_time())) {
            gh_post_touch(r, mcf, ctx);
        }
        return;
    case GH_EINVAL:
    case GH_ENOTFOUND:
    case GH_EEXPIRED:
    case GH_EDISABLED:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "gatehouse: session refused: %s", gh_strerror(rc));
        return;
    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: session lookup failed: %s",
                      gh_strerror(rc));
        ctx->store_failed = 1;
        return;
    }
}


/* The client address: the TCP peer, or — only when the peer is a trusted
 * proxy — the X-Forwarded-For chain read right to left, stopping at the
 * first hop that is not itself a trusted proxy. The same address is used
 * for decisions and logs. NGX_DECLINED when a trusted proxy sent a chain we
 * cannot read (the request is refused: guessing could open an allowlist). */
static ngx_int_t
gh_client_addr(ngx_http_request_t *r, ngx_http_gatehouse_main_conf_t *mcf,
    ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *xff[8];
    ngx_uint_t        i, n;
    ngx_int_t         k;
    u_char           *p, *end, *start;
    gh_addr_t         hop;
    gh_conn_memo_t   *m;

    if (gh_addr_from_sockaddr(r->connection->sockaddr, &ctx->addr) != 0) {
        return NGX_DECLINED;
    }

    if (gh_netset_count(mcf->trusted_set) > 0
        && gh_netset_contains(mcf->trusted_set, &ctx->addr))
    {
        n = 0;
        for (part = &r->headers_in.headers.part; part; part = part->next) {
            h = part->elts;
            for (i = 0; i < part->nelts; i++) {
                if (h[i].key.len == sizeof("x-forwarded-for") - 1
                    && ngx_strncasecmp(h[i].key.data,
                                       (u_char *) "x-forwarded-for",
                                       h[i].key.len) == 0)
                {
                    if (n == sizeof(xff) / sizeof(xff[0])) {
                        return NGX_DECLINED;
                    }
                    xff[n++] = &h[i];
                }
            }
        }

        /* Right to left over all the headers' items, in order. */
        for (k = (ngx_int_t) n - 1; k >= 0; k--) {
            start = xff[k]->value.data;
            end = start + xff[k]->value.len;
            if (end == start) {
                continue;                   /* an empty line adds no hop */
            }
            for ( ;; ) {
                p = end;
                while (p > start && p[-1] != ',') {
                    p--;
                }
                /* item [p, end), trimmed */
                {
                    u_char *a = p, *b = end;

                    while (a < b && (*a == ' ' || *a == '\t')) a++;
                    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
                    if (a == b
                        || gh_addr_parse((const char *) a, b - a, &hop) != 0)
                    {
                        return NGX_DECLINED;
                    }
                }
                ctx->addr = hop;
                if (!gh_netset_contains(mcf->trusted_set, &hop)) {
                    goto done;
                }
                if (p == start) {
                    break;
                }
                end = p - 1;    /* the item before the ',', even if empty */
            }
        }
    }

done:
    m = gh_conn_memo(r);
    if (m != NULL && m->has_peer
        && ngx_memcmp(&m->peer, &ctx->addr, sizeof(gh_addr_t)) == 0)
    {
        ngx_memcpy(ctx->addr_text, m->peer_text, GH_ADDR_TEXT_MAX);
        return NGX_OK;
    }
    gh_addr_format(&ctx->addr, (char *) ctx->addr_text);
    if (m != NULL) {
        m->peer = ctx->addr;
        ngx_memcpy(m->peer_text, ctx->addr_text, GH_ADDR_TEXT_MAX);
        m->has_peer = 1;
    }
    return NGX_OK;
}


/* The compiled policy for the live stored version: one LMDB read per
 * request; a recompile only when an operator applied a new file. A text
 * that fails to compile (it was validated at apply: only version skew can
 * cause this) leaves the previous policy live. NGX_ERROR when the store
 * cannot be read — callers refuse. */
static ngx_int_t
gh_policy_current(ngx_http_gatehouse_main_conf_t *mcf, uint64_t ver,
    uint64_t keys_ver, ngx_log_t *log)
{
    gh_policy_t  *fresh;
    char         *text, err[256];
    size_t        len;
    int           rc;

    if (gh_jwt_keys_refresh(gh_store, keys_ver,
                            (const char *) mcf->master_key.data, log)
        != NGX_OK
        || gh_tenant_table_refresh(gh_store, ver, log) != NGX_OK)
    {
        return NGX_ERROR;
    }
    if (ver == gh_policy_ver || ver == gh_policy_bad_ver) {
        return NGX_OK;
    }
    if (ver == 0) {
        gh_policy_free(gh_policy);
        gh_policy = NULL;
        gh_policy_ver = 0;
        return NGX_OK;
    }

    rc = gh_policy_get(gh_store, &text, &len, &ver);
    if (rc == GH_ENOTFOUND) {
        /* the version moved (a tenant's MFA level) but no file was ever
         * applied: still no policy (remembered, so the text is not looked
         * for again until the version moves) */
        gh_policy_free(gh_policy);
        gh_policy = NULL;
        gh_policy_ver = ver;
        return NGX_OK;
    }
    if (rc != 0) {
        return NGX_ERROR;
    }
    rc = gh_policy_compile(text, len, &fresh, err, sizeof(err));
    free(text);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "gatehouse: stored policy version %uL does not compile "
                      "(%s): keeping version %uL", ver, err, gh_policy_ver);
        gh_policy_bad_ver = ver;
        return NGX_OK;
    }
    gh_policy_free(gh_policy);
    gh_policy = fresh;
    gh_policy_ver = ver;
    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "gatehouse: policy version %uL is live", ver);
    return NGX_OK;
}


/* The compiled live policy of this worker (NULL before the first), for
 * event-loop readers only: it is replaced on the event loop. */
const gh_policy_t *
gh_policy_live(void)
{
    return gh_policy;
}


/* The session lifetimes in force for a tenant: its record's idle and
 * lifetime, else its policy file section's, else the gateway's. */
void
gh_session_policy_of(ngx_http_gatehouse_main_conf_t *mcf, const char *tenant,
    gh_session_policy_t *pol)
{
    const gh_policy_tenant_t  *t;
    int64_t                    idle, lifetime;

    gh_tenant_lifetimes(tenant, &idle, &lifetime);
    t = gh_policy != NULL ? gh_policy_tenant(gh_policy, tenant) : NULL;
    if (idle == 0 && t != NULL) {
        idle = t->idle;
    }
    if (lifetime == 0 && t != NULL) {
        lifetime = t->lifetime;
    }
    pol->idle = idle ? idle : mcf->idle;
    pol->lifetime = lifetime ? lifetime : mcf->lifetime;
}


/* A tenant may shorten the gateway's session lifetimes (the gateway's own
 * limits were already applied when the session was resolved). */
static void
gh_tenant_session_check(ngx_http_gatehouse_main_conf_t *mcf,
    ngx_http_gatehouse_ctx_t *ctx)
{
    gh_session_policy_t  pol;

    if (!ctx->authenticated && !ctx->pwchange && !ctx->mfa_pending) {
        return;
    }
    gh_session_policy_of(mcf, ctx->user.tenant, &pol);
    if ((pol.idle != mcf->idle || pol.lifetime != mcf->lifetime)
        && gh_session_live(&ctx->session, &pol, ngx_time()) != 0)
    {
        ctx->authenticated = 0;
        ctx->pwchange = 0;
        ctx->mfa_pending = 0;
    }
}


/* The raw path must read one way only and be the path nginx decided on
 * (include/gatehouse/path.h). */
static ngx_int_t
gh_path_agrees(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    u_char      *q;
    size_t       rawlen, outlen;
    const char  *why;
    char        *out;

    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    rawlen = (q ? q : r->unparsed_uri.data + r->unparsed_uri.len)
             - r->unparsed_uri.data;
    out = ngx_pnalloc(r->pool, rawlen + 1);
    if (out == NULL) {
        return NGX_ERROR;
    }
    if (gh_path_canonical((const char *) r->unparsed_uri.data, rawlen, out,
                          rawlen + 1, &outlen, &why) != 0
        || outlen != r->uri.len
        || ngx_memcmp(out, r->uri.data, outlen) != 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: refused ambiguous path: %s",
                      why ? why : "differs from the normalised path");
        return NGX_DECLINED;
    }
    return NGX_OK;
}


/* Run the policy for this request; fills ctx's decision fields and the
 * active-roles text. No allocation on this path. */
static void
gh_decide(ngx_http_request_t *r, ngx_http_gatehouse_loc_conf_t *lcf,
    ngx_http_gatehouse_ctx_t *ctx)
{
    const char     *roles[GH_BINDINGS_MAX];
    gh_request_t    req;
    gh_decision_t   d;
    char            app[GH_RULE_NAME_MAX + 1];
    size_t          n, i, off, len;

    n = gh_user_active_roles(&ctx->user, ngx_time(), roles);
    off = 0;
    for (i = 0; i < n; i++) {
        len = ngx_strlen(roles[i]);
        if (off + len + 2 > sizeof(ctx->roles_text)) {
            break;
        }
        if (off) {
            ctx->roles_text[off++] = ',';
        }
        ngx_memcpy(ctx->roles_text + off, roles[i], len);
        off += len;
    }
    ctx->roles_text[off] = '\0';

    ctx->decided = 1;
    ctx->allowed = 0;
    ctx->rule[0] = '\0';

    if (gh_policy == NULL) {
        ctx->reason = "no_policy";
        return;
    }
    if (lcf->app.len == 0 || lcf->app.len >= sizeof(app)) {
        ctx->reason = "unknown_app";
        return;
    }
    ngx_memcpy(app, lcf->app.data, lcf->app.len);
    app[lcf->app.len] = '\0';

    req.tenant = ctx->user.tenant;
    req.roles = roles;
    req.nroles = n;
    req.method = gh_method_bit((const char *) r->method_name.data,
                               r->method_name.len);
    req.path = (const char *) r->uri.data;
    req.path_len = r->uri.len;
    req.addr = &ctx->addr;
    req.mfa = ngx_strstr(ctx->session.amr, "otp") != NULL;
    req.tenant_mfa_required = gh_mfa_tenant_level(ctx->user.tenant)
                              == GH_MFA_REQUIRED;
    req.tenant_nets = gh_tenant_nets(ctx->user.tenant);

    if (gh_policy_decide(gh_policy, app, &req, &d, NULL, NULL) != 0) {
        ctx->reason = "bad_request";
        return;
    }
    ctx->allowed = d.allow ? 1 : 0;
    ctx->reason = d.reason;
    if (d.rule != NULL) {
        ngx_cpystrn(ctx->rule, (u_char *) d.rule, sizeof(ctx->rule));
    }
}


static ngx_int_t
ngx_http_gatehouse_access(ngx_http_request_t *r)
{
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_gatehouse_loc_conf_t   *lcf;
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_http_gatehouse_ctx_t        *ctx;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);
    if (!lcf->enable) {
        return NGX_DECLINED;
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);

    ctx = gh_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    r->content_handler = ngx_http_gatehouse_refuse;   /* until allowed */

    /* 1. identity headers: gone before any decision (again here, for a
     *    location-level "gatehouse on" the post-read phase did not see). */
    if (!ctx->stripped) {
        if (gh_strip_identity_headers(r, mcf) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ctx->stripped = 1;
    }

    /* 2. address: the peer, or a trusted proxy's forwarded client. */
    if (gh_client_addr(r, mcf, ctx) != NGX_OK) {
        ctx->status = NGX_HTTP_BAD_REQUEST;
        ctx->reason = "bad_forwarded_for";
        return NGX_OK;
    }

    /* 3. session: cookie -> LMDB read -> live session of an enabled user,
     *    within its tenant's lifetimes (a session that must change its
     *    password first stays unauthenticated: ctx->pwchange). */
    gh_resolve_session(r, mcf, ctx);        /* no store: store_failed */
    gh_tenant_session_check(mcf, ctx);

    /* 4. our own endpoints answer for themselves, whatever the location's
     *    content handler (proxy_pass) would have been. */
    if (r->uri.len >= sizeof(GH_PREFIX) - 1
        && ngx_strncmp(r->uri.data, GH_PREFIX, sizeof(GH_PREFIX) - 1) == 0)
    {
        r->content_handler = ngx_http_gatehouse_endpoint;
        return NGX_OK;
    }

    if (ctx->store_failed) {
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ctx->reason = "store_unavailable";
        return NGX_OK;
    }
    if (!ctx->authenticated) {
        /* no session — or one restricted to changing its password, which
         * the refusal sends to the change page */
        ctx->status = NGX_HTTP_UNAUTHORIZED;
        ctx->reason = ctx->mfa_pending ? "second_factor_required"
                      : ctx->pwchange ? "password_change_required"
                      : "unauthenticated";
        return NGX_OK;
    }

    /* 5. the path we decide on is the path we proxy. */
    if (gh_path_agrees(r, ctx) != NGX_OK) {
        ctx->status = NGX_HTTP_BAD_REQUEST;
        ctx->reason = "ambiguous_path";
        return NGX_OK;
    }

    /* Only an account with an end can be the break-glass one: every
     * request it makes is a critical line (one more read, for it alone). */
    if (ctx->user.expires != 0) {
        gh_admin_breakglass_use(r, ctx->user.id, ctx->user.email);
    }

    /* 6. decision: tenant, networks, roles, rules. Default deny. */
    gh_decide(r, lcf, ctx);
    if (!ctx->allowed) {
        ctx->status = NGX_HTTP_FORBIDDEN;
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: deny user=%s tenant=%s app=%V "
                      "reason=%s rule=%s", ctx->user.id, ctx->user.tenant,
                      &lcf->app, ctx->reason, ctx->rule);
        return NGX_OK;
    }

    /* 7. allowed: our cookies stay with us; the variables carry the rest. */
    if (gh_strip_own_cookies(r, mcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    r->content_handler = clcf->handler;
    return NGX_OK;
}


/* The first request header of that (lower-case) name, or NULL. */
static ngx_table_elt_t *
gh_header_in(ngx_http_request_t *r, const char *name)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i;
    size_t            n;

    n = ngx_strlen(name);
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == n
                && ngx_strncasecmp(h[i].key.data, (u_char *) name, n) == 0)
            {
                return &h[i];
            }
        }
    }
    return NULL;
}


ngx_uint_t
gh_wants_html(ngx_http_request_t *r)
{
    ngx_table_elt_t  *accept;

    accept = gh_header_in(r, "accept");
    return accept != NULL
           && ngx_strlcasestrn(accept->value.data,
                               accept->value.data + accept->value.len,
                               (u_char *) "text/html", 9 - 1) != NULL;
}


/* Content handler for a refused request: 503 when we could not decide,
 * 400 for an unreadable request, 403 with a reason code for a denial, and
 * for no session a 302 to the login page (browsers) or a 401 (API). */
static ngx_int_t
ngx_http_gatehouse_refuse(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  rd, loc;
    ngx_int_t                  rc;
    const char                *page;
    u_char                    *p;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = gh_ctx(r);
    if (ctx == NULL || ctx->status == 0
        || ctx->status == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "unavailable", "the session store is unavailable");
    }
    if (ctx->status == NGX_HTTP_BAD_REQUEST) {
        return gh_send_error(r, NGX_HTTP_BAD_REQUEST, ctx->reason,
                             "the request cannot be decided safely");
    }
    /* step-up: a browser whose session lacks the second factor an app
     * requires proves it, then comes back here */
    if (ctx->status == NGX_HTTP_FORBIDDEN
        && !(ctx->reason != NULL && ngx_strcmp(ctx->reason, "mfa_required") == 0
             && gh_wants_html(r)))
    {
        return gh_send_forbidden(r, ctx, gh_wants_html(r));
    }

    /* a signed-in user who must change the password first goes there; one
     * who owes the second factor (after the password, or for step-up)
     * goes to that page */
    page = ctx->mfa_pending || ctx->status == NGX_HTTP_FORBIDDEN
           ? GH_MFA_PAGE "?rd="
           : ctx->pwchange ? GH_PASSWORD_PAGE "?rd=" : GH_PREFIX "login?rd=";
    if (!gh_wants_html(r)) {
        if (ctx->mfa_pending) {
            return gh_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                 "second_factor_required",
                                 "finish signing in at " GH_MFA_PAGE);
        }
        if (ctx->pwchange) {
            return gh_send_error(r, NGX_HTTP_FORBIDDEN,
                                 "password_change_required",
                                 "change the password at " GH_PASSWORD_PAGE);
        }
        return gh_send_error(r, NGX_HTTP_UNAUTHORIZED, "unauthenticated",
                             "sign in at " GH_PREFIX "login");
    }

    if (gh_urlencode(r->pool, &r->unparsed_uri, &rd) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    loc.len = ngx_strlen(page) + rd.len;
    loc.data = ngx_pnalloc(r->pool, loc.len);
    if (loc.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    p = ngx_cpymem(loc.data, page, ngx_strlen(page));
    ngx_memcpy(p, rd.data, rd.len);

    return gh_send(r, NGX_HTTP_MOVED_TEMPORARILY, "text/plain", NULL, &loc,
                   NULL, 0);
}


/* ---- log phase: one decision record per decided request ---- */

/* Records are built with ngx_sprintf and a JSON escaper and buffered per
 * worker, as access_log buffer= flush= does: json_pack, json_dumps and a
 * write(2) per request cost more than the rest of the module together. The
 * buffer goes to the file when the next record would not fit, at most
 * GH_DLOG_FLUSH ms after its first record, before nginx reopens the file,
 * and at exit: a crash loses at most that second of records. */
#define GH_DLOG_BUF    65536
#define GH_DLOG_FLUSH  1000      /* ms */

static u_char            gh_dlog_buf[GH_DLOG_BUF];
static size_t            gh_dlog_len;
static ngx_open_file_t  *gh_dlog_file;
static ngx_event_t       gh_dlog_ev;

static void
gh_dlog_write(ngx_fd_t fd, u_char *p, size_t n, ngx_log_t *log)
{
    ssize_t  w;

    w = ngx_write_fd(fd, p, n);
    if (w != (ssize_t) n) {
        ngx_log_error(NGX_LOG_ALERT, log, w == -1 ? ngx_errno : 0,
                      "gatehouse: decision log write of %uz bytes: %z",
                      n, w);
    }
}


/* The file's flush hook (reopen) and the buffer's timer. */
static void
gh_dlog_flush(ngx_open_file_t *file, ngx_log_t *log)
{
    if (gh_dlog_len > 0 && file != NULL && file->fd != NGX_INVALID_FILE) {
        gh_dlog_write(file->fd, gh_dlog_buf, gh_dlog_len, log);
    }
    gh_dlog_len = 0;
    if (gh_dlog_ev.timer_set) {
        ngx_del_timer(&gh_dlog_ev);
    }
}


static void
gh_dlog_timer(ngx_event_t *ev)
{
    gh_dlog_flush(gh_dlog_file, ev->log);
}


/* 1 when [p, p + n) is UTF-8 as jansson accepts it: no overlong forms,
 * surrogates or code points past U+10FFFF. */
static ngx_uint_t
gh_utf8_valid(const u_char *p, size_t n)
{
    const u_char  *end = p + n;
    size_t         k, i;
    u_char         c;

    while (p < end) {
        c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
        } else {
            return 0;
        }
        if ((size_t) (end - p) <= k) {
            return 0;
        }
        for (i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
        }
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)
            || (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
        {
            return 0;
        }
        p += k + 1;
    }
    return 1;
}


/* "\"" + s escaped as jansson writes it (", \ and control characters) +
 * "\""; at most 6 * n + 2 bytes. */
static u_char *
gh_json_str(u_char *d, const u_char *s, size_t n)
{
    static const u_char  hex[] = "0123456789abcdef";
    size_t               i;
    u_char               c;

    *d++ = '"';
    for (i = 0; i < n; i++) {
        c = s[i];
        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = c;
        } else if (c >= 0x20) {
            *d++ = c;
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r'
                   || c == '\t')
        {
            *d++ = '\\';
            *d++ = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n'
                   : c == '\r' ? 'r' : 't';
        } else {
            d = ngx_cpymem(d, "\\u00", 4);
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];
        }
    }
    *d++ = '"';
    return d;
}


static ngx_int_t
ngx_http_gatehouse_log(ngx_http_request_t *r)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_http_gatehouse_loc_conf_t   *lcf;
    ngx_http_gatehouse_ctx_t        *ctx;
    ngx_str_t                        f[8], path;
    ngx_uint_t                       i;
    size_t                           need;
    u_char                          *line, *p;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    ctx = ngx_http_get_module_ctx(r->main, ngx_http_gatehouse_module);
    if (mcf->decision_log == NULL || ctx == NULL || !ctx->decided
        || r != r->main)
    {
        return NGX_OK;
    }
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);

    /* a path that is not UTF-8 is logged percent-encoded */
    path = r->uri;
    if (!gh_utf8_valid(path.data, path.len)
        && gh_urlencode(r->pool, &r->uri, &path) != NGX_OK)
    {
        return NGX_OK;
    }
    f[0].data = ctx->request_id;
    f[1].data = (u_char *) ctx->user.tenant;
    f[2].data = (u_char *) ctx->user.id;
    f[3] = lcf->app;
    f[4] = r->method_name;
    f[5] = path;
    f[6].data = ctx->addr_text;
    f[7].data = ctx->rule;
    need = sizeof("{\"time\":,\"request_id\":,\"tenant\":,\"user\":,\"app\":,"
                  "\"method\":,\"path\":,\"addr\":,\"decision\":\"allow\","
                  "\"rule\":,\"reason\":,\"status\":}\n")
           + NGX_TIME_T_LEN + NGX_INT_T_LEN + 2 * 9;
    for (i = 0; i < 8; i++) {
        if (i != 3 && i != 4 && i != 5) {
            f[i].len = ngx_strlen(f[i].data);
        }
        if (!gh_utf8_valid(f[i].data, f[i].len)) {
            return NGX_OK;      /* as json_pack refused it */
        }
        need += 6 * f[i].len;
    }
    need += 6 * (ctx->reason ? ngx_strlen(ctx->reason) : 0);

    if (need > sizeof(gh_dlog_buf) - gh_dlog_len) {
        gh_dlog_flush(mcf->decision_log, r->connection->log);
    }
    if (need > sizeof(gh_dlog_buf)) {
        line = ngx_pnalloc(r->pool, need);
        if (line == NULL) {
            return NGX_OK;
        }
    } else {
        line = gh_dlog_buf + gh_dlog_len;
    }

    p = ngx_sprintf(line, "{\"time\":%T,\"request_id\":", ngx_time());
    p = gh_json_str(p, f[0].data, f[0].len);
    p = gh_json_str(ngx_cpymem(p, ",\"tenant\":", 10), f[1].data, f[1].len);
    p = gh_json_str(ngx_cpymem(p, ",\"user\":", 8), f[2].data, f[2].len);
    p = gh_json_str(ngx_cpymem(p, ",\"app\":", 7), f[3].data, f[3].len);
    p = gh_json_str(ngx_cpymem(p, ",\"method\":", 10), f[4].data, f[4].len);
    p = gh_json_str(ngx_cpymem(p, ",\"path\":", 8), f[5].data, f[5].len);
    p = gh_json_str(ngx_cpymem(p, ",\"addr\":", 8), f[6].data, f[6].len);
    p = ngx_sprintf(p, ",\"decision\":\"%s\",\"rule\":",
                    ctx->allowed ? "allow" : "deny");
    p = gh_json_str(p, f[7].data, f[7].len);
    p = ngx_cpymem(p, ",\"reason\":", 10);
    p = gh_json_str(p, (u_char *) (ctx->reason ? ctx->reason : ""),
                    ctx->reason ? ngx_strlen(ctx->reason) : 0);
    p = ngx_sprintf(p, ",\"status\":%i}\n",
                    (ngx_int_t) (int) r->headers_out.status);

    if (line != gh_dlog_buf + gh_dlog_len) {
        gh_dlog_write(mcf->decision_log->fd, line, p - line,
                      r->connection->log);
        return NGX_OK;
    }
    if (gh_dlog_len == 0 && !gh_dlog_ev.timer_set) {
        gh_dlog_file = mcf->decision_log;
        gh_dlog_ev.handler = gh_dlog_timer;
        gh_dlog_ev.log = ngx_cycle->log;
        gh_dlog_ev.cancelable = 1;
        ngx_add_timer(&gh_dlog_ev, GH_DLOG_FLUSH);
    }
    gh_dlog_len += p - line;
    return NGX_OK;
}


/* ---- thread-pool tasks ---- */

/* Jobs run below the event loop's priority: an Argon2id hash takes ~0.1 s
 * of CPU, and during a login storm the pool threads would otherwise take
 * CPU time from the workers serving signed-in users. Once per pool thread
 * (the nice value is per thread on Linux); when the machine is saturated a
 * login waits longer instead. */
#define GH_JOB_NICE  10

typedef struct {
    void       *job;              /* a gh_job_t */
    void      (*thread)(void *data, ngx_log_t *log);
} gh_job_task_t;

static void
gh_job_background(void *data, ngx_log_t *log)
{
    static __thread ngx_uint_t   niced;
    gh_job_task_t               *t = data;

    if (!niced) {
        niced = 1;
        if (setpriority(PRIO_PROCESS, (id_t) gettid(), GH_JOB_NICE) == -1) {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          "gatehouse: setpriority() of a pool thread");
        }
    }
    t->thread(t->job, log);
}


/* A fire-and-forget write of last_seen. It must outlive the request, so it
 * lives on the heap and frees itself back on the event loop. */
typedef struct {
    uint8_t  key[32];
    int64_t  now;
} gh_touch_t;

static void
gh_touch_thread(void *data, ngx_log_t *log)
{
    gh_touch_t  *t = data;

    if (gh_store != NULL) {
        (void) gh_session_touch(gh_store, t->key, t->now);
    }
}


static void
gh_touch_done(ngx_event_t *ev)
{
    gh_touch_pending--;
    ngx_free(ev->data);
}


static void
gh_post_touch(ngx_http_request_t *r, ngx_http_gatehouse_main_conf_t *mcf,
    ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_thread_task_t  *task;
    gh_touch_t         *t;

    if (gh_touch_pending >= GH_TOUCH_PENDING_MAX) {
        return;   /* a later request will write it */
    }
    task = ngx_calloc(sizeof(ngx_thread_task_t) + sizeof(gh_touch_t),
                      r->connection->log);
    if (task == NULL) {
        return;
    }
    t = (gh_touch_t *) (task + 1);
    ngx_memcpy(t->key, ctx->key, sizeof(t->key));
    t->now = ngx_time();
    task->ctx = t;
    task->handler = gh_touch_thread;
    task->event.handler = gh_touch_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(mcf->pool, task) != NGX_OK) {
        ngx_free(task);
        return;
    }
    gh_touch_pending++;
}


/* One audit record for a job (blocking file I/O: thread side only). */
void
gh_job_audit(gh_job_t *job, const char *actor, const char *tenant,
    const char *event, const char *detail)
{
    gh_audit_job(actor, tenant, job->addr_text, job->request_id, event,
                 detail, job->rc == 0 ? job->result.token : NULL);
}


static int
gh_session_dead(const gh_session_t *s, void *arg)
{
    return gh_session_live(s, &gh_prune_pol, gh_now()) != 0;
}


static void
gh_job_thread_login(void *data, ngx_log_t *log)
{
    gh_job_t           *job = data;
    gh_login_result_t  *res = &job->result;
    char                detail[128];
    const char         *actor;
    char                actor_norm[GH_EMAIL_MAX + 1];

    if (!gh_login_ready) {
        job->rc = GH_ESTORE;
    } else {
        job->rc = gh_login_password(gh_store, &gh_login,
                                    (const char *) job->email.data,
                                    job->email.len,
                                    (const char *) job->password.data,
                                    job->password.len, &job->addr,
                                    gh_throttle_now_ms(), res);
    }
    gh_wipe(job->password.data, job->password.len);

    if (job->rc == 0 && job->drop_old) {
        (void) gh_session_del(gh_store, job->old_key);
    }
    if (job->rc == 0) {
        /* for access reviews; a failure only leaves it older */
        (void) gh_lastlogin_set(gh_store, res->user.id, gh_now());
        (void) gh_session_prune_user(gh_store, res->user.id,
                                     gh_session_dead, NULL);
        gh_admin_breakglass_login(log, res->user.id, res->user.email);
    }

    /* the audit trail: the internal reason, never shown to the client */
    /* Only a well-formed address is recorded: people type passwords into
     * the email field, and the audit log must never hold one. */
    if (job->email.len == 0) {
        actor = "-";
    } else if (gh_email_normalize((const char *) job->email.data,
                                  job->email.len, actor_norm) == 0)
    {
        actor = actor_norm;
    } else {
        actor = "(not an email address)";
    }
    if (job->rc == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1, "%s%s%s%Z",
                     res->restricted == GH_LOGIN_MUST_CHANGE
                     ? "must change the password"
                     : res->restricted == GH_LOGIN_EXPIRED
                     ? "password expired" : "ok",
                     res->mfa_step == GH_MFA_STEP_VERIFY
                     ? "; second factor pending"
                     : res->mfa_step == GH_MFA_STEP_ENROL
                     ? "; second factor enrolment required" : "",
                     res->rehashed ? "; password rehashed" : "");
        gh_job_audit(job, res->user.email, res->user.tenant, "login", detail);
    } else if (job->rc == GH_EDENIED && res->retry_after > 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "%s; retry after %L s%Z", res->reason,
                     (int64_t) res->retry_after);
        gh_job_audit(job, actor, res->tenant, "login_throttled", detail);
    } else if (job->rc == GH_EDENIED) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "%s; %uD consecutive failures%Z", res->reason,
                     res->failures);
        gh_job_audit(job, actor, res->tenant, "login_failure", detail);
        if (res->locked_now) {
            ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                         "locked after %uD consecutive failures%Z",
                         res->failures);
            gh_job_audit(job, actor, res->tenant, "lockout", detail);
        }
    }
}


/* Copy what a job's thread needs to know about the request. */
void
gh_job_who(gh_job_t *job, ngx_http_gatehouse_ctx_t *ctx)
{
    job->addr = ctx->addr;
    ngx_memcpy(job->addr_text, ctx->addr_text, sizeof(job->addr_text));
    ngx_memcpy(job->request_id, ctx->request_id, sizeof(job->request_id));
}


static void
gh_job_thread_logout(void *data, ngx_log_t *log)
{
    gh_job_t  *job = data;

    job->rc = gh_store ? gh_session_del(gh_store, job->old_key) : GH_ESTORE;
    gh_audit_logout(job->actor, job->tenant, job->addr_text, job->request_id,
                    job->old_key, job->rc);
}


/* Back on the event loop: unblock the request and let the job answer. */
static void
gh_job_done(ngx_event_t *ev)
{
    gh_job_t            *job;
    ngx_http_request_t  *r;
    ngx_connection_t    *c;

    job = ev->data;
    r = job->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);
    r->main->blocked--;
    r->aio = 0;

    job->finish(r, job);
    ngx_http_run_posted_requests(c);
}


ngx_int_t
gh_job_post(ngx_http_request_t *r, gh_job_t *job,
    void (*thread)(void *data, ngx_log_t *log))
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_thread_task_t               *task;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    task = ngx_thread_task_alloc(r->pool, sizeof(gh_job_task_t));
    if (task == NULL) {
        return NGX_ERROR;
    }
    ((gh_job_task_t *) task->ctx)->job = job;
    ((gh_job_task_t *) task->ctx)->thread = thread;
    task->handler = gh_job_background;
    task->event.handler = gh_job_done;
    task->event.data = job;

    if (ngx_thread_task_post(mcf->pool, task) != NGX_OK) {
        return NGX_ERROR;
    }
    r->main->blocked++;
    r->aio = 1;
    return NGX_OK;
}


/* ---- endpoints ---- */

/* A fresh or reused CSRF token for the login form (double-submit: the
 * same random value in a __Host- cookie and in the form). */
ngx_int_t
gh_csrf_prepare(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_str_t  have;
    uint8_t    raw[32];
    u_char    *p;

    if (gh_cookie(r, GH_CSRF_COOKIE, &have) == NGX_OK
        && have.len == GH_TOKEN_LEN
        && gh_b64url_decode((const char *) have.data, have.len, raw,
                            sizeof(raw)) == 32)
    {
        ctx->csrf = have;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, GH_TOKEN_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }
    gh_random(raw, sizeof(raw));
    if (gh_b64url_encode(raw, sizeof(raw), (char *) p, GH_TOKEN_LEN + 1)
        != GH_TOKEN_LEN)
    {
        return NGX_ERROR;
    }
    ctx->csrf.data = p;
    ctx->csrf.len = GH_TOKEN_LEN;
    ctx->csrf_new = 1;
    return NGX_OK;
}


/* The return target: rd if gh_redirect_ok accepts it, else "/". */
void
gh_set_rd(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx, ngx_str_t *rd)
{
    ngx_http_gatehouse_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    if (rd != NULL && rd->len > 0
        && gh_redirect_ok((const char *) rd->data, rd->len, mcf->hosts,
                          mcf->nhosts))
    {
        ctx->rd = *rd;
        return;
    }
    if (rd != NULL && rd->len > 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: refused return target, using \"/\"");
    }
    ngx_str_set(&ctx->rd, "/");
}


/* rd from the query string, percent-decoded and validated ("/" when
 * absent or refused). */
ngx_int_t
gh_rd_from_args(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_str_t  rd, dec;
    u_char    *dst, *src;

    if (ngx_http_arg(r, (u_char *) "rd", 2, &rd) != NGX_OK) {
        gh_set_rd(r, ctx, NULL);
        return NGX_OK;
    }
    dec.data = ngx_pnalloc(r->pool, rd.len);
    if (dec.data == NULL) {
        return NGX_ERROR;
    }
    dst = dec.data;
    src = rd.data;
    ngx_unescape_uri(&dst, &src, rd.len, 0);
    dec.len = dst - dec.data;
    gh_set_rd(r, ctx, &dec);
    return NGX_OK;
}


/* Reject a cross-origin POST outright: a browser's Origin must be this
 * very host over https. Clients that send no Origin rely on the token. */
static ngx_int_t
gh_same_origin(ngx_http_request_t *r)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_str_t        *host;
    ngx_uint_t        i;
    static const char https[] = "https://";

    host = r->headers_in.host ? &r->headers_in.host->value : NULL;
    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len != 6
                || ngx_strncasecmp(h[i].key.data, (u_char *) "origin", 6))
            {
                continue;
            }
            if (host == NULL
                || h[i].value.len != sizeof(https) - 1 + host->len
                || ngx_strncasecmp(h[i].value.data, (u_char *) https,
                                   sizeof(https) - 1) != 0
                || ngx_strncasecmp(h[i].value.data + sizeof(https) - 1,
                                   host->data, host->len) != 0)
            {
                return NGX_DECLINED;
            }
        }
    }
    return NGX_OK;
}


static void gh_login_finish(ngx_http_request_t *r, gh_job_t *job);

ngx_int_t
gh_body_read(ngx_http_request_t *r, size_t max, ngx_uint_t files,
    ngx_str_t *out)
{
    ngx_chain_t  *cl;
    size_t        len = 0, n;
    u_char       *p;
    ssize_t       got;

    if (r->request_body == NULL) {
        return NGX_ERROR;
    }
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file && !files) {
            return NGX_DECLINED;
        }
        n = cl->buf->in_file ? (size_t) (cl->buf->file_last - cl->buf->file_pos)
                             : (size_t) ngx_buf_size(cl->buf);
        if (len + n > max) {
            return NGX_DECLINED;
        }
        len += n;
    }
    out->data = ngx_pnalloc(r->pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }
    p = out->data;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            n = (size_t) (cl->buf->file_last - cl->buf->file_pos);
            got = ngx_read_file(cl->buf->file, p, n, cl->buf->file_pos);
            if (got < 0 || (size_t) got != n) {
                return NGX_ERROR;
            }
            p += n;
        } else {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }
    out->len = p - out->data;
    *p = '\0';
    return NGX_OK;
}


/* The whole form body, in memory, within GH_FORM_MAX, copied into body
 * (the caller wipes it). NGX_OK, or NGX_DECLINED with *response what to
 * finalize the request with (an answer already sent, or a status). */
ngx_int_t
gh_form_body(ngx_http_request_t *r, ngx_str_t *body, ngx_int_t *response)
{
    ngx_int_t  rc = gh_body_read(r, GH_FORM_MAX, 0, body);

    if (rc == NGX_DECLINED) {
        *response = gh_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "too_large", "the form is too large");
    } else if (rc != NGX_OK) {
        *response = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
gh_send_busy(ngx_http_request_t *r)
{
    return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "busy",
                         "the gateway is busy, try again");
}


/* The double-submit check of a posted form: same origin (when the browser
 * says), and the csrf field equal to the cookie, in constant time. */
ngx_int_t
gh_csrf_check(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *body)
{
    ngx_str_t  csrf;

    if (gh_same_origin(r) != NGX_OK
        || gh_form_field(r->pool, body, "csrf", GH_TOKEN_LEN, &csrf)
           != NGX_OK
        || ctx->csrf_new
        || csrf.len != ctx->csrf.len
        || !gh_ct_equal(csrf.data, ctx->csrf.data, csrf.len))
    {
        return NGX_DECLINED;
    }
    return NGX_OK;
}


static void
gh_login_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    gh_job_t                  *job;
    ngx_str_t                  body, rd;
    ngx_int_t                  rc, status;

    ctx = gh_ctx(r);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    if (gh_form_body(r, &body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    job = ngx_pcalloc(r->pool, sizeof(*job));
    if (job == NULL) {
        gh_wipe(body.data, body.len);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = gh_form_field(r->pool, &body, "rd", GH_RD_MAX, &rd);
    gh_set_rd(r, ctx, rc == NGX_OK ? &rd : NULL);

    if (gh_form_field(r->pool, &body, "username", GH_EMAIL_MAX * 3,
                      &job->email) == NGX_OK)
    {
        ctx->username = job->email;
    }

    if (gh_csrf_prepare(r, ctx) != NGX_OK) {
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto wipe;
    }
    if (gh_csrf_check(r, ctx, &body) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: login refused: csrf check failed");
        ngx_str_set(&ctx->message,
                    "This form expired or came from another site. "
                    "Please sign in again.");
        status = gh_send_login_page(r, ctx, NGX_HTTP_FORBIDDEN);
        goto wipe;
    }

    rc = gh_form_field(r->pool, &body, "password", GH_PASSWORD_MAX,
                       &job->password);
    if (rc == NGX_ERROR || job->email.len == 0) {
        ngx_str_set(&ctx->message, "Incorrect email or password.");
        status = gh_send_login_page(r, ctx, NGX_HTTP_UNAUTHORIZED);
        goto wipe;
    }
    if (rc == NGX_DECLINED) {
        ngx_str_set(&job->password, "");
    }
    if (gh_saml_discover(r, ctx, &job->email, job->password.len == 0,
                         &status) == NGX_OK)
    {
        goto wipe;
    }
    if (rc == NGX_DECLINED) {
        /* the email-first page sent the email alone and it leads to no
         * identity provider: ask for the password — the same answer for
         * every such email, and no failure counted */
        status = gh_send_login_page(r, ctx, NGX_HTTP_OK);
        goto wipe;
    }

    /* A session presented at login is replaced, never promoted. */
    if (ctx->authenticated || ctx->pwchange || ctx->mfa_pending) {
        job->drop_old = 1;
        ngx_memcpy(job->old_key, ctx->key, sizeof(job->old_key));
    }

    gh_job_who(job, ctx);
    job->request = r;
    job->finish = gh_login_finish;
    if (gh_job_post(r, job, gh_job_thread_login) != NGX_OK) {
        status = gh_send_busy(r);
        goto wipe;
    }
    gh_wipe(body.data, body.len);
    return;   /* gh_login_finish answers when the thread is done */

wipe:
    /* Before finalizing: finalizing may free the pool these live in. */
    gh_wipe(body.data, body.len);
    if (job->password.len) {
        gh_wipe(job->password.data, job->password.len);
    }
    ngx_http_finalize_request(r, status);
}


/* "Please wait N seconds" for a 429 page (minutes from two on). */
void
gh_wait_message(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    const char *what, time_t secs)
{
    u_char  *p;
    size_t   n = 160 + ngx_strlen(what);

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        ngx_str_set(&ctx->message, "Too many attempts. Please wait and try "
                    "again.");
        return;
    }
    ctx->message.data = p;
    ctx->message.len = (secs >= 120
        ? ngx_snprintf(p, n, "Too many %s. Please wait %T minutes and try "
                       "again; if this keeps happening, ask your "
                       "administrator.", what, (secs + 59) / 60)
        : ngx_snprintf(p, n, "Too many %s. Please wait %T second%s and try "
                       "again.", what, secs, secs == 1 ? "" : "s")) - p;
}


/* A page's address with rd (already validated) as its query. */
ngx_int_t
gh_page_location(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    const char *page, ngx_str_t *loc)
{
    ngx_str_t  rd;
    size_t     n;
    u_char    *p;

    if (gh_urlencode(r->pool, &ctx->rd, &rd) != NGX_OK) {
        return NGX_ERROR;
    }
    n = ngx_strlen(page);
    loc->len = n + sizeof("?rd=") - 1 + rd.len;
    loc->data = ngx_pnalloc(r->pool, loc->len);
    if (loc->data == NULL) {
        return NGX_ERROR;
    }
    p = ngx_cpymem(loc->data, page, n);
    p = ngx_cpymem(p, "?rd=", sizeof("?rd=") - 1);
    ngx_memcpy(p, rd.data, rd.len);
    return NGX_OK;
}


/* The change page's address with rd (already validated) as its query. */
ngx_int_t
gh_password_location(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx,
    ngx_str_t *loc)
{
    return gh_page_location(r, ctx, GH_PASSWORD_PAGE, loc);
}


/* The Set-Cookie value for a new session token (the thread's copy is
 * wiped: from here on it lives only in the response). */
ngx_int_t
gh_session_cookie(ngx_http_request_t *r, char token[GH_TOKEN_LEN + 1],
    ngx_str_t *cookie)
{
    ngx_str_t  tok;
    ngx_int_t  rc;

    tok.data = (u_char *) token;
    tok.len = GH_TOKEN_LEN;
    rc = gh_cookie_header(r->pool, GH_COOKIE_NAME, &tok, 0, cookie);
    gh_wipe(token, GH_TOKEN_LEN + 1);
    return rc;
}


static void
gh_login_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  cookie, loc;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);

    if (job->rc == 0) {
        rc = gh_session_cookie(r, job->result.token, &cookie);
        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: login ok user=%s tenant=%s%s%s",
                      job->result.user.id, job->result.user.tenant,
                      job->result.rehashed ? " (password rehashed)" : "",
                      job->result.restricted != GH_LOGIN_FULL
                      ? " (must change the password first)" : "");
        /* a password that must change first: its session reaches the
         * change page only, which then goes on to rd */
        loc = ctx->rd;
        if (job->result.mfa_step != GH_MFA_STEP_NONE) {
            /* the second factor (or its enrolment) comes first */
            if (gh_page_location(r, ctx,
                                 job->result.mfa_step == GH_MFA_STEP_ENROL
                                 ? GH_MFA_ENROL_PAGE : GH_MFA_PAGE, &loc)
                != NGX_OK)
            {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        } else if (job->result.restricted != GH_LOGIN_FULL
                   && gh_password_location(r, ctx, &loc) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ngx_http_finalize_request(r,
            gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc,
                    &cookie, 1));
        return;
    }

    if (job->rc == GH_EDENIED && job->result.retry_after > 0) {
        /* throttled: the same answer whether or not the account exists,
         * and the password was not even looked at */
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: login throttled: %s",
                      job->result.reason);
        ctx->retry_after = (time_t) job->result.retry_after;
        gh_wait_message(r, ctx, "sign-in attempts", ctx->retry_after);
        ngx_http_finalize_request(r,
            gh_send_login_page(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS));
        return;
    }

    if (job->rc == GH_EDENIED) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: login failed: %s", job->result.reason);
        ngx_str_set(&ctx->message, "Incorrect email or password.");
        ngx_http_finalize_request(r,
            gh_send_login_page(r, ctx, NGX_HTTP_UNAUTHORIZED));
        return;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "gatehouse: login could not be checked: %s",
                  gh_strerror(job->rc));
    ngx_http_finalize_request(r,
        gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                      "sign-in is unavailable, try again later"));
}


/* Exactly application/x-www-form-urlencoded, optionally with parameters
 * (";charset=..."): a prefix match would accept "...urlencodedX". */
static ngx_uint_t
gh_is_form(ngx_http_request_t *r)
{
    static const char  form[] = "application/x-www-form-urlencoded";
    ngx_str_t         *ct;
    u_char             c;

    if (r->headers_in.content_type == NULL) {
        return 0;
    }
    ct = &r->headers_in.content_type->value;
    if (ct->len < sizeof(form) - 1
        || ngx_strncasecmp(ct->data, (u_char *) form, sizeof(form) - 1) != 0)
    {
        return 0;
    }
    if (ct->len == sizeof(form) - 1) {
        return 1;
    }
    c = ct->data[sizeof(form) - 1];
    return c == ';' || c == ' ' || c == '\t';
}


/* A form POST to one of our pages: anything else is refused before the
 * body is read — and then keep-alive ends, so the unread body can never be
 * parsed as the next request on this connection. */
ngx_int_t
gh_read_form(ngx_http_request_t *r, ngx_http_client_body_handler_pt handler)
{
    ngx_int_t  rc;

    if (!(r->method & NGX_HTTP_POST)) {
        r->keepalive = 0;
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "use GET or POST");
    }
    if (!gh_is_form(r)) {
        r->keepalive = 0;
        return gh_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "bad_form", "expected a urlencoded form");
    }
    if (r->headers_in.content_length_n > GH_FORM_MAX) {
        r->keepalive = 0;
        return gh_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                             "too_large", "the form is too large");
    }
    r->request_body_in_single_buf = 1;
    rc = ngx_http_read_client_request_body(r, handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }
    return NGX_DONE;
}


static ngx_int_t
gh_login_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
        if (gh_rd_from_args(r, ctx) != NGX_OK
            || gh_csrf_prepare(r, ctx) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        /* one LMDB read: is home-realm discovery in use? (a store error
         * shows the ordinary form) */
        ctx->email_first = gh_store != NULL
                           && gh_saml_discovery_on(gh_store) == 1;
        return gh_send_login_page(r, ctx, NGX_HTTP_OK);
    }

    return gh_read_form(r, gh_login_body);
}


/* Clear the cookie and go back to the login page. */
static ngx_int_t
gh_logout_response(ngx_http_request_t *r)
{
    ngx_str_t  empty = ngx_null_string, cookie, loc;

    if (gh_cookie_header(r->pool, GH_COOKIE_NAME, &empty, 1, &cookie)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_str_set(&loc, GH_PREFIX "login");
    return gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &loc,
                   &cookie, 1);
}


static void
gh_logout_finish(ngx_http_request_t *r, gh_job_t *job)
{
    if (job->rc != 0 && job->rc != GH_ENOTFOUND) {
        ngx_http_finalize_request(r,
            gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                          "sign-out could not be recorded, try again"));
        return;
    }
    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "gatehouse: logout");
    ngx_http_finalize_request(r, gh_logout_response(r));
}


static ngx_int_t
gh_logout_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    gh_job_t   *job;

    if (!(r->method & NGX_HTTP_POST)) {
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "sign out with POST");
    }
    if (gh_same_origin(r) != NGX_OK) {
        return gh_send_error(r, NGX_HTTP_FORBIDDEN, "cross_origin",
                             "cross-site sign-out refused");
    }

    if (!ctx->authenticated && !ctx->pwchange && !ctx->mfa_pending) {
        return gh_logout_response(r);
    }

    job = ngx_pcalloc(r->pool, sizeof(*job));
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    job->request = r;
    job->finish = gh_logout_finish;

    ngx_memcpy(job->old_key, ctx->key, sizeof(job->old_key));
    gh_job_who(job, ctx);
    ngx_cpystrn((u_char *) job->actor, (u_char *) ctx->user.email,
                sizeof(job->actor));
    ngx_cpystrn((u_char *) job->tenant, (u_char *) ctx->user.tenant,
                sizeof(job->tenant));
    if (gh_job_post(r, job, gh_job_thread_logout) != NGX_OK) {
        return gh_send_busy(r);
    }
    r->main->count++;
    return NGX_DONE;
}


/* ---- /.gatehouse/account/password: the signed-in user's own change ---- */

/* The tenant's password rules in words, for the page (one LMDB read: fine
 * on the event loop). Leaves policy_text empty when they cannot be read. */
static void
gh_password_rules(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    gh_pwpolicy_t              pol;
    gh_tenant_t                t;
    char                       text[256];
    size_t                     n;

    if (gh_tenant_get(gh_store, ctx->user.tenant, &t) != 0) {
        return;
    }
    gh_pwpolicy_resolve(&t.pw, t.mfa == GH_MFA_REQUIRED, &pol);
    gh_pwpolicy_describe(&pol, text, sizeof(text));
    n = ngx_strlen(text);
    ctx->policy_text.data = ngx_pnalloc(r->pool, n);
    if (ctx->policy_text.data != NULL) {
        ngx_memcpy(ctx->policy_text.data, text, n);
        ctx->policy_text.len = n;
    }
}


static void
gh_job_thread_password(void *data, ngx_log_t *log)
{
    gh_job_t           *job = data;
    gh_pwchange_req_t   rq;
    gh_pwchange_res_t  *res = &job->change;
    char                detail[GH_VERDICT_MAX * GH_VERDICT_TEXT];

    if (!gh_login_ready) {
        job->rc = GH_ESTORE;
    } else {
        ngx_memzero(&rq, sizeof(rq));
        rq.uid = job->uid;
        rq.amr = job->amr;
        rq.current = (const char *) job->current.data;
        rq.current_len = job->current.len;
        rq.fresh = (const char *) job->password.data;
        rq.fresh_len = job->password.len;
        rq.addr = &job->addr;
        rq.mfa_required = job->mfa;
        rq.blocklist = job->blocklist;
        rq.now_ms = gh_throttle_now_ms();
        job->rc = gh_login_change_password(gh_store, &gh_login, &rq, res);
    }
    gh_wipe(job->current.data, job->current.len);
    gh_wipe(job->password.data, job->password.len);

    if (job->rc == 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "self-service; %d other session%s ended%Z", res->ended,
                     res->ended == 1 ? "" : "s");
        gh_job_audit(job, job->actor, job->tenant, "password_change", detail);
    } else if (job->rc == GH_EDENIED && res->retry_after > 0) {
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "%s; retry after %L s%Z", res->reason,
                     (int64_t) res->retry_after);
        gh_job_audit(job, job->actor, job->tenant, "password_change_throttled",
                     detail);
    } else if (job->rc == GH_EDENIED && res->verdict.n > 0) {
        gh_verdict_join(&res->verdict, detail, sizeof(detail));
        gh_job_audit(job, job->actor, job->tenant, "password_refused", detail);
    } else if (job->rc == GH_EDENIED) {
        gh_job_audit(job, job->actor, job->tenant, "password_change_failure",
                     res->reason);
    }
}


static void
gh_password_finish(ngx_http_request_t *r, gh_job_t *job)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  cookie;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);

    if (job->rc == 0) {
        rc = gh_session_cookie(r, job->change.token, &cookie);
        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: password changed user=%s tenant=%s, "
                      "%d other session(s) ended", job->uid, job->tenant,
                      job->change.ended);
        ngx_http_finalize_request(r,
            gh_send(r, NGX_HTTP_SEE_OTHER, "text/plain", NULL, &ctx->rd,
                    &cookie, 1));
        return;
    }

    if (job->rc == GH_EDENIED) {
        gh_password_rules(r, ctx);
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "gatehouse: password change refused user=%s: %s",
                      job->uid, job->change.reason);
        if (job->change.retry_after > 0) {
            ctx->retry_after = (time_t) job->change.retry_after;
            gh_wait_message(r, ctx, "attempts", ctx->retry_after);
            ngx_http_finalize_request(r,
                gh_send_password_page(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS));
            return;
        }
        if (job->change.verdict.n > 0) {
            ngx_str_set(&ctx->message, "The new password was refused:");
            ctx->verdict = &job->change.verdict;
        } else {
            ngx_str_set(&ctx->message, "The current password is not correct.");
        }
        ngx_http_finalize_request(r,
            gh_send_password_page(r, ctx, NGX_HTTP_BAD_REQUEST));
        return;
    }

    gh_job_failed(r, job->rc, "password change could not be made",
                  "the password could not be changed, try again later");
}


static void
gh_password_body(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t        *ctx;
    ngx_http_gatehouse_main_conf_t  *mcf;
    gh_job_t                        *job;
    ngx_str_t                        body, rd, confirm;
    ngx_int_t                        rc, status;

    ngx_str_null(&confirm);
    ctx = gh_ctx(r);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    if (gh_form_body(r, &body, &rc) != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }
    job = ngx_pcalloc(r->pool, sizeof(*job));
    if (job == NULL) {
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto wipe;
    }

    rc = gh_form_field(r->pool, &body, "rd", GH_RD_MAX, &rd);
    gh_set_rd(r, ctx, rc == NGX_OK ? &rd : NULL);
    if (gh_csrf_prepare(r, ctx) != NGX_OK) {
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto wipe;
    }
    if (gh_csrf_check(r, ctx, &body) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "gatehouse: password change refused: csrf check "
                      "failed");
        gh_password_rules(r, ctx);
        ngx_str_set(&ctx->message, "This form expired or came from another "
                    "site. Please try again.");
        status = gh_send_password_page(r, ctx, NGX_HTTP_FORBIDDEN);
        goto wipe;
    }

    if (gh_form_field(r->pool, &body, "current", GH_PASSWORD_MAX,
                      &job->current) == NGX_ERROR
        || gh_form_field(r->pool, &body, "new", GH_PASSWORD_MAX,
                         &job->password) == NGX_ERROR
        || gh_form_field(r->pool, &body, "confirm", GH_PASSWORD_MAX,
                         &confirm) == NGX_ERROR)
    {
        gh_password_rules(r, ctx);
        ngx_str_set(&ctx->message, "A password is longer than "
                    "the gateway accepts.");
        status = gh_send_password_page(r, ctx, NGX_HTTP_BAD_REQUEST);
        goto wipe;
    }
    if (job->password.len != confirm.len
        || !gh_ct_equal(job->password.data, confirm.data, confirm.len))
    {
        gh_password_rules(r, ctx);
        ngx_str_set(&ctx->message, "The new password and its confirmation "
                    "differ.");
        status = gh_send_password_page(r, ctx, NGX_HTTP_BAD_REQUEST);
        goto wipe;
    }

    /* what the thread needs, copied; the tenant's MFA requirement comes
     * from the worker's policy, which only the event loop may read */
    gh_job_who(job, ctx);
    ngx_cpystrn((u_char *) job->uid, (u_char *) ctx->user.id,
                sizeof(job->uid));
    ngx_cpystrn((u_char *) job->tenant, (u_char *) ctx->user.tenant,
                sizeof(job->tenant));
    ngx_cpystrn((u_char *) job->actor, (u_char *) ctx->user.email,
                sizeof(job->actor));
    ngx_cpystrn((u_char *) job->amr, (u_char *) ctx->session.amr,
                sizeof(job->amr));
    job->mfa = gh_mfa_tenant_level(ctx->user.tenant) == GH_MFA_REQUIRED;
    job->blocklist = mcf->blocklist;
    job->request = r;
    job->finish = gh_password_finish;
    if (gh_job_post(r, job, gh_job_thread_password) != NGX_OK) {
        status = gh_send_busy(r);
        goto wipe;
    }
    gh_wipe(body.data, body.len);
    if (confirm.len) {
        gh_wipe(confirm.data, confirm.len);
    }
    return;   /* gh_password_finish answers */

wipe:
    gh_wipe(body.data, body.len);
    if (job != NULL) {
        if (job->current.len) {
            gh_wipe(job->current.data, job->current.len);
        }
        if (job->password.len) {
            gh_wipe(job->password.data, job->password.len);
        }
    }
    if (confirm.len) {
        gh_wipe(confirm.data, confirm.len);
    }
    ngx_http_finalize_request(r, status);
}


/* GET: the form; POST: the change. Only for a signed-in user — or one
 * whose session is restricted to exactly this page. */
static ngx_int_t
gh_password_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_str_t  loc;
    ngx_int_t  rc;

    if (!ctx->authenticated && !ctx->pwchange) {
        r->keepalive = 0;   /* the body may be unread */
        if (!gh_wants_html(r)) {
            return gh_send_error(r, NGX_HTTP_UNAUTHORIZED, "unauthenticated",
                                 "sign in at " GH_PREFIX "login");
        }
        ngx_str_set(&loc, GH_PREFIX "login?rd=%2F.gatehouse%2Faccount"
                    "%2Fpassword");
        return gh_send(r, NGX_HTTP_MOVED_TEMPORARILY, "text/plain", NULL,
                       &loc, NULL, 0);
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
        if (gh_rd_from_args(r, ctx) != NGX_OK
            || gh_csrf_prepare(r, ctx) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        gh_password_rules(r, ctx);
        if (ctx->pwchange) {
            ngx_str_set(&ctx->message, "Your password must be changed before "
                        "you continue.");
        }
        return gh_send_password_page(r, ctx, NGX_HTTP_OK);
    }

    return gh_read_form(r, gh_password_body);
}


static ngx_str_t  gh_health_ok = ngx_string("{\"status\":\"ok\"}\n");

static ngx_int_t
gh_healthz_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    if (gh_store == NULL || gh_store_check(gh_store) != 0) {
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "unavailable", "store unreadable");
    }
    return gh_send(r, NGX_HTTP_OK, "application/json", &gh_health_ok,
                   NULL, NULL, 0);
}


static ngx_int_t
gh_whoami_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_http_gatehouse_main_conf_t  *mcf;

    if (!ctx->authenticated) {
        return gh_send_error(r, NGX_HTTP_UNAUTHORIZED, "unauthenticated",
                             "no valid session");
    }
    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    return gh_send_whoami(r, ctx, mcf->idle, mcf->lifetime);
}


int
gh_live_role_known(const char *role)
{
    return gh_policy != NULL && gh_policy_role_known(gh_policy, role);
}


/* The endpoints under /.gatehouse/. Unless an endpoint reads the body
 * itself, the body is discarded before it answers: an unread body must
 * never be parsed as the next request on a keep-alive connection. */
static const struct {
    ngx_str_t    name;
    ngx_uint_t   reads_body;
    ngx_uint_t   needs_store;
    ngx_int_t  (*handler)(ngx_http_request_t *r,
                          ngx_http_gatehouse_ctx_t *ctx);
    ngx_uint_t   prefix;      /* 1: name and anything below it */
} gh_endpoints[] = {
    { ngx_string("healthz"), 0, 0, gh_healthz_endpoint },
    { ngx_string("login"),   1, 1, gh_login_endpoint },
    { ngx_string("logout"),  0, 1, gh_logout_endpoint },
    { ngx_string("whoami"),  0, 1, gh_whoami_endpoint },
    { ngx_string("account/password"), 1, 1, gh_password_endpoint },
    { ngx_string("mfa"),     1, 1, gh_mfa_endpoint },
    { ngx_string("mfa/enroll"), 1, 1, gh_mfa_enrol_endpoint },
    { ngx_string("jwks.json"), 0, 0, gh_jwks_endpoint },
    { ngx_string("metrics"), 0, 0, gh_metrics_endpoint },
    { ngx_string("admin"),   1, 1, gh_admin_endpoint },
    { ngx_string("admin/"),  1, 1, gh_admin_endpoint },
    { ngx_string("admin/user"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/invites"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/review"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/review.csv"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/breakglass"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/audit"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/tenants"), 1, 1, gh_admin_endpoint },
    { ngx_string("admin/tokens"), 1, 1, gh_admin_endpoint },
    { ngx_string("join"),    1, 1, gh_join_endpoint },
    { ngx_string("api/v1/"), 1, 1, gh_api_endpoint, 1 },
};


static ngx_int_t
ngx_http_gatehouse_endpoint(ngx_http_request_t *r)
{
    ngx_http_gatehouse_ctx_t  *ctx;
    ngx_str_t                  ep;
    ngx_uint_t                 i, n;
    ngx_int_t                  rc;

    ctx = gh_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ep.data = r->uri.data + sizeof(GH_PREFIX) - 1;
    ep.len = r->uri.len - (sizeof(GH_PREFIX) - 1);
    if (ep.len > sizeof("saml/") - 1
        && ngx_strncmp(ep.data, "saml/", sizeof("saml/") - 1) == 0)
    {
        if (ctx->store_failed) {
            r->keepalive = 0;
            (void) ngx_http_discard_request_body(r);
            return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "unavailable",
                                 "the session store is unavailable");
        }
        return gh_saml_endpoint(r, ctx, &ep);
    }
    n = sizeof(gh_endpoints) / sizeof(gh_endpoints[0]);
    for (i = 0; i < n; i++) {
        if ((ep.len == gh_endpoints[i].name.len
             || (gh_endpoints[i].prefix && ep.len > gh_endpoints[i].name.len))
            && ngx_strncmp(ep.data, gh_endpoints[i].name.data,
                           gh_endpoints[i].name.len) == 0)
        {
            break;
        }
    }

    if (i == n || !gh_endpoints[i].reads_body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }
    if (i == n) {
        return gh_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                             "no such gatehouse endpoint");
    }
    if (gh_endpoints[i].needs_store && ctx->store_failed) {
        r->keepalive = 0;   /* the body may be unread */
        return gh_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                             "the session store is unavailable");
    }
    return gh_endpoints[i].handler(r, ctx);
}


/* ---- header filter: HSTS on every response of a gatehouse server ---- */

static ngx_int_t
ngx_http_gatehouse_header_filter(ngx_http_request_t *r)
{
    ngx_http_gatehouse_loc_conf_t  *lcf;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_uint_t                      i;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);
    if (r != r->main || lcf == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (lcf->enable && r->upstream != NULL) {
        /* A backend answer with no valid status line: nginx relays its bytes
         * raw (as HTTP/0.9), past every header of ours. Cut it off. */
        if (r->http_version == NGX_HTTP_VERSION_9 && r->http_major >= 1) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "gatehouse: refused a backend answer with no "
                          "status line");
            return NGX_ERROR;
        }
        /* A backend never sets our cookies: planting one is session
         * fixation by the backend. */
        for (part = &r->headers_out.headers.part; part; part = part->next) {
            h = part->elts;
            for (i = 0; i < part->nelts; i++) {
                u_char  *v = h[i].value.data, *end = v + h[i].value.len;

                while (v < end && (*v == ' ' || *v == '\t')) {
                    v++;
                }
                if (h[i].hash != 0
                    && h[i].key.len == sizeof("Set-Cookie") - 1
                    && ngx_strncasecmp(h[i].key.data, (u_char *) "Set-Cookie",
                                       h[i].key.len) == 0
                    && gh_own_cookie(v, ngx_strlchr(v, end, ';')
                                        ? ngx_strlchr(v, end, ';') - v
                                        : end - v))
                {
                    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                                  "gatehouse: dropped a backend Set-Cookie "
                                  "for a gatehouse cookie");
                    h[i].hash = 0;
                }
            }
        }
    }
    if (!lcf->hsts) {
        return ngx_http_next_header_filter(r);
    }

    /* One policy: ours replaces whatever a backend sent. */
    for (part = &r->headers_out.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].hash != 0
                && h[i].key.len == sizeof("Strict-Transport-Security") - 1
                && ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "Strict-Transport-Security",
                                   h[i].key.len) == 0)
            {
                h[i].hash = 0;
            }
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }
    h->hash = 1;
    ngx_str_set(&h->key, "Strict-Transport-Security");
    ngx_str_set(&h->value, "max-age=31536000; includeSubDomains");

    return ngx_http_next_header_filter(r);
}
