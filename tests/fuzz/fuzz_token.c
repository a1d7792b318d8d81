/* Fuzz session-token and base64url parsing (authn/session.c, core/util.c):
 * what the __Host-gatehouse and CSRF cookie values go through. Properties:
 * gh_token_key accepts only GH_TOKEN_LEN base64url characters, and an
 * accepted token re-encodes to exactly itself (one spelling per session);
 * gh_b64url_decode never writes past its capacity and round-trips. */
#include <string.h>

#include "fuzz.h"
#include "gatehouse/session.h"
#include "gatehouse/util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[32], raw[64], fresh[32];
    char text[100];
    int n, m;

    if (gh_token_key((const char *)data, size, key) == 0) {
        FUZZ_CHECK(size == GH_TOKEN_LEN);
        n = gh_b64url_decode((const char *)data, size, raw, sizeof raw);
        FUZZ_CHECK(n == GH_TOKEN_BYTES);
        m = gh_b64url_encode(raw, (size_t)n, text, sizeof text);
        FUZZ_CHECK(m == GH_TOKEN_LEN && memcmp(text, data, size) == 0);
        gh_sha256(raw, GH_TOKEN_BYTES, fresh);
        (void)fresh;
    }

    /* a short capacity must be refused, never overrun */
    n = gh_b64url_decode((const char *)data, size, raw, 8);
    FUZZ_CHECK(n < 0 || n <= 8);
    n = gh_b64url_decode((const char *)data, size, raw, sizeof raw);
    if (n >= 0 && size <= 80) {
        m = gh_b64url_encode(raw, (size_t)n, text, sizeof text);
        FUZZ_CHECK(m >= 0 && (size_t)m == size && memcmp(text, data, size) == 0);
    }
    return 0;
}
