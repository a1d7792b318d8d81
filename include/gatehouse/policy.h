/* gatehouse — the access policy: tenants, roles, apps and rules, compiled
 * from one YAML file, and the per-request decision.
 *
 * The operator writes the file (docs/policy.md); `gatehouse policy apply`
 * compiles it to validate, then stores the text; each nginx worker compiles
 * the stored text again when the stored version changes. A compiled policy
 * is immutable: the request path only reads it.
 *
 * Decision, for a user of tenant T asking app A (first failing step wins):
 *   1. A unknown                           -> deny  "unknown_app"
 *   2. T not among A's tenants             -> deny  "tenant_not_allowed"
 *   3. address outside a non-empty global, tenant or app network list
 *      (the tenant's: req->tenant_nets when the tenant record sets
 *      networks, else the file's tenant section)
 *                                          -> deny  "network_not_allowed"
 *   4. user holds no role but "visitor" and A does not admit visitors
 *                                          -> deny  "visitors_not_allowed"
 *      (counting only roles the policy defines — a name it does not
 *      define grants nothing and is ignored everywhere. A user with no
 *      role at all is treated as a visitor: least privilege.)
 *   5. T requires MFA (req->tenant_mfa_required, from the tenant
 *      record), session has none          -> deny  "mfa_required"
 *   6. a deny rule matches                 -> deny  "denied_by_rule" (rule)
 *   7. an allow rule matches               -> allow "allowed" (rule)
 *   8. an allow rule matches but for its "mfa: required"
 *                                          -> deny  "mfa_required" (rule)
 *   9. otherwise                           -> deny  "no_matching_rule"
 * Steps 6-8 pick, in file order, the first matching rule of each kind, so
 * the order of rules never changes the outcome.
 * A rule matches when every condition it states holds: roles (any of),
 * methods (any of), paths (any prefix, on '/' boundaries — "/admin" covers
 * "/admin" and "/admin/x", not "/administrator"), networks (any of). A
 * condition left out matches everything.
 */
#ifndef GATEHOUSE_POLICY_H
#define GATEHOUSE_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "gatehouse/netset.h"

typedef struct gh_policy gh_policy_t;

#define GH_POLICY_MAX_BYTES  (4u * 1024 * 1024)
#define GH_ROLE_MAX          63      /* role name: [a-z0-9._:-], 1..63 */
#define GH_RULE_NAME_MAX     63
#define GH_USER_ROLES_MAX    32      /* roles one user may hold */

/* Built-in roles, always defined. */
#define GH_ROLE_MANAGER        "manager"
#define GH_ROLE_SPACE_ADMIN    "space-admin"
#define GH_ROLE_MEMBER         "member"
#define GH_ROLE_VISITOR        "visitor"
#define GH_ROLE_PLATFORM_ADMIN "gatehouse-admin"
#define GH_ROLE_AUDITOR        "auditor"

/* HTTP methods as bits. */
enum {
    GH_M_GET     = 1 << 0,
    GH_M_HEAD    = 1 << 1,
    GH_M_POST    = 1 << 2,
    GH_M_PUT     = 1 << 3,
    GH_M_DELETE  = 1 << 4,
    GH_M_PATCH   = 1 << 5,
    GH_M_OPTIONS = 1 << 6,
    GH_M_OTHER   = 1 << 7,   /* any other method */
};
/* GH_M_* for a method name (case-sensitive, as HTTP says), GH_M_OTHER for
 * an unknown one, 0 for an empty or malformed one. */
unsigned gh_method_bit(const char *name, size_t len);

enum { GH_SIGNIN_PASSWORD = 0, GH_SIGNIN_PASSWORD_OTP, GH_SIGNIN_SAML };

