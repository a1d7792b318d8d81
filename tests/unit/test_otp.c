/* Unit tests for authn/otp.c: every RFC 4226 Appendix D HOTP value, every
 * RFC 6238 Appendix B TOTP value (SHA1, SHA256, SHA512), matching windows,
 * base32, otpauth URIs, the QR SVG and recovery codes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/otp.h"

static const uint8_t seed20[] = "12345678901234567890";
static const uint8_t seed32[] = "12345678901234567890123456789012";
static const uint8_t seed64[] =
    "1234567890123456789012345678901234567890123456789012345678901234";

static void
test_hotp_rfc4226(void **state)
{
    static const char *const want[10] = {
        "755224", "287082", "359152", "969429", "338314",
        "254676", "287922", "162583", "399871", "520489",
    };
    gh_otp_params_t p = { GH_OTP_HOTP, GH_OTP_SHA1, 6, GH_OTP_PERIOD };
    char code[GH_OTP_CODE_MAX + 1];
    uint64_t c;

    (void)state;
    for (c = 0; c < 10; c++) {
        assert_int_equal(gh_otp_code(&p, seed20, 20, c, code), 0);
        assert_string_equal(code, want[c]);
    }
}

static void
test_totp_rfc6238(void **state)
{
    static const struct {
        int64_t t;
        const char *sha1, *sha256, *sha512;
    } v[] = {
        { 59,          "94287082", "46119246", "90693936" },
        { 1111111109,  "07081804", "68084774", "25091201" },
        { 1111111111,  "14050471", "67062674", "99943326" },
        { 1234567890,  "89005924", "91819424", "93441116" },
        { 2000000000,  "69279037", "90698825", "38618901" },
        { 20000000000, "65353130", "77737706", "47863826" },
    };
    gh_otp_params_t p = { GH_OTP_TOTP, GH_OTP_SHA1, 8, 30 };
    char code[GH_OTP_CODE_MAX + 1];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint64_t step = (uint64_t)v[i].t / 30;

        p.algo = GH_OTP_SHA1;
        assert_int_equal(gh_otp_code(&p, seed20, 20, step, code), 0);
        assert_string_equal(code, v[i].sha1);
        p.algo = GH_OTP_SHA256;
        assert_int_equal(gh_otp_code(&p, seed32, 32, step, code), 0);
        assert_string_equal(code, v[i].sha256);
        p.algo = GH_OTP_SHA512;
        assert_int_equal(gh_otp_code(&p, seed64, 64, step, code), 0);
        assert_string_equal(code, v[i].sha512);
    }
}

static void
test_params(void **state)
{
    gh_otp_params_t p = { GH_OTP_TOTP, GH_OTP_SHA1, 6, 30 };

    (void)state;
    assert_int_equal(gh_otp_params_check(&p), 0);
    p.digits = 7;
    assert_int_equal(gh_otp_params_check(&p), GH_EINVAL);
    p.digits = 8;
    p.algo = 3;
    assert_int_equal(gh_otp_params_check(&p), GH_EINVAL);
    p.type = GH_OTP_HOTP;
    p.algo = GH_OTP_SHA256;   /* HOTP is SHA1 only */
    assert_int_equal(gh_otp_params_check(&p), GH_EINVAL);
    p.type = 9;
    assert_int_equal(gh_otp_params_check(&p), GH_EINVAL);
    assert_int_equal(gh_otp_secret_size(GH_OTP_SHA1), 20);
    assert_int_equal(gh_otp_secret_size(GH_OTP_SHA256), 32);
    assert_int_equal(gh_otp_secret_size(GH_OTP_SHA512), 64);
}

static void
test_match_window(void **state)
{
    gh_otp_params_t p = { GH_OTP_HOTP, GH_OTP_SHA1, 6, GH_OTP_PERIOD };
    uint64_t c = 99;

    (void)state;
    /* "162583" is counter 7 */
    assert_int_equal(gh_otp_match(&p, seed20, 20, "162583", 6, 0, 9, &c), 0);
    assert_int_equal(c, 7);
    assert_int_equal(gh_otp_match(&p, seed20, 20, "162583", 6, 8, 18, &c),
                     GH_EDENIED);
    assert_int_equal(gh_otp_match(&p, seed20, 20, "162583", 6, 0, 6, &c),
                     GH_EDENIED);
    assert_int_equal(gh_otp_match(&p, seed20, 20, "000000", 6, 0, 9, &c),
                     GH_EDENIED);
    /* wrong length for the factor */
    assert_int_equal(gh_otp_match(&p, seed20, 20, "1625830", 7, 0, 9, &c),
                     GH_EINVAL);
    /* reversed or huge window */
    assert_int_equal(gh_otp_match(&p, seed20, 20, "162583", 6, 9, 0, &c),
                     GH_EINVAL);
    assert_int_equal(gh_otp_match(&p, seed20, 20, "162583", 6, 0, 200000, &c),
                     GH_EINVAL);
}

