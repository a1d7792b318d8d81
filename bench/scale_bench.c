/* gatehouse — the decision at scale: per-request work against a real store.
 *
 * For each user count N (default 1k, 10k, 100k, 1M) this makes a fresh LMDB
 * store (GH_STORE_NOSYNC: a bulk load, never a live gateway) with one tenant
 * and N users holding 5 role bindings each, drawn from the 10,000 roles of
 * the policy built by decide_bench.c (1,000 rules), plus sessions for up to
 * 100,000 random users. It then times, as a median of per-chunk means over
 * random users (chunks of 1,000 operations, 100,000 operations per
 * measurement):
 *
 *   decide    gh_policy_decide alone on the user's roles (no store);
 *   lookup    gh_user_get (one read txn, JSON decode) + gh_user_active_roles
 *             + gh_policy_decide;
 *   request   what the access handler does per request: gh_policy_version
 *             (one read txn) + gh_session_resolve (cookie -> session + user,
 *             one read txn, two JSON decodes) + gh_user_active_roles +
 *             gh_policy_decide.
 *
 * Output: one tab-separated line per N (header first) on stdout, progress on
 * stderr. Each path is measured 3 times, interleaved, and the lowest median
 * is reported. A time budget (seconds) stops it before a size whose load
 * would not finish in time; that size is then reported as skipped.
 *
 *   scale_bench WORKDIR [BUDGET_S [N ...]]
 *
 * Built by bench/run.sh with the Makefile's build/decide_bench compile line.
 */
#define BENCH_NO_MAIN
#include "decide_bench.c"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gatehouse/session.h"
#include "gatehouse/store.h"

#define SCALE_ROLES        10000
#define SCALE_RULES        1000
#define SCALE_ROLES_EACH   5
#define SCALE_SESSIONS_MAX 100000
#define SCALE_OPS          100000
#define SCALE_CHUNK        1000
#define SCALE_REPS         3

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "scale_bench: %s: %s\n", what, gh_strerror(rc));
    exit(1);
}

/* Size of the store's data file in MiB. */
static double store_mib(const char *dir)
{
    char path[4096];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s/data.mdb", dir, GH_STORE_FILE);
    return stat(path, &sb) == 0 ? (double)sb.st_size / 1048576.0 : -1;
}

static void rm_store(const char *dir)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/%s/data.mdb", dir, GH_STORE_FILE);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s/lock.mdb", dir, GH_STORE_FILE);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, GH_STORE_FILE);
    rmdir(path);
    rmdir(dir);
}

static const unsigned scale_meth[] = { GH_M_GET, GH_M_GET, GH_M_GET, GH_M_HEAD,
                                       GH_M_POST, GH_M_PUT, GH_M_DELETE };
static char scale_paths[BENCH_PATHS * 2][32];

static void fill_request(gh_request_t *req, const char *tenant,
                         const char *const *roles, size_t n, uint64_t *s)
{
    req->tenant = tenant;
    req->roles = roles;
    req->nroles = n;
    req->method = scale_meth[bench_rand(s) % 7];
    req->path = scale_paths[bench_rand(s) % (BENCH_PATHS * 2)];
    req->path_len = strlen(req->path);
    req->addr = NULL;
    req->mfa = 0;
    req->tenant_nets = NULL;
}

enum { P_DECIDE, P_LOOKUP, P_REQUEST };

/* Median over chunks of the mean ns per operation of path `which`. */
static double time_path(int which, gh_store_t *st, const gh_policy_t *pol,
                        char (*ids)[GH_ID_HEXLEN + 1], size_t nusers,
                        char (*tokens)[GH_TOKEN_LEN + 1], size_t nsess,
                        gh_user_t *cache, size_t ncache, size_t *allowed)
{
    size_t nchunks = SCALE_OPS / SCALE_CHUNK, c, i, ok = 0;
    double *ns = calloc(nchunks, sizeof *ns), med;
    gh_session_policy_t sp = { GH_SESSION_IDLE_DEFAULT, GH_SESSION_LIFETIME_DEFAULT };
    uint64_t s = 0x9e3779b97f4a7c15ULL + (uint64_t)which;
    size_t *pick = calloc(SCALE_CHUNK, sizeof *pick);
    static gh_user_t u;
    static gh_session_t se;

    if (ns == NULL || pick == NULL) {
        perror("calloc");
        exit(1);
    }
    for (c = 0; c < nchunks; c++) {
        size_t range = which == P_REQUEST ? nsess : which == P_DECIDE ? ncache : nusers;
        for (i = 0; i < SCALE_CHUNK; i++)
            pick[i] = (size_t)(bench_rand(&s) % range);
        double t0 = now_s();
        for (i = 0; i < SCALE_CHUNK; i++) {
            const char *roles[GH_BINDINGS_MAX];
            const gh_user_t *up = &u;
            gh_request_t req;
            gh_decision_t d;
            uint64_t ver;
            size_t n;
            int rc;

            if (which == P_DECIDE) {
                up = &cache[pick[i]];
            } else if (which == P_LOOKUP) {
                rc = gh_user_get(st, ids[pick[i]], &u);
                if (rc != 0)
                    die("gh_user_get", rc);
            } else {
                rc = gh_policy_version(st, &ver);
                if (rc != 0)
                    die("gh_policy_version", rc);
                rc = gh_session_resolve(st, tokens[pick[i]], GH_TOKEN_LEN, &sp,
                                        (int64_t)time(NULL), &se, &u, NULL);
                if (rc != 0)
                    die("gh_session_resolve", rc);
            }
            n = gh_user_active_roles(up, (int64_t)time(NULL), roles);
            fill_request(&req, up->tenant, roles, n, &s);
            if (gh_policy_decide(pol, BENCH_APP, &req, &d, NULL, NULL) == 0 && d.allow)
                ok++;
        }
        ns[c] = (now_s() - t0) * 1e9 / SCALE_CHUNK;
    }
    qsort(ns, nchunks, sizeof *ns, cmp_double);
    med = ns[nchunks / 2];
    free(ns);
    free(pick);
    *allowed = ok;
    return med;
}

