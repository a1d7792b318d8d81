/* gatehouse — the operator's command-line tool.
 *
 *   gatehouse [--data DIR] COMMAND ...
 *
 * Exit status: 0 success, 1 runtime failure (including refused or invalid
 * values), 2 usage error (unknown command or option, missing argument).
 * Every failure prints exactly one line "gatehouse: <message>" on stderr;
 * user-supplied text in that line has control characters replaced so it can
 * never become two lines.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/throttle.h"
#include "gatehouse/password.h"
#include "gatehouse/session.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"
#include "gatehouse/mfa.h"

#include "cli.h"

#define GEN_PASSWORD_LEN   20
#define ARGON2_PASSES_MAX  64
#define ARGON2_MIB_MAX     4096
#define CERT_DAYS          825    /* what browsers accept for a leaf */
#define DEFAULT_TENANT     "demo"
#define DEFAULT_TENANT_DISPLAY "Demo"
#define DEFAULT_ADMIN_EMAIL "admin@example.com"
#define DEFAULT_ADMIN_NAME "Administrator"
#define DEFAULT_ADMIN_ROLES "gatehouse-admin,manager"
#define DEFAULT_USER_ROLES "member"
#define DEFAULT_CERT_CN    "localhost"

static const char usage_text[] =
"usage: gatehouse [--data DIR] COMMAND ...\n"
"\n"
"DIR defaults to $GATEHOUSE_DATA.\n"
"\n"
"commands:\n"
"  init [--tenant NAME] [--admin-email E] [--admin-name N] [--password-stdin]\n"
"       [--argon2-passes N] [--argon2-memory-mib N] [--cert-cn CN] [--if-needed]\n"
"  tenant add NAME [--display D]\n"
"  tenant list\n"
"  tenant set --tenant T [--password-profile nist|classes] [--password-min N]\n"
"             [--password-max N] [--password-classes N] [--password-history N]\n"
"             [--password-max-age DAYS|off] [--blocklist on|off]\n"
"             [--mfa off|optional|required]\n"
"  tenant set --tenant T [--signin password|password+otp|saml] [--domain D]\n"
"             (each value may also be \"default\": the profile's)\n"
"  tenant set --tenant T [--networks LIST|none] [--idle D|none]\n"
"             [--lifetime D|none]   (D: 30m, 12h, 7d; none: the policy file's)\n"
"  tenant show --tenant T\n"
"  user add --tenant T --email E [--name N] [--roles r1,r2] [--password-stdin]\n"
"           [--must-change]\n"
"  user list [--tenant T]\n"
"  user disable --email E [--tenant T]\n"
"  user enable --email E [--tenant T]\n"
"  user passwd --email E [--password-stdin] [--must-change]\n"
"  user unlock --email E [--tenant T]\n"
"  user mfa-reset --email E [--tenant T]   (removes the second factor)\n"
"  user mfa-status --email E [--tenant T]\n"
"  policy apply FILE | show\n"
"  policy explain --tenant T --email E --url URL [--method M] [--ip A] [--mfa]\n"
"                 [--app APP]\n"
"  role grant --tenant T --email E ROLE [--until YYYY-MM-DD]\n"
"  role revoke --tenant T --email E ROLE\n"
"  role list [--tenant T] [--email E]\n"
"  keys list\n"
"  keys rotate [--grace 1h] [--token-lifetime 5m]\n"
"  jwt verify --aud AUDIENCE [--iss ISSUER]   (token on standard input)\n"
"  idp add --tenant T --metadata FILE [--allow-idp-initiated] [--allow-sha1]\n"
"  idp show --tenant T\n"
"  argon2 show\n"
"  argon2 set [--passes N] [--memory-mib N]   (workers pick it up on reload)\n"
"  audit verify [--expect SEQ:HASH] | export [--since TIME] [--format jsonl]\n"
"  audit checkpoint\n"
"  audit prune --archive FILE [--days N]\n"
"  audit config [--syslog udp:H:P|tcp:H:P|unix:PATH|off] [--checkpoint-records N]\n"
"               [--checkpoint-seconds S] [--retention-days D]\n"
"  backup [--with-key] DIR\n"
"  restore DIR                          (the gateway must be stopped)\n"
"  api-token create --email E [--name N] [--days D] | list | revoke --id ID\n"
"  breakglass setup --email E | status | end\n"
"\n"
"--password-stdin reads one line from standard input. Passwords must pass\n"
"the tenant's password policy; $GATEHOUSE_PASSWORD_BLOCKLIST names an extra\n"
"blocklist file (docs/password-policy.md).\n"
"exit status: 0 ok, 1 failure, 2 usage error\n";

const char *cli_datadir;
int cli_datadir_ready;

void print_usage(void)
{
    fputs(usage_text, stdout);
}

/* Print "gatehouse: <message>" as exactly one line on stderr and return code.
 * Control characters (from user input echoed in the message) become '?'. */
int fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (i = 0; msg[i] != '\0'; i++)
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
            msg[i] = '?';
    fprintf(stderr, "gatehouse: %s\n", msg);
    return code;
}

/* A usage error: one line, exit status 2. */
int usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(EXIT_USAGE, "%s (see gatehouse --help)", msg);
}

/* Report a getopt failure for the option just scanned. */
int bad_option(int c, char **argv)
{
    const char *opt = argv[optind - 1];

    if (c == ':')
        return usage_error("option needs a value: %s", opt);
    return usage_error("unknown option: %s", opt);
}

