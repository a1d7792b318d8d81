/* gatehouse CLI — JWT signing keys and token verification.
 *
 *   keys list                      every key: kid, state, dates
 *   keys rotate [--grace 1h] [--token-lifetime 5m]
 *                                  a new key, published now, signing after
 *                                  the grace period; older keys leave the
 *                                  JWKS once no token they signed can live
 *   jwt verify --aud A [--iss I]   a token on stdin: its claims, or why not
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gatehouse/error.h"
#include "gatehouse/jwt.h"
#include "gatehouse/keys.h"
#include "gatehouse/seal.h"
#include "gatehouse/store.h"

#include "cli.h"

#define DEFAULT_GRACE     3600
#define DEFAULT_TOKEN_LIFETIME 300
#define RETIRE_MARGIN     60     /* clock skew between gateway and backends */

/* "90", "90s", "15m", "1h", "2d" -> seconds (0 allowed). -1 on error. */
static long parse_duration(const char *s)
{
    char *end;
    long v, mul = 1;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || v < 0 || v > 10L * 365 * 86400)
        return -1;
    if (*end != '\0') {
        if (end[1] != '\0')
            return -1;
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default:  return -1;
        }
    }
    return v * mul;
}

/* Generate a key, seal its private half under the data dir's master key
 * and store it, signing from sign_from. Prints its own error. */
int keys_create(gh_store_t *st, const char *dir, int64_t sign_from,
                char kid_out[GH_KID_LEN + 1])
{
    char path[4096], priv[GH_PRIVPEM_MAX], label[64];
    uint8_t mk[GH_MASTER_KEY_BYTES];
    gh_jwtkey_t k;
    int rc;

    memset(&k, 0, sizeof k);
    if (snprintf(path, sizeof path, "%s/%s", dir, GH_MASTER_KEY_FILE) >=
        (int)sizeof path)
        return fail(1, "data directory path too long");
    rc = gh_master_key_load(path, mk);
    if (rc != 0)
        return fail(1, "cannot load the master key %s: %s", path,
                    gh_strerror(rc));
    rc = gh_jwt_keygen(priv, k.pub_pem, k.x, k.y, k.kid);
    if (rc == 0) {
        snprintf(label, sizeof label, "jwt-key:%s", k.kid);
        rc = gh_seal(mk, label, (const uint8_t *)priv, strlen(priv), k.sealed,
                     sizeof k.sealed);
    }
    gh_wipe(priv, sizeof priv);
    gh_wipe(mk, sizeof mk);
    if (rc != 0)
        return fail(1, "cannot make a signing key: %s", gh_strerror(rc));
    k.created = gh_now();
    k.sign_from = sign_from;
    rc = gh_jwtkey_add(st, &k);
    if (rc != 0)
        return fail(1, "cannot store the signing key: %s", gh_strerror(rc));
    if (kid_out != NULL)
        memcpy(kid_out, k.kid, GH_KID_LEN + 1);
    return 0;
}

/* Every stored key (retired keys are kept: they pile up over the years). */
typedef struct {
    gh_jwtkey_t *keys;
    size_t       n, cap;
} keyset_t;

static int collect(const gh_jwtkey_t *k, void *arg)
{
    keyset_t *ks = arg;
    gh_jwtkey_t *grown;

    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 16;

        grown = realloc(ks->keys, cap * sizeof *grown);
        if (grown == NULL)
            return GH_ENOMEM;
        ks->keys = grown;
        ks->cap = cap;
    }
    ks->keys[ks->n] = *k;
    gh_wipe(ks->keys[ks->n].sealed, sizeof ks->keys[ks->n].sealed);
    ks->n++;
    return 0;
}

static int by_sign_from(const void *a, const void *b)
{
    const gh_jwtkey_t *x = a, *y = b;

    return x->sign_from < y->sign_from ? -1 : x->sign_from > y->sign_from;
}

static void free_keys(keyset_t *ks)
{
    free(ks->keys);
    free(ks);
}

static int load_keys(gh_store_t *st, keyset_t *ks)
{
    int rc;

    ks->n = 0;
    rc = gh_jwtkey_list(st, collect, ks);
    if (rc != 0)
        return fail(1, "cannot read the signing keys: %s", gh_strerror(rc));
    qsort(ks->keys, ks->n, sizeof ks->keys[0], by_sign_from);
    return 0;
}

