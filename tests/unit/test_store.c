/* Unit tests for core/store.c: the LMDB store's typed API, its refusals, and
 * its handling of corrupt records. Each test gets a fresh mkdtemp data dir. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "gatehouse/error.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

typedef struct {
    char        dir[64];
    gh_store_t *st;
} fx_t;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)flag; (void)f;
    return remove(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Fresh data dir, created store, tenant "demo". */
static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/gh-test-store-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(gh_store_open(&fx->st, fx->dir, GH_STORE_CREATE), 0);
    assert_int_equal(gh_tenant_add(fx->st, "demo", "Demo"), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;

    gh_store_close(fx->st);
    rm_rf(fx->dir);
    free(fx);
    gh_clock_set(0);
    return 0;
}

static void make_user(gh_user_t *u, const char *tenant, const char *email,
                      const char *roles)
{
    memset(u, 0, sizeof *u);
    snprintf(u->tenant, sizeof u->tenant, "%s", tenant);
    snprintf(u->email, sizeof u->email, "%s", email);
    snprintf(u->name, sizeof u->name, "Someone");
    snprintf(u->roles, sizeof u->roles, "%s", roles);
}

static void add_user(gh_store_t *st, const char *email, char id[GH_ID_HEXLEN + 1])
{
    gh_user_t u;

    make_user(&u, "demo", email, "member");
    assert_int_equal(gh_user_add(st, &u, id), 0);
}

static void make_session(gh_session_t *s, const char *uid, int64_t t)
{
    memset(s, 0, sizeof *s);
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    snprintf(s->tenant, sizeof s->tenant, "demo");
    snprintf(s->amr, sizeof s->amr, "pwd");
    s->created = s->last_seen = t;
}

static void key_n(uint8_t key[32], int n)
{
    char buf[16];

    snprintf(buf, sizeof buf, "k%d", n);
    gh_sha256(buf, strlen(buf), key);
}

/* Write raw bytes into a named database behind the store's back (the store
 * must be closed), to simulate corruption or a foreign schema. */
static void raw_put(const char *dir, const char *db, const void *k, size_t kn,
                    const void *v, size_t vn)
{
    char path[PATH_MAX];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };

    snprintf(path, sizeof path, "%s/%s", dir, GH_STORE_FILE);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

#define RAWS(dir, db, k, v) raw_put(dir, db, k, strlen(k), v, strlen(v))

/* ---- open / schema ---- */

static void open_without_create_on_empty_dir_is_notinit(void **state)
{
    char dir[] = "/tmp/gh-test-empty-XXXXXX";
    gh_store_t *st = (gh_store_t *)0x1;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(gh_store_open(&st, dir, 0), GH_ENOTINIT);
    assert_null(st);
    assert_int_equal(gh_store_open(&st, dir, GH_STORE_RDONLY), GH_ENOTINIT);
    /* And nothing was created as a side effect. */
    {
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, GH_STORE_FILE);
        assert_int_not_equal(stat(p, &sb), 0);
    }
    rm_rf(dir);
}

static void open_missing_datadir_is_notinit(void **state)
{
    gh_store_t *st = NULL;

    (void)state;
    assert_int_equal(gh_store_open(&st, "/nonexistent/gh-test", 0), GH_ENOTINIT);
    assert_int_equal(gh_store_open(&st, "/nonexistent/gh-test", GH_STORE_CREATE),
                     GH_ENOTINIT);
    assert_int_equal(gh_store_open(&st, "", 0), GH_EINVAL);
    assert_int_equal(gh_store_open(&st, NULL, 0), GH_EINVAL);
}

static void env_dir_is_0700_and_files_0600(void **state)
{
    fx_t *fx = *state;
    char p[PATH_MAX];
    struct stat sb;

    snprintf(p, sizeof p, "%s/%s", fx->dir, GH_STORE_FILE);
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(p, sizeof p, "%s/%s/data.mdb", fx->dir, GH_STORE_FILE);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);
}

static void schema_mismatch_refused(void **state)
{
    fx_t *fx = *state;

    char other[16], junk[16], cur[16];
    int n_other, n_junk, n_cur;

    n_other = snprintf(other, sizeof other, "%d", GH_STORE_SCHEMA + 1);
    n_junk = snprintf(junk, sizeof junk, "%dx", GH_STORE_SCHEMA);
    n_cur = snprintf(cur, sizeof cur, "%d", GH_STORE_SCHEMA);
    gh_store_close(fx->st);
    fx->st = NULL;
    raw_put(fx->dir, "meta", "schema", 6, other, (size_t)n_other);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), GH_ESCHEMA);
    assert_null(fx->st);
    /* CREATE must not "repair" a foreign store either. */
    assert_int_equal(gh_store_open(&fx->st, fx->dir, GH_STORE_CREATE), GH_ESCHEMA);
    raw_put(fx->dir, "meta", "schema", 6, junk, (size_t)n_junk);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), GH_ESCHEMA);
    raw_put(fx->dir, "meta", "schema", 6, cur, (size_t)n_cur);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_store_check(fx->st), 0);
}

static void store_values_survive_reopen(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1], hash[GH_HASH_MAX], buf[32];
    gh_user_t u;
    gh_tenant_t t;
    gh_session_t s;
    uint8_t key[32];

    gh_clock_set(1700000000);
    add_user(fx->st, "ann@example.com", id);
    assert_int_equal(gh_credential_set(fx->st, id, "$argon2id$v=19$m=8,t=1,p=1$x$y"), 0);
    assert_int_equal(gh_meta_set(fx->st, "argon2.opslimit", "3"), 0);
    key_n(key, 1);
    make_session(&s, id, 1700000000);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    gh_store_close(fx->st);
    fx->st = NULL;

    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_string_equal(t.display, "Demo");
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_string_equal(u.email, "ann@example.com");
    assert_string_equal(u.roles, "member");
    assert_int_equal(u.created, 1700000000);
    assert_int_equal(gh_credential_get(fx->st, id, hash), 0);
    assert_string_equal(hash, "$argon2id$v=19$m=8,t=1,p=1$x$y");
    assert_int_equal(gh_meta_get(fx->st, "argon2.opslimit", buf, sizeof buf), 0);
    assert_string_equal(buf, "3");
    memset(&s, 0, sizeof s);
    assert_int_equal(gh_session_get(fx->st, key, &s), 0);
    assert_string_equal(s.uid, id);
}

static void rdonly_store_reads_but_refuses_writes(void **state)
{
    fx_t *fx = *state;
    gh_store_t *ro = NULL;
    gh_tenant_t t;

    assert_int_equal(gh_store_open(&ro, fx->dir, GH_STORE_RDONLY), 0);
    assert_int_equal(gh_store_check(ro), 0);
    assert_int_equal(gh_tenant_get(ro, "demo", &t), 0);
    assert_int_not_equal(gh_tenant_add(ro, "other", NULL), 0);
    gh_store_close(ro);
    assert_int_equal(gh_store_open(&ro, fx->dir, GH_STORE_RDONLY | GH_STORE_CREATE),
                     GH_EINVAL);
}

/* ---- meta ---- */

static void meta_get_reports_unset_and_small_buffer(void **state)
{
    fx_t *fx = *state;
    char buf[4];

    assert_int_equal(gh_meta_get(fx->st, "nope", buf, sizeof buf), GH_ENOTFOUND);
    assert_int_equal(gh_meta_set(fx->st, "k", "12345"), 0);
    assert_int_equal(gh_meta_get(fx->st, "k", buf, sizeof buf), GH_ETOOBIG);
    assert_int_equal(gh_meta_set(fx->st, "k", "123"), 0);
    assert_int_equal(gh_meta_get(fx->st, "k", buf, sizeof buf), 0);
    assert_string_equal(buf, "123");
}

