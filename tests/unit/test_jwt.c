/* Signed assertions: our verifier must refuse every token it should, and
 * sealing must detect any change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jwt.h>
#include <openssl/hmac.h>

#include "gatehouse/error.h"
#include "gatehouse/jwt.h"
#include "gatehouse/seal.h"
#include "gatehouse/util.h"

#define NOW 1800000000

typedef struct {
    char priv[GH_PRIVPEM_MAX], pub[GH_PUBPEM_MAX];
    char x[GH_JWK_COORD + 1], y[GH_JWK_COORD + 1], kid[GH_KID_LEN + 1];
} key_t_;

static key_t_ K1, K2;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(gh_jwt_keygen(K1.priv, K1.pub, K1.x, K1.y, K1.kid), 0);
    assert_int_equal(gh_jwt_keygen(K2.priv, K2.pub, K2.x, K2.y, K2.kid), 0);
    return 0;
}

static char *sign_with(const key_t_ *k, const char *aud, int64_t iat,
                       int64_t exp)
{
    static const char *roles[] = { "member", "admin" };
    gh_assertion_t a;
    char *tok = NULL;

    memset(&a, 0, sizeof a);
    a.iss = "https://gw.example";
    a.sub = "0123456789abcdef0123456789abcdef";
    a.aud = aud;
    a.email = "ann@example.com";
    a.name = "Ann";
    a.tenant = "demo";
    a.roles = roles;
    a.nroles = 2;
    a.amr = "pwd+otp";
    a.iat = iat;
    a.exp = exp;
    a.auth_time = iat - 10;
    assert_int_equal(gh_jwt_sign_assertion(&a, k->priv, k->kid, &tok), 0);
    return tok;
}

static int verify(const char *tok, const char *aud, int64_t now,
                  const char **why)
{
    gh_jwt_pubkey_t keys[] = { { K1.kid, K1.pub }, { K2.kid, K2.pub } };

    return gh_jwt_verify(tok, strlen(tok), keys, 2, "https://gw.example", aud,
                         now, 0, NULL, why);
}

static void kid_is_rfc7638_thumbprint_of_the_public_key(void **state)
{
    char x[GH_JWK_COORD + 1], y[GH_JWK_COORD + 1], kid[GH_KID_LEN + 1];
    char canon[200];
    uint8_t d[32];
    char want[GH_KID_LEN + 1];

    (void)state;
    assert_int_equal(gh_jwk_from_pem(K1.pub, x, y, kid), 0);
    assert_string_equal(kid, K1.kid);
    assert_int_equal(strlen(x), 43);
    assert_int_equal(strlen(y), 43);
    snprintf(canon, sizeof canon,
             "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    gh_sha256(canon, strlen(canon), d);
    gh_b64url_encode(d, 32, want, sizeof want);
    assert_string_equal(kid, want);
    assert_int_not_equal(strcmp(K1.kid, K2.kid), 0);
    assert_int_equal(gh_jwk_from_pem("not a pem", x, y, kid), GH_EINVAL);
}

static void signed_assertion_verifies_with_claims(void **state)
{
    gh_jwt_pubkey_t keys[] = { { K1.kid, K1.pub } };
    char *tok = sign_with(&K1, "demo", NOW, NOW + 300), *claims = NULL;
    const char *why;

    (void)state;
    assert_int_equal(gh_jwt_verify(tok, strlen(tok), keys, 1,
                                   "https://gw.example", "demo", NOW + 10, 0,
                                   &claims, &why), 0);
    assert_non_null(strstr(claims, "\"sub\":\"0123456789abcdef0123456789abcdef\""));
    assert_non_null(strstr(claims, "\"roles\":[\"member\",\"admin\"]"));
    assert_non_null(strstr(claims, "\"amr\":[\"pwd\",\"otp\"]"));
    assert_non_null(strstr(claims, "\"jti\":"));
    free(claims);
    free(tok);
}

static void wrong_audience_refused(void **state)
{
    char *tok = sign_with(&K1, "demo", NOW, NOW + 300);
    const char *why;

    (void)state;
    assert_int_equal(verify(tok, "admin-tools", NOW, &why), GH_EINVAL);
    assert_string_equal(why, "wrong audience");
    free(tok);
}

static void wrong_issuer_refused(void **state)
{
    gh_jwt_pubkey_t keys[] = { { K1.kid, K1.pub } };
    char *tok = sign_with(&K1, "demo", NOW, NOW + 300);
    const char *why;

    (void)state;
    assert_int_equal(gh_jwt_verify(tok, strlen(tok), keys, 1, "https://evil",
                                   "demo", NOW, 0, NULL, &why), GH_EINVAL);
    free(tok);
}

static void expired_token_refused(void **state)
{
    char *tok = sign_with(&K1, "demo", NOW, NOW + 300);
    const char *why;

    (void)state;
    assert_int_equal(verify(tok, "demo", NOW + 300, &why), GH_EEXPIRED);
    assert_int_equal(verify(tok, "demo", NOW + 299, &why), 0);
    free(tok);
}

static void token_not_yet_valid_refused(void **state)
{
    char *tok = sign_with(&K1, "demo", NOW + 100, NOW + 400);
    const char *why;

    (void)state;
    assert_int_equal(verify(tok, "demo", NOW, &why), GH_EEXPIRED);
    assert_string_equal(why, "not valid yet (nbf)");
    free(tok);
}

static void altered_signature_or_payload_refused(void **state)
{
    char *tok = sign_with(&K1, "demo", NOW, NOW + 300);
    char *last = strrchr(tok, '.'), *copy;
    const char *why;

    (void)state;
    /* flip one character of the signature */
    copy = strdup(tok);
    copy[last - tok + 5] = copy[last - tok + 5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(copy, "demo", NOW, &why), GH_EDENIED);
    free(copy);
    /* flip one character of the payload */
    copy = strdup(tok);
    copy[strchr(tok, '.') - tok + 3] ^= 1;
    assert_int_not_equal(verify(copy, "demo", NOW, &why), 0);
    free(copy);
    free(tok);
}

