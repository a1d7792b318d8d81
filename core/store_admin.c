/* gatehouse — admin records in the store's "admin" database (schema 6):
 * invitations (see include/gatehouse/invite.h).
 *
 * Keys: "i:" id -> the invitation (JSON); "e:" email -> id while the
 * invitation is open (pending or approved), so one email has one open
 * invitation; "t:" hex SHA-256 of the link token -> id while the link is
 * usable. The token itself is never stored.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lmdb.h>

#include "gatehouse/error.h"
#include "gatehouse/invite.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"
#include "store_int.h"

#define INV_RECORD_MAX  8192
#define INV_KEY_MAX     (2 + GH_EMAIL_MAX + 1)

static const char *const state_names[] = {
    "pending", "approved", "rejected", "used"
};

const char *gh_invite_state_name(int state)
{
    if (state < 0 || state > GH_INVITE_USED)
        return "unknown";
    return state_names[state];
}

static MDB_val kval(char *buf, const char *prefix, const char *s)
{
    MDB_val v;
    size_t n = strlen(s);

    memcpy(buf, prefix, 2);
    memcpy(buf + 2, s, n);
    v.mv_size = 2 + n;
    v.mv_data = buf;
    return v;
}

static int text_ok(const char *s, size_t max, int empty_ok)
{
    size_t n = strnlen(s, max + 1), i;

    if (n > max || (n == 0 && !empty_ok))
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int hex_ok(const char *s, size_t len)
{
    size_t i;

    if (strnlen(s, len + 1) != len)
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int encode(const gh_invite_t *iv, char **buf, size_t *len)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,"
                          "s:I,s:I,s:I,s:I}",
                          "id", iv->id, "t", iv->tenant, "e", iv->email,
                          "n", iv->name, "r", iv->roles, "s", iv->state,
                          "by", iv->inviter, "bye", iv->inviter_email,
                          "de", iv->decider_email, "u", iv->uid,
                          "th", iv->token_hash,
                          "c", (json_int_t)iv->created,
                          "d", (json_int_t)iv->decided,
                          "x", (json_int_t)iv->expires,
                          "ud", (json_int_t)iv->used);

    if (o == NULL)
        return GH_ENOMEM;
    *buf = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (*buf == NULL)
        return GH_ENOMEM;
    *len = strlen(*buf);
    if (*len > INV_RECORD_MAX) {
        free(*buf);
        *buf = NULL;
        return GH_ETOOBIG;
    }
    return 0;
}

/* store.c's strict record decoding (store_int.h) */
#define jstr  gh_store_int_jstr
#define jint  gh_store_int_jint

static int decode(const MDB_val *v, gh_invite_t *iv)
{
    json_t *o;
    int64_t state;
    int rc;

    memset(iv, 0, sizeof *iv);
    if (gh_store_int_json(v, &o) != 0)
        return GH_ESTORE;
    rc = jstr(o, "id", iv->id, sizeof iv->id);
    if (rc == 0) rc = jstr(o, "t", iv->tenant, sizeof iv->tenant);
    if (rc == 0) rc = jstr(o, "e", iv->email, sizeof iv->email);
    if (rc == 0) rc = jstr(o, "n", iv->name, sizeof iv->name);
    if (rc == 0) rc = jstr(o, "r", iv->roles, sizeof iv->roles);
    if (rc == 0) rc = jstr(o, "by", iv->inviter, sizeof iv->inviter);
    if (rc == 0) rc = jstr(o, "bye", iv->inviter_email,
                           sizeof iv->inviter_email);
    if (rc == 0) rc = jstr(o, "de", iv->decider_email,
                           sizeof iv->decider_email);
    if (rc == 0) rc = jstr(o, "u", iv->uid, sizeof iv->uid);
    if (rc == 0) rc = jstr(o, "th", iv->token_hash, sizeof iv->token_hash);
    if (rc == 0) rc = jint(o, "s", &state);
    if (rc == 0) rc = jint(o, "c", &iv->created);
    if (rc == 0) rc = jint(o, "d", &iv->decided);
    if (rc == 0) rc = jint(o, "x", &iv->expires);
    if (rc == 0) rc = jint(o, "ud", &iv->used);
    json_decref(o);
    if (rc == 0 && (state < GH_INVITE_PENDING || state > GH_INVITE_USED))
        rc = GH_ESTORE;
    if (rc == 0)
        iv->state = (int)state;
    return rc;
}

