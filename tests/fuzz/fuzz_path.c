/* Fuzz gh_path_canonical (authz/path.c): the path the policy decides on.
 * Properties of an accepted path: no longer than the raw one, starts with
 * '/', no empty or dot segment, no segment ending in '.' or ' ', no escape
 * left for a second decoding, no '\\', ';', control byte or NUL, and it is
 * a fixed point (canonicalising it again gives itself), so the decided path
 * and the proxied path cannot be read two ways. */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "gatehouse/path.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[GH_PATH_MAX + 2], again[GH_PATH_MAX + 2];
    const char *why = NULL;
    size_t n = 0, n2 = 0, i;
    int rc;

    if (size > GH_PATH_MAX + 1)
        size = GH_PATH_MAX + 1;
    rc = gh_path_canonical((const char *)data, size, out, sizeof out, &n, &why);
    if (rc != 0) {
        FUZZ_CHECK(why != NULL);
        return 0;
    }
    FUZZ_CHECK(n <= size && n > 0 && out[0] == '/' && out[n] == '\0');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\' && c != ';');
        /* no segment ends in '.' or ' ' (Windows strips them) */
        if ((c == '.' || c == ' ') && (i + 1 == n || out[i + 1] == '/'))
            FUZZ_CHECK(0);
        /* no escape left for a second decoding */
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)out[i + 1])
            && isxdigit((unsigned char)out[i + 2]))
            FUZZ_CHECK(0);
        if (c == '/' && i + 1 < n) {
            FUZZ_CHECK(out[i + 1] != '/');
            if (out[i + 1] == '.')
                FUZZ_CHECK(!(i + 2 == n || out[i + 2] == '/'
                             || (out[i + 2] == '.'
                                 && (i + 3 == n || out[i + 3] == '/'))));
        }
    }
    /* a decoded '%' may form a new escape: only check the fixed point when
     * the output has none */
    if (memchr(out, '%', n) == NULL) {
        rc = gh_path_canonical(out, n, again, sizeof again, &n2, &why);
        FUZZ_CHECK(rc == 0 && n2 == n && memcmp(out, again, n) == 0);
    }
    return 0;
}