static void meta_set_refuses_schema_key_and_bad_keys(void **state)
{
    fx_t *fx = *state;

    assert_int_equal(gh_meta_set(fx->st, "schema", "9"), GH_EINVAL);
    assert_int_equal(gh_meta_set(fx->st, "", "x"), GH_EINVAL);
    assert_int_equal(gh_meta_set(fx->st, "a b", "x"), GH_EINVAL);
    assert_int_equal(gh_meta_set(fx->st, "k", "line\nbreak"), GH_EINVAL);
    assert_int_equal(gh_store_check(fx->st), 0);
}

/* ---- tenants ---- */

static int collect_tenants(const gh_tenant_t *t, void *arg)
{
    char *out = arg;

    strcat(out, t->name);
    strcat(out, ";");
    return 0;
}

static int stop_at_first(const gh_tenant_t *t, void *arg)
{
    (void)t; (void)arg;
    return 42;
}

static void tenant_duplicate_and_bad_names_refused(void **state)
{
    fx_t *fx = *state;
    static const char *bad[] = { "", "-x", "Demo", "a_b", "a b", "a.b",
        "0123456789012345678901234567890123456789012345678901234567890123" };
    size_t i;
    gh_tenant_t t;

    assert_int_equal(gh_tenant_add(fx->st, "demo", "Again"), GH_EEXIST);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gh_tenant_add(fx->st, bad[i], NULL), GH_EINVAL);
        assert_int_equal(gh_tenant_get(fx->st, bad[i], &t), GH_ENOTFOUND);
    }
    assert_int_equal(gh_tenant_add(fx->st, "ok", "bad\r\ndisplay"), GH_EINVAL);
    assert_int_equal(gh_tenant_add(fx->st, "ok", "\xff\xfe"), GH_EINVAL);
    assert_int_equal(gh_tenant_get(fx->st, "ok", &t), GH_ENOTFOUND);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_string_equal(t.display, "Demo");
}

static void tenant_list_walks_in_name_order_and_stops_on_cb(void **state)
{
    fx_t *fx = *state;
    char out[256] = "";
    gh_tenant_t t;

    assert_int_equal(gh_tenant_add(fx->st, "zeta", NULL), 0);
    assert_int_equal(gh_tenant_add(fx->st, "acme", "Acme Ltd \xc3\xa9"), 0);
    assert_int_equal(gh_tenant_list(fx->st, collect_tenants, out), 0);
    assert_string_equal(out, "acme;demo;zeta;");
    assert_int_equal(gh_tenant_list(fx->st, stop_at_first, NULL), 42);
    assert_int_equal(gh_tenant_get(fx->st, "zeta", &t), 0);
    assert_string_equal(t.display, "zeta");   /* NULL display = name */
}

/* ---- users ---- */

static void user_add_unknown_tenant_refused(void **state)
{
    fx_t *fx = *state;
    gh_user_t u, got;
    char id[GH_ID_HEXLEN + 1];

    make_user(&u, "acme", "a@b.co", "member");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EBADTENANT);
    make_user(&u, "Not-Valid", "a@b.co", "member");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EBADTENANT);
    /* Nothing half-written: the email is still free. */
    assert_int_equal(gh_user_by_email(fx->st, "a@b.co", &got), GH_ENOTFOUND);
}

static void duplicate_email_refused(void **state)
{
    fx_t *fx = *state;
    gh_user_t u;
    char id[GH_ID_HEXLEN + 1], id2[GH_ID_HEXLEN + 1];

    add_user(fx->st, "dup@example.com", id);
    assert_int_equal(gh_tenant_add(fx->st, "acme", NULL), 0);
    make_user(&u, "acme", "dup@example.com", "member");
    assert_int_equal(gh_user_add(fx->st, &u, id2), GH_EEXIST);
    assert_int_equal(gh_user_by_email(fx->st, "dup@example.com", &u), 0);
    assert_string_equal(u.id, id);
    assert_string_equal(u.tenant, "demo");
}

static void user_add_requires_normalised_valid_fields(void **state)
{
    fx_t *fx = *state;
    gh_user_t u;
    char id[GH_ID_HEXLEN + 1];

    make_user(&u, "demo", "Ann@Example.com", "member");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EBADEMAIL);
    make_user(&u, "demo", "not-an-email", "member");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EBADEMAIL);
    make_user(&u, "demo", "ann@example.com", "member,");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EINVAL);
    make_user(&u, "demo", "ann@example.com", "a b");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EINVAL);
    make_user(&u, "demo", "ann@example.com", "x\r\nX-Gatehouse-User: admin");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EINVAL);
    make_user(&u, "demo", "ann@example.com", "member");
    snprintf(u.name, sizeof u.name, "Ann\nEvil");
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EINVAL);
    /* A name that fills its array without a NUL is refused, not overread. */
    memset(u.name, 'a', sizeof u.name);
    assert_int_equal(gh_user_add(fx->st, &u, id), GH_EINVAL);
    make_user(&u, "demo", "ann@example.com", "");
    assert_int_equal(gh_user_add(fx->st, &u, id), 0);
}

static void user_lookup_by_email_normalises_and_id_roundtrips(void **state)
{
    fx_t *fx = *state;
    gh_user_t u;
    char id[GH_ID_HEXLEN + 1];

    add_user(fx->st, "bob@example.org", id);
    assert_int_equal(strlen(id), GH_ID_HEXLEN);
    assert_int_equal(gh_user_by_email(fx->st, "  Bob@EXAMPLE.org ", &u), 0);
    assert_string_equal(u.id, id);
    assert_int_equal(u.disabled, 0);
    assert_int_equal(gh_user_by_email(fx->st, "bob@example", &u), GH_ENOTFOUND);
    assert_int_equal(gh_user_get(fx->st, "0123", &u), GH_ENOTFOUND);
    assert_int_equal(gh_user_get(fx->st, "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", &u),
                     GH_ENOTFOUND);
    assert_int_equal(gh_user_get(fx->st, "00000000000000000000000000000000", &u),
                     GH_ENOTFOUND);
}

static int collect_users(const gh_user_t *u, void *arg)
{
    char *out = arg;

    strcat(out, u->email);
    strcat(out, ";");
    return 0;
}

static void user_list_filters_by_tenant_in_email_order(void **state)
{
    fx_t *fx = *state;
    gh_user_t u;
    char id[GH_ID_HEXLEN + 1], out[512] = "";

    assert_int_equal(gh_tenant_add(fx->st, "acme", NULL), 0);
    add_user(fx->st, "c@example.com", id);
    add_user(fx->st, "a@example.com", id);
    make_user(&u, "acme", "b@acme.com", "member");
    assert_int_equal(gh_user_add(fx->st, &u, id), 0);
    assert_int_equal(gh_user_list(fx->st, NULL, collect_users, out), 0);
    assert_string_equal(out, "a@example.com;b@acme.com;c@example.com;");
    out[0] = '\0';
    assert_int_equal(gh_user_list(fx->st, "demo", collect_users, out), 0);
    assert_string_equal(out, "a@example.com;c@example.com;");
    out[0] = '\0';
    assert_int_equal(gh_user_list(fx->st, "nope", collect_users, out), GH_EBADTENANT);
    assert_string_equal(out, "");
}