static int get_txn(MDB_txn *txn, MDB_dbi db, const char *id, gh_invite_t *out)
{
    char kb[INV_KEY_MAX];
    MDB_val k, v;
    int rc;

    if (!hex_ok(id, GH_ID_HEXLEN))
        return GH_ENOTFOUND;
    k = kval(kb, "i:", id);
    rc = gh_store_int_err(mdb_get(txn, db, &k, &v));
    if (rc != 0)
        return rc;
    return decode(&v, out);
}

static int put_txn(MDB_txn *txn, MDB_dbi db, const gh_invite_t *iv)
{
    char kb[INV_KEY_MAX], *buf = NULL;
    size_t len;
    MDB_val k, v;
    int rc;

    rc = encode(iv, &buf, &len);
    if (rc != 0)
        return rc;
    k = kval(kb, "i:", iv->id);
    v.mv_size = len;
    v.mv_data = buf;
    rc = gh_store_int_err(mdb_put(txn, db, &k, &v, 0));
    free(buf);
    return rc;
}

static int del_key(MDB_txn *txn, MDB_dbi db, const char *prefix,
                   const char *s)
{
    char kb[INV_KEY_MAX];
    MDB_val k = kval(kb, prefix, s);
    int rc = gh_store_int_err(mdb_del(txn, db, &k, NULL));

    return rc == GH_ENOTFOUND ? 0 : rc;
}

static int put_key(MDB_txn *txn, MDB_dbi db, const char *prefix,
                   const char *s, const char *id, unsigned flags)
{
    char kb[INV_KEY_MAX];
    MDB_val k = kval(kb, prefix, s), v;

    v.mv_size = strlen(id);
    v.mv_data = (void *)id;
    return gh_store_int_err(mdb_put(txn, db, &k, &v, flags));
}

int gh_invite_add(gh_store_t *st, gh_invite_t *in)
{
    MDB_txn *txn = NULL;
    MDB_dbi db;
    gh_tenant_t t;
    gh_user_t u;
    char norm[GH_EMAIL_MAX + 1];
    int rc;

    if (st == NULL || in == NULL || !gh_tenant_name_valid(in->tenant) ||
        !text_ok(in->email, GH_EMAIL_MAX, 0) ||
        !text_ok(in->name, GH_NAME_MAX, 1) ||
        !text_ok(in->roles, GH_ROLES_MAX, 1) ||
        !hex_ok(in->inviter, GH_ID_HEXLEN) ||
        !text_ok(in->inviter_email, GH_EMAIL_MAX, 0))
        return GH_EINVAL;
    if (gh_email_normalize(in->email, strlen(in->email), norm) != 0 ||
        strcmp(norm, in->email) != 0)
        return GH_EBADEMAIL;
    rc = gh_tenant_get(st, in->tenant, &t);
    if (rc != 0)
        return rc == GH_ENOTFOUND ? GH_EBADTENANT : rc;
    rc = gh_user_by_email(st, in->email, &u);
    if (rc == 0)
        return GH_EEXIST;
    if (rc != GH_ENOTFOUND)
        return rc;
    gh_new_id(in->id);
    in->state = GH_INVITE_PENDING;
    in->decider_email[0] = in->uid[0] = in->token_hash[0] = '\0';
    in->decided = in->expires = in->used = 0;
    if (in->created == 0)
        in->created = gh_now();
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    db = gh_store_int_admin(st);
    rc = put_key(txn, db, "e:", in->email, in->id, MDB_NOOVERWRITE);
    if (rc == 0)
        rc = put_txn(txn, db, in);
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    return rc;
}

int gh_invite_get(gh_store_t *st, const char *id, gh_invite_t *out)
{
    MDB_txn *txn = NULL;
    int rc;

    if (st == NULL || id == NULL || out == NULL)
        return GH_EINVAL;
    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = get_txn(txn, gh_store_int_admin(st), id, out);
    gh_store_int_abort(&txn);
    return rc;
}

