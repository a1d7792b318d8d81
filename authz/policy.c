/* gatehouse — the access policy: YAML compilation and the per-request
 * decision (see include/gatehouse/policy.h and docs/policy.md).
 *
 * Compilation walks a libyaml document once, checks every key and value,
 * and builds an immutable structure in one arena: name tables as
 * open-addressing hashes, each rule's roles as a bitmap over the role
 * table, methods as a mask, paths as prefixes, networks as compiled
 * gh_netset_t. Deciding only reads that structure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"
#include "gatehouse/policy.h"
#include "gatehouse/util.h"

#define GH_POLICY_ROLES_MAX   65536          /* built-in + custom roles */
#define GH_POLICY_PATH_MAX    1024           /* one path prefix, bytes */
#define GH_POLICY_DISPLAY_MAX 255            /* a display name, bytes */
#define GH_APP_NAME_MAX       63
#define GH_EXPLAIN_LINE_MAX   1024
#define ARENA_CHUNK           (64 * 1024)

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const builtin_roles[] = {
    GH_ROLE_MANAGER, GH_ROLE_SPACE_ADMIN, GH_ROLE_MEMBER, GH_ROLE_VISITOR,
    GH_ROLE_PLATFORM_ADMIN, GH_ROLE_AUDITOR,
};
#define VISITOR_INDEX 3u   /* position of "visitor" in builtin_roles */

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    { "GET", GH_M_GET }, { "HEAD", GH_M_HEAD }, { "POST", GH_M_POST },
    { "PUT", GH_M_PUT }, { "DELETE", GH_M_DELETE }, { "PATCH", GH_M_PATCH },
    { "OPTIONS", GH_M_OPTIONS },
};
#define GH_M_ALL (GH_M_GET | GH_M_HEAD | GH_M_POST | GH_M_PUT | GH_M_DELETE | \
                  GH_M_PATCH | GH_M_OPTIONS | GH_M_OTHER)

