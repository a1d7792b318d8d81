/* gatehouse — the LMDB store (see include/gatehouse/store.h).
 *
 * One environment, DATADIR/gatehouse.mdb/, with named databases:
 *
 *   meta            key text          -> value text ("schema" = GH_STORE_SCHEMA)
 *   tenants         tenant name       -> tenant record
 *   users           user id (32 hex)  -> user record
 *   users_by_email  normalised email  -> user id (32 hex, raw)
 *   credentials     user id           -> credential record (hash, when set,
 *                                        must-change flag, earlier hashes)
 *   sessions        SHA-256(token)    -> session record
 *   user_sessions   user id (32 hex) ‖ SHA-256(token) -> "" (schema 7: the
 *                   sessions of a user, kept in the same transaction as
 *                   every session write)
 *   throttle        'a:' email        -> login failure counter of an account
 *                   'n:' 16 bytes     -> login failure counter of an address
 *
 * Records are compact JSON objects with short keys; each record type has one
 * encode and one decode function below and nothing else touches the format.
 * Decoding is strict: a missing field, a wrong type, an over-long or invalid
 * value makes the record GH_ESTORE, never a truncation or an overflow.
 *
 * Every public function runs in its own transaction: reads in an MDB_RDONLY
 * transaction that is aborted at the end (values copied out first), writes in
 * one write transaction committed durably. MDB_* codes are translated to
 * GH_E* here and never leave this file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <pthread.h>

#include <jansson.h>
#include <lmdb.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"
#include "store_int.h"

#define GH_STORE_MAPSIZE    ((size_t)1 << 30)  /* 1 GiB of address space */
#define GH_STORE_MAXDBS     32     /* room for the databases of later features */
#define GH_STORE_MAXREADERS 1024   /* workers x thread-pool threads x CLI */
#define GH_RECORD_MAX       8192   /* largest serialised record we will parse */
#define GH_META_KEY_MAX     128
#define GH_META_VALUE_MAX   1024
#define GH_SCHEMA_KEY       "schema"

struct gh_store {
    MDB_env *env;
    MDB_dbi  meta;
    MDB_dbi  tenants;
    MDB_dbi  users;
    MDB_dbi  by_email;
    MDB_dbi  creds;
    MDB_dbi  sessions;
    MDB_dbi  usess;      /* user_sessions (schema 7) */
    MDB_dbi  throttle;
    MDB_dbi  policy;
    MDB_dbi  jwtkeys;
    MDB_dbi  factors;
    MDB_dbi  saml;
    MDB_dbi  admin;      /* core/store_admin.c (schema 6) */
    unsigned flags;
    /* decoded session/user records of the request path (gh_session_read) */
    struct read_cache *rcache;
    pthread_mutex_t    rc_lock;
    /* gh_request_read's transaction, kept reset between calls, and the
     * one thread allowed to use it */
    MDB_txn           *rtxn;
    pthread_t          rtxn_thread;
};

/* The request path reads one session and its user per request; decoding
 * their JSON was most of the gateway's per-request cost. A slot keeps the
 * raw bytes read last time with their decoded form: the same bytes decode
 * the same, so a hit is exact, and any write (grant, revoke, disable,
 * touch) changes the bytes and misses. */
#define RC_SLOTS     128
#define RC_SESS_RAW  512
#define RC_USER_RAW  2048

struct rc_slot {
    uint32_t     slen, ulen;
    uint8_t      key[32];
    uint8_t      sraw[RC_SESS_RAW];
    uint8_t      uraw[RC_USER_RAW];
    gh_session_t s;
    gh_user_t    u;
};

struct read_cache {
    struct rc_slot slot[RC_SLOTS];
};

/* ------------------------------------------------------------------ */
/* LMDB edge                                                          */
/* ------------------------------------------------------------------ */

/* Translate an LMDB (or errno) code to GH_E*. Only this file calls LMDB. */
static int mdb_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:     return 0;
    case MDB_NOTFOUND:    return GH_ENOTFOUND;
    case MDB_KEYEXIST:    return GH_EEXIST;
    case MDB_MAP_FULL:    return GH_EFULL;
    case MDB_DBS_FULL:    return GH_EFULL;
    case MDB_READERS_FULL: return GH_EFULL;
    case MDB_VERSION_MISMATCH: return GH_ESCHEMA;
    case ENOMEM:          return GH_ENOMEM;
    case EACCES:
    case EPERM:
    case EIO:
    case ENOSPC:          return GH_EIO;
    default:              return GH_ESTORE;
    }
}

/* Begin a read (rdonly) or write transaction. */
static int txn_begin(gh_store_t *st, int rdonly, MDB_txn **txn)
{
    int rc;

    *txn = NULL;
    if (!rdonly && (st->flags & GH_STORE_RDONLY))
        return GH_EDENIED;
    rc = mdb_txn_begin(st->env, NULL, rdonly ? MDB_RDONLY : 0, txn);
    if (rc != 0) {
        *txn = NULL;
        return mdb_err(rc);
    }
    return 0;
}

/* Commit *txn; LMDB frees the transaction whether or not the commit
 * succeeds, so *txn is cleared either way and the caller's `out:` abort is a
 * no-op. */
static int txn_commit(MDB_txn **txn)
{
    int rc = mdb_txn_commit(*txn);

    *txn = NULL;
    return mdb_err(rc);
}

static void txn_abort(MDB_txn **txn)
{
    if (*txn != NULL)
        mdb_txn_abort(*txn);
    *txn = NULL;
}

static MDB_val mval(const void *p, size_t n)
{
    MDB_val v;

    v.mv_size = n;
    v.mv_data = (void *)p;
    return v;
}

/* ------------------------------------------------------------------ */
/* Field validation, shared by encode (callers' input) and decode     */
/* (what came back from disk).                                        */
/* ------------------------------------------------------------------ */

/* Walk every record of dbi in key order inside txn, handing each value
 * to each(); a non-zero return from each() stops the walk and is returned.
 * One place for the cursor open / get / close the typed list calls share. */
static int db_walk(MDB_txn *txn, MDB_dbi dbi,
                   int (*each)(const MDB_val *v, void *ctx), void *ctx)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    int rc, mrc;

    rc = mdb_err(mdb_cursor_open(txn, dbi, &cur));
    if (rc != 0)
        return rc;
    while ((mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        rc = each(&v, ctx);
        if (rc != 0)
            goto out;
    }
    rc = mrc == MDB_NOTFOUND ? 0 : mdb_err(mrc);
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Open a read transaction and fetch key from dbi into v; the caller
 * decodes v (valid only while *txn lives) and then aborts *txn, which is
 * left open on every return so one txn_abort() covers all paths. */
static int db_read(gh_store_t *st, MDB_dbi dbi, const void *key, size_t klen,
                   MDB_txn **txn, MDB_val *v)
{
    MDB_val k = mval(key, klen);
    int rc = txn_begin(st, 1, txn);

    return rc != 0 ? rc : mdb_err(mdb_get(*txn, dbi, &k, v));
}

/* 1 when s holds at most max bytes before its NUL (never reading past
 * max + 1 bytes, the size of the struct array), is valid UTF-8 and has no
 * control characters: names end up in headers, HTML and log lines. */
static int text_ok(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strnlen(s, max + 1), i = 0;

    if (n > max)
        return 0;
    while (i < n) {
        unsigned char c = p[i];
        uint32_t cp, min;
        size_t len, k;

        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2; cp = c & 0x1f; min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3; cp = c & 0x0f; min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4; cp = c & 0x07; min = 0x10000;
        } else {
            return 0;
        }
        if (len > n - i)
            return 0;
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp <= 0x9f))
            return 0;
        i += len;
    }
    return 1;
}