/* Walk, in one read transaction, at most GH_INVITE_SCAN keys of the admin
 * database from the 2-byte prefix on, stopping at the first key without it
 * (or, with klen set, of another length). fn sees key and value only
 * inside the transaction; its non-zero return stops the walk and is
 * returned. Exists so each list below is only its decoding. */
static int scan(gh_store_t *st, const char *prefix, size_t klen,
                int (*fn)(const MDB_val *, const MDB_val *, void *),
                void *arg)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    MDB_cursor_op op = MDB_SET_RANGE;
    unsigned seen = 0;
    int rc;

    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = gh_store_int_err(mdb_cursor_open(txn, gh_store_int_admin(st), &cur));
    if (rc != 0) {
        cur = NULL;
        goto out;
    }
    k.mv_size = 2;
    k.mv_data = (void *)prefix;
    while (seen < GH_INVITE_SCAN && mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        if (k.mv_size < 2 || memcmp(k.mv_data, prefix, 2) != 0 ||
            (klen != 0 && k.mv_size != klen))
            break;
        seen++;
        rc = fn(&k, &v, arg);
        if (rc != 0)
            goto out;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    gh_store_int_abort(&txn);
    return rc;
}

struct invite_walk {
    const char *tenant;
    int (*cb)(const gh_invite_t *, void *);
    void *arg;
};

static int invite_fn(const MDB_val *k, const MDB_val *v, void *arg)
{
    struct invite_walk *w = arg;
    gh_invite_t iv;
    int rc;

    rc = decode(v, &iv);
    if (rc != 0)
        return rc;
    if (w->tenant != NULL && strcmp(iv.tenant, w->tenant) != 0)
        return 0;
    return w->cb(&iv, w->arg);
}

int gh_invite_list(gh_store_t *st, const char *tenant,
                   int (*cb)(const gh_invite_t *, void *), void *arg)
{
    struct invite_walk w = { tenant, cb, arg };

    if (st == NULL || cb == NULL)
        return GH_EINVAL;
    return scan(st, "i:", 0, invite_fn, &w);
}

static void token_hash(const char *token, size_t len, char out[65])
{
    uint8_t h[32];

    gh_sha256(token, len, h);
    gh_hex(h, sizeof h, out);
    out[64] = '\0';
}

/* One write transaction: read the invitation, let fn change it (fn may
 * touch the index keys through txn), write it back. */
static int update(gh_store_t *st, const char *id,
                  int (*fn)(MDB_txn *txn, MDB_dbi db, gh_invite_t *iv,
                            void *arg),
                  void *arg, gh_invite_t *out)
{
    MDB_txn *txn = NULL;
    MDB_dbi db;
    gh_invite_t iv;
    int rc;

    rc = gh_store_int_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    db = gh_store_int_admin(st);
    rc = get_txn(txn, db, id, &iv);
    if (rc == 0)
        rc = fn(txn, db, &iv, arg);
    if (rc == 0)
        rc = put_txn(txn, db, &iv);
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    if (rc == 0 && out != NULL)
        *out = iv;
    return rc;
}

typedef struct {
    int         approve;
    const char *decider_uid, *decider_email;
    int64_t     now, ttl;
    const char *hash;
} decide_arg_t;

static int decide_fn(MDB_txn *txn, MDB_dbi db, gh_invite_t *iv, void *arg)
{
    decide_arg_t *a = arg;

    if (iv->state != GH_INVITE_PENDING)
        return GH_EDENIED;
    if (strcmp(iv->inviter, a->decider_uid) == 0)
        return GH_EDENIED;          /* four eyes */
    iv->decided = a->now;
    snprintf(iv->decider_email, sizeof iv->decider_email, "%s",
             a->decider_email);
    if (!a->approve) {
        iv->state = GH_INVITE_REJECTED;
        return del_key(txn, db, "e:", iv->email);
    }
    iv->state = GH_INVITE_APPROVED;
    iv->expires = a->now + a->ttl;
    memcpy(iv->token_hash, a->hash, 65);
    return put_key(txn, db, "t:", a->hash, iv->id, MDB_NOOVERWRITE);
}

