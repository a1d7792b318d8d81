/* gatehouse — validation of post-login return targets (the `rd` parameter).
 *
 * An open redirect on a login page turns the gateway into a phishing aid, so
 * this is a whitelist parser: it accepts a narrow, unambiguous shape and
 * refuses everything else, including things browsers or backends would
 * "helpfully" repair. Pure: no allocation, no locale, no global state.
 */
#include <stddef.h>
#include <string.h>

#include "gatehouse/redirect.h"

#define HTTPS_PREFIX     "https://"
#define HTTPS_PREFIX_LEN (sizeof HTTPS_PREFIX - 1)
#define DEFAULT_PORT     443u
#define HOST_MAX         253   /* DNS name limit */

/* ASCII-only lower-casing: no locale may change what we compare. */
static unsigned char
lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* 1 when s[0..n) equals the lower-case ASCII literal lit, ignoring case. */
static int
prefix_ci(const char *s, size_t n, const char *lit)
{
    size_t i, m = strlen(lit);

    if (n < m)
        return 0;
    for (i = 0; i < m; i++)
        if (lc((unsigned char)s[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

static int
host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Split "host" or "host:port" (n bytes) into the host length and numeric
 * port (DEFAULT_PORT when absent). Returns 1 when well-formed: a non-empty
 * host of [A-Za-z0-9.-] and, if present, a port of 1-5 digits in 1..65535. */
static int
parse_authority(const char *a, size_t n, size_t *hostlen, unsigned *port)
{
    size_t i = 0, digits;
    unsigned long v = 0;

    while (i < n && host_char((unsigned char)a[i]))
        i++;
    if (i == 0 || i > HOST_MAX)
        return 0;
    *hostlen = i;
    *port = DEFAULT_PORT;
    if (i == n)
        return 1;
    if (a[i] != ':')
        return 0;
    i++;
    digits = n - i;
    if (digits < 1 || digits > 5)
        return 0;
    for (; i < n; i++) {
        if (a[i] < '0' || a[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(a[i] - '0');
    }
    if (v < 1 || v > 65535)
        return 0;
    *port = (unsigned)v;
    return 1;
}

/* 1 when the URL's authority (a, n bytes) is in the allow list. Both sides
 * resolve to (host, port) with 443 for an absent port, so an entry without
 * a port matches the URL without a port or with :443, and an entry with a
 * port matches only that port. Hosts compare case-insensitively and exactly:
 * no suffix or wildcard matching, no trailing-dot folding. Malformed or NULL
 * entries match nothing. */
static int
host_allowed(const char *a, size_t n, const char *const *hosts, size_t nhosts)
{
    size_t hl, el, k, i;
    unsigned port, eport;

    if (!parse_authority(a, n, &hl, &port))
        return 0;
    for (k = 0; k < nhosts; k++) {
        const char *e = hosts != NULL ? hosts[k] : NULL;

        if (e == NULL || !parse_authority(e, strlen(e), &el, &eport))
            continue;
        if (el != hl || eport != port)
            continue;
        for (i = 0; i < hl; i++)
            if (lc((unsigned char)a[i]) != lc((unsigned char)e[i]))
                break;
        if (i == hl)
            return 1;
    }
    return 0;
}

/* 1 when p[0..n) starts with a percent-encoded '/' or '\\' ("%2f", "%5c",
 * any case): a backend that decodes before routing would see "//" there. */
static int
pct_slash_at(const char *p, size_t n)
{
    return prefix_ci(p, n, "%2f") || prefix_ci(p, n, "%5c");
}

/* 1 when the segment seg[0..n) is "." or ".." in raw or percent-encoded
 * form ("%2e"); these let "/./" + "/evil" collapse into "//evil" after
 * normalisation by a browser or backend. */
static int
dot_segment(const char *seg, size_t n)
{
    size_t i = 0, dots = 0;

    while (i < n) {
        if (seg[i] == '.') {
            i++;
        } else if (prefix_ci(seg + i, n - i, "%2e")) {
            i += 3;
        } else {
            return 0;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

/* Check a path-absolute reference p[0..n) (p[0] == '/'): the second byte is
 * not '/', the first segment does not start with an encoded slash, and the
 * path part (before '?' or '#') has no empty segment ("//") and no dot
 * segment. The query and fragment are left alone: they are the
 * application's data and cannot change the origin. */
static int
path_ok(const char *p, size_t n)
{
    size_t end, i, seg;

    if (n == 0 || p[0] != '/')
        return 0;
    if (n >= 2 && p[1] == '/')
        return 0;
    if (pct_slash_at(p + 1, n - 1))
        return 0;
    for (end = 0; end < n && p[end] != '?' && p[end] != '#'; end++)
        /* an encoded TAB, LF, CR or NUL: a backend that decodes and
         * redirects again hands the browser "/\t/evil", which it reads as
         * "//evil" (browsers drop TAB, LF and CR anywhere in a URL) */
        if (prefix_ci(p + end, n - end, "%09") || prefix_ci(p + end, n - end, "%0a")
            || prefix_ci(p + end, n - end, "%0d") || prefix_ci(p + end, n - end, "%00"))
            return 0;
    seg = 1;
    for (i = 1; i <= end; i++) {
        if (i < end && p[i] != '/')
            continue;
        /* segment p[seg..i) just ended */
        if (i < end && i == seg)
            return 0;                     /* "//" inside the path */
        if (dot_segment(p + seg, i - seg))
            return 0;
        seg = i + 1;
    }
    return 1;
}

/* 1 when rd is an acceptable return target (see redirect.h), 0 otherwise.
 * Byte rules apply to the whole string first: no control characters, space,
 * DEL, backslash or non-ASCII byte anywhere, whatever the position. */
int
gh_redirect_ok(const char *rd, size_t len, const char *const *hosts,
               size_t nhosts)
{
    size_t i, auth_end;

    if (rd == NULL || len == 0 || len > GH_RD_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)rd[i];

        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return 0;
    }

    if (rd[0] == '/')
        return path_ok(rd, len);

    /* Scheme and host are case-insensitive (RFC 3986 §3.1, §3.2.2) and
     * browsers fold them, so "HTTPS://ALLOWED.EXAMPLE/" is the same target
     * as "https://allowed.example/" and is accepted. */
    if (!prefix_ci(rd, len, HTTPS_PREFIX))
        return 0;
    /* The authority ends at the first '/' or at the end: '?', '#', '@', '%'
     * and everything else outside [A-Za-z0-9.-:] fail the host parse. */
    for (auth_end = HTTPS_PREFIX_LEN; auth_end < len && rd[auth_end] != '/';
         auth_end++)
        ;
    if (!host_allowed(rd + HTTPS_PREFIX_LEN, auth_end - HTTPS_PREFIX_LEN,
                      hosts, nhosts))
        return 0;
    if (auth_end == len)
        return 1;                         /* empty path */
    return path_ok(rd + auth_end, len - auth_end);
}
