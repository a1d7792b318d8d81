/* gatehouse — the tamper-evident audit log (see include/gatehouse/audit.h
 * and docs/audit.md).
 *
 * Its own LMDB environment, DATA/audit.mdb, with three databases:
 *   records      8-byte big-endian sequence -> hash[32] || canonical JSON
 *   checkpoints  8-byte big-endian sequence -> signed head (JSON)
 *   meta         "head" -> seq[8] || hash[32]; "cp" -> seq[8] || time[8];
 *                "anchor" -> signed JSON (after pruning); settings
 * This file and core/store.c are the only ones that call LMDB.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/jwt.h"
#include "gatehouse/keys.h"
#include "gatehouse/seal.h"
#include "gatehouse/util.h"

#define AUDIT_MAPSIZE   ((size_t)4 << 30)   /* 4 GiB of address space */
#define AUDIT_MAXDBS    4
#define AUDIT_REC_MAX   16384               /* bytes of one stored record */
#define AUDIT_SIG_MAX   160                 /* base64url of a DER ES256 sig */
#define AUDIT_BATCH_MAX 1024
#define CP_DOMAIN       "gatehouse-audit-checkpoint:v1:"
#define ANCHOR_DOMAIN   "gatehouse-audit-anchor:v1:"
#define SD_ID           "gatehouse@32473"   /* RFC 5612 example enterprise */

struct aenv {
    MDB_env *env;
    MDB_dbi  rec, cp, meta;
    int      has_dbs;       /* read-only open of a log with no records yet */
};

/* The process's own log (gh_audit_open) and what signs its checkpoints. */
static struct aenv     g_env;
static int             g_open;
static char            g_dir[PATH_MAX];
static gh_store_t     *g_store;
static uint8_t         g_mk[GH_MASTER_KEY_BYTES];
static int             g_mk_ok;
static pthread_mutex_t g_ship_lock = PTHREAD_MUTEX_INITIALIZER;
static int             g_ship_fd = -1;
static int             g_ship_stream;
static char            g_ship_target[GH_AUDIT_TARGET_MAX + 1];
static time_t          g_ship_retry_at;   /* after a failure: no connect
                                             attempt before this */
#define SHIP_BACKOFF   30                 /* seconds */

/* ------------------------------------------------------------------ */
/* LMDB edge                                                          */
/* ------------------------------------------------------------------ */

static int aerr(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:     return 0;
    case MDB_NOTFOUND:    return GH_ENOTFOUND;
    case MDB_KEYEXIST:    return GH_EEXIST;
    case MDB_MAP_FULL:    return GH_EFULL;
    case ENOMEM:          return GH_ENOMEM;
    case ENOENT:          return GH_ENOTINIT;
    case EACCES:
    case EPERM:
    case EIO:
    case ENOSPC:          return GH_EIO;
    default:              return GH_ESTORE;
    }
}

static void be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static MDB_val mv(const void *p, size_t n)
{
    MDB_val v;

    v.mv_data = (void *)p;
    v.mv_size = n;
    return v;
}

static void env_close(struct aenv *e)
{
    if (e->env != NULL)
        mdb_env_close(e->env);
    memset(e, 0, sizeof *e);
}

/* Open DATA/audit.mdb: create makes the directory and databases; rdonly
 * opens without writing (a log without databases yet reads as empty). */
static int env_open(struct aenv *e, const char *datadir, int create,
                    int rdonly)
{
    char path[PATH_MAX];
    struct stat sb;
    MDB_txn *txn = NULL;
    unsigned dflags = create ? MDB_CREATE : 0;
    int rc, n, dead;

    memset(e, 0, sizeof *e);
    if (datadir == NULL || datadir[0] == '\0')
        return GH_EINVAL;
    n = snprintf(path, sizeof path, "%s/%s", datadir, GH_AUDIT_DIR);
    if (n < 0 || (size_t)n >= sizeof path)
        return GH_ETOOBIG;
    if (stat(path, &sb) != 0) {
        if (!create)
            return GH_ENOTINIT;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return errno == ENOENT ? GH_ENOTINIT : GH_EIO;
    } else if (!S_ISDIR(sb.st_mode)) {
        return GH_ESTORE;
    }
    if ((rc = mdb_env_create(&e->env)) != 0) {
        e->env = NULL;
        return aerr(rc);
    }
    if ((rc = mdb_env_set_maxdbs(e->env, AUDIT_MAXDBS)) != 0 ||
        (rc = mdb_env_set_mapsize(e->env, AUDIT_MAPSIZE)) != 0 ||
        (rc = mdb_env_open(e->env, path,
                           MDB_NOTLS | (rdonly ? MDB_RDONLY : 0), 0600)) != 0)
        goto fail;
    (void)mdb_reader_check(e->env, &dead);
    if ((rc = mdb_txn_begin(e->env, NULL, rdonly ? MDB_RDONLY : 0, &txn)) != 0)
        goto fail;
    rc = mdb_dbi_open(txn, "records", dflags, &e->rec);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "checkpoints", dflags, &e->cp);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "meta", dflags, &e->meta);
    if (rc == MDB_NOTFOUND && !create) {
        mdb_txn_abort(txn);
        return 0;   /* no databases yet: an empty log */
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    e->has_dbs = 1;
    return 0;
fail:
    rc = aerr(rc);
    env_close(e);
    return rc;
}

/* The environment for datadir: the process's own when it is the same
 * directory (LMDB forbids opening one environment twice in a process),
 * else a fresh one the caller closes (*owned = 1). */
static int env_get(const char *datadir, int rdonly, struct aenv *tmp,
                   struct aenv **e, int *owned)
{
    char real[PATH_MAX];
    int rc;

    *owned = 0;
    if (g_open && realpath(datadir, real) != NULL && strcmp(real, g_dir) == 0) {
        *e = &g_env;
        return 0;
    }
    rc = env_open(tmp, datadir, 0, rdonly);
    if (rc != 0)
        return rc;
    *e = tmp;
    *owned = 1;
    return 0;
}

static void env_put(struct aenv *e, int owned)
{
    if (owned)
        env_close(e);
}

int gh_audit_open(const char *datadir)
{
    char real[PATH_MAX], mkpath[PATH_MAX];
    int rc, n;

    if (datadir == NULL || datadir[0] == '\0')
        return GH_EINVAL;
    if (realpath(datadir, real) == NULL)
        return errno == ENOENT ? GH_ENOTINIT : GH_EIO;
    if (g_open)
        return strcmp(real, g_dir) == 0 ? 0 : GH_EINVAL;
    rc = env_open(&g_env, datadir, 1, 0);
    if (rc != 0)
        return rc;
    snprintf(g_dir, sizeof g_dir, "%s", real);
    n = snprintf(mkpath, sizeof mkpath, "%s/%s", datadir, GH_MASTER_KEY_FILE);
    g_mk_ok = n > 0 && (size_t)n < sizeof mkpath &&
              gh_master_key_load(mkpath, g_mk) == 0;
    g_open = 1;
    return 0;
}

