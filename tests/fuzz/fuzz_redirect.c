/* Fuzz gh_redirect_ok (authn/redirect.c): the post-login / post-logout
 * return target. Property: an accepted target never leaves the origin or
 * the allow list — a relative one starts with exactly one '/', an absolute
 * one is https to an allowed host, and neither carries a byte a browser
 * repairs (backslash, control, space, non-ASCII), nor such a byte encoded
 * in its path. */
#include <string.h>

#include "fuzz.h"
#include "gatehouse/redirect.h"

static const char *const hosts[] = { "app.example.com", "wiki.example.com:8443" };

static int
ci_prefix(const char *s, size_t n, const char *lit)
{
    size_t i, m = strlen(lit);

    if (n < m)
        return 0;
    for (i = 0; i < m; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *rd = (const char *)data;
    size_t i, auth;

    if (!gh_redirect_ok(rd, size, hosts, 2))
        return 0;
    FUZZ_CHECK(size > 0 && size <= GH_RD_MAX);
    for (i = 0; i < size; i++) {
        unsigned char c = data[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '\\');
    }
    /* no encoded TAB, LF, CR or NUL before the query */
    for (i = 0; i + 2 < size && rd[i] != '?' && rd[i] != '#'; i++)
        FUZZ_CHECK(!(rd[i] == '%' && rd[i + 1] == '0'
                     && strchr("09aAdD", rd[i + 2]) != NULL));
    if (rd[0] == '/') {
        FUZZ_CHECK(size == 1 || rd[1] != '/');
        FUZZ_CHECK(!ci_prefix(rd + 1, size - 1, "%2f"));
        FUZZ_CHECK(!ci_prefix(rd + 1, size - 1, "%5c"));
        return 0;
    }
    FUZZ_CHECK(ci_prefix(rd, size, "https://"));
    for (auth = 8; auth < size && rd[auth] != '/'; auth++)
        FUZZ_CHECK(rd[auth] != '@' && rd[auth] != '?' && rd[auth] != '#');
    /* the authority is one of the allowed hosts, with its port (443 when
     * absent; leading zeros are the same number to a browser) */
    {
        size_t n = auth - 8, h, k;
        const char *a = rd + 8;
        unsigned long port = 443;
        int ok;

        for (h = 0; h < n && a[h] != ':'; h++)
            ;
        if (h < n) {
            port = 0;
            for (k = h + 1; k < n; k++) {
                FUZZ_CHECK(a[k] >= '0' && a[k] <= '9');
                port = port * 10 + (unsigned long)(a[k] - '0');
            }
        }
        ok = (h == 15 && ci_prefix(a, h, "app.example.com") && port == 443)
             || (h == 16 && ci_prefix(a, h, "wiki.example.com") && port == 8443);
        FUZZ_CHECK(ok);
    }
    if (auth < size)
        FUZZ_CHECK(auth + 1 == size || rd[auth + 1] != '/');
    return 0;
}