/* ---- arena: everything a compiled policy holds, freed at once ---- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct arena {
    struct chunk *head;
};

/* n zeroed bytes, aligned for any type, or NULL. */
static void *arena_alloc(struct arena *a, size_t n)
{
    struct chunk *c = a->head;
    size_t al = sizeof(max_align_t);
    void *p;

    n = (n + al - 1) / al * al;
    if (n == 0)
        n = al;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = calloc(1, sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    p = (unsigned char *)c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void arena_free(struct arena *a)
{
    struct chunk *c = a->head, *nx;

    for (; c != NULL; c = nx) {
        nx = c->next;
        free(c);
    }
    a->head = NULL;
}

/* ---- name tables: open addressing over an array of names ---- */

#define NT_NONE UINT32_MAX

struct ntab {
    uint32_t *slot;    /* index + 1, 0 = empty */
    uint32_t mask;
};

/* FNV-1a, 32 bits: names are short and chosen by the operator. */
static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Room for cap names at a load factor of at most one half. */
static int ntab_init(struct arena *a, struct ntab *t, size_t cap)
{
    size_t size = 4;

    while (size < cap * 2)
        size *= 2;
    t->slot = arena_alloc(a, size * sizeof *t->slot);
    if (t->slot == NULL)
        return GH_ENOMEM;
    t->mask = (uint32_t)(size - 1);
    return 0;
}

/* The index of name s (n bytes) in names[], or NT_NONE. */
static uint32_t ntab_find(const struct ntab *t, const char *const *names,
                          const char *s, size_t n)
{
    uint32_t i = name_hash(s, n) & t->mask, v;

    while ((v = t->slot[i]) != 0) {
        const char *x = names[v - 1];
        if (strncmp(x, s, n) == 0 && x[n] == '\0')
            return v - 1;
        i = (i + 1) & t->mask;
    }
    return NT_NONE;
}

/* Insert names[idx]; GH_EEXIST when the name is already present. The
 * caller sized the table with ntab_init, so a free slot always exists. */
static int ntab_insert(struct ntab *t, const char *const *names, uint32_t idx)
{
    size_t n = strlen(names[idx]);
    uint32_t i;

    if (ntab_find(t, names, names[idx], n) != NT_NONE)
        return GH_EEXIST;
    i = name_hash(names[idx], n) & t->mask;
    while (t->slot[i] != 0)
        i = (i + 1) & t->mask;
    t->slot[i] = idx + 1;
    return 0;
}

/* ---- the compiled policy ---- */

struct prefix {
    const char *s;
    size_t len;
};

struct rule {
    const char          *name;
    int                  deny;
    int                  mfa;        /* allow only with a second factor */
    unsigned             methods;    /* GH_M_* mask, 0 = any */
    const uint64_t      *roles;      /* bitmap over the role table, NULL = any */
    const uint32_t      *role_ids;   /* the same roles in file order (explain) */
    size_t               nrole_ids;
    const struct prefix *paths;      /* npaths == 0: any */
    size_t               npaths;
    const gh_netset_t   *nets;       /* NULL: any */
};

struct app {
    const char        *name;
    const char        *display;
    int                all_tenants;
    const char       **tenants;
    size_t             ntenants;
    struct ntab        ttab;
    int                visitors;
    int                ci;           /* paths compared case-insensitively */
    const gh_netset_t *nets;         /* never NULL; empty = any */
    struct rule       *rules;        /* file order */
    size_t             nrules;
    uint32_t          *order;        /* deny rules first, each part in file order */
    /* Which rules can match a role: for each role some rule names, the
     * ascending positions in order[] of those rules; and the positions of
     * rules with no role condition. Deciding merges the lists of the
     * user's roles, so it visits only rules that could match. */
    struct role_rules *ridx;         /* open addressing on role index */
    uint32_t           rmask;
    uint32_t          *rlist;
    uint32_t          *anyl;
    size_t             nany;
};

struct role_rules {
    uint32_t role;                   /* role index + 1, 0 = empty slot */
    uint32_t off, len;               /* range in rlist */
};

struct gh_policy {
    struct arena         arena;
    gh_netset_t        **owned;      /* every netset, for gh_policy_free */
    size_t               nowned, capowned;
    const gh_netset_t   *nets;       /* global; never NULL */
    const char         **roles;      /* built-ins, then custom, file order */
    uint32_t             nroles;
    size_t               words;      /* uint64_t words per role bitmap */
    struct ntab          rtab;
    gh_policy_tenant_t  *tenants;
    const char         **tnames;
    size_t               ntenants;
    struct ntab          ttab;
    struct app          *apps;
    const char         **anames;
    size_t               napps;
    struct ntab          atab;
};

/* ---- YAML walking with positioned errors ---- */

struct cx {
    yaml_document_t *doc;
    gh_policy_t     *p;
    char            *err;
    size_t           errlen;
};

/* Record the first error, positioned at node n (1-based line and column),
 * and return GH_EINVAL. Control characters from the file become '?' so the
 * message stays one line. */
__attribute__((format(printf, 3, 4)))
static int fail(struct cx *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    int k;
    size_t i;

    if (c->err == NULL || c->errlen == 0 || c->err[0] != '\0')
        return GH_EINVAL;
    k = snprintf(c->err, c->errlen, "line %zu, column %zu: ",
                 n ? n->start_mark.line + 1 : 1,
                 n ? n->start_mark.column + 1 : 1);
    if (k > 0 && (size_t)k < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    for (i = 0; c->err[i] != '\0'; i++)
        if ((unsigned char)c->err[i] < 0x20 || c->err[i] == 0x7f)
            c->err[i] = '?';
    return GH_EINVAL;
}

static yaml_node_t *node(struct cx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static size_t slen(const yaml_node_t *n)
{
    return n->data.scalar.length;
}

/* A plain empty, "~" or "null" scalar: the key is present with no value,
 * read as if absent. */
static int is_null(const yaml_node_t *n)
{
    const char *v;

    if (n == NULL)
        return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    v = sval(n);
    return slen(n) == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static int is_str(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE && !is_null(n) &&
           strlen(sval(n)) == slen(n);
}

struct key {
    const char  *name;
    yaml_node_t *key;
    yaml_node_t *val;
};

/* Match a mapping's keys against a fixed list: every key must be a known,
 * non-repeated scalar. what names the mapping in messages. */
static int take_keys(struct cx *c, yaml_node_t *map, struct key *keys,
                     size_t nkeys, const char *what)
{
    yaml_node_pair_t *pr;
    size_t i;

    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return fail(c, map, "%s must be a mapping", what);
    for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key);
        if (!is_str(k))
            return fail(c, k, "keys in %s must be plain names", what);
        for (i = 0; i < nkeys; i++)
            if (strcmp(sval(k), keys[i].name) == 0)
                break;
        if (i == nkeys)
            return fail(c, k, "unknown key '%.64s' in %s", sval(k), what);
        if (keys[i].key != NULL)
            return fail(c, k, "duplicate key '%s' in %s", keys[i].name, what);
        keys[i].key = k;
        keys[i].val = node(c, pr->value);
    }
    return 0;
}

/* A display string: any text without control characters, bounded. */
static int get_display(struct cx *c, const yaml_node_t *n, const char **out,
                       const char *what)
{
    size_t i;

    if (!is_str(n))
        return fail(c, n, "%s must be a string", what);
    if (slen(n) > GH_POLICY_DISPLAY_MAX)
        return fail(c, n, "%s is longer than %d bytes", what, GH_POLICY_DISPLAY_MAX);
    for (i = 0; i < slen(n); i++)
        if ((unsigned char)sval(n)[i] < 0x20 || sval(n)[i] == 0x7f)
            return fail(c, n, "%s contains a control character", what);
    *out = arena_strndup(&c->p->arena, sval(n), slen(n));
    return *out ? 0 : GH_ENOMEM;
}

static int get_bool(struct cx *c, const yaml_node_t *n, int *out, const char *what)
{
    if (is_str(n) && strcmp(sval(n), "true") == 0)
        *out = 1;
    else if (is_str(n) && strcmp(sval(n), "false") == 0)
        *out = 0;
    else
        return fail(c, n, "%s must be true or false", what);
    return 0;
}

/* One of a fixed set of words; the index into choices. */
static int get_enum(struct cx *c, const yaml_node_t *n, const char *const *choices,
                    size_t nchoices, int *out, const char *what)
{
    size_t i;

    if (is_str(n))
        for (i = 0; i < nchoices; i++)
            if (strcmp(sval(n), choices[i]) == 0) {
                *out = (int)i;
                return 0;
            }
    if (nchoices == 2)
        return fail(c, n, "%s must be %s or %s", what, choices[0], choices[1]);
    return fail(c, n, "%s must be %s, %s or %s", what, choices[0], choices[1],
                choices[2]);
}

/* A duration (gh_duration_parse, util.h). */
static int get_duration(struct cx *c, const yaml_node_t *n, int64_t *out,
                        const char *what)
{
    int rc;

    if (!is_str(n) ||
        (rc = gh_duration_parse(sval(n), slen(n), out)) == GH_EINVAL)
        return fail(c, n, "%s must be a duration such as 30m or 12h", what);
    if (rc != 0)
        return fail(c, n, "%s must be greater than 0 and at most 3650d", what);
    return 0;
}

/* A list of networks; absent or null: an empty set (no restriction). The
 * set is compiled and owned by the policy. */
static int get_nets(struct cx *c, const yaml_node_t *n, gh_netset_t **out,
                    const char *what)
{
    gh_policy_t *p = c->p;
    gh_netset_t *s;
    yaml_node_item_t *it;
    int rc;

    if (p->nowned == p->capowned) {
        size_t ncap = p->capowned ? p->capowned * 2 : 16;
        gh_netset_t **o = realloc(p->owned, ncap * sizeof *o);
        if (o == NULL)
            return GH_ENOMEM;
        p->owned = o;
        p->capowned = ncap;
    }
    s = gh_netset_new();
    if (s == NULL)
        return GH_ENOMEM;
    p->owned[p->nowned++] = s;
    *out = s;
    if (is_null(n))
        return gh_netset_compile(s);
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, "%s must be a list of networks", what);
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *e = node(c, *it);
        if (!is_str(e))
            return fail(c, e, "%s must be a list of networks", what);
        rc = gh_netset_add(s, sval(e), slen(e));
        if (rc == GH_ENOMEM)
            return rc;
        if (rc != 0)
            return fail(c, e, "bad network '%.64s' in %s", sval(e), what);
    }
    return gh_netset_compile(s);
}

/* The text of a list get_nets accepted: its networks joined by ",". */
static int nets_text(struct cx *c, const yaml_node_t *n, const char **out)
{
    yaml_node_item_t *it;
    size_t len = 0, off = 0;
    char *s;

    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
        len += slen(node(c, *it)) + 1;
    s = arena_alloc(&c->p->arena, len + 1);
    if (s == NULL)
        return GH_ENOMEM;
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *e = node(c, *it);
        if (off > 0)
            s[off++] = ',';
        memcpy(s + off, sval(e), slen(e));
        off += slen(e);
    }
    s[off] = '\0';
    *out = s;
    return 0;
}

static int role_name_valid(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > GH_ROLE_MAX || strlen(s) != len)
        return 0;
    for (i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return 1;
}

static int app_name_valid(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > GH_APP_NAME_MAX || strlen(s) != len)
        return 0;
    for (i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static int rule_name_valid(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > GH_RULE_NAME_MAX || strlen(s) != len)
        return 0;
    for (i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
              ch == '-'))
            return 0;
    }
    return 1;
}

/* ---- sections ---- */

static int compile_roles(struct cx *c, yaml_node_t *n)
{
    gh_policy_t *p = c->p;
    size_t ncustom = 0, i;
    yaml_node_item_t *it;
    int rc;

    if (!is_null(n)) {
        if (n->type != YAML_SEQUENCE_NODE)
            return fail(c, n, "roles must be a list of role names");
        ncustom = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (ncustom + N(builtin_roles) > GH_POLICY_ROLES_MAX)
            return fail(c, n, "more than %d roles", GH_POLICY_ROLES_MAX);
    }
    p->roles = arena_alloc(&p->arena, (N(builtin_roles) + ncustom) * sizeof *p->roles);
    if (p->roles == NULL || ntab_init(&p->arena, &p->rtab, N(builtin_roles) + ncustom))
        return GH_ENOMEM;
    for (i = 0; i < N(builtin_roles); i++) {
        p->roles[p->nroles] = builtin_roles[i];
        ntab_insert(&p->rtab, p->roles, p->nroles++);
    }
    if (ncustom > 0) {
        for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *e = node(c, *it);
            if (!is_str(e) || !role_name_valid(sval(e), slen(e)))
                return fail(c, e, "a role name is 1..%d of [a-z0-9._:-]", GH_ROLE_MAX);
            if (ntab_find(&p->rtab, p->roles, sval(e), slen(e)) < N(builtin_roles))
                return fail(c, e, "role '%s' is built in and cannot be redefined",
                            sval(e));
            p->roles[p->nroles] = arena_strndup(&p->arena, sval(e), slen(e));
            if (p->roles[p->nroles] == NULL)
                return GH_ENOMEM;
            rc = ntab_insert(&p->rtab, p->roles, p->nroles);
            if (rc != 0)
                return fail(c, e, "duplicate role '%s'", sval(e));
            p->nroles++;
        }
    }
    p->words = (p->nroles + 63) / 64;
    return 0;
}