static void token_signed_by_another_key_under_our_kid_refused(void **state)
{
    gh_jwt_pubkey_t only_k1[] = { { K1.kid, K1.pub } };
    gh_assertion_t a;
    char *tok = NULL;
    const char *why;

    (void)state;
    memset(&a, 0, sizeof a);
    a.iss = "https://gw.example";
    a.sub = "x";
    a.aud = "demo";
    a.iat = NOW;
    a.exp = NOW + 300;
    /* K2's private key, but claiming K1's kid */
    assert_int_equal(gh_jwt_sign_assertion(&a, K2.priv, K1.kid, &tok), 0);
    assert_int_equal(gh_jwt_verify(tok, strlen(tok), only_k1, 1, NULL, "demo",
                                   NOW, 0, NULL, &why), GH_EDENIED);
    free(tok);
}

static void unknown_kid_refused(void **state)
{
    gh_jwt_pubkey_t only_k1[] = { { K1.kid, K1.pub } };
    char *tok = sign_with(&K2, "demo", NOW, NOW + 300);
    const char *why;

    (void)state;
    assert_int_equal(gh_jwt_verify(tok, strlen(tok), only_k1, 1, NULL, "demo",
                                   NOW, 0, NULL, &why), GH_EDENIED);
    assert_string_equal(why, "unknown key id");
    free(tok);
}

/* base64url(header) "." base64url(payload) */
static void b64(const char *s, char *out, size_t cap)
{
    gh_b64url_encode((const uint8_t *)s, strlen(s), out, cap);
}

static void alg_none_refused(void **state)
{
    char h[256], p[512], tok[1024];
    const char *why;
    char payload[256];

    (void)state;
    snprintf(payload, sizeof payload,
             "{\"iss\":\"https://gw.example\",\"aud\":\"demo\",\"exp\":%d}",
             NOW + 300);
    snprintf(tok, sizeof tok, "{\"alg\":\"none\",\"kid\":\"%s\"}", K1.kid);
    b64(tok, h, sizeof h);
    b64(payload, p, sizeof p);
    snprintf(tok, sizeof tok, "%s.%s.", h, p);
    assert_int_not_equal(verify(tok, "demo", NOW, &why), 0);
    snprintf(tok, sizeof tok, "%s.%s.AAAA", h, p);
    assert_int_equal(verify(tok, "demo", NOW, &why), GH_EDENIED);
    assert_string_equal(why, "algorithm is not ES256");
}

/* The classic confusion: HS256 with our public PEM as the HMAC secret.
 * libjwt 1.10 alone would accept it; our wrapper must not. */
static void hs256_keyed_with_public_key_refused(void **state)
{
    jwt_t *j = NULL;
    char payload[256], *tok;
    const char *why;

    (void)state;
    snprintf(payload, sizeof payload,
             "{\"iss\":\"https://gw.example\",\"aud\":\"demo\",\"exp\":%d,"
             "\"sub\":\"attacker\"}", NOW + 300);
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, payload), 0);
    assert_int_equal(jwt_add_header(j, "kid", K1.kid), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256,
                                 (const unsigned char *)K1.pub,
                                 (int)strlen(K1.pub)), 0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(tok);
    /* libjwt on its own accepts it: this is why the wrapper exists */
    j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)K1.pub,
                                (int)strlen(K1.pub)), 0);
    jwt_free(j);
    assert_int_equal(verify(tok, "demo", NOW, &why), GH_EDENIED);
    assert_string_equal(why, "algorithm is not ES256");
    free(tok);
}