/* Parse a decimal integer in [min, max] with full strtol checks. */
int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Read one line from fd 0 into pw (cap bytes), without stdio so no copy of
 * the secret stays in a FILE buffer and nothing after the line is consumed.
 * Strips a trailing "\n" or "\r\n". Returns the length, -1 on read error,
 * -2 when longer than GH_PASSWORD_MAX, -3 when empty. */
static long read_password(char *pw, size_t cap)
{
    size_t n = 0;
    char c;
    ssize_t r;
    int too_long = 0;

    for (;;) {
        r = read(STDIN_FILENO, &c, 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0 || c == '\n')
            break;
        if (n + 1 >= cap || n >= GH_PASSWORD_MAX + 1)
            too_long = 1;
        else
            pw[n++] = c;
    }
    c = 0;
    if (n > 0 && pw[n - 1] == '\r')
        n--;
    pw[n] = '\0';
    if (too_long || n > GH_PASSWORD_MAX)
        return -2;
    if (n == 0)
        return -3;
    return (long)n;
}

/* Read a password line and report problems as one CLI error line. */
static int get_password_stdin(char *pw, size_t cap, long *len)
{
    long n = read_password(pw, cap);

    if (n == -1)
        return fail(1, "cannot read password from stdin: %s", strerror(errno));
    if (n == -2)
        return fail(1, "password longer than %d bytes", GH_PASSWORD_MAX);
    if (n == -3)
        return fail(1, "empty password on stdin");
    *len = n;
    return 0;
}

/* A random password of GEN_PASSWORD_LEN characters from an alphabet without
 * look-alikes (0/O, 1/l/I). Rejection sampling keeps it uniform. */
static void generate_password(char out[GEN_PASSWORD_LEN + 1])
{
    static const char alpha[] =
        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    const unsigned n = sizeof alpha - 1;
    const unsigned limit = 256 / n * n;
    uint8_t b[64];
    size_t i = 0, j;

    while (i < GEN_PASSWORD_LEN) {
        gh_random(b, sizeof b);
        for (j = 0; j < sizeof b && i < GEN_PASSWORD_LEN; j++)
            if (b[j] < limit)
                out[i++] = alpha[b[j] % n];
    }
    out[i] = '\0';
    gh_wipe(b, sizeof b);
}

/* Open the store for a command; prints the error line itself. */
int open_store(const char *dir, gh_store_t **st)
{
    int rc = gh_store_open(st, dir, 0);

    if (rc == 0)
        return 0;
    return fail(1, "cannot open data directory %s: %s", dir, gh_strerror(rc));
}

/* Check pw against u's tenant policy (history from its credential) and
 * store it: the old hash joins the history, the must-change flag is set as
 * asked, and every session of the user ends — one transaction. Returns 0
 * or 1 (message printed); *ended receives the number of sessions ended. */
static int set_password(gh_store_t *st, const gh_user_t *u, const char *pw,
                        size_t len, int must_change, int *ended)
{
    gh_credential_t *cur;
    gh_pwchange_t chg;
    char hash[GH_HASH_MAX];
    unsigned keep = 0;
    int rc;

    cur = calloc(1, sizeof *cur);
    if (cur == NULL)
        return fail(1, "out of memory");
    rc = gh_credential_read(st, u->id, cur);
    if (rc != 0 && rc != GH_ENOTFOUND) {
        rc = fail(1, "cannot read the password of %s: %s", u->email,
                  gh_strerror(rc));
        goto out;
    }
    memset(hash, 0, sizeof hash);
    if (pw != NULL) {
        rc = password_accept(st, u, cur, pw, len, hash, &keep);
        if (rc != 0)
            goto out;
    } else if (cur->hash[0] == '\0') {
        rc = fail(1, "%s has no password to change (give one with "
                  "--password-stdin)", u->email);
        goto out;
    } else {
        keep = cur->nhistory;   /* only the flag changes */
    }
    memset(&chg, 0, sizeof chg);
    chg.hash = pw != NULL ? hash : NULL;
    chg.must_change = must_change;
    chg.keep = keep;
    chg.now = gh_now();
    rc = gh_credential_change(st, u->id, &chg);
    if (rc < 0) {
        rc = fail(1, "cannot store password: %s", gh_strerror(rc));
        goto out;
    }
    *ended = rc;
    rc = 0;
out:
    gh_wipe(hash, sizeof hash);
    gh_wipe(cur, sizeof *cur);
    free(cur);
    return rc;
}

/* Check a display name the way the store will: bounded, no control chars. */
static int name_ok(const char *what, const char *s)
{
    size_t i, n = strlen(s);

    if (n > GH_NAME_MAX)
        return fail(1, "%s longer than %d bytes", what, GH_NAME_MAX);
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return fail(1, "%s contains control characters", what);
    return 0;
}

/* The certificate name rule of gh_selfsigned_create (a host name of
 * [A-Za-z0-9.-] or an IP literal, at most 64 bytes), checked up front so a
 * typo fails before init writes anything. */
