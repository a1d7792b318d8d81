/* gatehouse CLI — the access policy and role bindings.
 *
 *   policy apply FILE     validate all of FILE, then make it live at once
 *   policy show           print the live policy text
 *   policy explain ...    what the gateway would decide, and why
 *   role grant|revoke|list
 *
 * Workers notice a new policy version on their next request; bindings live
 * in the user record, which every request reads: no reload, no re-login.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"
#include "gatehouse/path.h"
#include "gatehouse/policy.h"
#include "gatehouse/store.h"

#include "cli.h"

/* The policy `gatehouse init` stores: tenant T's members, managers and
 * administrators may use app "demo"; nothing else is open. */
static const char default_policy_fmt[] =
"# gatehouse default policy, stored by `gatehouse init`.\n"
"# Replace it with `gatehouse policy apply FILE` (docs/policy.md).\n"
"version: 1\n"
"roles: [admin]\n"
"apps:\n"
"  demo:\n"
"    display: Demo backend\n"
"    tenants: [%s]\n"
"    rules:\n"
"      - name: tenant-staff\n"
"        effect: allow\n"
"        roles: [member, manager, space-admin, gatehouse-admin, admin]\n";

int policy_store_default(gh_store_t *st, const char *tenant)
{
    char text[sizeof default_policy_fmt + GH_TENANT_MAX];
    char err[256];
    gh_policy_t *p = NULL;
    int n, rc;

    n = snprintf(text, sizeof text, default_policy_fmt, tenant);
    if (n < 0 || (size_t)n >= sizeof text)
        return GH_ETOOBIG;
    rc = gh_policy_compile(text, (size_t)n, &p, err, sizeof err);
    gh_policy_free(p);
    if (rc != 0)
        return rc;
    return gh_policy_put(st, text, (size_t)n, NULL);
}

/* Read a whole policy file (at most GH_POLICY_MAX_BYTES) into a malloc'd
 * NUL-terminated buffer. Prints its own error. */
