/* gatehouse — nginx glue for signed identity: the $gatehouse_assertion
 * variable (an ES256 JWT per session and app, signed once and reused until
 * a minute before it expires), /.gatehouse/jwks.json and
 * /.gatehouse/metrics.
 *
 * Per worker: the key set (private keys unsealed with the master key) is
 * reloaded when the store's key-set version changes; a direct-mapped cache
 * holds one token per (session, app) slot. A token is reused only while
 * everything it asserts is unchanged (a fingerprint of the claims), so a
 * role grant, revoke or expiry produces a fresh token on the next request.
 */
#include "ngx_http_gatehouse.h"

#include <jansson.h>

#include "gatehouse/error.h"
#include "gatehouse/jwt.h"
#include "gatehouse/keys.h"
#include "gatehouse/seal.h"

#define GH_JWT_KEYS_MAX     64        /* unretired keys held per worker */
#define GH_JWT_CACHE_SLOTS  4096        /* power of two */
#define GH_JWT_REUSE_MARGIN 60          /* re-sign this long before exp */

typedef struct {
    gh_jwtkey_t   pub;                  /* sealed field wiped */
    char         *priv;                 /* unsealed PEM (heap), or NULL */
} gh_wkey_t;

typedef struct {
    uint8_t       session[16];          /* first half of the store key */
    uint64_t      fingerprint;          /* app + every asserted claim */
    int64_t       exp;
    char         *token;                /* heap */
    size_t        len;
} gh_slot_t;

static gh_wkey_t   gh_keys[GH_JWT_KEYS_MAX];
static ngx_uint_t  gh_nkeys;
static uint64_t    gh_keys_ver;
static gh_slot_t  *gh_cache;
static uint64_t    gh_jwt_signed;       /* signatures made by this worker */
static uint64_t    gh_jwt_reused;       /* requests served from the cache */


static void
gh_keys_clear(void)
{
    ngx_uint_t  i;

    for (i = 0; i < gh_nkeys; i++) {
        if (gh_keys[i].priv != NULL) {
            gh_wipe(gh_keys[i].priv, ngx_strlen(gh_keys[i].priv));
            free(gh_keys[i].priv);
        }
    }
    ngx_memzero(gh_keys, sizeof(gh_keys));
    gh_nkeys = 0;
}


static void
gh_cache_flush(void)
{
    ngx_uint_t  i;

    if (gh_cache == NULL) {
        return;
    }
    for (i = 0; i < GH_JWT_CACHE_SLOTS; i++) {
        free(gh_cache[i].token);
    }
    ngx_memzero(gh_cache, sizeof(gh_slot_t) * GH_JWT_CACHE_SLOTS);
}


typedef struct {
    const uint8_t  *mk;
    int64_t         now;
    int             failed;
} gh_load_t;

static int
gh_load_key(const gh_jwtkey_t *k, void *arg)
{
    gh_load_t   *ld = arg;
    gh_wkey_t   *w;
    char         label[64];
    uint8_t      pem[GH_PRIVPEM_MAX];
    size_t       n;
    ngx_uint_t   i, oldest;

    /* Retired keys stay in the store for the record; a worker needs only
     * the published ones. */
    if (k->retire_at != 0 && k->retire_at <= ld->now) {
        return 0;
    }
    if (gh_nkeys == GH_JWT_KEYS_MAX) {
        /* more than we hold: the newest matter, drop the oldest start */
        oldest = 0;
        for (i = 1; i < gh_nkeys; i++) {
            if (gh_keys[i].pub.sign_from < gh_keys[oldest].pub.sign_from) {
                oldest = i;
            }
        }
        if (gh_keys[oldest].pub.sign_from >= k->sign_from) {
            return 0;
        }
        w = &gh_keys[oldest];
        if (w->priv != NULL) {
            gh_wipe(w->priv, ngx_strlen(w->priv));
            free(w->priv);
        }
        ngx_memzero(w, sizeof(*w));
    } else {
        w = &gh_keys[gh_nkeys++];
    }
    w->pub = *k;
    gh_wipe(w->pub.sealed, sizeof(w->pub.sealed));
    ngx_snprintf((u_char *) label, sizeof(label), "jwt-key:%s%Z", k->kid);
    if (gh_unseal(ld->mk, label, k->sealed, pem, sizeof(pem) - 1, &n) == 0) {
        pem[n] = '\0';
        w->priv = strndup((const char *) pem, n);
    } else {
        ld->failed = 1;
    }
    gh_wipe(pem, sizeof(pem));
    return 0;
}


