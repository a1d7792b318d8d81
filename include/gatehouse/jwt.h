/* gatehouse — signed identity for backends: ES256 JWTs and their keys.
 *
 * Keys are ECDSA P-256. A key's id (kid) is its RFC 7638 JWK thumbprint.
 * Signing and verification go through libjwt, wrapped: the verifier pins
 * the algorithm to ES256 before decoding (libjwt 1.10 trusts the token's
 * own "alg": an HS256 token keyed with our public PEM would verify) and
 * again after, never runs with a missing key, and checks exp, nbf, iss and
 * aud itself (libjwt 1.10 checks none of them).
 */
#ifndef GATEHOUSE_JWT_H
#define GATEHOUSE_JWT_H

#include <stddef.h>
#include <stdint.h>

#define GH_KID_LEN      43     /* base64url SHA-256 */
#define GH_JWK_COORD    43     /* base64url of a 32-byte coordinate */
#define GH_PUBPEM_MAX   256
#define GH_PRIVPEM_MAX  512
#define GH_JWT_MAX      4096

/* A fresh P-256 key: private key as PKCS#8 PEM (NUL-terminated, wipe it),
 * public key as SPKI PEM, the JWK coordinates and the kid. */
int gh_jwt_keygen(char priv[GH_PRIVPEM_MAX], char pub[GH_PUBPEM_MAX],
                  char x[GH_JWK_COORD + 1], char y[GH_JWK_COORD + 1],
                  char kid[GH_KID_LEN + 1]);

/* Coordinates (left-padded to 32 bytes) and RFC 7638 thumbprint of a P-256
 * public key PEM. GH_EINVAL for anything else. */
int gh_jwk_from_pem(const char *pub, char x[GH_JWK_COORD + 1],
                    char y[GH_JWK_COORD + 1], char kid[GH_KID_LEN + 1]);

/* The claims gatehouse asserts to a backend. */
typedef struct {
    const char        *iss;
    const char        *sub;        /* stable user id */
    const char        *aud;
    const char        *email;
    const char        *name;
    const char        *tenant;
    const char *const *roles;
    size_t             nroles;
    const char        *amr;        /* "pwd", "pwd+otp": split on '+' */
    int64_t            iat;        /* also nbf */
    int64_t            exp;
    int64_t            auth_time;
} gh_assertion_t;

/* Sign an assertion with priv (PEM) under kid; *token is malloc'd (free
 * it). A fresh random jti each time. */
int gh_jwt_sign_assertion(const gh_assertion_t *a, const char *priv,
                          const char *kid, char **token);

/* A public key the verifier may use. */
typedef struct {
    const char *kid;
    const char *pem;
} gh_jwt_pubkey_t;

/* Verify token (len bytes): three base64url parts, header alg exactly
 * "ES256", a kid naming one of keys, a valid signature, exp > now - leeway,
 * nbf (if present) <= now + leeway, iss equal to iss (when iss != NULL),
 * aud equal to or (array) containing aud (when aud != NULL).
 * Returns 0 and, when claims != NULL, a malloc'd JSON text of the claims;
 * otherwise GH_EDENIED (signature, alg, kid), GH_EEXPIRED (exp, nbf) or
 * GH_EINVAL (malformed, iss, aud), with *why a short static reason. */
int gh_jwt_verify(const char *token, size_t len, const gh_jwt_pubkey_t *keys,
                  size_t nkeys, const char *iss, const char *aud, int64_t now,
                  int64_t leeway, char **claims, const char **why);

#endif
