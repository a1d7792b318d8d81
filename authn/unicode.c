/* gatehouse — the Unicode forms passwords are compared in (see
 * include/gatehouse/pwpolicy.h). GLib provides NFC and case folding; every
 * intermediate copy of a password is wiped before it is freed. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "gatehouse/error.h"
#include "gatehouse/password.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/util.h"

/* 1 when s (len bytes) is valid UTF-8 without NUL (GLib refuses embedded
 * NULs when given a length). */
static int utf8_ok(const char *s, size_t len)
{
    return len <= GH_PASSWORD_MAX * 4 && g_utf8_validate(s, (gssize)len, NULL);
}

/* A GLib string moved into a malloc'd buffer of our own (so callers free
 * one way), the GLib copy wiped. */
static int take(gchar *g, char **out, size_t *outlen)
{
    size_t n;

    if (g == NULL)
        return GH_ENOMEM;
    n = strlen(g);
    *out = malloc(n + 1);
    if (*out == NULL) {
        gh_wipe(g, n);
        g_free(g);
        return GH_ENOMEM;
    }
    memcpy(*out, g, n + 1);
    *outlen = n;
    gh_wipe(g, n);
    g_free(g);
    return 0;
}

int gh_pw_canonical(const char *pw, size_t len, char **out, size_t *outlen)
{
    if (out == NULL || outlen == NULL || (pw == NULL && len > 0))
        return GH_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (len > 0 && utf8_ok(pw, len))
        return take(g_utf8_normalize(pw, (gssize)len, G_NORMALIZE_NFC),
                    out, outlen);
    *out = malloc(len + 1);
    if (*out == NULL)
        return GH_ENOMEM;
    if (len > 0)
        memcpy(*out, pw, len);
    (*out)[len] = '\0';
    *outlen = len;
    return 0;
}

/* Case-fold, then NFC: folding can produce a non-normalised string. Plain
 * ASCII (all of john's list) takes a fast path with the same result. */
int gh_pw_fold(const char *s, size_t len, char **out, size_t *outlen)
{
    gchar *f;
    size_t i;
    int ascii = 1;

    if (out == NULL || outlen == NULL || (s == NULL && len > 0))
        return GH_EINVAL;
    *out = NULL;
    *outlen = 0;
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80 || s[i] == '\0') {
            ascii = 0;
            break;
        }
    }
    if (ascii) {
        *out = malloc(len + 1);
        if (*out == NULL)
            return GH_ENOMEM;
        for (i = 0; i < len; i++)
            (*out)[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
        (*out)[len] = '\0';
        *outlen = len;
        return 0;
    }
    if (!utf8_ok(s, len))
        return GH_EINVAL;
    f = g_utf8_casefold(s, (gssize)len);
    if (f == NULL)
        return GH_ENOMEM;
    /* GLib folds Cherokee small letters to capitals but capitals back to
     * small ones (U+AB72 -> U+13A2 -> U+AB72), so the two cases of one
     * word would never meet: lower-case the folded text once more. */
    i = strlen(f);
    {
        gchar *d = g_utf8_strdown(f, (gssize)i);

        gh_wipe(f, i);
        g_free(f);
        if (d == NULL)
            return GH_ENOMEM;
        f = d;
    }
    i = strlen(f);
    {
        gchar *n = g_utf8_normalize(f, (gssize)i, G_NORMALIZE_NFC);

        gh_wipe(f, i);
        g_free(f);
        return take(n, out, outlen);
    }
}

void gh_pw_free(char *p, size_t len)
{
    if (p == NULL)
        return;
    gh_wipe(p, len);
    free(p);
}
