/* gatehouse — SAML 2.0 service provider per tenant, over lasso.
 *
 * lasso builds and signs our AuthnRequests and parses responses and
 * verifies XML signatures with the IdP's key; the decisions about a
 * response are made here, on the very xmlNodes whose signatures were
 * verified (see gh_saml_acs). Records in the store (store.h gh_kv_*):
 *
 *   idp:<tenant>          {"entity","flags","metadata"}
 *   sp:<tenant>           {"cert": PEM, "key": sealed PEM}
 *   req:<tenant>:<id>     {"exp","rd"}     an outstanding AuthnRequest
 *   asr:<tenant>:<id>     {"exp"}          a consumed assertion
 *   signin:<tenant>       "password" | "password+otp" | "saml"
 */
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
#include <pthread.h>
#include <ctype.h>

#include <jansson.h>
#include <sodium.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/rand.h>

#include <lasso/lasso.h>
#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_response.h>
#include <lasso/xml/saml-2.0/saml2_assertion.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>
#include <lasso/xml/saml-2.0/samlp2_logout_request.h>
#include <libxml/tree.h>

#include "gatehouse/error.h"
#include "gatehouse/saml.h"
#include "gatehouse/seal.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

#define NS_SAMLP  "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_SAML   "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_DS     "http://www.w3.org/2000/09/xmldsig#"
#define BEARER    "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define FMT_EMAIL "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
#define SP_KEY_BITS   2048
#define SP_CERT_DAYS  3650
#define SP_PEM_MAX    8192
#define KEY_MAX       400

static pthread_once_t saml_once = PTHREAD_ONCE_INIT;
static int saml_rc = GH_ECRYPTO;

static void saml_init_once(void)
{
    saml_rc = lasso_init() == 0 ? 0 : GH_ECRYPTO;
}

int gh_saml_init(void)
{
    pthread_once(&saml_once, saml_init_once);
    return saml_rc;
}

/* ---- names ---- */

static const char *const signins[] = { "password", "password+otp", "saml" };

const char *gh_signin_name(int s)
{
    return s >= 0 && s <= GH_SIGNIN_SAML ? signins[s] : "unknown";
}

int gh_signin_parse(const char *s)
{
    int i;

    for (i = 0; s != NULL && i <= GH_SIGNIN_SAML; i++)
        if (strcmp(s, signins[i]) == 0)
            return i;
    return -1;
}

/* tenant names are [a-z0-9-] (store.c tenant_ok); ids must not carry our
 * separator or anything odd either. */
static int tenant_name_ok(const char *t)
{
    size_t i, n = t != NULL ? strlen(t) : 0;

    if (n == 0 || n > GH_TENANT_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
              t[i] == '-' || t[i] == '_' || t[i] == '.'))
            return 0;
    return 1;
}

static int xml_id_ok(const char *id)
{
    size_t i, n = id != NULL ? strlen(id) : 0;

    if (n == 0 || n > 120)
        return 0;
    for (i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '-' ||
              id[i] == '.'))
            return 0;
    return 1;
}

static int rkey(char *out, const char *kind, const char *tenant,
                const char *id)
{
    int n = id != NULL ? snprintf(out, KEY_MAX, "%s:%s:%s", kind, tenant, id)
                       : snprintf(out, KEY_MAX, "%s:%s", kind, tenant);

    return n > 0 && n < KEY_MAX ? 0 : GH_ETOOBIG;
}

/* ---- sign-in ---- */

int gh_saml_signin_get(gh_store_t *st, const char *tenant, int *signin)
{
    char key[KEY_MAX], *v = NULL;
    int rc;

    *signin = GH_SIGNIN_PASSWORD;
    if (!tenant_name_ok(tenant))
        return GH_EINVAL;
    if ((rc = rkey(key, "signin", tenant, NULL)) != 0)
        return rc;
    rc = gh_kv_get(st, key, &v, NULL);
    if (rc == GH_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    rc = gh_signin_parse(v);
    free(v);
    if (rc < 0)
        return GH_ESTORE;   /* unknown: fail closed */
    *signin = rc;
    return 0;
}

int gh_saml_signin_set(gh_store_t *st, const char *tenant, int signin)
{
    char key[KEY_MAX];
    gh_tenant_t t;
    const char *name = gh_signin_name(signin);
    int rc;

    if (signin < 0 || signin > GH_SIGNIN_SAML || !tenant_name_ok(tenant))
        return GH_EINVAL;
    if ((rc = gh_tenant_get(st, tenant, &t)) != 0)
        return rc == GH_ENOTFOUND ? GH_EBADTENANT : rc;
    if ((rc = rkey(key, "signin", tenant, NULL)) != 0)
        return rc;
    return gh_kv_put(st, key, name, strlen(name), 0);
}

/* ---- home-realm discovery ---- */

/* Lower-case copy of a domain, or GH_EINVAL. */
static int domain_norm(const char *in, size_t n, char out[GH_DOMAIN_MAX + 1])
{
    size_t i;
    int dot = 0;

    if (n == 0 || n > GH_DOMAIN_MAX)
        return GH_EINVAL;
    for (i = 0; i < n; i++) {
        char c = in[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return GH_EINVAL;
        dot |= c == '.';
        out[i] = c;
    }
    out[n] = '\0';
    return dot && out[0] != '.' && out[n - 1] != '.' ? 0 : GH_EINVAL;
}

/* Map domain to tenant. move: take it from whichever tenant holds it (the
 * operator's `tenant set --domain`); else a domain another tenant holds is
 * GH_EEXIST (create-only: of two tenants adding one domain at once, one
 * wins) and one the tenant holds is a no-op. */
static int domain_put(gh_store_t *st, const char *tenant, const char *domain,
                      int move)
{
    char d[GH_DOMAIN_MAX + 1], key[KEY_MAX], *v = NULL;
    gh_tenant_t t;
    int rc;

    if (!tenant_name_ok(tenant) || domain == NULL ||
        domain_norm(domain, strlen(domain), d) != 0)
        return GH_EINVAL;
    if ((rc = gh_tenant_get(st, tenant, &t)) != 0)
        return rc == GH_ENOTFOUND ? GH_EBADTENANT : rc;
    if ((rc = rkey(key, "domain", d, NULL)) != 0)
        return rc;
    rc = gh_kv_put(st, key, tenant, strlen(tenant), !move);
    if (rc == GH_EEXIST) {
        if ((rc = gh_kv_get(st, key, &v, NULL)) != 0)
            return rc;
        rc = strcmp(v, tenant) == 0 ? 0 : GH_EEXIST;
        free(v);
        return rc;
    }
    /* from now on the login page asks for the email first */
    if (rc == 0)
        rc = gh_kv_put(st, GH_SAML_HRD_KEY, "1", 1, 0);
    return rc;
}

int gh_saml_domain_set(gh_store_t *st, const char *tenant, const char *domain)
{
    return domain_put(st, tenant, domain, 1);
}

int gh_saml_domain_add(gh_store_t *st, const char *tenant, const char *domain)
{
    return domain_put(st, tenant, domain, 0);
}

int gh_saml_domain_del(gh_store_t *st, const char *tenant, const char *domain)
{
    char d[GH_DOMAIN_MAX + 1], key[KEY_MAX], *v = NULL;
    int rc;

    if (!tenant_name_ok(tenant) || domain == NULL ||
        domain_norm(domain, strlen(domain), d) != 0)
        return GH_EINVAL;
    if ((rc = rkey(key, "domain", d, NULL)) != 0)
        return rc;
    if ((rc = gh_kv_get(st, key, &v, NULL)) != 0)
        return rc;
    rc = strcmp(v, tenant) == 0 ? gh_kv_del(st, key) : GH_ENOTFOUND;
    free(v);
    return rc;
}

struct domain_walk {
    const char *tenant;
    int (*cb)(const char *domain, const char *tenant, void *arg);
    void *arg;
};

static int domain_each(const char *key, const char *val, void *arg)
{
    const struct domain_walk *w = arg;

    if (!tenant_name_ok(val))
        return GH_ESTORE;
    if (w->tenant != NULL && strcmp(val, w->tenant) != 0)
        return 0;
    return w->cb(key + sizeof "domain:" - 1, val, w->arg);
}

int gh_saml_domains(gh_store_t *st, const char *tenant,
                    int (*cb)(const char *domain, const char *tenant,
                              void *arg),
                    void *arg)
{
    struct domain_walk w = { tenant, cb, arg };

    if ((tenant != NULL && !tenant_name_ok(tenant)) || cb == NULL)
        return GH_EINVAL;
    return gh_kv_walk(st, "domain:", domain_each, &w, GH_DOMAINS_MAX);
}

int gh_saml_discovery_on(gh_store_t *st)
{
    char *v = NULL;
    int rc = gh_kv_get(st, GH_SAML_HRD_KEY, &v, NULL);

    free(v);
    return rc == 0 ? 1 : rc == GH_ENOTFOUND ? 0 : rc;
}

int gh_saml_domain_tenant(gh_store_t *st, const char *email, size_t len,
                          char tenant[GH_TENANT_MAX + 1])
{
    char d[GH_DOMAIN_MAX + 1], key[KEY_MAX], *v = NULL;
    const char *at = NULL;
    size_t i;
    int rc;

    for (i = 0; i < len; i++)
        if (email[i] == '@')
            at = email + i;
    if (at == NULL ||
        domain_norm(at + 1, len - (size_t)(at + 1 - email), d) != 0)
        return GH_ENOTFOUND;
    if ((rc = rkey(key, "domain", d, NULL)) != 0)
        return GH_ENOTFOUND;
    if ((rc = gh_kv_get(st, key, &v, NULL)) != 0)
        return rc;
    rc = tenant_name_ok(v) ? 0 : GH_ESTORE;
    if (rc == 0)
        snprintf(tenant, GH_TENANT_MAX + 1, "%s", v);
    free(v);
    return rc;
}

/* ---- the pure checks ---- */

int gh_saml_doc_safe(const char *doc, size_t len)
{
    size_t i = 0;

    if (doc == NULL || len == 0 || memchr(doc, '\0', len) != NULL)
        return GH_EINVAL;
    if (len >= 3 && (unsigned char)doc[0] == 0xEF &&
        (unsigned char)doc[1] == 0xBB && (unsigned char)doc[2] == 0xBF)
        i = 3;
    while (i < len && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\r' ||
                       doc[i] == '\n'))
        i++;
    if (i >= len || doc[i] != '<')
        return GH_EINVAL;
    /* Any markup declaration but a comment or CDATA: <!DOCTYPE, <!ENTITY,
     * <!ELEMENT, <!ATTLIST ... — refused before the parser sees them. */
    for (; i + 1 < len; i++) {
        if (doc[i] != '<' || doc[i + 1] != '!')
            continue;
        if (len - i >= 4 && memcmp(doc + i, "<!--", 4) == 0)
            continue;
        if (len - i >= 9 && memcmp(doc + i, "<![CDATA[", 9) == 0)
            continue;
        return GH_EDENIED;
    }
    return 0;
}

int gh_saml_time_parse(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, se, n = 0;
    const char *p;
    time_t t;

    if (s == NULL || strlen(s) < 20 || strlen(s) > 40)
        return GH_EINVAL;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n)
            != 6 || n != 19)
        return GH_EINVAL;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return GH_EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0)
        return GH_EINVAL;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59 || se > 60 || h < 0 || mi < 0 || se < 0)
        return GH_EINVAL;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return GH_EINVAL;
    *out = (int64_t)t;
    return 0;
}