static int cert_name_ok(const char *cn)
{
    unsigned char tmp[16];
    size_t i, n = strlen(cn);

    if (n == 0 || n > 64)
        return 0;
    if (inet_pton(AF_INET, cn, tmp) == 1 || inet_pton(AF_INET6, cn, tmp) == 1)
        return 1;
    if (cn[0] == '-' || cn[0] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        char c = cn[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Role list syntax as the store enforces it: "" or comma-separated names of
 * [a-z0-9._:-]. Checked here only to give a precise message. */
static int roles_arg_ok(const char *r)
{
    size_t i, run = 0, n = strlen(r);

    if (n == 0)
        return 1;
    for (i = 0; i <= n; i++) {
        char c = r[i];
        if (c == ',' || c == '\0') {
            if (run == 0)
                return 0;
            run = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == ':' || c == '-') {
            run++;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Normalise an email argument, or print the standard error. */
int email_arg(const char *in, char out[GH_EMAIL_MAX + 1])
{
    if (gh_email_normalize(in, strlen(in), out) != 0)
        return fail(1, "not a valid email address: %s", in);
    return 0;
}

/* ------------------------------------------------------------------ */
/* init                                                               */
/* ------------------------------------------------------------------ */

/* mkdir path (mode) unless it is already a directory. */
static int ensure_dir(const char *path, mode_t mode, const char *what)
{
    struct stat sb;

    if (mkdir(path, mode) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return 0;
    if (errno == EEXIST)
        return fail(1, "cannot create %s %s: exists and is not a directory",
                    what, path);
    return fail(1, "cannot create %s %s: %s", what, path, strerror(errno));
}

static int path_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);

    if (n < 0 || (size_t)n >= cap)
        return fail(1, "path too long: %s/%s", a, b);
    return 0;
}

static int file_exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

/* Remove a store environment this init run created, so that a failed init
 * can simply be run again instead of finding a half-made store. */
static void remove_store(const char *dir)
{
    char p[PATH_MAX];

    if (snprintf(p, sizeof p, "%s/%s/data.mdb", dir, GH_STORE_FILE) < (int)sizeof p)
        unlink(p);
    if (snprintf(p, sizeof p, "%s/%s/lock.mdb", dir, GH_STORE_FILE) < (int)sizeof p)
        unlink(p);
    if (snprintf(p, sizeof p, "%s/%s", dir, GH_STORE_FILE) < (int)sizeof p)
        rmdir(p);
}

/* Keep an existing master key (from an earlier, interrupted init) when it
 * loads cleanly; otherwise create one. */
static int init_master_key(const char *dir)
{
    char path[PATH_MAX];
    uint8_t key[GH_MASTER_KEY_BYTES];
    int rc;

    if (path_join(path, sizeof path, dir, GH_MASTER_KEY_FILE) != 0)
        return 1;
    rc = gh_master_key_create(path);
    if (rc == GH_EEXIST) {
        rc = gh_master_key_load(path, key);
        gh_wipe(key, sizeof key);
        if (rc != 0)
            return fail(1, "existing master key %s unusable: %s", path,
                        gh_strerror(rc));
        return 0;
    }
    if (rc != 0)
        return fail(1, "cannot create master key %s: %s", path, gh_strerror(rc));
    return 0;
}

/* Make DIR/tls/gateway.{key,crt} unless both are already there. */
static int init_tls(const char *dir, const char *cn)
{
    char tls[PATH_MAX], key[PATH_MAX], crt[PATH_MAX];
    int have_key, have_crt, rc;

    if (path_join(tls, sizeof tls, dir, "tls") != 0 ||
        path_join(key, sizeof key, tls, "gateway.key") != 0 ||
        path_join(crt, sizeof crt, tls, "gateway.crt") != 0)
        return 1;
    if (ensure_dir(tls, 0700, "directory") != 0)
        return 1;
    have_key = file_exists(key);
    have_crt = file_exists(crt);
    if (have_key && have_crt)
        return 0;
    if (have_key || have_crt)
        return fail(1, "%s exists without its pair; remove it and run init again",
                    have_key ? key : crt);
    rc = gh_selfsigned_create(key, crt, cn, CERT_DAYS);
    if (rc == GH_EINVAL)
        return fail(1, "not a valid certificate name: %s", cn);
    if (rc != 0)
        return fail(1, "cannot create TLS certificate: %s", gh_strerror(rc));
    return 0;
}

static int cmd_init(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant",            required_argument, NULL, 't' },
        { "admin-email",       required_argument, NULL, 'e' },
        { "admin-name",        required_argument, NULL, 'n' },
        { "password-stdin",    no_argument,       NULL, 'p' },
        { "argon2-passes",     required_argument, NULL, 'o' },
        { "argon2-memory-mib", required_argument, NULL, 'm' },
        { "cert-cn",           required_argument, NULL, 'c' },
        { "if-needed",         no_argument,       NULL, 'i' },
        { "help",              no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *tenant = DEFAULT_TENANT, *email_in = DEFAULT_ADMIN_EMAIL;
    const char *name = DEFAULT_ADMIN_NAME, *cn = DEFAULT_CERT_CN;
    int pw_stdin = 0, if_needed = 0, c, rc = 1, made_store = 0;
    char email[GH_EMAIL_MAX + 1], pw[GH_PASSWORD_MAX + 2], hash[GH_HASH_MAX];
    char uid[GH_ID_HEXLEN + 1], mdb[PATH_MAX];
    long pwlen = 0, v;
    gh_pwhash_params_t params;
    gh_store_t *st = NULL;
    gh_user_t u;

    memset(pw, 0, sizeof pw);
    memset(hash, 0, sizeof hash);
    gh_pwhash_params_default(&params);
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'e': email_in = optarg; break;
        case 'n': name = optarg; break;
        case 'p': pw_stdin = 1; break;
        case 'c': cn = optarg; break;
        case 'i': if_needed = 1; break;
        case 'o':
            if (parse_long(optarg, GH_ARGON2_OPS_MIN, ARGON2_PASSES_MAX, &v) != 0)
                return fail(EXIT_USAGE, "--argon2-passes must be %d..%d: %s",
                            GH_ARGON2_OPS_MIN, ARGON2_PASSES_MAX, optarg);
            params.opslimit = (unsigned long long)v;
            break;
        case 'm':
            if (parse_long(optarg, 1, ARGON2_MIB_MAX, &v) != 0)
                return fail(EXIT_USAGE, "--argon2-memory-mib must be 1..%d: %s",
                            ARGON2_MIB_MAX, optarg);
            params.memlimit = (size_t)v * 1024 * 1024;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    /* Validate everything before touching the disk. */
    if (!gh_tenant_name_valid(tenant))
        return fail(1, "not a valid tenant name: %s", tenant);
    if (email_arg(email_in, email) != 0 || name_ok("admin name", name) != 0)
        return 1;

    if (!cert_name_ok(cn))
        return fail(1, "not a valid certificate name: %s", cn);

    rc = gh_store_open(&st, dir, 0);
    if (rc == 0) {
        gh_store_close(st);
        st = NULL;
        fail(if_needed ? 0 : 1, "already initialised: %s", dir);
        return if_needed ? 0 : 1;
    }
    if (rc != GH_ENOTINIT)
        return fail(1, "cannot open data directory %s: %s", dir, gh_strerror(rc));

    if (pw_stdin) {
        if (get_password_stdin(pw, sizeof pw, &pwlen) != 0)
            return 1;
    } else {
        generate_password(pw);
        pwlen = GEN_PASSWORD_LEN;
    }
    /* The password policy of a new tenant (nist, no MFA in the default
     * policy), then the slow step, so that neither a weak password nor a
     * bad parameter costs a half-made dir. */
    {
        gh_pwsettings_t pws;

        memset(&u, 0, sizeof u);
        snprintf(u.tenant, sizeof u.tenant, "%s", tenant);
        snprintf(u.email, sizeof u.email, "%s", email);
        snprintf(u.name, sizeof u.name, "%s", name);
        gh_pwsettings_default(&pws);
        rc = password_verdict(&pws, 0, &u, strcmp(tenant, DEFAULT_TENANT) == 0
                              ? DEFAULT_TENANT_DISPLAY : tenant, NULL, pw,
                              (size_t)pwlen, NULL);
        if (rc != 0)
            goto out;
    }
    rc = password_hash_nfc(&params, pw, (size_t)pwlen, hash);
    if (rc != 0)
        goto out;
    rc = 1;
    if (ensure_dir(dir, 0700, "data directory") != 0 ||
        init_master_key(dir) != 0 || init_tls(dir, cn) != 0)
        goto out;

    if (snprintf(mdb, sizeof mdb, "%s/%s/data.mdb", dir, GH_STORE_FILE) >=
        (int)sizeof mdb) {
        fail(1, "path too long: %s", dir);
        goto out;
    }
    made_store = !file_exists(mdb);
    rc = gh_store_open(&st, dir, GH_STORE_CREATE);
    if (rc != 0) {
        rc = fail(1, "cannot create store in %s: %s", dir, gh_strerror(rc));
        goto out;
    }
    rc = gh_pwhash_params_save(st, &params);
    if (rc != 0) {
        rc = fail(1, "cannot save password hashing parameters: %s",
                  gh_strerror(rc));
        goto out;
    }
    rc = gh_tenant_add(st, tenant, strcmp(tenant, DEFAULT_TENANT) == 0 ?
                       DEFAULT_TENANT_DISPLAY : tenant);
    if (rc != 0) {
        rc = fail(1, "cannot add tenant %s: %s", tenant, gh_strerror(rc));
        goto out;
    }
    memset(&u, 0, sizeof u);
    snprintf(u.tenant, sizeof u.tenant, "%s", tenant);
    snprintf(u.email, sizeof u.email, "%s", email);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.roles, sizeof u.roles, "%s", DEFAULT_ADMIN_ROLES);
    rc = gh_user_add(st, &u, uid);
    if (rc == 0)
        rc = gh_credential_set(st, uid, hash);
    if (rc != 0) {
        rc = fail(1, "cannot add admin user %s: %s", email, gh_strerror(rc));
        goto out;
    }
    if (keys_create(st, dir, gh_now(), NULL) != 0) {
        rc = 1;
        goto out;
    }
    rc = policy_store_default(st, tenant);
    if (rc != 0) {
        rc = fail(1, "cannot store the default policy: %s", gh_strerror(rc));
        goto out;
    }
    printf("initialised %s: tenant %s, admin %s\n", dir, tenant, email);
    {
        char after[GH_EMAIL_MAX + GH_TENANT_MAX + 32];

        snprintf(after, sizeof after, "tenant %s; admin %s", tenant, email);
        cli_audit_admin(st, dir, tenant, "gatehouse.init", dir, "success",
                        NULL, NULL, after);
    }
    if (!pw_stdin)
        printf("admin password: %s\n", pw);
    if (fflush(stdout) != 0) {
        rc = fail(1, "cannot write to stdout: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    gh_store_close(st);
    if (rc != 0 && made_store)
        remove_store(dir);
    gh_wipe(pw, sizeof pw);
    gh_wipe(hash, sizeof hash);
    return rc;
}

/* ------------------------------------------------------------------ */
/* tenant                                                             */
/* ------------------------------------------------------------------ */

static int print_tenant(const gh_tenant_t *t, void *arg)
{
    char when[32] = "-";
    time_t tt = (time_t)t->created;
    struct tm tm;

    (void)arg;
    if (gmtime_r(&tt, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s\t%s\t%s\n", t->name, t->display, when);
    return 0;
}

static int cmd_tenant(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "display", required_argument, NULL, 'd' },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *sub, *display = NULL;
    gh_store_t *st = NULL;
    int c, rc;

    if (argc < 2)
        return usage_error("%s", "tenant needs a subcommand: add, list, set "
                           "or show");
    sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    argc--;
    argv++;
    if (strcmp(sub, "set") == 0 && tenant_set_is_signin(argc, argv))
        return cmd_tenant_signin(dir, argc, argv);
    if (strcmp(sub, "set") == 0 && tenant_set_is_access(argc, argv))
        return cmd_tenant_access(dir, argc, argv);
    if (strcmp(sub, "set") == 0 || strcmp(sub, "show") == 0)
        return cmd_tenant_pw(dir, sub, argc, argv);
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': display = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default:  return bad_option(c, argv);
        }
    }
    if (strcmp(sub, "add") == 0) {
        if (argc - optind != 1)
            return usage_error("%s", "usage: tenant add NAME [--display D]");
        if (!gh_tenant_name_valid(argv[optind]))
            return fail(1, "not a valid tenant name (a-z, 0-9, '-', up to %d): %s",
                        GH_TENANT_MAX, argv[optind]);
        if (display != NULL && name_ok("display name", display) != 0)
            return 1;
        if (open_store(dir, &st) != 0)
            return 1;
        rc = gh_tenant_add(st, argv[optind], display);
        if (rc == GH_EEXIST)
            rc = fail(1, "tenant already exists: %s", argv[optind]);
        else if (rc != 0)
            rc = fail(1, "cannot add tenant %s: %s", argv[optind], gh_strerror(rc));
        else {
            printf("added tenant %s\n", argv[optind]);
            cli_audit_admin(st, dir, argv[optind], "tenant.add", argv[optind],
                            "success", NULL, NULL, display ? display : "");
        }
    } else if (strcmp(sub, "list") == 0) {
        if (display != NULL)
            return usage_error("%s", "--display is only for tenant add");
        if (argc != optind)
            return usage_error("unexpected argument: %s", argv[optind]);
        if (open_store(dir, &st) != 0)
            return 1;
        printf("tenant\tdisplay\tcreated\n");
        rc = gh_tenant_list(st, print_tenant, NULL);
        if (rc != 0)
            rc = fail(1, "cannot list tenants: %s", gh_strerror(rc));
    } else {
        return usage_error("unknown tenant command: %s", sub);
    }
    gh_store_close(st);
    return rc;
}

/* ------------------------------------------------------------------ */
/* user                                                               */
/* ------------------------------------------------------------------ */

static int print_user(const gh_user_t *u, void *arg)
{
    (void)arg;
    printf("%s\t%s\t%s\t%s\t%s\n", u->email, u->tenant, u->id,
           u->roles[0] != '\0' ? u->roles : "-",
           u->disabled ? "disabled"
           : gh_user_off(u, gh_now()) ? "expired" : "enabled");
    return 0;
}

/* Find the user named by --email (and, when given, in --tenant). */
int find_user(gh_store_t *st, const char *email, const char *tenant,
                     gh_user_t *u)
{
    gh_tenant_t t;
    int rc;

    if (tenant != NULL) {
        rc = gh_tenant_get(st, tenant, &t);
        if (rc == GH_ENOTFOUND)
            return fail(1, "unknown tenant: %s", tenant);
        if (rc != 0)
            return fail(1, "cannot read tenant %s: %s", tenant, gh_strerror(rc));
    }
    rc = gh_user_by_email(st, email, u);
    if (rc == GH_ENOTFOUND || (rc == 0 && tenant != NULL &&
                               strcmp(u->tenant, tenant) != 0)) {
        if (tenant != NULL)
            return fail(1, "no such user in tenant %s: %s", tenant, email);
        return fail(1, "no such user: %s", email);
    }
    if (rc != 0)
        return fail(1, "cannot read user %s: %s", email, gh_strerror(rc));
    return 0;
}

static int user_mfa(gh_store_t *st, const char *dir, const char *what,
                    const gh_user_t *u);

static int cmd_user(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant",         required_argument, NULL, 't' },
        { "email",          required_argument, NULL, 'e' },
        { "name",           required_argument, NULL, 'n' },
        { "roles",          required_argument, NULL, 'r' },
        { "password-stdin", no_argument,       NULL, 'p' },
        { "must-change",    no_argument,       NULL, 'm' },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *sub, *tenant = NULL, *email_in = NULL, *name = NULL;
    const char *roles = NULL;
    char email[GH_EMAIL_MAX + 1], pw[GH_PASSWORD_MAX + 2];
    char uid[GH_ID_HEXLEN + 1], hash[GH_HASH_MAX], detail[96];
    gh_store_t *st = NULL;
    gh_user_t u;
    long pwlen = 0;
    unsigned keep = 0;
    int c, rc = 1, pw_stdin = 0, must_change = 0, ended = 0;

    memset(pw, 0, sizeof pw);
    memset(hash, 0, sizeof hash);
    if (argc < 2)
        return usage_error("%s", "user needs a subcommand: add, list, "
                           "disable, enable, passwd, unlock, mfa-reset or "
                           "mfa-status");
    sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'e': email_in = optarg; break;
        case 'n': name = optarg; break;
        case 'r': roles = optarg; break;
        case 'p': pw_stdin = 1; break;
        case 'm': must_change = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default:  return bad_option(c, argv);
        }
    }
    if (argc != optind)
        return usage_error("unexpected argument: %s", argv[optind]);

    if (strcmp(sub, "list") == 0) {
        if (email_in != NULL || name != NULL || roles != NULL || pw_stdin ||
            must_change)
            return usage_error("%s", "user list takes only --tenant");
        if (open_store(dir, &st) != 0)
            return 1;
        if (tenant != NULL) {
            gh_tenant_t t;
            rc = gh_tenant_get(st, tenant, &t);
            if (rc != 0) {
                rc = rc == GH_ENOTFOUND ? fail(1, "unknown tenant: %s", tenant)
                     : fail(1, "cannot read tenant %s: %s", tenant,
                            gh_strerror(rc));
                goto out;
            }
        }
        printf("email\ttenant\tid\troles\tstatus\n");
        rc = gh_user_list(st, tenant, print_user, NULL);
        if (rc == GH_EBADTENANT)
            rc = fail(1, "unknown tenant: %s", tenant);
        else if (rc != 0)
            rc = fail(1, "cannot list users: %s", gh_strerror(rc));
        goto out;
    }

    if (strcmp(sub, "add") != 0 && strcmp(sub, "disable") != 0 &&
        strcmp(sub, "enable") != 0 && strcmp(sub, "passwd") != 0 &&
        strcmp(sub, "unlock") != 0 && strcmp(sub, "mfa-reset") != 0 &&
        strcmp(sub, "mfa-status") != 0)
        return usage_error("unknown user command: %s", sub);
    if (email_in == NULL)
        return usage_error("user %s needs --email", sub);
    if (strcmp(sub, "add") != 0 && (name != NULL || roles != NULL))
        return usage_error("--name and --roles are only for user add");
    if (strcmp(sub, "add") == 0 && tenant == NULL)
        return usage_error("%s", "user add needs --tenant");
    if (strcmp(sub, "passwd") == 0 && tenant != NULL)
        return usage_error("%s", "user passwd takes no --tenant");
    if (strcmp(sub, "passwd") == 0 && !pw_stdin && !must_change)
        return usage_error("%s", "user passwd needs --password-stdin or "
                           "--must-change");
    if (strcmp(sub, "add") == 0 && must_change && !pw_stdin)
        return usage_error("%s", "user add --must-change needs "
                           "--password-stdin");
    if ((strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0 ||
         strcmp(sub, "unlock") == 0 || strncmp(sub, "mfa-", 4) == 0) &&
        (pw_stdin || must_change))
        return usage_error("--password-stdin and --must-change are not for "
                           "user %s", sub);
    if (email_arg(email_in, email) != 0)
        return 1;

    if (strcmp(sub, "add") == 0) {
        memset(&u, 0, sizeof u);
        if (name != NULL && name_ok("name", name) != 0)
            return 1;
        if (roles == NULL)
            roles = DEFAULT_USER_ROLES;
        if (strlen(roles) > GH_ROLES_MAX)
            return fail(1, "roles longer than %d bytes", GH_ROLES_MAX);
        if (!roles_arg_ok(roles))
            return fail(1, "not a valid role list (comma-separated names of "
                        "a-z 0-9 . _ : -): %s", roles);
        snprintf(u.tenant, sizeof u.tenant, "%s", tenant);
        snprintf(u.email, sizeof u.email, "%s", email);
        snprintf(u.name, sizeof u.name, "%s", name != NULL ? name : "");
        snprintf(u.roles, sizeof u.roles, "%s", roles);
        if (strlen(tenant) > GH_TENANT_MAX || !gh_tenant_name_valid(tenant))
            return fail(1, "unknown tenant: %s", tenant);
        if (open_store(dir, &st) != 0)
            return 1;
        /* Read and judge the password before writing anything: a bad line
         * or a refused password must not leave a password-less user
         * behind. */
        if (pw_stdin && (get_password_stdin(pw, sizeof pw, &pwlen) != 0 ||
                         password_accept(st, &u, NULL, pw, (size_t)pwlen,
                                         hash, &keep) != 0))
            goto out;
        rc = gh_user_add(st, &u, uid);
        if (rc == GH_EBADTENANT)
            rc = fail(1, "unknown tenant: %s", tenant);
        else if (rc == GH_EEXIST)
            rc = fail(1, "email already in use: %s", email);
        else if (rc == GH_EINVAL)
            rc = fail(1, "name is not valid UTF-8 text");
        else if (rc != 0)
            rc = fail(1, "cannot add user %s: %s", email, gh_strerror(rc));
        if (rc != 0)
            goto out;
        {
            char after[GH_ROLES_MAX + 64];

            snprintf(after, sizeof after, "enabled; roles %s", u.roles);
            cli_audit_admin(st, dir, tenant, "user.add", email, "success",
                            uid, NULL, after);
        }
        /* failures counted against this address before it existed are
         * not the new user's */
        (void)gh_throttle_unlock(st, email);
        if (pw_stdin) {
            gh_pwchange_t chg;

            memset(&chg, 0, sizeof chg);
            chg.hash = hash;
            chg.must_change = must_change;
            chg.keep = keep;
            chg.now = gh_now();
            rc = gh_credential_change(st, uid, &chg);
            if (rc < 0) {
                rc = fail(1, "user %s added but the password not stored: %s",
                          email, gh_strerror(rc));
                goto out;
            }
            rc = 0;
            cli_audit(dir, tenant, "password_set", must_change
                      ? "new user, must change at first login" : "new user");
        }
        printf("added user %s (id %s) to tenant %s\n", email, uid, tenant);
        if (!pw_stdin)
            fprintf(stderr, "gatehouse: note: %s has no password and cannot log "
                    "in yet (set one with: gatehouse user passwd --email %s "
                    "--password-stdin)\n", email, email);
        goto out;
    }

    if (open_store(dir, &st) != 0)
        return 1;
    if (find_user(st, email, tenant, &u) != 0)
        goto out;
    if (strcmp(sub, "unlock") == 0) {
        rc = user_unlock(st, dir, &u);
        goto out;
    }
    if (strncmp(sub, "mfa-", 4) == 0) {
        rc = user_mfa(st, dir, sub + 4, &u);
        goto out;
    }
    if (strcmp(sub, "passwd") == 0) {
        if (pw_stdin && get_password_stdin(pw, sizeof pw, &pwlen) != 0)
            goto out;
        /* A reset usually follows a suspected compromise: the user's
         * sessions end with it (same transaction), so the old password's
         * holder is logged out. */
        rc = set_password(st, &u, pw_stdin ? pw : NULL, (size_t)pwlen,
                          must_change, &ended);
        if (rc != 0)
            goto out;
        snprintf(detail, sizeof detail, "%s%s; %d session%s ended",
                 pw_stdin ? "administrator reset" : "administrator",
                 must_change ? ", must change at next login" : "", ended,
                 ended == 1 ? "" : "s");
        cli_audit_admin(st, dir, u.tenant, pw_stdin ? "password.change"
                        : "password.must_change", email, "success", detail,
                        NULL, NULL);
        if (pw_stdin)
            printf("password changed for %s (%s%d session%s ended)\n", email,
                   must_change ? "must change at next login; " : "", ended,
                   ended == 1 ? "" : "s");
        else
            printf("%s must change the password at next login (%d session%s "
                   "ended)\n", email, ended, ended == 1 ? "" : "s");
        rc = 0;
        goto out;
    }
    rc = gh_user_set_disabled(st, u.id, strcmp(sub, "disable") == 0);
    if (rc != 0) {
        rc = fail(1, "cannot %s user %s: %s", sub, email, gh_strerror(rc));
        goto out;
    }
    printf("%s %s\n", strcmp(sub, "disable") == 0 ? "disabled" : "enabled",
           email);
    cli_audit_admin(st, dir, u.tenant, strcmp(sub, "disable") == 0
                    ? "user.disable" : "user.enable", email, "success",
                    strcmp(sub, "disable") == 0
                    ? "every session of the user ended" : NULL,
                    u.disabled ? "disabled" : "enabled",
                    strcmp(sub, "disable") == 0 ? "disabled" : "enabled");
out:
    gh_store_close(st);
    gh_wipe(pw, sizeof pw);
    gh_wipe(hash, sizeof hash);
    return rc;
}

/* `user mfa-reset` and `user mfa-status`. */
static int user_mfa(gh_store_t *st, const char *dir, const char *what,
                    const gh_user_t *u)
{
    static const char *const types[] = { "totp", "hotp" };
    static const char *const algos[] = { "SHA1", "SHA256", "SHA512" };
    gh_mfa_t *m;
    int rc;

    if (strcmp(what, "reset") == 0) {
        rc = gh_mfa_del(st, u->id);
        if (rc == GH_ENOTFOUND)
            return fail(1, "%s has no second factor", u->email);
        if (rc != 0)
            return fail(1, "cannot reset the second factor of %s: %s",
                        u->email, gh_strerror(rc));
        cli_audit(dir, u->tenant, "mfa_reset", u->email);
        printf("second factor of %s removed: they enrol again at their "
               "next sign-in\n", u->email);
        return 0;
    }
    m = malloc(sizeof *m);
    if (m == NULL)
        return fail(1, "out of memory");
    rc = gh_mfa_get(st, u->id, m);
    if (rc == 0 && m->has_active)
        printf("%s: %s %s, %d digits%s, enrolled %lld, %d recovery code%s "
               "left%s\n", u->email, types[m->active.type & 1],
               algos[m->active.algo % 3], m->active.digits,
               m->active.type == 0 ? ", 30 s" : "",
               (long long)m->active.created, gh_mfa_recovery_left(m),
               gh_mfa_recovery_left(m) == 1 ? "" : "s",
               m->has_pending ? "; an enrolment is pending" : "");
    else if (rc == 0 || rc == GH_ENOTFOUND)
        printf("%s: no second factor%s\n", u->email,
               rc == 0 && m->has_pending ? " (an enrolment is pending)" : "");
    else
        rc = fail(1, "cannot read the second factor of %s: %s", u->email,
                  gh_strerror(rc));
    gh_wipe(m, sizeof *m);
    free(m);
    return rc == GH_ENOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

/* `argon2 show|set`: the Argon2id cost every new hash uses. Stored hashes
 * made with other parameters are upgraded at their owner's next login;
 * nginx workers read the parameters when they start (nginx -s reload). */
static int cmd_argon2(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "passes",     required_argument, NULL, 'o' },
        { "memory-mib", required_argument, NULL, 'm' },
        { "help",       no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    gh_pwhash_params_t params, old;
    gh_store_t *st = NULL;
    const char *sub;
    int c, rc, set;
    long v;

    if (argc < 2)
        return usage_error("%s", "argon2: expected show or set");
    sub = argv[1];
    set = strcmp(sub, "set") == 0;
    if (!set && strcmp(sub, "show") != 0)
        return usage_error("argon2: unknown subcommand: %s", sub);
    if (open_store(dir, &st) != 0)
        return 1;
    rc = gh_pwhash_params_load(st, &params);
    if (rc != 0) {
        rc = fail(1, "cannot read argon2 parameters: %s", gh_strerror(rc));
        goto out;
    }
    old = params;
    optind = 2;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!set || parse_long(optarg, GH_ARGON2_OPS_MIN, ARGON2_PASSES_MAX,
                                   &v) != 0) {
                rc = fail(EXIT_USAGE, "--passes must be %d..%d with set: %s",
                          GH_ARGON2_OPS_MIN, ARGON2_PASSES_MAX, optarg);
                goto out;
            }
            params.opslimit = (unsigned long long)v;
            break;
        case 'm':
            if (!set || parse_long(optarg, 8, ARGON2_MIB_MAX, &v) != 0) {
                rc = fail(EXIT_USAGE, "--memory-mib must be 8..%d with set: %s",
                          ARGON2_MIB_MAX, optarg);
                goto out;
            }
            params.memlimit = (size_t)v * 1024 * 1024;
            break;
        case 'h':
            fputs(usage_text, stdout);
            rc = 0;
            goto out;
        default:
            rc = bad_option(c, argv);
            goto out;
        }
    }
    if (optind != argc) {
        rc = usage_error("unexpected argument: %s", argv[optind]);
        goto out;
    }
    if (set) {
        char before[64], after[64];

        snprintf(before, sizeof before, "passes=%llu memory-mib=%zu",
                 old.opslimit, old.memlimit / (1024 * 1024));
        rc = gh_pwhash_params_save(st, &params);
        if (rc != 0) {
            rc = fail(1, "cannot save argon2 parameters: %s", gh_strerror(rc));
            goto out;
        }
        snprintf(after, sizeof after, "passes=%llu memory-mib=%zu",
                 params.opslimit, params.memlimit / (1024 * 1024));
        cli_audit_admin(st, dir, NULL, "argon2.set", "argon2id", "success",
                        NULL, before, after);
    }
    printf("argon2id passes=%llu memory-mib=%zu\n", params.opslimit,
           params.memlimit / (1024 * 1024));
    rc = 0;
out:
    gh_store_close(st);
    return rc;
}

/* The commands, walked by main(). */
static const struct {
    const char *name;
    int (*run)(const char *dir, int argc, char **argv);
} commands[] = {
    { "init",   cmd_init },
    { "tenant", cmd_tenant },
    { "user",   cmd_user },
    { "argon2", cmd_argon2 },
    { "policy", cmd_policy },
    { "role",   cmd_role },
    { "keys",   cmd_keys },
    { "jwt",    cmd_jwt },
    { "audit",  cmd_audit },
    { "backup", cmd_backup },
    { "restore", cmd_restore },
    { "idp",    cmd_idp },
    { "api-token", cmd_apitoken },
    { "breakglass", cmd_breakglass },
};

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int i = 1, rc;
    size_t c;

    opterr = 0;   /* we print our own one-line errors */
    if (argc < 2) {
        fputs(usage_text, stdout);
        return EXIT_USAGE;
    }
    /* Global options come before the command. */
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(argv[i], "--data") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s", "option needs a value: --data");
            dir = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--data=", 7) == 0) {
            dir = argv[i] + 7;
            i++;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            return usage_error("unknown option: %s", argv[i]);
        }
    }
    if (i >= argc)
        return usage_error("%s", "no command given");
    if (strcmp(argv[i], "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            break;
    if (c == sizeof commands / sizeof commands[0])
        return usage_error("unknown command: %s", argv[i]);
    if (dir == NULL)
        dir = getenv("GATEHOUSE_DATA");
    if (dir == NULL || dir[0] == '\0')
        return usage_error("%s",
            "no data directory: use --data DIR or set GATEHOUSE_DATA");
    if (strlen(dir) > PATH_MAX - 64)
        return fail(1, "data directory path too long");

    cli_datadir = dir;
    {
        struct stat sb;

        cli_datadir_ready = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    }
    optind = 1;
    rc = commands[c].run(dir, argc - i, argv + i);
    if (fflush(stdout) != 0 && rc == 0)
        rc = fail(1, "cannot write to stdout: %s", strerror(errno));
    return rc;
}
