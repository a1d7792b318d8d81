/* gatehouse — one path, decided and proxied.
 *
 * nginx decides on a normalised URI (decoded, dot segments resolved, slashes
 * merged) but proxies the raw one; a backend may normalise differently. So
 * for protected apps we accept only raw paths whose one reading is obvious:
 * gh_path_canonical() decodes the raw path and refuses anything a backend
 * could read as another path — encoded '/', '\' or NUL, encoded dots,
 * backslashes, ';' (servlet path parameters: "/admin;x" is "/admin"
 * there), empty segments ("//"), dot segments ("/./", "/../"), segments
 * ending in '.' or ' ' (Windows and IIS strip them), an encoded '%' that
 * forms another escape ("%252e": double decoding), control characters,
 * malformed escapes. Callers then require the result to
 * equal nginx's normalised URI, so the decided path is the proxied path.
 */
#ifndef GATEHOUSE_PATH_H
#define GATEHOUSE_PATH_H

#include <stddef.h>

#define GH_PATH_MAX 8192

/* Decode raw (len bytes, the path only, no query) into out (cap bytes,
 * NUL-terminated, *outlen without the NUL). Returns 0, GH_EINVAL with *why
 * set to a short static reason, or GH_ETOOBIG. */
int gh_path_canonical(const char *raw, size_t len, char *out, size_t cap,
                      size_t *outlen, const char **why);

#endif