static int compile_tenant(struct cx *c, yaml_node_t *kn, yaml_node_t *vn,
                          gh_policy_tenant_t *t)
{
    static const char *const signins[] = { "password", "password+otp", "saml" };
    /* index order is GH_MFA_* order (store.h) */
    static const char *const mfas[] = { "optional", "required", "off" };
    static const char *const profiles[] = { "nist", "classes" };
    struct key k[] = {
        { "display", 0, 0 }, { "signin", 0, 0 }, { "mfa", 0, 0 },
        { "password_profile", 0, 0 }, { "networks", 0, 0 }, { "session", 0, 0 },
    };
    struct key sk[] = { { "idle", 0, 0 }, { "lifetime", 0, 0 } };
    char what[96], w2[128];
    gh_netset_t *nets;
    int rc, v = 0;

    snprintf(what, sizeof what, "tenant '%s'", t->name);
    t->display = t->name;
    t->password_profile = profiles[0];
    if (is_null(vn)) {
        rc = get_nets(c, NULL, &nets, what);
        t->networks = nets;
        return rc;
    }
    if ((rc = take_keys(c, vn, k, N(k), what)) != 0)
        return rc;
    snprintf(w2, sizeof w2, "display of %s", what);
    if (k[0].val && (rc = get_display(c, k[0].val, &t->display, w2)) != 0)
        return rc;
    snprintf(w2, sizeof w2, "signin of %s", what);
    if (k[1].val) {
        if ((rc = get_enum(c, k[1].val, signins, N(signins), &v, w2)) != 0)
            return rc;
        t->signin = v;   /* index order is GH_SIGNIN_* order */
    }
    snprintf(w2, sizeof w2, "mfa of %s", what);
    if (k[2].val) {
        if ((rc = get_enum(c, k[2].val, mfas, N(mfas), &v, w2)) != 0)
            return rc;
        t->mfa_level = v;
        t->mfa_set = 1;
        t->mfa_required = v == 1;
    }
    snprintf(w2, sizeof w2, "password_profile of %s", what);
    if (k[3].val) {
        if ((rc = get_enum(c, k[3].val, profiles, N(profiles), &v, w2)) != 0)
            return rc;
        t->password_profile = profiles[v];
        t->password_profile_set = 1;
    }
    snprintf(w2, sizeof w2, "networks of %s", what);
    if ((rc = get_nets(c, k[4].val, &nets, w2)) != 0)
        return rc;
    t->networks = nets;
    if (k[4].val && !is_null(k[4].val) &&
        (rc = nets_text(c, k[4].val, &t->networks_text)) != 0)
        return rc;
    if (k[5].val && !is_null(k[5].val)) {
        snprintf(w2, sizeof w2, "session of %s", what);
        if ((rc = take_keys(c, k[5].val, sk, N(sk), w2)) != 0)
            return rc;
        snprintf(w2, sizeof w2, "session idle of %s", what);
        if (sk[0].val && (rc = get_duration(c, sk[0].val, &t->idle, w2)) != 0)
            return rc;
        snprintf(w2, sizeof w2, "session lifetime of %s", what);
        if (sk[1].val && (rc = get_duration(c, sk[1].val, &t->lifetime, w2)) != 0)
            return rc;
        if (t->idle > 0 && t->lifetime > 0 && t->idle > t->lifetime)
            return fail(c, sk[0].val, "session idle of %s is longer than its lifetime",
                        what);
    }
    (void)kn;
    return 0;
}

static int compile_tenants(struct cx *c, yaml_node_t *n)
{
    gh_policy_t *p = c->p;
    yaml_node_pair_t *pr;
    size_t cnt;
    int rc;

    if (is_null(n))
        return ntab_init(&p->arena, &p->ttab, 0);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "tenants must be a mapping of tenant names to settings");
    cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    p->tenants = arena_alloc(&p->arena, cnt * sizeof *p->tenants);
    p->tnames = arena_alloc(&p->arena, cnt * sizeof *p->tnames);
    if (p->tenants == NULL || p->tnames == NULL || ntab_init(&p->arena, &p->ttab, cnt))
        return GH_ENOMEM;
    for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key);
        gh_policy_tenant_t *t = &p->tenants[p->ntenants];
        if (!is_str(k) || !gh_tenant_name_valid(sval(k)))
            return fail(c, k, "a tenant name is 1..%d of [a-z0-9-], starting with a "
                        "letter or digit", GH_TENANT_MAX);
        t->name = arena_strndup(&p->arena, sval(k), slen(k));
        if (t->name == NULL)
            return GH_ENOMEM;
        p->tnames[p->ntenants] = t->name;
        if (ntab_insert(&p->ttab, p->tnames, (uint32_t)p->ntenants) != 0)
            return fail(c, k, "duplicate tenant '%s'", t->name);
        if ((rc = compile_tenant(c, k, node(c, pr->value), t)) != 0)
            return rc;
        p->ntenants++;
    }
    return 0;
}

/* A path prefix: starts with '/', no control characters, no '%' (rules
 * are matched against the decoded, normalised path), no ".." segment. */
