/* Unit tests for core/util.c, core/error.c and core/keys.c: encodings,
 * email and tenant validation, hashing, the clock, master key files and the
 * self-signed certificate. */
#define _GNU_SOURCE
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- base64url ---- */

static void b64url_matches_rfc4648_vectors_without_padding(void **state)
{
    static const struct { const char *in, *out; } v[] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
    };
    char enc[32];
    uint8_t dec[32];
    size_t i;
    int n;

    (void)state;
    for (i = 0; i < N(v); i++) {
        n = gh_b64url_encode((const uint8_t *)v[i].in, strlen(v[i].in), enc,
                             sizeof enc);
        assert_int_equal(n, strlen(v[i].out));
        assert_string_equal(enc, v[i].out);
        n = gh_b64url_decode(enc, strlen(enc), dec, sizeof dec);
        assert_int_equal(n, strlen(v[i].in));
        assert_memory_equal(dec, v[i].in, (size_t)n);
    }
}

static void b64url_uses_url_alphabet(void **state)
{
    const uint8_t in[] = { 0xfb, 0xff, 0xbf };
    char enc[8];
    uint8_t dec[8];

    (void)state;
    assert_int_equal(gh_b64url_encode(in, 3, enc, sizeof enc), 4);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(gh_b64url_decode("-_-_", 4, dec, sizeof dec), 3);
    assert_memory_equal(dec, in, 3);
}

static void b64url_roundtrips_random_token(void **state)
{
    uint8_t raw[32], back[32];
    char enc[44];

    (void)state;
    gh_random(raw, sizeof raw);
    assert_int_equal(gh_b64url_encode(raw, 32, enc, sizeof enc), 43);
    assert_int_equal(gh_b64url_decode(enc, 43, back, sizeof back), 32);
    assert_memory_equal(raw, back, 32);
}

static void b64url_rejects_bad_alphabet(void **state)
{
    static const char *bad[] = {
        "Zm9v+A", "Zm9/", "Zm9v=", "Zg==", "Zm 9v", "Zm9\n", "Zm9.", "Zm9%",
        "Z",            /* 1 mod 4 can never be a length */
        "Zh",           /* non-zero unused bits: not canonical */
        "Zm9",          /* canonical is "Zm8" */
        "\xc3\xa9xx",
    };
    uint8_t out[16];
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++)
        assert_int_equal(gh_b64url_decode(bad[i], strlen(bad[i]), out, sizeof out),
                         GH_EINVAL);
    /* An embedded NUL inside the given length is not base64url either. */
    assert_int_equal(gh_b64url_decode("Zm\0v", 4, out, sizeof out), GH_EINVAL);
}

static void b64url_refuses_small_buffers(void **state)
{
    char enc[4];
    uint8_t dec[2];

    (void)state;
    /* "foo" needs 4 characters + NUL. */
    assert_int_equal(gh_b64url_encode((const uint8_t *)"foo", 3, enc, sizeof enc),
                     GH_ETOOBIG);
    assert_int_equal(gh_b64url_decode("Zm9v", 4, dec, sizeof dec), GH_ETOOBIG);
}

/* ---- hex, ids, hashing, comparison, wiping, clock ---- */