int gh_saml_sigalg_ok(const char *uri, int allow_sha1)
{
    static const char *const good[] = {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    };
    size_t i;

    if (uri == NULL)
        return 0;
    for (i = 0; i < sizeof good / sizeof good[0]; i++)
        if (strcmp(uri, good[i]) == 0)
            return 1;
    return allow_sha1 &&
           strcmp(uri, "http://www.w3.org/2000/09/xmldsig#rsa-sha1") == 0;
}

int gh_saml_digest_ok(const char *uri, int allow_sha1)
{
    if (uri == NULL)
        return 0;
    if (strcmp(uri, "http://www.w3.org/2001/04/xmlenc#sha256") == 0 ||
        strcmp(uri, "http://www.w3.org/2001/04/xmldsig-more#sha384") == 0 ||
        strcmp(uri, "http://www.w3.org/2001/04/xmlenc#sha512") == 0)
        return 1;
    return allow_sha1 && strcmp(uri, "http://www.w3.org/2000/09/xmldsig#sha1") == 0;
}

int gh_saml_window_ok(const char *not_before, const char *not_on_or_after,
                      int require_end, int64_t now, int64_t skew)
{
    int64_t t;

    if (not_before != NULL) {
        if (gh_saml_time_parse(not_before, &t) != 0)
            return GH_EINVAL;
        if (now + skew < t)
            return GH_EDENIED;
    }
    if (not_on_or_after == NULL)
        return require_end ? GH_EINVAL : 0;
    if (gh_saml_time_parse(not_on_or_after, &t) != 0)
        return GH_EINVAL;
    if (now - skew >= t)
        return GH_EEXPIRED;
    return 0;
}

/* ---- SP key pair ---- */

/* A fresh RSA key and self-signed certificate, both PEM (malloc'd). */
static int sp_keypair_new(const char *tenant, char **key_pem, char **cert_pem)
{
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    BIO *kb = NULL, *cb = NULL;
    char cn[GH_TENANT_MAX + 32];
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    char *kp;
    long kl, cl;
    int rc = GH_ECRYPTO;

    *key_pem = *cert_pem = NULL;
    pk = EVP_RSA_gen(SP_KEY_BITS);
    x = X509_new();
    if (pk == NULL || x == NULL)
        goto out;
    randombytes_buf(serial, sizeof serial);
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    snprintf(cn, sizeof cn, "gatehouse SAML SP %s", tenant);
    if (bn == NULL || X509_set_version(x, 2) != 1 ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 86400L * SP_CERT_DAYS) == NULL ||
        X509_set_pubkey(x, pk) != 1)
        goto out;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 ||
        X509_sign(x, pk, EVP_sha256()) <= 0)
        goto out;
    kb = BIO_new(BIO_s_mem());
    cb = BIO_new(BIO_s_mem());
    if (kb == NULL || cb == NULL ||
        PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cb, x) != 1)
        goto out;
    kl = BIO_get_mem_data(kb, &kp);
    if (kl <= 0 || kl >= SP_PEM_MAX || (*key_pem = calloc(1, (size_t)kl + 1)) == NULL)
        goto out;
    memcpy(*key_pem, kp, (size_t)kl);
    cl = BIO_get_mem_data(cb, &kp);
    if (cl <= 0 || cl >= SP_PEM_MAX || (*cert_pem = calloc(1, (size_t)cl + 1)) == NULL)
        goto out;
    memcpy(*cert_pem, kp, (size_t)cl);
    rc = 0;