static void disabling_user_deletes_their_sessions(void **state)
{
    fx_t *fx = *state;
    char alice[GH_ID_HEXLEN + 1], bob[GH_ID_HEXLEN + 1];
    gh_session_t s;
    gh_user_t u;
    uint8_t key[32];
    int i;

    add_user(fx->st, "alice@example.com", alice);
    add_user(fx->st, "bob@example.com", bob);
    /* Interleave so deletions happen next to each other and between keeps. */
    for (i = 0; i < 20; i++) {
        key_n(key, i);
        make_session(&s, i % 3 == 0 ? bob : alice, 1000 + i);
        assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    }
    assert_int_equal(gh_user_set_disabled(fx->st, alice, 1), 0);
    for (i = 0; i < 20; i++) {
        key_n(key, i);
        if (i % 3 == 0) {
            assert_int_equal(gh_session_read(fx->st, key, &s, &u), 0);
            assert_string_equal(u.id, bob);
        } else {
            assert_int_equal(gh_session_get(fx->st, key, &s), GH_ENOTFOUND);
        }
    }
    assert_int_equal(gh_user_get(fx->st, alice, &u), 0);
    assert_int_equal(u.disabled, 1);
    /* Disabling again is fine and still leaves no session behind. */
    key_n(key, 99);
    make_session(&s, alice, 5000);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    assert_int_equal(gh_user_set_disabled(fx->st, alice, 1), 0);
    assert_int_equal(gh_session_get(fx->st, key, &s), GH_ENOTFOUND);
    /* Enabling does not touch bob's sessions and flips the flag back. */
    assert_int_equal(gh_user_set_disabled(fx->st, alice, 0), 0);
    assert_int_equal(gh_user_get(fx->st, alice, &u), 0);
    assert_int_equal(u.disabled, 0);
    assert_int_equal(gh_session_del_user(fx->st, bob), 7);
    assert_int_equal(gh_session_del_user(fx->st, bob), 0);
    assert_int_equal(gh_user_set_disabled(fx->st,
                     "00000000000000000000000000000000", 1), GH_ENOTFOUND);
}

/* ---- credentials ---- */

static void credential_roundtrip_and_refusals(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1], hash[GH_HASH_MAX], longh[GH_HASH_MAX + 8];
    gh_user_t u;

    add_user(fx->st, "c@example.com", id);
    assert_int_equal(gh_credential_get(fx->st, id, hash), GH_ENOTFOUND);
    assert_int_equal(gh_login_lookup(fx->st, "c@example.com", &u, hash), 0);
    assert_string_equal(hash, "");
    assert_string_equal(u.id, id);
    assert_int_equal(gh_credential_set(fx->st, "00000000000000000000000000000000",
                                       "$argon2id$x"), GH_ENOTFOUND);
    assert_int_equal(gh_credential_set(fx->st, id, ""), GH_EINVAL);
    assert_int_equal(gh_credential_set(fx->st, id, "has space"), GH_EINVAL);
    memset(longh, 'a', sizeof longh - 1);
    longh[sizeof longh - 1] = '\0';
    assert_int_equal(gh_credential_set(fx->st, id, longh), GH_ETOOBIG);
    assert_int_equal(gh_credential_set(fx->st, id, "$argon2id$one"), 0);
    assert_int_equal(gh_credential_set(fx->st, id, "$argon2id$two"), 0);
    assert_int_equal(gh_login_lookup(fx->st, "C@Example.COM", &u, hash), 0);
    assert_string_equal(hash, "$argon2id$two");
    assert_int_equal(gh_login_lookup(fx->st, "nobody@example.com", &u, hash),
                     GH_ENOTFOUND);
    assert_int_equal(gh_login_lookup(fx->st, "garbage", &u, hash), GH_ENOTFOUND);
}

/* ---- sessions ---- */

static void session_put_get_del_and_refusals(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_session_t s, got;
    gh_user_t u;
    uint8_t key[32];

    add_user(fx->st, "s@example.com", id);
    key_n(key, 1);
    make_session(&s, id, 100);
    snprintf(s.amr, sizeof s.amr, "pwd+otp");
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), 0);
    assert_string_equal(got.amr, "pwd+otp");
    assert_string_equal(u.email, "s@example.com");
    assert_int_equal(gh_session_del(fx->st, key), 0);
    assert_int_equal(gh_session_del(fx->st, key), GH_ENOTFOUND);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), GH_ENOTFOUND);

    make_session(&s, id, 100);
    snprintf(s.amr, sizeof s.amr, "pwd otp");
    assert_int_equal(gh_session_put(fx->st, key, &s), GH_EINVAL);
    make_session(&s, "nothex", 100);
    assert_int_equal(gh_session_put(fx->st, key, &s), GH_EINVAL);
}

static void session_of_vanished_user_reads_as_notfound(void **state)
{
    fx_t *fx = *state;
    gh_session_t s, got;
    gh_user_t u;
    uint8_t key[32];

    key_n(key, 2);
    make_session(&s, "0123456789abcdef0123456789abcdef", 100);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), GH_ENOTFOUND);
}

static void session_touch_moves_forward_only(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_session_t s;
    uint8_t key[32];

    add_user(fx->st, "t@example.com", id);
    key_n(key, 3);
    make_session(&s, id, 100);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    assert_int_equal(gh_session_touch(fx->st, key, 200), 0);
    assert_int_equal(gh_session_get(fx->st, key, &s), 0);
    assert_int_equal(s.last_seen, 200);
    assert_int_equal(s.created, 100);
    assert_int_equal(gh_session_touch(fx->st, key, 150), 0);
    assert_int_equal(gh_session_get(fx->st, key, &s), 0);
    assert_int_equal(s.last_seen, 200);
    /* A deleted session is not resurrected by a late touch. */
    assert_int_equal(gh_session_del(fx->st, key), 0);
    assert_int_equal(gh_session_touch(fx->st, key, 300), GH_ENOTFOUND);
    assert_int_equal(gh_session_get(fx->st, key, &s), GH_ENOTFOUND);
}

/* ---- corrupt records ---- */

/* A version counter that is not 8 bytes is refused everywhere it is read,
 * including the request path (which must then fail closed) and the bump a
 * policy write makes; it is never taken as 0 and silently restarted. */
static void malformed_version_counters_are_store_errors(void **state)
{
    fx_t *fx = *state;
    uint64_t pv, kv;

    gh_store_close(fx->st);
    fx->st = NULL;
    raw_put(fx->dir, "policy", "version", 7, "abc", 3);
    raw_put(fx->dir, "policy", "keys.version", 12, "abc", 3);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_store_versions(fx->st, &pv, &kv), GH_ESTORE);
    assert_int_equal(gh_policy_version(fx->st, &pv), GH_ESTORE);
    assert_int_equal(gh_request_read(fx->st, NULL, NULL, NULL, &pv, &kv),
                     GH_ESTORE);
    assert_int_equal(gh_policy_put(fx->st, "version: 1\n", 11, &pv),
                     GH_ESTORE);
}

