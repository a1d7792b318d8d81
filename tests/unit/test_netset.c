/* Unit tests for authz/netset.c: address parsing and formatting, CIDR
 * parsing, v4-mapped equivalence, merging and boundaries. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static gh_addr_t A(const char *s)
{
    gh_addr_t a;

    assert_int_equal(gh_addr_parse(s, strlen(s), &a), 0);
    return a;
}

/* A compiled set from a NULL-terminated list of networks. */
static gh_netset_t *set_of(const char *const *nets)
{
    gh_netset_t *s = gh_netset_new();

    assert_non_null(s);
    for (; *nets; nets++)
        assert_int_equal(gh_netset_add(s, *nets, strlen(*nets)), 0);
    assert_int_equal(gh_netset_compile(s), 0);
    return s;
}

static int in(const gh_netset_t *s, const char *addr)
{
    gh_addr_t a = A(addr);

    return gh_netset_contains(s, &a);
}

static void addr_parse_accepts_v4_v6_and_mapped_as_one_form(void **state)
{
    gh_addr_t a = A("10.1.2.3"), b = A("::ffff:10.1.2.3"), c = A("::FFFF:a01:203");
    static const uint8_t want[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                      10, 1, 2, 3 };

    (void)state;
    assert_memory_equal(a.b, want, 16);
    assert_memory_equal(b.b, want, 16);
    assert_memory_equal(c.b, want, 16);
}

