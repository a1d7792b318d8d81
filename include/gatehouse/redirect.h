/* gatehouse — validation of post-login return targets (the `rd` parameter).
 *
 * Accepted: a same-origin relative path ("/x?y#z": begins with exactly one
 * '/', not followed by '/' or '\\'), or an absolute https URL whose host
 * (optionally with :port) is in the configured allow list, compared
 * case-insensitively. Refused: backslashes anywhere, ASCII control characters
 * and spaces, percent-encoded slashes or backslashes before the path, other
 * schemes, userinfo ('@' before the path), anything longer than GH_RD_MAX.
 *
 * Details (decided in authn/redirect.c):
 * - Scheme and host compare case-insensitively ("HTTPS://HOST/" is accepted).
 * - Ports: an allow-list entry "host" matches the URL's host with no port or
 *   with :443; an entry "host:8443" matches only :8443 (an absent port counts
 *   as 443 on both sides). Hosts match exactly: no suffix, no wildcard, no
 *   trailing-dot folding. The host is [A-Za-z0-9.-] only (no IP literals in
 *   brackets, no IDN), the authority ends at the first '/' or at the end.
 * - Non-ASCII bytes are refused anywhere (send them percent-encoded).
 * - In the path (before '?' or '#') empty segments ("//") and dot segments
 *   (".", "..", also as "%2e") are refused: normalisation by a browser or a
 *   backend could turn them into a protocol-relative "//host". The first
 *   path segment may not begin with "%2f" or "%5c" (any case), and the path
 *   may not hold an encoded TAB, LF, CR or NUL ("%09", "%0a", "%0d", "%00":
 *   decoded, browsers drop the first three, so "/%09/evil" can become
 *   "//evil").
 */
#ifndef GATEHOUSE_REDIRECT_H
#define GATEHOUSE_REDIRECT_H

#include <stddef.h>

#define GH_RD_MAX 2048

/* 1 when rd (len bytes, not necessarily NUL-terminated) is acceptable. */
int gh_redirect_ok(const char *rd, size_t len, const char *const *hosts,
                   size_t nhosts);

#endif