static void corrupt_records_are_store_errors_not_overflows(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1], rec[1024], longname[600];
    gh_user_t u;
    gh_session_t s;
    gh_tenant_t t;
    uint8_t key[32];

    add_user(fx->st, "v@example.com", id);
    gh_store_close(fx->st);
    fx->st = NULL;

    /* Over-long name field. */
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    snprintf(rec, sizeof rec,
             "{\"i\":\"%s\",\"t\":\"demo\",\"e\":\"v@example.com\",\"n\":\"%s\","
             "\"r\":\"\",\"x\":false,\"c\":1,\"u\":1}", id, longname);
    raw_put(fx->dir, "users", id, GH_ID_HEXLEN, rec, strlen(rec));
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), GH_ESTORE);
    assert_int_equal(gh_user_by_email(fx->st, "v@example.com", &u), GH_ESTORE);
    gh_store_close(fx->st);
    fx->st = NULL;

    /* Not JSON; wrong type; embedded NUL; duplicate keys; id mismatch. */
    RAWS(fx->dir, "tenants", "demo", "\x01\x02garbage");
    RAWS(fx->dir, "tenants", "t2", "{\"n\":\"t2\",\"d\":5,\"c\":1}");
    RAWS(fx->dir, "tenants", "t3", "{\"n\":\"t3\",\"d\":\"a\\u0000b\",\"c\":1}");
    RAWS(fx->dir, "tenants", "t4", "{\"n\":\"t4\",\"n\":\"t5\",\"d\":\"\",\"c\":1}");
    RAWS(fx->dir, "tenants", "t6", "{\"n\":\"t6\",\"d\":\"\",\"c\":\"1\"}");
    snprintf(rec, sizeof rec,
             "{\"i\":\"0123456789abcdef0123456789abcdef\",\"t\":\"demo\","
             "\"e\":\"v@example.com\",\"n\":\"\",\"r\":\"\",\"x\":false,"
             "\"c\":1,\"u\":1}");
    raw_put(fx->dir, "users", id, GH_ID_HEXLEN, rec, strlen(rec));
    key_n(key, 7);
    raw_put(fx->dir, "sessions", key, 32, "{\"u\":1}", 7);
    RAWS(fx->dir, "users_by_email", "w@example.com", "short");

    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), GH_ESTORE);
    assert_int_equal(gh_tenant_get(fx->st, "t2", &t), GH_ESTORE);
    assert_int_equal(gh_tenant_get(fx->st, "t3", &t), GH_ESTORE);
    assert_int_equal(gh_tenant_get(fx->st, "t4", &t), GH_ESTORE);
    assert_int_equal(gh_tenant_get(fx->st, "t6", &t), GH_ESTORE);
    assert_int_equal(gh_user_get(fx->st, id, &u), GH_ESTORE);
    assert_int_equal(gh_session_get(fx->st, key, &s), GH_ESTORE);
    assert_int_equal(gh_user_by_email(fx->st, "w@example.com", &u), GH_ESTORE);
    /* A corrupt session does not block cleaning up a user's sessions. */
    assert_int_equal(gh_session_del_user(fx->st, id), 0);
}