static int path_valid(const char *s, size_t len)
{
    size_t i, seg = 1;   /* start of the current segment */

    if (len == 0 || len > GH_POLICY_PATH_MAX || s[0] != '/' || strlen(s) != len)
        return 0;
    for (i = 1; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (i - seg == 2 && s[seg] == '.' && s[seg + 1] == '.')
                return 0;
            seg = i + 1;
            continue;
        }
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '%')
            return 0;
    }
    return 1;
}

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static int compile_rule(struct cx *c, const struct app *a, size_t idx,
                        yaml_node_t *n, struct rule *r, yaml_node_t **name_node)
{
    static const char *const effects[] = { "allow", "deny" };
    static const char *const mfas[] = { "any", "required" };
    struct key k[] = {
        { "name", 0, 0 }, { "effect", 0, 0 }, { "roles", 0, 0 }, { "methods", 0, 0 },
        { "paths", 0, 0 }, { "networks", 0, 0 }, { "mfa", 0, 0 },
    };
    gh_policy_t *p = c->p;
    yaml_node_item_t *it;
    char what[128], w2[160];
    gh_netset_t *nets;
    size_t cnt;
    int rc, v = 0;

    snprintf(what, sizeof what, "rule %zu of app '%s'", idx + 1, a->name);
    if ((rc = take_keys(c, n, k, N(k), what)) != 0)
        return rc;
    *name_node = k[0].val ? k[0].val : n;
    if (k[0].val) {
        if (!is_str(k[0].val) || !rule_name_valid(sval(k[0].val), slen(k[0].val)))
            return fail(c, k[0].val, "a rule name is 1..%d of [A-Za-z0-9._:-]",
                        GH_RULE_NAME_MAX);
        r->name = arena_strndup(&p->arena, sval(k[0].val), slen(k[0].val));
    } else {
        char def[32];
        snprintf(def, sizeof def, "rule-%zu", idx + 1);
        r->name = arena_strndup(&p->arena, def, strlen(def));
    }
    if (r->name == NULL)
        return GH_ENOMEM;

    if (k[1].val == NULL)
        return fail(c, n, "%s has no effect (allow or deny)", what);
    snprintf(w2, sizeof w2, "effect of %s", what);
    if ((rc = get_enum(c, k[1].val, effects, N(effects), &v, w2)) != 0)
        return rc;
    r->deny = v;

    if (k[2].val && !is_null(k[2].val)) {
        yaml_node_t *rn = k[2].val;
        uint64_t *bits;
        uint32_t *ids;
        if (rn->type != YAML_SEQUENCE_NODE)
            return fail(c, rn, "roles of %s must be a list of role names", what);
        cnt = (size_t)(rn->data.sequence.items.top - rn->data.sequence.items.start);
        if (cnt == 0)
            return fail(c, rn, "roles of %s is empty; leave it out to match any role",
                        what);
        bits = arena_alloc(&p->arena, p->words * sizeof *bits);
        ids = arena_alloc(&p->arena, cnt * sizeof *ids);
        if (bits == NULL || ids == NULL)
            return GH_ENOMEM;
        for (it = rn->data.sequence.items.start; it < rn->data.sequence.items.top; it++) {
            yaml_node_t *e = node(c, *it);
            uint32_t ri;
            if (!is_str(e))
                return fail(c, e, "roles of %s must be a list of role names", what);
            ri = ntab_find(&p->rtab, p->roles, sval(e), slen(e));
            if (ri == NT_NONE)
                return fail(c, e, "unknown role '%.64s' in %s (define it under roles)",
                            sval(e), what);
            if (bits[ri / 64] & (UINT64_C(1) << (ri % 64)))
                return fail(c, e, "duplicate role '%s' in %s", sval(e), what);
            bits[ri / 64] |= UINT64_C(1) << (ri % 64);
            ids[r->nrole_ids++] = ri;
        }
        r->roles = bits;
        r->role_ids = ids;
    }

    if (k[3].val && !is_null(k[3].val)) {
        yaml_node_t *mn = k[3].val;
        if (is_str(mn) && strcmp(sval(mn), "*") == 0) {
            r->methods = GH_M_ALL;
        } else if (mn->type == YAML_SEQUENCE_NODE &&
                   mn->data.sequence.items.top > mn->data.sequence.items.start) {
            for (it = mn->data.sequence.items.start; it < mn->data.sequence.items.top;
                 it++) {
                yaml_node_t *e = node(c, *it);
                size_t j;
                for (j = 0; is_str(e) && j < N(methods); j++)
                    if (strcmp(sval(e), methods[j].name) == 0)
                        break;
                if (!is_str(e) || j == N(methods))
                    return fail(c, e, "bad method '%.32s' in %s (GET, HEAD, POST, PUT, "
                                "DELETE, PATCH, OPTIONS, or \"*\" for all)",
                                is_str(e) ? sval(e) : "", what);
                r->methods |= methods[j].bit;
            }
        } else {
            return fail(c, mn, "methods of %s must be a non-empty list of methods or "
                        "\"*\"", what);
        }
    }

    if (k[4].val && !is_null(k[4].val)) {
        yaml_node_t *pn = k[4].val;
        struct prefix *pp;
        if (pn->type != YAML_SEQUENCE_NODE ||
            pn->data.sequence.items.top == pn->data.sequence.items.start)
            return fail(c, pn, "paths of %s must be a non-empty list of paths", what);
        cnt = (size_t)(pn->data.sequence.items.top - pn->data.sequence.items.start);
        pp = arena_alloc(&p->arena, cnt * sizeof *pp);
        if (pp == NULL)
            return GH_ENOMEM;
        for (it = pn->data.sequence.items.start; it < pn->data.sequence.items.top; it++) {
            yaml_node_t *e = node(c, *it);
            char *s;
            size_t j;
            if (!is_str(e) || !path_valid(sval(e), slen(e)))
                return fail(c, e, "bad path '%.64s' in %s (a path starts with '/', has "
                            "no '%%', no control character and no '..' segment)",
                            is_str(e) ? sval(e) : "", what);
            s = arena_strndup(&p->arena, sval(e), slen(e));
            if (s == NULL)
                return GH_ENOMEM;
            for (j = 0; a->ci && j < slen(e); j++)
                s[j] = ascii_lower(s[j]);
            pp[r->npaths].s = s;
            pp[r->npaths++].len = slen(e);
        }
        r->paths = pp;
    }

    if (k[5].val && !is_null(k[5].val)) {
        snprintf(w2, sizeof w2, "networks of %s", what);
        if ((rc = get_nets(c, k[5].val, &nets, w2)) != 0)
            return rc;
        if (gh_netset_count(nets) > 0)
            r->nets = nets;
    }

    if (k[6].val) {
        snprintf(w2, sizeof w2, "mfa of %s", what);
        if ((rc = get_enum(c, k[6].val, mfas, N(mfas), &v, w2)) != 0)
            return rc;
        if (r->deny)
            return fail(c, k[6].key, "mfa applies only to allow rules (%s is a deny "
                        "rule)", what);
        r->mfa = v;
    }
    return 0;
}

static struct role_rules *ridx_slot(struct role_rules *t, uint32_t mask, uint32_t role)
{
    uint32_t i = (role * 2654435761u) & mask;

    while (t[i].role != 0 && t[i].role != role + 1)
        i = (i + 1) & mask;
    return &t[i];
}

/* Build the role -> rules index from a->order (see struct app). */
static int index_rules(gh_policy_t *p, struct app *a)
{
    size_t mentions = 0, size = 4, i, j, off = 0;

    for (i = 0; i < a->nrules; i++) {
        if (a->rules[i].roles == NULL)
            a->nany++;
        mentions += a->rules[i].nrole_ids;
    }
    while (size < mentions * 2)
        size *= 2;
    a->ridx = arena_alloc(&p->arena, size * sizeof *a->ridx);
    a->rlist = arena_alloc(&p->arena, (mentions ? mentions : 1) * sizeof *a->rlist);
    a->anyl = arena_alloc(&p->arena, (a->nany ? a->nany : 1) * sizeof *a->anyl);
    if (a->ridx == NULL || a->rlist == NULL || a->anyl == NULL)
        return GH_ENOMEM;
    a->rmask = (uint32_t)(size - 1);
    for (i = 0; i < a->nrules; i++)
        for (j = 0; j < a->rules[i].nrole_ids; j++) {
            struct role_rules *e = ridx_slot(a->ridx, a->rmask, a->rules[i].role_ids[j]);
            e->role = a->rules[i].role_ids[j] + 1;
            e->len++;
        }
    for (i = 0; i < size; i++) {
        a->ridx[i].off = (uint32_t)off;
        off += a->ridx[i].len;
        a->ridx[i].len = 0;
    }
    a->nany = 0;
    for (i = 0; i < a->nrules; i++) {   /* i: position in order[], ascending */
        const struct rule *r = &a->rules[a->order[i]];
        if (r->roles == NULL)
            a->anyl[a->nany++] = (uint32_t)i;
        for (j = 0; j < r->nrole_ids; j++) {
            struct role_rules *e = ridx_slot(a->ridx, a->rmask, r->role_ids[j]);
            a->rlist[e->off + e->len++] = (uint32_t)i;
        }
    }
    return 0;
}

