/* gatehouse — SAML 2.0 service provider, one per tenant (lasso).
 *
 * Each tenant that signs in with SAML has its own SP: entity id
 * BASE/.gatehouse/saml/<tenant>/metadata, ACS BASE/.gatehouse/saml/<tenant>/acs
 * (HTTP-POST), an RSA key pair made when its IdP is first registered (the
 * private key sealed under the master key) and one IdP (its metadata, as
 * registered with `gatehouse idp add`).
 *
 * lasso parses messages, signs our requests (RSA-SHA256) and verifies XML
 * signatures; every decision about a response is ours (gh_saml_acs):
 * DOCTYPE refused before parsing, signature coverage, algorithms, times,
 * audience, recipient, destination, issuer, InResponseTo consumed once,
 * assertion ids kept until they expire. Any doubt refuses.
 *
 * Everything here may block (LMDB writes, RSA): call it from a thread-pool
 * thread or the CLI, never from an nginx event loop.
 */
#ifndef GATEHOUSE_SAML_H
#define GATEHOUSE_SAML_H

#include <stddef.h>
#include <stdint.h>
#include "gatehouse/store.h"
#include "gatehouse/policy.h"

#define GH_SAML_SKEW_DEFAULT   60          /* seconds of clock skew */
#define GH_SAML_REQUEST_TTL    600         /* an AuthnRequest id lives 10 min */
#define GH_SAML_POST_MAX       (256 * 1024) /* SAMLResponse field, base64 */
#define GH_SAML_METADATA_MAX   (128 * 1024) /* an IdP's metadata file */
#define GH_SAML_BASE_MAX       256         /* https://host[:port] */
#define GH_SAML_RD_MAX         2048

/* A tenant's sign-in method: GH_SIGNIN_* of policy.h, stored here. */

/* IdP registration flags. */
enum { GH_SAML_IDP_INITIATED = 1 << 0, GH_SAML_ALLOW_SHA1 = 1 << 1 };

/* Why a response was refused: a short code for the 4xx page, the audit
 * record and the tests. */
typedef struct {
    char email[GH_EMAIL_MAX + 1];   /* whom the assertion names */
    char nameid[GH_EMAIL_MAX + 1];
    char rd[GH_SAML_RD_MAX + 1];    /* the stored return path ("/" when
                                       IdP-initiated) */
    char assertion_id[128];
    char session_index[128];        /* the AuthnStatement's ("" if none) */
    char *slo_state;                /* malloc'd: what single logout needs
                                       (lasso's session dump), or NULL;
                                       gh_saml_session_put takes it */
    int64_t not_on_or_after;        /* the assertion's end */
    const char *reason;             /* static: "ok" or why refused */
} gh_saml_result_t;

/* Once per process, before any other call (lasso_init, RSA-SHA256). */
int gh_saml_init(void);

/* Register (or replace: certificate rollover) the tenant's IdP from its
 * metadata, and make the tenant's SP key pair when it has none. flags:
 * GH_SAML_*. GH_EBADTENANT, GH_EINVAL (metadata lasso cannot read, no IdP
 * role or no HTTP-Redirect SSO service). *entity (may be NULL) gets the
 * IdP's entity id (malloc'd). */
int gh_saml_idp_set(gh_store_t *st, const uint8_t master[32],
                    const char *tenant, const char *metadata, size_t len,
                    unsigned flags, char **entity);

/* The tenant's SP metadata for base (https://host[:port]): malloc'd XML.
 * GH_ENOTFOUND when SAML is not configured for the tenant. */
int gh_saml_sp_metadata(gh_store_t *st, const char *tenant, const char *base,
                        char **xml);

/* Start an SP-initiated login: a signed AuthnRequest (HTTP-Redirect,
 * RSA-SHA256), its id stored with rd and the hash of nonce (the random
 * value of the browser's SAML cookie, >= 16 characters) for
 * GH_SAML_REQUEST_TTL. *url gets the IdP URL to redirect to (malloc'd). */
int gh_saml_login_start(gh_store_t *st, const uint8_t master[32],
                        const char *tenant, const char *base, const char *rd,
                        const char *nonce, int64_t now, char **url);

/* Judge a posted SAMLResponse (base64, len bytes) at the tenant's ACS;
 * nonce: the browser's SAML cookie (NULL when absent), which must match
 * the one its request was started with. 0 with res filled (and the request
 * id consumed, the assertion id recorded) or GH_EDENIED with res->reason;
 * other codes for store or configuration failures. */
