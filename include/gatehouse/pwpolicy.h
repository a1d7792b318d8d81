/* gatehouse — password policy: per-tenant profiles, the blocklist, and
 * verdicts in plain words.
 *
 * A tenant stores a profile and the parameters an operator overrode
 * (gh_pwsettings_t, store.h). gh_pwpolicy_resolve() turns them into the
 * rules in force; gh_pwpolicy_check() judges a candidate password and lists
 * every rule it fails as one plain sentence, the same words the web page,
 * the CLI and the API show (docs/password-policy.md):
 *
 *   profile  min length             max  classes  blocklist  history
 *   nist     15 (8 if MFA required)  256  0        on         5
 *   classes  8                       256  3        on         5
 *
 * Both profiles refuse a password that is, or is built on, the email's
 * local part, the person's name or the tenant's name ("context"), and
 * refuse invalid UTF-8 and control characters. Lengths are counted in
 * Unicode code points of the NFC form; the NFC form is also what gets
 * hashed and verified, so "é" typed precomposed or decomposed is one
 * password.
 *
 * Unicode (NFC, case folding, character classes) comes from GLib; nothing
 * here keeps state but the blocklist, which is immutable once loaded and
 * safe to share between threads.
 */
#ifndef GATEHOUSE_PWPOLICY_H
#define GATEHOUSE_PWPOLICY_H

#include <stddef.h>
#include "gatehouse/store.h"

/* Parameter ranges an operator may set (gh_pwsettings_check). */
#define GH_PW_MIN_FLOOR        8     /* both promises say at least 8 */
#define GH_PW_MAX_FLOOR       64     /* NIST: accept at least 64 */
#define GH_PW_MAX_CEIL       256     /* code points; GH_PASSWORD_MAX bytes */
#define GH_PW_CLASSES_MAX      4
#define GH_PW_HISTORY_LIMIT   GH_PW_HISTORY_MAX
#define GH_PW_MAX_AGE_LIMIT 3650     /* days */

/* Profile defaults. */
#define GH_PW_NIST_MIN        15
#define GH_PW_NIST_MIN_MFA     8
#define GH_PW_CLASSES_MIN      8
#define GH_PW_CLASSES_CLASSES  3
#define GH_PW_HISTORY_DEFAULT  5

/* The packaged list of common passwords (Debian's john-data) and the
 * environment variable naming the CLI's extra operator list. */
#define GH_BLOCKLIST_DEFAULT  "/usr/share/john/password.lst"
#define GH_BLOCKLIST_ENV      "GATEHOUSE_PASSWORD_BLOCKLIST"

/* The rules in force for one tenant. */
typedef struct {
    int      profile;        /* GH_PWPROFILE_* */
    unsigned min_length;     /* code points */
    unsigned max_length;
    unsigned min_classes;    /* 0..4 */
    unsigned history;        /* no reuse of the last N, current included */
    unsigned max_age_days;   /* 0: no expiry */
    int      blocklist;
} gh_pwpolicy_t;

/* "nist" / "classes"; NULL for an unknown profile. */
const char *gh_pwprofile_name(int profile);
/* GH_PWPROFILE_* for a name, or -1. */
int gh_pwprofile_parse(const char *name);

/* Fill out from the stored settings; mfa_required is the tenant's live
 * MFA requirement (the policy's tenants.T.mfa). Settings out of range
 * fall back to the profile's value (gh_pwsettings_check refuses them
 * before they are stored). */
void gh_pwpolicy_resolve(const gh_pwsettings_t *s, int mfa_required,
                         gh_pwpolicy_t *out);
/* 0 when every overridden parameter is within its range and the resolved
 * minimum is not above the maximum; GH_EINVAL with one sentence in err
 * otherwise. */
int gh_pwsettings_check(const gh_pwsettings_t *s, int mfa_required,
                        char *err, size_t errlen);
/* One line describing p, e.g. "nist: 15-256 characters, any characters,
 * blocklist on, history 5, no expiry" (for the CLI and the change page). */