static int compile_app(struct cx *c, yaml_node_t *vn, struct app *a)
{
    struct key k[] = {
        { "display", 0, 0 }, { "tenants", 0, 0 }, { "visitors", 0, 0 },
        { "paths_case_insensitive", 0, 0 }, { "networks", 0, 0 }, { "rules", 0, 0 },
        { "mfa", 0, 0 },
    };
    static const char *const mfas[] = { "any", "required" };
    gh_policy_t *p = c->p;
    yaml_node_item_t *it;
    yaml_node_t *tn, *rn, **name_nodes = NULL;
    const char **rnames;
    struct ntab names;
    char what[96], w2[128];
    gh_netset_t *nets;
    size_t cnt, i, nd;
    int rc, app_mfa = 0;

    snprintf(what, sizeof what, "app '%s'", a->name);
    a->display = a->name;
    if ((rc = take_keys(c, vn, k, N(k), what)) != 0)
        return rc;
    snprintf(w2, sizeof w2, "display of %s", what);
    if (k[0].val && (rc = get_display(c, k[0].val, &a->display, w2)) != 0)
        return rc;

    tn = k[1].val;
    if (tn == NULL)
        return fail(c, vn, "%s has no tenants (a list of tenant names, or \"*\")", what);
    if (is_str(tn) && strcmp(sval(tn), "*") == 0) {
        a->all_tenants = 1;
    } else if (tn->type == YAML_SEQUENCE_NODE &&
               tn->data.sequence.items.top > tn->data.sequence.items.start) {
        cnt = (size_t)(tn->data.sequence.items.top - tn->data.sequence.items.start);
        a->tenants = arena_alloc(&p->arena, cnt * sizeof *a->tenants);
        if (a->tenants == NULL || ntab_init(&p->arena, &a->ttab, cnt))
            return GH_ENOMEM;
        for (it = tn->data.sequence.items.start; it < tn->data.sequence.items.top; it++) {
            yaml_node_t *e = node(c, *it);
            if (!is_str(e) || !gh_tenant_name_valid(sval(e)))
                return fail(c, e, "bad tenant name '%.64s' in %s", is_str(e) ? sval(e) : "",
                            what);
            a->tenants[a->ntenants] = arena_strndup(&p->arena, sval(e), slen(e));
            if (a->tenants[a->ntenants] == NULL)
                return GH_ENOMEM;
            if (ntab_insert(&a->ttab, a->tenants, (uint32_t)a->ntenants) != 0)
                return fail(c, e, "duplicate tenant '%s' in %s", sval(e), what);
            a->ntenants++;
        }
    } else {
        return fail(c, tn, "tenants of %s must be a non-empty list of tenant names or "
                    "\"*\"", what);
    }

    snprintf(w2, sizeof w2, "visitors of %s", what);
    if (k[2].val && (rc = get_bool(c, k[2].val, &a->visitors, w2)) != 0)
        return rc;
    snprintf(w2, sizeof w2, "paths_case_insensitive of %s", what);
    if (k[3].val && (rc = get_bool(c, k[3].val, &a->ci, w2)) != 0)
        return rc;
    snprintf(w2, sizeof w2, "networks of %s", what);
    if ((rc = get_nets(c, k[4].val, &nets, w2)) != 0)
        return rc;
    a->nets = nets;
    snprintf(w2, sizeof w2, "mfa of %s", what);
    if (k[6].val && (rc = get_enum(c, k[6].val, mfas, N(mfas), &app_mfa, w2)) != 0)
        return rc;

    rn = k[5].val;
    if (is_null(rn))
        return index_rules(p, a);
    if (rn->type != YAML_SEQUENCE_NODE)
        return fail(c, rn, "rules of %s must be a list of rules", what);
    cnt = (size_t)(rn->data.sequence.items.top - rn->data.sequence.items.start);
    a->rules = arena_alloc(&p->arena, cnt * sizeof *a->rules);
    a->order = arena_alloc(&p->arena, cnt * sizeof *a->order);
    rnames = arena_alloc(&p->arena, cnt * sizeof *rnames);
    if (a->rules == NULL || a->order == NULL || rnames == NULL ||
        ntab_init(&p->arena, &names, cnt))
        return GH_ENOMEM;
    name_nodes = calloc(cnt ? cnt : 1, sizeof *name_nodes);
    if (name_nodes == NULL)
        return GH_ENOMEM;
    for (it = rn->data.sequence.items.start; it < rn->data.sequence.items.top; it++) {
        rc = compile_rule(c, a, a->nrules, node(c, *it), &a->rules[a->nrules],
                          &name_nodes[a->nrules]);
        if (rc != 0)
            goto out;
        /* an app that requires MFA: every allow rule does */
        if (app_mfa && !a->rules[a->nrules].deny)
            a->rules[a->nrules].mfa = 1;
        a->nrules++;
    }
    /* Names are checked once all are known, so an explicit "rule-2" clashes
     * with the default name of the second rule wherever either appears. */
    for (i = 0; i < a->nrules; i++) {
        rnames[i] = a->rules[i].name;
        if (ntab_insert(&names, rnames, (uint32_t)i) != 0) {
            rc = fail(c, name_nodes[i], "duplicate rule name '%s' in %s", rnames[i],
                      what);
            goto out;
        }
    }
    nd = 0;
    for (i = 0; i < a->nrules; i++)
        if (a->rules[i].deny)
            a->order[nd++] = (uint32_t)i;
    for (i = 0; i < a->nrules; i++)
        if (!a->rules[i].deny)
            a->order[nd++] = (uint32_t)i;
    rc = index_rules(p, a);
out:
    free(name_nodes);
    return rc;
}

static int compile_apps(struct cx *c, yaml_node_t *n)
{
    gh_policy_t *p = c->p;
    yaml_node_pair_t *pr;
    size_t cnt;
    int rc;

    if (is_null(n))
        return ntab_init(&p->arena, &p->atab, 0);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "apps must be a mapping of app names to apps");
    cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    p->apps = arena_alloc(&p->arena, cnt * sizeof *p->apps);
    p->anames = arena_alloc(&p->arena, cnt * sizeof *p->anames);
    if (p->apps == NULL || p->anames == NULL || ntab_init(&p->arena, &p->atab, cnt))
        return GH_ENOMEM;
    for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key);
        struct app *a = &p->apps[p->napps];
        if (!is_str(k) || !app_name_valid(sval(k), slen(k)))
            return fail(c, k, "an app name is 1..%d of [a-z0-9._-]", GH_APP_NAME_MAX);
        a->name = arena_strndup(&p->arena, sval(k), slen(k));
        if (a->name == NULL)
            return GH_ENOMEM;
        p->anames[p->napps] = a->name;
        if (ntab_insert(&p->atab, p->anames, (uint32_t)p->napps) != 0)
            return fail(c, k, "duplicate app '%s'", a->name);
        if ((rc = compile_app(c, node(c, pr->value), a)) != 0)
            return rc;
        p->napps++;
    }
    return 0;
}

/* Position an error from libyaml's parser. Reader errors (bad encoding,
 * control characters) carry only a byte offset: count lines up to it. */