/* 1 when s is exactly GH_ID_HEXLEN lower-case hex characters. */
static int id_ok(const char *s)
{
    size_t i;

    for (i = 0; i < GH_ID_HEXLEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return s[GH_ID_HEXLEN] == '\0';
}

/* 1 when s is a tenant name that fits gh_tenant_t (bounded read). */
static int tenant_ok(const char *s)
{
    return strnlen(s, GH_TENANT_MAX + 1) <= GH_TENANT_MAX &&
           gh_tenant_name_valid(s);
}

/* 1 when s is already a normalised, valid email address. */
static int email_ok(const char *s)
{
    char norm[GH_EMAIL_MAX + 1];
    size_t n = strnlen(s, GH_EMAIL_MAX + 1);

    if (n > GH_EMAIL_MAX || gh_email_normalize(s, n, norm) != 0)
        return 0;
    return strcmp(norm, s) == 0;
}

/* Role lists: "" or comma-separated names of [a-z0-9._:-], none empty. They
 * are forwarded in X-Gatehouse-Roles, so nothing else may appear. */
static int roles_ok(const char *s)
{
    size_t n = strnlen(s, GH_ROLES_MAX + 1), i, run = 0;

    if (n > GH_ROLES_MAX)
        return 0;
    if (n == 0)
        return 1;
    for (i = 0; i <= n; i++) {
        char c = s[i];
        if (c == ',' || c == '\0') {
            if (run == 0)
                return 0;
            run = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == ':' || c == '-') {
            run++;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Session methods: 1..GH_AMR_MAX of [a-z0-9+]. */
static int amr_ok(const char *s)
{
    size_t n = strnlen(s, GH_AMR_MAX + 1), i;

    if (n == 0 || n > GH_AMR_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+'))
            return 0;
    }
    return 1;
}

/* Password hashes: 1..GH_HASH_MAX-1 printable ASCII without spaces (PHC). */
static int hash_ok(const char *s)
{
    size_t n = strnlen(s, GH_HASH_MAX), i;

    if (n == 0 || n >= GH_HASH_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Meta keys: 1..GH_META_KEY_MAX of printable ASCII without spaces. */
static int meta_key_ok(const char *s)
{
    size_t n = strnlen(s, GH_META_KEY_MAX + 1), i;

    if (n == 0 || n > GH_META_KEY_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Record serialisation: one encode/decode pair per record type.       */
/* ------------------------------------------------------------------ */

/* Serialise a built JSON object (consumed) into a malloc'd buffer. */
static int json_finish(json_t *o, char **buf, size_t *len)
{
    if (o == NULL)
        return GH_ENOMEM;
    *buf = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (*buf == NULL)
        return GH_ENOMEM;
    *len = strlen(*buf);
    if (*len > GH_RECORD_MAX) {
        free(*buf);
        *buf = NULL;
        return GH_ETOOBIG;
    }
    return 0;
}

/* Parse a stored value into a JSON object; GH_ESTORE unless it is a bounded,
 * well-formed object. */
static int json_start(const MDB_val *v, json_t **o)
{
    *o = NULL;
    if (v->mv_size == 0 || v->mv_size > GH_RECORD_MAX)
        return GH_ESTORE;
    *o = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES, NULL);
    if (*o == NULL)
        return GH_ESTORE;
    if (!json_is_object(*o)) {
        json_decref(*o);
        *o = NULL;
        return GH_ESTORE;
    }
    return 0;
}

/* Copy string member k into dst (cap bytes including the NUL). */
static int jget_str(json_t *o, const char *k, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, k);
    const char *s;
    size_t n;

    if (!json_is_string(v))
        return GH_ESTORE;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n >= cap || memchr(s, '\0', n) != NULL)
        return GH_ESTORE;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int jget_int(json_t *o, const char *k, int64_t *out)
{
    json_t *v = json_object_get(o, k);

    if (!json_is_integer(v))
        return GH_ESTORE;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Password settings: a known profile, every parameter GH_PWSET_DEFAULT
 * or within 0..GH_PWSET_MAXVAL (pwpolicy.c narrows each one). */
static int pwsettings_ok(const gh_pwsettings_t *p)
{
    const int v[] = { p->min_length, p->max_length, p->min_classes,
                      p->history, p->max_age_days, p->blocklist };
    size_t i;

    if (p->profile != GH_PWPROFILE_NIST && p->profile != GH_PWPROFILE_CLASSES)
        return 0;
    for (i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] != GH_PWSET_DEFAULT && (v[i] < 0 || v[i] > GH_PWSET_MAXVAL))
            return 0;
    return 1;
}

void gh_pwsettings_default(gh_pwsettings_t *s)
{
    s->profile = GH_PWPROFILE_NIST;
    s->min_length = s->max_length = s->min_classes = GH_PWSET_DEFAULT;
    s->history = s->max_age_days = s->blocklist = GH_PWSET_DEFAULT;
}

/* tenant: {"n":name,"d":display,"c":created,
 *          "p":{"p":profile,"n":min,"x":max,"k":classes,"h":history,
 *               "a":max_age_days,"b":blocklist},"m":mfa,
 *          "w":networks,"i":idle,"l":lifetime}
 * ("p" is absent in records written before schema 3, "m" before schema
 * 4: the defaults. "w", "i" and "l" are written only when set: a record
 * without them reads as "the policy file's".) */
static int tenant_encode(const gh_tenant_t *t, char **buf, size_t *len)
{
    const gh_pwsettings_t *p = &t->pw;
    json_t *o;
    int bad = 0;

    o = json_pack("{s:s,s:s,s:I,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},s:i}",
                  "n", t->name, "d", t->display,
                  "c", (json_int_t)t->created,
                  "p", "p", p->profile, "n", p->min_length,
                  "x", p->max_length, "k", p->min_classes,
                  "h", p->history, "a", p->max_age_days,
                  "b", p->blocklist, "m", t->mfa);
    if (o != NULL && t->networks_set)
        bad |= json_object_set_new(o, "w", json_string(t->networks));
    if (o != NULL && t->idle > 0)
        bad |= json_object_set_new(o, "i", json_integer(t->idle));
    if (o != NULL && t->lifetime > 0)
        bad |= json_object_set_new(o, "l", json_integer(t->lifetime));
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return json_finish(o, buf, len);
}

/* One small integer member of a settings object. */
static int jget_small(json_t *o, const char *k, int *out)
{
    int64_t v;

    if (jget_int(o, k, &v) != 0 || v < INT_MIN || v > INT_MAX)
        return GH_ESTORE;
    *out = (int)v;
    return 0;
}

static int pwsettings_decode(json_t *p, gh_pwsettings_t *s)
{
    gh_pwsettings_default(s);
    if (p == NULL)
        return 0;
    if (!json_is_object(p) ||
        jget_small(p, "p", &s->profile) != 0 ||
        jget_small(p, "n", &s->min_length) != 0 ||
        jget_small(p, "x", &s->max_length) != 0 ||
        jget_small(p, "k", &s->min_classes) != 0 ||
        jget_small(p, "h", &s->history) != 0 ||
        jget_small(p, "a", &s->max_age_days) != 0 ||
        jget_small(p, "b", &s->blocklist) != 0 || !pwsettings_ok(s))
        return GH_ESTORE;
    return 0;
}

/* The session bounds of store.h: 0 (unset) or within them, idle no
 * longer than lifetime when both are set. */
int gh_tenant_session_ok(int64_t idle, int64_t lifetime)
{
    if (idle != 0 && (idle < GH_TENANT_IDLE_MIN ||
                      idle > GH_TENANT_LIFETIME_MAX))
        return 0;
    if (lifetime != 0 && (lifetime < GH_TENANT_IDLE_MIN ||
                          lifetime > GH_TENANT_LIFETIME_MAX))
        return 0;
    return idle == 0 || lifetime == 0 || idle <= lifetime;
}

int gh_tenant_networks_canon(const char *list, char *out, size_t cap)
{
    gh_netset_t *ns;
    int rc;

    if (list == NULL || out == NULL || cap == 0)
        return GH_EINVAL;
    if ((ns = gh_netset_new()) == NULL)
        return GH_ENOMEM;
    rc = gh_netset_add_list(ns, list, GH_TENANT_NETS_COUNT, out, cap);
    gh_netset_free(ns);
    if (rc == 0)
        rc = GH_EINVAL;      /* set means at least one network */
    if (rc < 0) {
        out[0] = '\0';
        return rc;
    }
    return 0;
}

/* The optional access members "w", "i", "l" (tenant_encode). */
static int tenant_access_decode(json_t *o, gh_tenant_t *t)
{
    char canon[GH_TENANT_NETS_MAX + 1];

    if (json_object_get(o, "w") != NULL) {
        if (jget_str(o, "w", t->networks, sizeof t->networks) != 0 ||
            gh_tenant_networks_canon(t->networks, canon, sizeof canon) != 0 ||
            strcmp(canon, t->networks) != 0)
            return GH_ESTORE;
        t->networks_set = 1;
    }
    if ((json_object_get(o, "i") != NULL && jget_int(o, "i", &t->idle) != 0) ||
        (json_object_get(o, "l") != NULL &&
         jget_int(o, "l", &t->lifetime) != 0) ||
        !gh_tenant_session_ok(t->idle, t->lifetime))
        return GH_ESTORE;
    return 0;
}

static int tenant_decode(const MDB_val *v, gh_tenant_t *t)
{
    json_t *o;
    int rc = json_start(v, &o);

    if (rc != 0)
        return rc;
    memset(t, 0, sizeof *t);
    if (jget_str(o, "n", t->name, sizeof t->name) != 0 ||
        jget_str(o, "d", t->display, sizeof t->display) != 0 ||
        jget_int(o, "c", &t->created) != 0 ||
        !tenant_ok(t->name) || !text_ok(t->display, GH_NAME_MAX) ||
        pwsettings_decode(json_object_get(o, "p"), &t->pw) != 0)
        rc = GH_ESTORE;
    /* an unknown level fails closed */
    if (rc == 0 && json_object_get(o, "m") != NULL &&
        (jget_small(o, "m", &t->mfa) != 0 || t->mfa < GH_MFA_OPTIONAL ||
         t->mfa > GH_MFA_OFF))
        rc = GH_ESTORE;
    /* so do networks or lifetimes the setters would not have written */
    if (rc == 0)
        rc = tenant_access_decode(o, t);
    json_decref(o);
    return rc;
}

/* One role name: 1..GH_ROLE_NAME_MAX of [a-z0-9._:-]. */
static int role_ok(const char *s)
{
    size_t n = strnlen(s, GH_ROLE_NAME_MAX + 1);

    return n >= 1 && n <= GH_ROLE_NAME_MAX && strchr(s, ',') == NULL &&
           roles_ok(s);
}

/* Rebuild u->roles, the comma-separated list of every bound role. */
static void user_roles_text(gh_user_t *u)
{
    size_t off = 0, i, n;

    u->roles[0] = '\0';
    for (i = 0; i < u->nbindings; i++) {
        n = strlen(u->bindings[i].role);
        if (off + n + 2 > sizeof u->roles)
            break;   /* cannot happen: 32 x (63 + 1) fits GH_ROLES_MAX */
        if (off > 0)
            u->roles[off++] = ',';
        memcpy(u->roles + off, u->bindings[i].role, n + 1);
        off += n;
    }
}

/* user: {"i":id,"t":tenant,"e":email,"n":name,"b":[[role,until],...],
 *        "x":disabled,"c":created,"u":updated[,"z":expires]} ("z" only
 *        when set: records without it are unchanged) */
static int user_encode(const gh_user_t *u, char **buf, size_t *len)
{
    json_t *o, *b = json_array();
    unsigned i;

    if (b == NULL)
        return GH_ENOMEM;
    for (i = 0; i < u->nbindings && i < GH_BINDINGS_MAX; i++) {
        if (json_array_append_new(b, json_pack("[s,I]", u->bindings[i].role,
                                  (json_int_t)u->bindings[i].until)) != 0) {
            json_decref(b);
            return GH_ENOMEM;
        }
    }
    o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:b,s:I,s:I}",
                  "i", u->id, "t", u->tenant, "e", u->email,
                  "n", u->name, "b", b, "x", u->disabled ? 1 : 0,
                  "c", (json_int_t)u->created, "u", (json_int_t)u->updated);
    if (o != NULL && u->expires > 0 &&
        json_object_set_new(o, "z", json_integer(u->expires)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return json_finish(o, buf, len);
}

static int user_decode(const MDB_val *v, gh_user_t *u)
{
    json_t *o, *x, *b, *e;
    size_t i;
    int rc = json_start(v, &o);

    if (rc != 0)
        return rc;
    memset(u, 0, sizeof *u);
    x = json_object_get(o, "x");
    b = json_object_get(o, "b");
    if (jget_str(o, "i", u->id, sizeof u->id) != 0 ||
        jget_str(o, "t", u->tenant, sizeof u->tenant) != 0 ||
        jget_str(o, "e", u->email, sizeof u->email) != 0 ||
        jget_str(o, "n", u->name, sizeof u->name) != 0 ||
        jget_int(o, "c", &u->created) != 0 ||
        jget_int(o, "u", &u->updated) != 0 || !json_is_boolean(x) ||
        !json_is_array(b) || json_array_size(b) > GH_BINDINGS_MAX ||
        !id_ok(u->id) || !tenant_ok(u->tenant) || !email_ok(u->email) ||
        !text_ok(u->name, GH_NAME_MAX)) {
        rc = GH_ESTORE;
        goto out;
    }
    json_array_foreach(b, i, e) {
        json_t *r = json_array_get(e, 0), *t = json_array_get(e, 1);
        gh_binding_t *bd = &u->bindings[i];

        if (!json_is_array(e) || json_array_size(e) != 2 ||
            !json_is_string(r) || !json_is_integer(t) ||
            json_string_length(r) > GH_ROLE_NAME_MAX ||
            json_integer_value(t) < 0) {
            rc = GH_ESTORE;
            goto out;
        }
        memcpy(bd->role, json_string_value(r), json_string_length(r) + 1);
        bd->until = (int64_t)json_integer_value(t);
        if (!role_ok(bd->role)) {
            rc = GH_ESTORE;
            goto out;
        }
        u->nbindings++;
    }
    u->disabled = json_is_true(x);
    if (json_object_get(o, "z") != NULL &&
        (jget_int(o, "z", &u->expires) != 0 || u->expires <= 0)) {
        rc = GH_ESTORE;   /* an end we cannot read fails closed */
        goto out;
    }
    user_roles_text(u);
out:
    json_decref(o);
    return rc;
}

/* credential: {"h":hash,"u":updated,"m":must_change,"p":[earlier hashes,
 * newest first]} ("m" and "p" are absent in records written before
 * schema 3). */
static int cred_encode(const gh_credential_t *c, char **buf, size_t *len)
{
    json_t *p = json_array();
    unsigned i;

    if (p == NULL)
        return GH_ENOMEM;
    for (i = 0; i < c->nhistory && i < GH_PW_HISTORY_MAX; i++) {
        if (json_array_append_new(p, json_string(c->history[i])) != 0) {
            json_decref(p);
            return GH_ENOMEM;
        }
    }
    return json_finish(json_pack("{s:s,s:I,s:b,s:o}", "h", c->hash,
                                 "u", (json_int_t)c->updated,
                                 "m", c->must_change ? 1 : 0, "p", p),
                       buf, len);
}

static int cred_decode(const MDB_val *v, gh_credential_t *c)
{
    json_t *o, *m, *p, *e;
    size_t i;
    int rc = json_start(v, &o);

    memset(c, 0, sizeof *c);
    if (rc != 0)
        return rc;
    m = json_object_get(o, "m");
    p = json_object_get(o, "p");
    if (jget_str(o, "h", c->hash, GH_HASH_MAX) != 0 || !hash_ok(c->hash) ||
        jget_int(o, "u", &c->updated) != 0 ||
        (m != NULL && !json_is_boolean(m)) ||
        (p != NULL && (!json_is_array(p) ||
                       json_array_size(p) > GH_PW_HISTORY_MAX))) {
        rc = GH_ESTORE;
        goto out;
    }
    c->must_change = json_is_true(m);
    json_array_foreach(p, i, e) {
        if (!json_is_string(e) || json_string_length(e) >= GH_HASH_MAX) {
            rc = GH_ESTORE;
            goto out;
        }
        memcpy(c->history[i], json_string_value(e), json_string_length(e) + 1);
        if (!hash_ok(c->history[i])) {
            rc = GH_ESTORE;
            goto out;
        }
        c->nhistory++;
    }
out:
    json_decref(o);
    if (rc != 0)
        gh_wipe(c, sizeof *c);
    return rc;
}

/* session: {"u":uid,"t":tenant,"a":amr,"c":created,"s":last_seen,
 *           "f":flags,"m":mfa_at} ("f" is absent in records written before
 * schema 3, "m" when no second factor was proven) */
static int session_encode(const gh_session_t *s, char **buf, size_t *len)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:i}", "u", s->uid,
                          "t", s->tenant, "a", s->amr,
                          "c", (json_int_t)s->created,
                          "s", (json_int_t)s->last_seen,
                          "f", (int)s->flags);

    if (o != NULL && s->mfa_at != 0 &&
        json_object_set_new(o, "m", json_integer(s->mfa_at)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return json_finish(o, buf, len);
}

static int session_decode(const MDB_val *v, gh_session_t *s)
{
    json_t *o;
    int rc = json_start(v, &o);

    if (rc != 0)
        return rc;
    memset(s, 0, sizeof *s);
    if (jget_str(o, "u", s->uid, sizeof s->uid) != 0 ||
        jget_str(o, "t", s->tenant, sizeof s->tenant) != 0 ||
        jget_str(o, "a", s->amr, sizeof s->amr) != 0 ||
        jget_int(o, "c", &s->created) != 0 ||
        jget_int(o, "s", &s->last_seen) != 0 ||
        !id_ok(s->uid) || !tenant_ok(s->tenant) || !amr_ok(s->amr))
        rc = GH_ESTORE;
    if (rc == 0 && json_object_get(o, "m") != NULL &&
        jget_int(o, "m", &s->mfa_at) != 0)
        rc = GH_ESTORE;
    /* An unknown flag fails closed: a newer restriction must never be read
     * as none. */
    if (rc == 0 && json_object_get(o, "f") != NULL) {
        int64_t f;

        if (jget_int(o, "f", &f) != 0 || f < 0 ||
            (f & ~(int64_t)GH_SESSION_FLAGS) != 0)
            rc = GH_ESTORE;
        else
            s->flags = (unsigned)f;
    }
    json_decref(o);
    return rc;
}

/* users_by_email value: the raw 32 hex characters of the user id. */
static int index_decode(const MDB_val *v, char id[GH_ID_HEXLEN + 1])
{
    if (v->mv_size != GH_ID_HEXLEN)
        return GH_ESTORE;
    memcpy(id, v->mv_data, GH_ID_HEXLEN);
    id[GH_ID_HEXLEN] = '\0';
    return id_ok(id) ? 0 : GH_ESTORE;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                       */
/* ------------------------------------------------------------------ */

/* The oldest schema this build upgrades in place. Schemas 2 -> 3 -> 4 only
 * add databases and optional record fields (older records decode with
 * defaults), so the upgrade creates what is missing and rewrites the
 * schema record, in one transaction. */
#define GH_SCHEMA_UPGRADE_FROM 2

/* Read and check the schema record inside txn: GH_ENOTFOUND when absent,
 * GH_ESCHEMA when present but not ours (*found, when not NULL, receives
 * the version read, or -1 when unreadable). */
static int schema_read(MDB_txn *txn, MDB_dbi meta, long *found)
{
    MDB_val k = mval(GH_SCHEMA_KEY, strlen(GH_SCHEMA_KEY)), v;
    char buf[16], *end;
    long n;
    int rc = mdb_get(txn, meta, &k, &v);

    if (found != NULL)
        *found = -1;
    if (rc != 0)
        return mdb_err(rc);
    if (v.mv_size == 0 || v.mv_size >= sizeof buf)
        return GH_ESCHEMA;
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    errno = 0;
    n = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0')
        return GH_ESCHEMA;
    if (found != NULL)
        *found = n;
    return n == GH_STORE_SCHEMA ? 0 : GH_ESCHEMA;
}

static int schema_check(MDB_txn *txn, MDB_dbi meta)
{
    return schema_read(txn, meta, NULL);
}

/* ---- the index of a user's sessions ---- */

#define USESS_KEY  (GH_ID_HEXLEN + 32)

static MDB_val usess_key(uint8_t buf[USESS_KEY], const char *uid,
                         const uint8_t key[32])
{
    memcpy(buf, uid, GH_ID_HEXLEN);
    memcpy(buf + GH_ID_HEXLEN, key, 32);
    return mval(buf, USESS_KEY);
}

/* Index (add 1) or unindex (add 0) the session under key of uid. */
static int usess_set(gh_store_t *st, MDB_txn *txn, const char *uid,
                     const uint8_t key[32], int add)
{
    uint8_t buf[USESS_KEY];
    MDB_val k = usess_key(buf, uid, key), v = mval("", 0);
    int rc;

    if (strnlen(uid, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN)
        return GH_ESTORE;
    rc = add ? mdb_put(txn, st->usess, &k, &v, 0)
             : mdb_del(txn, st->usess, &k, NULL);
    return rc == MDB_NOTFOUND && !add ? 0 : mdb_err(rc);
}

static int session_decode(const MDB_val *v, gh_session_t *s);

/* Write the session record v under key in txn and index it; a record it
 * replaces loses its index entry (it may name another user). */
static int session_write(gh_store_t *st, MDB_txn *txn, const uint8_t key[32],
                         const gh_session_t *s, MDB_val *v, unsigned flags)
{
    MDB_val k = mval(key, 32), old;
    gh_session_t prev;
    int rc;

    rc = mdb_get(txn, st->sessions, &k, &old);
    if (rc == 0) {
        if (session_decode(&old, &prev) == 0 &&
            strcmp(prev.uid, s->uid) != 0 &&
            (rc = usess_set(st, txn, prev.uid, key, 0)) != 0)
            return rc;
    } else if (rc != MDB_NOTFOUND) {
        return mdb_err(rc);
    }
    rc = mdb_err(mdb_put(txn, st->sessions, &k, v, flags));
    return rc != 0 ? rc : usess_set(st, txn, s->uid, key, 1);
}

/* Delete the session under key in txn with its index entry; GH_ENOTFOUND
 * when absent. */
static int session_remove(gh_store_t *st, MDB_txn *txn, const uint8_t key[32])
{
    MDB_val k = mval(key, 32), v;
    gh_session_t s;
    int rc;

    rc = mdb_err(mdb_get(txn, st->sessions, &k, &v));
    if (rc != 0)
        return rc;
    if (session_decode(&v, &s) == 0 &&
        (rc = usess_set(st, txn, s.uid, key, 0)) != 0)
        return rc;
    return mdb_err(mdb_del(txn, st->sessions, &k, NULL));
}

/* Upgrade to schema 7: index every session there is. */
static int usess_rebuild(gh_store_t *st, MDB_txn *txn)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    gh_session_t s;
    int rc = 0, mrc;

    mrc = mdb_cursor_open(txn, st->sessions, &cur);
    if (mrc != 0)
        return mdb_err(mrc);
    while ((mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != 32 || session_decode(&v, &s) != 0)
            continue;   /* grants nothing: nothing to index */
        rc = usess_set(st, txn, s.uid, k.mv_data, 1);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc != 0 ? rc : mrc == MDB_NOTFOUND ? 0 : mdb_err(mrc);
}

/* Open (creating when asked) the named databases and check or write the
 * schema, all in one transaction so a half-created store is never visible. */
static int open_dbs(gh_store_t *st, int create)
{
    static const struct {
        const char *name;
        size_t      off;
    } dbs[] = {
        { "tenants",        offsetof(gh_store_t, tenants) },
        { "users",          offsetof(gh_store_t, users) },
        { "users_by_email", offsetof(gh_store_t, by_email) },
        { "credentials",    offsetof(gh_store_t, creds) },
        { "sessions",       offsetof(gh_store_t, sessions) },
        { "user_sessions",  offsetof(gh_store_t, usess) },
        { "throttle",       offsetof(gh_store_t, throttle) },
        { "policy",         offsetof(gh_store_t, policy) },
        { "jwtkeys",        offsetof(gh_store_t, jwtkeys) },
        { "factors",        offsetof(gh_store_t, factors) },
        { "saml",           offsetof(gh_store_t, saml) },
        { "admin",          offsetof(gh_store_t, admin) },
    };
    unsigned dflags = create ? MDB_CREATE : 0;
    MDB_txn *txn = NULL;
    size_t i;
    long found;
    int rc, fresh = 0, upgrade = 0;

again:
    rc = txn_begin(st, !(create || upgrade), &txn);
    if (rc != 0)
        goto out;
    rc = mdb_dbi_open(txn, "meta", dflags, &st->meta);
    if (rc != 0) {
        rc = rc == MDB_NOTFOUND ? GH_ENOTINIT : mdb_err(rc);
        goto out;
    }
    rc = schema_read(txn, st->meta, &found);
    if (rc == GH_ENOTFOUND) {
        if (!create) {
            rc = GH_ENOTINIT;
            goto out;
        }
        fresh = 1;
    } else if (rc == GH_ESCHEMA && found >= GH_SCHEMA_UPGRADE_FROM &&
               found < GH_STORE_SCHEMA && !(st->flags & GH_STORE_RDONLY)) {
        if (!upgrade) {
            /* again, in a write transaction; another process may have
             * upgraded in between (then the schema simply matches) */
            txn_abort(&txn);
            upgrade = 1;
            dflags = MDB_CREATE;
            goto again;
        }
        fresh = 1;   /* write the current schema below */
    } else if (rc != 0) {
        goto out;
    }
    for (i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)st + dbs[i].off);
        rc = mdb_dbi_open(txn, dbs[i].name, dflags, dbi);
        if (rc != 0) {
            /* The schema says we should have it: the store is not ours. */
            rc = rc == MDB_NOTFOUND ? GH_ESCHEMA : mdb_err(rc);
            goto out;
        }
    }
    if (upgrade && found < 7) {
        rc = usess_rebuild(st, txn);
        if (rc != 0)
            goto out;
    }
    if (fresh) {
        char v[16];
        int n = snprintf(v, sizeof v, "%d", GH_STORE_SCHEMA);
        MDB_val k = mval(GH_SCHEMA_KEY, strlen(GH_SCHEMA_KEY));
        MDB_val val = mval(v, (size_t)n);

        rc = mdb_err(mdb_put(txn, st->meta, &k, &val,
                             upgrade ? 0 : MDB_NOOVERWRITE));
        if (rc != 0)
            goto out;
    }
    /* Committing (even a read transaction) is what makes the DBI handles
     * usable by later transactions. */
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    return rc;
}

/* The map size: GH_STORE_MAPSIZE, or — a test hook, so that the fault tests
 * can reach MDB_MAP_FULL without writing a gigabyte — a smaller byte count
 * in GATEHOUSE_TEST_MAPSIZE (nginx passes it only with `env`). Anything that
 * does not parse completely, or is not smaller, is ignored. */
static size_t store_mapsize(void)
{
    const char *s = getenv("GATEHOUSE_TEST_MAPSIZE");
    unsigned long long v;
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return GH_STORE_MAPSIZE;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v >= GH_STORE_MAPSIZE)
        return GH_STORE_MAPSIZE;
    return (size_t)v;
}

/* Open the store under datadir (see store.h). The environment directory is
 * created (0700) only with GH_STORE_CREATE; without it a missing directory or
 * data file is GH_ENOTINIT, so a typo in --data never silently makes an empty
 * store. */
int gh_store_open(gh_store_t **out, const char *datadir, unsigned flags)
{
    char path[PATH_MAX], data[PATH_MAX];
    struct stat sb;
    gh_store_t *st = NULL;
    unsigned eflags = MDB_NOTLS;
    int rc, n, dead = 0;

    if (out == NULL || datadir == NULL || datadir[0] == '\0')
        return GH_EINVAL;
    *out = NULL;
    if ((flags & GH_STORE_CREATE) && (flags & GH_STORE_RDONLY))
        return GH_EINVAL;
    n = snprintf(path, sizeof path, "%s/%s", datadir, GH_STORE_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return GH_ETOOBIG;
    n = snprintf(data, sizeof data, "%s/data.mdb", path);
    if (n < 0 || (size_t)n >= sizeof data)
        return GH_ETOOBIG;

    if (stat(path, &sb) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return GH_EIO;
        if (!(flags & GH_STORE_CREATE))
            return GH_ENOTINIT;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return errno == ENOENT ? GH_ENOTINIT : GH_EIO;
    } else if (!S_ISDIR(sb.st_mode)) {
        return GH_ESTORE;
    }
    if (!(flags & GH_STORE_CREATE) && stat(data, &sb) != 0)
        return errno == ENOENT ? GH_ENOTINIT : GH_EIO;

    st = calloc(1, sizeof *st);
    if (st == NULL)
        return GH_ENOMEM;
    st->flags = flags;
    if (flags & GH_STORE_RDONLY)
        eflags |= MDB_RDONLY;
    if (flags & GH_STORE_NOSYNC)
        eflags |= MDB_NOSYNC;

    rc = mdb_env_create(&st->env);
    if (rc != 0) {
        st->env = NULL;
        rc = mdb_err(rc);
        goto out;
    }
    if ((rc = mdb_env_set_maxdbs(st->env, GH_STORE_MAXDBS)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, store_mapsize())) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, GH_STORE_MAXREADERS)) != 0 ||
        (rc = mdb_env_open(st->env, path, eflags, 0600)) != 0) {
        rc = rc == ENOENT ? GH_ENOTINIT : mdb_err(rc);
        goto out;
    }
    /* Readers left behind by crashed processes pin old pages forever. */
    rc = mdb_reader_check(st->env, &dead);
    if (rc != 0) {
        rc = mdb_err(rc);
        goto out;
    }
    rc = open_dbs(st, (flags & GH_STORE_CREATE) != 0);
    if (rc != 0)
        goto out;
    *out = st;
    st = NULL;
out:
    gh_store_close(st);
    return rc;
}

/* Close the environment; NULL is accepted. No transaction may be live. */
void gh_store_close(gh_store_t *st)
{
    if (st == NULL)
        return;
    if (st->rtxn != NULL)
        mdb_txn_abort(st->rtxn);
    if (st->env != NULL)
        mdb_env_close(st->env);
    if (st->rcache != NULL) {
        gh_wipe(st->rcache, sizeof *st->rcache);
        free(st->rcache);
        pthread_mutex_destroy(&st->rc_lock);
    }
    free(st);
}

/* Health check: a read transaction and the schema record. */
int gh_store_check(gh_store_t *st)
{
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL)
        return GH_EINVAL;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = schema_check(txn, st->meta);
    if (rc == GH_ENOTFOUND)
        rc = GH_ENOTINIT;
out:
    txn_abort(&txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* meta                                                               */
/* ------------------------------------------------------------------ */

/* Copy the text value of key into out (cap bytes with NUL). */
int gh_meta_get(gh_store_t *st, const char *key, char *out, size_t cap)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc;

    if (st == NULL || key == NULL || out == NULL || !meta_key_ok(key))
        return GH_EINVAL;
    rc = db_read(st, st->meta, key, strlen(key), &txn, &v);
    if (rc != 0)
        goto out;
    if (v.mv_size > GH_META_VALUE_MAX || memchr(v.mv_data, '\0', v.mv_size)) {
        rc = GH_ESTORE;
        goto out;
    }
    if (cap < v.mv_size + 1) {
        rc = GH_ETOOBIG;
        goto out;
    }
    memcpy(out, v.mv_data, v.mv_size);
    out[v.mv_size] = '\0';
out:
    txn_abort(&txn);
    return rc;
}

/* Set a text setting. The schema record is owned by the store and cannot be
 * overwritten through here. */
int gh_meta_set(gh_store_t *st, const char *key, const char *value)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || key == NULL || value == NULL || !meta_key_ok(key) ||
        strcmp(key, GH_SCHEMA_KEY) == 0)
        return GH_EINVAL;
    if (strnlen(value, GH_META_VALUE_MAX + 1) > GH_META_VALUE_MAX)
        return GH_ETOOBIG;
    if (!text_ok(value, GH_META_VALUE_MAX))
        return GH_EINVAL;
    k = mval(key, strlen(key));
    v = mval(value, strlen(value));
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_put(txn, st->meta, &k, &v, 0));
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* tenants                                                            */
/* ------------------------------------------------------------------ */