out:
    if (rc != 0) {
        if (*key_pem != NULL) {
            sodium_memzero(*key_pem, strlen(*key_pem));
            free(*key_pem);
        }
        free(*cert_pem);
        *key_pem = *cert_pem = NULL;
    }
    BIO_free(kb);   /* BIO_free of a mem BIO clears nothing: the key stays
                       only in freed heap; OpenSSL offers no wiping mem BIO */
    BIO_free(cb);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

/* Make the tenant's SP key pair when it has none. */
static int sp_ensure(gh_store_t *st, const uint8_t master[32],
                     const char *tenant)
{
    char key[KEY_MAX], label[KEY_MAX], *v = NULL, *kp = NULL, *cp = NULL;
    char sealed[GH_SEAL_TEXT_LEN(SP_PEM_MAX)];
    json_t *o = NULL;
    char *text = NULL;
    int rc;

    if ((rc = rkey(key, "sp", tenant, NULL)) != 0 ||
        (rc = rkey(label, "saml-sp-key", tenant, NULL)) != 0)
        return rc;
    rc = gh_kv_get(st, key, &v, NULL);
    free(v);
    if (rc != GH_ENOTFOUND)
        return rc;
    if ((rc = sp_keypair_new(tenant, &kp, &cp)) != 0)
        return rc;
    rc = gh_seal(master, label, (const uint8_t *)kp, strlen(kp), sealed,
                 sizeof sealed);
    sodium_memzero(kp, strlen(kp));
    free(kp);
    if (rc != 0)
        goto out;
    o = json_pack("{s:s,s:s}", "cert", cp, "key", sealed);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    rc = text == NULL ? GH_ENOMEM : gh_kv_put(st, key, text, strlen(text), 1);
    if (rc == GH_EEXIST)   /* made by a concurrent call: theirs stands */
        rc = 0;
out:
    free(text);
    json_decref(o);
    free(cp);
    return rc;
}

/* The tenant's certificate PEM and (when master is given) its unsealed
 * private key PEM (caller wipes and frees). */
static int sp_load(gh_store_t *st, const uint8_t master[32],
                   const char *tenant, char **cert, char **pkey)
{
    char key[KEY_MAX], label[KEY_MAX], *v = NULL;
    json_t *o = NULL;
    json_error_t err;
    const char *c, *k;
    size_t n;
    int rc;

    *cert = NULL;
    if (pkey != NULL)
        *pkey = NULL;
    if ((rc = rkey(key, "sp", tenant, NULL)) != 0 ||
        (rc = rkey(label, "saml-sp-key", tenant, NULL)) != 0)
        return rc;
    if ((rc = gh_kv_get(st, key, &v, NULL)) != 0)
        return rc;
    o = json_loads(v, 0, &err);
    rc = GH_ESTORE;
    if (o == NULL || json_unpack(o, "{s:s,s:s}", "cert", &c, "key", &k) != 0)
        goto out;
    if ((*cert = strdup(c)) == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    if (pkey != NULL) {
        if ((*pkey = calloc(1, SP_PEM_MAX)) == NULL) {
            rc = GH_ENOMEM;
            goto out;
        }
        rc = gh_unseal(master, label, k, (uint8_t *)*pkey, SP_PEM_MAX - 1, &n);
        if (rc != 0)
            goto out;
        (*pkey)[n] = '\0';
    }
    rc = 0;
out:
    if (rc != 0) {
        free(*cert);
        *cert = NULL;
        if (pkey != NULL && *pkey != NULL) {
            sodium_memzero(*pkey, SP_PEM_MAX);
            free(*pkey);
            *pkey = NULL;
        }
    }
    json_decref(o);
    free(v);
    return rc;
}

/* The certificate's DER, base64, for metadata (malloc'd). */
static char *cert_b64(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    char *out = NULL;
    int n;

    BIO_free(b);
    if (x == NULL)
        return NULL;
    n = i2d_X509(x, &der);
    X509_free(x);
    if (n <= 0)
        return NULL;
    out = malloc(4 * ((size_t)n / 3 + 1) + 1);
    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, der, n);
    OPENSSL_free(der);
    return out;
}

static int base_ok(const char *base)
{
    size_t i, n = base != NULL ? strlen(base) : 0;

    if (n < 9 || n > GH_SAML_BASE_MAX || strncmp(base, "https://", 8) != 0)
        return 0;
    for (i = 8; i < n; i++)
        if (!((base[i] >= 'a' && base[i] <= 'z') ||
              (base[i] >= 'A' && base[i] <= 'Z') ||
              (base[i] >= '0' && base[i] <= '9') || base[i] == '.' ||
              base[i] == '-' || base[i] == ':' || base[i] == '[' ||
              base[i] == ']'))
            return 0;
    return 1;
}

static int sp_url(char *out, size_t cap, const char *base, const char *tenant,
                  const char *what)
{
    int n = snprintf(out, cap, "%s/.gatehouse/saml/%s/%s", base, tenant, what);

    return n > 0 && (size_t)n < cap ? 0 : GH_ETOOBIG;
}

static int sp_metadata_text(const char *base, const char *tenant,
                            const char *cert_pem, char **xml)
{
    char entity[512], acs[512], slo[512];
    char *der = NULL;
    size_t cap;
    int n, rc;

    *xml = NULL;
    if (!base_ok(base) || !tenant_name_ok(tenant))
        return GH_EINVAL;
    if ((rc = sp_url(entity, sizeof entity, base, tenant, "metadata")) != 0 ||
        (rc = sp_url(acs, sizeof acs, base, tenant, "acs")) != 0 ||
        (rc = sp_url(slo, sizeof slo, base, tenant, "slo")) != 0)
        return rc;
    if ((der = cert_b64(cert_pem)) == NULL)
        return GH_ESTORE;
    cap = strlen(der) + 4096;
    if ((*xml = malloc(cap)) == NULL) {
        free(der);
        return GH_ENOMEM;
    }
    n = snprintf(*xml, cap,
        "<?xml version=\"1.0\"?>\n"
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\""
        " xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"%s\">\n"
        " <md:SPSSODescriptor AuthnRequestsSigned=\"true\""
        " protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n"
        "  <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data>"
        "<ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor>\n"
        "  <md:SingleLogoutService"
        " Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\""
        " Location=\"%s\"/>\n"
        "  <md:NameIDFormat>" FMT_EMAIL "</md:NameIDFormat>\n"
        "  <md:AssertionConsumerService"
        " Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\""
        " Location=\"%s\" index=\"0\" isDefault=\"true\"/>\n"
        " </md:SPSSODescriptor>\n"
        "</md:EntityDescriptor>\n", entity, der, slo, acs);
    free(der);
    if (n <= 0 || (size_t)n >= cap) {
        free(*xml);
        *xml = NULL;
        return GH_ETOOBIG;
    }
    return 0;
}

int gh_saml_sp_metadata(gh_store_t *st, const char *tenant, const char *base,
                        char **xml)
{
    char *cert = NULL;
    int rc;

    *xml = NULL;
    if (!tenant_name_ok(tenant) || !base_ok(base))
        return GH_EINVAL;
    if ((rc = sp_load(st, NULL, tenant, &cert, NULL)) != 0)
        return rc;
    rc = sp_metadata_text(base, tenant, cert, xml);
    free(cert);
    return rc;
}

/* ---- IdP ---- */

typedef struct {
    char    *entity;
    char    *metadata;
    unsigned flags;
} idp_rec_t;