/* What a tenant section configures (defaults where the file is silent). */
typedef struct {
    const char         *name;
    const char         *display;
    int                 signin;           /* GH_SIGNIN_* (default password) */
    int                 mfa_required;     /* the file says required */
    int                 mfa_level;        /* 0 optional, 1 required, 2 off
                                             (GH_MFA_*, store.h) */
    int                 mfa_set;          /* the file states it: `policy
                                             apply` copies it into the
                                             tenant record, which is what
                                             decisions read */
    const char         *password_profile; /* "nist" (default) | "classes" */
    int                 password_profile_set; /* the file states it: `policy
                                                 apply` copies it into the
                                                 tenant record */
    int64_t             idle;             /* seconds, 0 = gateway default */
    int64_t             lifetime;         /* seconds, 0 = gateway default */
    const gh_netset_t  *networks;         /* never NULL; empty = any */
    const char         *networks_text;    /* the file's list, networks
                                             joined by ","; NULL when the
                                             file does not state one. `policy
                                             apply` copies a stated list (and
                                             a stated idle or lifetime) into
                                             the tenant record */
} gh_policy_tenant_t;

/* Compile YAML text (len bytes). On error: GH_EINVAL and err holds one line
 * "line L, column C: message" (the first error found); GH_ETOOBIG past
 * GH_POLICY_MAX_BYTES; GH_ENOMEM. Unknown keys, wrong types, duplicate
 * names, undefined roles in rules, bad CIDRs, bad durations and bad method
 * names are all errors. */
int gh_policy_compile(const char *yaml, size_t len, gh_policy_t **out,
                      char *err, size_t errlen);
void gh_policy_free(gh_policy_t *p);

/* 1 when the role name is built in or defined by the policy. */
int gh_policy_role_known(const gh_policy_t *p, const char *role);
/* The tenant section, or NULL when the policy does not mention it. */
const gh_policy_tenant_t *gh_policy_tenant(const gh_policy_t *p,
                                           const char *name);
/* 1 when app admits people who hold no role but visitor (`visitors:
 * true`); 0 otherwise, an unknown app included. */
int gh_policy_app_visitors(const gh_policy_t *p, const char *app);
/* Walk tenant sections / app names in file order; non-zero from cb stops. */
int gh_policy_tenants(const gh_policy_t *p,
                      int (*cb)(const gh_policy_tenant_t *, void *), void *arg);
int gh_policy_apps(const gh_policy_t *p, int (*cb)(const char *app, void *),
                   void *arg);

/* The request as the decision sees it. */
typedef struct {
    const char        *tenant;     /* the user's tenant */
    const char *const *roles;      /* the user's active roles */
    size_t             nroles;     /* <= GH_USER_ROLES_MAX */
    unsigned           method;     /* GH_M_* */
    const char        *path;       /* normalised path, no query */
    size_t             path_len;
    const gh_addr_t   *addr;       /* client address */
    int                mfa;        /* the session has a second factor */
    int                tenant_mfa_required;  /* the tenant record's level
                                                is GH_MFA_REQUIRED */
    const gh_netset_t *tenant_nets;  /* the tenant record's networks when
                                        it sets them (compiled, non-empty);
                                        NULL: the file's tenant section */
} gh_request_t;

typedef struct {
    int          allow;      /* 1 allow, 0 deny */
    const char  *reason;     /* a code from the list above (static) */
    const char  *rule;       /* the deciding rule's name, or NULL */
} gh_decision_t;

/* One line of explanation per candidate rule (and per failed step), for
 * `gatehouse policy explain`; e.g. "rule staff-read: method POST not in
 * [GET, HEAD]". */
typedef void (*gh_explain_fn)(const char *line, void *arg);

/* Decide. explain may be NULL (the request path passes NULL: then no
 * allocation and no formatting happens). Returns 0, or GH_EINVAL for a
 * malformed request (e.g. too many roles, an invalid tenant name, a path
 * not starting with '/', method not exactly one GH_M_* bit) — d is then
 * filled as deny "invalid_request"; callers deny on any error. */
int gh_policy_decide(const gh_policy_t *p, const char *app,
                     const gh_request_t *req, gh_decision_t *d,
                     gh_explain_fn explain, void *arg);

#endif
