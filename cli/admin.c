/* gatehouse CLI — API tokens for the admin API (/.gatehouse/api/v1/):
 *
 *   api-token create --email E [--name N] [--days D]   (default 90 days)
 *   api-token list
 *   api-token revoke --id ID
 *
 * A token acts as the user it was made for, with their roles at each
 * request; it is printed once and only its SHA-256 is stored. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "gatehouse/error.h"
#include "gatehouse/invite.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

#include "cli.h"

#define TOKEN_DAYS_DEFAULT  90
#define TOKEN_DAYS_MAX      366

static int list_one(const gh_apitoken_t *t, void *arg)
{
    gh_store_t *st = arg;
    gh_user_t u;
    const char *email = gh_user_get(st, t->uid, &u) == 0 ? u.email : "?";

    printf("%s\t%s\t%s\t%lld\t%lld\n", t->id, email,
           t->name[0] ? t->name : "-", (long long)t->created,
           (long long)t->expires);
    return 0;
}

int cmd_apitoken(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", required_argument, NULL, 'e' },
        { "name",  required_argument, NULL, 'n' },
        { "days",  required_argument, NULL, 'd' },
        { "id",    required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    const char *sub, *name = "", *id = NULL;
    char email[GH_EMAIL_MAX + 1] = "", token[GH_APITOKEN_LEN + 1];
    char tid[17], detail[96];
    gh_store_t *st = NULL;
    gh_apitoken_t t;
    gh_user_t u;
    long days = TOKEN_DAYS_DEFAULT;
    int64_t now = gh_now();
    int c, rc = 1;

    if (argc < 2)
        return usage_error("%s", "api-token: expected create, list or revoke");
    sub = argv[1];
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 &&
        strcmp(sub, "revoke") != 0)
        return usage_error("api-token: unknown subcommand %s", sub);
    optind = 2;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            if (email_arg(optarg, email) != 0)
                return EXIT_USAGE;
            break;
        case 'n':
            name = optarg;
            break;
        case 'd':
            if (parse_long(optarg, 1, TOKEN_DAYS_MAX, &days) != 0)
                return fail(EXIT_USAGE, "--days: 1 to %d", TOKEN_DAYS_MAX);
            break;
        case 'i':
            id = optarg;
            break;
        default:
            return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    if (strcmp(sub, "create") == 0 && email[0] == '\0')
        return usage_error("%s", "api-token create needs --email");
    if (strcmp(sub, "revoke") == 0 && id == NULL)
        return usage_error("%s", "api-token revoke needs --id");
    if (strlen(name) > GH_APITOKEN_NAME_MAX)
        return fail(EXIT_USAGE, "--name: at most %d characters",
                    GH_APITOKEN_NAME_MAX);
    if (open_store(dir, &st) != 0)
        return 1;

    if (strcmp(sub, "list") == 0) {
        rc = gh_apitoken_list(st, list_one, st);
        if (rc != 0)
            rc = fail(1, "api-token list: %s", gh_strerror(rc));
        goto out;
    }
    if (strcmp(sub, "revoke") == 0) {
        rc = gh_apitoken_revoke(st, id, &t);
        if (rc != 0) {
            rc = fail(1, "api-token revoke: %s", rc == GH_ENOTFOUND
                      ? "no such token" : gh_strerror(rc));
            goto out;
        }
        cli_audit_admin(st, dir, NULL, "apitoken.revoke", t.id, "success",
                        t.name, "active", "revoked");
        printf("revoked %s\n", t.id);
        goto out;
    }
    if (find_user(st, email, NULL, &u) != 0)
        goto out;
    if (gh_user_off(&u, gh_now())) {
        rc = fail(1, "%s is disabled", email);
        goto out;
    }
    rc = gh_apitoken_create(st, u.id, name, now, now + days * 86400, token,
                            tid);
    if (rc != 0) {
        rc = fail(1, "api-token create: %s", gh_strerror(rc));
        goto out;
    }
    snprintf(detail, sizeof detail, "%s, %ld days", name[0] ? name : "-",
             days);
    cli_audit_admin(st, dir, u.tenant, "apitoken.create", email, "success",
                    detail, "", tid);
    printf("%s\n", token);
    fprintf(stderr, "token id %s for %s, expires in %ld days: shown once\n",
            tid, email, days);
    gh_wipe(token, sizeof token);
out:
    gh_store_close(st);
    return rc;
}

/* breakglass setup --email E | status | end
 * setup names an existing account the emergency account and disables it;
 * end turns an approval off at once. Requests and approvals are made in
 * the console by two different administrators. */
