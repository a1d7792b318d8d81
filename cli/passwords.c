/* gatehouse CLI — tenant password policy, checked passwords, unlocking,
 * and the audit events of the commands that change any of them.
 *
 *   tenant set --tenant T [--password-profile nist|classes]
 *              [--password-min N] [--password-max N] [--password-classes N]
 *              [--password-history N] [--password-max-age DAYS]
 *              [--blocklist on|off]          (any value may be "default")
 *   tenant show --tenant T
 *   user unlock --email E
 *
 * Every password the CLI sets (init, user add, user passwd) goes through
 * the tenant's policy first; a refusal is one line, "gatehouse: password
 * refused: <sentence>; <sentence>", with the sentences the web page shows.
 * The blocklist is Debian's john-data list plus the file named by
 * $GATEHOUSE_PASSWORD_BLOCKLIST (docs/password-policy.md).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/pwpolicy.h"
#include "gatehouse/store.h"
#include "gatehouse/throttle.h"

#include "cli.h"

#define VERDICT_LINE 900

/* ---- audit ---- */

/* "cli:<login name>" of the account running the command. */
static const char *actor(void)
{
    static char who[80];
    struct passwd *pw;

    if (who[0] == '\0') {
        pw = getpwuid(geteuid());
        if (pw != NULL)
            snprintf(who, sizeof who, "cli:%s", pw->pw_name);
        else
            snprintf(who, sizeof who, "cli:uid=%u", (unsigned)geteuid());
    }
    return who;
}

const char *cli_actor(void)
{
    return actor();
}

void cli_audit(const char *dir, const char *tenant, const char *event,
               const char *detail)
{
    int rc = gh_audit_open(dir);

    if (rc == 0)
        rc = gh_audit(actor(), tenant, "-", "-", event, detail);
    if (rc != 0)
        fprintf(stderr, "gatehouse: warning: audit record %s not written: "
                "%s\n", event, gh_strerror(rc));
}

/* ---- the blocklist, loaded once per command ---- */

static gh_blocklist_t *blocklist;

static void blocklist_free(void)
{
    gh_blocklist_free(blocklist);
    blocklist = NULL;
}

/* The list, loading it on first use. Prints its own error; NULL then. */
static const gh_blocklist_t *cli_blocklist(void)
{
    const char *paths[2];
    const char *extra = getenv(GH_BLOCKLIST_ENV);
    char err[512];
    size_t n = 0;
    int rc;

    if (blocklist != NULL)
        return blocklist;
    paths[n++] = GH_BLOCKLIST_DEFAULT;
    if (extra != NULL && extra[0] != '\0')
        paths[n++] = extra;
    rc = gh_blocklist_load(&blocklist, paths, n, err, sizeof err);
    if (rc != 0) {
        fail(1, "%s", err[0] ? err : gh_strerror(rc));
        return NULL;
    }
    atexit(blocklist_free);
    return blocklist;
}

/* ---- checked passwords ---- */

int password_verdict(const gh_pwsettings_t *pws, int mfa, const gh_user_t *u,
                     const char *tenant_display, const gh_credential_t *cred,
                     const char *pw, size_t len, unsigned *keep)
{
    const gh_blocklist_t *bl = NULL;
    gh_pwpolicy_t pol;
    gh_pwcontext_t cx;
    gh_verdict_t v;
    char line[VERDICT_LINE];
    int rc;

    gh_pwpolicy_resolve(pws, mfa, &pol);
    if (pol.blocklist && (bl = cli_blocklist()) == NULL)
        return 1;
    memset(&cx, 0, sizeof cx);
    cx.email = u->email;
    cx.name = u->name;
    cx.tenant = u->tenant;
    cx.tenant_display = tenant_display;
    cx.cred = cred;
    rc = gh_pwpolicy_check(&pol, bl, pw, len, &cx, &v);
    if (rc == GH_EDENIED) {
        gh_verdict_join(&v, line, sizeof line);
        if (cli_datadir_ready)
            cli_audit(cli_datadir, u->tenant, "password_refused", line);
        return fail(1, "password refused: %s", line);
    }
    if (rc != 0)
        return fail(1, "cannot check the password: %s", gh_strerror(rc));
    if (keep != NULL)
        *keep = pol.history > 0 ? pol.history - 1 : 0;
    return 0;
}