/* Add a tenant; display NULL means "same as name". */
int gh_tenant_add(gh_store_t *st, const char *name, const char *display)
{
    gh_tenant_t t;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || name == NULL || !tenant_ok(name))
        return GH_EINVAL;
    if (display == NULL)
        display = name;
    if (strnlen(display, GH_NAME_MAX + 1) > GH_NAME_MAX)
        return GH_ETOOBIG;
    if (!text_ok(display, GH_NAME_MAX))
        return GH_EINVAL;
    memset(&t, 0, sizeof t);
    memcpy(t.name, name, strlen(name) + 1);
    memcpy(t.display, display, strlen(display) + 1);
    t.created = gh_now();
    gh_pwsettings_default(&t.pw);
    rc = tenant_encode(&t, &buf, &len);
    if (rc != 0)
        goto out;
    k = mval(t.name, strlen(t.name));
    v = mval(buf, len);
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_put(txn, st->tenants, &k, &v, MDB_NOOVERWRITE));
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

/* Fetch one tenant; a name that cannot exist is simply GH_ENOTFOUND. */
int gh_tenant_get(gh_store_t *st, const char *name, gh_tenant_t *out)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc;

    if (st == NULL || name == NULL || out == NULL)
        return GH_EINVAL;
    if (!tenant_ok(name))
        return GH_ENOTFOUND;
    rc = db_read(st, st->tenants, name, strlen(name), &txn, &v);
    if (rc == 0)
        rc = tenant_decode(&v, out);
    txn_abort(&txn);
    return rc;
}

/* Walk tenants in name order inside one read transaction; cb sees copies. */
struct tenant_walk {
    int (*cb)(const gh_tenant_t *, void *);
    void *arg;
};

static int tenant_each(const MDB_val *v, void *ctx)
{
    const struct tenant_walk *w = ctx;
    gh_tenant_t t;
    int rc;

    rc = tenant_decode(v, &t);
    return rc != 0 ? rc : w->cb(&t, w->arg);
}

int gh_tenant_list(gh_store_t *st, int (*cb)(const gh_tenant_t *, void *),
                   void *arg)
{
    MDB_txn *txn = NULL;
    struct tenant_walk w = { cb, arg };
    int rc;

    if (st == NULL || cb == NULL)
        return GH_EINVAL;
    rc = txn_begin(st, 1, &txn);
    if (rc == 0)
        rc = db_walk(txn, st->tenants, tenant_each, &w);
    txn_abort(&txn);
    return rc;
}

/* Replace a tenant's password settings (read-modify-write, one
 * transaction). */
static int policy_version_bump(gh_store_t *st, MDB_txn *txn);

/* Read tenant name, let mutate() change it, write it back (and bump the
 * policy version when asked), in one write transaction. */
static int tenant_rewrite(gh_store_t *st, const char *name,
                          int (*mutate)(gh_tenant_t *, const void *),
                          const void *arg, int bump)
{
    gh_tenant_t t;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (!tenant_ok(name))
        return GH_ENOTFOUND;
    k = mval(name, strlen(name));
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_get(txn, st->tenants, &k, &v));
    if (rc != 0)
        goto out;
    rc = tenant_decode(&v, &t);
    if (rc != 0)
        goto out;
    rc = mutate(&t, arg);
    if (rc != 0)
        goto out;
    rc = tenant_encode(&t, &buf, &len);
    if (rc != 0)
        goto out;
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->tenants, &k, &v, 0));
    if (rc == 0 && bump)
        rc = policy_version_bump(st, txn);
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

static int set_pw(gh_tenant_t *t, const void *arg)
{
    t->pw = *(const gh_pwsettings_t *)arg;
    return 0;
}

static int set_mfa(gh_tenant_t *t, const void *arg)
{
    t->mfa = *(const int *)arg;
    return 0;
}

int gh_tenant_set_pwsettings(gh_store_t *st, const char *name,
                             const gh_pwsettings_t *pw)
{
    if (st == NULL || name == NULL || pw == NULL || !pwsettings_ok(pw))
        return GH_EINVAL;
    return tenant_rewrite(st, name, set_pw, pw, 0);
}

static const char *const mfa_levels[] = { "optional", "required", "off" };

const char *gh_mfa_level_name(int level)
{
    return level >= GH_MFA_OPTIONAL && level <= GH_MFA_OFF ? mfa_levels[level]
                                                          : "unknown";
}

int gh_mfa_level_parse(const char *s)
{
    int i;

    for (i = GH_MFA_OPTIONAL; s != NULL && i <= GH_MFA_OFF; i++)
        if (strcmp(s, mfa_levels[i]) == 0)
            return i;
    return -1;
}

int gh_tenant_set_mfa(gh_store_t *st, const char *name, int level)
{
    if (st == NULL || name == NULL || level < GH_MFA_OPTIONAL ||
        level > GH_MFA_OFF)
        return GH_EINVAL;
    return tenant_rewrite(st, name, set_mfa, &level, 1);
}

