/* gatehouse — benchmark of gh_policy_decide on a large policy.
 *
 * Builds a policy with 10,000 custom roles and 1,000 rules in one app,
 * compiles it, and times the per-request decision (explain == NULL, as on
 * the request path) for users holding ~5 roles each. Prints the median
 * ns per decision over many rounds.
 *
 *   cc -O2 -Iinclude bench/decide_bench.c build/libgatehouse.a \
 *      $(pkg-config --libs libsodium jansson lmdb libcrypto yaml-0.1) -lpthread
 *
 * The pieces are functions so that a store-backed benchmark (users and
 * bindings read from LMDB) can reuse them: bench_policy_yaml(),
 * bench_users(), bench_time_decide().
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"
#include "gatehouse/policy.h"

#define BENCH_TENANT  "bench"
#define BENCH_APP     "bench"
#define BENCH_PATHS   64

/* A small deterministic PRNG (xorshift64*), so runs are comparable. */
static uint64_t bench_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

struct buf {
    char  *p;
    size_t n, cap;
};

__attribute__((format(printf, 2, 3)))
static void buf_add(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int k;

    for (;;) {
        va_start(ap, fmt);
        k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < b->cap - b->n)
            break;
        b->cap = b->cap * 2 + (size_t)(k > 0 ? k : 0);
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            perror("realloc");
            exit(1);
        }
    }
    b->n += (size_t)k;
}

/* Role name i: "r<i>". */
static void bench_role_name(char out[24], size_t i)
{
    snprintf(out, 24, "r%zu", i);
}

/* YAML text of a policy with nroles custom roles and nrules rules in app
 * BENCH_APP (tenant BENCH_TENANT). Rules spread over roles (8 each), paths
 * (BENCH_PATHS prefixes) and methods; one in twenty is a deny rule. The
 * caller frees the result; *len receives its length. */
char *bench_policy_yaml(size_t nroles, size_t nrules, uint64_t seed, size_t *len)
{
    static const char *const meth[] = { "[GET, HEAD]", "[POST]", "\"*\"",
                                        "[GET, POST, PUT]", "[DELETE]" };
    struct buf b = { malloc(1 << 20), 0, 1 << 20 };
    uint64_t s = seed ? seed : 1;
    size_t i, k;
    char rn[24];

    if (b.p == NULL)
        return NULL;
    buf_add(&b, "version: 1\nroles:\n");
    for (i = 0; i < nroles; i++) {
        bench_role_name(rn, i);
        buf_add(&b, "  - %s\n", rn);
    }
    buf_add(&b, "tenants:\n  %s:\n    mfa: optional\n", BENCH_TENANT);
    buf_add(&b, "apps:\n  %s:\n    tenants: [%s]\n    rules:\n", BENCH_APP, BENCH_TENANT);
    for (i = 0; i < nrules; i++) {
        buf_add(&b, "      - name: rule%zu\n        effect: %s\n        roles: [", i,
                i % 20 == 19 ? "deny" : "allow");
        size_t pick[8], j, want = nroles < 8 ? nroles : 8;
        for (k = 0; k < want; k++) {
            do {   /* distinct: the compiler refuses a repeated role */
                pick[k] = (size_t)(bench_rand(&s) % nroles);
                for (j = 0; j < k && pick[j] != pick[k]; j++)
                    ;
            } while (j < k);
            bench_role_name(rn, pick[k]);
            buf_add(&b, "%s%s", k ? ", " : "", rn);
        }
        buf_add(&b, "]\n        methods: %s\n        paths: [/p%zu, /q%zu/sub]\n",
                meth[i % 5], (size_t)(bench_rand(&s) % BENCH_PATHS),
                (size_t)(bench_rand(&s) % BENCH_PATHS));
    }
    *len = b.n;
    return b.p;
}

