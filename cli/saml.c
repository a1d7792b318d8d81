/* gatehouse CLI — SAML: the tenant's identity provider and sign-in.
 *
 *   idp add --tenant T --metadata FILE [--allow-idp-initiated] [--allow-sha1]
 *   idp show --tenant T
 *   tenant set --tenant T --signin password|password+otp|saml
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "cli.h"
#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/saml.h"
#include "gatehouse/store.h"

/* Read a whole small file (at most max bytes) into a malloc'd string. */
static int read_small(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t got;

    *out = NULL;
    if (f == NULL)
        return fail(1, "cannot open %s: %s", path, strerror(errno));
    if ((buf = malloc(max + 2)) == NULL) {
        fclose(f);
        return fail(1, "out of memory");
    }
    got = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return fail(1, "cannot read %s", path);
    }
    fclose(f);
    if (got > max) {
        free(buf);
        return fail(1, "%s is larger than %zu bytes", path, max);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int load_master(const char *dir, uint8_t mk[GH_MASTER_KEY_BYTES])
{
    char path[4096];
    int rc;

    if (snprintf(path, sizeof path, "%s/%s", dir, GH_MASTER_KEY_FILE) >=
            (int)sizeof path)
        return fail(1, "data directory path too long");
    rc = gh_master_key_load(path, mk);
    if (rc != 0)
        return fail(1, "cannot load the master key %s: %s", path,
                    gh_strerror(rc));
    return 0;
}

int cmd_idp(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant",              required_argument, NULL, 't' },
        { "metadata",            required_argument, NULL, 'm' },
        { "allow-idp-initiated", no_argument,       NULL, 'i' },
        { "allow-sha1",          no_argument,       NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    const char *sub, *tenant = NULL, *file = NULL;
    unsigned flags = 0;
    uint8_t mk[GH_MASTER_KEY_BYTES];
    gh_store_t *st = NULL;
    char *md = NULL, *entity = NULL, detail[512];
    size_t len = 0;
    int c, rc;

    if (argc < 2 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "show") != 0))
        return usage_error("%s", "idp needs a subcommand: add or show");
    sub = argv[1];
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'm': file = optarg; break;
        case 'i': flags |= GH_SAML_IDP_INITIATED; break;
        case 's': flags |= GH_SAML_ALLOW_SHA1; break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc || tenant == NULL)
        return usage_error("%s", "usage: idp add --tenant T --metadata FILE "
                           "[--allow-idp-initiated] [--allow-sha1] | "
                           "idp show --tenant T");
    if (strcmp(sub, "show") == 0) {
        int signin;

        if (open_store(dir, &st) != 0)
            return 1;
        rc = gh_saml_signin_get(st, tenant, &signin);
        if (rc == 0)
            rc = gh_saml_sp_metadata(st, tenant, "https://HOST", &md);
        gh_store_close(st);
        if (rc == GH_ENOTFOUND)
            return fail(1, "no identity provider for tenant %s", tenant);
        if (rc != 0)
            return fail(1, "cannot read the SAML settings of %s: %s", tenant,
                        gh_strerror(rc));
        printf("signin\t%s\n%s", gh_signin_name(signin), md);
        free(md);
        return 0;
    }
    if (file == NULL)
        return usage_error("%s", "idp add needs --metadata FILE");
    if (read_small(file, GH_SAML_METADATA_MAX, &md, &len) != 0)
        return 1;
    if (load_master(dir, mk) != 0) {
        free(md);
        return 1;
    }
    if (open_store(dir, &st) != 0) {
        sodium_memzero(mk, sizeof mk);
        free(md);
        return 1;
    }
    rc = gh_saml_idp_set(st, mk, tenant, md, len, flags, &entity);
    sodium_memzero(mk, sizeof mk);
    gh_store_close(st);
    free(md);
    if (rc == GH_EBADTENANT)
        return fail(1, "no such tenant: %s", tenant);
    if (rc == GH_EINVAL)
        return fail(1, "not usable IdP metadata (one SAML 2.0 IdP with an "
                    "HTTP-Redirect SingleSignOnService and its signing "
                    "certificate; no DOCTYPE): %s", file);
    if (rc != 0)
        return fail(1, "cannot register the IdP: %s", gh_strerror(rc));
    snprintf(detail, sizeof detail, "%s%s%s", entity,
             flags & GH_SAML_IDP_INITIATED ? " idp-initiated" : "",
             flags & GH_SAML_ALLOW_SHA1 ? " sha1" : "");
    cli_audit(dir, tenant, "saml_idp_set", detail);
    printf("tenant %s: identity provider %s\n", tenant, entity);
    free(entity);
    return 0;
}

int tenant_set_is_signin(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--signin") == 0 ||
            strncmp(argv[i], "--signin=", 9) == 0 ||
            strcmp(argv[i], "--domain") == 0 ||
            strncmp(argv[i], "--domain=", 9) == 0)
            return 1;
    return 0;
}

int cmd_tenant_signin(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "signin", required_argument, NULL, 's' },
        { "domain", required_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    const char *tenant = NULL, *how = NULL, *domain = NULL;
    gh_store_t *st = NULL;
    char *md = NULL;
    int c, rc, signin;

    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 's': how = optarg; break;
        case 'd': domain = optarg; break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc || tenant == NULL || (how == NULL && domain == NULL))
        return usage_error("%s", "usage: tenant set --tenant T [--signin "
                           "password|password+otp|saml] [--domain D] "
                           "(without other options)");
    if (domain != NULL) {
        if (open_store(dir, &st) != 0)
            return 1;
        rc = gh_saml_domain_set(st, tenant, domain);
        gh_store_close(st);
        st = NULL;
        if (rc == GH_EBADTENANT)
            return fail(1, "no such tenant: %s", tenant);
        if (rc == GH_EINVAL)
            return fail(1, "not a domain name: %s", domain);
        if (rc != 0)
            return fail(1, "cannot set the domain: %s", gh_strerror(rc));
        cli_audit(dir, tenant, "tenant_domain", domain);
        printf("tenant %s: domain %s\n", tenant, domain);
        if (how == NULL)
            return 0;
    }
    if ((signin = gh_signin_parse(how)) < 0)
        return fail(1, "--signin must be password, password+otp or saml: %s",
                    how);
    if (open_store(dir, &st) != 0)
        return 1;
    if (signin == GH_SIGNIN_SAML) {
        rc = gh_saml_sp_metadata(st, tenant, "https://HOST", &md);
        free(md);
        if (rc == GH_ENOTFOUND) {
            gh_store_close(st);
            return fail(1, "tenant %s has no identity provider: run idp add "
                        "first", tenant);
        }
    }
    rc = gh_saml_signin_set(st, tenant, signin);
    if (rc == 0 && signin == GH_SIGNIN_PASSWORD_OTP)
        rc = gh_tenant_set_mfa(st, tenant, GH_MFA_REQUIRED);
    gh_store_close(st);
    if (rc == GH_EBADTENANT || rc == GH_EINVAL)
        return fail(1, "no such tenant: %s", tenant);
    if (rc != 0)
        return fail(1, "cannot set the sign-in of %s: %s", tenant,
                    gh_strerror(rc));
    cli_audit(dir, tenant, "tenant_signin", gh_signin_name(signin));
    printf("tenant %s: signin %s\n", tenant, gh_signin_name(signin));
    return 0;
}