static void hex_and_new_id_are_lower_case_and_fresh(void **state)
{
    const uint8_t in[] = { 0x00, 0x9a, 0xff };
    char hex[7], a[GH_ID_HEXLEN + 1], b[GH_ID_HEXLEN + 1];
    size_t i;

    (void)state;
    gh_hex(in, 3, hex);
    assert_string_equal(hex, "009aff");
    gh_new_id(a);
    gh_new_id(b);
    assert_int_equal(strlen(a), GH_ID_HEXLEN);
    for (i = 0; i < GH_ID_HEXLEN; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_not_equal(a, b);
}

static void sha256_matches_known_vector(void **state)
{
    uint8_t out[32];
    char hex[65];

    (void)state;
    gh_sha256("abc", 3, out);
    gh_hex(out, 32, hex);
    assert_string_equal(hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void ct_equal_compares_whole_buffer(void **state)
{
    (void)state;
    assert_int_equal(gh_ct_equal("abcd", "abcd", 4), 1);
    assert_int_equal(gh_ct_equal("abcd", "abce", 4), 0);
    assert_int_equal(gh_ct_equal("xbcd", "abcd", 4), 0);
    assert_int_equal(gh_ct_equal("a", "b", 0), 1);
}

static void wipe_zeroes_and_random_fills(void **state)
{
    uint8_t buf[64], zero[64] = { 0 }, other[64];

    (void)state;
    gh_random(buf, sizeof buf);
    gh_random(other, sizeof other);
    assert_memory_not_equal(buf, zero, sizeof buf);
    assert_memory_not_equal(buf, other, sizeof buf);
    gh_wipe(buf, sizeof buf);
    assert_memory_equal(buf, zero, sizeof buf);
    gh_wipe(NULL, 0);
}

static void clock_can_be_pinned_and_restored(void **state)
{
    int64_t real;

    (void)state;
    gh_clock_set(1234);
    assert_int_equal(gh_now(), 1234);
    gh_clock_set(0);
    real = gh_now();
    assert_true(real > 1600000000);
}

/* ---- email and tenant validation ---- */

static void email_normalize_lowercases_and_trims(void **state)
{
    static const struct { const char *in, *out; } v[] = {
        { " Ann@Example.COM\t", "ann@example.com" },
        { "a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk" },
        { "o'neil_x-1@x-y.io", "o'neil_x-1@x-y.io" },
        { "x@1.2", "x@1.2" },
    };
    char out[GH_EMAIL_MAX + 1];
    size_t i;

    (void)state;
    for (i = 0; i < N(v); i++) {
        assert_int_equal(gh_email_normalize(v[i].in, strlen(v[i].in), out), 0);
        assert_string_equal(out, v[i].out);
    }
    /* Only len bytes are read: the rest of the buffer does not matter. */
    assert_int_equal(gh_email_normalize("a@b.cojunk", 6, out), 0);
    assert_string_equal(out, "a@b.co");
}

static void email_normalize_rejects_bad_addresses(void **state)
{
    static const char *bad[] = {
        "", "   ", "plain", "@example.com", "a@", "a@@b.com", "a@b@c.com",
        "a@example", "a@.example.com", "a@example..com", "a@example.com.",
        "a@-example.com", "a@example-.com", "a b@example.com",
        "a\n@example.com", "a@exa\rmple.com", "a@exa_mple.com",
        "\"a\"@example.com", "a,b@example.com", "a<b@example.com",
        "a;b@example.com", "a\\b@example.com", "a@[127.0.0.1]",
        "\xc3\xbc@example.com", "a@ex\xc3\xa4mple.com", "a@exa mple.com",
        "a\x7f@example.com", "a@example.com\x01",
    };
    char out[GH_EMAIL_MAX + 1], buf[400];
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++)
        assert_int_equal(gh_email_normalize(bad[i], strlen(bad[i]), out),
                         GH_EBADEMAIL);
    /* Embedded NUL inside len. */
    assert_int_equal(gh_email_normalize("a\0b@example.com", 15, out), GH_EBADEMAIL);
    /* Local part over 64. */
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@example.com");
    assert_int_equal(gh_email_normalize(buf, strlen(buf), out), GH_EBADEMAIL);
    /* A label over 63. */
    strcpy(buf, "a@");
    memset(buf + 2, 'b', 64);
    strcpy(buf + 66, ".com");
    assert_int_equal(gh_email_normalize(buf, strlen(buf), out), GH_EBADEMAIL);
    /* Whole address over GH_EMAIL_MAX (labels themselves fine). */
    strcpy(buf, "a@");
    for (i = 0; i < 6; i++)
        strcat(buf, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
    strcat(buf, "com");
    assert_true(strlen(buf) > GH_EMAIL_MAX);
    assert_int_equal(gh_email_normalize(buf, strlen(buf), out), GH_EBADEMAIL);
    /* Exactly at the limit is fine: 64 + 1 + 189 = 254. */
    memset(buf, 'a', 64);
    buf[64] = '@';
    memset(buf + 65, 'b', 189);
    buf[65 + 63] = '.';
    buf[65 + 127] = '.';
    buf[254] = '\0';
    assert_int_equal(strlen(buf), GH_EMAIL_MAX);
    assert_int_equal(gh_email_normalize(buf, strlen(buf), out), 0);
}

static void tenant_name_valid_accepts_only_identifiers(void **state)
{
    static const char *good[] = { "demo", "a", "0day", "acme-corp", "a-" };
    static const char *bad[] = { "", "-a", "Demo", "a_b", "a b", "a.b",
                                 "\xc3\xa9", "a\n" };
    char longname[GH_TENANT_MAX + 2];
    size_t i;

    (void)state;
    for (i = 0; i < N(good); i++)
        assert_int_equal(gh_tenant_name_valid(good[i]), 1);
    for (i = 0; i < N(bad); i++)
        assert_int_equal(gh_tenant_name_valid(bad[i]), 0);
    assert_int_equal(gh_tenant_name_valid(NULL), 0);
    memset(longname, 'a', GH_TENANT_MAX);
    longname[GH_TENANT_MAX] = '\0';
    assert_int_equal(gh_tenant_name_valid(longname), 1);
    longname[GH_TENANT_MAX] = 'a';
    longname[GH_TENANT_MAX + 1] = '\0';
    assert_int_equal(gh_tenant_name_valid(longname), 0);
}

/* ---- errors ---- */

static void strerror_names_every_code(void **state)
{
    int code, other;

    (void)state;
    for (code = GH_OK; code >= GH_EFULL; code--) {
        assert_non_null(gh_strerror(code));
        assert_string_not_equal(gh_strerror(code), "unknown error");
        for (other = code - 1; other >= GH_EFULL; other--)
            assert_string_not_equal(gh_strerror(code), gh_strerror(other));
    }
    assert_string_equal(gh_strerror(-999), "unknown error");
    assert_string_equal(gh_strerror(5), "unknown error");
}

/* ---- key files ---- */

typedef struct {
    char dir[64];
    char path[PATH_MAX];
} kfx_t;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)flag; (void)f;
    return remove(p);
}

static int key_setup(void **state)
{
    kfx_t *k = calloc(1, sizeof *k);

    assert_non_null(k);
    strcpy(k->dir, "/tmp/gh-test-keys-XXXXXX");
    assert_non_null(mkdtemp(k->dir));
    snprintf(k->path, sizeof k->path, "%s/%s", k->dir, GH_MASTER_KEY_FILE);
    *state = k;
    return 0;
}

static int key_teardown(void **state)
{
    kfx_t *k = *state;

    nftw(k->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(k);
    return 0;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void master_key_roundtrips_with_mode_0600(void **state)
{
    kfx_t *k = *state;
    uint8_t a[GH_MASTER_KEY_BYTES], b[GH_MASTER_KEY_BYTES];
    uint8_t zero[GH_MASTER_KEY_BYTES] = { 0 };
    struct stat sb;
    mode_t old = umask(0);   /* the file must be 0600 whatever the umask */

    assert_int_equal(gh_master_key_create(k->path), 0);
    umask(old);
    assert_int_equal(stat(k->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, GH_MASTER_KEY_BYTES);
    assert_int_equal(gh_master_key_load(k->path, a), 0);
    assert_int_equal(gh_master_key_load(k->path, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
}

static void master_key_create_refuses_to_overwrite(void **state)
{
    kfx_t *k = *state;
    uint8_t before[GH_MASTER_KEY_BYTES], after[GH_MASTER_KEY_BYTES];

    assert_int_equal(gh_master_key_create(k->path), 0);
    assert_int_equal(gh_master_key_load(k->path, before), 0);
    assert_int_equal(gh_master_key_create(k->path), GH_EEXIST);
    assert_int_equal(gh_master_key_load(k->path, after), 0);
    assert_memory_equal(before, after, sizeof before);
}

static void master_key_refuses_group_readable_file(void **state)
{
    kfx_t *k = *state;
    uint8_t key[GH_MASTER_KEY_BYTES], data[GH_MASTER_KEY_BYTES] = { 1 };
    static const mode_t modes[] = { 0640, 0604, 0660, 0644, 0620, 0602 };
    size_t i;

    for (i = 0; i < N(modes); i++) {
        write_file(k->path, data, sizeof data, modes[i]);
        assert_int_equal(gh_master_key_load(k->path, key), GH_EDENIED);
    }
    assert_int_equal(chmod(k->path, 0400), 0);
    assert_int_equal(gh_master_key_load(k->path, key), 0);
}

static void master_key_refuses_wrong_size_and_odd_files(void **state)
{
    kfx_t *k = *state;
    uint8_t key[GH_MASTER_KEY_BYTES], data[64] = { 0 };
    char link[PATH_MAX];

    write_file(k->path, data, 31, 0600);
    assert_int_equal(gh_master_key_load(k->path, key), GH_EINVAL);
    write_file(k->path, data, 33, 0600);
    assert_int_equal(gh_master_key_load(k->path, key), GH_EINVAL);
    write_file(k->path, data, 0, 0600);
    assert_int_equal(gh_master_key_load(k->path, key), GH_EINVAL);
    /* A symlink is not followed, even to a good key. */
    write_file(k->path, data, 32, 0600);
    snprintf(link, sizeof link, "%s/link.key", k->dir);
    assert_int_equal(symlink(k->path, link), 0);
    assert_int_not_equal(gh_master_key_load(link, key), 0);
    assert_int_not_equal(gh_master_key_create(link), 0);
    /* A directory is not a key. */
    assert_int_equal(gh_master_key_load(k->dir, key), GH_EINVAL);
    snprintf(link, sizeof link, "%s/absent.key", k->dir);
    assert_int_equal(gh_master_key_load(link, key), GH_ENOTFOUND);
}

static void selfsigned_cert_is_p256_sha256_with_sans_and_0600_key(void **state)
{
    kfx_t *k = *state;
    char keyp[PATH_MAX], crtp[PATH_MAX];
    struct stat sb;
    FILE *fp;
    X509 *x;
    EVP_PKEY *pub, *priv;
    GENERAL_NAMES *sans;
    BASIC_CONSTRAINTS *bc;
    char grp[32];
    size_t glen;
    int crit = -1;

    snprintf(keyp, sizeof keyp, "%s/gw.key", k->dir);
    snprintf(crtp, sizeof crtp, "%s/gw.crt", k->dir);
    assert_int_equal(gh_selfsigned_create(keyp, crtp, "gw.example.org", 30), 0);
    assert_int_equal(stat(keyp, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);

    fp = fopen(crtp, "r");
    assert_non_null(fp);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    fp = fopen(keyp, "r");
    assert_non_null(fp);
    priv = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(priv);

    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    pub = X509_get0_pubkey(x);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(pub, priv), 1);
    assert_int_equal(EVP_PKEY_get_group_name(pub, grp, sizeof grp, &glen), 1);
    assert_string_equal(grp, "prime256v1");
    assert_int_equal(X509_verify(x, pub), 1);
    assert_int_equal(X509_check_host(x, "gw.example.org", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 3);
    GENERAL_NAMES_free(sans);
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    BASIC_CONSTRAINTS_free(bc);

    EVP_PKEY_free(priv);
    X509_free(x);

    /* Never overwrites. */
    assert_int_equal(gh_selfsigned_create(keyp, crtp, "gw.example.org", 30),
                     GH_EEXIST);
}

static void selfsigned_refuses_bad_names_and_days(void **state)
{
    kfx_t *k = *state;
    char keyp[PATH_MAX], crtp[PATH_MAX];
    static const char *bad[] = { "", "a,DNS:evil", "a b", "-x", "a/b",
        "IP:1.2.3.4", "a\nb",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    struct stat sb;
    size_t i;

    snprintf(keyp, sizeof keyp, "%s/gw.key", k->dir);
    snprintf(crtp, sizeof crtp, "%s/gw.crt", k->dir);
    for (i = 0; i < N(bad); i++)
        assert_int_equal(gh_selfsigned_create(keyp, crtp, bad[i], 30), GH_EINVAL);
    assert_int_equal(gh_selfsigned_create(keyp, crtp, "localhost", 0), GH_EINVAL);
    assert_int_equal(gh_selfsigned_create(keyp, crtp, "localhost", -5), GH_EINVAL);
    assert_int_not_equal(stat(keyp, &sb), 0);
    assert_int_not_equal(stat(crtp, &sb), 0);
    /* An existing cert file makes it fail without leaving a lone key. */
    write_file(crtp, "x", 1, 0644);
    assert_int_equal(gh_selfsigned_create(keyp, crtp, "localhost", 30), GH_EEXIST);
    assert_int_not_equal(stat(keyp, &sb), 0);
}

/* The policy file's duration syntax, shared by the CLI and the console. */
static void duration_parse_and_format_round_trip(void **state)
{
    static const struct { const char *in; int64_t secs; const char *out; } ok[] = {
        { "90", 90, "90s" }, { "45s", 45, "45s" }, { "30m", 1800, "30m" },
        { "12h", 43200, "12h" }, { "7d", 604800, "7d" }, { "3650d", 315360000, "3650d" },
        { "120m", 7200, "2h" },
    };
    static const char *const bad[] = { "", "m", "1x", "-5m", "1.5h", " 1h", "1h ",
                                       "1234567890123" };
    char buf[24];
    int64_t v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(gh_duration_parse(ok[i].in, strlen(ok[i].in), &v), 0);
        assert_int_equal(v, ok[i].secs);
        gh_duration_format(v, buf, sizeof buf);
        assert_string_equal(buf, ok[i].out);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(gh_duration_parse(bad[i], strlen(bad[i]), &v), GH_EINVAL);
    assert_int_equal(gh_duration_parse("0", 1, &v), GH_ETOOBIG);
    assert_int_equal(gh_duration_parse("3651d", 5, &v), GH_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(b64url_matches_rfc4648_vectors_without_padding),
        cmocka_unit_test(duration_parse_and_format_round_trip),
        cmocka_unit_test(b64url_uses_url_alphabet),
        cmocka_unit_test(b64url_roundtrips_random_token),
        cmocka_unit_test(b64url_rejects_bad_alphabet),
        cmocka_unit_test(b64url_refuses_small_buffers),
        cmocka_unit_test(hex_and_new_id_are_lower_case_and_fresh),
        cmocka_unit_test(sha256_matches_known_vector),
        cmocka_unit_test(ct_equal_compares_whole_buffer),
        cmocka_unit_test(wipe_zeroes_and_random_fills),
        cmocka_unit_test(clock_can_be_pinned_and_restored),
        cmocka_unit_test(email_normalize_lowercases_and_trims),
        cmocka_unit_test(email_normalize_rejects_bad_addresses),
        cmocka_unit_test(tenant_name_valid_accepts_only_identifiers),
        cmocka_unit_test(strerror_names_every_code),
        cmocka_unit_test_setup_teardown(master_key_roundtrips_with_mode_0600, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(master_key_create_refuses_to_overwrite, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(master_key_refuses_group_readable_file, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(master_key_refuses_wrong_size_and_odd_files, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(selfsigned_cert_is_p256_sha256_with_sans_and_0600_key, key_setup, key_teardown),
        cmocka_unit_test_setup_teardown(selfsigned_refuses_bad_names_and_days, key_setup, key_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