/* Compile the generated policy; *compile_ms receives the compile time. */
gh_policy_t *bench_policy_compile(size_t nroles, size_t nrules, double *compile_ms)
{
    struct timespec t0, t1;
    gh_policy_t *p = NULL;
    char err[256];
    size_t len;
    char *y = bench_policy_yaml(nroles, nrules, 1, &len);
    int rc;

    if (y == NULL)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = gh_policy_compile(y, len, &p, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(y);
    if (rc != 0) {
        fprintf(stderr, "compile: %s (%s)\n", err, gh_strerror(rc));
        return NULL;
    }
    *compile_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    return p;
}

/* Requests for nusers users holding nroles_each roles drawn from the
 * policy's nroles (plus "member" for one user in four), random methods and
 * paths. Role name strings live in *names_out (free both). */
gh_request_t *bench_users(size_t nusers, size_t nroles, size_t nroles_each,
                          uint64_t seed, char **names_out, const char ***roles_out)
{
    static const unsigned meth[] = { GH_M_GET, GH_M_GET, GH_M_GET, GH_M_HEAD,
                                     GH_M_POST, GH_M_PUT, GH_M_DELETE };
    static char paths[BENCH_PATHS * 2][32];
    size_t per = nroles_each + 1, i, k;
    gh_request_t *req = calloc(nusers, sizeof *req);
    char *names = calloc(nusers * per, 24);
    const char **roles = calloc(nusers * per, sizeof *roles);
    uint64_t s = seed ? seed : 7;

    if (req == NULL || names == NULL || roles == NULL) {
        free(req);
        free(names);
        free(roles);
        return NULL;
    }
    for (i = 0; i < BENCH_PATHS; i++) {
        snprintf(paths[i], sizeof paths[i], "/p%zu/x", i);
        snprintf(paths[BENCH_PATHS + i], sizeof paths[i], "/q%zu/sub/y", i);
    }
    for (i = 0; i < nusers; i++) {
        size_t n = 0;
        for (k = 0; k < nroles_each; k++) {
            char *nm = names + (i * per + n) * 24;
            bench_role_name(nm, (size_t)(bench_rand(&s) % nroles));
            roles[i * per + n++] = nm;
        }
        if (i % 4 == 0)
            roles[i * per + n++] = "member";
        req[i].tenant = BENCH_TENANT;
        req[i].roles = roles + i * per;
        req[i].nroles = n;
        req[i].method = meth[bench_rand(&s) % 7];
        req[i].path = paths[bench_rand(&s) % (BENCH_PATHS * 2)];
        req[i].path_len = strlen(req[i].path);
        req[i].addr = NULL;
        req[i].mfa = (int)(bench_rand(&s) % 2);
    }
    *names_out = names;
    *roles_out = roles;
    return req;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median ns per decision over rounds passes through reqs[0..n). allowed
 * receives the allow count of one pass (a sanity figure, and a use of the
 * results the optimiser cannot drop). */
double bench_time_decide(const gh_policy_t *p, const char *app, const gh_request_t *reqs,
                         size_t n, size_t rounds, size_t *allowed)
{
    double *ns = calloc(rounds, sizeof *ns), med;
    size_t r, i, ok = 0;

    if (ns == NULL)
        return -1;
    for (r = 0; r < rounds; r++) {
        struct timespec t0, t1;
        ok = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (i = 0; i < n; i++) {
            gh_decision_t d;
            if (gh_policy_decide(p, app, &reqs[i], &d, NULL, NULL) == 0 && d.allow)
                ok++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns[r] = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
                 (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
    }
    qsort(ns, rounds, sizeof *ns, cmp_double);
    med = ns[rounds / 2];
    free(ns);
    *allowed = ok;
    return med;
}

#ifndef BENCH_NO_MAIN
int main(int argc, char **argv)
{
    static const struct {
        size_t roles, rules;
    } cfg[] = { { 100, 10 }, { 1000, 100 }, { 10000, 1000 } };
    static const size_t users[] = { 1000, 10000, 100000 };
    size_t c, u;

    (void)argc;
    (void)argv;
    printf("%-8s %-7s %-10s %-8s %-12s %-10s\n", "roles", "rules", "compile", "users",
           "ns/decision", "allowed");
    for (c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        double cms;
        gh_policy_t *p = bench_policy_compile(cfg[c].roles, cfg[c].rules, &cms);
        if (p == NULL) {
            fprintf(stderr, "could not build the policy\n");
            return 1;
        }
        for (u = 0; u < sizeof users / sizeof users[0]; u++) {
            char *names;
            const char **roles;
            size_t allowed, rounds = users[u] >= 100000 ? 11 : 51;
            gh_request_t *req = bench_users(users[u], cfg[c].roles, 5, 42, &names,
                                            &roles);
            double ns;
            if (req == NULL)
                return 1;
            ns = bench_time_decide(p, BENCH_APP, req, users[u], rounds, &allowed);
            printf("%-8zu %-7zu %7.1f ms %-8zu %8.0f     %5.1f%%\n", cfg[c].roles,
                   cfg[c].rules, cms, users[u], ns, 100.0 * (double)allowed /
                   (double)users[u]);
            free(req);
            free(names);
            free(roles);
        }
        gh_policy_free(p);
    }
    return 0;
}
#endif