static int bg_setup_fn(gh_breakglass_t *b, int have, void *arg)
{
    (void)have;
    memset(b, 0, sizeof *b);
    snprintf(b->uid, sizeof b->uid, "%s", (const char *)arg);
    return 0;
}

static int bg_end_fn(gh_breakglass_t *b, int have, void *arg)
{
    (void)arg;
    if (!have)
        return GH_ENOTFOUND;
    b->state = GH_BG_OFF;
    b->until = 0;
    return 0;
}

int cmd_breakglass(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", required_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    static const char *const states[] = { "off", "requested", "on" };
    char email[GH_EMAIL_MAX + 1] = "";
    gh_store_t *st = NULL;
    gh_breakglass_t b;
    gh_user_t u;
    const char *sub;
    int c, rc = 1;

    if (argc < 2 || (strcmp(argv[1], "setup") != 0 &&
                     strcmp(argv[1], "status") != 0 &&
                     strcmp(argv[1], "end") != 0))
        return usage_error("%s", "breakglass: expected setup, status or end");
    sub = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c != 'e')
            return bad_option(c, argv);
        if (email_arg(optarg, email) != 0)
            return EXIT_USAGE;
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    if (strcmp(sub, "setup") == 0 && email[0] == '\0')
        return usage_error("%s", "breakglass setup needs --email");
    if (strcmp(sub, "setup") != 0 && email[0] != '\0')
        return usage_error("breakglass %s takes no --email", sub);
    if (open_store(dir, &st) != 0)
        return 1;
    if (strcmp(sub, "setup") == 0) {
        if (find_user(st, email, NULL, &u) != 0)
            goto out;
        rc = gh_user_set_disabled(st, u.id, 1);
        if (rc == 0)
            (void)gh_role_revoke(st, u.id, "gatehouse-admin");
        if (rc == 0)
            rc = gh_breakglass_update(st, bg_setup_fn, u.id, NULL);
        if (rc != 0) {
            rc = fail(1, "breakglass setup: %s", gh_strerror(rc));
            goto out;
        }
        cli_audit_admin(st, dir, u.tenant, "breakglass.setup", email,
                        "success", "the emergency account, disabled", "",
                        "off");
        printf("%s is the break-glass account (disabled until two "
               "administrators enable it)\n", email);
        goto out;
    }
    rc = gh_breakglass_get(st, &b);
    if (rc == GH_ENOTFOUND) {
        rc = fail(1, "%s", "no break-glass account (breakglass setup)");
        goto out;
    }
    if (rc != 0) {
        rc = fail(1, "breakglass: %s", gh_strerror(rc));
        goto out;
    }
    if (gh_user_get(st, b.uid, &u) != 0)
        snprintf(u.email, sizeof u.email, "?");
    if (strcmp(sub, "status") == 0) {
        printf("account %s\nstate %s\n", u.email,
               b.state == GH_BG_ON && b.until <= gh_now() ? "expired"
               : states[b.state]);
        if (b.requester_email[0])
            printf("requested-by %s at %lld\n", b.requester_email,
                   (long long)b.requested);
        if (b.state == GH_BG_ON)
            printf("approved-by %s until %lld\n", b.approver_email,
                   (long long)b.until);
        goto out;
    }
    rc = gh_breakglass_update(st, bg_end_fn, NULL, NULL);
    if (rc == 0)
        rc = gh_user_set_disabled(st, b.uid, 1);
    if (rc == 0)
        (void)gh_role_revoke(st, b.uid, "gatehouse-admin");
    if (rc != 0) {
        rc = fail(1, "breakglass end: %s", gh_strerror(rc));
        goto out;
    }
    cli_audit_admin(st, dir, u.tenant, "breakglass.end", u.email, "success",
                    "critical", states[b.state], "off");
    printf("break-glass access ended; %s disabled\n", u.email);
out:
    gh_store_close(st);
    return rc;
}
