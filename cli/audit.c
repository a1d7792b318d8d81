/* gatehouse CLI — the audit log (verify, export, prune, config,
 * checkpoint), backups and restores, and the record every administrative
 * command leaves (cli_audit_admin). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gatehouse/audit.h"
#include "gatehouse/backup.h"
#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

#include "cli.h"

static int verify_dir_expect(const char *dir, const char *keydir,
                             uint64_t expect_seq, const uint8_t *expect_hash);

void cli_audit_admin(gh_store_t *st, const char *dir, const char *tenant,
                     const char *action, const char *target,
                     const char *result, const char *detail,
                     const char *before, const char *after)
{
    gh_audit_event_t ev;
    int rc;

    memset(&ev, 0, sizeof ev);
    ev.user = cli_actor();
    ev.tenant = tenant;
    ev.addr = "-";
    ev.request_id = "-";
    ev.action = action;
    ev.target = target;
    ev.result = result;
    ev.detail = detail;
    ev.before = before;
    ev.after = after;
    rc = gh_audit_open(dir);
    if (rc == 0) {
        gh_audit_use_store(st);   /* its key signs a checkpoint when due */
        rc = gh_audit_event(&ev);
        gh_audit_use_store(NULL);
    }
    if (rc != 0)
        fprintf(stderr, "gatehouse: warning: audit record %s not written: "
                "%s\n", action, gh_strerror(rc));
}

/* A user's bindings as "role[,role...]" with "(until DATE)" when ending. */
void cli_roles_text(const gh_user_t *u, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (unsigned i = 0; i < u->nbindings && o < cap; i++) {
        int n;

        if (u->bindings[i].until != 0) {
            char d[16];
            time_t t = (time_t)(u->bindings[i].until - 86400);
            struct tm tm;

            gmtime_r(&t, &tm);
            strftime(d, sizeof d, "%Y-%m-%d", &tm);
            n = snprintf(out + o, cap - o, "%s%s(until %s)", i ? "," : "",
                         u->bindings[i].role, d);
        } else {
            n = snprintf(out + o, cap - o, "%s%s", i ? "," : "",
                         u->bindings[i].role);
        }
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (o >= cap && cap > 4)
        strcpy(out + cap - 4, "...");
}

/* --since: Unix seconds, YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age such
 * as 30m, 24h, 7d. 0 or -1. */
static int parse_since(const char *s, int64_t *out)
{
    struct tm tm;
    const char *end;
    char *e;
    long long v;
    size_t n = strlen(s);

    if (n > 1 && strchr("smhd", s[n - 1]) != NULL && s[0] != '-') {
        errno = 0;
        v = strtoll(s, &e, 10);
        if (errno == 0 && e == s + n - 1 && v >= 0 && v <= 100000000LL) {
            long mul = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60
                     : s[n - 1] == 'h' ? 3600 : 86400;

            *out = gh_now() - (int64_t)v * mul;
            return 0;
        }
        return -1;
    }
    errno = 0;
    v = strtoll(s, &e, 10);
    if (errno == 0 && *e == '\0' && e != s && v >= 0) {
        *out = v;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end != NULL && *end == 'T')
        end = strptime(end, "T%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    *out = (int64_t)timegm(&tm);
    return *out < 0 ? -1 : 0;
}

static int print_line(const char *line, size_t len, void *arg)
{
    fwrite(line, 1, len, stdout);
    putchar('\n');
    return ferror(stdout) ? GH_EIO : 0;
}

/* The master key of dir, when this user may read it. */
static int load_mk(const char *dir, uint8_t mk[GH_MASTER_KEY_BYTES])
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof path, "%s/%s", dir, GH_MASTER_KEY_FILE) >=
        (int)sizeof path)
        return -1;
    return gh_master_key_load(path, mk) == 0 ? 0 : -1;
}

/* "SEQ:HASH" (64 hex digits): 0 or -1. */
static int parse_expect(const char *s, uint64_t *seq, uint8_t hash[32])
{
    char *end;
    const char *hex_end;
    unsigned long long v;
    size_t n;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != ':' || v == 0 || s[0] == '-' ||
        strlen(end + 1) != 64)
        return -1;
    if (sodium_hex2bin(hash, 32, end + 1, 64, NULL, &n, &hex_end) != 0 ||
        n != 32 || hex_end != end + 65)
        return -1;
    *seq = v;
    return 0;
}

/* Verify dir's log; prints the verdict. keydir: where master.key is;
 * expect_seq/expect_hash: a record held outside the log, or 0. */
static int verify_dir(const char *dir, const char *keydir)
{
    return verify_dir_expect(dir, keydir, 0, NULL);
}