static void fmt_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0) {
        snprintf(out, 32, "-");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int keys_list(gh_store_t *st)
{
    keyset_t *ks = calloc(1, sizeof *ks);
    char c[32], f[32], r[32];
    int64_t now = gh_now();
    const char *state;
    size_t i, signer = (size_t)-1;

    if (ks == NULL)
        return fail(1, "out of memory");
    if (load_keys(st, ks) != 0) {
        free_keys(ks);
        return 1;
    }
    for (i = 0; i < ks->n; i++)
        if (ks->keys[i].sign_from <= now)
            signer = i;
    printf("kid\tstate\tcreated\tsigns_from\tretires\n");
    for (i = 0; i < ks->n; i++) {
        const gh_jwtkey_t *k = &ks->keys[i];

        if (k->retire_at != 0 && k->retire_at <= now)
            state = "retired";
        else if (i == signer)
            state = "signing";
        else if (k->sign_from > now)
            state = "next";
        else
            state = "published";
        fmt_time(k->created, c);
        fmt_time(k->sign_from, f);
        fmt_time(k->retire_at, r);
        printf("%s\t%s\t%s\t%s\t%s\n", k->kid, state, c, f, r);
    }
    free_keys(ks);
    return 0;
}

static int keys_rotate(gh_store_t *st, const char *dir, long grace,
                       long lifetime)
{
    keyset_t *ks = calloc(1, sizeof *ks);
    char kid[GH_KID_LEN + 1], f[32];
    int64_t from = gh_now() + grace, retire;
    size_t i;
    int rc = 1;

    if (ks == NULL)
        return fail(1, "out of memory");
    if (load_keys(st, ks) != 0)
        goto out;
    /* A start time no other key has, so "the newest key whose start has
     * passed" always names exactly one key. */
    for (i = 0; i < ks->n; i++)
        if (ks->keys[i].sign_from == from) {
            from++;
            i = (size_t)-1;   /* look again */
        }
    if (keys_create(st, dir, from, kid) != 0)
        goto out;
    /* Each key leaves the JWKS once its successor (the key starting next
     * after it) has started and the last token it could sign has expired.
     * Recomputed over all keys: an emergency key made while another is
     * scheduled is itself superseded when the scheduled one starts. */
    if (load_keys(st, ks) != 0)
        goto out;
    for (i = 0; i + 1 < ks->n; i++) {
        retire = ks->keys[i + 1].sign_from + lifetime + RETIRE_MARGIN;
        if (ks->keys[i].retire_at != 0 && ks->keys[i].retire_at <= retire)
            continue;
        rc = gh_jwtkey_retire(st, ks->keys[i].kid, retire);
        if (rc != 0) {
            rc = fail(1, "cannot schedule retirement of %s: %s",
                      ks->keys[i].kid, gh_strerror(rc));
            goto out;
        }
    }
    fmt_time(from, f);
    printf("new key %s is published now and signs from %s\n", kid, f);
    {
        char detail[96];

        snprintf(detail, sizeof detail, "signs from %s; grace %lds", f, grace);
        cli_audit_admin(st, dir, NULL, "keys.rotate", kid, "success", detail,
                        NULL, NULL);
    }
    rc = 0;
out:
    free_keys(ks);
    return rc;
}

int cmd_keys(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "grace",          required_argument, NULL, 'g' },
        { "token-lifetime", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    long grace = DEFAULT_GRACE, lifetime = DEFAULT_TOKEN_LIFETIME;
    gh_store_t *st = NULL;
    int c, rc, given = 0;

    if (argc < 2 || (strcmp(argv[1], "list") != 0 &&
                     strcmp(argv[1], "rotate") != 0))
        return usage_error("%s", "keys: expected list or rotate");
    optind = 2;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            given = 1;
            grace = parse_duration(optarg);
            if (grace < 0)
                return fail(EXIT_USAGE, "--grace: not a duration: %s", optarg);
            break;
        case 't':
            given = 1;
            lifetime = parse_duration(optarg);
            /* the gateway refuses gatehouse_jwt_lifetime below 2m */
            if (lifetime < 120)
                return fail(EXIT_USAGE, "--token-lifetime must be a duration "
                            "of at least 2m: %s", optarg);
            break;
        default:
            return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    if (strcmp(argv[1], "list") == 0 && given)
        return usage_error("%s", "keys list takes no options");
    if (open_store(dir, &st) != 0)
        return 1;
    rc = strcmp(argv[1], "list") == 0 ? keys_list(st)
                                      : keys_rotate(st, dir, grace, lifetime);
    gh_store_close(st);
    return rc;
}

int cmd_jwt(const char *dir, int argc, char **argv)
{
    static const struct option opts[] = {
        { "aud", required_argument, NULL, 'a' },
        { "iss", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    const char *aud = NULL, *iss = NULL, *why;
    gh_jwt_pubkey_t *pubs = NULL;
    keyset_t *ks = NULL;
    gh_store_t *st = NULL;
    char tok[GH_JWT_MAX + 2], *claims = NULL;
    size_t n = 0, i, np = 0;
    ssize_t r;
    int c, rc = 1;

    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return usage_error("%s", "jwt: expected verify");
    optind = 2;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'a': aud = optarg; break;
        case 'i': iss = optarg; break;
        default:  return bad_option(c, argv);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    if (aud == NULL)
        return usage_error("%s", "jwt verify needs --aud");
    while (n < sizeof tok - 1 &&
           ((r = read(0, tok + n, sizeof tok - 1 - n)) > 0 ||
            (r < 0 && errno == EINTR)))
        if (r > 0)
            n += (size_t)r;
    if (n >= sizeof tok - 1)
        return fail(1, "token longer than %d bytes", GH_JWT_MAX);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' ||
                     tok[n - 1] == ' '))
        n--;
    tok[n] = '\0';

    ks = calloc(1, sizeof *ks);
    if (ks == NULL)
        return fail(1, "out of memory");
    if (open_store(dir, &st) != 0 || load_keys(st, ks) != 0)
        goto out;
    pubs = calloc(ks->n + 1, sizeof *pubs);
    if (pubs == NULL) {
        rc = fail(1, "out of memory");
        goto out;
    }
    for (i = 0; i < ks->n; i++) {
        /* only keys still published verify */
        if (ks->keys[i].retire_at != 0 && ks->keys[i].retire_at <= gh_now())
            continue;
        pubs[np].kid = ks->keys[i].kid;
        pubs[np].pem = ks->keys[i].pub_pem;
        np++;
    }
    rc = gh_jwt_verify(tok, n, pubs, np, iss, aud, gh_now(), 30, &claims,
                       &why);
    if (rc != 0) {
        rc = fail(1, "token refused: %s", why);
        goto out;
    }
    printf("%s\n", claims);
    rc = 0;
out:
    free(claims);
    free(pubs);
    free_keys(ks);
    gh_store_close(st);
    return rc;
}
