/* gatehouse CLI — a tenant's access settings in its record: networks and
 * session lifetimes (docs/cli.md). The policy file's tenant section applies
 * where the record sets nothing; `policy apply` copies what the file states.
 *
 *   tenant set --tenant T [--networks "10.0.0.0/8,192.0.2.1" | none]
 *                         [--idle 30m|none] [--lifetime 12h|none]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gatehouse/error.h"
#include "gatehouse/netset.h"
#include "gatehouse/policy.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

int tenant_set_is_access(int argc, char **argv)
{
    static const char *const opts[] = { "--networks", "--idle", "--lifetime" };
    size_t i, n;
    int a;

    for (a = 1; a < argc; a++)
        for (i = 0; i < sizeof opts / sizeof opts[0]; i++) {
            n = strlen(opts[i]);
            if (strncmp(argv[a], opts[i], n) == 0 &&
                (argv[a][n] == '\0' || argv[a][n] == '='))
                return 1;
        }
    return 0;
}

/* --idle/--lifetime: a duration, or "none" (0: the policy file's). */
static int duration_arg(const char *opt, const char *v, int64_t *out)
{
    if (v == NULL) {
        *out = GH_TENANT_KEEP;
        return 0;
    }
    if (strcmp(v, "none") == 0) {
        *out = 0;
        return 0;
    }
    if (gh_duration_parse(v, strlen(v), out) != 0)
        return fail(1, "%s must be a duration such as 30m or 12h, or none: "
                    "%s", opt, v);
    return 0;
}

/* Set networks (list, "none" to unset, NULL to keep) and lifetimes of
 * tenant, each change audited with its before and after. Prints its own
 * lines; 0 or 1. src names where the values came from ("" or " (from the
 * policy file)"). */
int tenant_access_set(gh_store_t *st, const char *dir, const char *tenant,
                      const char *nets, int64_t idle, int64_t lifetime,
                      const char *src)
{
    gh_tenant_t before, after;
    char b[96], a[96];
    int rc;

    if ((rc = gh_tenant_get(st, tenant, &before)) != 0)
        return rc == GH_ENOTFOUND ? fail(1, "unknown tenant: %s", tenant)
               : fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
    if (nets != NULL) {
        rc = gh_tenant_set_networks(st, tenant,
                                    strcmp(nets, "none") == 0 ? NULL : nets);
        if (rc == GH_EINVAL)
            return fail(1, "--networks must be addresses or networks "
                        "(10.0.0.0/8, no host bits), at most %d, or none: %s",
                        GH_TENANT_NETS_COUNT, nets);
        if (rc != 0)
            return fail(1, "cannot set the networks of %s: %s", tenant,
                        gh_strerror(rc));
        if ((rc = gh_tenant_get(st, tenant, &after)) != 0)
            return fail(1, "cannot read tenant %s: %s", tenant,
                        gh_strerror(rc));
        cli_audit_admin(st, dir, tenant, "tenant.networks", tenant, "success",
                        src[0] ? "policy file" : NULL,
                        gh_tenant_networks_text(&before),
                        gh_tenant_networks_text(&after));
        printf("tenant %s networks: %s%s\n", tenant,
               gh_tenant_networks_text(&after), src);
    }
    if (idle == GH_TENANT_KEEP && lifetime == GH_TENANT_KEEP)
        return 0;
    rc = gh_tenant_set_session(st, tenant, idle, lifetime);
    if (rc == GH_EINVAL)
        return fail(1, "session lifetimes of %s: each from 1m to 3650d, idle "
                    "no longer than lifetime", tenant);
    if (rc != 0)
        return fail(1, "cannot set the session lifetimes of %s: %s", tenant,
                    gh_strerror(rc));
    if ((rc = gh_tenant_get(st, tenant, &after)) != 0)
        return fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
    gh_tenant_session_text(&before, b, sizeof b);
    gh_tenant_session_text(&after, a, sizeof a);
    cli_audit_admin(st, dir, tenant, "tenant.session", tenant, "success",
                    src[0] ? "policy file" : NULL, b, a);
    printf("tenant %s session: %s%s\n", tenant, a, src);
    return 0;
}