static int verify_dir_expect(const char *dir, const char *keydir,
                             uint64_t expect_seq, const uint8_t *expect_hash)
{
    gh_store_t *st = NULL;
    gh_audit_report_t rep;
    uint8_t mk[GH_MASTER_KEY_BYTES];
    int have_mk, rc;

    rc = gh_store_open(&st, dir, GH_STORE_RDONLY);
    if (rc != 0)
        return fail(1, "cannot open data directory %s: %s", dir,
                    gh_strerror(rc));
    have_mk = load_mk(keydir, mk) == 0;
    rc = gh_audit_verify_expect(dir, st, have_mk ? mk : NULL, expect_seq,
                                expect_hash, &rep);
    gh_wipe(mk, sizeof mk);
    gh_store_close(st);
    if (rc == GH_EDENIED)
        return fail(1, "audit log tampered: first bad sequence number %"
                    PRIu64 ": %s", rep.bad, rep.why);
    if (rc == GH_ENOTINIT)
        return fail(1, "no audit log in %s", dir);
    if (rc != 0)
        return fail(1, "cannot read the audit log: %s", gh_strerror(rc));
    if (rep.records == 0)
        printf("audit log intact: no records\n");
    else
        printf("audit log intact: records %" PRIu64 "..%" PRIu64 " (%" PRIu64
               "), %" PRIu64 " signed checkpoint%s verified\n", rep.first,
               rep.last, rep.records, rep.checkpoints,
               rep.checkpoints == 1 ? "" : "s");
    if (!have_mk)
        printf("note: master.key not readable: the signing keys were not "
               "checked against it\n");
    else if (!rep.key_bound)
        printf("warning: a signing key in the store is not sealed under "
               "master.key; its checkpoints were not trusted\n");
    return 0;
}

static int audit_config(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "syslog",             required_argument, NULL, 's' },
        { "checkpoint-records", required_argument, NULL, 'r' },
        { "checkpoint-seconds", required_argument, NULL, 't' },
        { "retention-days",     required_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    static const char *const names[] = {
        "syslog", "checkpoint.records", "checkpoint.seconds", "retention.days",
    };
    static const char *const dflt[] = { "off", "256", "600", "400" };
    const char *val[4] = { NULL, NULL, NULL, NULL };
    int c, any = 0, rc;

    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 's': val[0] = optarg; any = 1; break;
        case 'r': val[1] = optarg; any = 1; break;
        case 't': val[2] = optarg; any = 1; break;
        case 'd': val[3] = optarg; any = 1; break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    for (int i = 0; i < 4; i++) {
        if (val[i] == NULL)
            continue;
        rc = gh_audit_setting_set(dir, names[i], val[i]);
        if (rc == GH_EINVAL)
            return fail(1, "not a valid value for %s: %s", names[i], val[i]);
        if (rc != 0)
            return fail(1, "cannot store %s: %s", names[i], gh_strerror(rc));
    }
    if (any) {
        char detail[512];

        snprintf(detail, sizeof detail, "%s%s%s%s%s%s%s%s",
                 val[0] ? " syslog=" : "", val[0] ? val[0] : "",
                 val[1] ? " checkpoint.records=" : "", val[1] ? val[1] : "",
                 val[2] ? " checkpoint.seconds=" : "", val[2] ? val[2] : "",
                 val[3] ? " retention.days=" : "", val[3] ? val[3] : "");
        cli_audit_admin(NULL, dir, NULL, "audit.config", "audit", "success",
                        detail + 1, NULL, NULL);
    }
    for (int i = 0; i < 4; i++) {
        char v[GH_AUDIT_TARGET_MAX + 1];

        rc = gh_audit_setting_get(dir, names[i], v, sizeof v);
        printf("%s\t%s\n", names[i], rc == 0 ? v : dflt[i]);
    }
    return 0;
}