static int yaml_fail(struct cx *c, const yaml_parser_t *ps, const char *yaml,
                     size_t len)
{
    yaml_node_t fake;
    size_t i;

    memset(&fake, 0, sizeof fake);
    if (ps->error == YAML_MEMORY_ERROR)
        return GH_ENOMEM;
    fake.start_mark = ps->problem_mark;
    if (ps->error == YAML_READER_ERROR) {
        for (i = 0; i < ps->problem_offset && i < len; i++) {
            if (yaml[i] == '\n') {
                fake.start_mark.line++;
                fake.start_mark.column = 0;
            } else {
                fake.start_mark.column++;
            }
        }
        return fail(c, &fake, "%s", ps->problem ? ps->problem : "bad input");
    }
    if (ps->context != NULL)
        return fail(c, &fake, "%s %s", ps->problem ? ps->problem : "malformed YAML",
                    ps->context);
    return fail(c, &fake, "%s", ps->problem ? ps->problem : "malformed YAML");
}

/* A first pass over the events: syntax errors with their position, and
 * refusals of what the document loader would silently accept — aliases
 * (a shared node walked many times could multiply compile work) and a
 * second document. */
static int prescan(struct cx *c, const char *yaml, size_t len)
{
    yaml_parser_t ps;
    yaml_event_t ev;
    yaml_node_t fake;
    int docs = 0, rc = 0, done = 0;

    if (!yaml_parser_initialize(&ps))
        return GH_ENOMEM;
    yaml_parser_set_input_string(&ps, (const unsigned char *)yaml, len);
    while (!done) {
        if (!yaml_parser_parse(&ps, &ev)) {
            rc = yaml_fail(c, &ps, yaml, len);
            break;
        }
        memset(&fake, 0, sizeof fake);
        fake.start_mark = ev.start_mark;
        if (ev.type == YAML_ALIAS_EVENT)
            rc = fail(c, &fake, "aliases (*name) are not supported in a policy");
        else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
            rc = fail(c, &fake, "a policy is one YAML document");
        done = ev.type == YAML_STREAM_END_EVENT || rc != 0;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps);
    return rc;
}

/* Compile: size check, event pre-scan, load, then the sections in
 * dependency order (roles before the rules that name them). */
int gh_policy_compile(const char *yaml, size_t len, gh_policy_t **out,
                      char *err, size_t errlen)
{
    struct key top[] = {
        { "version", 0, 0 }, { "networks", 0, 0 }, { "roles", 0, 0 },
        { "tenants", 0, 0 }, { "apps", 0, 0 },
    };
    yaml_parser_t ps;
    yaml_document_t doc;
    int have_doc = 0, rc;
    gh_policy_t *p = NULL;
    gh_netset_t *nets;
    yaml_node_t *root;
    struct cx c;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return GH_EINVAL;
    *out = NULL;
    memset(&c, 0, sizeof c);
    c.err = err;
    c.errlen = errlen;
    if (yaml == NULL)
        return fail(&c, NULL, "no policy text");
    if (len > GH_POLICY_MAX_BYTES) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "line 1, column 1: the policy is larger than %u bytes",
                     GH_POLICY_MAX_BYTES);
        return GH_ETOOBIG;
    }
    if ((rc = prescan(&c, yaml, len)) != 0)
        return rc;

    if (!yaml_parser_initialize(&ps))
        return GH_ENOMEM;
    yaml_parser_set_input_string(&ps, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&ps, &doc)) {
        rc = yaml_fail(&c, &ps, yaml, len);
        goto out;
    }
    have_doc = 1;
    c.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        rc = fail(&c, NULL, "the policy is empty; it needs at least 'version: 1'");
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    c.p = p;
    if ((rc = take_keys(&c, root, top, N(top), "the policy")) != 0)
        goto out;
    if (top[0].val == NULL) {
        rc = fail(&c, root, "missing required key 'version' (version: 1)");
        goto out;
    }
    if (!is_str(top[0].val) || strcmp(sval(top[0].val), "1") != 0) {
        rc = fail(&c, top[0].val, "unsupported version '%.16s' (this build reads "
                  "version 1)", is_str(top[0].val) ? sval(top[0].val) : "");
        goto out;
    }
    if ((rc = compile_roles(&c, top[2].val)) != 0)
        goto out;
    if ((rc = get_nets(&c, top[1].val, &nets, "networks")) != 0)
        goto out;
    p->nets = nets;
    if ((rc = compile_tenants(&c, top[3].val)) != 0)
        goto out;
    if ((rc = compile_apps(&c, top[4].val)) != 0)
        goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    if (rc == GH_ENOMEM && err != NULL && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "line 1, column 1: out of memory");
    gh_policy_free(p);
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    return rc;
}

void gh_policy_free(gh_policy_t *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nowned; i++)
        gh_netset_free(p->owned[i]);
    free(p->owned);
    arena_free(&p->arena);
    free(p);
}

/* ---- lookups ---- */

static uint32_t role_index(const gh_policy_t *p, const char *role)
{
    size_t n = strnlen(role, GH_ROLE_MAX + 1);

    if (n > GH_ROLE_MAX)
        return NT_NONE;
    return ntab_find(&p->rtab, p->roles, role, n);
}

int gh_policy_role_known(const gh_policy_t *p, const char *role)
{
    if (p == NULL || role == NULL)
        return 0;
    return role_index(p, role) != NT_NONE;
}

const gh_policy_tenant_t *gh_policy_tenant(const gh_policy_t *p, const char *name)
{
    size_t n;
    uint32_t i;

    if (p == NULL || name == NULL || p->ntenants == 0)
        return NULL;
    n = strnlen(name, GH_TENANT_MAX + 1);
    if (n > GH_TENANT_MAX)
        return NULL;
    i = ntab_find(&p->ttab, p->tnames, name, n);
    return i == NT_NONE ? NULL : &p->tenants[i];
}

static const struct app *find_app(const gh_policy_t *p, const char *name)
{
    size_t n;
    uint32_t i;

    if (p->napps == 0)
        return NULL;
    n = strnlen(name, GH_APP_NAME_MAX + 1);
    if (n > GH_APP_NAME_MAX)
        return NULL;
    i = ntab_find(&p->atab, p->anames, name, n);
    return i == NT_NONE ? NULL : &p->apps[i];
}

int gh_policy_tenants(const gh_policy_t *p,
                      int (*cb)(const gh_policy_tenant_t *, void *), void *arg)
{
    size_t i;
    int rc;

    if (p == NULL || cb == NULL)
        return GH_EINVAL;
    for (i = 0; i < p->ntenants; i++)
        if ((rc = cb(&p->tenants[i], arg)) != 0)
            return rc;
    return 0;
}

int gh_policy_apps(const gh_policy_t *p, int (*cb)(const char *app, void *),
                   void *arg)
{
    size_t i;
    int rc;

    if (p == NULL || cb == NULL)
        return GH_EINVAL;
    for (i = 0; i < p->napps; i++)
        if ((rc = cb(p->apps[i].name, arg)) != 0)
            return rc;
    return 0;
}

int gh_policy_app_visitors(const gh_policy_t *p, const char *app)
{
    const struct app *a;

    if (p == NULL || app == NULL)
        return 0;
    a = find_app(p, app);
    return a != NULL && a->visitors;
}

/* A token (RFC 9110 tchar) naming the method; case matters. */
unsigned gh_method_bit(const char *name, size_t len)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t i;

    if (name == NULL || len == 0 || len > 32)
        return 0;
    for (i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || (ch != '\0' && strchr(tchar, ch) != NULL)))
            return 0;
    }
    for (i = 0; i < N(methods); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, name, len) == 0)
            return methods[i].bit;
    return GH_M_OTHER;
}