void gh_audit_close(void)
{
    if (g_open)
        env_close(&g_env);
    g_open = 0;
    g_dir[0] = '\0';
    g_store = NULL;
    gh_wipe(g_mk, sizeof g_mk);
    g_mk_ok = 0;
    pthread_mutex_lock(&g_ship_lock);
    if (g_ship_fd >= 0)
        close(g_ship_fd);
    g_ship_fd = -1;
    g_ship_target[0] = '\0';
    pthread_mutex_unlock(&g_ship_lock);
}

void gh_audit_use_store(gh_store_t *st)
{
    g_store = st;
}

/* ------------------------------------------------------------------ */
/* values and the canonical record                                    */
/* ------------------------------------------------------------------ */

/* s as a JSON string: at most GH_AUDIT_VALUE_MAX bytes, bytes that are not
 * part of valid UTF-8 replaced by '?' (jansson refuses invalid UTF-8, and
 * a user-supplied email must still be recorded). NULL -> "". */
static json_t *audit_str(const char *s)
{
    char buf[GH_AUDIT_VALUE_MAX + 1];
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strnlen((const char *)p, GH_AUDIT_VALUE_MAX), i = 0, o = 0, len, k;

    while (i < n) {
        unsigned char c = p[i];
        uint32_t cp, min;

        if (c < 0x80) {
            buf[o++] = (char)c;
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
            buf[o++] = '?';
            i++;
            continue;
        }
        for (k = 1; k < len && i + k < n && (p[i + k] & 0xc0) == 0x80; k++)
            cp = cp << 6 | (p[i + k] & 0x3f);
        if (k < len || cp < min || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            buf[o++] = '?';
            i++;
            continue;
        }
        memcpy(buf + o, p + i, len);
        o += len;
        i += len;
    }
    return json_stringn(buf, o);
}

/* Canonical JSON: sorted keys, no white space, ASCII only (every other
 * character escaped), integers and strings only. The same record always
 * gives the same bytes, and no byte of it is a control character. */
static char *canonical(json_t *o)
{
    return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
}

static int put_str(json_t *o, const char *key, const char *v)
{
    return json_object_set_new(o, key, audit_str(v)) == 0 ? 0 : GH_ENOMEM;
}

/* The record for ev at seq as canonical JSON (malloc'd). */
static char *record_json(const gh_audit_event_t *ev, uint64_t seq,
                         int64_t now)
{
    json_t *o = json_object(), *actor = json_object(), *det = json_object();
    char *out = NULL;
    int rc = 0;

    if (o == NULL || actor == NULL || det == NULL)
        goto out;
    rc |= put_str(actor, "user", ev->user);
    rc |= put_str(actor, "tenant", ev->tenant);
    rc |= put_str(actor, "addr", ev->addr);
    rc |= put_str(actor, "session", ev->session);
    if (ev->detail != NULL && ev->detail[0] != '\0')
        rc |= put_str(det, "text", ev->detail);
    if (ev->before != NULL)
        rc |= put_str(det, "before", ev->before);
    if (ev->after != NULL)
        rc |= put_str(det, "after", ev->after);
    rc |= json_object_set_new(o, "v", json_integer(1)) ? GH_ENOMEM : 0;
    rc |= json_object_set_new(o, "seq", json_integer((json_int_t)seq))
          ? GH_ENOMEM : 0;
    rc |= json_object_set_new(o, "time",
                              json_integer(ev->time ? ev->time : now))
          ? GH_ENOMEM : 0;
    rc |= json_object_set(o, "actor", actor) ? GH_ENOMEM : 0;
    rc |= put_str(o, "action", ev->action);
    rc |= put_str(o, "target", ev->target);
    rc |= put_str(o, "result", ev->result);
    rc |= put_str(o, "reason", ev->reason);
    rc |= put_str(o, "request_id", ev->request_id);
    rc |= json_object_set(o, "details", det) ? GH_ENOMEM : 0;
    if (rc == 0)
        out = canonical(o);
out:
    json_decref(o);
    json_decref(actor);
    json_decref(det);
    return out;
}

/* SHA-256(prev || text). */
static void chain_hash(const uint8_t prev[32], const char *text, size_t n,
                       uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned len = 32;

    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, prev, 32) != 1 ||
        EVP_DigestUpdate(c, text, n) != 1 ||
        EVP_DigestFinal_ex(c, out, &len) != 1)
        memset(out, 0, 32);   /* cannot happen with a working OpenSSL;
                                 the chain then fails to verify */
    EVP_MD_CTX_free(c);
}

void gh_audit_session_ref(const uint8_t key[32], char out[33])
{
    static const char dom[] = "gatehouse-audit-session";
    uint8_t buf[sizeof dom - 1 + 32], h[32];

    memcpy(buf, dom, sizeof dom - 1);
    memcpy(buf + sizeof dom - 1, key, 32);
    gh_sha256(buf, sizeof buf, h);
    gh_hex(h, 16, out);
}

/* ------------------------------------------------------------------ */
/* signing: the gateway's current JWT key                             */
/* ------------------------------------------------------------------ */

typedef struct {
    int64_t     now;
    gh_jwtkey_t best;
    int         found;
} pick_t;

static int pick_key(const gh_jwtkey_t *k, void *arg)
{
    pick_t *p = arg;

    if (k->sign_from > p->now || (k->retire_at != 0 && k->retire_at <= p->now))
        return 0;
    if (!p->found || k->sign_from > p->best.sign_from) {
        p->best = *k;
        p->found = 1;
    }
    return 0;
}

/* ES256 signature (DER, base64url) of msg with the store's current signing
 * key, unsealed with the master key and wiped after use. */
static int sign_msg(const char *msg, char kid[GH_KID_LEN + 1],
                    char sig[AUDIT_SIG_MAX])
{
    pick_t p;
    char label[64];
    uint8_t pem[GH_PRIVPEM_MAX], der[80];
    size_t n, dlen = sizeof der;
    BIO *b = NULL;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *c = NULL;
    int rc;

    if (g_store == NULL || !g_mk_ok)
        return GH_ENOTFOUND;
    memset(&p, 0, sizeof p);
    p.now = gh_now();
    rc = gh_jwtkey_list(g_store, pick_key, &p);
    if (rc != 0)
        return rc;
    if (!p.found)
        return GH_ENOTFOUND;
    snprintf(label, sizeof label, "jwt-key:%s", p.best.kid);
    rc = gh_unseal(g_mk, label, p.best.sealed, pem, sizeof pem - 1, &n);
    gh_wipe(p.best.sealed, sizeof p.best.sealed);
    if (rc != 0)
        goto out;
    pem[n] = '\0';
    rc = GH_ECRYPTO;
    if ((b = BIO_new_mem_buf(pem, (int)n)) == NULL ||
        (pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL ||
        (c = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, pk) != 1 ||
        EVP_DigestSign(c, der, &dlen, (const uint8_t *)msg, strlen(msg)) != 1)
        goto out;
    if (gh_b64url_encode(der, dlen, sig, AUDIT_SIG_MAX) < 0)
        goto out;
    memcpy(kid, p.best.kid, GH_KID_LEN + 1);
    rc = 0;
out:
    gh_wipe(pem, sizeof pem);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    BIO_free(b);
    return rc;
}

/* The public keys a verifier trusts (every key the store ever had). */
typedef struct {
    gh_jwtkey_t *k;
    size_t n, cap;
} keyset_t;

static int collect_key(const gh_jwtkey_t *k, void *arg)
{
    keyset_t *ks = arg;

    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 8;
        gh_jwtkey_t *nk = realloc(ks->k, cap * sizeof *nk);

        if (nk == NULL)
            return GH_ENOMEM;
        ks->k = nk;
        ks->cap = cap;
    }
    ks->k[ks->n++] = *k;
    return 0;
}

