/* gatehouse — canonical request paths (see include/gatehouse/path.h). */
#include <string.h>

#include "gatehouse/error.h"
#include "gatehouse/path.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode and check; the checks run on the decoded bytes, and the escapes
 * that would decode to '/', '\', NUL or '.' are refused before decoding, so
 * "%2e%2e" can never become a dot segment behind our back. */
int gh_path_canonical(const char *raw, size_t len, char *out, size_t cap,
                      size_t *outlen, const char **why)
{
    size_t i, o = 0;
    int hi, lo;
    unsigned char c;

    *why = NULL;
    if (len == 0 || raw[0] != '/') {
        *why = "path must begin with '/'";
        return GH_EINVAL;
    }
    if (len >= cap || len > GH_PATH_MAX) {
        *why = "path too long";
        return GH_ETOOBIG;
    }
    for (i = 0; i < len; i++) {
        c = (unsigned char)raw[i];
        if (c == '%') {
            if (i + 2 >= len) {
                *why = "malformed percent-encoding";
                return GH_EINVAL;
            }
            hi = hexval((unsigned char)raw[i + 1]);
            lo = hexval((unsigned char)raw[i + 2]);
            if (hi < 0 || lo < 0) {
                *why = "malformed percent-encoding";
                return GH_EINVAL;
            }
            c = (unsigned char)(hi << 4 | lo);
            if (c == '/' || c == '\\' || c == '\0' || c == '.') {
                *why = "encoded '/', '\\', NUL or '.' in path";
                return GH_EINVAL;
            }
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "control character in path";
            return GH_EINVAL;
        }
        if (c == '\\') {
            *why = "backslash in path";
            return GH_EINVAL;
        }
        /* "/admin;x" is "/admin" to servlet containers (path parameters) */
        if (c == ';') {
            *why = "';' in path (path parameters)";
            return GH_EINVAL;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';

    /* Segment checks on the decoded path: no "//", no "." or ".." segment,
     * no segment ending in '.' or ' ' (Windows and IIS drop those:
     * "/admin." and "/admin%20" are "/admin" there). */
    for (i = 0; i < o; i++) {
        /* "%252e" decodes to "%2e": a backend that decodes twice reads a
         * dot (or a slash) we never saw. Every '%' here was "%25". */
        if (out[i] == '%' && i + 2 < o && hexval((unsigned char)out[i + 1]) >= 0
            && hexval((unsigned char)out[i + 2]) >= 0) {
            *why = "double percent-encoding in path";
            return GH_EINVAL;
        }
        if ((out[i] == '.' || out[i] == ' ') && (i + 1 == o || out[i + 1] == '/')
            && !(out[i] == '.' && out[i - 1] == '/')
            && !(out[i] == '.' && out[i - 1] == '.' && i >= 2 && out[i - 2] == '/')) {
            *why = "path segment ending in '.' or ' '";
            return GH_EINVAL;
        }
        if (out[i] != '/')
            continue;
        if (i + 1 < o && out[i + 1] == '/') {
            *why = "empty path segment";
            return GH_EINVAL;
        }
        if (i + 1 < o && out[i + 1] == '.' &&
            (i + 2 == o || out[i + 2] == '/' ||
             (out[i + 2] == '.' && (i + 3 == o || out[i + 3] == '/')))) {
            *why = "dot segment in path";
            return GH_EINVAL;
        }
    }
    *outlen = o;
    return 0;
}
