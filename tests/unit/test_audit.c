/* Unit tests for core/audit.c: the hash chain, signed checkpoints, and
 * every kind of tampering detected (through the raw, test-only write path),
 * naming the first bad sequence number. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/jwt.h"
#include "gatehouse/keys.h"
#include "gatehouse/seal.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

static char dir[64];
static gh_store_t *st;
static uint8_t mk[GH_MASTER_KEY_BYTES];

/* A signing key sealed under mk, as `gatehouse init` makes one. */
static void
add_signing_key(int64_t sign_from)
{
    char priv[GH_PRIVPEM_MAX], label[64];
    gh_jwtkey_t k;

    memset(&k, 0, sizeof k);
    assert_int_equal(gh_jwt_keygen(priv, k.pub_pem, k.x, k.y, k.kid), 0);
    snprintf(label, sizeof label, "jwt-key:%s", k.kid);
    assert_int_equal(gh_seal(mk, label, (const uint8_t *)priv, strlen(priv),
                             k.sealed, sizeof k.sealed), 0);
    k.created = k.sign_from = sign_from;
    assert_int_equal(gh_jwtkey_add(st, &k), 0);
}

static int
setup(void **state)
{
    char path[128];

    strcpy(dir, "/tmp/gh-test-audit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, GH_MASTER_KEY_FILE);
    if (gh_master_key_create(path) != 0 || gh_master_key_load(path, mk) != 0)
        return -1;
    if (gh_store_open(&st, dir, GH_STORE_CREATE | GH_STORE_NOSYNC) != 0)
        return -1;
    add_signing_key(1);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[128];

    gh_audit_close();
    gh_store_close(st);
    st = NULL;
    gh_clock_set(0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* n login failures by ann, then the log is closed (tampering goes through
 * another handle, as an attacker's would). */
static void
write_records(int n)
{
    char detail[32];

    assert_int_equal(gh_audit_open(dir), 0);
    gh_audit_use_store(st);
    for (int i = 0; i < n; i++) {
        snprintf(detail, sizeof detail, "bad_password; %d", i + 1);
        assert_int_equal(gh_audit("ann@example.com", "demo", "192.0.2.1",
                                  "req", "login_failure", detail), 0);
    }
}

static int
verify(gh_audit_report_t *rep)
{
    gh_audit_close();
    return gh_audit_verify(dir, st, mk, rep);
}

/* The canonical text of record seq (without its hash). */
static json_t *
record(uint64_t seq)
{
    uint8_t buf[4096];
    size_t n;

    assert_int_equal(gh_audit_raw_get(dir, seq, buf, sizeof buf, &n), 0);
    return json_loadb((const char *)buf + 32, n - 32, 0, NULL);
}

static void
not_opened_is_an_error(void **state)
{
    assert_int_equal(gh_audit("a", "t", "-", "-", "e", "d"), GH_ENOTINIT);
}

static void
records_carry_every_field_in_canonical_json(void **state)
{
    gh_audit_event_t ev = {
        .user = "cli:root", .tenant = "demo", .addr = "-",
        .action = "role.grant", .target = "ann@example.com",
        .result = "success", .request_id = "-",
        .before = "member", .after = "member,admin",
    };
    uint8_t buf[4096];
    size_t n;
    json_t *o, *a;

    assert_int_equal(gh_audit_open(dir), 0);
    assert_int_equal(gh_audit_open(dir), 0);   /* idempotent */
    assert_int_equal(gh_audit("ann@example.com", "demo", "192.0.2.1",
                              "0123abcd", "login_failure",
                              "bad_password; 1 consecutive failures"), 0);
    assert_int_equal(gh_audit_event(&ev), 0);
    o = record(1);
    assert_non_null(o);
    a = json_object_get(o, "actor");
    assert_string_equal(json_string_value(json_object_get(a, "user")),
                        "ann@example.com");
    assert_string_equal(json_string_value(json_object_get(a, "addr")),
                        "192.0.2.1");
    assert_string_equal(json_string_value(json_object_get(o, "action")),
                        "login.failure");
    assert_string_equal(json_string_value(json_object_get(o, "result")),
                        "failure");
    assert_string_equal(json_string_value(json_object_get(o, "reason")),
                        "bad_password");
    assert_string_equal(json_string_value(json_object_get(o, "request_id")),
                        "0123abcd");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 1);
    json_decref(o);
    o = record(2);
    a = json_object_get(o, "details");
    assert_string_equal(json_string_value(json_object_get(a, "before")),
                        "member");
    assert_string_equal(json_string_value(json_object_get(a, "after")),
                        "member,admin");
    json_decref(o);
    /* canonical: sorted keys, compact, ASCII, its hash chained from zero */
    assert_int_equal(gh_audit_raw_get(dir, 1, buf, sizeof buf, &n), 0);
    assert_memory_equal(buf + 32, "{\"action\":\"login.failure\",\"actor\":{",
                        35);
    {
        uint8_t pre[32 + 4096], h[32];

        memset(pre, 0, 32);
        memcpy(pre + 32, buf + 32, n - 32);
        gh_sha256(pre, n, h);
        assert_memory_equal(h, buf, 32);
    }
}

static void
hostile_values_stay_inside_their_field(void **state)
{
    uint8_t buf[4096];
    size_t n;
    json_t *o;

    assert_int_equal(gh_audit_open(dir), 0);
    assert_int_equal(gh_audit("x@example.com\n{\"event\":\"unlock\"}\r\n",
                              "demo", "-", "-", "login_failure",
                              "bad \xff\xfe utf-8 \xe2\x82"), 0);
    assert_int_equal(gh_audit_raw_get(dir, 1, buf, sizeof buf, &n), 0);
    for (size_t i = 32; i < n; i++)   /* no control byte, no non-ASCII */
        assert_true(buf[i] >= 0x20 && buf[i] < 0x7f);
    o = json_loadb((const char *)buf + 32, n - 32, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(o, "actor"), "user")),
                        "x@example.com\n{\"event\":\"unlock\"}\r\n");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(o, "details"), "text")),
                        "bad ?? utf-8 ??");
    json_decref(o);
}