static void role_grant_applies_and_revoke_removes(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    const char *act[GH_BINDINGS_MAX];
    gh_user_t u;

    add_user(fx->st, "rita@example.com", id);
    assert_int_equal(gh_role_grant(fx->st, id, "admin", 0), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_int_equal(u.nbindings, 2);
    assert_string_equal(u.roles, "member,admin");
    assert_int_equal(gh_user_active_roles(&u, 1000, act), 2);

    /* granting again only moves the end date, never duplicates */
    assert_int_equal(gh_role_grant(fx->st, id, "admin", 5000), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_int_equal(u.nbindings, 2);
    assert_int_equal(u.bindings[1].until, 5000);

    assert_int_equal(gh_role_revoke(fx->st, id, "member"), 0);
    assert_int_equal(gh_role_revoke(fx->st, id, "member"), GH_ENOTFOUND);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_string_equal(u.roles, "admin");
}

static void expired_grant_is_not_active(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    const char *act[GH_BINDINGS_MAX];
    gh_user_t u;

    add_user(fx->st, "tim@example.com", id);
    assert_int_equal(gh_role_grant(fx->st, id, "finance", 2000), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_int_equal(gh_user_active_roles(&u, 1999, act), 2);
    /* until is exclusive: at 2000 the grant has ended */
    assert_int_equal(gh_user_active_roles(&u, 2000, act), 1);
    assert_string_equal(act[0], "member");
}

static void role_grant_refuses_bad_names_and_too_many(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1], role[16];
    int i;

    add_user(fx->st, "ola@example.com", id);
    assert_int_equal(gh_role_grant(fx->st, id, "", 0), GH_EINVAL);
    assert_int_equal(gh_role_grant(fx->st, id, "Admin", 0), GH_EINVAL);
    assert_int_equal(gh_role_grant(fx->st, id, "a,b", 0), GH_EINVAL);
    assert_int_equal(gh_role_grant(fx->st, id, "x y", 0), GH_EINVAL);
    assert_int_equal(gh_role_grant(fx->st, id, "ok", -1), GH_EINVAL);
    assert_int_equal(gh_role_grant(fx->st, "0123456789abcdef0123456789abcdef",
                                   "ok", 0), GH_ENOTFOUND);
    for (i = 1; i < GH_BINDINGS_MAX; i++) {
        snprintf(role, sizeof role, "r%d", i);
        assert_int_equal(gh_role_grant(fx->st, id, role, 0), 0);
    }
    assert_int_equal(gh_role_grant(fx->st, id, "one-too-many", 0), GH_ETOOBIG);
}

static void policy_put_bumps_version_and_get_returns_text(void **state)
{
    fx_t *fx = *state;
    uint64_t v = 99, v2 = 0;
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(gh_policy_version(fx->st, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(gh_policy_get(fx->st, &text, &len, &v), GH_ENOTFOUND);
    assert_null(text);
    assert_int_equal(gh_policy_put(fx->st, "version: 1\n", 11, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(gh_policy_put(fx->st, "version: 1 # b\n", 15, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(gh_policy_get(fx->st, &text, &len, &v2), 0);
    assert_int_equal(v2, 2);
    assert_int_equal(len, 15);
    assert_string_equal(text, "version: 1 # b\n");
    free(text);
    assert_int_equal(gh_policy_put(fx->st, "", 0, NULL), GH_EINVAL);
}

/* ---- schema 3: password lifecycle and throttling ---- */

/* Drop a named database behind the store's back (the store must be
 * closed): what a schema-2 store lacks. */
static void raw_drop(const char *dir, const char *db)
{
    char path[PATH_MAX];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    snprintf(path, sizeof path, "%s/%s", dir, GH_STORE_FILE);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void schema_2_store_is_upgraded_in_place(void **state)
{
    fx_t *fx = *state;
    static const char old_tenant[] = "{\"n\":\"old\",\"d\":\"Old\",\"c\":1}";
    static const char old_cred[] = "{\"h\":\"$argon2id$old\",\"u\":5}";
    char id[GH_ID_HEXLEN + 1], cur[16];
    gh_credential_t *c = calloc(1, sizeof *c);
    gh_tenant_t t;
    gh_throttle_rec_t r;
    gh_throttle_key_t k = { GH_THROTTLE_ACCOUNT, "a@example.com", 13 };
    int n;

    assert_non_null(c);
    add_user(fx->st, "ann@example.com", id);
    gh_store_close(fx->st);
    fx->st = NULL;
    /* a schema-2 store: no throttle database, records without the
     * schema-3 fields */
    raw_drop(fx->dir, "throttle");
    raw_put(fx->dir, "tenants", "old", 3, old_tenant, sizeof old_tenant - 1);
    raw_put(fx->dir, "credentials", id, GH_ID_HEXLEN, old_cred,
            sizeof old_cred - 1);
    raw_put(fx->dir, "meta", "schema", 6, "2", 1);
    /* read-only cannot upgrade */
    assert_int_equal(gh_store_open(&fx->st, fx->dir, GH_STORE_RDONLY),
                     GH_ESCHEMA);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_store_check(fx->st), 0);
    assert_int_equal(gh_meta_get(fx->st, "schema", cur, sizeof cur), 0);
    n = snprintf(cur + 8, 8, "%d", GH_STORE_SCHEMA);
    assert_memory_equal(cur, cur + 8, (size_t)n + 1);
    assert_int_equal(gh_tenant_get(fx->st, "old", &t), 0);
    assert_int_equal(t.pw.profile, GH_PWPROFILE_NIST);
    assert_int_equal(t.pw.min_length, GH_PWSET_DEFAULT);
    assert_int_equal(gh_credential_read(fx->st, id, c), 0);
    assert_string_equal(c->hash, "$argon2id$old");
    assert_int_equal(c->must_change, 0);
    assert_int_equal(c->nhistory, 0);
    assert_int_equal(gh_throttle_get(fx->st, &k, &r), GH_ENOTFOUND);
    free(c);
}

/* ---- the index of a user's sessions (schema 7) ---- */

static int count_cb(const uint8_t key[32], const gh_session_t *s, void *arg)
{
    (void)key;
    (void)s;
    (*(int *)arg)++;
    return 0;
}

static int user_sessions(gh_store_t *st, const char *uid)
{
    int n = 0;

    assert_int_equal(gh_session_list_user(st, uid, count_cb, &n), 0);
    return n;
}

static void sessions_are_listed_and_ended_per_user(void **state)
{
    fx_t *fx = *state;
    char alice[GH_ID_HEXLEN + 1], bob[GH_ID_HEXLEN + 1];
    gh_session_t s;
    uint8_t key[32], keep[32];
    int i;

    add_user(fx->st, "alice@example.com", alice);
    add_user(fx->st, "bob@example.com", bob);
    for (i = 0; i < 10; i++) {
        key_n(key, i);
        make_session(&s, i < 7 ? alice : bob, 1000 + i);
        assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    }
    assert_int_equal(user_sessions(fx->st, alice), 7);
    assert_int_equal(user_sessions(fx->st, bob), 3);
    /* a logout leaves the index with the record */
    key_n(key, 0);
    assert_int_equal(gh_session_del(fx->st, key), 0);
    assert_int_equal(user_sessions(fx->st, alice), 6);
    /* a key reused by another user moves in the index */
    key_n(key, 1);
    make_session(&s, bob, 2000);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    assert_int_equal(user_sessions(fx->st, alice), 5);
    assert_int_equal(user_sessions(fx->st, bob), 4);
    /* all but one of alice's; bob's untouched */
    key_n(keep, 2);
    assert_int_equal(gh_session_del_user_except(fx->st, alice, keep), 4);
    assert_int_equal(user_sessions(fx->st, alice), 1);
    assert_int_equal(gh_session_get(fx->st, keep, &s), 0);
    assert_int_equal(user_sessions(fx->st, bob), 4);
    for (i = 7; i < 10; i++) {
        key_n(key, i);
        assert_int_equal(gh_session_get(fx->st, key, &s), 0);
    }
    /* disabling ends the rest, through the index */
    assert_int_equal(gh_user_set_disabled(fx->st, bob, 1), 0);
    assert_int_equal(user_sessions(fx->st, bob), 0);
    for (i = 7; i < 10; i++) {
        key_n(key, i);
        assert_int_equal(gh_session_get(fx->st, key, &s), GH_ENOTFOUND);
    }
    assert_int_equal(gh_session_get(fx->st, keep, &s), 0);
    /* a malformed id lists nothing */
    assert_int_equal(gh_session_list_user(fx->st, "nope", count_cb, &i), 0);
}

static int older_than_1005(const gh_session_t *s, void *arg)
{
    (void)arg;
    return s->created < 1005;
}

static void dead_sessions_of_a_user_are_pruned(void **state)
{
    fx_t *fx = *state;
    char alice[GH_ID_HEXLEN + 1], bob[GH_ID_HEXLEN + 1];
    gh_session_t s;
    uint8_t key[32];
    int i;

    add_user(fx->st, "alice@example.com", alice);
    add_user(fx->st, "bob@example.com", bob);
    for (i = 0; i < 10; i++) {
        key_n(key, i);
        make_session(&s, i % 2 ? alice : bob, 1000 + i);
        assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    }
    /* alice's 1001 and 1003 go; bob's old ones stay (not his sign-in) */
    assert_int_equal(gh_session_prune_user(fx->st, alice, older_than_1005,
                                           NULL), 2);
    assert_int_equal(user_sessions(fx->st, alice), 3);
    assert_int_equal(user_sessions(fx->st, bob), 5);
    key_n(key, 1);
    assert_int_equal(gh_session_get(fx->st, key, &s), GH_ENOTFOUND);
    key_n(key, 5);
    assert_int_equal(gh_session_get(fx->st, key, &s), 0);
    key_n(key, 0);
    assert_int_equal(gh_session_get(fx->st, key, &s), 0);
    assert_int_equal(gh_session_prune_user(fx->st, alice, older_than_1005,
                                           NULL), 0);
    assert_int_equal(gh_session_prune_user(fx->st, alice, NULL, NULL),
                     GH_EINVAL);
}

static void schema_6_store_gets_its_session_index(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_session_t s;
    uint8_t key[32];
    int i;

    add_user(fx->st, "ann@example.com", id);
    for (i = 0; i < 3; i++) {
        key_n(key, i);
        make_session(&s, id, 1000 + i);
        assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    }
    gh_store_close(fx->st);
    fx->st = NULL;
    raw_drop(fx->dir, "user_sessions");
    raw_put(fx->dir, "meta", "schema", 6, "6", 1);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, GH_STORE_RDONLY),
                     GH_ESCHEMA);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(user_sessions(fx->st, id), 3);
    assert_int_equal(gh_session_del_user(fx->st, id), 3);
    key_n(key, 2);
    assert_int_equal(gh_session_get(fx->st, key, &s), GH_ENOTFOUND);
}

static void account_with_an_end_is_off_from_then_on(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_user_t u;
    static const char bad[] =
        "{\"i\":\"00000000000000000000000000000001\",\"t\":\"demo\","
        "\"e\":\"z@example.com\",\"n\":\"Z\",\"b\":[],\"x\":false,"
        "\"c\":1,\"u\":1,\"z\":-5}";

    add_user(fx->st, "ann@example.com", id);
    assert_int_equal(gh_user_set_disabled(fx->st, id, 1), 0);
    assert_int_equal(gh_user_enable_until(fx->st, id, 5000), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_int_equal(u.disabled, 0);
    assert_int_equal(u.expires, 5000);
    assert_int_equal(gh_user_off(&u, 4999), 0);
    assert_int_equal(gh_user_off(&u, 5000), 1);
    assert_int_equal(gh_user_off(NULL, 0), 1);
    assert_int_equal(gh_user_enable_until(fx->st, id, 0), GH_EINVAL);
    /* a plain enable clears the end; a disable too */
    assert_int_equal(gh_user_set_disabled(fx->st, id, 0), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_int_equal(u.expires, 0);
    assert_int_equal(gh_user_off(&u, INT64_MAX), 0);
    assert_int_equal(gh_user_enable_until(fx->st, id, 5000), 0);
    assert_int_equal(gh_user_set_disabled(fx->st, id, 1), 0);
    assert_int_equal(gh_user_get(fx->st, id, &u), 0);
    assert_int_equal(u.expires, 0);
    assert_int_equal(u.disabled, 1);
    /* an end that cannot be read fails closed */
    gh_store_close(fx->st);
    fx->st = NULL;
    RAWS(fx->dir, "users", "00000000000000000000000000000001", bad);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_user_get(fx->st, "00000000000000000000000000000001",
                                 &u), GH_ESTORE);
}

static void tenant_password_settings_roundtrip_and_refusals(void **state)
{
    fx_t *fx = *state;
    gh_pwsettings_t pw;
    gh_tenant_t t;

    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_int_equal(t.pw.profile, GH_PWPROFILE_NIST);
    assert_int_equal(t.pw.history, GH_PWSET_DEFAULT);
    gh_pwsettings_default(&pw);
    pw.profile = GH_PWPROFILE_CLASSES;
    pw.min_length = 12;
    pw.max_age_days = 90;
    pw.blocklist = 0;
    assert_int_equal(gh_tenant_set_pwsettings(fx->st, "demo", &pw), 0);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_int_equal(t.pw.profile, GH_PWPROFILE_CLASSES);
    assert_int_equal(t.pw.min_length, 12);
    assert_int_equal(t.pw.max_age_days, 90);
    assert_int_equal(t.pw.blocklist, 0);
    assert_int_equal(t.pw.max_length, GH_PWSET_DEFAULT);
    assert_string_equal(t.display, "Demo");
    assert_int_equal(gh_tenant_set_pwsettings(fx->st, "nope", &pw),
                     GH_ENOTFOUND);
    pw.profile = 2;
    assert_int_equal(gh_tenant_set_pwsettings(fx->st, "demo", &pw), GH_EINVAL);
    pw.profile = GH_PWPROFILE_NIST;
    pw.history = -2;
    assert_int_equal(gh_tenant_set_pwsettings(fx->st, "demo", &pw), GH_EINVAL);
    pw.history = GH_PWSET_MAXVAL + 1;
    assert_int_equal(gh_tenant_set_pwsettings(fx->st, "demo", &pw), GH_EINVAL);
}

static void password_change_keeps_history_and_ends_sessions(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1], other[GH_ID_HEXLEN + 1];
    gh_credential_t *c = calloc(1, sizeof *c);
    gh_session_t s, got;
    gh_pwchange_t chg;
    uint8_t k1[32], k2[32], k3[32], ko[32], kn[32];

    assert_non_null(c);
    add_user(fx->st, "ann@example.com", id);
    add_user(fx->st, "bob@example.com", other);
    memset(&chg, 0, sizeof chg);
    chg.hash = "$argon2id$h1";
    chg.keep = 2;
    chg.now = 100;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 0);
    chg.hash = "$argon2id$h2";
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 0);
    chg.hash = "$argon2id$h3";
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 0);
    chg.hash = "$argon2id$h4";
    chg.now = 200;
    chg.must_change = 1;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 0);
    assert_int_equal(gh_credential_read(fx->st, id, c), 0);
    assert_string_equal(c->hash, "$argon2id$h4");
    assert_int_equal(c->updated, 200);
    assert_int_equal(c->must_change, 1);
    assert_int_equal(c->nhistory, 2);               /* kept: 2 */
    assert_string_equal(c->history[0], "$argon2id$h3");
    assert_string_equal(c->history[1], "$argon2id$h2");

    /* three sessions of ann, one of bob; keep k1, create kn */
    key_n(k1, 1); key_n(k2, 2); key_n(k3, 3); key_n(ko, 4); key_n(kn, 5);
    make_session(&s, id, 1);
    assert_int_equal(gh_session_put(fx->st, k1, &s), 0);
    assert_int_equal(gh_session_put(fx->st, k2, &s), 0);
    assert_int_equal(gh_session_put(fx->st, k3, &s), 0);
    make_session(&s, other, 1);
    assert_int_equal(gh_session_put(fx->st, ko, &s), 0);
    make_session(&s, id, 300);
    chg.hash = "$argon2id$h5";
    chg.must_change = 0;
    chg.keep_key = k1;
    chg.new_key = kn;
    chg.new_session = &s;
    chg.expect = "$argon2id$h4";
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 2);
    assert_int_equal(gh_session_get(fx->st, k1, &got), 0);
    assert_int_equal(gh_session_get(fx->st, k2, &got), GH_ENOTFOUND);
    assert_int_equal(gh_session_get(fx->st, k3, &got), GH_ENOTFOUND);
    assert_int_equal(gh_session_get(fx->st, ko, &got), 0);   /* bob's */
    assert_int_equal(gh_session_get(fx->st, kn, &got), 0);
    assert_int_equal(got.created, 300);

    /* a concurrent change wins: nothing happens */
    chg.hash = "$argon2id$h6";
    chg.expect = "$argon2id$h4";
    chg.keep_key = NULL;
    chg.new_key = NULL;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), GH_EDENIED);
    assert_int_equal(gh_session_get(fx->st, k1, &got), 0);
    /* only the flag, every session ended */
    chg.hash = NULL;
    chg.expect = NULL;
    chg.must_change = 1;
    chg.keep = 0;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 2);
    assert_int_equal(gh_credential_read(fx->st, id, c), 0);
    assert_string_equal(c->hash, "$argon2id$h5");
    assert_int_equal(c->must_change, 1);
    assert_int_equal(c->nhistory, 2);               /* untouched */
    /* refusals */
    chg.hash = "has space";
    assert_int_equal(gh_credential_change(fx->st, id, &chg), GH_EINVAL);
    chg.hash = "$argon2id$x";
    chg.keep = GH_PW_HISTORY_MAX + 1;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), GH_EINVAL);
    chg.keep = 0;
    chg.new_key = kn;
    chg.new_session = &s;
    make_session(&s, other, 1);                      /* someone else's */
    assert_int_equal(gh_credential_change(fx->st, id, &chg), GH_EINVAL);
    chg.new_key = NULL;
    assert_int_equal(gh_credential_change(fx->st, "00000000000000000000000000000000",
                                          &chg), GH_ENOTFOUND);
    chg.hash = NULL;     /* a flag without a password to flag */
    assert_int_equal(gh_credential_change(fx->st, other, &chg), GH_ENOTFOUND);
    free(c);
}