static void addr_parse_refuses_malformed_text(void **state)
{
    static const char *bad[] = {
        "", " 10.0.0.1", "10.0.0.1 ", "1.2.3", "1.2.3.4.5", "256.0.0.1",
        "010.0.0.1", "fe80::1%eth0", "abc", "::g", "1::2::3", "10.0.0.1/32",
        "0x0a.0.0.1", "1.2.3.4\n",
    };
    gh_addr_t a;
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++) {
        int rc = gh_addr_parse(bad[i], strlen(bad[i]), &a);
        if (rc != GH_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* An embedded NUL inside len is refused; len bounds the read. */
    assert_int_equal(gh_addr_parse("10.0.0.1\0x", 10, &a), GH_EINVAL);
    assert_int_equal(gh_addr_parse("10.0.0.1junk", 8, &a), 0);
    /* Longer than any address text. */
    assert_int_equal(gh_addr_parse("0000:0000:0000:0000:0000:ffff:255.255.255.255",
                                   46, &a), GH_EINVAL);
}

static void addr_format_is_dotted_quad_for_v4_and_rfc5952_for_v6(void **state)
{
    static const struct { const char *in, *out; } v[] = {
        { "10.1.2.3", "10.1.2.3" },
        { "::ffff:192.168.0.1", "192.168.0.1" },
        { "::1", "::1" },
        { "::", "::" },
        { "2001:DB8:0:0:0:0:0:1", "2001:db8::1" },
        { "2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1" },   /* longest run */
        { "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" }, /* first on a tie */
        { "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" }, /* one zero: no :: */
        { "::2:3", "::2:3" },                               /* not ::0.2.0.3 */
        { "fe80::", "fe80::" },
        { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
    };
    char out[GH_ADDR_TEXT_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < N(v); i++) {
        gh_addr_t a = A(v[i].in);
        gh_addr_format(&a, out);
        assert_string_equal(out, v[i].out);
    }
}

static void addr_from_sockaddr_maps_v4_and_copies_v6(void **state)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr sa;
    gh_addr_t a, want;

    (void)state;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    assert_int_equal(gh_addr_from_sockaddr((struct sockaddr *)&sin, &a), 0);
    want = A("::ffff:192.0.2.7");
    assert_memory_equal(a.b, want.b, 16);

    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
    assert_int_equal(gh_addr_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
    want = A("2001:db8::5");
    assert_memory_equal(a.b, want.b, 16);

    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNIX;
    assert_int_equal(gh_addr_from_sockaddr(&sa, &a), GH_EINVAL);
}

static void netset_refuses_malformed_networks(void **state)
{
    static const char *bad[] = {
        "10.0.0.0/33", "10.0.0.1/8", "1.2.3", "1.2.3/8", "::1/129",
        "fe80::1%eth0", "fe80::/10%eth0", " 10.0.0.0/8", "10.0.0.0/8 ",
        "10.0.0.0/", "/8", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/-1",
        "10.0.0.0/8/8", "abc", "", "10.0.0.0 /8", "10.0.0.0/ 8",
        "::ffff:10.0.0.1/104", "2001:db8::/1000", "10.0.0.0/0008",
    };
    gh_netset_t *s = gh_netset_new();
    size_t i;

    (void)state;
    for (i = 0; i < N(bad); i++) {
        if (gh_netset_add(s, bad[i], strlen(bad[i])) != GH_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(gh_netset_count(s), 0);
    gh_netset_free(s);
}

static void slash_zero_matches_every_address_of_its_family_form(void **state)
{
    static const char *v4all[] = { "0.0.0.0/0", NULL };
    static const char *v6all[] = { "::/0", NULL };
    gh_netset_t *s4 = set_of(v4all), *s6 = set_of(v6all);

    (void)state;
    /* 0.0.0.0/0 is ::ffff:0:0/96: every IPv4 address, no native IPv6. */
    assert_true(in(s4, "0.0.0.0"));
    assert_true(in(s4, "255.255.255.255"));
    assert_false(in(s4, "2001:db8::1"));
    assert_false(in(s4, "::1"));
    assert_true(in(s6, "2001:db8::1"));
    assert_true(in(s6, "10.0.0.1"));
    assert_true(in(s6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_true(in(s6, "::"));
    gh_netset_free(s4);
    gh_netset_free(s6);
}

static void host_routes_match_exactly_one_address(void **state)
{
    static const char *nets[] = { "192.0.2.1/32", "2001:db8::1/128",
                                  "198.51.100.9", "::1", NULL };
    gh_netset_t *s = set_of(nets);

    (void)state;
    assert_true(in(s, "192.0.2.1"));
    assert_false(in(s, "192.0.2.0"));
    assert_false(in(s, "192.0.2.2"));
    assert_true(in(s, "2001:db8::1"));
    assert_false(in(s, "2001:db8::"));
    assert_false(in(s, "2001:db8::2"));
    assert_true(in(s, "198.51.100.9"));
    assert_false(in(s, "198.51.100.8"));
    assert_true(in(s, "::1"));
    assert_false(in(s, "::2"));
    assert_int_equal(gh_netset_count(s), 4);
    gh_netset_free(s);
}

static void v4_networks_and_v4_mapped_v6_are_the_same(void **state)
{
    static const char *v4[] = { "10.0.0.0/8", NULL };
    static const char *mapped[] = { "::ffff:10.0.0.0/104", NULL };
    gh_netset_t *a = set_of(v4), *b = set_of(mapped);

    (void)state;
    assert_true(in(a, "::ffff:10.1.2.3"));
    assert_true(in(a, "10.1.2.3"));
    assert_true(in(b, "10.1.2.3"));
    assert_true(in(b, "::ffff:10.255.255.255"));
    assert_false(in(a, "11.0.0.0"));
    assert_false(in(b, "11.0.0.0"));
    assert_false(in(a, "::10.1.2.3"));   /* v4-compatible is not v4 */
    gh_netset_free(a);
    gh_netset_free(b);
}

static void boundaries_first_last_and_one_past(void **state)
{
    static const char *nets[] = { "10.0.0.0/8", "2001:db8::/32", NULL };
    gh_netset_t *s = set_of(nets);

    (void)state;
    assert_false(in(s, "9.255.255.255"));
    assert_true(in(s, "10.0.0.0"));
    assert_true(in(s, "10.255.255.255"));
    assert_false(in(s, "11.0.0.0"));
    assert_false(in(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_true(in(s, "2001:db8::"));
    assert_true(in(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false(in(s, "2001:db9::"));
    gh_netset_free(s);
}

static void overlapping_and_adjacent_networks_merge(void **state)
{
    /* Adjacent halves, a contained network, a duplicate, and a gap. */
    static const char *nets[] = { "10.0.1.0/24", "10.0.0.0/24", "10.0.0.128/25",
                                  "10.0.0.0/24", "10.0.3.0/24", "::/1",
                                  "8000::/1", NULL };
    gh_netset_t *s = set_of(nets);

    (void)state;
    assert_int_equal(gh_netset_count(s), 7);
    assert_true(in(s, "10.0.0.0"));
    assert_true(in(s, "10.0.1.255"));
    assert_true(in(s, "10.0.3.1"));
    /* ::/1 and 8000::/1 merge into everything, including the v4 gap. */
    assert_true(in(s, "10.0.2.0"));
    assert_true(in(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_int_equal(gh_netset_compile(s), 0);   /* idempotent */
    assert_true(in(s, "10.0.2.0"));
    gh_netset_free(s);

    static const char *gap[] = { "10.0.1.0/24", "10.0.0.0/24", "10.0.3.0/24",
                                 "10.0.0.0/16", "10.2.0.0/16", NULL };
    s = set_of(gap);
    assert_true(in(s, "10.0.200.1"));
    assert_false(in(s, "10.1.0.0"));
    assert_true(in(s, "10.2.0.0"));
    assert_false(in(s, "10.3.0.0"));
    gh_netset_free(s);
}

static void empty_set_contains_nothing_and_counts_zero(void **state)
{
    gh_netset_t *s = gh_netset_new();
    gh_addr_t a = A("10.0.0.1");

    (void)state;
    assert_int_equal(gh_netset_count(s), 0);
    assert_int_equal(gh_netset_compile(s), 0);
    assert_false(gh_netset_contains(s, &a));
    assert_int_equal(gh_netset_count(NULL), 0);
    assert_false(gh_netset_contains(NULL, &a));
    gh_netset_free(s);
    gh_netset_free(NULL);
}

static void uncompiled_set_still_answers_correctly(void **state)
{
    gh_netset_t *s = gh_netset_new();
    gh_addr_t a = A("10.9.9.9"), b = A("11.0.0.0");

    (void)state;
    assert_int_equal(gh_netset_add(s, "10.0.0.0/8", 10), 0);
    assert_true(gh_netset_contains(s, &a));
    assert_false(gh_netset_contains(s, &b));
    assert_int_equal(gh_netset_compile(s), 0);
    assert_int_equal(gh_netset_add(s, "11.0.0.0/8", 10), 0);   /* reopens */
    assert_true(gh_netset_contains(s, &b));
    assert_int_equal(gh_netset_compile(s), 0);
    assert_true(gh_netset_contains(s, &b));
    gh_netset_free(s);
}

static void many_random_networks_agree_with_linear_scan(void **state)
{
    gh_netset_t *s = gh_netset_new();
    uint32_t x = 12345, net[512];
    char buf[32];
    size_t i, j;

    (void)state;
    /* 512 random /24s inside 1.0.0.0 .. 8.255.255.0: many overlap. */
    for (i = 0; i < N(net); i++) {
        x = x * 1103515245u + 12345u;
        net[i] = (1 + (x >> 24) % 8) << 24 | (x >> 8 & 0xff) << 16 | (x & 0xff) << 8;
        snprintf(buf, sizeof buf, "%u.%u.%u.0/24", net[i] >> 24,
                 net[i] >> 16 & 0xff, net[i] >> 8 & 0xff);
        assert_int_equal(gh_netset_add(s, buf, strlen(buf)), 0);
    }
    assert_int_equal(gh_netset_compile(s), 0);
    for (i = 0; i < 20000; i++) {
        uint32_t probe;
        int want = 0;
        gh_addr_t a;
        x = x * 1103515245u + 12345u;
        probe = (1 + (x >> 24) % 9) << 24 | (x & 0xffffff);
        if (i % 2 == 0)    /* half the probes near a known network */
            probe = net[x % N(net)] | (x >> 24 & 0xff);
        for (j = 0; j < N(net); j++)
            if ((probe & 0xffffff00u) == net[j])
                want = 1;
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", probe >> 24, probe >> 16 & 0xff,
                 probe >> 8 & 0xff, probe & 0xff);
        assert_int_equal(gh_addr_parse(buf, strlen(buf), &a), 0);
        assert_int_equal(gh_netset_contains(s, &a), want);
    }
    gh_netset_free(s);
}

/* A tenant's stored list: commas and/or spaces between networks, the
 * canonical text joined by ",", a bad network or too many refused. */
static void add_list_parses_canonicalises_and_bounds(void **state)
{
    gh_netset_t *s = gh_netset_new();
    char canon[64];
    gh_addr_t a;

    (void)state;
    assert_int_equal(gh_netset_add_list(s, " 10.0.0.0/8 ,192.0.2.1  ::1", 8,
                                        canon, sizeof canon), 3);
    assert_string_equal(canon, "10.0.0.0/8,192.0.2.1,::1");
    assert_int_equal(gh_netset_compile(s), 0);
    assert_int_equal(gh_addr_parse("10.9.9.9", 8, &a), 0);
    assert_true(gh_netset_contains(s, &a));
    assert_int_equal(gh_addr_parse("192.0.2.2", 9, &a), 0);
    assert_false(gh_netset_contains(s, &a));
    gh_netset_free(s);

    s = gh_netset_new();
    assert_int_equal(gh_netset_add_list(s, " , ", 8, canon, sizeof canon), 0);
    assert_string_equal(canon, "");
    assert_int_equal(gh_netset_add_list(s, "10.0.0.0/8,10.0.0.1/8", 8, NULL, 0),
                     GH_EINVAL);
    assert_int_equal(gh_netset_add_list(s, "a,b,c", 8, NULL, 0), GH_EINVAL);
    assert_int_equal(gh_netset_add_list(s, "1.1.1.1,2.2.2.2,3.3.3.3", 2, NULL, 0),
                     GH_ETOOBIG);
    assert_int_equal(gh_netset_add_list(s, "10.0.0.0/8,192.168.0.0/16", 8,
                                        canon, 12), GH_ETOOBIG);
    gh_netset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addr_parse_accepts_v4_v6_and_mapped_as_one_form),
        cmocka_unit_test(add_list_parses_canonicalises_and_bounds),
        cmocka_unit_test(addr_parse_refuses_malformed_text),
        cmocka_unit_test(addr_format_is_dotted_quad_for_v4_and_rfc5952_for_v6),
        cmocka_unit_test(addr_from_sockaddr_maps_v4_and_copies_v6),
        cmocka_unit_test(netset_refuses_malformed_networks),
        cmocka_unit_test(slash_zero_matches_every_address_of_its_family_form),
        cmocka_unit_test(host_routes_match_exactly_one_address),
        cmocka_unit_test(v4_networks_and_v4_mapped_v6_are_the_same),
        cmocka_unit_test(boundaries_first_last_and_one_past),
        cmocka_unit_test(overlapping_and_adjacent_networks_merge),
        cmocka_unit_test(empty_set_contains_nothing_and_counts_zero),
        cmocka_unit_test(uncompiled_set_still_answers_correctly),
        cmocka_unit_test(many_random_networks_agree_with_linear_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