static int read_file(const char *path, char **out, size_t *len)
{
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;
    ssize_t r;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(1, "cannot read %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(1, "not a regular file: %s", path);
    }
    if ((size_t)sb.st_size > GH_POLICY_MAX_BYTES) {
        close(fd);
        return fail(1, "%s: larger than %u bytes", path, GH_POLICY_MAX_BYTES);
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return fail(1, "out of memory");
    }
    while (got < (size_t)sb.st_size) {
        r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)sb.st_size) {
        free(buf);
        return fail(1, "cannot read %s: short read", path);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* Create the tenants a policy configures that the store does not have yet:
 * the file is declarative. A password_profile the file states is copied
 * into the tenant record (which `tenant set` otherwise owns). */
static int ensure_tenant(const gh_policy_tenant_t *t, void *arg)
{
    gh_store_t *st = arg;
    gh_tenant_t have;
    int rc = gh_tenant_get(st, t->name, &have);

    if (rc == GH_ENOTFOUND) {
        rc = gh_tenant_add(st, t->name, t->display && t->display[0]
                                         ? t->display : t->name);
        if (rc == 0)
            printf("created tenant %s\n", t->name);
    }
    if (rc != 0)
        return fail(1, "cannot create tenant %s: %s", t->name, gh_strerror(rc));
    if (t->mfa_set && (rc = gh_tenant_get(st, t->name, &have)) == 0 &&
        have.mfa != t->mfa_level) {
        rc = gh_tenant_set_mfa(st, t->name, t->mfa_level);
        if (rc != 0)
            return fail(1, "cannot set the MFA level of tenant %s: %s",
                        t->name, gh_strerror(rc));
        printf("tenant %s: mfa %s\n", t->name,
               gh_mfa_level_name(t->mfa_level));
        cli_audit(cli_datadir, t->name, "tenant_mfa",
                  gh_mfa_level_name(t->mfa_level));
    }
    if (rc != 0)
        return fail(1, "cannot read tenant %s: %s", t->name, gh_strerror(rc));
    if (t->password_profile_set &&
        tenant_profile_from_policy(st, t->name, t->password_profile) != 0)
        return 1;
    return tenant_access_from_policy(st, t);
}

/* The audit record of a grant or revoke: the user's bindings before
 * (u, read before the change) and after (read again). */
static void role_audit(gh_store_t *st, const char *dir, const gh_user_t *u,
                       const char *action, const char *role)
{
    char before[GH_ROLES_MAX + 1], after[GH_ROLES_MAX + 1];
    char target[GH_EMAIL_MAX + GH_ROLE_NAME_MAX + 8];
    gh_user_t now;

    cli_roles_text(u, before, sizeof before);
    if (gh_user_get(st, u->id, &now) == 0)
        cli_roles_text(&now, after, sizeof after);
    else
        snprintf(after, sizeof after, "?");
    snprintf(target, sizeof target, "%s role %s", u->email, role);
    cli_audit_admin(st, dir, u->tenant, action, target, "success", NULL,
                    before, after);
}

static int policy_apply(gh_store_t *st, const char *path)
{
    gh_policy_t *p = NULL;
    char *text = NULL, err[512];
    size_t len = 0;
    uint64_t ver;
    char before[48];
    int rc;

    if (read_file(path, &text, &len) != 0)
        return 1;
    /* All of it is checked before anything changes: a file with an error
     * leaves the live policy as it was. */
    rc = gh_policy_compile(text, len, &p, err, sizeof err);
    if (rc != 0) {
        rc = fail(1, "%s: %s", path, rc == GH_EINVAL ? err : gh_strerror(rc));
        goto out;
    }
    /* what the tenant sections copy into the records is checked against
     * them first too: a refusal half-way would leave half of it applied */
    rc = gh_policy_tenants(p, tenant_access_check, st);
    if (rc == 0)
        rc = gh_policy_tenants(p, ensure_tenant, st);
    if (rc != 0)
        goto out;
    {
        uint64_t old = 0;

        (void)gh_policy_version(st, &old);
        snprintf(before, sizeof before, "version %llu",
                 (unsigned long long)old);
    }
    rc = gh_policy_put(st, text, len, &ver);
    if (rc != 0) {
        rc = fail(1, "cannot store the policy: %s", gh_strerror(rc));
        goto out;
    }
    {
        uint8_t h[32];
        char hex[65], after[128];

        gh_sha256(text, len, h);
        gh_hex(h, 32, hex);
        snprintf(after, sizeof after, "version %llu sha256 %s",
                 (unsigned long long)ver, hex);
        cli_audit_admin(st, cli_datadir, NULL, "policy.apply", path,
                        "success", NULL, before, after);
    }
    printf("policy version %llu is live\n", (unsigned long long)ver);
out:
    gh_policy_free(p);
    free(text);
    return rc;
}

static int policy_show(gh_store_t *st)
{
    char *text = NULL;
    size_t len;
    uint64_t ver;
    int rc = gh_policy_get(st, &text, &len, &ver);

    if (rc == GH_ENOTFOUND)
        return fail(1, "no policy has been applied");
    if (rc != 0)
        return fail(1, "cannot read the policy: %s", gh_strerror(rc));
    fwrite(text, 1, len, stdout);
    if (len > 0 && text[len - 1] != '\n')
        putchar('\n');
    free(text);
    return 0;
}

/* The live policy, compiled. Prints its own error. */
static int live_policy(gh_store_t *st, gh_policy_t **p)
{
    char *text = NULL, err[512];
    size_t len;
    uint64_t ver;
    int rc = gh_policy_get(st, &text, &len, &ver);

    *p = NULL;
    if (rc == GH_ENOTFOUND)
        return fail(1, "no policy has been applied");
    if (rc != 0)
        return fail(1, "cannot read the policy: %s", gh_strerror(rc));
    rc = gh_policy_compile(text, len, p, err, sizeof err);
    free(text);
    if (rc != 0)
        return fail(1, "the stored policy does not compile: %s", err);
    return 0;
}

/* The tenant's MFA requirement: its record's level (`policy apply` copies
 * a level the policy file states into it). An unknown tenant requires
 * nothing. */
int tenant_mfa_required(gh_store_t *st, const char *tenant, int *mfa)
{
    gh_tenant_t t;
    int rc = gh_tenant_get(st, tenant, &t);

    *mfa = 0;
    if (rc == GH_ENOTFOUND)
        return 0;
    if (rc != 0)
        return fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
    *mfa = t.mfa == GH_MFA_REQUIRED;
    return 0;
}

/* Explain lines, indented under the request; the closing "decision:" line
 * stands on its own. */
static void print_line(const char *line, void *arg)
{
    (void)arg;
    printf("%s%s\n", strncmp(line, "decision:", 9) == 0 ? "" : "  ", line);
}

/* The path of an http(s) URL or of a bare path, without query/fragment. */
static int url_path(const char *url, const char **path, size_t *len)
{
    const char *p = url, *end;

    if (strncmp(p, "https://", 8) == 0 || strncmp(p, "http://", 7) == 0) {
        p = strstr(p, "://") + 3;
        p = strchr(p, '/');
        if (p == NULL)
            p = "/";
    }
    if (*p != '/')
        return -1;
    end = p + strcspn(p, "?#");
    *path = p;
    *len = (size_t)(end - p);
    return 0;
}

/* gh_policy_apps callback: remember the first app, stop (2) at a second. */
static int only_app(const char *name, void *arg)
{
    const char **app = arg;

    if (*app != NULL)
        return 2;
    *app = name;
    return 0;
}

static int policy_explain(gh_store_t *st, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "email",  required_argument, NULL, 'e' },
        { "method", required_argument, NULL, 'm' },
        { "url",    required_argument, NULL, 'u' },
        { "ip",     required_argument, NULL, 'i' },
        { "mfa",    no_argument,       NULL, 'f' },
        { "app",    required_argument, NULL, 'a' },
        { NULL, 0, NULL, 0 },
    };
    const char *tenant = NULL, *email_in = NULL, *method = "GET";
    const char *url = NULL, *ip = "127.0.0.1", *app = NULL, *raw, *why;
    const char *roles[GH_BINDINGS_MAX];
    char email[GH_EMAIL_MAX + 1], path[GH_PATH_MAX + 1];
    char addr_text[GH_ADDR_TEXT_MAX];
    gh_policy_t *p = NULL;
    gh_netset_t *nets = NULL;
    gh_request_t req;
    gh_decision_t d;
    gh_addr_t addr;
    gh_user_t u;
    size_t rawlen, plen, n, i;
    int c, mfa = 0, rc = 1;

    optind = 2;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'e': email_in = optarg; break;
        case 'm': method = optarg; break;
        case 'u': url = optarg; break;
        case 'i': ip = optarg; break;
        case 'f': mfa = 1; break;
        case 'a': app = optarg; break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    if (tenant == NULL || email_in == NULL || url == NULL)
        return usage_error("%s", "policy explain needs --tenant, --email and "
                           "--url");
    if (email_arg(email_in, email) != 0 || find_user(st, email, tenant, &u) != 0)
        return 1;
    if (gh_addr_parse(ip, strlen(ip), &addr) != 0)
        return fail(1, "not an IP address: %s", ip);
    if (url_path(url, &raw, &rawlen) != 0)
        return fail(1, "not an http(s) URL or absolute path: %s", url);
    if (gh_method_bit(method, strlen(method)) == 0)
        return fail(1, "not an HTTP method: %s", method);
    if (live_policy(st, &p) != 0)
        return 1;
    /* The app is the gatehouse_app of the nginx location the URL reaches,
     * which only nginx knows: name it, unless the policy has one app. */
    if (app == NULL && (gh_policy_apps(p, only_app, &app) != 0 || app == NULL)) {
        rc = usage_error("%s", "the policy has several apps: name one with "
                         "--app");
        goto out;
    }

    n = gh_user_active_roles(&u, gh_now(), roles);
    gh_addr_format(&addr, addr_text);
    printf("user: %s (%s), tenant %s, active roles [", u.email, u.id, u.tenant);
    for (i = 0; i < n; i++)
        printf("%s%s", i ? ", " : "", roles[i]);
    printf("]\nrequest: %s %s app %s from %s, second factor: %s\n", method,
           url, app, addr_text, mfa ? "yes" : "no");

    if (gh_user_off(&u, gh_now())) {
        printf("  the account is disabled: no session can exist\n"
               "decision: deny (account_disabled)\n");
        rc = 0;
        goto out;
    }
    if (gh_path_canonical(raw, rawlen, path, sizeof path, &plen, &why) != 0) {
        printf("  the path is refused before any rule: %s\n"
               "decision: deny (ambiguous_path, HTTP 400)\n", why);
        rc = 0;
        goto out;
    }
    memset(&req, 0, sizeof req);
    req.tenant = u.tenant;
    req.roles = roles;
    req.nroles = n;
    req.method = gh_method_bit(method, strlen(method));
    req.path = path;
    req.path_len = plen;
    req.addr = &addr;
    req.mfa = mfa;
    if ((rc = tenant_mfa_required(st, u.tenant, &req.tenant_mfa_required))
        != 0 || (rc = tenant_nets_load(st, u.tenant, &nets)) != 0)
        goto out;
    req.tenant_nets = nets;
    rc = gh_policy_decide(p, app, &req, &d, print_line, NULL);
    if (rc != 0) {
        rc = fail(1, "cannot decide: %s", gh_strerror(rc));
        goto out;
    }
    rc = 0;
