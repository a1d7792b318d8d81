/* gatehouse — password policy: profiles, parameters and verdicts (see
 * include/gatehouse/pwpolicy.h and docs/password-policy.md).
 *
 * Every rule is evaluated and every failure becomes one sentence, so a
 * person sees all that is wrong at once; the sentences are built here and
 * only here, so the web page, the CLI and the API say the same thing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "gatehouse/error.h"
#include "gatehouse/password.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/util.h"

#define CONTEXT_MIN 3     /* code points a context word needs to count */

static const char *const profile_names[] = { "nist", "classes" };

const char *gh_pwprofile_name(int profile)
{
    if (profile < 0 || profile > GH_PWPROFILE_CLASSES)
        return NULL;
    return profile_names[profile];
}

int gh_pwprofile_parse(const char *name)
{
    int i;

    for (i = 0; name != NULL && i <= GH_PWPROFILE_CLASSES; i++)
        if (strcmp(name, profile_names[i]) == 0)
            return i;
    return -1;
}

/* The range of each parameter an operator may set. */
static const struct {
    size_t      off;       /* in gh_pwsettings_t */
    int         lo, hi;
    const char *what;      /* for the refusal */
} params[] = {
    { offsetof(gh_pwsettings_t, min_length), GH_PW_MIN_FLOOR, GH_PW_MAX_CEIL,
      "the minimum length" },
    { offsetof(gh_pwsettings_t, max_length), GH_PW_MAX_FLOOR, GH_PW_MAX_CEIL,
      "the maximum length" },
    { offsetof(gh_pwsettings_t, min_classes), 0, GH_PW_CLASSES_MAX,
      "the number of character classes" },
    { offsetof(gh_pwsettings_t, history), 0, GH_PW_HISTORY_LIMIT,
      "the password history" },
    { offsetof(gh_pwsettings_t, max_age_days), 0, GH_PW_MAX_AGE_LIMIT,
      "the maximum age in days" },
    { offsetof(gh_pwsettings_t, blocklist), 0, 1, "the blocklist switch" },
};

static int param(const gh_pwsettings_t *s, size_t i)
{
    return *(const int *)((const char *)s + params[i].off);
}

void gh_pwpolicy_resolve(const gh_pwsettings_t *s, int mfa_required,
                         gh_pwpolicy_t *out)
{
    unsigned *dst[] = { &out->min_length, &out->max_length,
                        &out->min_classes, &out->history,
                        &out->max_age_days, NULL };
    size_t i;
    int v;

    memset(out, 0, sizeof *out);
    out->profile = s != NULL && s->profile == GH_PWPROFILE_CLASSES
                   ? GH_PWPROFILE_CLASSES : GH_PWPROFILE_NIST;
    if (out->profile == GH_PWPROFILE_CLASSES) {
        out->min_length = GH_PW_CLASSES_MIN;
        out->min_classes = GH_PW_CLASSES_CLASSES;
    } else {
        out->min_length = mfa_required ? GH_PW_NIST_MIN_MFA : GH_PW_NIST_MIN;
        out->min_classes = 0;
    }
    out->max_length = GH_PW_MAX_CEIL;
    out->history = GH_PW_HISTORY_DEFAULT;
    out->max_age_days = 0;
    out->blocklist = 1;
    if (s == NULL)
        return;
    for (i = 0; i < sizeof params / sizeof params[0]; i++) {
        v = param(s, i);
        if (v == GH_PWSET_DEFAULT || v < params[i].lo || v > params[i].hi)
            continue;
        if (dst[i] != NULL)
            *dst[i] = (unsigned)v;
        else
            out->blocklist = v;
    }
}

int gh_pwsettings_check(const gh_pwsettings_t *s, int mfa_required,
                        char *err, size_t errlen)
{
    gh_pwpolicy_t p;
    size_t i;
    int v;

    if (s == NULL || err == NULL || errlen == 0)
        return GH_EINVAL;
    err[0] = '\0';
    if (gh_pwprofile_name(s->profile) == NULL) {
        snprintf(err, errlen, "unknown password profile (nist or classes)");
        return GH_EINVAL;
    }
    for (i = 0; i < sizeof params / sizeof params[0]; i++) {
        v = param(s, i);
        if (v != GH_PWSET_DEFAULT && (v < params[i].lo || v > params[i].hi)) {
            snprintf(err, errlen, "%s must be %d to %d", params[i].what,
                     params[i].lo, params[i].hi);
            return GH_EINVAL;
        }
    }
    gh_pwpolicy_resolve(s, mfa_required, &p);
    if (p.min_length > p.max_length) {
        snprintf(err, errlen, "the minimum length (%u) is above the maximum "
                 "(%u)", p.min_length, p.max_length);
        return GH_EINVAL;
    }
    return 0;
}