typedef struct {
    const char *uid;
    int         revert;
} uid_arg_t;

static int uid_fn(MDB_txn *txn, MDB_dbi db, gh_invite_t *iv, void *arg)
{
    uid_arg_t *a = arg;
    int rc;

    if (a->revert) {
        /* the user could not be made: back to pending, link withdrawn */
        rc = del_key(txn, db, "t:", iv->token_hash);
        iv->state = GH_INVITE_PENDING;
        iv->token_hash[0] = '\0';
        iv->decided = iv->expires = 0;
        iv->decider_email[0] = '\0';
        return rc;
    }
    snprintf(iv->uid, sizeof iv->uid, "%s", a->uid);
    return 0;
}

int gh_invite_decide(gh_store_t *st, const char *id, int approve,
                     const char *decider_uid, const char *decider_email,
                     int64_t now, int64_t ttl,
                     char token[GH_INVITE_TOKEN_LEN + 1])
{
    decide_arg_t a;
    uid_arg_t ua;
    gh_invite_t iv;
    gh_user_t u;
    uint8_t raw[32];
    char hash[65], uid[GH_ID_HEXLEN + 1];
    int rc;

    if (st == NULL || id == NULL || decider_uid == NULL ||
        decider_email == NULL || (approve && token == NULL) || ttl <= 0)
        return GH_EINVAL;
    hash[0] = '\0';
    if (approve) {
        gh_random(raw, sizeof raw);
        if (gh_b64url_encode(raw, sizeof raw, token,
                             GH_INVITE_TOKEN_LEN + 1) != GH_INVITE_TOKEN_LEN) {
            gh_wipe(raw, sizeof raw);
            return GH_ECRYPTO;
        }
        gh_wipe(raw, sizeof raw);
        token_hash(token, GH_INVITE_TOKEN_LEN, hash);
    }
    memset(&a, 0, sizeof a);
    a.approve = approve;
    a.decider_uid = decider_uid;
    a.decider_email = decider_email;
    a.now = now;
    a.ttl = ttl;
    a.hash = hash;
    rc = update(st, id, decide_fn, &a, &iv);
    if (rc != 0 || !approve) {
        if (token != NULL)
            gh_wipe(token, GH_INVITE_TOKEN_LEN + 1);
        return rc;
    }
    /* the person, with the proposed roles and no password */
    memset(&u, 0, sizeof u);
    snprintf(u.tenant, sizeof u.tenant, "%s", iv.tenant);
    snprintf(u.email, sizeof u.email, "%s", iv.email);
    snprintf(u.name, sizeof u.name, "%s", iv.name);
    snprintf(u.roles, sizeof u.roles, "%s", iv.roles);
    rc = gh_user_add(st, &u, uid);
    memset(&ua, 0, sizeof ua);
    ua.uid = uid;
    ua.revert = rc != 0;
    if (update(st, id, uid_fn, &ua, NULL) != 0 && rc == 0)
        rc = GH_ESTORE;
    if (rc != 0)
        gh_wipe(token, GH_INVITE_TOKEN_LEN + 1);
    return rc;
}

static int lookup(gh_store_t *st, MDB_txn *txn, const char *token,
                  size_t len, int64_t now, gh_invite_t *out, char hash[65])
{
    char kb[INV_KEY_MAX], id[GH_ID_HEXLEN + 1];
    MDB_val k, v;
    int rc;

    if (token == NULL || len != GH_INVITE_TOKEN_LEN)
        return GH_ENOTFOUND;
    token_hash(token, len, hash);
    k = kval(kb, "t:", hash);
    rc = gh_store_int_err(mdb_get(txn, gh_store_int_admin(st), &k, &v));
    if (rc != 0)
        return rc;
    if (v.mv_size != GH_ID_HEXLEN)
        return GH_ESTORE;
    memcpy(id, v.mv_data, GH_ID_HEXLEN);
    id[GH_ID_HEXLEN] = '\0';
    rc = get_txn(txn, gh_store_int_admin(st), id, out);
    if (rc != 0)
        return rc == GH_ENOTFOUND ? GH_ESTORE : rc;
    if (out->state != GH_INVITE_APPROVED ||
        strcmp(out->token_hash, hash) != 0)
        return GH_ENOTFOUND;
    if (now >= out->expires)
        return GH_EEXPIRED;
    return 0;
}

