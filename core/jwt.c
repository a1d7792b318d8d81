/* gatehouse — ES256 assertions: keys, thumbprints, signing, and a verifier
 * that does what libjwt 1.10 does not (see include/gatehouse/jwt.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "gatehouse/error.h"
#include "gatehouse/jwt.h"
#include "gatehouse/util.h"

/* Read a memory BIO into out (cap bytes, NUL-terminated). */
static int bio_text(BIO *b, char *out, size_t cap)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);

    if (n <= 0 || (size_t)n >= cap)
        return GH_ETOOBIG;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return 0;
}

int gh_jwt_keygen(char priv[GH_PRIVPEM_MAX], char pub[GH_PUBPEM_MAX],
                  char x[GH_JWK_COORD + 1], char y[GH_JWK_COORD + 1],
                  char kid[GH_KID_LEN + 1])
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    BIO *b1 = BIO_new(BIO_s_mem()), *b2 = BIO_new(BIO_s_mem());
    int rc = GH_ECRYPTO;

    if (pk == NULL || b1 == NULL || b2 == NULL)
        goto out;
    if (PEM_write_bio_PrivateKey(b1, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_PUBKEY(b2, pk) != 1)
        goto out;
    if ((rc = bio_text(b1, priv, GH_PRIVPEM_MAX)) != 0 ||
        (rc = bio_text(b2, pub, GH_PUBPEM_MAX)) != 0)
        goto out;
    rc = gh_jwk_from_pem(pub, x, y, kid);
out:
    if (rc != 0)
        gh_wipe(priv, GH_PRIVPEM_MAX);
    if (b1 != NULL) {
        char *p;
        long n = BIO_get_mem_data(b1, &p);
        if (n > 0)
            gh_wipe(p, (size_t)n);
    }
    BIO_free(b1);
    BIO_free(b2);
    EVP_PKEY_free(pk);
    return rc;
}

/* One coordinate, left-padded to 32 bytes, base64url. */
static int coord(EVP_PKEY *pk, const char *param, char out[GH_JWK_COORD + 1])
{
    BIGNUM *bn = NULL;
    uint8_t raw[32];
    int rc = GH_EINVAL;

    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return GH_EINVAL;
    if (BN_bn2binpad(bn, raw, sizeof raw) == (int)sizeof raw &&
        gh_b64url_encode(raw, sizeof raw, out, GH_JWK_COORD + 1) ==
            GH_JWK_COORD)
        rc = 0;
    BN_free(bn);
    return rc;
}

int gh_jwk_from_pem(const char *pub, char x[GH_JWK_COORD + 1],
                    char y[GH_JWK_COORD + 1], char kid[GH_KID_LEN + 1])
{
    BIO *b = NULL;
    EVP_PKEY *pk = NULL;
    char group[32], canon[160];
    uint8_t digest[32];
    size_t glen = 0;
    int rc = GH_EINVAL, n;

    if (pub == NULL)
        return GH_EINVAL;
    b = BIO_new_mem_buf(pub, -1);
    if (b == NULL)
        return GH_ENOMEM;
    pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof group, &glen) != 1 ||
        strcmp(group, "prime256v1") != 0)
        goto out;
    if (coord(pk, OSSL_PKEY_PARAM_EC_PUB_X, x) != 0 ||
        coord(pk, OSSL_PKEY_PARAM_EC_PUB_Y, y) != 0)
        goto out;
    /* RFC 7638: the required members, lexicographic order, no spaces. */
    n = snprintf(canon, sizeof canon,
                 "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                 x, y);
    if (n < 0 || (size_t)n >= sizeof canon)
        goto out;
    gh_sha256(canon, (size_t)n, digest);
    if (gh_b64url_encode(digest, sizeof digest, kid, GH_KID_LEN + 1) !=
        GH_KID_LEN)
        goto out;
    rc = 0;
out:
    EVP_PKEY_free(pk);
    BIO_free(b);
    return rc;
}

/* "a+b" -> ["a","b"] */
static json_t *amr_array(const char *amr)
{
    json_t *a = json_array();
    const char *p = amr, *plus;

    if (a == NULL)
        return NULL;
    while (p != NULL && *p != '\0') {
        plus = strchr(p, '+');
        json_array_append_new(a, json_stringn(p, plus ? (size_t)(plus - p)
                                                      : strlen(p)));
        p = plus ? plus + 1 : NULL;
    }
    return a;
}