/* ---- explanation lines (only ever reached with explain != NULL) ---- */

struct xl {
    char   b[GH_EXPLAIN_LINE_MAX];
    size_t n;
};

__attribute__((format(printf, 2, 3)))
static void xl_add(struct xl *x, const char *fmt, ...)
{
    size_t room = sizeof x->b - x->n;
    va_list ap;
    int k;

    if (room <= 1)
        return;
    va_start(ap, fmt);
    k = vsnprintf(x->b + x->n, room, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= room) {
        x->n = sizeof x->b - 1;
        memcpy(x->b + x->n - 3, "...", 3);
    } else {
        x->n += (size_t)k;
    }
}

/* Caller-supplied text (paths, tenant and role names from the request):
 * bytes outside printable ASCII, and '\', become \xHH. */
static void xl_text(struct xl *x, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            xl_add(x, "\\x%02x", ch);
        else
            xl_add(x, "%c", ch);
    }
}

static void xl_str(struct xl *x, const char *s)
{
    xl_text(x, s, strnlen(s, 256));
}

static void xl_emit(struct xl *x, gh_explain_fn explain, void *arg)
{
    x->b[x->n < sizeof x->b ? x->n : sizeof x->b - 1] = '\0';
    explain(x->b, arg);
    x->n = 0;
}

static const char *method_name(unsigned bit)
{
    size_t i;

    for (i = 0; i < N(methods); i++)
        if (methods[i].bit == bit)
            return methods[i].name;
    return "(other)";
}

static void xl_methods(struct xl *x, unsigned mask)
{
    size_t i;
    int first = 1;

    xl_add(x, "[");
    for (i = 0; i < N(methods); i++)
        if (mask & methods[i].bit) {
            xl_add(x, "%s%s", first ? "" : ", ", methods[i].name);
            first = 0;
        }
    xl_add(x, "]");
}

/* ---- the decision ---- */

/* The request with its role names resolved once to role indices. */
struct rq {
    const gh_request_t       *req;
    uint32_t                  roles[GH_USER_ROLES_MAX];
    size_t                    nroles;
};

enum { R_NO = 0, R_YES, R_MFA };

static int path_under(const struct prefix *pp, const char *path, size_t len, int ci)
{
    size_t i;

    if (len < pp->len)
        return 0;
    if (ci) {
        for (i = 0; i < pp->len; i++)
            if (ascii_lower(path[i]) != pp->s[i])
                return 0;
    } else if (memcmp(path, pp->s, pp->len) != 0) {
        return 0;
    }
    return len == pp->len || pp->s[pp->len - 1] == '/' || path[pp->len] == '/';
}

static int rule_roles_match(const struct rule *r, const struct rq *q)
{
    size_t i;

    for (i = 0; i < q->nroles; i++)
        if (r->roles[q->roles[i] / 64] & (UINT64_C(1) << (q->roles[i] % 64)))
            return 1;
    return 0;
}

/* Evaluate one rule. With explain == NULL the first failing condition
 * returns at once and nothing is formatted; with explain, every failing
 * condition is reported. R_MFA: all conditions hold but the rule needs a
 * second factor the session lacks. */
static int rule_eval(const gh_policy_t *p, const struct app *a, const struct rule *r,
                     const struct rq *q, gh_explain_fn explain, void *arg)
{
    const gh_request_t *req = q->req;
    struct xl x;
    size_t i;
    int ok = 1;

    if (r->methods != 0 && (r->methods & req->method) == 0) {
        if (explain == NULL)
            return R_NO;
        ok = 0;
        x.n = 0;
        xl_add(&x, "rule %s: method %s not in ", r->name, method_name(req->method));
        xl_methods(&x, r->methods);
        xl_emit(&x, explain, arg);
    }
    if (r->roles != NULL && !rule_roles_match(r, q)) {
        if (explain == NULL)
            return R_NO;
        ok = 0;
        x.n = 0;
        xl_add(&x, "rule %s: roles [", r->name);
        for (i = 0; i < q->nroles; i++)
            xl_add(&x, "%s%s", i ? ", " : "", p->roles[q->roles[i]]);
        xl_add(&x, "] do not include any of [");
        for (i = 0; i < r->nrole_ids; i++)
            xl_add(&x, "%s%s", i ? ", " : "", p->roles[r->role_ids[i]]);
        xl_add(&x, "]");
        xl_emit(&x, explain, arg);
    }
    if (r->npaths > 0) {
        for (i = 0; i < r->npaths; i++)
            if (path_under(&r->paths[i], req->path, req->path_len, a->ci))
                break;
        if (i == r->npaths) {
            if (explain == NULL)
                return R_NO;
            ok = 0;
            x.n = 0;
            xl_add(&x, "rule %s: path ", r->name);
            xl_text(&x, req->path, req->path_len);
            xl_add(&x, " is not under [");
            for (i = 0; i < r->npaths; i++)
                xl_add(&x, "%s%s", i ? ", " : "", r->paths[i].s);
            xl_add(&x, "]%s", a->ci ? " (case-insensitive)" : "");
            xl_emit(&x, explain, arg);
        }
    }
    if (r->nets != NULL && (req->addr == NULL || !gh_netset_contains(r->nets, req->addr))) {
        if (explain == NULL)
            return R_NO;
        ok = 0;
        x.n = 0;
        if (req->addr == NULL) {
            xl_add(&x, "rule %s: no client address to match the rule's networks",
                   r->name);
        } else {
            char t[GH_ADDR_TEXT_MAX];
            gh_addr_format(req->addr, t);
            xl_add(&x, "rule %s: address %s is not in the rule's networks", r->name, t);
        }
        xl_emit(&x, explain, arg);
    }
    if (!ok)
        return R_NO;
    if (r->mfa && !req->mfa) {
        if (explain) {
            x.n = 0;
            xl_add(&x, "rule %s: requires a second factor", r->name);
            xl_emit(&x, explain, arg);
        }
        return R_MFA;
    }
    if (explain) {
        x.n = 0;
        xl_add(&x, "rule %s: matches (%s)", r->name, r->deny ? "deny" : "allow");
        xl_emit(&x, explain, arg);
    }
    return R_YES;
}

/* Fill d, and with explain say the final line. */
static int finish(gh_decision_t *d, int allow, const char *reason, const char *rule,
                  gh_explain_fn explain, void *arg)
{
    d->allow = allow;
    d->reason = reason;
    d->rule = rule;
    if (explain) {
        struct xl x;
        x.n = 0;
        xl_add(&x, "decision: %s (%s)", allow ? "allow" : "deny", reason);
        if (rule != NULL)
            xl_add(&x, " by rule %s", rule);
        xl_emit(&x, explain, arg);
    }
    return 0;
}

/* Step 3 for one level; what names the level in the explanation. */
static int net_ok(const gh_netset_t *s, const gh_addr_t *addr, gh_explain_fn explain,
                  void *arg, const char *what1, const char *what2)
{
    struct xl x;
    char t[GH_ADDR_TEXT_MAX];

    if (gh_netset_count(s) == 0)
        return 1;
    if (addr != NULL && gh_netset_contains(s, addr))
        return 1;
    if (explain) {
        x.n = 0;
        if (addr == NULL) {
            xl_add(&x, "no client address to match %s", what1);
        } else {
            gh_addr_format(addr, t);
            xl_add(&x, "address %s is not in %s", t, what1);
        }
        if (what2 != NULL)
            xl_str(&x, what2);
        xl_add(&x, "%s", what2 != NULL ? "'s networks" : "");
        xl_emit(&x, explain, arg);
    }
    return 0;
}