int password_hash_nfc(const gh_pwhash_params_t *params, const char *pw,
                      size_t len, char hash[GH_HASH_MAX])
{
    char *canon = NULL;
    size_t canon_len = 0;
    int rc = gh_pw_canonical(pw, len, &canon, &canon_len);

    if (rc == 0)
        rc = gh_password_hash(params, canon, canon_len, hash);
    gh_pw_free(canon, canon_len);
    if (rc != 0)
        return fail(1, "cannot hash password: %s", gh_strerror(rc));
    return 0;
}

int password_accept(gh_store_t *st, const gh_user_t *u,
                    const gh_credential_t *cred, const char *pw, size_t len,
                    char hash[GH_HASH_MAX], unsigned *keep)
{
    gh_pwhash_params_t params;
    gh_tenant_t t;
    int rc, mfa = 0;

    rc = gh_tenant_get(st, u->tenant, &t);
    if (rc == GH_ENOTFOUND)
        return fail(1, "unknown tenant: %s", u->tenant);
    if (rc != 0)
        return fail(1, "cannot read tenant %s: %s", u->tenant, gh_strerror(rc));
    if (tenant_mfa_required(st, u->tenant, &mfa) != 0)
        return 1;
    if (password_verdict(&t.pw, mfa, u, t.display, cred, pw, len, keep) != 0)
        return 1;
    rc = gh_pwhash_params_load(st, &params);
    if (rc != 0)
        return fail(1, "cannot read password hashing parameters: %s",
                    gh_strerror(rc));
    return password_hash_nfc(&params, pw, len, hash);
}

/* ---- tenant set / show ---- */