static void idp_free(idp_rec_t *i)
{
    free(i->entity);
    free(i->metadata);
    memset(i, 0, sizeof *i);
}

static int idp_load(gh_store_t *st, const char *tenant, idp_rec_t *out)
{
    char key[KEY_MAX], *v = NULL;
    json_t *o = NULL;
    json_error_t err;
    const char *e, *m;
    json_int_t f;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = rkey(key, "idp", tenant, NULL)) != 0)
        return rc;
    if ((rc = gh_kv_get(st, key, &v, NULL)) != 0)
        return rc;
    o = json_loads(v, 0, &err);
    rc = GH_ESTORE;
    if (o != NULL && json_unpack(o, "{s:s,s:s,s:I}", "entity", &e,
                                 "metadata", &m, "flags", &f) == 0 &&
        f >= 0 && f <= 3) {
        out->entity = strdup(e);
        out->metadata = strdup(m);
        out->flags = (unsigned)f;
        rc = out->entity && out->metadata ? 0 : GH_ENOMEM;
        if (rc != 0)
            idp_free(out);
    }
    json_decref(o);
    free(v);
    return rc;
}

/* A lasso server for the tenant's SP (with its private key when pkey) and
 * its IdP. */
static int make_server(const char *base, const char *tenant, const char *cert,
                       const char *pkey, const char *idp_md, LassoServer **out,
                       char **idp_entity)
{
    char *md = NULL;
    LassoServer *s;
    GList *l;
    int rc;

    *out = NULL;
    if ((rc = sp_metadata_text(base, tenant, cert, &md)) != 0)
        return rc;
    s = lasso_server_new_from_buffers(md, pkey, NULL, cert);
    free(md);
    if (s == NULL)
        return GH_ECRYPTO;
    /* lasso's Debian default is RSA-SHA1 (and its setter is not exported) */
    s->signature_method = LASSO_SIGNATURE_METHOD_RSA_SHA256;
    if (lasso_server_add_provider_from_buffer(s, LASSO_PROVIDER_ROLE_IDP,
                                              idp_md, NULL, NULL) != 0) {
        g_object_unref(s);
        return GH_EINVAL;
    }
    l = g_hash_table_get_keys(s->providers);
    if (l == NULL || l->next != NULL) {
        g_list_free(l);
        g_object_unref(s);
        return GH_EINVAL;
    }
    if (idp_entity != NULL && (*idp_entity = strdup((char *)l->data)) == NULL)
        rc = GH_ENOMEM;
    g_list_free(l);
    if (rc != 0) {
        g_object_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Everything a message of the tenant needs: its IdP record, its SP
 * certificate and a lasso server holding both (with the SP's private key
 * when signing). */
typedef struct {
    idp_rec_t    idp;
    char        *cert, *ent;
    LassoServer *s;
} sp_ctx_t;

static void sp_close(sp_ctx_t *c)
{
    if (c->s != NULL)
        g_object_unref(c->s);
    free(c->cert);
    free(c->ent);
    idp_free(&c->idp);
    memset(c, 0, sizeof *c);
}

/* master NULL: to verify only (no private key is unsealed). GH_ENOTFOUND
 * when the tenant has no IdP. The unsealed key is wiped as soon as lasso
 * holds it. */
static int sp_open(gh_store_t *st, const uint8_t master[32],
                   const char *tenant, const char *base, sp_ctx_t *c)
{
    char *pkey = NULL;
    int rc;

    memset(c, 0, sizeof *c);
    if ((rc = gh_saml_init()) == 0 && (rc = idp_load(st, tenant, &c->idp)) == 0 &&
        (rc = sp_load(st, master, tenant, &c->cert,
                      master != NULL ? &pkey : NULL)) == 0)
        rc = make_server(base, tenant, c->cert, pkey, c->idp.metadata, &c->s,
                         &c->ent);
    if (pkey != NULL) {
        sodium_memzero(pkey, SP_PEM_MAX);
        free(pkey);
    }
    if (rc != 0)
        sp_close(c);
    return rc;
}

int gh_saml_idp_set(gh_store_t *st, const uint8_t master[32],
                    const char *tenant, const char *metadata, size_t len,
                    unsigned flags, char **entity)
{
    char key[KEY_MAX], *cert = NULL, *ent = NULL, *text = NULL, *sso;
    LassoServer *s = NULL;
    LassoProvider *p;
    json_t *o = NULL;
    gh_tenant_t t;
    int rc;

    if (entity != NULL)
        *entity = NULL;
    if (!tenant_name_ok(tenant) || metadata == NULL || len == 0 ||
        len > GH_SAML_METADATA_MAX || strlen(metadata) != len ||
        (flags & ~(unsigned)(GH_SAML_IDP_INITIATED | GH_SAML_ALLOW_SHA1)))
        return GH_EINVAL;
    if (gh_saml_doc_safe(metadata, len) != 0)
        return GH_EINVAL;
    if ((rc = gh_tenant_get(st, tenant, &t)) != 0)
        return rc == GH_ENOTFOUND ? GH_EBADTENANT : rc;
    if ((rc = gh_saml_init()) != 0 || (rc = sp_ensure(st, master, tenant)) != 0 ||
        (rc = sp_load(st, NULL, tenant, &cert, NULL)) != 0)
        goto out;
    rc = make_server("https://check.invalid", tenant, cert, NULL, metadata,
                     &s, &ent);
    if (rc != 0)
        goto out;
    p = lasso_server_get_provider(s, ent);
    rc = GH_EINVAL;
    sso = p != NULL ? lasso_provider_get_metadata_one_for_role(p,
              LASSO_PROVIDER_ROLE_IDP, "SingleSignOnService HTTP-Redirect") : NULL;
    if (sso == NULL)
        goto out;
    g_free(sso);
    if ((rc = rkey(key, "idp", tenant, NULL)) != 0)
        goto out;
    o = json_pack("{s:s,s:s,s:I}", "entity", ent, "metadata", metadata,
                  "flags", (json_int_t)flags);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    rc = text == NULL ? GH_ENOMEM : gh_kv_put(st, key, text, strlen(text), 0);
    if (rc == 0 && entity != NULL) {
        *entity = ent;
        ent = NULL;
    }
out:
    if (s != NULL)
        g_object_unref(s);
    json_decref(o);
    free(text);
    free(ent);
    free(cert);
    return rc;
}

/* ---- SP-initiated login ---- */

static int record_put(gh_store_t *st, const char *key, json_t *o, int create)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = text == NULL ? GH_ENOMEM
                          : gh_kv_put(st, key, text, strlen(text), create);

    free(text);
    json_decref(o);
    return rc;
}

static int exp_passed(const char *val, size_t len, void *arg)
{
    json_error_t err;
    json_t *o = json_loadb(val, len, 0, &err);
    json_int_t e = 0;
    int r = o == NULL || json_unpack(o, "{s:I}", "exp", &e) != 0 ||
            e <= *(int64_t *)arg;

    json_decref(o);
    return r;
}

/* The hex SHA-256 of the browser nonce: what a request record keeps. */
static void nonce_hash(const char *nonce, char out[65])
{
    uint8_t h[32];

    crypto_hash_sha256(h, (const uint8_t *)nonce, strlen(nonce));
    sodium_bin2hex(out, 65, h, sizeof h);
}

int gh_saml_login_start(gh_store_t *st, const uint8_t master[32],
                        const char *tenant, const char *base, const char *rd,
                        const char *nonce, int64_t now, char **url)
{
    char nh[65], key[KEY_MAX], prefix[KEY_MAX];
    LassoLogin *login = NULL;
    LassoSamlp2AuthnRequest *req;
    const char *id;
    sp_ctx_t c;
    int rc;

    *url = NULL;
    if (!tenant_name_ok(tenant) || !base_ok(base) || rd == NULL ||
        strlen(rd) > GH_SAML_RD_MAX || nonce == NULL || strlen(nonce) < 16)
        return GH_EINVAL;
    nonce_hash(nonce, nh);
    if ((rc = sp_open(st, master, tenant, base, &c)) != 0)
        return rc;
    rc = GH_ECRYPTO;
    if ((login = lasso_login_new(c.s)) == NULL ||
        lasso_login_init_authn_request(login, c.ent, LASSO_HTTP_METHOD_REDIRECT) != 0)
        goto out;
    req = LASSO_SAMLP2_AUTHN_REQUEST(LASSO_PROFILE(login)->request);
    g_free(req->ProtocolBinding);
    req->ProtocolBinding = g_strdup(LASSO_SAML2_METADATA_BINDING_POST);
    if (req->NameIDPolicy != NULL) {
        g_free(req->NameIDPolicy->Format);
        req->NameIDPolicy->Format = g_strdup(FMT_EMAIL);
        req->NameIDPolicy->AllowCreate = TRUE;
    }
    if (lasso_login_build_authn_request_msg(login) != 0 ||
        LASSO_PROFILE(login)->msg_url == NULL)
        goto out;
    id = LASSO_SAMLP2_REQUEST_ABSTRACT(req)->ID;
    if (!xml_id_ok(id))
        goto out;
    /* forget abandoned requests of this tenant, a few at a time */
    if (rkey(prefix, "req", tenant, "") == 0)
        (void)gh_kv_sweep(st, prefix, exp_passed, &now, 16);
    if ((rc = rkey(key, "req", tenant, id)) != 0 ||
        (rc = record_put(st, key, json_pack("{s:I,s:s,s:s}", "exp",
                         (json_int_t)(now + GH_SAML_REQUEST_TTL), "rd", rd,
                         "nonce", nh), 1)) != 0)
        goto out;
    if ((*url = strdup(LASSO_PROFILE(login)->msg_url)) == NULL)
        rc = GH_ENOMEM;
out:
    if (login != NULL)
        g_object_unref(login);
    sp_close(&c);
    return rc;
}

/* ---- the response ---- */

static int is_el(const xmlNode *n, const char *ns, const char *name)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL &&
           n->ns->href != NULL && strcmp((const char *)n->ns->href, ns) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

/* The one child element ns:name of n; NULL when none, and *dup set when
 * there are several. */
static xmlNode *child(const xmlNode *n, const char *ns, const char *name,
                      int *dup)
{
    xmlNode *c, *found = NULL;

    for (c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
        if (is_el(c, ns, name)) {
            if (found != NULL && dup != NULL)
                *dup = 1;
            if (found == NULL)
                found = c;
        }
    return found;
}

/* Attribute value (a pointer into a per-call arena is overkill here: the
 * caller frees with xmlFree). */
static char *attr(const xmlNode *n, const char *name)
{
    return n != NULL ? (char *)xmlGetNoNsProp((xmlNode *)n,
                                              (const xmlChar *)name) : NULL;
}

static int attr_eq(const xmlNode *n, const char *name, const char *want)
{
    char *v = attr(n, name);
    int r = v != NULL && want != NULL && strcmp(v, want) == 0;

    xmlFree(v);
    return r;
}

static char *text_of(const xmlNode *n)
{
    return n != NULL ? (char *)xmlNodeGetContent((xmlNode *)n) : NULL;
}

/* 1 when both elements carry the same, present ID. */
static int same_id(const xmlNode *a, const xmlNode *b)
{
    char *x = attr(a, "ID"), *y = attr(b, "ID");
    int r = x != NULL && y != NULL && strcmp(x, y) == 0;

    xmlFree(x);
    xmlFree(y);
    return r;
}

/* Check one ds:Signature (a child of el): exactly one Reference, to el's
 * own ID, with only the enveloped-signature and exclusive c14n
 * transforms, and acceptable algorithms. */
static const char *sig_shape(const xmlNode *el, const xmlNode *sig,
                             int allow_sha1)
{
    xmlNode *si, *ref, *c, *tr;
    char *id = attr(el, "ID"), *uri = NULL, *alg = NULL;
    const char *why = "signature_shape";
    int dup = 0;

    si = child(sig, NS_DS, "SignedInfo", &dup);
    ref = child(si, NS_DS, "Reference", &dup);
    if (id == NULL || si == NULL || ref == NULL || dup)
        goto out;
    uri = attr(ref, "URI");
    if (uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0)
        goto out;
    alg = attr(child(si, NS_DS, "SignatureMethod", &dup), "Algorithm");
    if (!gh_saml_sigalg_ok(alg, allow_sha1)) {
        why = "signature_algorithm";
        goto out;
    }
    xmlFree(alg);
    alg = attr(child(ref, NS_DS, "DigestMethod", &dup), "Algorithm");
    if (!gh_saml_digest_ok(alg, allow_sha1)) {
        why = "signature_algorithm";
        goto out;
    }
    tr = child(ref, NS_DS, "Transforms", &dup);
    for (c = tr != NULL ? tr->children : NULL; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!is_el(c, NS_DS, "Transform") ||
            !(attr_eq(c, "Algorithm",
                      "http://www.w3.org/2000/09/xmldsig#enveloped-signature") ||
              attr_eq(c, "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#")))
            goto out;
    }
    why = dup ? "signature_shape" : NULL;
out:
    xmlFree(id);
    xmlFree(uri);
    xmlFree(alg);
    return why;
}

/* Every ds:Signature in the document must sit directly under the Response
 * or under one of its Assertions. */
static int sigs_placed(const xmlNode *n, const xmlNode *root)
{
    const xmlNode *c;

    for (c = n->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, NS_DS, "Signature") &&
            !(n == root || (is_el(n, NS_SAML, "Assertion") && n->parent == root)))
            return 0;
        if (!sigs_placed(c, root))
            return 0;
    }
    return 1;
}