static void malformed_tokens_refused(void **state)
{
    static const char *bad[] = {
        "", "a", "a.b", "a.b.c.d", "a b.c.d", "....", "e30.e30.e30",
        "!!!.e30.AAAA",
    };
    const char *why;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(verify(bad[i], "demo", NOW, &why), 0);
}

/* RFC 7515 appendix A.1: the HS256 example, to pin our base64url and the
 * HMAC path libjwt uses (we never accept HS256 tokens, but the encoding
 * must be exact). */
static void rfc7515_a1_hmac_vector(void **state)
{
    static const char signing_input[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        "."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
        "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    static const char key_b64[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0i"
        "PS4hcgUuTwjAzZr1Z9CAow";
    uint8_t key[64], mac[32];
    unsigned int maclen = 0;
    char sig[64];
    int klen;

    (void)state;
    klen = gh_b64url_decode(key_b64, strlen(key_b64), key, sizeof key);
    assert_int_equal(klen, 64);
    assert_non_null(HMAC(EVP_sha256(), key, klen,
                         (const uint8_t *)signing_input, strlen(signing_input),
                         mac, &maclen));
    gh_b64url_encode(mac, maclen, sig, sizeof sig);
    assert_string_equal(sig, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}

static void seal_round_trip_and_tamper_detection(void **state)
{
    uint8_t key[32], other[32], out[256];
    char blob[GH_SEAL_TEXT_LEN(64)], copy[sizeof blob];
    const char secret[] = "-----BEGIN PRIVATE KEY----- not really";
    size_t n;

    (void)state;
    gh_random(key, sizeof key);
    gh_random(other, sizeof other);
    assert_int_equal(gh_seal(key, "jwt-key:a", (const uint8_t *)secret,
                             sizeof secret, blob, sizeof blob), 0);
    assert_int_equal(strncmp(blob, "v1.", 3), 0);
    assert_null(strstr(blob, "PRIVATE"));
    assert_int_equal(gh_unseal(key, "jwt-key:a", blob, out, sizeof out, &n), 0);
    assert_int_equal(n, sizeof secret);
    assert_memory_equal(out, secret, n);

    /* wrong key, wrong label, one changed character: all refused */
    assert_int_equal(gh_unseal(other, "jwt-key:a", blob, out, sizeof out, &n),
                     GH_EDENIED);
    assert_int_equal(gh_unseal(key, "jwt-key:b", blob, out, sizeof out, &n),
                     GH_EDENIED);
    strcpy(copy, blob);
    copy[10] = copy[10] == 'A' ? 'B' : 'A';
    assert_int_equal(gh_unseal(key, "jwt-key:a", copy, out, sizeof out, &n),
                     GH_EDENIED);
    assert_int_equal(gh_unseal(key, "jwt-key:a", "v2.AAAA", out, sizeof out,
                               &n), GH_EINVAL);
    assert_int_equal(gh_unseal(key, "jwt-key:a", "v1.AA", out, sizeof out, &n),
                     GH_EINVAL);
}

static void seal_uses_a_fresh_iv_each_time(void **state)
{
    uint8_t key[32];
    char a[GH_SEAL_TEXT_LEN(8)], b[GH_SEAL_TEXT_LEN(8)];

    (void)state;
    gh_random(key, sizeof key);
    assert_int_equal(gh_seal(key, "l", (const uint8_t *)"same", 4, a,
                             sizeof a), 0);
    assert_int_equal(gh_seal(key, "l", (const uint8_t *)"same", 4, b,
                             sizeof b), 0);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kid_is_rfc7638_thumbprint_of_the_public_key),
        cmocka_unit_test(signed_assertion_verifies_with_claims),
        cmocka_unit_test(wrong_audience_refused),
        cmocka_unit_test(wrong_issuer_refused),
        cmocka_unit_test(expired_token_refused),
        cmocka_unit_test(token_not_yet_valid_refused),
        cmocka_unit_test(altered_signature_or_payload_refused),
        cmocka_unit_test(token_signed_by_another_key_under_our_kid_refused),
        cmocka_unit_test(unknown_kid_refused),
        cmocka_unit_test(alg_none_refused),
        cmocka_unit_test(hs256_keyed_with_public_key_refused),
        cmocka_unit_test(malformed_tokens_refused),
        cmocka_unit_test(rfc7515_a1_hmac_vector),
        cmocka_unit_test(seal_round_trip_and_tamper_detection),
        cmocka_unit_test(seal_uses_a_fresh_iv_each_time),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
