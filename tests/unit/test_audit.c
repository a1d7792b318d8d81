/* Unit tests for core/audit.c: one JSON line per event, values that can
 * never forge a record. */
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

static char dir[64], path[128];

static int
setup(void **state)
{
    strcpy(dir, "/tmp/gh-test-audit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, GH_AUDIT_FILE);
    return 0;
}

static int
teardown(void **state)
{
    gh_audit_close();
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The file's lines, parsed; at most 8. */
static size_t
records(json_t *out[8])
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n = 0;

    assert_non_null(f);
    while (n < 8 && getline(&line, &cap, f) > 0) {
        assert_int_equal(line[strlen(line) - 1], '\n');
        out[n] = json_loads(line, 0, NULL);
        assert_non_null(out[n]);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static void
not_opened_is_an_error(void **state)
{
    assert_int_equal(gh_audit("a", "t", "-", "-", "e", "d"), GH_ENOTINIT);
}

static void
events_are_json_lines_with_every_field(void **state)
{
    json_t *r[8];
    struct stat sb;

    assert_int_equal(gh_audit_open(dir), 0);
    assert_int_equal(gh_audit_open(dir), 0);   /* idempotent */
    assert_int_equal(gh_audit("ann@example.com", "demo", "192.0.2.1",
                              "0123abcd", "login_failure", "bad_password"), 0);
    assert_int_equal(gh_audit("cli:root", NULL, NULL, NULL, "unlock", NULL), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);
    assert_int_equal(records(r), 2);
    assert_string_equal(json_string_value(json_object_get(r[0], "actor")),
                        "ann@example.com");
    assert_string_equal(json_string_value(json_object_get(r[0], "tenant")),
                        "demo");
    assert_string_equal(json_string_value(json_object_get(r[0], "addr")),
                        "192.0.2.1");
    assert_string_equal(json_string_value(json_object_get(r[0], "request_id")),
                        "0123abcd");
    assert_string_equal(json_string_value(json_object_get(r[0], "event")),
                        "login_failure");
    assert_string_equal(json_string_value(json_object_get(r[0], "detail")),
                        "bad_password");
    assert_true(json_is_integer(json_object_get(r[0], "time")));
    assert_string_equal(json_string_value(json_object_get(r[1], "tenant")), "");
    json_decref(r[0]);
    json_decref(r[1]);
}

static void
hostile_values_stay_inside_their_field(void **state)
{
    json_t *r[8];

    assert_int_equal(gh_audit_open(dir), 0);
    assert_int_equal(gh_audit("x@example.com\n{\"event\":\"unlock\"}\r\n",
                              "demo", "-", "-", "login_failure",
                              "bad \xff\xfe utf-8 \xe2\x82"), 0);
    assert_int_equal(records(r), 1);   /* one line, not two */
    assert_string_equal(json_string_value(json_object_get(r[0], "actor")),
                        "x@example.com\n{\"event\":\"unlock\"}\r\n");
    assert_string_equal(json_string_value(json_object_get(r[0], "event")),
                        "login_failure");
    assert_string_equal(json_string_value(json_object_get(r[0], "detail")),
                        "bad ?? utf-8 ??");
    json_decref(r[0]);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(not_opened_is_an_error),
        T(events_are_json_lines_with_every_field),
        T(hostile_values_stay_inside_their_field),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