/* The decision, step by step as listed in policy.h. All formatting sits
 * inside `if (explain)` branches (here, in rule_eval, finish and net_ok):
 * with explain == NULL the path is lookups, bit tests, compares and binary
 * searches over the compiled policy — no allocation, no formatting, no
 * system call. */
int gh_policy_decide(const gh_policy_t *p, const char *app,
                     const gh_request_t *req, gh_decision_t *d,
                     gh_explain_fn explain, void *arg)
{
    const gh_policy_tenant_t *t;
    const struct app *a;
    struct rq q;
    struct xl x;
    size_t i;
    int only_visitor = 1;
    const struct rule *deny = NULL, *allow = NULL, *need_mfa = NULL;

    if (d == NULL)
        return GH_EINVAL;
    d->allow = 0;
    d->reason = "invalid_request";
    d->rule = NULL;
    if (p == NULL || app == NULL || req == NULL || req->tenant == NULL ||
        req->nroles > GH_USER_ROLES_MAX || (req->nroles > 0 && req->roles == NULL) ||
        req->path == NULL || req->path_len == 0 || req->path[0] != '/' ||
        req->method == 0 || req->method > GH_M_OTHER ||
        (req->method & (req->method - 1)) != 0 || !gh_tenant_name_valid(req->tenant))
        return GH_EINVAL;
    for (i = 0; i < req->nroles; i++)
        if (req->roles[i] == NULL)
            return GH_EINVAL;

    /* 1. the app */
    a = find_app(p, app);
    if (a == NULL) {
        if (explain) {
            x.n = 0;
            xl_add(&x, "app ");
            xl_str(&x, app);
            xl_add(&x, " is not defined by the policy");
            xl_emit(&x, explain, arg);
        }
        return finish(d, 0, "unknown_app", NULL, explain, arg);
    }

    /* 2. tenant isolation: every later step runs inside the user's tenant */
    if (!a->all_tenants &&
        ntab_find(&a->ttab, a->tenants, req->tenant, strlen(req->tenant)) == NT_NONE) {
        if (explain) {
            x.n = 0;
            xl_add(&x, "tenant ");
            xl_str(&x, req->tenant);
            xl_add(&x, " is not among app %s's tenants [", a->name);
            for (i = 0; i < a->ntenants; i++)
                xl_add(&x, "%s%s", i ? ", " : "", a->tenants[i]);
            xl_add(&x, "]");
            xl_emit(&x, explain, arg);
        }
        return finish(d, 0, "tenant_not_allowed", NULL, explain, arg);
    }

    /* 3. networks: global, tenant, app */
    t = gh_policy_tenant(p, req->tenant);
    if (!net_ok(p->nets, req->addr, explain, arg, "the global networks", NULL) ||
        (req->tenant_nets != NULL &&
         !net_ok(req->tenant_nets, req->addr, explain, arg, "tenant ", req->tenant)) ||
        (req->tenant_nets == NULL && t != NULL &&
         !net_ok(t->networks, req->addr, explain, arg, "tenant ", t->name)) ||
        !net_ok(a->nets, req->addr, explain, arg, "app ", a->name))
        return finish(d, 0, "network_not_allowed", NULL, explain, arg);

    /* 4. roles: names the policy does not define grant nothing */
    q.req = req;
    q.nroles = 0;
    for (i = 0; i < req->nroles; i++) {
        uint32_t ri = role_index(p, req->roles[i]);
        if (ri == NT_NONE) {
            if (explain) {
                x.n = 0;
                xl_add(&x, "role ");
                xl_str(&x, req->roles[i]);
                xl_add(&x, " is not defined by the policy; ignored");
                xl_emit(&x, explain, arg);
            }
            continue;
        }
        q.roles[q.nroles++] = ri;
        if (ri != VISITOR_INDEX)
            only_visitor = 0;
    }
    if (only_visitor && !a->visitors) {
        if (explain) {
            x.n = 0;
            xl_add(&x, "user holds %s and app %s does not admit visitors",
                   q.nroles ? "no role but visitor" : "no role", a->name);
            xl_emit(&x, explain, arg);
        }
        return finish(d, 0, "visitors_not_allowed", NULL, explain, arg);
    }

    /* 5. the tenant's MFA requirement (the tenant record's level: `policy
     *    apply` copies a level the file states into it) */
    if (req->tenant_mfa_required && !req->mfa) {
        if (explain) {
            x.n = 0;
            xl_add(&x, "tenant %s requires a second factor and the session has none",
                   req->tenant);
            xl_emit(&x, explain, arg);
        }
        return finish(d, 0, "mfa_required", NULL, explain, arg);
    }

    /* 6-9. rules. Explaining walks them all in file order; deciding walks
     * deny rules first and stops at the first answer. Both pick the first
     * matching rule of each kind in file order, so they agree. */
    if (explain) {
        for (i = 0; i < a->nrules; i++) {
            const struct rule *r = &a->rules[i];
            int m = rule_eval(p, a, r, &q, explain, arg);
            if (m == R_YES && r->deny && deny == NULL)
                deny = r;
            else if (m == R_YES && !r->deny && allow == NULL)
                allow = r;
            else if (m == R_MFA && need_mfa == NULL)
                need_mfa = r;
        }
    } else {
        /* Merge the index lists of the user's roles and the role-less
         * rules: ascending positions in order[], each rule once. A rule
         * left out names none of the user's roles and could not match. */
        struct { const uint32_t *p, *end; } cur[GH_USER_ROLES_MAX + 1];
        size_t nc = 0, k;

        for (i = 0; i < q.nroles; i++) {
            const struct role_rules *e = ridx_slot(a->ridx, a->rmask, q.roles[i]);
            if (e->role != 0) {
                cur[nc].p = a->rlist + e->off;
                cur[nc++].end = a->rlist + e->off + e->len;
            }
        }
        cur[nc].p = a->anyl;
        cur[nc++].end = a->anyl + a->nany;
        for (;;) {
            uint32_t pos = UINT32_MAX;
            const struct rule *r;
            int m;
            for (k = 0; k < nc; k++)
                if (cur[k].p < cur[k].end && *cur[k].p < pos)
                    pos = *cur[k].p;
            if (pos == UINT32_MAX)
                break;
            for (k = 0; k < nc; k++)
                if (cur[k].p < cur[k].end && *cur[k].p == pos)
                    cur[k].p++;
            r = &a->rules[a->order[pos]];
            m = rule_eval(p, a, r, &q, NULL, NULL);
            if (m == R_YES) {
                if (r->deny)
                    deny = r;
                else
                    allow = r;
                break;
            }
            if (m == R_MFA && need_mfa == NULL)
                need_mfa = r;
        }
    }
    if (deny != NULL)
        return finish(d, 0, "denied_by_rule", deny->name, explain, arg);
    if (allow != NULL)
        return finish(d, 1, "allowed", allow->name, explain, arg);
    if (need_mfa != NULL)
        return finish(d, 0, "mfa_required", need_mfa->name, explain, arg);
    return finish(d, 0, "no_matching_rule", NULL, explain, arg);
}