/* 1 when the sealed private key of k opens with mk and is the private half
 * of k's public key (a key planted in the store without the master key
 * fails this). */
static int key_bound(const gh_jwtkey_t *k, const uint8_t *mk)
{
    char label[64];
    uint8_t pem[GH_PRIVPEM_MAX];
    size_t n;
    BIO *b1 = NULL, *b2 = NULL;
    EVP_PKEY *priv = NULL, *pub = NULL;
    int ok = 0;

    snprintf(label, sizeof label, "jwt-key:%s", k->kid);
    if (gh_unseal(mk, label, k->sealed, pem, sizeof pem - 1, &n) != 0)
        return 0;
    if ((b1 = BIO_new_mem_buf(pem, (int)n)) != NULL &&
        (priv = PEM_read_bio_PrivateKey(b1, NULL, NULL, NULL)) != NULL &&
        (b2 = BIO_new_mem_buf(k->pub_pem, -1)) != NULL &&
        (pub = PEM_read_bio_PUBKEY(b2, NULL, NULL, NULL)) != NULL)
        ok = EVP_PKEY_eq(priv, pub) == 1;
    gh_wipe(pem, sizeof pem);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    BIO_free(b1);
    BIO_free(b2);
    return ok;
}

/* 0 when sig (base64url DER) is kid's ES256 signature of msg. */
static int verify_msg(const keyset_t *ks, const char *kid, const char *msg,
                      const char *sig)
{
    uint8_t der[AUDIT_SIG_MAX];
    int dlen, rc = GH_EDENIED;
    const gh_jwtkey_t *k = NULL;
    BIO *b = NULL;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *c = NULL;

    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->k[i].kid, kid) == 0)
            k = &ks->k[i];
    if (k == NULL)
        return GH_EDENIED;
    dlen = gh_b64url_decode(sig, strlen(sig), der, sizeof der);
    if (dlen <= 0)
        return GH_EDENIED;
    if ((b = BIO_new_mem_buf(k->pub_pem, -1)) != NULL &&
        (pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) != NULL &&
        (c = EVP_MD_CTX_new()) != NULL &&
        EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, pk) == 1 &&
        EVP_DigestVerify(c, der, (size_t)dlen, (const uint8_t *)msg,
                         strlen(msg)) == 1)
        rc = 0;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    BIO_free(b);
    return rc;
}

/* The signed text of a checkpoint or an anchor. */
static void signed_text(char *out, size_t cap, const char *domain,
                        uint64_t seq, const uint8_t hash[32], int64_t t)
{
    char hex[65];

    gh_hex(hash, 32, hex);
    snprintf(out, cap, "%s%" PRIu64 ":%s:%" PRId64, domain, seq, hex, t);
}

/* A signed object {"seq","hash","time","kid","sig"} (malloc'd text). */
static int signed_json(const char *domain, uint64_t seq,
                       const uint8_t hash[32], int64_t t, char **out)
{
    char msg[160], kid[GH_KID_LEN + 1], sig[AUDIT_SIG_MAX], hex[65];
    json_t *o;
    int rc;

    signed_text(msg, sizeof msg, domain, seq, hash, t);
    rc = sign_msg(msg, kid, sig);
    if (rc != 0)
        return rc;
    gh_hex(hash, 32, hex);
    o = json_pack("{s:I,s:s,s:I,s:s,s:s}", "seq", (json_int_t)seq,
                  "hash", hex, "time", (json_int_t)t, "kid", kid, "sig", sig);
    if (o == NULL)
        return GH_ENOMEM;
    *out = canonical(o);
    json_decref(o);
    return *out ? 0 : GH_ENOMEM;
}

/* Parse and check a signed object against the key set: 0, or GH_EDENIED
 * with the fields that could be read. */
static int signed_check(const keyset_t *ks, const char *domain,
                        const char *text, size_t len, uint64_t *seq,
                        uint8_t hash[32], int64_t *t)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    json_int_t s = 0, tt = 0;
    const char *hex = NULL, *kid = NULL, *sig = NULL;
    char msg[160];
    int rc = GH_EDENIED;

    if (o == NULL)
        return GH_EDENIED;
    if (json_unpack(o, "{s:I,s:s,s:I,s:s,s:s}", "seq", &s, "hash", &hex,
                    "time", &tt, "kid", &kid, "sig", &sig) != 0 ||
        s < 0 || strlen(hex) != 64)
        goto out;
    for (int i = 0; i < 32; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            goto out;
        hash[i] = (uint8_t)v;
    }
    *seq = (uint64_t)s;
    *t = tt;
    signed_text(msg, sizeof msg, domain, *seq, hash, *t);
    rc = verify_msg(ks, kid, msg, sig);
out:
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------------ */
/* settings                                                           */
/* ------------------------------------------------------------------ */

static const char *const settings[] = {
    "syslog", "checkpoint.records", "checkpoint.seconds", "retention.days",
};

static int setting_known(const char *name)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (strcmp(name, settings[i]) == 0)
            return 1;
    return 0;
}

/* host:port with a port 1..65535. */
static int hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long port;

    if (colon == NULL || colon == s || colon - s > 253)
        return 0;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && colon[1] != '\0' && port > 0 &&
           port < 65536;
}

int gh_audit_target_check(const char *t)
{
    if (t == NULL || strlen(t) > GH_AUDIT_TARGET_MAX)
        return GH_EINVAL;
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return GH_EINVAL;
    if (strcmp(t, "off") == 0)
        return 0;
    if (strncmp(t, "udp:", 4) == 0 || strncmp(t, "tcp:", 4) == 0)
        return hostport_ok(t + 4) ? 0 : GH_EINVAL;
    if (strncmp(t, "unix:/", 6) == 0 &&
        strlen(t + 5) < sizeof(((struct sockaddr_un *)0)->sun_path))
        return 0;
    return GH_EINVAL;
}

static int setting_value_ok(const char *name, const char *v)
{
    char *end;
    long n;

    if (strcmp(name, "syslog") == 0)
        return gh_audit_target_check(v) == 0;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return 0;
    if (strcmp(name, "checkpoint.records") == 0)
        return n >= 1 && n <= 1000000;
    if (strcmp(name, "checkpoint.seconds") == 0)
        return n >= 1 && n <= 86400;
    return n >= 1 && n <= 36500;   /* retention.days */
}