int gh_invite_by_token(gh_store_t *st, const char *token, size_t len,
                       int64_t now, gh_invite_t *out)
{
    MDB_txn *txn = NULL;
    char hash[65];
    int rc;

    if (st == NULL || out == NULL)
        return GH_EINVAL;
    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = lookup(st, txn, token, len, now, out, hash);
    gh_store_int_abort(&txn);
    return rc;
}

int gh_invite_consume(gh_store_t *st, const char *token, size_t len,
                      int64_t now, gh_invite_t *out)
{
    MDB_txn *txn = NULL;
    MDB_dbi db;
    char hash[65];
    gh_invite_t iv;
    int rc;

    if (st == NULL || out == NULL)
        return GH_EINVAL;
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    db = gh_store_int_admin(st);
    rc = lookup(st, txn, token, len, now, &iv, hash);
    if (rc == 0) {
        iv.state = GH_INVITE_USED;
        iv.used = now;
        rc = del_key(txn, db, "t:", hash);
    }
    if (rc == 0)
        rc = del_key(txn, db, "e:", iv.email);
    if (rc == 0)
        rc = put_txn(txn, db, &iv);
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    if (rc == 0)
        *out = iv;
    return rc;
}

/* ---- last sign-in ("l:" uid -> decimal seconds) and reviews ("r:"
 * tenant "/" 20-digit time -> JSON {reviewer, flagged, disabled}) ---- */

int gh_lastlogin_set(gh_store_t *st, const char *uid, int64_t when)
{
    MDB_txn *txn = NULL;
    char kb[INV_KEY_MAX], v[24];
    MDB_val k, val;
    int rc, n;

    if (st == NULL || uid == NULL || !hex_ok(uid, GH_ID_HEXLEN) || when < 0)
        return GH_EINVAL;
    n = snprintf(v, sizeof v, "%lld", (long long)when);
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    k = kval(kb, "l:", uid);
    val.mv_size = (size_t)n;
    val.mv_data = v;
    rc = gh_store_int_err(mdb_put(txn, gh_store_int_admin(st), &k, &val, 0));
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    return rc;
}

int gh_lastlogin_get(gh_store_t *st, const char *uid, int64_t *when)
{
    MDB_txn *txn = NULL;
    char kb[INV_KEY_MAX], v[24], *end;
    MDB_val k, val;
    long long t;
    int rc;

    if (st == NULL || uid == NULL || when == NULL)
        return GH_EINVAL;
    *when = 0;
    if (!hex_ok(uid, GH_ID_HEXLEN))
        return GH_ENOTFOUND;
    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    k = kval(kb, "l:", uid);
    rc = gh_store_int_err(mdb_get(txn, gh_store_int_admin(st), &k, &val));
    if (rc == 0) {
        if (val.mv_size == 0 || val.mv_size >= sizeof v) {
            rc = GH_ESTORE;
        } else {
            memcpy(v, val.mv_data, val.mv_size);
            v[val.mv_size] = '\0';
            t = strtoll(v, &end, 10);
            if (*end != '\0' || t < 0)
                rc = GH_ESTORE;
            else
                *when = (int64_t)t;
        }
    }
    gh_store_int_abort(&txn);
    return rc;
}