static void
intact_chain_verifies_with_signed_checkpoints(void **state)
{
    gh_audit_report_t rep;

    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.records", "4"), 0);
    write_records(10);
    assert_int_equal(verify(&rep), 0);
    assert_int_equal(rep.bad, 0);
    assert_int_equal(rep.records, 10);
    assert_int_equal(rep.first, 1);
    assert_int_equal(rep.last, 10);
    /* at 1 (the first: none before), 5 and 9 */
    assert_int_equal(rep.checkpoints, 3);
    assert_int_equal(rep.key_bound, 1);
}

/* A quiet log is signed once the interval has passed (the gateway's timer
 * calls gh_audit_checkpoint(0) every minute). */
static void
a_quiet_log_is_signed_after_the_interval(void **state)
{
    gh_audit_report_t rep;

    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.seconds", "600"),
                     0);
    gh_clock_set(10000);
    write_records(3);                        /* checkpoint at 1 only */
    gh_clock_set(10300);
    assert_int_equal(gh_audit_checkpoint(0), 0);   /* not yet due */
    assert_int_equal(gh_audit_verify(dir, st, mk, &rep), 0);
    assert_int_equal(rep.checkpoints, 1);
    gh_clock_set(10601);
    assert_int_equal(gh_audit_checkpoint(0), 0);
    assert_int_equal(verify(&rep), 0);
    assert_int_equal(rep.checkpoints, 2);    /* the head, 3, is signed */
    /* and cutting record 3 off is now detected */
    assert_int_equal(gh_audit_raw_del(dir, 3), 0);
    assert_int_equal(gh_audit_raw_set_head(dir, 2), 0);
    assert_int_equal(gh_audit_verify(dir, st, mk, &rep), GH_EDENIED);
    assert_int_equal(rep.bad, 3);
}

static void
an_edited_byte_is_named(void **state)
{
    gh_audit_report_t rep;
    uint8_t buf[4096];
    size_t n;
    char *p;

    write_records(6);
    gh_audit_close();
    assert_int_equal(gh_audit_raw_get(dir, 4, buf, sizeof buf, &n), 0);
    p = memmem(buf + 32, n - 32, "192.0.2.1", 9);
    assert_non_null(p);
    p[8] = '2';                              /* 192.0.2.1 -> 192.0.2.2 */
    assert_int_equal(gh_audit_raw_put(dir, 4, buf, n), 0);
    assert_int_equal(verify(&rep), GH_EDENIED);
    assert_int_equal(rep.bad, 4);
}