ngx_int_t
gh_jwt_keys_refresh(gh_store_t *st, uint64_t ver, const char *keypath,
    ngx_log_t *log)
{
    uint8_t    mk[GH_MASTER_KEY_BYTES];
    gh_load_t  ld;
    int        rc;

    if (ver == gh_keys_ver && gh_cache != NULL) {
        return NGX_OK;
    }
    if (gh_cache == NULL) {
        gh_cache = calloc(GH_JWT_CACHE_SLOTS, sizeof(gh_slot_t));
        if (gh_cache == NULL) {
            return NGX_ERROR;
        }
    }
    rc = gh_master_key_load(keypath, mk);
    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "gatehouse: cannot load the master key: %s; no "
                      "assertions will be signed", gh_strerror(rc));
        gh_keys_clear();
        gh_keys_ver = ver;
        return NGX_OK;
    }
    gh_keys_clear();
    gh_cache_flush();
    ld.mk = mk;
    ld.now = (int64_t) ngx_time();
    ld.failed = 0;
    rc = gh_jwtkey_list(st, gh_load_key, &ld);
    gh_wipe(mk, sizeof(mk));
    if (rc != 0) {
        gh_keys_clear();
        return NGX_ERROR;
    }
    if (ld.failed) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "gatehouse: a signing key does not unseal with this "
                      "master key");
    }
    gh_keys_ver = ver;
    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "gatehouse: %ui signing key(s) loaded (key set %uL)",
                  gh_nkeys, ver);
    return NGX_OK;
}


void
gh_jwt_exit(void)
{
    gh_cache_flush();
    free(gh_cache);
    gh_cache = NULL;
    gh_keys_clear();
}


/* The key that signs now: the newest whose sign_from has passed. */
static gh_wkey_t *
gh_signing_key(int64_t now)
{
    gh_wkey_t   *best = NULL;
    ngx_uint_t   i;

    for (i = 0; i < gh_nkeys; i++) {
        if (gh_keys[i].priv != NULL && gh_keys[i].pub.sign_from <= now
            && (best == NULL
                || gh_keys[i].pub.sign_from > best->pub.sign_from))
        {
            best = &gh_keys[i];
        }
    }
    return best;
}


/* FNV-1a over a NUL-terminated field, with a separator. */
static uint64_t
gh_fnv(uint64_t h, const u_char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff;
    return h * 0x100000001b3ULL;
}


ngx_int_t
gh_jwt_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_http_gatehouse_loc_conf_t   *lcf;
    gh_assertion_t                   a;
    gh_wkey_t                       *key;
    gh_slot_t                       *slot;
    const char                      *roles[GH_BINDINGS_MAX];
    ngx_str_t                       *aud;
    char                             audbuf[128], iss[512];
    char                            *tok;
    uint64_t                         fp;
    int64_t                          now;
    size_t                           nroles;
    ngx_uint_t                       idx;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_gatehouse_module);
    if (ctx == NULL || !ctx->authenticated || !ctx->allowed
        || gh_cache == NULL)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    aud = lcf->audience.len ? &lcf->audience : &lcf->app;
    if (aud->len == 0 || aud->len >= sizeof(audbuf)
        || mcf->public_url.len >= sizeof(iss))
    {
        v->not_found = 1;
        return NGX_OK;
    }
    ngx_memcpy(audbuf, aud->data, aud->len);
    audbuf[aud->len] = '\0';
    ngx_memcpy(iss, mcf->public_url.data, mcf->public_url.len);
    iss[mcf->public_url.len] = '\0';

    now = (int64_t) ngx_time();

    /* Everything the token asserts, except the times. */
    fp = 0xcbf29ce484222325ULL;
    fp = gh_fnv(fp, (u_char *) audbuf, aud->len);
    fp = gh_fnv(fp, (u_char *) ctx->user.id, ngx_strlen(ctx->user.id));
    fp = gh_fnv(fp, (u_char *) ctx->user.email, ngx_strlen(ctx->user.email));
    fp = gh_fnv(fp, (u_char *) ctx->user.name, ngx_strlen(ctx->user.name));
    fp = gh_fnv(fp, (u_char *) ctx->user.tenant,
                ngx_strlen(ctx->user.tenant));
    fp = gh_fnv(fp, (u_char *) ctx->roles_text, ngx_strlen(ctx->roles_text));
    fp = gh_fnv(fp, (u_char *) ctx->session.amr,
                ngx_strlen(ctx->session.amr));

    idx = (ctx->key[0] | ctx->key[1] << 8 | (ngx_uint_t) ctx->key[2] << 16)
          ^ (ngx_uint_t) (fp & 0xffffff);
    slot = &gh_cache[idx & (GH_JWT_CACHE_SLOTS - 1)];

    if (slot->token != NULL
        && ngx_memcmp(slot->session, ctx->key, sizeof(slot->session)) == 0
        && slot->fingerprint == fp
        && now < slot->exp - GH_JWT_REUSE_MARGIN)
    {
        gh_jwt_reused++;
        goto found;
    }

    key = gh_signing_key(now);
    if (key == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: no signing key: assertion not sent");
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_memzero(&a, sizeof(a));
    nroles = gh_user_active_roles(&ctx->user, now, roles);
    a.iss = iss;
    a.sub = ctx->user.id;
    a.aud = audbuf;
    a.email = ctx->user.email;
    a.name = ctx->user.name;
    a.tenant = ctx->user.tenant;
    a.roles = roles;
    a.nroles = nroles;
    a.amr = ctx->session.amr;
    a.iat = now;
    a.exp = now + mcf->jwt_lifetime;
    a.auth_time = ctx->session.created;

    if (gh_jwt_sign_assertion(&a, key->priv, key->pub.kid, &tok) != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "gatehouse: signing the assertion failed");
        v->not_found = 1;
        return NGX_OK;
    }
    gh_jwt_signed++;

    free(slot->token);
    ngx_memcpy(slot->session, ctx->key, sizeof(slot->session));
    slot->fingerprint = fp;
    slot->exp = a.exp;
    slot->token = tok;
    slot->len = ngx_strlen(tok);