int gh_review_record(gh_store_t *st, const char *tenant,
                     const char *reviewer, int64_t when, unsigned flagged)
{
    MDB_txn *txn = NULL;
    char kb[2 + GH_TENANT_MAX + 1 + 21], *buf;
    MDB_val k, val;
    json_t *o;
    int rc, n;

    if (st == NULL || tenant == NULL || reviewer == NULL ||
        !gh_tenant_name_valid(tenant) || !text_ok(reviewer, GH_EMAIL_MAX, 0))
        return GH_EINVAL;
    n = snprintf(kb, sizeof kb, "r:%s/%020lld", tenant, (long long)when);
    o = json_pack("{s:s,s:I,s:i}", "by", reviewer, "at", (json_int_t)when,
                  "flagged", (int)flagged);
    if (o == NULL)
        return GH_ENOMEM;
    buf = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (buf == NULL)
        return GH_ENOMEM;
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc == 0) {
        k.mv_size = (size_t)n;
        k.mv_data = kb;
        val.mv_size = strlen(buf);
        val.mv_data = buf;
        rc = gh_store_int_err(mdb_put(txn, gh_store_int_admin(st), &k, &val,
                                      0));
    }
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    free(buf);
    return rc;
}

int gh_review_last(gh_store_t *st, const char *tenant, char *reviewer,
                   size_t cap, int64_t *when)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    char kb[2 + GH_TENANT_MAX + 1 + 21];
    MDB_val k, v;
    json_t *o = NULL, *by, *at;
    int rc, n, mrc;

    if (st == NULL || tenant == NULL || reviewer == NULL || when == NULL ||
        !gh_tenant_name_valid(tenant))
        return GH_EINVAL;
    *when = 0;
    reviewer[0] = '\0';
    /* the last key of the tenant's range: seek past it, step back */
    n = snprintf(kb, sizeof kb, "r:%s/~", tenant);
    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    rc = gh_store_int_err(mdb_cursor_open(txn, gh_store_int_admin(st), &cur));
    if (rc != 0) {
        cur = NULL;
        goto out;
    }
    k.mv_size = (size_t)n;
    k.mv_data = kb;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == 0)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (mrc != 0) {
        rc = gh_store_int_err(mrc);
        goto out;
    }
    if (k.mv_size <= (size_t)n - 1 ||
        memcmp(k.mv_data, kb, (size_t)n - 1) != 0) {
        rc = GH_ENOTFOUND;
        goto out;
    }
    if (gh_store_int_json(&v, &o) != 0) {
        rc = GH_ESTORE;
        goto out;
    }
    by = json_object_get(o, "by");
    at = json_object_get(o, "at");
    if (!json_is_string(by) || !json_is_integer(at)) {
        rc = GH_ESTORE;
        goto out;
    }
    snprintf(reviewer, cap, "%s", json_string_value(by));
    *when = (int64_t)json_integer_value(at);
out:
    json_decref(o);
    if (cur != NULL)
        mdb_cursor_close(cur);
    gh_store_int_abort(&txn);
    return rc;
}

/* ---- API tokens ("k:" hex SHA-256 of the token -> JSON {u, n, c, x}):
 * "ghk_" + 43 base64url characters; only the hash is stored ---- */

static int apitoken_decode(const MDB_val *v, gh_apitoken_t *t)
{
    json_t *o;
    int rc;

    memset(t, 0, sizeof *t);
    if (gh_store_int_json(v, &o) != 0)
        return GH_ESTORE;
    rc = jstr(o, "u", t->uid, sizeof t->uid);
    if (rc == 0) rc = jstr(o, "n", t->name, sizeof t->name);
    if (rc == 0) rc = jint(o, "c", &t->created);
    if (rc == 0) rc = jint(o, "x", &t->expires);
    json_decref(o);
    return rc;
}