static int b64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    unsigned char *buf;
    int n1 = 0, n2 = 0;

    *out = NULL;
    if (ctx == NULL)
        return GH_ENOMEM;
    if ((buf = malloc(len / 4 * 3 + 4)) == NULL) {
        EVP_ENCODE_CTX_free(ctx);
        return GH_ENOMEM;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)in, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n1, &n2) != 1) {
        EVP_ENCODE_CTX_free(ctx);
        free(buf);
        return GH_EINVAL;
    }
    EVP_ENCODE_CTX_free(ctx);
    buf[n1 + n2] = '\0';
    *out = (char *)buf;
    *outlen = (size_t)(n1 + n2);
    return 0;
}

static void set_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* The user's email: the NameID when its format is emailAddress, else the
 * first value of the attribute mail / email / urn:oid:...3 (mail). */
static int subject_email(xmlNode *as, xmlNode *nameid, gh_saml_result_t *res)
{
    static const char *const names[] = {
        "mail", "email", "urn:oid:0.9.2342.19200300.100.1.3",
    };
    char *v = text_of(nameid);
    xmlNode *stmt, *a, *av;
    size_t i;

    set_str(res->nameid, sizeof res->nameid, v);
    if (v != NULL && attr_eq(nameid, "Format", FMT_EMAIL)) {
        set_str(res->email, sizeof res->email, v);
        xmlFree(v);
        return res->email[0] ? 0 : GH_EINVAL;
    }
    xmlFree(v);
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        for (stmt = as->children; stmt != NULL; stmt = stmt->next) {
            if (!is_el(stmt, NS_SAML, "AttributeStatement"))
                continue;
            for (a = stmt->children; a != NULL; a = a->next) {
                if (!is_el(a, NS_SAML, "Attribute") ||
                    !attr_eq(a, "Name", names[i]))
                    continue;
                av = child(a, NS_SAML, "AttributeValue", NULL);
                v = text_of(av);
                set_str(res->email, sizeof res->email, v);
                xmlFree(v);
                return res->email[0] ? 0 : GH_EINVAL;
            }
        }
    return GH_EINVAL;
}