static int set_networks(gh_tenant_t *t, const void *arg)
{
    const char *canon = arg;

    t->networks_set = canon != NULL;
    snprintf(t->networks, sizeof t->networks, "%s", canon ? canon : "");
    return 0;
}

int gh_tenant_set_networks(gh_store_t *st, const char *name,
                           const char *list)
{
    char canon[GH_TENANT_NETS_MAX + 1];
    int rc;

    if (st == NULL || name == NULL)
        return GH_EINVAL;
    if (list != NULL &&
        (rc = gh_tenant_networks_canon(list, canon, sizeof canon)) != 0)
        return rc == GH_ENOMEM ? rc : GH_EINVAL;
    return tenant_rewrite(st, name, set_networks, list ? canon : NULL, 1);
}

const char *gh_tenant_networks_text(const gh_tenant_t *t)
{
    return t->networks_set ? t->networks : "policy file";
}

void gh_tenant_session_text(const gh_tenant_t *t, char *out, size_t cap)
{
    char i[24] = "policy file", l[24] = "policy file";

    if (t->idle > 0)
        gh_duration_format(t->idle, i, sizeof i);
    if (t->lifetime > 0)
        gh_duration_format(t->lifetime, l, sizeof l);
    snprintf(out, cap, "idle %s, lifetime %s", i, l);
}

/* The merged idle/lifetime must hold the bounds: checked on the record
 * read inside the write transaction, so a concurrent change is seen. */
static int set_session(gh_tenant_t *t, const void *arg)
{
    const int64_t *v = arg;
    int64_t idle = v[0] == GH_TENANT_KEEP ? t->idle : v[0];
    int64_t lifetime = v[1] == GH_TENANT_KEEP ? t->lifetime : v[1];

    if (!gh_tenant_session_ok(idle, lifetime))
        return GH_EINVAL;
    t->idle = idle;
    t->lifetime = lifetime;
    return 0;
}

int gh_tenant_set_session(gh_store_t *st, const char *name, int64_t idle,
                          int64_t lifetime)
{
    const int64_t v[2] = { idle, lifetime };

    if (st == NULL || name == NULL || idle < GH_TENANT_KEEP ||
        lifetime < GH_TENANT_KEEP)
        return GH_EINVAL;
    return tenant_rewrite(st, name, set_session, v, 1);
}

/* ------------------------------------------------------------------ */
/* users                                                              */
/* ------------------------------------------------------------------ */

/* Read user id within txn into out; the record must carry the same id. */
static int user_get_txn(gh_store_t *st, MDB_txn *txn, const char *id,
                        gh_user_t *out)
{
    MDB_val k = mval(id, GH_ID_HEXLEN), v;
    int rc = mdb_err(mdb_get(txn, st->users, &k, &v));

    if (rc != 0)
        return rc;
    rc = user_decode(&v, out);
    if (rc == 0 && strcmp(out->id, id) != 0)
        rc = GH_ESTORE;
    return rc;
}

/* Look up the user id for a normalised email within txn. */
static int email_index_get(gh_store_t *st, MDB_txn *txn, const char *email,
                           char id[GH_ID_HEXLEN + 1])
{
    MDB_val k = mval(email, strlen(email)), v;
    int rc = mdb_err(mdb_get(txn, st->by_email, &k, &v));

    if (rc != 0)
        return rc;
    return index_decode(&v, id);
}

static int sessions_del_some(gh_store_t *st, MDB_txn *txn, const char *uid,
                             const uint8_t *keep,
                             int (*dead)(const gh_session_t *, void *),
                             void *arg);

/* Delete every session of uid inside the write transaction txn, except
 * the one stored under keep (when not NULL); returns the count. The
 * user's index names them: the work is the user's sessions, not the
 * store's. */
static int sessions_del_uid(gh_store_t *st, MDB_txn *txn, const char *uid,
                            const uint8_t *keep)
{
    return sessions_del_some(st, txn, uid, keep, NULL, NULL);
}

/* The same for those of uid's sessions that dead() condemns (NULL: all). */
static int sessions_del_some(gh_store_t *st, MDB_txn *txn, const char *uid,
                             const uint8_t *keep,
                             int (*dead)(const gh_session_t *, void *),
                             void *arg)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v, sk, sv;
    gh_session_t s;
    uint8_t start[USESS_KEY];
    int rc, mrc, count = 0;

    if (strnlen(uid, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN)
        return 0;
    rc = mdb_err(mdb_cursor_open(txn, st->usess, &cur));
    if (rc != 0)
        return rc;
    memset(start, 0, sizeof start);
    k = usess_key(start, uid, start + GH_ID_HEXLEN);
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0) {
        if (k.mv_size != USESS_KEY || memcmp(k.mv_data, uid, GH_ID_HEXLEN) != 0)
            break;
        sk = mval((const uint8_t *)k.mv_data + GH_ID_HEXLEN, 32);
        if ((keep != NULL && memcmp(sk.mv_data, keep, 32) == 0) ||
            (dead != NULL && mdb_get(txn, st->sessions, &sk, &sv) == 0 &&
             (session_decode(&sv, &s) != 0 || !dead(&s, arg)))) {
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        mrc = mdb_del(txn, st->sessions, &sk, NULL);
        if (mrc == 0 && count < INT_MAX)
            count++;
        else if (mrc != MDB_NOTFOUND)
            break;
        /* after mdb_cursor_del, NEXT yields the follower */
        mrc = mdb_cursor_del(cur, 0);
        if (mrc == 0)
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    rc = mrc == MDB_NOTFOUND || mrc == 0 ? count : mdb_err(mrc);
    mdb_cursor_close(cur);
    return rc;
}

/* Initial bindings (no end date) from a comma-separated list; duplicates
 * collapse into one. */
static int bindings_from_text(gh_user_t *u, const char *roles)
{
    const char *p = roles, *comma;
    size_t n, i;

    u->nbindings = 0;
    while (*p != '\0') {
        comma = strchr(p, ',');
        n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n > GH_ROLE_NAME_MAX)
            return GH_EINVAL;
        for (i = 0; i < u->nbindings; i++)
            if (strlen(u->bindings[i].role) == n &&
                memcmp(u->bindings[i].role, p, n) == 0)
                break;
        if (i == u->nbindings) {
            if (u->nbindings == GH_BINDINGS_MAX)
                return GH_ETOOBIG;
            memcpy(u->bindings[i].role, p, n);
            u->bindings[i].role[n] = '\0';
            u->bindings[i].until = 0;
            u->nbindings++;
        }
        p += n + (comma ? 1 : 0);
    }
    user_roles_text(u);
    return 0;
}

/* Add a user and its email index entry in one write transaction. */
int gh_user_add(gh_store_t *st, const gh_user_t *in,
                char id_out[GH_ID_HEXLEN + 1])
{
    gh_user_t u;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || in == NULL)
        return GH_EINVAL;
    if (!tenant_ok(in->tenant))
        return GH_EBADTENANT;
    if (!email_ok(in->email))
        return GH_EBADEMAIL;
    if (!text_ok(in->name, GH_NAME_MAX) || !roles_ok(in->roles))
        return GH_EINVAL;
    memset(&u, 0, sizeof u);
    gh_new_id(u.id);
    memcpy(u.tenant, in->tenant, strlen(in->tenant) + 1);
    memcpy(u.email, in->email, strlen(in->email) + 1);
    memcpy(u.name, in->name, strlen(in->name) + 1);
    rc = bindings_from_text(&u, in->roles);
    if (rc != 0)
        return rc;
    u.disabled = in->disabled ? 1 : 0;
    u.created = u.updated = gh_now();
    rc = user_encode(&u, &buf, &len);
    if (rc != 0)
        goto out;

    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    k = mval(u.tenant, strlen(u.tenant));
    rc = mdb_err(mdb_get(txn, st->tenants, &k, &v));
    if (rc != 0) {
        rc = rc == GH_ENOTFOUND ? GH_EBADTENANT : rc;
        goto out;
    }
    k = mval(u.email, strlen(u.email));
    v = mval(u.id, GH_ID_HEXLEN);
    rc = mdb_err(mdb_put(txn, st->by_email, &k, &v, MDB_NOOVERWRITE));
    if (rc != 0)
        goto out;
    k = mval(u.id, GH_ID_HEXLEN);
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->users, &k, &v, MDB_NOOVERWRITE));
    if (rc != 0) {
        /* 128-bit id collision: never overwrite; the caller may retry. */
        rc = rc == GH_EEXIST ? GH_ESTORE : rc;
        goto out;
    }
    rc = txn_commit(&txn);
    if (rc == 0 && id_out != NULL)
        memcpy(id_out, u.id, GH_ID_HEXLEN + 1);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

/* One user by id; malformed ids are GH_ENOTFOUND. */
int gh_user_get(gh_store_t *st, const char *id, gh_user_t *out)
{
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL || id == NULL || out == NULL)
        return GH_EINVAL;
    if (strnlen(id, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN || !id_ok(id))
        return GH_ENOTFOUND;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, id, out);
out:
    txn_abort(&txn);
    return rc;
}

/* One user by email. The address is normalised first (so "Bob@X.org"
 * finds bob@x.org); one that cannot be valid is GH_ENOTFOUND. */
int gh_user_by_email(gh_store_t *st, const char *email, gh_user_t *out)
{
    char norm[GH_EMAIL_MAX + 1], id[GH_ID_HEXLEN + 1];
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL || email == NULL || out == NULL)
        return GH_EINVAL;
    if (gh_email_normalize(email, strlen(email), norm) != 0)
        return GH_ENOTFOUND;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = email_index_get(st, txn, norm, id);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, id, out);
    if (rc == GH_ENOTFOUND)
        rc = GH_ESTORE;   /* index points at nothing */
out:
    txn_abort(&txn);
    return rc;
}

/* Walk users in email order (via the index), optionally of one tenant
 * (GH_EBADTENANT when it does not exist). cb runs inside the read
 * transaction on a copy; a non-zero return stops the walk. */
struct user_walk {
    gh_store_t *st;
    MDB_txn *txn;
    const char *tenant;
    int (*cb)(const gh_user_t *, void *);
    void *arg;
};

/* One email-index entry: the user it names must exist (else the store is
 * inconsistent); users of other tenants are skipped when filtering. */
static int user_each(const MDB_val *v, void *ctx)
{
    const struct user_walk *w = ctx;
    char id[GH_ID_HEXLEN + 1];
    gh_user_t u;
    int rc;

    rc = index_decode(v, id);
    if (rc == 0)
        rc = user_get_txn(w->st, w->txn, id, &u);
    if (rc != 0)
        return rc == GH_ENOTFOUND ? GH_ESTORE : rc;
    if (w->tenant != NULL && strcmp(u.tenant, w->tenant) != 0)
        return 0;
    return w->cb(&u, w->arg);
}

int gh_user_list(gh_store_t *st, const char *tenant,
                 int (*cb)(const gh_user_t *, void *), void *arg)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    struct user_walk w = { st, NULL, tenant, cb, arg };
    int rc;

    if (st == NULL || cb == NULL)
        return GH_EINVAL;
    if (tenant != NULL && !tenant_ok(tenant))
        return GH_EBADTENANT;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    if (tenant != NULL) {
        k = mval(tenant, strlen(tenant));
        rc = mdb_err(mdb_get(txn, st->tenants, &k, &v));
        if (rc != 0) {
            rc = rc == GH_ENOTFOUND ? GH_EBADTENANT : rc;
            goto out;
        }
    }
    w.txn = txn;
    rc = db_walk(txn, st->by_email, user_each, &w);
out:
    txn_abort(&txn);
    return rc;
}

/* One bounded page of the email index (see store.h): a cursor seek to
 * the first email after `after` (or to `prefix`), then at most `scan`
 * index entries, so a page costs the same with ten users or a million. */
int gh_user_page(gh_store_t *st, const gh_user_page_t *pg,
                 int (*cb)(const gh_user_t *, void *), void *arg,
                 char next[GH_EMAIL_MAX + 1])
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_cursor_op op = MDB_SET_RANGE;
    char id[GH_ID_HEXLEN + 1];
    const char *from;
    size_t plen;
    unsigned seen = 0, given = 0;
    gh_user_t u;
    int rc, mrc = 0;

    if (st == NULL || pg == NULL || cb == NULL || next == NULL ||
        pg->limit == 0 || pg->scan == 0)
        return GH_EINVAL;
    next[0] = '\0';
    if (pg->tenant != NULL && !tenant_ok(pg->tenant))
        return GH_EBADTENANT;
    plen = pg->prefix != NULL ? strlen(pg->prefix) : 0;
    if (plen > GH_EMAIL_MAX ||
        (pg->after != NULL && strlen(pg->after) > GH_EMAIL_MAX))
        return GH_ETOOBIG;
    from = pg->after != NULL && pg->after[0] != '\0' ? pg->after
           : plen ? pg->prefix : NULL;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_cursor_open(txn, st->by_email, &cur));
    if (rc != 0) {
        cur = NULL;
        goto out;
    }
    if (from != NULL)
        k = mval(from, strlen(from));
    else
        op = MDB_FIRST;
    while ((mrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size > GH_EMAIL_MAX) {
            rc = GH_ESTORE;
            goto out;
        }
        /* strictly after the cursor */
        if (pg->after != NULL && pg->after[0] != '\0' &&
            k.mv_size == strlen(pg->after) &&
            memcmp(k.mv_data, pg->after, k.mv_size) == 0)
            continue;
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, pg->prefix,
                                                plen) != 0)) {
            if (memcmp(k.mv_data, pg->prefix,
                       k.mv_size < plen ? k.mv_size : plen) > 0)
                break;              /* past every email with the prefix */
        } else {
            if (given == pg->limit)
                goto out;           /* more follow: next is the last read */
            rc = index_decode(&v, id);
            if (rc == 0)
                rc = user_get_txn(st, txn, id, &u);
            if (rc != 0) {
                rc = rc == GH_ENOTFOUND ? GH_ESTORE : rc;
                goto out;
            }
            if (pg->tenant == NULL || strcmp(u.tenant, pg->tenant) == 0) {
                given++;
                rc = cb(&u, arg);
                if (rc != 0)
                    goto out;
            }
        }
        memcpy(next, k.mv_data, k.mv_size);
        next[k.mv_size] = '\0';
        if (++seen == pg->scan)
            goto out;               /* the bound: continue from here */
    }
    if (mrc != MDB_NOTFOUND)
        rc = mdb_err(mrc);
    next[0] = '\0';                 /* the walk ended */
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    txn_abort(&txn);
    if (rc != 0)
        next[0] = '\0';
    return rc;
}

/* core/store_admin.c's way in (core/store_int.h): its own database and
 * this file's transaction helpers, so its records stay in this
 * environment without a second copy of the LMDB edge. */
int gh_store_int_begin(gh_store_t *st, int rdonly, MDB_txn **txn)
{
    return st == NULL ? GH_EINVAL : txn_begin(st, rdonly, txn);
}