int gh_apitoken_create(gh_store_t *st, const char *uid, const char *name,
                       int64_t now, int64_t expires,
                       char token[GH_APITOKEN_LEN + 1], char id[17])
{
    MDB_txn *txn = NULL;
    uint8_t raw[32];
    char hash[65], kb[2 + 65], *buf;
    MDB_val k, v;
    json_t *o;
    int rc;

    if (st == NULL || uid == NULL || name == NULL || token == NULL ||
        id == NULL || !hex_ok(uid, GH_ID_HEXLEN) ||
        !text_ok(name, GH_APITOKEN_NAME_MAX, 1) || expires <= now)
        return GH_EINVAL;
    memcpy(token, GH_APITOKEN_PREFIX, sizeof GH_APITOKEN_PREFIX - 1);
    gh_random(raw, sizeof raw);
    rc = gh_b64url_encode(raw, sizeof raw,
                          token + sizeof GH_APITOKEN_PREFIX - 1,
                          GH_APITOKEN_LEN + 2 - sizeof GH_APITOKEN_PREFIX);
    gh_wipe(raw, sizeof raw);
    if (rc != 43)
        return GH_ECRYPTO;
    token_hash(token, GH_APITOKEN_LEN, hash);
    memcpy(id, hash, 16);
    id[16] = '\0';
    o = json_pack("{s:s,s:s,s:I,s:I}", "u", uid, "n", name,
                  "c", (json_int_t)now, "x", (json_int_t)expires);
    buf = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (buf == NULL) {
        gh_wipe(token, GH_APITOKEN_LEN + 1);
        return GH_ENOMEM;
    }
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc == 0) {
        k = kval(kb, "k:", hash);
        v.mv_size = strlen(buf);
        v.mv_data = buf;
        rc = gh_store_int_err(mdb_put(txn, gh_store_int_admin(st), &k, &v,
                                      MDB_NOOVERWRITE));
    }
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    free(buf);
    if (rc != 0)
        gh_wipe(token, GH_APITOKEN_LEN + 1);
    return rc;
}

int gh_apitoken_resolve(gh_store_t *st, const char *token, size_t len,
                        int64_t now, gh_apitoken_t *out)
{
    MDB_txn *txn = NULL;
    char hash[65], kb[2 + 65];
    MDB_val k, v;
    int rc;

    if (st == NULL || out == NULL)
        return GH_EINVAL;
    memset(out, 0, sizeof *out);
    if (token == NULL || len != GH_APITOKEN_LEN ||
        memcmp(token, GH_APITOKEN_PREFIX, sizeof GH_APITOKEN_PREFIX - 1) != 0)
        return GH_ENOTFOUND;
    token_hash(token, len, hash);
    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    k = kval(kb, "k:", hash);
    rc = gh_store_int_err(mdb_get(txn, gh_store_int_admin(st), &k, &v));
    if (rc == 0)
        rc = apitoken_decode(&v, out);
    gh_store_int_abort(&txn);
    if (rc == 0) {
        memcpy(out->id, hash, 16);
        out->id[16] = '\0';
        if (now >= out->expires)
            rc = GH_EEXPIRED;
    }
    return rc;
}

struct apitoken_walk {
    int (*cb)(const gh_apitoken_t *, void *);
    void *arg;
};

static int apitoken_fn(const MDB_val *k, const MDB_val *v, void *arg)
{
    struct apitoken_walk *w = arg;
    gh_apitoken_t t;
    int rc;

    rc = apitoken_decode(v, &t);
    if (rc != 0)
        return rc;
    memcpy(t.id, (char *)k->mv_data + 2, 16);
    t.id[16] = '\0';
    return w->cb(&t, w->arg);
}

int gh_apitoken_list(gh_store_t *st,
                     int (*cb)(const gh_apitoken_t *, void *), void *arg)
{
    struct apitoken_walk w = { cb, arg };

    if (st == NULL || cb == NULL)
        return GH_EINVAL;
    return scan(st, "k:", 2 + 64, apitoken_fn, &w);
}

int gh_apitoken_revoke(gh_store_t *st, const char *id, gh_apitoken_t *out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    char kb[2 + 17];
    MDB_val k, v;
    int rc, mrc;

    if (st == NULL || id == NULL || out == NULL || !hex_ok(id, 16))
        return GH_EINVAL;
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    rc = gh_store_int_err(mdb_cursor_open(txn, gh_store_int_admin(st), &cur));
    if (rc != 0) {
        cur = NULL;
        goto out;
    }
    k = kval(kb, "k:", id);
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc != 0 || k.mv_size != 2 + 64 ||
        memcmp(k.mv_data, kb, 2 + 16) != 0) {
        rc = mrc != 0 && mrc != MDB_NOTFOUND ? gh_store_int_err(mrc)
                                             : GH_ENOTFOUND;
        goto out;
    }
    rc = apitoken_decode(&v, out);
    if (rc == 0) {
        memcpy(out->id, id, 17);
        rc = gh_store_int_err(mdb_cursor_del(cur, 0));
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    gh_store_int_abort(&txn);
    return rc;
}