static void rehash_swaps_only_the_hash_and_only_if_unchanged(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_credential_t *c = calloc(1, sizeof *c);
    gh_pwchange_t chg;

    assert_non_null(c);
    add_user(fx->st, "ann@example.com", id);
    memset(&chg, 0, sizeof chg);
    chg.hash = "$argon2id$a";
    chg.keep = 5;
    chg.now = 10;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 0);
    chg.hash = "$argon2id$b";
    chg.now = 20;
    chg.must_change = 1;
    assert_int_equal(gh_credential_change(fx->st, id, &chg), 0);
    assert_int_equal(gh_credential_rehash(fx->st, id, "$argon2id$a",
                                          "$argon2id$c"), GH_EDENIED);
    assert_int_equal(gh_credential_rehash(fx->st, id, "$argon2id$b",
                                          "$argon2id$c"), 0);
    assert_int_equal(gh_credential_read(fx->st, id, c), 0);
    assert_string_equal(c->hash, "$argon2id$c");
    assert_int_equal(c->updated, 20);        /* not a password change */
    assert_int_equal(c->must_change, 1);
    assert_int_equal(c->nhistory, 1);
    assert_string_equal(c->history[0], "$argon2id$a");
    free(c);
}

static void session_flags_roundtrip_and_unknown_flags_fail_closed(void **state)
{
    fx_t *fx = *state;
    static const char future[] = "{\"u\":\"0123456789abcdef0123456789abcdef\","
        "\"t\":\"demo\",\"a\":\"pwd\",\"c\":1,\"s\":1,\"f\":4}";
    char id[GH_ID_HEXLEN + 1];
    gh_session_t s, got;
    uint8_t key[32], k2[32];

    add_user(fx->st, "ann@example.com", id);
    make_session(&s, id, 1);
    s.flags = GH_SESSION_PWCHANGE;
    key_n(key, 1);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);
    assert_int_equal(gh_session_get(fx->st, key, &got), 0);
    assert_int_equal(got.flags, GH_SESSION_PWCHANGE);
    s.flags = 1u << 5;
    assert_int_equal(gh_session_put(fx->st, key, &s), GH_EINVAL);
    gh_store_close(fx->st);
    fx->st = NULL;
    key_n(k2, 2);
    raw_put(fx->dir, "sessions", k2, 32, future, sizeof future - 1);
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_session_get(fx->st, k2, &got), GH_ESTORE);
}