int gh_store_int_commit(MDB_txn **txn)
{
    return txn_commit(txn);
}

void gh_store_int_abort(MDB_txn **txn)
{
    txn_abort(txn);
}

MDB_dbi gh_store_int_admin(gh_store_t *st)
{
    return st->admin;
}

int gh_store_int_err(int rc)
{
    return mdb_err(rc);
}

int gh_store_int_json(const MDB_val *v, json_t **o)
{
    return json_start(v, o);
}

int gh_store_int_jstr(json_t *o, const char *k, char *dst, size_t cap)
{
    return jget_str(o, k, dst, cap);
}

int gh_store_int_jint(json_t *o, const char *k, int64_t *out)
{
    return jget_int(o, k, out);
}

int gh_user_off(const gh_user_t *u, int64_t now)
{
    return u == NULL || u->disabled || (u->expires > 0 && now >= u->expires);
}

/* Set a user's state: disabled, or enabled until expires (0: no end).
 * Disabling also deletes all the user's sessions in the same transaction
 * (and does so even when the user was already disabled, so a retry always
 * leaves no session behind). */
static int user_set_state(gh_store_t *st, const char *id, int disabled,
                          int64_t expires)
{
    gh_user_t u;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || id == NULL || expires < 0)
        return GH_EINVAL;
    if (strnlen(id, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN || !id_ok(id))
        return GH_ENOTFOUND;
    disabled = disabled ? 1 : 0;
    if (disabled)
        expires = 0;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, id, &u);
    if (rc != 0)
        goto out;
    if (u.disabled != disabled || u.expires != expires) {
        u.disabled = disabled;
        u.expires = expires;
        u.updated = gh_now();
        rc = user_encode(&u, &buf, &len);
        if (rc != 0)
            goto out;
        k = mval(u.id, GH_ID_HEXLEN);
        v = mval(buf, len);
        rc = mdb_err(mdb_put(txn, st->users, &k, &v, 0));
        if (rc != 0)
            goto out;
    } else if (!disabled) {
        goto out;   /* already so: nothing to write */
    }
    if (disabled) {
        rc = sessions_del_uid(st, txn, id, NULL);
        if (rc < 0)
            goto out;
    }
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

int gh_user_set_disabled(gh_store_t *st, const char *id, int disabled)
{
    return user_set_state(st, id, disabled, 0);
}

int gh_user_enable_until(gh_store_t *st, const char *id, int64_t expires)
{
    return expires > 0 ? user_set_state(st, id, 0, expires) : GH_EINVAL;
}

/* ------------------------------------------------------------------ */
/* role bindings                                                      */
/* ------------------------------------------------------------------ */

/* Read user id, let mutate() change it, write it back: one write
 * transaction, so concurrent grants never lose each other's change. */
static int user_rewrite(gh_store_t *st, const char *id,
                        int (*mutate)(gh_user_t *, const void *),
                        const void *arg)
{
    gh_user_t u;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || id == NULL)
        return GH_EINVAL;
    if (strnlen(id, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN || !id_ok(id))
        return GH_ENOTFOUND;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, id, &u);
    if (rc != 0)
        goto out;
    rc = mutate(&u, arg);
    if (rc != 0)
        goto out;
    u.updated = gh_now();
    rc = user_encode(&u, &buf, &len);
    if (rc != 0)
        goto out;
    k = mval(u.id, GH_ID_HEXLEN);
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->users, &k, &v, 0));
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

static int binding_find(const gh_user_t *u, const char *role)
{
    unsigned i;

    for (i = 0; i < u->nbindings; i++)
        if (strcmp(u->bindings[i].role, role) == 0)
            return (int)i;
    return -1;
}

static int grant_mutate(gh_user_t *u, const void *arg)
{
    const gh_binding_t *b = arg;
    int i = binding_find(u, b->role);

    if (i < 0) {
        if (u->nbindings == GH_BINDINGS_MAX)
            return GH_ETOOBIG;
        i = (int)u->nbindings++;
    }
    u->bindings[i] = *b;
    return 0;
}

static int revoke_mutate(gh_user_t *u, const void *arg)
{
    int i = binding_find(u, arg);

    if (i < 0)
        return GH_ENOTFOUND;
    memmove(&u->bindings[i], &u->bindings[i + 1],
            (u->nbindings - (unsigned)i - 1) * sizeof u->bindings[0]);
    u->nbindings--;
    return 0;
}

/* Grant role until `until` (0: no end); see store.h. */
int gh_role_grant(gh_store_t *st, const char *uid, const char *role,
                  int64_t until)
{
    gh_binding_t b;

    if (role == NULL || !role_ok(role) || until < 0)
        return GH_EINVAL;
    memset(&b, 0, sizeof b);
    memcpy(b.role, role, strlen(role) + 1);
    b.until = until;
    return user_rewrite(st, uid, grant_mutate, &b);
}

/* Revoke role; GH_ENOTFOUND when the user does not hold it. */
int gh_role_revoke(gh_store_t *st, const char *uid, const char *role)
{
    if (role == NULL || !role_ok(role))
        return GH_EINVAL;
    return user_rewrite(st, uid, revoke_mutate, role);
}

/* The roles in force at now; pure, no store access. */
size_t gh_user_active_roles(const gh_user_t *u, int64_t now,
                            const char *out[GH_BINDINGS_MAX])
{
    size_t n = 0;
    unsigned i;

    for (i = 0; i < u->nbindings && i < GH_BINDINGS_MAX; i++)
        if (u->bindings[i].until == 0 || u->bindings[i].until > now)
            out[n++] = u->bindings[i].role;
    return n;
}

/* ------------------------------------------------------------------ */
/* policy                                                             */
/* ------------------------------------------------------------------ */

#define POLICY_TEXT_KEY    "text"
#define POLICY_VERSION_KEY "version"
#define POLICY_TEXT_MAX    (4u * 1024 * 1024)

/* The version record is 8 bytes, big-endian. */
#define KEYS_VERSION_KEY "keys.version"

/* A version counter `name` in the policy db within txn (0 when unset);
 * 8 bytes, big-endian, anything else is GH_ESTORE. Shared by the policy
 * and key-set versions. */
static int version_txn(gh_store_t *st, MDB_txn *txn, const char *name,
                       uint64_t *ver)
{
    MDB_val k = mval(name, strlen(name)), v;
    const unsigned char *p;
    int rc = mdb_err(mdb_get(txn, st->policy, &k, &v)), i;

    *ver = 0;
    if (rc == GH_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size != 8)
        return GH_ESTORE;
    p = v.mv_data;
    for (i = 0; i < 8; i++)
        *ver = *ver << 8 | p[i];
    return 0;
}

/* Bump the policy version within txn: workers recompile the policy (and
 * re-read the tenants' MFA levels, networks and lifetimes) at their
 * next request. */
/* Add one to counter `name` inside write txn. */
static int version_bump(gh_store_t *st, MDB_txn *txn, const char *name)
{
    MDB_val k, v;
    unsigned char be[8];
    uint64_t ver;
    int rc, i;

    rc = version_txn(st, txn, name, &ver);
    if (rc != 0)
        return rc;
    ver++;
    for (i = 7; i >= 0; i--) {
        be[i] = (unsigned char)(ver & 0xff);
        ver >>= 8;
    }
    k = mval(name, strlen(name));
    v = mval(be, sizeof be);
    return mdb_err(mdb_put(txn, st->policy, &k, &v, 0));
}

static int policy_version_txn(gh_store_t *st, MDB_txn *txn, uint64_t *ver)
{
    return version_txn(st, txn, POLICY_VERSION_KEY, ver);
}

static int policy_version_bump(gh_store_t *st, MDB_txn *txn)
{
    return version_bump(st, txn, POLICY_VERSION_KEY);
}

/* Store text and bump the version in one transaction. */
int gh_policy_put(gh_store_t *st, const char *text, size_t len,
                  uint64_t *version_out)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || text == NULL || len == 0)
        return GH_EINVAL;
    if (len > POLICY_TEXT_MAX)
        return GH_ETOOBIG;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    k = mval(POLICY_TEXT_KEY, strlen(POLICY_TEXT_KEY));
    v = mval(text, len);
    rc = mdb_err(mdb_put(txn, st->policy, &k, &v, 0));
    if (rc != 0)
        goto out;
    rc = policy_version_bump(st, txn);
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
    if (rc == 0 && version_out != NULL)
        rc = gh_policy_version(st, version_out);
out:
    txn_abort(&txn);
    return rc;
}

/* A malloc'd copy of the live policy text and its version. */
int gh_policy_get(gh_store_t *st, char **text, size_t *len,
                  uint64_t *version)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || text == NULL || len == NULL || version == NULL)
        return GH_EINVAL;
    *text = NULL;
    *len = 0;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = policy_version_txn(st, txn, version);
    if (rc != 0)
        goto out;
    k = mval(POLICY_TEXT_KEY, strlen(POLICY_TEXT_KEY));
    rc = mdb_err(mdb_get(txn, st->policy, &k, &v));
    if (rc != 0)
        goto out;
    if (v.mv_size == 0 || v.mv_size > POLICY_TEXT_MAX) {
        rc = GH_ESTORE;
        goto out;
    }
    *text = malloc(v.mv_size + 1);
    if (*text == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    memcpy(*text, v.mv_data, v.mv_size);
    (*text)[v.mv_size] = '\0';
    *len = v.mv_size;
out:
    txn_abort(&txn);
    return rc;
}

/* The live version only (0: none stored). */
int gh_policy_version(gh_store_t *st, uint64_t *version)
{
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL || version == NULL)
        return GH_EINVAL;
    *version = 0;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = policy_version_txn(st, txn, version);
    txn_abort(&txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* credentials                                                        */
/* ------------------------------------------------------------------ */

static int session_in_ok(const gh_session_t *s);

/* 1 when uid has the shape of a user id (cheap refusal before a lookup). */
static int uid_ok(const char *uid)
{
    return uid != NULL && strnlen(uid, GH_ID_HEXLEN + 1) == GH_ID_HEXLEN &&
           id_ok(uid);
}

/* The credential of uid within txn; GH_ENOTFOUND when none. */
static int cred_get_txn(gh_store_t *st, MDB_txn *txn, const char *uid,
                        gh_credential_t *c)
{
    MDB_val k = mval(uid, GH_ID_HEXLEN), v;
    int rc = mdb_err(mdb_get(txn, st->creds, &k, &v));

    if (rc != 0) {
        memset(c, 0, sizeof *c);
        return rc;
    }
    return cred_decode(&v, c);
}

/* Write c as uid's credential within txn; the serialised copy is wiped. */
static int cred_put_txn(gh_store_t *st, MDB_txn *txn, const char *uid,
                        const gh_credential_t *c)
{
    MDB_val k, v;
    char *buf = NULL;
    size_t len = 0;
    int rc = cred_encode(c, &buf, &len);

    if (rc != 0)
        return rc;
    k = mval(uid, GH_ID_HEXLEN);
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->creds, &k, &v, 0));
    gh_wipe(buf, len);
    free(buf);
    return rc;
}

/* Read uid's credential (absent: a blank one), let mutate() change it and
 * write it back, in one write transaction with the user's existence
 * checked. */
static int cred_rewrite(gh_store_t *st, const char *uid,
                        int (*mutate)(gh_credential_t *, int have,
                                      const void *),
                        const void *arg)
{
    gh_credential_t *c = NULL;
    gh_user_t u;
    MDB_txn *txn = NULL;
    int rc, have;

    if (!uid_ok(uid))
        return GH_ENOTFOUND;
    c = malloc(sizeof *c);
    if (c == NULL)
        return GH_ENOMEM;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, uid, &u);
    if (rc != 0)
        goto out;
    rc = cred_get_txn(st, txn, uid, c);
    if (rc != 0 && rc != GH_ENOTFOUND)
        goto out;
    have = rc == 0;
    rc = mutate(c, have, arg);
    if (rc != 0)
        goto out;
    rc = cred_put_txn(st, txn, uid, c);
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    if (c != NULL) {
        gh_wipe(c, sizeof *c);
        free(c);
    }
    return rc;
}

static int set_mutate(gh_credential_t *c, int have, const void *arg)
{
    const char *hash = arg;

    (void)have;
    memcpy(c->hash, hash, strlen(hash) + 1);
    c->updated = gh_now();
    c->must_change = 0;
    return 0;
}

/* Store the password hash of an existing user (GH_ENOTFOUND otherwise). */
int gh_credential_set(gh_store_t *st, const char *uid, const char *hash)
{
    if (st == NULL || uid == NULL || hash == NULL)
        return GH_EINVAL;
    if (!uid_ok(uid))
        return GH_ENOTFOUND;
    if (strnlen(hash, GH_HASH_MAX) >= GH_HASH_MAX)
        return GH_ETOOBIG;
    if (!hash_ok(hash))
        return GH_EINVAL;
    return cred_rewrite(st, uid, set_mutate, hash);
}

typedef struct {
    const char *old;
    const char *fresh;
} rehash_arg_t;

static int rehash_mutate(gh_credential_t *c, int have, const void *arg)
{
    const rehash_arg_t *a = arg;

    if (!have || strcmp(c->hash, a->old) != 0)
        return GH_EDENIED;
    memcpy(c->hash, a->fresh, strlen(a->fresh) + 1);
    return 0;
}

/* Swap the hash for one of the same password (see store.h). */
int gh_credential_rehash(gh_store_t *st, const char *uid, const char *old,
                         const char *fresh)
{
    rehash_arg_t a;

    if (st == NULL || uid == NULL || old == NULL || fresh == NULL)
        return GH_EINVAL;
    if (!hash_ok(fresh))
        return GH_EINVAL;
    a.old = old;
    a.fresh = fresh;
    return cred_rewrite(st, uid, rehash_mutate, &a);
}

/* The user's password hash; GH_ENOTFOUND when none is set. */
int gh_credential_get(gh_store_t *st, const char *uid, char out[GH_HASH_MAX])
{
    gh_credential_t *c;
    int rc;

    if (st == NULL || uid == NULL || out == NULL)
        return GH_EINVAL;
    out[0] = '\0';
    c = malloc(sizeof *c);
    if (c == NULL)
        return GH_ENOMEM;
    rc = gh_credential_read(st, uid, c);
    if (rc == 0)
        memcpy(out, c->hash, strlen(c->hash) + 1);
    gh_wipe(c, sizeof *c);
    free(c);
    return rc;
}

/* The whole credential record; GH_ENOTFOUND when none is set. */
int gh_credential_read(gh_store_t *st, const char *uid, gh_credential_t *out)
{
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL || uid == NULL || out == NULL)
        return GH_EINVAL;
    memset(out, 0, sizeof *out);
    if (!uid_ok(uid))
        return GH_ENOTFOUND;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = cred_get_txn(st, txn, uid, out);
out:
    txn_abort(&txn);
    return rc;
}

/* A password change with its session consequences, one transaction (see
 * store.h). */