/* ---- break-glass ("b:state" -> JSON): one emergency account, off until
 * one administrator asks and a second approves ---- */

static int bg_decode(const MDB_val *v, gh_breakglass_t *b)
{
    json_t *o;
    int64_t state;
    int rc;

    memset(b, 0, sizeof *b);
    if (gh_store_int_json(v, &o) != 0)
        return GH_ESTORE;
    rc = jstr(o, "u", b->uid, sizeof b->uid);
    if (rc == 0) rc = jint(o, "s", &state);
    if (rc == 0) rc = jstr(o, "rqu", b->requester, sizeof b->requester);
    if (rc == 0) rc = jstr(o, "rq", b->requester_email,
                           sizeof b->requester_email);
    if (rc == 0) rc = jstr(o, "ap", b->approver_email,
                           sizeof b->approver_email);
    if (rc == 0) rc = jint(o, "ra", &b->requested);
    if (rc == 0) rc = jint(o, "x", &b->until);
    json_decref(o);
    if (rc == 0 && (state < GH_BG_OFF || state > GH_BG_ON))
        rc = GH_ESTORE;
    if (rc == 0)
        b->state = (int)state;
    return rc;
}

static int bg_put(MDB_txn *txn, MDB_dbi db, const gh_breakglass_t *b)
{
    json_t *o = json_pack("{s:s,s:i,s:s,s:s,s:s,s:I,s:I}", "u", b->uid,
                          "s", b->state, "rqu", b->requester,
                          "rq", b->requester_email, "ap", b->approver_email,
                          "ra", (json_int_t)b->requested,
                          "x", (json_int_t)b->until);
    char *buf = o ? json_dumps(o, JSON_COMPACT) : NULL;
    MDB_val k, v;
    int rc;

    json_decref(o);
    if (buf == NULL)
        return GH_ENOMEM;
    k.mv_size = 7;
    k.mv_data = (void *)"b:state";
    v.mv_size = strlen(buf);
    v.mv_data = buf;
    rc = gh_store_int_err(mdb_put(txn, db, &k, &v, 0));
    free(buf);
    return rc;
}

int gh_breakglass_get(gh_store_t *st, gh_breakglass_t *out)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (st == NULL || out == NULL)
        return GH_EINVAL;
    memset(out, 0, sizeof *out);
    rc = gh_store_int_begin(st, 1, &txn);
    if (rc != 0)
        return rc;
    k.mv_size = 7;
    k.mv_data = (void *)"b:state";
    rc = gh_store_int_err(mdb_get(txn, gh_store_int_admin(st), &k, &v));
    if (rc == 0)
        rc = bg_decode(&v, out);
    gh_store_int_abort(&txn);
    return rc;
}

/* One write transaction over the record: fn decides the new state. */
int gh_breakglass_update(gh_store_t *st,
                         int (*fn)(gh_breakglass_t *b, int have, void *arg),
                         void *arg, gh_breakglass_t *out)
{
    MDB_txn *txn = NULL;
    MDB_dbi db;
    MDB_val k, v;
    gh_breakglass_t b;
    int rc, have;

    if (st == NULL || fn == NULL)
        return GH_EINVAL;
    rc = gh_store_int_begin(st, 0, &txn);
    if (rc != 0)
        return rc;
    db = gh_store_int_admin(st);
    k.mv_size = 7;
    k.mv_data = (void *)"b:state";
    rc = gh_store_int_err(mdb_get(txn, db, &k, &v));
    have = rc == 0;
    if (rc == 0)
        rc = bg_decode(&v, &b);
    else if (rc == GH_ENOTFOUND) {
        memset(&b, 0, sizeof b);
        rc = 0;
    }
    if (rc == 0)
        rc = fn(&b, have, arg);
    if (rc == 0)
        rc = bg_put(txn, db, &b);
    if (rc == 0)
        rc = gh_store_int_commit(&txn);
    gh_store_int_abort(&txn);
    if (rc == 0 && out != NULL)
        *out = b;
    return rc;
}