int gh_saml_acs(gh_store_t *st, const uint8_t master[32], const char *tenant,
                const char *base, const char *b64, size_t len,
                const char *nonce, int64_t now, int64_t skew,
                gh_saml_result_t *res);

/* Remember an accepted assertion's session for single logout, under the
 * gatehouse session's store key; frees res->slo_state. */
int gh_saml_session_put(gh_store_t *st, const char *tenant,
                        const uint8_t key[32], gh_saml_result_t *res,
                        int64_t until);

/* SP-initiated logout of the gatehouse session stored under key: a signed
 * LogoutRequest (HTTP-Redirect) to the IdP in *url (malloc'd), the
 * record forgotten. GH_ENOTFOUND when the session came from no SAML
 * login (or the IdP has no HTTP-Redirect SLO service). */
int gh_saml_logout_start(gh_store_t *st, const uint8_t master[32],
                         const char *tenant, const char *base,
                         const uint8_t key[32], char **url);

/* A message from the IdP at the tenant's SLO endpoint (HTTP-Redirect; the
 * raw query string). A LogoutRequest must be signed (by the tenant's IdP,
 * SHA-1 only when allowed): each gatehouse session it names is passed to
 * end(), and *url gets our signed LogoutResponse. A LogoutResponse is
 * verified the same way; *url is then NULL. 0, or GH_EDENIED with
 * *reason. */
int gh_saml_slo(gh_store_t *st, const uint8_t master[32], const char *tenant,
                const char *base, const char *query,
                void (*end)(const uint8_t key[32], void *arg), void *arg,
                char **url, const char **reason);

/* Home-realm discovery: the email domain (lower-case, [a-z0-9.-], with a
 * dot) that names the tenant. One tenant per domain: setting a domain
 * again moves it. */
#define GH_DOMAIN_MAX 253
int gh_saml_domain_set(gh_store_t *st, const char *tenant, const char *domain);
/* The console's add: as gh_saml_domain_set, but a domain mapped to
 * another tenant is refused (GH_EEXIST), not moved; adding one the tenant
 * has is a no-op. GH_EINVAL for a bad domain, GH_EBADTENANT. */
int gh_saml_domain_add(gh_store_t *st, const char *tenant, const char *domain);
/* Forget the tenant's domain: GH_ENOTFOUND when it is not the tenant's. */
int gh_saml_domain_del(gh_store_t *st, const char *tenant, const char *domain);
/* Walk the domains of tenant (NULL: of every tenant) in name order, with
 * the tenant each belongs to (at most GH_DOMAINS_MAX are looked at);
 * non-zero from cb stops the walk and is returned. */
#define GH_DOMAINS_MAX 10000
int gh_saml_domains(gh_store_t *st, const char *tenant,
                    int (*cb)(const char *domain, const char *tenant,
                              void *arg),
                    void *arg);
/* 1 once any domain was mapped (the login page then takes the email
 * first), 0 before, or a store error (< 0). */
#define GH_SAML_HRD_KEY "hrd"
int gh_saml_discovery_on(gh_store_t *st);
/* The tenant of the domain of email (the part after its last '@', any
 * case). GH_ENOTFOUND when none. */
int gh_saml_domain_tenant(gh_store_t *st, const char *email, size_t len,
                          char tenant[GH_TENANT_MAX + 1]);

/* The tenant's sign-in (GH_SIGNIN_*; password when never set). */
int gh_saml_signin_get(gh_store_t *st, const char *tenant, int *signin);
int gh_saml_signin_set(gh_store_t *st, const char *tenant, int signin);
const char *gh_signin_name(int signin);
int gh_signin_parse(const char *s);

/* ---- the checks, exposed for unit tests ---- */

/* 0 when the decoded document may be parsed: no DOCTYPE or entity
 * declaration, no NUL (UTF-16) and it starts with '<'. */
int gh_saml_doc_safe(const char *doc, size_t len);
/* An xs:dateTime in UTC ("2026-01-02T03:04:05[.123]Z") to epoch seconds. */
int gh_saml_time_parse(const char *s, int64_t *out);
/* 1 when the signature or digest algorithm URI is acceptable. */
int gh_saml_sigalg_ok(const char *uri, int allow_sha1);
int gh_saml_digest_ok(const char *uri, int allow_sha1);
/* 0 when now is within [not_before - skew, not_on_or_after + skew); either
 * bound may be absent (NULL) unless required. */
int gh_saml_window_ok(const char *not_before, const char *not_on_or_after,
                      int require_end, int64_t now, int64_t skew);

#endif