int cmd_audit(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "since",   required_argument, NULL, 's' },
        { "format",  required_argument, NULL, 'f' },
        { "days",    required_argument, NULL, 'd' },
        { "archive", required_argument, NULL, 'a' },
        { "expect",  required_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    const char *sub, *archive = NULL;
    uint64_t expect_seq = 0;
    uint8_t expect_hash[32];
    int64_t since = 0;
    long days = -1;
    gh_store_t *st = NULL;
    int c, rc;

    if (argc < 2)
        return usage_error("%s", "audit: expected verify, export, prune, "
                           "checkpoint or config");
    sub = argv[1];
    optind = 2;
    if (strcmp(sub, "config") == 0)
        return audit_config(dir, argc, argv);
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_since(optarg, &since) != 0)
                return fail(1, "not a time (seconds, YYYY-MM-DD, "
                            "YYYY-MM-DDTHH:MM:SSZ or an age like 24h): %s",
                            optarg);
            break;
        case 'f':
            if (strcmp(optarg, "jsonl") != 0)
                return fail(1, "unknown format: %s (only jsonl)", optarg);
            break;
        case 'd':
            if (parse_long(optarg, 1, 36500, &days) != 0)
                return fail(1, "not a number of days (1..36500): %s", optarg);
            break;
        case 'a': archive = optarg; break;
        case 'e':
            if (parse_expect(optarg, &expect_seq, expect_hash) != 0)
                return fail(1, "not SEQ:HASH (a sequence number and 64 hex "
                            "digits): %s", optarg);
            break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);

    if (strcmp(sub, "verify") == 0)
        return verify_dir_expect(dir, dir, expect_seq,
                                 expect_seq ? expect_hash : NULL);
    if (strcmp(sub, "export") == 0) {
        rc = gh_audit_export(dir, since, print_line, NULL);
        if (rc == GH_ENOTINIT)
            return fail(1, "no audit log in %s", dir);
        if (rc != 0)
            return fail(1, "cannot export the audit log: %s", gh_strerror(rc));
        return 0;
    }
    if (strcmp(sub, "checkpoint") == 0 || strcmp(sub, "prune") == 0) {
        uint64_t n = 0;

        if (open_store(dir, &st) != 0)
            return 1;
        rc = gh_audit_open(dir);
        if (rc != 0) {
            gh_store_close(st);
            return fail(1, "cannot open the audit log: %s", gh_strerror(rc));
        }
        gh_audit_use_store(st);
        if (strcmp(sub, "checkpoint") == 0) {
            rc = gh_audit_checkpoint(1);
            if (rc == 0)
                printf("head signed\n");
        } else if (archive == NULL) {
            rc = usage_error("%s", "usage: audit prune --archive FILE "
                             "[--days N]");
            goto out;
        } else {
            if (days < 0) {
                char v[16];

                days = gh_audit_setting_get(dir, "retention.days", v,
                                            sizeof v) == 0
                       ? strtol(v, NULL, 10) : GH_AUDIT_RETENTION_DAYS;
            }
            rc = gh_audit_prune(gh_now() - (int64_t)days * 86400, archive,
                                &n);
            if (rc == 0)
                printf("%" PRIu64 " record%s older than %ld days %s\n", n,
                       n == 1 ? "" : "s", days,
                       n ? "archived and pruned" : "(nothing pruned)");
        }
        if (rc == GH_ENOTFOUND)
            rc = fail(1, "no signing key to sign with (master.key "
                      "readable? gatehouse keys list)");
        else if (rc == GH_EEXIST)
            rc = fail(1, "archive file exists: %s", archive);
        else if (rc != 0)
            rc = fail(1, "cannot %s: %s", sub, gh_strerror(rc));
out:
        gh_audit_use_store(NULL);
        gh_store_close(st);
        return rc;
    }
    return usage_error("audit: unknown subcommand: %s", sub);
}

int cmd_backup(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "with-key", no_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 },
    };
    gh_store_t *st = NULL;
    int c, with_key = 0, rc;
    const char *dest;

    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'k': with_key = 1; break;
        default:  return bad_option(c, argv);
        }
    }
    if (argc - optind != 1)
        return usage_error("%s", "usage: backup [--with-key] DIR");
    dest = argv[optind];
    /* the record of the backup goes into the backup */
    if (open_store(dir, &st) != 0)
        return 1;
    cli_audit_admin(st, dir, NULL, "backup.create", dest, "success",
                    with_key ? "with master.key" : "without master.key",
                    NULL, NULL);
    gh_store_close(st);
    gh_audit_close();   /* the copy opens the environments itself */
    rc = gh_backup(dir, dest, with_key);
    if (rc == GH_EEXIST)
        return fail(1, "backup directory is not empty: %s", dest);
    if (rc != 0)
        return fail(1, "cannot back up to %s: %s", dest, gh_strerror(rc));
    printf("backup written to %s (%s)\n", dest,
           with_key ? "with master.key: keep it as safe as the live one"
                    : "without master.key");
    return verify_dir(dest, with_key ? dest : dir);
}

int cmd_restore(const char *dir, int argc, char **argv)
{
    gh_store_t *st = NULL;
    int ended = 0, rc;
    pid_t pid;
    const char *src;

    if (argc != 2 || argv[1][0] == '-')
        return usage_error("%s", "usage: restore BACKUP-DIR");
    src = argv[1];
    pid = gh_data_in_use(dir);
    if (pid > 0)
        return fail(1, "data directory %s is in use (process %ld): stop the "
                    "gateway first", dir, (long)pid);
    rc = gh_restore(src, dir, &ended);
    if (rc == GH_ENOTINIT)
        return fail(1, "not a backup (no gatehouse.mdb/data.mdb): %s", src);
    if (rc == GH_ENOTFOUND)
        return fail(1, "no master.key in the backup or in %s: restore "
                    "master.key first", dir);
    if (rc == GH_EDENIED)
        return fail(1, "the backup's keys do not open with the master.key "
                    "in %s (or the directory came into use)", dir);
    if (rc != 0)
        return fail(1, "cannot restore: %s", gh_strerror(rc));
    if (open_store(dir, &st) == 0) {
        char detail[PATH_MAX + 64];

        snprintf(detail, sizeof detail, "from %s; %d session%s ended", src,
                 ended, ended == 1 ? "" : "s");
        cli_audit_admin(st, dir, NULL, "backup.restore", dir, "success",
                        detail, NULL, NULL);
        gh_store_close(st);
        gh_audit_close();
    }
    printf("restored %s from %s (%d session%s ended: everyone signs in "
           "again)\n", dir, src, ended, ended == 1 ? "" : "s");
    return verify_dir(dir, dir);
}