out:
    gh_netset_free(nets);
    gh_policy_free(p);
    return rc;
}

int cmd_policy(const char *dir, int argc, char **argv)
{
    gh_store_t *st = NULL;
    int rc;

    if (argc < 2)
        return usage_error("%s", "policy: expected apply, show or explain");
    if (strcmp(argv[1], "apply") == 0 && argc != 3)
        return usage_error("%s", "usage: policy apply FILE");
    if (strcmp(argv[1], "show") == 0 && argc != 2)
        return usage_error("%s", "usage: policy show");
    if (strcmp(argv[1], "apply") != 0 && strcmp(argv[1], "show") != 0 &&
        strcmp(argv[1], "explain") != 0)
        return usage_error("policy: unknown subcommand: %s", argv[1]);
    if (open_store(dir, &st) != 0)
        return 1;
    if (strcmp(argv[1], "apply") == 0)
        rc = policy_apply(st, argv[2]);
    else if (strcmp(argv[1], "show") == 0)
        rc = policy_show(st);
    else
        rc = policy_explain(st, argc, argv);
    gh_store_close(st);
    return rc;
}

/* "YYYY-MM-DD": the grant holds through that whole day (UTC), so it ends
 * at the next midnight UTC. */
static int parse_until(const char *s, int64_t *until)
{
    struct tm tm;
    const char *end;
    time_t t;

    memset(&tm, 0, sizeof tm);
    if (strlen(s) != 10)
        return -1;
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end == NULL || *end != '\0' || strlen(s) != 10)
        return -1;
    {
        /* strptime takes "2027-02-30": refuse dates that do not exist */
        struct tm back;
        int y = tm.tm_year, m = tm.tm_mon, d = tm.tm_mday;

        t = timegm(&tm);
        if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL ||
            back.tm_year != y || back.tm_mon != m || back.tm_mday != d)
            return -1;
    }
    *until = (int64_t)t + 86400;
    return 0;
}