int gh_credential_change(gh_store_t *st, const char *uid,
                         const gh_pwchange_t *c)
{
    gh_credential_t *cur = NULL;
    gh_user_t u;
    MDB_txn *txn = NULL;
    MDB_val v;
    char *buf = NULL;
    size_t len = 0;
    unsigned i, n;
    int rc, ended = 0;

    if (st == NULL || uid == NULL || c == NULL || c->keep > GH_PW_HISTORY_MAX)
        return GH_EINVAL;
    if (c->hash != NULL && (strnlen(c->hash, GH_HASH_MAX) >= GH_HASH_MAX ||
                            !hash_ok(c->hash)))
        return GH_EINVAL;
    if (c->new_key != NULL &&
        (c->new_session == NULL || !session_in_ok(c->new_session) ||
         strcmp(c->new_session->uid, uid) != 0))
        return GH_EINVAL;
    if (!uid_ok(uid))
        return GH_ENOTFOUND;
    if (c->new_key != NULL) {
        rc = session_encode(c->new_session, &buf, &len);
        if (rc != 0)
            return rc;
    }
    cur = malloc(sizeof *cur);
    if (cur == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, uid, &u);
    if (rc != 0)
        goto out;
    rc = cred_get_txn(st, txn, uid, cur);
    if (rc == GH_ENOTFOUND && c->hash != NULL && c->expect == NULL)
        rc = 0;   /* a first password */
    if (rc != 0)
        goto out;
    if (c->expect != NULL && strcmp(cur->hash, c->expect) != 0) {
        rc = GH_EDENIED;
        goto out;
    }
    if (c->hash != NULL) {
        /* the old hash becomes the newest earlier one */
        n = cur->hash[0] != '\0' ? cur->nhistory + 1 : cur->nhistory;
        if (n > c->keep)
            n = c->keep;
        if (cur->hash[0] != '\0' && n > 0) {
            memmove(cur->history[1], cur->history[0],
                    (size_t)(n - 1) * sizeof cur->history[0]);
            memcpy(cur->history[0], cur->hash, sizeof cur->hash);
        }
        for (i = n; i < GH_PW_HISTORY_MAX; i++)
            gh_wipe(cur->history[i], sizeof cur->history[i]);
        cur->nhistory = n;
        memset(cur->hash, 0, sizeof cur->hash);
        memcpy(cur->hash, c->hash, strlen(c->hash) + 1);
        cur->updated = c->now;
    }
    cur->must_change = c->must_change ? 1 : 0;
    rc = cred_put_txn(st, txn, uid, cur);
    if (rc != 0)
        goto out;
    ended = sessions_del_uid(st, txn, uid, c->keep_key);
    if (ended < 0) {
        rc = ended;
        goto out;
    }
    if (c->new_key != NULL) {
        v = mval(buf, len);
        rc = session_write(st, txn, c->new_key, c->new_session, &v, 0);
        if (rc != 0)
            goto out;
    }
    rc = txn_commit(&txn);
    if (rc == 0)
        rc = ended;
out:
    txn_abort(&txn);
    free(buf);
    if (cur != NULL) {
        gh_wipe(cur, sizeof *cur);
        free(cur);
    }
    return rc;
}

/* User, whole credential and the tenant's password settings by email, one
 * read transaction (a consistent snapshot for the login check). */
int gh_login_read(gh_store_t *st, const char *email, gh_user_t *user,
                  gh_credential_t *cred, gh_pwsettings_t *pw)
{
    char norm[GH_EMAIL_MAX + 1], id[GH_ID_HEXLEN + 1];
    gh_tenant_t t;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || email == NULL || user == NULL || cred == NULL ||
        pw == NULL)
        return GH_EINVAL;
    memset(cred, 0, sizeof *cred);
    gh_pwsettings_default(pw);
    if (gh_email_normalize(email, strlen(email), norm) != 0)
        return GH_ENOTFOUND;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        goto out;
    rc = email_index_get(st, txn, norm, id);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, id, user);
    if (rc != 0) {
        rc = rc == GH_ENOTFOUND ? GH_ESTORE : rc;
        goto out;
    }
    k = mval(user->tenant, strlen(user->tenant));
    rc = mdb_err(mdb_get(txn, st->tenants, &k, &v));
    if (rc == 0)
        rc = tenant_decode(&v, &t);
    if (rc != 0) {
        rc = rc == GH_ENOTFOUND ? GH_ESTORE : rc;   /* a user's tenant */
        goto out;
    }
    *pw = t.pw;
    rc = cred_get_txn(st, txn, id, cred);
    if (rc == GH_ENOTFOUND)
        rc = 0;   /* no password: hash "" */
out:
    txn_abort(&txn);
    return rc;
}

/* User and hash by email (see gh_login_read). */
int gh_login_lookup(gh_store_t *st, const char *email, gh_user_t *user,
                    char hash_out[GH_HASH_MAX])
{
    gh_credential_t *c;
    gh_pwsettings_t pw;
    int rc;

    if (st == NULL || email == NULL || user == NULL || hash_out == NULL)
        return GH_EINVAL;
    hash_out[0] = '\0';
    c = malloc(sizeof *c);
    if (c == NULL)
        return GH_ENOMEM;
    rc = gh_login_read(st, email, user, c, &pw);
    if (rc == 0)
        memcpy(hash_out, c->hash, strlen(c->hash) + 1);
    gh_wipe(c, sizeof *c);
    free(c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* sessions                                                           */
/* ------------------------------------------------------------------ */

/* Validate a session before it is written. */
static int session_in_ok(const gh_session_t *s)
{
    return strnlen(s->uid, GH_ID_HEXLEN + 1) == GH_ID_HEXLEN && id_ok(s->uid) &&
           tenant_ok(s->tenant) && amr_ok(s->amr) &&
           (s->flags & ~GH_SESSION_FLAGS) == 0;
}

/* Write (create or replace) the session stored under key. */
int gh_session_put(gh_store_t *st, const uint8_t key[32], const gh_session_t *s)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || key == NULL || s == NULL || !session_in_ok(s))
        return GH_EINVAL;
    rc = session_encode(s, &buf, &len);
    if (rc != 0)
        goto out;
    v = mval(buf, len);
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = session_write(st, txn, key, s, &v, 0);
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

/* Read the session stored under key. */
int gh_session_get(gh_store_t *st, const uint8_t key[32], gh_session_t *s)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc;

    if (st == NULL || key == NULL || s == NULL)
        return GH_EINVAL;
    rc = db_read(st, st->sessions, key, 32, &txn, &v);
    if (rc == 0)
        rc = session_decode(&v, s);
    txn_abort(&txn);
    return rc;
}

/* Delete one session (logout); GH_ENOTFOUND when absent. */
int gh_session_del(gh_store_t *st, const uint8_t key[32])
{
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL || key == NULL)
        return GH_EINVAL;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = session_remove(st, txn, key);
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    return rc;
}

/* Move last_seen forward to now. Nothing is written (no fsync) when it would
 * not move; GH_ENOTFOUND when the session is gone (e.g. the user was just
 * disabled: we must not resurrect it). */
int gh_session_touch(gh_store_t *st, const uint8_t key[32], int64_t now)
{
    gh_session_t s;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || key == NULL)
        return GH_EINVAL;
    k = mval(key, 32);
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_get(txn, st->sessions, &k, &v));
    if (rc != 0)
        goto out;
    rc = session_decode(&v, &s);
    if (rc != 0 || now <= s.last_seen)
        goto out;
    s.last_seen = now;
    rc = session_encode(&s, &buf, &len);
    if (rc != 0)
        goto out;
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->sessions, &k, &v, 0));
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

/* The access-path read: session and its user in one read transaction.
 * A session whose user is gone is GH_ENOTFOUND (nothing to grant). */
/* Decode the session value v (read under key in txn) and its user,
 * through the read cache when it can be had. */
static int session_read_cached(gh_store_t *st, MDB_txn *txn,
                               const uint8_t key[32], const MDB_val *v,
                               gh_session_t *s, gh_user_t *u)
{
    struct rc_slot *sl;
    MDB_val uk, uv;
    int rc;

    if (st->rcache == NULL) {
        rc = session_decode(v, s);
        return rc != 0 ? rc : user_get_txn(st, txn, s->uid, u);
    }
    sl = &st->rcache->slot[(key[0] | key[1] << 8) % RC_SLOTS];
    pthread_mutex_lock(&st->rc_lock);
    if (sl->slen != 0 && sl->slen == v->mv_size &&
        memcmp(sl->key, key, 32) == 0 &&
        memcmp(sl->sraw, v->mv_data, v->mv_size) == 0) {
        *s = sl->s;
    } else {
        sl->slen = 0;
        sl->ulen = 0;
        rc = session_decode(v, s);
        if (rc != 0)
            goto out;
        if (v->mv_size <= RC_SESS_RAW) {
            memcpy(sl->key, key, 32);
            memcpy(sl->sraw, v->mv_data, v->mv_size);
            sl->s = *s;
            sl->slen = (uint32_t)v->mv_size;
        }
    }
    uk = mval(s->uid, GH_ID_HEXLEN);
    rc = mdb_err(mdb_get(txn, st->users, &uk, &uv));
    if (rc != 0)
        goto out;
    if (sl->slen != 0 && sl->ulen != 0 && sl->ulen == uv.mv_size &&
        memcmp(sl->uraw, uv.mv_data, uv.mv_size) == 0) {
        *u = sl->u;
        rc = 0;
        goto out;
    }
    rc = user_decode(&uv, u);
    if (rc == 0 && strcmp(u->id, s->uid) != 0)
        rc = GH_ESTORE;
    if (rc == 0 && sl->slen != 0 && uv.mv_size <= RC_USER_RAW) {
        memcpy(sl->uraw, uv.mv_data, uv.mv_size);
        sl->u = *u;
        sl->ulen = (uint32_t)uv.mv_size;
    }
out:
    pthread_mutex_unlock(&st->rc_lock);
    return rc;
}

/* Turn on the read cache of gh_session_read (the gateway's request path).
 * 0 or GH_ENOMEM. */
int gh_store_read_cache(gh_store_t *st)
{
    if (st == NULL)
        return GH_EINVAL;
    if (st->rcache != NULL)
        return 0;
    st->rcache = calloc(1, sizeof *st->rcache);
    if (st->rcache == NULL)
        return GH_ENOMEM;
    if (pthread_mutex_init(&st->rc_lock, NULL) != 0) {
        free(st->rcache);
        st->rcache = NULL;
        return GH_ENOMEM;
    }
    return 0;
}

int gh_session_read(gh_store_t *st, const uint8_t key[32], gh_session_t *s,
                    gh_user_t *u)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc;

    if (st == NULL || key == NULL || s == NULL || u == NULL)
        return GH_EINVAL;
    rc = db_read(st, st->sessions, key, 32, &txn, &v);
    if (rc == 0)
        rc = session_read_cached(st, txn, key, &v, s, u);
    txn_abort(&txn);
    return rc;
}

/* The key-set version within txn (0 when unset). */
static int keys_version_txn(gh_store_t *st, MDB_txn *txn, uint64_t *ver)
{
    return version_txn(st, txn, KEYS_VERSION_KEY, ver);
}

/* One read transaction per request, without an allocation or the
 * reader-table lock each time: the handle keeps it between calls, reset
 * (it pins no snapshot), and renews it here. With MDB_NOTLS a reset
 * transaction keeps its reader slot. */
static int request_txn(gh_store_t *st, MDB_txn **txn)
{
    int rc;

    if (st->rtxn != NULL) {
        /* another thread would race with the owner on the same
         * transaction: refuse (the gateway then fails closed) */
        if (!pthread_equal(st->rtxn_thread, pthread_self()))
            return GH_ESTORE;
        if (mdb_txn_renew(st->rtxn) == 0) {
            *txn = st->rtxn;
            return 0;
        }
        mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
    }
    rc = txn_begin(st, 1, &st->rtxn);
    *txn = st->rtxn;
    st->rtxn_thread = pthread_self();
    return rc;
}

int gh_request_read(gh_store_t *st, const uint8_t key[32], gh_session_t *s,
                    gh_user_t *u, uint64_t *policy, uint64_t *keys)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || policy == NULL || keys == NULL ||
        (key != NULL && (s == NULL || u == NULL)))
        return GH_EINVAL;
    *policy = 0;
    *keys = 0;
    rc = request_txn(st, &txn);
    if (rc != 0)
        return rc;
    rc = policy_version_txn(st, txn, policy);
    if (rc == 0)
        rc = keys_version_txn(st, txn, keys);
    if (rc != 0 || key == NULL)
        goto out;
    k = mval(key, 32);
    rc = mdb_err(mdb_get(txn, st->sessions, &k, &v));
    if (rc != 0)
        goto out;
    rc = session_read_cached(st, txn, key, &v, s, u);
out:
    mdb_txn_reset(txn);
    return rc;
}

int gh_session_list_user(gh_store_t *st, const char *uid,
                         int (*cb)(const uint8_t key[32],
                                   const gh_session_t *s, void *arg),
                         void *arg)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v, sk, sv;
    uint8_t start[USESS_KEY];
    gh_session_t s;
    int rc, mrc;

    if (st == NULL || uid == NULL || cb == NULL)
        return GH_EINVAL;
    if (strnlen(uid, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN || !id_ok(uid))
        return 0;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = mdb_err(mdb_cursor_open(txn, st->usess, &cur));
    if (rc != 0)
        goto out;
    memset(start, 0, sizeof start);
    k = usess_key(start, uid, start + GH_ID_HEXLEN);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != USESS_KEY ||
            memcmp(k.mv_data, uid, GH_ID_HEXLEN) != 0)
            break;
        sk = mval((const uint8_t *)k.mv_data + GH_ID_HEXLEN, 32);
        if (mdb_get(txn, st->sessions, &sk, &sv) != 0 ||
            session_decode(&sv, &s) != 0 || strcmp(s.uid, uid) != 0)
            continue;   /* no such session: it grants nothing */
        rc = cb(sk.mv_data, &s, arg);
        if (rc != 0)
            goto out;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mdb_err(mrc);
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    txn_abort(&txn);
    return rc;
}