void gh_pwpolicy_describe(const gh_pwpolicy_t *p, char *out, size_t cap)
{
    char classes[96] = "", history[64], age[48];

    if (p->min_classes > 0)
        snprintf(classes, sizeof classes, " with at least %u of: lower case, "
                 "upper case, digits, others", p->min_classes);
    if (p->history == 0)
        snprintf(history, sizeof history, "no history");
    else
        snprintf(history, sizeof history, "no reuse of the last %u",
                 p->history);
    if (p->max_age_days == 0)
        snprintf(age, sizeof age, "no expiry");
    else
        snprintf(age, sizeof age, "expires after %u days", p->max_age_days);
    snprintf(out, cap, "%s: %u to %u characters%s, blocklist %s, %s, %s",
             gh_pwprofile_name(p->profile), p->min_length, p->max_length,
             classes, p->blocklist ? "on" : "off", history, age);
}

/* ---- verdicts ---- */

static void refuse(gh_verdict_t *v, unsigned rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(gh_verdict_t *v, unsigned rule, const char *fmt, ...)
{
    va_list ap;

    if (v->rules & rule)
        return;
    v->rules |= rule;
    if (v->n == GH_VERDICT_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(v->text[v->n++], GH_VERDICT_TEXT, fmt, ap);
    va_end(ap);
}

size_t gh_verdict_join(const gh_verdict_t *v, char *out, size_t cap)
{
    size_t off = 0, n, i;

    if (cap == 0)
        return 0;
    out[0] = '\0';
    for (i = 0; i < v->n; i++) {
        n = strlen(v->text[i]);
        if (off + (i ? 2 : 0) + n + 1 > cap)
            break;
        if (i) {
            memcpy(out + off, "; ", 2);
            off += 2;
        }
        memcpy(out + off, v->text[i], n + 1);
        off += n;
    }
    return off;
}

/* ---- the context rule ---- */

/* s folded, keeping only letters and digits ("Alice.Smith" ->
 * "alicesmith"); malloc'd, "" when nothing is left. */
static char *squash(const char *s, size_t len)
{
    char *fold = NULL, *out, *o;
    const char *p;
    size_t flen;
    gunichar c;

    if (gh_pw_fold(s, len, &fold, &flen) != 0)
        return NULL;
    out = malloc(flen + 1);
    if (out != NULL) {
        o = out;
        for (p = fold; *p != '\0'; p = g_utf8_next_char(p)) {
            c = g_utf8_get_char(p);
            if (g_unichar_isalnum(c))
                o += g_unichar_to_utf8(c, o);
        }
        *o = '\0';
    }
    gh_pw_free(fold, flen);
    return out;
}

/* Whether the squashed password (or its core: without the digits at
 * either end) equals word or one of its parts (runs of letters and
 * digits) of at least CONTEXT_MIN characters. */
static int built_on(const char *sq, const char *core, const char *word)
{
    const char *p, *start;
    char *w;
    size_t n;
    int hit = 0;

    if (word == NULL || *word == '\0' || *sq == '\0')
        return 0;
    /* the whole word, squashed */
    w = squash(word, strlen(word));
    if (w == NULL)
        return 0;
    if (g_utf8_strlen(w, -1) >= CONTEXT_MIN &&
        (strcmp(sq, w) == 0 || strcmp(core, w) == 0))
        hit = 1;
    free(w);
    /* each part */
    for (p = word; !hit && *p != '\0';) {
        while (*p != '\0' && !g_unichar_isalnum(g_utf8_get_char_validated(p, -1)))
            p = g_utf8_next_char(p);
        start = p;
        while (*p != '\0' && g_unichar_isalnum(g_utf8_get_char_validated(p, -1)))
            p = g_utf8_next_char(p);
        n = (size_t)(p - start);
        if (n == 0)
            continue;
        w = squash(start, n);
        if (w == NULL)
            continue;
        if (g_utf8_strlen(w, -1) >= CONTEXT_MIN &&
            (strcmp(sq, w) == 0 || strcmp(core, w) == 0))
            hit = 1;
        free(w);
    }
    return hit;
}

static void context_rule(const char *nfc, size_t len, const gh_pwcontext_t *cx,
                         gh_verdict_t *v)
{
    char local[GH_EMAIL_MAX + 1], *sq, *core, *end;
    const char *at;

    if (cx == NULL)
        return;
    sq = squash(nfc, len);
    if (sq == NULL)
        return;
    /* the core: no digits at either end ("alice2024" -> "alice") */
    core = sq;
    while (*core >= '0' && *core <= '9')
        core++;
    core = strdup(core);
    if (core == NULL)
        goto out;
    end = core + strlen(core);
    while (end > core && end[-1] >= '0' && end[-1] <= '9')
        *--end = '\0';

    if (cx->email != NULL && (at = strchr(cx->email, '@')) != NULL &&
        (size_t)(at - cx->email) < sizeof local) {
        memcpy(local, cx->email, (size_t)(at - cx->email));
        local[at - cx->email] = '\0';
        if (built_on(sq, core, local))
            refuse(v, GH_PWR_EMAIL, "contains your email name");
    }
    if (built_on(sq, core, cx->name))
        refuse(v, GH_PWR_NAME, "contains your name");
    if (built_on(sq, core, cx->tenant) || built_on(sq, core, cx->tenant_display))
        refuse(v, GH_PWR_TENANT, "contains the organisation's name");
out:
    gh_pw_free(core, core ? strlen(core) : 0);
    gh_pw_free(sq, strlen(sq));
}

/* ---- the history rule ---- */

static void history_rule(const gh_pwpolicy_t *p, const char *nfc, size_t len,
                         const gh_credential_t *c, gh_verdict_t *v)
{
    unsigned i, n;
    int used = 0;

    if (c == NULL || p->history == 0)
        return;
    if (c->hash[0] != '\0' && gh_password_verify(c->hash, nfc, len) == 0)
        used = 1;
    n = p->history - 1 < c->nhistory ? p->history - 1 : c->nhistory;
    /* every remembered hash is tried, hit or not: the time taken says
     * nothing about which one matched */
    for (i = 0; i < n; i++)
        if (gh_password_verify(c->history[i], nfc, len) == 0)
            used = 1;
    if (!used)
        return;
    if (p->history == 1)
        refuse(v, GH_PWR_HISTORY, "the same as your current password");
    else
        refuse(v, GH_PWR_HISTORY, "used before (one of your last %u "
               "passwords)", p->history);
}

/* ---- the check ---- */

int gh_pwpolicy_check(const gh_pwpolicy_t *p, const gh_blocklist_t *bl,
                      const char *pw, size_t len, const gh_pwcontext_t *cx,
                      gh_verdict_t *v)
{
    char *nfc = NULL;
    const char *q;
    size_t nlen = 0;
    unsigned cps = 0, classes;
    int lower = 0, upper = 0, digit = 0, other = 0, cntrl = 0, rc;
    gunichar c;

    if (p == NULL || v == NULL || (pw == NULL && len > 0))
        return GH_EINVAL;
    memset(v, 0, sizeof *v);
    if (p->blocklist && bl == NULL)
        return GH_EINVAL;
    if (len > 0 && memchr(pw, '\0', len) != NULL) {
        refuse(v, GH_PWR_CONTROL, "contains control characters");
        return GH_EDENIED;
    }
    if (len > GH_PASSWORD_MAX) {
        refuse(v, GH_PWR_LONG, "too long: more than %u characters",
               p->max_length);
        return GH_EDENIED;
    }
    if (len > 0 && !g_utf8_validate(pw, (gssize)len, NULL)) {
        refuse(v, GH_PWR_UTF8, "not valid UTF-8 text");
        return GH_EDENIED;
    }
    rc = gh_pw_canonical(pw, len, &nfc, &nlen);
    if (rc != 0)
        return rc;

    for (q = nfc; *q != '\0'; q = g_utf8_next_char(q)) {
        c = g_utf8_get_char(q);
        cps++;
        if (g_unichar_iscntrl(c))
            cntrl = 1;
        else if (g_unichar_islower(c))
            lower = 1;
        else if (g_unichar_isupper(c))
            upper = 1;
        else if (g_unichar_isdigit(c))
            digit = 1;
        else
            other = 1;
    }
    classes = (unsigned)(lower + upper + digit + other);

    if (cntrl)
        refuse(v, GH_PWR_CONTROL, "contains control characters");
    if (cps < p->min_length)
        refuse(v, GH_PWR_SHORT, "too short: %u of at least %u characters",
               cps, p->min_length);
    if (cps > p->max_length || nlen > GH_PASSWORD_MAX)
        refuse(v, GH_PWR_LONG, "too long: %u of at most %u characters",
               cps, p->max_length);
    if (classes < p->min_classes)
        refuse(v, GH_PWR_CLASSES, "too few kinds of characters: %u of at "
               "least %u (lower case, upper case, digits, others)",
               classes, p->min_classes);
    if (p->blocklist && gh_blocklist_contains(bl, nfc, nlen))
        refuse(v, GH_PWR_BLOCKLIST, "found in a list of common passwords");
    context_rule(nfc, nlen, cx, v);
    if (nlen <= GH_PASSWORD_MAX)
        history_rule(p, nfc, nlen, cx ? cx->cred : NULL, v);

    gh_pw_free(nfc, nlen);
    return v->n > 0 ? GH_EDENIED : 0;
}