int cmd_tenant_access(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant",   required_argument, NULL, 't' },
        { "networks", required_argument, NULL, 'n' },
        { "idle",     required_argument, NULL, 'i' },
        { "lifetime", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    const char *tenant = NULL, *nets = NULL, *idle_s = NULL, *life_s = NULL;
    gh_store_t *st = NULL;
    int64_t idle, lifetime;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'n': nets = optarg; break;
        case 'i': idle_s = optarg; break;
        case 'l': life_s = optarg; break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc || tenant == NULL)
        return usage_error("%s", "usage: tenant set --tenant T [--networks "
                           "LIST|none] [--idle D|none] [--lifetime D|none] "
                           "(without other options)");
    if (duration_arg("--idle", idle_s, &idle) != 0 ||
        duration_arg("--lifetime", life_s, &lifetime) != 0)
        return 1;
    if (open_store(dir, &st) != 0)
        return 1;
    rc = tenant_access_set(st, dir, tenant, nets, idle, lifetime, "");
    gh_store_close(st);
    return rc;
}

/* policy apply: the networks, idle and lifetime the file's tenant section
 * states go into the record when they differ from it. */
int tenant_access_from_policy(gh_store_t *st, const gh_policy_tenant_t *pt)
{
    char canon[GH_TENANT_NETS_MAX + 1];
    const char *nets = NULL;
    int64_t idle = GH_TENANT_KEEP, lifetime = GH_TENANT_KEEP;
    gh_tenant_t t;
    int rc;

    if ((rc = gh_tenant_get(st, pt->name, &t)) != 0)
        return fail(1, "cannot read tenant %s: %s", pt->name, gh_strerror(rc));
    if (pt->networks_text != NULL) {
        /* an empty list in the file: no restriction, as an unset record */
        if (gh_tenant_networks_canon(pt->networks_text, canon,
                                     sizeof canon) != 0)
            nets = pt->networks_text[0] == '\0' ? "none" : pt->networks_text;
        else
            nets = canon;
        if (strcmp(nets, "none") == 0 ? !t.networks_set
            : t.networks_set && strcmp(t.networks, nets) == 0)
            nets = NULL;
    }
    if (pt->idle > 0 && pt->idle != t.idle)
        idle = pt->idle;
    if (pt->lifetime > 0 && pt->lifetime != t.lifetime)
        lifetime = pt->lifetime;
    if (nets == NULL && idle == GH_TENANT_KEEP && lifetime == GH_TENANT_KEEP)
        return 0;
    return tenant_access_set(st, cli_datadir, pt->name, nets, idle, lifetime,
                             " (from the policy file)");
}

int tenant_access_check(const gh_policy_tenant_t *pt, void *arg)
{
    char canon[GH_TENANT_NETS_MAX + 1];
    gh_tenant_t t;
    int rc;

    if (pt->networks_text != NULL && pt->networks_text[0] != '\0' &&
        gh_tenant_networks_canon(pt->networks_text, canon, sizeof canon) != 0)
        return fail(1, "tenant %s: its networks cannot go into the tenant "
                    "record (no host bits, at most %d): nothing applied",
                    pt->name, GH_TENANT_NETS_COUNT);
    rc = gh_tenant_get(arg, pt->name, &t);
    if (rc == GH_ENOTFOUND)
        memset(&t, 0, sizeof t);   /* created by the apply: nothing set */
    else if (rc != 0)
        return fail(1, "cannot read tenant %s: %s", pt->name,
                    gh_strerror(rc));
    if (!gh_tenant_session_ok(pt->idle > 0 ? pt->idle : t.idle,
                              pt->lifetime > 0 ? pt->lifetime : t.lifetime))
        return fail(1, "tenant %s: its session idle and lifetime, with "
                    "the record's, are out of bounds (each from 1m to "
                    "3650d, idle no longer than lifetime): nothing applied",
                    pt->name);
    return 0;
}

/* policy explain: the tenant record's networks, compiled, when it sets
 * them (*out NULL otherwise; the caller frees). Prints its own error. */
int tenant_nets_load(gh_store_t *st, const char *tenant, gh_netset_t **out)
{
    gh_tenant_t t;
    gh_netset_t *s;
    int rc;

    *out = NULL;
    rc = gh_tenant_get(st, tenant, &t);
    if (rc == GH_ENOTFOUND || (rc == 0 && !t.networks_set))
        return 0;
    if (rc != 0)
        return fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
    if ((s = gh_netset_new()) == NULL)
        return fail(1, "out of memory");
    if (gh_netset_add_list(s, t.networks, GH_TENANT_NETS_COUNT, NULL, 0) <= 0 ||
        gh_netset_compile(s) != 0) {
        gh_netset_free(s);
        return fail(1, "tenant %s: stored networks unreadable", tenant);
    }
    *out = s;
    return 0;
}
