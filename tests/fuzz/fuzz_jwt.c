/* Fuzz gh_jwt_verify (core/jwt.c) with a fixed test key (it signs nothing
 * but the seed tokens). Property: whatever the token says, verification
 * succeeds only for an ES256 header naming our kid, within
 * GH_JWT_MAX bytes, and hands back claims. */
#include <string.h>

#include "fuzz.h"
#include "gatehouse/jwt.h"
#include "gatehouse/util.h"

#define KID "fuzz-test-key"

static const char pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzhvu2wdkyHu3KzJ/J2L7haqIck9W\n"
    "ei5zJFuqiQ99zLGUmV5S3Y29XPB5x8JMpYXWHoqget6AYX4Yfd081eGCdw==\n"
    "-----END PUBLIC KEY-----\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gh_jwt_pubkey_t keys[] = { { KID, pub } };
    const char *why = NULL, *dot;
    char *claims = NULL;
    uint8_t head[1024];
    int rc, n;

    rc = gh_jwt_verify((const char *)data, size, keys, 1,
                       "https://gw.example", "demo", 1800000000, 60, &claims,
                       &why);
    if (rc != 0) {
        FUZZ_CHECK(claims == NULL);
        return 0;
    }
    FUZZ_CHECK(claims != NULL && size <= GH_JWT_MAX);
    dot = memchr(data, '.', size);
    FUZZ_CHECK(dot != NULL);
    n = gh_b64url_decode((const char *)data, (size_t)(dot - (const char *)data),
                         head, sizeof head - 1);
    FUZZ_CHECK(n > 0);
    head[n] = '\0';
    FUZZ_CHECK(strstr((char *)head, "\"ES256\"") != NULL);
    FUZZ_CHECK(strstr((char *)head, "\"" KID "\"") != NULL);
    free(claims);
    return 0;
}