/* A parameter value: N in [lo, hi], "default", or (for max-age) "off". */
static int param_arg(const char *opt, const char *s, long lo, long hi,
                     int *out)
{
    long v;

    if (strcmp(s, "default") == 0) {
        *out = GH_PWSET_DEFAULT;
        return 0;
    }
    if (strcmp(opt, "--password-max-age") == 0 && strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    if (strcmp(opt, "--blocklist") == 0) {
        if (strcmp(s, "on") == 0 || strcmp(s, "off") == 0) {
            *out = strcmp(s, "on") == 0;
            return 0;
        }
        return fail(1, "%s must be on, off or default: %s", opt, s);
    }
    if (parse_long(s, lo, hi, &v) != 0)
        return fail(1, "%s must be %ld to %ld or default: %s", opt, lo, hi, s);
    *out = (int)v;
    return 0;
}

static void print_setting(const char *what, int v, unsigned eff)
{
    if (v == GH_PWSET_DEFAULT)
        printf("  %-13s %u (profile default)\n", what, eff);
    else
        printf("  %-13s %u\n", what, eff);
}

/* The stored settings and the rules they make today. */
static int show_tenant(gh_store_t *st, const gh_tenant_t *t)
{
    gh_pwpolicy_t p;
    char desc[256];
    int mfa = 0;

    if (tenant_mfa_required(st, t->name, &mfa) != 0)
        return 1;
    gh_pwpolicy_resolve(&t->pw, mfa, &p);
    gh_pwpolicy_describe(&p, desc, sizeof desc);
    printf("tenant %s (%s)\n", t->name, t->display);
    printf("  mfa           %s\n", gh_mfa_level_name(t->mfa));
    printf("  profile       %s\n", gh_pwprofile_name(p.profile));
    print_setting("min length", t->pw.min_length, p.min_length);
    print_setting("max length", t->pw.max_length, p.max_length);
    print_setting("min classes", t->pw.min_classes, p.min_classes);
    print_setting("history", t->pw.history, p.history);
    print_setting("max age days", t->pw.max_age_days, p.max_age_days);
    printf("  %-13s %s%s\n", "blocklist", p.blocklist ? "on" : "off",
           t->pw.blocklist == GH_PWSET_DEFAULT ? " (profile default)" : "");
    printf("password policy: %s\n", desc);
    gh_tenant_session_text(t, desc, sizeof desc);
    printf("networks: %s\nsession: %s\n", gh_tenant_networks_text(t), desc);
    return 0;
}

int cmd_tenant_pw(const char *dir, const char *sub, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant",             required_argument, NULL, 't' },
        { "password-profile",   required_argument, NULL, 'P' },
        { "password-min",       required_argument, NULL, 'n' },
        { "password-max",       required_argument, NULL, 'x' },
        { "password-classes",   required_argument, NULL, 'k' },
        { "password-history",   required_argument, NULL, 'H' },
        { "password-max-age",   required_argument, NULL, 'a' },
        { "blocklist",          required_argument, NULL, 'b' },
        { "mfa",                required_argument, NULL, 'm' },
        { "help",               no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *tenant = NULL, *profile = NULL, *mfa_arg = NULL;
    const char *vals[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
    static const char *const names[6] = {
        "--password-min", "--password-max", "--password-classes",
        "--password-history", "--password-max-age", "--blocklist" };
    static const long lo[6] = { 1, 1, 0, 0, 0, 0 };
    static const long hi[6] = { GH_PWSET_MAXVAL, GH_PWSET_MAXVAL, 100,
                                GH_PWSET_MAXVAL, GH_PWSET_MAXVAL, 1 };
    gh_pwsettings_t pw;
    gh_tenant_t t;
    gh_store_t *st = NULL;
    gh_pwpolicy_t p;
    char err[256], desc[256];
    int *dst[6];
    int c, i, rc = 1, any = 0, mfa = 0, level = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'P': profile = optarg; any = 1; break;
        case 'n': vals[0] = optarg; any = 1; break;
        case 'x': vals[1] = optarg; any = 1; break;
        case 'k': vals[2] = optarg; any = 1; break;
        case 'H': vals[3] = optarg; any = 1; break;
        case 'a': vals[4] = optarg; any = 1; break;
        case 'b': vals[5] = optarg; any = 1; break;
        case 'm': mfa_arg = optarg; break;
        case 'h': print_usage(); return 0;
        default:  return bad_option(c, argv);
        }
    }
    if (argc != optind)
        return usage_error("unexpected argument: %s", argv[optind]);
    if (tenant == NULL)
        return usage_error("tenant %s needs --tenant", sub);
    if (strcmp(sub, "show") == 0 && (any || mfa_arg != NULL))
        return usage_error("%s", "tenant show takes only --tenant");
    if (strcmp(sub, "set") == 0 && !any && mfa_arg == NULL)
        return usage_error("%s", "tenant set needs --mfa or at least one "
                           "password option");
    if (mfa_arg != NULL && (level = gh_mfa_level_parse(mfa_arg)) < 0)
        return fail(1, "--mfa must be off, optional or required: %s",
                    mfa_arg);
    if (profile != NULL && gh_pwprofile_parse(profile) < 0)
        return fail(1, "unknown password profile (nist or classes): %s",
                    profile);
    if (open_store(dir, &st) != 0)
        return 1;
    rc = gh_tenant_get(st, tenant, &t);
    if (rc != 0) {
        rc = rc == GH_ENOTFOUND ? fail(1, "unknown tenant: %s", tenant)
             : fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
        goto out;
    }
    if (strcmp(sub, "show") == 0) {
        rc = show_tenant(st, &t);
        goto out;
    }
    if (mfa_arg != NULL) {
        rc = gh_tenant_set_mfa(st, tenant, level);
        if (rc != 0) {
            rc = fail(1, "cannot set the MFA level of %s: %s", tenant,
                      gh_strerror(rc));
            goto out;
        }
        cli_audit(dir, tenant, "tenant_mfa", gh_mfa_level_name(level));
        printf("tenant %s mfa: %s\n", tenant, gh_mfa_level_name(level));
        rc = 0;
        if (!any)
            goto out;
    }

    /* A new profile starts from its own defaults: whatever is not given
     * alongside it does not carry over from the old one. */
    pw = t.pw;
    if (profile != NULL) {
        gh_pwsettings_default(&pw);
        pw.profile = gh_pwprofile_parse(profile);
    }
    dst[0] = &pw.min_length;
    dst[1] = &pw.max_length;
    dst[2] = &pw.min_classes;
    dst[3] = &pw.history;
    dst[4] = &pw.max_age_days;
    dst[5] = &pw.blocklist;
    rc = 1;
    for (i = 0; i < 6; i++) {
        if (vals[i] != NULL && param_arg(names[i], vals[i], lo[i], hi[i],
                                         dst[i]) != 0)
            goto out;
    }
    if (tenant_mfa_required(st, tenant, &mfa) != 0)
        goto out;
    if (gh_pwsettings_check(&pw, mfa, err, sizeof err) != 0) {
        rc = fail(1, "%s", err);
        goto out;
    }
    rc = gh_tenant_set_pwsettings(st, tenant, &pw);
    if (rc != 0) {
        rc = fail(1, "cannot store the password policy of %s: %s", tenant,
                  gh_strerror(rc));
        goto out;
    }
    {
        char before[256];

        gh_pwpolicy_resolve(&t.pw, mfa, &p);
        gh_pwpolicy_describe(&p, before, sizeof before);
        gh_pwpolicy_resolve(&pw, mfa, &p);
        gh_pwpolicy_describe(&p, desc, sizeof desc);
        cli_audit_admin(st, dir, tenant, "tenant.password_policy", tenant,
                        "success", desc, before, desc);
    }
    printf("tenant %s password policy: %s\n", tenant, desc);
    rc = 0;
out:
    gh_store_close(st);
    return rc;
}

/* Copy a policy file's tenants.T.password_profile into the tenant record
 * when it differs (the other parameters return to the profile's
 * defaults, as with tenant set --password-profile). */
int tenant_profile_from_policy(gh_store_t *st, const char *tenant,
                               const char *profile)
{
    gh_tenant_t t;
    gh_pwsettings_t pw;
    int p = gh_pwprofile_parse(profile), rc;
    char detail[128];

    if (p < 0)
        return fail(1, "unknown password profile: %s", profile);
    rc = gh_tenant_get(st, tenant, &t);
    if (rc != 0)
        return fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
    if (t.pw.profile == p)
        return 0;
    gh_pwsettings_default(&pw);
    pw.profile = p;
    rc = gh_tenant_set_pwsettings(st, tenant, &pw);
    if (rc != 0)
        return fail(1, "cannot store the password profile of %s: %s", tenant,
                    gh_strerror(rc));
    snprintf(detail, sizeof detail, "password profile %s (from the policy "
             "file)", profile);
    cli_audit(cli_datadir, tenant, "password_policy_change", detail);
    printf("tenant %s: password profile %s\n", tenant, profile);
    return 0;
}

/* ---- user unlock ---- */

int user_unlock(gh_store_t *st, const char *dir, const gh_user_t *u)
{
    gh_throttle_rec_t r;
    char detail[96];
    int rc;

    rc = gh_throttle_account(st, u->email, &r);
    if (rc != 0 && rc != GH_ENOTFOUND)
        return fail(1, "cannot read the login counter of %s: %s", u->email,
                    gh_strerror(rc));
    if (rc == GH_ENOTFOUND) {
        printf("%s was not locked (no failed logins counted)\n", u->email);
        return 0;
    }
    rc = gh_throttle_unlock(st, u->email);
    if (rc != 0 && rc != GH_ENOTFOUND)
        return fail(1, "cannot unlock %s: %s", u->email, gh_strerror(rc));
    snprintf(detail, sizeof detail, "%s; %u consecutive failures forgotten",
             r.locked ? "was locked" : "was not locked", r.fails);
    cli_audit(dir, u->tenant, "unlock", detail);
    printf("unlocked %s (%s)\n", u->email, detail);
    return 0;
}