static int run_size(const char *work, size_t n, const gh_policy_t *pol, double budget_left,
                    double *create_us_per_user)
{
    char dir[1024];
    gh_store_t *st = NULL;
    char (*ids)[GH_ID_HEXLEN + 1] = calloc(n, sizeof *ids);
    size_t nsess = n < SCALE_SESSIONS_MAX ? n : SCALE_SESSIONS_MAX, i, k, ncache, ok;
    char (*tokens)[GH_TOKEN_LEN + 1] = calloc(nsess, sizeof *tokens);
    gh_user_t *cache;
    uint64_t s = 42 + n;
    double t0, create_s, sess_s, d_ns, l_ns, r_ns;
    int rc;

    if (ids == NULL || tokens == NULL) {
        perror("calloc");
        exit(1);
    }
    if ((size_t)snprintf(dir, sizeof dir, "%s/scale-%zu", work, n) >= sizeof dir) {
        fprintf(stderr, "scale_bench: work directory name too long\n");
        exit(1);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        perror(dir);
        exit(1);
    }
    rc = gh_store_open(&st, dir, GH_STORE_CREATE | GH_STORE_NOSYNC);
    if (rc != 0)
        die("gh_store_open", rc);
    rc = gh_tenant_add(st, BENCH_TENANT, "Bench");
    if (rc != 0)
        die("gh_tenant_add", rc);

    /* N users, one write transaction each (the store API's unit). */
    t0 = now_s();
    for (i = 0; i < n; i++) {
        static gh_user_t in;
        size_t off = 0, pick[SCALE_ROLES_EACH], j;
        char rn[24];

        memset(&in, 0, sizeof in);
        snprintf(in.tenant, sizeof in.tenant, "%s", BENCH_TENANT);
        snprintf(in.email, sizeof in.email, "u%zu@bench.example", i);
        snprintf(in.name, sizeof in.name, "User %zu", i);
        for (k = 0; k < SCALE_ROLES_EACH; k++) {
            do {   /* distinct roles: a repeat would collapse into one binding */
                pick[k] = (size_t)(bench_rand(&s) % SCALE_ROLES);
                for (j = 0; j < k && pick[j] != pick[k]; j++)
                    ;
            } while (j < k);
            bench_role_name(rn, pick[k]);
            off += (size_t)snprintf(in.roles + off, sizeof in.roles - off, "%s%s",
                                    k ? "," : "", rn);
        }
        rc = gh_user_add(st, &in, ids[i]);
        if (rc != 0)
            die("gh_user_add", rc);
        if (i && i % 100000 == 0) {
            double el = now_s() - t0;
            fprintf(stderr, "scale_bench: %zu users: %zu loaded in %.1f s\n", n, i, el);
            if (el / (double)i * (double)n > budget_left) {
                fprintf(stderr, "scale_bench: %zu users would not load within the "
                        "budget; stopping\n", n);
                gh_store_close(st);
                rm_store(dir);
                free(ids);
                free(tokens);
                *create_us_per_user = el / (double)i * 1e6;
                return 1;
            }
        }
    }
    create_s = now_s() - t0;
    *create_us_per_user = create_s / (double)n * 1e6;

    /* Sessions for up to 100k random users (what logged-in users hold). */
    t0 = now_s();
    for (i = 0; i < nsess; i++) {
        static gh_user_t u;

        rc = gh_user_get(st, ids[n == nsess ? i : (size_t)(bench_rand(&s) % n)], &u);
        if (rc != 0)
            die("gh_user_get", rc);
        rc = gh_session_create(st, &u, "pwd", (int64_t)time(NULL), tokens[i]);
        if (rc != 0)
            die("gh_session_create", rc);
    }
    sess_s = now_s() - t0;

    /* For the store-free control: 1,000 random user records read once, the
     * same count at every N, so this line is flat by construction. */
    ncache = 1000;
    cache = calloc(ncache, sizeof *cache);
    if (cache == NULL) {
        perror("calloc");
        exit(1);
    }
    for (i = 0; i < ncache; i++) {
        rc = gh_user_get(st, ids[(size_t)(bench_rand(&s) % n)], &cache[i]);
        if (rc != 0)
            die("gh_user_get", rc);
    }

    /* A warm-up pass, then SCALE_REPS interleaved repetitions of the three
     * paths; each reports the lowest of its repetitions' medians (other load
     * on the machine can only add time). */
    (void)time_path(P_LOOKUP, st, pol, ids, n, tokens, nsess, cache, ncache, &ok);
    d_ns = l_ns = r_ns = 1e18;
    for (k = 0; k < SCALE_REPS; k++) {
        double x;
        x = time_path(P_DECIDE, st, pol, ids, n, tokens, nsess, cache, ncache, &ok);
        d_ns = x < d_ns ? x : d_ns;
        x = time_path(P_LOOKUP, st, pol, ids, n, tokens, nsess, cache, ncache, &ok);
        l_ns = x < l_ns ? x : l_ns;
        x = time_path(P_REQUEST, st, pol, ids, n, tokens, nsess, cache, ncache, &ok);
        r_ns = x < r_ns ? x : r_ns;
    }

    printf("%zu\t%zu\t%zu\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%.1f\n", n,
           n * SCALE_ROLES_EACH, nsess, create_s, *create_us_per_user, sess_s,
           d_ns, l_ns, r_ns, store_mib(dir));
    fflush(stdout);
    fprintf(stderr, "scale_bench: %zu users: load %.1f s, decide %.0f ns, lookup+decide "
            "%.0f ns, request path %.0f ns (%.1f%% allowed)\n", n, create_s, d_ns, l_ns,
            r_ns, 100.0 * (double)ok / SCALE_OPS);

    gh_store_close(st);
    rm_store(dir);
    free(cache);
    free(ids);
    free(tokens);
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t def[] = { 1000, 10000, 100000, 1000000 };
    size_t sizes[16], nsizes = 0, i;
    double budget, start = now_s(), cms, per_user_us = 0;
    gh_policy_t *pol;

    if (argc < 2) {
        fprintf(stderr, "usage: scale_bench WORKDIR [BUDGET_S [N ...]]\n");
        return 2;
    }
    budget = argc > 2 ? atof(argv[2]) : 300;
    for (i = 3; i < (size_t)argc && nsizes < 16; i++)
        sizes[nsizes++] = (size_t)strtoull(argv[i], NULL, 10);
    if (nsizes == 0)
        for (i = 0; i < 4; i++)
            sizes[nsizes++] = def[i];
    for (i = 0; i < BENCH_PATHS; i++) {
        snprintf(scale_paths[i], sizeof scale_paths[i], "/p%zu/x", i);
        snprintf(scale_paths[BENCH_PATHS + i], sizeof scale_paths[i], "/q%zu/sub/y", i);
    }

    pol = bench_policy_compile(SCALE_ROLES, SCALE_RULES, &cms);
    if (pol == NULL)
        return 1;
    fprintf(stderr, "scale_bench: policy of %d roles, %d rules compiled in %.1f ms\n",
            SCALE_ROLES, SCALE_RULES, cms);
    printf("users\tbindings\tsessions\tload_s\tload_us_per_user\tsessions_s\t"
           "decide_ns\tlookup_ns\trequest_ns\tstore_mib\n");
    for (i = 0; i < nsizes; i++) {
        double left = budget - (now_s() - start);
        /* Skip a size whose load, at the last measured rate, cannot fit. */
        if (per_user_us > 0 && per_user_us * 1e-6 * (double)sizes[i] * 1.3 > left) {
            printf("%zu\tskipped\n", sizes[i]);
            fprintf(stderr, "scale_bench: %zu users skipped: ~%.0f s to load, %.0f s "
                    "left\n", sizes[i], per_user_us * 1e-6 * (double)sizes[i], left);
            continue;
        }
        if (run_size(argv[1], sizes[i], pol, left, &per_user_us) != 0)
            printf("%zu\tskipped\n", sizes[i]);
    }
    gh_policy_free(pol);
    return 0;
}