found:
    /* the slot may be replaced by a later request: copy into the pool */
    v->data = ngx_pnalloc(r->pool, slot->len);
    if (v->data == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(v->data, slot->token, slot->len);
    v->len = slot->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    return NGX_OK;
}


/* The published keys: every key not yet retired. */
ngx_int_t
gh_jwks_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    json_t      *keys, *obj;
    ngx_uint_t   i;
    int64_t      now = (int64_t) ngx_time();
    ngx_str_t    body;
    char        *s;
    size_t       n;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return gh_send_error(r, NGX_HTTP_NOT_ALLOWED, "method_not_allowed",
                             "use GET");
    }
    keys = json_array();
    for (i = 0; keys != NULL && i < gh_nkeys; i++) {
        if (gh_keys[i].pub.retire_at != 0 && gh_keys[i].pub.retire_at <= now) {
            continue;
        }
        json_array_append_new(keys,
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                      "kty", "EC", "crv", "P-256", "use", "sig",
                      "alg", "ES256", "kid", gh_keys[i].pub.kid,
                      "x", gh_keys[i].pub.x, "y", gh_keys[i].pub.y));
    }
    obj = json_pack("{s:o}", "keys", keys);
    s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    n = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, n);
    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(body.data, s, n);
    body.len = n;
    free(s);

    /* Backends may cache the set a few minutes: a rotated key is published
     * a grace period (default 1 h) before it signs. */
    return gh_send_cacheable(r, "application/json", &body, 300);
}


/* Prometheus text; only for addresses in gatehouse_metrics_allow. The
 * counters are this worker's (label "pid"). */
ngx_int_t
gh_metrics_endpoint(ngx_http_request_t *r, ngx_http_gatehouse_ctx_t *ctx)
{
    ngx_http_gatehouse_main_conf_t  *mcf;
    ngx_str_t                        body;
    u_char                          *p;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_gatehouse_module);
    if (!gh_netset_contains(mcf->metrics_allow, &ctx->addr)) {
        return gh_send_error(r, NGX_HTTP_FORBIDDEN, "forbidden",
                             "metrics are not open to this address");
    }
    body.data = ngx_pnalloc(r->pool, 512);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    p = ngx_snprintf(body.data, 512,
        "# HELP gatehouse_jwt_signatures_total Assertions signed.\n"
        "# TYPE gatehouse_jwt_signatures_total counter\n"
        "gatehouse_jwt_signatures_total{pid=\"%P\"} %uL\n"
        "# HELP gatehouse_jwt_reused_total Requests served a cached assertion.\n"
        "# TYPE gatehouse_jwt_reused_total counter\n"
        "gatehouse_jwt_reused_total{pid=\"%P\"} %uL\n"
        "# HELP gatehouse_jwt_keys Signing keys loaded.\n"
        "# TYPE gatehouse_jwt_keys gauge\n"
        "gatehouse_jwt_keys{pid=\"%P\"} %ui\n",
        ngx_pid, gh_jwt_signed, ngx_pid, gh_jwt_reused, ngx_pid, gh_nkeys);
    body.len = p - body.data;
    return gh_send(r, NGX_HTTP_OK, "text/plain; version=0.0.4", &body, NULL,
                   NULL, 0);
}