static void login_read_returns_credential_and_tenant_settings(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_credential_t *c = calloc(1, sizeof *c);
    gh_pwsettings_t pw;
    gh_user_t u;

    assert_non_null(c);
    add_user(fx->st, "ann@example.com", id);
    assert_int_equal(gh_login_read(fx->st, "ANN@example.com", &u, c, &pw), 0);
    assert_string_equal(c->hash, "");
    gh_pwsettings_default(&pw);
    pw.max_age_days = 30;
    assert_int_equal(gh_tenant_set_pwsettings(fx->st, "demo", &pw), 0);
    assert_int_equal(gh_credential_set(fx->st, id, "$argon2id$z"), 0);
    memset(&pw, 0, sizeof pw);
    assert_int_equal(gh_login_read(fx->st, "ann@example.com", &u, c, &pw), 0);
    assert_string_equal(u.id, id);
    assert_string_equal(c->hash, "$argon2id$z");
    assert_int_equal(pw.max_age_days, 30);
    assert_int_equal(gh_login_read(fx->st, "nobody@example.com", &u, c, &pw),
                     GH_ENOTFOUND);
    free(c);
}

static int throttle_bump(gh_throttle_rec_t *r, void *arg)
{
    r[0].fails++;
    r[0].last = 7;
    return arg != NULL ? GH_EEXIST : 0;
}

static int throttle_zero(gh_throttle_rec_t *r, void *arg)
{
    memset(&r[0], 0, sizeof r[0]);
    return 0;
}

static void throttle_records_update_abort_and_vanish(void **state)
{
    fx_t *fx = *state;
    gh_throttle_key_t k = { GH_THROTTLE_ACCOUNT, "x@example.com", 13 };
    gh_throttle_rec_t r;

    assert_int_equal(gh_throttle_update(fx->st, &k, 1, throttle_bump, NULL, 0,
                                        NULL), 0);
    assert_int_equal(gh_throttle_update(fx->st, &k, 1, throttle_bump, NULL, 0,
                                        NULL), 0);
    assert_int_equal(gh_throttle_get(fx->st, &k, &r), 0);
    assert_int_equal(r.fails, 2);
    assert_int_equal(r.last, 7);
    /* fn's error aborts: nothing written */
    assert_int_equal(gh_throttle_update(fx->st, &k, 1, throttle_bump, NULL, 0,
                                        (void *)1), GH_EEXIST);
    assert_int_equal(gh_throttle_get(fx->st, &k, &r), 0);
    assert_int_equal(r.fails, 2);
    /* a zeroed record is deleted */
    assert_int_equal(gh_throttle_update(fx->st, &k, 1, throttle_zero, NULL, 0,
                                        NULL), 0);
    assert_int_equal(gh_throttle_get(fx->st, &k, &r), GH_ENOTFOUND);
    assert_int_equal(gh_throttle_del(fx->st, &k), GH_ENOTFOUND);
    assert_int_equal(gh_throttle_update(fx->st, &k, 0, throttle_zero, NULL, 0,
                                        NULL), GH_EINVAL);
    k.len = 0;
    assert_int_equal(gh_throttle_get(fx->st, &k, &r), GH_EINVAL);
}


static void read_cache_never_serves_a_stale_record(void **state)
{
    fx_t *fx = *state;
    char id[GH_ID_HEXLEN + 1];
    gh_session_t s, got;
    gh_user_t u;
    uint8_t key[32];

    assert_int_equal(gh_store_read_cache(fx->st), 0);
    add_user(fx->st, "cache@example.com", id);
    key_n(key, 7);
    make_session(&s, id, 1700000000);
    assert_int_equal(gh_session_put(fx->st, key, &s), 0);

    /* twice: the second read is served from the cache, identically */
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), 0);
    assert_string_equal(u.roles, "member");
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), 0);
    assert_string_equal(u.roles, "member");
    assert_int_equal(got.last_seen, 1700000000);

    /* a grant, a touch and a revoke show on the very next read */
    assert_int_equal(gh_role_grant(fx->st, id, "admin", 0), 0);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), 0);
    assert_string_equal(u.roles, "member,admin");
    assert_int_equal(gh_session_touch(fx->st, key, 1700000100), 0);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), 0);
    assert_int_equal(got.last_seen, 1700000100);
    assert_string_equal(u.roles, "member,admin");
    assert_int_equal(gh_role_revoke(fx->st, id, "admin"), 0);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), 0);
    assert_string_equal(u.roles, "member");

    /* disabling deletes the session: no cached ghost of it */
    assert_int_equal(gh_user_set_disabled(fx->st, id, 1), 0);
    assert_int_equal(gh_session_read(fx->st, key, &got, &u), GH_ENOTFOUND);
}

/* ---- a tenant's access settings (networks, session lifetimes) ---- */

static void tenant_access_round_trips_and_bumps_the_policy_version(void **state)
{
    fx_t *fx = *state;
    gh_tenant_t t;
    uint64_t v0, v1, v2, v3;

    assert_int_equal(gh_policy_version(fx->st, &v0), 0);
    assert_int_equal(gh_tenant_set_networks(fx->st, "demo",
                                            " 10.0.0.0/8, 192.0.2.1 2001:db8::/32"), 0);
    assert_int_equal(gh_policy_version(fx->st, &v1), 0);
    assert_true(v1 == v0 + 1);
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", 1800, 43200), 0);
    assert_int_equal(gh_policy_version(fx->st, &v2), 0);
    assert_true(v2 == v1 + 1);
    gh_store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_int_equal(t.networks_set, 1);
    assert_string_equal(t.networks, "10.0.0.0/8,192.0.2.1,2001:db8::/32");
    assert_int_equal(t.idle, 1800);
    assert_int_equal(t.lifetime, 43200);
    assert_string_equal(gh_tenant_networks_text(&t),
                        "10.0.0.0/8,192.0.2.1,2001:db8::/32");
    /* keep one, unset the other; unset the networks */
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", GH_TENANT_KEEP, 0), 0);
    assert_int_equal(gh_tenant_set_networks(fx->st, "demo", NULL), 0);
    assert_int_equal(gh_policy_version(fx->st, &v3), 0);
    assert_true(v3 == v2 + 2);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_int_equal(t.networks_set, 0);
    assert_string_equal(t.networks, "");
    assert_int_equal(t.idle, 1800);
    assert_int_equal(t.lifetime, 0);
    assert_string_equal(gh_tenant_networks_text(&t), "policy file");
    {
        char text[96];

        gh_tenant_session_text(&t, text, sizeof text);
        assert_string_equal(text, "idle 30m, lifetime policy file");
    }
    /* the other settings are untouched */
    assert_int_equal(t.mfa, GH_MFA_OPTIONAL);
    assert_int_equal(t.pw.profile, GH_PWPROFILE_NIST);
}