void gh_pwpolicy_describe(const gh_pwpolicy_t *p, char *out, size_t cap);

/* ---- Unicode ---- */

/* The form a password is hashed and verified in: a malloc'd NFC copy when
 * pw is valid UTF-8 without NUL, else a plain copy of the bytes (a login
 * must still be able to try an old password). Free with gh_pw_free. */
int gh_pw_canonical(const char *pw, size_t len, char **out, size_t *outlen);
/* The comparison form of the blocklist and the context rule: a malloc'd
 * case-folded NFC copy of s, which must be valid UTF-8 without NUL
 * (GH_EINVAL otherwise). Free with gh_pw_free. */
int gh_pw_fold(const char *s, size_t len, char **out, size_t *outlen);
/* Wipe and free a buffer from gh_pw_canonical or gh_pw_fold (NULL
 * accepted). */
void gh_pw_free(char *p, size_t len);

/* ---- blocklist ---- */

typedef struct gh_blocklist gh_blocklist_t;

/* Load the lists at paths (one password per line; "#!comment" lines,
 * blank lines, invalid UTF-8 and lines over GH_PASSWORD_MAX bytes are
 * skipped) into one hash set of case-folded NFC entries. GH_EIO with the
 * path in err when a file cannot be read; GH_ENOMEM. */
int gh_blocklist_load(gh_blocklist_t **out, const char *const *paths,
                      size_t npaths, char *err, size_t errlen);
/* 1 when pw (NFC or not; any case) or its core (pw without the non-letters
 * at either end, at least 4 characters: "Password123!" -> "password") is
 * listed. */
int gh_blocklist_contains(const gh_blocklist_t *bl, const char *pw,
                          size_t len);
size_t gh_blocklist_size(const gh_blocklist_t *bl);
void gh_blocklist_free(gh_blocklist_t *bl);

/* ---- verdicts ---- */

/* One bit per rule, for tests and the API. */
enum {
    GH_PWR_UTF8      = 1 << 0,
    GH_PWR_CONTROL   = 1 << 1,
    GH_PWR_SHORT     = 1 << 2,
    GH_PWR_LONG      = 1 << 3,
    GH_PWR_CLASSES   = 1 << 4,
    GH_PWR_BLOCKLIST = 1 << 5,
    GH_PWR_EMAIL     = 1 << 6,
    GH_PWR_NAME      = 1 << 7,
    GH_PWR_TENANT    = 1 << 8,
    GH_PWR_HISTORY   = 1 << 9,
};

#define GH_VERDICT_MAX   10
#define GH_VERDICT_TEXT 112

/* Every failed rule: a bit in rules and a sentence in text[], in the order
 * of the enum above. n == 0: acceptable. */
typedef struct {
    unsigned rules;
    unsigned n;
    char     text[GH_VERDICT_MAX][GH_VERDICT_TEXT];
} gh_verdict_t;

/* What the context and history rules look at; any member may be NULL. */
typedef struct {
    const char             *email;           /* normalised */
    const char             *name;            /* the person's display name */
    const char             *tenant;          /* tenant id */
    const char             *tenant_display;
    const gh_credential_t  *cred;            /* current + earlier hashes */
} gh_pwcontext_t;

/* Judge pw (len bytes as typed) against p. Returns 0 when acceptable,
 * GH_EDENIED when some rule failed (v lists them all), GH_EINVAL when the
 * blocklist rule is on and bl is NULL, GH_ENOMEM. The history rule costs
 * one Argon2id verification per remembered password: call from a thread
 * or the CLI. */
int gh_pwpolicy_check(const gh_pwpolicy_t *p, const gh_blocklist_t *bl,
                      const char *pw, size_t len, const gh_pwcontext_t *cx,
                      gh_verdict_t *v);
/* The sentences joined by "; " into out (truncated at a sentence boundary
 * when cap is too small). Returns the length. */
size_t gh_verdict_join(const gh_verdict_t *v, char *out, size_t cap);

#endif