int gh_session_prune_user(gh_store_t *st, const char *uid,
                          int (*dead)(const gh_session_t *s, void *arg),
                          void *arg)
{
    MDB_txn *txn = NULL;
    int rc, n;

    if (st == NULL || uid == NULL || dead == NULL)
        return GH_EINVAL;
    if (strnlen(uid, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN || !id_ok(uid))
        return 0;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    n = sessions_del_some(st, txn, uid, NULL, dead, arg);
    rc = n <= 0 ? n : txn_commit(&txn);   /* nothing to drop: no write */
    txn_abort(&txn);
    return rc == 0 ? n : rc;
}

/* Delete every session of uid; returns how many went. */
int gh_session_del_user(gh_store_t *st, const char *uid)
{
    return gh_session_del_user_except(st, uid, NULL);
}

/* Delete every session of uid but keep's; returns how many went. */
int gh_session_del_user_except(gh_store_t *st, const char *uid,
                               const uint8_t keep[32])
{
    MDB_txn *txn = NULL;
    int rc, n;

    if (st == NULL || uid == NULL)
        return GH_EINVAL;
    if (strnlen(uid, GH_ID_HEXLEN + 1) != GH_ID_HEXLEN || !id_ok(uid))
        return 0;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    n = sessions_del_uid(st, txn, uid, keep);
    if (n < 0) {
        rc = n;
        goto out;
    }
    rc = n == 0 ? 0 : txn_commit(&txn);
    if (rc == 0)
        rc = n;
out:
    txn_abort(&txn);
    return rc;
}


/* ------------------------------------------------------------------ */
/* login throttling counters                                          */
/* ------------------------------------------------------------------ */

#define THROTTLE_KEY_MAX (2 + GH_EMAIL_MAX)

/* throttle: {"f":fails,"s":since,"l":last,"u":until,"x":locked} */
static int throttle_encode(const gh_throttle_rec_t *r, char **buf,
                           size_t *len)
{
    return json_finish(json_pack("{s:I,s:I,s:I,s:I,s:b}",
                                 "f", (json_int_t)r->fails,
                                 "s", (json_int_t)r->since,
                                 "l", (json_int_t)r->last,
                                 "u", (json_int_t)r->until,
                                 "x", r->locked ? 1 : 0), buf, len);
}

static int throttle_decode(const MDB_val *v, gh_throttle_rec_t *r)
{
    json_t *o, *x;
    int64_t f = 0;
    int rc = json_start(v, &o);

    memset(r, 0, sizeof *r);
    if (rc != 0)
        return rc;
    x = json_object_get(o, "x");
    if (jget_int(o, "f", &f) != 0 || f < 0 || f > UINT32_MAX ||
        jget_int(o, "s", &r->since) != 0 || jget_int(o, "l", &r->last) != 0 ||
        jget_int(o, "u", &r->until) != 0 || !json_is_boolean(x))
        rc = GH_ESTORE;
    r->fails = (uint32_t)f;
    r->locked = json_is_true(x);
    json_decref(o);
    if (rc != 0)
        memset(r, 0, sizeof *r);
    return rc;
}

/* "a:" email or "n:" 16 bytes into out (THROTTLE_KEY_MAX); the length or
 * GH_EINVAL. */
static int throttle_key(const gh_throttle_key_t *key, unsigned char *out)
{
    if (key == NULL || key->id == NULL || key->len == 0 ||
        key->len > GH_EMAIL_MAX ||
        (key->kind != GH_THROTTLE_ACCOUNT && key->kind != GH_THROTTLE_ADDRESS) ||
        (key->kind == GH_THROTTLE_ADDRESS && key->len != 16))
        return GH_EINVAL;
    out[0] = (unsigned char)key->kind;
    out[1] = ':';
    memcpy(out + 2, key->id, key->len);
    return (int)(key->len + 2);
}

static int throttle_same(const gh_throttle_rec_t *a, const gh_throttle_rec_t *b)
{
    return a->fails == b->fails && a->since == b->since &&
           a->last == b->last && a->until == b->until &&
           (a->locked != 0) == (b->locked != 0);
}

/* Delete up to max records that expired() condemns, walking from a random
 * key (wrapping once), skipping the n keys just written. Corrupt records
 * are left alone: a damaged lock must not turn into an unlock. */
static int throttle_sweep(gh_store_t *st, MDB_txn *txn,
                          unsigned char keys[][THROTTLE_KEY_MAX],
                          const int *klen, size_t n,
                          int (*expired)(int, const gh_throttle_rec_t *, void *),
                          unsigned max, void *arg)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    gh_throttle_rec_t r;
    unsigned char start[10];
    unsigned seen = 0;
    int rc, mrc, wrapped = 0;
    size_t i;

    gh_random(start + 2, sizeof start - 2);
    start[0] = (start[2] & 1) ? GH_THROTTLE_ACCOUNT : GH_THROTTLE_ADDRESS;
    start[1] = ':';
    rc = mdb_err(mdb_cursor_open(txn, st->throttle, &cur));
    if (rc != 0)
        return rc;
    k = mval(start, sizeof start);
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (seen < max) {
        if (mrc == MDB_NOTFOUND && !wrapped) {
            wrapped = 1;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            continue;
        }
        if (mrc != 0)
            break;
        seen++;
        for (i = 0; i < n; i++)
            if (k.mv_size == (size_t)klen[i] &&
                memcmp(k.mv_data, keys[i], k.mv_size) == 0)
                break;
        if (i == n && k.mv_size > 2 && throttle_decode(&v, &r) == 0 &&
            expired(((const unsigned char *)k.mv_data)[0], &r, arg)) {
            mrc = mdb_cursor_del(cur, 0);
            if (mrc != 0)
                break;
        }
        /* after mdb_cursor_del, NEXT yields the follower */
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : mdb_err(mrc);
}

/* Judge and update up to GH_THROTTLE_KEYS_MAX counters in one write
 * transaction (see store.h). */
int gh_throttle_update(gh_store_t *st, const gh_throttle_key_t *keys,
                       size_t n,
                       int (*fn)(gh_throttle_rec_t *recs, void *arg),
                       int (*expired)(int kind, const gh_throttle_rec_t *r,
                                      void *arg),
                       unsigned sweep, void *arg)
{
    unsigned char kb[GH_THROTTLE_KEYS_MAX][THROTTLE_KEY_MAX];
    int klen[GH_THROTTLE_KEYS_MAX];
    gh_throttle_rec_t recs[GH_THROTTLE_KEYS_MAX], orig[GH_THROTTLE_KEYS_MAX];
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len, i;
    int rc;

    if (st == NULL || keys == NULL || fn == NULL || n == 0 ||
        n > GH_THROTTLE_KEYS_MAX)
        return GH_EINVAL;
    for (i = 0; i < n; i++) {
        klen[i] = throttle_key(&keys[i], kb[i]);
        if (klen[i] < 0)
            return klen[i];
    }
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    for (i = 0; i < n; i++) {
        k = mval(kb[i], (size_t)klen[i]);
        rc = mdb_err(mdb_get(txn, st->throttle, &k, &v));
        if (rc == GH_ENOTFOUND)
            memset(&recs[i], 0, sizeof recs[i]);
        else if (rc != 0 || (rc = throttle_decode(&v, &recs[i])) != 0)
            goto out;
        orig[i] = recs[i];
    }
    rc = fn(recs, arg);
    if (rc != 0)
        goto out;
    for (i = 0; i < n; i++) {
        if (throttle_same(&recs[i], &orig[i]))
            continue;
        k = mval(kb[i], (size_t)klen[i]);
        if (recs[i].fails == 0 && !recs[i].locked) {
            rc = mdb_err(mdb_del(txn, st->throttle, &k, NULL));
            if (rc == GH_ENOTFOUND)
                rc = 0;
        } else {
            rc = throttle_encode(&recs[i], &buf, &len);
            if (rc == 0) {
                v = mval(buf, len);
                rc = mdb_err(mdb_put(txn, st->throttle, &k, &v, 0));
            }
            free(buf);
            buf = NULL;
        }
        if (rc != 0)
            goto out;
    }
    if (sweep > 0 && expired != NULL) {
        rc = throttle_sweep(st, txn, kb, klen, n, expired, sweep, arg);
        if (rc != 0)
            goto out;
    }
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    return rc;
}

/* One counter, for display (`gatehouse user show`) and tests. */
int gh_throttle_get(gh_store_t *st, const gh_throttle_key_t *key,
                    gh_throttle_rec_t *out)
{
    unsigned char kb[THROTTLE_KEY_MAX];
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc, n;

    if (st == NULL || out == NULL)
        return GH_EINVAL;
    memset(out, 0, sizeof *out);
    n = throttle_key(key, kb);
    if (n < 0)
        return n;
    rc = db_read(st, st->throttle, kb, (size_t)n, &txn, &v);
    if (rc == 0)
        rc = throttle_decode(&v, out);
    txn_abort(&txn);
    return rc;
}

/* Forget one counter (an administrator's unlock, a new user). */
int gh_throttle_del(gh_store_t *st, const gh_throttle_key_t *key)
{
    unsigned char kb[THROTTLE_KEY_MAX];
    MDB_txn *txn = NULL;
    MDB_val k;
    int rc, n;

    if (st == NULL)
        return GH_EINVAL;
    n = throttle_key(key, kb);
    if (n < 0)
        return n;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    k = mval(kb, (size_t)n);
    rc = mdb_err(mdb_del(txn, st->throttle, &k, NULL));
    if (rc == 0)
        rc = txn_commit(&txn);
    txn_abort(&txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* JWT signing keys                                                   */
/* ------------------------------------------------------------------ */

/* Bump the key-set version (kept in the policy database, so that workers
 * read both versions in one transaction). */
static int keys_version_bump(gh_store_t *st, MDB_txn *txn)
{
    return version_bump(st, txn, KEYS_VERSION_KEY);
}

/* jwt key: {"k":kid,"x":x,"y":y,"p":pub pem,"s":sealed private,
 *           "c":created,"f":sign_from,"r":retire_at} */
static int jwtkey_encode(const gh_jwtkey_t *k, char **buf, size_t *len)
{
    return json_finish(json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}",
                                 "k", k->kid, "x", k->x, "y", k->y,
                                 "p", k->pub_pem, "s", k->sealed,
                                 "c", (json_int_t)k->created,
                                 "f", (json_int_t)k->sign_from,
                                 "r", (json_int_t)k->retire_at),
                       buf, len);
}

static int jwtkey_decode(const MDB_val *v, gh_jwtkey_t *k)
{
    json_t *o;
    int rc = json_start(v, &o);

    if (rc != 0)
        return rc;
    memset(k, 0, sizeof *k);
    if (jget_str(o, "k", k->kid, sizeof k->kid) != 0 ||
        jget_str(o, "x", k->x, sizeof k->x) != 0 ||
        jget_str(o, "y", k->y, sizeof k->y) != 0 ||
        jget_str(o, "p", k->pub_pem, sizeof k->pub_pem) != 0 ||
        jget_str(o, "s", k->sealed, sizeof k->sealed) != 0 ||
        jget_int(o, "c", &k->created) != 0 ||
        jget_int(o, "f", &k->sign_from) != 0 ||
        jget_int(o, "r", &k->retire_at) != 0)
        rc = GH_ESTORE;
    json_decref(o);
    return rc;
}

/* Add a key (GH_EEXIST for a kid already stored) and bump the version. */
int gh_jwtkey_add(gh_store_t *st, const gh_jwtkey_t *k)
{
    MDB_txn *txn = NULL;
    MDB_val kk, v;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || k == NULL || k->kid[0] == '\0')
        return GH_EINVAL;
    rc = jwtkey_encode(k, &buf, &len);
    if (rc != 0)
        return rc;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    kk = mval(k->kid, strlen(k->kid));
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->jwtkeys, &kk, &v, MDB_NOOVERWRITE));
    if (rc == 0)
        rc = keys_version_bump(st, txn);
    if (rc == 0)
        rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

/* Set retire_at of kid (only ever earlier, never reviving) and bump. */
int gh_jwtkey_retire(gh_store_t *st, const char *kid, int64_t retire_at)
{
    MDB_txn *txn = NULL;
    MDB_val kk, v;
    gh_jwtkey_t k;
    char *buf = NULL;
    size_t len;
    int rc;

    if (st == NULL || kid == NULL || retire_at <= 0)
        return GH_EINVAL;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    kk = mval(kid, strlen(kid));
    rc = mdb_err(mdb_get(txn, st->jwtkeys, &kk, &v));
    if (rc == 0)
        rc = jwtkey_decode(&v, &k);
    if (rc != 0)
        goto out;
    if (k.retire_at != 0 && k.retire_at <= retire_at)
        goto out;   /* already retiring sooner */
    k.retire_at = retire_at;
    rc = jwtkey_encode(&k, &buf, &len);
    if (rc != 0)
        goto out;
    v = mval(buf, len);
    rc = mdb_err(mdb_put(txn, st->jwtkeys, &kk, &v, 0));
    if (rc == 0)
        rc = keys_version_bump(st, txn);
    if (rc == 0)
        rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    free(buf);
    return rc;
}

/* Walk every stored key (any order); non-zero from cb stops the walk. */
struct jwtkey_walk {
    int (*cb)(const gh_jwtkey_t *, void *);
    void *arg;
};

/* The sealed key is wiped after each callback, decoded or not. */
static int jwtkey_each(const MDB_val *v, void *ctx)
{
    const struct jwtkey_walk *w = ctx;
    gh_jwtkey_t key;
    int rc;

    rc = jwtkey_decode(v, &key);
    if (rc == 0)
        rc = w->cb(&key, w->arg);
    gh_wipe(key.sealed, sizeof key.sealed);
    return rc;
}

int gh_jwtkey_list(gh_store_t *st, int (*cb)(const gh_jwtkey_t *, void *),
                   void *arg)
{
    MDB_txn *txn = NULL;
    struct jwtkey_walk w = { cb, arg };
    int rc;

    if (st == NULL || cb == NULL)
        return GH_EINVAL;
    rc = txn_begin(st, 1, &txn);
    if (rc == 0)
        rc = db_walk(txn, st->jwtkeys, jwtkey_each, &w);
    txn_abort(&txn);
    return rc;
}