int gh_audit_setting_set(const char *datadir, const char *name,
                         const char *value)
{
    struct aenv tmp, *e;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int owned, rc;

    if (name == NULL || value == NULL || !setting_known(name) ||
        !setting_value_ok(name, value))
        return GH_EINVAL;
    if (g_open) {
        rc = env_get(datadir, 0, &tmp, &e, &owned);
    } else {
        rc = env_open(&tmp, datadir, 1, 0);
        e = &tmp;
        owned = 1;
    }
    if (rc != 0)
        return rc;
    k = mv(name, strlen(name));
    v = mv(value, strlen(value));
    rc = aerr(mdb_txn_begin(e->env, NULL, 0, &txn));
    if (rc == 0) {
        rc = aerr(mdb_put(txn, e->meta, &k, &v, 0));
        if (rc == 0)
            rc = aerr(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
    }
    env_put(e, owned);
    return rc;
}

/* A setting inside a transaction; "" when unset. */
static void setting_txn(MDB_txn *txn, struct aenv *e, const char *name,
                        char *out, size_t cap)
{
    MDB_val k = mv(name, strlen(name)), v;

    out[0] = '\0';
    if (e->has_dbs && mdb_get(txn, e->meta, &k, &v) == 0 && v.mv_size < cap) {
        memcpy(out, v.mv_data, v.mv_size);
        out[v.mv_size] = '\0';
    }
}

static long setting_long(MDB_txn *txn, struct aenv *e, const char *name,
                         long dflt)
{
    char buf[32];
    long n;

    setting_txn(txn, e, name, buf, sizeof buf);
    if (buf[0] == '\0' || !setting_value_ok(name, buf))
        return dflt;
    n = strtol(buf, NULL, 10);
    return n;
}

int gh_audit_setting_get(const char *datadir, const char *name, char *out,
                         size_t cap)
{
    struct aenv tmp, *e;
    MDB_txn *txn = NULL;
    int owned, rc;

    if (name == NULL || !setting_known(name) || cap == 0)
        return GH_EINVAL;
    rc = env_get(datadir, 1, &tmp, &e, &owned);
    if (rc != 0)
        return rc;
    rc = aerr(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn));
    if (rc == 0) {
        setting_txn(txn, e, name, out, cap);
        mdb_txn_abort(txn);
        if (out[0] == '\0')
            rc = GH_ENOTFOUND;
    }
    env_put(e, owned);
    return rc;
}

/* ------------------------------------------------------------------ */
/* shipping: RFC 5424 to syslog                                       */
/* ------------------------------------------------------------------ */

/* Connect to target (g_ship_lock held). */
static int ship_connect(const char *target)
{
    struct timeval tv = { 1, 0 };
    int fd = -1;

    g_ship_stream = strncmp(target, "tcp:", 4) == 0;
    if (strncmp(target, "unix:", 5) == 0) {
        struct sockaddr_un sa;

        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", target + 5);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            g_ship_stream = 1;
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
                close(fd);
                fd = -1;
            }
        }
    } else {
        char host[256];
        const char *hp = target + 4, *colon = strrchr(hp, ':');
        struct addrinfo hints, *ai = NULL, *a;
        size_t hl = (size_t)(colon - hp);

        if (hl >= sizeof host)
            return -1;
        memcpy(host, hp, hl);
        host[hl] = '\0';
        if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
            memmove(host, host + 1, hl - 2);
            host[hl - 2] = '\0';
        }
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = g_ship_stream ? SOCK_STREAM : SOCK_DGRAM;
        hints.ai_flags = AI_NUMERICSERV;
        if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
            return -1;
        for (a = ai; a != NULL; a = a->ai_next) {
            fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                        a->ai_protocol);
            if (fd < 0)
                continue;
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                break;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(ai);
    }
    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* Printable ASCII without spaces, at most max bytes (RFC 5424 header). */
static void header_token(char *out, size_t max, const char *in)
{
    size_t o = 0;

    for (; in != NULL && *in && o < max; in++)
        out[o++] = (*in > ' ' && *in < 0x7f) ? *in : '_';
    if (o == 0)
        out[o++] = '-';
    out[o] = '\0';
}

/* One record to the configured syslog target, best effort: the record is
 * already committed, and a SIEM that missed it can catch up with
 * `audit export --since`. Severity: notice for success, warning else. */
static void ship(const char *target, uint64_t seq, const uint8_t hash[32],
                 const char *text, const char *action, const char *result,
                 int64_t t)
{
    char head[512], host[65], msgid[33], hex[65], ts[32];
    struct tm tm;
    time_t tt = (time_t)t;
    int pri, hl;
    size_t tl = strlen(text);

    if (target[0] == '\0' || strcmp(target, "off") == 0)
        return;
    gh_hex(hash, 32, hex);
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "-");
    host[sizeof host - 1] = '\0';
    header_token(host, 64, host);
    header_token(msgid, 32, action);
    gmtime_r(&tt, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    pri = 10 * 8 + (result != NULL && strcmp(result, "success") == 0 ? 5 : 4);
    hl = snprintf(head, sizeof head,
                  "<%d>1 %s %s gatehouse %ld %s [" SD_ID " seq=\"%" PRIu64
                  "\" hash=\"%s\"] ", pri, ts, host, (long)getpid(), msgid,
                  seq, hex);
    if (hl < 0 || (size_t)hl >= sizeof head)
        return;

    pthread_mutex_lock(&g_ship_lock);
    if (strcmp(g_ship_target, target) != 0) {
        if (g_ship_fd >= 0)
            close(g_ship_fd);
        g_ship_fd = -1;
        g_ship_retry_at = 0;
        snprintf(g_ship_target, sizeof g_ship_target, "%s", target);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        char frame[24];
        struct iovec iov[3];
        struct msghdr mh;
        ssize_t want, w;
        int fl = 0;

        if (g_ship_fd < 0) {
            struct timespec mono;

            /* an unreachable SIEM must not hold every writer for the
             * connect timeout: one attempt per SHIP_BACKOFF seconds */
            clock_gettime(CLOCK_MONOTONIC, &mono);
            if (mono.tv_sec < g_ship_retry_at)
                break;
            g_ship_fd = ship_connect(target);
            if (g_ship_fd < 0) {
                g_ship_retry_at = mono.tv_sec + SHIP_BACKOFF;
                break;
            }
        }
        if (g_ship_stream)   /* RFC 6587 octet counting */
            fl = snprintf(frame, sizeof frame, "%zu ", (size_t)hl + tl);
        iov[0].iov_base = frame;
        iov[0].iov_len = (size_t)fl;
        iov[1].iov_base = head;
        iov[1].iov_len = (size_t)hl;
        iov[2].iov_base = (void *)text;
        iov[2].iov_len = tl;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = 3;
        want = (ssize_t)((size_t)fl + (size_t)hl + tl);
        w = sendmsg(g_ship_fd, &mh, MSG_NOSIGNAL);
        if (w == want)
            break;
        close(g_ship_fd);   /* a stream cut mid-frame must start afresh */
        g_ship_fd = -1;
    }
    pthread_mutex_unlock(&g_ship_lock);
}