static void
an_edit_with_every_later_hash_recomputed_is_caught_by_the_checkpoint(void **state)
{
    gh_audit_report_t rep;
    uint8_t buf[4096], prev[32], pre[32 + 4096];
    size_t n;
    char *p;

    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.records", "4"), 0);
    write_records(8);                        /* checkpoints at 1 and 5 */
    gh_audit_close();
    /* rewrite record 3 and recompute the chain from there, head included:
     * all an attacker without the signing key can do */
    assert_int_equal(gh_audit_raw_get(dir, 2, buf, sizeof buf, &n), 0);
    memcpy(prev, buf, 32);
    for (uint64_t s = 3; s <= 8; s++) {
        assert_int_equal(gh_audit_raw_get(dir, s, buf, sizeof buf, &n), 0);
        if (s == 3) {
            p = memmem(buf + 32, n - 32, "ann@", 4);
            assert_non_null(p);
            p[0] = 'b';
        }
        memcpy(pre, prev, 32);
        memcpy(pre + 32, buf + 32, n - 32);
        gh_sha256(pre, n, buf);
        memcpy(prev, buf, 32);
        assert_int_equal(gh_audit_raw_put(dir, s, buf, n), 0);
    }
    assert_int_equal(gh_audit_raw_set_head(dir, 8), 0);
    assert_int_equal(verify(&rep), GH_EDENIED);
    assert_int_equal(rep.bad, 2);            /* after checkpoint 1 */
    assert_non_null(strstr(rep.why, "checkpoint 5"));
}

static void
a_deleted_record_is_named(void **state)
{
    gh_audit_report_t rep;

    write_records(6);
    gh_audit_close();
    assert_int_equal(gh_audit_raw_del(dir, 3), 0);
    assert_int_equal(verify(&rep), GH_EDENIED);
    assert_int_equal(rep.bad, 3);
    assert_non_null(strstr(rep.why, "missing"));
}

static void
two_swapped_records_are_named(void **state)
{
    gh_audit_report_t rep;
    uint8_t a[4096], b[4096];
    size_t na, nb;

    write_records(6);
    gh_audit_close();
    assert_int_equal(gh_audit_raw_get(dir, 2, a, sizeof a, &na), 0);
    assert_int_equal(gh_audit_raw_get(dir, 5, b, sizeof b, &nb), 0);
    assert_int_equal(gh_audit_raw_put(dir, 2, b, nb), 0);
    assert_int_equal(gh_audit_raw_put(dir, 5, a, na), 0);
    assert_int_equal(verify(&rep), GH_EDENIED);
    assert_int_equal(rep.bad, 2);
}

static void
truncation_after_a_checkpoint_is_named(void **state)
{
    gh_audit_report_t rep;

    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.records", "4"), 0);
    write_records(10);                       /* checkpoints at 1, 5, 9 */
    gh_audit_close();
    /* cut 7..10 and rewrite the head, as a careful attacker would */
    for (uint64_t s = 7; s <= 10; s++)
        assert_int_equal(gh_audit_raw_del(dir, s), 0);
    assert_int_equal(gh_audit_raw_set_head(dir, 6), 0);
    assert_int_equal(verify(&rep), GH_EDENIED);
    assert_int_equal(rep.bad, 7);
    assert_non_null(strstr(rep.why, "checkpoint 9"));
}

static void
truncation_without_rewriting_the_head_is_named(void **state)
{
    gh_audit_report_t rep;

    write_records(5);
    gh_audit_close();
    assert_int_equal(gh_audit_raw_del(dir, 5), 0);
    assert_int_equal(verify(&rep), GH_EDENIED);
    assert_int_equal(rep.bad, 5);
}

static void
a_key_planted_in_the_store_does_not_verify(void **state)
{
    gh_audit_report_t rep;

    /* a key whose private half is sealed under another master key */
    write_records(2);
    gh_audit_close();
    {
        uint8_t good[GH_MASTER_KEY_BYTES];

        memcpy(good, mk, sizeof mk);
        gh_random(mk, sizeof mk);
        add_signing_key(2);
        memcpy(mk, good, sizeof mk);
    }
    assert_int_equal(gh_audit_verify(dir, st, mk, &rep), 0);
    assert_int_equal(rep.key_bound, 0);      /* the planted one is named */
}

/* An attacker without master.key plants a key of their own in the store
 * and signs later checkpoints with it: verify, given the real master key,
 * refuses those checkpoints. */
