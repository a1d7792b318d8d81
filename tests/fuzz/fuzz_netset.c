/* Fuzz the address and CIDR parsers (authz/netset.c): gh_addr_parse on the
 * whole input (as an X-Forwarded-For hop is parsed), and the input split on
 * newlines as a CIDR list (as policy files and gatehouse_trusted_proxies
 * give it). Properties: a parsed address formats to text that parses back to
 * the same 16 bytes; a compiled set contains the base address of every
 * CIDR it accepted. */
#include <string.h>

#include "fuzz.h"
#include "gatehouse/netset.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char text[GH_ADDR_TEXT_MAX], buf[128];
    gh_addr_t a, b, bases[16];
    gh_netset_t *set;
    size_t off, end, nb = 0, i;

    if (gh_addr_parse(s, size, &a) == 0) {
        gh_addr_format(&a, text);
        FUZZ_CHECK(strlen(text) < GH_ADDR_TEXT_MAX);
        FUZZ_CHECK(gh_addr_parse(text, strlen(text), &b) == 0);
        FUZZ_CHECK(memcmp(&a, &b, sizeof a) == 0);
    }

    set = gh_netset_new();
    if (set == NULL)
        return 0;
    for (off = 0; off < size; off = end + 1) {
        for (end = off; end < size && s[end] != '\n'; end++)
            ;
        if (gh_netset_add(set, s + off, end - off) == 0 && nb < 16) {
            /* the address part of an accepted "addr/len" is its base */
            const char *slash = memchr(s + off, '/', end - off);
            size_t alen = slash ? (size_t)(slash - (s + off)) : end - off;
            if (alen < sizeof buf && gh_addr_parse(s + off, alen, &bases[nb]) == 0)
                nb++;
        }
    }
    if (gh_netset_compile(set) == 0) {
        for (i = 0; i < nb; i++)
            FUZZ_CHECK(gh_netset_contains(set, &bases[i]));
    }
    gh_netset_free(set);
    return 0;
}