/* ------------------------------------------------------------------ */
/* appending                                                          */
/* ------------------------------------------------------------------ */

typedef struct {
    uint64_t seq;
    uint8_t  hash[32];
    char    *text;
    const char *action, *result;
    int64_t  time;
} shipped_t;

static int head_get(MDB_txn *txn, struct aenv *e, uint64_t *seq,
                    uint8_t hash[32])
{
    MDB_val k = mv("head", 4), v;
    int rc = mdb_get(txn, e->meta, &k, &v);

    if (rc == MDB_NOTFOUND) {
        *seq = 0;
        memset(hash, 0, 32);
        return 0;
    }
    if (rc != 0)
        return aerr(rc);
    if (v.mv_size != 40)
        return GH_ESTORE;
    *seq = rd64(v.mv_data);
    memcpy(hash, (uint8_t *)v.mv_data + 8, 32);
    return 0;
}

static int head_put(MDB_txn *txn, struct aenv *e, uint64_t seq,
                    const uint8_t hash[32])
{
    uint8_t buf[40];
    MDB_val k = mv("head", 4), v = mv(buf, sizeof buf);

    be64(buf, seq);
    memcpy(buf + 8, hash, 32);
    return aerr(mdb_put(txn, e->meta, &k, &v, 0));
}

/* Sign the head when due (or forced). Not having a key is not an error of
 * the append: the checkpoint is made by a later one. */
static int checkpoint_txn(MDB_txn *txn, struct aenv *e, int force,
                          int64_t now, shipped_t *out)
{
    MDB_val k = mv("cp", 2), v;
    uint64_t seq, cp_seq = 0;
    int64_t cp_time = 0;
    uint8_t hash[32], key[8], buf[16];
    long every, secs;
    char *text = NULL;
    int rc;

    rc = head_get(txn, e, &seq, hash);
    if (rc != 0)
        return rc;
    if (mdb_get(txn, e->meta, &k, &v) == 0 && v.mv_size == 16) {
        cp_seq = rd64(v.mv_data);
        cp_time = (int64_t)rd64((uint8_t *)v.mv_data + 8);
    }
    if (seq == 0 || seq <= cp_seq)
        return 0;   /* nothing new to sign */
    every = setting_long(txn, e, "checkpoint.records", GH_AUDIT_CP_RECORDS);
    secs = setting_long(txn, e, "checkpoint.seconds", GH_AUDIT_CP_SECONDS);
    if (!force && seq - cp_seq < (uint64_t)every && now - cp_time < secs)
        return 0;
    rc = signed_json(CP_DOMAIN, seq, hash, now, &text);
    if (rc != 0)
        return rc;
    be64(key, seq);
    k = mv(key, 8);
    v = mv(text, strlen(text));
    rc = aerr(mdb_put(txn, e->cp, &k, &v, 0));
    if (rc == 0) {
        be64(buf, seq);
        be64(buf + 8, (uint64_t)now);
        k = mv("cp", 2);
        v = mv(buf, sizeof buf);
        rc = aerr(mdb_put(txn, e->meta, &k, &v, 0));
    }
    if (rc == 0 && out != NULL) {
        out->seq = seq;
        memcpy(out->hash, hash, 32);
        out->text = text;
        out->action = "audit.checkpoint";
        out->result = "success";
        out->time = now;
        return 0;
    }
    free(text);
    return rc;
}

/* Append each event in txn; sh[i] receives what to ship. */
static int append_txn(MDB_txn *txn, struct aenv *e,
                      const gh_audit_event_t *ev, size_t n, int64_t now,
                      shipped_t *sh)
{
    uint64_t seq;
    uint8_t prev[32], key[8], *val;
    MDB_val k, v;
    int rc;

    rc = head_get(txn, e, &seq, prev);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char *text = record_json(&ev[i], ++seq, now);
        size_t tl;

        if (text == NULL)
            return GH_ENOMEM;
        tl = strlen(text);
        if (tl + 32 > AUDIT_REC_MAX) {
            free(text);
            return GH_ETOOBIG;
        }
        chain_hash(prev, text, tl, prev);
        be64(key, seq);
        k = mv(key, 8);
        v.mv_size = 32 + tl;
        rc = aerr(mdb_put(txn, e->rec, &k, &v, MDB_RESERVE | MDB_APPEND));
        if (rc != 0) {
            free(text);
            return rc;
        }
        val = v.mv_data;
        memcpy(val, prev, 32);
        memcpy(val + 32, text, tl);
        sh[i].seq = seq;
        memcpy(sh[i].hash, prev, 32);
        sh[i].text = text;
        sh[i].action = ev[i].action;
        sh[i].result = ev[i].result;
        sh[i].time = ev[i].time ? ev[i].time : now;
    }
    return head_put(txn, e, seq, prev);
}