static void
checkpoints_signed_by_a_planted_key_are_refused(void **state)
{
    gh_audit_report_t rep;
    uint8_t good[GH_MASTER_KEY_BYTES];
    char path[128];
    FILE *f;

    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.records", "2"), 0);
    gh_clock_set(1000);
    write_records(4);                        /* checkpoints at 1 and 3 */
    gh_audit_close();
    memcpy(good, mk, sizeof mk);
    gh_random(mk, sizeof mk);                /* the attacker's own key */
    add_signing_key(1500);
    snprintf(path, sizeof path, "%s/%s", dir, GH_MASTER_KEY_FILE);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(mk, 1, sizeof mk, f), sizeof mk);
    fclose(f);
    gh_clock_set(2000);
    write_records(2);                        /* 5, 6: checkpoint at 5 */
    gh_audit_close();
    memcpy(mk, good, sizeof mk);
    assert_int_equal(gh_audit_verify(dir, st, mk, &rep), GH_EDENIED);
    assert_int_equal(rep.key_bound, 0);
    assert_int_equal(rep.bad, 5);
    assert_non_null(strstr(rep.why, "checkpoint 5"));
}

static void
pruning_archives_and_the_rest_still_verifies(void **state)
{
    gh_audit_report_t rep;
    char archive[128], line[8192];
    FILE *f;
    int lines = 0;
    uint64_t pruned = 0;

    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.records", "3"), 0);
    gh_clock_set(1000000);
    write_records(5);                        /* old */
    gh_clock_set(2000000);
    assert_int_equal(gh_audit("cli:root", "demo", "-", "-", "unlock", "x"), 0);
    snprintf(archive, sizeof archive, "%s/archive.jsonl", dir);
    assert_int_equal(gh_audit_prune(1500000, archive, &pruned), 0);
    assert_int_equal(pruned, 5);
    f = fopen(archive, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL)
        lines++;
    fclose(f);
    assert_int_equal(lines, 6);              /* header + 5 records */
    assert_int_equal(verify(&rep), 0);
    assert_int_equal(rep.first, 6);
    assert_int_equal(rep.last, 7);           /* 6, and the prune record */
    /* deleting the first kept record is still named */
    assert_int_equal(gh_audit_raw_del(dir, 6), 0);
    assert_int_equal(gh_audit_verify(dir, st, mk, &rep), GH_EDENIED);
    assert_int_equal(rep.bad, 6);
}

static int
count_line(const char *line, size_t len, void *arg)
{
    json_t *o = json_loadb(line, len, 0, NULL);

    assert_non_null(o);
    assert_non_null(json_object_get(o, "record"));
    json_decref(o);
    (*(int *)arg)++;
    return 0;
}

static void
export_since_selects_by_time(void **state)
{
    int n = 0;

    gh_clock_set(1000);
    write_records(3);
    gh_clock_set(2000);
    assert_int_equal(gh_audit("a", "t", "-", "-", "unlock", NULL), 0);
    gh_audit_close();
    assert_int_equal(gh_audit_export(dir, 0, count_line, &n), 0);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(gh_audit_export(dir, 1500, count_line, &n), 0);
    assert_int_equal(n, 1);
}

static void
settings_are_checked(void **state)
{
    char v[64];

    assert_int_equal(gh_audit_setting_set(dir, "syslog", "udp:127.0.0.1:514"),
                     0);
    assert_int_equal(gh_audit_setting_get(dir, "syslog", v, sizeof v), 0);
    assert_string_equal(v, "udp:127.0.0.1:514");
    assert_int_equal(gh_audit_setting_set(dir, "syslog", "udp:host"),
                     GH_EINVAL);
    assert_int_equal(gh_audit_setting_set(dir, "syslog", "ftp:x:1"),
                     GH_EINVAL);
    assert_int_equal(gh_audit_setting_set(dir, "syslog", "tcp:a b:1"),
                     GH_EINVAL);
    assert_int_equal(gh_audit_setting_set(dir, "checkpoint.records", "0"),
                     GH_EINVAL);
    assert_int_equal(gh_audit_setting_set(dir, "nope", "1"), GH_EINVAL);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(not_opened_is_an_error),
        T(records_carry_every_field_in_canonical_json),
        T(hostile_values_stay_inside_their_field),
        T(intact_chain_verifies_with_signed_checkpoints),
        T(a_quiet_log_is_signed_after_the_interval),
        T(an_edited_byte_is_named),
        T(an_edit_with_every_later_hash_recomputed_is_caught_by_the_checkpoint),
        T(a_deleted_record_is_named),
        T(two_swapped_records_are_named),
        T(truncation_after_a_checkpoint_is_named),
        T(truncation_without_rewriting_the_head_is_named),
        T(a_key_planted_in_the_store_does_not_verify),
        T(checkpoints_signed_by_a_planted_key_are_refused),
        T(pruning_archives_and_the_rest_still_verifies),
        T(export_since_selects_by_time),
        T(settings_are_checked),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
