/* Unit tests for the admin records: gh_user_page (bounded cursor pages over
 * the email index) and invitations (core/store_admin.c). */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <lmdb.h>

#include "gatehouse/error.h"
#include "gatehouse/invite.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

typedef struct {
    char        dir[64];
    gh_store_t *st;
    char        mgr1[GH_ID_HEXLEN + 1], mgr2[GH_ID_HEXLEN + 1];
} fx_t;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)flag; (void)f;
    return remove(p);
}

static void add_user(gh_store_t *st, const char *tenant, const char *email,
                     const char *roles, char id[GH_ID_HEXLEN + 1])
{
    gh_user_t u;

    memset(&u, 0, sizeof u);
    snprintf(u.tenant, sizeof u.tenant, "%s", tenant);
    snprintf(u.email, sizeof u.email, "%s", email);
    snprintf(u.roles, sizeof u.roles, "%s", roles);
    assert_int_equal(gh_user_add(st, &u, id), 0);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/gh-test-admin-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(gh_store_open(&fx->st, fx->dir,
                                   GH_STORE_CREATE | GH_STORE_NOSYNC), 0);
    assert_int_equal(gh_tenant_add(fx->st, "acme", "Acme"), 0);
    assert_int_equal(gh_tenant_add(fx->st, "globex", "Globex"), 0);
    add_user(fx->st, "acme", "m1@acme.example", "manager", fx->mgr1);
    add_user(fx->st, "acme", "m2@acme.example", "manager", fx->mgr2);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;

    gh_store_close(fx->st);
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* ---- gh_user_page ---- */

typedef struct {
    char emails[64][GH_EMAIL_MAX + 1];
    int  n;
} seen_t;

static int collect(const gh_user_t *u, void *arg)
{
    seen_t *s = arg;

    assert_true(s->n < 64);
    snprintf(s->emails[s->n++], GH_EMAIL_MAX + 1, "%s", u->email);
    return 0;
}

static void pages_walk_every_user_once_in_order(void **state)
{
    fx_t *fx = *state;
    gh_user_page_t pg;
    seen_t s;
    char id[GH_ID_HEXLEN + 1], next[GH_EMAIL_MAX + 1], email[64];
    char after[GH_EMAIL_MAX + 1] = "";
    int i, pages = 0, total = 0;

    for (i = 0; i < 25; i++) {
        snprintf(email, sizeof email, "u%02d@%s.example", i,
                 i % 2 ? "globex" : "acme");
        add_user(fx->st, i % 2 ? "globex" : "acme", email, "member", id);
    }
    /* acme only, 5 a page: 13 acme users + 2 managers */
    do {
        memset(&s, 0, sizeof s);
        memset(&pg, 0, sizeof pg);
        pg.tenant = "acme";
        pg.after = after;
        pg.limit = 5;
        pg.scan = 1000;
        assert_int_equal(gh_user_page(fx->st, &pg, collect, &s, next), 0);
        for (i = 0; i < s.n; i++) {
            assert_non_null(strstr(s.emails[i], "acme"));
            if (total > 0 || i > 0)
                assert_true(strcmp(s.emails[i], after) > 0);
            snprintf(after, sizeof after, "%s", s.emails[i]);
        }
        total += s.n;
        snprintf(after, sizeof after, "%s", next);
        pages++;
    } while (next[0] != '\0' && pages < 20);
    assert_int_equal(total, 15);
    assert_int_equal(pages, 3);
}

static void a_page_reads_at_most_scan_entries(void **state)
{
    fx_t *fx = *state;
    gh_user_page_t pg;
    seen_t s;
    char id[GH_ID_HEXLEN + 1], next[GH_EMAIL_MAX + 1], email[64];
    int i;

    for (i = 0; i < 30; i++) {
        snprintf(email, sizeof email, "g%02d@globex.example", i);
        add_user(fx->st, "globex", email, "member", id);
    }
    memset(&s, 0, sizeof s);
    memset(&pg, 0, sizeof pg);
    pg.tenant = "acme";         /* sorted after all the g... globex users */
    pg.limit = 50;
    pg.scan = 10;
    assert_int_equal(gh_user_page(fx->st, &pg, collect, &s, next), 0);
    assert_int_equal(s.n, 0);                 /* bound reached first */
    assert_string_equal(next, "g09@globex.example");
}

static void prefix_search_stops_past_the_prefix(void **state)
{
    fx_t *fx = *state;
    gh_user_page_t pg;
    seen_t s;
    char next[GH_EMAIL_MAX + 1];

    memset(&s, 0, sizeof s);
    memset(&pg, 0, sizeof pg);
    pg.prefix = "m2";
    pg.limit = 50;
    pg.scan = 50;
    assert_int_equal(gh_user_page(fx->st, &pg, collect, &s, next), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.emails[0], "m2@acme.example");
    assert_string_equal(next, "");
    pg.limit = 0;
    assert_int_equal(gh_user_page(fx->st, &pg, collect, &s, next), GH_EINVAL);
}

/* ---- invitations ---- */

static void invite(fx_t *fx, const char *email, const char *roles,
                   gh_invite_t *iv)
{
    memset(iv, 0, sizeof *iv);
    snprintf(iv->tenant, sizeof iv->tenant, "acme");
    snprintf(iv->email, sizeof iv->email, "%s", email);
    snprintf(iv->roles, sizeof iv->roles, "%s", roles);
    snprintf(iv->inviter, sizeof iv->inviter, "%s", fx->mgr1);
    snprintf(iv->inviter_email, sizeof iv->inviter_email, "m1@acme.example");
    assert_int_equal(gh_invite_add(fx->st, iv), 0);
}

static void pending_invitation_creates_nobody(void **state)
{
    fx_t *fx = *state;
    gh_invite_t iv, got;
    gh_user_t u;

    invite(fx, "new@acme.example", "member", &iv);
    assert_int_equal(gh_invite_get(fx->st, iv.id, &got), 0);
    assert_int_equal(got.state, GH_INVITE_PENDING);
    assert_int_equal(gh_user_by_email(fx->st, "new@acme.example", &u),
                     GH_ENOTFOUND);
    /* one open invitation per email, none for an existing user */
    memset(&got, 0, sizeof got);
    got = iv;
    assert_int_equal(gh_invite_add(fx->st, &got), GH_EEXIST);
    got = iv;
    snprintf(got.email, sizeof got.email, "m2@acme.example");
    assert_int_equal(gh_invite_add(fx->st, &got), GH_EEXIST);
    snprintf(got.email, sizeof got.email, "Not An Email");
    assert_int_equal(gh_invite_add(fx->st, &got), GH_EBADEMAIL);
}

static void inviter_cannot_approve_own_invitation(void **state)
{
    fx_t *fx = *state;
    gh_invite_t iv, got;
    char token[GH_INVITE_TOKEN_LEN + 1];

    invite(fx, "self@acme.example", "member", &iv);
    assert_int_equal(gh_invite_decide(fx->st, iv.id, 1, fx->mgr1,
                                      "m1@acme.example", 1000, 60, token),
                     GH_EDENIED);
    assert_int_equal(gh_invite_get(fx->st, iv.id, &got), 0);
    assert_int_equal(got.state, GH_INVITE_PENDING);
}

static void approved_link_sets_up_once_and_expires(void **state)
{
    fx_t *fx = *state;
    gh_invite_t iv, got;
    gh_user_t u;
    char token[GH_INVITE_TOKEN_LEN + 1], hex[65];
    uint8_t h[32];
    int64_t now = gh_now();

    invite(fx, "joiner@acme.example", "member,space-admin", &iv);
    assert_int_equal(gh_invite_decide(fx->st, iv.id, 1, fx->mgr2,
                                      "m2@acme.example", now, 600, token),
                     0);
    assert_int_equal((int)strlen(token), GH_INVITE_TOKEN_LEN);
    assert_int_equal(gh_user_by_email(fx->st, "joiner@acme.example", &u), 0);
    assert_string_equal(u.roles, "member,space-admin");
    assert_int_equal(gh_invite_get(fx->st, iv.id, &got), 0);
    assert_int_equal(got.state, GH_INVITE_APPROVED);
    assert_string_equal(got.uid, u.id);
    /* only the hash is stored */
    assert_null(strstr(got.token_hash, token));
    gh_sha256(token, strlen(token), h);
    gh_hex(h, 32, hex);
    assert_memory_equal(got.token_hash, hex, 64);
    /* a second decision is refused */
    assert_int_equal(gh_invite_decide(fx->st, iv.id, 0, fx->mgr2,
                                      "m2@acme.example", now, 600, NULL),
                     GH_EDENIED);
    /* expired, then unexpired and used once */
    assert_int_equal(gh_invite_by_token(fx->st, token, strlen(token),
                                        now + 600, &got), GH_EEXPIRED);
    assert_int_equal(gh_invite_consume(fx->st, token, strlen(token),
                                       now + 601, &got), GH_EEXPIRED);
    assert_int_equal(gh_invite_by_token(fx->st, token, strlen(token),
                                        now + 1, &got), 0);
    assert_int_equal(gh_invite_consume(fx->st, token, strlen(token), now + 1,
                                       &got), 0);
    assert_int_equal(got.state, GH_INVITE_USED);
    assert_int_equal(gh_invite_consume(fx->st, token, strlen(token), now + 2,
                                       &got), GH_ENOTFOUND);
    token[0] ^= 1;
    assert_int_equal(gh_invite_by_token(fx->st, token, strlen(token), now,
                                        &got), GH_ENOTFOUND);
    assert_int_equal(gh_invite_by_token(fx->st, "short", 5, now, &got),
                     GH_ENOTFOUND);
}

static void rejected_invitation_frees_the_email(void **state)
{
    fx_t *fx = *state;
    gh_invite_t iv, again;
    gh_user_t u;

    invite(fx, "nope@acme.example", "member", &iv);
    assert_int_equal(gh_invite_decide(fx->st, iv.id, 0, fx->mgr2,
                                      "m2@acme.example", 1000, 60, NULL), 0);
    assert_int_equal(gh_user_by_email(fx->st, "nope@acme.example", &u),
                     GH_ENOTFOUND);
    invite(fx, "nope@acme.example", "member", &again);
    assert_string_not_equal(iv.id, again.id);
}

static void last_login_and_reviews_are_kept(void **state)
{
    fx_t *fx = *state;
    int64_t when;
    char who[GH_EMAIL_MAX + 1];

    assert_int_equal(gh_lastlogin_get(fx->st, fx->mgr1, &when), GH_ENOTFOUND);
    assert_int_equal(when, 0);
    assert_int_equal(gh_lastlogin_set(fx->st, fx->mgr1, 1234), 0);
    assert_int_equal(gh_lastlogin_set(fx->st, fx->mgr1, 5678), 0);
    assert_int_equal(gh_lastlogin_get(fx->st, fx->mgr1, &when), 0);
    assert_int_equal(when, 5678);
    assert_int_equal(gh_lastlogin_set(fx->st, "not-an-id", 1), GH_EINVAL);

    assert_int_equal(gh_review_last(fx->st, "acme", who, sizeof who, &when),
                     GH_ENOTFOUND);
    assert_int_equal(gh_review_record(fx->st, "acme", "m1@acme.example",
                                      100, 2), 0);
    assert_int_equal(gh_review_record(fx->st, "acme", "m2@acme.example",
                                      200, 0), 0);
    assert_int_equal(gh_review_record(fx->st, "acmf", "x@acmf.example",
                                      300, 0), 0);
    assert_int_equal(gh_review_last(fx->st, "acme", who, sizeof who, &when),
                     0);
    assert_string_equal(who, "m2@acme.example");
    assert_int_equal(when, 200);
    assert_int_equal(gh_review_last(fx->st, "globex", who, sizeof who,
                                    &when), GH_ENOTFOUND);
}

/* ---- corrupt admin records fail closed ---- */

/* Overwrite every "admin" record whose key starts with prefix (the store
 * closed), as corruption or a hand-edit would. */
static void raw_admin_put(const char *dir, const char *prefix, const char *v)
{
    char path[512];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, val, nv = { strlen(v), (void *)v };
    int n = 0;

    snprintf(path, sizeof path, "%s/%s", dir, GH_STORE_FILE);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "admin", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &val, n ? MDB_NEXT : MDB_FIRST) == 0) {
        n++;
        if (k.mv_size >= strlen(prefix) &&
            memcmp(k.mv_data, prefix, strlen(prefix)) == 0)
            assert_int_equal(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static int bg_on(gh_breakglass_t *b, int have, void *arg)
{
    (void)have;
    snprintf(b->uid, sizeof b->uid, "%s", (const char *)arg);
    b->state = GH_BG_OFF;
    return 0;
}

static void corrupt_admin_records_are_store_errors(void **state)
{
    fx_t *fx = *state;
    char token[GH_APITOKEN_LEN + 1], id[17];
    gh_apitoken_t t;
    gh_breakglass_t b;
    static const char *const bad_tokens[] = {
        /* duplicate key: which "u" would count? */
        "{\"u\":\"00000000000000000000000000000001\",\"u\":\"x\","
        "\"n\":\"ci\",\"c\":1,\"x\":4000000000}",
        /* a NUL inside a string */
        "{\"u\":\"0000000000000000000000000000000\\u0000\",\"n\":\"ci\","
        "\"c\":1,\"x\":4000000000}",
        "[]", "",
    };
    size_t i;

    assert_int_equal(gh_apitoken_create(fx->st, fx->mgr1, "ci", 1,
                                        4000000000LL, token, id), 0);
    assert_int_equal(gh_apitoken_resolve(fx->st, token, strlen(token), 2, &t),
                     0);
    assert_int_equal(gh_breakglass_update(fx->st, bg_on, fx->mgr2, NULL), 0);
    for (i = 0; i < sizeof bad_tokens / sizeof bad_tokens[0]; i++) {
        gh_store_close(fx->st);
        raw_admin_put(fx->dir, "k:", bad_tokens[i]);
        raw_admin_put(fx->dir, "b:", bad_tokens[i]);
        assert_int_equal(gh_store_open(&fx->st, fx->dir, GH_STORE_NOSYNC), 0);
        assert_int_equal(gh_apitoken_resolve(fx->st, token, strlen(token), 2,
                                             &t), GH_ESTORE);
        assert_int_equal(gh_breakglass_get(fx->st, &b), GH_ESTORE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pages_walk_every_user_once_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_page_reads_at_most_scan_entries,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(prefix_search_stops_past_the_prefix,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(pending_invitation_creates_nobody,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(inviter_cannot_approve_own_invitation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(approved_link_sets_up_once_and_expires,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_invitation_frees_the_email,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(corrupt_admin_records_are_store_errors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(last_login_and_reviews_are_kept,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
