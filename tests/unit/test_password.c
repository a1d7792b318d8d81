/* Unit tests for authn/password.c: Argon2id hashing and its parameters. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>
#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/password.h"
#include "gatehouse/store.h"

/* Cheap parameters: the tests are about behaviour, not cost. */
static const gh_pwhash_params_t cheap = { 1, 8u * 1024 * 1024 };

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

typedef struct {
    char        dir[64];
    gh_store_t *st;
} fixture_t;

static int
store_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/gh-test-password-XXXXXX");
    if (mkdtemp(f->dir) == NULL ||
        gh_store_open(&f->st, f->dir, GH_STORE_CREATE) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
store_teardown(void **state)
{
    fixture_t *f = *state;

    gh_store_close(f->st);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void
hash_then_verify_round_trips(void **state)
{
    char h[GH_HASH_MAX];

    assert_int_equal(gh_password_hash(&cheap, "correct horse", 13, h), 0);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_int_equal(gh_password_verify(h, "correct horse", 13), 0);
}

static void
password_with_embedded_nul_uses_every_byte(void **state)
{
    static const char pw[] = "abc\0def";
    char h[GH_HASH_MAX];

    assert_int_equal(gh_password_hash(&cheap, pw, sizeof pw - 1, h), 0);
    assert_int_equal(gh_password_verify(h, pw, sizeof pw - 1), 0);
    assert_int_equal(gh_password_verify(h, "abc", 3), GH_EDENIED);
}

static void
empty_password_hashes_and_verifies(void **state)
{
    char h[GH_HASH_MAX];

    assert_int_equal(gh_password_hash(&cheap, "", 0, h), 0);
    assert_int_equal(gh_password_verify(h, "", 0), 0);
    assert_int_equal(gh_password_verify(h, "x", 1), GH_EDENIED);
}

static void
wrong_password_is_denied(void **state)
{
    char h[GH_HASH_MAX];

    assert_int_equal(gh_password_hash(&cheap, "secret", 6, h), 0);
    assert_int_equal(gh_password_verify(h, "Secret", 6), GH_EDENIED);
    assert_int_equal(gh_password_verify(h, "secret!", 7), GH_EDENIED);
    assert_int_equal(gh_password_verify(h, "secre", 5), GH_EDENIED);
}

static void
malformed_hash_is_denied(void **state)
{
    char h[GH_HASH_MAX], longh[GH_HASH_MAX];

    assert_int_equal(gh_password_verify("", "pw", 2), GH_EDENIED);
    assert_int_equal(gh_password_verify("garbage", "pw", 2), GH_EDENIED);
    assert_int_equal(gh_password_verify("$argon2id$v=19$m=8192,t=1,p=1$", "pw", 2),
                     GH_EDENIED);
    assert_int_equal(gh_password_verify(NULL, "pw", 2), GH_EDENIED);

    /* A real hash with its tail cut off. */
    assert_int_equal(gh_password_hash(&cheap, "pw", 2, h), 0);
    h[strlen(h) - 5] = '\0';
    assert_int_equal(gh_password_verify(h, "pw", 2), GH_EDENIED);

    /* Not NUL-terminated within what libsodium may read. */
    memset(longh, 'a', sizeof longh - 1);
    longh[sizeof longh - 1] = '\0';
    assert_int_equal(gh_password_verify(longh, "pw", 2), GH_EDENIED);
}

static void
password_longer_than_max_is_refused(void **state)
{
    char *pw = malloc(GH_PASSWORD_MAX + 1);
    char h[GH_HASH_MAX];

    assert_non_null(pw);
    memset(pw, 'p', GH_PASSWORD_MAX + 1);
    assert_int_equal(gh_password_hash(&cheap, pw, GH_PASSWORD_MAX + 1, h),
                     GH_ETOOBIG);
    assert_int_equal(gh_password_hash(&cheap, pw, GH_PASSWORD_MAX, h), 0);
    assert_int_equal(gh_password_verify(h, pw, GH_PASSWORD_MAX), 0);
    /* verify only ever answers yes or no */
    assert_int_equal(gh_password_verify(h, pw, GH_PASSWORD_MAX + 1), GH_EDENIED);
    free(pw);
}

static void
params_below_minimum_are_refused_for_hashing(void **state)
{
    gh_pwhash_params_t p = { 0, 8u * 1024 * 1024 };
    char h[GH_HASH_MAX];

    assert_int_equal(gh_password_hash(&p, "pw", 2, h), GH_EINVAL);
    p.opslimit = 1;
    p.memlimit = GH_ARGON2_MEM_MIN - 1;
    assert_int_equal(gh_password_hash(&p, "pw", 2, h), GH_EINVAL);
}

static void
needs_rehash_when_params_grow(void **state)
{
    gh_pwhash_params_t more_ops = { 2, cheap.memlimit };
    gh_pwhash_params_t more_mem = { 1, 16u * 1024 * 1024 };
    char h[GH_HASH_MAX];

    assert_int_equal(gh_password_hash(&cheap, "pw", 2, h), 0);
    assert_int_equal(gh_password_needs_rehash(h, &cheap), 0);
    assert_int_equal(gh_password_needs_rehash(h, &more_ops), 1);
    assert_int_equal(gh_password_needs_rehash(h, &more_mem), 1);
}

static void
needs_rehash_for_malformed_or_non_argon2id_hash(void **state)
{
    assert_int_equal(gh_password_needs_rehash("garbage", &cheap), 1);
    assert_int_equal(gh_password_needs_rehash("", &cheap), 1);
    assert_int_equal(gh_password_needs_rehash(
        "$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", &cheap), 1);
}

static void
default_params_are_3_passes_64_mib(void **state)
{
    gh_pwhash_params_t p;

    gh_pwhash_params_default(&p);
    assert_int_equal(p.opslimit, 3);
    assert_int_equal(p.memlimit, 64u * 1024 * 1024);
}

static void
params_default_when_store_has_none(void **state)
{
    fixture_t *f = *state;
    gh_pwhash_params_t p = { 0, 0 };

    assert_int_equal(gh_pwhash_params_load(f->st, &p), 0);
    assert_int_equal(p.opslimit, GH_ARGON2_OPS_DEFAULT);
    assert_int_equal(p.memlimit, GH_ARGON2_MEM_DEFAULT);
}

static void
params_save_then_load_round_trips(void **state)
{
    fixture_t *f = *state;
    gh_pwhash_params_t p = { 0, 0 };

    assert_int_equal(gh_pwhash_params_save(f->st, &cheap), 0);
    assert_int_equal(gh_pwhash_params_load(f->st, &p), 0);
    assert_int_equal(p.opslimit, cheap.opslimit);
    assert_int_equal(p.memlimit, cheap.memlimit);
}

static void
params_save_refuses_values_below_minimum(void **state)
{
    fixture_t *f = *state;
    gh_pwhash_params_t p = { 0, cheap.memlimit };

    assert_int_equal(gh_pwhash_params_save(f->st, &p), GH_EINVAL);
    p.opslimit = 1;
    p.memlimit = GH_ARGON2_MEM_MIN - 1;
    assert_int_equal(gh_pwhash_params_save(f->st, &p), GH_EINVAL);
}

static void
params_load_refuses_malformed_meta(void **state)
{
    static const char *const bad_ops[] = {
        "", "0", "-1", "+3", " 3", "3 ", "3x", "0x3", "99999999999999999999999",
    };
    static const char *const bad_mem[] = {
        "", "8191", "-8388608", "8388608k", "18446744073709551616",
    };
    fixture_t *f = *state;
    gh_pwhash_params_t p = cheap;
    size_t i;

    for (i = 0; i < sizeof bad_ops / sizeof bad_ops[0]; i++) {
        assert_int_equal(gh_meta_set(f->st, "argon2.opslimit", bad_ops[i]), 0);
        assert_int_equal(gh_meta_set(f->st, "argon2.memlimit", "8388608"), 0);
        if (gh_pwhash_params_load(f->st, &p) != GH_EINVAL) {
            print_error("accepted argon2.opslimit \"%s\"\n", bad_ops[i]);
            fail();
        }
    }
    for (i = 0; i < sizeof bad_mem / sizeof bad_mem[0]; i++) {
        assert_int_equal(gh_meta_set(f->st, "argon2.opslimit", "1"), 0);
        assert_int_equal(gh_meta_set(f->st, "argon2.memlimit", bad_mem[i]), 0);
        if (gh_pwhash_params_load(f->st, &p) != GH_EINVAL) {
            print_error("accepted argon2.memlimit \"%s\"\n", bad_mem[i]);
            fail();
        }
    }
    /* a refused load leaves the caller's params alone */
    assert_int_equal(p.opslimit, cheap.opslimit);
    assert_int_equal(p.memlimit, cheap.memlimit);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_then_verify_round_trips),
        cmocka_unit_test(password_with_embedded_nul_uses_every_byte),
        cmocka_unit_test(empty_password_hashes_and_verifies),
        cmocka_unit_test(wrong_password_is_denied),
        cmocka_unit_test(malformed_hash_is_denied),
        cmocka_unit_test(password_longer_than_max_is_refused),
        cmocka_unit_test(params_below_minimum_are_refused_for_hashing),
        cmocka_unit_test(needs_rehash_when_params_grow),
        cmocka_unit_test(needs_rehash_for_malformed_or_non_argon2id_hash),
        cmocka_unit_test(default_params_are_3_passes_64_mib),
        cmocka_unit_test_setup_teardown(params_default_when_store_has_none,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(params_save_then_load_round_trips,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(params_save_refuses_values_below_minimum,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(params_load_refuses_malformed_meta,
                                        store_setup, store_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