int gh_jwt_sign_assertion(const gh_assertion_t *a, const char *priv,
                          const char *kid, char **token)
{
    json_t *claims = NULL, *roles = NULL;
    jwt_t *j = NULL;
    char *text = NULL, jti[33];
    uint8_t raw[16];
    size_t i;
    int rc = GH_ECRYPTO;

    *token = NULL;
    if (a == NULL || priv == NULL || kid == NULL || a->sub == NULL ||
        a->aud == NULL || a->iss == NULL)
        return GH_EINVAL;
    gh_random(raw, sizeof raw);
    gh_hex(raw, sizeof raw, jti);

    roles = json_array();
    for (i = 0; roles != NULL && i < a->nroles; i++)
        json_array_append_new(roles, json_string(a->roles[i]));
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, "
                       "s:o, s:o, s:I}",
                       "iss", a->iss, "sub", a->sub, "aud", a->aud,
                       "iat", (json_int_t)a->iat, "nbf", (json_int_t)a->iat,
                       "exp", (json_int_t)a->exp, "jti", jti,
                       "email", a->email ? a->email : "",
                       "name", a->name ? a->name : "",
                       "tenant", a->tenant ? a->tenant : "",
                       "roles", roles, "amr", amr_array(a->amr),
                       "auth_time", (json_int_t)a->auth_time);
    roles = NULL;   /* owned by claims (or freed by json_pack on failure) */
    if (claims == NULL) {
        rc = GH_EINVAL;
        goto out;
    }
    text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL || jwt_new(&j) != 0 || jwt_add_grants_json(j, text) != 0 ||
        jwt_add_header(j, "kid", kid) != 0 ||
        jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)priv,
                    (int)strlen(priv)) != 0)
        goto out;
    *token = jwt_encode_str(j);
    rc = *token != NULL ? 0 : GH_ECRYPTO;
out:
    jwt_free(j);
    free(text);
    json_decref(claims);
    return rc;
}

/* The decoded protected header of a compact JWS, as a JSON object. */
static json_t *jws_header(const char *tok, size_t len)
{
    const char *dot = memchr(tok, '.', len);
    uint8_t buf[1024];
    int n;

    if (dot == NULL)
        return NULL;
    n = gh_b64url_decode(tok, (size_t)(dot - tok), buf, sizeof buf);
    if (n <= 0)
        return NULL;
    return json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES,
                      NULL);
}

static int aud_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud))
        json_array_foreach(aud, i, v)
            if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
                return 1;
    return 0;
}

int gh_jwt_verify(const char *token, size_t len, const gh_jwt_pubkey_t *keys,
                  size_t nkeys, const char *iss, const char *aud, int64_t now,
                  int64_t leeway, char **claims, const char **why)
{
    json_t *hdr = NULL, *cl = NULL, *v;
    const char *alg, *kid, *pem = NULL, *p;
    char *tok = NULL, *cj = NULL;
    jwt_t *j = NULL;
    size_t i, dots = 0;
    int rc = GH_EINVAL;

    *why = "malformed token";
    if (claims != NULL)
        *claims = NULL;
    if (token == NULL || len == 0 || len > GH_JWT_MAX || keys == NULL)
        return GH_EINVAL;
    for (p = token; p < token + len; p++) {
        if (*p == '.')
            dots++;
        else if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return GH_EINVAL;
    }
    if (dots != 2)
        return GH_EINVAL;

    /* Pin the algorithm and find the key before libjwt sees the token. */
    hdr = jws_header(token, len);
    if (!json_is_object(hdr))
        goto out;
    alg = json_string_value(json_object_get(hdr, "alg"));
    kid = json_string_value(json_object_get(hdr, "kid"));
    if (alg == NULL || strcmp(alg, "ES256") != 0) {
        *why = "algorithm is not ES256";
        rc = GH_EDENIED;
        goto out;
    }
    for (i = 0; kid != NULL && i < nkeys; i++)
        if (keys[i].kid != NULL && keys[i].pem != NULL &&
            strcmp(keys[i].kid, kid) == 0)
            pem = keys[i].pem;
    if (pem == NULL || pem[0] == '\0') {
        *why = "unknown key id";
        rc = GH_EDENIED;
        goto out;
    }

    /* an explicit copy: token need not be NUL-terminated, and strndup()
     * is checked as a C string by strict sanitizers */
    tok = malloc(len + 1);
    if (tok == NULL) {
        rc = GH_ENOMEM;
        goto out;
    }
    memcpy(tok, token, len);
    tok[len] = '\0';
    if (jwt_decode(&j, tok, (const unsigned char *)pem, (int)strlen(pem)) != 0
        || j == NULL || jwt_get_alg(j) != JWT_ALG_ES256) {
        *why = "bad signature";
        rc = GH_EDENIED;
        goto out;
    }

    cj = jwt_get_grants_json(j, NULL);
    cl = cj ? json_loads(cj, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(cl)) {
        *why = "claims are not a JSON object";
        goto out;
    }
    v = json_object_get(cl, "exp");
    if (!json_is_integer(v)) {
        *why = "no exp claim";
        goto out;
    }
    if (json_integer_value(v) <= now - leeway) {
        *why = "expired";
        rc = GH_EEXPIRED;
        goto out;
    }
    v = json_object_get(cl, "nbf");
    if (v != NULL && (!json_is_integer(v) ||
                      json_integer_value(v) > now + leeway)) {
        *why = "not valid yet (nbf)";
        rc = GH_EEXPIRED;
        goto out;
    }
    if (iss != NULL) {
        v = json_object_get(cl, "iss");
        if (!json_is_string(v) || strcmp(json_string_value(v), iss) != 0) {
            *why = "wrong issuer";
            goto out;
        }
    }
    if (aud != NULL && !aud_matches(json_object_get(cl, "aud"), aud)) {
        *why = "wrong audience";
        goto out;
    }
    if (claims != NULL) {
        *claims = cj;
        cj = NULL;
    }
    *why = "valid";
    rc = 0;
out:
    free(cj);
    json_decref(cl);
    json_decref(hdr);
    jwt_free(j);
    free(tok);
    return rc;
}