/* Policy and key-set versions in one read transaction (0 when unset). */
int gh_store_versions(gh_store_t *st, uint64_t *policy, uint64_t *keys)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc, i;

    if (st == NULL || policy == NULL || keys == NULL)
        return GH_EINVAL;
    *keys = 0;
    rc = txn_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = policy_version_txn(st, txn, policy);
    if (rc != 0)
        goto out;
    k = mval(KEYS_VERSION_KEY, strlen(KEYS_VERSION_KEY));
    rc = mdb_err(mdb_get(txn, st->policy, &k, &v));
    if (rc == GH_ENOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    if (v.mv_size != 8) {
        rc = GH_ESTORE;
        goto out;
    }
    for (i = 0; i < 8; i++)
        *keys = *keys << 8 | ((const unsigned char *)v.mv_data)[i];
out:
    txn_abort(&txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* second factors                                                     */
/* ------------------------------------------------------------------ */

/* factor: {"t":type,"g":algo,"d":digits,"p":period,"k":sealed,
 *          "n":next,"c":created} ("n" as a decimal string: JSON integers
 *          are signed and a HOTP counter is 64-bit) */
static json_t *factor_pack(const gh_otp_factor_t *f)
{
    char next[24];

    snprintf(next, sizeof next, "%llu", (unsigned long long)f->next);
    return json_pack("{s:i,s:i,s:i,s:i,s:s,s:s,s:I}", "t", f->type,
                     "g", f->algo, "d", f->digits, "p", f->period,
                     "k", f->sealed, "n", next, "c", (json_int_t)f->created);
}

static int factor_unpack(json_t *o, gh_otp_factor_t *f)
{
    char next[24], *end;

    memset(f, 0, sizeof *f);
    if (!json_is_object(o) || jget_small(o, "t", &f->type) != 0 ||
        jget_small(o, "g", &f->algo) != 0 ||
        jget_small(o, "d", &f->digits) != 0 ||
        jget_small(o, "p", &f->period) != 0 ||
        jget_str(o, "k", f->sealed, sizeof f->sealed) != 0 ||
        jget_str(o, "n", next, sizeof next) != 0 ||
        jget_int(o, "c", &f->created) != 0 ||
        next[0] < '0' || next[0] > '9')
        return GH_ESTORE;
    errno = 0;
    f->next = strtoull(next, &end, 10);
    if (errno != 0 || *end != '\0' || f->sealed[0] == '\0')
        return GH_ESTORE;
    return 0;
}

static int hexhash_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0)
        return 1;   /* a used recovery code */
    if (n != GH_MFA_HASH_LEN)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* mfa: {"a":factor,"p":factor,"pu":pending_until,"r":"resync","ru":until,
 *       "s":salt,"rc":[hash or "" ...]} ("a", "p" present when set) */
static int mfa_encode(const gh_mfa_t *m, char **buf, size_t *len)
{
    json_t *o, *codes;
    char resync[24];
    unsigned i;

    snprintf(resync, sizeof resync, "%llu", (unsigned long long)m->resync);
    o = json_pack("{s:I,s:s,s:I,s:s}", "pu", (json_int_t)m->pending_until,
                  "r", resync, "ru", (json_int_t)m->resync_until,
                  "s", m->salt);
    codes = json_array();
    if (o == NULL || codes == NULL)
        goto fail;
    for (i = 0; i < m->nrecovery && i < GH_MFA_RECOVERY_MAX; i++)
        if (json_array_append_new(codes, json_string(m->recovery[i])) != 0)
            goto fail;
    if (json_object_set_new(o, "rc", codes) != 0) {
        codes = NULL;
        goto fail;
    }
    codes = NULL;
    if (m->has_active &&
        json_object_set_new(o, "a", factor_pack(&m->active)) != 0)
        goto fail;
    if (m->has_pending &&
        json_object_set_new(o, "p", factor_pack(&m->pending)) != 0)
        goto fail;
    return json_finish(o, buf, len);
fail:
    json_decref(codes);
    json_decref(o);
    return GH_ENOMEM;
}

static int mfa_decode(const MDB_val *v, gh_mfa_t *m)
{
    json_t *o, *a;
    char resync[24], *end;
    size_t i;
    int rc = json_start(v, &o);

    if (rc != 0)
        return rc;
    memset(m, 0, sizeof *m);
    if (jget_int(o, "pu", &m->pending_until) != 0 ||
        jget_str(o, "r", resync, sizeof resync) != 0 ||
        jget_int(o, "ru", &m->resync_until) != 0 ||
        jget_str(o, "s", m->salt, sizeof m->salt) != 0 ||
        resync[0] < '0' || resync[0] > '9') {
        rc = GH_ESTORE;
        goto out;
    }
    errno = 0;
    m->resync = strtoull(resync, &end, 10);
    if (errno != 0 || *end != '\0') {
        rc = GH_ESTORE;
        goto out;
    }
    a = json_object_get(o, "rc");
    if (!json_is_array(a) || json_array_size(a) > GH_MFA_RECOVERY_MAX) {
        rc = GH_ESTORE;
        goto out;
    }
    for (i = 0; i < json_array_size(a); i++) {
        const char *h = json_string_value(json_array_get(a, i));

        if (h == NULL || strlen(h) > GH_MFA_HASH_LEN || !hexhash_ok(h)) {
            rc = GH_ESTORE;
            goto out;
        }
        strcpy(m->recovery[i], h);
    }
    m->nrecovery = (unsigned)i;
    if ((a = json_object_get(o, "a")) != NULL) {
        if ((rc = factor_unpack(a, &m->active)) != 0)
            goto out;
        m->has_active = 1;
    }
    if ((a = json_object_get(o, "p")) != NULL) {
        if ((rc = factor_unpack(a, &m->pending)) != 0)
            goto out;
        m->has_pending = 1;
    }
out:
    json_decref(o);
    return rc;
}

int gh_mfa_get(gh_store_t *st, const char *uid, gh_mfa_t *out)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc;

    if (st == NULL || out == NULL)
        return GH_EINVAL;
    memset(out, 0, sizeof *out);
    if (uid == NULL || !uid_ok(uid))
        return GH_ENOTFOUND;
    rc = db_read(st, st->factors, uid, GH_ID_HEXLEN, &txn, &v);
    if (rc == 0)
        rc = mfa_decode(&v, out);
    txn_abort(&txn);
    return rc;
}

int gh_mfa_update(gh_store_t *st, const char *uid,
                  int (*fn)(gh_mfa_t *m, int have, const gh_user_t *u,
                            void *arg),
                  void *arg, const gh_mfa_sessop_t *op)
{
    gh_mfa_t *m = NULL;
    gh_user_t *u = NULL;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    char *buf = NULL;
    size_t len = 0;
    int rc, have, verdict = 0;

    if (st == NULL || fn == NULL)
        return GH_EINVAL;
    if (uid == NULL || !uid_ok(uid))
        return GH_ENOTFOUND;
    if (op != NULL && op->new_key != NULL &&
        (op->new_session == NULL || !session_in_ok(op->new_session)))
        return GH_EINVAL;
    m = malloc(sizeof *m);
    u = malloc(sizeof *u);
    if (m == NULL || u == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = user_get_txn(st, txn, uid, u);
    if (rc != 0)
        goto out;
    if (u->disabled) {
        rc = GH_EDISABLED;
        goto out;
    }
    k = mval(uid, GH_ID_HEXLEN);
    rc = mdb_err(mdb_get(txn, st->factors, &k, &v));
    if (rc == 0)
        rc = mfa_decode(&v, m);
    else if (rc == GH_ENOTFOUND)
        memset(m, 0, sizeof *m);
    if (rc != 0 && rc != GH_ENOTFOUND)
        goto out;
    have = rc == 0;
    verdict = fn(m, have, u, arg);
    if (verdict < 0) {
        rc = verdict;
        goto out;
    }
    if (!m->has_active && !m->has_pending && m->resync == 0) {
        rc = mdb_err(mdb_del(txn, st->factors, &k, NULL));
        if (rc == GH_ENOTFOUND)
            rc = 0;
    } else {
        rc = mfa_encode(m, &buf, &len);
        if (rc == 0) {
            v = mval(buf, len);
            rc = mdb_err(mdb_put(txn, st->factors, &k, &v, 0));
        }
    }
    if (rc != 0)
        goto out;
    if (verdict == 0 && op != NULL) {
        if (op->del_key != NULL) {
            rc = session_remove(st, txn, op->del_key);
            if (rc != 0)
                goto out;
        }
        if (op->new_key != NULL) {
            char *sbuf = NULL;
            size_t slen;
            MDB_val sv;

            rc = session_encode(op->new_session, &sbuf, &slen);
            if (rc != 0)
                goto out;
            sv = mval(sbuf, slen);
            rc = session_write(st, txn, op->new_key, op->new_session, &sv,
                               MDB_NOOVERWRITE);
            free(sbuf);
            if (rc != 0)
                goto out;
        }
    }
    rc = txn_commit(&txn);
    if (rc == 0)
        rc = verdict;
out:
    txn_abort(&txn);
    if (buf != NULL) {
        gh_wipe(buf, len);
        free(buf);
    }
    if (m != NULL) {
        gh_wipe(m, sizeof *m);
        free(m);
    }
    free(u);
    return rc;
}

int gh_mfa_del(gh_store_t *st, const char *uid)
{
    MDB_txn *txn = NULL;
    MDB_val k;
    int rc;

    if (st == NULL)
        return GH_EINVAL;
    if (uid == NULL || !uid_ok(uid))
        return GH_ENOTFOUND;
    k = mval(uid, GH_ID_HEXLEN);
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_del(txn, st->factors, &k, NULL));
    if (rc != 0)
        goto out;
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    return rc;
}

/* ------------------------------------------------------------------ */
/* SAML records (authn/saml.c owns their format)                      */
/* ------------------------------------------------------------------ */

#define GH_KV_KEY_MAX    512
#define GH_KV_VALUE_MAX  (256 * 1024)

static int kv_key_ok(const char *key)
{
    size_t n = key != NULL ? strnlen(key, GH_KV_KEY_MAX + 1) : 0;

    return n > 0 && n <= GH_KV_KEY_MAX;
}

/* A malloc'd, NUL-terminated copy of v. */
static int kv_copy(const MDB_val *v, char **out, size_t *len)
{
    char *p;

    if (v->mv_size > GH_KV_VALUE_MAX)
        return GH_ESTORE;
    p = malloc(v->mv_size + 1);
    if (p == NULL)
        return GH_ENOMEM;
    memcpy(p, v->mv_data, v->mv_size);
    p[v->mv_size] = '\0';
    *out = p;
    if (len != NULL)
        *len = v->mv_size;
    return 0;
}

int gh_kv_get(gh_store_t *st, const char *key, char **out, size_t *len)
{
    MDB_txn *txn = NULL;
    MDB_val v;
    int rc;

    if (st == NULL || out == NULL || !kv_key_ok(key))
        return GH_EINVAL;
    *out = NULL;
    rc = db_read(st, st->saml, key, strlen(key), &txn, &v);
    if (rc == 0)
        rc = kv_copy(&v, out, len);
    txn_abort(&txn);
    return rc;
}

int gh_kv_put(gh_store_t *st, const char *key, const char *val, size_t len,
              int create_only)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || !kv_key_ok(key) || val == NULL || len > GH_KV_VALUE_MAX)
        return GH_EINVAL;
    k = mval(key, strlen(key));
    v = mval(val, len);
    rc = txn_begin(st, 0, &txn);
    if (rc == 0)
        rc = mdb_err(mdb_put(txn, st->saml, &k, &v,
                             create_only ? MDB_NOOVERWRITE : 0));
    if (rc == 0)
        rc = txn_commit(&txn);
    txn_abort(&txn);
    return rc;
}

int gh_kv_del(gh_store_t *st, const char *key)
{
    MDB_txn *txn = NULL;
    MDB_val k;
    int rc;

    if (st == NULL || !kv_key_ok(key))
        return GH_EINVAL;
    k = mval(key, strlen(key));
    rc = txn_begin(st, 0, &txn);
    if (rc == 0)
        rc = mdb_err(mdb_del(txn, st->saml, &k, NULL));
    if (rc == 0)
        rc = txn_commit(&txn);
    txn_abort(&txn);
    return rc;
}

int gh_kv_consume(gh_store_t *st, const char *take, char **taken,
                  size_t *taken_len, const char *mark, const char *val,
                  size_t len)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || (take == NULL && mark == NULL) ||
        (take != NULL && (!kv_key_ok(take) || taken == NULL)) ||
        (mark != NULL && (!kv_key_ok(mark) || val == NULL ||
                          len > GH_KV_VALUE_MAX)))
        return GH_EINVAL;
    if (taken != NULL)
        *taken = NULL;
    rc = txn_begin(st, 0, &txn);
    if (rc != 0)
        goto out;
    if (take != NULL) {
        k = mval(take, strlen(take));
        rc = mdb_err(mdb_get(txn, st->saml, &k, &v));
        if (rc == 0)
            rc = kv_copy(&v, taken, taken_len);
        if (rc == 0)
            rc = mdb_err(mdb_del(txn, st->saml, &k, NULL));
        if (rc != 0)
            goto out;
    }
    if (mark != NULL) {
        k = mval(mark, strlen(mark));
        v = mval(val, len);
        rc = mdb_err(mdb_put(txn, st->saml, &k, &v, MDB_NOOVERWRITE));
        if (rc != 0)
            goto out;
    }
    rc = txn_commit(&txn);
out:
    txn_abort(&txn);
    if (rc != 0 && taken != NULL) {
        free(*taken);
        *taken = NULL;
    }
    return rc;
}

/* Visit at most max records whose key starts with prefix, in key order,
 * in one transaction (a write one when write): visit() sees the key and
 * value in place (valid during the call), sets *del to delete the record
 * (write only), and stops the scan with a non-zero return, which is
 * returned. *deleted counts the deletions. */
static int kv_scan(gh_store_t *st, const char *prefix, unsigned max, int write,
                   int (*visit)(const MDB_val *k, const MDB_val *v, int *del,
                                void *arg),
                   void *arg, int *deleted)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t plen;
    unsigned seen = 0;
    int rc, del;

    *deleted = 0;
    if (st == NULL || !kv_key_ok(prefix) || visit == NULL)
        return GH_EINVAL;
    plen = strlen(prefix);
    rc = txn_begin(st, !write, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_err(mdb_cursor_open(txn, st->saml, &cur));
    if (rc != 0)
        goto out;
    k = mval(prefix, plen);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && seen++ < max && k.mv_size >= plen &&
           memcmp(k.mv_data, prefix, plen) == 0) {
        del = 0;
        if ((rc = visit(&k, &v, &del, arg)) != 0)
            goto out;
        if (del && write) {
            rc = mdb_cursor_del(cur, 0);
            if (rc != 0)
                break;
            ++*deleted;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    rc = rc == MDB_NOTFOUND || rc == 0 ? 0 : mdb_err(rc);
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc == 0 && write)
        rc = txn_commit(&txn);
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    txn_abort(&txn);
    return rc;
}

struct kv_walk {
    int (*cb)(const char *key, const char *val, void *arg);
    void *arg;
};

/* Copies for gh_kv_walk's callback: NUL-terminated. */
static int kv_walk_one(const MDB_val *k, const MDB_val *v, int *del, void *arg)
{
    const struct kv_walk *w = arg;
    char *key = NULL, *val = NULL;
    int rc;

    (void)del;
    if ((rc = kv_copy(k, &key, NULL)) == 0 &&
        (rc = kv_copy(v, &val, NULL)) == 0)
        rc = w->cb(key, val, w->arg);
    free(key);
    free(val);
    return rc;
}

int gh_kv_walk(gh_store_t *st, const char *prefix,
               int (*cb)(const char *key, const char *val, void *arg),
               void *arg, unsigned max)
{
    struct kv_walk w = { cb, arg };
    int n;

    if (cb == NULL)
        return GH_EINVAL;
    return kv_scan(st, prefix, max, 0, kv_walk_one, &w, &n);
}

struct kv_sweep {
    int (*expired)(const char *val, size_t len, void *arg);
    void *arg;
};

/* The value is valid inside this transaction: judged in place. */
static int kv_sweep_one(const MDB_val *k, const MDB_val *v, int *del, void *arg)
{
    const struct kv_sweep *w = arg;

    (void)k;
    *del = w->expired(v->mv_data, v->mv_size, w->arg) != 0;
    return 0;
}

int gh_kv_sweep(gh_store_t *st, const char *prefix,
                int (*expired)(const char *val, size_t len, void *arg),
                void *arg, unsigned max)
{
    struct kv_sweep w = { expired, arg };
    int rc, n;

    if (expired == NULL)
        return GH_EINVAL;
    rc = kv_scan(st, prefix, max, 1, kv_sweep_one, &w, &n);
    return rc != 0 ? rc : n;
}