#define DENY(why) do { res->reason = (why); rc = GH_EDENIED; goto out; } while (0)

int gh_saml_acs(gh_store_t *st, const uint8_t master[32], const char *tenant,
                const char *base, const char *b64, size_t len,
                const char *nonce, int64_t now, int64_t skew,
                gh_saml_result_t *res)
{
    char *doc = NULL, *msg = NULL, *taken = NULL;
    const char *ent;
    char acs[512], entity[512], rkeybuf[KEY_MAX], akey[KEY_MAX];
    char *v = NULL, *irt = NULL, *asr_id = NULL, *exp_s = NULL;
    LassoLogin *login = NULL;
    LassoProvider *idp_p;
    LassoSamlp2Response *resp;
    GList *it;
    xmlNode *root, *as = NULL, *c, *subj, *sc, *scd, *cond, *ar, *au;
    sp_ctx_t sp;
    int64_t t_exp = 0;
    size_t dlen;
    int rc, dup = 0, resp_signed, nassert = 0, sha1, lrc;
    json_t *o;
    const char *why;

    memset(res, 0, sizeof *res);
    res->reason = "internal";
    if (!tenant_name_ok(tenant) || !base_ok(base) || b64 == NULL)
        return GH_EINVAL;
    if (len == 0 || len > GH_SAML_POST_MAX) {
        res->reason = "response_size";
        return GH_EDENIED;
    }
    if ((rc = sp_url(acs, sizeof acs, base, tenant, "acs")) != 0 ||
        (rc = sp_url(entity, sizeof entity, base, tenant, "metadata")) != 0)
        return rc;
    /* the IdP's key, in a lasso server (verifying only) */
    rc = sp_open(st, NULL, tenant, base, &sp);
    if (rc == GH_ENOTFOUND)
        res->reason = "saml_not_configured";
    if (rc != 0)
        return rc;
    ent = sp.ent;
    sha1 = (sp.idp.flags & GH_SAML_ALLOW_SHA1) != 0;

    /* 1. Before any parser: base64, then no DOCTYPE / entity declaration */
    if (b64_decode(b64, len, &doc, &dlen) != 0)
        DENY("malformed");
    if (gh_saml_doc_safe(doc, dlen) != 0)
        DENY("doctype");

    /* 2. lasso parses */
    if ((msg = strndup(b64, len)) == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    login = lasso_login_new(sp.s);
    if (login == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    lrc = lasso_login_process_authn_response_msg(login, msg);
    if (lrc == LASSO_LOGIN_ERROR_STATUS_NOT_SUCCESS ||
        lrc == LASSO_LOGIN_ERROR_REQUEST_DENIED ||
        lrc == LASSO_LOGIN_ERROR_UNKNOWN_PRINCIPAL)
        DENY("status_not_success");
    if (lrc == LASSO_PROFILE_ERROR_CANNOT_VERIFY_SIGNATURE ||
        lrc == LASSO_DS_ERROR_SIGNATURE_NOT_FOUND ||
        lrc == LASSO_DS_ERROR_INVALID_SIGNATURE ||
        lrc == LASSO_DS_ERROR_SIGNATURE_VERIFICATION_FAILED)
        DENY("signature");
    if (lrc != 0)
        DENY("malformed");
    if (!LASSO_IS_SAMLP2_RESPONSE(LASSO_PROFILE(login)->response))
        DENY("malformed");
    resp = LASSO_SAMLP2_RESPONSE(LASSO_PROFILE(login)->response);
    root = lasso_node_get_original_xmlnode(LASSO_NODE(resp));
    if (root == NULL || !is_el(root, NS_SAMLP, "Response"))
        DENY("malformed");
    if (resp->EncryptedAssertion != NULL)
        DENY("encrypted_assertion");
    idp_p = lasso_server_get_provider(sp.s, ent);
    if (idp_p == NULL)
        DENY("issuer");

    /* 3. Issuer of the response (when given) is the tenant's IdP */
    c = child(root, NS_SAML, "Issuer", &dup);
    if (dup)
        DENY("issuer");
    if (c != NULL) {
        v = text_of(c);
        if (v == NULL || strcmp(v, ent) != 0)
            DENY("issuer");
        xmlFree(v);
        v = NULL;
    }

    /* 4. Signatures: where they may be, their shape and algorithms, and
     * every one present must verify; the response or every assertion
     * must be signed. */
    if (!sigs_placed(root, root))
        DENY("signature_placement");
    dup = 0;
    c = child(root, NS_DS, "Signature", &dup);
    if (dup)
        DENY("signature_shape");
    resp_signed = c != NULL;
    if (resp_signed) {
        if ((why = sig_shape(root, c, sha1)) != NULL)
            DENY(why);
        if (lasso_provider_verify_single_node_signature(idp_p,
                LASSO_NODE(resp), "ID") != 0)
            DENY("signature");
    }
    for (c = root->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, NS_SAML, "EncryptedAssertion"))
            DENY("encrypted_assertion");
        if (is_el(c, NS_SAML, "Assertion"))
            nassert++;
    }
    if (nassert != 1 || g_list_length(resp->Assertion) != 1)
        DENY("assertion_count");
    for (it = resp->Assertion; it != NULL; it = it->next) {
        xmlNode *an, *asig;

        if (!LASSO_IS_SAML2_ASSERTION(it->data))
            DENY("malformed");
        an = lasso_node_get_original_xmlnode(LASSO_NODE(it->data));
        /* lasso keeps its own copy of the node it parsed the assertion
         * from: the checks below read that very copy (what its signature
         * was verified on); it must be the response's one Assertion */
        if (an == NULL || !is_el(an, NS_SAML, "Assertion") ||
            !same_id(an, child(root, NS_SAML, "Assertion", NULL)))
            DENY("malformed");
        dup = 0;
        asig = child(an, NS_DS, "Signature", &dup);
        if (dup)
            DENY("signature_shape");
        if (asig == NULL) {
            if (!resp_signed)
                DENY("unsigned");
        } else {
            if ((why = sig_shape(an, asig, sha1)) != NULL)
                DENY(why);
            if (lasso_provider_verify_single_node_signature(idp_p,
                    LASSO_NODE(it->data), "ID") != 0)
                DENY("signature");
        }
        as = an;
    }

    /* 5. Destination of the response: this tenant's ACS */
    if (!attr_eq(root, "Destination", acs))
        DENY("destination");

    /* 6. The assertion: issuer, times, audience, subject confirmation */
    dup = 0;
    c = child(as, NS_SAML, "Issuer", &dup);
    v = text_of(c);
    if (dup || v == NULL || strcmp(v, ent) != 0)
        DENY("issuer");
    xmlFree(v);
    v = NULL;
    asr_id = attr(as, "ID");
    if (!xml_id_ok(asr_id))
        DENY("malformed");
    set_str(res->assertion_id, sizeof res->assertion_id, asr_id);
    cond = child(as, NS_SAML, "Conditions", &dup);
    if (cond == NULL || dup)
        DENY("conditions");
    {
        char *nb = attr(cond, "NotBefore"), *na = attr(cond, "NotOnOrAfter");

        rc = gh_saml_window_ok(nb, na, 1, now, skew);
        if (rc == 0)
            rc = gh_saml_time_parse(na, &t_exp);
        xmlFree(nb);
        xmlFree(na);
        if (rc == GH_EEXPIRED)
            DENY("expired");
        if (rc != 0)
            DENY(rc == GH_EDENIED ? "not_yet_valid" : "conditions");
    }
    /* every AudienceRestriction must name us (SAML core 2.5.1.4) */
    ar = child(cond, NS_SAML, "AudienceRestriction", NULL);
    if (ar == NULL)
        DENY("audience");
    for (c = cond->children; c != NULL; c = c->next) {
        int ok = 0;

        if (!is_el(c, NS_SAML, "AudienceRestriction"))
            continue;
        for (au = c->children; au != NULL; au = au->next) {
            if (!is_el(au, NS_SAML, "Audience"))
                continue;
            v = text_of(au);
            ok |= v != NULL && strcmp(v, entity) == 0;
            xmlFree(v);
            v = NULL;
        }
        if (!ok)
            DENY("audience");
    }
    dup = 0;
    subj = child(as, NS_SAML, "Subject", &dup);
    if (subj == NULL || dup)
        DENY("subject");
    /* exactly one bearer confirmation, for this ACS, not expired */
    sc = child(subj, NS_SAML, "SubjectConfirmation", &dup);
    if (sc == NULL || dup || !attr_eq(sc, "Method", BEARER))
        DENY("subject_confirmation");
    scd = child(sc, NS_SAML, "SubjectConfirmationData", &dup);
    if (scd == NULL || dup)
        DENY("subject_confirmation");
    if (!attr_eq(scd, "Recipient", acs))
        DENY("recipient");
    {
        char *nb = attr(scd, "NotBefore"), *na = attr(scd, "NotOnOrAfter");

        rc = gh_saml_window_ok(nb, na, 1, now, skew);
        xmlFree(nb);
        xmlFree(na);
        if (rc == GH_EEXPIRED)
            DENY("expired");
        if (rc != 0)
            DENY("subject_confirmation");
    }

    /* 7. InResponseTo: the same on the response and the confirmation, and
     * an outstanding request of this tenant; none: IdP-initiated */
    irt = attr(root, "InResponseTo");
    v = attr(scd, "InResponseTo");
    if ((irt == NULL) != (v == NULL) ||
        (irt != NULL && strcmp(irt, v) != 0))
        DENY("in_response_to");
    xmlFree(v);
    v = NULL;
    if (irt == NULL && !(sp.idp.flags & GH_SAML_IDP_INITIATED))
        DENY("unsolicited");
    if (irt != NULL && (!xml_id_ok(irt) ||
                        rkey(rkeybuf, "req", tenant, irt) != 0))
        DENY("in_response_to");

    dup = 0;
    if (subject_email(as, child(subj, NS_SAML, "NameID", &dup), res) != 0 ||
        dup)
        DENY("no_email");

    /* 8. Consume the request and record the assertion, atomically */
    if ((rc = rkey(akey, "asr", tenant, asr_id)) != 0)
        goto out;
    o = json_pack("{s:I}", "exp", (json_int_t)(t_exp + skew));
    exp_s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (exp_s == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    {
        char prefix[KEY_MAX];

        if (rkey(prefix, "asr", tenant, "") == 0)
            (void)gh_kv_sweep(st, prefix, exp_passed, &now, 16);
    }
    rc = gh_kv_consume(st, irt != NULL ? rkeybuf : NULL, &taken, &dlen, akey,
                       exp_s, strlen(exp_s));
    if (rc == GH_EEXIST)
        DENY("replay");
    if (rc == GH_ENOTFOUND)
        DENY("in_response_to");
    if (rc != 0)
        goto out;
    strcpy(res->rd, "/");
    if (taken != NULL) {
        json_error_t err;
        json_t *r = json_loads(taken, 0, &err);
        json_int_t e = 0;
        const char *rd = NULL, *nh = NULL;
        char mine[65];

        if (r == NULL || json_unpack(r, "{s:I,s:s,s:s}", "exp", &e, "rd", &rd,
                                     "nonce", &nh) != 0 || strlen(nh) != 64) {
            json_decref(r);
            DENY("in_response_to");
        }
        if (e <= now) {
            json_decref(r);
            DENY("request_expired");
        }
        /* the browser that started the login must be the one finishing
         * it (login CSRF): its nonce cookie against the request's hash */
        if (nonce == NULL || strlen(nonce) < 16) {
            json_decref(r);
            DENY("browser_mismatch");
        }
        nonce_hash(nonce, mine);
        if (sodium_memcmp(mine, nh, 64) != 0) {
            json_decref(r);
            DENY("browser_mismatch");
        }
        set_str(res->rd, sizeof res->rd, rd);
        json_decref(r);
    }
    /* what single logout will need; a failure here only loses SLO */
    {
        xmlNode *an_st = child(as, NS_SAML, "AuthnStatement", NULL);
        char *si = attr(an_st, "SessionIndex");

        if (si != NULL && xml_id_ok(si))
            set_str(res->session_index, sizeof res->session_index, si);
        xmlFree(si);
        if (lasso_login_accept_sso(login) == 0 &&
            LASSO_PROFILE(login)->session != NULL) {
            char *d = lasso_session_dump(LASSO_PROFILE(login)->session);

            res->slo_state = d != NULL ? strdup(d) : NULL;
            g_free(d);
        }
    }
    res->not_on_or_after = t_exp;
    res->reason = "ok";
    rc = 0;
out:
    if (rc != 0 && rc != GH_EDENIED && strcmp(res->reason, "internal") == 0)
        res->reason = "internal";
    xmlFree(v);
    xmlFree(irt);
    xmlFree(asr_id);
    free(exp_s);
    free(taken);
    if (login != NULL)
        g_object_unref(login);
    sp_close(&sp);
    free(msg);
    free(doc);
    return rc;
}

/* ---- single logout ---- */

int gh_saml_session_put(gh_store_t *st, const char *tenant,
                        const uint8_t key[32], gh_saml_result_t *res,
                        int64_t until)
{
    char hex[65], k[KEY_MAX];
    int rc;

    if (res->slo_state == NULL)
        return 0;
    sodium_bin2hex(hex, sizeof hex, key, 32);
    /* forget a few records of sessions long over */
    if (rkey(k, "ssn", tenant, "") == 0) {
        int64_t now = gh_now();

        (void)gh_kv_sweep(st, k, exp_passed, &now, 16);
    }
    rc = rkey(k, "ssn", tenant, hex);
    if (rc == 0)
        rc = record_put(st, k, json_pack("{s:s,s:s,s:I}", "si",
                        res->session_index, "dump", res->slo_state,
                        "exp", (json_int_t)until), 0);
    if (rc == 0 && res->session_index[0] &&
        (rc = rkey(k, "si", tenant, res->session_index)) == 0)
        rc = gh_kv_put(st, k, hex, strlen(hex), 0);
    free(res->slo_state);
    res->slo_state = NULL;
    return rc;
}

/* Read and forget the SLO record of a gatehouse session (hex key). */
static int ssn_take(gh_store_t *st, const char *tenant, const char *hex,
                    char **dump)
{
    char k[KEY_MAX], *v = NULL;
    json_error_t err;
    json_t *o;
    const char *si = NULL, *d = NULL;
    int rc;

    *dump = NULL;
    if ((rc = rkey(k, "ssn", tenant, hex)) != 0 ||
        (rc = gh_kv_consume(st, k, &v, NULL, NULL, NULL, 0)) != 0)
        return rc;
    o = json_loads(v, 0, &err);
    free(v);
    if (o == NULL || json_unpack(o, "{s:s,s:s}", "si", &si, "dump", &d) != 0) {
        json_decref(o);
        return GH_ESTORE;
    }
    if (si[0] && rkey(k, "si", tenant, si) == 0)
        (void)gh_kv_del(st, k);
    *dump = strdup(d);
    json_decref(o);
    return *dump != NULL ? 0 : GH_ENOMEM;
}

int gh_saml_logout_start(gh_store_t *st, const uint8_t master[32],
                         const char *tenant, const char *base,
                         const uint8_t key[32], char **url)
{
    char hex[65], *dump = NULL;
    LassoLogout *lo = NULL;
    sp_ctx_t c;
    int rc;

    *url = NULL;
    if (!tenant_name_ok(tenant) || !base_ok(base))
        return GH_EINVAL;
    sodium_bin2hex(hex, sizeof hex, key, 32);
    if ((rc = ssn_take(st, tenant, hex, &dump)) != 0)
        return rc;
    if ((rc = sp_open(st, master, tenant, base, &c)) != 0) {
        free(dump);
        return rc;
    }
    rc = GH_ENOTFOUND;
    if ((lo = lasso_logout_new(c.s)) == NULL ||
        lasso_profile_set_session_from_dump(LASSO_PROFILE(lo), dump) != 0 ||
        lasso_logout_init_request(lo, c.ent, LASSO_HTTP_METHOD_REDIRECT) != 0 ||
        lasso_logout_build_request_msg(lo) != 0 ||
        LASSO_PROFILE(lo)->msg_url == NULL)
        goto out;
    rc = (*url = strdup(LASSO_PROFILE(lo)->msg_url)) != NULL ? 0 : GH_ENOMEM;
out:
    if (lo != NULL)
        g_object_unref(lo);
    sp_close(&c);
    free(dump);
    return rc;
}

/* The percent-decoded value of name in a query string (malloc'd), or
 * NULL. */
static char *query_param(const char *q, const char *name)
{
    size_t n = strlen(name);
    const char *p = q;

    while (p != NULL && *p) {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            char *out = malloc(len - n), *o = out;
            size_t i;

            if (out == NULL)
                return NULL;
            for (i = n + 1; i < len; i++) {
                if (p[i] == '%' && i + 2 < len &&
                    isxdigit((unsigned char)p[i + 1]) &&
                    isxdigit((unsigned char)p[i + 2])) {
                    char h[3] = { p[i + 1], p[i + 2], 0 };
                    *o++ = (char)strtol(h, NULL, 16);
                    i += 2;
                } else {
                    *o++ = p[i] == '+' ? ' ' : p[i];
                }
            }
            *o = '\0';
            return out;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

int gh_saml_slo(gh_store_t *st, const uint8_t master[32], const char *tenant,
                const char *base, const char *query,
                void (*end)(const uint8_t key[32], void *arg), void *arg,
                char **url, const char **reason)
{
    char *alg = NULL, *sig = NULL;
    char *q = NULL, *v = NULL, *dump = NULL, k[KEY_MAX];
    LassoLogout *lo = NULL;
    sp_ctx_t c;
    int rc, is_req;

    *url = NULL;
    *reason = "internal";
    if (!tenant_name_ok(tenant) || !base_ok(base) || query == NULL)
        return GH_EINVAL;
    if (strlen(query) > GH_SAML_POST_MAX) {
        *reason = "too_large";
        return GH_EDENIED;
    }
    if ((rc = sp_open(st, master, tenant, base, &c)) != 0)
        return rc;
    /* HTTP-Redirect messages carry their signature in the query: it must
     * be there, with an algorithm we take */
    is_req = (v = query_param(query, "SAMLRequest")) != NULL;
    free(v);
    v = NULL;
    alg = query_param(query, "SigAlg");
    sig = query_param(query, "Signature");
    rc = GH_EDENIED;
    if (alg == NULL || sig == NULL) {
        *reason = "unsigned";
        goto out;
    }
    if (!gh_saml_sigalg_ok(alg, (c.idp.flags & GH_SAML_ALLOW_SHA1) != 0)) {
        *reason = "signature_algorithm";
        goto out;
    }
    if ((q = strdup(query)) == NULL || (lo = lasso_logout_new(c.s)) == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    lasso_profile_set_signature_verify_hint(LASSO_PROFILE(lo),
                                            LASSO_PROFILE_SIGNATURE_VERIFY_HINT_FORCE);
    rc = GH_EDENIED;
    if (!is_req) {
        /* the answer to our LogoutRequest: verified, nothing more to do
         * (the session ended before we sent it) */
        int lrc = lasso_logout_process_response_msg(lo, q);

        if (lrc != 0 && lrc != LASSO_LOGOUT_ERROR_REQUEST_DENIED &&
            lrc != LASSO_PROFILE_ERROR_STATUS_NOT_SUCCESS) {
            *reason = "signature";
            goto out;
        }
        *reason = "ok";
        rc = 0;
        goto out;
    }
    if (lasso_logout_process_request_msg(lo, q) != 0 ||
        !LASSO_IS_SAMLP2_LOGOUT_REQUEST(LASSO_PROFILE(lo)->request)) {
        *reason = "signature";
        goto out;
    }
    {
        LassoSamlp2LogoutRequest *lr =
            LASSO_SAMLP2_LOGOUT_REQUEST(LASSO_PROFILE(lo)->request);
        LassoSamlp2RequestAbstract *ra = LASSO_SAMLP2_REQUEST_ABSTRACT(lr);
        uint8_t key[32];
        size_t n;
        char *hex = NULL;

        if (ra->Issuer == NULL || ra->Issuer->content == NULL ||
            strcmp(ra->Issuer->content, c.ent) != 0) {
            *reason = "issuer";
            goto out;
        }
        /* the session(s) it names: by SessionIndex */
        if (lr->SessionIndex != NULL && xml_id_ok(lr->SessionIndex) &&
            rkey(k, "si", tenant, lr->SessionIndex) == 0 &&
            gh_kv_get(st, k, &hex, &n) == 0) {
            if (n == 64 && sodium_hex2bin(key, sizeof key, hex, 64, NULL,
                                          NULL, NULL) == 0) {
                if (ssn_take(st, tenant, hex, &dump) == 0)
                    (void)lasso_profile_set_session_from_dump(
                        LASSO_PROFILE(lo), dump);
                end(key, arg);
            }
            free(hex);
        }
    }
    (void)lasso_logout_validate_request(lo);   /* sets the status */
    if (lasso_logout_build_response_msg(lo) != 0 ||
        LASSO_PROFILE(lo)->msg_url == NULL) {
        rc = GH_ECRYPTO;
        goto out;
    }
    rc = (*url = strdup(LASSO_PROFILE(lo)->msg_url)) != NULL ? 0 : GH_ENOMEM;
    *reason = "ok";
out:
    if (lo != NULL)
        g_object_unref(lo);
    sp_close(&c);
    free(alg);
    free(sig);
    free(q);
    free(dump);
    return rc;
}