int gh_audit_events(const gh_audit_event_t *ev, size_t n)
{
    shipped_t *sh;
    shipped_t cp;
    MDB_txn *txn = NULL;
    char target[GH_AUDIT_TARGET_MAX + 1];
    int64_t now = gh_now();
    int rc;

    if (!g_open)
        return GH_ENOTINIT;
    if (n == 0)
        return 0;
    if (ev == NULL || n > AUDIT_BATCH_MAX)
        return GH_EINVAL;
    sh = calloc(n, sizeof *sh);
    if (sh == NULL)
        return GH_ENOMEM;
    memset(&cp, 0, sizeof cp);
    rc = aerr(mdb_txn_begin(g_env.env, NULL, 0, &txn));
    if (rc != 0)
        goto out;
    rc = append_txn(txn, &g_env, ev, n, now, sh);
    if (rc == 0) {
        (void)checkpoint_txn(txn, &g_env, 0, now, &cp);
        setting_txn(txn, &g_env, "syslog", target, sizeof target);
        rc = aerr(mdb_txn_commit(txn));
    } else {
        mdb_txn_abort(txn);
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            ship(target, sh[i].seq, sh[i].hash, sh[i].text, sh[i].action,
                 sh[i].result, sh[i].time);
        if (cp.text != NULL)
            ship(target, cp.seq, cp.hash, cp.text, cp.action, cp.result,
                 cp.time);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(sh[i].text);
    free(sh);
    free(cp.text);
    return rc;
}

int gh_audit_event(const gh_audit_event_t *ev)
{
    return gh_audit_events(ev, 1);
}

int gh_audit_checkpoint(int force)
{
    MDB_txn *txn = NULL;
    shipped_t cp;
    char target[GH_AUDIT_TARGET_MAX + 1];
    int rc;

    if (!g_open)
        return GH_ENOTINIT;
    memset(&cp, 0, sizeof cp);
    rc = aerr(mdb_txn_begin(g_env.env, NULL, 0, &txn));
    if (rc != 0)
        return rc;
    rc = checkpoint_txn(txn, &g_env, force, gh_now(), &cp);
    setting_txn(txn, &g_env, "syslog", target, sizeof target);
    if (rc == 0 && cp.text != NULL) {
        rc = aerr(mdb_txn_commit(txn));
        if (rc == 0)
            ship(target, cp.seq, cp.hash, cp.text, cp.action, cp.result,
                 cp.time);
    } else {
        mdb_txn_abort(txn);
    }
    free(cp.text);
    return rc;
}

/* The older events, as actions and results (docs/audit.md). */
static const struct {
    const char *event, *action, *result;
} legacy[] = {
    { "login",                  "login.success",        "success" },
    { "login_failure",          "login.failure",        "failure" },
    { "login_throttled",        "login.throttled",      "denied" },
    { "lockout",                "login.lockout",        "denied" },
    { "unlock",                 "user.unlock",          "success" },
    { "password_change",        "password.change",      "success" },
    { "password_set",           "password.set",         "success" },
    { "password_refused",       "password.refused",     "failure" },
    { "password_must_change",   "password.must_change", "success" },
    { "password_change_failure", "password.change_failure", "failure" },
    { "password_change_throttled", "password.change_throttled", "denied" },
    { "password_policy_change", "tenant.password_policy", "success" },
    { "policy_apply",           "policy.apply",         "success" },
};

int gh_audit(const char *actor, const char *tenant, const char *addr,
             const char *request_id, const char *event, const char *detail)
{
    return gh_audit_in_session(actor, tenant, addr, request_id, event, detail,
                               NULL);
}

int gh_audit_in_session(const char *actor, const char *tenant,
                        const char *addr, const char *request_id,
                        const char *event, const char *detail,
                        const char *session)
{
    gh_audit_event_t ev;
    char action[64], reason[64];
    size_t i;

    memset(&ev, 0, sizeof ev);
    ev.session = session;
    ev.user = actor;
    ev.tenant = tenant;
    ev.addr = addr;
    ev.request_id = request_id;
    ev.detail = detail;
    ev.action = event;
    ev.result = "success";
    for (i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
        if (event != NULL && strcmp(event, legacy[i].event) == 0)
            break;
    if (i < sizeof legacy / sizeof legacy[0]) {
        ev.action = legacy[i].action;
        ev.result = legacy[i].result;
    } else if (event != NULL) {
        /* events of newer callers (e.g. "mfa_enroll"): a dotted action,
         * the result read from the name */
        snprintf(action, sizeof action, "%s", event);
        for (char *p = action; *p; p++)
            if (*p == '_' && strchr(action, '.') == NULL)
                *p = '.';
        ev.action = action;
        if (strstr(event, "fail") || strstr(event, "refus") ||
            strstr(event, "invalid") || strstr(event, "bad"))
            ev.result = "failure";
        else if (strstr(event, "throttl") || strstr(event, "lock") ||
                 strstr(event, "denied"))
            ev.result = "denied";
    }
    /* "bad_password; 3 consecutive failures": the reason code first */
    if (strcmp(ev.result, "success") != 0 && detail != NULL) {
        size_t n = strcspn(detail, "; ");

        if (n > 0 && n < sizeof reason &&
            strspn(detail, "abcdefghijklmnopqrstuvwxyz0123456789_") == n) {
            memcpy(reason, detail, n);
            reason[n] = '\0';
            ev.reason = reason;
        }
    }
    return gh_audit_event(&ev);
}

/* ------------------------------------------------------------------ */
/* verification                                                       */
/* ------------------------------------------------------------------ */

static void bad(gh_audit_report_t *rep, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(gh_audit_report_t *rep, uint64_t seq, const char *fmt, ...)
{
    va_list ap;

    if (rep->bad != 0 && rep->bad <= seq)
        return;   /* an earlier one is already named */
    rep->bad = seq;
    va_start(ap, fmt);
    vsnprintf(rep->why, sizeof rep->why, fmt, ap);
    va_end(ap);
}

/* The checkpoint after (seq, hash) in the chain walk. */
typedef struct {
    MDB_cursor *cur;
    int         more;
    uint64_t    seq;
    uint8_t     hash[32];
    uint64_t    prev_ok;    /* last checkpoint whose hash matched */
} cpwalk_t;

static void cp_next(cpwalk_t *w, const keyset_t *ks, gh_audit_report_t *rep,
                    MDB_cursor_op op)
{
    MDB_val k, v;
    uint64_t s;
    int64_t t;

    for (;;) {
        w->more = mdb_cursor_get(w->cur, &k, &v, op) == 0;
        op = MDB_NEXT;
        if (!w->more)
            return;
        if (k.mv_size != 8) {
            bad(rep, 1, "a checkpoint with a malformed key");
            continue;
        }
        w->seq = rd64(k.mv_data);
        if (signed_check(ks, CP_DOMAIN, v.mv_data, v.mv_size, &s, w->hash,
                         &t) != 0 || s != w->seq) {
            bad(rep, w->seq, "checkpoint %" PRIu64 ": bad signature",
                w->seq);
            continue;
        }
        rep->checkpoints++;
        return;
    }
}

int gh_audit_verify(const char *datadir, gh_store_t *st, const uint8_t *mk,
                    gh_audit_report_t *rep)
{
    return gh_audit_verify_expect(datadir, st, mk, 0, NULL, rep);
}

int gh_audit_verify_expect(const char *datadir, gh_store_t *st,
                           const uint8_t *mk, uint64_t expect_seq,
                           const uint8_t expect_hash[32],
                           gh_audit_report_t *rep)
{
    struct aenv tmp, *e;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    keyset_t ks;
    cpwalk_t cw;
    uint64_t start = 1, expect, head_seq;
    uint8_t prev[32], head_hash[32], h[32];
    int owned = 0, rc, op;

    memset(rep, 0, sizeof *rep);
    memset(&ks, 0, sizeof ks);
    memset(&cw, 0, sizeof cw);
    memset(prev, 0, sizeof prev);
    rc = env_get(datadir, 1, &tmp, &e, &owned);
    if (rc != 0)
        return rc;
    if (!e->has_dbs) {
        env_put(e, owned);
        return GH_ENOTINIT;
    }
    if (st != NULL && (rc = gh_jwtkey_list(st, collect_key, &ks)) != 0)
        goto out;
    if (mk != NULL) {
        rep->key_bound = 1;
        for (size_t i = 0; i < ks.n; i++) {
            if (!key_bound(&ks.k[i], mk)) {
                /* an unproven key verifies nothing */
                ks.k[i].kid[0] = '\0';
                rep->key_bound = 0;
            }
        }
    }
    rc = aerr(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn));
    if (rc != 0)
        goto out;

    /* the anchor left by pruning: where the chain starts, signed */
    k = mv("anchor", 6);
    if (mdb_get(txn, e->meta, &k, &v) == 0) {
        int64_t t;

        if (signed_check(&ks, ANCHOR_DOMAIN, v.mv_data, v.mv_size, &start,
                         prev, &t) != 0 || start == 0) {
            bad(rep, 1, "the retention anchor's signature does not verify");
            rc = GH_EDENIED;
            goto out;
        }
    }
    rc = head_get(txn, e, &head_seq, head_hash);
    if (rc != 0)
        goto out;

    rc = aerr(mdb_cursor_open(txn, e->cp, &cw.cur));
    if (rc != 0)
        goto out;
    cp_next(&cw, &ks, rep, MDB_FIRST);
    while (cw.more && cw.seq < start)   /* pruned: the anchor covers them */
        cp_next(&cw, &ks, rep, MDB_NEXT);

    rc = aerr(mdb_cursor_open(txn, e->rec, &cur));
    if (rc != 0)
        goto out;
    expect = start;
    rep->first = start;
    for (op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        uint64_t seq;
        json_t *o;
        json_int_t js = -1;
        const uint8_t *val = v.mv_data;

        if (k.mv_size != 8) {
            bad(rep, expect, "record %" PRIu64 ": malformed key", expect);
            break;
        }
        seq = rd64(k.mv_data);
        if (seq < start) {
            bad(rep, seq, "record %" PRIu64 " precedes the retention anchor "
                "(%" PRIu64 ")", seq, start);
            break;
        }
        if (seq != expect) {
            bad(rep, expect, "record %" PRIu64 " is missing (next is %"
                PRIu64 ")", expect, seq);
            break;
        }
        if (v.mv_size <= 32) {
            bad(rep, seq, "record %" PRIu64 ": truncated value", seq);
            break;
        }
        chain_hash(prev, (const char *)val + 32, v.mv_size - 32, h);
        if (!gh_ct_equal(h, val, 32)) {
            bad(rep, seq, "record %" PRIu64 ": hash does not match its "
                "content and the previous record", seq);
            break;
        }
        o = json_loadb((const char *)val + 32, v.mv_size - 32, 0, NULL);
        if (o == NULL || json_unpack(o, "{s:I}", "seq", &js) != 0 ||
            js != (json_int_t)seq) {
            json_decref(o);
            bad(rep, seq, "record %" PRIu64 ": sequence number inside the "
                "record differs (reordered)", seq);
            break;
        }
        json_decref(o);
        memcpy(prev, h, 32);
        rep->records++;
        rep->last = seq;
        if (expect_seq == seq && expect_hash != NULL &&
            !gh_ct_equal(expect_hash, h, 32)) {
            bad(rep, seq, "record %" PRIu64 ": not the hash held outside the "
                "log", seq);
            break;
        }
        if (cw.more && cw.seq == seq) {
            if (!gh_ct_equal(cw.hash, h, 32)) {
                bad(rep, cw.prev_ok + 1 > start ? cw.prev_ok + 1 : start,
                    "the chain up to %" PRIu64 " is not the one checkpoint %"
                    PRIu64 " signed (rewritten after checkpoint %" PRIu64 ")",
                    seq, seq, cw.prev_ok);
                break;
            }
            cw.prev_ok = seq;
            cp_next(&cw, &ks, rep, MDB_NEXT);
        }
        expect++;
    }
    if (rep->bad == 0) {
        uint64_t last = expect - 1;

        if (expect_seq > last)
            bad(rep, last + 1, "records %" PRIu64 "..%" PRIu64 " are missing: "
                "record %" PRIu64 " is held outside the log (truncated)",
                last + 1, expect_seq, expect_seq);
        else if (cw.more && cw.seq > last)
            bad(rep, last + 1, "records %" PRIu64 "..%" PRIu64 " are missing: "
                "checkpoint %" PRIu64 " signed them (truncated)", last + 1,
                cw.seq, cw.seq);
        else if (head_seq > last)
            bad(rep, last + 1, "records %" PRIu64 "..%" PRIu64 " are missing "
                "(truncated)", last + 1, head_seq);
        else if (head_seq < last)
            bad(rep, head_seq + 1, "records after %" PRIu64 " were added "
                "outside the log", head_seq);
        else if (last >= start && !gh_ct_equal(head_hash, prev, 32))
            bad(rep, last, "record %" PRIu64 ": not the head the log "
                "recorded", last);
    }
    rc = rep->bad ? GH_EDENIED : 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (cw.cur != NULL)
        mdb_cursor_close(cw.cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    for (size_t i = 0; i < ks.n; i++)
        gh_wipe(ks.k[i].sealed, sizeof ks.k[i].sealed);
    free(ks.k);
    env_put(e, owned);
    return rc;
}

/* ------------------------------------------------------------------ */
/* export, retention                                                  */
/* ------------------------------------------------------------------ */

/* {"seq":N,"hash":"..","record":{...}} */
static char *export_line(uint64_t seq, const uint8_t *val, size_t len,
                         size_t *out_len)
{
    char hex[65], *line;
    size_t cap = len + 128;
    int n;

    gh_hex(val, 32, hex);
    line = malloc(cap);
    if (line == NULL)
        return NULL;
    n = snprintf(line, cap, "{\"seq\":%" PRIu64 ",\"hash\":\"%s\",\"record\":"
                 "%.*s}", seq, hex, (int)(len - 32), (const char *)val + 32);
    if (n < 0 || (size_t)n >= cap) {
        free(line);
        return NULL;
    }
    *out_len = (size_t)n;
    return line;
}

static int64_t record_time(const uint8_t *val, size_t len)
{
    json_t *o = json_loadb((const char *)val + 32, len - 32, 0, NULL);
    json_int_t t = 0;

    if (o != NULL)
        (void)json_unpack(o, "{s:I}", "time", &t);
    json_decref(o);
    return t;
}

int gh_audit_export(const char *datadir, int64_t since,
                    int (*cb)(const char *line, size_t len, void *arg),
                    void *arg)
{
    struct aenv tmp, *e;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int owned, rc, op;

    rc = env_get(datadir, 1, &tmp, &e, &owned);
    if (rc != 0)
        return rc;
    if (!e->has_dbs)
        goto out;
    rc = aerr(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn));
    if (rc == 0)
        rc = aerr(mdb_cursor_open(txn, e->rec, &cur));
    for (op = MDB_FIRST; rc == 0 && mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        char *line;
        size_t n;

        if (k.mv_size != 8 || v.mv_size <= 32)
            continue;
        if (since > 0 && record_time(v.mv_data, v.mv_size) < since)
            continue;
        line = export_line(rd64(k.mv_data), v.mv_data, v.mv_size, &n);
        if (line == NULL) {
            rc = GH_ENOMEM;
            break;
        }
        rc = cb(line, n, arg);
        free(line);
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    env_put(e, owned);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return GH_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int gh_audit_prune(int64_t before, const char *archive, uint64_t *pruned)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t start = 1, last = 0, n = 0;
    uint8_t prev[32], anchor_prev[32], key[8];
    char *anchor = NULL, hdr[200], hex[65], detail[PATH_MAX + 96];
    int rc, op, fd = -1;
    gh_audit_event_t ev;
    shipped_t sh;

    *pruned = 0;
    if (!g_open)
        return GH_ENOTINIT;
    if (archive == NULL || archive[0] == '\0')
        return GH_EINVAL;
    memset(prev, 0, sizeof prev);
    memset(&sh, 0, sizeof sh);

    /* 1. the archive, from a snapshot: old records never change */
    rc = aerr(mdb_txn_begin(g_env.env, NULL, MDB_RDONLY, &txn));
    if (rc != 0)
        return rc;
    k = mv("anchor", 6);
    if (mdb_get(txn, g_env.meta, &k, &v) == 0) {
        json_t *o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        json_int_t s = 0;
        const char *h = NULL;

        if (o == NULL || json_unpack(o, "{s:I,s:s}", "seq", &s, "hash", &h)
            || s < 1 || strlen(h) != 64) {
            json_decref(o);
            rc = GH_ESTORE;
            goto out;
        }
        start = (uint64_t)s;
        for (int i = 0; i < 32; i++) {
            unsigned x;

            sscanf(h + 2 * i, "%2x", &x);
            prev[i] = (uint8_t)x;
        }
        json_decref(o);
    }
    memcpy(anchor_prev, prev, 32);
    rc = aerr(mdb_cursor_open(txn, g_env.rec, &cur));
    for (op = MDB_FIRST; rc == 0 && mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        char *line;
        size_t len;

        if (k.mv_size != 8 || v.mv_size <= 32 ||
            record_time(v.mv_data, v.mv_size) >= before)
            break;
        if (fd < 0) {
            fd = open(archive, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                      O_CLOEXEC, 0600);
            if (fd < 0) {
                rc = errno == EEXIST ? GH_EEXIST : GH_EIO;
                break;
            }
            gh_hex(anchor_prev, 32, hex);
            snprintf(hdr, sizeof hdr, "{\"archive\":1,\"first\":%" PRIu64
                     ",\"prev\":\"%s\"}\n", rd64(k.mv_data), hex);
            rc = write_all(fd, hdr, strlen(hdr));
        }
        line = export_line(rd64(k.mv_data), v.mv_data, v.mv_size, &len);
        if (line == NULL) {
            rc = GH_ENOMEM;
            break;
        }
        line[len] = '\n';   /* export_line leaves room */
        if (rc == 0)
            rc = write_all(fd, line, len + 1);
        free(line);
        last = rd64(k.mv_data);
        memcpy(prev, v.mv_data, 32);
        n++;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    mdb_txn_abort(txn);
    txn = NULL;
    if (rc == 0 && fd >= 0 && fsync(fd) != 0)
        rc = GH_EIO;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = GH_EIO;
    if (rc != 0 || n == 0)
        return rc;

    /* 2. delete them, sign the anchor, record the prune: one transaction */
    rc = signed_json(ANCHOR_DOMAIN, last + 1, prev, gh_now(), &anchor);
    if (rc != 0)
        return rc;
    rc = aerr(mdb_txn_begin(g_env.env, NULL, 0, &txn));
    for (uint64_t s = start; rc == 0 && s <= last; s++) {
        be64(key, s);
        k = mv(key, 8);
        rc = aerr(mdb_del(txn, g_env.rec, &k, NULL));
        if (rc == 0) {
            int r2 = mdb_del(txn, g_env.cp, &k, NULL);

            if (r2 != 0 && r2 != MDB_NOTFOUND)
                rc = aerr(r2);
        }
    }
    if (rc == 0) {
        k = mv("anchor", 6);
        v = mv(anchor, strlen(anchor));
        rc = aerr(mdb_put(txn, g_env.meta, &k, &v, 0));
    }
    if (rc == 0) {
        snprintf(detail, sizeof detail, "records %" PRIu64 "..%" PRIu64
                 " archived to %s", start, last, archive);
        memset(&ev, 0, sizeof ev);
        ev.user = "-";
        ev.action = "audit.prune";
        ev.result = "success";
        ev.detail = detail;
        rc = append_txn(txn, &g_env, &ev, 1, gh_now(), &sh);
    }
    if (rc == 0) {
        rc = aerr(mdb_txn_commit(txn));
        txn = NULL;
    }
    if (rc == 0)
        *pruned = n;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    free(anchor);
    free(sh.text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* raw records: tests and forensics                                   */
/* ------------------------------------------------------------------ */

static int raw_op(const char *datadir, int op, uint64_t seq, const void *in,
                  size_t inlen, void *out, size_t cap, size_t *outlen)
{
    struct aenv tmp, *e;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    uint8_t key[8];
    int owned, rc;

    rc = env_get(datadir, 0, &tmp, &e, &owned);
    if (rc != 0)
        return rc;
    if (!e->has_dbs) {
        env_put(e, owned);
        return GH_ENOTINIT;
    }
    be64(key, seq);
    k = mv(key, 8);
    rc = aerr(mdb_txn_begin(e->env, NULL, op == 0 ? MDB_RDONLY : 0, &txn));
    if (rc != 0)
        goto out;
    switch (op) {
    case 0:
        rc = aerr(mdb_get(txn, e->rec, &k, &v));
        if (rc == 0 && v.mv_size > cap)
            rc = GH_ETOOBIG;
        if (rc == 0) {
            memcpy(out, v.mv_data, v.mv_size);
            *outlen = v.mv_size;
        }
        break;
    case 1:
        v = mv(in, inlen);
        rc = aerr(mdb_put(txn, e->rec, &k, &v, 0));
        break;
    case 2:
        rc = aerr(mdb_del(txn, e->rec, &k, NULL));
        break;
    default:
        rc = aerr(mdb_get(txn, e->rec, &k, &v));
        if (rc == 0 && v.mv_size <= 32)
            rc = GH_ESTORE;
        if (rc == 0) {
            uint8_t h[32];

            memcpy(h, v.mv_data, 32);
            rc = head_put(txn, e, seq, h);
        }
        break;
    }
    if (rc == 0 && op != 0)
        rc = aerr(mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
out:
    env_put(e, owned);
    return rc;
}

int gh_audit_raw_get(const char *datadir, uint64_t seq, void *out, size_t cap,
                     size_t *len)
{
    return raw_op(datadir, 0, seq, NULL, 0, out, cap, len);
}

int gh_audit_raw_put(const char *datadir, uint64_t seq, const void *val,
                     size_t len)
{
    return raw_op(datadir, 1, seq, val, len, NULL, 0, NULL);
}

int gh_audit_raw_del(const char *datadir, uint64_t seq)
{
    return raw_op(datadir, 2, seq, NULL, 0, NULL, 0, NULL);
}

int gh_audit_raw_set_head(const char *datadir, uint64_t seq)
{
    return raw_op(datadir, 3, seq, NULL, 0, NULL, 0, NULL);
}