static void format_until(int64_t until, char out[32])
{
    time_t t = (time_t)(until - 1);   /* the last second it holds */
    struct tm tm;

    if (until == 0) {
        snprintf(out, 32, "-");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%d", &tm);
}

typedef struct {
    const char *email;
    int64_t     now;
} role_list_t;

static int print_bindings(const gh_user_t *u, void *arg)
{
    const role_list_t *rl = arg;
    char until[32];
    unsigned i;

    if (rl->email != NULL && strcmp(u->email, rl->email) != 0)
        return 0;
    for (i = 0; i < u->nbindings; i++) {
        format_until(u->bindings[i].until, until);
        printf("%s\t%s\t%s\t%s\t%s%s\n", u->email, u->tenant,
               u->bindings[i].role, until,
               u->bindings[i].until == 0 || u->bindings[i].until > rl->now
               ? "active" : "expired",
               u->disabled ? " (account disabled)" : "");
    }
    return 0;
}

int cmd_role(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "email",  required_argument, NULL, 'e' },
        { "until",  required_argument, NULL, 'u' },
        { NULL, 0, NULL, 0 },
    };
    const char *tenant = NULL, *email_in = NULL, *until_in = NULL, *sub;
    const char *role = NULL;
    char email[GH_EMAIL_MAX + 1];
    gh_policy_t *p = NULL;
    gh_store_t *st = NULL;
    role_list_t rl;
    int64_t until = 0;
    gh_user_t u;
    int c, rc = 1;

    if (argc < 2)
        return usage_error("%s", "role: expected grant, revoke or list");
    sub = argv[1];
    if (strcmp(sub, "grant") != 0 && strcmp(sub, "revoke") != 0 &&
        strcmp(sub, "list") != 0)
        return usage_error("role: unknown subcommand: %s", sub);
    optind = 2;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'e': email_in = optarg; break;
        case 'u': until_in = optarg; break;
        default:  return bad_option(c, argv);
        }
    }
    if (strcmp(sub, "list") == 0) {
        if (optind != argc || until_in != NULL)
            return usage_error("%s", "usage: role list [--tenant T] [--email E]");
    } else {
        if (optind + 1 != argc || tenant == NULL || email_in == NULL)
            return usage_error("usage: role %s --tenant T --email E ROLE%s", sub,
                               strcmp(sub, "grant") == 0 ? " [--until YYYY-MM-DD]"
                                                         : "");
        role = argv[optind];
        if (until_in != NULL && strcmp(sub, "grant") != 0)
            return usage_error("%s", "--until applies to grant only");
        if (until_in != NULL && parse_until(until_in, &until) != 0)
            return fail(1, "not a date (YYYY-MM-DD): %s", until_in);
    }
    if (email_in != NULL && email_arg(email_in, email) != 0)
        return 1;
    if (open_store(dir, &st) != 0)
        return 1;

    if (strcmp(sub, "list") == 0) {
        rl.email = email_in ? email : NULL;
        rl.now = gh_now();
        printf("email\ttenant\trole\tuntil\tstatus\n");
        rc = gh_user_list(st, tenant, print_bindings, &rl);
        if (rc == GH_EBADTENANT)
            rc = fail(1, "unknown tenant: %s", tenant);
        else if (rc != 0)
            rc = fail(1, "cannot list roles: %s", gh_strerror(rc));
        goto out;
    }

    if (find_user(st, email, tenant, &u) != 0)
        goto out;
    if (strcmp(sub, "grant") == 0) {
        /* Only roles the live policy knows: a typo must not become a
         * binding that silently grants nothing. */
        if (live_policy(st, &p) != 0)
            goto out;
        if (!gh_policy_role_known(p, role)) {
            rc = fail(1, "unknown role: %s (define it in the policy's roles)",
                      role);
            goto out;
        }
        rc = gh_role_grant(st, u.id, role, until);
        if (rc != 0) {
            rc = fail(1, "cannot grant %s: %s", role, gh_strerror(rc));
            goto out;
        }
        if (until != 0 && until <= gh_now())
            printf("granted %s to %s (note: this grant has already ended)\n",
                   role, email);
        else
            printf("granted %s to %s\n", role, email);
        role_audit(st, dir, &u, "role.grant", role);
    } else {
        rc = gh_role_revoke(st, u.id, role);
        if (rc == GH_ENOTFOUND) {
            rc = fail(1, "%s does not hold role %s", email, role);
            goto out;
        }
        if (rc != 0) {
            rc = fail(1, "cannot revoke %s: %s", role, gh_strerror(rc));
            goto out;
        }
        printf("revoked %s from %s\n", role, email);
        role_audit(st, dir, &u, "role.revoke", role);
    }
    rc = 0;
out:
    gh_policy_free(p);
    gh_store_close(st);
    return rc;
}