static void tenant_record_without_access_members_reads_as_the_policy_files(void **state)
{
    fx_t *fx = *state;
    gh_tenant_t t;

    gh_store_close(fx->st);
    fx->st = NULL;
    /* as written before networks and lifetimes were stored */
    RAWS(fx->dir, "tenants", "old",
         "{\"n\":\"old\",\"d\":\"Old\",\"c\":1,\"p\":{\"p\":1,\"n\":-1,"
         "\"x\":-1,\"k\":-1,\"h\":-1,\"a\":-1,\"b\":-1},\"m\":1}");
    RAWS(fx->dir, "tenants", "older", "{\"n\":\"older\",\"d\":\"X\",\"c\":1}");
    assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
    assert_int_equal(gh_tenant_get(fx->st, "old", &t), 0);
    assert_int_equal(t.mfa, GH_MFA_REQUIRED);
    assert_int_equal(t.pw.profile, GH_PWPROFILE_CLASSES);
    assert_int_equal(t.networks_set, 0);
    assert_int_equal(t.idle, 0);
    assert_int_equal(t.lifetime, 0);
    assert_int_equal(gh_tenant_get(fx->st, "older", &t), 0);
    assert_int_equal(t.networks_set, 0);
    assert_int_equal(t.lifetime, 0);
    /* and an old record takes the new settings */
    assert_int_equal(gh_tenant_set_networks(fx->st, "old", "192.0.2.0/24"), 0);
    assert_int_equal(gh_tenant_get(fx->st, "old", &t), 0);
    assert_int_equal(t.mfa, GH_MFA_REQUIRED);
    assert_string_equal(t.networks, "192.0.2.0/24");
}

static void tenant_access_out_of_bounds_refused_and_nothing_written(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "", " , ", "10.0.0.1/8", "10.0.0.0/33", "example.com", "10.0.0.0/8;x",
        "300.1.1.1", "10.0.0.0/8,,bogus", "::1/129",
    };
    char many[64 * 16 + 32];
    gh_tenant_t t;
    uint64_t v0, v1;
    size_t i, off = 0;

    assert_int_equal(gh_tenant_set_session(fx->st, "demo", 600, 3600), 0);
    assert_int_equal(gh_policy_version(fx->st, &v0), 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(gh_tenant_set_networks(fx->st, "demo", bad[i]), GH_EINVAL);
    for (i = 0; i < GH_TENANT_NETS_COUNT + 1; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "10.0.%zu.0/24,", i);
    assert_int_equal(gh_tenant_set_networks(fx->st, "demo", many), GH_EINVAL);
    /* idle longer than lifetime, also against the stored value */
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", 7200, 3600), GH_EINVAL);
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", 7200, GH_TENANT_KEEP),
                     GH_EINVAL);
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", GH_TENANT_KEEP, 300),
                     GH_EINVAL);
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", 59, 0), GH_EINVAL);
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", 0,
                                           GH_TENANT_LIFETIME_MAX + 1), GH_EINVAL);
    assert_int_equal(gh_tenant_set_session(fx->st, "demo", -5, 0), GH_EINVAL);
    assert_int_equal(gh_tenant_set_networks(fx->st, "nosuch", "10.0.0.0/8"),
                     GH_ENOTFOUND);
    assert_int_equal(gh_tenant_set_session(fx->st, "nosuch", 600, 0), GH_ENOTFOUND);
    assert_int_equal(gh_policy_version(fx->st, &v1), 0);
    assert_true(v1 == v0);
    assert_int_equal(gh_tenant_get(fx->st, "demo", &t), 0);
    assert_int_equal(t.networks_set, 0);
    assert_int_equal(t.idle, 600);
    assert_int_equal(t.lifetime, 3600);
}

static void tenant_record_with_unusable_access_fails_closed(void **state)
{
    fx_t *fx = *state;
    static const char *const recs[] = {
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"w\":\"10.0.0.1/8\"}",
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"w\":\"\"}",
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"w\":\"10.0.0.0/8, 192.0.2.1\"}",
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"w\":7}",
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"i\":7200,\"l\":3600}",
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"i\":-1}",
        "{\"n\":\"t1\",\"d\":\"X\",\"c\":1,\"l\":\"1h\"}",
    };
    gh_tenant_t t;
    size_t i;

    for (i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        gh_store_close(fx->st);
        fx->st = NULL;
        RAWS(fx->dir, "tenants", "t1", recs[i]);
        assert_int_equal(gh_store_open(&fx->st, fx->dir, 0), 0);
        assert_int_equal(gh_tenant_get(fx->st, "t1", &t), GH_ESTORE);
    }
}

static int count_kv(const char *key, const char *val, void *arg)
{
    (void)val;
    assert_int_equal(strncmp(key, "domain:", 7), 0);
    ++*(int *)arg;
    return 0;
}

static void kv_walk_sees_only_its_prefix(void **state)
{
    fx_t *fx = *state;
    int n = 0;

    assert_int_equal(gh_kv_put(fx->st, "domain:a.example", "demo", 4, 0), 0);
    assert_int_equal(gh_kv_put(fx->st, "domain:b.example", "x", 1, 0), 0);
    assert_int_equal(gh_kv_put(fx->st, "domaim:z", "x", 1, 0), 0);
    assert_int_equal(gh_kv_put(fx->st, "signin:demo", "saml", 4, 0), 0);
    assert_int_equal(gh_kv_walk(fx->st, "domain:", count_kv, &n, 100), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(gh_kv_walk(fx->st, "domain:", count_kv, &n, 1), 0);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_without_create_on_empty_dir_is_notinit),
        cmocka_unit_test_setup_teardown(tenant_access_round_trips_and_bumps_the_policy_version, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_record_without_access_members_reads_as_the_policy_files, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_access_out_of_bounds_refused_and_nothing_written, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_record_with_unusable_access_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(kv_walk_sees_only_its_prefix, setup, teardown),
        cmocka_unit_test(open_missing_datadir_is_notinit),
        cmocka_unit_test_setup_teardown(env_dir_is_0700_and_files_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(role_grant_applies_and_revoke_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(read_cache_never_serves_a_stale_record, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_grant_is_not_active, setup, teardown),
        cmocka_unit_test_setup_teardown(role_grant_refuses_bad_names_and_too_many, setup, teardown),
        cmocka_unit_test_setup_teardown(policy_put_bumps_version_and_get_returns_text, setup, teardown),
        cmocka_unit_test_setup_teardown(store_values_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(rdonly_store_reads_but_refuses_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(meta_get_reports_unset_and_small_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(meta_set_refuses_schema_key_and_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_duplicate_and_bad_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_list_walks_in_name_order_and_stops_on_cb, setup, teardown),
        cmocka_unit_test_setup_teardown(user_add_unknown_tenant_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_email_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(user_add_requires_normalised_valid_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(user_lookup_by_email_normalises_and_id_roundtrips, setup, teardown),
        cmocka_unit_test_setup_teardown(user_list_filters_by_tenant_in_email_order, setup, teardown),
        cmocka_unit_test_setup_teardown(disabling_user_deletes_their_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(sessions_are_listed_and_ended_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_6_store_gets_its_session_index, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_sessions_of_a_user_are_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(account_with_an_end_is_off_from_then_on, setup, teardown),
        cmocka_unit_test_setup_teardown(credential_roundtrip_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(session_put_get_del_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(session_of_vanished_user_reads_as_notfound, setup, teardown),
        cmocka_unit_test_setup_teardown(session_touch_moves_forward_only, setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_records_are_store_errors_not_overflows, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_version_counters_are_store_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_2_store_is_upgraded_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_password_settings_roundtrip_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(password_change_keeps_history_and_ends_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(rehash_swaps_only_the_hash_and_only_if_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(session_flags_roundtrip_and_unknown_flags_fail_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(login_read_returns_credential_and_tenant_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(throttle_records_update_abort_and_vanish, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