static void
test_clean(void **state)
{
    char out[GH_OTP_CODE_MAX + 1];
    size_t n;

    (void)state;
    assert_int_equal(gh_otp_clean("123 456", 7, out, &n), 0);
    assert_string_equal(out, "123456");
    assert_int_equal(n, 6);
    assert_int_equal(gh_otp_clean("1234-5678", 9, out, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(gh_otp_clean("12345", 5, out, &n), GH_EINVAL);
    assert_int_equal(gh_otp_clean("123456789", 9, out, &n), GH_EINVAL);
    assert_int_equal(gh_otp_clean("12a456", 6, out, &n), GH_EINVAL);
    assert_int_equal(gh_otp_clean("123\0456", 7, out, &n), GH_EINVAL);
}

static void
test_base32_and_uri(void **state)
{
    gh_otp_params_t p = { GH_OTP_TOTP, GH_OTP_SHA1, 6, 30 };
    char b[GH_OTP_B32_MAX], uri[GH_OTP_URI_MAX];

    (void)state;
    /* RFC 4648 test vectors, padding dropped */
    assert_int_equal(gh_base32((const uint8_t *)"foobar", 6, b, sizeof b), 10);
    assert_string_equal(b, "MZXW6YTBOI");
    assert_int_equal(gh_base32((const uint8_t *)"f", 1, b, sizeof b), 2);
    assert_string_equal(b, "MY");
    assert_int_equal(gh_base32(seed20, 20, b, sizeof b), 32);
    assert_string_equal(b, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    assert_int_equal(gh_base32(seed20, 20, b, 10), GH_ETOOBIG);

    assert_int_equal(gh_otpauth_uri(&p, "Acme Corp", "ann+x@example.org", b,
                                    0, uri, sizeof uri), 0);
    assert_string_equal(uri, "otpauth://totp/Acme%20Corp:ann%2Bx%40example.org"
                        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                        "&issuer=Acme%20Corp&algorithm=SHA1&digits=6"
                        "&period=30");
    p.type = GH_OTP_HOTP;
    assert_int_equal(gh_otpauth_uri(&p, "gatehouse", "a@b.c", "MY", 5, uri,
                                    sizeof uri), 0);
    assert_string_equal(uri, "otpauth://hotp/gatehouse:a%40b.c?secret=MY"
                        "&issuer=gatehouse&algorithm=SHA1&digits=6"
                        "&counter=5");
    assert_int_equal(gh_otpauth_uri(&p, "gatehouse", "a@b.c", "MY", 5, uri,
                                    20), GH_ETOOBIG);
}

static void
test_qr_svg(void **state)
{
    char *svg = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(gh_qr_svg("otpauth://totp/x:y?secret=MY", &svg, &len),
                     0);
    assert_non_null(svg);
    assert_int_equal(strlen(svg), len);
    assert_true(strncmp(svg, "<svg ", 5) == 0);
    assert_non_null(strstr(svg, "id=\"otpauth-qr\""));
    assert_non_null(strstr(svg, "h1v1h-1z"));   /* some dark modules */
    assert_true(strcmp(svg + len - 6, "</svg>") == 0);
    free(svg);
}

static void
test_recovery(void **state)
{
    uint8_t salt[16] = { 1, 2, 3 };
    char codes[GH_RECOVERY_CODES][GH_RECOVERY_LEN + 1];
    char hashes[GH_RECOVERY_CODES][GH_RECOVERY_HASH_LEN + 1];
    char h[GH_RECOVERY_HASH_LEN + 1], typed[64];
    int i, j;

    (void)state;
    gh_recovery_new(salt, codes, hashes);
    for (i = 0; i < GH_RECOVERY_CODES; i++) {
        assert_int_equal(strlen(codes[i]), GH_RECOVERY_LEN);
        assert_int_equal(codes[i][4], '-');
        assert_true(gh_recovery_shaped(codes[i], strlen(codes[i])));
        assert_int_equal(gh_recovery_hash(salt, codes[i], strlen(codes[i]), h),
                         0);
        assert_string_equal(h, hashes[i]);
        /* the hash is not the code */
        assert_null(strstr(hashes[i], codes[i]));
        for (j = 0; j < i; j++)
            assert_string_not_equal(codes[i], codes[j]);
    }
    /* typed in upper case, without dashes, with spaces */
    for (i = 0, j = 0; codes[0][i]; i++) {
        if (codes[0][i] == '-') {
            typed[j++] = ' ';
            continue;
        }
        typed[j++] = (char)(codes[0][i] >= 'a' ? codes[0][i] - 32 : codes[0][i]);
    }
    typed[j] = '\0';
    assert_int_equal(gh_recovery_hash(salt, typed, strlen(typed), h), 0);
    assert_string_equal(h, hashes[0]);
    /* another salt, another hash */
    salt[0] = 9;
    assert_int_equal(gh_recovery_hash(salt, codes[0], strlen(codes[0]), h), 0);
    assert_string_not_equal(h, hashes[0]);
    /* malformed */
    assert_int_equal(gh_recovery_hash(salt, "abcd-efgh", 9, h), GH_EINVAL);
    assert_int_equal(gh_recovery_hash(salt, "abcd-efgh-ijkl-mno1", 19, h),
                     GH_EINVAL);   /* '1' is not base32 */
    assert_false(gh_recovery_shaped("123456", 6));
    assert_false(gh_recovery_shaped("1234 5678", 9));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hotp_rfc4226),
        cmocka_unit_test(test_totp_rfc6238),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_match_window),
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_base32_and_uri),
        cmocka_unit_test(test_qr_svg),
        cmocka_unit_test(test_recovery),
    };

    if (gh_otp_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
